// The frozen-bottom cache (data/activations.ts): a fine-tune of the top blocks without distortions runs its
// frozen blocks once per image, then trains exactly as without the cache, on the activations read back.
import { test } from "node:test";
import * as assert from "node:assert/strict";
import * as fs from "fs";
import { fineTune, loadInceptionV3, syntheticShapes } from "inception-lab";
import { ActivationStore } from "../kernel-helpers/data/activations";
import { scratch } from "./helpers";

process.env.INCEPTION_LAB_CACHE = scratch("frozen-bottom-cache");

const options = { epochs: 3, warmupEpochs: 0, unfreezeFrom: "mixed6" as const, batchSize: 8, learningRate: 1e-3, progress: false, liveChart: false };

for (const precision of ["bfloat16", "float32"] as const) {
  test(`${precision}: with the cache the frozen bottom runs once per image, and the run trains exactly as without it`, async () => {
    const data = await syntheticShapes({ classes: 3, perClass: 12, size: 64, seed: 5 });
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
    assert.deepEqual(trace(cached), trace(plain), "the same numbers, epoch by epoch");
    cached.dispose();
    plain.dispose();
  });
}

test("no cache where it cannot help: with distortions, with nothing frozen", async () => {
  const data = await syntheticShapes({ classes: 3, perClass: 8, size: 64, seed: 5 });
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
  const store = new ActivationStore({ test: 1 }, 6, "float32", 10, { root: scratch("frozen-bottom-disk"), memoryLimit: 0 });
  assert.ok(store.onDisk);
  const values = new Float32Array([1, -2, 3.5, 0, 1e-3, 7]);
  store.put(image, values);
  assert.deepEqual(Array.from(store.get([image])!), Array.from(values));
  const [file] = fs.readdirSync(store.dir).map((f) => `${store.dir}/${f}`);
  const bytes = fs.readFileSync(file);
  bytes[bytes.length - 1] ^= 1;
  fs.writeFileSync(file, bytes);
  assert.equal(store.get([image]), null, "a flipped bit is found");
  fs.writeFileSync(file, bytes.subarray(0, 20));
  assert.equal(store.get([image]), null, "a cut-short file is found");
  const half = new ActivationStore({ test: 1 }, 6, "bfloat16", 10, { root: scratch("frozen-bottom-disk-2"), memoryLimit: 1 << 20 });
  assert.ok(!half.onDisk);
  const bf16 = new Float32Array([1, -2, 3.5, 0, 0.125, 7]); // bfloat16 numbers: stored in 2 bytes each, exactly
  half.put(image, bf16);
  assert.deepEqual(Array.from(half.get([image])!), Array.from(bf16));
});
