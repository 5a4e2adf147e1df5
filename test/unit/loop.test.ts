// The training loop's rules, each on its own, with a fake phase: a model of two weights (a 1x1 dense
// layer), a step that moves them by a known amount, and scripted validation results. Milliseconds, no Inception.
import { test } from "node:test";
import * as assert from "node:assert/strict";
import * as fs from "fs";
import * as path from "path";
import { tf } from "inception-lab";
import { forLoop } from "../../kernel-helpers/train/loop/callback-adapter";
import { EarlyStopping, KeepBestWeights, StopOnInterrupt, StopOnNaN, TimeBudget } from "../../kernel-helpers/train/loop/callbacks";
import { Checkpoint, readCheckpoint, type RunIdentity } from "../../kernel-helpers/train/classifier/checkpoint";
import type { ClassifierInfo } from "../../kernel-helpers/train/classifier/classifier";
import { type Callback, type EpochRecord, type Phase, TrainingLoop } from "../../kernel-helpers/train/loop/loop";
import { Optimizer } from "../../kernel-helpers/train/loop/optimizers";
import { cosineDecay, stepDecay } from "../../kernel-helpers/train/loop/schedules";
import { TrainingStep } from "../../kernel-helpers/train/loop/step";
import { listenForInterrupt } from "../../kernel-helpers/util/interrupt";
import { scratch } from "../helpers";

/** A dense 1 -> 1 layer: two weights, kernel and bias. */
function twoWeights() {
  const input = tf.input({ shape: [1] });
  const model = tf.model({ inputs: input, outputs: tf.layers.dense({ units: 1, kernelInitializer: "zeros", name: "d" }).apply(input) as tf.SymbolicTensor });
  return { model, variables: model.weights.map((w) => w.read() as tf.Variable) };
}

interface Script {
  epochs: number;
  stepsPerEpoch?: number;
  /** Validation accuracy after each epoch of this phase. */
  accuracies: number[];
  /** Loss of a step (default 1). */
  loss?: (step: number) => number;
  name?: string;
  delayMs?: number;
}

/** A phase whose step adds 1 to both weights and whose validation follows the script. */
function fakePhase(variables: tf.Variable[], script: Script): Phase {
  let epoch = 0;
  let steps = 0;
  return {
    name: script.name ?? "fake",
    epochs: script.epochs,
    stepsPerEpoch: script.stepsPerEpoch ?? 2,
    flopsPerImage: 1,
    learningRate: 0.1,
    async *batches() {
      epoch++;
      for (let i = 0; i < (script.stepsPerEpoch ?? 2); i++) yield { x: tf.zeros([4, 1]), y: tf.zeros([4]) };
    },
    train() {
      if (script.delayMs) {
        const until = performance.now() + script.delayMs;
        while (performance.now() < until);
      }
      tf.tidy(() => variables.forEach((v) => v.assign(tf.add(v, 1))));
      steps++;
      return { loss: script.loss?.(steps) ?? 1, accuracy: 0.5 };
    },
    async validate() {
      return { loss: 1, accuracy: script.accuracies[epoch - 1] };
    },
    dispose() {},
  };
}

const values = (variables: tf.Variable[]) => variables.map((v) => v.dataSync()[0]);
/** What a checkpoint writes as its labels.json. */
const labels: ClassifierInfo = { classes: ["a", "b"], inputSize: 75, mode: "test", layer: "mixed7", weights: "test" };

test("keep-best restores the weights of the best epoch", async () => {
  const { variables } = twoWeights();
  const loop = new TrainingLoop([fakePhase(variables, { epochs: 4, accuracies: [0.5, 0.9, 0.7, 0.8] })], [new KeepBestWeights(() => variables)]);
  await loop.run();
  assert.equal(loop.history.epochs.length, 4);
  assert.deepEqual(values(variables), [4, 4], "two steps per epoch: the weights after epoch 2");
  assert.deepEqual(loop.warnings, []);

  // The best epoch in an earlier phase: its weights come back, and the run says the last phase was undone.
  const second = twoWeights();
  const phases = [fakePhase(second.variables, { name: "warm-up", epochs: 2, accuracies: [0.6, 0.9] }), fakePhase(second.variables, { name: "fine-tune", epochs: 2, accuracies: [0.7, 0.8] })];
  const undone = new TrainingLoop(phases, [new KeepBestWeights(() => second.variables)]);
  await undone.run();
  assert.deepEqual(values(second.variables), [4, 4]);
  assert.equal(undone.warnings.length, 1);
  assert.match(undone.warnings[0], /no epoch of the fine-tune phase beat epoch 2 \(warm-up, validation accuracy 0\.900\): the weights of that epoch are kept, so what the fine-tune phase trained is undone/);
});

test("early stopping ends a phase after `patience` epochs without improvement; the next phase still runs", async () => {
  const { variables } = twoWeights();
  const phases = [fakePhase(variables, { name: "first", epochs: 10, accuracies: [0.5, 0.6, 0.6, 0.55, 0.9] }), fakePhase(variables, { name: "second", epochs: 2, accuracies: [0.5, 0.5] })];
  const loop = new TrainingLoop(phases, [new EarlyStopping(2)]);
  await loop.run();
  assert.deepEqual(loop.history.epochs.map((e) => `${e.phase} ${e.epoch}`), ["first 1", "first 2", "first 3", "first 4", "second 11", "second 12"]);
  assert.deepEqual(loop.endedPhases, [{ phase: "first", reason: "stopped early" }]);
  assert.equal(loop.stopReason, null);
});

test("a continued run (run.fit): keep-best and early stopping measure against the best epoch of earlier calls; epochs go on", async () => {
  const { variables } = twoWeights();
  const first = new TrainingLoop([fakePhase(variables, { epochs: 3, accuracies: [0.5, 0.9, 0.6] })], [new KeepBestWeights(() => variables)]);
  await first.run();
  assert.deepEqual(values(variables), [4, 4], "the first call keeps epoch 2");
  // The second call beats the first call's best at its own second epoch (epoch 5): those weights stay.
  const second = new TrainingLoop([fakePhase(variables, { epochs: 3, accuracies: [0.7, 0.95, 0.8] })], [new KeepBestWeights(() => variables)], { history: first.history, continued: true });
  await second.run();
  assert.deepEqual(second.history.epochs.map((e) => e.epoch), [1, 2, 3, 4, 5, 6]);
  assert.deepEqual(values(variables), [8, 8], "from epoch 2's weights, two epochs of two steps");
  assert.deepEqual(second.warnings, []);
  // A third call that beats nothing ends as it began and says so; early stopping counts its patience from
  // this call's start but against epoch 5's 0.95, so it stops after 2 epochs although one later would win.
  const third = new TrainingLoop(
    [fakePhase(variables, { epochs: 10, accuracies: [0.6, 0.7, 0.99] })],
    [new KeepBestWeights(() => variables), new EarlyStopping(2)],
    { history: second.history, continued: true },
  );
  await third.run();
  assert.deepEqual(third.history.epochs.slice(6).map((e) => e.epoch), [7, 8]);
  assert.deepEqual(values(variables), [8, 8], "epoch 5's weights again");
  assert.equal(third.warnings.length, 1);
  assert.match(third.warnings[0], /no epoch of this call beat epoch 5 \(validation accuracy 0\.950\), from before it: its weights are kept, so what this call trained is undone/);
});

test("a checkpoint is written on every better epoch only, and holds that epoch's weights", async () => {
  const { model, variables } = twoWeights();
  const dir = path.join(scratch("loop-checkpoint"), "run");
  const identity: RunIdentity = { mode: "fine-tune", weights: "w", layer: "mixed7", inputSize: 75, classes: ["a", "b"], trainedBlocks: ["head"] };
  const checkpoint = new Checkpoint(dir, model, identity, { ...labels, classes: ["a", "b"] });
  const written: number[] = [];
  const watch: Callback = { onEpochEnd: (record: EpochRecord) => void (fs.existsSync(path.join(dir, "history.json")) && written.push(JSON.parse(fs.readFileSync(path.join(dir, "history.json"), "utf8")).epoch)) };
  await new TrainingLoop([fakePhase(variables, { epochs: 4, accuracies: [0.5, 0.7, 0.6, 0.7] })], [checkpoint, watch]).run();
  assert.equal(checkpoint.written, 2);
  assert.deepEqual(written, [1, 2, 2, 2]);
  const again = twoWeights();
  const history = await readCheckpoint(dir, identity, again.model, new Set(again.model.weights));
  assert.deepEqual(values(again.variables), [4, 4]);
  assert.deepEqual(history.epochs.map((e) => e.epoch), [1, 2]);
  assert.deepEqual(fs.readdirSync(path.dirname(dir)), ["run"], "no temporary folders left");
});

test("resume continues after the checkpoint's epoch, across phases, and never overwrites a better checkpoint", async () => {
  const dir = path.join(scratch("loop-resume"), "run");
  const identity: RunIdentity = { mode: "fine-tune", weights: "w", layer: "mixed7", inputSize: 75, classes: ["a", "b"], trainedBlocks: ["head"] };
  const phases = (variables: tf.Variable[], accuracies: number[][]) => [fakePhase(variables, { name: "warm-up", epochs: 2, accuracies: accuracies[0] }), fakePhase(variables, { name: "fine-tune", epochs: 3, accuracies: accuracies[1] })];
  const first = twoWeights();
  // The run is stopped (as by an interrupt) after epoch 3, the first fine-tune epoch, its best.
  const stopAfter3: Callback = { onEpochEnd: (record: EpochRecord, loop: TrainingLoop) => void (record.epoch === 3 && loop.stop("interrupted")) };
  await new TrainingLoop(phases(first.variables, [[0.5, 0.6], [0.8, 0, 0]]), [new KeepBestWeights(() => first.variables), new Checkpoint(dir, first.model, identity, labels), stopAfter3]).run();

  const second = twoWeights();
  const resumed = await readCheckpoint(dir, identity, second.model, new Set(second.model.weights));
  assert.deepEqual(values(second.variables), [6, 6], "the weights of epoch 3");
  const checkpoint = new Checkpoint(dir, second.model, identity, labels);
  const loop = new TrainingLoop(phases(second.variables, [[0, 0], [0, 0.7, 0.6]]), [new KeepBestWeights(() => second.variables), checkpoint], { history: resumed });
  await loop.run();
  assert.deepEqual(loop.history.epochs.map((e) => `${e.phase} ${e.epoch}`), ["warm-up 1", "warm-up 2", "fine-tune 3", "fine-tune 4", "fine-tune 5"]);
  assert.equal(checkpoint.written, 0, "epochs 4 and 5 (0.7, 0.6) do not beat the resumed best (0.8)");
  assert.equal(JSON.parse(fs.readFileSync(path.join(dir, "history.json"), "utf8")).epoch, 3);
  assert.deepEqual(values(second.variables), [6, 6], "the best weights are those of the resumed checkpoint");
});

test("the time budget stops at a step boundary", async () => {
  const { variables } = twoWeights();
  const loop = new TrainingLoop([fakePhase(variables, { epochs: 100, stepsPerEpoch: 5, accuracies: new Array(100).fill(0.5), delayMs: 5 })], [new TimeBudget(0.06)]);
  await loop.run();
  assert.equal(loop.stopReason, "time budget reached");
  // It stops after the first step that ends past the budget: the step before it ended within it.
  const steps = loop.history.steps;
  assert.ok(steps.length >= 2 && steps.length < 500, `${steps.length} steps`);
  assert.ok(steps[steps.length - 1].seconds > 0.06 && steps[steps.length - 2].seconds <= 0.06, `last steps ended at ${steps.slice(-2).map((s) => s.seconds)} s`);
});

test("an interrupt stops at the next step boundary, without validating the unfinished epoch", async () => {
  const { variables } = twoWeights();
  const flag = listenForInterrupt();
  const raise: Callback = { onBatchEnd: (record: { step: number }) => void (record.step === 5 && process.emit("SIGINT")) };
  const loop = new TrainingLoop([fakePhase(variables, { epochs: 10, stepsPerEpoch: 2, accuracies: new Array(10).fill(0.5) })], [raise, new StopOnInterrupt(flag)]);
  try {
    await loop.run();
  } finally {
    flag.release();
  }
  assert.equal(loop.stopReason, "interrupted");
  assert.equal(loop.history.steps.length, 5);
  assert.equal(loop.history.epochs.length, 2);
});

test("a callback of the user's that never returns is given up at an interrupt: the run ends with the best weights", async () => {
  const { model, variables } = twoWeights();
  const flag = listenForInterrupt();
  const hung: Callback = {
    onEpochEnd: (record) => {
      if (record.epoch < 3) return;
      setTimeout(() => process.emit("SIGINT"), 20);
      return new Promise(() => {});
    },
  };
  const loop = new TrainingLoop([fakePhase(variables, { epochs: 6, accuracies: [0.5, 0.9, 0.6, 0.7, 0.8, 0.9] })], [new KeepBestWeights(() => variables), new StopOnInterrupt(flag), forLoop(hung, flag, model)]);
  const started = performance.now();
  try {
    await loop.run();
  } finally {
    flag.release();
  }
  assert.ok(performance.now() - started < 5000, `ended ${(performance.now() - started).toFixed(0)} ms after the start`);
  assert.equal(loop.stopReason, "interrupted");
  assert.equal(loop.history.epochs.length, 3);
  assert.deepEqual(values(variables), [4, 4], "the weights of epoch 2, the best");
  assert.deepEqual(loop.warnings, ["interrupted while your callback's onEpochEnd was still running: the run ended without waiting for it."]);
});

test("tfjs callbacks through the adapter: setParams and setModel first, 0-based epochs and batches, numbers in logs, model.stopTraining ends the run", async () => {
  const { model, variables } = twoWeights();
  const seen: { params?: Record<string, unknown>; model?: unknown; epochs: [number, Record<string, number>][]; batches: number[] } = { epochs: [], batches: [] };
  // A subclass of tf.Callback, as a tfjs user writes one: it stops training through its model.
  class StopAfterThird extends tf.Callback {
    override setParams(params: Record<string, never>) {
      super.setParams(params);
      seen.params = { ...params };
    }
    override async onTrainBegin() {
      seen.model = this.model;
    }
    override async onBatchEnd(batch: number) {
      seen.batches.push(batch);
    }
    override async onEpochEnd(epoch: number, logs?: Record<string, number>) {
      seen.epochs.push([epoch, { ...logs }]);
      if (epoch === 2) this.model.stopTraining = true;
    }
  }
  const flag = listenForInterrupt();
  const loop = new TrainingLoop([fakePhase(variables, { epochs: 6, stepsPerEpoch: 3, accuracies: [0.1, 0.2, 0.3, 0.4, 0.5, 0.6] })], [forLoop(new StopAfterThird(), flag, model, { samples: 12, batchSize: 4, doValidation: true })]);
  try {
    await loop.run();
  } finally {
    flag.release();
  }
  assert.equal(seen.model, model);
  assert.deepEqual(seen.params, { epochs: 6, initialEpoch: 0, steps: 3, verbose: 0, samples: 12, batchSize: 4, doValidation: true, metrics: ["loss", "acc", "val_loss", "val_acc"] });
  assert.deepEqual(seen.batches, [0, 1, 2, 0, 1, 2, 0, 1, 2]);
  assert.deepEqual(seen.epochs, [0, 1, 2].map((epoch) => [epoch, { loss: 1, acc: 0.5, accuracy: 0.5, val_loss: 1, val_acc: (epoch + 1) / 10, val_accuracy: (epoch + 1) / 10 }]));
  assert.equal(loop.history.epochs.length, 3);
  assert.deepEqual([loop.stopReason, loop.stopMessage], ["stopped by a callback", "stopped by StopAfterThird (model.stopTraining)"]);
});

test("a loss that is not a number stops the run, and weights go back to the last good ones", async () => {
  const { variables } = twoWeights();
  const loop = new TrainingLoop([fakePhase(variables, { epochs: 10, accuracies: new Array(10).fill(0.5), loss: (step) => (step === 3 ? NaN : 1) })], [new StopOnNaN(), new KeepBestWeights(() => variables)]);
  await loop.run();
  assert.equal(loop.stopReason, "loss not finite");
  assert.match(loop.stopMessage!, /loss became NaN at step 3/);
  assert.deepEqual(values(variables), [2, 2], "the weights after epoch 1, the only complete one");
  const early = twoWeights();
  tf.tidy(() => early.variables.forEach((v) => v.assign(tf.fill(v.shape, 7))));
  const poisoned = fakePhase(early.variables, { epochs: 2, accuracies: [0.5, 0.5], loss: () => NaN });
  const train = poisoned.train;
  poisoned.train = (batch) => {
    const result = train(batch);
    tf.tidy(() => early.variables.forEach((v) => v.assign(tf.fill(v.shape, NaN))));
    return result;
  };
  await new TrainingLoop([poisoned], [new StopOnNaN(), new KeepBestWeights(() => early.variables)]).run();
  assert.deepEqual(values(early.variables), [7, 7], "no epoch finished: the weights from before training come back");
});

test("a callback of the user's can stop training, and every hook is called in order", async () => {
  const { variables } = twoWeights();
  const calls: string[] = [];
  const mine: Callback = {
    onTrainBegin: () => calls.push("train"),
    onEpochBegin: (epoch) => calls.push(`epoch ${epoch}`),
    onBatchBegin: (step) => calls.push(`step ${step}`),
    onBatchEnd: (record) => calls.push(`end ${record.step}`),
    onEpochEnd: (record, loop) => {
      calls.push(`epoch end ${record.epoch}`);
      if (record.epoch === 2) loop.stop("enough");
    },
    onTrainEnd: () => calls.push("done"),
  };
  const loop = new TrainingLoop([fakePhase(variables, { epochs: 5, stepsPerEpoch: 1, accuracies: [0.1, 0.2, 0.3, 0.4, 0.5] })], [mine]);
  await loop.run();
  assert.deepEqual(calls, ["train", "epoch 1", "step 1", "end 1", "epoch end 1", "epoch 2", "step 2", "end 2", "epoch end 2", "done"]);
  assert.deepEqual([loop.stopReason, loop.stopMessage], ["stopped by a callback", "enough"]);
});

test("a learning-rate schedule is one callback: cosine decay changes a step recorded as a graph without recording it again", async () => {
  const { model, variables } = twoWeights();
  const optimizer = new Optimizer("sgd", variables, 0.1);
  // loss = mean(model(1)) = kernel + bias: each gradient is 1, so each weight falls by the step's learning rate.
  const step = new TrainingStep((x) => tf.concat([model.apply(x) as tf.Tensor2D, tf.zeros([x.shape[0], 1])], 1) as tf.Tensor2D, optimizer, { classes: 2 });
  const ones = tf.ones([4, 1]);
  const labels = tf.zeros([4], "int32") as tf.Tensor1D;
  const before: number[][] = [];
  const phase: Phase = {
    name: "cosine",
    epochs: 3,
    stepsPerEpoch: 4,
    flopsPerImage: 1,
    get learningRate() {
      return optimizer.learningRate;
    },
    set learningRate(value: number) {
      optimizer.learningRate = value;
    },
    async *batches() {
      for (let i = 0; i < 4; i++) yield { x: ones.clone(), y: labels.clone() };
    },
    train: (batch) => {
      before.push(values(variables));
      return step.run(batch.x as tf.Tensor, batch.y as tf.Tensor1D);
    },
    validate: async () => null,
    dispose: () => step.dispose(),
  };
  const tensorsBefore = tf.memory().numTensors;
  const loop = new TrainingLoop([phase], [cosineDecay()]);
  await loop.run();
  const rates = loop.history.steps.map((s) => s.learningRate);
  const expected = Array.from({ length: 12 }, (_, i) => 0.1 * 0.5 * (1 + Math.cos((Math.PI * i) / 11)));
  rates.forEach((rate, i) => assert.ok(Math.abs(rate - expected[i]) < 1e-9, `step ${i + 1}: ${rate} vs ${expected[i]}`));
  // The graph used each step's rate: replay the same SGD in plain numbers. With x = 1 and label 0, the
  // logits are [k + b, 0] and dL/dk = dL/db = p0 - 1, where p0 = sigmoid(k + b).
  let [k, b] = [0, 0];
  before.forEach((weights, i) => {
    assert.ok(Math.abs(weights[0] - k) < 1e-5 && Math.abs(weights[1] - b) < 1e-5, `before step ${i + 1}: [${weights}] vs [${k}, ${b}]`);
    const gradient = 1 / (1 + Math.exp(-(k + b))) - 1;
    [k, b] = [k - rates[i] * gradient, b - rates[i] * gradient];
  });
  assert.ok(Math.abs(values(variables)[0] - k) < 1e-5, "after the last step");
  assert.deepEqual(step.notCompiled, [], "the step ran as a graph");
  assert.ok(tf.memory().numTensors - tensorsBefore <= 0, `tensors left: ${tf.memory().numTensors - tensorsBefore}`);
  assert.deepEqual(
    [1, 2, 3, 4].map((epoch) => stepDecay({ every: 2, factor: 0.5 }).schedule({ step: 1, steps: 1, epoch, epochs: 4 }, 1)),
    [1, 1, 0.5, 0.5],
  );
});

test("tensor count stays flat across epochs of the loop", async () => {
  const { variables } = twoWeights();
  const counts: number[] = [];
  await new TrainingLoop([fakePhase(variables, { epochs: 4, accuracies: [0.5, 0.6, 0.7, 0.8] })], [new KeepBestWeights(() => variables), { onEpochEnd: () => counts.push(tf.memory().numTensors) }]).run();
  assert.equal(counts[3], counts[1], `tensors per epoch: ${counts.join(", ")}`);
});
