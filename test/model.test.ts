import { test } from "node:test";
import * as assert from "node:assert/strict";
import * as fs from "fs";
import * as path from "path";
import { CUT_LAYERS, loadInceptionV3, syntheticShapes, tf } from "inception-lab";
import { buildInceptionV3 } from "../kernel-helpers/network/inception";
import { kerasReference, maxAbsDiff, scratch } from "./helpers";

const ref = kerasReference();
const images = () => {
  const bytes = fs.readFileSync(ref.file("images.u8"));
  return tf.tensor4d(new Int32Array(bytes), [ref.images, ref.size, ref.size, 3], "int32");
};

test("the architecture matches Keras InceptionV3 layer for layer, with Keras-2 names and parameter counts", () => {
  const withTop = buildInceptionV3({ includeTop: true, inputSize: ref.size }).model;
  const noTop = buildInceptionV3({ includeTop: false, inputSize: ref.size }).model;
  assert.equal(withTop.countParams(), 23_851_784);
  assert.equal(noTop.countParams(), 21_802_784);
  assert.equal(withTop.countParams(), ref.params_top);
  assert.equal(noTop.countParams(), ref.params_notop);
  const kerasLayers = ref.layers.filter((l) => l.class !== "InputLayer").map((l) => `${l.name} [${l.output.join(",")}]`);
  const ours = withTop.layers.filter((l) => l.name !== "input_1" && l.name !== "preprocess").map((l) => `${l.name} [${(l.outputShape as number[]).slice(1).join(",")}]`);
  assert.deepEqual(ours, kerasLayers);
  tf.dispose([withTop, noTop].flatMap((m) => m.weights.map((w) => w.read())));
});

for (const [file, includeTop] of [
  ["keras2-official.h5", true],
  ["keras2-official-notop.h5", false],
  ["keras3-legacy.h5", true],
] as const) {
  test(`Keras weights ${file} (includeTop ${includeTop}) give Keras' features within 1e-4`, async (t) => {
    // float32: the parity with Keras is checked at Keras' precision (bfloat16 has its own test, precision.test.ts).
    const inception = await loadInceptionV3({ weights: ref.file(file), includeTop, inputSize: ref.size, precision: "float32" });
    assert.equal(inception.source.kind, "keras-h5");
    assert.equal(inception.source.preprocessing, "inception");
    const x = images();
    const features = await inception.features(x, { batchSize: 3 });
    assert.deepEqual(features.shape, [ref.images, 2048]);
    const diff = maxAbsDiff(await features.data(), ref.floats("features.f32"));
    assert.ok(diff < 1e-4, `max |features - Keras| = ${diff}`);
    t.diagnostic(`max |features - Keras| = ${diff.toExponential(2)}`);
    if (includeTop) {
      const probabilities = inception.model.predict(x) as tf.Tensor;
      const topDiff = maxAbsDiff(await probabilities.data(), ref.floats("predictions.f32"));
      assert.ok(topDiff < 1e-4, `max |predictions - Keras| = ${topDiff}`);
      t.diagnostic(`max |predictions - Keras| = ${topDiff.toExponential(2)}`);
      const [prediction] = await inception.classify(x.slice(0, 1), { topK: 3 });
      const best = prediction.top;
      assert.equal(best.length, 3);
      assert.deepEqual([prediction.label, prediction.probability], [best[0].label, best[0].probability]);
      assert.equal(prediction.probabilities.length, 1000);
      const expected = Array.from(ref.floats("predictions.f32").slice(0, 1000));
      const expectedBest = expected.indexOf(Math.max(...expected));
      assert.equal(best[0].label, `class ${expectedBest}`);
      assert.ok(Math.abs(best[0].probability - expected[expectedBest]) < 1e-4);
      probabilities.dispose();
    }
    tf.dispose([x, features]);
  });
}

test("features at every cut point have the block's channel count, in any batching", async () => {
  const inception = await loadInceptionV3({ weights: ref.file("keras2-official-notop.h5"), inputSize: 75 });
  const x = tf.randomUniform([3, 75, 75, 3], 0, 255);
  const channels: Record<string, number> = { mixed0: 256, mixed1: 288, mixed2: 288, mixed3: 768, mixed7: 768, mixed8: 1280, mixed10: 2048 };
  for (const layer of CUT_LAYERS.filter((l) => l in channels)) {
    const f = await inception.features(x, { layer });
    assert.deepEqual(f.shape, [3, channels[layer]], layer);
    f.dispose();
  }
  const whole = await inception.features(x);
  const asList = await inception.features(tf.unstack(x) as tf.Tensor3D[], { batchSize: 2 });
  assert.ok(maxAbsDiff(await whole.data(), await asList.data()) < 1e-5);
  const before = tf.memory().numTensors;
  (await inception.features(x, { batchSize: 1 })).dispose();
  assert.equal(tf.memory().numTensors, before, "features() leaves no tensors behind");
  tf.dispose([x, whole, asList]);
});

test("images of another size are resized to the input size", async () => {
  const inception = await loadInceptionV3({ weights: null, inputSize: 75, seed: 1 });
  const f = await inception.features(tf.zeros([2, 100, 120, 3]));
  assert.deepEqual(f.shape, [2, 2048]);
  f.dispose();
});

test("random weights with a seed are reproducible, without one they differ", async () => {
  const kernel = async (seed?: number) => (await loadInceptionV3({ weights: null, inputSize: 75, seed })).model.getLayer("conv2d_1").getWeights()[0].data();
  assert.deepEqual(await kernel(7), await kernel(7));
  assert.notDeepEqual(await kernel(7), await kernel(8));
});

test("the summary lists every block with parameters that add up, and trainable vs frozen", async () => {
  const inception = await loadInceptionV3({ weights: null, inputSize: 75 });
  for (const layer of inception.model.layers) if (inception.blockOf.get(layer.name) !== "mixed10") layer.trainable = false;
  const summary = inception.summary();
  assert.deepEqual(summary.blocks.map((b) => b.block), ["stem", ...CUT_LAYERS]);
  const sum = summary.blocks.reduce((s, b) => s + b.parameters, 0);
  assert.equal(sum, 21_802_784);
  const mixed10 = summary.blocks.find((b) => b.block === "mixed10")!;
  assert.ok(mixed10.trainable > 0 && summary.blocks.filter((b) => b.block !== "mixed10").every((b) => b.trainable === 0));
  assert.match(summary.toText(), /mixed10/);
  assert.match(inception.toHTML(), /<table>/);
});

test("bad input: each gives a clear error naming the problem", async () => {
  const dir = scratch("bad-weights");
  const inception = await loadInceptionV3({ weights: null, inputSize: 75 });
  await assert.rejects(inception.features(tf.zeros([2, 75, 75, 4])), /Expected RGB images .* shape \[2, 75, 75, 4\]/);
  await assert.rejects(inception.features(tf.zeros([75, 75])), /Expected RGB images/);
  await assert.rejects(inception.features(tf.zeros([1, 75, 75, 3], "bool")), /int32 or float32, got a bool/);
  await assert.rejects(inception.features(tf.zeros([1, 75, 75, 3]), { layer: "conv2d_3" as never }), /not a cut point/);
  await assert.rejects(inception.classify(tf.zeros([1, 75, 75, 3])), /classify needs .* includeTop: true/);

  const truncated = path.join(dir, "truncated.h5");
  fs.writeFileSync(truncated, fs.readFileSync(ref.file("keras2-official-notop.h5")).subarray(0, 5_000_000));
  await assert.rejects(loadInceptionV3({ weights: truncated }), /truncated\.h5: .*(truncated|damaged)/);
  const text = path.join(dir, "notes.h5");
  fs.writeFileSync(text, "not weights at all");
  await assert.rejects(loadInceptionV3({ weights: text }), /notes\.h5: not an HDF5 file/);
  await assert.rejects(loadInceptionV3({ weights: path.join(dir, "missing.h5") }), /missing\.h5: no such file/);
  await assert.rejects(loadInceptionV3({ weights: ref.file("other-network.h5") }), /other-network\.h5: not Inception-v3 weights: .*missing.*dense_a/);
  await assert.rejects(loadInceptionV3({ weights: ref.file("keras2-official-notop.h5"), includeTop: true }), /has no ImageNet classifier/);
  await assert.rejects(loadInceptionV3({ weights: "weights.bin" }), /not a source this library knows/);
  await assert.rejects(loadInceptionV3({ weights: ref.file("keras3.weights.h5") }), /Keras 3 \.weights\.h5 file.*model\.save\("inception\.h5"\)/);

  const small = tf.sequential({ layers: [tf.layers.conv2d({ inputShape: [8, 8, 3], filters: 4, kernelSize: 3, useBias: false, name: "conv2d_1" })] });
  await small.save(`file://${dir}/small`);
  await assert.rejects(loadInceptionV3({ weights: `${dir}/small/model.json` }), /conv2d_1\/kernel has shape \[3,3,3,4\], Inception-v3 needs \[3,3,3,32\]/);
});

/** Nearest-class-mean accuracy with 5-fold cross-validation on standardised features. */
function nearestCentroidAccuracy(features: tf.Tensor2D, labels: number[], folds = 5): number {
  const x = tf.tidy(() => {
    const { mean, variance } = tf.moments(features, 0);
    return tf.div(tf.sub(features, mean), tf.add(tf.sqrt(variance), 1e-6)).arraySync() as number[][];
  });
  let correct = 0;
  for (let fold = 0; fold < folds; fold++) {
    const train = x.map((_, i) => i).filter((i) => i % folds !== fold);
    const classes = [...new Set(labels)];
    const centroids = classes.map((c) => {
      const rows = train.filter((i) => labels[i] === c);
      return x[0].map((_, d) => rows.reduce((sum, i) => sum + x[i][d], 0) / rows.length);
    });
    for (let i = fold; i < x.length; i += folds) {
      const distances = centroids.map((centroid) => centroid.reduce((sum, v, d) => sum + (v - x[i][d]) ** 2, 0));
      if (classes[distances.indexOf(Math.min(...distances))] === labels[i]) correct++;
    }
  }
  return correct / x.length;
}

test("bundled weights load offline in under 5 s and their features separate generated shapes far better than pixels", async (t) => {
  const started = performance.now();
  const inception = await loadInceptionV3({ weights: "bundled", inputSize: 150 });
  const seconds = (performance.now() - started) / 1000;
  assert.ok(seconds < 5, `loading took ${seconds.toFixed(1)} s`);
  assert.equal(inception.source.kind, "bundled");
  assert.equal(inception.source.preprocessing, "unit");
  assert.match(inception.toHTML(), /nsfwjs/);
  const data = await syntheticShapes({ classes: 6, perClass: 20, imageSize: 96, seed: 5, dir: path.join(scratch("probe-shapes"), "set") });
  const images: tf.Tensor4D[] = [];
  const labels: number[] = [];
  for (const split of ["train", "validation", "test"] as const) {
    for await (const batch of data.batches(split, { inputSize: 96 })) {
      images.push(batch.images);
      labels.push(...(await batch.labels.data()));
      batch.labels.dispose();
    }
  }
  const all = tf.concat(images) as tf.Tensor4D;
  tf.dispose(images);
  const pixels = tf.tidy(() => tf.image.resizeBilinear(all, [32, 32]).reshape([all.shape[0], -1]) as tf.Tensor2D);
  const features = await inception.features(all, { layer: "mixed7" });
  const [pixelAccuracy, featureAccuracy] = [nearestCentroidAccuracy(pixels, labels), nearestCentroidAccuracy(features, labels)];
  t.diagnostic(`load ${seconds.toFixed(2)} s; nearest-centroid accuracy: pixels ${pixelAccuracy.toFixed(2)}, bundled mixed7 features ${featureAccuracy.toFixed(2)}`);
  assert.ok(featureAccuracy > pixelAccuracy + 0.3, `features ${featureAccuracy} vs pixels ${pixelAccuracy}`);
  tf.dispose([all, pixels, features]);
});
