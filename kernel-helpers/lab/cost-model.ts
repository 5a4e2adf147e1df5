// How long would each mode take on a whole data set, on this machine? Measure the three kinds of work
// (a frozen forward pass, a training step through the top blocks, a training step through everything)
// and multiply by what each recipe does. Turns "2-3 hours vs a day" into computed numbers.
import * as os from "os";
import { Displayable, escapeHtml, Table } from "../display/display";
import { type Block, type CutLayer } from "../network/inception";
import { type Inception, loadInceptionV3 } from "../network/model";
import { formatDuration } from "../display/progress";
import { tf } from "../runtime/tf";
import { currentBuild, visibleGpu } from "../runtime/build";
import { inferenceGraphs } from "../runtime/graph";
import { classifierModels, Head } from "../train/classifier";
import { Optimizer, type OptimizerName } from "../train/optimizers";
import { blocksUpTo, type Mode, plan, RECIPES } from "../train/recipes";
import { blockFlops, headStep, networkStep, setTrainable } from "../train/phases";

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
  /** Images per second of a training step that trains every layer. */
  trainAll: number;
  unfreezeFrom: CutLayer;
  /** Floating-point operations per image of each kind of work (the model summary's, as training counts them). */
  flops: { forward: number; trainTop: number; trainAll: number };
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
  const layer = options.layer ?? inception.source.featureLayer;
  const head = new Head(classes, 0.2, seed);
  const models = classifierModels(inception, layer, head);
  const logitsModel = models.full.logitsModel;
  const x = tf.randomUniform([batchSize, inputSize, inputSize, 3], 0, 255);
  const y = tf.tensor1d(Array.from({ length: batchSize }, (_, i) => i % classes), "int32");
  const forwardSeconds = await timeSteps(async () => (await inception.features(x, { batchSize, layer })).dispose(), steps);
  // A run's other graphs, run here too so that a run of this shape afterwards records nothing: the
  // validation pass, and the head's step on features.
  const validation = inferenceGraphs(logitsModel);
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
    const trained = new Optimizer(optimizer, logitsModel.trainableWeights.map((w) => w.read() as tf.Variable), 1e-4);
    const step = networkStep(inception, logitsModel, firstTrained, trained, { classes, head });
    const seconds = await timeSteps(() => step.run(x, y), steps);
    step.dispose();
    trained.dispose();
    return seconds;
  };
  const all = await trainSeconds("stem");
  const top = await trainSeconds(unfreezeFrom);
  tf.dispose([x, y, ...head.variables(), ...logitsModel.weights.map((w) => w.read())]);
  const perBlock = blockFlops(inception);
  const sum = (blocks: string[]) => blocks.reduce((total, b) => total + (perBlock.get(b) ?? 0), 0);
  const forwardFlops = sum(blocksUpTo(layer));
  const flops = { forward: forwardFlops, trainTop: forwardFlops + 2 * sum(plan("fine-tune", layer, { unfreezeFrom }).trainedBlocks), trainAll: 3 * forwardFlops };
  const onGpu = currentBuild().device === "gpu";
  const device = onGpu ? (visibleGpu()?.name ?? "GPU") : `${os.cpus()[0]?.model.trim() ?? "CPU"} x ${os.availableParallelism()}`;
  return { inputSize, batchSize, forward: batchSize / forwardSeconds, validation: batchSize / validationSeconds, head: batchSize / headSeconds, trainTop: batchSize / top, trainAll: batchSize / all, unfreezeFrom, flops, device, onGpu };
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
  const trainRate = run.mode === "fine-tune" && run.unfreezeFrom && run.unfreezeFrom !== "all" ? t.trainTop : t.trainAll;
  const parts: Record<string, number> = {
    features: onFeatures && !run.featuresCached ? (run.trainImages + run.validationImages) / t.forward : 0,
    head: (headEpochs * run.trainImages) / t.head,
    training: network ? (run.epochs * run.trainImages) / trainRate : 0,
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

/** GPUs for estimates where none is measured: peak FP32 rate, and the TF32 tensor-core rate TensorFlow uses for convolutions on Ampere and later. */
export const GPUS = [
  { name: "NVIDIA T4", peakFlops: 8.1e12, tensorCore: false },
  { name: "NVIDIA A100", peakFlops: 156e12, tensorCore: true },
  { name: "NVIDIA H100 SXM", peakFlops: 495e12, tensorCore: true },
];
/**
 * Assumed share of a GPU's peak an Inception-v3 training step reaches in TensorFlow: 30 % of FP32 without
 * tensor cores, 15 % of TF32 with them (published Inception-v3 training rates correspond to about these).
 */
export const GPU_UTILISATION = { fp32: 0.3, tensorCore: 0.15 };

/** This CPU's peak, assumed: 32 FP32 operations per cycle per core (two 256-bit fused multiply-add units). */
function cpuPeakFlops(): number {
  const mhz = os.cpus()[0]?.speed || 2000;
  return os.availableParallelism() * mhz * 1e6 * 32;
}

export class CostModel extends Displayable {
  readonly rows: { mode: string; work: string; seconds: number; flops: number }[];
  /** Each recipe on each of GPUS, estimated from its operations (where no GPU was measured). */
  readonly gpuEstimates: { name: string; seconds: number[] }[];
  /** Share of this machine's peak that its training step reached (CPU: peak assumed, see cpuPeakFlops). */
  readonly utilisation: number | null;

  constructor(
    readonly throughput: Throughput,
    readonly recipe: Recipe = FLOWERS_RECIPE,
    /** Seconds of one head-only step of `retrainBatch` images on cached features, measured or estimated. */
    headStepSeconds = 0.002,
  ) {
    super();
    const t = throughput;
    const r = recipe;
    const train = Math.round(r.images * r.trainFraction);
    this.rows = [
      {
        mode: "retrain the final layer",
        work: `${r.images} images forward once (${t.forward.toFixed(1)}/s), then ${r.retrainSteps} head steps of ${r.retrainBatch} on cached features`,
        seconds: r.images / t.forward + r.retrainSteps * headStepSeconds,
        flops: r.images * t.flops.forward,
      },
      {
        mode: `fine-tune from ${t.unfreezeFrom}`,
        work: `${r.fineTuneImages} training image passes at ${t.trainTop.toFixed(2)}/s`,
        seconds: r.fineTuneImages / t.trainTop,
        flops: r.fineTuneImages * t.flops.trainTop,
      },
      { mode: "fine-tune all", work: `${r.fineTuneImages} training image passes at ${t.trainAll.toFixed(2)}/s`, seconds: r.fineTuneImages / t.trainAll, flops: r.fineTuneImages * t.flops.trainAll },
      { mode: "train from scratch", work: `${r.scratchEpochs} epochs x ${train} images at ${t.trainAll.toFixed(2)}/s`, seconds: (r.scratchEpochs * train) / t.trainAll, flops: r.scratchEpochs * train * t.flops.trainAll },
    ];
    this.gpuEstimates = t.onGpu ? [] : GPUS.map((gpu) => ({ name: gpu.name, seconds: this.rows.map((row) => row.flops / (gpu.peakFlops * (gpu.tensorCore ? GPU_UTILISATION.tensorCore : GPU_UTILISATION.fp32))) }));
    this.utilisation = t.onGpu ? null : (t.trainAll * t.flops.trainAll) / cpuPeakFlops();
  }

  table(): Table {
    const t = this.throughput;
    const measured = `${t.device} (measured)`;
    return new Table(
      ["mode", "work", measured, "x retrain", ...this.gpuEstimates.map((g) => `${g.name} (estimate)`)],
      this.rows.map((row, i) => [row.mode, row.work, formatDuration(row.seconds), Number((row.seconds / this.rows[0].seconds).toFixed(1)), ...this.gpuEstimates.map((g) => formatDuration(g.seconds[i]))]),
      `Predicted for ${this.recipe.images} images at ${t.inputSize}x${t.inputSize} (throughput measured with batch ${t.batchSize})`,
    );
  }

  /** How the GPU columns were estimated, and how this machine compares, in one sentence. */
  assumptions(): string {
    if (this.utilisation === null) return `Measured on ${this.throughput.device}.`;
    const achieved = (this.throughput.trainAll * this.throughput.flops.trainAll) / 1e9;
    return (
      `GPU columns: the recipe's operations (${(this.throughput.flops.trainAll / 1e9).toFixed(1)} GFLOP per training image) at an assumed ${GPU_UTILISATION.fp32 * 100} % of the FP32 peak ` +
      `(T4) or ${GPU_UTILISATION.tensorCore * 100} % of the TF32 tensor-core peak (A100, H100). This machine's training step reached ${achieved.toFixed(0)} GFLOP/s, ` +
      `${(this.utilisation * 100).toFixed(0)} % of its assumed peak (32 FP32 operations per cycle and core).`
    );
  }

  toText(): string {
    return `${this.table().toText()}\n${this.assumptions()}`;
  }

  toHTML(): string {
    return `${this.table().toHTML()}<p><small>${escapeHtml(this.assumptions())}</small></p>`;
  }
}
