import { test } from "node:test";
import * as assert from "node:assert/strict";
import * as fs from "fs";
import * as path from "path";
import { execFileSync } from "child_process";
import { environment, budget, Table } from "inception-lab";

const root = path.join(__dirname, "..");

test("tfjs-node runs on native TensorFlow 2.21 from the pip wheel", () => {
  const out = execFileSync(
    process.execPath,
    ["-e", "const tf=require('@tensorflow/tfjs-node'); process.stdout.write(tf.getBackend()+' '+tf.engine().backend.binding.TF_Version)"],
    { cwd: root, encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] },
  );
  assert.equal(out, "tensorflow 2.21.0");
});

test("environment() reports the native backend, threads and memory", () => {
  const env = environment();
  assert.equal(env.info.backend, "tensorflow");
  assert.match(env.info.tensorflow, /^2\.\d+\.\d+$/);
  assert.ok(env.info.cpuThreads >= 1);
  assert.ok(env.info.memoryTotalGiB > 0.5);
  assert.match(env.toText(), /backend\s+tensorflow/);
  assert.match(env.toHTML(), /<table>.*TensorFlow \(native\).*<\/table>/s);
});

test("budget() reads INCEPTION_LAB_BUDGET and rejects unknown values by name", () => {
  const saved = process.env.INCEPTION_LAB_BUDGET;
  try {
    process.env.INCEPTION_LAB_BUDGET = "fast";
    assert.equal(budget(), "fast");
    delete process.env.INCEPTION_LAB_BUDGET;
    assert.equal(budget(), "full");
    process.env.INCEPTION_LAB_BUDGET = "huge";
    assert.throws(() => budget(), /INCEPTION_LAB_BUDGET is "huge"/);
  } finally {
    if (saved === undefined) delete process.env.INCEPTION_LAB_BUDGET;
    else process.env.INCEPTION_LAB_BUDGET = saved;
  }
});

test("Table renders aligned text and escaped HTML", () => {
  const table = new Table(["name", "value"], [["a<b", 1.23456], ["c", 2]]);
  assert.equal(table.toText(), "name  value\n----  -----\na<b   1.235\nc     2");
  assert.match(table.toHTML(), /<td style="text-align:left">a&lt;b<\/td>/);
});

test("importing inception-lab again after a library file changed loads the new code", () => {
  const first = require("inception-lab").environment;
  assert.equal(require("inception-lab").environment, first, "unchanged files: same module instance");
  const file = path.join(root, "kernel-helpers", "notebook", "environment.ts");
  const { atime, mtime } = fs.statSync(file);
  try {
    fs.utimesSync(file, atime, new Date(mtime.getTime() + 5000));
    const second = require("inception-lab").environment;
    assert.notEqual(second, first, "a touched file must be reloaded");
  } finally {
    fs.utimesSync(file, atime, mtime);
  }
});
