// Handing work to the rest of TensorFlow, checked with the venv's Python TensorFlow: the Keras file and
// the SavedModel give the library's probabilities, train in Keras, list their signature; a classifier
// trained in Keras loads here and agrees; TensorBoard reads the logs. The command line's tests are in cli.test.ts.
import { test } from "node:test";
import * as assert from "node:assert/strict";
import * as fs from "fs";
import * as path from "path";
import { execFileSync } from "child_process";
import { fineTune, loadClassifier, loadInceptionV3, retrainFinalLayer, syntheticShapes } from "inception-lab";
import type { ImageFolder, Inception, TrainingRun } from "inception-lab";
import { decodeBatch } from "../kernel-helpers/network/decode";
import { python, root, scratch } from "./helpers";

process.env.INCEPTION_LAB_CACHE = scratch("export-cache");
const quiet = { progress: false, liveChart: false };
const SIZE = 75;
let shared: { inception: Inception; data: ImageFolder } | null = null;
async function setup() {
  shared ??= {
    inception: await loadInceptionV3({ weights: "bundled", inputSize: SIZE }),
    data: await syntheticShapes({ classes: 3, perClass: 14, imageSize: 64, seed: 31, dir: path.join(scratch("export-data"), "set") }),
  };
  return shared;
}

/** The files decoded as the library decodes them, written raw for Python: the same pixels on both sides. */
async function rawPixels(files: string[], file: string): Promise<string> {
  const { images, decoded } = await decodeBatch(files, SIZE);
  assert.equal(decoded.length, files.length);
  fs.writeFileSync(file, Buffer.from(Uint8Array.from(await images.data())));
  images.dispose();
  return file;
}

const pythonJson = (args: string[]) =>
  JSON.parse(execFileSync(python, [path.join(__dirname, "keras", "exported.py"), ...args], { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"], env: { ...process.env, TF_CPP_MIN_LOG_LEVEL: "3" } }).trim().split("\n").pop()!);

const worst = (a: number[][], b: number[][]) => Math.max(...a.flatMap((row, i) => row.map((v, j) => Math.abs(v - b[i][j]))));

for (const mode of ["retrain-final-layer", "fine-tune"] as const) {
  test(`${mode}: the Keras and SavedModel exports give the library's probabilities within 1e-4, train in Keras, and list their signature`, async (t) => {
    const { inception, data } = await setup();
    const run: TrainingRun =
      mode === "fine-tune"
        ? await fineTune(inception, data, { ...quiet, epochs: 1, warmupEpochs: 2, batchSize: 8, unfreezeFrom: "mixed6", precision: "float32" })
        : await retrainFinalLayer(inception, data, { ...quiet, epochs: 5, precision: "float32" });
    const dir = scratch(`export-${mode}`);
    const files = data.files("test").slice(0, 5);
    const ours = (await run.predict(files)).map((p) => p.probabilities);
    const images = await rawPixels(files, path.join(dir, "pixels.u8"));
    const labels = path.join(dir, "labels.i32");
    fs.writeFileSync(labels, Buffer.from(Int32Array.from(files.map((f) => data.classes.indexOf(path.basename(path.dirname(f))))).buffer));

    const kerasDir = (await run.export(path.join(dir, "keras"), { format: "keras" })).dir;
    assert.deepEqual(fs.readdirSync(kerasDir).sort(), ["history.json", "inception-lab-manifest.json", "labels.json", "model.keras"]);
    const keras = pythonJson(["keras", path.join(kerasDir, "model.keras"), images, String(files.length), String(SIZE), labels]);
    t.diagnostic(`Keras: max |p - library| = ${worst(keras.probabilities, ours).toExponential(2)}, one fit step, loss ${keras.fitLoss.toFixed(3)}`);
    assert.ok(worst(keras.probabilities, ours) < 1e-4, `Keras probabilities differ by ${worst(keras.probabilities, ours)}`);
    assert.ok(Number.isFinite(keras.fitLoss), "a fit step in Keras");

    const savedDir = (await run.export(path.join(dir, "savedmodel"), { format: "savedmodel" })).dir;
    const saved = pythonJson(["savedmodel", savedDir, images, String(files.length), String(SIZE)]);
    t.diagnostic(`SavedModel: max |p - library| = ${worst(saved.probabilities, ours).toExponential(2)}`);
    assert.ok(worst(saved.probabilities, ours) < 1e-4, `SavedModel probabilities differ by ${worst(saved.probabilities, ours)}`);
    assert.ok(worst(saved.probabilitiesUint8, ours) < 1e-4, "the uint8 signature gives the same");
    assert.deepEqual(saved.labels, (await run.predict(files)).map((p) => p.label));
    const cli = execFileSync(path.join(root, ".venv", "bin", "saved_model_cli"), ["show", "--dir", savedDir, "--tag_set", "serve", "--signature_def", "serving_default"], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] });
    assert.match(cli, /inputs\['images'\][\s\S]*dtype: DT_FLOAT[\s\S]*shape: \(-1, -1, -1, 3\)[\s\S]*outputs\['labels'\][\s\S]*outputs\['probabilities'\]/);
  });
}

test("a classifier trained in Python Keras loads here, and evaluate() agrees with Keras image by image", async () => {
  const { data } = await setup();
  const dir = scratch("keras-trained");
  const train = data.examples("train");
  const testSplit = data.examples("test");
  fs.writeFileSync(path.join(dir, "labels.i32"), Buffer.from(Int32Array.from(train.map((e) => e.label)).buffer));
  const { predicted } = pythonJson([
    "train",
    dir,
    await rawPixels(train.map((e) => e.path), path.join(dir, "train.u8")),
    String(train.length),
    String(SIZE),
    path.join(dir, "labels.i32"),
    await rawPixels(testSplit.map((e) => e.path), path.join(dir, "test.u8")),
    String(testSplit.length),
    String(data.classes.length),
  ]);
  const kerasAccuracy = predicted.filter((p: number, i: number) => p === testSplit[i].label).length / testSplit.length;
  const classifier = await loadClassifier(path.join(dir, "model.keras"), { classes: data.classes });
  assert.equal(classifier.info.layer, "mixed10");
  const evaluation = await classifier.evaluate({ data });
  assert.equal(evaluation.accuracy, kerasAccuracy);
  const ours = await classifier.predict(testSplit.map((e) => e.path));
  assert.deepEqual(ours.map((p) => data.classes.indexOf(p.label)), predicted, "the same class for every test image");
  await assert.rejects(loadClassifier(path.join(dir, "model.keras"), { classes: ["a"] }), /has 3 classes; 1 class names were given/);
});

test("TensorBoard logs: Python's summary reader finds every scalar at the right steps", async () => {
  const { inception, data } = await setup();
  const logdir = scratch("tensorboard");
  const run = await retrainFinalLayer(inception, data, { ...quiet, epochs: 3, batchSize: 8, tensorboard: logdir });
  const code = `
import glob, json, sys
import tensorflow as tf
seen = {}
for f in glob.glob(sys.argv[1] + "/*"):
    for e in tf.compat.v1.train.summary_iterator(f):
        for v in e.summary.value:
            value = v.simple_value if v.WhichOneof("value") == "simple_value" else float(tf.make_ndarray(v.tensor))
            seen.setdefault(v.tag, []).append([e.step, value])
print(json.dumps(seen))`;
  const seen = JSON.parse(execFileSync(python, ["-c", code, logdir], { encoding: "utf8", env: { ...process.env, TF_CPP_MIN_LOG_LEVEL: "3" } }).trim().split("\n").pop()!);
  assert.deepEqual(seen["epoch/val_accuracy"].map(([step]: number[]) => step), [1, 2, 3]);
  assert.deepEqual(seen["step/loss"].map(([step]: number[]) => step), run.history.steps.map((s) => s.step));
  seen["step/loss"].forEach(([, value]: number[], i: number) => assert.ok(Math.abs(value - run.history.steps[i].loss) < 1e-5));
  for (const tag of ["step/accuracy", "step/learning_rate", "step/images_per_second", "epoch/loss", "epoch/accuracy", "epoch/val_loss", "epoch/learning_rate"]) assert.ok(seen[tag]?.length > 0, tag);
});
