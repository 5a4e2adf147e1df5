// The three modes (and the partial fine-tune between them) on the same split and budget, side by side:
// accuracy, wall time, time to a target accuracy, throughput and compute per image.
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { Displayable, Table } from "../display/display";
import type { Evaluation } from "../train/evaluation";
import type { ImageFolder } from "../data/image-folder";
import { BLOCKS, type CutLayer } from "../network/inception";
import type { Inception } from "../network/model";
import { fineTune, retrainFinalLayer, trainFromScratch } from "../train/modes";
import { checkNames } from "../train/options";
import type { TrainOptions } from "../train/options";
import { type Mode, plan, type Plan } from "../train/recipes";
import { formatFlops, type TrainingRun } from "../train/run";

/** The runs a comparison can hold: the three modes, and a fine-tune of the top blocks between them. */
export type CompareEntry = "retrain-final-layer" | "fine-tune-top" | "fine-tune" | "from-scratch";
export const COMPARE_ENTRIES: CompareEntry[] = ["retrain-final-layer", "fine-tune-top", "fine-tune", "from-scratch"];

/** The block a "fine-tune-top" run starts training from by default: the one below the cut. */
export function topBlock(layer: CutLayer): CutLayer {
  return BLOCKS[Math.max(BLOCKS.indexOf(layer) - 1, 1)] as CutLayer;
}

/** An entry's mode, its plan at the cut `layer`, its label and the options that make it. */
export function entryPlan(entry: CompareEntry, layer: CutLayer, unfreezeFrom: CutLayer = topBlock(layer)): { mode: Mode; plan: Plan; label: string; options: TrainOptions } {
  const mode: Mode = entry === "fine-tune-top" ? "fine-tune" : entry;
  const options: TrainOptions = entry === "fine-tune-top" ? { unfreezeFrom } : entry === "fine-tune" ? { unfreezeFrom: "all" } : {};
  const label = { "retrain-final-layer": "retrain the final layer", "fine-tune-top": `fine-tune from ${unfreezeFrom}`, "fine-tune": "fine-tune all", "from-scratch": "train from scratch" }[entry];
  return { mode, plan: plan(mode, layer, options), label, options };
}

export interface CompareOptions extends TrainOptions {
  /** Which runs, in order (default all four). */
  modes?: CompareEntry[];
  /** Options for one entry only, on top of the shared ones (e.g. more epochs for retraining). */
  perMode?: Partial<Record<CompareEntry, TrainOptions>>;
  /** "Time to target" is the first time validation accuracy reached this (default 0.8). */
  targetAccuracy?: number;
}

export interface ComparisonRow {
  entry: CompareEntry;
  label: string;
  run: TrainingRun;
  evaluation: Evaluation;
  testAccuracy: number;
  seconds: number;
  secondsToTarget: number | null;
  imagesPerSecond: number;
  flopsPerImage: number;
  trainedParameters: number;
}

export class Comparison extends Displayable {
  constructor(
    readonly rows: ComparisonRow[],
    readonly targetAccuracy: number,
  ) {
    super();
  }

  run(entry: CompareEntry): TrainingRun | undefined {
    return this.rows.find((r) => r.entry === entry)?.run;
  }

  table(): Table {
    return new Table(
      ["mode", "test accuracy", "wall time (s)", `time to ${Math.round(this.targetAccuracy * 100)} % val (s)`, "train images/s", "compute per image step", "trained parameters"],
      this.rows.map((r) => [
        r.label,
        Number(r.testAccuracy.toFixed(3)),
        Number(r.seconds.toFixed(1)),
        r.secondsToTarget === null ? "not reached" : Number(r.secondsToTarget.toFixed(1)),
        Number(r.imagesPerSecond.toFixed(1)),
        formatFlops(r.flopsPerImage),
        `${(r.trainedParameters / 1e6).toFixed(2)}M`,
      ]),
      "Retrain vs fine-tune vs from scratch, same split and budget",
    );
  }

  toText(): string {
    return this.table().toText();
  }

  toHTML(): string {
    return this.table().toHTML();
  }
}

/** Compute per image in the run's last phase (the one that defines the mode). */
function flopsPerImage(run: TrainingRun): number {
  const epochs = run.history.epochs;
  const last = epochs[epochs.length - 1];
  const before = epochs.filter((e) => e.phase !== last?.phase).pop() ?? { flops: 0, images: 0 };
  return last ? (last.flops - before.flops) / Math.max(last.images - before.images, 1) : 0;
}

export function comparisonRow(entry: CompareEntry, label: string, run: TrainingRun, evaluation: Evaluation, targetAccuracy: number): ComparisonRow {
  const epochs = run.history.epochs;
  // Epoch times count from the training loop's start; feature extraction before it counts too.
  const offset = run.info.seconds - (epochs[epochs.length - 1]?.seconds ?? 0);
  const reached = epochs.find((e) => (e.valAccuracy ?? -1) >= targetAccuracy);
  return {
    entry,
    label,
    run,
    evaluation,
    testAccuracy: evaluation.accuracy,
    seconds: run.info.seconds,
    secondsToTarget: reached ? offset + reached.seconds : null,
    imagesPerSecond: run.imagesPerSecond,
    flopsPerImage: flopsPerImage(run),
    trainedParameters: run.info.trainableParameters,
  };
}

/**
 * Runs retrain-final-layer, a fine-tune of the top blocks, a full fine-tune and training from scratch
 * on the same data split with the same shared options (epochs, batch size, time budget, seed), then
 * evaluates each on the test split. `inception` must be pretrained; it is left unchanged.
 */
export async function compareModes(inception: Inception, data: ImageFolder, options: CompareOptions = {}): Promise<Comparison> {
  const { modes = COMPARE_ENTRIES, perMode = {}, targetAccuracy = 0.8, ...shared } = options;
  checkNames(perMode, COMPARE_ENTRIES, "perMode");
  const unknown = modes.filter((m) => !COMPARE_ENTRIES.includes(m));
  if (unknown.length) throw new Error(`modes: ${unknown.map((m) => `"${m}"`).join(", ")} not known; use ${COMPARE_ENTRIES.join(", ")}.`);
  const layer: CutLayer = shared.layer ?? inception.source.featureLayer;
  const top = shared.unfreezeFrom && shared.unfreezeFrom !== "all" ? shared.unfreezeFrom : topBlock(layer);
  const rows: ComparisonRow[] = [];
  // Each mode gets its own feature cache, so none is timed on features another one computed.
  const caches = fs.mkdtempSync(path.join(os.tmpdir(), "inception-lab-compare-"));
  try {
    for (const entry of modes) {
      const { mode, label, options: made } = entryPlan(entry, layer, top);
      const o: TrainOptions = { ...shared, layer, cacheDir: path.join(caches, entry), ...made, ...perMode[entry] };
      const run =
        mode === "retrain-final-layer"
          ? await retrainFinalLayer(inception, data, o)
          : mode === "fine-tune"
            ? await fineTune(inception, data, o)
            : await trainFromScratch(data, { ...o, inputSize: shared.inputSize ?? inception.inputSize });
      rows.push(comparisonRow(entry, label, run, await run.evaluate(), targetAccuracy));
    }
  } finally {
    fs.rmSync(caches, { recursive: true, force: true });
  }
  return new Comparison(rows, targetAccuracy);
}
