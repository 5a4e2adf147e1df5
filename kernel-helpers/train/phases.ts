// The phases a training call is made of: the head trained on features (cached bottlenecks, or computed
// per step from distorted images), and the network trained on images, split at the last frozen block so
// the frozen part stays outside the gradient tape. `networkStep` is the one place where a step through
// the network is built; the cost model and the bench time that same step.
import { distort, hasDistortions } from "../data/augment";
import type { BottleneckCache, BottleneckStats } from "../data/bottlenecks";
import type { ImageFolder } from "../data/image-folder";
import { type Block, BLOCKS, type CutLayer } from "../network/inception";
import type { Inception } from "../network/model";
import type { ActivationStore } from "../data/activations";
import type { ImageFile } from "../data/image-folder";
import { decodeBatch } from "../network/decode";
import { CompiledFunction, inferenceGraphs, modelStructure } from "../runtime/graph";
import type { Precision } from "../runtime/precision";
import { tf } from "../runtime/tf";
import type { InterruptFlag } from "../util/interrupt";
import { seededRandom, shuffleInPlace } from "../util/random";
import type { Head } from "./classifier";
import type { LabelledBatch, Phase } from "./loop";
import { Optimizer } from "./optimizers";
import type { Resolved } from "./options";
import { blocksUpTo } from "./recipes";
import { lossAndAccuracy, TrainingStep } from "./step";

export interface TensorBatch extends LabelledBatch {
  x: tf.Tensor;
  y: tf.Tensor1D;
  /** x holds activations at the frozen bottom's boundary, not images. */
  prepared?: boolean;
  /** Those activations were read from the frozen-bottom cache, not computed for this batch. */
  fromStore?: boolean;
}

/** What every phase of one training call shares. */
export interface Setup {
  settings: Resolved;
  /** The precision of the network's work in this run (the head's step on features stays float32). */
  precision: Precision;
  data: ImageFolder;
  classes: number;
  head: Head;
}

/** Forward FLOPs per image of each block (from the model summary). */
export function blockFlops(inception: Inception): Map<string, number> {
  return new Map(inception.summary().blocks.map((b) => [b.block, b.gflops * 1e9]));
}

/** Loss scaling where gradients need it: float16's range ends at 65,504 and below 6e-8 (Keras' mixed_float16 does the same). */
export const lossScalingFor = (precision: Precision) => (precision === "float16" ? {} : null);

/** Makes exactly the blocks from `firstTrained` up (and the head) trainable; null freezes the network. */
export function setTrainable(inception: Inception, firstTrained: Block | null): void {
  const trained = firstTrained === null ? [] : BLOCKS.slice(BLOCKS.indexOf(firstTrained));
  for (const layer of inception.model.layers) {
    const block = inception.blockOf.get(layer.name);
    if (block) layer.trainable = trained.includes(block);
  }
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
export function splitForward(inception: Inception, logitsModel: tf.LayersModel, firstTrainedBlock: Block, graph = true, precision: Precision = "float32") {
  const from = BLOCKS.indexOf(firstTrainedBlock);
  // Every block reads only the previous block's output: the stem's last pooling, or mixedN's concatenation.
  const boundary =
    from <= 0 ? logitsModel.inputs[0] : ((BLOCKS[from - 1] === "stem" ? inception.model.getLayer("max_pooling2d_2") : inception.model.getLayer(BLOCKS[from - 1])).output as tf.SymbolicTensor);
  const bottom = from <= 0 ? null : tf.model({ inputs: logitsModel.inputs, outputs: boundary });
  const top = planFrom(logitsModel, boundary);
  const output = logitsModel.outputs[0].id;
  const frozen = bottom && inferenceGraphs(bottom, graph, precision);
  const logits = (x: tf.Tensor, training: boolean) => runPlan(top, boundary.id, x, output, training) as tf.Tensor2D;
  // Inference from the boundary up, for validation on cached frozen-bottom activations.
  const topInference = new CompiledFunction(([x]) => [logits(x, false)], {
    enabled: graph,
    precision,
    variables: () => logitsModel.layers.flatMap((l) => l.weights).map((w) => w.read() as tf.Variable),
    key: () => JSON.stringify({ function: "inference from", model: modelStructure(logitsModel, false), from: firstTrainedBlock }),
  });
  return {
    prepare: (images: tf.Tensor) => (frozen ? frozen.run([images])[0] : images),
    logits,
    /** Logits in inference from activations at the boundary (what `prepare` gives). */
    inferFrom: (x: tf.Tensor) => topInference.run([x])[0] as tf.Tensor2D,
    /** The shape of one image's activations at the boundary, [height, width, channels]. */
    boundaryShape: boundary.shape.slice(1) as number[],
    dispose: () => {
      frozen?.dispose();
      topInference.dispose();
    },
  };
}

/**
 * One training step through the network from `firstTrained` up: the frozen bottom outside the tape,
 * then loss and update of the rest. `run` takes images; the caller owns them.
 */
export function networkStep(inception: Inception, logitsModel: tf.LayersModel, firstTrained: Block, optimizer: Optimizer, options: { classes: number; labelSmoothing?: number; graph?: boolean; precision?: Precision; head?: Head }) {
  const forward = splitForward(inception, logitsModel, firstTrained, options.graph, options.precision);
  const reads = () => [...logitsModel.nonTrainableWeights.map((w) => w.read() as tf.Variable), ...(options.head?.variables() ?? [])];
  const describe = () => ({ step: "network", model: modelStructure(logitsModel), firstTrained });
  const step = new TrainingStep(forward.logits, optimizer, { ...options, reads, describe });
  return {
    step,
    forward,
    run(images: tf.Tensor, labels: tf.Tensor1D) {
      const x = forward.prepare(images);
      try {
        return step.run(x, labels);
      } finally {
        if (x !== images) x.dispose();
      }
    },
    /** A step on activations the frozen bottom gave before (the frozen-bottom cache). */
    runPrepared: (x: tf.Tensor, labels: tf.Tensor1D) => step.run(x, labels),
    dispose() {
      step.dispose();
      forward.dispose();
    },
  };
}

/** One epoch of training images, shuffled and, with distortions on, distorted; the caller disposes them. */
async function* trainingImages(setup: Setup, size: number, epoch: number, random: () => number) {
  const distortions = hasDistortions(setup.settings.distortions) ? setup.settings.distortions : null;
  for await (const batch of setup.data.batches("train", { size, batchSize: setup.settings.batchSize, shuffle: true, seed: setup.settings.seed + epoch })) {
    if (!distortions) {
      yield batch;
      continue;
    }
    const images = distort(batch.images, distortions, random);
    batch.images.dispose();
    yield { ...batch, images };
  }
}

/**
 * A phase from its parts; its learning rate is its optimizer's. The optimizer belongs to the run, which
 * keeps it (with its moments) for the next call that trains the same variables.
 */
function phase(parts: Omit<Phase<TensorBatch>, "learningRate"> & { optimizer: Optimizer }): Phase<TensorBatch> {
  const { optimizer, ...rest } = parts;
  return {
    ...rest,
    get learningRate() {
      return optimizer.learningRate;
    },
    set learningRate(value: number) {
      optimizer.learningRate = value;
    },
  };
}

/** Trains the network from `firstTrained` up, with the head, on images. */
type Decoded = ReturnType<typeof decodeBatch>;

/**
 * Activations at the frozen bottom's boundary for a batch of examples: from the store where all are there,
 * else decoded (`decoding`, started ahead), run through the frozen bottom and stored. Null when none decodes.
 */
async function boundaryBatch(setup: Setup, store: ActivationStore, forward: ReturnType<typeof splitForward>, examples: ImageFile[], size: number, decoding: Decoded | null): Promise<TensorBatch | null> {
  const files = examples.map((e) => e.path);
  const stored = decoding ? null : store.get(files);
  if (stored) return { x: tf.tensor(stored, [files.length, ...forward.boundaryShape]), y: tf.tensor1d(examples.map((e) => e.label), "int32"), prepared: true, fromStore: true };
  const { images, decoded, failed } = await (decoding ?? decodeBatch(files, size));
  failed.forEach(({ index, reason }) => setup.data.reportBadFile(files[index], reason));
  if (decoded.length === 0) {
    images.dispose();
    return null;
  }
  const x = forward.prepare(images);
  images.dispose();
  const values = (await x.data()) as Float32Array;
  const per = store.valuesPerImage;
  decoded.forEach((index, row) => store.put(files[index], values.subarray(row * per, (row + 1) * per)));
  return { x, y: tf.tensor1d(decoded.map((i) => examples[i].label), "int32"), prepared: true };
}

/**
 * Boundary activations of `examples` in batches, in order (shuffled by `seed` when given, as
 * ImageFolder.batches shuffles): the next batch's images decode while this one computes.
 */
async function* boundaryBatches(setup: Setup, store: ActivationStore, forward: ReturnType<typeof splitForward>, examples: ImageFile[], batchSize: number, size: number, seed?: number) {
  if (seed !== undefined) shuffleInPlace(examples, seed);
  const chunks = Array.from({ length: Math.ceil(examples.length / batchSize) }, (_, i) => examples.slice(i * batchSize, (i + 1) * batchSize));
  const decode = (chunk: ImageFile[] | undefined) => (chunk && !store.has(chunk.map((e) => e.path)) ? decodeBatch(chunk.map((e) => e.path), size) : null);
  let pending = decode(chunks[0]);
  try {
    for (let i = 0; i < chunks.length; i++) {
      const current = pending;
      pending = decode(chunks[i + 1]);
      const batch = await boundaryBatch(setup, store, forward, chunks[i], size, current);
      if (batch) yield batch;
    }
  } finally {
    // Stopped early (an interrupt, a time budget): the decode started ahead is not needed.
    void pending?.then((result) => result.images.dispose());
  }
}

/**
 * Trains the network from `firstTrained` up, with the head, on images. With a frozen-bottom `store`
 * (no distortions, something frozen), the frozen blocks run once per image, in the first epoch: later epochs
 * and validation read their activations back, in the same order, so they train exactly as without it.
 */
export function imagePhase(
  name: string,
  setup: Setup,
  inception: Inception,
  logitsModel: tf.LayersModel,
  firstTrained: Block,
  optimizer: Optimizer,
  epochs: number,
  /** Operations per training image, and with the frozen blocks' output read back instead of computed. */
  flops: { perImage: number; cached: number },
  store: ActivationStore | null = null,
): Phase<TensorBatch> {
  const random = seededRandom(setup.settings.seed + 17);
  const trainCount = setup.data.files("train").length;
  const step = networkStep(inception, logitsModel, firstTrained, optimizer, { classes: setup.classes, labelSmoothing: setup.settings.labelSmoothing, graph: setup.settings.graph, precision: setup.precision, head: setup.head });
  const validationLogits = store ? null : inferenceGraphs(logitsModel, setup.settings.graph, setup.precision);
  const size = inception.inputSize;
  // What the last step computed: its batch's frozen blocks too, unless their output came from the store.
  let lastFlops = flops.perImage;
  const trained = phase({
    name,
    epochs,
    stepsPerEpoch: Math.ceil(trainCount / setup.settings.batchSize),
    flopsPerImage: flops.perImage,
    optimizer,
    train: (batch) => {
      lastFlops = batch.fromStore ? flops.cached : flops.perImage;
      return batch.prepared ? step.runPrepared(batch.x, batch.y) : step.run(batch.x, batch.y);
    },
    async *batches(epoch) {
      if (!store) {
        for await (const batch of trainingImages(setup, size, epoch, random)) yield { x: batch.images, y: batch.labels };
        return;
      }
      yield* boundaryBatches(setup, store, step.forward, setup.data.examples("train"), setup.settings.batchSize, size, setup.settings.seed + epoch);
    },
    async validate() {
      let loss = 0;
      let correct = 0;
      let count = 0;
      const batchSize = Math.max(setup.settings.batchSize, 32);
      const add = async (logits: () => tf.Tensor2D, labels: tf.Tensor1D) => {
        const n = labels.shape[0];
        const result = tf.tidy(() => lossAndAccuracy(logits(), labels, setup.classes));
        loss += (await result.loss.data())[0] * n;
        correct += (await result.accuracy.data())[0] * n;
        count += n;
        tf.dispose([result.loss, result.accuracy]);
      };
      if (store) {
        for await (const batch of boundaryBatches(setup, store, step.forward, setup.data.examples("validation"), batchSize, size)) {
          await add(() => step.forward.inferFrom(batch.x), batch.y);
          tf.dispose([batch.x, batch.y]);
        }
      } else {
        for await (const batch of setup.data.batches("validation", { size, batchSize })) {
          await add(() => validationLogits!.run([batch.images])[0] as tf.Tensor2D, batch.labels);
          tf.dispose([batch.images, batch.labels]);
        }
      }
      return count ? { loss: loss / count, accuracy: correct / count } : null;
    },
    dispose() {
      step.dispose();
      validationLogits?.dispose();
    },
  });
  // A step on kept frozen-bottom output computes the trained blocks alone (the loop reads this after each step).
  return Object.defineProperty(trained, "flopsPerImage", { get: () => lastFlops });
}

export interface FeatureSet {
  x: tf.Tensor2D;
  y: tf.Tensor1D;
}

/** One training step of the head alone, on features (`headLogits` takes them as input). */
export function headStep(headLogits: tf.LayersModel, head: Head, optimizer: Optimizer, options: { classes: number; labelSmoothing?: number; graph?: boolean }): TrainingStep {
  return new TrainingStep((x, training) => headLogits.apply(x, { training }) as tf.Tensor2D, optimizer, {
    ...options,
    reads: () => head.variables(),
    describe: () => ({ step: "head", model: modelStructure(headLogits) }),
  });
}

/**
 * A phase that trains only the head on features. Without distortions the features are the cached
 * bottlenecks (retrain.py); with them, each step distorts the images and runs the frozen network.
 */
export function headPhase(name: string, setup: Setup, inception: Inception, layer: CutLayer, headLogits: tf.LayersModel, optimizer: Optimizer, epochs: number, features: { train: FeatureSet; validation: FeatureSet }): Phase<TensorBatch> {
  const distortions = hasDistortions(setup.settings.distortions) ? setup.settings.distortions : null;
  const random = seededRandom(setup.settings.seed + 17);
  const n = distortions ? setup.data.files("train").length : features.train.x.shape[0];
  const width = headLogits.inputs[0].shape[1]!;
  const frozen = blockFlops(inception);
  const baseFlops = blocksUpTo(layer).reduce((sum, b) => sum + (frozen.get(b) ?? 0), 0);
  const step = headStep(headLogits, setup.head, optimizer, { classes: setup.classes, labelSmoothing: setup.settings.labelSmoothing, graph: setup.settings.graph });
  return phase({
    name,
    epochs,
    stepsPerEpoch: Math.ceil(n / setup.settings.batchSize),
    flopsPerImage: 3 * 2 * width * setup.classes + (distortions ? baseFlops : 0),
    optimizer,
    train: (batch) => step.run(batch.x, batch.y),
    async *batches(epoch) {
      if (distortions) {
        for await (const batch of trainingImages(setup, inception.inputSize, epoch, random)) {
          yield { x: await inception.features(batch.images, { layer, graph: setup.settings.graph, precision: setup.precision }), y: batch.labels };
          batch.images.dispose();
        }
        return;
      }
      const order = shuffleInPlace(Array.from({ length: n }, (_, i) => i), setup.settings.seed + epoch);
      for (let i = 0; i < n; i += setup.settings.batchSize) {
        const take = tf.tensor1d(order.slice(i, i + setup.settings.batchSize), "int32");
        const batch = { x: tf.gather(features.train.x, take), y: tf.gather(features.train.y, take) as tf.Tensor1D };
        take.dispose();
        yield batch;
      }
    },
    async validate() {
      const v = features.validation;
      if (v.x.shape[0] === 0) return null;
      const result = tf.tidy(() => lossAndAccuracy(headLogits.apply(v.x, { training: false }) as tf.Tensor2D, v.y, setup.classes));
      const out = { loss: (await result.loss.data())[0], accuracy: (await result.accuracy.data())[0] };
      tf.dispose([result.loss, result.accuracy]);
      return out;
    },
    dispose: () => step.dispose(),
  });
}

/** Cached bottlenecks of the given splits (train, validation), with their labels; other splits are empty. */
export async function bottlenecks(data: ImageFolder, cache: BottleneckCache | null, splits: ("train" | "validation")[], interrupt?: InterruptFlag) {
  const stats: BottleneckStats = { computed: 0, cached: 0, repaired: 0, seconds: 0 };
  const empty = () => ({ x: tf.zeros([0, cache?.width ?? 0]) as tf.Tensor2D, y: tf.zeros([0], "int32") as tf.Tensor1D });
  const sets: Record<"train" | "validation", FeatureSet> = { train: empty(), validation: empty() };
  try {
    for (const split of splits) {
      const examples = data.examples(split);
      const result = await cache!.get(examples.map((e) => e.path), { title: `${split} features (${cache!.layer})`, interrupt });
      result.failed.forEach((f) => data.reportBadFile(f.path, f.reason));
      const labelOf = new Map(examples.map((e) => [e.path, e.label]));
      tf.dispose([sets[split].x, sets[split].y]);
      sets[split] = { x: result.features, y: tf.tensor1d(result.files.map((f) => labelOf.get(f)!), "int32") };
      stats.computed += result.stats.computed;
      stats.cached += result.stats.cached;
      stats.repaired += result.stats.repaired;
      stats.seconds += result.stats.seconds;
    }
  } catch (error) {
    tf.dispose([sets.train.x, sets.train.y, sets.validation.x, sets.validation.y]);
    throw error;
  }
  return { sets, stats };
}

/** A scorer for retrained classifiers: cached features through the head, instead of the whole network. */
export function cachedScorer(cache: BottleneckCache, headModel: tf.LayersModel) {
  return async (files: string[]) => {
    const result = await cache.get(files, { title: "features" });
    if (result.files.length === 0) {
      result.features.dispose();
      return { files: [], probabilities: [] };
    }
    const output = headModel.predict(result.features) as tf.Tensor2D;
    const probabilities = (await output.array()) as number[][];
    tf.dispose([output, result.features]);
    return { files: result.files, probabilities };
  };
}
