// The three ways to train Inception-v3 on new classes, behind one options shape:
//   retrainFinalLayer: frozen network, features computed once and cached, only a new head trained;
//   fineTune: pretrained start, new head, then the network itself trained (all of it, or from a block up);
//   trainFromScratch: the same network and head from random weights.
import * as fs from "fs";
import * as path from "path";
import { hasDistortions } from "../data/augment";
import { BottleneckCache } from "../data/bottlenecks";
import { attachHead, Classifier, Head } from "./classifier";
import type { ImageFolder } from "../data/image-folder";
import { BLOCKS } from "../network/inception";
import { type Inception, loadInceptionV3 } from "../network/model";
import { blockFlops, blocksUpTo, bottlenecks, cachedScorer, headPhase, imagePhase, type Setup, splitForward } from "./phases";
import { liveCurves } from "../plots/plots";
import { remember, type RunInfo, TrainingRun } from "./run";
import { tf } from "../runtime/tf";
import { type Mode, resolve, type Resolved, type TrainOptions } from "./options";
import { type History, makeOptimizer, type Phase, saveAtomically, TrainingLoop } from "./loop";

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
  const features = await bottlenecks(inception, layer, data, cache, usesFeatures ? featureSplits : []);
  const sets = features.sets;

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
      imagePhase(mode === "fine-tune" ? "fine-tune" : "train", s, full.logitsModel, makeOptimizer(o.optimizer, o.learningRate), o.epochs, inception.inputSize, forwardFlops + backwardFlops, splitForward(inception, full.logitsModel, BLOCKS[from], o.graph)),
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
    bottlenecks: usesFeatures ? features.stats : undefined,
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
    graph: o.graph,
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
  }
  return remember(new TrainingRun(info(), loop.history, classifier, data));
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
