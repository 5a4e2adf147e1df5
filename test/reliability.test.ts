// Losing nothing: every case of issue 12, tried as a hostile but realistic user would. Each test failed
// on the code before that work (the note on the issue says how). Small budgets: 75 px, a few images.
import { test } from "node:test";
import * as assert from "node:assert/strict";
import * as fs from "fs";
import * as path from "path";
import { execFileSync } from "child_process";
import sharp from "sharp";
import { fineTune, imageFolder, lastRun, loadClassifier, loadInceptionV3, retrainFinalLayer, syntheticShapes, tf } from "inception-lab";
import type { ImageFolder, Inception } from "inception-lab";
import { cachedDownload, cacheDir } from "../kernel-helpers/util/download";
import { flowers } from "../kernel-helpers/data/datasets";
import { injectFaults, LEFTOVER, tree } from "./faults";
import { root, scratch, serveFolder } from "./helpers";

process.env.INCEPTION_LAB_CACHE = scratch("reliability-cache");
const quiet = { progress: false, liveChart: false };
let shared: { inception: Inception; data: ImageFolder } | null = null;
async function setup() {
  shared ??= {
    inception: await loadInceptionV3({ weights: "bundled", inputSize: 75 }),
    data: await syntheticShapes({ classes: 3, perClass: 12, imageSize: 64, seed: 5, dir: path.join(scratch("reliability-data"), "shapes") }),
  };
  return shared;
}
const contents = (dir: string) => tree(dir).map((f) => (f.endsWith("/") ? f : `${f} ${fs.readFileSync(path.join(dir, f)).toString("base64").slice(0, 40)}`));

test("save and checkpoints never replace what the user made: folders with other files, files, are refused untouched", async () => {
  const { inception, data } = await setup();
  const dir = scratch("data-loss");
  fs.writeFileSync(path.join(dir, "notes.md"), "my notes");
  fs.mkdirSync(path.join(dir, "other-model"));
  fs.writeFileSync(path.join(dir, "other-model", "model.json"), "{}");
  fs.writeFileSync(path.join(dir, "x.txt"), "keep me");
  const before = contents(dir);
  const run = await retrainFinalLayer(inception, data, { ...quiet, epochs: 2 });
  await assert.rejects(run.save(dir), /holds files Inception Lab did not write \(notes\.md, other-model, x\.txt\).*never replaces those/);
  await assert.rejects(run.save(path.join(dir, "x.txt")), /x\.txt is a file, not a folder/);
  await assert.rejects(run.save(path.join(dir, "other-model")), /holds files Inception Lab did not write \(model\.json\)/);
  assert.deepEqual(contents(dir), before, "nothing changed");

  const user = path.join(dir, "results");
  fs.mkdirSync(user);
  fs.writeFileSync(path.join(user, "important.csv"), "a,b\n1,2\n");
  const started = performance.now();
  await assert.rejects(retrainFinalLayer(inception, data, { ...quiet, epochs: 2, checkpointDir: user }), /checkpointDir: .*results holds files Inception Lab did not write \(important\.csv\)/);
  assert.ok(performance.now() - started < 2000, "refused before any work");
  assert.equal(fs.readFileSync(path.join(user, "important.csv"), "utf8"), "a,b\n1,2\n");

  const mine = path.join(dir, "mine");
  await run.save(mine);
  await run.save(mine); // the library's own folder is replaced, whole
  assert.deepEqual((await loadClassifier(mine)).classes, data.classes);
  assert.deepEqual(tree(dir).filter((f) => LEFTOVER.test(f)), []);
});

test("a generated data set, a save and a checkpoint go into folders that do not exist yet (a clean clone's case)", async () => {
  const { inception } = await setup();
  const fresh = path.join(scratch("fresh-folders"), "not", "there");
  const data = await syntheticShapes({ classes: 2, perClass: 6, imageSize: 48, seed: 3, dir: path.join(fresh, "data", "shapes") });
  assert.equal(data.files().length, 12);
  const run = await retrainFinalLayer(inception, data, { ...quiet, epochs: 1, checkpointDir: path.join(fresh, "runs", "checkpoint") });
  await run.save(path.join(fresh, "models", "shapes"));
  assert.deepEqual((await loadClassifier(path.join(fresh, "models", "shapes"))).classes, data.classes);
  assert.ok(fs.readdirSync(path.join(fresh, "runs", "checkpoint")).length > 0, "checkpoint written");
  assert.deepEqual(tree(fresh).filter((f) => LEFTOVER.test(f) || f.endsWith(".lock")), []);
});

test("resuming a checkpoint of another kind of run is refused, and the caller's network and its feature cache stay as they were", async () => {
  const { inception, data } = await setup();
  const dir = path.join(scratch("poison"), "run");
  const probe = tf.randomUniform([2, 75, 75, 3], 0, 255, "float32", 3);
  const featuresBefore = await inception.features(probe, { layer: "mixed7" });
  await fineTune(inception, data, { ...quiet, epochs: 1, warmupEpochs: 1, batchSize: 8, unfreezeFrom: "mixed6", checkpointDir: dir });
  await assert.rejects(retrainFinalLayer(inception, data, { ...quiet, epochs: 2, checkpointDir: dir, resume: true }), /does not fit this run: it is a checkpoint of a fine-tune run, and this is a retrain-final-layer run/);
  const featuresAfter = await inception.features(probe, { layer: "mixed7" });
  assert.equal(tf.max(tf.abs(tf.sub(featuresBefore, featuresAfter))).dataSync()[0], 0, "the caller's network is unchanged");

  // Weights changed in place are a new network to the cache: its features are computed, not served stale.
  const copy = await inception.clone();
  const first = await retrainFinalLayer(copy, data, { ...quiet, epochs: 1 });
  const conv = copy.model.getLayer("conv2d_1");
  conv.setWeights(conv.getWeights().map((w) => tf.mul(w, 1.5)));
  const second = await retrainFinalLayer(copy, data, { ...quiet, epochs: 1 });
  assert.equal(second.info.bottlenecks!.cached, 0, `after the change: ${JSON.stringify(second.info.bottlenecks)} (before: ${JSON.stringify(first.info.bottlenecks)})`);
  tf.dispose([probe, featuresBefore, featuresAfter]);
});

test("resume never overwrites a better checkpoint, and the run's best is the weights it keeps", async () => {
  const { inception, data } = await setup();
  const dir = path.join(scratch("resume-best"), "run");
  const stopAfter = (epoch: number) => ({ onEpochEnd: (record: { epoch: number }, loop: { stop(reason: string): void }) => void (record.epoch === epoch && loop.stop("stopped by the test")) });
  const first = await retrainFinalLayer(inception, data, { ...quiet, epochs: 10, batchSize: 8, learningRate: 0.05, checkpointDir: dir, callbacks: stopAfter(3) });
  const saved = JSON.parse(fs.readFileSync(path.join(dir, "history.json"), "utf8"));
  const best = first.bestValidationAccuracy!;
  // Resumed with a learning rate too small to change anything: no later epoch beats the checkpoint.
  const resumed = await retrainFinalLayer(inception, data, { ...quiet, epochs: 6, batchSize: 8, learningRate: 1e-12, checkpointDir: dir, resume: true });
  assert.equal(JSON.parse(fs.readFileSync(path.join(dir, "history.json"), "utf8")).epoch, saved.epoch, "the checkpoint is the same epoch");
  assert.equal(resumed.info.checkpointsWritten, 0);
  assert.equal(resumed.bestValidationAccuracy, best);
  assert.equal((await resumed.evaluate({ split: "validation" })).accuracy, best, "the weights kept score the best reported");
});

test("damaged feature files (empty, random bytes, cut short) are found and computed again; training never sees them", async () => {
  const { inception, data } = await setup();
  const cache = scratch("damaged-cache");
  const first = await retrainFinalLayer(inception, data, { ...quiet, epochs: 1, cacheDir: cache });
  const files = tree(cache).filter((f) => f.endsWith(".f32")).map((f) => path.join(cache, f));
  assert.ok(files.length > 20);
  fs.writeFileSync(files[0], "");
  fs.writeFileSync(files[1], Buffer.from(Array.from({ length: fs.statSync(files[2]).size }, (_, i) => (i * 37) % 256)));
  fs.writeFileSync(files[2], fs.readFileSync(files[2]).subarray(0, 100));
  const bytes = fs.readFileSync(files[3]);
  bytes[bytes.length - 1] ^= 0xff;
  fs.writeFileSync(files[3], bytes);
  const second = await retrainFinalLayer(inception, data, { ...quiet, epochs: 3, cacheDir: cache });
  assert.equal(second.info.bottlenecks!.repaired, 4);
  assert.equal(second.info.bottlenecks!.computed, 4);
  assert.equal(second.info.bottlenecks!.cached, first.info.bottlenecks!.computed - 4);
  assert.ok(second.history.steps.every((s) => Number.isFinite(s.loss)));
  const third = await retrainFinalLayer(inception, data, { ...quiet, epochs: 1, cacheDir: cache });
  assert.equal(third.info.bottlenecks!.repaired, 0, "the repaired files are good now");
});

test("an interrupt during feature extraction ends the call with a consistent run, and nothing trains afterwards", async () => {
  const { inception } = await setup();
  const data = await syntheticShapes({ classes: 2, perClass: 120, imageSize: 64, seed: 8, dir: path.join(scratch("interrupt-features"), "set") });
  const cache = scratch("interrupt-cache");
  setTimeout(() => process.emit("SIGINT"), 50);
  const run = await retrainFinalLayer(inception, data, { ...quiet, epochs: 5, cacheDir: cache });
  assert.equal(run.info.stopReason, "interrupted");
  assert.equal(run.history.steps.length, 0);
  assert.equal(lastRun(), run);
  const cached = tree(cache).filter((f) => f.endsWith(".f32")).length;
  assert.ok(cached > 0 && cached < data.files().length, `${cached} features cached before the interrupt`);
  await new Promise((resolve) => setTimeout(resolve, 300));
  assert.equal(run.history.steps.length, 0, "no training in the background");
  assert.deepEqual(tree(cache).filter((f) => LEFTOVER.test(f)), []);
});

test("a full disk: a checkpoint that cannot be written is reported and the run goes on; a failed save and cache writes leave no temporary files", async () => {
  const { inception, data } = await setup();
  const dir = scratch("disk-full");
  const checkpointDir = path.join(dir, "checkpoint");
  const cache = path.join(dir, "cache");
  const faults = injectFaults({ failWrite: (file) => file.startsWith(checkpointDir) || file.startsWith(cache + "/") });
  let run;
  try {
    run = await retrainFinalLayer(inception, data, { ...quiet, epochs: 4, checkpointDir, cacheDir: cache });
  } finally {
    faults.restore();
  }
  assert.equal(run.history.epochs.length, 4, "all epochs trained");
  assert.equal(lastRun(), run);
  assert.match(run.info.warnings.join("\n"), /checkpoint of epoch 1 was not written \(cannot write .*checkpoint: the disk is full: free some space and run it again \(ENOSPC\)\.\) Training goes on/);
  assert.ok(faults.counts.enospc > 3);
  assert.deepEqual(tree(dir).filter((f) => LEFTOVER.test(f) || f.endsWith(".f32")), [], "no temporary files, no cached features");

  const failing = injectFaults({ failWrite: (file) => file.includes("saved-model") });
  try {
    await assert.rejects(run.save(path.join(dir, "saved-model")), /cannot write .*saved-model: the disk is full: free some space and run it again \(ENOSPC\)/);
  } finally {
    failing.restore();
  }
  assert.deepEqual(tree(dir).filter((f) => f.includes("saved-model")), [], "nothing left of the failed save");
});

test("a really full disk (a 2 MB tmpfs): save fails with a clear message and leaves the disk as it was", async (t) => {
  const mount = scratch("tmpfs");
  try {
    execFileSync("mount", ["-t", "tmpfs", "-o", "size=2m", "tmpfs", mount], { stdio: "ignore" });
  } catch {
    t.diagnostic("mount is not permitted here: the in-process injection above covers ENOSPC");
    return;
  }
  try {
    const { inception, data } = await setup();
    const run = await fineTune(inception, data, { ...quiet, epochs: 1, warmupEpochs: 0, batchSize: 8, unfreezeFrom: "mixed7" });
    fs.writeFileSync(path.join(mount, "user-file.txt"), "mine");
    await assert.rejects(run.save(path.join(mount, "model")), /the disk is full.*ENOSPC/);
    assert.deepEqual(fs.readdirSync(mount), ["user-file.txt"]);
  } finally {
    execFileSync("umount", [mount]);
  }
});

test("two callers making the same generated data set at once share it; so do two flowers() downloads", async () => {
  const dir = path.join(scratch("concurrent-shapes"), "set");
  const [a, b] = await Promise.all([0, 1].map(() => syntheticShapes({ classes: 2, perClass: 30, imageSize: 48, seed: 11, dir })));
  assert.deepEqual(a.files(), b.files());
  assert.equal(a.files().length, 60);
  const child = (code: string) =>
    new Promise<string>((resolve, reject) => {
      const { spawn } = require("child_process") as typeof import("child_process");
      const p = spawn(process.execPath, ["--require", "ts-node/register/transpile-only", "-e", code], { cwd: root, env: process.env });
      let out = "";
      p.stdout.on("data", (d: Buffer) => (out += d));
      p.stderr.on("data", (d: Buffer) => (out += d));
      p.on("close", (status: number) => (status === 0 ? resolve(out) : reject(new Error(out))));
    });
  const other = path.join(scratch("concurrent-processes"), "set");
  const make = `require("inception-lab").syntheticShapes({ classes: 2, perClass: 40, imageSize: 48, seed: 12, dir: ${JSON.stringify(other)} }).then((d) => console.log(d.files().length))`;
  const outputs = await Promise.all([child(make), child(make)]);
  outputs.forEach((out) => assert.match(out, /^80$/m));

  const served = scratch("served-concurrent");
  const source = await syntheticShapes({ classes: 5, perClass: 4, imageSize: 32, dir: path.join(scratch("flowers-source-2"), "set") });
  ["daisy", "dandelion", "roses", "sunflowers", "tulips"].forEach((name, i) => fs.cpSync(path.join(source.dir, source.classes[i]), path.join(served, "flower_photos", name), { recursive: true }));
  const tar: typeof import("tar") = require("tar");
  await tar.c({ gzip: true, file: path.join(served, "flower_photos.tgz"), cwd: served }, ["flower_photos"]);
  const server = await serveFolder(served);
  const saved = process.env.INCEPTION_LAB_CACHE;
  process.env.INCEPTION_LAB_CACHE = scratch("concurrent-flowers-cache");
  process.env.INCEPTION_LAB_FLOWERS_URL = `${server.url}flower_photos.tgz`;
  try {
    const [x, y] = await Promise.all([flowers({ minImagesPerClass: 4 }), flowers({ minImagesPerClass: 4 })]);
    assert.equal(x.files().length, 20);
    assert.deepEqual(x.files(), y.files());
    assert.equal(server.log.filter((r) => r.url.endsWith(".tgz")).length, 1, "downloaded once");
  } finally {
    delete process.env.INCEPTION_LAB_FLOWERS_URL;
    process.env.INCEPTION_LAB_CACHE = saved;
    await server.close();
  }
});

test("downloads: a partial file longer than the remote one starts over; a cut connection says so and resumes next time", async () => {
  const served = scratch("served-cut");
  const payload = Buffer.alloc(2_000_000).map((_, i) => (i * 13) % 251);
  fs.writeFileSync(path.join(served, "blob.bin"), payload);
  const server = await serveFolder(served);
  const saved = process.env.INCEPTION_LAB_CACHE;
  process.env.INCEPTION_LAB_CACHE = scratch("download-faults");
  try {
    const target = path.join(cacheDir("d"), "blob.bin");
    fs.writeFileSync(`${target}.part`, Buffer.alloc(3_000_000));
    await cachedDownload(`${server.url}blob.bin`, "blob.bin", { subdir: "d" });
    assert.deepEqual(fs.readFileSync(target), payload);
    assert.ok(!fs.existsSync(`${target}.part`));

    // A server that sends half the body and drops the connection.
    const http = require("http") as typeof import("http");
    const cutter = http.createServer((req, res) => {
      res.writeHead(200, { "content-length": String(payload.length) });
      res.write(payload.subarray(0, 700_000), () => res.destroy());
    });
    await new Promise<void>((resolve) => cutter.listen(0, "127.0.0.1", resolve));
    const url = `http://127.0.0.1:${(cutter.address() as import("net").AddressInfo).port}/blob.bin`;
    try {
      await assert.rejects(cachedDownload(url, "cut.bin", { subdir: "d" }), /cut off after \d\.\d MB of 2\.0 MB .*Run it again: it resumes where it stopped/);
    } finally {
      cutter.close();
    }
    const arrived = fs.statSync(path.join(cacheDir("d"), "cut.bin.part")).size;
    assert.ok(arrived > 0 && arrived <= 700_000, `the part that arrived is kept (${arrived} bytes)`);
    fs.copyFileSync(path.join(served, "blob.bin"), path.join(served, "cut.bin"));
    await cachedDownload(`${server.url}cut.bin`, "cut.bin", { subdir: "d" });
    assert.equal(server.log[server.log.length - 1].range, `bytes=${arrived}-`, "resumed where the cut left it");
    assert.deepEqual(fs.readFileSync(path.join(cacheDir("d"), "cut.bin")), payload);
  } finally {
    process.env.INCEPTION_LAB_CACHE = saved;
    await server.close();
  }
});

test("labels.json that does not fit its model is refused with the file named", async () => {
  const { inception, data } = await setup();
  const run = await retrainFinalLayer(inception, data, { ...quiet, epochs: 1 });
  const dir = await run.save(path.join(scratch("labels"), "model"));
  const copy = path.join(path.dirname(dir), "edited");
  fs.cpSync(dir, copy, { recursive: true });
  fs.rmSync(path.join(copy, "inception-lab-manifest.json"));
  fs.writeFileSync(path.join(copy, "labels.json"), JSON.stringify({ classes: ["a", "b"], inputSize: 75 }));
  await assert.rejects(loadClassifier(copy), /edited\/labels\.json names 2 classes, but the model has 3 outputs/);
  fs.writeFileSync(path.join(copy, "labels.json"), "{}");
  await assert.rejects(loadClassifier(copy), /labels\.json has no list of class names/);
  // With its manifest, any change to the folder's files is caught.
  fs.writeFileSync(path.join(dir, "labels.json"), JSON.stringify({ classes: ["a", "b", "c"], inputSize: 75 }));
  await assert.rejects(loadClassifier(dir), /model\/labels\.json is damaged/);
});

test("a data set with an empty training split is refused before any work", async () => {
  const { inception } = await setup();
  const data = await imageFolder((await setup()).data.dir, { testPercent: 89.99, validationPercent: 10 });
  const started = performance.now();
  for (const train of [() => retrainFinalLayer(inception, data, quiet), () => fineTune(inception, data, quiet)]) {
    await assert.rejects(train(), /the training split is empty \(validationPercent 10 \+ testPercent 89\.99 leave no image for training\)/);
  }
  assert.ok(performance.now() - started < 3000);
});

test("class folders: names that give no label are an error, two that give one label a warning, a link up the tree is left out", async () => {
  const make = async (dir: string, classes: string[]) => {
    for (const c of classes) {
      fs.mkdirSync(path.join(dir, c), { recursive: true });
      for (let i = 0; i < 3; i++) await sharp({ create: { width: 8, height: 8, channels: 3, background: "#468" } }).jpeg().toFile(path.join(dir, c, `${c.replace(/\W/g, "x")}_${i}.jpg`));
    }
  };
  const empty = scratch("class-empty");
  await make(empty, ["!!!", "___", "cats"]);
  await assert.rejects(imageFolder(empty), /the class folders "!!!", "___" give an empty label/);
  const cased = scratch("class-case");
  await make(cased, ["Roses", "roses", "tulips"]);
  const data = await imageFolder(cased, { minImagesPerClass: 1 });
  assert.deepEqual(data.classes, ["roses", "tulips"]);
  assert.ok(data.warnings.some((w) => /"Roses" and "roses" give the same label "roses"/.test(w)));
  const linked = path.join(scratch("class-link"), "set");
  await make(linked, ["cats", "dogs"]);
  fs.symlinkSync("..", path.join(linked, "up"));
  const withLink = await imageFolder(linked, { minImagesPerClass: 1 });
  assert.deepEqual(withLink.classes, ["cats", "dogs"]);
  assert.ok(withLink.warnings.some((w) => /"up" links to .* which contains the data set itself: left out/.test(w)));
});

test("bad options fail before any work, naming the option", async () => {
  const { inception, data } = await setup();
  const cases: [object, RegExp][] = [
    [{ learningRate: Infinity }, /learningRate is Infinity: it must be a finite number above 0/],
    [{ earlyStopping: -1 }, /earlyStopping is -1: use a whole number of at least 1/],
    [{ earlyStopping: 0 }, /earlyStopping is 0/],
    [{ maxSeconds: -5 }, /maxSeconds is -5/],
    [{ batchSize: 2.5 }, /batchSize is 2\.5/],
    [{ learningrate: 0.1 }, /there is no option "learningrate"\. Did you mean "learningRate"\?/],
    [{ distortions: { flip: true } }, /distortions: there is no option "flip"/],
    [{ distortions: { randomCrop: 500 } }, /distortions\.randomCrop is 500/],
  ];
  for (const [options, expected] of cases) await assert.rejects(retrainFinalLayer(inception, data, options as never), expected);
  await assert.rejects(fineTune(inception, data, { warmupEpochs: -1 }), /warmupEpochs is -1/);
});

test("raw errors become clear ones: checkpoint files, the cache folder, predict and features on odd input", async () => {
  const { inception, data } = await setup();
  const dir = path.join(scratch("raw-errors"), "run");
  await retrainFinalLayer(inception, data, { ...quiet, epochs: 1, checkpointDir: dir });
  const four = await syntheticShapes({ classes: 4, perClass: 8, imageSize: 64, seed: 5, dir: path.join(scratch("four-classes"), "set") });
  await assert.rejects(retrainFinalLayer(inception, four, { ...quiet, checkpointDir: dir, resume: true }), /it has 3 classes \(circle, square, triangle\), the data set 4/);
  const history = path.join(dir, "history.json");
  const good = fs.readFileSync(history);
  for (const [content, expected] of [["", /history\.json is damaged/], ['{"epoch":"1"}', /history\.json is damaged/]] as const) {
    fs.writeFileSync(history, content);
    await assert.rejects(retrainFinalLayer(inception, data, { ...quiet, checkpointDir: dir, resume: true }), expected);
  }
  // Past the manifest (a folder edited by hand and its manifest with it), the history itself is checked.
  fs.writeFileSync(history, '{"epoch":"1"}');
  const manifestFile = path.join(dir, "inception-lab-manifest.json");
  const manifest = JSON.parse(fs.readFileSync(manifestFile, "utf8"));
  manifest.files["history.json"] = { bytes: 13, sha256: require("crypto").createHash("sha256").update('{"epoch":"1"}').digest("hex") };
  fs.writeFileSync(manifestFile, JSON.stringify(manifest));
  await assert.rejects(retrainFinalLayer(inception, data, { ...quiet, checkpointDir: dir, resume: true }), /history\.json has no epoch number \(epoch: "1"\)/);
  fs.writeFileSync(history, good);

  const saved = process.env.INCEPTION_LAB_CACHE;
  const file = path.join(scratch("cache-is-a-file"), "cache");
  fs.writeFileSync(file, "not a folder");
  process.env.INCEPTION_LAB_CACHE = file;
  try {
    await assert.rejects(retrainFinalLayer(inception, data, quiet), /INCEPTION_LAB_CACHE \(.*cache\) is a file, not a folder/);
  } finally {
    process.env.INCEPTION_LAB_CACHE = saved;
  }

  const run = await retrainFinalLayer(inception, data, { ...quiet, epochs: 1 });
  const [image] = data.files("test");
  const features = await inception.features([image], { layer: "mixed7" });
  assert.deepEqual(features.shape, [1, 768], "features() takes file paths");
  await assert.rejects(run.predict(data.dir), /is a folder: give image files/);
  await assert.rejects(run.predict([]), /predict: give an image file path/);
  const notImage = path.join(scratch("odd-files"), "notes.jpg");
  fs.writeFileSync(notImage, "just text");
  await assert.rejects(run.predict(notImage), /cannot decode .*notes\.jpg/);
  const lying = path.join(path.dirname(notImage), "lying.bmp");
  const bmp = Buffer.alloc(70);
  bmp.write("BM", 0, "latin1");
  bmp.writeUInt32LE(54, 10);
  bmp.writeUInt32LE(40, 14);
  bmp.writeInt32LE(30000, 18);
  bmp.writeInt32LE(30000, 22);
  bmp.writeUInt16LE(1, 26);
  bmp.writeUInt16LE(24, 28);
  fs.writeFileSync(lying, bmp);
  await assert.rejects(run.predict(lying), /cannot decode .*lying\.bmp/);
  features.dispose();
});

test("a read-only cache with missing features: the run keeps its features in memory and says so", async () => {
  const { inception, data } = await setup();
  const cache = scratch("read-only-cache");
  const readOnly = injectFaults({ failWrite: (file) => file.startsWith(cache) });
  const warnings: string[] = [];
  const warn = console.warn;
  console.warn = (message: string) => void warnings.push(message);
  try {
    const run = await retrainFinalLayer(inception, data, { ...quiet, epochs: 2, cacheDir: cache });
    assert.equal(run.history.epochs.length, 2);
    assert.match(run.info.warnings.join("\n"), /the feature cache was not written .*; this run keeps its features in memory/, "the run's warnings say it too");
    const evaluation = await run.evaluate();
    assert.equal(evaluation.files.length, data.files("test").length, "evaluation uses the features kept in memory");
  } finally {
    console.warn = warn;
    readOnly.restore();
  }
  assert.ok(warnings.some((w) => /the feature cache was not written \(cannot write .*\); this run keeps its features in memory/.test(w)), warnings.join("\n"));
});

test("a folder none of whose images reads trains nothing and says so; so does a run whose folder went away; an evaluation on nothing is an error", async () => {
  const { inception } = await setup();
  const dir = path.join(scratch("truncated-jpegs"), "set");
  const made = await syntheticShapes({ classes: 2, perClass: 6, imageSize: 48, seed: 2, dir });
  // Each file keeps a valid JPEG header and loses the rest: it lists as an image, and no decoder can read it.
  for (const file of made.files()) fs.writeFileSync(file, fs.readFileSync(file).subarray(0, 40));
  const broken = await imageFolder(dir, { minImagesPerClass: 1, validationPercent: 20, testPercent: 20 });
  await assert.rejects(fineTune(inception, broken, { ...quiet, epochs: 1, warmupEpochs: 0, unfreezeFrom: "mixed7" }), /no training image could be read, so nothing was trained \(\d+ files? skipped: cannot decode/);
  await assert.rejects(retrainFinalLayer(inception, broken, { ...quiet, epochs: 1 }), /no training image could be read, so nothing was trained/);
  assert.equal(lastRun()!.info.stopReason, "failed", "lastRun() says the call failed, not that it completed");

  const good = await syntheticShapes({ classes: 2, perClass: 6, imageSize: 48, seed: 3, dir: path.join(scratch("goes-away"), "set"), folderOptions: { minImagesPerClass: 1 } });
  const run = await fineTune(inception, good, { ...quiet, epochs: 1, warmupEpochs: 0, unfreezeFrom: "mixed7", frozenBottomCache: false });
  fs.rmSync(good.dir, { recursive: true });
  await assert.rejects(run.fit({ epochs: 2 }), /no training image could be read, so nothing was trained/);
  await assert.rejects(run.evaluate(), /none of the \d+ test images could be read/);
  run.dispose();
});

test("class folders that share image files through a link are said, in one line", async () => {
  const dir = path.join(scratch("shared-through-link"), "set");
  await syntheticShapes({ classes: 2, perClass: 5, imageSize: 48, seed: 4, dir });
  const [a, b] = fs.readdirSync(dir).filter((name) => !name.startsWith("."));
  fs.symlinkSync(path.join(dir, a, fs.readdirSync(path.join(dir, a))[0]), path.join(dir, b, "borrowed.jpg"));
  const data = await imageFolder(dir, { minImagesPerClass: 1 });
  assert.match(data.warnings.join("\n"), new RegExp(`classes "${a}" and "${b}" hold the same 1 image file \\(a folder linking into another\\?\\): each is trained under both labels`));
});
