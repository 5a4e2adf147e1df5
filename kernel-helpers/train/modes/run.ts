// The result of a training call: history, the trained classifier, evaluation, prediction and saving, and
// `fit` to train it further.
import type { BottleneckStats } from "../../data/bottlenecks";
import type { ImageFolder } from "../../data/image-folder";
import { Displayable, Table } from "../../display/display";
import { formatBytes, formatCount, formatFlops } from "../../display/format";
import type { ImageInput } from "../../network/images";
import type { Prediction } from "../../network/predictions";
import type { PrecisionChoice } from "../../runtime/precision";
import { tf } from "../../runtime/tf";
import { checkOptions, OptionError } from "../../util/options";
import type { Classifier, EvaluateOptions, PredictOptions } from "../classifier/classifier";
import type { Evaluation } from "../classifier/evaluation";
import { type ExportOptions, type ExportResult, exportClassifier, exportsTable, historyFile } from "../classifier/files";
import { bestEpoch } from "../loop/callbacks";
import type { EpochRecord, History, StopReason } from "../loop/loop";
import { callPhases } from "./make-phases";
import { resolve, type Resolved, TRAIN_RULES, type TrainOptions } from "./options";
import type { Mode } from "./recipes";
import { runCallbacks } from "./run-callbacks";
import type { CallOutcome, FrozenBottomStats, Trainer } from "./trainer";

export interface RunInfo {
  mode: Mode;
  weights: string;
  layer: string;
  inputSize: number;
  classes: string[];
  trainableParameters: number;
  totalParameters: number;
  /** Blocks whose weights were trained ("head" is the new classifier). */
  trainedBlocks: string[];
  /** The precision the network computed at, and why (runtime/precision.ts). */
  precision: PrecisionChoice;
  options: Omit<Resolved, "callbacks">;
  bottlenecks?: BottleneckStats;
  /** Why the last call ended before its last epoch, or null; stopMessage says it in words. */
  stopReason: StopReason | null;
  stopMessage: string | null;
  /** Early stopping ended a phase. */
  stoppedEarly: boolean;
  checkpointsWritten: number;
  /** Problems that did not stop the run (a checkpoint or a cache that could not be written). */
  warnings: string[];
  /** Seconds of every call so far (the first and each fit), feature extraction included. */
  seconds: number;
  trainImages: number;
  /** Training calls so far: the first, then one per fit (a call that failed counts too). */
  calls: number;
  /** The frozen-bottom cache a fine-tune of the top blocks kept (make-phases.ts), if any. */
  frozenBottom?: FrozenBottomStats;
}

/** What run.fit takes: how many more epochs, and what may change between calls. */
export interface FitOptions extends Pick<TrainOptions, "learningRate" | "unfreezeFrom" | "batchSize" | "optimizer" | "dropout" | "labelSmoothing" | "distortions" | "earlyStopping" | "maxSeconds" | "seed" | "callbacks" | "progress" | "liveChart" | "frozenBottomCache"> {
  /** Epochs to train further; numbering continues after the run's last epoch. */
  epochs: number;
}
export const FIT_RULES = Object.fromEntries(
  (["epochs", "learningRate", "unfreezeFrom", "batchSize", "optimizer", "dropout", "labelSmoothing", "distortions", "earlyStopping", "maxSeconds", "seed", "callbacks", "progress", "liveChart", "frozenBottomCache"] as const).map((name) => [name, TRAIN_RULES[name]]),
);
/** Options of the first call that fit keeps as they were, and why. */
const FIXED_FOR_A_RUN: Record<string, string> = {
  layer: "a run keeps its cut layer",
  precision: "a run computes at the precision it started with",
  cacheDir: "a run keeps its feature cache",
  checkpointDir: "a run keeps its checkpoint folder",
  tensorboard: "a run keeps its TensorBoard log",
  resume: "resume continues a checkpoint in a new run's first call",
  graph: "a run keeps how it runs its steps",
  warmupEpochs: "the warm-up is the first call's; later calls train the network",
  warmupLearningRate: "the warm-up is the first call's; later calls train the network",
};

/** The result of a training call: history, the trained classifier, evaluation, prediction and saving. */
export class TrainingRun extends Displayable {
  private disposed = false;
  private readonly ownHistory: History | null;
  /** What run.export wrote, in order (run.exports() shows them). */
  private readonly exported: ExportResult[] = [];

  constructor(
    readonly info: RunInfo,
    history: History,
    readonly classifier: Classifier,
    readonly data: ImageFolder,
    /** The state the run trains further with (run.fit); null for a run that cannot (made from files). */
    private readonly trainer: Trainer | null = null,
    /** The options of the first call, which later calls start from (but its callbacks, which belong to it). */
    private readonly options: TrainOptions = {},
  ) {
    super();
    this.ownHistory = trainer ? null : history;
  }

  /** Every step and epoch so far, of every call. */
  get history(): History {
    return this.trainer?.history ?? this.ownHistory!;
  }

  /** Adds one call's outcome to the run's info (also a call that failed part-way). */
  record(outcome: CallOutcome): void {
    const i = this.info;
    i.calls++;
    i.seconds += outcome.seconds;
    i.bottlenecks ??= outcome.features;
    i.stopReason = outcome.stopReason;
    i.stopMessage = outcome.stopMessage;
    i.stoppedEarly = outcome.stoppedEarly;
    i.checkpointsWritten = outcome.checkpointsWritten;
    i.warnings.push(...outcome.warnings.filter((w) => !i.warnings.includes(w)));
    if (this.trainer) {
      i.frozenBottom = this.trainer.frozenBottomStats ?? undefined;
      i.trainedBlocks = this.trainer.plan.trainedBlocks;
      i.trainableParameters = this.trainer.trainableParameters();
    }
  }

  private checkAlive(call: string): void {
    if (this.disposed) throw new Error(`${call}: this run was disposed (run.dispose()); train a new one.`);
  }

  /**
   * Trains the run further from where it stands: the weights keep-best kept (the best epoch so far), its
   * optimizers' moments, as Keras' model.fit called again: `epochs` more, numbered after the last; the history,
   * the live chart, keep-best and early stopping go on over every epoch so far; features are read again through
   * the cache and recorded graphs reused. Options not given are the first call's, but callbacks: those belong
   * to the call that gets them (pass them again). A retraining trains its head; a fine-tune its network, from
   * `unfreezeFrom` if given (fastai's freeze and unfreeze); a run from scratch all of it. One call at a time.
   */
  async fit(options: FitOptions): Promise<TrainingRun> {
    this.checkAlive("fit");
    if (!this.trainer) throw new Error("fit: this run was not trained in this process (it was loaded): train a new one, or fine-tune its network.");
    const trainer = this.trainer;
    if (trainer.busy) throw new Error("fit: this run is training now (an earlier call has not finished): await it before calling fit again.");
    for (const name of Object.keys(options ?? {})) if (FIXED_FOR_A_RUN[name]) throw new OptionError(name, `fit: ${name} cannot change between calls (${FIXED_FOR_A_RUN[name]}): train a new run for another.`);
    if (options?.unfreezeFrom === null) throw new OptionError("unfreezeFrom", 'fit: unfreezeFrom is null, which is no depth: give "all" or a block such as "mixed6" (or leave it out to keep the run\'s).');
    checkOptions(options, FIT_RULES, "fit");
    if (options.epochs === undefined) throw new OptionError("epochs", "fit: give epochs, the number of epochs to train further (e.g. run.fit({ epochs: 2 })).");
    const { unfreezeFrom, callbacks, ...rest } = options;
    if (unfreezeFrom !== undefined && this.mode === "retrain-final-layer") throw new OptionError("unfreezeFrom", `unfreezeFrom: a retraining keeps its network frozen; fine-tune it with fineTune(inception, data, { unfreezeFrom: "${unfreezeFrom}" }).`);
    if (unfreezeFrom !== undefined && this.mode === "from-scratch") throw new OptionError("unfreezeFrom", `unfreezeFrom: a run from scratch trains every layer (random weights have nothing worth freezing); fine-tune a pretrained network to train from "${unfreezeFrom}".`);
    const { callbacks: _firstCallbacks, ...first } = this.options;
    void _firstCallbacks;
    // The run's own TensorBoard log and checkpoints go on (their folders hold this run's files, which a new run may not join).
    const settings = {
      ...resolve(this.mode, { ...first, ...rest, callbacks, unfreezeFrom: unfreezeFrom ?? first.unfreezeFrom, resume: false, tensorboard: undefined }, "fit"),
      tensorboard: this.options.tensorboard,
    };
    if (unfreezeFrom !== undefined) trainer.retrainFrom(unfreezeFrom);
    trainer.setup.settings = settings;
    tf.tidy(() => trainer.setup.head.dropoutRate.assign(tf.scalar(settings.dropout)));
    remember(this);
    await trainer.call(
      settings,
      () => callPhases(trainer, settings, false),
      { needsFeatures: this.mode === "retrain-final-layer", callbacks: (parts) => runCallbacks(trainer, settings, parts) },
      (outcome) => this.record(outcome),
    );
    this.info.options = { ...settings, callbacks: undefined } as unknown as RunInfo["options"];
    return this;
  }

  get mode(): Mode {
    return this.info.mode;
  }

  get model(): tf.LayersModel {
    return this.classifier.model;
  }

  /** Accuracy and mistakes on a split (default: the test split of the run's data; `data` another data set), at `precision` (default the run's). */
  async evaluate(options: EvaluateOptions = {}): Promise<Evaluation> {
    this.checkAlive("evaluate");
    return this.classifier.evaluate({ data: this.data, ...options });
  }

  /** The classes of images, files or tensors, as the classifier's predict (and inception.classify) take them. */
  async predict(images: ImageInput, options: PredictOptions = {}): Promise<Prediction[]> {
    this.checkAlive("predict");
    return this.classifier.predict(images, options);
  }

  /**
   * Saves the classifier (tfjs model.json + weights.bin + labels.json) and the history, all or nothing;
   * loadClassifier reads it. `dir` must be new, empty or a folder this library wrote.
   */
  async save(dir: string): Promise<string> {
    this.checkAlive("save");
    return this.classifier.save(dir, historyFile(this.info, this.history));
  }

  /**
   * Writes the whole classifier (the network up to the cut, the head, and the pixel scaling as a layer)
   * for the rest of TensorFlow (train/classifier/files.ts): "keras", "savedmodel", "tfjs", or "tflite" (with
   * `quantize`), labels and the history beside it; checked whole before it replaces `dir`.
   */
  async export(dir: string, options: ExportOptions = {}): Promise<ExportResult> {
    this.checkAlive("export");
    const result = await exportClassifier(this.classifier, dir, options, historyFile(this.info, this.history), this.data);
    this.exported.push(result);
    return result;
  }

  /** Every export of this run so far, a row each: format, size, and for TensorFlow Lite how it ran in the interpreter against the library. */
  exports(): Table {
    return exportsTable(this.exported);
  }

  /**
   * Frees what the run holds: its classifier's weights (for a fine-tune or a run from scratch, its whole
   * network copy; for a retraining, the head: the network is the caller's). A run nothing refers to any more
   * is freed the same way when JavaScript collects it; dispose() frees it now.
   */
  dispose(): void {
    this.disposed = true;
    this.classifier.dispose();
    this.trainer?.dispose();
  }

  /** Training images per second in the last phase (the one that defines the mode), from its steps. */
  get imagesPerSecond(): number {
    const steps = this.history.steps;
    const phase = steps[steps.length - 1]?.phase;
    const first = steps.findIndex((step) => step.phase === phase);
    if (first < 0) return 0;
    const before = first > 0 ? steps[first - 1] : { images: 0, seconds: 0 };
    const last = steps[steps.length - 1];
    return (last.images - before.images) / Math.max(last.seconds - before.seconds, 1e-9);
  }

  /** The epoch whose weights keep-best holds, by the rule it uses (improves(): a tie in accuracy goes to the lower loss). */
  get bestEpoch(): EpochRecord | null {
    return bestEpoch(this.history.epochs);
  }

  get bestValidationAccuracy(): number | null {
    const values = this.history.epochs.map((e) => e.valAccuracy).filter((v): v is number => v !== null);
    return values.length ? Math.max(...values) : null;
  }

  /** How the last call ended, in words. */
  get ended(): string {
    const i = this.info;
    if (i.stopReason === "interrupted") return "interrupted (best weights kept)";
    if (i.stopReason === "failed") return `failed: ${i.stopMessage}`;
    return i.stopMessage ?? (i.stoppedEarly ? "stopped early" : "completed");
  }

  summaryTable(): Table {
    const i = this.info;
    const last = this.history.epochs[this.history.epochs.length - 1];
    const best = this.bestEpoch;
    const rows: [string, string | number][] = [
      ["mode", i.mode],
      ["weights", i.weights],
      ["network", `Inception-v3 cut at ${i.layer}, input ${i.inputSize}x${i.inputSize}`],
      ["precision", `${i.precision.precision} (${i.precision.reason})`],
      ["trained", `${i.trainedBlocks.join(", ")}: ${formatCount(i.trainableParameters)} of ${formatCount(i.totalParameters)} parameters`],
      ["epochs", `${this.history.epochs.length} (${this.history.steps.length} steps), ${this.ended}`],
      ["train loss / accuracy", last ? `${last.loss.toFixed(3)} / ${last.accuracy.toFixed(3)} (epoch ${last.epoch}, the last)` : "-"],
      ["best validation accuracy", best ? `${best.valAccuracy!.toFixed(3)} (epoch ${best.epoch}, whose weights the run holds)` : "- (no validation split)"],
      ["wall time", `${i.seconds.toFixed(1)} s${i.bottlenecks ? ` (features: ${i.bottlenecks.computed} computed, ${i.bottlenecks.cached} from cache, ${i.bottlenecks.seconds.toFixed(1)} s)` : ""}`],
      ["training throughput", `${this.imagesPerSecond.toFixed(1)} images/s`],
      ["compute", last ? `${formatFlops(last.flops)} in the training loop` : "-"],
      ...(i.frozenBottom ? [["frozen-bottom cache", `${i.frozenBottom.boundary} output, ${formatBytes(i.frozenBottom.bytesPerImage)} an image, ${formatBytes(i.frozenBottom.bytes)} for ${i.frozenBottom.images} images, ${i.frozenBottom.onDisk ? "on disk" : "in memory"}`] as [string, string]] : []),
      ...(i.options.checkpointDir ? [["checkpoints", `${i.checkpointsWritten} written to ${i.options.checkpointDir}`] as [string, string]] : []),
      ...i.warnings.map((w) => ["warning", w] as [string, string]),
    ];
    return new Table(["", ""], rows, `Training run: ${i.mode} on ${i.classes.length} classes`);
  }

  toText(): string {
    return this.summaryTable().toText();
  }

  toHTML(): string {
    return this.summaryTable().toHTML() + `<p><small>run.evaluate() for test accuracy and mistakes; run.history for every step; run.save(dir) to keep it.</small></p>`;
  }
}

let latest: TrainingRun | null = null;

/** Records the run lastRun() returns. */
export function remember(run: TrainingRun): TrainingRun {
  latest = run;
  return run;
}

/** The most recent run, also one a kernel interrupt cut short (its cell never got the result). */
export function lastRun(): TrainingRun | null {
  return latest;
}
