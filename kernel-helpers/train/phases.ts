// The phases a training call is made of: the head trained on features (cached bottlenecks, or
// computed per step from distorted images), and the network trained on images, split at the last
// frozen block so the frozen part stays outside the gradient tape.
import { distort, hasDistortions } from "../data/augment";
import { BottleneckCache, type BottleneckStats } from "../data/bottlenecks";
import { type Block, BLOCKS, type CutLayer } from "../network/inception";
import type { Inception } from "../network/model";
import { type ImageFolder, seededRandom, shuffleInPlace } from "../data/image-folder";
import type { Mode, Resolved } from "./options";
import { tf } from "../runtime/tf";
import { inferenceGraphs } from "../runtime/graph";
import { lossAndAccuracy, type LabelledBatch, type Phase } from "./loop";

/** Forward FLOPs per image of each block (from the model summary). */
export function blockFlops(inception: Inception): Map<string, number> {
  return new Map(inception.summary().blocks.map((b) => [b.block, b.gflops * 1e9]));
}

export function blocksUpTo(layer: CutLayer) {
  return BLOCKS.slice(0, BLOCKS.indexOf(layer) + 1);
}

export interface Setup {
  mode: Mode;
  o: Resolved;
  data: ImageFolder;
  classes: number;
}

interface PlanStep {
  layer: tf.layers.Layer;
  inputs: number[];
  outputs: number[];
}

/** The layers of `model` that compute its output from `start`, in order, as steps over tensor ids. */
function planFrom(model: tf.LayersModel, start: tf.SymbolicTensor): PlanStep[] {
  const known = new Set([start.id]);
  const steps: PlanStep[] = [];
  for (const layer of model.layers) {
    // A shared layer has several nodes (the head is applied to features and to the network): take
    // the ones whose inputs are known.
    for (const node of layer.inboundNodes) {
      const inputs = node.inputTensors.map((t) => t.id);
      const outputs = node.outputTensors.map((t) => t.id);
      if (inputs.length === 0 || !inputs.every((id) => known.has(id)) || outputs.some((id) => known.has(id))) continue;
      steps.push({ layer, inputs, outputs });
      outputs.forEach((id) => known.add(id));
    }
  }
  if (!known.has(model.outputs[0].id)) throw new Error(`The model's output does not depend on ${start.name} alone.`);
  return steps;
}

/**
 * Runs a plan on real tensors, disposing each intermediate as soon as its last reader has run. In a
 * training step this lowers the peak: tfjs would keep every intermediate until the forward pass ends,
 * while the gradient tape holds its own references to what the gradients need.
 */
function runPlan(steps: PlanStep[], startId: number, x: tf.Tensor, outputId: number, training: boolean): tf.Tensor {
  const readers = new Map<number, number>();
  for (const step of steps) for (const id of step.inputs) readers.set(id, (readers.get(id) ?? 0) + 1);
  const values = new Map<number, tf.Tensor>([[startId, x]]);
  for (const step of steps) {
    const inputs = step.inputs.map((id) => values.get(id)!);
    const result = step.layer.apply(inputs.length === 1 ? inputs[0] : inputs, { training }) as tf.Tensor | tf.Tensor[];
    [result].flat().forEach((t, i) => values.set(step.outputs[i], t));
    for (const id of step.inputs) {
      const left = readers.get(id)! - 1;
      readers.set(id, left);
      if (left === 0 && id !== startId && id !== outputId) values.get(id)!.dispose();
    }
  }
  return values.get(outputId)!;
}

/**
 * A classifier's forward pass for training, split at the last frozen block: `prepare` runs the frozen
 * bottom once per batch outside the gradient tape (so the tape neither records it nor keeps its
 * activations), `logits` runs the rest. With nothing frozen, `prepare` passes images through. With
 * `graph`, `prepare` runs as a TensorFlow graph per batch shape; `dispose` frees those.
 */
export function splitForward(inception: Inception, logitsModel: tf.LayersModel, firstTrainedBlock: Block, graph = true) {
  const from = BLOCKS.indexOf(firstTrainedBlock);
  // Every block reads only the previous block's output: the stem's last pooling, or mixedN's concatenation.
  const boundary =
    from <= 0 ? logitsModel.inputs[0] : ((BLOCKS[from - 1] === "stem" ? inception.model.getLayer("max_pooling2d_2") : inception.model.getLayer(BLOCKS[from - 1])).output as tf.SymbolicTensor);
  const bottom = from <= 0 ? null : tf.model({ inputs: logitsModel.inputs, outputs: boundary });
  const top = planFrom(logitsModel, boundary);
  const output = logitsModel.outputs[0].id;
  const frozen = bottom && inferenceGraphs(bottom, graph);
  return {
    prepare: (images: tf.Tensor) => (frozen ? frozen.run([images])[0] : images),
    logits: (x: tf.Tensor, training: boolean) => runPlan(top, boundary.id, x, output, training) as tf.Tensor2D,
    dispose: () => frozen?.dispose(),
  };
}

/** One epoch of training images, shuffled and, with distortions on, distorted; the caller disposes them. */
async function* trainingImages(s: Setup, size: number, epoch: number, random: () => number) {
  const distortions = hasDistortions(s.o.distortions) ? s.o.distortions : null;
  for await (const batch of s.data.batches("train", { size, batchSize: s.o.batchSize, shuffle: true, seed: s.o.seed + epoch })) {
    if (!distortions) {
      yield batch;
      continue;
    }
    const images = distort(batch.images, distortions, random);
    batch.images.dispose();
    yield { ...batch, images };
  }
}

export function imagePhase(
  name: string,
  s: Setup,
  logitsModel: tf.LayersModel,
  optimizer: tf.Optimizer,
  epochs: number,
  inputSize: number,
  flopsPerImage: number,
  forward: ReturnType<typeof splitForward>,
): Phase {
  const random = seededRandom(s.o.seed + 17);
  const trainCount = s.data.files("train").length;
  const validationLogits = inferenceGraphs(logitsModel, s.o.graph);
  return {
    name,
    epochs,
    optimizer,
    variables: logitsModel.trainableWeights.map((w) => w.read() as tf.Variable),
    stepsPerEpoch: Math.ceil(trainCount / s.o.batchSize),
    flopsPerImage,
    async *batches(epoch) {
      for await (const batch of trainingImages(s, inputSize, epoch, random)) {
        const x = forward.prepare(batch.images);
        if (x !== batch.images) batch.images.dispose();
        yield { x, y: batch.labels };
      }
    },
    logits: forward.logits,
    dispose: () => {
      forward.dispose();
      validationLogits.dispose();
    },
    async validate() {
      let loss = 0;
      let correct = 0;
      let count = 0;
      for await (const batch of s.data.batches("validation", { size: inputSize, batchSize: Math.max(s.o.batchSize, 32) })) {
        const n = batch.images.shape[0];
        const result = tf.tidy(() => lossAndAccuracy(validationLogits.run([batch.images])[0] as tf.Tensor2D, batch.labels, s.classes));
        loss += (await result.loss.data())[0] * n;
        correct += (await result.accuracy.data())[0] * n;
        count += n;
        tf.dispose([batch.images, batch.labels, result.loss, result.accuracy]);
      }
      return count ? { loss: loss / count, accuracy: correct / count } : null;
    },
  };
}

interface FeatureSet {
  x: tf.Tensor2D;
  y: tf.Tensor1D;
}

/**
 * A phase that trains only the head on features. Without distortions the features are the cached
 * bottlenecks (retrain.py); with them, each step distorts the images and runs the frozen network.
 */
export function headPhase(name: string, s: Setup, inception: Inception, layer: CutLayer, headLogits: tf.LayersModel, optimizer: tf.Optimizer, epochs: number, features: { train: FeatureSet; validation: FeatureSet }): Phase {
  const distortions = hasDistortions(s.o.distortions) ? s.o.distortions : null;
  const random = seededRandom(s.o.seed + 17);
  const n = distortions ? s.data.files("train").length : features.train.x.shape[0];
  const width = headLogits.inputs[0].shape[1]!;
  const frozen = blockFlops(inception);
  const baseFlops = blocksUpTo(layer).reduce((sum, b) => sum + (frozen.get(b) ?? 0), 0);
  return {
    name,
    epochs,
    optimizer,
    variables: headLogits.trainableWeights.map((w) => w.read() as tf.Variable),
    stepsPerEpoch: Math.ceil(n / s.o.batchSize),
    flopsPerImage: 3 * 2 * width * s.classes + (distortions ? baseFlops : 0),
    async *batches(epoch) {
      if (distortions) {
        for await (const batch of trainingImages(s, inception.inputSize, epoch, random)) {
          yield { x: await inception.features(batch.images, { layer }), y: batch.labels };
          batch.images.dispose();
        }
        return;
      }
      const order = shuffleInPlace(Array.from({ length: n }, (_, i) => i), s.o.seed + epoch);
      for (let i = 0; i < n; i += s.o.batchSize) {
        const take = tf.tensor1d(order.slice(i, i + s.o.batchSize), "int32");
        const batch: LabelledBatch = { x: tf.gather(features.train.x, take), y: tf.gather(features.train.y, take) as tf.Tensor1D };
        take.dispose();
        yield batch;
      }
    },
    logits: (x, training) => headLogits.apply(x, { training }) as tf.Tensor2D,
    async validate() {
      const v = features.validation;
      if (v.x.shape[0] === 0) return null;
      const result = tf.tidy(() => lossAndAccuracy(headLogits.apply(v.x, { training: false }) as tf.Tensor2D, v.y, s.classes));
      const out = { loss: (await result.loss.data())[0], accuracy: (await result.accuracy.data())[0] };
      tf.dispose([result.loss, result.accuracy]);
      return out;
    },
  };
}

/** Cached bottlenecks of the given splits (train, validation), with their labels; other splits are empty. */
export async function bottlenecks(inception: Inception, layer: CutLayer, data: ImageFolder, cache: BottleneckCache, splits: ("train" | "validation")[]) {
  const stats: BottleneckStats = { computed: 0, cached: 0, seconds: 0 };
  const width = (inception.model.getLayer(layer).outputShape as number[])[3];
  const sets: Record<"train" | "validation", FeatureSet> = {
    train: { x: tf.zeros([0, width]), y: tf.zeros([0], "int32") },
    validation: { x: tf.zeros([0, width]), y: tf.zeros([0], "int32") },
  };
  for (const split of splits) {
    tf.dispose([sets[split].x, sets[split].y]);
    const examples = data.examples(split);
    const result = await cache.get(examples.map((e) => e.path), { title: `${split} features (${layer})` });
    result.failed.forEach((f) => data.reportBadFile(f.path, f.reason));
    const labelOf = new Map(examples.map((e) => [e.path, e.label]));
    sets[split] = { x: result.features, y: tf.tensor1d(result.files.map((f) => labelOf.get(f)!), "int32") };
    stats.computed += result.stats.computed;
    stats.cached += result.stats.cached;
    stats.seconds += result.stats.seconds;
  }
  return { sets, stats };
}

/** A scorer for retrained classifiers: cached features through the head, instead of the whole network. */
export function cachedScorer(cache: BottleneckCache, headModel: tf.LayersModel) {
  return async (files: string[]) => {
    const result = await cache.get(files, { title: "features" });
    const output = headModel.predict(result.features) as tf.Tensor2D;
    const probabilities = (await output.array()) as number[][];
    tf.dispose([output, result.features]);
    return { files: result.files, probabilities };
  };
}
