// The phase that trains the network from its first trained block up, with the head, on images. With the
// frozen-bottom cache (data/activations.ts) the frozen blocks run once per image, in the first epoch of a call,
// and later epochs and validation read their output back, found by each image's content read afresh in every
// call; without it (distortions, nothing frozen, op by op) every epoch runs the images through everything.
import { distort, hasDistortions } from "../../data/augment";
import type { ActivationStore } from "../../data/activations";
import type { ImageFile } from "../../data/image-folder";
import type { Block } from "../../network/inception";
import type { Inception } from "../../network/model";
import { decodeBatch } from "../../network/decode";
import { inferenceGraphs } from "../../runtime/graph";
import { tf } from "../../runtime/tf";
import { contentHash } from "../../util/content-cache";
import { seededRandom, shuffleInPlace } from "../../util/random";
import type { Phase } from "../loop/loop";
import type { Optimizer } from "../loop/optimizers";
import { lossAndAccuracy } from "../loop/step";
import { networkStep, type splitForward } from "./forward";
import { phase, type Setup, type TensorBatch } from "./phase";

/** One epoch of training images, shuffled and, with distortions on, distorted; the caller disposes them. */
export async function* trainingImages(setup: Setup, inputSize: number, epoch: number, random: () => number) {
  const distortions = hasDistortions(setup.settings.distortions) ? setup.settings.distortions : null;
  for await (const batch of setup.data.batches("train", { inputSize, batchSize: setup.settings.batchSize, shuffle: true, seed: setup.settings.seed + epoch })) {
    if (!distortions) {
      yield batch;
      continue;
    }
    const images = distort(batch.images, distortions, random);
    batch.images.dispose();
    yield { ...batch, images };
  }
}

type Decoded = ReturnType<typeof decodeBatch>;

/** An example with its image's content hash as read in this call (null: the file cannot be read now). */
interface Hashed {
  example: ImageFile;
  hash: string | null;
}

/** The content hash of each example's file, read now: what the frozen-bottom cache finds activations by. */
function hashed(examples: ImageFile[]): Hashed[] {
  return examples.map((example) => {
    try {
      return { example, hash: contentHash(example.path) };
    } catch {
      return { example, hash: null };
    }
  });
}

/**
 * Activations at the frozen bottom's boundary for a batch of examples: from the store where all are there,
 * else decoded (`decoding`, started ahead), run through the frozen bottom and stored. Null when none decodes.
 */
async function boundaryBatch(setup: Setup, store: ActivationStore, forward: ReturnType<typeof splitForward>, items: Hashed[], inputSize: number, decoding: Decoded | null): Promise<TensorBatch | null> {
  const files = items.map((item) => item.example.path);
  const stored = decoding ? null : store.get(items.map((item) => item.hash));
  if (stored) return { x: tf.tensor(stored, [files.length, ...forward.boundaryShape]), y: tf.tensor1d(items.map((item) => item.example.label), "int32"), prepared: true, fromStore: true };
  const { images, decoded, failed } = await (decoding ?? decodeBatch(files, inputSize));
  failed.forEach(({ index, reason }) => setup.data.reportBadFile(files[index], reason));
  if (decoded.length === 0) {
    images.dispose();
    return null;
  }
  const x = forward.prepare(images);
  images.dispose();
  const values = (await x.data()) as Float32Array;
  const per = store.valuesPerImage;
  decoded.forEach((index, row) => {
    const hash = items[index].hash;
    if (hash !== null) store.put(hash, values.subarray(row * per, (row + 1) * per));
  });
  return { x, y: tf.tensor1d(decoded.map((i) => items[i].example.label), "int32"), prepared: true };
}

/**
 * Boundary activations of `items` in batches, in order (shuffled by `seed` when given, as
 * ImageFolder.batches shuffles): the next batch's images decode while this one computes.
 */
async function* boundaryBatches(setup: Setup, store: ActivationStore, forward: ReturnType<typeof splitForward>, items: Hashed[], batchSize: number, inputSize: number, seed?: number) {
  // Files that failed to decode since (reported bad) are left out, as ImageFolder.batches leaves them out.
  const usable = items.filter((item) => setup.data.holds(item.example.path));
  if (seed !== undefined) shuffleInPlace(usable, seed);
  const chunks = Array.from({ length: Math.ceil(usable.length / batchSize) }, (_, i) => usable.slice(i * batchSize, (i + 1) * batchSize));
  const decode = (chunk: Hashed[] | undefined) => (chunk && !store.has(chunk.map((item) => item.hash)) ? decodeBatch(chunk.map((item) => item.example.path), inputSize) : null);
  let pending = decode(chunks[0]);
  try {
    for (let i = 0; i < chunks.length; i++) {
      const current = pending;
      pending = decode(chunks[i + 1]);
      const batch = await boundaryBatch(setup, store, forward, chunks[i], inputSize, current);
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
 * and validation read their activations back, in the same order, so they train as without it (bit for bit
 * where TensorFlow computes an image alike at any place in a batch; test/frozen-bottom.test.ts).
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
  const inputSize = inception.inputSize;
  // Each image's content, read once per call: a file changed, replaced or deleted since the last call is never
  // served from the store.
  const items = store ? { train: hashed(setup.data.examples("train")), validation: hashed(setup.data.examples("validation")) } : null;
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
        for await (const batch of trainingImages(setup, inputSize, epoch, random)) yield { x: batch.images, y: batch.labels };
        return;
      }
      yield* boundaryBatches(setup, store, step.forward, items!.train, setup.settings.batchSize, inputSize, setup.settings.seed + epoch);
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
        for await (const batch of boundaryBatches(setup, store, step.forward, items!.validation, batchSize, inputSize)) {
          await add(() => step.forward.inferFrom(batch.x), batch.y);
          tf.dispose([batch.x, batch.y]);
        }
      } else {
        for await (const batch of setup.data.batches("validation", { inputSize, batchSize })) {
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
