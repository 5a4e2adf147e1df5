// One TensorBoard folder holds one run, also from a notebook: a folder that holds a log is refused before
// any work, two runs at once cannot both write one, each run writes (and closes) an events file of its own
// even where tfjs-node would reuse the process's writer for that folder, and no tensor is left behind.
import { test } from "node:test";
import * as assert from "node:assert/strict";
import * as fs from "fs";
import * as path from "path";
import { loadInceptionV3, retrainFinalLayer, syntheticShapes, tf } from "inception-lab";
import type { ImageFolder, Inception } from "inception-lab";
import { scratch } from "./helpers";

process.env.INCEPTION_LAB_CACHE = scratch("tensorboard-cache");
const quiet = { progress: false, liveChart: false, epochs: 3, batchSize: 8, precision: "float32" as const };
let shared: { inception: Inception; data: ImageFolder } | null = null;
async function setup() {
  shared ??= {
    inception: await loadInceptionV3({ weights: "bundled", inputSize: 75 }),
    data: await syntheticShapes({ classes: 3, perClass: 8, imageSize: 64, dir: path.join(scratch("tensorboard-data"), "set") }),
  };
  return shared;
}
const eventFiles = (dir: string) => fs.readdirSync(dir).filter((name) => name.startsWith("events.out.tfevents."));

test("a folder that already holds a run's log is refused before any work, naming the option and a free folder", async () => {
  const { inception, data } = await setup();
  const logs = scratch("tensorboard-twice");
  await retrainFinalLayer(inception, data, { ...quiet, tensorboard: path.join(logs, "run-1") });
  assert.equal(eventFiles(path.join(logs, "run-1")).length, 1);
  const features = path.join(logs, "features");
  await assert.rejects(
    retrainFinalLayer(inception, data, { ...quiet, tensorboard: path.join(logs, "run-1"), cacheDir: features }),
    /^OptionError: tensorboard: .*run-1 already holds a run's TensorBoard log \(events\.out\.tfevents\..*\), and a second run there would mix its curves with the first's, step by step: give this run its own folder, such as .*run-2/,
  );
  assert.ok(!fs.existsSync(features), "no feature was computed");
  assert.equal(eventFiles(path.join(logs, "run-1")).length, 1);
});

test("two runs started at once on one folder: one writes the log, the other says it writes none", async () => {
  const { inception, data } = await setup();
  const logdir = path.join(scratch("tensorboard-at-once"), "run-1");
  const runs = await Promise.all([retrainFinalLayer(inception, data, { ...quiet, tensorboard: logdir }), retrainFinalLayer(inception, data, { ...quiet, tensorboard: logdir })]);
  assert.equal(eventFiles(logdir).length, 1);
  const without = runs.filter((run) => run.info.warnings.some((w) => /^no TensorBoard log for this run: (another run is writing its TensorBoard log to .*run-1 now|.*already holds a run's TensorBoard log)/.test(w)));
  assert.equal(without.length, 1, runs.map((run) => run.info.warnings.join("; ")).join(" | "));
  assert.ok(!fs.existsSync(`${logdir}.lock`), "the lock is released");
});

test("each run writes and closes an events file of its own (not the process's cached writer) and leaves no tensor", async () => {
  const { inception, data } = await setup();
  const logdir = path.join(scratch("tensorboard-own-writer"), "run-1");
  await retrainFinalLayer(inception, data, { ...quiet, tensorboard: logdir });
  const [first] = eventFiles(logdir);
  assert.ok(fs.readFileSync(path.join(logdir, first)).includes("epoch/val_accuracy"), "the first run's log is complete on disk when the run returns");
  // The user deletes the folder and runs again into it: tfjs-node's one writer per folder would write into the deleted file.
  fs.rmSync(logdir, { recursive: true });
  const before = tf.memory().numTensors;
  const plain = await retrainFinalLayer(inception, data, { ...quiet });
  const withoutLog = tf.memory().numTensors - before;
  const logged = await retrainFinalLayer(inception, data, { ...quiet, tensorboard: logdir });
  const withLog = tf.memory().numTensors - before - withoutLog;
  const files = eventFiles(logdir);
  assert.equal(files.length, 1);
  const bytes = fs.readFileSync(path.join(logdir, files[0]));
  assert.ok(bytes.includes("step/loss") && bytes.includes("epoch/val_accuracy"), `the new log holds the run's curves (${bytes.length} bytes)`);
  assert.deepEqual(logged.info.warnings, []);
  assert.equal(withLog, withoutLog, "a run with a log keeps as many tensors as one without");
  assert.ok(plain && logged);
});

test("a lock left by a process that died does not keep a folder from its log", async () => {
  const { inception, data } = await setup();
  const logdir = path.join(scratch("tensorboard-dead-lock"), "run-1");
  fs.writeFileSync(`${logdir}.lock`, JSON.stringify({ pid: 2 ** 22 + 12345, since: new Date().toISOString() }));
  const run = await retrainFinalLayer(inception, data, { ...quiet, tensorboard: logdir });
  assert.deepEqual(run.info.warnings, []);
  assert.equal(eventFiles(logdir).length, 1);
  assert.ok(!fs.existsSync(`${logdir}.lock`));
});
