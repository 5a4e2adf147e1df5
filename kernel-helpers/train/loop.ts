// The training loop every mode shares: batches in, one optimizer step per batch, validation after each
// epoch, live progress, history per step and per epoch, best weights kept, early stopping, a time
// budget, and a clean stop at a step boundary when the kernel is interrupted.
import * as fs from "fs";
import * as path from "path";
import { writeAtomically } from "../data/bottlenecks";
import { CompiledFunction } from "../runtime/graph";
import { Progress } from "../display/progress";
import { tf } from "../runtime/tf";

export type OptimizerName = "sgd" | "momentum" | "adam" | "rmsprop";

export function makeOptimizer(name: OptimizerName, learningRate: number): tf.Optimizer {
  switch (name) {
    case "sgd":
      return tf.train.sgd(learningRate);
    case "momentum":
      return tf.train.momentum(learningRate, 0.9);
    case "adam":
      return tf.train.adam(learningRate);
    case "rmsprop":
      return tf.train.rmsprop(learningRate, 0.9, 0, 1e-7);
    default:
      throw new Error(`optimizer: "${name}" is not one of sgd, momentum, adam, rmsprop.`);
  }
}

export interface StepRecord {
  step: number;
  epoch: number;
  phase: string;
  loss: number;
  accuracy: number;
  /** Seconds since training started. */
  seconds: number;
  /** Training images seen so far. */
  images: number;
}

export interface EpochRecord {
  epoch: number;
  phase: string;
  loss: number;
  accuracy: number;
  valLoss: number | null;
  valAccuracy: number | null;
  seconds: number;
  images: number;
  /** Estimated floating-point operations spent so far (forward and backward). */
  flops: number;
}

export interface History {
  steps: StepRecord[];
  epochs: EpochRecord[];
}

export interface TrainCallbacks {
  onBatchEnd?: (step: StepRecord) => void;
  onEpochEnd?: (epoch: EpochRecord) => void;
}

export interface LabelledBatch {
  x: tf.Tensor;
  y: tf.Tensor1D;
}

/** One stretch of training with one optimizer over one set of variables (head warm-up, fine-tune, ...). */
export interface Phase {
  name: string;
  epochs: number;
  optimizer: tf.Optimizer;
  variables: tf.Variable[];
  stepsPerEpoch: number;
  /** Operations per training image in this phase (forward plus backward). */
  flopsPerImage: number;
  batches(epoch: number): AsyncIterable<LabelledBatch>;
  logits(x: tf.Tensor, training: boolean): tf.Tensor2D;
  validate(): Promise<{ loss: number; accuracy: number } | null>;
  /** Frees what the phase holds beyond its tensors (graphs). */
  dispose?(): void;
}

export interface LoopOptions {
  classes: number;
  labelSmoothing: number;
  /** Epochs without a better validation accuracy before stopping (false: never). */
  earlyStopping: number | false;
  maxSeconds: number;
  progress: boolean;
  callbacks: TrainCallbacks;
  /** All weights of the model being trained, for keeping the best ones. */
  weights: () => tf.LayerVariable[];
  /** Run each step as a TensorFlow graph (see TrainingStep). */
  graph: boolean;
  checkpoint?: (epoch: number, history: History) => Promise<void>;
}

export function lossAndAccuracy(logits: tf.Tensor2D, labels: tf.Tensor1D, classes: number, labelSmoothing = 0): { loss: tf.Scalar; accuracy: tf.Scalar } {
  return tf.tidy(() => {
    const oneHot = tf.oneHot(labels.toInt(), classes);
    const loss = tf.losses.softmaxCrossEntropy(oneHot, logits, undefined, labelSmoothing) as tf.Scalar;
    const accuracy = tf.mean(tf.equal(tf.argMax(logits, 1), labels.toInt()).toFloat()) as tf.Scalar;
    return { loss, accuracy };
  });
}

/**
 * One optimizer step as every mode takes it: loss and accuracy of the logits, then the update of
 * `variables`. With `graph` (the default) every step runs as one TensorFlow graph, recorded on the
 * first step of each batch shape (graph.ts): measured here, a full fine-tune step at 299 px runs 1.35x faster
 * than op by op. The bench and the cost model time this same step.
 */
export class TrainingStep {
  private readonly compiled: CompiledFunction;

  constructor(
    logits: (x: tf.Tensor, training: boolean) => tf.Tensor2D,
    optimizer: tf.Optimizer,
    variables: tf.Variable[],
    options: { classes: number; labelSmoothing?: number; graph?: boolean },
  ) {
    const step = ([x, y]: tf.Tensor[]) => {
      let accuracy: tf.Scalar | undefined;
      const loss = tf.tidy(() =>
        optimizer.minimize(
          () => {
            const result = lossAndAccuracy(logits(x, true), y as tf.Tensor1D, options.classes, options.labelSmoothing);
            accuracy = tf.keep(result.accuracy); // survives the gradient's scope
            return result.loss;
          },
          true,
          variables,
        )!,
      );
      return [loss, accuracy!];
    };
    this.compiled = new CompiledFunction(step, { enabled: options.graph ?? true, variables: () => variables });
  }

  run(x: tf.Tensor, y: tf.Tensor1D): { loss: number; accuracy: number } {
    const [loss, accuracy] = this.compiled.run([x, y]);
    const values = { loss: loss.dataSync()[0], accuracy: accuracy.dataSync()[0] };
    tf.dispose([loss, accuracy]);
    return values;
  }

  dispose(): void {
    this.compiled.dispose();
  }
}

const MIN_LOSS_DELTA = 1e-4;

/** Runs phases one after another; stops early, on the time budget, or on a kernel interrupt. */
export class TrainingLoop {
  readonly history: History = { steps: [], epochs: [] };
  interrupted = false;
  stoppedEarly = false;
  outOfTime = false;
  private started = performance.now();
  private images = 0;
  private flops = 0;
  private best: { accuracy: number; loss: number; weights: tf.Tensor[] } | null = null;
  private stopRequested = false;

  constructor(readonly options: LoopOptions) {}

  get seconds(): number {
    return (performance.now() - this.started) / 1000;
  }

  /** Continues a resumed run's clock and counters. */
  resumeFrom(history: History): void {
    this.history.steps.push(...history.steps);
    this.history.epochs.push(...history.epochs);
    const last = history.epochs[history.epochs.length - 1];
    if (last) {
      this.started -= last.seconds * 1000;
      this.images = last.images;
      this.flops = last.flops;
    }
  }

  async run(phases: Phase[], firstEpoch = 1): Promise<void> {
    const onInterrupt = () => {
      this.stopRequested = true;
      this.interrupted = true;
    };
    process.on("SIGINT", onInterrupt);
    const totalEpochs = phases.reduce((sum, p) => sum + p.epochs, 0);
    const totalSteps = phases.reduce((sum, p) => sum + p.epochs * p.stepsPerEpoch, 0);
    const progress = this.options.progress ? new Progress("training", totalSteps, "steps") : null;
    let epoch = 0;
    let detail = "";
    try {
      for (const phase of phases) {
        let sinceBest = 0;
        const step = new TrainingStep(phase.logits, phase.optimizer, phase.variables, this.options);
        try {
          for (let e = 0; e < phase.epochs && !this.stopRequested; e++) {
            epoch++;
            if (epoch < firstEpoch) continue;
            const sums = { loss: 0, accuracy: 0, images: 0 };
            for await (const batch of phase.batches(epoch)) {
              const count = batch.x.shape[0];
              const { loss, accuracy } = step.run(batch.x, batch.y);
              tf.dispose([batch.x, batch.y]);
              sums.loss += loss * count;
              sums.accuracy += accuracy * count;
              sums.images += count;
              this.images += count;
              this.flops += count * phase.flopsPerImage;
              const record: StepRecord = { step: this.history.steps.length + 1, epoch, phase: phase.name, loss, accuracy, seconds: this.seconds, images: this.images };
              this.history.steps.push(record);
              this.options.callbacks.onBatchEnd?.(record);
              const imagesPerSecond = this.images / Math.max(this.seconds, 1e-9);
              progress?.update(this.history.steps.length, `${phase.name} epoch ${epoch}/${totalEpochs} · loss ${loss.toFixed(3)} · acc ${accuracy.toFixed(3)} · ${imagesPerSecond.toFixed(imagesPerSecond < 100 ? 1 : 0)} images/s${detail}`);
              await new Promise((resolve) => setImmediate(resolve)); // lets an interrupt signal in
              if (this.options.maxSeconds && this.seconds > this.options.maxSeconds) this.outOfTime = this.stopRequested = true;
              if (this.stopRequested) break;
            }
            if (sums.images === 0) continue;
            const validation = await phase.validate();
            const record: EpochRecord = {
              epoch,
              phase: phase.name,
              loss: sums.loss / sums.images,
              accuracy: sums.accuracy / sums.images,
              valLoss: validation?.loss ?? null,
              valAccuracy: validation?.accuracy ?? null,
              seconds: this.seconds,
              images: this.images,
              flops: this.flops,
            };
            this.history.epochs.push(record);
            detail = validation ? ` · val acc ${validation.accuracy.toFixed(3)}` : "";
            const improved = this.keepIfBest(record);
            if (improved) await this.options.checkpoint?.(epoch, this.history);
            this.options.callbacks.onEpochEnd?.(record);
            if (improved) sinceBest = 0;
            else if (this.options.earlyStopping !== false && ++sinceBest >= this.options.earlyStopping) {
              this.stoppedEarly = true;
              break;
            }
          }
        } finally {
          step.dispose();
          phase.dispose?.();
        }
      }
    } finally {
      process.off("SIGINT", onInterrupt);
      this.restoreBest();
      const why = this.interrupted ? " · interrupted: best weights kept" : this.outOfTime ? " · time budget reached" : this.stoppedEarly ? " · stopped early" : "";
      progress?.finish(`${this.history.epochs.length} epochs${detail}${why}`);
    }
  }

  /**
   * Keeps a copy of the weights when validation accuracy improved; on equal accuracy, when validation
   * loss fell by more than MIN_LOSS_DELTA (so a creeping loss does not hold off early stopping forever).
   */
  private keepIfBest(record: EpochRecord): boolean {
    const accuracy = record.valAccuracy ?? record.accuracy;
    const loss = record.valLoss ?? record.loss;
    if (this.best && (accuracy < this.best.accuracy || (accuracy === this.best.accuracy && loss > this.best.loss - MIN_LOSS_DELTA))) return false;
    tf.dispose(this.best?.weights ?? []);
    this.best = { accuracy, loss, weights: this.options.weights().map((w) => tf.clone(w.read())) };
    return true;
  }

  private restoreBest(): void {
    if (!this.best) return;
    this.options.weights().forEach((variable, i) => variable.write(this.best!.weights[i]));
    tf.dispose(this.best.weights);
    this.best = null;
  }
}

/** Saves a model and its state into `dir` atomically: a half-written checkpoint never replaces a good one. */
export async function saveAtomically(dir: string, model: tf.LayersModel, files: Record<string, string>): Promise<void> {
  const tmp = `${dir}.tmp-${process.pid}`;
  fs.rmSync(tmp, { recursive: true, force: true });
  await model.save(`file://${tmp}`);
  for (const [name, content] of Object.entries(files)) writeAtomically(path.join(tmp, name), content);
  const old = `${dir}.old-${process.pid}`;
  if (fs.existsSync(dir)) fs.renameSync(dir, old);
  fs.renameSync(tmp, dir);
  fs.rmSync(old, { recursive: true, force: true });
}
