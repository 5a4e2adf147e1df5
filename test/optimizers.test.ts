// The library's optimizers (train/optimizers.ts keeps hyperparameters in variables, so it has its own
// update rules) against Keras' own in the venv's TensorFlow: the same weights after the same steps, for
// each optimizer, with the learning rate changed between steps as a schedule or a re-run cell does.
import { test } from "node:test";
import * as assert from "node:assert/strict";
import { execFileSync } from "child_process";
import { tf } from "inception-lab";
import { OPTIMIZERS, Optimizer, type OptimizerName } from "../kernel-helpers/train/loop/optimizers";
import { python } from "./helpers";

const KERAS = `
import json, sys
import numpy as np, tensorflow as tf
case = json.load(sys.stdin)
x, y = np.array(case["x"], "float32"), np.array(case["y"], "float32")
w, b = tf.Variable(np.array(case["w"], "float32")), tf.Variable(np.array(case["b"], "float32"))
make = {
  "sgd": lambda: tf.keras.optimizers.SGD(case["rates"][0]),
  "momentum": lambda: tf.keras.optimizers.SGD(case["rates"][0], momentum=0.9),
  "adam": lambda: tf.keras.optimizers.Adam(case["rates"][0]),
  "rmsprop": lambda: tf.keras.optimizers.RMSprop(case["rates"][0], rho=0.9),
}
optimizer = make[case["optimizer"]]()
for rate in case["rates"]:
  optimizer.learning_rate.assign(rate)
  with tf.GradientTape() as tape:
    loss = tf.reduce_mean(tf.square(tf.matmul(x, w) + b - y))
  optimizer.apply_gradients(zip(tape.gradient(loss, [w, b]), [w, b]))
print(json.dumps({"w": w.numpy().tolist(), "b": b.numpy().tolist()}))
`;

/** A small least-squares problem with fixed numbers (no randomness on either side). */
const problem = {
  x: Array.from({ length: 6 }, (_, i) => [Math.sin(i + 1), Math.cos(2 * i), (i % 3) - 1]),
  y: Array.from({ length: 6 }, (_, i) => [i / 3 - 1, Math.sin(3 * i)]),
  w: [
    [0.3, -0.2],
    [0.1, 0.4],
    [-0.5, 0.25],
  ],
  b: [0.05, -0.1],
  // The learning rate drops after three steps, then rises: a variable, not a recorded constant.
  rates: [0.05, 0.05, 0.05, 0.01, 0.01, 0.2, 0.2, 0.2],
};

function ours(name: OptimizerName): { w: number[][]; b: number[] } {
  const x = tf.tensor2d(problem.x);
  const y = tf.tensor2d(problem.y);
  const w = tf.tidy(() => tf.variable(tf.tensor2d(problem.w)));
  const b = tf.tidy(() => tf.variable(tf.tensor1d(problem.b)));
  const optimizer = new Optimizer(name, [w, b], problem.rates[0]);
  for (const rate of problem.rates) {
    optimizer.learningRate = rate;
    optimizer.minimize(() => tf.mean(tf.square(tf.sub(tf.add(tf.matMul(x, w), b), y))) as tf.Scalar).dispose();
  }
  const result = { w: w.arraySync() as number[][], b: b.arraySync() as number[] };
  optimizer.dispose();
  tf.dispose([x, y, w, b]);
  return result;
}

for (const name of OPTIMIZERS) {
  test(`${name}: the same weights as Keras' optimizer after 8 steps with a changing learning rate`, () => {
    const keras = JSON.parse(execFileSync(python, ["-c", KERAS], { input: JSON.stringify({ ...problem, optimizer: name }), encoding: "utf8", env: { ...process.env, TF_CPP_MIN_LOG_LEVEL: "3" } }).trim().split("\n").pop()!);
    const before = tf.memory();
    const mine = ours(name);
    assert.deepEqual([tf.memory().numTensors, tf.memory().numBytes], [before.numTensors, before.numBytes], "the optimizer frees its state and every step's tensors");
    const differences = [...mine.w.flat().map((v, i) => Math.abs(v - keras.w.flat()[i])), ...mine.b.map((v, i) => Math.abs(v - keras.b[i]))];
    const moved = Math.max(...mine.w.flat().map((v, i) => Math.abs(v - problem.w.flat()[i])));
    assert.ok(moved > 0.01, `the weights moved (${moved})`);
    assert.ok(Math.max(...differences) < 1e-5, `max |ours - Keras| = ${Math.max(...differences)}`);
  });
}
