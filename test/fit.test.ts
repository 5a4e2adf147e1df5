// Training further, cell by cell (run.fit): a run continues from its weights and optimizer state, its
// epochs and history go on, and nothing is recorded again for a structure it already ran.
import { test } from "node:test";
import * as assert from "node:assert/strict";
import { cosineDecay, fineTune, loadInceptionV3, retrainFinalLayer, syntheticShapes, tf, trainFromScratch } from "inception-lab";
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

test("callbacks belong to the call that gets them: a schedule and tfjs' EarlyStopping of the first call do not govern fit, whose rate is its own", async () => {
  const { data, inception } = await setting();
  let begins = 0;
  const counter = { onTrainBegin: () => void begins++ };
  const run = await retrainFinalLayer(inception, data, { ...quiet, epochs: 3, learningRate: 1e-3, callbacks: [cosineDecay(), tf.callbacks.earlyStopping({ monitor: "val_acc", patience: 1 }), counter] });
  const first = run.history.steps.length;
  await run.fit({ epochs: 4, learningRate: 0.05 });
  const later = run.history.steps.slice(first);
  assert.ok(later.length > 0 && later.every((s) => s.learningRate === 0.05), `fit's steps ran at its own rate: ${[...new Set(later.map((s) => s.learningRate))]}`);
  assert.equal(run.history.epochs.length, 3 + 4, "the first call's EarlyStopping did not cut fit short");
  assert.equal(begins, 1, "the first call's callback ran in the first call only");
  assert.equal(run.info.options.learningRate, 0.05);
  // A schedule given to fit starts from fit's own rate.
  const decay = cosineDecay();
  await run.fit({ epochs: 2, learningRate: 0.02, callbacks: decay });
  const scheduled = run.history.steps.slice(first + later.length);
  assert.equal(scheduled[0].learningRate, 0.02);
  assert.ok(scheduled[scheduled.length - 1].learningRate < 0.02);
  run.dispose();
});

test("one call at a time: a second fit while one trains is refused, and the first trains its epochs, numbered on", async () => {
  const { data, inception } = await setting();
  const run = await retrainFinalLayer(inception, data, { ...quiet, epochs: 1 });
  const first = run.fit({ epochs: 2 });
  await assert.rejects(run.fit({ epochs: 2 }), /fit: this run is training now \(an earlier call has not finished\): await it/);
  await first;
  assert.deepEqual(run.history.epochs.map((e) => e.epoch), [1, 2, 3]);
  assert.equal(run.info.calls, 2);
  run.dispose();
});

test("fit refuses a null depth, and options a run keeps, naming why; a call whose hook threw reads as failed and counts", async () => {
  const { data, inception } = await setting();
  const tuned = await fineTune(inception, data, { ...quiet, epochs: 1, warmupEpochs: 0, unfreezeFrom: "mixed6" });
  const trainable = tuned.info.trainableParameters;
  await assert.rejects(tuned.fit({ epochs: 1, unfreezeFrom: null as never }), /fit: unfreezeFrom is null, which is no depth/);
  assert.equal(tuned.info.trainableParameters, trainable, "nothing changed");
  assert.equal(tuned.info.options.unfreezeFrom, "mixed6");
  await assert.rejects(tuned.fit({ epochs: 1, layer: "mixed5" } as never), /fit: layer cannot change between calls \(a run keeps its cut layer\)/);
  await assert.rejects(
    tuned.fit({ epochs: 1, callbacks: { onEpochEnd: () => { throw new Error("my hook broke"); } } }),
    /my hook broke/,
  );
  assert.equal(tuned.info.calls, 2, "the failed call counts");
  assert.equal(tuned.info.stopReason, "failed");
  assert.match(tuned.toText(), /failed: my hook broke/);
  tuned.dispose();
});
