// The result of a training call: history, the trained classifier, evaluation, prediction and saving.
import type { BottleneckStats } from "../data/bottlenecks";
import type { Classifier } from "./classifier";
import type { ImageInput } from "../network/images";
import type { Prediction } from "../network/predictions";
import { exportClassifier, type ExportFormat } from "./files";
import { Displayable, formatCount, Table } from "../display/display";
import type { Evaluation } from "./evaluation";
import type { ImageFolder, Split } from "../data/image-folder";
import type { CutLayer } from "../network/inception";
import { checkNames, resolve, type Resolved, type TrainOptions } from "./options";
import type { CallOutcome, FrozenBottomStats, Trainer } from "./trainer";
import type { Mode } from "./recipes";
import type { Precision } from "../runtime/precision";
import { tf } from "../runtime/tf";
import type { EpochRecord, History } from "./loop";
import { bestEpoch } from "./callbacks";

export interface RunInfo {
  mode: Mode;
  weights: string;
  layer: CutLayer;
  inputSize: number;
  classes: string[];
  trainableParameters: number;
  totalParameters: number;
  /** Blocks whose weights were trained ("head" is the new classifier). */
  trainedBlocks: string[];
  /** The precision the network computed at, and why (runtime/precision.ts). */
  precision: Precision;
  precisionReason: string;
  options: Omit<Resolved, "callbacks">;
  bottlenecks?: BottleneckStats;
  /** Why the run ended before its last epoch ("interrupted", "time budget reached", a NaN loss), or null. */
  stopReason: string | null;
  interrupted: boolean;
  /** Early stopping ended a phase. */
  stoppedEarly: boolean;
  outOfTime: boolean;
  checkpointsWritten: number;
  /** Problems that did not stop the run (a checkpoint that could not be written). */
  warnings: string[];
  /** Seconds of every call so far (the first and each fit), feature extraction included. */
  seconds: number;
  trainImages: number;
  /** Training calls so far: the first, then one per fit. */
  calls: number;
  /** The frozen-bottom cache a fine-tune of the top blocks kept (train/trainer.ts), if any. */
  frozenBottom?: FrozenBottomStats;
}

/** What run.fit takes: how many more epochs, and what may change between calls. */
export interface FitOptions {
  /** Epochs to train further; numbering continues after the run's last epoch. */
  epochs: number;
  learningRate?: number;
  /** fine-tune: train the blocks from this one up from now on ("all": every layer); a depth not trained before starts its optimizer afresh. */
  unfreezeFrom?: TrainOptions["unfreezeFrom"];
  batchSize?: number;
  dropout?: number;
  labelSmoothing?: number;
  earlyStopping?: number | false;
  maxSeconds?: number;
  callbacks?: TrainOptions["callbacks"];
  progress?: boolean;
  liveChart?: boolean;
}
const FIT_OPTIONS = ["epochs", "learningRate", "unfreezeFrom", "batchSize", "dropout", "labelSmoothing", "earlyStopping", "maxSeconds", "callbacks", "progress", "liveChart"];

/** The result of a training call: history, the trained classifier, evaluation, prediction and saving. */
export class TrainingRun extends Displayable {
  private disposed = false;

  constructor(
    readonly info: RunInfo,
    history: History,
    readonly classifier: Classifier,
    readonly data: ImageFolder,
    /** The state the run trains further with (run.fit); null for a run that cannot (made from files). */
    private readonly trainer: Trainer | null = null,
    /** The options of the first call, which later calls start from. */
    private readonly options: TrainOptions = {},
  ) {
    super();
    if (!trainer) this.ownHistory = history;
  }

  private ownHistory: History | null = null;

  /** Every step and epoch so far, of every call. */
  get history(): History {
    return this.trainer?.history ?? this.ownHistory!;
  }

  /** Adds one call's outcome to the run's info. */
  record(outcome: CallOutcome): void {
    const i = this.info;
    i.calls++;
    i.seconds += outcome.seconds;
    i.bottlenecks ??= outcome.features;
    i.stopReason = outcome.stopReason;
    i.interrupted = outcome.stopReason === "interrupted";
    i.outOfTime = outcome.stopReason === "time budget reached";
    i.stoppedEarly = outcome.stoppedEarly;
    i.checkpointsWritten = outcome.checkpointsWritten;
    i.warnings.push(...outcome.warnings.filter((w) => !i.warnings.includes(w)));
    if (this.trainer) {
      i.frozenBottom = this.trainer.frozenBottomStats ?? undefined;
      i.trainedBlocks = this.trainer.plan.trainedBlocks;
      i.trainableParameters = this.trainer.trainableParameters();
    }
  }

  /**
   * Trains the run further from where it stands (its current weights, its optimizers' moments), as Keras'
   * model.fit called again: `epochs` more, numbered after the last; the history, the live chart, keep-best
   * and early stopping go on over every epoch so far; cached features and recorded graphs are reused. A
   * retraining trains its head; a fine-tune or a run from scratch its network, from `unfreezeFrom` if given
   * (fastai's freeze and unfreeze). An interrupted run continues too. Resolves to this run.
   */
  async fit(options: FitOptions): Promise<TrainingRun> {
    if (this.disposed) throw new Error("fit: this run was disposed (run.dispose()); train a new one.");
    if (!this.trainer) throw new Error("fit: this run was not trained in this process (it was loaded): train a new one, or fine-tune its network.");
    checkNames(options, FIT_OPTIONS, "fit");
    if (options.epochs === undefined) throw new Error("fit: give epochs, the number of epochs to train further (e.g. run.fit({ epochs: 2 })).");
    const trainer = this.trainer;
    const { unfreezeFrom, ...rest } = options;
    // The run's own TensorBoard log goes on (its folder holds this run's events, which a new run may not join).
    const settings = { ...resolve(this.mode, { ...this.options, ...rest, unfreezeFrom: unfreezeFrom ?? this.options.unfreezeFrom, resume: false, tensorboard: undefined }), tensorboard: this.options.tensorboard };
    if (unfreezeFrom !== undefined) trainer.retrainFrom(unfreezeFrom);
    trainer.setup.settings = settings;
    tf.tidy(() => trainer.setup.head.dropoutRate.assign(tf.scalar(settings.dropout)));
    const retraining = this.mode === "retrain-final-layer";
    remember(this);
    const outcome = await trainer.call(settings, () => [retraining ? trainer.headPhase("head", settings.epochs, settings.learningRate) : trainer.networkPhase(settings.epochs, settings.learningRate)], { needsFeatures: retraining });
    this.record(outcome);
    this.info.options = { ...settings, callbacks: undefined } as unknown as RunInfo["options"];
    return this;
  }

  get mode(): Mode {
    return this.info.mode;
  }

  get model(): tf.LayersModel {
    return this.classifier.model;
  }

  /** Accuracy and mistakes on a split of the data set (default: test). */
  evaluate(split: Split = "test", data: ImageFolder = this.data): Promise<Evaluation> {
    return this.classifier.evaluate(data, split);
  }

  /** The classes of images, files or tensors, as the classifier's predict (and inception.classify) take them. */
  predict(images: ImageInput, options: { topK?: number } = {}): Promise<Prediction[]> {
    return this.classifier.predict(images, options);
  }

  /**
   * Saves the classifier (tfjs model.json + weights.bin + labels.json) and the history, all or nothing;
   * loadClassifier reads it. `dir` must be new, empty or a folder this library wrote.
   */
  save(dir: string): Promise<string> {
    return this.classifier.save(dir, this.historyFile());
  }

  /**
   * Writes the whole classifier (the network up to the cut, the head, and the pixel scaling as a layer)
   * for the rest of TensorFlow: "keras", a model.keras file Python loads with keras.models.load_model;
   * "savedmodel", a SavedModel for TensorFlow Serving and tf.saved_model.load; "tfjs", as `save`.
   * labels.json and the history go with it.
   */
  export(dir: string, options: { format?: ExportFormat } = {}): Promise<string> {
    return exportClassifier(this.classifier, dir, options.format ?? "keras", this.historyFile());
  }

  /** history.json: the run's info and history, beside every saved or exported classifier. */
  private historyFile(): Record<string, string> {
    return { "history.json": JSON.stringify({ info: this.info, history: this.history }) };
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

  summaryTable(): Table {
    const i = this.info;
    const last = this.history.epochs[this.history.epochs.length - 1];
    const ended = i.interrupted ? "interrupted (best weights kept)" : i.stopReason ?? (i.stoppedEarly ? "stopped early" : "completed");
    const rows: [string, string | number][] = [
      ["mode", i.mode],
      ["weights", i.weights],
      ["network", `Inception-v3 cut at ${i.layer}, input ${i.inputSize}x${i.inputSize}`],
      ["precision", `${i.precision} (${i.precisionReason})`],
      ["trained", `${i.trainedBlocks.join(", ")}: ${formatCount(i.trainableParameters)} of ${formatCount(i.totalParameters)} parameters`],
      ["epochs", `${this.history.epochs.length} (${this.history.steps.length} steps), ${ended}`],
      ["train loss / accuracy", last ? `${last.loss.toFixed(3)} / ${last.accuracy.toFixed(3)}` : "-"],
      ["best validation accuracy", this.bestValidationAccuracy?.toFixed(3) ?? "- (no validation split)"],
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

export function formatBytes(bytes: number): string {
  const [value, unit] = bytes >= 2 ** 30 ? [bytes / 2 ** 30, "GiB"] : bytes >= 2 ** 20 ? [bytes / 2 ** 20, "MiB"] : [bytes / 2 ** 10, "KiB"];
  return `${value.toFixed(value < 10 ? 1 : 0)} ${unit}`;
}

export function formatFlops(flops: number): string {
  const [value, unit] = flops >= 1e12 ? [flops / 1e12, "TFLOP"] : flops >= 1e9 ? [flops / 1e9, "GFLOP"] : [flops / 1e6, "MFLOP"];
  return `${value.toFixed(value < 10 ? 2 : 0)} ${unit}`;
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
