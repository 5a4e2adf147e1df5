// Training on several machines (issue 30): the library's Keras export and split file, trained by
// test/keras/multi_worker.py (the README's multi-worker example, word for word) with MultiWorkerMirroredStrategy
// in two worker processes on 127.0.0.1, each with its own TF_CONFIG, on the CPU. Both must take part (the loss
// each prints is summed over both, so it is the same on each only when they really trained together), both
// must finish, and the chief must save a model Keras loads, with weights moved from the export's.
import { test } from "node:test";
import * as assert from "node:assert/strict";
import { type ChildProcess, execFileSync, spawn } from "child_process";
import * as fs from "fs";
import * as net from "net";
import * as path from "path";
import { loadInceptionV3, retrainFinalLayer, syntheticShapes } from "inception-lab";
import { python, root, scratch } from "./helpers";

process.env.INCEPTION_LAB_CACHE = scratch("multi-worker-cache");
const script = path.join(root, "test", "keras", "multi_worker.py");

/** A port free on 127.0.0.1 now. */
const freePort = () =>
  new Promise<number>((resolve) => {
    const server = net.createServer().listen(0, "127.0.0.1", () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });

test("the README's multi-worker example trains the Keras export in two workers on 127.0.0.1, and the chief saves the model", { timeout: 15 * 60_000 }, async (t) => {
  const readme = fs.readFileSync(path.join(root, "README.md"), "utf8");
  const example = [...readme.matchAll(/<<'EOF'\n([\s\S]*?)\nEOF\n/g)].map((m) => m[1]).find((body) => body.includes("MultiWorkerMirroredStrategy"));
  assert.ok(example !== undefined, "the README has the multi-worker example");
  assert.equal(example, fs.readFileSync(script, "utf8").trimEnd(), "the README's multi-worker example is test/keras/multi_worker.py");
  const cwd = scratch("multi-worker");
  const inception = await loadInceptionV3({ weights: "bundled", inputSize: 75 });
  const data = await syntheticShapes({ classes: 3, perClass: 10, imageSize: 64, seed: 44, dir: path.join(cwd, "photos") });
  const run = await retrainFinalLayer(inception, data, { progress: false, liveChart: false, epochs: 2, precision: "float32" });
  await run.export(path.join(cwd, "export-keras"), { format: "keras" });
  data.writeSplit(path.join(cwd, "split.csv"));

  const cluster = [`127.0.0.1:${await freePort()}`, `127.0.0.1:${await freePort()}`];
  const workers: { child: ChildProcess; output: string; status: Promise<number | null> }[] = [];
  try {
    for (const index of [0, 1]) {
      const tfConfig = JSON.stringify({ cluster: { worker: cluster }, task: { type: "worker", index } });
      const child = spawn(python, [script], { cwd, env: { ...process.env, TF_CONFIG: tfConfig, CUDA_VISIBLE_DEVICES: "", TF_CPP_MIN_LOG_LEVEL: "3" }, stdio: ["ignore", "pipe", "pipe"] });
      const worker = { child, output: "", status: new Promise<number | null>((resolve) => child.on("close", resolve)) };
      child.stdout.on("data", (chunk) => (worker.output += chunk));
      child.stderr.on("data", (chunk) => (worker.output += chunk));
      workers.push(worker);
    }
    const statuses = await Promise.all(workers.map((w) => w.status));
    workers.forEach((w, i) => assert.equal(statuses[i], 0, `worker ${i}:\n${w.output.slice(-3000)}`));
  } finally {
    for (const { child } of workers) if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  }
  const losses = workers.map((w) => /step 1\/1: loss ([\d.]+)/.exec(w.output)?.[1]);
  t.diagnostic(`losses printed by the workers: ${losses.join(", ")}`);
  assert.ok(losses[0] !== undefined && losses[0] === losses[1], `both workers print the loss summed over both: ${losses.join(", ")}`);
  assert.deepEqual(fs.readdirSync(cwd).filter((name) => name.endsWith(".keras")), ["trained-multi-worker.keras"], "the chief saved the model, the other worker nothing here");

  const code = `
import sys, numpy as np, keras
exported, trained = (keras.models.load_model(f) for f in sys.argv[1:3])
dense = lambda model: model.get_layer("logits").get_weights()[0]
print(float(np.abs(dense(exported) - dense(trained)).max()))`;
  const moved = Number(execFileSync(python, ["-c", code, path.join(cwd, "export-keras", "model.keras"), path.join(cwd, "trained-multi-worker.keras")], { encoding: "utf8", env: { ...process.env, TF_CPP_MIN_LOG_LEVEL: "3" } }).trim().split("\n").pop());
  assert.ok(moved > 0 && Number.isFinite(moved), `the trained model's weights moved from the export's (${moved})`);
});
