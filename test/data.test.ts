import { test } from "node:test";
import * as assert from "node:assert/strict";
import * as fs from "fs";
import * as path from "path";
import { execFileSync } from "child_process";
import sharp from "sharp";
import { imageFolder, syntheticShapes, tf } from "inception-lab";
import { distort } from "../kernel-helpers/data/augment";
import { labelFromFolder, splitOf } from "../kernel-helpers/data/image-folder";
import { decodeFile } from "../kernel-helpers/network/decode";
import { scratch } from "./helpers";

const names = Array.from({ length: 5000 }, (_, i) => `image_${i}.jpg`);

test("the split is retrain.py's: identical to its SHA-1 rule computed in Python", () => {
  const sample = [...names.slice(0, 40), "photo_nohash_1.jpg", "Ünïcode name.png"];
  const python = `
import hashlib, re, sys
for name in sys.argv[1:]:
    h = int(hashlib.sha1(re.sub(r'_nohash_.*$', '', name).encode()).hexdigest(), 16)
    p = (h % (2**27)) * (100.0 / (2**27 - 1))
    print('validation' if p < 10 else 'test' if p < 20 else 'train')`;
  const expected = execFileSync("python3", ["-c", python, ...sample], { encoding: "utf8" }).trim().split("\n");
  assert.deepEqual(sample.map((n) => splitOf(n, 10, 10)), expected);
});

test("the split is stable, honours _nohash_, and hits the percentages within 1.5 points", () => {
  const first = names.map((n) => splitOf(`/a/${n}`, 10, 10));
  assert.deepEqual(names.map((n) => splitOf(`/other/folder/${n}`, 10, 10)), first, "only the file name counts");
  const share = (s: string) => (100 * first.filter((x) => x === s).length) / names.length;
  assert.ok(Math.abs(share("validation") - 10) < 1.5, `validation ${share("validation")} %`);
  assert.ok(Math.abs(share("test") - 10) < 1.5, `test ${share("test")} %`);
  const variants = Array.from({ length: 50 }, (_, i) => splitOf(`cat_${i % 5}_nohash_${i}.jpg`, 30, 30));
  for (let i = 0; i < 50; i++) assert.equal(variants[i], variants[i % 5], "near-duplicates share a split");
  assert.equal(splitOf("x.jpg", 0, 0), "train");
});

test("labels follow retrain.py: lower case, other characters to single spaces", () => {
  assert.equal(labelFromFolder("Red_Roses--2"), "red roses 2");
  assert.equal(labelFromFolder("daisy"), "daisy");
});

test("adding files does not move existing files between splits", async () => {
  const dir = scratch("split-stability");
  const make = async (cls: string, i: number) => {
    fs.mkdirSync(path.join(dir, cls), { recursive: true });
    await sharp({ create: { width: 8, height: 8, channels: 3, background: "#888" } }).jpeg().toFile(path.join(dir, cls, `${cls}_${i}.jpg`));
  };
  for (let i = 0; i < 30; i++) for (const c of ["a", "b"]) await make(c, i);
  const before = await imageFolder(dir);
  const assignment = new Map(before.examples().map((e) => [e.path, e.split]));
  for (let i = 30; i < 60; i++) for (const c of ["a", "b"]) await make(c, i);
  const after = await imageFolder(dir);
  assert.equal(after.files().length, 120);
  for (const e of after.examples()) if (assignment.has(e.path)) assert.equal(e.split, assignment.get(e.path));
  assert.deepEqual(after.classes, ["a", "b"]);
  assert.equal(after.files("train").length + after.files("validation").length + after.files("test").length, 120);
});

/** A 24-bit BMP writer: no library here writes BMP. */
function bmp(width: number, height: number, pixel: (x: number, y: number) => [number, number, number]): Buffer {
  const row = Math.ceil((width * 3) / 4) * 4;
  const buffer = Buffer.alloc(54 + row * height);
  buffer.write("BM", 0, "latin1");
  buffer.writeUInt32LE(buffer.length, 2);
  buffer.writeUInt32LE(54, 10);
  buffer.writeUInt32LE(40, 14);
  buffer.writeInt32LE(width, 18);
  buffer.writeInt32LE(height, 22);
  buffer.writeUInt16LE(1, 26);
  buffer.writeUInt16LE(24, 28);
  buffer.writeUInt32LE(row * height, 34);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const [r, g, b] = pixel(x, height - 1 - y);
      buffer.set([b, g, r], 54 + y * row + x * 3);
    }
  }
  return buffer;
}

test("every colour format decodes to the right RGB: grayscale, RGBA, CMYK, 16-bit, EXIF-rotated, GIF, BMP", async () => {
  const dir = scratch("colour-formats");
  // Left half red, right half blue: rotations and channel mix-ups both show.
  const w = 40, h = 20;
  const raw = Buffer.alloc(w * h * 3);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) raw.set(x < w / 2 ? [220, 20, 20] : [20, 20, 220], (y * w + x) * 3);
  const base = () => sharp(raw, { raw: { width: w, height: h, channels: 3 } });
  const file = (name: string) => path.join(dir, name);
  await base().jpeg({ quality: 95 }).toFile(file("rgb.jpg"));
  await base().toColourspace("b-w").jpeg({ quality: 95 }).toFile(file("gray.jpg"));
  await base().ensureAlpha(0.5).png().toFile(file("rgba.png"));
  await base().toColourspace("cmyk").jpeg({ quality: 95 }).toFile(file("cmyk.jpg"));
  await base().toColourspace("rgb16").png().toFile(file("16bit.png"));
  // Stored rotated 90 degrees counter-clockwise, with EXIF orientation 6 (display rotated 90 clockwise).
  await base().rotate(-90).jpeg({ quality: 95 }).withMetadata({ orientation: 6 }).toFile(file("exif6.jpg"));
  await base().gif().toFile(file("anim.gif"));
  fs.writeFileSync(file("bitmap.bmp"), bmp(w, h, (x) => (x < w / 2 ? [220, 20, 20] : [20, 20, 220])));

  const pixelAt = (pixels: Uint8Array, size: number, x: number, y: number) => Array.from(pixels.subarray((y * size + x) * 3, (y * size + x) * 3 + 3));
  const close = (actual: number[], expected: number[], tolerance: number, what: string) =>
    assert.ok(actual.every((v, i) => Math.abs(v - expected[i]) <= tolerance), `${what}: got [${actual}], expected about [${expected}]`);
  const size = 32;
  for (const name of ["rgb.jpg", "16bit.png", "exif6.jpg", "anim.gif", "bitmap.bmp"]) {
    const pixels = await decodeFile(file(name), size);
    assert.equal(pixels.length, size * size * 3);
    close(pixelAt(pixels, size, 4, 16), [220, 20, 20], 40, `${name} left`);
    close(pixelAt(pixels, size, 27, 16), [20, 20, 220], 40, `${name} right`);
  }
  // Saturated blue lies outside the CMYK gamut, so the round trip dulls it: check hue, not value.
  const cmyk = await decodeFile(file("cmyk.jpg"), size);
  const [left, right] = [pixelAt(cmyk, size, 4, 16), pixelAt(cmyk, size, 27, 16)];
  assert.ok(left[0] - left[2] > 80 && right[2] - right[0] > 80, `cmyk.jpg: left [${left}] should be red, right [${right}] blue`);
  const gray = await decodeFile(file("gray.jpg"), size);
  const g = pixelAt(gray, size, 4, 16);
  assert.ok(g[0] === g[1] && g[1] === g[2], "grayscale becomes three equal channels");
  const rgba = await decodeFile(file("rgba.png"), size);
  close(pixelAt(rgba, size, 4, 16), [238, 138, 138], 25, "half-transparent red over white");
});

test("bad files are skipped with their reason, never fatal; empty classes are left out; one class is an error", async () => {
  const dir = scratch("bad-files");
  const good = async (cls: string, name: string) => {
    fs.mkdirSync(path.join(dir, cls), { recursive: true });
    await sharp({ create: { width: 16, height: 16, channels: 3, background: "#468" } }).jpeg().toFile(path.join(dir, cls, name));
  };
  for (let i = 0; i < 3; i++) {
    await good("cats", `ok_${i}.jpg`);
    await good("dogs", `ok_${i}.jpg`);
  }
  await good("dogs/nested/deeper", "nested.jpg");
  const put = (rel: string, content: string | Buffer) => fs.writeFileSync(path.join(dir, rel), content);
  put("cats/empty.jpg", "");
  put("cats/notes.jpg", "these are notes, not a picture");
  const jpeg = fs.readFileSync(path.join(dir, "cats", "ok_0.jpg"));
  put("cats/truncated.jpg", jpeg.subarray(0, Math.floor(jpeg.length / 2)));
  put("cats/huge.png", Buffer.concat([fs.readFileSync(await writeHugePng(dir))]));
  put("cats/big.jpg", Buffer.concat([jpeg, Buffer.alloc(3_000_000)]));
  fs.symlinkSync(path.join(dir, "dogs"), path.join(dir, "dogs", "loop"));
  fs.symlinkSync("self.jpg", path.join(dir, "dogs", "self.jpg"));
  fs.symlinkSync("missing.jpg", path.join(dir, "dogs", "dangling.jpg"));
  fs.mkdirSync(path.join(dir, "dogs", "folder.jpg"));
  fs.mkdirSync(path.join(dir, "nothing usable"));
  put("nothing usable/broken.jpg", "x");

  const data = await imageFolder(dir, { maxFileBytes: 2_000_000, minImagesPerClass: 2 });
  assert.deepEqual(data.classes, ["cats", "dogs"]);
  assert.ok(data.warnings.some((w) => /nothing usable.*no usable image/.test(w)));
  const reasons = Object.fromEntries(data.skipped.map((s) => [path.relative(dir, s.path), s.reason]));
  assert.match(reasons["cats/empty.jpg"], /empty file/);
  assert.match(reasons["cats/notes.jpg"], /not an image/);
  assert.match(reasons["cats/big.jpg"], /file too large/);
  assert.match(reasons["dogs/loop"], /symbolic link loop/);
  assert.match(reasons["dogs/self.jpg"], /symbolic link loop/);
  assert.match(reasons["dogs/dangling.jpg"], /broken symbolic link/);
  assert.ok(data.files().some((f) => f.endsWith("nested.jpg")), "nested folders are read");

  // Truncated and oversized images are found while decoding: skipped and reported, the run goes on.
  const seen: string[] = [];
  for (const split of ["train", "validation", "test"] as const) {
    for await (const batch of data.batches(split, { inputSize: 32, batchSize: 4 })) {
      seen.push(...batch.files);
      assert.equal(batch.images.shape[0], batch.files.length);
      tf.dispose([batch.images, batch.labels]);
    }
  }
  const after = Object.fromEntries(data.skipped.map((s) => [path.relative(dir, s.path), s.reason]));
  assert.match(after["cats/truncated.jpg"], /cannot decode/);
  assert.match(after["cats/huge.png"], /larger than 100 megapixels/);
  assert.ok(!seen.some((f) => /truncated|huge/.test(f)));
  assert.equal(seen.length, 7);
  assert.match(data.report().toText(), /cats\/truncated\.jpg\s+cannot decode/);

  const lonely = scratch("one-class");
  fs.mkdirSync(path.join(lonely, "only"));
  await sharp({ create: { width: 8, height: 8, channels: 3, background: "#000" } }).jpeg().toFile(path.join(lonely, "only", "a.jpg"));
  await assert.rejects(imageFolder(lonely), new RegExp(`${lonely}: 1 class folder.*at least 2`));
  await assert.rejects(imageFolder(path.join(lonely, "nope")), /nope: no such folder/);
  await assert.rejects(imageFolder(dir, { validationPercent: 60, testPercent: 50 }), /leave some images for training/);
});

/** A valid PNG header claiming 20000 x 20000 pixels (a decompression bomb), with a tiny body. */
async function writeHugePng(dir: string): Promise<string> {
  const file = path.join(dir, "huge-source.png");
  const png = await sharp({ create: { width: 1, height: 1, channels: 3, background: "#000" } }).png().toBuffer();
  png.writeUInt32BE(20000, 16);
  png.writeUInt32BE(20000, 20);
  // Fix the IHDR CRC so the header itself is valid.
  const zlib = require("zlib") as typeof import("zlib");
  png.writeUInt32BE(zlib.crc32 ? zlib.crc32(png.subarray(12, 29)) : crc32(png.subarray(12, 29)), 29);
  fs.writeFileSync(file, png);
  return file;
}

function crc32(bytes: Buffer): number {
  let crc = ~0;
  for (const byte of bytes) {
    crc ^= byte;
    for (let k = 0; k < 8; k++) crc = (crc >>> 1) ^ (0xedb88320 & -(crc & 1));
  }
  return ~crc >>> 0;
}

test("syntheticShapes is deterministic and batches carry the right labels", async () => {
  const a = await syntheticShapes({ classes: 3, perClass: 6, imageSize: 48, seed: 3, dir: path.join(scratch("shapes-a"), "set") });
  const b = await syntheticShapes({ classes: 3, perClass: 6, imageSize: 48, seed: 3, dir: path.join(scratch("shapes-b"), "set") });
  assert.deepEqual(a.classes, ["circle", "square", "triangle"]);
  const bytes = (f: string) => fs.readFileSync(f);
  assert.deepEqual(a.files().map((f) => bytes(f)), b.files().map((f) => bytes(f)));
  const labels: number[] = [];
  const files: string[] = [];
  for await (const batch of a.batches("train", { inputSize: 48, batchSize: 4, shuffle: true, seed: 1 })) {
    labels.push(...(await batch.labels.data()));
    files.push(...batch.files);
    tf.dispose([batch.images, batch.labels]);
  }
  assert.deepEqual(files.map((f) => a.classes.indexOf(path.basename(path.dirname(f)))), labels);
  assert.deepEqual([...files].sort(), a.files("train").sort());
  assert.notDeepEqual(files, a.files("train"), "shuffled");
});

test("distortions change images within bounds and leave no tensors behind", () => {
  const x = tf.randomUniform([4, 32, 32, 3], 0, 255) as tf.Tensor4D;
  const before = tf.memory().numTensors;
  let s = 1;
  const random = () => ((s = (s * 16807) % 2147483647) / 2147483647);
  const y = distort(x, { flipLeftRight: true, randomCrop: 10, randomScale: 10, randomBrightness: 20, rotation: 15, zoom: 0.1, shift: 0.1 }, random);
  const same = distort(x, {}, random);
  assert.equal(tf.memory().numTensors, before + 2, "only the two results remain");
  tf.tidy(() => {
    assert.deepEqual(y.shape, x.shape);
    assert.ok(tf.max(y).dataSync()[0] <= 255 && tf.min(y).dataSync()[0] >= 0);
    assert.ok(tf.mean(tf.abs(tf.sub(x, y))).dataSync()[0] > 1);
    assert.ok(tf.max(tf.abs(tf.sub(x, same))).dataSync()[0] < 1e-3, "no distortions: unchanged");
  });
  tf.dispose([y, same]);
  x.dispose();
});

test("streaming a 2,000-image folder at 299x299 keeps RSS and tensors flat", async (t) => {
  const data = await syntheticShapes({ classes: 5, perClass: 400, imageSize: 64, seed: 9, dir: path.join(scratch("rss-2000"), "set"), folderOptions: { validationPercent: 0, testPercent: 0 } });
  assert.equal(data.files("train").length, 2000);
  const rss: number[] = [];
  const tensors: number[] = [];
  let count = 0;
  const started = performance.now();
  for await (const batch of data.batches("train", { inputSize: 299, batchSize: 32 })) {
    count += batch.files.length;
    tf.dispose([batch.images, batch.labels]);
    rss.push(process.memoryUsage.rss());
    tensors.push(tf.memory().numTensors);
  }
  const seconds = (performance.now() - started) / 1000;
  assert.equal(count, 2000);
  const warm = rss[Math.min(5, rss.length - 1)];
  const growth = (Math.max(...rss.slice(5)) - warm) / 2 ** 20;
  t.diagnostic(`${(count / seconds).toFixed(0)} images/s decoded to 299x299; RSS ${(warm / 2 ** 20).toFixed(0)} MB after 6 batches, growth after that ${growth.toFixed(0)} MB`);
  assert.ok(growth < 150, `RSS grew ${growth.toFixed(0)} MB over the run`);
  assert.equal(Math.max(...tensors), Math.min(...tensors), "tensor count flat");
});
