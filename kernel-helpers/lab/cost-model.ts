// How long would each mode take on a whole data set, on this machine? Measure the three kinds of work
// (a frozen forward pass, a training step through the top blocks, a training step through everything)
// and multiply by what each recipe does. Turns "2-3 hours vs a day" into computed numbers.
import * as os from "os";
import { Displayable, escapeHtml, Table } from "../display/display";
import { type Block, type CutLayer } from "../network/inception";
import { type Inception, loadInceptionV3, resolvePrecision } from "../network/model";
import { formatDuration } from "../display/progress";
import { tf } from "../runtime/tf";
import { currentBuild, visibleGpu } from "../runtime/build";
import { CompiledFunction, inferenceGraphs } from "../runtime/graph";
import type { Precision, PrecisionOption } from "../runtime/precision";
import { classifierModels, Head } from "../train/classifier";
import { Optimizer, type OptimizerName } from "../train/optimizers";
import { blocksUpTo, type Mode, plan, RECIPES } from "../train/recipes";
import { blockFlops, headStep, lossScalingFor, networkStep, setTrainable } from "../train/phases";

export interface Throughput {
  inputSize: number;
  batchSize: number;
  /** Images per second through the frozen network to the pooled features (bottleneck extraction). */
  forward: number;
  /** Images per second through the network and the head in inference (validation after each epoch). */
  validation: number;
  /** Images per second of the head's training step on cached features, at `batchSize`. */
  head: number;
  /** Images per second of a training step that trains the blocks from `unfreezeFrom` up. */
  trainTop: number;
  /** The same step on the frozen blocks' output read back (the frozen-bottom cache: epochs after the first). */
  trainTopCached: number;
  /** Images per second of a training step that trains every layer. */
  trainAll: number;
  unfreezeFrom: CutLayer;
  /** Floating-point operations per image of each kind of work (the model summary's, as training counts them). */
  flops: { forward: number; trainTop: number; trainTopCached: number; trainAll: number };
  /** The precision the network's work ran at, and why. */
  precision: Precision;
  precisionReason: string;
  /**
   * Operations per second of this machine's own convolution kernel at that precision (a 3x3 convolution,
   * 16x35x35x288 to 384, best of several runs): the most a training step can reach here.
   */
  peakFlops: number;
  /** What measured: the GPU's name under the GPU build, else the CPU's. */
  device: string;
  /** Measured on a GPU: the table then has no GPU estimates beside it (a measurement beats an estimate). */
  onGpu: boolean;
}

async function timeSteps(step: () => unknown, steps: number): Promise<number> {
  // Warm-up: the first call finds or records the graph and runs it once; kernels finish building on the next run.
  for (let i = 0; i < 2; i++) await step();
  const started = performance.now();
  for (let i = 0; i < steps; i++) await step();
  return (performance.now() - started) / 1000 / steps;
}

export interface ThroughputOptions {
  /** Measure on a copy of this network (its input size, preprocessing and cut); default a random one. */
  network?: Inception;
  inputSize?: number;
  batchSize?: number;
  steps?: number;
  unfreezeFrom?: CutLayer;
  /** Where the head attaches (default: the network's recommended cut). */
  layer?: CutLayer;
  classes?: number;
  optimizer?: OptimizerName;
  seed?: number;
  /** The precision to measure at (default: the network's, "auto"): measure the precision that will run. */
  precision?: PrecisionOption;
}

/**
 * The rate of one large convolution at `precision`, as a graph, best of `runs`: the kernel that dominates
 * Inception-v3, so a whole training step's rate (counting its convolutions' operations) stays below it.
 */
export function measureConvolutionPeak(precision: Precision, runs = 5): number {
  const filter = tf.variable(tf.randomNormal([3, 3, 288, 384], 0, 0.05), false);
  const x = tf.randomNormal([16, 35, 35, 288]);
  const convolve = new CompiledFunction(([input]) => [tf.conv2d(input as tf.Tensor4D, filter as tf.Tensor4D, 1, "same")], { variables: () => [filter], precision });
  try {
    const once = () => {
      const started = performance.now();
      const [y] = convolve.run([x]);
      // A scalar out: reading 30 MB back into JavaScript would cost as much as the convolution.
      tf.tidy(() => tf.sum(y).dataSync());
      y.dispose();
      return (performance.now() - started) / 1000;
    };
    once();
    const best = Math.min(...Array.from({ length: runs }, once));
    return (2 * 16 * 35 * 35 * 3 * 3 * 288 * 384) / best;
  } finally {
    convolve.dispose();
    tf.dispose([filter, x]);
  }
}

/**
 * Measures throughput on this machine for the steps a run takes: the same head, optimizer and split, so a
 * run of the same shape afterwards finds these recorded graphs. Speed does not depend on the weights'
 * values. A few steps each after two warm-up steps: seconds at 75 px, a minute at 299.
 */
export async function measureThroughput(options: ThroughputOptions = {}): Promise<Throughput> {
  const { batchSize = 8, steps = 3, unfreezeFrom = "mixed7", classes = 5, optimizer = "adam", seed = 0 } = options;
  const inception = options.network ? await options.network.clone() : await loadInceptionV3({ weights: null, inputSize: options.inputSize ?? 299, seed: 1 });
  const { inputSize } = inception;
  const layer = options.layer ?? inception.source.layer;
  const choice = resolvePrecision(options.precision ?? inception.precisionOption);
  const precision = choice.precision;
  const head = new Head(classes, 0.2, seed);
  const models = classifierModels(inception, layer, head);
  const logitsModel = models.full.logitsModel;
  const x = tf.randomUniform([batchSize, inputSize, inputSize, 3], 0, 255);
  const y = tf.tensor1d(Array.from({ length: batchSize }, (_, i) => i % classes), "int32");
  const peakBefore = measureConvolutionPeak(precision);
  const forwardSeconds = await timeSteps(async () => (await inception.features(x, { batchSize, layer, precision })).dispose(), steps);
  // A run's other graphs, run here too so that a run of this shape afterwards records nothing: the
  // validation pass, and the head's step on features.
  const validation = inferenceGraphs(logitsModel, true, precision);
  const validationSeconds = await timeSteps(() => tf.dispose(validation.run([x])), steps);
  validation.dispose();
  const headOptimizer = new Optimizer(optimizer, models.head.logitsModel.trainableWeights.map((w) => w.read() as tf.Variable), 1e-3);
  const onFeatures = headStep(models.head.logitsModel, head, headOptimizer, { classes });
  const features = tf.randomNormal([batchSize, (logitsModel.getLayer("features").outputShape as number[])[1]]);
  // Milliseconds a step, but a retraining is made of them (at 96 px: 0.02 s of a 0.65 s run; 4,000 of them in retrain.py).
  const headSeconds = await timeSteps(() => onFeatures.run(features, y), steps);
  tf.dispose([features]);
  onFeatures.dispose();
  headOptimizer.dispose();
  // The training step the modes take: frozen bottom outside the tape, then loss and update on the rest.
  const trainSeconds = async (firstTrained: Block) => {
    setTrainable(inception, firstTrained);
    const trained = new Optimizer(optimizer, logitsModel.trainableWeights.map((w) => w.read() as tf.Variable), 1e-4, {}, lossScalingFor(precision));
    const step = networkStep(inception, logitsModel, firstTrained, trained, { classes, head, precision });
    const seconds = await timeSteps(() => step.run(x, y), steps);
    // The same step on the frozen blocks' output, as epochs after the first run it with the frozen-bottom cache.
    const prepared = step.forward.prepare(x);
    const cachedSeconds = await timeSteps(() => step.runPrepared(prepared, y), steps);
    if (prepared !== x) prepared.dispose();
    step.dispose();
    trained.dispose();
    return { seconds, cachedSeconds };
  };
  const all = (await trainSeconds("stem")).seconds;
  const { seconds: top, cachedSeconds: topCached } = await trainSeconds(unfreezeFrom);
  tf.dispose([x, y, ...head.variables(), ...logitsModel.weights.map((w) => w.read())]);
  const perBlock = blockFlops(inception);
  const sum = (blocks: string[]) => blocks.reduce((total, b) => total + (perBlock.get(b) ?? 0), 0);
  const forwardFlops = sum(blocksUpTo(layer));
  const trained = sum(plan("fine-tune", layer, { unfreezeFrom }).trainedBlocks);
  const flops = { forward: forwardFlops, trainTop: forwardFlops + 2 * trained, trainTopCached: 3 * trained, trainAll: 3 * forwardFlops };
  const onGpu = currentBuild().device === "gpu";
  const device = onGpu ? (visibleGpu()?.name ?? "GPU") : `${os.cpus()[0]?.model.trim() ?? "CPU"} x ${os.availableParallelism()}`;
  // Measured before and after the steps, the faster kept: a machine busier during one of them cannot make the
  // steps look faster than the kernel (a share above 100 %, which stops the cost model).
  const peakFlops = Math.max(peakBefore, measureConvolutionPeak(precision));
  return { inputSize, batchSize, forward: batchSize / forwardSeconds, validation: batchSize / validationSeconds, head: batchSize / headSeconds, trainTop: batchSize / top, trainTopCached: batchSize / topCached, trainAll: batchSize / all, unfreezeFrom, flops, device, onGpu, precision, precisionReason: choice.reason, peakFlops };
}

/** One training run to price: its mode, how deep it trains, its images and epochs. */
export interface RunShape {
  mode: Mode;
  /** fine-tune: "all" (the default) or the throughput's unfreezeFrom block. */
  unfreezeFrom?: CutLayer | "all";
  trainImages: number;
  validationImages: number;
  epochs: number;
  /** fine-tune: epochs of the head on cached features first (default 2, as the modes). */
  warmupEpochs?: number;
  /** Whether the features are cached already (a second run on the same images and network). */
  featuresCached?: boolean;
  /** A fine-tune of the top blocks without distortions keeps its frozen blocks' output (default true, as the modes). */
  frozenBottomCache?: boolean;
}

/**
 * Predicted seconds of one run on this machine: features computed once (where the mode uses them), the
 * head's epochs on them (a retraining's, a fine-tune's warm-up), then per network epoch the training
 * images through the step and the validation images forward.
 */
export function predictRun(throughput: Throughput, run: RunShape): { seconds: number; parts: Record<string, number> } {
  const t = throughput;
  const warmupEpochs = run.warmupEpochs ?? RECIPES[run.mode].defaults.warmupEpochs;
  const onFeatures = RECIPES[run.mode].headOnFeatures(warmupEpochs);
  const network = run.mode !== "retrain-final-layer";
  const headEpochs = !onFeatures ? 0 : network ? warmupEpochs : run.epochs;
  const top = run.mode === "fine-tune" && run.unfreezeFrom && run.unfreezeFrom !== "all";
  // With the frozen-bottom cache the first epoch runs the frozen blocks, the later ones only the trained.
  const laterRate = top ? (run.frozenBottomCache === false ? t.trainTop : t.trainTopCached) : t.trainAll;
  const parts: Record<string, number> = {
    features: onFeatures && !run.featuresCached ? (run.trainImages + run.validationImages) / t.forward : 0,
    head: (headEpochs * run.trainImages) / t.head,
    training: network && run.epochs > 0 ? run.trainImages / (top ? t.trainTop : t.trainAll) + ((run.epochs - 1) * run.trainImages) / laterRate : 0,
    validation: network ? (run.epochs * run.validationImages) / t.validation : 0,
  };
  return { seconds: Object.values(parts).reduce((a, b) => a + b, 0), parts };
}

export interface Recipe {
  images: number;
  trainFraction: number;
  /** retrain.py: training steps and batch size on cached features. */
  retrainSteps: number;
  retrainBatch: number;
  /** Fine-tuning: image passes through the network in training (steps x batch). */
  fineTuneImages: number;
  /** From scratch: epochs over the training split. */
  scratchEpochs: number;
}

/** The flowers data set with the anchors' recipes: retrain.py 4,000 x 100; TF's fine-tune 2,000 x 32; 100 epochs from scratch. */
export const FLOWERS_RECIPE: Recipe = { images: 3670, trainFraction: 0.8, retrainSteps: 4000, retrainBatch: 100, fineTuneImages: 2000 * 32, scratchEpochs: 100 };

/**
 * GPUs for estimates where none is measured: peak rates from the vendors' data sheets (dense, no sparsity):
 * FP32, the TF32 tensor-core rate TensorFlow uses for float32 convolutions from Ampere on, and the float16
 * tensor-core rate mixed precision uses. The K80 (2014, one of the board's two GPUs, as TensorFlow sees it)
 * is what a cloud GPU VM of 2017 had.
 */
export const GPUS: { name: string; fp32: number; tf32: number | null; fp16: number | null }[] = [
  { name: "NVIDIA K80", fp32: 4.37e12, tf32: null, fp16: null },
  { name: "NVIDIA T4", fp32: 8.1e12, tf32: null, fp16: 65e12 },
  { name: "NVIDIA A100", fp32: 19.5e12, tf32: 156e12, fp16: 312e12 },
  { name: "NVIDIA H100 SXM", fp32: 67e12, tf32: 495e12, fp16: 990e12 },
];
/**
 * Assumed share of a GPU's peak an Inception-v3 training step reaches in TensorFlow: 30 % of FP32 without
 * tensor cores, 15 % of the tensor-core rate with them (published Inception-v3 training rates correspond to about these).
 */
export const GPU_UTILISATION = { fp32: 0.3, tensorCore: 0.15 };

/** The rate a GPU is estimated at for work at `precision`: its tensor cores where it has them for it, else FP32. */
export function gpuRate(gpu: (typeof GPUS)[number], precision: Precision): { flops: number; what: string } {
  const tensor = precision === "float32" ? gpu.tf32 : gpu.fp16;
  return tensor ? { flops: tensor * GPU_UTILISATION.tensorCore, what: precision === "float32" ? "TF32" : "float16" } : { flops: gpu.fp32 * GPU_UTILISATION.fp32, what: "FP32" };
}

export interface CostModelOptions {
  recipe?: Recipe;
  /** Seconds of one head-only step of the recipe's retraining batch on cached features, measured or estimated. */
  headStepSeconds?: number;
  /** The same work measured at float32, for a column of what it would have cost without lower precision. */
  float32?: Throughput;
}

export interface CostRow {
  mode: string;
  work: string;
  seconds: number;
  flops: number;
  /** At float32, where that was measured too. */
  float32Seconds?: number;
}

/** The recipe's four runs priced from one throughput measurement. */
function priceRecipe(t: Throughput, r: Recipe, headStepSeconds: number): CostRow[] {
  const train = Math.round(r.images * r.trainFraction);
  return [
    {
      mode: "retrain the final layer",
      work: `${r.images} images forward once (${t.forward.toFixed(1)}/s), then ${r.retrainSteps} head steps of ${r.retrainBatch} on cached features`,
      seconds: r.images / t.forward + r.retrainSteps * headStepSeconds,
      flops: r.images * t.flops.forward,
    },
    {
      mode: `fine-tune from ${t.unfreezeFrom}`,
      work: `a first epoch of ${train} images through every block (${t.trainTop.toFixed(2)}/s; the frozen blocks' output is kept), then ${r.fineTuneImages - train} passes through the trained blocks alone on it at ${t.trainTopCached.toFixed(2)}/s`,
      seconds: train / t.trainTop + (r.fineTuneImages - train) / t.trainTopCached,
      flops: train * t.flops.trainTop + (r.fineTuneImages - train) * t.flops.trainTopCached,
    },
    { mode: "fine-tune all", work: `${r.fineTuneImages} training image passes at ${t.trainAll.toFixed(2)}/s`, seconds: r.fineTuneImages / t.trainAll, flops: r.fineTuneImages * t.flops.trainAll },
    { mode: "train from scratch", work: `${r.scratchEpochs} epochs x ${train} images at ${t.trainAll.toFixed(2)}/s`, seconds: (r.scratchEpochs * train) / t.trainAll, flops: r.scratchEpochs * train * t.flops.trainAll },
  ];
}

export class CostModel extends Displayable {
  readonly recipe: Recipe;
  readonly rows: CostRow[];
  /** Each recipe on each of GPUS, estimated from its operations (where no GPU was measured). */
  readonly gpuEstimates: { name: string; rate: string; seconds: number[] }[];
  /**
   * Share of this machine's own convolution rate (Throughput.peakFlops) that its full training step reached;
   * null when measured on a GPU. Above 1 the measurements contradict each other, and the model refuses to exist.
   */
  readonly utilisation: number | null;

  constructor(
    readonly throughput: Throughput,
    options: CostModelOptions = {},
  ) {
    super();
    const t = throughput;
    this.recipe = options.recipe ?? FLOWERS_RECIPE;
    const headStepSeconds = options.headStepSeconds ?? 0.002;
    const float32 = options.float32 && priceRecipe(options.float32, this.recipe, headStepSeconds);
    this.rows = priceRecipe(t, this.recipe, headStepSeconds).map((row, i) => ({ ...row, ...(float32 ? { float32Seconds: float32[i].seconds } : {}) }));
    this.gpuEstimates = t.onGpu ? [] : GPUS.map((gpu) => ({ name: gpu.name, rate: gpuRate(gpu, t.precision).what, seconds: this.rows.map((row) => row.flops / gpuRate(gpu, t.precision).flops) }));
    this.utilisation = t.onGpu ? null : (t.trainAll * t.flops.trainAll) / t.peakFlops;
    if (this.utilisation !== null && this.utilisation > 1) {
      throw new Error(
        `The measured training step (${((t.trainAll * t.flops.trainAll) / 1e9).toFixed(0)} GFLOP/s) is faster than this machine's own convolution rate at ${t.precision} ` +
          `(${(t.peakFlops / 1e9).toFixed(0)} GFLOP/s): one of the two measurements is off (was the machine busy?). Measure again with measureThroughput().`,
      );
    }
  }

  table(): Table {
    const t = this.throughput;
    const float32 = this.rows[0].float32Seconds !== undefined && t.precision !== "float32";
    return new Table(
      ["mode", "work", `${t.device}, ${t.precision} (measured)`, "x retrain", ...(float32 ? ["at float32 (measured)"] : []), ...this.gpuEstimates.map((g) => `${g.name}, ${g.rate} (estimate)`)],
      this.rows.map((row, i) => [
        row.mode,
        row.work,
        formatDuration(row.seconds),
        Number((row.seconds / this.rows[0].seconds).toFixed(1)),
        ...(float32 ? [formatDuration(row.float32Seconds!)] : []),
        ...this.gpuEstimates.map((g) => formatDuration(g.seconds[i])),
      ]),
      `Predicted for ${this.recipe.images} images at ${t.inputSize}x${t.inputSize} (throughput measured with batch ${t.batchSize}, ${t.precisionReason})`,
    );
  }

  /** How the GPU columns were estimated, and how this machine compares, in one sentence. */
  assumptions(): string {
    if (this.utilisation === null) return `Measured on ${this.throughput.device} at ${this.throughput.precision}.`;
    const t = this.throughput;
    const achieved = (t.trainAll * t.flops.trainAll) / 1e9;
    return (
      `GPU columns: the recipe's operations (${(t.flops.trainAll / 1e9).toFixed(1)} GFLOP per training image) at an assumed ${GPU_UTILISATION.tensorCore * 100} % of a GPU's ` +
      `${t.precision === "float32" ? "TF32" : "float16"} tensor-core peak, or ${GPU_UTILISATION.fp32 * 100} % of its FP32 peak where it has no such tensor cores. ` +
      `This machine's full training step reached ${achieved.toFixed(0)} GFLOP/s at ${t.precision}, ${(this.utilisation * 100).toFixed(0)} % of the rate of its own ` +
      `convolution kernel at that precision (${(t.peakFlops / 1e9).toFixed(0)} GFLOP/s, measured on one 3x3 convolution).`
    );
  }

  toText(): string {
    return `${this.table().toText()}\n${this.assumptions()}`;
  }

  toHTML(): string {
    return `${this.table().toHTML()}<p><small>${escapeHtml(this.assumptions())}</small></p>`;
  }
}
