// npm run bench: Inception Lab against Python Keras on the same machine, same inputs, batch size and
// thread count. Each measurement runs in a fresh process (so peak RSS is its own), Keras, ours op by op
// (tfjs' eager execution, the "before") and ours as the library runs it (steps as TensorFlow graphs)
// alternating, each after the same warm-up steps; the table shows medians of per-step times and ratios.
// Results go to bench/results.json and bench/RESULTS.md.
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { execFileSync } from "child_process";
import { decodeBatch } from "../kernel-helpers/network/decode";
import { syntheticShapes } from "../kernel-helpers/data/datasets";
import { Table } from "../kernel-helpers/display/display";

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

const RUNTIMES = ["keras", "eager", "ours"] as const;
type Runtime = (typeof RUNTIMES)[number];

function runWorker(runtime: Runtime, k: Kind): Sample {
  const args = [k.kind, String(k.batch), String(SIZE), String(k.steps)];
  const out =
    runtime === "keras"
      ? execFileSync(path.join(root, ".venv", "bin", "python"), [path.join(__dirname, "keras_worker.py"), ...args], { env, encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] })
      : execFileSync(process.execPath, ["--require", "ts-node/register/transpile-only", path.join(__dirname, "ours-worker.ts"), ...args], {
          env: { ...env, BENCH_GRAPH: runtime === "ours" ? "1" : "0" },
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
  const data = await syntheticShapes({ classes: 4, perClass: 50, size: 256, seed: 11 });
  const files = data.files();
  const started = performance.now();
  for (let i = 0; i < files.length; i += 32) (await decodeBatch(files.slice(i, i + 32), SIZE)).images.dispose();
  return { imagesPerSecond: files.length / ((performance.now() - started) / 1000) };
}

(async () => {
  console.log(`Inception Lab vs Keras: Inception-v3 ${SIZE}x${SIZE}, ${threads} TensorFlow threads, ${rounds} round(s) each, alternating`);
  const results: Record<string, Record<Runtime, Sample[]>> = {};
  for (const k of KINDS) {
    results[k.kind] = { keras: [], eager: [], ours: [] };
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
    const [kerasRate, eagerRate, oursRate, kerasRss, eagerRss, oursRss] = [rate(r.keras), rate(r.eager), rate(r.ours), rss(r.keras), rss(r.eager), rss(r.ours)];
    return { kind: k.kind, label: k.label, batch: k.batch, kerasRate, eagerRate, oursRate, speedRatio: oursRate / kerasRate, kerasRss, eagerRss, oursRss, rssRatio: oursRss / kerasRss };
  });
  const forward = rows.find((r) => r.kind === "features")!.oursRate;
  const table = new Table(
    ["work", "batch", "Keras images/s", "ours op by op", "ours (graph)", "ours / Keras", "Keras peak RSS (GiB)", "ours op by op", "ours (graph)", "RSS ours / Keras"],
    [
      ...rows.map((r) => [r.label, r.batch, fixed(r.kerasRate), fixed(r.eagerRate), fixed(r.oursRate), `${r.speedRatio.toFixed(2)}x`, fixed(r.kerasRss), fixed(r.eagerRss), fixed(r.oursRss), `${r.rssRatio.toFixed(2)}x`]),
      [`decode + resize JPEGs to ${SIZE}x${SIZE} (sharp)`, 32, "", "", fixed(decode.imagesPerSecond), `${(decode.imagesPerSecond / forward).toFixed(1)}x the forward pass`, "", "", "", ""],
    ],
  );
  console.log(`\n${table.toText()}`);
  const stamp = new Date().toISOString();
  const machine = `${os.cpus()[0]?.model.trim()} x ${os.availableParallelism()}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.versions.node}`;
  fs.writeFileSync(path.join(__dirname, "results.json"), JSON.stringify({ date: stamp, machine, size: SIZE, threads, rounds, rows, decode, raw: results }, null, 1));
  const markdown = [
    "# Benchmark results",
    "",
    `${stamp}, ${machine}. Inception-v3 ${SIZE}x${SIZE}, ${threads} TensorFlow threads, ${rounds} alternating round(s) per row, medians of per-step times after ${WARMUP} warm-up steps; "ours (graph)" is the library as it runs, "op by op" the same code with \`graph: false\`. Regenerate with \`npm run bench\`.`,
    "",
    "| " + table.columns.join(" | ") + " |",
    "|" + table.columns.map(() => "---").join("|") + "|",
    ...table.rows.map((row) => "| " + row.map((c) => (c === null || c === undefined ? "" : String(c))).join(" | ") + " |"),
    "",
  ].join("\n");
  fs.writeFileSync(path.join(__dirname, "RESULTS.md"), markdown);
  console.log(`\nwritten: bench/results.json, bench/RESULTS.md`);
})();
