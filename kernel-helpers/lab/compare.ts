// The three modes (and the partial fine-tune between them) on the same split and budget, side by side:
// accuracy, wall time, time to a target accuracy, throughput and compute per image.
import * as path from "path";
import { Displayable, escapeHtml, Table } from "../display/display";
import type { Evaluation } from "../train/evaluation";
import type { ImageFolder } from "../data/image-folder";
import { BLOCKS, type CutLayer } from "../network/inception";
import type { Inception } from "../network/model";
import { fineTune, retrainFinalLayer, trainFromScratch } from "../train/modes";
import { checkNames } from "../train/options";
import type { TrainOptions } from "../train/options";
import { type Mode, plan, type Plan } from "../train/recipes";
import { formatFlops, type TrainingRun } from "../train/run";
import { withScratchFolder } from "../util/scratch";

/** The runs a comparison can hold: the three modes, and a fine-tune of the top blocks between them. */
export type CompareEntry = "retrain-final-layer" | "fine-tune-top" | "fine-tune" | "from-scratch";
export const COMPARE_ENTRIES: CompareEntry[] = ["retrain-final-layer", "fine-tune-top", "fine-tune", "from-scratch"];

/** The block a "fine-tune-top" run starts training from by default: the one below the cut. */
export function topBlock(layer: CutLayer): CutLayer {
  return BLOCKS[Math.max(BLOCKS.indexOf(layer) - 1, 1)] as CutLayer;
}

/** An entry's mode, its plan at the cut `layer`, its label and the options that make it. */
export function entryPlan(entry: CompareEntry, layer: CutLayer, unfreezeFrom: CutLayer = topBlock(layer), shared: TrainOptions = {}): { mode: Mode; plan: Plan; label: string; options: TrainOptions } {
  const mode: Mode = entry === "fine-tune-top" ? "fine-tune" : entry;
  const options: TrainOptions = entry === "fine-tune-top" ? { unfreezeFrom } : entry === "fine-tune" ? { unfreezeFrom: "all" } : {};
  const label = { "retrain-final-layer": "retrain the final layer", "fine-tune-top": `fine-tune from ${unfreezeFrom}`, "fine-tune": "fine-tune all", "from-scratch": "train from scratch" }[entry];
  return { mode, plan: plan(mode, layer, { ...shared, ...options }), label, options };
}

export interface CompareOptions extends TrainOptions {
  /** Which runs, in order (default all four). */
  modes?: CompareEntry[];
  /** Options for one entry only, on top of the shared ones (e.g. more epochs for retraining). */
  perMode?: Partial<Record<CompareEntry, TrainOptions>>;
  /** "Time to target" is the first time validation accuracy reached this (default 0.8). */
  targetAccuracy?: number;
  /** What the data set is called in tables and the verdict (default: its folder's name). */
  name?: string;
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

/** Test accuracy points a fine-tune must gain over retraining before the features count as falling short. */
const FALLS_SHORT = 0.1;
/** Within this many points, retraining matches fine-tuning. */
const MATCHES = 0.03;

/** The comparison's conclusion in sentences, computed from its numbers. */
export class Verdict extends Displayable {
  constructor(
    readonly regime: "features fit" | "features fall short" | "in between",
    readonly sentences: string[],
  ) {
    super();
  }

  toText(): string {
    return this.sentences.join(" ");
  }

  toHTML(): string {
    return `<p><b>${escapeHtml(this.regime)}.</b> ${escapeHtml(this.toText())}</p>`;
  }
}

export class Comparison extends Displayable {
  constructor(
    readonly rows: ComparisonRow[],
    readonly targetAccuracy: number,
    readonly name: string,
  ) {
    super();
  }

  /**
   * Which regime this data set is in, said with this run's numbers: the pretrained features fit (retraining
   * matches the best fine-tune, for a fraction of the time), fall short (fine-tuning gains at least 10
   * points), or in between; and how training from scratch did on the same budget.
   */
  verdict(): Verdict {
    const retrain = this.rows.find((r) => r.entry === "retrain-final-layer");
    const tunes = this.rows.filter((r) => r.entry === "fine-tune" || r.entry === "fine-tune-top");
    if (!retrain || tunes.length === 0) return new Verdict("in between", ["The verdict compares retraining the final layer with fine-tuning: run both."]);
    const best = tunes.reduce((a, b) => (b.testAccuracy > a.testAccuracy ? b : a));
    const gain = best.testAccuracy - retrain.testAccuracy;
    const times = best.seconds / retrain.seconds;
    const points = (x: number) => `${Math.abs(x * 100).toFixed(0)} point${Math.abs(Math.round(x * 100)) === 1 ? "" : "s"}`;
    const facts = `On ${this.name}, retraining the final layer reached ${retrain.testAccuracy.toFixed(2)} test accuracy in ${retrain.seconds.toFixed(0)} s; ${best.label} reached ${best.testAccuracy.toFixed(2)} in ${best.seconds.toFixed(0)} s (${times.toFixed(0)}x the time).`;
    const regime = gain >= FALLS_SHORT ? "features fall short" : gain <= MATCHES ? "features fit" : "in between";
    const meaning = {
      "features fit": `The pretrained features fit this task: retraining matches fine-tuning${gain < -MATCHES ? " (even beats it)" : ""} for 1/${times.toFixed(0)} of the time.`,
      "features fall short": `The pretrained features fall short here: fine-tuning gains ${points(gain)}, because training the network itself learns what the frozen features cannot tell apart.`,
      "in between": `Fine-tuning gains ${points(gain)} here, at ${times.toFixed(0)}x the time: whether that is worth it depends on the budget.`,
    }[regime];
    const scratch = this.rows.find((r) => r.entry === "from-scratch");
    const fromScratch = scratch ? [`Training from scratch on the same budget reached ${scratch.testAccuracy.toFixed(2)}: no head start.`] : [];
    return new Verdict(regime, [facts, meaning, ...fromScratch]);
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
      `${this.name}: retrain vs fine-tune vs from scratch, same split and budget${this.rows[0] ? `, ${this.rows[0].run.info.precision}` : ""}`,
    );
  }

  toText(): string {
    return `${this.table().toText()}\n\n${this.verdict().toText()}`;
  }

  toHTML(): string {
    return this.table().toHTML() + this.verdict().toHTML();
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
  const { modes = COMPARE_ENTRIES, perMode = {}, targetAccuracy = 0.8, name = path.basename(data.dir), ...shared } = options;
  checkNames(perMode, COMPARE_ENTRIES, "perMode");
  const unknown = modes.filter((m) => !COMPARE_ENTRIES.includes(m));
  if (unknown.length) throw new Error(`modes: ${unknown.map((m) => `"${m}"`).join(", ")} not known; use ${COMPARE_ENTRIES.join(", ")}.`);
  const layer: CutLayer = shared.layer ?? inception.source.layer;
  const top = shared.unfreezeFrom && shared.unfreezeFrom !== "all" ? shared.unfreezeFrom : topBlock(layer);
  const rows: ComparisonRow[] = [];
  // Each mode gets its own feature cache, so none is timed on features another one computed.
  await withScratchFolder("compare", async (caches) => {
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
  });
  return new Comparison(rows, targetAccuracy, name);
}
