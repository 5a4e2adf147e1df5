// The fast paths (TensorFlow's fused batch norm and its gradient, ReluGrad, the frozen bottom run
// outside the tape) must compute what the plain tfjs ops compute: one SGD step, both ways, compared.
import { test } from "node:test";
import * as assert from "node:assert/strict";
import { tf } from "inception-lab";
import { BatchNorm, fusedBatchNorm } from "../../kernel-helpers/network/batch-norm";

function relativeDifference(a: tf.Tensor, b: tf.Tensor): number {
  return tf.tidy(() => tf.norm(tf.sub(a, b)).dataSync()[0] / Math.max(tf.norm(b).dataSync()[0], 1e-12));
}

test("a training step through fused BatchNorm and ReluGrad matches plain tfjs ops: loss, updated weights, moving statistics", () => {
  const x = tf.randomNormal([6, 12, 12, 3], 0.5, 2, "float32", 1);
  const labels = tf.oneHot(tf.tensor1d([0, 1, 2, 0, 1, 2], "int32"), 3);
  const kernel1 = tf.randomNormal([3, 3, 3, 8], 0, 0.3, "float32", 2);
  const kernel2 = tf.randomNormal([3, 3, 8, 8], 0, 0.3, "float32", 3);
  const dense = tf.randomNormal([8, 3], 0, 0.3, "float32", 4);
  const beta = tf.randomNormal([8], 0, 0.1, "float32", 5);

  // This library's layers.
  const input = tf.input({ shape: [12, 12, 3] });
  const conv1 = tf.layers.conv2d({ filters: 8, kernelSize: 3, padding: "same", useBias: false });
  const bn1 = new BatchNorm();
  const conv2 = tf.layers.conv2d({ filters: 8, kernelSize: 3, padding: "same", useBias: false });
  const bn2 = new BatchNorm();
  const head = tf.layers.dense({ units: 3, useBias: false });
  let h = tf.layers.activation({ activation: "relu" }).apply(bn1.apply(conv1.apply(input))) as tf.SymbolicTensor;
  h = tf.layers.activation({ activation: "relu" }).apply(bn2.apply(conv2.apply(h))) as tf.SymbolicTensor;
  const model = tf.model({ inputs: input, outputs: head.apply(tf.layers.globalAveragePooling2d({}).apply(h)) as tf.SymbolicTensor });
  conv1.setWeights([kernel1]);
  conv2.setWeights([kernel2]);
  head.setWeights([dense]);
  bn1.setWeights([beta, tf.zeros([8]), tf.ones([8])]);
  bn2.setWeights([beta, tf.zeros([8]), tf.ones([8])]);
  const ours = tf.train.sgd(0.5).minimize(() => tf.losses.softmaxCrossEntropy(labels, model.apply(x, { training: true }) as tf.Tensor) as tf.Scalar, true, model.trainableWeights.map((w) => w.read() as tf.Variable))!;

  // The same network from plain tfjs ops: moments + batchNorm, max(x, 0) for ReLU.
  const vars = [kernel1, kernel2, dense, beta, beta].map((t) => tf.variable(t.clone()));
  const moving: tf.Tensor[] = [];
  const plainBn = (t: tf.Tensor4D, offset: tf.Variable) => {
    const { mean, variance } = tf.moments(t, [0, 1, 2]);
    moving.push(tf.keep(tf.add(tf.mul(0.99, tf.zeros([8])), tf.mul(0.01, mean))), tf.keep(tf.add(tf.mul(0.99, tf.ones([8])), tf.mul(0.01, variance))));
    return tf.batchNorm(t, mean, variance, offset as tf.Tensor1D, tf.ones([8]), 1e-3);
  };
  const plain = tf.train.sgd(0.5).minimize(() => {
    let y = tf.maximum(plainBn(tf.conv2d(x as tf.Tensor4D, vars[0] as tf.Tensor4D, 1, "same"), vars[3]), 0) as tf.Tensor4D;
    y = tf.maximum(plainBn(tf.conv2d(y, vars[1] as tf.Tensor4D, 1, "same"), vars[4]), 0) as tf.Tensor4D;
    return tf.losses.softmaxCrossEntropy(labels, tf.matMul(tf.mean(y, [1, 2]) as tf.Tensor2D, vars[2] as tf.Tensor2D)) as tf.Scalar;
  }, true, vars)!;

  assert.ok(Math.abs(ours.dataSync()[0] - plain.dataSync()[0]) / plain.dataSync()[0] < 1e-5, `loss ${ours.dataSync()[0]} vs ${plain.dataSync()[0]}`);
  const updated: [string, tf.Tensor, tf.Tensor][] = [
    ["conv 1", conv1.getWeights()[0], vars[0]],
    ["conv 2", conv2.getWeights()[0], vars[1]],
    ["dense", head.getWeights()[0], vars[2]],
    ["beta 1", bn1.getWeights()[0], vars[3]],
    ["beta 2", bn2.getWeights()[0], vars[4]],
    ["moving mean 1", bn1.getWeights()[1], moving[0]],
    ["moving variance 1", bn1.getWeights()[2], moving[1]],
    ["moving mean 2", bn2.getWeights()[1], moving[2]],
    ["moving variance 2", bn2.getWeights()[2], moving[3]],
  ];
  for (const [name, a, b] of updated) {
    const difference = relativeDifference(a, b);
    assert.ok(difference < 1e-4, `${name}: relative difference ${difference}`);
  }
});

test("in inference mode the fused batch norm equals tfjs' batchNorm and its input gradient", () => {
  const x = tf.randomNormal([4, 5, 5, 6], 1, 2, "float32", 7);
  const [offset, mean] = [tf.randomNormal([6], 0, 1, "float32", 8), tf.randomNormal([6], 0, 1, "float32", 9)] as tf.Tensor1D[];
  const variance = tf.randomUniform([6], 0.5, 2, "float32", 10) as tf.Tensor1D;
  const dy = tf.randomNormal([4, 5, 5, 6], 0, 1, "float32", 11);
  const oursGrad = tf.grad((input: tf.Tensor) => tf.sum(tf.mul(fusedBatchNorm(input, offset, mean, variance, 1e-3, false).y, dy)))(x);
  const plainGrad = tf.grad((input: tf.Tensor) => tf.sum(tf.mul(tf.batchNorm(input, mean, variance, offset, tf.ones([6]), 1e-3), dy)))(x);
  assert.ok(relativeDifference(fusedBatchNorm(x, offset, mean, variance, 1e-3, false).y, tf.batchNorm(x, mean, variance, offset, tf.ones([6]), 1e-3)) < 1e-6);
  assert.ok(relativeDifference(oursGrad, plainGrad) < 1e-5);
});

test("lean backpropagation gives tfjs' gradients and holds less memory by the time it reaches the bottom", () => {
  type Gradients = (f: () => tf.Tensor, xs: tf.Tensor[]) => { value: tf.Tensor; grads: tf.Tensor[] };
  const engine = tf.engine() as unknown as { gradients: Gradients & { original: Gradients } };
  assert.ok(engine.gradients.original, "the library installed its backpropagation");
  const weights = [0, 1, 2, 3, 4, 5].map((i) => tf.variable(tf.randomNormal([128, 128], 0, 0.2, "float32", 20 + i)));
  const x = tf.randomNormal([512, 128], 0, 1, "float32", 30);
  // An identity whose gradient runs last in the backward pass and notes the live bytes then.
  let bytesAtBottom = 0;
  const probe = tf.customGrad(((input: tf.Tensor) => ({
    value: input.clone(),
    gradFunc: (dy: tf.Tensor) => {
      bytesAtBottom = tf.memory().numBytes;
      return [dy];
    },
  })) as unknown as Parameters<typeof tf.customGrad>[0]);
  const f = () => {
    let h = probe(tf.matMul(x, weights[0])) as tf.Tensor2D;
    for (const w of weights.slice(1)) h = tf.relu(tf.matMul(h, w)) as tf.Tensor2D;
    return tf.sum(tf.square(h));
  };
  const run = (gradients: Gradients) => {
    const result = tf.tidy(() => {
      const { value, grads } = gradients.call(engine, f, weights);
      return [value, ...grads];
    });
    return { result, bytes: bytesAtBottom };
  };
  const lean = run(engine.gradients);
  const plain = run(engine.gradients.original);
  assert.ok(Math.abs(lean.result[0].dataSync()[0] - plain.result[0].dataSync()[0]) < 1e-3);
  lean.result.slice(1).forEach((g, i) => assert.ok(relativeDifference(g, plain.result[i + 1]) < 1e-6, `gradient ${i}`));
  assert.ok(lean.bytes < plain.bytes * 0.8, `live bytes at the bottom: lean ${lean.bytes}, tfjs ${plain.bytes}`);
});
