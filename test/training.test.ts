import { test } from "node:test";
import * as assert from "node:assert/strict";
import * as fs from "fs";
import * as path from "path";
import { spawn } from "child_process";
import { compareModes, fineTune, loadClassifier, loadInceptionV3, retrainFinalLayer, syntheticShapes, tf, trainFromScratch } from "inception-lab";
import type { ImageFolder, Inception, TrainingRun } from "inception-lab";
import { BatchNorm } from "../kernel-helpers/network/batch-norm";
import { root, scratch } from "./helpers";

const trainingCache = scratch("training-cache");
process.env.INCEPTION_LAB_CACHE = trainingCache;
const dataDir = path.join(scratch("training-data"), "shapes");
let shared: { inception: Inception; data: ImageFolder } | null = null;
async function setup() {
  shared ??= {
    inception: await loadInceptionV3({ weights: "bundled", inputSize: 96 }),
    data: await syntheticShapes({ classes: 4, perClass: 30, imageSize: 96, seed: 2, dir: dataDir }),
  };
  return shared;
}
const quiet = { progress: false };

test("on generated shapes with bundled weights: retraining beats scratch on the same wall-clock budget, fine-tuning matches or beats retraining", async (t) => {
  const { inception, data } = await setup();
  const retrained = await retrainFinalLayer(inception, data, { ...quiet, epochs: 30, batchSize: 16 });
  const budget = retrained.info.seconds;
  const scratchRun = await trainFromScratch(inception, data, { ...quiet, layer: "mixed7", epochs: 1000, batchSize: 16, maxSeconds: budget });
  const tuned = await fineTune(inception, data, { ...quiet, warmupEpochs: 30, warmupLearningRate: 1e-3, epochs: 3, unfreezeFrom: "mixed6", batchSize: 16 });
  const [r, s, f] = await Promise.all([retrained.evaluate(), scratchRun.evaluate(), tuned.evaluate()]);
  t.diagnostic(`test accuracy: retrain ${r.accuracy.toFixed(3)} in ${budget.toFixed(1)} s; scratch ${s.accuracy.toFixed(3)} in ${scratchRun.info.seconds.toFixed(1)} s (${scratchRun.history.epochs.length} epochs); fine-tune ${f.accuracy.toFixed(3)} in ${tuned.info.seconds.toFixed(1)} s`);
  assert.equal(scratchRun.info.stopReason, "time budget reached", "scratch training stopped on the time budget");
  assert.ok(r.accuracy > s.accuracy, `retrain ${r.accuracy} vs scratch ${s.accuracy}`);
  assert.ok(f.accuracy >= r.accuracy, `fine-tune ${f.accuracy} vs retrain ${r.accuracy}`);
  assert.ok(r.accuracy >= 0.7, `retrain accuracy ${r.accuracy}`);
  // Freed now, not by the garbage collector during the next test's tensor counts.
  for (const done of [retrained, scratchRun, tuned]) done.dispose();
});

for (const mode of ["retrain-final-layer", "fine-tune", "from-scratch"] as const) {
  test(`${mode}: tf.memory().numTensors is the same after the first and the last epoch`, async () => {
    const { inception, data } = await setup();
    const counts: number[] = [];
    const options = { ...quiet, epochs: 3, batchSize: 16, callbacks: { onEpochEnd: () => counts.push(tf.memory().numTensors) } };
    const before = tf.memory().numTensors;
    const run =
      mode === "retrain-final-layer"
        ? await retrainFinalLayer(inception, data, options)
        : mode === "fine-tune"
          ? await fineTune(inception, data, { ...options, warmupEpochs: 0, unfreezeFrom: "mixed7" })
          : await trainFromScratch(await loadInceptionV3({ weights: null, inputSize: 75 }), data, { ...quiet, epochs: 3, batchSize: 16, callbacks: options.callbacks, layer: "mixed2" });
    assert.equal(counts.length, 3);
    assert.equal(counts[2], counts[0], `tensors per epoch: ${counts.join(", ")}`);
    assert.ok(run.history.steps.every((s) => Number.isFinite(s.loss)));
    if (mode === "retrain-final-layer") assert.ok(tf.memory().numTensors - before < 20, `retraining left ${tf.memory().numTensors - before} tensors`);
    run.dispose();
  });
}

test("the same training call run again in one kernel trains the same, dropout included; another seed trains otherwise", async () => {
  const { inception, data } = await setup();
  const losses = (run: TrainingRun) => run.history.steps.map((s) => s.loss);
  for (const train of [
    (seed: number) => retrainFinalLayer(inception, data, { ...quiet, epochs: 3, batchSize: 16, dropout: 0.5, seed }),
    (seed: number) => fineTune(inception, data, { ...quiet, warmupEpochs: 2, epochs: 1, unfreezeFrom: "mixed7", batchSize: 16, dropout: 0.5, seed }),
  ]) {
    const [first, again, other] = [await train(0), await train(0), await train(1)];
    assert.ok(losses(first).length > 4);
    assert.deepEqual(losses(again), losses(first), `${first.mode}: every step's loss again`);
    assert.deepEqual((await again.evaluate()).accuracy, (await first.evaluate()).accuracy);
    assert.notDeepEqual(losses(other), losses(first), `${first.mode}: another seed, other shuffles and masks`);
  }
});

test("frozen BatchNorm stays in inference mode when fine-tuning (the stock tfjs layer does not)", async () => {
  const { inception, data } = await setup();
  const stats = (model: tf.LayersModel, name: string) => model.getLayer(name).getWeights().map((w) => Array.from(w.dataSync()));
  const run = await fineTune(inception, data, { ...quiet, warmupEpochs: 0, epochs: 1, unfreezeFrom: "mixed7", batchSize: 16 });
  const frozenBn = "batch_normalization_3"; // stem
  const trainedBn = inception.model.layers.filter((l) => inception.blockOf.get(l.name) === "mixed7" && l instanceof BatchNorm)[0].name;
  assert.deepEqual(stats(run.model, frozenBn), stats(inception.model, frozenBn), "a frozen BN keeps beta, moving mean and variance");
  assert.notDeepEqual(stats(run.model, trainedBn), stats(inception.model, trainedBn), "a trained BN updates");
  assert.notDeepEqual(stats(run.model, "conv2d_70"), stats(inception.model, "conv2d_70"), "mixed7 convolutions train");

  // The same step on tfjs-layers' own BatchNormalization moves the statistics of a frozen layer.
  const frozenStepChanges = (layer: tf.layers.Layer) => {
    const input = tf.input({ shape: [4, 4, 2] });
    const dense = tf.layers.dense({ units: 1 });
    const model = tf.model({ inputs: input, outputs: dense.apply(tf.layers.flatten().apply(layer.apply(input))) as tf.SymbolicTensor });
    layer.trainable = false;
    const before = layer.getWeights().map((w) => Array.from(w.dataSync()));
    const x = tf.randomNormal([8, 4, 4, 2], 3, 2);
    tf.train.sgd(0.1).minimize(() => tf.mean(model.apply(x, { training: true }) as tf.Tensor) as tf.Scalar, false, model.trainableWeights.map((w) => w.read() as tf.Variable));
    return JSON.stringify(layer.getWeights().map((w) => Array.from(w.dataSync()))) !== JSON.stringify(before);
  };
  assert.equal(frozenStepChanges(tf.layers.batchNormalization({ scale: true })), true, "stock BN: statistics move although frozen");
  assert.equal(frozenStepChanges(new BatchNorm()), false, "this library's BN: unchanged");
});

function runChild(mode: string, extra: object, onStep?: (child: ReturnType<typeof spawn>, step: number) => void): Promise<{ json: any; log: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--require", "ts-node/register/transpile-only", path.join(__dirname, "fixtures", "train-child.ts"), mode, path.join(scratch(`child-${mode}-${Date.now()}`), "d"), JSON.stringify(extra)], {
      cwd: root,
      env: { ...process.env },
    });
    let log = "";
    child.stdout.on("data", (chunk) => {
      log += chunk;
      for (const match of String(chunk).matchAll(/STEP (\d+)/g)) onStep?.(child, Number(match[1]));
    });
    child.stderr.on("data", (chunk) => (log += chunk));
    child.on("close", (code) => {
      const last = log.trim().split("\n").filter((l) => l.startsWith("{")).pop();
      if (code !== 0 || !last) reject(new Error(`child exited ${code}:\n${log.slice(-3000)}`));
      else resolve({ json: JSON.parse(last), log });
    });
  });
}

test("bottleneck cache: a second run in a new process computes nothing; a new cut layer or new weights recompute", async () => {
  process.env.INCEPTION_LAB_CACHE = scratch("bottleneck-cache");
  try {
    const first = await runChild("retrain-final-layer", { epochs: 1 });
    const second = await runChild("retrain-final-layer", { epochs: 1 });
    const images = first.json.info.bottlenecks.computed;
    assert.ok(images > 30, `computed ${images}`);
    assert.equal(second.json.info.bottlenecks.computed, 0, "second process: no forward pass");
    assert.equal(second.json.info.bottlenecks.cached, images);
    const otherLayer = await runChild("retrain-final-layer", { epochs: 1, layer: "mixed5" });
    assert.equal(otherLayer.json.info.bottlenecks.computed, images, "another cut layer recomputes");
  } finally {
    process.env.INCEPTION_LAB_CACHE = trainingCache;
  }
  const { data } = await setup();
  const random = await loadInceptionV3({ weights: null, inputSize: 96, seed: 3 });
  const bundled = await loadInceptionV3({ weights: "bundled", inputSize: 96 });
  const viaBundled = await retrainFinalLayer(bundled, data, { ...quiet, epochs: 1, layer: "mixed5" });
  const viaRandom = await retrainFinalLayer(random, data, { ...quiet, epochs: 1, layer: "mixed5" });
  assert.ok(viaBundled.info.bottlenecks!.cached + viaBundled.info.bottlenecks!.computed > 0);
  assert.equal(viaRandom.info.bottlenecks!.cached, 0, "other weights never reuse features");
});

test("interrupting the kernel stops at a step boundary and keeps history and best weights", async () => {
  let sent = false;
  const { json } = await runChild("from-scratch", { epochs: 50, batchSize: 4 }, (child, step) => {
    if (step >= 3 && !sent) {
      sent = true;
      child.kill("SIGINT");
    }
  });
  assert.equal(json.info.stopReason, "interrupted");
  assert.ok(json.steps >= 3 && json.steps < 50 * 9, `steps ${json.steps}`);
});

test("checkpoints are written atomically after each better epoch and a run resumes from them", async () => {
  const { inception, data } = await setup();
  const dir = path.join(scratch("checkpoint"), "run");
  const first = await retrainFinalLayer(inception, data, { ...quiet, epochs: 3, batchSize: 16, checkpointDir: dir, learningRate: 1e-2 });
  assert.ok(fs.existsSync(path.join(dir, "model.json")) && fs.existsSync(path.join(dir, "history.json")));
  assert.deepEqual(fs.readdirSync(path.dirname(dir)), ["run"], "no temporary folders left");
  const saved = JSON.parse(fs.readFileSync(path.join(dir, "history.json"), "utf8"));
  const resumed = await retrainFinalLayer(inception, data, { ...quiet, epochs: 6, batchSize: 16, checkpointDir: dir, resume: true, learningRate: 1e-2 });
  assert.equal(resumed.history.epochs[0].epoch, 1);
  assert.equal(resumed.history.epochs.length, saved.epoch + (6 - saved.epoch));
  assert.equal(resumed.history.epochs[saved.epoch].epoch, saved.epoch + 1, "continues after the saved epoch");
  assert.ok(first.history.epochs.length === 3);
  await assert.rejects(retrainFinalLayer(inception, data, { resume: true }), /resume: true needs checkpointDir/);
});

test("evaluate, predict, save and load give one consistent classifier", async () => {
  const { inception, data } = await setup();
  const run: TrainingRun = await retrainFinalLayer(inception, data, { ...quiet, epochs: 15, batchSize: 16 });
  const evaluation = await run.evaluate();
  const test = data.files("test");
  assert.ok(evaluation.accuracy >= 0 && evaluation.accuracy <= 1);
  assert.equal(evaluation.confusion.flat().reduce((a, b) => a + b, 0), test.length);
  assert.equal(evaluation.misclassified.length, Math.round((1 - evaluation.accuracy) * test.length));
  assert.equal(evaluation.perClass.length, data.classes.length);
  assert.match(evaluation.toHTML(), /Confusion matrix/);
  const predictions = await run.predict(test.slice(0, 3));
  const dir = await run.save(path.join(scratch("saved"), "model"));
  const loaded = await loadClassifier(dir);
  assert.deepEqual(loaded.classes, data.classes);
  const again = await loaded.predict(test.slice(0, 3));
  for (let i = 0; i < 3; i++) {
    assert.equal(again[i].label, predictions[i].label);
    assert.ok(Math.abs(again[i].probability - predictions[i].probability) < 1e-4);
  }
  const reloadedEvaluation = await loaded.evaluate({ data });
  assert.equal(reloadedEvaluation.accuracy, evaluation.accuracy);
  await assert.rejects(run.predict("/nonexistent.jpg"), /no such image file/);
  assert.match(run.toText(), /retrain-final-layer/);
});

test("bad options give clear errors naming the option", async () => {
  const { inception, data } = await setup();
  await assert.rejects(retrainFinalLayer(inception, data, { epochs: 0 }), /epochs is 0/);
  await assert.rejects(retrainFinalLayer(inception, data, { dropout: 1.5 }), /dropout is 1.5/);
  await assert.rejects(retrainFinalLayer(inception, data, { layer: "mixed11" as never }), /layer: "mixed11" is not a cut point/);
  await assert.rejects(retrainFinalLayer(inception, data, { optimizer: "lbfgs" as never }), /optimizer: "lbfgs"/);
  await assert.rejects(fineTune(inception, data, { unfreezeFrom: "mixed9", layer: "mixed7" }), /unfreezeFrom: "mixed9" lies above the cut layer mixed7/);
});

test("compareModes runs all four on one split and reports accuracy, time, throughput and compute", async () => {
  const { inception, data } = await setup();
  const comparison = await compareModes(inception, data, { ...quiet, epochs: 1, batchSize: 16, warmupEpochs: 1, perMode: { "retrain-final-layer": { epochs: 10 } }, targetAccuracy: 0.5 });
  assert.deepEqual(comparison.rows.map((r) => [r.mode, r.unfreezeFrom]), [["retrain-final-layer", null], ["fine-tune", "mixed6"], ["fine-tune", "all"], ["from-scratch", null]]);
  assert.equal(comparison.run("fine-tune"), comparison.rows[2].run, "run(mode) is the full fine-tune");
  assert.equal(comparison.run("fine-tune", "mixed6"), comparison.rows[1].run);
  const [retrain, top, all, fromScratch] = comparison.rows;
  assert.equal(top.label, "fine-tune mixed6 to mixed7", "a label names both ends of what is trained");
  assert.equal(all.label, "fine-tune stem to mixed7");
  assert.ok(retrain.trainedParameters < top.trainedParameters && top.trainedParameters < all.trainedParameters);
  assert.ok(retrain.flopsPerImage < top.flopsPerImage && top.flopsPerImage < all.flopsPerImage, "a step costs more the more is trained");
  assert.ok(all.flopsPerImage <= fromScratch.flopsPerImage * 1.01);
  assert.ok(retrain.imagesPerSecond > 10 * all.imagesPerSecond, "training on cached features is far faster");
  for (const row of comparison.rows) assert.ok(row.testAccuracy >= 0 && row.testAccuracy <= 1 && row.seconds > 0);
  assert.notEqual(retrain.secondsToTarget, null);
  assert.match(comparison.toText(), /time to 50 % val/);
});

test("retraining with distortions computes training features per step; validation still uses the cache", async () => {
  const { inception, data } = await setup();
  const plain = await retrainFinalLayer(inception, data, { ...quiet, epochs: 1, batchSize: 16 });
  const run = await retrainFinalLayer(inception, data, { ...quiet, epochs: 1, batchSize: 16, distortions: { flipLeftRight: true, randomCrop: 10, randomBrightness: 10 } });
  const cachedImages = run.info.bottlenecks!.computed + run.info.bottlenecks!.cached;
  assert.equal(cachedImages, data.files("validation").length, "only validation images come from the cache");
  assert.notEqual(run.history.epochs[0].valAccuracy, null, "validated");
  assert.ok(run.history.epochs[0].flops > 100 * plain.history.epochs[0].flops, "each step runs the frozen network");
});

test("early stopping ends a run that stopped improving and keeps the best epoch's weights", async () => {
  const { inception, data } = await setup();
  // A learning rate this small leaves validation accuracy and loss where they are.
  const run = await retrainFinalLayer(inception, data, { ...quiet, epochs: 20, batchSize: 16, learningRate: 1e-9, earlyStopping: 2 });
  assert.equal(run.info.stoppedEarly, true);
  assert.equal(run.history.epochs.length, 3, "the first epoch, then two without improvement");
  assert.match(run.toText(), /stopped early/);
});
