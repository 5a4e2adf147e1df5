// A learning-rate finder (fastai's lr_find, after Smith 2017): one short run whose learning rate grows
// exponentially step by step, with the loss recorded at each; the loss falls, flattens, then diverges,
// and a good rate lies on the falling stretch. Notebook 03 swept four full runs to find what this shows in
// about 100 steps; the rate is an input of the recorded training step, so ramping it records nothing new,
// and the run after it finds the same graphs. It trains a copy (a fine-tune) or a fresh head (a
// retraining): the caller's network, its runs and what lastRun() returns stay as they were.
import type { ImageFolder } from "../data/image-folder";
import { Chart } from "../display/chart";
import { Displayable, Table } from "../display/display";
import { type Inception, loadInceptionV3 } from "../network/model";
import { type Check, claim, type Claim, CLAIM_MIME } from "./claims";
import { resolvePrecision } from "../runtime/precision";
import { tf } from "../runtime/tf";
import { InterruptedError } from "../util/interrupt";
import { checkOptions, OptionError, rule } from "../util/options";
import { Head } from "../train/classifier/classifier";
import { forLoop } from "../train/loop/callback-adapter";
import { ProgressBar, StopOnInterrupt } from "../train/loop/callbacks";
import type { Callback, Phase, StepRecord, TrainingLoop } from "../train/loop/loop";
import { headPhaseOf, networkPhaseOf } from "../train/modes/make-phases";
import { resolve, TRAIN_RULES, type TrainOptions } from "../train/modes/options";
import { type Mode, MODES, plan } from "../train/modes/recipes";
import { type CallOutcome, checkTrainingData, Trainer } from "../train/modes/trainer";

export interface FinderOptions extends TrainOptions {
  /** The mode the rate is for (default "fine-tune"): a retraining ramps its head's rate on cached features, a run from scratch a new random network's. */
  mode?: Mode;
  /** Where the ramp starts and ends (default 1e-7 to 10). */
  startLearningRate?: number;
  endLearningRate?: number;
  /** Steps of the ramp at most (default 100). */
  steps?: number;
  /** Stops once the smoothed loss exceeds this multiple of its minimum (default 4, as fastai). */
  divergeFactor?: number;
}

/** The loss smoothed as fastai does: an exponential moving average (0.98), corrected for its start at zero. */
export function smooth(losses: number[], beta = 0.98): number[] {
  let average = 0;
  return losses.map((loss, i) => {
    average = beta * average + (1 - beta) * loss;
    return average / (1 - beta ** (i + 1));
  });
}

/**
 * fastai's "valley" rule: the longest stretch over which the smoothed loss keeps falling, and a point
 * past its middle: a rate that still learns fast, well before the loss turns up.
 */
export function valley(losses: number[]): number {
  const n = losses.length;
  const longest = new Array<number>(n).fill(1);
  let end = 0;
  for (let i = 1; i < n; i++) {
    for (let j = 0; j < i; j++) if (losses[i] < losses[j] && longest[i] < longest[j] + 1) longest[i] = longest[j] + 1;
    if (longest[end] < longest[i]) end = i;
  }
  const start = end - longest[end] + 1;
  const third = (end - start) / 3;
  return Math.min(n - 1, start + Math.floor(third) + Math.floor(third / 2));
}

/** Why a ramp ended: the loss diverged, the ramp reached its last rate, or an interrupt stopped it. */
export type RampEnd = "diverged" | "end of the ramp" | "interrupted";

export class LearningRateFinder extends Displayable {
  /** The suggested rates: "valley" (the one to use) and a tenth of the rate at the lowest loss (the classic, safer rule). */
  readonly suggestions: { valley: number; minimumTenth: number };

  constructor(
    readonly mode: Mode,
    readonly learningRates: number[],
    readonly losses: number[],
    readonly smoothed: number[],
    /** Why the ramp ended. */
    readonly stoppedBecause: RampEnd,
    readonly seconds: number,
  ) {
    super();
    const lowest = smoothed.indexOf(Math.min(...smoothed));
    this.suggestions = { valley: learningRates[valley(smoothed)], minimumTenth: learningRates[lowest] / 10 };
  }

  /** The suggestion to use: fastai's valley rule. */
  get suggestion(): number {
    return this.suggestions.valley;
  }

  chart(): Chart {
    const marker = (name: string, rate: number, color: string) => {
      const i = this.learningRates.findIndex((r) => r >= rate);
      return { type: "scatter", mode: "markers", name: `${name}: ${rate.toExponential(1)}`, x: [rate], y: [this.smoothed[i < 0 ? this.smoothed.length - 1 : i]], marker: { size: 12, color, symbol: "diamond" } };
    };
    return new Chart({
      data: [
        { type: "scatter", mode: "lines", name: "loss", x: this.learningRates, y: this.losses, line: { color: "#c7c7c7", width: 1 } },
        { type: "scatter", mode: "lines", name: "smoothed loss", x: this.learningRates, y: this.smoothed, line: { color: "#1f77b4", width: 2 } },
        marker("valley", this.suggestions.valley, "#d62728"),
        marker("minimum / 10", this.suggestions.minimumTenth, "#2ca02c"),
      ],
      layout: {
        title: { text: `Learning-rate finder (${this.mode}): ${this.learningRates.length} steps, ${this.stoppedBecause}` },
        height: 420,
        margin: { t: 60, l: 60, r: 20, b: 50 },
        xaxis: { type: "log", title: { text: "learning rate" } },
        yaxis: { title: { text: "training loss" }, range: [0, Math.min(Math.max(...this.smoothed), 4 * Math.min(...this.smoothed)) * 1.1] },
        legend: { orientation: "h", y: -0.2 },
      },
    });
  }

  /** Why the ramp ended, as a phrase after its step count, and the check behind it. */
  howItEnded(): { text: string; checks: Check[] } {
    const last = this.learningRates[this.learningRates.length - 1];
    const rate = { what: "last rate of the ramp", value: last, atLeast: 0 };
    if (this.stoppedBecause === "diverged") return { text: `stopped at ${last.toExponential(1)}, where the loss diverged`, checks: [rate] };
    if (this.stoppedBecause === "end of the ramp") return { text: `the whole ramp up to ${last.toExponential(1)} without the loss diverging`, checks: [rate] };
    return { text: this.stoppedBecause, checks: [] };
  }

  /** Which rule gave which rate, and why the first is the one to use: a sentence whose words follow from the two rates. */
  explanation(): Claim {
    const { valley: v, minimumTenth: m } = this.suggestions;
    const ratio = m / v;
    const same = Math.abs(Math.log(ratio)) < Math.log(1.25);
    const compared = same ? "about the same" : ratio < 1 ? `${(1 / ratio).toFixed(1)}x lower, more cautious` : `${ratio.toFixed(1)}x higher, less cautious`;
    const direction: Check = same
      ? { what: "older rule over valley", value: ratio, atLeast: 0.8, atMost: 1.25, stated: false }
      : ratio < 1
        ? { what: "valley over the older rule", value: 1 / ratio, above: 1, word: "lower, more cautious" }
        : { what: "older rule over valley", value: ratio, above: 1, word: "higher, less cautious" };
    const ended = this.howItEnded();
    return claim(
      `Suggested learning rate ${v.toExponential(1)} (fastai's valley rule: past the middle of the longest stretch where the loss keeps falling, ` +
        `so it learns fast, well before the loss turns up). A tenth of the rate at the lowest loss, the older rule, gives ${m.toExponential(1)}: ${compared}. ` +
        `${this.learningRates.length} steps in ${this.seconds.toFixed(1)} s, ${ended.text}.`,
      { what: "valley suggestion", value: v, above: 0 },
      { what: "minimum / 10 suggestion", value: m, above: 0 },
      direction,
      { what: "steps", value: this.learningRates.length, atLeast: 1 },
      { what: "seconds", value: this.seconds, atLeast: 0 },
      ...ended.checks,
    );
  }

  toText(): string {
    const table = new Table(["rule", "learning rate"], [["valley (use this)", Number(this.suggestions.valley.toPrecision(2))], ["minimum / 10", Number(this.suggestions.minimumTenth.toPrecision(2))]], "Learning-rate finder");
    return `${table.toText()}\n${this.explanation().text}`;
  }

  toHTML(): string {
    return `${this.chart().toHTML()}${this.explanation().toHTML()}`;
  }

  toMimeBundle() {
    return { ...this.chart().toMimeBundle(), "text/html": this.toHTML(), "text/plain": this.toText(), [CLAIM_MIME]: this.explanation().toMimeBundle()[CLAIM_MIME] };
  }
}

/**
 * The finder's rule of the loop: before every step it sets the rate on the exponential ramp, after every step it
 * records the loss, and it stops the loop when the smoothed loss diverges or the ramp ends. A callback like
 * any other, run by the training loop, so an interrupt and the freeing of what a step holds are training's.
 */
export class LearningRateRamp implements Callback {
  readonly learningRates: number[] = [];
  readonly losses: number[] = [];
  stoppedBecause: RampEnd = "end of the ramp";

  constructor(
    readonly start: number,
    readonly end: number,
    readonly steps: number,
    readonly divergeFactor: number,
  ) {}

  onBatchBegin(_: number, loop: TrainingLoop): void {
    loop.phase!.learningRate = this.start * (this.end / this.start) ** (this.learningRates.length / (this.steps - 1));
  }

  onBatchEnd(record: StepRecord, loop: TrainingLoop): void {
    this.learningRates.push(record.learningRate);
    this.losses.push(record.loss);
    const smoothed = smooth(this.losses);
    if (!Number.isFinite(record.loss) || smoothed[smoothed.length - 1] > this.divergeFactor * Math.min(...smoothed)) {
      this.stoppedBecause = "diverged";
      loop.stop("the loss diverged");
    } else if (this.learningRates.length >= this.steps) {
      loop.stop("the end of the ramp");
    }
  }
}

const FINDER_RULES = {
  mode: rule.oneOf(MODES),
  startLearningRate: rule.positive(),
  endLearningRate: rule.positive(),
  steps: rule.whole(5),
  divergeFactor: (v: unknown) => (typeof v === "number" && Number.isFinite(v) && v > 1 ? null : "use a number above 1: the ramp stops once the smoothed loss exceeds this multiple of its minimum."),
};

/**
 * Finds a learning rate for training `inception` on `data` in the given mode and options (batch size,
 * optimizer, depth, precision...): a ramp from startLearningRate to endLearningRate over at most `steps`
 * steps, stopped when the loss diverges; a fine-tune first warms its head up as the mode does. The result
 * draws the smoothed loss against the rate with the suggestions marked, and `suggestion` is the rate to use.
 * It trains what it owns: a fine-tune a copy of the network, a run from scratch a new random one, a retraining
 * a new head on the caller's frozen network; the caller's network, runs and lastRun() stay as they were.
 */
export async function findLearningRate(inception: Inception, data: ImageFolder, options: FinderOptions = {}): Promise<LearningRateFinder> {
  const { mode = "fine-tune", startLearningRate = 1e-7, endLearningRate = 10, steps = 100, divergeFactor = 4, ...training } = options;
  checkOptions(options, { ...FINDER_RULES, ...TRAIN_RULES }, "findLearningRate");
  if (!(endLearningRate > startLearningRate)) throw new OptionError("endLearningRate", `findLearningRate: the ramp must rise: startLearningRate ${startLearningRate}, endLearningRate ${endLearningRate}.`);
  const settings = resolve(mode, { ...training, progress: false, liveChart: false, earlyStopping: false, checkpointDir: undefined, tensorboard: undefined }, "findLearningRate");
  checkTrainingData(data);
  plan(mode, settings.layer ?? inception.source.layer, settings); // a depth above the cut fails before any work
  const started = performance.now();
  // What the finder trains is its own, made before anything runs: a copy, a random network, or a head only.
  const network =
    mode === "fine-tune"
      ? await inception.clone()
      : mode === "from-scratch"
        ? await loadInceptionV3({ weights: null, inputSize: inception.inputSize, preprocessing: inception.source.preprocessing, seed: settings.seed, precision: inception.precisionOption })
        : inception;
  const layer = settings.layer ?? inception.source.layer;
  const precision = resolvePrecision(settings.precision ?? inception.precisionOption, settings.graph);
  const trainer = new Trainer(mode, network, data, { ...settings, layer }, precision, new Head(data.classes.length, settings.dropout, settings.seed));
  const ramp = new LearningRateRamp(startLearningRate, endLearningRate, steps, divergeFactor);
  const showProgress = training.progress ?? true;
  let stop: CallOutcome | null = null;
  try {
    if (trainer.plan.headOnFeatures && mode === "fine-tune") {
      await trainer.call(settings, () => [headPhaseOf(trainer, "warm-up", settings.warmupEpochs, settings.warmupLearningRate)], { needsFeatures: true, callbacks: ({ interrupt }) => [new StopOnInterrupt(interrupt)] }, (outcome) => (stop = outcome));
    }
    if (stop === null || (stop as CallOutcome).stopReason !== "interrupted") {
      await trainer.call(
        settings,
        () => {
          const ramping = mode === "retrain-final-layer" ? headPhaseOf(trainer, "head", 1, startLearningRate) : networkPhaseOf(trainer, 1, startLearningRate);
          // Epochs enough for the ramp, and no validation: the finder reads training losses only.
          return [Object.assign(Object.create(ramping) as Phase, { epochs: Math.ceil(steps / Math.max(ramping.stepsPerEpoch, 1)), validate: async () => null })];
        },
        {
          needsFeatures: mode === "retrain-final-layer",
          // The ramp, the rules that end it early, and the user's own callbacks (they watch the ramp as they would a run).
          callbacks: ({ interrupt }) => [ramp, new StopOnInterrupt(interrupt), ...(showProgress ? [new ProgressBar()] : []), ...settings.callbacks.map((c) => forLoop(c, interrupt, trainer.models.full.model))],
        },
        (outcome) => (stop = outcome),
      );
    }
  } finally {
    // What the finder trained goes: the copy's (or random network's) weights, the head, optimizer state, features.
    tf.dispose(trainer.owned.filter((t) => !t.isDisposed));
    trainer.dispose();
  }
  const outcome = stop as CallOutcome | null;
  if (outcome?.stopReason === "interrupted") {
    if (ramp.losses.length < 5) throw new InterruptedError(`findLearningRate: interrupted after ${ramp.losses.length} steps of the ramp, too few to suggest a rate; nothing of the caller's changed.`);
    ramp.stoppedBecause = "interrupted";
  }
  if (ramp.losses.length < 5) throw new Error(`findLearningRate: only ${ramp.losses.length} steps ran (${ramp.stoppedBecause}); give more training images or a smaller batchSize.`);
  return new LearningRateFinder(mode, ramp.learningRates, ramp.losses, smooth(ramp.losses), ramp.stoppedBecause, (performance.now() - started) / 1000);
}
