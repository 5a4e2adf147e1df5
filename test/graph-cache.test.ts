// Recorded graphs are shared by every run of the same structure (runtime/graph.ts): in the process, and
// through the disk cache after a restart. A reused graph must compute what a fresh recording computes,
// take new hyperparameters as inputs, never serve another structure, run any batch size, and never be
// read back damaged.
import { test } from "node:test";
import * as assert from "node:assert/strict";
import * as fs from "fs";
import * as path from "path";
import { execFileSync } from "child_process";
import { loadInceptionV3, tf } from "inception-lab";
import type { CutLayer } from "inception-lab";
import { graphStats, releaseGraphs } from "../kernel-helpers/runtime/graph";
import { attachHead, Head } from "../kernel-helpers/train/classifier/classifier";
import { Optimizer } from "../kernel-helpers/train/loop/optimizers";
import { networkStep } from "../kernel-helpers/train/modes/forward";
import { setTrainable } from "../kernel-helpers/train/modes/phase";
import { cacheDir } from "../kernel-helpers/util/download";
import { scratch } from "./helpers";

process.env.INCEPTION_LAB_CACHE = scratch("graph-cache");

/** A fine-tune step as a run builds it: 75 px, random weights (seed 1), head on `layer`, training from the block below. */
async function run(options: { layer?: CutLayer; classes?: number; learningRate?: number } = {}) {
  const { layer = "mixed2", classes = 3, learningRate = 0.01 } = options;
  const inception = await loadInceptionV3({ weights: null, inputSize: 75, seed: 1 });
  const head = new Head(classes, 0, 0);
  const { logitsModel } = attachHead(inception, layer, head);
  const firstTrained = layer === "mixed2" ? "mixed1" : "mixed0";
  setTrainable(inception, firstTrained);
  const optimizer = new Optimizer("sgd", logitsModel.trainableWeights.map((w) => w.read() as tf.Variable), learningRate);
  const step = networkStep(inception, logitsModel, firstTrained, optimizer, { classes, head });
  const x = tf.randomUniform([6, 75, 75, 3], 0, 255, "float32", 7);
  const y = tf.tensor1d([0, 1, 2, 0, 1, 2].map((c) => c % classes), "int32");
  const before = logitsModel.trainableWeights.map((w) => w.read().clone());
  const { loss } = step.run(x, y);
  const after = logitsModel.trainableWeights.map((w) => w.read().clone());
  const recordings = step.step.recordings;
  step.dispose();
  tf.dispose([x, y]);
  return { loss, before, after, recordings };
}

const maxDifference = (a: tf.Tensor[], b: tf.Tensor[]) => Math.max(...a.map((t, i) => tf.max(tf.abs(tf.sub(t, b[i]))).dataSync()[0]));

test("a second run of the same structure records nothing and computes exactly what the fresh recording did", async () => {
  releaseGraphs();
  fs.rmSync(cacheDir("graphs"), { recursive: true, force: true });
  const fresh = await run();
  assert.equal(fresh.recordings, 1);
  const reusedBefore = graphStats.reused;
  const again = await run();
  assert.equal(again.recordings, 0, "nothing recorded");
  assert.ok(graphStats.reused > reusedBefore);
  assert.equal(again.loss, fresh.loss);
  assert.equal(maxDifference(again.after, fresh.after), 0, "the same updated weights");
});

test("another learning rate takes effect in the reused graph without recording it again", async () => {
  const base = await run({ learningRate: 0.01 });
  const tenfold = await run({ learningRate: 0.1 });
  assert.equal(tenfold.recordings, 0);
  const update = (r: typeof base) => r.after.map((w, i) => tf.sub(w, r.before[i]));
  const [small, large] = [update(base), update(tenfold)];
  const ratio = tf.norm(tf.concat(large.map((t) => t.flatten()))).dataSync()[0] / tf.norm(tf.concat(small.map((t) => t.flatten()))).dataSync()[0];
  assert.ok(Math.abs(ratio - 10) < 1e-3, `update ratio ${ratio}`);
});

test("another structure (another cut, another number of classes) records its own graph", async () => {
  assert.equal((await run({ layer: "mixed1" })).recordings, 1, "another cut");
  assert.equal((await run({ classes: 4 })).recordings, 1, "another head");
  assert.equal((await run({ classes: 4 })).recordings, 0, "and that one is reused in turn");
});

test("after a restart the graph comes from the disk cache; a damaged cache file is recorded again, never used", async () => {
  const fresh = await run();
  releaseGraphs(); // as after a kernel restart
  const loaded = graphStats.loadedFromDisk;
  const fromDisk = await run();
  assert.equal(fromDisk.recordings, 0);
  assert.ok(graphStats.loadedFromDisk > loaded);
  assert.equal(fromDisk.loss, fresh.loss);

  releaseGraphs();
  const files = fs.readdirSync(cacheDir("graphs")).map((f) => path.join(cacheDir("graphs"), f));
  files.forEach((file, i) => {
    const bytes = fs.readFileSync(file);
    // One cut short, one with a flipped byte in the graph, one that is not a graph file at all.
    if (i % 3 === 0) fs.writeFileSync(file, bytes.subarray(0, bytes.length >> 1));
    else if (i % 3 === 1) fs.writeFileSync(file, Buffer.concat([bytes.subarray(0, -10), Buffer.from(bytes.subarray(-10).map((b) => b ^ 1))]));
    else fs.writeFileSync(file, "garbage");
  });
  const rejected = graphStats.rejectedFromDisk;
  const recovered = await run();
  assert.ok(graphStats.rejectedFromDisk > rejected, "the damaged files were found");
  assert.equal(recovered.recordings, 1, "recorded again");
  assert.equal(recovered.loss, fresh.loss);
});

test("random damage to a stored graph's header or body is always found: recorded again, the same loss, never NaN", async () => {
  fs.rmSync(cacheDir("graphs"), { recursive: true, force: true });
  releaseGraphs();
  const fresh = await run();
  // The step's graph and its frozen bottom's: every one is damaged the same way each time.
  const files = fs.readdirSync(cacheDir("graphs")).map((f) => path.join(cacheDir("graphs"), f));
  assert.equal(files.length, 2);
  const originals = files.map((file) => fs.readFileSync(file));
  let headerStart = 0;
  let headerEnd = 0;
  let seed = 7;
  const random = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) % n);
  // The case first: two variable slots swapped in a header that is still valid JSON.
  const damages: [string, (bytes: Buffer) => Buffer][] = [
    ["slots swapped in the header", (bytes) => {
      const header = JSON.parse(bytes.toString("utf8", headerStart, headerEnd));
      const feeds = header.template.feeds as { slot: number; dtype: string }[];
      const [i, j] = [random(feeds.length), random(feeds.length)];
      [feeds[i].slot, feeds[j].slot] = [feeds[j].slot, feeds[i].slot === feeds[j].slot ? feeds[j].slot + 1 : feeds[i].slot];
      const json = Buffer.from(JSON.stringify(header));
      const length = Buffer.alloc(4);
      length.writeUInt32LE(json.length);
      return Buffer.concat([bytes.subarray(0, 36), length, json, bytes.subarray(headerEnd)]);
    }],
    ["a byte of the header flipped", (bytes) => { const b = Buffer.from(bytes); b[headerStart + random(headerEnd - headerStart)] ^= 1 << random(8); return b; }],
    ["a byte of the graph flipped", (bytes) => { const b = Buffer.from(bytes); b[headerEnd + random(bytes.length - headerEnd)] ^= 1 << random(8); return b; }],
    ["cut short", (bytes) => bytes.subarray(0, random(bytes.length))],
    ["bytes appended", (bytes) => Buffer.concat([bytes, Buffer.from("extra")])],
    ["the checksum flipped", (bytes) => { const b = Buffer.from(bytes); b[4 + random(32)] ^= 1; return b; }],
  ];
  let injected = 0;
  // Every kind once, then the random flips again at other places.
  for (const [what, damage] of [...damages, damages[1], damages[2]]) {
    files.forEach((file, i) => {
      headerStart = 4 + 32 + 4;
      headerEnd = headerStart + originals[i].readUInt32LE(36);
      fs.writeFileSync(file, damage(originals[i]));
      injected++;
    });
    releaseGraphs();
    const rejected = graphStats.rejectedFromDisk;
    const again = await run();
    assert.equal(graphStats.rejectedFromDisk - rejected, files.length, `${what}: the damaged files were found`);
    assert.equal(again.recordings, 1, `${what}: recorded again`);
    assert.ok(Number.isFinite(again.loss) && again.loss === fresh.loss, `${what}: loss ${again.loss}, fresh ${fresh.loss}`);
  }
  assert.equal(injected, 16);
});

test("one graph runs batches of 16, 7 and 1, and equals op by op; a new process finds it on disk", () => {
  const cache = scratch("batch-sizes-cache");
  const child = () =>
    JSON.parse(
      execFileSync(process.execPath, ["--require", "ts-node/register/transpile-only", path.join(__dirname, "fixtures", "batch-sizes.ts")], {
        env: { ...process.env, TF_ENABLE_ONEDNN_OPTS: "0", INCEPTION_LAB_CACHE: cache },
        encoding: "utf8",
        stdio: ["ignore", "pipe", "ignore"],
      })
        .trim()
        .split("\n")
        .pop()!,
    );
  const first = child();
  assert.deepEqual(first.notCompiled, []);
  assert.equal(first.recordings, 1, "one recording for three batch sizes");
  first.losses.forEach(([graph, eager]: number[], i: number) => assert.ok(Math.abs(graph - eager) < 1e-5 * eager, `batch ${[16, 7, 1][i]}: loss ${graph} as a graph, ${eager} op by op`));
  assert.ok(first.worst < 1e-4, `weights after three steps: relative difference ${first.worst}`);
  const second = child();
  assert.equal(second.recordings, 0, "a new process records nothing");
  assert.ok(second.stats.loadedFromDisk >= 1);
  assert.deepEqual(second.losses, first.losses);
});
