// Inception-v3 exactly as Keras `applications.InceptionV3` builds it (same layers, order, shapes and
// Keras-2 layer names), so any Keras weight file maps onto it by name. Like the Keras file, the whole
// network comes from one conv2dBn helper. Images enter as RGB pixels 0..255; the first layer scales
// them the way the weights expect.
import * as os from "os";
import type { SymbolicTensor } from "@tensorflow/tfjs-node";
import { BatchNorm } from "./batch-norm";
import { tf } from "../runtime/tf";
import { OptionError } from "../util/options";

/** How pixels 0..255 are scaled: "inception" to [-1, 1] (Keras, ImageNet), "unit" to [0, 1]. */
export type Preprocessing = "inception" | "unit";
/** Each scaling as x * scale + offset (the Keras files that carry a Rescaling layer are matched against these). */
export const SCALING: Record<Preprocessing, { scale: number; offset: number }> = {
  inception: { scale: 1 / 127.5, offset: -1 },
  unit: { scale: 1 / 255, offset: 0 },
};

/** Blocks in network order; "top" is the classifier, absent without a top. */
export const BLOCKS = ["stem", ...Array.from({ length: 11 }, (_, i) => `mixed${i}`), "top"] as const;
export type Block = (typeof BLOCKS)[number];
/** Cut points for features: the output of each mixed block. */
export type CutLayer = Exclude<Block, "stem" | "top">;
export const CUT_LAYERS = BLOCKS.filter((b): b is CutLayer => b !== "stem" && b !== "top");

export const MIN_INPUT_SIZE = 75;

/**
 * The largest input side this machine can hold a training step of one image at: at 299 px a step holds about
 * 0.37 GB per image (peak RSS 5.9 GiB at batch 16, shared/notes/native-tensorflow.md), growing with the pixels;
 * half the memory is the bound (1,700 px with 24 GB). Past it libvips and TensorFlow fail with raw errors.
 */
export function maxInputSize(memoryBytes = os.totalmem()): number {
  return Math.max(MIN_INPUT_SIZE, Math.floor(299 * Math.sqrt(memoryBytes / 2 / 0.37e9)));
}

export interface ArchitectureOptions {
  /** Side of the square input image; 299 as trained, at least 75. */
  inputSize?: number;
  /** Adds global average pooling and a softmax classifier named `predictions`. */
  includeTop?: boolean;
  /** Classes of the top (1000 for ImageNet). */
  classes?: number;
  preprocessing?: Preprocessing;
  /**
   * Draw random initial weights (default). False leaves them zero, for a network whose weights are set
   * right after (loading, copying): drawing 22M random numbers in JavaScript is most of a build's time.
   */
  randomWeights?: boolean;
}

export interface Architecture {
  model: tf.LayersModel;
  /** Which block each layer belongs to (layer name -> block). */
  blockOf: Map<string, Block>;
}

export function buildInceptionV3(options: ArchitectureOptions = {}): Architecture {
  const { inputSize = 299, includeTop = false, classes = 1000, preprocessing = "inception", randomWeights = true } = options;
  const initializer = randomWeights ? {} : { kernelInitializer: "zeros" as const };
  if (!Number.isInteger(inputSize) || inputSize < MIN_INPUT_SIZE || inputSize > maxInputSize()) {
    throw new OptionError("inputSize", `inputSize is ${inputSize}: Inception-v3 needs a whole number of at least ${MIN_INPUT_SIZE} pixels (299 as trained), and this machine's memory holds at most ${maxInputSize()}.`);
  }
  const counters = new Map<string, number>();
  const autoName = (kind: string) => {
    const n = (counters.get(kind) ?? 0) + 1;
    counters.set(kind, n);
    return `${kind}_${n}`;
  };
  const blockOf = new Map<string, Block>();
  let block: Block = "stem";
  const add = (layer: tf.layers.Layer, input: SymbolicTensor | SymbolicTensor[]) => {
    blockOf.set(layer.name, block);
    return layer.apply(input) as SymbolicTensor;
  };

  const conv2dBn = (x: SymbolicTensor, filters: number, rows: number, cols: number, strides = 1, padding: "same" | "valid" = "same") => {
    x = add(tf.layers.conv2d({ filters, kernelSize: [rows, cols], strides, padding, useBias: false, name: autoName("conv2d"), ...initializer }), x);
    x = add(new BatchNorm({ name: autoName("batch_normalization") }), x);
    return add(tf.layers.activation({ activation: "relu", name: autoName("activation") }), x);
  };
  const maxPool = (x: SymbolicTensor) => add(tf.layers.maxPooling2d({ poolSize: 3, strides: 2, name: autoName("max_pooling2d") }), x);
  const avgPool = (x: SymbolicTensor) =>
    add(tf.layers.averagePooling2d({ poolSize: 3, strides: 1, padding: "same", name: autoName("average_pooling2d") }), x);
  const concat = (xs: SymbolicTensor[], name?: string) => add(tf.layers.concatenate({ axis: -1, name: name ?? autoName("concatenate") }), xs);
  const mixed = (index: number, branches: () => SymbolicTensor[]) => {
    block = `mixed${index}` as Block;
    return concat(branches(), `mixed${index}`);
  };

  const input = tf.input({ shape: [inputSize, inputSize, 3], name: "input_1" });
  let x = add(tf.layers.rescaling({ ...SCALING[preprocessing], name: "preprocess" }), input);
  x = conv2dBn(x, 32, 3, 3, 2, "valid");
  x = conv2dBn(x, 32, 3, 3, 1, "valid");
  x = conv2dBn(x, 64, 3, 3);
  x = maxPool(x);
  x = conv2dBn(x, 80, 1, 1, 1, "valid");
  x = conv2dBn(x, 192, 3, 3, 1, "valid");
  x = maxPool(x);

  // mixed0-2: 35 x 35 x 256, 288, 288
  for (const [i, poolFilters] of [32, 64, 64].entries()) {
    const from: SymbolicTensor = x;
    x = mixed(i, () => [
      conv2dBn(from, 64, 1, 1),
      conv2dBn(conv2dBn(from, 48, 1, 1), 64, 5, 5),
      conv2dBn(conv2dBn(conv2dBn(from, 64, 1, 1), 96, 3, 3), 96, 3, 3),
      conv2dBn(avgPool(from), poolFilters, 1, 1),
    ]);
  }

  // mixed3: 17 x 17 x 768
  {
    const from: SymbolicTensor = x;
    x = mixed(3, () => [
      conv2dBn(from, 384, 3, 3, 2, "valid"),
      conv2dBn(conv2dBn(conv2dBn(from, 64, 1, 1), 96, 3, 3), 96, 3, 3, 2, "valid"),
      maxPool(from),
    ]);
  }

  // mixed4-7: 17 x 17 x 768, factorised 7x7 convolutions
  for (const [i, width] of [128, 160, 160, 192].entries()) {
    const from: SymbolicTensor = x;
    x = mixed(4 + i, () => {
      const branch1x1 = conv2dBn(from, 192, 1, 1);
      let branch7x7 = conv2dBn(from, width, 1, 1);
      branch7x7 = conv2dBn(branch7x7, width, 1, 7);
      branch7x7 = conv2dBn(branch7x7, 192, 7, 1);
      let branch7x7dbl = conv2dBn(from, width, 1, 1);
      branch7x7dbl = conv2dBn(branch7x7dbl, width, 7, 1);
      branch7x7dbl = conv2dBn(branch7x7dbl, width, 1, 7);
      branch7x7dbl = conv2dBn(branch7x7dbl, width, 7, 1);
      branch7x7dbl = conv2dBn(branch7x7dbl, 192, 1, 7);
      return [branch1x1, branch7x7, branch7x7dbl, conv2dBn(avgPool(from), 192, 1, 1)];
    });
  }

  // mixed8: 8 x 8 x 1280
  {
    const from: SymbolicTensor = x;
    x = mixed(8, () => {
      const branch3x3 = conv2dBn(conv2dBn(from, 192, 1, 1), 320, 3, 3, 2, "valid");
      let branch7x7x3 = conv2dBn(from, 192, 1, 1);
      branch7x7x3 = conv2dBn(branch7x7x3, 192, 1, 7);
      branch7x7x3 = conv2dBn(branch7x7x3, 192, 7, 1);
      branch7x7x3 = conv2dBn(branch7x7x3, 192, 3, 3, 2, "valid");
      return [branch3x3, branch7x7x3, maxPool(from)];
    });
  }

  // mixed9-10: 8 x 8 x 2048
  for (const i of [0, 1]) {
    const from: SymbolicTensor = x;
    x = mixed(9 + i, () => {
      const branch1x1 = conv2dBn(from, 320, 1, 1);
      const branch3x3Stem = conv2dBn(from, 384, 1, 1);
      const branch3x3 = concat([conv2dBn(branch3x3Stem, 384, 1, 3), conv2dBn(branch3x3Stem, 384, 3, 1)], `mixed9_${i}`);
      const branch3x3dblStem = conv2dBn(conv2dBn(from, 448, 1, 1), 384, 3, 3);
      const branch3x3dbl = concat([conv2dBn(branch3x3dblStem, 384, 1, 3), conv2dBn(branch3x3dblStem, 384, 3, 1)]);
      return [branch1x1, branch3x3, branch3x3dbl, conv2dBn(avgPool(from), 192, 1, 1)];
    });
  }

  if (includeTop) {
    block = "top";
    x = add(tf.layers.globalAveragePooling2d({ name: "avg_pool" }), x);
    x = add(tf.layers.dense({ units: classes, activation: "softmax", name: "predictions", ...initializer }), x);
  }
  return { model: tf.model({ inputs: input, outputs: x, name: "inception_v3" }), blockOf };
}

/** Multiply-adds x 2 of one forward pass per image, by layer (convolutions and dense layers). */
export function layerFlops(layer: tf.layers.Layer): number {
  const out = layer.outputShape as number[];
  const config = layer.getConfig();
  if (layer.getClassName() === "Conv2D") {
    const [kh, kw] = config.kernelSize as number[];
    const inChannels = (layer.inputSpec?.[0]?.axes?.[-1] as number | undefined) ?? (layer.input as SymbolicTensor).shape[3]!;
    return 2 * out[1] * out[2] * kh * kw * inChannels * out[3];
  }
  if (layer.getClassName() === "Dense") return 2 * (layer.input as SymbolicTensor).shape[1]! * out[1];
  return 0;
}
