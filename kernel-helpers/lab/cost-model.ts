// How long would each mode take on a whole data set, on this machine? Measure the three kinds of work
// (a frozen forward pass, a training step through the top blocks, a training step through everything)
// and multiply by what each recipe does. Turns "2-3 hours vs a day" into computed numbers.
import { Displayable, Table } from "../display/display";
import { type Block, type CutLayer } from "../network/inception";
import { loadInceptionV3 } from "../network/model";
import { formatDuration } from "../display/progress";
import { tf } from "../runtime/tf";
import { Optimizer } from "../train/optimizers";
import { networkStep, setTrainable } from "../train/phases";

export interface Throughput {
  inputSize: number;
  batchSize: number;
  /** Images per second through the frozen network to the pooled features (bottleneck extraction). */
  forward: number;
  /** Images per second of a training step that trains the blocks from `unfreezeFrom` up. */
  trainTop: number;
  /** Images per second of a training step that trains every layer. */
  trainAll: number;
  unfreezeFrom: CutLayer;
}

async function timeSteps(step: () => unknown, steps: number): Promise<number> {
  // Warm-up: the first call records the graph and runs it once; kernels finish building on the next run.
  for (let i = 0; i < 2; i++) await step();
  const started = performance.now();
  for (let i = 0; i < steps; i++) await step();
  return (performance.now() - started) / 1000 / steps;
}

/**
 * Measures throughput on this machine with random weights (speed does not depend on their values),
 * at the given input size. A few steps each after two warm-up steps: seconds at 75 px, a minute at 299.
 */
export async function measureThroughput(options: { inputSize?: number; batchSize?: number; steps?: number; unfreezeFrom?: CutLayer; classes?: number } = {}): Promise<Throughput> {
  const { inputSize = 299, batchSize = 8, steps = 3, unfreezeFrom = "mixed7", classes = 5 } = options;
  const inception = await loadInceptionV3({ weights: null, inputSize, seed: 1 });
  const input = inception.model.inputs[0];
  const pooled = tf.layers.globalAveragePooling2d({}).apply(inception.model.outputs[0]) as tf.SymbolicTensor;
  const logits = tf.layers.dense({ units: classes }).apply(pooled) as tf.SymbolicTensor;
  const model = tf.model({ inputs: input, outputs: logits });
  const x = tf.randomUniform([batchSize, inputSize, inputSize, 3], 0, 255);
  const y = tf.tensor1d(Array.from({ length: batchSize }, (_, i) => i % classes), "int32");
  const forwardSeconds = await timeSteps(async () => (await inception.features(x, { batchSize })).dispose(), steps);
  // The training step the modes take: frozen bottom outside the tape, then loss and update on the rest.
  const trainSeconds = async (firstTrained: Block) => {
    setTrainable(inception, firstTrained);
    const optimizer = new Optimizer("sgd", model.trainableWeights.map((w) => w.read() as tf.Variable), 1e-3);
    const step = networkStep(inception, model, firstTrained, optimizer, { classes });
    const seconds = await timeSteps(() => step.run(x, y), steps);
    step.dispose();
    optimizer.dispose();
    return seconds;
  };
  const all = await trainSeconds("stem");
  const top = await trainSeconds(unfreezeFrom);
  tf.dispose([x, y, ...model.weights.map((w) => w.read())]);
  return { inputSize, batchSize, forward: batchSize / forwardSeconds, trainTop: batchSize / top, trainAll: batchSize / all, unfreezeFrom };
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

export class CostModel extends Displayable {
  readonly rows: { mode: string; work: string; seconds: number }[];

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
      },
      {
        mode: `fine-tune from ${t.unfreezeFrom}`,
        work: `${r.fineTuneImages} training image passes at ${t.trainTop.toFixed(2)}/s`,
        seconds: r.fineTuneImages / t.trainTop,
      },
      { mode: "fine-tune all", work: `${r.fineTuneImages} training image passes at ${t.trainAll.toFixed(2)}/s`, seconds: r.fineTuneImages / t.trainAll },
      { mode: "train from scratch", work: `${r.scratchEpochs} epochs x ${train} images at ${t.trainAll.toFixed(2)}/s`, seconds: (r.scratchEpochs * train) / t.trainAll },
    ];
  }

  table(): Table {
    return new Table(
      ["mode", "work", "predicted time", "x retrain"],
      this.rows.map((row) => [row.mode, row.work, formatDuration(row.seconds), Number((row.seconds / this.rows[0].seconds).toFixed(1))]),
      `Predicted on this machine for ${this.recipe.images} images at ${this.throughput.inputSize}x${this.throughput.inputSize} (throughput measured with batch ${this.throughput.batchSize})`,
    );
  }

  toText(): string {
    return this.table().toText();
  }

  toHTML(): string {
    return this.table().toHTML();
  }
}
