// How long would each mode take on a whole data set, on this machine? Measure the kinds of work (a frozen
// forward pass, a training step through the top blocks, a training step through everything) and multiply by
// what each recipe does. Turns "2-3 hours vs a day" into computed numbers. GPUs are priced from their published,
// measured Inception-v3 training throughput (GPUS: each with its source and year), not from a share of peak.
import * as os from "os";
import { Displayable, escapeHtml, Table } from "../display/display";
import { formatDuration } from "../display/format";
import { type Block, type CutLayer, CUT_LAYERS } from "../network/inception";
import type { Inception } from "../network/model";
import { currentBuild, visibleGpu } from "../runtime/build";
import { inferenceGraphs } from "../runtime/graph";
import { type Precision, type PrecisionChoice, PRECISION_OPTIONS, type PrecisionOption, resolvePrecision } from "../runtime/precision";
import { tf } from "../runtime/tf";
import { checkOptions, OptionError, rule } from "../util/options";
import { classifierModels, Head } from "../train/classifier/classifier";
import { Optimizer, OPTIMIZERS, type OptimizerName } from "../train/loop/optimizers";
import { networkStep } from "../train/modes/forward";
import { headStep } from "../train/modes/head-phase";
import { blockFlops, lossScalingFor, setTrainable } from "../train/modes/phase";
import { blocksUpTo, type Mode, MODES, plan, RECIPES } from "../train/modes/recipes";

export interface Throughput {
  inputSize: number;
  batchSize: number;
  /** Where the head attached: the work measured is the network up to here. */
  layer: CutLayer;
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
  /** Images per second of a training step that trains every layer up to `layer`. */
  trainAll: number;
  unfreezeFrom: CutLayer;
  /** Floating-point operations per image of each kind of work (the model summary's, as training counts them). */
  flops: { forward: number; trainTop: number; trainTopCached: number; trainAll: number };
  /** The precision the network's work ran at, and why. */
  precision: PrecisionChoice;
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
  /** Image side to measure at (default the network's). */
  inputSize?: number;
  batchSize?: number;
  steps?: number;
  unfreezeFrom?: CutLayer;
  /** Where the head attaches (default: the network's recommended cut; "mixed10" for the whole network). */
  layer?: CutLayer;
  classes?: number;
  optimizer?: OptimizerName;
  seed?: number;
  /** The precision to measure at (default: the network's, "auto"): measure the precision that will run. */
  precision?: PrecisionOption;
}
const THROUGHPUT_RULES = {
  inputSize: rule.whole(75),
  batchSize: rule.whole(1),
  steps: rule.whole(1),
  unfreezeFrom: rule.oneOf(CUT_LAYERS),
  layer: rule.oneOf(CUT_LAYERS),
  classes: rule.whole(2),
  optimizer: rule.oneOf(OPTIMIZERS),
  seed: rule.whole(0),
  precision: rule.oneOf(PRECISION_OPTIONS),
};

/**
 * Measures throughput on this machine for the steps a run of `inception` takes: its architecture (pixel
 * scaling, cut), at its input size or `inputSize`, the same head, optimizer and split, so a run of the same
 * shape afterwards finds these recorded graphs. It measures on a copy of `inception` (at `inputSize` if given:
 * the weights do not depend on the image side), which stays as it is. A few steps each after two warm-up steps:
 * seconds at 75 px, a minute at 299.
 */
export async function measureThroughput(inception: Inception, options: ThroughputOptions = {}): Promise<Throughput> {
  checkOptions(options, THROUGHPUT_RULES, "measureThroughput");
  const { batchSize = 8, steps = 3, unfreezeFrom = "mixed7", classes = 5, optimizer = "adam", seed = 0 } = options;
  const inputSize = options.inputSize ?? inception.inputSize;
  const layer = options.layer ?? inception.source.layer;
  if (CUT_LAYERS.indexOf(unfreezeFrom) > CUT_LAYERS.indexOf(layer)) throw new OptionError("unfreezeFrom", `unfreezeFrom: "${unfreezeFrom}" lies above the cut layer ${layer}: nothing of the network would train.`);
  const choice = resolvePrecision(options.precision ?? inception.precisionOption);
  // A copy (the same structure as a run's, so the run finds the graphs recorded here), at the size asked.
  const network = await inception.clone({ inputSize });
  const precision = choice.precision;
  const head = new Head(classes, 0.2, seed);
  const models = classifierModels(network, layer, head);
  const logitsModel = models.full.logitsModel;
  const x = tf.randomUniform([batchSize, inputSize, inputSize, 3], 0, 255);
  const y = tf.tensor1d(Array.from({ length: batchSize }, (_, i) => i % classes), "int32");
  const forwardSeconds = await timeSteps(async () => (await network.features(x, { batchSize, layer, precision })).dispose(), steps);
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
    setTrainable(network, firstTrained);
    const trained = new Optimizer(optimizer, logitsModel.trainableWeights.map((w) => w.read() as tf.Variable), 1e-4, {}, lossScalingFor(precision));
    const step = networkStep(network, logitsModel, firstTrained, trained, { classes, head, precision });
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
  const perBlock = blockFlops(network);
  tf.dispose([x, y, ...head.variables(), ...network.model.weights.map((w) => w.read()), ...logitsModel.weights.map((w) => w.read())]);
  const sum = (blocks: string[]) => blocks.reduce((total, b) => total + (perBlock.get(b) ?? 0), 0);
  const forwardFlops = sum(blocksUpTo(layer));
  const trained = sum(plan("fine-tune", layer, { unfreezeFrom }).trainedBlocks);
  const flops = { forward: forwardFlops, trainTop: forwardFlops + 2 * trained, trainTopCached: 3 * trained, trainAll: 3 * forwardFlops };
  const onGpu = currentBuild().device === "gpu";
  const device = onGpu ? (visibleGpu()?.name ?? "GPU") : `${os.cpus()[0]?.model.trim() ?? "CPU"} x ${os.availableParallelism()}`;
  return { inputSize, batchSize, layer, forward: batchSize / forwardSeconds, validation: batchSize / validationSeconds, head: batchSize / headSeconds, trainTop: batchSize / top, trainTopCached: batchSize / topCached, trainAll: batchSize / all, unfreezeFrom, flops, device, onGpu, precision: choice };
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
  /**
   * Images per second this machine decodes the run's files at its input size, where measured: decoding overlaps
   * the network's work (batches are decoded ahead), so a pass over images takes the longer of the two.
   */
  decodePerSecond?: number;
}
const RUN_SHAPE_RULES = {
  mode: rule.oneOf(MODES),
  unfreezeFrom: rule.oneOf(["all", ...CUT_LAYERS]),
  trainImages: rule.whole(0),
  validationImages: rule.whole(0),
  epochs: rule.whole(0),
  warmupEpochs: rule.whole(0),
  featuresCached: rule.boolean(),
  frozenBottomCache: rule.boolean(),
  decodePerSecond: rule.positive(),
};

/**
 * Predicted seconds of one run on this machine: features computed once (where the mode uses them), the
 * head's epochs on them (a retraining's, a fine-tune's warm-up), then per network epoch the training
 * images through the step and the validation images forward.
 */
export function predictRun(throughput: Throughput, run: RunShape): { seconds: number; parts: Record<string, number> } {
  checkOptions(run, RUN_SHAPE_RULES, "predictRun");
  for (const name of ["mode", "trainImages", "validationImages", "epochs"] as const) if (run[name] === undefined) throw new OptionError(name, `predictRun: give ${name}.`);
  const t = throughput;
  if (run.mode === "fine-tune" && run.unfreezeFrom && run.unfreezeFrom !== "all" && run.unfreezeFrom !== t.unfreezeFrom) {
    throw new OptionError("unfreezeFrom", `predictRun: unfreezeFrom "${run.unfreezeFrom}" was not measured; measure with measureThroughput(inception, { unfreezeFrom: "${run.unfreezeFrom}" }).`);
  }
  const warmupEpochs = run.warmupEpochs ?? RECIPES[run.mode].defaults.warmupEpochs;
  const onFeatures = RECIPES[run.mode].headOnFeatures(warmupEpochs);
  const network = run.mode !== "retrain-final-layer";
  const headEpochs = !onFeatures ? 0 : network ? warmupEpochs : run.epochs;
  const top = run.mode === "fine-tune" && run.unfreezeFrom && run.unfreezeFrom !== "all";
  const kept = top && run.frozenBottomCache !== false;
  // A pass that reads image files takes the longer of computing and decoding (they overlap).
  const fromFiles = (images: number, rate: number) => Math.max(images / rate, run.decodePerSecond ? images / run.decodePerSecond : 0);
  // With the frozen-bottom cache the first epoch runs the frozen blocks, the later ones only the trained, on kept
  // activations (no files read): validation then runs the trained blocks forward, a third of their training step.
  const laterEpochs = Math.max(run.epochs - 1, 0);
  const parts: Record<string, number> = {
    features: onFeatures && !run.featuresCached ? fromFiles(run.trainImages + run.validationImages, t.forward) : 0,
    head: (headEpochs * run.trainImages) / t.head,
    training: network && run.epochs > 0 ? fromFiles(run.trainImages, top ? t.trainTop : t.trainAll) + (kept ? (laterEpochs * run.trainImages) / t.trainTopCached : laterEpochs * fromFiles(run.trainImages, top ? t.trainTop : t.trainAll)) : 0,
    validation: network && run.epochs > 0 ? fromFiles(run.validationImages, t.validation) + (kept ? (laterEpochs * run.validationImages) / (3 * t.trainTopCached) : laterEpochs * fromFiles(run.validationImages, t.validation)) : 0,
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

/** A published, measured training throughput of Inception-v3 at 299 px on one GPU, with where it comes from. */
export interface GpuRate {
  gpu: string;
  /** "FP32", "TF32" or "FP16" (mixed precision with float16 tensor cores). */
  precision: "FP32" | "TF32" | "FP16";
  imagesPerSecond: number;
  /** Who measured, where it was published, and when. */
  source: string;
  /** How the number was obtained when it is not a direct Inception-v3 measurement. */
  conversion?: string;
}

/**
 * Measured Inception-v3 training throughput on one GPU, as published (tf_cnn_benchmarks, synthetic or real
 * ImageNet-size images at 299 px). Where no Inception-v3 number was published (H100), ResNet-50's is converted
 * by the ratio of the two measured on the same GPUs in the same benchmark: Inception-v3 ran at 0.59-0.67 of
 * ResNet-50's images per second (K80 and P100 in TensorFlow's 2017 page; V100 and A100 in Lambda's results).
 * No T4 training figure was found, so the T4 is not priced.
 */
export const GPUS: GpuRate[] = [
  { gpu: "NVIDIA K80", precision: "FP32", imagesPerSecond: 29.5, source: "TensorFlow's benchmarks page (tf_cnn_benchmarks, real data, batch 32, one K80 of a GCE VM), May 2017" },
  { gpu: "NVIDIA P100", precision: "FP32", imagesPerSecond: 142, source: "TensorFlow's benchmarks page (tf_cnn_benchmarks, real data, batch 64, one P100 of a DGX-1), May 2017" },
  { gpu: "NVIDIA V100", precision: "FP32", imagesPerSecond: 273, source: "Lambda Labs' TensorFlow benchmark results (tf_cnn_benchmarks, V100 32 GB; lambda-tensorflow-benchmark, tf-train-throughput-fp32.csv), about 2020" },
  { gpu: "NVIDIA V100", precision: "FP16", imagesPerSecond: 771, source: "Lambda Labs' TensorFlow benchmark results (tf_cnn_benchmarks, V100 32 GB; tf-train-throughput-fp16.csv), about 2020" },
  { gpu: "NVIDIA A100", precision: "TF32", imagesPerSecond: 627, source: "Lambda Labs' TensorFlow benchmark results (tf_cnn_benchmarks, A100 40 GB PCIe; tf-train-throughput-fp32.csv, TF32 on Ampere), about 2021" },
  { gpu: "NVIDIA A100", precision: "FP16", imagesPerSecond: 1222, source: "Lambda Labs' TensorFlow benchmark results (tf_cnn_benchmarks, A100 40 GB PCIe, batch 360; tf-train-throughput-fp16.csv), about 2021" },
  {
    gpu: "NVIDIA H100 SXM",
    precision: "FP16",
    imagesPerSecond: Math.round(2616 * 0.6),
    source: "Lambda Labs' PyTorch benchmark results (ResNet-50, H100 SXM5: 2,616 images/s in fp16; lambdal/deeplearning-benchmark), about 2023",
    conversion: "ResNet-50's 2,616 images/s times 0.60, Inception-v3's share of ResNet-50's fp16 rate on V100 and A100 in the same lab's results",
  },
];

/** The published rates to price a run at `precision` with: the GPUs' float32 (FP32 or TF32) figures, or their float16 ones. */
export function gpuRatesFor(precision: Precision): GpuRate[] {
  return GPUS.filter((g) => (precision === "float32" ? g.precision !== "FP16" : g.precision === "FP16"));
}

/**
 * A forward pass (feature extraction) is priced at 3x a GPU's training rate: a training step computes the
 * forward pass and a backward pass of about twice its operations, as this library counts them (flops.trainAll
 * is 3x flops.forward). An assumption, stated where it is used: the sources measure training only.
 */
export const FORWARD_PER_TRAINING = 3;

export interface CostModelOptions {
  recipe?: Recipe;
  /** Seconds of one head-only step of the recipe's retraining batch on cached features, measured or estimated. */
  headStepSeconds?: number;
  /** The same work measured at float32, for a column of what it would have cost without lower precision. */
  float32?: Throughput;
}
const COST_MODEL_RULES = { recipe: rule.object(), headStepSeconds: rule.positive(), float32: rule.object() };

export interface CostRow {
  mode: string;
  work: string;
  seconds: number;
  /** Image passes through the network: in training steps, and forward only (features). */
  trainingImages: number;
  forwardImages: number;
  /** At float32, where that was measured too. */
  float32Seconds?: number;
}

/** The recipe's four runs priced from one throughput measurement of the whole network. */
function priceRecipe(t: Throughput, r: Recipe, headStepSeconds: number): CostRow[] {
  const train = Math.round(r.images * r.trainFraction);
  return [
    {
      mode: "retrain the final layer (retrain.py)",
      work: `${r.images} images forward once (${t.forward.toFixed(1)}/s), then ${r.retrainSteps} head steps of ${r.retrainBatch} on cached features`,
      seconds: r.images / t.forward + r.retrainSteps * headStepSeconds,
      trainingImages: 0,
      forwardImages: r.images,
    },
    {
      mode: `fine-tune ${t.unfreezeFrom} to ${t.layer}`,
      work: `a first epoch of ${train} images through every block (${t.trainTop.toFixed(2)}/s; the frozen blocks' output is kept), then ${r.fineTuneImages - train} passes through the trained blocks alone on it at ${t.trainTopCached.toFixed(2)}/s`,
      seconds: train / t.trainTop + (r.fineTuneImages - train) / t.trainTopCached,
      trainingImages: r.fineTuneImages,
      forwardImages: 0,
    },
    { mode: `fine-tune everything (stem to ${t.layer})`, work: `${r.fineTuneImages} training image passes at ${t.trainAll.toFixed(2)}/s`, seconds: r.fineTuneImages / t.trainAll, trainingImages: r.fineTuneImages, forwardImages: 0 },
    { mode: `train from scratch (stem to ${t.layer})`, work: `${r.scratchEpochs} epochs x ${train} images at ${t.trainAll.toFixed(2)}/s`, seconds: (r.scratchEpochs * train) / t.trainAll, trainingImages: r.scratchEpochs * train, forwardImages: 0 },
  ];
}

/** Seconds on a GPU from its published training rate: training passes at that rate, forward passes at 3x it. */
export function gpuSeconds(rate: GpuRate, work: { trainingImages: number; forwardImages: number }): number {
  return work.trainingImages / rate.imagesPerSecond + work.forwardImages / (FORWARD_PER_TRAINING * rate.imagesPerSecond);
}

export class CostModel extends Displayable {
  readonly recipe: Recipe;
  readonly rows: CostRow[];
  /** Each recipe on each GPU of GPUS at the precision measured here (where no GPU was measured), with the rate's source. */
  readonly gpuEstimates: { rate: GpuRate; seconds: number[] }[];

  constructor(
    readonly throughput: Throughput,
    options: CostModelOptions = {},
  ) {
    super();
    checkOptions(options, COST_MODEL_RULES, "CostModel");
    const t = throughput;
    if (t.layer !== "mixed10") throw new OptionError("throughput", `CostModel: the throughput was measured up to ${t.layer}, but the recipes (retrain.py, TensorFlow's fine-tuning, training from scratch) use the whole network: measure with measureThroughput(inception, { layer: "mixed10" }).`);
    this.recipe = options.recipe ?? FLOWERS_RECIPE;
    checkOptions(this.recipe, { images: rule.whole(1), trainFraction: rule.between(0, 1), retrainSteps: rule.whole(0), retrainBatch: rule.whole(1), fineTuneImages: rule.whole(0), scratchEpochs: rule.whole(0) }, "recipe");
    const headStepSeconds = options.headStepSeconds ?? this.recipe.retrainBatch / t.head;
    const float32 = options.float32 && priceRecipe(options.float32, this.recipe, headStepSeconds);
    this.rows = priceRecipe(t, this.recipe, headStepSeconds).map((row, i) => ({ ...row, ...(float32 ? { float32Seconds: float32[i].seconds } : {}) }));
    this.gpuEstimates = t.onGpu ? [] : gpuRatesFor(t.precision.precision).map((rate) => ({ rate, seconds: this.rows.map((row) => gpuSeconds(rate, row) + (row.forwardImages ? this.recipe.retrainSteps * headStepSeconds : 0)) }));
  }

  /** The estimate for a GPU by name at the precision measured here, if GPUS has it. */
  gpu(name: string): { rate: GpuRate; seconds: number[] } | undefined {
    return this.gpuEstimates.find((g) => g.rate.gpu === name);
  }

  table(): Table {
    const t = this.throughput;
    const float32 = this.rows[0].float32Seconds !== undefined && t.precision.precision !== "float32";
    return new Table(
      ["mode", "work", `${t.device}, ${t.precision.precision} (measured)`, "x retrain", ...(float32 ? ["at float32 (measured)"] : []), ...this.gpuEstimates.map((g) => `${g.rate.gpu}, ${g.rate.precision} (from published rate)`)],
      this.rows.map((row, i) => [
        row.mode,
        row.work,
        formatDuration(row.seconds),
        Number((row.seconds / this.rows[0].seconds).toFixed(1)),
        ...(float32 ? [formatDuration(row.float32Seconds!)] : []),
        ...this.gpuEstimates.map((g) => formatDuration(g.seconds[i])),
      ]),
      `Predicted for ${this.recipe.images} images at ${t.inputSize}x${t.inputSize}, the whole network (to ${t.layer}); throughput measured with batch ${t.batchSize}, ${t.precision.reason}`,
    );
  }

  /** What the GPU columns rest on, each rate with its source and year. */
  assumptions(): string {
    if (this.gpuEstimates.length === 0) return `Measured on ${this.throughput.device} at ${this.throughput.precision.precision}.`;
    const rates = this.gpuEstimates.map(({ rate }) => `${rate.gpu} ${rate.precision}: ${rate.imagesPerSecond} training images/s (${rate.source}${rate.conversion ? `; ${rate.conversion}` : ""})`);
    return (
      `GPU columns: each recipe's training image passes at the GPU's published, measured Inception-v3 training rate, and its forward passes at ${FORWARD_PER_TRAINING}x that rate ` +
      `(an assumption: a training step is about three forward passes of compute); retrain.py's head steps at this machine's measured time. Rates: ${rates.join("; ")}.`
    );
  }

  toText(): string {
    return `${this.table().toText()}\n${this.assumptions()}`;
  }

  toHTML(): string {
    return `${this.table().toHTML()}<p><small>${escapeHtml(this.assumptions())}</small></p>`;
  }
}
