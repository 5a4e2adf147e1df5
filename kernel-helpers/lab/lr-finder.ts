// A learning-rate finder (fastai's lr_find, after Smith 2017): one short run whose learning rate grows
// exponentially step by step, with the loss recorded at each; the loss falls, flattens, then diverges,
// and a good rate lies on the falling stretch. Notebook 03 swept four full runs to find what this shows in
// about 100 steps; the rate is an input of the recorded training step, so ramping it records nothing new,
// and the run after it finds the same graphs. It trains a copy (a fine-tune) or a fresh head (a
// retraining): the caller's network, its runs and what lastRun() returns stay as they were.
import type { ImageFolder } from "../data/image-folder";
import { Chart } from "../display/chart";
import { Displayable, escapeHtml, Table } from "../display/display";
import { type Inception, resolvePrecision } from "../network/model";
import { tf } from "../runtime/tf";
import { listenForInterrupt } from "../util/interrupt";
import { Head } from "../train/classifier";
import { checkNames, OPTION_NAMES, resolve, type TrainOptions } from "../train/options";
import { type Mode, plan } from "../train/recipes";
import { checkTrainingData, newTrainer } from "../train/trainer";

export interface FinderOptions extends TrainOptions {
  /** The mode the rate is for (default "fine-tune"): a retraining ramps its head's rate on cached features. */
  mode?: Exclude<Mode, "from-scratch">;
  /** Where the ramp starts and ends (default 1e-7 to 10). */
  startLearningRate?: number;
  endLearningRate?: number;
  /** Steps of the ramp at most (default 100). */
  steps?: number;
  /** Stops once the smoothed loss exceeds this multiple of its minimum (default 4, as fastai). */
  divergeFactor?: number;
}
const FINDER_OPTIONS = ["mode", "startLearningRate", "endLearningRate", "steps", "divergeFactor"];

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

export class LearningRateFinder extends Displayable {
  /** The suggested rates: "valley" (the one to use) and a tenth of the rate at the lowest loss (the classic, safer rule). */
  readonly suggestions: { valley: number; minimumTenth: number };

  constructor(
    readonly mode: Mode,
    readonly learningRates: number[],
    readonly losses: number[],
    readonly smoothed: number[],
    /** Why the ramp ended: "diverged", "end of the ramp" or "interrupted". */
    readonly stoppedBecause: string,
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

  /** Why the ramp ended, as a phrase after its step count. */
  howItEnded(): string {
    const last = this.learningRates[this.learningRates.length - 1];
    if (this.stoppedBecause === "diverged") return `stopped at ${last.toExponential(1)}, where the loss diverged`;
    if (this.stoppedBecause === "end of the ramp") return `the whole ramp up to ${last.toExponential(1)} without the loss diverging`;
    return this.stoppedBecause;
  }

  /** Which rule gave which rate, and why the first is the one to use. */
  explanation(): string {
    const { valley: v, minimumTenth: m } = this.suggestions;
    return (
      `Suggested learning rate ${v.toExponential(1)} (fastai's valley rule: past the middle of the longest stretch where the loss keeps falling, ` +
      `so it learns fast, well before the loss turns up). A tenth of the rate at the lowest loss gives ${m.toExponential(1)}, the older, more cautious rule. ` +
      `${this.learningRates.length} steps in ${this.seconds.toFixed(1)} s, ${this.howItEnded()}.`
    );
  }

  toText(): string {
    const table = new Table(["rule", "learning rate"], [["valley (use this)", Number(this.suggestions.valley.toPrecision(2))], ["minimum / 10", Number(this.suggestions.minimumTenth.toPrecision(2))]], "Learning-rate finder");
    return `${table.toText()}\n${this.explanation()}`;
  }

  toHTML(): string {
    return `${this.chart().toHTML()}<p>${escapeHtml(this.explanation())}</p>`;
  }

  toMimeBundle() {
    return { ...this.chart().toMimeBundle(), "text/html": this.toHTML(), "text/plain": this.toText() };
  }
}

/**
 * Finds a learning rate for training `inception` on `data` in the given mode and options (batch size,
 * optimizer, depth, precision...): a ramp from startLearningRate to endLearningRate over at most `steps`
 * steps, stopped when the loss diverges; a fine-tune first warms its head up as the mode does. The result
 * draws the smoothed loss against the rate with the suggestions marked, and `suggestion` is the rate to use.
 */
export async function findLearningRate(inception: Inception, data: ImageFolder, options: FinderOptions = {}): Promise<LearningRateFinder> {
  const { mode = "fine-tune", startLearningRate = 1e-7, endLearningRate = 10, steps = 100, divergeFactor = 4, ...training } = options;
  checkNames(options, [...FINDER_OPTIONS, ...OPTION_NAMES], "findLearningRate");
  if (!(startLearningRate > 0 && endLearningRate > startLearningRate)) throw new Error(`findLearningRate: the ramp must rise: startLearningRate ${startLearningRate}, endLearningRate ${endLearningRate}.`);
  if (!(Number.isInteger(steps) && steps >= 5)) throw new Error(`findLearningRate: steps is ${steps}: use a whole number of at least 5.`);
  const settings = resolve(mode, { ...training, progress: false, liveChart: false, earlyStopping: false, checkpointDir: undefined, tensorboard: undefined });
  checkTrainingData(data);
  plan(mode, settings.layer ?? inception.source.layer, settings); // a depth above the cut fails before any work
  const started = performance.now();
  // A fine-tune trains a copy; a retraining only a new head on the caller's frozen network.
  const network = mode === "fine-tune" ? await inception.clone() : inception;
  const precision = resolvePrecision(settings.precision ?? inception.precisionOption, settings.graph);
  const trainer = newTrainer(mode, network, data, settings, precision, new Head(data.classes.length, settings.dropout, settings.seed));
  const interrupt = listenForInterrupt();
  const learningRates: number[] = [];
  const losses: number[] = [];
  let stoppedBecause = "end of the ramp";
  try {
    if (mode === "retrain-final-layer") await trainer.computeFeatures(settings, interrupt);
    else if (trainer.plan.headOnFeatures) await trainer.call(settings, () => [trainer.headPhase("warm-up", settings.warmupEpochs, settings.warmupLearningRate)], { needsFeatures: true });
    const phase = mode === "fine-tune" ? trainer.networkPhase(1, startLearningRate) : trainer.headPhase("head", 1, startLearningRate);
    try {
      ramp: for (let epoch = 1; ; epoch++) {
        let batches = 0;
        for await (const batch of phase.batches(epoch)) {
          batches++;
          const rate = startLearningRate * (endLearningRate / startLearningRate) ** (learningRates.length / (steps - 1));
          phase.learningRate = rate;
          let loss: number;
          try {
            loss = phase.train(batch).loss;
          } finally {
            batch.x.dispose();
            batch.y.dispose();
          }
          learningRates.push(rate);
          losses.push(loss);
          const smoothed = smooth(losses);
          const now = smoothed[smoothed.length - 1];
          if (!Number.isFinite(loss) || now > divergeFactor * Math.min(...smoothed)) {
            stoppedBecause = "diverged";
            break ramp;
          }
          if (interrupt.requested) {
            stoppedBecause = "interrupted";
            break ramp;
          }
          if (learningRates.length >= steps) break ramp;
        }
        // No image of the training split could be read: the ramp would never take a step.
        if (batches === 0) {
          stoppedBecause = "no training image could be read";
          break;
        }
      }
    } finally {
      phase.dispose();
    }
  } finally {
    interrupt.release();
    // What the finder trained goes: the copy's weights (a fine-tune), the head, optimizer state, kept features.
    tf.dispose(trainer.owned.filter((t) => !t.isDisposed));
    trainer.dispose();
  }
  if (losses.length < 5) throw new Error(`findLearningRate: only ${losses.length} steps ran (${stoppedBecause}); give more training images or a smaller batchSize.`);
  return new LearningRateFinder(mode, learningRates, losses, smooth(losses), stoppedBecause, (performance.now() - started) / 1000);
}
