// The three ways to train Inception-v3 on new classes, behind one options shape:
//   retrainFinalLayer: frozen network, features computed once and cached, only a new head trained;
//   fineTune: pretrained start, new head, then the network itself trained (all of it, or from a block up);
//   trainFromScratch: the same network and head from random weights.
import * as fs from "fs";
import * as path from "path";
import { type Distortions, distort, hasDistortions } from "./augment";
import { BottleneckCache, type BottleneckStats } from "./bottlenecks";
import { attachHead, Classifier, Head, type Prediction } from "./classifier";
import { Displayable, inKernel, Table } from "./display";
import type { Evaluation } from "./evaluation";
import { type ImageFolder, seededRandom, type Split } from "./image-folder";
import { type Block, BLOCKS, type CutLayer, CUT_LAYERS, layerFlops } from "./inception";
import { type Inception, loadInceptionV3 } from "./model";
import { liveCurves } from "./plots";
import { tf } from "./tf";
import { type History, lossAndAccuracy, type LabelledBatch, makeOptimizer, type OptimizerName, type Phase, saveAtomically, type TrainCallbacks, TrainingLoop } from "./training";

export type Mode = "retrain-final-layer" | "fine-tune" | "from-scratch";

export interface TrainOptions {
  epochs?: number;
  batchSize?: number;
  optimizer?: OptimizerName;
  learningRate?: number;
  /** Dropout before the new classifier (0 to 1). */
  dropout?: number;
  labelSmoothing?: number;
  /** Random distortions of training images; with them on, retraining computes features per step. */
  distortions?: Distortions;
  /** Stop after this many epochs without a better validation accuracy (false: run all epochs). */
  earlyStopping?: number | false;
  seed?: number;
  /** Where the head attaches (default: the weights' recommended cut, mixed10 for ImageNet). */
  layer?: CutLayer;
  /** Image side for training from scratch (other modes use the network's input size). */
  inputSize?: number;
  /** Stop after this many seconds of training (0: no limit). */
  maxSeconds?: number;
  /** Folder for cached bottleneck features (default: the user cache folder). */
  cacheDir?: string;
  /** Save the best model and the history here after every epoch (atomically). */
  checkpointDir?: string;
  /** Continue from the checkpoint in checkpointDir. */
  resume?: boolean;
  /** Live progress bar (default on). */
  progress?: boolean;
  /** Learning curves drawn live in the notebook while training (default: on in a notebook). */
  liveChart?: boolean;
  callbacks?: TrainCallbacks;
  /** fineTune: train the blocks from this one up ("all": every layer). */
  unfreezeFrom?: CutLayer | "all";
  /** fineTune: epochs of training only the head first, on cached features. */
  warmupEpochs?: number;
  /** fineTune: learning rate of the head-only warm-up. */
  warmupLearningRate?: number;
}

const DEFAULTS: Record<Mode, Required<Pick<TrainOptions, "epochs" | "batchSize" | "optimizer" | "learningRate">>> = {
  // retrain.py takes 4,000 steps of 100; on small folders 50 epochs of 32 give a similar number of steps.
  "retrain-final-layer": { epochs: 50, batchSize: 32, optimizer: "adam", learningRate: 1e-3 },
  "fine-tune": { epochs: 5, batchSize: 16, optimizer: "adam", learningRate: 1e-4 },
  "from-scratch": { epochs: 10, batchSize: 16, optimizer: "adam", learningRate: 1e-3 },
};

type Resolved = Required<Omit<TrainOptions, "checkpointDir" | "layer" | "inputSize" | "cacheDir">> & Pick<TrainOptions, "checkpointDir" | "layer" | "inputSize" | "cacheDir">;

function resolve(mode: Mode, options: TrainOptions): Resolved {
  const o: Resolved = {
    ...DEFAULTS[mode],
    dropout: 0.2,
    labelSmoothing: 0,
    distortions: {},
    earlyStopping: false,
    seed: 0,
    maxSeconds: 0,
    resume: false,
    progress: true,
    liveChart: inKernel(),
    callbacks: {},
    unfreezeFrom: "all",
    warmupEpochs: 2,
    warmupLearningRate: 1e-3,
    ...Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)),
  };
  const positive = { epochs: o.epochs, batchSize: o.batchSize, learningRate: o.learningRate } as Record<string, number>;
  for (const [name, value] of Object.entries(positive)) if (!(value > 0)) throw new Error(`${name} is ${value}: it must be above 0.`);
  if (!Number.isInteger(o.epochs) || !Number.isInteger(o.batchSize)) throw new Error(`epochs and batchSize must be whole numbers (got ${o.epochs}, ${o.batchSize}).`);
  if (!(o.dropout >= 0 && o.dropout < 1)) throw new Error(`dropout is ${o.dropout}: use 0 (none) up to below 1.`);
  if (!(o.labelSmoothing >= 0 && o.labelSmoothing < 1)) throw new Error(`labelSmoothing is ${o.labelSmoothing}: use 0 up to below 1.`);
  if (o.layer && !CUT_LAYERS.includes(o.layer)) throw new Error(`layer: "${o.layer}" is not a cut point; use one of ${CUT_LAYERS.join(", ")}.`);
  if (o.unfreezeFrom !== "all" && !CUT_LAYERS.includes(o.unfreezeFrom)) throw new Error(`unfreezeFrom: "${o.unfreezeFrom}" is not a block; use "all" or one of ${CUT_LAYERS.join(", ")}.`);
  if (o.resume && !o.checkpointDir) throw new Error("resume: true needs checkpointDir, the folder of the run to continue.");
  return o;
}

/** Forward GFLOP per image of each block, from the layers' shapes. */
function blockFlops(inception: Inception): Map<string, number> {
  const flops = new Map<string, number>();
  for (const layer of inception.model.layers) {
    const block = inception.blockOf.get(layer.name);
    if (block) flops.set(block, (flops.get(block) ?? 0) + layerFlops(layer));
  }
  return flops;
}

function blocksUpTo(layer: CutLayer) {
  return BLOCKS.slice(0, BLOCKS.indexOf(layer) + 1);
}

export interface RunInfo {
  mode: Mode;
  weights: string;
  layer: CutLayer;
  inputSize: number;
  classes: string[];
  trainableParameters: number;
  totalParameters: number;
  /** Blocks whose weights were trained ("head" is the new classifier). */
  trainedBlocks: string[];
  options: Omit<Resolved, "callbacks">;
  bottlenecks?: BottleneckStats;
  interrupted: boolean;
  stoppedEarly: boolean;
  outOfTime: boolean;
  /** Seconds of the whole call, feature extraction included. */
  seconds: number;
  trainImages: number;
}

/** The result of a training call: history, the trained classifier, evaluation, prediction and saving. */
export class TrainingRun extends Displayable {
  constructor(
    readonly info: RunInfo,
    readonly history: History,
    readonly classifier: Classifier,
    readonly data: ImageFolder,
  ) {
    super();
  }

  get mode(): Mode {
    return this.info.mode;
  }

  get model(): tf.LayersModel {
    return this.classifier.model;
  }

  /** Accuracy and mistakes on a split of the data set (default: test). */
  evaluate(split: Split = "test", data: ImageFolder = this.data): Promise<Evaluation> {
    return this.classifier.evaluate(data, split);
  }

  predict(paths: string | string[]): Promise<Prediction[]> {
    return this.classifier.predict(paths);
  }

  /** Saves the classifier (tfjs model.json + weights + labels.json) and the history; loadClassifier reads it. */
  async save(dir: string): Promise<string> {
    const target = await this.classifier.save(dir);
    fs.writeFileSync(path.join(target, "history.json"), JSON.stringify({ info: this.info, history: this.history }));
    return target;
  }

  /** Training images per second in the last phase (the one that defines the mode), from its steps. */
  get imagesPerSecond(): number {
    const steps = this.history.steps;
    const phase = steps[steps.length - 1]?.phase;
    const first = steps.findIndex((step) => step.phase === phase);
    if (first < 0) return 0;
    const before = first > 0 ? steps[first - 1] : { images: 0, seconds: 0 };
    const last = steps[steps.length - 1];
    return (last.images - before.images) / Math.max(last.seconds - before.seconds, 1e-9);
  }

  get bestValidationAccuracy(): number | null {
    const values = this.history.epochs.map((e) => e.valAccuracy).filter((v): v is number => v !== null);
    return values.length ? Math.max(...values) : null;
  }

  summaryTable(): Table {
    const i = this.info;
    const last = this.history.epochs[this.history.epochs.length - 1];
    const ended = i.interrupted ? "interrupted (best weights kept)" : i.outOfTime ? "time budget reached" : i.stoppedEarly ? "stopped early" : "completed";
    const rows: [string, string | number][] = [
      ["mode", i.mode],
      ["weights", i.weights],
      ["network", `Inception-v3 cut at ${i.layer}, input ${i.inputSize}x${i.inputSize}`],
      ["trained", `${i.trainedBlocks.join(", ")}: ${(i.trainableParameters / 1e6).toFixed(2)}M of ${(i.totalParameters / 1e6).toFixed(2)}M parameters`],
      ["epochs", `${this.history.epochs.length} (${this.history.steps.length} steps), ${ended}`],
      ["train loss / accuracy", last ? `${last.loss.toFixed(3)} / ${last.accuracy.toFixed(3)}` : "-"],
      ["best validation accuracy", this.bestValidationAccuracy?.toFixed(3) ?? "- (no validation split)"],
      ["wall time", `${i.seconds.toFixed(1)} s${i.bottlenecks ? ` (features: ${i.bottlenecks.computed} computed, ${i.bottlenecks.cached} from cache, ${i.bottlenecks.seconds.toFixed(1)} s)` : ""}`],
      ["training throughput", `${this.imagesPerSecond.toFixed(1)} images/s`],
      ["compute", last ? `${formatFlops(last.flops)} in the training loop` : "-"],
    ];
    return new Table(["", ""], rows, `Training run: ${i.mode} on ${i.classes.length} classes`);
  }

  toText(): string {
    return this.summaryTable().toText();
  }

  toHTML(): string {
    return this.summaryTable().toHTML() + `<p><small>run.evaluate() for test accuracy and mistakes; run.history for every step; run.save(dir) to keep it.</small></p>`;
  }
}

export function formatFlops(flops: number): string {
  const [value, unit] = flops >= 1e12 ? [flops / 1e12, "TFLOP"] : flops >= 1e9 ? [flops / 1e9, "GFLOP"] : [flops / 1e6, "MFLOP"];
  return `${value.toFixed(value < 10 ? 2 : 0)} ${unit}`;
}

let latest: TrainingRun | null = null;

/** The most recent run, also one a kernel interrupt cut short (its cell never got the result). */
export function lastRun(): TrainingRun | null {
  return latest;
}

interface Setup {
  mode: Mode;
  o: Resolved;
  data: ImageFolder;
  classes: number;
}

/** The part of `model` from `start` on, as a model of its own sharing the layers (and weights). */
function modelFrom(model: tf.LayersModel, start: tf.SymbolicTensor): tf.LayersModel {
  const input = tf.input({ shape: start.shape.slice(1) as number[] });
  const mapped = new Map<number, tf.SymbolicTensor>([[start.id, input]]);
  for (const layer of model.layers) {
    // A shared layer has several nodes (the head is applied to features and to the network): take
    // the ones whose inputs are already mapped.
    for (const node of [...layer.inboundNodes]) {
      const inputs = node.inputTensors;
      if (inputs.length === 0 || !inputs.every((t) => mapped.has(t.id)) || mapped.has(node.outputTensors[0].id)) continue;
      const args = inputs.map((t) => mapped.get(t.id)!);
      const outputs = layer.apply(args.length === 1 ? args[0] : args) as tf.SymbolicTensor | tf.SymbolicTensor[];
      [outputs].flat().forEach((out, i) => mapped.set(node.outputTensors[i].id, out));
    }
  }
  const output = mapped.get(model.outputs[0].id);
  if (!output) throw new Error(`The model's output does not depend on ${start.name} alone.`);
  return tf.model({ inputs: input, outputs: output });
}

/**
 * A classifier's forward pass split at the last frozen block: `prepare` runs the frozen bottom once per
 * batch outside the gradient tape (so the tape neither records it nor keeps its activations), `logits`
 * runs the rest. With nothing frozen, `prepare` passes images through and `logits` runs everything.
 */
export function splitForward(inception: Inception, logitsModel: tf.LayersModel, firstTrainedBlock: Block) {
  const from = BLOCKS.indexOf(firstTrainedBlock);
  if (from <= 0) return { prepare: (images: tf.Tensor) => images, logits: (x: tf.Tensor, training: boolean) => logitsModel.apply(x, { training }) as tf.Tensor2D };
  // Every block reads only the previous block's output: the stem's last pooling, or mixedN's concatenation.
  const boundary = (BLOCKS[from - 1] === "stem" ? inception.model.getLayer("max_pooling2d_2") : inception.model.getLayer(BLOCKS[from - 1])).output as tf.SymbolicTensor;
  const bottom = tf.model({ inputs: logitsModel.inputs, outputs: boundary });
  const top = modelFrom(logitsModel, boundary);
  return {
    prepare: (images: tf.Tensor) => tf.tidy(() => bottom.apply(images, { training: false }) as tf.Tensor),
    logits: (x: tf.Tensor, training: boolean) => top.apply(x, { training }) as tf.Tensor2D,
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

function imagePhase(
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
    async validate() {
      let loss = 0;
      let correct = 0;
      let count = 0;
      for await (const batch of s.data.batches("validation", { size: inputSize, batchSize: Math.max(s.o.batchSize, 32) })) {
        const n = batch.images.shape[0];
        const result = tf.tidy(() => lossAndAccuracy(logitsModel.apply(batch.images, { training: false }) as tf.Tensor2D, batch.labels, s.classes));
        loss += (await result.loss.data())[0] * n;
        correct += (await result.accuracy.data())[0] * n;
        count += n;
        tf.dispose([batch.images, batch.labels, result.loss, result.accuracy]);
      }
      return count ? { loss: loss / count, accuracy: correct / count } : null;
    },
  };
}

function shuffledIndices(n: number, seed: number): number[] {
  const random = seededRandom(seed);
  const indices = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [indices[i], indices[j]] = [indices[j], indices[i]];
  }
  return indices;
}

interface FeatureSet {
  x: tf.Tensor2D;
  y: tf.Tensor1D;
}

/**
 * A phase that trains only the head on features. Without distortions the features are the cached
 * bottlenecks (retrain.py); with them, each step distorts the images and runs the frozen network.
 */
function headPhase(name: string, s: Setup, inception: Inception, layer: CutLayer, headLogits: tf.LayersModel, optimizer: tf.Optimizer, epochs: number, features: { train: FeatureSet; validation: FeatureSet }): Phase {
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
      const order = shuffledIndices(n, s.o.seed + epoch);
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
async function bottlenecks(inception: Inception, layer: CutLayer, data: ImageFolder, cache: BottleneckCache, splits: ("train" | "validation")[]) {
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
function cachedScorer(cache: BottleneckCache, headModel: tf.LayersModel) {
  return async (files: string[]) => {
    const result = await cache.get(files, { title: "features" });
    const output = headModel.predict(result.features) as tf.Tensor2D;
    const probabilities = (await output.array()) as number[][];
    tf.dispose([output, result.features]);
    return { files: result.files, probabilities };
  };
}

function countParameters(variables: tf.LayerVariable[]): number {
  return variables.reduce((sum, v) => sum + v.shape.reduce((a: number, b) => a * (b ?? 1), 1), 0);
}

interface Checkpointing {
  firstEpoch: number;
  history?: History;
  save?: (epoch: number, history: History) => Promise<void>;
}

/** Saves after each epoch into checkpointDir; with resume, loads the weights and history saved there. */
async function checkpointing(o: Resolved, model: tf.LayersModel, info: () => object): Promise<Checkpointing> {
  if (!o.checkpointDir) return { firstEpoch: 1 };
  const dir = path.resolve(o.checkpointDir);
  const state = path.join(dir, "history.json");
  const save = (epoch: number, history: History) => saveAtomically(dir, model, { "history.json": JSON.stringify({ epoch, history, info: info() }), "labels.json": JSON.stringify(info(), null, 1) });
  if (!o.resume) return { firstEpoch: 1, save };
  if (!fs.existsSync(state)) throw new Error(`resume: ${dir} has no checkpoint (history.json) to continue from.`);
  const saved = JSON.parse(fs.readFileSync(state, "utf8"));
  const weights = await tf.loadLayersModel(`file://${path.join(dir, "model.json")}`);
  if (weights.weights.length !== model.weights.length) throw new Error(`resume: the checkpoint in ${dir} is of another network or head; start without resume.`);
  model.weights.forEach((w, i) => w.write(weights.weights[i].read()));
  return { firstEpoch: saved.epoch + 1, history: saved.history, save };
}

async function train(mode: Mode, inception: Inception, data: ImageFolder, options: TrainOptions): Promise<TrainingRun> {
  const started = performance.now();
  const o = resolve(mode, options);
  const layer = o.layer ?? inception.source.featureLayer;
  const s: Setup = { mode, o, data, classes: data.classes.length };
  const head = new Head(s.classes, o.dropout, o.seed);
  const width = (inception.model.getLayer(layer).outputShape as number[])[3];
  const featureInput = tf.input({ shape: [width], name: "bottleneck" });
  const headModels = head.models(featureInput, featureInput);
  const full = attachHead(inception, layer, head);
  const usesFeatures = mode === "retrain-final-layer" || (mode === "fine-tune" && o.warmupEpochs > 0);
  const cache = new BottleneckCache(inception, layer, o.cacheDir);
  // With distortions, training features are computed per step; validation still uses cached ones.
  const featureSplits: ("train" | "validation")[] = hasDistortions(o.distortions) ? ["validation"] : ["train", "validation"];
  const features = usesFeatures ? await bottlenecks(inception, layer, data, cache, featureSplits) : null;
  const sets = features?.sets ?? (await bottlenecks(inception, layer, data, cache, [])).sets;

  const flops = blockFlops(inception);
  const phases: Phase[] = [];
  let trained: tf.LayerVariable[];
  let trainedBlocks: string[];
  if (mode === "retrain-final-layer") {
    trained = headModels.model.trainableWeights;
    trainedBlocks = ["head"];
    phases.push(headPhase("head", s, inception, layer, headModels.logitsModel, makeOptimizer(o.optimizer, o.learningRate), o.epochs, sets));
  } else {
    if (mode === "fine-tune" && o.warmupEpochs > 0) {
      phases.push(headPhase("warm-up", s, inception, layer, headModels.logitsModel, makeOptimizer(o.optimizer, o.warmupLearningRate), o.warmupEpochs, sets));
    }
    const from = mode === "fine-tune" && o.unfreezeFrom !== "all" ? BLOCKS.indexOf(o.unfreezeFrom) : 0;
    if (from > BLOCKS.indexOf(layer)) throw new Error(`unfreezeFrom: "${o.unfreezeFrom}" lies above the cut layer ${layer}: nothing of the network would train.`);
    trainedBlocks = [...BLOCKS.slice(from, BLOCKS.indexOf(layer) + 1), "head"];
    for (const l of inception.model.layers) {
      const block = inception.blockOf.get(l.name);
      if (block) l.trainable = trainedBlocks.includes(block);
    }
    const forwardFlops = blocksUpTo(layer).reduce((sum, b) => sum + (flops.get(b) ?? 0), 0);
    const backwardFlops = 2 * trainedBlocks.reduce((sum, b) => sum + (flops.get(b) ?? 0), 0);
    trained = full.model.trainableWeights;
    phases.push(
      imagePhase(mode === "fine-tune" ? "fine-tune" : "train", s, full.logitsModel, makeOptimizer(o.optimizer, o.learningRate), o.epochs, inception.inputSize, forwardFlops + backwardFlops, splitForward(inception, full.logitsModel, BLOCKS[from])),
    );
  }

  const info = (): RunInfo => ({
    mode,
    weights: inception.source.description,
    layer,
    inputSize: inception.inputSize,
    classes: data.classes,
    trainableParameters: countParameters(trained),
    totalParameters: countParameters(full.model.weights),
    trainedBlocks,
    options: { ...o, callbacks: undefined } as unknown as RunInfo["options"],
    bottlenecks: features?.stats,
    interrupted: loop.interrupted,
    stoppedEarly: loop.stoppedEarly,
    outOfTime: loop.outOfTime,
    seconds: (performance.now() - started) / 1000,
    trainImages: data.files("train").length,
  });
  const checkpoint = await checkpointing(o, full.model, info);
  const live = o.liveChart ? liveCurves() : null;
  const loop = new TrainingLoop({
    classes: s.classes,
    labelSmoothing: o.labelSmoothing,
    earlyStopping: o.earlyStopping,
    maxSeconds: o.maxSeconds,
    progress: o.progress,
    callbacks: {
      onBatchEnd: (step) => {
        live?.onBatchEnd!(step);
        o.callbacks.onBatchEnd?.(step);
      },
      onEpochEnd: (epoch) => {
        live?.onEpochEnd!(epoch);
        o.callbacks.onEpochEnd?.(epoch);
      },
    },
    weights: () => full.model.weights,
    checkpoint: checkpoint.save,
  });
  if (checkpoint.history) loop.resumeFrom(checkpoint.history);
  const classifierInfo = { classes: data.classes, inputSize: inception.inputSize, mode, layer, weights: inception.source.description };
  const classifier = mode === "retrain-final-layer" ? new Classifier(full.model, classifierInfo, cachedScorer(cache, headModels.model)) : new Classifier(full.model, classifierInfo);
  try {
    await loop.run(phases, checkpoint.firstEpoch);
  } finally {
    tf.dispose([sets.train.x, sets.train.y, sets.validation.x, sets.validation.y]);
    phases.forEach((p) => p.optimizer.dispose());
    live?.finish();
    latest = new TrainingRun(info(), loop.history, classifier, data);
  }
  return latest;
}

/**
 * Retrain the final layer (TensorFlow's retrain.py): the network stays frozen; each image's features
 * are computed once and cached on disk; only a new classifier is trained on them.
 */
export function retrainFinalLayer(inception: Inception, data: ImageFolder, options: TrainOptions = {}): Promise<TrainingRun> {
  return train("retrain-final-layer", inception, data, options);
}

/**
 * Fine-tune: a new classifier is first trained on frozen features (warmupEpochs), then the network
 * itself is trained from `unfreezeFrom` up (default all of it), starting from the pretrained weights.
 * Works on a copy: `inception` keeps its weights. Frozen BatchNorm layers stay in inference mode.
 */
export async function fineTune(inception: Inception, data: ImageFolder, options: TrainOptions = {}): Promise<TrainingRun> {
  return train("fine-tune", await inception.clone(), data, options);
}

/** Train from scratch: the same network and head from random weights, everything trained. */
export async function trainFromScratch(data: ImageFolder, options: TrainOptions = {}): Promise<TrainingRun> {
  const inception = await loadInceptionV3({ weights: null, inputSize: options.inputSize ?? 299, seed: options.seed ?? 0 });
  return train("from-scratch", inception, data, { warmupEpochs: 0, ...options });
}
