// Optimizers whose hyperparameters are TensorFlow variables, not numbers. A training step recorded as a
// graph (runtime/graph.ts) freezes the numbers it meets into constants but feeds variables on every
// run, so a learning-rate schedule, or another learning rate in a re-run cell, changes what a recorded
// step does without recording it again. Their state (moments, step count) is made up front for every
// trained variable, so a step never creates variables (a recorded graph could not hold new ones).
// The update rules are Keras 3's (Adam's bias correction on the step size with epsilon outside the square
// root, RMSprop's epsilon inside it, momentum's velocity in steps): test/optimizers.test.ts holds them to it.
import { tf } from "../../runtime/tf";
import { newVariable } from "../../runtime/variable";

export type OptimizerName = "sgd" | "momentum" | "adam" | "rmsprop";
export const OPTIMIZERS: OptimizerName[] = ["sgd", "momentum", "adam", "rmsprop"];

/** Each optimizer's hyperparameters besides the learning rate, with Keras' defaults. */
const DEFAULTS: Record<OptimizerName, Record<string, number>> = {
  sgd: {},
  momentum: { momentum: 0.9 },
  adam: { beta1: 0.9, beta2: 0.999, epsilon: 1e-7 },
  rmsprop: { rho: 0.9, epsilon: 1e-7 },
};
/** Per-variable state each optimizer keeps. */
const SLOTS: Record<OptimizerName, number> = { sgd: 0, momentum: 1, adam: 2, rmsprop: 1 };

const scalarVariable = (value: number) => newVariable(() => tf.scalar(value));

/**
 * Dynamic loss scaling for float16 (Keras' LossScaleOptimizer): float16 gradients below 6e-8 round to
 * zero, so the loss is multiplied by a large scale before backpropagation and the gradients divided by it
 * after; a step whose gradients overflow is skipped and the scale halved, and after `growthInterval` good
 * steps in a row the scale doubles. bfloat16 has float32's range and needs none.
 */
export interface LossScaling {
  initialScale?: number;
  growthInterval?: number;
}

export class Optimizer {
  /** The hyperparameters as scalar variables: learningRate, and momentum / beta1, beta2, epsilon / rho. */
  readonly hyperparameters: Record<string, tf.Variable>;
  private readonly slots: tf.Variable[][];
  private readonly iterations = scalarVariable(0);
  private readonly values: Record<string, number>;
  /** With loss scaling: the scale, and the good steps since it last changed. */
  private readonly scaling: { scale: tf.Variable; goodSteps: tf.Variable; growthInterval: number } | null;

  constructor(
    readonly name: OptimizerName,
    readonly variables: tf.Variable[],
    learningRate: number,
    overrides: Record<string, number> = {},
    lossScaling: LossScaling | null = null,
  ) {
    if (!OPTIMIZERS.includes(name)) throw new Error(`optimizer: "${name}" is not one of ${OPTIMIZERS.join(", ")}.`);
    this.values = { learningRate, ...DEFAULTS[name], ...overrides };
    this.hyperparameters = Object.fromEntries(Object.entries(this.values).map(([key, value]) => [key, scalarVariable(value)]));
    this.slots = variables.map((v) => Array.from({ length: SLOTS[name] }, () => newVariable(() => tf.zerosLike(v))));
    this.scaling = lossScaling && { scale: scalarVariable(lossScaling.initialScale ?? 2 ** 15), goodSteps: scalarVariable(0), growthInterval: lossScaling.growthInterval ?? 2000 };
  }

  /** The loss scale now (1 without loss scaling). */
  get lossScale(): number {
    return this.scaling ? this.scaling.scale.dataSync()[0] : 1;
  }

  get learningRate(): number {
    return this.values.learningRate;
  }

  /** Sets the learning rate for the following steps (a recorded step reads it as an input). */
  set learningRate(value: number) {
    this.set("learningRate", value);
  }

  set(name: string, value: number): void {
    if (!(name in this.hyperparameters)) throw new Error(`${this.name} has no hyperparameter "${name}"; it has ${Object.keys(this.hyperparameters).join(", ")}.`);
    if (!Number.isFinite(value)) throw new Error(`${name} is ${value}: it must be a finite number.`);
    this.values[name] = value;
    tf.tidy(() => this.hyperparameters[name].assign(tf.scalar(value)));
  }

  /** One step: the gradients of `loss` with respect to the variables, then the update. Returns the loss. */
  minimize(loss: () => tf.Scalar): tf.Scalar {
    return tf.tidy(() => {
      const scaling = this.scaling;
      if (!scaling) {
        const { value, grads } = tf.variableGrads(loss, this.variables);
        this.apply(this.variables.map((v) => grads[v.name]));
        return value;
      }
      const { value, grads } = tf.variableGrads(() => tf.mul(loss(), scaling.scale) as tf.Scalar, this.variables);
      const unscaledLoss = tf.div(value, scaling.scale) as tf.Scalar;
      const gradients = this.variables.map((v) => grads[v.name] && tf.div(grads[v.name], scaling.scale));
      // Decided inside the step (a recorded graph cannot branch in JavaScript): every update is kept or undone by this flag.
      const finite = tf.all(tf.stack(gradients.filter(Boolean).map((g) => tf.all(tf.isFinite(g))))) as tf.Scalar;
      this.apply(gradients, finite);
      const grown = tf.add(scaling.goodSteps, 1);
      const growNow = tf.greaterEqual(grown, scaling.growthInterval);
      scaling.scale.assign(tf.where(finite, tf.where(growNow, tf.mul(scaling.scale, 2), scaling.scale), tf.div(scaling.scale, 2)));
      scaling.goodSteps.assign(tf.where(finite, tf.where(growNow, tf.zerosLike(grown), grown), tf.zerosLike(grown)));
      return unscaledLoss;
    });
  }

  /** Applies one update; with `finite` (loss scaling), a step whose gradients were not all finite changes nothing. */
  private apply(gradients: tf.Tensor[], finite?: tf.Scalar): void {
    const h = this.hyperparameters;
    const assign = (variable: tf.Variable, value: tf.Tensor) => variable.assign(finite ? tf.where(finite, value, variable) : value);
    const t = tf.add(this.iterations, 1) as tf.Scalar;
    assign(this.iterations, t);
    this.variables.forEach((variable, i) => {
      const g = gradients[i];
      if (!g) return; // not on the loss's path: nothing to update
      const [first, second] = this.slots[i];
      let step: tf.Tensor;
      switch (this.name) {
        case "sgd":
          step = tf.mul(h.learningRate, g);
          break;
        case "momentum":
          // Keras' velocity holds the learning rate of each step it remembers (TensorFlow's holds gradients
          // only): the two differ once a schedule changes the rate.
          assign(first, tf.sub(tf.mul(h.momentum, first), tf.mul(h.learningRate, g)));
          step = tf.neg(first);
          break;
        case "adam": {
          assign(first, tf.add(tf.mul(h.beta1, first), tf.mul(tf.sub(1, h.beta1), g)));
          assign(second, tf.add(tf.mul(h.beta2, second), tf.mul(tf.sub(1, h.beta2), tf.square(g))));
          const size = tf.div(tf.mul(h.learningRate, tf.sqrt(tf.sub(1, tf.pow(h.beta2, t)))), tf.sub(1, tf.pow(h.beta1, t)));
          step = tf.mul(size, tf.div(first, tf.add(tf.sqrt(second), h.epsilon)));
          break;
        }
        case "rmsprop":
          assign(first, tf.add(tf.mul(h.rho, first), tf.mul(tf.sub(1, h.rho), tf.square(g))));
          step = tf.mul(h.learningRate, tf.div(g, tf.sqrt(tf.add(first, h.epsilon))));
          break;
      }
      assign(variable, tf.sub(variable, step));
    });
  }

  /** Everything the optimizer reads besides the trained variables: its state, then its hyperparameters. */
  stateVariables(): tf.Variable[] {
    return [...this.slots.flat(), this.iterations, ...Object.values(this.hyperparameters), ...(this.scaling ? [this.scaling.scale, this.scaling.goodSteps] : [])];
  }

  dispose(): void {
    tf.dispose(this.stateVariables());
  }
}
