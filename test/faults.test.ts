// Faults at random points, over many seeds: a full disk on any write of the run's folders and of the
// feature cache, cache files read back cut short, a kernel interrupt at a random step; retraining and
// fine-tuning with checkpoints, then a save. Whatever happens, these hold: no file of the user's is
// lost, nothing is trained on NaN, the cache and the checkpoints read back whole, no temporary file is
// left, and lastRun() is the run, saying whether it was interrupted.
// Exports likewise: a process exporting (Keras or SavedModel) is killed or interrupted at a random point,
// or its Python bridge is; the bridge never outlives its process, the next export cleans up and succeeds,
// the user's files and the previous export stay, and no temporary file remains beside the export or in
// the temp folder.
import { test } from "node:test";
import * as assert from "node:assert/strict";
import { spawn } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { fineTune, lastRun, loadClassifier, loadInceptionV3, retrainFinalLayer, syntheticShapes, tf } from "inception-lab";
import type { TrainingRun } from "inception-lab";
import { ActivationStore } from "../kernel-helpers/data/activations";
import { BottleneckCache, FEATURE_FILES } from "../kernel-helpers/data/bottlenecks";
import { ContentCache, contentHash } from "../kernel-helpers/util/content-cache";
import { verifyFolder } from "../kernel-helpers/util/atomic";
import { seededRandom } from "../kernel-helpers/util/random";
import { injectFaults, LEFTOVER, processes, running, tree } from "./faults";
import { root, scratch } from "./helpers";

const SEEDS = Number(process.env.FAULT_SEEDS ?? 24);
/** Each export seed takes ~30 s here (a child process starting, part of an export, a whole one). */
const EXPORT_SEEDS = Number(process.env.EXPORT_FAULT_SEEDS ?? 6);

/** Checks every feature file of a cache against its folder's key. */
function unreadableFeatures(cache: string): string[] {
  const bad: string[] = [];
  for (const folder of fs.existsSync(cache) ? fs.readdirSync(cache) : []) {
    const keyFile = path.join(cache, folder, "key.json");
    if (!fs.existsSync(keyFile)) continue;
    const description = JSON.parse(fs.readFileSync(keyFile, "utf8"));
    const store = new ContentCache({ ...FEATURE_FILES, description, valuesPerItem: description.layer === "mixed7" ? 768 : -1, root: cache });
    assert.equal(path.basename(store.dir), folder, "the folder is named by its description's key");
    for (const file of fs.readdirSync(path.join(cache, folder)).filter((f) => f.endsWith(".f32"))) {
      const result = store.decode(fs.readFileSync(path.join(cache, folder, file)), path.basename(file, ".f32"));
      if (typeof result === "string") bad.push(`${folder}/${file}: ${result}`);
    }
  }
  return bad;
}

test(`${SEEDS} seeds of disk-full writes, truncated cache reads and interrupts: nothing lost, nothing trained on NaN, everything reads back`, async (t) => {
  process.env.INCEPTION_LAB_CACHE = scratch("faults-home-cache");
  const inception = await loadInceptionV3({ weights: "bundled", inputSize: 75 });
  const data = await syntheticShapes({ classes: 3, perClass: 12, imageSize: 64, seed: 21, dir: path.join(scratch("faults-data"), "shapes") });
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
    assert.equal(run.info.stopReason === "interrupted", faults.counts.interrupts > 0, `${where}: interrupted`);
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

/** Caches damaged the way people damage them: two files swapped, one copied over another, images changed or removed. */
const CACHE_FAULTS = ["swap two feature files", "copy a feature file over another", "swap two activation files", "change an image", "delete an image", "write garbage over an image"] as const;
const CACHE_SEEDS = Number(process.env.CACHE_FAULT_SEEDS ?? 12);

test(`${CACHE_SEEDS} seeds of cache files swapped or copied over each other, and images changed, deleted or garbled between calls: nothing trusted wrongly, nothing lost`, async (t) => {
  process.env.INCEPTION_LAB_CACHE = scratch("cache-faults-home");
  const inception = await loadInceptionV3({ weights: "bundled", inputSize: 75, precision: "float32" });
  const injected = Object.fromEntries(CACHE_FAULTS.map((f) => [f, 0])) as Record<(typeof CACHE_FAULTS)[number], number>;
  let checked = 0;
  let trustedWrongly = 0;
  for (let seed = 1; seed <= CACHE_SEEDS; seed++) {
    const random = seededRandom(100 + seed);
    const folder = scratch(`cache-faults/${seed}`);
    const source = await syntheticShapes({ classes: 3, perClass: 8, imageSize: 64, seed: 40 + seed, dir: path.join(folder, "source") });
    const data = await syntheticShapes({ classes: 3, perClass: 8, imageSize: 64, seed: 60 + seed, dir: path.join(folder, "shapes") });
    const cacheDir = path.join(folder, "cache");
    const fault = CACHE_FAULTS[seed % CACHE_FAULTS.length];
    const where = `seed ${seed} (${fault})`;
    const files = data.files("train");
    const pick = () => files[Math.floor(random() * files.length)];
    const filesOf = (dir: string, ext: string) => tree(dir).filter((f) => f.endsWith(ext)).map((f) => path.join(dir, f));
    if (fault === "swap two activation files") {
      // The frozen-bottom store on disk (a memory limit of 0), as a large fine-tune keeps it.
      const store = new ActivationStore({ seed }, 4, "float32", 2, { root: cacheDir, memoryLimit: 0 });
      const [a, b] = [files[0], files[1]].map((f) => contentHash(f));
      store.put(a, new Float32Array([1, 2, 3, 4]));
      store.put(b, new Float32Array([5, 6, 7, 8]));
      const [fa, fb] = [store.dir + `/${a}.act`, store.dir + `/${b}.act`];
      const [ba, bb] = [fs.readFileSync(fa), fs.readFileSync(fb)];
      fs.writeFileSync(fa, bb);
      fs.writeFileSync(fb, ba);
      injected[fault]++;
      checked += 2;
      if (store.get([a]) !== null || store.get([b]) !== null) trustedWrongly++;
      continue;
    }
    const run = await retrainFinalLayer(inception, data, { progress: false, liveChart: false, epochs: 1, batchSize: 8, cacheDir, precision: "float32" });
    const features = filesOf(cacheDir, ".f32");
    if (fault === "swap two feature files" || fault === "copy a feature file over another") {
      const [x, y] = [features[0], features[1]];
      const [bx, by] = [fs.readFileSync(x), fs.readFileSync(y)];
      fs.writeFileSync(x, by);
      if (fault === "swap two feature files") fs.writeFileSync(y, bx);
    } else if (fault === "change an image") {
      fs.copyFileSync(source.files("train")[0], pick());
    } else if (fault === "delete an image") {
      fs.rmSync(pick());
    } else {
      fs.writeFileSync(pick(), Buffer.concat([fs.readFileSync(pick()).subarray(0, 20), Buffer.alloc(64, 7)]));
    }
    injected[fault]++;
    // The next call reads its features again through the cache: each must be the image's own, as the network computes it now.
    await run.fit({ epochs: 1 });
    const trained = run.data.files("train");
    const cache = new BottleneckCache(inception, inception.source.layer, cacheDir, "float32");
    const kept = await cache.get(trained);
    const fresh = await inception.features(kept.files, { precision: "float32" });
    const rows = tf.tidy(() => tf.max(tf.abs(tf.sub(kept.features, fresh)), 1).arraySync() as number[]);
    checked += rows.length;
    trustedWrongly += rows.filter((d) => d > 1e-4).length;
    tf.dispose([kept.features, fresh]);
    assert.ok(fault !== "delete an image" || trained.length === files.length - 1, `${where}: the deleted image is left out (${trained.length} of ${files.length})`);
    assert.ok(!fault.startsWith("write garbage") || data.skipped.length === 1, `${where}: the garbled image is reported: ${JSON.stringify(data.skipped)}`);
    assert.deepEqual(tree(folder).filter((f) => LEFTOVER.test(f)), [], `${where}: temporary files left`);
    run.dispose();
  }
  t.diagnostic(`${CACHE_SEEDS} runs; injected ${JSON.stringify(injected)}; ${checked} features or activations read back checked against the network: ${trustedWrongly} trusted wrongly, none lost`);
  assert.equal(trustedWrongly, 0);
  assert.ok(Object.values(injected).every((n) => n > 0), `every kind of fault injected: ${JSON.stringify(injected)}`);
});

const EXPORT_FAULTS = ["kill the exporting process", "interrupt the exporting process", "kill the bridge", "interrupt the bridge"] as const;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

test(`${EXPORT_SEEDS} exports killed or interrupted at random points, in Node or in the Python bridge: the bridge never outlives its process, the next export cleans up and succeeds, nothing is lost or left`, async (t) => {
  const temp = scratch("faults-export-tmp");
  const systemTemp = process.env.TMPDIR;
  process.env.TMPDIR = temp; // this process's and the children's temp folder, where the exports' scratch folders go
  const scratchFolders = () => fs.readdirSync(temp).filter((name) => name.startsWith("inception-lab-"));
  try {
    const inception = await loadInceptionV3({ weights: "bundled", inputSize: 75 });
    const data = await syntheticShapes({ classes: 3, perClass: 6, imageSize: 64, seed: 23, dir: path.join(scratch("faults-export-data"), "shapes") });
    const run = await retrainFinalLayer(inception, data, { progress: false, liveChart: false, epochs: 1, precision: "float32", cacheDir: scratch("faults-export-cache") });
    const source = await run.save(path.join(scratch("faults-export-source"), "model"));
    const folder = scratch("faults-export");
    fs.writeFileSync(path.join(folder, "notes.md"), "the user's notes");
    const target = path.join(folder, "model");
    const started = Date.now();
    await run.export(target, { format: "keras" });
    const exportMs = Date.now() - started;
    const totals = { injected: {} as Record<string, number>, finishedFirst: 0, failedCleanly: 0, betweenRenames: 0, leftoversFound: 0, bridgeExitMs: [] as number[] };

    for (let seed = 1; seed <= EXPORT_SEEDS; seed++) {
      const random = seededRandom(100 + seed);
      const format = seed % 2 ? "savedmodel" : "keras";
      const fault = EXPORT_FAULTS[Math.floor(random() * EXPORT_FAULTS.length)];
      const delay = random() * exportMs;
      const where = `seed ${seed} (${format}, ${fault} after ${(delay / 1000).toFixed(1)} s)`;
      const child = spawn(process.execPath, ["--require", "ts-node/register/transpile-only", path.join(root, "test", "fixtures", "export-child.ts"), source, target, format], {
        stdio: ["ignore", "pipe", "pipe"],
        env: { ...process.env, TF_CPP_MIN_LOG_LEVEL: "3" },
      });
      let output = "";
      child.stdout.on("data", (chunk) => (output += chunk));
      child.stderr.on("data", (chunk) => (output += chunk));
      const exited = new Promise<void>((resolve) => child.on("exit", () => resolve()));
      const alive = () => child.exitCode === null && child.signalCode === null;
      while (alive() && !output.includes("EXPORTING")) await sleep(20);
      const from = Date.now();
      const bridge = () => processes().find((p) => p.parent === child.pid && p.command.includes("keras-bridge.py"))?.pid;
      let bridgePid: number | undefined;
      let injected = false;
      while (alive() && !injected) {
        bridgePid = bridge() ?? bridgePid;
        if (Date.now() - from >= delay && (fault.endsWith("process") || bridgePid !== undefined)) {
          const signal = fault.startsWith("kill") ? "SIGKILL" : "SIGINT";
          try {
            process.kill(fault.endsWith("process") ? child.pid! : bridgePid!, signal);
            injected = true;
          } catch {
            // The bridge had just ended: the export finished first.
          }
        }
        if (!injected) await sleep(20);
      }
      const killedAt = Date.now();
      await exited;
      if (!injected) totals.finishedFirst++;
      else totals.injected[fault] = (totals.injected[fault] ?? 0) + 1;
      if (bridgePid !== undefined) {
        while (running(bridgePid) && Date.now() - killedAt < 20_000) await sleep(50);
        assert.ok(!running(bridgePid), `${where}: the bridge ${bridgePid} still runs 20 s after its process ended`);
        if (fault === "kill the exporting process" && injected) totals.bridgeExitMs.push(Date.now() - killedAt);
      }
      const failure = /FAILED (".*")/.exec(output)?.[1];
      if (failure) {
        totals.failedCleanly++;
        assert.match(JSON.parse(failure), /^(interrupted|cannot export to .*model: (interrupted|keras-bridge\.py .* was stopped by SIG|keras-bridge\.py .* exited with code))/, where);
      }
      assert.equal(fs.readFileSync(path.join(folder, "notes.md"), "utf8"), "the user's notes", `${where}: the user's notes`);
      if (fs.existsSync(target)) verifyFolder(target);
      else {
        totals.betweenRenames++;
        assert.ok(fs.readdirSync(folder).some((name) => name.startsWith(`model.old-${child.pid}-`)), `${where}: the previous export is gone`);
      }
      totals.leftoversFound += tree(folder).filter((f) => LEFTOVER.test(f)).length + scratchFolders().length;

      await run.export(target, { format });
      verifyFolder(target);
      assert.ok(fs.existsSync(path.join(target, format === "keras" ? "model.keras" : "saved_model.pb")), where);
      assert.deepEqual(tree(folder).filter((f) => LEFTOVER.test(f)), [], `${where}: temporary files beside the export`);
      assert.deepEqual(scratchFolders(), [], `${where}: scratch folders in the temp folder`);
      assert.deepEqual(processes().filter((p) => p.command.includes("keras-bridge.py") && p.command.includes(temp) && p.state !== "Z"), [], `${where}: a bridge still runs`);
    }
    t.diagnostic(
      `${EXPORT_SEEDS} exports (export ${(exportMs / 1000).toFixed(1)} s); injected ${JSON.stringify(totals.injected)}; ${totals.finishedFirst} finished before the fault; ` +
        `${totals.failedCleanly} failed cleanly with a one-line message, ${totals.betweenRenames} killed between the renames; ${totals.leftoversFound} leftovers found and swept by the next export; ` +
        `bridge gone ${totals.bridgeExitMs.map((ms) => `${ms} ms`).join(", ") || "-"} after its process was killed`,
    );
    assert.ok(Object.values(totals.injected).reduce((a, b) => a + b, 0) >= EXPORT_SEEDS / 2, `enough faults: ${JSON.stringify(totals)}`);
  } finally {
    if (systemTemp === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = systemTemp;
  }
});
