// A training run's working state, kept after the call so the run can train further (`run.fit`), as
// Keras' model.fit and fastai's fit_one_cycle continue where the last call left off: the network the run
// trains, its new head, the optimizers with their moments (one per set of trained variables), the features and
// frozen-bottom stores, and the history. Every call, the first and each fit, is a TrainingLoop over new phases
// (make-phases.ts) with the call's callbacks (run-callbacks.ts) that continues the history: epoch numbers go on,
// keep-best and early stopping see every epoch so far. One call at a time: a second is refused while one runs.
import * as path from "path";
import { hasDistortions } from "../../data/augment";
import type { ActivationStore } from "../../data/activations";
import { BottleneckCache, type BottleneckStats } from "../../data/bottlenecks";
import { type ImageFolder, splitOf } from "../../data/image-folder";
import type { Block, CutLayer } from "../../network/inception";
import type { Inception } from "../../network/model";
import { ImageDecodeError } from "../../network/decode";
import type { PrecisionChoice } from "../../runtime/precision";
import { tf } from "../../runtime/tf";
import { type InterruptFlag, InterruptedError, listenForInterrupt } from "../../util/interrupt";
import { Checkpoint, readCheckpoint, type RunIdentity } from "../classifier/checkpoint";
import { type ClassifierInfo, classifierModels, type Head } from "../classifier/classifier";
import { type Callback, type History, type Phase, type StopReason, TrainingLoop } from "../loop/loop";
import { Optimizer } from "../loop/optimizers";
import { bottlenecks } from "./features";
import type { Resolved } from "./options";
import { setTrainable, type Setup } from "./phase";
import { type Mode, plan, type Plan } from "./recipes";

export interface FrozenBottomStats {
  /** The block whose output is kept. */
  boundary: string;
  images: number;
  bytesPerImage: number;
  bytes: number;
  onDisk: boolean;
  /** Images run through the frozen bottom and stored, and batches read back instead (so far). */
  computed: number;
  readBatches: number;
}

/** What one call of the loop ended with (also a call that failed: then stopReason is "failed"). */
export interface CallOutcome {
  /** Features computed or read for this call, if it needed them. */
  features?: BottleneckStats;
  stopReason: StopReason | null;
  stopMessage: string | null;
  stoppedEarly: boolean;
  warnings: string[];
  checkpointsWritten: number;
  seconds: number;
}

/** Refuses, before any work, a data set that leaves nothing to train on. */
export function checkTrainingData(data: ImageFolder): void {
  const train = data.examples("train");
  // Files found unreadable since the folder was listed left the split: that is the news, not the percentages.
  if (train.length === 0 && data.skipped.some((s) => splitOf(s.path, data.options.validationPercent ?? 10, data.options.testPercent ?? 10) === "train")) throw nothingTrained(data);
  if (train.length === 0) {
    const { validationPercent = 10, testPercent = 10 } = data.options;
    throw new Error(
      `${data.dir}: the training split is empty (validationPercent ${validationPercent} + testPercent ${testPercent} leave no image for training). ` +
        `Lower them in imageFolder(), or add images.`,
    );
  }
  const missing = data.classes.filter((_, c) => !train.some((e) => e.label === c));
  if (missing.length) console.warn(`inception-lab: no training image for ${missing.map((c) => `"${c}"`).join(", ")}: the classifier cannot learn ${missing.length > 1 ? "these classes" : "this class"}.`);
}

/** The error of a call that trained on nothing: every image failed to read or decode. */
export function nothingTrained(data: ImageFolder): ImageDecodeError {
  const skipped = data.skipped;
  const reasons = [...new Set(skipped.map((s) => s.reason))].slice(0, 2).join("; ");
  return new ImageDecodeError(
    `${data.dir}: no training image could be read, so nothing was trained` +
      (skipped.length ? ` (${skipped.length} file${skipped.length > 1 ? "s" : ""} skipped: ${reasons}; data.report() lists them).` : ".") +
      ` Check the folder's images, or give another folder.`,
  );
}

export function countParameters(variables: tf.LayerVariable[]): number {
  return variables.reduce((sum, v) => sum + v.shape.reduce((a: number, b) => a * (b ?? 1), 1), 0);
}

export class Trainer {
  history: History = { steps: [], epochs: [] };
  plan: Plan;
  readonly layer: CutLayer;
  readonly setup: Setup;
  readonly classifierInfo: ClassifierInfo;
  readonly models: ReturnType<typeof classifierModels>;
  /** Every tensor the run owns, freed with it: its weights, its optimizers' state, its head's variables. */
  readonly owned: tf.Tensor[];
  /** Features of the training and validation images, kept for the calls that train the head on them. */
  features: Awaited<ReturnType<typeof bottlenecks>> | null = null;
  readonly cache: BottleneckCache | null;
  /** Optimizers by the variables they train, made once and kept with their state for later calls. */
  readonly optimizers = new Map<string, Optimizer>();
  /** Frozen-bottom stores by boundary and weights below it (make-phases.ts), and the last one used. */
  readonly stores = new Map<string, ActivationStore>();
  lastStore: { store: ActivationStore; boundary: string; images: number } | null = null;
  /** Warnings of side jobs outside the loop (a cache that could not be written), said with the next call's. */
  readonly sideWarnings: string[] = [];
  private checkpointsWritten = 0;
  private running = false;

  constructor(
    readonly mode: Mode,
    readonly inception: Inception,
    readonly data: ImageFolder,
    settings: Resolved,
    readonly precision: PrecisionChoice,
    head: Head,
  ) {
    this.layer = settings.layer ?? inception.source.layer;
    this.setup = { settings, precision: precision.precision, data, classes: data.classes.length, head };
    this.classifierInfo = { classes: data.classes, inputSize: inception.inputSize, mode, layer: this.layer, weights: inception.source.description };
    this.plan = plan(mode, this.layer, settings);
    this.models = classifierModels(inception, this.layer, head);
    // The network's flags change only where the run owns it (fine-tune works on a copy, scratch on a new one).
    if (this.plan.firstTrained) setTrainable(inception, this.plan.firstTrained);
    this.cache = this.plan.headOnFeatures || mode === "retrain-final-layer" ? new BottleneckCache(inception, this.layer, settings.cacheDir, precision.precision, (message) => this.warnAside(message)) : null;
    // A fine-tune's or a from-scratch run's network is its own, the blocks above the cut included (no model of
    // the run uses them, so only this list frees them: 96 variables a run at mixed7 once kept for ever).
    const weights = this.plan.firstTrained ? [...new Set([...inception.model.weights, ...this.keptWeights()])] : this.keptWeights();
    this.owned = [...weights.map((w) => w.read()), ...head.variables()];
  }

  /** A side job's warning: on the console now, in the run's warnings with the call's. */
  warnAside(message: string): void {
    if (this.sideWarnings.includes(message)) return;
    this.sideWarnings.push(message);
    console.warn(`inception-lab: ${message}`);
  }

  /** What a checkpoint of this run must match to be resumed by it. */
  get identity(): RunIdentity {
    const { mode, inception, layer, data } = this;
    return { mode, weights: inception.source.id, layer, inputSize: inception.inputSize, classes: data.classes, trainedBlocks: this.plan.trainedBlocks };
  }

  /** The weights this run may change, kept at their best: a retrained head shares the caller's frozen network. */
  keptWeights(): tf.LayerVariable[] {
    return this.plan.firstTrained ? this.models.full.model.weights : this.models.head.model.weights;
  }

  /** The optimizer of a set of trained variables, made once and kept with its state for later calls. */
  optimizer(key: string, variables: tf.LayerVariable[], learningRate: number, lossScaling: object | null): Optimizer {
    let optimizer = this.optimizers.get(key);
    if (!optimizer) {
      optimizer = new Optimizer(this.setup.settings.optimizer, variables.map((w) => w.read() as tf.Variable), learningRate, {}, lossScaling);
      this.optimizers.set(key, optimizer);
      this.owned.push(...optimizer.stateVariables());
    }
    optimizer.learningRate = learningRate;
    return optimizer;
  }

  /** Trains the blocks from `unfreezeFrom` up from now on (fastai's freeze and unfreeze); the head always trains. */
  retrainFrom(unfreezeFrom: CutLayer | "all"): void {
    this.plan = plan(this.mode, this.layer, { ...this.setup.settings, unfreezeFrom, warmupEpochs: 0 });
    setTrainable(this.inception, this.plan.firstTrained as Block);
  }

  /** Whether a call is running now (a second one is refused until it ends). */
  get busy(): boolean {
    return this.running;
  }

  /**
   * One call: features where the phases need them (read again through the cache every call, so images changed
   * or gone since are never trained on from memory), then the loop over `phases` (made once the features are
   * there) with `callbacks`, continuing the history. An interrupt ends it at a step boundary with the best
   * weights kept. `record` gets the call's outcome however it ends, a failure included.
   */
  async call(
    settings: Resolved,
    phases: () => Phase[],
    options: { needsFeatures: boolean; resume?: string; callbacks: (parts: { checkpoint: Checkpoint | null; interrupt: InterruptFlag }) => Callback[] },
    record: (outcome: CallOutcome) => void,
  ): Promise<void> {
    if (this.running) throw new Error(`fit: this run is training now (an earlier call has not finished): await it before calling fit again.`);
    this.running = true;
    const started = performance.now();
    const checkpoint = settings.checkpointDir ? new Checkpoint(path.resolve(settings.checkpointDir), this.models.full.model, this.identity, this.classifierInfo) : null;
    const interrupt = listenForInterrupt();
    const stepsBefore = this.history.steps.length;
    let loop: TrainingLoop | null = null;
    let stop: { reason: StopReason | null; message: string | null } = { reason: null, message: null };
    let features: BottleneckStats | undefined;
    try {
      if (options.needsFeatures) features = await this.computeFeatures(settings, interrupt);
      const history = options.resume ? await readCheckpoint(options.resume, this.identity, this.models.full.model, new Set(this.keptWeights())) : this.history;
      loop = new TrainingLoop(phases(), options.callbacks({ checkpoint, interrupt }), history.steps.length ? { history, continued: !options.resume } : undefined);
      await loop.run();
      stop = { reason: loop.stopReason, message: loop.stopMessage };
      if (loop.history.steps.length === stepsBefore && stop.reason === null) throw nothingTrained(this.data);
    } catch (error) {
      if (error instanceof InterruptedError) {
        stop = { reason: "interrupted", message: "interrupted" };
        console.warn(`inception-lab: ${error.message}; nothing was trained. lastRun() has the run.`);
      } else {
        stop = { reason: "failed", message: (error as Error).message };
        throw error;
      }
    } finally {
      interrupt.release();
      this.running = false;
      // Also when the call failed part-way: the weights changed with those steps, and the history says so.
      if (loop) this.history = loop.history;
      this.checkpointsWritten += checkpoint?.written ?? 0;
      const warnings = [...this.sideWarnings, ...(loop?.warnings ?? [])];
      this.sideWarnings.length = 0;
      record({ features, stopReason: stop.reason, stopMessage: stop.message, stoppedEarly: (loop?.endedPhases.length ?? 0) > 0, warnings, checkpointsWritten: this.checkpointsWritten, seconds: (performance.now() - started) / 1000 });
    }
  }

  /** The features the head trains on, read through the cache (by each image's content) or computed, and kept. */
  async computeFeatures(settings: Resolved, interrupt?: InterruptFlag): Promise<BottleneckStats> {
    this.releaseFeatures();
    // With distortions, training features are computed per step; validation still uses cached ones.
    this.features = await bottlenecks(this.data, this.cache, hasDistortions(settings.distortions) ? ["validation"] : ["train", "validation"], interrupt);
    this.owned.push(this.features.sets.train.x, this.features.sets.train.y, this.features.sets.validation.x, this.features.sets.validation.y);
    return this.features.stats;
  }

  /** What the last frozen-bottom cache holds: at which block, for how many images, in memory or on disk, how used. */
  get frozenBottomStats(): FrozenBottomStats | null {
    if (!this.lastStore) return null;
    const { store, boundary, images } = this.lastStore;
    return { boundary, images, bytesPerImage: store.bytesFor(), bytes: store.bytesFor(images), onDisk: store.onDisk, computed: store.counts.stored, readBatches: store.counts.read };
  }

  /** Trainable parameters now (the head's alone for a retraining). */
  trainableParameters(): number {
    return countParameters(this.plan.firstTrained ? this.models.full.model.trainableWeights : this.models.head.model.trainableWeights);
  }

  /** Frees the features kept for the head's phases (a fine-tune needs them for its warm-up only). */
  releaseFeatures(): void {
    if (!this.features) return;
    const { train, validation } = this.features.sets;
    const kept = new Set<tf.Tensor>([train.x, train.y, validation.x, validation.y]);
    tf.dispose([...kept]);
    this.owned.splice(0, this.owned.length, ...this.owned.filter((t) => !kept.has(t)));
    this.features = null;
  }

  /** Forgets the optimizers and the features (their tensors go with the run's classifier, in `owned`). */
  dispose(): void {
    this.optimizers.clear();
    this.stores.clear();
    this.features = null;
  }
}
