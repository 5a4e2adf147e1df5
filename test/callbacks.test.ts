// Callbacks as users bring them, on small real runs (bundled weights at 75 px, three shapes): Keras'
// (epoch, logs) through tfjs' CustomCallback, tfjs' own EarlyStopping, the mistakes refused before any
// work (a misspelt hook, a Keras-style plain object), and a callback that never returns: an interrupt
// ends the run; in a process of its own, a second Ctrl-C ends the process.
import { test } from "node:test";
import * as assert from "node:assert/strict";
import * as fs from "fs";
import * as path from "path";
import { spawn } from "child_process";
import { fineTune, lastRun, loadInceptionV3, retrainFinalLayer, syntheticShapes, tf } from "inception-lab";
import { resolve } from "../kernel-helpers/train/modes/options";
import { root, scratch } from "./helpers";

process.env.INCEPTION_LAB_CACHE = scratch("callbacks-cache");
const quiet = { progress: false, liveChart: false };
const dataOptions = { classes: 3, perClass: 8, imageSize: 64, seed: 5, folderOptions: { validationPercent: 25, testPercent: 0 } };

let shared: Promise<{ inception: Awaited<ReturnType<typeof loadInceptionV3>>; data: Awaited<ReturnType<typeof syntheticShapes>> }> | null = null;
const setup = () =>
  (shared ??= (async () => ({
    inception: await loadInceptionV3({ weights: "bundled", inputSize: 75 }),
    data: await syntheticShapes({ ...dataOptions, dir: path.join(scratch("callbacks-data"), "set") }),
  }))());

test("tfjs' CustomCallback gets Keras' calls: 0-based epochs and batches, logs with the run's own numbers", async () => {
  const { inception, data } = await setup();
  const seen = { began: 0, ended: 0, epochs: [] as [number, tf.Logs][], batches: [] as [number, tf.Logs][] };
  const custom = new tf.CustomCallback({
    onTrainBegin: async () => void seen.began++,
    onEpochEnd: async (epoch, logs) => void seen.epochs.push([epoch, { ...logs }]),
    onBatchEnd: async (batch, logs) => void seen.batches.push([batch, { ...logs }]),
    onTrainEnd: async () => void seen.ended++,
  });
  const run = await retrainFinalLayer(inception, data, { ...quiet, epochs: 3, batchSize: 8, cacheDir: scratch("callbacks-custom"), callbacks: custom });
  assert.deepEqual([seen.began, seen.ended], [1, 1]);
  assert.deepEqual(
    seen.epochs,
    run.history.epochs.map((e, i) => [i, { loss: e.loss, acc: e.accuracy, accuracy: e.accuracy, val_loss: e.valLoss, val_acc: e.valAccuracy, val_accuracy: e.valAccuracy }]),
  );
  assert.ok(seen.epochs.every(([, logs]) => Object.values(logs).every((v) => typeof v === "number" && Number.isFinite(v))), "every log a finite number");
  const perEpoch = run.history.steps.length / 3;
  assert.deepEqual(
    seen.batches.map(([batch, logs]) => [batch, logs.loss, logs.acc]),
    run.history.steps.map((s, i) => [i % perEpoch, s.loss, s.accuracy]),
  );
  const sizes = seen.batches.slice(0, perEpoch).reduce((sum, [, logs]) => sum + logs.size, 0);
  assert.equal(sizes, data.files("train").length, "batch sizes add up to the training images of an epoch");
});

test("tf.callbacks.earlyStopping stops a real run at the epoch tfjs' rule gives", async (t) => {
  const { inception, data } = await setup();
  const patience = 2;
  const run = await retrainFinalLayer(inception, data, { ...quiet, epochs: 20, batchSize: 8, cacheDir: scratch("callbacks-early"), callbacks: [tf.callbacks.earlyStopping({ monitor: "val_acc", patience })] });
  // tfjs' rule on the run's own numbers: an epoch improves on a higher val_acc; `patience` epochs without stop.
  // Six validation images leave at most six improvements, so it stops within 20 epochs.
  let [best, wait, stop] = [-Infinity, 0, -1];
  for (const [i, epoch] of run.history.epochs.entries()) {
    if (epoch.valAccuracy! > best) [best, wait] = [epoch.valAccuracy!, 0];
    else if (++wait >= patience) {
      stop = i;
      break;
    }
  }
  t.diagnostic(`val_acc per epoch: ${run.history.epochs.map((e) => e.valAccuracy?.toFixed(3)).join(", ")}`);
  assert.ok(stop >= patience, `val_acc per epoch: ${run.history.epochs.map((e) => e.valAccuracy)}`);
  assert.equal(run.history.epochs.length, stop + 1);
  assert.deepEqual([run.info.stopReason, run.info.stopMessage], ["stopped by a callback", "stopped by EarlyStopping (model.stopTraining)"]);
});

test("a misspelt hook is refused before any work, with a did-you-mean; state and helpers of the user's own are fine", async () => {
  const { inception, data } = await setup();
  const cacheDir = path.join(scratch("callbacks-refused"), "features");
  await assert.rejects(retrainFinalLayer(inception, data, { ...quiet, cacheDir, callbacks: { onEpochEnds: () => undefined } as object }), {
    message: 'callbacks: there is no hook "onEpochEnds", so it would never be called. Did you mean "onEpochEnd"?',
  });
  class Mine {
    onBatchEnds() {}
  }
  await assert.rejects(fineTune(inception, data, { ...quiet, cacheDir, callbacks: [new Mine()] as object[] }), /there is no hook "onBatchEnds".*Did you mean "onBatchEnd"\?/);
  await assert.rejects(retrainFinalLayer(inception, data, { ...quiet, cacheDir, callbacks: { on_epoch_end: () => undefined } as object }), /Did you mean "onEpochEnd"\?/);
  await assert.rejects(retrainFinalLayer(inception, data, { ...quiet, cacheDir, callbacks: { onTrainStart: () => undefined } as object }), /there is no hook "onTrainStart".*The hooks are onTrainBegin, onEpochBegin/);
  await assert.rejects(retrainFinalLayer(inception, data, { ...quiet, cacheDir, callbacks: { onEpochEnd: "log" } as object }), /callbacks: onEpochEnd is string: give a function, onEpochEnd\(record, loop\)\./);
  assert.equal(fs.existsSync(cacheDir), false, "no features computed");
  class Counter {
    count = 0;
    best: number | null = null;
    onEpochEnd() {
      this.count++;
    }
    report() {
      return this.count;
    }
  }
  assert.equal(resolve("retrain-final-layer", { callbacks: new Counter() }).callbacks.length, 1);
});

test("a plain object with Keras-style hooks is refused before any work, with the library's form and tf.CustomCallback's", async () => {
  const { inception, data } = await setup();
  const cacheDir = path.join(scratch("callbacks-keras-style"), "features");
  const message =
    "callbacks: onEpochEnd(epoch, logs) is written for Keras' (epoch, logs), but the library calls onEpochEnd(record, loop), with record.loss, record.accuracy, record.valLoss, record.valAccuracy and loop.stop(reason). " +
    "Write it so, or keep the Keras form inside new tf.CustomCallback({ onEpochEnd: ... }), which gets 0-based epochs and logs.loss, logs.acc, logs.val_loss, logs.val_acc.";
  const keras = { onEpochEnd: (epoch: unknown, logs: { loss: number }) => console.log(epoch, logs.loss) };
  await assert.rejects(retrainFinalLayer(inception, data, { ...quiet, cacheDir, callbacks: keras as object }), { message });
  const asMethod = {
    async onBatchEnd(batch: number, logs: { loss: number }) {
      console.log(batch, logs.loss);
    },
  };
  await assert.rejects(fineTune(inception, data, { ...quiet, cacheDir, callbacks: asMethod as object }), /onBatchEnd\(batch, logs\) is written for Keras' \(epoch, logs\), but the library calls onBatchEnd\(record, loop\)/);
  await assert.rejects(retrainFinalLayer(inception, data, { ...quiet, cacheDir, callbacks: { onTrainBegin: (logs: object) => logs } as object }), /onTrainBegin\(logs\) is written for Keras'.*library calls onTrainBegin\(loop\), with loop\.stop\(reason\)/);
  assert.equal(fs.existsSync(cacheDir), false, "no features computed");
});

test("a callback that never returns: an interrupt ends the run, which is kept", { timeout: 120_000 }, async () => {
  const { inception, data } = await setup();
  const hung = {
    onEpochEnd: (record: { epoch: number }) => {
      if (record.epoch < 2) return;
      setTimeout(() => process.emit("SIGINT"), 50);
      return new Promise(() => {});
    },
  };
  const run = await retrainFinalLayer(inception, data, { ...quiet, epochs: 5, batchSize: 8, cacheDir: scratch("callbacks-hung"), callbacks: hung });
  assert.equal(run.info.stopReason, "interrupted");
  assert.equal(lastRun(), run);
  assert.equal(run.history.epochs.length, 2);
  assert.match(run.info.warnings.join("\n"), /interrupted while your callback's onEpochEnd was still running/);
});

// Run in a process of its own: a callback that never returns, and a timer that keeps the process alive
// after the run, as a kernel or a server would.
const CHILD = `
const { loadInceptionV3, retrainFinalLayer, syntheticShapes } = require("inception-lab");
setInterval(() => {}, 1000);
(async () => {
  const data = await syntheticShapes({ ...JSON.parse(process.env.DATA_OPTIONS), dir: process.env.DATA_DIR });
  const inception = await loadInceptionV3({ weights: "bundled", inputSize: 75 });
  const callbacks = { onEpochEnd: () => { console.log("HUNG"); return new Promise(() => {}); } };
  const run = await retrainFinalLayer(inception, data, { epochs: 3, progress: false, callbacks });
  console.log("ENDED " + JSON.stringify({ stopReason: run.info.stopReason, epochs: run.history.epochs.length }));
})();
`;

test("in a process: Ctrl-C ends a run stuck in a callback, a second Ctrl-C ends the process", { timeout: 180_000 }, async () => {
  const dir = scratch("callbacks-child");
  const child = spawn(process.execPath, ["--require", "ts-node/register/transpile-only", "-e", CHILD], {
    cwd: root,
    env: { ...process.env, TF_CPP_MIN_LOG_LEVEL: "3", INCEPTION_LAB_CACHE: path.join(dir, "cache"), DATA_DIR: path.join(dir, "set"), DATA_OPTIONS: JSON.stringify(dataOptions) },
  });
  let log = "";
  const appeared = (pattern: RegExp, seconds: number, what: string) =>
    new Promise<RegExpExecArray>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no ${what} within ${seconds} s:\n${log.slice(-2000)}`)), seconds * 1000);
      const look = () => {
        const match = pattern.exec(log);
        if (!match) return;
        clearTimeout(timer);
        child.stdout.off("data", look);
        resolve(match);
      };
      child.stdout.on("data", look);
      look();
    });
  child.stdout.on("data", (chunk) => (log += chunk));
  child.stderr.on("data", (chunk) => (log += chunk));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on("exit", (code, signal) => resolve({ code, signal })));
  try {
    await appeared(/HUNG/, 150, "hung callback");
    child.kill("SIGINT");
    const ended = await appeared(/ENDED (.*)/, 20, "end of the run after the first Ctrl-C");
    assert.deepEqual(JSON.parse(ended[1]), { stopReason: "interrupted", epochs: 1 });
    const second = performance.now();
    child.kill("SIGINT");
    const exit = await Promise.race([exited, new Promise<null>((resolve) => setTimeout(() => resolve(null), 10_000))]);
    assert.ok(exit, `the process still runs 10 s after the second Ctrl-C:\n${log.slice(-2000)}`);
    assert.ok(exit.code !== 0, `exit ${JSON.stringify(exit)}`);
    assert.equal(exit.signal, "SIGINT", "ended by the signal, as Node ends a process without a SIGINT listener");
    assert.ok(performance.now() - second < 10_000);
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  }
});
