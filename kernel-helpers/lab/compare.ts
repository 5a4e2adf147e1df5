// The three modes (and the partial fine-tune between them) on the same split and budget, side by side:
// accuracy, wall time, time to a target accuracy, throughput and compute per image.
import * as path from "path";
import { Displayable, escapeHtml, Table } from "../display/display";
import { formatCount, formatDuration, formatFlops } from "../display/format";
import type { Evaluation } from "../train/classifier/evaluation";
import { claim, Claim, CLAIM_MIME } from "./claims";
import { accuracyStandardError, guessSpread } from "./statistics";
import type { ImageFolder } from "../data/image-folder";
import { BLOCKS, type CutLayer } from "../network/inception";
import type { Inception } from "../network/model";
import { fineTune, retrainFinalLayer, trainFromScratch } from "../train/modes/modes";
import { checkModeTakes, MODE_ONLY, TRAIN_RULES, type TrainOptions } from "../train/modes/options";
import { checkNames, checkOptions, OptionError, rule } from "../util/options";
import { type Mode, MODES, plan, type Plan } from "../train/modes/recipes";
import type { TrainingRun } from "../train/modes/run";
import { withScratchFolder } from "../util/scratch";

/**
 * A run of a comparison: a mode by its name (a fine-tune then trains every layer), or a mode with how deep a
 * fine-tune goes. The mode names are the API's everywhere: options, runs, charts, the command line.
 */
export type CompareEntry = Mode | { mode: Mode; unfreezeFrom?: CutLayer | "all" };

/** The block a fine-tune of the top blocks starts training from by default: the one below the cut. */
export function topBlock(layer: CutLayer): CutLayer {
  return BLOCKS[Math.max(BLOCKS.indexOf(layer) - 1, 1)] as CutLayer;
}

/** The default runs: retraining, a fine-tune from `top`, a fine-tune of everything, and from scratch. */
export function defaultEntries(top: CutLayer): CompareEntry[] {
  return ["retrain-final-layer", { mode: "fine-tune", unfreezeFrom: top }, "fine-tune", "from-scratch"];
}

/** An entry's mode and depth (null where the mode has none), its plan at the cut `layer`, its label and the options that make it. */
export function entryPlan(entry: CompareEntry, layer: CutLayer, shared: TrainOptions = {}): { mode: Mode; unfreezeFrom: CutLayer | "all" | null; plan: Plan; label: string; options: TrainOptions } {
  const { mode, unfreezeFrom: depth } = typeof entry === "string" ? { mode: entry, unfreezeFrom: undefined } : entry;
  if (!MODES.includes(mode)) throw new OptionError("modes", `modes: "${mode}" is not a mode; use ${MODES.join(", ")} (a fine-tune's depth as { mode: "fine-tune", unfreezeFrom: "mixed6" }).`);
  const unfreezeFrom = mode === "fine-tune" ? (depth ?? "all") : null;
  const options: TrainOptions = unfreezeFrom ? { unfreezeFrom } : {};
  // Each label names the blocks the run trains: "all" is every block up to the cut, which for the bundled
  // weights is mixed7, not the whole network.
  const label = mode === "fine-tune" ? `fine-tune ${unfreezeFrom === "all" ? "stem" : unfreezeFrom} to ${layer}` : mode === "retrain-final-layer" ? "retrain the final layer" : `from scratch, stem to ${layer}`;
  return { mode, unfreezeFrom, plan: plan(mode, layer, { ...shared, ...options }), label, options };
}

export interface CompareOptions extends TrainOptions {
  /** Which runs, in order (default: retraining, a fine-tune from the block below the cut, a full fine-tune, from scratch). */
  modes?: CompareEntry[];
  /** Options for one mode's runs only, on top of the shared ones (e.g. more epochs for retraining). */
  perMode?: Partial<Record<Mode, TrainOptions>>;
  /** "Time to target" is the first time validation accuracy reached this (default 0.8). */
  targetAccuracy?: number;
  /** What the data set is called in tables and the verdict (default: its folder's name). */
  name?: string;
}

const COMPARE_RULES = {
  ...TRAIN_RULES,
  modes: rule.list(rule.any(), "give a list of modes, such as [\"retrain-final-layer\", { mode: \"fine-tune\", unfreezeFrom: \"mixed6\" }]."),
  perMode: rule.object(),
  targetAccuracy: rule.between(0, 1),
  name: rule.text("give a name."),
};

export interface ComparisonRow {
  mode: Mode;
  /** How deep a fine-tune went ("all", or the first trained block); null for the other modes. */
  unfreezeFrom: CutLayer | "all" | null;
  label: string;
  run: TrainingRun;
  evaluation: Evaluation;
  testAccuracy: number;
  seconds: number;
  secondsToTarget: number | null;
  /** The phase whose epoch first reached the target: a fine-tune's "warm-up" is retraining's work, not fine-tuning's. */
  targetPhase: string | null;
  imagesPerSecond: number;
  flopsPerImage: number;
  trainedParameters: number;
}

/** A label that starts a sentence ("fine-tune stem to mixed7" -> "Fine-tune stem to mixed7"). */
const capitalized = (text: string) => text.charAt(0).toUpperCase() + text.slice(1);

/**
 * How training from scratch did, against chance and against the best fine-tune. A classifier that guesses
 * scores chance give or take sqrt(chance (1 - chance) / n) on n test images: within two of those it learned
 * nothing measurable on this budget (what "no head start" means here, not a broken run); within four it has barely begun.
 */
function fromScratchClaim(row: ComparisonRow, best: ComparisonRow): Claim {
  const classes = row.evaluation.classes.length;
  const chance = 1 / classes;
  const images = Math.max(row.evaluation.files.length, 1);
  const spread = guessSpread(chance, images);
  const accuracy = row.testAccuracy.toFixed(2);
  const guess = `a guess scores ${chance.toFixed(2)} give or take ${spread.toFixed(2)} on these ${images} test images`;
  const numbers = [
    { what: "from-scratch test accuracy", value: row.testAccuracy, atLeast: 0, atMost: 1 },
    { what: "chance", value: chance, stated: false },
    { what: "a guess's spread", value: spread, atLeast: 0 },
    { what: "test images", value: images, atLeast: 1 },
  ];
  const same = "the same epochs of network training";
  if (row.testAccuracy <= chance + 2 * spread)
    return claim(`Training from scratch for ${same} reached ${accuracy}, chance level for ${classes} classes (${guess}): with random weights, this budget learns nothing measurable. It has no head start; the cost model below prices the epochs it would need.`, ...numbers, { what: "margin over chance in spreads", value: (row.testAccuracy - chance) / spread, atMost: 2, stated: false });
  if (row.testAccuracy <= chance + 4 * spread)
    return claim(`Training from scratch for ${same} reached ${accuracy}, barely above chance (${guess}): with random weights it has only begun to learn. It has no head start; the cost model below prices the epochs it would need.`, ...numbers, { what: "margin over chance in spreads", value: (row.testAccuracy - chance) / spread, above: 2, atMost: 4, stated: false });
  if (row.testAccuracy >= best.testAccuracy)
    return claim(
      `Training from scratch for ${same} reached ${accuracy} (${guess}), as high as ${best.label} (${best.testAccuracy.toFixed(2)}) on these test images: this task was within its reach without a head start.`,
      ...numbers,
      { what: "best fine-tune's test accuracy", value: best.testAccuracy },
      { what: "from scratch against the best fine-tune", value: row.testAccuracy, atLeast: best.testAccuracy, stated: false },
    );
  return claim(
    `Training from scratch for ${same} reached ${accuracy} (${guess}): it learns, but without a head start it trails ${best.label}, which reached ${best.testAccuracy.toFixed(2)}.`,
    ...numbers,
    { what: "best fine-tune's test accuracy", value: best.testAccuracy },
    { what: "from scratch below the best fine-tune", value: row.testAccuracy, below: best.testAccuracy, word: "trails", stated: false },
  );
}

/** Test accuracy points a fine-tune must gain over retraining, at the least, before the features count as falling short. */
const FALLS_SHORT = 0.1;

/**
 * The comparison's conclusion in sentences, computed from its numbers: each a claim (lab/claims.ts) whose
 * checks stand behind its numbers and its words, so the committed notebook can be re-checked.
 */
/**
 * What a comparison found: the features fit, fall short, or in between; or undecided, when the test images are
 * too few to resolve a difference of FALLS_SHORT, or neither mode learned beyond chance.
 */
export type Regime = "features fit" | "features fall short" | "in between" | "undecided";

export class Verdict extends Displayable {
  constructor(
    readonly regime: Regime,
    readonly claims: Claim[],
  ) {
    super();
  }

  get sentences(): string[] {
    return this.claims.map((c) => c.text);
  }

  toText(): string {
    return this.sentences.join(" ");
  }

  toHTML(): string {
    return `<p><b>${escapeHtml(this.regime)}.</b> ${escapeHtml(this.toText())}</p>`;
  }

  toMimeBundle() {
    return { ...super.toMimeBundle(), [CLAIM_MIME]: { text: this.toText(), checks: this.claims.flatMap((c) => c.checks) } };
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
   * Which regime this data set is in, said with this run's numbers. The fine-tune it reports is the one with
   * the best validation accuracy (validation chooses; the test split only reports). The pretrained features
   * fall short when fine-tuning gains at least 10 points and more than twice the standard error of the
   * difference on these test images; they fit when retraining is within that error of fine-tuning, the test
   * images resolve 10 points, and retraining scored beyond chance; in between when the difference is beyond the
   * error but short of 10 points; undecided otherwise (too few test images, or nothing learned).
   */
  verdict(): Verdict {
    const retrain = this.rows.find((r) => r.mode === "retrain-final-layer");
    const tunes = this.rows.filter((r) => r.mode === "fine-tune");
    if (!retrain || tunes.length === 0) return new Verdict("undecided", [new Claim("The verdict compares retraining the final layer with fine-tuning: run both.", [])]);
    const best = tunes.reduce((a, b) => ((b.run.bestValidationAccuracy ?? 0) > (a.run.bestValidationAccuracy ?? 0) ? b : a));
    const gain = best.testAccuracy - retrain.testAccuracy;
    const n = Math.max(best.evaluation.files.length, 1);
    // Two independent accuracies on n images each: the standard error of their difference.
    const error = Math.hypot(accuracyStandardError(best.testAccuracy, n), accuracyStandardError(retrain.testAccuracy, n));
    const times = best.seconds / retrain.seconds;
    const facts = claim(
      `On ${this.name}, retraining the final layer reached ${retrain.testAccuracy.toFixed(2)} test accuracy in ${formatDuration(retrain.seconds)}; ${best.label}, the fine-tune with the best validation accuracy (${best.run.bestValidationAccuracy!.toFixed(2)}), reached ${best.testAccuracy.toFixed(2)} in ${formatDuration(best.seconds)} (${times.toFixed(1)}x the time).`,
      { what: "retraining's test accuracy", value: retrain.testAccuracy, atLeast: 0, atMost: 1 },
      { what: "retraining's seconds", value: retrain.seconds, atLeast: 0 },
      { what: "the chosen fine-tune's best validation accuracy", value: best.run.bestValidationAccuracy!, atLeast: 0, atMost: 1 },
      { what: "the chosen fine-tune's test accuracy", value: best.testAccuracy, atLeast: 0, atMost: 1 },
      { what: "the chosen fine-tune's seconds", value: best.seconds, atLeast: 0 },
      { what: "time over retraining's", value: times, atLeast: 0 },
    );
    const points = (x: number) => `${Math.abs(x * 100).toFixed(0)} point${Math.abs(Math.round(x * 100)) === 1 ? "" : "s"}`;
    const chance = 1 / Math.max(retrain.evaluation.classes.length, 1);
    const beyondChance = retrain.testAccuracy > chance + 2 * guessSpread(chance, n);
    const regime: Regime =
      gain >= Math.max(FALLS_SHORT, 2 * error) ? "features fall short" : Math.abs(gain) > 2 * error ? "in between" : 2 * error <= FALLS_SHORT && beyondChance ? "features fit" : "undecided";
    const within = `within what ${n} test images can resolve (twice the standard error of the difference, ${points(2 * error)})`;
    const meaning = {
      "features fit": () => claim(
        `The pretrained features fit this task: the two differ by ${points(gain)}, ${within}, and retraining scored beyond chance.`,
        { what: "difference in test accuracy", value: Math.abs(gain), atMost: 2 * error },
        { what: "twice the standard error", value: 2 * error, atLeast: 0 },
        { what: "retraining's margin over chance, in a guess's spreads", value: (retrain.testAccuracy - chance) / guessSpread(chance, n), above: 2, word: "beyond chance", stated: false },
      ),
      "features fall short": () => claim(
        `The pretrained features fall short here: fine-tuning gains ${points(gain)}, more than ${points(2 * error)} (twice the standard error of the difference on ${n} test images), because training the pretrained blocks themselves learns what their frozen features cannot distinguish.`,
        { what: "gain in test accuracy", value: gain, above: 2 * error, word: `gains ${points(gain)}, more than`, atLeast: FALLS_SHORT },
        { what: "twice the standard error", value: 2 * error, atLeast: 0 },
        { what: "test images", value: n, atLeast: 1 },
      ),
      undecided: () =>
        2 * error > FALLS_SHORT
          ? claim(
              `The two differ by ${points(gain)}, ${within}: these test images cannot tell a gain of ${points(FALLS_SHORT)} from none, so this comparison does not say whether the features fit: that needs a test split that resolves ${points(FALLS_SHORT)}.`,
              { what: "difference in test accuracy", value: Math.abs(gain), atMost: 2 * error },
              { what: "twice the standard error", value: 2 * error, above: FALLS_SHORT },
              { what: "resolution needed", value: FALLS_SHORT },
            )
          : claim(
              `Retraining scored ${retrain.testAccuracy.toFixed(2)}, within twice a guess's spread of chance (${chance.toFixed(2)} give or take ${guessSpread(chance, n).toFixed(2)} on ${n} test images), and the fine-tune within ${points(2 * error)} of it: neither learned this task measurably on this budget, so the comparison does not say whether the features fit.`,
              { what: "retraining's test accuracy", value: retrain.testAccuracy, atMost: chance + 2 * guessSpread(chance, n) },
              { what: "chance", value: chance },
              { what: "a guess's spread", value: guessSpread(chance, n) },
              { what: "difference in test accuracy", value: Math.abs(gain), atMost: 2 * error, stated: false },
              { what: "twice the standard error", value: 2 * error },
            ),
      "in between": () => claim(
        `Fine-tuning ${gain > 0 ? "gains" : "loses"} ${points(gain)}, more than ${points(2 * error)} (twice the standard error of the difference on ${n} test images), at ${times.toFixed(0)}x the time: whether that is worth it depends on the budget.`,
        { what: "difference in test accuracy", value: Math.abs(gain), above: 2 * error, word: `${gain > 0 ? "gains" : "loses"} ${points(gain)}, more than` },
        { what: "twice the standard error", value: 2 * error, atLeast: 0 },
        { what: "test images", value: n, atLeast: 1 },
        { what: "time over retraining's", value: times, atLeast: 0 },
      ),
    }[regime]();
    // A fine-tune's warm-up is retraining's work on the same features: a target reached there is not fine-tuning's.
    const warmedUp = tunes.filter((r) => r.targetPhase === "warm-up").map((r) => r.label);
    const warmUp = warmedUp.length
      ? [claim(`${capitalized(warmedUp.join(" and "))} reached ${Math.round(this.targetAccuracy * 100)} % validation accuracy in ${warmedUp.length > 1 ? "their" : "its"} warm-up, which trains the head on the cached features as retraining does: that time is retraining's kind of work, not fine-tuning's, so the table gives no number for it.`, { what: "target accuracy", value: this.targetAccuracy })]
      : [];
    const scratch = this.rows.find((r) => r.mode === "from-scratch");
    return new Verdict(regime, [facts, meaning, ...warmUp, ...(scratch ? [fromScratchClaim(scratch, best)] : [])]);
  }

  /** The run of `mode` (for a fine-tune, of depth `unfreezeFrom`: default the full one). */
  run(mode: Mode, unfreezeFrom: CutLayer | "all" = "all"): TrainingRun | undefined {
    return this.rows.find((r) => r.mode === mode && (mode !== "fine-tune" || r.unfreezeFrom === unfreezeFrom))?.run;
  }

  table(): Table {
    return new Table(
      ["mode", "test accuracy", "wall time (s)", `time to ${Math.round(this.targetAccuracy * 100)} % val (s)`, "train images/s", "compute per image step", "trained parameters"],
      this.rows.map((r) => [
        r.label,
        Number(r.testAccuracy.toFixed(3)),
        Number(r.seconds.toFixed(1)),
        r.secondsToTarget === null ? "not reached" : r.targetPhase === "warm-up" ? "in the warm-up" : Number(r.secondsToTarget.toFixed(1)),
        Number(r.imagesPerSecond.toFixed(1)),
        formatFlops(r.flopsPerImage),
        formatCount(r.trainedParameters),
      ]),
      `${this.name}: retrain vs fine-tune vs from scratch, same split, one recipe${this.rows[0] ? `, ${this.rows[0].run.info.precision.precision}` : ""}`,
    );
  }

  toText(): string {
    return `${this.table().toText()}\n\n${this.verdict().toText()}`;
  }

  toHTML(): string {
    return this.table().toHTML() + this.verdict().toHTML();
  }

  /** The verdict's claims travel with the table, so a notebook's recorded output can be re-checked. */
  toMimeBundle() {
    return { ...super.toMimeBundle(), [CLAIM_MIME]: this.verdict().toMimeBundle()[CLAIM_MIME] };
  }
}

/**
 * Compute per image of a step in the run's last epoch: what a step costs once the one-time passes are done, for
 * every mode alike (retraining's features are computed before its loop, a partial fine-tune's frozen blocks in its
 * first epoch; neither counts).
 */
function flopsPerImage(run: TrainingRun): number {
  const epochs = run.history.epochs;
  const last = epochs[epochs.length - 1];
  const before = epochs[epochs.length - 2] ?? { flops: 0, images: 0 };
  return last ? (last.flops - before.flops) / Math.max(last.images - before.images, 1) : 0;
}

export function comparisonRow(entry: CompareEntry, label: string, run: TrainingRun, evaluation: Evaluation, targetAccuracy: number): ComparisonRow {
  const { mode, unfreezeFrom } = entryPlan(entry, run.info.layer);
  const epochs = run.history.epochs;
  // Epoch times count from the training loop's start; feature extraction before it counts too.
  const offset = run.info.seconds - (epochs[epochs.length - 1]?.seconds ?? 0);
  const reached = epochs.find((e) => (e.valAccuracy ?? -1) >= targetAccuracy);
  return {
    mode,
    unfreezeFrom,
    label,
    run,
    evaluation,
    testAccuracy: evaluation.accuracy,
    seconds: run.info.seconds,
    secondsToTarget: reached ? offset + reached.seconds : null,
    targetPhase: reached?.phase ?? null,
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
  checkOptions(options, COMPARE_RULES, "compareModes");
  const { perMode = {}, targetAccuracy = 0.8, name = path.basename(data.dir), ...rest } = options;
  const { modes: given, ...shared } = rest;
  checkNames(perMode, MODES, "perMode");
  for (const [mode, own] of Object.entries(perMode) as [Mode, TrainOptions][]) {
    checkOptions(own, TRAIN_RULES, `perMode["${mode}"]`);
    checkModeTakes(mode, own);
  }
  const layer: CutLayer = shared.layer ?? inception.source.layer;
  const modes = given ?? defaultEntries(shared.unfreezeFrom && shared.unfreezeFrom !== "all" ? shared.unfreezeFrom : topBlock(layer));
  const plans = modes.map((entry) => entryPlan(entry, layer, shared)); // a bad entry fails before any work
  const rows: ComparisonRow[] = [];
  // Each run gets its own feature cache, so none is timed on features another one computed.
  await withScratchFolder("compare", async (caches) => {
    for (const [i, entry] of modes.entries()) {
      const { mode, label, options: made } = plans[i];
      // The shared options each mode takes (a warm-up is a fine-tune's, a feature cache not a run from scratch's).
      const takes = Object.fromEntries(Object.entries({ ...shared, layer, cacheDir: path.join(caches, String(i)) }).filter(([option]) => MODE_ONLY[option as keyof TrainOptions]?.modes.includes(mode) ?? true));
      const o: TrainOptions = { ...takes, ...made, ...perMode[mode] };
      const train = mode === "retrain-final-layer" ? retrainFinalLayer : mode === "fine-tune" ? fineTune : trainFromScratch;
      const run = await train(inception, data, o);
      rows.push(comparisonRow(entry, label, run, await run.evaluate(), targetAccuracy));
    }
  });
  return new Comparison(rows, targetAccuracy, name);
}
