// One optimizer step as every mode takes it: softmax cross-entropy and accuracy of the logits, then the
// optimizer's update. With `graph` (the default) the step runs as one TensorFlow graph recorded on its
// first call (runtime/graph.ts): measured here, a full fine-tune step at 299 px runs 1.35x faster than op
// by op. The bench and the cost model time this same step.
import { currentBuild } from "../../runtime/build";
import { CompiledFunction } from "../../runtime/graph";
import { tf } from "../../runtime/tf";
import type { Precision } from "../../runtime/precision";
import { newVariable } from "../../runtime/variable";
import type { Optimizer } from "./optimizers";

/**
 * Mean softmax cross-entropy (with label smoothing, as Keras and tfjs define it) and accuracy. Every
 * number that a user may change is a tensor, so that a recorded step takes the new value as an input.
 */
export function lossAndAccuracy(logits: tf.Tensor2D, labels: tf.Tensor1D, classes: number, labelSmoothing: tf.Scalar | number = 0): { loss: tf.Scalar; accuracy: tf.Scalar } {
  return tf.tidy(() => {
    const oneHot = tf.oneHot(labels.toInt(), classes);
    const target = tf.add(tf.mul(oneHot, tf.sub(1, labelSmoothing)), tf.div(labelSmoothing, classes));
    const loss = tf.neg(tf.mean(tf.sum(tf.mul(target, tf.logSoftmax(logits)), -1))) as tf.Scalar;
    const accuracy = tf.mean(tf.equal(tf.argMax(logits, 1), labels.toInt()).toFloat()) as tf.Scalar;
    return { loss, accuracy };
  });
}

export interface StepOptions {
  classes: number;
  labelSmoothing?: number;
  /** Run the step as a TensorFlow graph (default true). */
  graph?: boolean;
  /** The graph's precision (runtime/precision.ts); op by op is float32. */
  precision?: Precision;
  /** Variables the forward pass reads besides the trained ones (BatchNorm statistics, the dropout rate). */
  reads?: () => tf.Variable[];
  /**
   * What decides the forward pass's ops (the model's structure, where it is split, seeds): steps with
   * the same description and optimizer share one recorded graph (runtime/graph.ts), also across runs.
   */
  describe?: () => object;
}

export class TrainingStep {
  /** The label smoothing the loss uses, as a variable a recorded step reads. */
  readonly labelSmoothing: tf.Variable;
  private readonly compiled: CompiledFunction;

  constructor(
    logits: (x: tf.Tensor, training: boolean) => tf.Tensor2D,
    readonly optimizer: Optimizer,
    options: StepOptions,
  ) {
    this.labelSmoothing = newVariable(() => tf.scalar(options.labelSmoothing ?? 0));
    const step = ([x, y]: tf.Tensor[]) => {
      let accuracy: tf.Scalar | undefined;
      const loss = optimizer.minimize(() => {
        const result = lossAndAccuracy(logits(x, true), y as tf.Tensor1D, options.classes, this.labelSmoothing as tf.Scalar);
        accuracy = tf.keep(result.accuracy); // survives the gradient's scope
        return result.loss;
      });
      return [loss, accuracy!];
    };
    const variables = () => [...optimizer.variables, ...(options.reads?.() ?? []), ...optimizer.stateVariables(), this.labelSmoothing];
    const key = options.describe && (() => JSON.stringify({ function: "training step", forward: options.describe!(), optimizer: optimizer.name, classes: options.classes }));
    this.compiled = new CompiledFunction(step, { enabled: options.graph ?? true, variables, key, precision: options.precision });
  }

  run(x: tf.Tensor, y: tf.Tensor1D): { loss: number; accuracy: number } {
    let loss: tf.Tensor;
    let accuracy: tf.Tensor;
    try {
      [loss, accuracy] = this.compiled.run([x, y]);
    } catch (error) {
      // TensorFlow's words for an allocation that failed: say which batch size to try instead.
      if (!/\bOOM\b|resource exhausted|out of memory/i.test((error as Error).message)) throw error;
      const n = x.shape[0];
      const where = currentBuild().device === "gpu" ? "GPU memory" : "memory";
      throw new Error(`Out of ${where} in a training step of ${n} images: try batchSize: ${Math.max(1, Math.floor(n / 2))} (or a smaller inputSize). TensorFlow said: ${(error as Error).message.split("\n")[0]}`);
    }
    const values = { loss: loss.dataSync()[0], accuracy: accuracy.dataSync()[0] };
    tf.dispose([loss, accuracy]);
    return values;
  }

  /** Why the step runs op by op instead of as a graph, if it does. */
  get notCompiled(): string[] {
    return this.compiled.notCompiled;
  }

  /** Graphs this step recorded itself (a step that found its graph from an earlier run records none). */
  get recordings(): number {
    return this.compiled.recordings;
  }

  dispose(): void {
    this.compiled.dispose();
    this.labelSmoothing.dispose();
  }
}
