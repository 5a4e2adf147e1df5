// Every options object the library takes goes through one check (util/options.ts): an unknown name is refused
// with "did you mean" before any work, null is refused where a value is expected, and the error is an
// OptionError that names the option. Tried here on the calls that refuse before they need a network.
import { test } from "node:test";
import * as assert from "node:assert/strict";
import { compareModes, CostModel, cosineDecay, findLearningRate, flowers, gradCam, heatmaps, imageFolder, Inception, loadClassifier, loadInceptionV3, measureThroughput, OptionError, plot, predictRun, stepDecay, syntheticMirrors, syntheticShapes } from "inception-lab";
import type { ImageFolder } from "inception-lab";
import { Evaluation } from "../../kernel-helpers/train/classifier/evaluation";
import { LiveCurves } from "../../kernel-helpers/plots/curves";
import { checkOptions, closest, rule } from "../../kernel-helpers/util/options";

/** Stands for a network and a data set where the call refuses its options before touching either. */
const network = {} as Inception;
const data = {} as ImageFolder;

const refusals: [string, () => unknown, RegExp][] = [
  ["CostModel", () => new CostModel({ layer: "mixed10" } as never, { images: 200 } as never), /CostModel: there is no option "images"/],
  ["predictRun", () => predictRun({} as never, { mode: "fine-tune", trainImages: 10, validationImages: 2, epochs: 1, epoch: 3 } as never), /predictRun: there is no option "epoch"\. Did you mean "epochs"\?/],
  ["measureThroughput", () => measureThroughput(network, { netwrok: 1 } as never), /measureThroughput: there is no option "netwrok"/],
  ["measureThroughput precision: null", () => measureThroughput(network, { precision: null } as never), /precision: null is not one of auto, float32, bfloat16, float16/],
  ["findLearningRate", () => findLearningRate(network, data, { stpes: 10 } as never), /findLearningRate: there is no option "stpes"\. Did you mean "steps"\?/],
  ["compareModes", () => compareModes(network, data, { epoch: 1 } as never), /compareModes: there is no option "epoch"\. Did you mean "epochs"\?/],
  ["loadInceptionV3", () => loadInceptionV3({ weight: "bundled" } as never), /loadInceptionV3: there is no option "weight"\. Did you mean "weights"\?/],
  ["loadInceptionV3 inputSize", () => loadInceptionV3({ weights: null, inputSize: 100000 }), /inputSize is 100000: use a whole number of at least 75 and at most \d+ \(299 as trained; the most is what this machine's memory holds\)/],
  ["loadClassifier", () => loadClassifier("model", { precission: "float32" } as never), /loadClassifier: there is no option "precission"/],
  ["loadClassifier precision: null", () => loadClassifier("model", { precision: null } as never), /precision: null is not one of/],
  ["imageFolder", () => imageFolder("photos", { testPercentage: 10 } as never), /imageFolder: there is no option "testPercentage"\. Did you mean "testPercent"\?/],
  ["syntheticShapes", () => syntheticShapes({ size: 64 } as never), /syntheticShapes: there is no option "size"/],
  ["syntheticMirrors takes no classes", () => syntheticMirrors({ classes: 3 } as never), /syntheticMirrors: there is no option "classes"/],
  ["plot.confusionMatrix", () => plot.confusionMatrix(new Evaluation(["a", "b"], ["x.jpg"], [0], [[0.9, 0.1]]), { titel: "x" } as never), /plot\.confusionMatrix: there is no option "titel"\. Did you mean "title"\?/],
  ["plot.learningCurves", () => plot.learningCurves({ steps: [], epochs: [] }, { x: "time" } as never), /x: "time" is not one of step, epoch, seconds, images/],
  ["LiveCurves", () => new LiveCurves({ x: "time" } as never), /x: "time" is not one of step, epoch, seconds, images/],
  ["heatmaps", () => heatmaps({} as never, [], { explian: "cat" } as never), /heatmaps: there is no option "explian"\. Did you mean "explain"\?/],
  ["gradCam", () => gradCam([], [], { explain: 3 } as never), /explain is 3: give "predicted" or a class name/],
  ["cosineDecay", () => cosineDecay({ flor: 0.1 } as never), /cosineDecay: there is no option "flor"\. Did you mean "floor"\?/],
  ["stepDecay", () => stepDecay({ every: 0 }), /every is 0: use a whole number of at least 1/],
  ["stepDecay without every", () => stepDecay({} as never), /stepDecay: every is missing/],
  ["clone", () => Inception.prototype.clone.call({} as never, { inputSize: 50 }), /inputSize is 50: use a whole number of at least 75/],
  ["flowers, before its download", () => flowers({ testPercentage: 10 } as never), /flowers: there is no option "testPercentage"/],
];

for (const [name, call, message] of refusals) {
  test(`${name}: a wrong option is refused before any work, as an OptionError naming it`, async () => {
    await assert.rejects(
      (async () => call())(),
      (error: Error) => error instanceof OptionError && message.test(error.message),
    );
  });
}

test("the mechanism: did-you-mean by case and typos, null refused unless a rule takes it, values told what to be", () => {
  assert.equal(closest("learningrate", ["learningRate", "epochs"]), "learningRate");
  assert.equal(closest("zzz", ["learningRate", "epochs"]), null);
  const rules = { epochs: rule.whole(1), layer: rule.orNull(rule.oneOf(["mixed7"])) };
  assert.throws(() => checkOptions({ epochs: null }, rules, "call"), /epochs is null: use a whole number of at least 1/);
  assert.doesNotThrow(() => checkOptions({ layer: null }, rules, "call"));
  assert.throws(() => checkOptions({ epochs: 2, lyaer: "mixed7" }, rules, "call"), (e: Error) => e instanceof OptionError && e.option === "lyaer" && /Did you mean "layer"\?/.test(e.message));
  assert.throws(() => checkOptions("fast" as never, rules, "call"), /call: options are "fast": give an object/);
});
