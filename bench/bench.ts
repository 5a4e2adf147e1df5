// npm run bench: Inception Lab against Python Keras on the same machine, same inputs, batch size and
// thread count. Each measurement runs in a fresh process (so peak RSS is its own): Keras at float32 and at
// its best setting on a CPU with bfloat16 units (the mixed_bfloat16 policy), and ours (steps as TensorFlow
// graphs) at float32 and bfloat16, alternating, each after the same warm-up steps; the table shows medians
// of per-step times and ratios. A second table measures interactive speed: the first step of a re-run
// against its median step (in one process, and in a new process on the same disk cache), and a 4-point
// learning-rate sweep against Keras building and fitting a fresh model per point. A third runs a fresh full
// fine-tune end to end (2 epochs, recording and tracing included) against Keras' fit, both at their best
// precision. A fourth times a fine-tune from mixed7 per epoch with and without the frozen-bottom cache, against
// Keras. A fifth checks the cost model's predictions against real runs, a sixth the test accuracy of notebook
// 03's fine-tune and retraining at float32 and bfloat16 over the same five seeds, a seventh TensorFlow Lite
// exports (size, the interpreter's latency per image at each quantization beside the library's).
// BENCH_ONLY=steps, interactive, end-to-end, frozen-bottom, cost-model, accuracy or tflite runs one table (the
// others are kept from the last results, each with the day and machine it was measured on); BENCH_ONLY=report
// only rewrites RESULTS.md. Results go to bench/results.json and bench/RESULTS.md.
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { execFileSync } from "child_process";
import { decodeBatch } from "../kernel-helpers/network/decode";
import { syntheticShapes } from "../kernel-helpers/data/datasets";
import type { ImageFolder } from "../kernel-helpers/data/image-folder";
import { Table } from "../kernel-helpers/display/display";
import { cpuFeatureFlags } from "../kernel-helpers/runtime/build";

const root = path.join(__dirname, "..");
const quick = process.env.BENCH_QUICK === "1";
const rounds = Number(process.env.BENCH_ROUNDS ?? (quick ? 1 : 2));
const threads = process.env.TF_NUM_INTRAOP_THREADS ?? String(os.availableParallelism());
const WARMUP = "3"; // ours records its graph on the first call; the graph's first runs build its kernels
const env = { ...process.env, BENCH_WARMUP: WARMUP, TF_NUM_INTRAOP_THREADS: threads, TF_NUM_INTEROP_THREADS: process.env.TF_NUM_INTEROP_THREADS ?? threads, TF_CPP_MIN_LOG_LEVEL: "3" };

interface Kind {
  kind: string;
  label: string;
  batch: number;
  steps: number;
}
const SIZE = Number(process.env.BENCH_SIZE ?? 299);
const KINDS: Kind[] = [
  { kind: "features", label: "bottleneck extraction (forward to pooled mixed10)", batch: 16, steps: quick ? 3 : 8 },
  { kind: "head", label: "retrain-final-layer step (head on cached features, batch 100)", batch: 100, steps: quick ? 20 : 100 },
  { kind: "finetune-top", label: "fine-tune from mixed7 step", batch: 16, steps: quick ? 2 : 5 },
  { kind: "finetune-all", label: "full fine-tune step", batch: 16, steps: quick ? 2 : 4 },
  { kind: "scratch", label: "from-scratch step (random weights, all trained)", batch: 16, steps: quick ? 2 : 4 },
];

interface Sample {
  times: number[];
  peakRssMB: number;
}

const RUNTIMES = ["kerasFloat32", "kerasBfloat16", "oursFloat32", "oursBfloat16"] as const;
type Runtime = (typeof RUNTIMES)[number];
/** Keras' best setting on this CPU: its mixed_bfloat16 policy (1.6x float32 on a train step, measured). */
const KERAS_POLICY: Record<string, string> = { kerasFloat32: "float32", kerasBfloat16: "mixed_bfloat16" };
const OUR_PRECISION: Record<string, string> = { oursFloat32: "float32", oursBfloat16: "bfloat16" };

function runWorker(runtime: Runtime, k: Kind): Sample {
  const args = [k.kind, String(k.batch), String(SIZE), String(k.steps)];
  const out =
    runtime in KERAS_POLICY
      ? execFileSync(path.join(root, ".venv", "bin", "python"), [path.join(__dirname, "keras_worker.py"), ...args], { env: { ...env, BENCH_POLICY: KERAS_POLICY[runtime] }, encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] })
      : execFileSync(process.execPath, ["--require", "ts-node/register/transpile-only", path.join(__dirname, "ours-worker.ts"), ...args], {
          env: { ...env, BENCH_PRECISION: OUR_PRECISION[runtime] },
          encoding: "utf8",
          cwd: root,
          stdio: ["ignore", "pipe", "ignore"],
        });
  return JSON.parse(out.trim().split("\n").pop()!);
}

/** Fixed decimals for the table (two, none for thousands and up). */
const fixed = (value: number) => value.toFixed(value >= 1000 ? 0 : 2);

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
};

async function decodeRow(): Promise<{ imagesPerSecond: number }> {
  const data = await syntheticShapes({ classes: 4, perClass: 50, imageSize: 256, seed: 11 });
  const files = data.files();
  const started = performance.now();
  for (let i = 0; i < files.length; i += 32) (await decodeBatch(files.slice(i, i + 32), SIZE)).images.dispose();
  return { imagesPerSecond: files.length / ((performance.now() - started) / 1000) };
}

/** The classic rows: one kind of work per fresh process, Keras, op by op and graph alternating. */
async function stepRows() {
  const results: Record<string, Record<Runtime, Sample[]>> = {};
  for (const k of KINDS) {
    results[k.kind] = { kerasFloat32: [], kerasBfloat16: [], oursFloat32: [], oursBfloat16: [] };
    for (let round = 0; round < rounds; round++) {
      for (const runtime of RUNTIMES) {
        process.stdout.write(`  ${k.kind}: ${runtime} round ${round + 1}...`);
        const sample = runWorker(runtime, k);
        results[k.kind][runtime].push(sample);
        console.log(` ${(k.batch / median(sample.times)).toFixed(2)} images/s, peak RSS ${(sample.peakRssMB / 1024).toFixed(2)} GiB`);
      }
    }
  }
  const decode = await decodeRow();
  const rows = KINDS.map((k) => {
    const r = results[k.kind];
    const rate = (samples: Sample[]) => k.batch / median(samples.flatMap((s) => s.times));
    const rss = (samples: Sample[]) => Math.max(...samples.map((s) => s.peakRssMB)) / 1024;
    const rates = Object.fromEntries(RUNTIMES.map((runtime) => [runtime, rate(r[runtime])])) as Record<Runtime, number>;
    const peaks = Object.fromEntries(RUNTIMES.map((runtime) => [runtime, rss(r[runtime])])) as Record<Runtime, number>;
    return { kind: k.kind, label: k.label, batch: k.batch, rates, peaks };
  });
  return { size: SIZE, threads, rounds, rows, decode, raw: results };
}

function stepTable(steps: Awaited<ReturnType<typeof stepRows>>): Table {
  const forward = steps.rows.find((r) => r.kind === "features")!.rates.oursBfloat16;
  const x = (a: number, b: number) => `${(a / b).toFixed(2)}x`;
  return new Table(
    [
      "work",
      "batch",
      "images/s: Keras float32",
      "Keras mixed_bfloat16",
      "ours float32",
      "ours bfloat16",
      "ours bf16 / Keras bf16",
      "ours bf16 / Keras f32",
      "ours f32 / Keras f32",
      "peak RSS (GiB): Keras f32",
      "Keras bf16",
      "ours f32",
      "ours bf16",
      "RSS ours bf16 / Keras bf16",
    ],
    [
      ...steps.rows.map((r) => [
        r.label,
        r.batch,
        ...RUNTIMES.map((runtime) => fixed(r.rates[runtime])),
        x(r.rates.oursBfloat16, r.rates.kerasBfloat16),
        x(r.rates.oursBfloat16, r.rates.kerasFloat32),
        x(r.rates.oursFloat32, r.rates.kerasFloat32),
        ...RUNTIMES.map((runtime) => fixed(r.peaks[runtime])),
        x(r.peaks.oursBfloat16, r.peaks.kerasBfloat16),
      ]),
      [`decode + resize JPEGs to ${steps.size}x${steps.size} (sharp)`, 32, "", "", "", fixed(steps.decode.imagesPerSecond), `${(steps.decode.imagesPerSecond / forward).toFixed(1)}x our bfloat16 forward pass`, "", "", "", "", "", "", ""],
    ],
  );
}

interface RunLine {
  learningRate: number;
  wall: number;
  epochSeconds?: number[];
  frozenBottom?: { boundary: string; bytesPerImage: number };
  first?: number;
  median?: number;
  recorded?: number;
}

const lines = <Line = RunLine>(out: string): Line[] => out.trim().split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l));
const SWEEP = [1e-4, 3e-4, 1e-3, 3e-3];

function ours(dir: string, cache: string, rates: number[], epochs = 1, extra: Record<string, string> = {}): RunLine[] {
  const out = execFileSync(process.execPath, ["--require", "ts-node/register/transpile-only", path.join(__dirname, "rerun-worker.ts"), dir, String(epochs), ...rates.map(String)], {
    env: { ...env, INCEPTION_LAB_CACHE: cache, ...extra },
    encoding: "utf8",
    cwd: root,
    stdio: ["ignore", "pipe", "ignore"],
  });
  return lines(out);
}

/** The train and validation lists Keras' side reads ("path<TAB>label" per line), in `dir`. */
function listings(data: ImageFolder, dir: string) {
  const listing = (split: "train" | "validation") => {
    const file = path.join(dir, `${split}.tsv`);
    fs.writeFileSync(file, data.examples(split).map((e) => `${e.path}\t${e.label}`).join("\n") + "\n");
    return file;
  };
  return [listing("train"), listing("validation")];
}

function keras(data: ImageFolder, dir: string, policy: string, epochs: number, rates: number[], extra: Record<string, string> = {}): RunLine[] {
  const args = [path.join(__dirname, "keras_sweep.py"), ...listings(data, dir), String(epochs), ...rates.map(String)];
  return lines(execFileSync(path.join(root, ".venv", "bin", "python"), args, { env: { ...env, BENCH_POLICY: policy, ...extra }, encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }));
}

/** Full fine-tunes at 299 px, 1 epoch of 200 generated photos (batch 16), as a notebook re-runs a cell. */
async function interactiveRows() {
  const data: ImageFolder = await syntheticShapes({ classes: 5, perClass: 40, imageSize: 160, seed: 13 });
  const caches = fs.mkdtempSync(path.join(os.tmpdir(), "bench-graphs-"));
  try {
    console.log("  re-run: first run records, second run (another learning rate) in the same process...");
    const [firstRun, rerun] = ours(data.dir, path.join(caches, "rerun"), [1e-4, 3e-4]);
    console.log("  re-run: a new process on the same disk cache...");
    const [restarted] = ours(data.dir, path.join(caches, "rerun"), [1e-3]);
    console.log(`  sweep: ours, ${SWEEP.length} points in one process, nothing recorded before...`);
    const sweepOurs = ours(data.dir, path.join(caches, "sweep"), SWEEP);
    console.log(`  sweep: Keras (mixed_bfloat16), a fresh model per point...`);
    const sweepKeras = keras(data, caches, "mixed_bfloat16", 1, SWEEP);
    const total = (runs: RunLine[]) => runs.reduce((sum, r) => sum + r.wall, 0);
    return { images: data.files().length, firstRun, rerun, restarted, sweep: { ours: sweepOurs, keras: sweepKeras, oursSeconds: total(sweepOurs), kerasSeconds: total(sweepKeras) } };
  } finally {
    fs.rmSync(caches, { recursive: true, force: true });
  }
}

function interactiveTable(r: Awaited<ReturnType<typeof interactiveRows>>): Table {
  const ratio = (run: RunLine) => `${(run.first! / run.median!).toFixed(2)}x`;
  return new Table(
    ["work", "ours", "baseline", "ratio"],
    [
      ["first run: first step / median step (records its graphs)", `${r.firstRun.first!.toFixed(2)} s / ${r.firstRun.median!.toFixed(2)} s`, "", ratio(r.firstRun)],
      ["re-run, another learning rate: first step / median step", `${r.rerun.first!.toFixed(2)} s / ${r.rerun.median!.toFixed(2)} s (${r.rerun.recorded} recorded)`, "", ratio(r.rerun)],
      ["re-run after a restart (new process): first step / median step", `${r.restarted.first!.toFixed(2)} s / ${r.restarted.median!.toFixed(2)} s (${r.restarted.recorded} recorded)`, "", ratio(r.restarted)],
      [
        `${SWEEP.length}-point learning-rate sweep, 1 epoch each (Keras mixed_bfloat16: fresh model per point)`,
        `${r.sweep.oursSeconds.toFixed(1)} s`,
        `Keras ${r.sweep.kerasSeconds.toFixed(1)} s`,
        `${(r.sweep.kerasSeconds / r.sweep.oursSeconds).toFixed(2)}x faster`,
      ],
    ],
  );
}

/** A fresh full fine-tune, 2 epochs of 200 generated photos at 299 px (batch 16), recording and tracing included, against Keras' fit. */
async function endToEndRows() {
  const data: ImageFolder = await syntheticShapes({ classes: 5, perClass: 40, imageSize: 160, seed: 13 });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "bench-e2e-"));
  try {
    const runs: { ours: number[]; keras: number[]; kerasFloat32: number[] } = { ours: [], keras: [], kerasFloat32: [] };
    for (let round = 0; round < rounds; round++) {
      console.log(`  end to end, round ${round + 1}: ours (auto precision, nothing recorded before)...`);
      runs.ours.push(ours(data.dir, path.join(dir, `cache-${round}`), [1e-4], 2)[0].wall);
      console.log(`  end to end, round ${round + 1}: Keras mixed_bfloat16 fit, then float32...`);
      runs.keras.push(keras(data, dir, "mixed_bfloat16", 2, [1e-4])[0].wall);
      runs.kerasFloat32.push(keras(data, dir, "float32", 2, [1e-4])[0].wall);
    }
    return { images: data.files().length, ...runs };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function endToEndTable(r: Awaited<ReturnType<typeof endToEndRows>>): Table {
  const [ours, keras, kerasFloat32] = [median(r.ours), median(r.keras), median(r.kerasFloat32)];
  return new Table(
    ["work", "ours (auto: bfloat16)", "Keras mixed_bfloat16", "Keras float32", "Keras bf16 / ours", "Keras f32 / ours"],
    [[`fresh full fine-tune, 2 epochs of ${r.images} images, recording included`, `${ours.toFixed(1)} s`, `${keras.toFixed(1)} s`, `${kerasFloat32.toFixed(1)} s`, `${(keras / ours).toFixed(2)}x`, `${(kerasFloat32 / ours).toFixed(2)}x`]],
  );
}

/**
 * A fine-tune from mixed7 without distortions, 3 epochs of 200 generated photos at 299 px: seconds an epoch after
 * the first, ours with the frozen-bottom cache and without, Keras (mixed_bfloat16), which runs the frozen blocks every epoch.
 */
async function frozenBottomRows() {
  const data: ImageFolder = await syntheticShapes({ classes: 5, perClass: 40, imageSize: 160, seed: 13 });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "bench-frozen-"));
  const later = (run: RunLine) => median(run.epochSeconds!.slice(1));
  try {
    const rows: { cached: number[]; recomputed: number[]; keras: number[]; bytesPerImage: number; boundary: string } = { cached: [], recomputed: [], keras: [], bytesPerImage: 0, boundary: "" };
    for (let round = 0; round < rounds; round++) {
      console.log(`  frozen bottom, round ${round + 1}: ours with the cache, without, Keras...`);
      const [cached] = ours(data.dir, path.join(dir, `cache-${round}`), [1e-4], 3, { BENCH_UNFREEZE: "mixed7" });
      const [recomputed] = ours(data.dir, path.join(dir, `plain-${round}`), [1e-4], 3, { BENCH_UNFREEZE: "mixed7", BENCH_FROZEN_CACHE: "0" });
      const [kerasRun] = keras(data, dir, "mixed_bfloat16", 3, [1e-4], { BENCH_TRAIN_FROM: "mixed7" });
      rows.cached.push(later(cached));
      rows.recomputed.push(later(recomputed));
      rows.keras.push(later(kerasRun));
      rows.bytesPerImage = cached.frozenBottom!.bytesPerImage;
      rows.boundary = cached.frozenBottom!.boundary;
    }
    return { images: data.files("train").length, ...rows };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function frozenBottomTable(r: Awaited<ReturnType<typeof frozenBottomRows>>): Table {
  const [cached, recomputed, keras] = [median(r.cached), median(r.recomputed), median(r.keras)];
  return new Table(
    ["work", "ours, frozen-bottom cache", "ours, without", "Keras mixed_bfloat16", "without / with", "Keras / ours with", "cache per image"],
    [[`fine-tune from mixed7, an epoch after the first (${r.images} training images)`, `${cached.toFixed(1)} s`, `${recomputed.toFixed(1)} s`, `${keras.toFixed(1)} s`, `${(recomputed / cached).toFixed(2)}x`, `${(keras / cached).toFixed(2)}x`, `${(r.bytesPerImage / 1024).toFixed(0)} KiB (${r.boundary}'s output)`]],
  );
}

interface CostLine {
  mode: string;
  unfreezeFrom?: string;
  epochs: number;
  precision: string;
  predicted: number;
  measured: number;
}

/** The cost model's prediction against the wall time of a retraining, a fine-tune from mixed7 and a full fine-tune of 200 generated photos at 299 px. */
async function costModelRows() {
  const data: ImageFolder = await syntheticShapes({ classes: 5, perClass: 40, imageSize: 160, seed: 13 });
  const cache = fs.mkdtempSync(path.join(os.tmpdir(), "bench-cost-model-"));
  try {
    const perRound: CostLine[][] = [];
    for (let round = 0; round < rounds; round++) {
      console.log(`  cost model, round ${round + 1}: throughput, then a retraining, a fine-tune from mixed7 and a full one...`);
      const out = execFileSync(process.execPath, ["--require", "ts-node/register/transpile-only", path.join(__dirname, "cost-worker.ts"), data.dir], {
        env: { ...env, INCEPTION_LAB_CACHE: path.join(cache, `round-${round}`) },
        encoding: "utf8",
        cwd: root,
        stdio: ["ignore", "pipe", "ignore"],
      });
      perRound.push(lines<CostLine>(out));
    }
    return { images: data.files("train").length, rounds: perRound };
  } finally {
    fs.rmSync(cache, { recursive: true, force: true });
  }
}

function costModelTable(r: Awaited<ReturnType<typeof costModelRows>>): Table {
  return new Table(
    ["run", "precision", "predicted", "measured", "predicted / measured"],
    r.rounds[0].map((line, i) => {
      const [predicted, measured] = [median(r.rounds.map((round) => round[i].predicted)), median(r.rounds.map((round) => round[i].measured))];
      const what = line.mode === "retrain-final-layer" ? `retrain the final layer, ${line.epochs} epochs` : `fine-tune from ${line.unfreezeFrom}, 1 warm-up + ${line.epochs} epochs`;
      return [what, line.precision, `${predicted.toFixed(1)} s`, `${measured.toFixed(1)} s`, (predicted / measured).toFixed(2)];
    }),
  );
}

const ACCURACY_SEEDS = [0, 1, 2, 3, 4];

/** Notebook 03's base fine-tune and its retraining at float32 and bfloat16 over the same seeds: test accuracy, on this machine. */
function accuracyRows() {
  console.log(`  accuracy: notebook 03's base fine-tune and retraining, seeds ${ACCURACY_SEEDS.join(", ")}, float32 then bfloat16...`);
  const cache = fs.mkdtempSync(path.join(os.tmpdir(), "bench-accuracy-"));
  try {
    const out = execFileSync(process.execPath, ["--require", "ts-node/register/transpile-only", path.join(__dirname, "accuracy-worker.ts"), ...ACCURACY_SEEDS.map(String)], {
      env: { ...env, INCEPTION_LAB_CACHE: cache },
      encoding: "utf8",
      cwd: root,
      stdio: ["ignore", "pipe", "ignore"],
    });
    return { seeds: ACCURACY_SEEDS, runs: lines<{ mode: string; precision: string; seed: number; accuracy: number; seconds: number }>(out) };
  } finally {
    fs.rmSync(cache, { recursive: true, force: true });
  }
}

/**
 * A row per mode and precision (each seed, the mean and its standard error), then per mode the difference of the
 * means, bfloat16 less float32, with the standard error of that difference: a cost shows only beyond about twice it.
 */
function accuracyTable(r: ReturnType<typeof accuracyRows>): Table {
  const mean = (values: number[]) => values.reduce((a, b) => a + b, 0) / values.length;
  const variance = (values: number[]) => values.reduce((s, v) => s + (v - mean(values)) ** 2, 0) / Math.max(values.length - 1, 1);
  const modes = [...new Set(r.runs.map((run) => run.mode))];
  const of = (mode: string, precision: string) => r.runs.filter((run) => run.mode === mode && run.precision === precision);
  const points = (x: number) => (x * 100).toFixed(1);
  return new Table(
    ["mode", "precision", ...r.seeds.map((s) => `seed ${s}`), "mean", "standard error (points)", "mean wall time (s)"],
    modes.flatMap((mode) => {
      const [f32, bf16] = ["float32", "bfloat16"].map((p) => of(mode, p).map((run) => run.accuracy));
      const rows = ["float32", "bfloat16"].map((precision) => {
        const accuracies = of(mode, precision).map((run) => run.accuracy);
        return [mode, precision, ...accuracies.map((a) => a.toFixed(3)), mean(accuracies).toFixed(3), points(Math.sqrt(variance(accuracies) / accuracies.length)), mean(of(mode, precision).map((run) => run.seconds)).toFixed(1)];
      });
      const error = Math.sqrt(variance(f32) / f32.length + variance(bf16) / bf16.length);
      return [...rows, [mode, "bfloat16 less float32", ...r.seeds.map((_, i) => points(bf16[i] - f32[i])), `${points(mean(bf16) - mean(f32))} points`, points(error), ""]];
    }),
  );
}

interface TfliteLine {
  model: string;
  bytes: number;
  /** Median seconds of one image. */
  latency: number;
  /** A TensorFlow Lite export's check (tflite.ts' InterpreterCheck); absent for the library's rows. */
  split?: string;
  images?: number;
  accuracy?: number;
  libraryAccuracy?: number;
  agreement?: number;
  maxDifference?: number;
  interpreter?: string;
}

/** A classifier retrained at SIZE (299 px) on 200 generated photos, exported to TensorFlow Lite at each quantization: sizes and per-image latency beside the library's. */
async function tfliteRows() {
  const data: ImageFolder = await syntheticShapes({ classes: 5, perClass: 40, imageSize: 160, seed: 13 });
  console.log(`  tflite: a retraining at ${SIZE} px, then an export at each quantization, each checked in the TFLite interpreter...`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "bench-tflite-"));
  try {
    const out = execFileSync(process.execPath, ["--require", "ts-node/register/transpile-only", path.join(__dirname, "tflite-worker.ts"), data.dir, path.join(dir, "exports"), String(SIZE)], {
      env: { ...env, INCEPTION_LAB_CACHE: path.join(dir, "cache") },
      encoding: "utf8",
      cwd: root,
      stdio: ["ignore", "pipe", "ignore"],
    });
    return { images: data.files("train").length, rows: lines<TfliteLine>(out) };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function tfliteTable(r: Awaited<ReturnType<typeof tfliteRows>>): Table {
  return new Table(
    ["model", "size", "latency / image", "test accuracy (library float32)", "top-1 agreement", "max |p - library|", "run by"],
    r.rows.map((row) => [
      row.model,
      `${(row.bytes / 2 ** 20).toFixed(1)} MiB${row.split ? "" : " (float32 weights)"}`,
      `${(row.latency * 1000).toFixed(1)} ms`,
      row.split ? `${row.accuracy!.toFixed(3)} (${row.libraryAccuracy!.toFixed(3)}), ${row.images} ${row.split} images` : "",
      row.split ? `${(row.agreement! * 100).toFixed(1)} %` : "",
      row.split ? row.maxDifference!.toExponential(1) : "",
      row.interpreter ?? "tfjs-node (TensorFlow's C library), as a graph",
    ]),
  );
}

/** Each table's name in results.json and in BENCH_ONLY. */
const SECTIONS = { steps: "steps", interactive: "interactive", endToEnd: "end-to-end", frozenBottom: "frozen-bottom", costModel: "cost-model", accuracy: "accuracy", tflite: "tflite" } as const;

/** Where and when a table was measured. */
interface Provenance {
  date: string;
  machine: string;
  bfloat16Units: string[];
}

const markdownTable = (table: Table) => ["| " + table.columns.join(" | ") + " |", "|" + table.columns.map(() => "---").join("|") + "|", ...table.rows.map((row) => "| " + row.map((c) => (c === null || c === undefined ? "" : String(c))).join(" | ") + " |")];

(async () => {
  const only = process.env.BENCH_ONLY;
  const file = path.join(__dirname, "results.json");
  const previous = fs.existsSync(file) ? JSON.parse(fs.readFileSync(file, "utf8")) : {};
  // Results written before the interactive table held the step rows at the top level.
  const kept = { steps: previous.steps?.rows?.[0]?.rates ? previous.steps : undefined, interactive: previous.interactive, endToEnd: previous.endToEnd, frozenBottom: previous.frozenBottom, costModel: previous.costModel, accuracy: previous.accuracy, tflite: previous.tflite };
  const runs = (key: keyof typeof SECTIONS) => !only || only === SECTIONS[key];
  if (only && only !== "report" && !(Object.values(SECTIONS) as string[]).includes(only)) throw new Error(`BENCH_ONLY=${only}: give one of ${Object.values(SECTIONS).join(", ")}, or report (rewrites RESULTS.md from results.json).`);
  console.log(`Inception Lab vs Keras: Inception-v3 ${SIZE}x${SIZE}, ${threads} TensorFlow threads, ${rounds} round(s) each, alternating`);
  const steps = runs("steps") ? await stepRows() : kept.steps;
  const interactive = runs("interactive") ? await interactiveRows() : kept.interactive;
  const endToEnd = runs("endToEnd") ? await endToEndRows() : kept.endToEnd;
  const frozenBottom = runs("frozenBottom") ? await frozenBottomRows() : kept.frozenBottom;
  const costModel = runs("costModel") ? await costModelRows() : kept.costModel;
  const accuracy = runs("accuracy") ? accuracyRows() : kept.accuracy;
  const tflite = runs("tflite") ? await tfliteRows() : kept.tflite;
  // Each table keeps the machine and day it was measured on: BENCH_ONLY re-runs one on today's machine, which
  // may not be the one the others ran on (these machines vary: AVX-512 BF16, AMX, or AVX2 only).
  const here: Provenance = { date: new Date().toISOString(), machine: `${os.cpus()[0]?.model.trim()} x ${os.availableParallelism()}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.versions.node}`, bfloat16Units: cpuFeatureFlags().filter((f) => /bf16|amx/.test(f)) };
  const earlier: Provenance = { date: previous.date, machine: previous.machine, bfloat16Units: (previous.cpuFlags ?? []).filter((f: string) => /bf16|amx/.test(f)) };
  const measuredOn = Object.fromEntries((Object.keys(SECTIONS) as (keyof typeof SECTIONS)[]).map((key) => [key, runs(key) ? here : (previous.measuredOn?.[key] ?? earlier)])) as Record<keyof typeof SECTIONS, Provenance>;
  fs.writeFileSync(file, JSON.stringify({ date: here.date, machine: here.machine, measuredOn, steps, interactive, endToEnd, frozenBottom, costModel, accuracy, tflite }, null, 1));
  const markdown = ["# Benchmark results", "", `Each table says the day and machine it was measured on. Regenerate with \`npm run bench\` (\`BENCH_ONLY=steps\`, \`interactive\`, \`end-to-end\`, \`frozen-bottom\`, \`cost-model\`, \`accuracy\` or \`tflite\` for one table, \`report\` to rewrite this file from \`results.json\`).`, ""];
  /** One table: printed, and a section of RESULTS.md with the setting it was measured in. */
  const section = (key: keyof typeof SECTIONS, title: string, setting: string, table: Table) => {
    console.log(`\n${table.toText()}`);
    const on = measuredOn[key];
    const units = on.bfloat16Units.length ? `bfloat16 in hardware (${on.bfloat16Units.join(", ")})` : "no bfloat16 units: bfloat16 emulated";
    markdown.push(`## ${title}`, "", `Measured ${on.date.slice(0, 10)} on ${on.machine}, ${units}.`, "", setting, "", ...markdownTable(table), "");
  };
  if (steps)
    section(
      "steps",
      "Steps",
      `Inception-v3 ${steps.size}x${steps.size}, ${steps.threads} TensorFlow threads, ${steps.rounds} alternating round(s) per row, medians of per-step times after ${WARMUP} warm-up steps. Keras at float32 and with its \`mixed_bfloat16\` policy (its best setting on a CPU with bfloat16 units); ours as the library runs (steps as graphs) at float32 and bfloat16. The head step stays float32 in ours (a 2048 x classes matrix product).`,
      stepTable(steps),
    );
  if (interactive)
    section(
      "interactive",
      "Interactive speed",
      `Full fine-tunes at 299x299 from random weights, 1 epoch over ${interactive.images} generated images (80 % training, batch 16, validation each epoch), as a notebook re-runs a training cell, at the library's default precision ("auto"); the first and median step of each run, and a learning-rate sweep (${SWEEP.join(", ")}) against Keras (mixed_bfloat16) building and fitting a fresh model per point in one script. Each side starts with nothing recorded or traced.`,
      interactiveTable(interactive),
    );
  if (endToEnd)
    section(
      "endToEnd",
      "End to end",
      `A fresh full fine-tune at 299x299 from random weights, 2 epochs over ${endToEnd.images} generated images (80 % training, batch 16, validation each epoch), in a fresh process with nothing recorded or traced: ours at its default precision ("auto"), Keras building, compiling and fitting a fresh model; ${endToEnd.ours.length} round(s), medians of wall times.`,
      endToEndTable(endToEnd),
    );
  if (frozenBottom)
    section(
      "frozenBottom",
      "The frozen-bottom cache",
      `A fine-tune from mixed7 at 299x299 without distortions (random weights, 3 epochs of ${frozenBottom.images} training images, batch 16, validation each epoch): the median seconds of an epoch after the first, when the cache serves the frozen blocks' output; Keras (mixed_bfloat16, blocks below mixed7 frozen) runs them every epoch. ${frozenBottom.cached.length} round(s), medians.`,
      frozenBottomTable(frozenBottom),
    );
  if (costModel)
    section(
      "costModel",
      "The cost model",
      `measureThroughput at 299x299 (bundled weights, batch 16, 4 steps a kind), then real runs on ${costModel.images} training images of generated photos (batch 16, validation each epoch, features computed afresh), each predicted from that throughput before it runs (\`predictRun\`, what the notebooks' cost model uses) and timed. \`test/cost.test.ts\` only checks a factor of 2, since CI machines are loaded; ${costModel.rounds.length} round(s), medians.`,
      costModelTable(costModel),
    );
  if (accuracy)
    section(
      "accuracy",
      "Accuracy at bfloat16",
      `Notebook 03's base fine-tune (mirrored glyphs at 128x128, 150 images a class, 20 % of them for testing, bundled weights, from mixed6, 20 warm-up epochs then 12, batch 16, Adam at 1e-3) and its retraining of the final layer (200 epochs, batch 16, Adam at 1e-2), the same ${accuracy.seeds.length} seeds at float32 and at bfloat16, in one process; test accuracy. Whether bfloat16 costs accuracy is the difference of the means against the standard error of that difference (a cost shows only beyond about twice it). On a CPU without bfloat16 units (the line above says) TensorFlow emulates bfloat16: the accuracies are bfloat16's, the times are not.`,
      accuracyTable(accuracy),
    );
  if (tflite)
    section(
      "tflite",
      "TensorFlow Lite",
      `A classifier retrained at ${SIZE}x${SIZE} (bundled weights, 30 epochs on the features of ${tflite.images} training images of generated photos), exported at each quantization by the venv's TensorFlow converter (int8 calibrated on the training images). Latency: the median of 15 single-image calls after 3 warm-up ones, on this CPU with every core: the TFLite interpreter's invoke (in Python, pixels already in), and the library's run.predict on one decoded image (tensor in, probabilities out). Accuracy and agreement on the test split, against the library's float32 predictions on the same decoded pixels.`,
      tfliteTable(tflite),
    );
  fs.writeFileSync(path.join(__dirname, "RESULTS.md"), markdown.join("\n"));
  console.log(`\nwritten: bench/results.json, bench/RESULTS.md`);
})();
