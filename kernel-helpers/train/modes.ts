// The three ways to train Inception-v3 on new classes, behind one options shape:
//   retrainFinalLayer: frozen network, features computed once and cached, only a new head trained;
//   fineTune: pretrained start, new head, then the network itself trained (all of it, or from a block up);
//   trainFromScratch: the same network and head from random weights.
// What each mode trains is its recipe (recipes.ts); the rules of the loop are callbacks (callbacks.ts).
import * as path from "path";
import type { ImageFolder } from "../data/image-folder";
import { type Inception, loadInceptionV3, resolvePrecision } from "../network/model";
import { checkWritableFolder } from "../util/atomic";
import { Classifier, Head } from "./classifier";
import { resolve, type Resolved, type TrainOptions } from "./options";
import { cachedScorer } from "./phases";
import { type Mode, plan } from "./recipes";
import { remember, type RunInfo, TrainingRun } from "./run";
import { checkTrainingData, countParameters, newTrainer, type Trainer } from "./trainer";

async function train(mode: Mode, inception: Inception, data: ImageFolder, options: TrainOptions): Promise<TrainingRun> {
  const settings = resolve(mode, options);
  checkTrainingData(data);
  const checkpointDir = settings.checkpointDir && path.resolve(settings.checkpointDir);
  if (checkpointDir && !settings.resume) checkWritableFolder(checkpointDir, "checkpointDir");
  const precision = resolvePrecision(settings.precision ?? inception.precisionOption, settings.graph);
  const trainer = newTrainer(mode, inception, data, settings, precision, new Head(data.classes.length, settings.dropout, settings.seed));
  const { plan } = trainer;
  const classifier = new Classifier(trainer.models.full.model, trainer.classifierInfo, precision.precision, mode === "retrain-final-layer" ? cachedScorer(trainer.cache!, trainer.models.head.model) : undefined, trainer.owned);
  const run = new TrainingRun(runInfo(trainer, settings), trainer.history, classifier, data, trainer, options);
  remember(run);
  // The phases of the plan: the head on features first (retraining, a fine-tune's warm-up), then the network.
  const retraining = mode === "retrain-final-layer";
  const outcome = await trainer.call(
    settings,
    () => [
      ...(plan.headOnFeatures ? [trainer.headPhase(retraining ? "head" : "warm-up", retraining ? settings.epochs : settings.warmupEpochs, retraining ? settings.learningRate : settings.warmupLearningRate)] : []),
      ...(plan.firstTrained ? [trainer.networkPhase(settings.epochs, settings.learningRate)] : []),
    ],
    { needsFeatures: plan.headOnFeatures, resume: settings.resume ? checkpointDir : undefined },
  );
  // Later calls of a fine-tune train the network on images: the warm-up's features are not needed again.
  if (!retraining) trainer.releaseFeatures();
  run.record(outcome);
  return run;
}

/** What a run says of itself before its first call; record() adds each call's outcome. */
function runInfo(trainer: Trainer, settings: Resolved): RunInfo {
  const { mode, inception, data, layer, precision, models } = trainer;
  return {
    mode,
    weights: inception.source.description,
    layer,
    inputSize: inception.inputSize,
    classes: data.classes,
    trainableParameters: trainer.trainableParameters(),
    totalParameters: countParameters(models.full.model.weights),
    trainedBlocks: trainer.plan.trainedBlocks,
    precision: precision.precision,
    precisionReason: precision.reason,
    options: { ...settings, callbacks: undefined } as unknown as RunInfo["options"],
    bottlenecks: undefined,
    stopReason: null,
    interrupted: false,
    stoppedEarly: false,
    outOfTime: false,
    checkpointsWritten: 0,
    warnings: [],
    seconds: 0,
    trainImages: data.files("train").length,
    calls: 0,
  };
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
  // Bad options, data or depth fail before the copy is made (a failed call would leave a network behind).
  const settings = resolve("fine-tune", options);
  checkTrainingData(data);
  plan("fine-tune", settings.layer ?? inception.source.layer, settings);
  return train("fine-tune", await inception.clone(), data, options);
}

/** Train from scratch: the same network and head from random weights, everything trained. */
export async function trainFromScratch(data: ImageFolder, options: TrainOptions = {}): Promise<TrainingRun> {
  const settings = resolve("from-scratch", options);
  const inception = await loadInceptionV3({ weights: null, inputSize: settings.inputSize ?? 299, seed: settings.seed });
  return train("from-scratch", inception, data, options);
}
