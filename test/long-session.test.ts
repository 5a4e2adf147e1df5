// A notebook session trains again and again: re-run cells drop their old runs. What a dropped run held (a
// whole network copy per fine-tune) must be freed, so tensors and memory stay flat however long the session.
import { test } from "node:test";
import * as assert from "node:assert/strict";
import * as v8 from "v8";
import * as vm from "vm";
import { fineTune, lastRun, loadInceptionV3, retrainFinalLayer, syntheticShapes, tf } from "inception-lab";
import type { TrainingRun, TrainOptions } from "inception-lab";
import { scratch } from "./helpers";

process.env.INCEPTION_LAB_CACHE = scratch("long-session-cache");
v8.setFlagsFromString("--expose_gc");
const gc = vm.runInNewContext("gc") as () => void;

/** Collects garbage and lets the finalizers that it queued run. */
async function collect(): Promise<void> {
  for (let i = 0; i < 3; i++) {
    gc();
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

const rssMB = () => process.memoryUsage.rss() / 2 ** 20;

test("10 training calls in one process, modes and learning rates alternating: tensors flat, RSS within 15 % once warm", async () => {
  const data = await syntheticShapes({ classes: 3, perClass: 10, imageSize: 64 });
  const inception = await loadInceptionV3({ weights: "bundled", inputSize: 75 });
  const kinds = [
    ({ warmupEpochs: _, ...o }: TrainOptions) => retrainFinalLayer(inception, data, o),
    (o: TrainOptions) => fineTune(inception, data, { ...o, unfreezeFrom: "mixed5" }),
    (o: TrainOptions) => fineTune(inception, data, o),
  ];
  const rates = [1e-3, 3e-3, 1e-4, 3e-4];
  const after: { tensors: number; rss: number }[] = [];
  for (let i = 0; i < 10; i++) {
    // Each run replaces the previous one, as a re-run cell does; lastRun() keeps the newest.
    let run: TrainingRun | null = await kinds[i % 3]({ epochs: 1, warmupEpochs: 1, learningRate: rates[i % 4], batchSize: 8, progress: false, liveChart: false });
    assert.ok(run.history.epochs.length >= 1);
    run = null;
    await collect();
    after.push({ tensors: tf.memory().numTensors, rss: rssMB() });
  }
  const line = after.map((a, i) => `${i}: ${a.tensors} tensors, ${a.rss.toFixed(0)} MB`).join("; ");
  // The same kind of call leaves the same number of tensors: the network, and the newest run.
  for (let i = 3; i < 10; i++) assert.equal(after[i].tensors, after[i - 3].tensors, line);
  // Measured: +40 MB over the 15 runs after the first three (1,130 -> 1,170 MB at 75 px).
  assert.ok(after[9].rss <= after[2].rss * 1.15, `RSS grew past 15 % once warm: ${line}`);
});

test("run.dispose() frees the run's network copy at once; using it afterwards says so", async () => {
  const data = await syntheticShapes({ classes: 3, perClass: 10, imageSize: 64 });
  const inception = await loadInceptionV3({ weights: "bundled", inputSize: 75 });
  // The previous test's newest run goes first (lastRun() would drop it during this test, and its finalizer free it then).
  lastRun()?.dispose();
  await collect();
  const before = tf.memory().numTensors;
  const tuned = await fineTune(inception, data, { epochs: 1, warmupEpochs: 0, unfreezeFrom: "mixed6", batchSize: 8, progress: false, liveChart: false });
  assert.ok(tf.memory().numTensors >= before + inception.model.weights.length, "a fine-tune holds its own network");
  tuned.dispose();
  assert.equal(tf.memory().numTensors, before);
  await assert.rejects(tuned.predict(data.files("test")[0]), /disposed/);
  const retrained = await retrainFinalLayer(inception, data, { epochs: 1, progress: false, liveChart: false });
  retrained.dispose();
  assert.equal(tf.memory().numTensors, before, "a retraining frees its head and leaves the caller's network");
  const features = await inception.features(data.files("test").slice(0, 1), { layer: "mixed7" });
  assert.equal(features.shape[0], 1, "the caller's network still works");
  features.dispose();
});
