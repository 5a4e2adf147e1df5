// Looking inside a trained classifier, to see what fine-tuning changed: how far each block's weights
// moved from the pretrained ones, the pooled features a trained network gives at its cut, and where in
// an image the evidence for a class lies (Grad-CAM at the cut layer).
import * as path from "path";
import { labelFromFolder, type Split, SPLITS } from "../data/image-folder";
import { type Block, BLOCKS, type CutLayer } from "../network/inception";
import { decodeBatch, ImageDecodeError, thumbnail } from "../network/decode";
import { inferenceGraphs } from "../runtime/graph";
import { PRECISION_OPTIONS, type PrecisionOption, resolvePrecision } from "../runtime/precision";
import { checkOptions, OptionError, rule } from "../util/options";
import type { Inception } from "../network/model";
import { tf } from "../runtime/tf";
import { principalComponents } from "./pca";
import type { TrainingRun } from "../train/modes/run";

export interface BlockChange {
  block: Block;
  /** Learned weights of the block (convolution kernels, batch-norm offsets): what gradients train. */
  parameters: number;
  /** |after - before| / |before| over the block's learned weights, as a fraction (1: a change as large as the weights). */
  relativeChange: number;
  /** The same over its batch norms' moving statistics, which training updates from the data, not by gradients. */
  statisticsChange: number;
}

/** How far one run's network moved from the network it started from, block by block. */
export interface WeightChanges {
  mode: string;
  /** The blocks the run trained ("head" is the new classifier), as RunInfo says. */
  trainedBlocks: string[];
  blocks: BlockChange[];
}

const isStatistic = (variable: tf.LayerVariable) => /moving_(mean|variance)$/.test(variable.originalName);

/**
 * How far each block of each run's network moved from `before` (the network it started from): its learned
 * weights, and its batch norms' moving statistics apart. Frozen blocks give exactly 0; the new head has no
 * "before" and is left out. What plot.weightChange draws.
 */
export function weightChange(before: Inception, runs: TrainingRun | TrainingRun[]): WeightChanges[] {
  return [runs].flat().map((run) => {
    const sums = new Map<Block, { learned: [number, number]; statistics: [number, number]; parameters: number }>();
    tf.tidy(() => {
      for (const layer of before.model.layers) {
        const block = before.blockOf.get(layer.name);
        if (!block || layer.weights.length === 0 || !run.model.layers.some((l) => l.name === layer.name)) continue;
        const after = run.model.getLayer(layer.name).getWeights();
        const entry = sums.get(block) ?? { learned: [0, 0], statistics: [0, 0], parameters: 0 };
        layer.getWeights().forEach((w, i) => {
          const part = isStatistic(layer.weights[i]) ? entry.statistics : entry.learned;
          part[0] += tf.sum(tf.square(tf.sub(after[i], w))).dataSync()[0];
          part[1] += tf.sum(tf.square(w)).dataSync()[0];
          if (!isStatistic(layer.weights[i])) entry.parameters += w.size;
        });
        sums.set(block, entry);
      }
    });
    const ratio = ([difference, norm]: [number, number]) => Math.sqrt(difference) / Math.max(Math.sqrt(norm), 1e-12);
    const blocks = BLOCKS.filter((b) => sums.has(b)).map((block) => {
      const { learned, statistics, parameters } = sums.get(block)!;
      return { block, parameters, relativeChange: ratio(learned), statisticsChange: ratio(statistics) };
    });
    return { mode: run.mode, trainedBlocks: run.info.trainedBlocks, blocks };
  });
}

/** The layers of a classifier this library trained: cut layer, pooling ("features"), dropout, logits. */
function parts(run: TrainingRun) {
  const names = [run.info.layer, "features", "head_dropout", "logits"];
  const missing = names.filter((name) => !run.model.layers.some((l) => l.name === name));
  if (missing.length) throw new Error(`This classifier has no layer ${missing.join(", ")}: look inside works on classifiers this library trained.`);
  const [cut, pool, dropout, logits] = names.map((name) => run.model.getLayer(name));
  return { cut, pool, dropout, logits };
}

/**
 * The trained network's pooled features at its cut, for image files (as `inception.features` for the network
 * before), at `precision` (default the run's), as a graph.
 */
export async function runFeatures(run: TrainingRun, files: string[], options: { batchSize?: number; precision?: PrecisionOption } = {}): Promise<tf.Tensor2D> {
  checkOptions(options, { batchSize: rule.whole(1), precision: rule.oneOf(PRECISION_OPTIONS) }, "runFeatures");
  const { batchSize = 32 } = options;
  const precision = options.precision === undefined ? run.info.precision : resolvePrecision(options.precision);
  const { pool } = parts(run);
  const graph = inferenceGraphs(tf.model({ inputs: run.model.inputs, outputs: pool.output as tf.SymbolicTensor }), true, precision.precision);
  const chunks: tf.Tensor[] = [];
  try {
    for (let i = 0; i < files.length; i += batchSize) {
      const { images, failed } = await decodeBatch(files.slice(i, i + batchSize), run.info.inputSize);
      if (failed.length) {
        images.dispose();
        throw new ImageDecodeError(`cannot decode ${failed.map((f) => `${files[i + f.index]} (${f.reason})`).join(", ")}`);
      }
      chunks.push(graph.run([images])[0]);
      images.dispose();
    }
    return tf.concat(chunks) as tf.Tensor2D;
  } finally {
    tf.dispose(chunks);
    graph.dispose();
  }
}

export interface Heatmap {
  file: string;
  /** The class the map explains (the predicted one unless asked otherwise), and its probability. */
  explained: string;
  probability: number;
  predicted: string;
  /** Rows of values 0..1 on the cut layer's grid (17 x 17 at mixed7 for 299 px), top row first. */
  map: number[][];
  /** The share of the map's cells that hold half of its evidence (0.1: concentrated in a tenth of the image; 0.5: spread evenly). */
  spread: number;
}

/** The share of a map's cells that hold half of its total (the smallest such set: the largest cells first). */
export function halfMassShare(map: number[][]): number {
  const cells = map.flat().sort((a, b) => b - a);
  const total = cells.reduce((a, b) => a + b, 0);
  if (total <= 0) return 1;
  let sum = 0;
  for (const [i, value] of cells.entries()) {
    sum += value;
    if (sum >= total / 2) return (i + 1) / cells.length;
  }
  return 1;
}

const EXPLAIN_RULES = { explain: rule.text('give "predicted" or a class name.') };

/**
 * Grad-CAM (Selvaraju et al. 2017) at the cut layer: each feature map weighted by the mean gradient of
 * the class's logit over it, summed, negatives dropped, scaled to 0..1. With this library's head (global
 * pooling, then one dense layer) it equals the class activation map of Zhou et al. 2016.
 */
export async function heatmaps(run: TrainingRun, files: string[], options: { explain?: "predicted" | string } = {}): Promise<Heatmap[]> {
  checkOptions(options, EXPLAIN_RULES, "heatmaps");
  const { cut, pool, dropout, logits } = parts(run);
  const explain = options.explain ?? "predicted";
  if (explain !== "predicted" && !run.info.classes.includes(explain)) throw new OptionError("explain", `explain: "${explain}" is not a class of this classifier (${run.info.classes.join(", ")}).`);
  const toMaps = tf.model({ inputs: run.model.inputs, outputs: cut.output as tf.SymbolicTensor });
  const head = (maps: tf.Tensor) => logits.apply(dropout.apply(pool.apply(maps), { training: false }), { training: false }) as tf.Tensor2D;
  const { images, failed } = await decodeBatch(files, run.info.inputSize);
  if (failed.length) {
    images.dispose();
    throw new ImageDecodeError(`cannot decode ${failed.map((f) => `${files[f.index]} (${f.reason})`).join(", ")}`);
  }
  try {
    return tf.tidy(() => {
      const maps = toMaps.predict(images) as tf.Tensor4D;
      const scores = head(maps);
      const probabilities = tf.softmax(scores).arraySync() as number[][];
      const predicted = tf.argMax(scores, 1).arraySync() as number[];
      const target = explain === "predicted" ? predicted : predicted.map(() => run.info.classes.indexOf(explain));
      const pick = tf.oneHot(tf.tensor1d(target, "int32"), run.info.classes.length);
      const gradients = tf.grad((m: tf.Tensor) => tf.sum(tf.mul(head(m), pick)))(maps);
      const weights = tf.mean(gradients, [1, 2], true);
      const cam = tf.relu(tf.sum(tf.mul(weights, maps), 3));
      const scaled = tf.div(cam, tf.add(tf.max(cam, [1, 2], true), 1e-12)).arraySync() as number[][][];
      return files.map((file, i) => ({
        file,
        explained: run.info.classes[target[i]],
        probability: probabilities[i][target[i]],
        predicted: run.info.classes[predicted[i]],
        map: scaled[i],
        spread: halfMassShare(scaled[i]),
      }));
    });
  } finally {
    images.dispose();
  }
}

/**
 * How well features separate classes, with no training: each point goes to the class whose centroid
 * (computed without it) is nearest. 1 when classes form tight, apart clusters; near chance when mixed.
 */
export function centroidAccuracy(features: tf.Tensor2D, labels: number[]): number {
  return tf.tidy(() => {
    const classes = Math.max(...labels) + 1;
    const oneHot = tf.oneHot(tf.tensor1d(labels, "int32"), classes).toFloat() as tf.Tensor2D;
    const counts = tf.sum(oneHot, 0);
    const sums = tf.matMul(oneHot, features, true, false);
    // Each point's own class centroid without it: (sum - x) / (count - 1).
    const own = tf.div(tf.sub(tf.matMul(oneHot, sums), features), tf.expandDims(tf.sub(tf.matMul(oneHot, tf.expandDims(counts, 1)).squeeze([1]), 1), 1));
    const centroids = tf.div(sums, tf.expandDims(counts, 1));
    const distances = tf.sum(tf.square(tf.sub(tf.expandDims(features, 1), tf.expandDims(centroids, 0))), 2);
    const ownDistance = tf.sum(tf.square(tf.sub(features, own)), 1);
    const corrected = tf.add(tf.mul(distances, tf.sub(1, oneHot)), tf.mul(oneHot, tf.expandDims(ownDistance, 1)));
    const nearest = tf.argMin(corrected, 1);
    return tf.mean(tf.equal(nearest, tf.tensor1d(labels, "int32")).toFloat()).dataSync()[0];
  });
}

/** Grad-CAM of several classifiers over the same images, with the pictures to show them (plot.gradCam draws them). */
export interface GradCams {
  files: string[];
  /** Each image's class, as the data set spells it ("F mirrored" is the class "f mirrored"). */
  truths: string[];
  runs: { mode: string; heatmaps: Heatmap[]; images: string[] }[];
}

/** Grad-CAM heatmaps of each run over the same images, and each heatmap over its image as a small picture. */
export async function gradCam(runs: TrainingRun | TrainingRun[], files: string[], options: { explain?: "predicted" | string } = {}): Promise<GradCams> {
  checkOptions(options, EXPLAIN_RULES, "gradCam");
  const list = [runs].flat();
  const result: GradCams = { files, truths: files.map((file) => labelFromFolder(path.basename(path.dirname(file)))), runs: [] };
  for (const run of list) {
    const maps = await heatmaps(run, files, options);
    const images: string[] = [];
    for (const [i, h] of maps.entries()) images.push(await thumbnail(files[i], { heatmap: h.map }));
    result.runs.push({ mode: run.mode, heatmaps: maps, images });
  }
  return result;
}

/** The features of one split at a run's cut, before training (`before`) and after, on their first two principal components. */
export interface FeatureMaps {
  split: Split;
  layer: string;
  mode: string;
  classes: string[];
  files: string[];
  labels: number[];
  /** The precision both panels' features were computed at (the run's). */
  precision: string;
  /** Width of the features (768 at mixed7): the space `accuracy` is measured in. */
  dimensions: number;
  /**
   * Before, then after: each image's two coordinates on the panel's own first two principal components, and
   * the nearest-centroid accuracy of the features in all their dimensions and in the two shown.
   */
  panels: { points: number[][]; accuracy: number; accuracyShown: number }[];
}

/**
 * The pooled features of one split's images at the run's cut, from the network before training and from the
 * run's trained network, each on its first two principal components, with how well each separates the
 * classes without training (nearest centroid): what plot.featuresBeforeAfter draws.
 */
export async function featuresBeforeAfter(before: Inception, run: TrainingRun, options: { split?: Split } = {}): Promise<FeatureMaps> {
  checkOptions(options, { split: rule.oneOf(SPLITS) }, "featuresBeforeAfter");
  const split = options.split ?? "test";
  const examples = run.data.examples(split);
  const files = examples.map((e) => e.path);
  const labels = examples.map((e) => e.label);
  // Both at the run's precision, so the two panels differ by what training changed, not by how they were computed.
  const precision = run.info.precision.precision;
  const both = [await before.features(files, { layer: run.info.layer as CutLayer, precision }), await runFeatures(run, files, { precision })];
  try {
    const panels = both.map((features) => {
      const points = principalComponents(features);
      return { points, accuracy: centroidAccuracy(features, labels), accuracyShown: tf.tidy(() => centroidAccuracy(tf.tensor2d(points), labels)) };
    });
    return { split, layer: run.info.layer, mode: run.mode, classes: run.data.classes, files, labels, precision, dimensions: both[0].shape[1], panels };
  } finally {
    tf.dispose(both);
  }
}
