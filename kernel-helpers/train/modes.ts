// The three ways to train Inception-v3 on new classes, behind one options shape:
//   retrainFinalLayer: frozen network, features computed once and cached, only a new head trained;
//   fineTune: pretrained start, new head, then the network itself trained (all of it, or from a block up);
//   trainFromScratch: the same network and head from random weights.
// What each mode trains is its recipe (recipes.ts); the rules of the loop are callbacks (callbacks.ts).
import * as path from "path";
import { hasDistortions } from "../data/augment";
import { BottleneckCache } from "../data/bottlenecks";
import type { ImageFolder } from "../data/image-folder";
import { type Inception, loadInceptionV3, resolvePrecision } from "../network/model";
import { tf } from "../runtime/tf";
import { checkWritableFolder } from "../util/atomic";
import { type InterruptFlag, InterruptedError, listenForInterrupt } from "../util/interrupt";
import { forLoop, type RunFacts } from "./callback-adapter";
import { defaultCallbacks, EarlyStopping, KeepBestWeights, ProgressBar, StopOnInterrupt, StopOnNaN, TimeBudget } from "./callbacks";
import { Checkpoint, readCheckpoint, type RunIdentity } from "./checkpoint";
import { Classifier, classifierModels, Head } from "./classifier";
import { type Callback, type History, type Phase, TrainingLoop } from "./loop";
import { resolve, type Resolved, type TrainOptions } from "./options";
import { blockFlops, bottlenecks, cachedScorer, type FeatureSet, headPhase, imagePhase, setTrainable, type Setup } from "./phases";
import { blocksUpTo, type Mode, plan, type Plan } from "./recipes";
import { TensorBoardLog } from "./tensorboard";
import { remember, type RunInfo, TrainingRun } from "./run";

function countParameters(variables: tf.LayerVariable[]): number {
  return variables.reduce((sum, v) => sum + v.shape.reduce((a: number, b) => a * (b ?? 1), 1), 0);
}

/** Refuses, before any work, a data set that leaves nothing to train on. */
function checkTrainingData(data: ImageFolder): void {
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

/**
 * The rules every run follows, then the ones layers above add (live charts), then the user's, which the
 * loop waits for only until an interrupt; tfjs callbacks get `model` (the classifier being trained).
 */
function callbacksFor(settings: Resolved, keep: tf.Variable[], checkpoint: Checkpoint | null, interrupt: InterruptFlag, model: tf.LayersModel, facts: RunFacts): Callback[] {
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
    ...settings.callbacks.map((callback) => forLoop(callback, interrupt, model, facts)),
  ];
}

/** The phases of a plan: the head on features first (retraining, a fine-tune's warm-up), then the network. */
function phasesFor(planned: Plan, setup: Setup, inception: Inception, models: ReturnType<typeof classifierModels>, features: { train: FeatureSet; validation: FeatureSet }): Phase[] {
  const { settings } = setup;
  const phases: Phase[] = [];
  const retraining = planned.mode === "retrain-final-layer";
  if (planned.headOnFeatures) {
    phases.push(headPhase(retraining ? "head" : "warm-up", setup, inception, planned.layer, models.head.logitsModel, retraining ? settings.learningRate : settings.warmupLearningRate, retraining ? settings.epochs : settings.warmupEpochs, features));
  }
  if (planned.firstTrained) {
    const flops = blockFlops(inception);
    const sum = (blocks: string[]) => blocks.reduce((total, b) => total + (flops.get(b) ?? 0), 0);
    const perImage = sum(blocksUpTo(planned.layer)) + 2 * sum(planned.trainedBlocks);
    phases.push(imagePhase(planned.mode === "fine-tune" ? "fine-tune" : "train", setup, inception, models.full.logitsModel, planned.firstTrained, settings.learningRate, settings.epochs, perImage));
  }
  return phases;
}

async function train(mode: Mode, inception: Inception, data: ImageFolder, options: TrainOptions): Promise<TrainingRun> {
  const started = performance.now();
  const settings = resolve(mode, options);
  const layer = settings.layer ?? inception.source.featureLayer;
  const planned = plan(mode, layer, settings);
  checkTrainingData(data);
  const checkpointDir = settings.checkpointDir && path.resolve(settings.checkpointDir);
  if (checkpointDir && !settings.resume) checkWritableFolder(checkpointDir, "checkpointDir");

  const precision = resolvePrecision(settings.precision ?? inception.precisionOption, settings.graph);
  const setup: Setup = { settings, precision: precision.precision, data, classes: data.classes.length, head: new Head(data.classes.length, settings.dropout, settings.seed) };
  const models = classifierModels(inception, layer, setup.head);
  // The network's flags change only where the run owns it (fine-tune works on a copy, scratch on a new one).
  if (planned.firstTrained) setTrainable(inception, planned.firstTrained);
  // What this run may change: a retrained head shares the caller's frozen network and owns only its own weights.
  const owned = planned.firstTrained ? models.full.model.weights : models.head.model.weights;
  const identity: RunIdentity = { mode, weights: inception.source.id, layer, inputSize: inception.inputSize, classes: data.classes, trainedBlocks: planned.trainedBlocks };
  const classifierInfo = { classes: data.classes, inputSize: inception.inputSize, mode, layer, weights: inception.source.description };
  const cache = planned.headOnFeatures ? new BottleneckCache(inception, layer, settings.cacheDir, precision.precision) : null;
  const checkpoint = checkpointDir ? new Checkpoint(checkpointDir, models.full.model, identity, classifierInfo) : null;

  const facts: RunFacts = { samples: data.files("train").length, batchSize: settings.batchSize, doValidation: data.files("validation").length > 0 };
  const interrupt = listenForInterrupt();
  let features: Awaited<ReturnType<typeof bottlenecks>> | null = null;
  let loop: TrainingLoop | null = null;
  let interruptedEarly = false;
  try {
    // With distortions, training features are computed per step; validation still uses cached ones.
    features = await bottlenecks(data, cache, planned.headOnFeatures ? (hasDistortions(settings.distortions) ? ["validation"] : ["train", "validation"]) : [], interrupt);
    const resumed: History | undefined = settings.resume ? await readCheckpoint(checkpointDir!, identity, models.full.model, new Set(owned)) : undefined;
    loop = new TrainingLoop(phasesFor(planned, setup, inception, models, features.sets), callbacksFor(settings, owned.map((w) => w.read() as tf.Variable), checkpoint, interrupt, models.full.model, facts), resumed && { history: resumed });
    await loop.run();
  } catch (error) {
    if (!(error instanceof InterruptedError)) throw error;
    interruptedEarly = true;
    console.warn(`inception-lab: ${error.message}; nothing was trained. lastRun() has the run.`);
  } finally {
    interrupt.release();
    if (features) tf.dispose([features.sets.train.x, features.sets.train.y, features.sets.validation.x, features.sets.validation.y]);
    setup.head.dispose(); // the classifier predicts without dropout
  }

  const stopReason = interruptedEarly ? "interrupted" : (loop?.stopReason ?? null);
  const info: RunInfo = {
    mode,
    weights: inception.source.description,
    layer,
    inputSize: inception.inputSize,
    classes: data.classes,
    trainableParameters: countParameters(planned.firstTrained ? models.full.model.trainableWeights : models.head.model.trainableWeights),
    totalParameters: countParameters(models.full.model.weights),
    trainedBlocks: planned.trainedBlocks,
    precision: precision.precision,
    precisionReason: precision.reason,
    options: { ...settings, callbacks: undefined } as unknown as RunInfo["options"],
    bottlenecks: features && planned.headOnFeatures ? features.stats : undefined,
    stopReason,
    interrupted: stopReason === "interrupted",
    stoppedEarly: (loop?.endedPhases.length ?? 0) > 0,
    outOfTime: stopReason === "time budget reached",
    checkpointsWritten: checkpoint?.written ?? 0,
    warnings: loop?.warnings ?? [],
    seconds: (performance.now() - started) / 1000,
    trainImages: data.files("train").length,
  };
  // A fine-tune's or a from-scratch run's network is its own, the blocks above the cut included (no model of
  // the run uses them, so only this list frees them: 96 variables a run at mixed7 once kept for ever).
  const freed = planned.firstTrained ? [...new Set([...inception.model.weights, ...owned])] : owned;
  const classifier = new Classifier(models.full.model, classifierInfo, precision.precision, mode === "retrain-final-layer" ? cachedScorer(cache!, models.head.model) : undefined, freed);
  return remember(new TrainingRun(info, loop?.history ?? { steps: [], epochs: [] }, classifier, data));
}

/**
 * Retrain the final layer (TensorFlow's retrain.py): the network stays frozen; each image's features
 * are computed once and cached on disk; only a new classifier is trained on them.
 */
export function retrainFinalLayer(inception: Inception, data: ImageFolder, options: TrainOptions = {}): Promise<TrainingRun> {
  return train("retrain-final-layer", inception, data, options);
}

/**
 * Fine-tune: a new classifier is first trained on frozen features (warmupEpochs), then the network
 * itself is trained from `unfreezeFrom` up (default all of it), starting from the pretrained weights.
 * Works on a copy: `inception` keeps its weights. Frozen BatchNorm layers stay in inference mode.
 */
export async function fineTune(inception: Inception, data: ImageFolder, options: TrainOptions = {}): Promise<TrainingRun> {
  resolve("fine-tune", options); // bad options fail before the copy is made
  return train("fine-tune", await inception.clone(), data, options);
}

/** Train from scratch: the same network and head from random weights, everything trained. */
export async function trainFromScratch(data: ImageFolder, options: TrainOptions = {}): Promise<TrainingRun> {
  const settings = resolve("from-scratch", options);
  const inception = await loadInceptionV3({ weights: null, inputSize: settings.inputSize ?? 299, seed: settings.seed });
  return train("from-scratch", inception, data, options);
}
