// A training run's working state, kept after the call so the run can train further (`run.fit`), as
// Keras' model.fit and fastai's fit_one_cycle continue where the last call left off: the network the run
// trains, its new head, the optimizers with their moments (one per set of trained variables), the cached
// features, and the history. Every call, the first and each fit, is a TrainingLoop over new phases that
// continues the history: epoch numbers go on, keep-best and early stopping see every epoch so far.
import * as path from "path";
import { hasDistortions } from "../data/augment";
import { ActivationStore } from "../data/activations";
import { BottleneckCache, type BottleneckStats } from "../data/bottlenecks";
import type { ImageFolder } from "../data/image-folder";
import { type Block, BLOCKS, type CutLayer } from "../network/inception";
import type { Inception } from "../network/model";
import type { PrecisionChoice } from "../runtime/precision";
import { tf } from "../runtime/tf";
import { type InterruptFlag, InterruptedError, listenForInterrupt } from "../util/interrupt";
import { forLoop, type RunFacts } from "./callback-adapter";
import { defaultCallbacks, EarlyStopping, KeepBestWeights, ProgressBar, StopOnInterrupt, StopOnNaN, TimeBudget } from "./callbacks";
import { Checkpoint, readCheckpoint, type RunIdentity } from "./checkpoint";
import { type ClassifierInfo, classifierModels, type Head } from "./classifier";
import { type Callback, type History, type Phase, TrainingLoop } from "./loop";
import { Optimizer } from "./optimizers";
import type { Resolved } from "./options";
import { blockFlops, bottlenecks, headPhase, imagePhase, lossScalingFor, setTrainable, type Setup } from "./phases";
import { blocksUpTo, type Mode, plan, type Plan } from "./recipes";
import { TensorBoardLog } from "./tensorboard";

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

/** What one call of the loop ended with. */
export interface CallOutcome {
  /** Features computed or read for this call, if it needed them. */
  features?: BottleneckStats;
  stopReason: string | null;
  stoppedEarly: boolean;
  warnings: string[];
  checkpointsWritten: number;
  seconds: number;
}

/** Refuses, before any work, a data set that leaves nothing to train on. */
export function checkTrainingData(data: ImageFolder): void {
  const train = data.examples("train");
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

export function countParameters(variables: tf.LayerVariable[]): number {
  return variables.reduce((sum, v) => sum + v.shape.reduce((a: number, b) => a * (b ?? 1), 1), 0);
}

export class Trainer {
  history: History = { steps: [], epochs: [] };
  plan: Plan;
  readonly models: ReturnType<typeof classifierModels>;
  /** Every tensor the run owns, freed with it: its weights, its optimizers' state, its head's variables. */
  readonly owned: tf.Tensor[];
  /** Features of the training and validation images, kept for the calls that train the head on them. */
  features: Awaited<ReturnType<typeof bottlenecks>> | null = null;
  readonly cache: BottleneckCache | null;
  private readonly optimizers = new Map<string, Optimizer>();
  private readonly stores = new Map<string, ActivationStore>();
  private lastStore: { store: ActivationStore; boundary: string; images: number } | null = null;
  private checkpointsWritten = 0;

  constructor(
    readonly mode: Mode,
    readonly inception: Inception,
    readonly data: ImageFolder,
    readonly setup: Setup,
    readonly layer: CutLayer,
    readonly precision: PrecisionChoice,
    readonly classifierInfo: ClassifierInfo,
  ) {
    const settings = setup.settings;
    this.plan = plan(mode, layer, settings);
    this.models = classifierModels(inception, layer, setup.head);
    // The network's flags change only where the run owns it (fine-tune works on a copy, scratch on a new one).
    if (this.plan.firstTrained) setTrainable(inception, this.plan.firstTrained);
    this.cache = this.plan.headOnFeatures || mode === "retrain-final-layer" ? new BottleneckCache(inception, layer, settings.cacheDir, precision.precision) : null;
    // A fine-tune's or a from-scratch run's network is its own, the blocks above the cut included (no model of
    // the run uses them, so only this list frees them: 96 variables a run at mixed7 once kept for ever).
    const weights = this.plan.firstTrained ? [...new Set([...inception.model.weights, ...this.keptWeights()])] : this.keptWeights();
    this.owned = [...weights.map((w) => w.read()), ...setup.head.variables()];
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
  private optimizer(key: string, variables: tf.LayerVariable[], learningRate: number, lossScaling: object | null): Optimizer {
    let optimizer = this.optimizers.get(key);
    if (!optimizer) {
      optimizer = new Optimizer(this.setup.settings.optimizer, variables.map((w) => w.read() as tf.Variable), learningRate, {}, lossScaling);
      this.optimizers.set(key, optimizer);
      this.owned.push(...optimizer.stateVariables());
    }
    optimizer.learningRate = learningRate;
    return optimizer;
  }

  /** The head trained on features: a retraining, or a fine-tune's warm-up. */
  headPhase(name: string, epochs: number, learningRate: number): Phase {
    const optimizer = this.optimizer("head", this.models.head.logitsModel.trainableWeights, learningRate, null);
    return headPhase(name, this.setup, this.inception, this.layer, this.models.head.logitsModel, optimizer, epochs, this.features!.sets);
  }

  /**
   * The frozen-bottom cache for the plan's frozen blocks (data/activations.ts), one per boundary and weights
   * below it, or null where it does not apply: distortions change every epoch's images, and with nothing
   * frozen (or op by op) there is nothing to keep.
   */
  frozenBottom(): ActivationStore | null {
    const s = this.setup.settings;
    const first = BLOCKS.indexOf(this.plan.firstTrained!);
    if (!s.frozenBottomCache || !s.graph || first <= 0 || hasDistortions(s.distortions)) return null;
    const below = BLOCKS[first - 1];
    const boundary = this.inception.model.getLayer(below === "stem" ? "max_pooling2d_2" : below).outputShape as number[];
    const { source, inputSize } = this.inception;
    const description = { weights: source.id, fingerprint: this.inception.weightsFingerprint(below as CutLayer), boundary: below, preprocessing: source.preprocessing, inputSize, precision: this.precision.precision };
    const key = JSON.stringify(description);
    let store = this.stores.get(key);
    if (!store) {
      const images = this.data.files("train").length + this.data.files("validation").length;
      store = new ActivationStore(description, boundary.slice(1).reduce((a, b) => a * b, 1), this.precision.precision, images, { root: s.cacheDir && path.join(s.cacheDir, "activations") });
      this.stores.set(key, store);
    }
    this.lastStore = { store, boundary: below, images: this.data.files("train").length + this.data.files("validation").length };
    return store;
  }

  /** What the last frozen-bottom cache holds: at which block, for how many images, in memory or on disk, how used. */
  get frozenBottomStats(): FrozenBottomStats | null {
    if (!this.lastStore) return null;
    const { store, boundary, images } = this.lastStore;
    return { boundary, images, bytesPerImage: store.bytesFor(), bytes: store.bytesFor(images), onDisk: store.onDisk, computed: store.counts.stored, readBatches: store.counts.read };
  }

  /** The network trained from the plan's first trained block up, with the head, on images. */
  networkPhase(epochs: number, learningRate: number): Phase {
    const firstTrained = this.plan.firstTrained!;
    const optimizer = this.optimizer(`network from ${firstTrained}`, this.models.full.logitsModel.trainableWeights, learningRate, lossScalingFor(this.precision.precision));
    const flops = blockFlops(this.inception);
    const sum = (blocks: string[]) => blocks.reduce((total, b) => total + (flops.get(b) ?? 0), 0);
    const flopsPerImage = { perImage: sum(blocksUpTo(this.layer)) + 2 * sum(this.plan.trainedBlocks), cached: 3 * sum(this.plan.trainedBlocks) };
    return imagePhase(this.mode === "fine-tune" ? "fine-tune" : "train", this.setup, this.inception, this.models.full.logitsModel, firstTrained, optimizer, epochs, flopsPerImage, this.frozenBottom());
  }

  /** Trains the blocks from `firstTrained` up from now on (fastai's freeze and unfreeze); the head always trains. */
  retrainFrom(unfreezeFrom: CutLayer | "all"): void {
    if (this.mode === "retrain-final-layer") throw new Error(`unfreezeFrom: a retraining keeps its network frozen; fine-tune it with fineTune(inception, data, { unfreezeFrom: "${unfreezeFrom}" }).`);
    if (this.mode === "from-scratch") throw new Error(`unfreezeFrom: a run from scratch trains every layer (random weights have nothing worth freezing); fine-tune a pretrained network to train from "${unfreezeFrom}".`);
    this.plan = plan(this.mode, this.layer, { ...this.setup.settings, unfreezeFrom, warmupEpochs: 0 });
    setTrainable(this.inception, this.plan.firstTrained as Block);
  }

  /** The rules every call follows, then the ones layers above add (live charts), then the user's. */
  private callbacks(settings: Resolved, checkpoint: Checkpoint | null, interrupt: InterruptFlag): Callback[] {
    const facts: RunFacts = { samples: this.data.files("train").length, batchSize: settings.batchSize, doValidation: this.data.files("validation").length > 0 };
    const keep = this.keptWeights().map((w) => w.read() as tf.Variable);
    return [
      new KeepBestWeights(() => keep),
      ...(checkpoint ? [checkpoint] : []),
      ...(settings.earlyStopping !== false ? [new EarlyStopping(settings.earlyStopping)] : []),
      ...(settings.maxSeconds > 0 ? [new TimeBudget(settings.maxSeconds)] : []),
      new StopOnInterrupt(interrupt),
      new StopOnNaN(),
      ...(settings.progress ? [new ProgressBar()] : []),
      ...(settings.tensorboard ? [new TensorBoardLog(path.resolve(settings.tensorboard))] : []),
      ...defaultCallbacks(settings),
      ...settings.callbacks.map((callback) => forLoop(callback, interrupt, this.models.full.model, facts)),
    ];
  }

  /**
   * One call: features where the phases need them, then the loop over `phases` (made once the features are
   * there), continuing the history. An interrupt ends it at a step boundary with the best weights kept.
   */
  async call(settings: Resolved, phases: () => Phase[], options: { needsFeatures: boolean; resume?: string }): Promise<CallOutcome> {
    const started = performance.now();
    const checkpoint = settings.checkpointDir ? new Checkpoint(path.resolve(settings.checkpointDir), this.models.full.model, this.identity, this.classifierInfo) : null;
    const interrupt = listenForInterrupt();
    let loop: TrainingLoop | null = null;
    let stopReason: string | null = null;
    let features: BottleneckStats | undefined;
    try {
      if (options.needsFeatures && !this.features) features = await this.computeFeatures(settings, interrupt);
      const history = options.resume ? await readCheckpoint(options.resume, this.identity, this.models.full.model, new Set(this.keptWeights())) : this.history;
      loop = new TrainingLoop(phases(), this.callbacks(settings, checkpoint, interrupt), history.steps.length ? { history, continued: !options.resume } : undefined);
      await loop.run();
      stopReason = loop.stopReason;
    } catch (error) {
      if (!(error instanceof InterruptedError)) throw error;
      stopReason = "interrupted";
      console.warn(`inception-lab: ${error.message}; nothing was trained. lastRun() has the run.`);
    } finally {
      interrupt.release();
      // Also when the call failed part-way: the weights changed with those steps, and the history says so.
      if (loop) this.history = loop.history;
    }
    this.checkpointsWritten += checkpoint?.written ?? 0;
    return { features, stopReason, stoppedEarly: (loop?.endedPhases.length ?? 0) > 0, warnings: loop?.warnings ?? [], checkpointsWritten: this.checkpointsWritten, seconds: (performance.now() - started) / 1000 };
  }

  /** The features the head trains on, computed or read from the cache once and kept. */
  async computeFeatures(settings: Resolved, interrupt?: InterruptFlag): Promise<BottleneckStats> {
    // With distortions, training features are computed per step; validation still uses cached ones.
    this.features = await bottlenecks(this.data, this.cache, hasDistortions(settings.distortions) ? ["validation"] : ["train", "validation"], interrupt);
    this.owned.push(this.features.sets.train.x, this.features.sets.train.y, this.features.sets.validation.x, this.features.sets.validation.y);
    return this.features.stats;
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

/** A new trainer for `mode` on `inception` (the caller's network for a retraining, the run's own otherwise). */
export function newTrainer(mode: Mode, inception: Inception, data: ImageFolder, settings: Resolved, precision: PrecisionChoice, head: Head): Trainer {
  const layer = settings.layer ?? inception.source.layer;
  const setup: Setup = { settings, precision: precision.precision, data, classes: data.classes.length, head };
  const info: ClassifierInfo = { classes: data.classes, inputSize: inception.inputSize, mode, layer, weights: inception.source.description };
  return new Trainer(mode, inception, data, setup, layer, precision, info);
}
