// The learning-rate finder (lab/lr-finder.ts): one short ramp, a suggestion from its rule, and nothing of
// the caller's changed: network, runs, tensors.
import { test } from "node:test";
import * as assert from "node:assert/strict";
import { findLearningRate, fineTune, InterruptedError, lastRun, loadInceptionV3, syntheticShapes, tf } from "inception-lab";
import { smooth, valley } from "../kernel-helpers/lab/lr-finder";
import { graphStats } from "../kernel-helpers/runtime/graph";
import { scratch } from "./helpers";

process.env.INCEPTION_LAB_CACHE = scratch("lr-finder-cache");

test("the valley rule picks the falling stretch of a loss curve, past its middle; smoothing is fastai's", () => {
  // Flat, then falling from step 10 to step 40, then rising.
  const losses = Array.from({ length: 60 }, (_, i) => (i < 10 ? 2 : i <= 40 ? 2 - (i - 10) * 0.05 : 0.5 + (i - 40) * 0.2));
  const picked = valley(losses);
  assert.ok(picked > 20 && picked < 40, `picked step ${picked}`);
  const smoothed = smooth([1, 1, 1, 1]);
  assert.ok(smoothed.every((v) => Math.abs(v - 1) < 1e-12), "bias-corrected: a constant loss stays constant");
});

test("a fine-tune's finder ramps in one short run, suggests a rate on the ramp, and leaves the network, lastRun() and tensors as they were", async () => {
  const data = await syntheticShapes({ classes: 3, perClass: 16, imageSize: 64, seed: 8 });
  const inception = await loadInceptionV3({ weights: "bundled", inputSize: 75 });
  const before = inception.model.weights.map((w) => w.read().dataSync().slice());
  const previous = lastRun();
  const tensors = tf.memory().numTensors;
  const options = { unfreezeFrom: "mixed6" as const, batchSize: 8, warmupEpochs: 2 };
  const found = await findLearningRate(inception, data, { ...options, steps: 40 });
  assert.ok(found.learningRates.length <= 40 && found.learningRates.length >= 5);
  assert.ok(found.learningRates.every((r, i) => i === 0 || r > found.learningRates[i - 1]), "the rate rises every step");
  assert.ok(found.suggestion >= found.learningRates[0] && found.suggestion <= found.learningRates[found.learningRates.length - 1]);
  assert.match(found.toText(), /valley/);
  assert.ok(inception.model.weights.every((w, i) => tf.util.arraysEqual(w.read().dataSync(), before[i])), "the caller's network is unchanged");
  assert.equal(lastRun(), previous, "no run was made");
  assert.equal(tf.memory().numTensors, tensors, "the finder's copy, head and optimizer are freed");
  // The run it is for finds the finder's graphs: the rate is an input of the recorded step.
  const recorded = graphStats.recorded;
  const run = await fineTune(inception, data, { ...options, epochs: 1, learningRate: found.suggestion, progress: false, liveChart: false });
  assert.ok(graphStats.recorded - recorded <= 1, `recorded ${graphStats.recorded - recorded}: at most validation's graph, which the finder never runs`);
  run.dispose();
});

test("the ramp stops when the loss diverges; bad options are refused before any work", async () => {
  const data = await syntheticShapes({ classes: 3, perClass: 16, imageSize: 64, seed: 8 });
  const inception = await loadInceptionV3({ weights: "bundled", inputSize: 75 });
  const found = await findLearningRate(inception, data, { mode: "retrain-final-layer", startLearningRate: 1e-3, endLearningRate: 1e6, steps: 100, batchSize: 4, optimizer: "sgd" });
  assert.equal(found.stoppedBecause, "diverged");
  assert.ok(found.learningRates.length < 100);
  assert.match(found.explanation().text, new RegExp(`${found.learningRates.length} steps in [\\d.]+ s, stopped at [\\d.]+e[+-]\\d+, where the loss diverged\\.$`));
  await assert.rejects(findLearningRate(inception, data, { stpes: 10 } as never), /findLearningRate: there is no option "stpes"\. Did you mean "steps"\?/);
  await assert.rejects(findLearningRate(inception, data, { startLearningRate: 1, endLearningRate: 0.1 }), /the ramp must rise/);
});

test("a data set with no training image is refused before the finder copies anything", async () => {
  const data = await syntheticShapes({ classes: 2, perClass: 2, imageSize: 48, folderOptions: { testPercent: 49.9, validationPercent: 50 } });
  const inception = await loadInceptionV3({ weights: "bundled", inputSize: 75 });
  const tensors = tf.memory().numTensors;
  await assert.rejects(findLearningRate(inception, data), /the training split is empty/);
  assert.equal(tf.memory().numTensors, tensors);
});

test("every mode works on what the finder owns: from scratch on a new random network, the caller's network untouched and nothing leaked", async () => {
  const data = await syntheticShapes({ classes: 3, perClass: 16, imageSize: 64, seed: 8 });
  const inception = await loadInceptionV3({ weights: "bundled", inputSize: 75 });
  const before = inception.model.weights.map((w) => w.read().dataSync().slice());
  const tensors = tf.memory().numTensors;
  const found = await findLearningRate(inception, data, { mode: "from-scratch", steps: 10, batchSize: 8, layer: "mixed2", progress: false });
  assert.equal(found.mode, "from-scratch");
  assert.ok(found.learningRates.length >= 5);
  assert.equal(tf.memory().numTensors, tensors, "the random network, its head and optimizer are freed");
  assert.ok(inception.model.weights.every((w, i) => tf.util.arraysEqual(w.read().dataSync(), before[i])), "the caller's network is unchanged");
  const features = await inception.features(data.files("test").slice(0, 1));
  assert.equal(features.shape[0], 1, "and still works");
  features.dispose();
});

test("the finder's bad options name themselves, before any work, and leak nothing; an early interrupt is an InterruptedError", async () => {
  const data = await syntheticShapes({ classes: 3, perClass: 16, imageSize: 64, seed: 8 });
  const inception = await loadInceptionV3({ weights: "bundled", inputSize: 75 });
  const tensors = tf.memory().numTensors;
  await assert.rejects(findLearningRate(inception, data, { mode: "bogus" as never }), /^OptionError: mode: "bogus" is not one of retrain-final-layer, fine-tune, from-scratch/);
  await assert.rejects(findLearningRate(inception, data, { divergeFactor: 0 }), /^OptionError: divergeFactor is 0: use a number above 1/);
  await assert.rejects(findLearningRate(inception, data, { endLearningRate: Infinity }), /^OptionError: endLearningRate is Infinity/);
  await assert.rejects(findLearningRate(inception, data, { precision: null as never }), /^OptionError: precision: null is not one of/);
  assert.equal(tf.memory().numTensors, tensors);
  const interrupted = findLearningRate(inception, data, { mode: "retrain-final-layer", batchSize: 4, steps: 50, progress: false, callbacks: { onBatchEnd: (r) => void (r.step === 2 && process.emit("SIGINT")) } });
  await assert.rejects(interrupted, (error: Error) => error instanceof InterruptedError && /interrupted after \d steps of the ramp, too few to suggest a rate/.test(error.message));
  assert.equal(tf.memory().numTensors, tensors, "an interrupted finder frees what it made too");
});
