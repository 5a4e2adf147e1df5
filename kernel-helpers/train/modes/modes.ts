// The three ways to train Inception-v3 on new classes, behind one signature, (inception, data, options):
//   retrainFinalLayer: frozen network, features computed once and cached, only a new head trained;
//   fineTune: pretrained start, new head, then the network itself trained (all of it, or from a block up);
//   trainFromScratch: the same network and head from random weights.
// What each mode trains is its recipe (recipes.ts); its phases and callbacks are made per call
// (make-phases.ts, run-callbacks.ts); the run keeps its state to train further (trainer.ts, run.ts).
import * as path from "path";
import { ImageFolder } from "../../data/image-folder";
import { Inception, loadInceptionV3 } from "../../network/model";
import { type Precision, resolvePrecision } from "../../runtime/precision";
import { BottleneckCache } from "../../data/bottlenecks";
import { checkWritableFolder } from "../../util/atomic";
import { OptionError } from "../../util/options";
import { Classifier, Head } from "../classifier/classifier";
import { cachedScorer } from "./features";
import { callPhases } from "./make-phases";
import { MODE_CALLS, resolve, type Resolved, type TrainOptions } from "./options";
import { type Mode, plan } from "./recipes";
import { runCallbacks } from "./run-callbacks";
import { remember, type RunInfo, TrainingRun } from "./run";
import { checkTrainingData, countParameters, Trainer } from "./trainer";

/** Refuses arguments in another order or of another kind, before any work (a call written for an older signature). */
function checkArguments(mode: Mode, inception: unknown, data: unknown): void {
  const call = MODE_CALLS[mode];
  if (inception instanceof ImageFolder) throw new OptionError("inception", `${call} takes (inception, data, options), as every mode does: the network first, then the data set.`);
  if (!(inception instanceof Inception)) throw new OptionError("inception", `${call}: inception is ${inception === null ? "null" : typeof inception}: give a network from loadInceptionV3().`);
  if (!(data instanceof ImageFolder)) throw new OptionError("data", `${call}: data is ${data === null ? "null" : typeof data}: give a data set from imageFolder(), flowers(), syntheticShapes() or syntheticMirrors().`);
}

async function train(mode: Mode, inception: Inception, data: ImageFolder, options: TrainOptions, settings: Resolved): Promise<TrainingRun> {
  const checkpointDir = settings.checkpointDir && path.resolve(settings.checkpointDir);
  if (checkpointDir && !settings.resume) checkWritableFolder(checkpointDir, "checkpointDir");
  const precision = resolvePrecision(settings.precision ?? inception.precisionOption, settings.graph);
  const trainer = new Trainer(mode, inception, data, settings, precision, new Head(data.classes.length, settings.dropout, settings.seed));
  // A retrained classifier scores files through the feature cache (one per precision asked), not the whole network.
  const throughFeatures = (asked: Precision) =>
    cachedScorer(asked === precision.precision ? trainer.cache! : new BottleneckCache(inception, trainer.layer, settings.cacheDir, asked, (message) => trainer.warnAside(message)), trainer.models.head.model);
  const classifier = new Classifier(trainer.models.full.model, trainer.classifierInfo, precision, mode === "retrain-final-layer" ? throughFeatures : undefined, trainer.owned);
  const run = new TrainingRun(runInfo(trainer, settings), trainer.history, classifier, data, trainer, options);
  remember(run);
  await trainer.call(
    settings,
    () => callPhases(trainer, settings, true),
    { needsFeatures: trainer.plan.headOnFeatures, resume: settings.resume ? checkpointDir : undefined, callbacks: (parts) => runCallbacks(trainer, settings, parts) },
    (outcome) => run.record(outcome),
  );
  // Later calls of a fine-tune train the network on images: the warm-up's features are not needed again.
  if (mode !== "retrain-final-layer") trainer.releaseFeatures();
  return run;
}

/** What a run says of itself before its first call; record() adds each call's outcome. */
function runInfo(trainer: Trainer, settings: Resolved): RunInfo {
  const { mode, inception, data, layer, precision, models } = trainer;
  return {
    mode,
    weights: inception.source.description,
    layer,
    inputSize: inception.inputSize,
    classes: data.classes,
    trainableParameters: trainer.trainableParameters(),
    totalParameters: countParameters(models.full.model.weights),
    trainedBlocks: trainer.plan.trainedBlocks,
    precision,
    options: { ...settings, callbacks: undefined } as unknown as RunInfo["options"],
    bottlenecks: undefined,
    stopReason: null,
    stopMessage: null,
    stoppedEarly: false,
    checkpointsWritten: 0,
    warnings: [],
    seconds: 0,
    trainImages: data.files("train").length,
    calls: 0,
  };
}

/**
 * Retrain the final layer (TensorFlow's retrain.py): the network stays frozen; each image's features
 * are computed once and cached on disk; only a new classifier is trained on them.
 */
export async function retrainFinalLayer(inception: Inception, data: ImageFolder, options: TrainOptions = {}): Promise<TrainingRun> {
  checkArguments("retrain-final-layer", inception, data);
  const settings = resolve("retrain-final-layer", options);
  checkTrainingData(data);
  return train("retrain-final-layer", inception, data, options, settings);
}

/**
 * Fine-tune: a new classifier is first trained on frozen features (warmupEpochs), then the network
 * itself is trained from `unfreezeFrom` up (default every block up to the cut), starting from the pretrained
 * weights. Works on a copy: `inception` keeps its weights. Frozen BatchNorm layers stay in inference mode.
 */
export async function fineTune(inception: Inception, data: ImageFolder, options: TrainOptions = {}): Promise<TrainingRun> {
  checkArguments("fine-tune", inception, data);
  // Bad options, data or depth fail before the copy is made (a failed call would leave a network behind).
  const settings = resolve("fine-tune", options);
  checkTrainingData(data);
  plan("fine-tune", settings.layer ?? inception.source.layer, settings);
  return train("fine-tune", await inception.clone(), data, options, settings);
}

/**
 * Train from scratch: `inception`'s architecture (its input size, pixel scaling and cut layer) with new
 * random weights (from `seed`), and the head, everything trained. `inception`'s own weights are not used and
 * stay as they are.
 */
export async function trainFromScratch(inception: Inception, data: ImageFolder, options: TrainOptions = {}): Promise<TrainingRun> {
  checkArguments("from-scratch", inception, data);
  const settings = resolve("from-scratch", options);
  checkTrainingData(data);
  const random = await loadInceptionV3({ weights: null, inputSize: inception.inputSize, preprocessing: inception.source.preprocessing, seed: settings.seed, precision: inception.precisionOption });
  // The cut is the given network's (where its classifiers attach), so a run from scratch compares with them.
  return train("from-scratch", random, data, options, { ...settings, layer: settings.layer ?? inception.source.layer });
}
