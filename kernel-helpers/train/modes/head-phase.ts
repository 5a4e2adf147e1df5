// The phase that trains only the new head on features: a retraining, and a fine-tune's warm-up. Without
// distortions the features are the cached bottlenecks (retrain.py); with them, each step distorts the images
// and runs the frozen network.
import { hasDistortions } from "../../data/augment";
import type { CutLayer } from "../../network/inception";
import type { Inception } from "../../network/model";
import { modelStructure } from "../../runtime/graph";
import { tf } from "../../runtime/tf";
import { seededRandom, shuffleInPlace } from "../../util/random";
import type { Head } from "../classifier/classifier";
import type { Phase } from "../loop/loop";
import type { Optimizer } from "../loop/optimizers";
import { lossAndAccuracy, TrainingStep } from "../loop/step";
import { trainingImages } from "./image-phase";
import { blockFlops, phase, type Setup, type TensorBatch } from "./phase";
import { blocksUpTo } from "./recipes";

export interface FeatureSet {
  x: tf.Tensor2D;
  y: tf.Tensor1D;
}

/** One training step of the head alone, on features (`headLogits` takes them as input). */
export function headStep(headLogits: tf.LayersModel, head: Head, optimizer: Optimizer, options: { classes: number; labelSmoothing?: number; graph?: boolean }): TrainingStep {
  return new TrainingStep((x, training) => headLogits.apply(x, { training }) as tf.Tensor2D, optimizer, {
    ...options,
    reads: () => head.variables(),
    describe: () => ({ step: "head", model: modelStructure(headLogits) }),
  });
}

/**
 * A phase that trains only the head on features. Without distortions the features are the cached
 * bottlenecks (retrain.py); with them, each step distorts the images and runs the frozen network.
 */
export function headPhase(name: string, setup: Setup, inception: Inception, layer: CutLayer, headLogits: tf.LayersModel, optimizer: Optimizer, epochs: number, features: { train: FeatureSet; validation: FeatureSet }): Phase<TensorBatch> {
  const distortions = hasDistortions(setup.settings.distortions) ? setup.settings.distortions : null;
  const random = seededRandom(setup.settings.seed + 17);
  const n = distortions ? setup.data.files("train").length : features.train.x.shape[0];
  const width = headLogits.inputs[0].shape[1]!;
  const frozen = blockFlops(inception);
  const baseFlops = blocksUpTo(layer).reduce((sum, b) => sum + (frozen.get(b) ?? 0), 0);
  const step = headStep(headLogits, setup.head, optimizer, { classes: setup.classes, labelSmoothing: setup.settings.labelSmoothing, graph: setup.settings.graph });
  return phase({
    name,
    epochs,
    stepsPerEpoch: Math.ceil(n / setup.settings.batchSize),
    flopsPerImage: 3 * 2 * width * setup.classes + (distortions ? baseFlops : 0),
    optimizer,
    train: (batch) => step.run(batch.x, batch.y),
    async *batches(epoch) {
      if (distortions) {
        for await (const batch of trainingImages(setup, inception.inputSize, epoch, random)) {
          yield { x: await inception.features(batch.images, { layer, graph: setup.settings.graph, precision: setup.precision }), y: batch.labels };
          batch.images.dispose();
        }
        return;
      }
      const order = shuffleInPlace(Array.from({ length: n }, (_, i) => i), setup.settings.seed + epoch);
      for (let i = 0; i < n; i += setup.settings.batchSize) {
        const take = tf.tensor1d(order.slice(i, i + setup.settings.batchSize), "int32");
        const batch = { x: tf.gather(features.train.x, take), y: tf.gather(features.train.y, take) as tf.Tensor1D };
        take.dispose();
        yield batch;
      }
    },
    async validate() {
      const v = features.validation;
      if (v.x.shape[0] === 0) return null;
      const result = tf.tidy(() => lossAndAccuracy(headLogits.apply(v.x, { training: false }) as tf.Tensor2D, v.y, setup.classes));
      const out = { loss: (await result.loss.data())[0], accuracy: (await result.accuracy.data())[0] };
      tf.dispose([result.loss, result.accuracy]);
      return out;
    },
    dispose: () => step.dispose(),
  });
}

