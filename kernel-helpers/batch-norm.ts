// Batch normalization as Keras has it, for Inception-v3 (no scale, epsilon 1e-3, momentum 0.99),
// with Keras' rule for frozen layers. tfjs-layers' own BatchNormalization ignores `trainable = false`
// for its statistics: `fit` passes `training: true` to every layer, so a frozen BN keeps normalising
// with batch statistics and keeps updating its moving mean and variance, which wrecks a fine-tune of
// a pretrained network. Here a layer trains only when it is both in a training call and trainable;
// otherwise it takes the inference path with its moving statistics.
import type { Tensor, Tensor1D } from "@tensorflow/tfjs-node";
import { tf } from "./tf";

type Kwargs = { training?: boolean };

export interface BatchNormArgs {
  name?: string;
  trainable?: boolean;
  epsilon?: number;
  momentum?: number;
}

export class BatchNorm extends tf.layers.Layer {
  static readonly className = "InceptionLabBatchNorm";
  readonly epsilon: number;
  readonly momentum: number;
  private beta!: tf.LayerVariable;
  private movingMean!: tf.LayerVariable;
  private movingVariance!: tf.LayerVariable;

  constructor(args: BatchNormArgs = {}) {
    super(args);
    this.epsilon = args.epsilon ?? 1e-3;
    this.momentum = args.momentum ?? 0.99;
    this.supportsMasking = true;
  }

  build(inputShape: tf.Shape | tf.Shape[]): void {
    const shape = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as tf.Shape;
    const channels = shape[shape.length - 1] as number;
    this.beta = this.addWeight("beta", [channels], "float32", tf.initializers.zeros(), undefined, true);
    this.movingMean = this.addWeight("moving_mean", [channels], "float32", tf.initializers.zeros(), undefined, false);
    this.movingVariance = this.addWeight("moving_variance", [channels], "float32", tf.initializers.ones(), undefined, false);
    this.built = true;
  }

  call(inputs: Tensor | Tensor[], kwargs: Kwargs): Tensor {
    return tf.tidy(() => {
      const x = Array.isArray(inputs) ? inputs[0] : inputs;
      const beta = this.beta.read() as Tensor1D;
      // tfjs' batchNorm gradient needs a scale tensor (it crashes on none): a constant 1 per channel.
      const scale = tf.onesLike(beta);
      if (!(kwargs.training === true && this.trainable)) {
        return tf.batchNorm(x, this.movingMean.read() as Tensor1D, this.movingVariance.read() as Tensor1D, beta, scale, this.epsilon);
      }
      const axes = Array.from({ length: x.rank - 1 }, (_, i) => i);
      const { mean, variance } = tf.moments(x, axes);
      this.updateMovingStatistics(mean as Tensor1D, variance as Tensor1D);
      return tf.batchNorm(x, mean as Tensor1D, variance as Tensor1D, beta, scale, this.epsilon);
    });
  }

  private updateMovingStatistics(mean: Tensor1D, variance: Tensor1D): void {
    // A variable write is not on the path to the loss, so no gradient flows through these updates.
    const blend = (moving: tf.LayerVariable, batch: Tensor1D) =>
      moving.write(tf.add(tf.mul(moving.read(), this.momentum), tf.mul(batch, 1 - this.momentum)));
    blend(this.movingMean, mean);
    blend(this.movingVariance, variance);
  }

  getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), epsilon: this.epsilon, momentum: this.momentum };
  }
}

tf.serialization.registerClass(BatchNorm);
