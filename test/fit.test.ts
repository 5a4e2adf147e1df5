// Training further, cell by cell (run.fit): a run continues from its weights and optimizer state, its
// epochs and history go on, and nothing is recorded again for a structure it already ran.
import { test } from "node:test";
import * as assert from "node:assert/strict";
import { fineTune, loadInceptionV3, retrainFinalLayer, syntheticShapes, trainFromScratch } from "inception-lab";
import { graphStats } from "../kernel-helpers/runtime/graph";
import { MIN_LOSS_DELTA } from "../kernel-helpers/train/loop/callbacks";
import { scratch } from "./helpers";

process.env.INCEPTION_LAB_CACHE = scratch("fit-cache");

const quiet = { progress: false, liveChart: false, batchSize: 8 } as const;

async function setting() {
  const data = await syntheticShapes({ classes: 3, perClass: 16, imageSize: 64, seed: 4 });
  const inception = await loadInceptionV3({ weights: "bundled", inputSize: 75 });
  return { data, inception };
}

test("fit 2 epochs, then fit 2 more: the losses go on from where the first call ended, 4 epochs numbered 1-4, nothing recorded again", async () => {
  const { data, inception } = await setting();
  const run = await fineTune(inception, data, { ...quiet, epochs: 2, warmupEpochs: 0, unfreezeFrom: "mixed6", learningRate: 1e-3 });
  const first = run.history.epochs.map((e) => e.loss);
  const recorded = graphStats.recorded;
  const same = await run.fit({ epochs: 2 });
  assert.equal(same, run, "fit resolves to the run itself");
  assert.equal(graphStats.recorded, recorded, "the second call records nothing");
  assert.deepEqual(run.history.epochs.map((e) => e.epoch), [1, 2, 3, 4]);
  assert.ok(run.history.epochs.every((e) => e.phase === "fine-tune"));
  const [third] = run.history.epochs.slice(2).map((e) => e.loss);
  // A fresh start would begin near the first epoch's loss; a continuation goes on from the second's.
  assert.ok(third < first[0] && third < (first[0] + first[1]) / 2, `losses ${first} then ${third}`);
  assert.equal(run.info.calls, 2);
  const steps = run.history.steps.map((s) => s.step);
  assert.deepEqual(steps, steps.map((_, i) => i + 1), "steps numbered on too");
  run.dispose();
});

test("an interrupted run can be continued: epochs go on after the last finished one", async () => {
  const { data, inception } = await setting();
  const run = await fineTune(inception, data, {
    ...quiet,
    epochs: 3,
    warmupEpochs: 0,
    unfreezeFrom: "mixed6",
    learningRate: 1e-3,
    callbacks: { onEpochEnd: (record) => void (record.epoch === 1 && process.emit("SIGINT")) },
  });
  assert.equal(run.info.stopReason, "interrupted");
  const afterInterrupt = run.history.epochs.length;
  assert.ok(afterInterrupt >= 1 && afterInterrupt < 3, `${afterInterrupt} epochs before the interrupt took effect`);
  const recorded = graphStats.recorded;
  await run.fit({ epochs: 2 });
  assert.equal(graphStats.recorded, recorded, "nothing recorded again");
  assert.deepEqual(run.history.epochs.map((e) => e.epoch), Array.from({ length: afterInterrupt + 2 }, (_, i) => i + 1));
  assert.equal(run.info.stopReason, null);
  assert.notEqual(run.info.stopReason, "interrupted");
  const losses = run.history.epochs.map((e) => e.loss);
  assert.ok(losses[afterInterrupt] < losses[0], `the continuation starts below the first epoch: ${losses}`);
  run.dispose();
});

test("a retraining trains its head further on the features it has; fine-tune depth can change between calls, each structure recorded once", async () => {
  const { data, inception } = await setting();
  const retrained = await retrainFinalLayer(inception, data, { ...quiet, epochs: 3 });
  const features = retrained.info.bottlenecks!;
  await retrained.fit({ epochs: 3, learningRate: 3e-3 });
  assert.deepEqual(retrained.history.epochs.map((e) => e.epoch), [1, 2, 3, 4, 5, 6]);
  // The epoch keep-best holds across both calls: the highest validation accuracy, no tie with a clearly lower loss.
  const best = retrained.bestEpoch!;
  assert.equal(best.valAccuracy, retrained.bestValidationAccuracy);
  assert.ok(retrained.history.epochs.every((e) => e.valAccuracy! < best.valAccuracy! || e.valLoss! >= best.valLoss! - MIN_LOSS_DELTA), `epoch ${best.epoch}`);
  assert.deepEqual(retrained.info.bottlenecks, features, "no features computed or read again");
  assert.equal(retrained.history.steps[retrained.history.steps.length - 1].learningRate, 3e-3);
  await assert.rejects(retrained.fit({ epochs: 1, unfreezeFrom: "mixed6" }), /a retraining keeps its network frozen; fine-tune it with fineTune/);
  retrained.dispose();

  const tuned = await fineTune(inception, data, { ...quiet, epochs: 1, warmupEpochs: 1, unfreezeFrom: "mixed6" });
  let recorded = graphStats.recorded;
  await tuned.fit({ epochs: 1, unfreezeFrom: "mixed5" });
  // Its step, its frozen bottom, and validation from that bottom's output (the frozen-bottom cache).
  assert.equal(graphStats.recorded - recorded, 3, "a deeper fine-tune records its own graphs, once");
  assert.deepEqual(tuned.info.trainedBlocks, ["mixed5", "mixed6", "mixed7", "head"]);
  recorded = graphStats.recorded;
  await tuned.fit({ epochs: 1, unfreezeFrom: "mixed6" });
  await tuned.fit({ epochs: 1, unfreezeFrom: "mixed5" });
  assert.equal(graphStats.recorded, recorded, "going back and forth records nothing");
  assert.deepEqual(tuned.history.epochs.map((e) => `${e.epoch} ${e.phase}`), ["1 warm-up", "2 fine-tune", "3 fine-tune", "4 fine-tune", "5 fine-tune"]);
  tuned.dispose();
});

test("fit refuses what it cannot do, before any work", async () => {
  const { data, inception } = await setting();
  const run = await retrainFinalLayer(inception, data, { ...quiet, epochs: 1 });
  await assert.rejects(run.fit({ epochs: 1, learningrate: 0.1 } as never), /fit: there is no option "learningrate"\. Did you mean "learningRate"\?/);
  await assert.rejects(run.fit({} as never), /fit: give epochs/);
  await assert.rejects(run.fit({ epochs: 0 }), /epochs is 0/);
  run.dispose();
  await assert.rejects(run.fit({ epochs: 1 }), /disposed/);
});

test("fit goes on with the run's TensorBoard log and a time budget of its own; a run from scratch refuses a depth", async () => {
  const { data, inception } = await setting();
  const logdir = `${scratch("fit-logs")}/run-1`;
  const run = await retrainFinalLayer(inception, data, { ...quiet, epochs: 2, tensorboard: logdir, maxSeconds: 600 });
  await run.fit({ epochs: 2 });
  assert.deepEqual(run.history.epochs.map((e) => e.epoch), [1, 2, 3, 4], "fit with a TensorBoard log runs");
  assert.equal(run.info.stopReason, null, "the time budget counts this call only");
  run.dispose();
  const scratchRun = await trainFromScratch(inception, data, { ...quiet, epochs: 1 });
  await assert.rejects(scratchRun.fit({ epochs: 1, unfreezeFrom: "mixed6" }), /a run from scratch trains every layer/);
  scratchRun.dispose();
});
