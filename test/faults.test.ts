// Faults at random points, over many seeds: a full disk on any write of the run's folders and of the
// feature cache, cache files read back cut short, a kernel interrupt at a random step; retraining and
// fine-tuning with checkpoints, then a save. Whatever happens, these hold: no file of the user's is
// lost, nothing is trained on NaN, the cache and the checkpoints read back whole, no temporary file is
// left, and lastRun() is the run, saying whether it was interrupted.
import { test } from "node:test";
import * as assert from "node:assert/strict";
import { createHash } from "crypto";
import * as fs from "fs";
import * as path from "path";
import { fineTune, lastRun, loadClassifier, loadInceptionV3, retrainFinalLayer, syntheticShapes, tf } from "inception-lab";
import type { TrainingRun } from "inception-lab";
import { decodeFeatures } from "../kernel-helpers/data/bottlenecks";
import { verifyFolder } from "../kernel-helpers/util/atomic";
import { seededRandom } from "../kernel-helpers/util/random";
import { injectFaults, LEFTOVER, tree } from "./faults";
import { scratch } from "./helpers";

const SEEDS = Number(process.env.FAULT_SEEDS ?? 24);

/** Checks every feature file of a cache against its folder's key. */
function unreadableFeatures(cache: string): string[] {
  const bad: string[] = [];
  for (const folder of fs.existsSync(cache) ? fs.readdirSync(cache) : []) {
    const keyFile = path.join(cache, folder, "key.json");
    if (!fs.existsSync(keyFile)) continue;
    const description = JSON.parse(fs.readFileSync(keyFile, "utf8"));
    const key = createHash("sha1").update(JSON.stringify(description)).digest();
    const width = description.layer === "mixed7" ? 768 : -1;
    for (const file of fs.readdirSync(path.join(cache, folder)).filter((f) => f.endsWith(".f32"))) {
      const result = decodeFeatures(fs.readFileSync(path.join(cache, folder, file)), key, width);
      if (typeof result === "string") bad.push(`${folder}/${file}: ${result}`);
    }
  }
  return bad;
}

test(`${SEEDS} seeds of disk-full writes, truncated cache reads and interrupts: nothing lost, nothing trained on NaN, everything reads back`, async (t) => {
  process.env.INCEPTION_LAB_CACHE = scratch("faults-home-cache");
  const inception = await loadInceptionV3({ weights: "bundled", inputSize: 75 });
  const data = await syntheticShapes({ classes: 3, perClass: 12, size: 64, seed: 21, dir: path.join(scratch("faults-data"), "shapes") });
  const cache = scratch("faults-cache");
  const totals = { enospc: 0, truncated: 0, interrupts: 0, savesFailed: 0, checkpointsLost: 0, runs: 0 };
  for (let seed = 1; seed <= SEEDS; seed++) {
    const random = seededRandom(seed);
    const mode = seed % 2 ? "retrain-final-layer" : "fine-tune";
    const folder = scratch(`faults/${seed}`);
    fs.writeFileSync(path.join(folder, "notes.md"), `notes of seed ${seed}`);
    fs.mkdirSync(path.join(folder, "my-data"));
    fs.writeFileSync(path.join(folder, "my-data", "table.csv"), "a,b\n");
    const userFiles = () => ["notes.md", "my-data/table.csv"].map((f) => fs.readFileSync(path.join(folder, f), "utf8"));
    const before = userFiles();
    const checkpointDir = path.join(folder, "checkpoint");
    const failureRate = 0.1 + 0.3 * random();
    const faults = injectFaults({
      failWrite: (file) => (file.startsWith(folder) || file.startsWith(cache)) && random() < failureRate,
      truncateRead: (file) => file.endsWith(".f32") && random() < 0.15,
    });
    const interruptAt = random() < 0.5 ? 1 + Math.floor(random() * 6) : -1;
    const interrupt = { onBatchEnd: (record: { step: number }) => void (record.step === interruptAt && faults.interrupt()) };
    const options = { progress: false, liveChart: false, batchSize: 8, cacheDir: cache, checkpointDir, callbacks: interrupt, seed };
    let run: TrainingRun;
    let saved: string | null = null;
    try {
      run =
        mode === "retrain-final-layer"
          ? await retrainFinalLayer(inception, data, { ...options, epochs: 3 })
          : await fineTune(inception, data, { ...options, epochs: 1, warmupEpochs: 1, unfreezeFrom: "mixed7" });
      try {
        saved = await run.save(path.join(folder, "model"));
      } catch (error) {
        assert.match((error as Error).message, /cannot write .*model: the disk is full/, `seed ${seed}: a failed save says why`);
        totals.savesFailed++;
      }
    } finally {
      faults.restore();
    }
    totals.enospc += faults.counts.enospc;
    totals.truncated += faults.counts.truncated;
    totals.interrupts += faults.counts.interrupts;
    totals.runs++;
    const where = `seed ${seed} (${mode}, ${JSON.stringify(faults.counts)})`;

    assert.deepEqual(userFiles(), before, `${where}: the user's files`);
    assert.equal(lastRun(), run, `${where}: lastRun()`);
    assert.equal(run.info.interrupted, faults.counts.interrupts > 0, `${where}: interrupted`);
    assert.ok(run.history.steps.every((s) => Number.isFinite(s.loss)), `${where}: a loss that is not a number`);
    assert.ok(run.model.weights.every((w) => tf.tidy(() => tf.all(tf.isFinite(w.read())).dataSync()[0] === 1)), `${where}: weights finite`);
    assert.deepEqual([...tree(folder), ...tree(cache)].filter((f) => LEFTOVER.test(f)), [], `${where}: temporary files left`);
    assert.deepEqual(unreadableFeatures(cache), [], `${where}: cache files`);
    if (fs.existsSync(checkpointDir)) {
      verifyFolder(checkpointDir);
      await loadClassifier(checkpointDir);
    } else if (run.history.epochs.length > 0) totals.checkpointsLost++;
    if (saved) {
      const loaded = await loadClassifier(saved);
      const files = data.files("test").slice(0, 2);
      const [a, b] = [await run.predict(files), await loaded.predict(files)];
      a.forEach((p, i) => assert.ok(Math.abs(p.probability - b[i].probability) < 1e-4, `${where}: the saved model predicts as the run`));
    } else assert.ok(!fs.existsSync(path.join(folder, "model")), `${where}: nothing of a failed save`);
  }
  t.diagnostic(
    `${totals.runs} runs; injected ${totals.enospc} disk-full writes, ${totals.truncated} truncated cache reads, ${totals.interrupts} interrupts; ` +
      `${totals.savesFailed} saves failed cleanly, ${totals.checkpointsLost} runs ended without any checkpoint written; no user file lost, no NaN, no leftovers`,
  );
  assert.ok(totals.enospc > SEEDS && totals.truncated > 5 && totals.interrupts > 3, `enough faults: ${JSON.stringify(totals)}`);
});
