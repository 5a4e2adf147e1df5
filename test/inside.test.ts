// The teaching data set where pretrained features fall short, and the tools that look inside a
// trained network (lab/inside.ts): each must show what it claims, and be able to fail.
import { test } from "node:test";
import * as assert from "node:assert/strict";
import * as fs from "fs";
import * as path from "path";
import sharp from "sharp";
import { centroidAccuracy, featuresBeforeAfter, fineTune, gradCam, imageFolder, loadInceptionV3, plot, retrainFinalLayer, syntheticMirrors, syntheticShapes, tf, weightChange } from "inception-lab";
import { renderShape, SHAPES } from "../kernel-helpers/data/render";
import { seededRandom } from "../kernel-helpers/util/random";
import { scratch } from "./helpers";

process.env.INCEPTION_LAB_CACHE = scratch("inside-cache");
const quiet = { progress: false, liveChart: false };

test("syntheticMirrors is deterministic: two glyphs and their mirror images", async () => {
  const a = await syntheticMirrors({ perClass: 5, imageSize: 64, seed: 2, dir: path.join(scratch("mirrors-a"), "set") });
  const b = await syntheticMirrors({ perClass: 5, imageSize: 64, seed: 2, dir: path.join(scratch("mirrors-b"), "set") });
  assert.deepEqual(a.classes, ["f", "f mirrored", "l", "l mirrored"]);
  assert.deepEqual(a.files().map((f) => fs.readFileSync(f)), b.files().map((f) => fs.readFileSync(f)));
  const c = await syntheticMirrors({ perClass: 5, imageSize: 64, seed: 3, dir: path.join(scratch("mirrors-c"), "set") });
  assert.notDeepEqual(a.files().map((f) => fs.readFileSync(f)), c.files().map((f) => fs.readFileSync(f)), "another seed, other images");
});

test("the pretrained network's frozen features separate the mirrored glyphs clearly worse than the shapes", async (t) => {
  const inception = await loadInceptionV3({ weights: "bundled", inputSize: 128 });
  const accuracy = async (data: Awaited<ReturnType<typeof syntheticShapes>>) => {
    const examples = data.examples();
    const features = await inception.features(examples.map((e) => e.path), { layer: "mixed7" });
    const result = centroidAccuracy(features, examples.map((e) => e.label));
    features.dispose();
    return result;
  };
  const shapes = await accuracy(await syntheticShapes({ classes: 4, perClass: 30, imageSize: 128, seed: 4, dir: path.join(scratch("probe-shapes"), "set") }));
  const mirrors = await accuracy(await syntheticMirrors({ perClass: 30, imageSize: 128, seed: 4, dir: path.join(scratch("probe-mirrors"), "set") }));
  t.diagnostic(`nearest-centroid accuracy of frozen mixed7 features (4 classes, chance 0.25): shapes ${shapes.toFixed(2)}, mirrored glyphs ${mirrors.toFixed(2)}`);
  assert.ok(shapes >= 0.85, `shapes ${shapes}`);
  assert.ok(mirrors <= 0.6 && mirrors < shapes - 0.3, `mirrored glyphs ${mirrors} vs shapes ${shapes}`);
});

/** 40 images a class: the class's shape small, in a random quadrant; elsewhere only the noisy background. */
async function quadrantSet(dir: string) {
  const size = 160;
  const quadrantOf = new Map<string, number>();
  for (const [c, name] of ["circle", "cross"].entries()) {
    fs.mkdirSync(path.join(dir, name), { recursive: true });
    const random = seededRandom(70 + c);
    for (let i = 0; i < 40; i++) {
      const pixels = renderShape(() => false, size, random);
      const quadrant = Math.floor(random() * 4);
      const [cx, cy] = [size * (quadrant % 2 ? 0.75 : 0.25) + (random() - 0.5) * 16, size * (quadrant >= 2 ? 0.75 : 0.25) + (random() - 0.5) * 16];
      const scale = size * 0.13;
      for (let y = 0; y < size; y++)
        for (let x = 0; x < size; x++) if (SHAPES[name]((x - cx) / scale, (y - cy) / scale)) pixels.set([250, 250, 40], (y * size + x) * 3);
      const file = path.join(dir, name, `${name}_${i}.png`);
      await sharp(Buffer.from(pixels), { raw: { width: size, height: size, channels: 3 } }).png().toFile(file);
      quadrantOf.set(file, quadrant);
    }
  }
  return quadrantOf;
}

test("Grad-CAM peaks in the quadrant that holds an image's only class signal", async (t) => {
  const dir = scratch("quadrants");
  const quadrantOf = await quadrantSet(dir);
  const data = await imageFolder(dir, { minImagesPerClass: 1, testPercent: 30, validationPercent: 10 });
  const inception = await loadInceptionV3({ weights: "bundled", inputSize: 160 });
  const run = await retrainFinalLayer(inception, data, { ...quiet, epochs: 60, layer: "mixed5" });
  const files = data.files("test");
  const cams = await gradCam(run, files);
  const maps = cams.runs[0].heatmaps;
  const right = maps.filter((h) => h.predicted === path.basename(path.dirname(h.file)));
  const peaked = right.filter((h) => {
    const n = h.map.length;
    let best = [0, 0];
    h.map.forEach((row, y) => row.forEach((v, x) => (v > h.map[best[0]][best[1]] ? (best = [y, x]) : null)));
    const quadrant = (best[1] >= n / 2 ? 1 : 0) + (best[0] >= n / 2 ? 2 : 0);
    return quadrant === quadrantOf.get(h.file);
  });
  t.diagnostic(`${right.length} of ${files.length} test images classified right; the heatmap peaks in the shape's quadrant for ${peaked.length} of them (grid ${maps[0].map.length}x${maps[0].map.length})`);
  assert.ok(right.length >= 0.75 * files.length, `classified right: ${right.length} of ${files.length}`);
  assert.ok(peaked.length >= 0.8 * right.length, `peaks in the right quadrant: ${peaked.length} of ${right.length}`);
  assert.ok(maps.every((h) => h.map.flat().every((v) => v >= 0 && v <= 1)));
  const gallery = plot.gradCam(await gradCam([run], files.slice(0, 2)));
  assert.equal(gallery.items.length, 2);
  assert.match(gallery.items[0].src, /^data:image\/jpeg;base64,/);
  // Captions name the true class as the data set spells it: a capitalised folder reads as its label, and only a wrong answer is marked.
  const known = right[0];
  const capitalised = path.join(scratch("quadrants-captions"), known.predicted.toUpperCase(), path.basename(known.file));
  fs.mkdirSync(path.dirname(capitalised), { recursive: true });
  fs.copyFileSync(known.file, capitalised);
  const [caption] = plot.gradCam(await gradCam([run], [capitalised])).items.map((i) => i.caption);
  assert.match(caption, new RegExp(`^retrain-final-layer: ${known.predicted} → ${known.predicted} \\(\\d+ %\\); half the evidence in \\d+ % of the image$`));
});

test("the weight change per block is exactly zero for frozen blocks, and not for trained ones", async () => {
  const inception = await loadInceptionV3({ weights: "bundled", inputSize: 75 });
  const data = await syntheticShapes({ classes: 3, perClass: 12, imageSize: 64, seed: 9, dir: path.join(scratch("change-data"), "set") });
  const tuned = await fineTune(inception, data, { ...quiet, epochs: 1, warmupEpochs: 0, batchSize: 8, unfreezeFrom: "mixed6" });
  const [changes] = weightChange(inception, tuned);
  assert.deepEqual(changes.blocks.map((c) => c.block), ["stem", "mixed0", "mixed1", "mixed2", "mixed3", "mixed4", "mixed5", "mixed6", "mixed7"]);
  for (const c of changes.blocks) {
    if (["mixed6", "mixed7"].includes(c.block)) assert.ok(c.relativeChange > 0 && c.statisticsChange > 0, `${c.block} trained: ${c.relativeChange}, statistics ${c.statisticsChange}`);
    else assert.deepEqual([c.relativeChange, c.statisticsChange], [0, 0], `${c.block} is frozen`);
  }
  const retrained = await retrainFinalLayer(inception, data, { ...quiet, epochs: 2 });
  assert.ok(weightChange(inception, retrained)[0].blocks.every((c) => c.relativeChange === 0 && c.statisticsChange === 0), "retraining leaves the network alone");
  const chart = plot.weightChange(weightChange(inception, [tuned, retrained]));
  assert.equal(chart.figure.data.length, 4, "learned weights and batch-norm statistics, per run");
  const before = plot.featuresBeforeAfter(await featuresBeforeAfter(inception, tuned, { split: "train" }));
  assert.equal(before.figure.data.length, 2 * data.classes.length);
  tf.dispose(tuned.model.weights.map((w) => w.read()));
});

