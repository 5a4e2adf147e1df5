// The phases of a training call, made from the run's state (trainer.ts) and the call's settings: the head on
// features (a retraining; a fine-tune's warm-up, in its first call only), then the network on images, with the
// frozen-bottom cache where it applies. The first call of a mode and each run.fit make their phases here.
import * as path from "path";
import { ActivationStore } from "../../data/activations";
import { hasDistortions } from "../../data/augment";
import { BLOCKS, type CutLayer } from "../../network/inception";
import type { Phase } from "../loop/loop";
import { headPhase } from "./head-phase";
import { imagePhase } from "./image-phase";
import type { Resolved } from "./options";
import { blockFlops, lossScalingFor } from "./phase";
import { blocksUpTo } from "./recipes";
import type { Trainer } from "./trainer";

/** The head trained on features: a retraining, or a fine-tune's warm-up. */
export function headPhaseOf(trainer: Trainer, name: string, epochs: number, learningRate: number): Phase {
  const optimizer = trainer.optimizer("head", trainer.models.head.logitsModel.trainableWeights, learningRate, null);
  return headPhase(name, trainer.setup, trainer.inception, trainer.layer, trainer.models.head.logitsModel, optimizer, epochs, trainer.features!.sets);
}

/**
 * The frozen-bottom cache for the plan's frozen blocks (data/activations.ts), one per boundary and weights
 * below it, or null where it does not apply: distortions change every epoch's images, and with nothing
 * frozen (or op by op) there is nothing to keep.
 */
export function frozenBottomOf(trainer: Trainer): ActivationStore | null {
  const s = trainer.setup.settings;
  const first = BLOCKS.indexOf(trainer.plan.firstTrained!);
  if (!s.frozenBottomCache || !s.graph || first <= 0 || hasDistortions(s.distortions)) return null;
  const below = BLOCKS[first - 1];
  const { inception, data } = trainer;
  const boundary = inception.model.getLayer(below === "stem" ? "max_pooling2d_2" : below).outputShape as number[];
  const description = { weights: inception.source.id, fingerprint: inception.weightsFingerprint(below as CutLayer), boundary: below, preprocessing: inception.source.preprocessing, inputSize: inception.inputSize, precision: trainer.precision.precision };
  const key = JSON.stringify(description);
  const images = data.files("train").length + data.files("validation").length;
  let store = trainer.stores.get(key);
  if (!store) {
    const root = s.cacheDir && path.join(s.cacheDir, "activations");
    store = new ActivationStore(description, boundary.slice(1).reduce((a, b) => a * b, 1), trainer.precision.precision, images, { root, onWarning: (message) => trainer.warnAside(message) });
    trainer.stores.set(key, store);
  }
  trainer.lastStore = { store, boundary: below, images };
  return store;
}

/** The network trained from the plan's first trained block up, with the head, on images. */
export function networkPhaseOf(trainer: Trainer, epochs: number, learningRate: number): Phase {
  const { plan, inception, models, mode } = trainer;
  const optimizer = trainer.optimizer(`network from ${plan.firstTrained}`, models.full.logitsModel.trainableWeights, learningRate, lossScalingFor(trainer.precision.precision));
  const flops = blockFlops(inception);
  const sum = (blocks: string[]) => blocks.reduce((total, b) => total + (flops.get(b) ?? 0), 0);
  const flopsPerImage = { perImage: sum(blocksUpTo(trainer.layer)) + 2 * sum(plan.trainedBlocks), cached: 3 * sum(plan.trainedBlocks) };
  return imagePhase(mode === "fine-tune" ? "fine-tune" : "train", trainer.setup, inception, models.full.logitsModel, plan.firstTrained!, optimizer, epochs, flopsPerImage, frozenBottomOf(trainer));
}

/**
 * The phases of a call. The first: the head on features first where the plan says (retraining, a fine-tune's
 * warm-up), then the network. Later calls (run.fit): a retraining trains its head on, the others their network.
 */
export function callPhases(trainer: Trainer, settings: Resolved, first: boolean): Phase[] {
  const retraining = trainer.mode === "retrain-final-layer";
  if (!first) return [retraining ? headPhaseOf(trainer, "head", settings.epochs, settings.learningRate) : networkPhaseOf(trainer, settings.epochs, settings.learningRate)];
  return [
    ...(trainer.plan.headOnFeatures ? [headPhaseOf(trainer, retraining ? "head" : "warm-up", retraining ? settings.epochs : settings.warmupEpochs, retraining ? settings.learningRate : settings.warmupLearningRate)] : []),
    ...(trainer.plan.firstTrained ? [networkPhaseOf(trainer, settings.epochs, settings.learningRate)] : []),
  ];
}
