// Batch normalization as Keras has it, for Inception-v3 (no scale, epsilon 1e-3, momentum 0.99),
// with Keras' rule for frozen layers. tfjs-layers' own BatchNormalization ignores `trainable = false`
// for its statistics: `fit` passes `training: true` to every layer, so a frozen BN keeps normalising
// with batch statistics and keeps updating its moving mean and variance, which wrecks a fine-tune of
// a pretrained network. Here a layer trains only when it is both in a training call and trainable;
// otherwise it takes the inference path with its moving statistics.
//
// Both paths run TensorFlow's fused kernels (FusedBatchNormV3 and its gradient, one op each) through
// the native backend; tfjs composes training-mode batch norm and its gradient from a dozen small ops.
import type { Tensor, Tensor1D } from "@tensorflow/tfjs-node";
import { type Attr, attrs, nativeBackend } from "../runtime/native-ops";
import { tf } from "../runtime/tf";

type Kwargs = { training?: boolean };

export interface BatchNormArgs {
  name?: string;
  trainable?: boolean;
  epsilon?: number;
  momentum?: number;
}

function fusedAttrs(epsilon: number, training: boolean, forward: boolean) {
  return attrs({
    T: { type: "dtype", value: "float32" },
    U: { type: "dtype", value: "float32" },
    epsilon: { type: "float", value: epsilon },
    ...(forward ? { exponential_avg_factor: { type: "float", value: 1 } } : {}),
    data_format: { type: "string", value: "NHWC" },
    is_training: { type: "bool", value: training },
  } as Record<string, Attr>);
}

/**
 * y = (x - mean) / sqrt(variance + epsilon) + offset, with batch statistics when training (returned
 * biased, as Keras uses them for moving averages) or the given ones otherwise; differentiable in x and offset.
 */
export function fusedBatchNorm(x: Tensor, offset: Tensor1D, mean: Tensor1D, variance: Tensor1D, epsilon: number, training: boolean): { y: Tensor; mean: Tensor1D; variance: Tensor1D } {
  const backend = nativeBackend();
  const n = x.size / x.shape[x.rank - 1];
  let batchStatistics: Tensor1D[] = [];
  // customGrad's typing takes the save function among the inputs; the call order is (x, offset, save).
  const normalise = tf.customGrad(((input: Tensor, shift: Tensor, save: tf.GradSaveFunc) => {
    const scale = tf.onesLike(shift);
    const statistics = training ? [tf.tensor1d([]), tf.tensor1d([])] : [mean, variance];
    const [y, batchMean, batchVariance, reserve1, reserve2, reserve3] = backend.executeMultipleOutputs("FusedBatchNormV3", fusedAttrs(epsilon, training, true), [input, scale, shift, ...statistics], 6);
    // The kernel reports the unbiased variance; Keras' moving average uses the biased one: times
    // 1 - 1/n, computed by ops so that the only constant is n, which a graph traced at small batch
    // sizes can scale (runtime/graph.ts). Kept past this scope for the moving averages; the caller disposes them.
    if (training) batchStatistics = [tf.keep(batchMean as Tensor1D), tf.keep(tf.mul(batchVariance, tf.sub(1, tf.reciprocal(tf.scalar(n)))) as Tensor1D)];
    // Inference mode's gradient reads the given statistics, as TensorFlow's own gradient passes them: the kernel's
    // reserve spaces hold them only on some CPUs (on an AMD EPYC without AVX-512 they came back empty, and the
    // input gradient was divided by sqrt(epsilon), 38x the right size).
    save(training ? [input, scale, reserve1, reserve2, reserve3] : [input, scale, mean, variance, reserve3]);
    return {
      value: y,
      gradFunc: (dy: Tensor, saved: Tensor[]) => {
        const [dx, , dOffset] = backend.executeMultipleOutputs("FusedBatchNormGradV3", fusedAttrs(epsilon, training, false), [dy, ...saved], 5);
        return [dx, dOffset];
      },
    };
  }) as unknown as Parameters<typeof tf.customGrad>[0]);
  const y = normalise(x, offset);
  return training ? { y, mean: batchStatistics[0], variance: batchStatistics[1] } : { y, mean, variance };
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
      const training = kwargs.training === true && this.trainable;
      const result = fusedBatchNorm(x, this.beta.read() as Tensor1D, this.movingMean.read() as Tensor1D, this.movingVariance.read() as Tensor1D, this.epsilon, training);
      if (training) {
        this.updateMovingStatistics(result.mean, result.variance);
        tf.dispose([result.mean, result.variance]);
      }
      return result.y;
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

/** Makes saved models that use BatchNorm loadable (tfjs finds layer classes by name); index.ts calls it. */
export function registerLayers(): void {
  tf.serialization.registerClass(BatchNorm);
}
