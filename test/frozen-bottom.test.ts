// The frozen-bottom cache (data/activations.ts): a fine-tune of the top blocks without distortions runs its
// frozen blocks once per image, then trains exactly as without the cache, on the activations read back.
import { test } from "node:test";
import * as assert from "node:assert/strict";
import * as fs from "fs";
import { fineTune, imageFolder, type Inception, loadInceptionV3, syntheticShapes, tf } from "inception-lab";
import { ActivationStore } from "../kernel-helpers/data/activations";
import { contentHash } from "../kernel-helpers/util/content-cache";
import { scratch } from "./helpers";

process.env.INCEPTION_LAB_CACHE = scratch("frozen-bottom-cache");

/** Whether TensorFlow computes an image's activations bit for bit alike at any place in a batch, at float32 (AVX-512 CPUs did; an AMD EPYC without it did not). */
async function samePlaceInBatchAlike(inception: Inception): Promise<boolean> {
  const data = await syntheticShapes({ classes: 3, perClass: 4, imageSize: 64, seed: 5 });
  const files = data.files();
  const first = await inception.features(files.slice(0, 8), { layer: "mixed5", batchSize: 8, precision: "float32" });
  const last = await inception.features([...files.slice(1, 8), files[0]], { layer: "mixed5", batchSize: 8, precision: "float32" });
  const alike = tf.tidy(() => tf.equal(first.slice(0, 1), last.slice(7, 1)).all().dataSync()[0] === 1);
  tf.dispose([first, last]);
  return alike;
}

const options = { epochs: 3, warmupEpochs: 0, unfreezeFrom: "mixed6" as const, batchSize: 8, learningRate: 1e-3, progress: false, liveChart: false };

for (const precision of ["bfloat16", "float32"] as const) {
  test(`${precision}: with the cache the frozen bottom runs once per image, and the run trains exactly as without it`, async (t) => {
    const data = await syntheticShapes({ classes: 3, perClass: 12, imageSize: 64, seed: 5 });
    const inception = await loadInceptionV3({ weights: "bundled", inputSize: 75, precision });
    const cached = await fineTune(inception, data, options);
    const plain = await fineTune(inception, data, { ...options, frozenBottomCache: false });
    const stats = cached.info.frozenBottom!;
    const images = data.files("train").length + data.files("validation").length;
    // mixed5's output at 75 px: 3 x 3 x 768 values, 2 bytes each in bfloat16 (exact: they are bfloat16 numbers), 4 in float32.
    assert.deepEqual({ ...stats, readBatches: undefined }, { boundary: "mixed5", images, bytesPerImage: 3 * 3 * 768 * (precision === "bfloat16" ? 2 : 4), bytes: images * 3 * 3 * 768 * (precision === "bfloat16" ? 2 : 4), onDisk: false, computed: images, readBatches: undefined });
    const batchesPerEpoch = Math.ceil(data.files("train").length / 8) + Math.ceil(data.files("validation").length / 32);
    assert.equal(stats.readBatches, 2 * batchesPerEpoch, "epochs 2 and 3 read every batch back");
    assert.equal(plain.info.frozenBottom, undefined);
    const trace = (run: typeof cached) => run.history.epochs.map((e) => [e.loss, e.accuracy, e.valLoss, e.valAccuracy]);
    if (await samePlaceInBatchAlike(inception)) {
      assert.deepEqual(trace(cached), trace(plain), "the same numbers, epoch by epoch");
    } else {
      // Here TensorFlow computes an image's activations a few ulps differently at another place in a batch, so the
      // plain run, whose shuffles move every image, does not repeat its own numbers; the cache keeps epoch 1's. The
      // first epoch trains on the same batches both ways and must match exactly; the rest within rounding (validation
      // there runs the bottom and the top as two graphs, and bfloat16's 8 bits of mantissa turn a 1e-7 difference
      // into up to 1 %).
      t.diagnostic("TensorFlow's convolutions here depend on an image's place in its batch: later epochs compared within rounding");
      assert.deepEqual(trace(cached)[0].slice(0, 2), trace(plain)[0].slice(0, 2), "the first epoch's training numbers exactly");
      const tolerance = precision === "bfloat16" ? 3e-2 : 1e-5;
      trace(cached).forEach((row, epoch) =>
        row.forEach((value, i) => {
          const other = trace(plain)[epoch][i]!;
          const allowed = i % 2 === 1 ? 1 / 8 + 1e-9 : tolerance * Math.abs(other);
          assert.ok(Math.abs(value! - other) <= allowed, `epoch ${epoch + 1}, ${["loss", "accuracy", "validation loss", "validation accuracy"][i]}: ${value} against ${other}`);
        }),
      );
    }
    cached.dispose();
    plain.dispose();
  });
}

test("no cache where it cannot help: with distortions, with nothing frozen", async () => {
  const data = await syntheticShapes({ classes: 3, perClass: 8, imageSize: 64, seed: 5 });
  const inception = await loadInceptionV3({ weights: "bundled", inputSize: 75 });
  const distorted = await fineTune(inception, data, { ...options, epochs: 1, distortions: { flipLeftRight: true } });
  assert.equal(distorted.info.frozenBottom, undefined);
  const all = await fineTune(inception, data, { ...options, epochs: 1, unfreezeFrom: "all" });
  assert.equal(all.info.frozenBottom, undefined);
  distorted.dispose();
  all.dispose();
});

test("a store too large for memory goes to disk, and a damaged file there is computed again, never read", () => {
  const image = scratch("frozen-bottom-image") + "/a.jpg";
  fs.writeFileSync(image, "stands for an image file: the store keys by its bytes");
  const hash = contentHash(image);
  const store = new ActivationStore({ test: 1 }, 6, "float32", 10, { root: scratch("frozen-bottom-disk"), memoryLimit: 0 });
  assert.ok(store.onDisk);
  const values = new Float32Array([1, -2, 3.5, 0, 1e-3, 7]);
  store.put(hash, values);
  assert.deepEqual(Array.from(store.get([hash])!), Array.from(values));
  const [file] = fs.readdirSync(store.dir).filter((f) => f.endsWith(".act")).map((f) => `${store.dir}/${f}`);
  const bytes = fs.readFileSync(file);
  bytes[bytes.length - 1] ^= 1;
  fs.writeFileSync(file, bytes);
  assert.equal(store.get([hash]), null, "a flipped bit is found");
  fs.writeFileSync(file, bytes.subarray(0, 20));
  assert.equal(store.get([hash]), null, "a cut-short file is found");
  const half = new ActivationStore({ test: 1 }, 6, "bfloat16", 10, { root: scratch("frozen-bottom-disk-2"), memoryLimit: 1 << 20 });
  assert.ok(!half.onDisk);
  const bf16 = new Float32Array([1, -2, 3.5, 0, 0.125, 7]); // bfloat16 numbers: stored in 2 bytes each, exactly
  half.put(hash, bf16);
  assert.deepEqual(Array.from(half.get([hash])!), Array.from(bf16));
});

test("images changed, deleted or garbled between fit calls are never served from the store: a run with the cache trains as one without it", async () => {
  const source = await syntheticShapes({ classes: 3, perClass: 12, imageSize: 64, seed: 11, dir: `${scratch("stale-source")}/set` });
  const inception = await loadInceptionV3({ weights: "bundled", inputSize: 75, precision: "float32" });
  const losses: number[][] = [];
  for (const frozenBottomCache of [true, false]) {
    const dir = `${scratch(`stale-${frozenBottomCache}`)}/set`;
    fs.cpSync(source.dir, dir, { recursive: true });
    const data = await imageFolder(dir, { minImagesPerClass: 1 });
    const run = await fineTune(inception, data, { ...options, epochs: 1, precision: "float32", frozenBottomCache });
    // Between the calls: every training image replaced by another class's picture under the same name.
    const train = data.files("train");
    const others = [...train.slice(1), train[0]].map((f) => fs.readFileSync(f));
    train.forEach((f, i) => fs.writeFileSync(f, others[i]));
    await run.fit({ epochs: 2 });
    // Then one deleted, one garbled: left out and reported, not trained on from memory.
    fs.rmSync(train[0]);
    fs.writeFileSync(train[1], Buffer.concat([others[1].subarray(0, 20), Buffer.alloc(200, 3)]));
    await run.fit({ epochs: 1 });
    assert.deepEqual(data.skipped.map((s) => s.path).sort(), [train[0], train[1]].sort(), "both reported");
    assert.equal(data.files("train").length, train.length - 2);
    losses.push(run.history.epochs.map((e) => e.loss));
    if (frozenBottomCache) assert.ok(run.info.frozenBottom!.computed > data.files("train").length + data.files("validation").length, "the changed images were computed again");
    run.dispose();
  }
  const [cached, plain] = losses;
  cached.forEach((loss, i) => assert.ok(Math.abs(loss - plain[i]) <= 1e-4 * Math.abs(plain[i]), `epoch ${i + 1}: ${loss} with the cache, ${plain[i]} without`));
});
