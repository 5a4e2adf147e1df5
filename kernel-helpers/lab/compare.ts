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
import { formatFlops, type TrainingRun } from "../train/run";
import type { TrainOptions } from "../train/options";

export type CompareEntry = "retrain-final-layer" | "fine-tune-top" | "fine-tune" | "from-scratch";

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

function label(entry: CompareEntry, run: TrainingRun): string {
  if (entry === "fine-tune-top") return `fine-tune from ${run.info.trainedBlocks[0]}`;
  if (entry === "fine-tune") return "fine-tune all";
  return entry;
}

/** Compute per image in the run's last phase (the one that defines the mode). */
function flopsPerImage(run: TrainingRun): number {
  const epochs = run.history.epochs;
  const last = epochs[epochs.length - 1];
  const before = epochs.filter((e) => e.phase !== last?.phase).pop() ?? { flops: 0, images: 0 };
  return last ? (last.flops - before.flops) / Math.max(last.images - before.images, 1) : 0;
}

export function comparisonRow(entry: CompareEntry, run: TrainingRun, evaluation: Evaluation, targetAccuracy: number): ComparisonRow {
  const epochs = run.history.epochs;
  // Epoch times count from the training loop's start; feature extraction before it counts too.
  const offset = run.info.seconds - (epochs[epochs.length - 1]?.seconds ?? 0);
  const reached = epochs.find((e) => (e.valAccuracy ?? -1) >= targetAccuracy);
  return {
    entry,
    label: label(entry, run),
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
  const { modes = ["retrain-final-layer", "fine-tune-top", "fine-tune", "from-scratch"], perMode = {}, targetAccuracy = 0.8, ...shared } = options;
  const layer: CutLayer = shared.layer ?? inception.source.featureLayer;
  const topFrom = shared.unfreezeFrom && shared.unfreezeFrom !== "all" ? shared.unfreezeFrom : (BLOCKS[Math.max(BLOCKS.indexOf(layer) - 1, 1)] as CutLayer);
  const rows: ComparisonRow[] = [];
  // Each mode gets its own feature cache, so none is timed on features another one computed.
  const caches = fs.mkdtempSync(path.join(os.tmpdir(), "inception-lab-compare-"));
  for (const entry of modes) {
    const o = (extra: TrainOptions): TrainOptions => ({ ...shared, layer, cacheDir: path.join(caches, entry), ...extra, ...perMode[entry] });
    const run =
      entry === "retrain-final-layer"
        ? await retrainFinalLayer(inception, data, o({}))
        : entry === "fine-tune-top"
          ? await fineTune(inception, data, o({ unfreezeFrom: topFrom }))
          : entry === "fine-tune"
            ? await fineTune(inception, data, o({ unfreezeFrom: "all" }))
            : await trainFromScratch(data, o({ inputSize: shared.inputSize ?? inception.inputSize }));
    rows.push(comparisonRow(entry, run, await run.evaluate(), targetAccuracy));
  }
  fs.rmSync(caches, { recursive: true, force: true });
  return new Comparison(rows, targetAccuracy);
}
