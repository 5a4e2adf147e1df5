// The bench's record of accuracy over seeds at float32 and at bfloat16 (bench/results.json, written by
// `BENCH_ONLY=accuracy npm run bench`). Notebook 3 shows it where this CPU has no bfloat16 units: TensorFlow
// emulates bfloat16 there, and its five fine-tunes would take about an hour (643 s each against 68 s at float32,
// bench/RESULTS.md, on a 2-core EPYC with AVX2 only). The record is read back verified: a table built on a
// truncated or hand-edited file would teach wrong numbers.
import * as fs from "fs";
import * as path from "path";
import type { Precision } from "../runtime/precision";

/** The bench's results, beside the library in the repository. */
export const BENCH_RESULTS = path.join(__dirname, "..", "..", "bench", "results.json");

export type RecordedMode = "fine-tune" | "retrain-final-layer";

export interface AccuracyRecord {
  file: string;
  /** Where and when the runs were measured (`bfloat16Units` empty: bfloat16 was emulated). */
  measuredOn: { date: string; machine: string; bfloat16Units: string[] };
  seeds: number[];
  /** Test accuracy of each seed, in the order of `seeds`. */
  accuracies(mode: RecordedMode, precision: Precision): number[];
  /** Wall time of each seed's run, in seconds, in the order of `seeds`. */
  seconds(mode: RecordedMode, precision: Precision): number[];
}

interface RecordedRun {
  mode: RecordedMode;
  precision: Precision;
  seed: number;
  accuracy: number;
  seconds: number;
}

/** The accuracy record, every seed at both precisions for both modes, or an error naming the file and what is wrong. */
export function benchAccuracyRecord(file = BENCH_RESULTS): AccuracyRecord {
  const refuse = (why: string): never => {
    throw new Error(`${file}: ${why}. Record it again: BENCH_ONLY=accuracy npm run bench (about an hour and a quarter where bfloat16 is emulated).`);
  };
  if (!fs.existsSync(file)) refuse("not found");
  let results: { measuredOn?: Record<string, unknown>; accuracy?: { seeds?: unknown; runs?: unknown } };
  try {
    results = JSON.parse(fs.readFileSync(file, "utf8"));
  } catch (error) {
    return refuse(`not valid JSON (${(error as Error).message})`);
  }
  const accuracy = results.accuracy;
  if (!accuracy || !Array.isArray(accuracy.seeds) || !Array.isArray(accuracy.runs)) return refuse("holds no accuracy section (seeds and runs)");
  const seeds = accuracy.seeds as number[];
  if (seeds.length < 2 || !seeds.every(Number.isInteger)) refuse(`its accuracy seeds (${JSON.stringify(seeds)}) are not two or more whole numbers`);
  const runs = accuracy.runs as RecordedRun[];
  for (const run of runs) {
    const valid = ["fine-tune", "retrain-final-layer"].includes(run?.mode) && ["float32", "bfloat16"].includes(run?.precision) && seeds.includes(run?.seed);
    if (!valid || !(run.accuracy >= 0 && run.accuracy <= 1) || !(run.seconds > 0)) refuse(`an accuracy run is malformed: ${JSON.stringify(run)}`);
  }
  const measuredOn = results.measuredOn?.accuracy as AccuracyRecord["measuredOn"] | undefined;
  if (!measuredOn || typeof measuredOn.date !== "string" || typeof measuredOn.machine !== "string" || !Array.isArray(measuredOn.bfloat16Units)) refuse("does not say where its accuracy section was measured (measuredOn.accuracy)");
  const of = (mode: RecordedMode, precision: Precision) =>
    seeds.map((seed) => {
      const found = runs.filter((r) => r.mode === mode && r.precision === precision && r.seed === seed);
      if (found.length !== 1) refuse(`${found.length} runs of ${mode} at ${precision} with seed ${seed}, where one was expected`);
      return found[0];
    });
  for (const mode of ["fine-tune", "retrain-final-layer"] as const) for (const precision of ["float32", "bfloat16"] as const) of(mode, precision);
  return {
    file,
    measuredOn: measuredOn!,
    seeds,
    accuracies: (mode, precision) => of(mode, precision).map((r) => r.accuracy),
    seconds: (mode, precision) => of(mode, precision).map((r) => r.seconds),
  };
}
