// One options shape for the three training modes, with each mode's defaults (recipes.ts), checked before
// any work starts: a misspelt name, a learning rate of Infinity or a negative time budget is an error
// that names the option and says what it takes.
import * as path from "path";
import type { Distortions } from "../data/augment";
import { inKernel } from "../display/display";
import { type CutLayer, CUT_LAYERS } from "../network/inception";
import { precisionFor, type PrecisionOption } from "../runtime/precision";
import type { Callback } from "./loop";
import { type OptimizerName, OPTIMIZERS } from "./optimizers";
import { type Mode, RECIPES } from "./recipes";
import { checkLogFolder } from "./tensorboard";

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
  /** End a phase after this many epochs without a better validation accuracy (false: run all epochs). */
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
  /** Save the best model and the history here after every better epoch (atomically). */
  checkpointDir?: string;
  /**
   * Write TensorBoard logs (scalars per step and per epoch) into this folder, e.g. "logs/run-1": one folder
   * per run (a folder that already holds a log is refused, except by a resumed run continuing its own).
   */
  tensorboard?: string;
  /** Continue from the checkpoint in checkpointDir. */
  resume?: boolean;
  /** Live progress bar (default on). */
  progress?: boolean;
  /** Learning curves drawn live in the notebook while training (default: on in a notebook). */
  liveChart?: boolean;
  /** Your own rules: objects with onTrainBegin / onEpochBegin / onBatchBegin / onBatchEnd / onEpochEnd / onTrainEnd. */
  callbacks?: Callback | Callback[];
  /** Run each training step as one TensorFlow graph, recorded on the first step (default on; false: op by op, as tfjs runs). */
  graph?: boolean;
  /**
   * The precision of the network's work (features, the frozen bottom, the trained blocks forward and
   * backward, validation): "auto", "float32", "bfloat16" or "float16"; default: the network's (loadInceptionV3's
   * `precision`, itself "auto"). Weights, batch-norm statistics, the loss and the optimizer stay float32.
   */
  precision?: PrecisionOption;
  /** fineTune: train the blocks from this one up ("all": every layer). */
  unfreezeFrom?: CutLayer | "all";
  /** fineTune: epochs of training only the head first, on cached features. */
  warmupEpochs?: number;
  /** fineTune: learning rate of the head-only warm-up. */
  warmupLearningRate?: number;
}

export type Resolved = Required<Omit<TrainOptions, "checkpointDir" | "layer" | "inputSize" | "cacheDir" | "callbacks" | "tensorboard" | "precision">> &
  Pick<TrainOptions, "checkpointDir" | "layer" | "inputSize" | "cacheDir" | "tensorboard" | "precision"> & { callbacks: Callback[] };

const OPTION_NAMES = [
  "epochs", "batchSize", "optimizer", "learningRate", "dropout", "labelSmoothing", "distortions", "earlyStopping", "seed", "layer", "inputSize", "maxSeconds",
  "cacheDir", "checkpointDir", "tensorboard", "resume", "progress", "liveChart", "callbacks", "graph", "unfreezeFrom", "warmupEpochs", "warmupLearningRate", "precision",
];
const DISTORTIONS: Record<keyof Distortions, [number, number] | "boolean"> = {
  flipLeftRight: "boolean",
  randomCrop: [0, 100],
  randomScale: [0, 100],
  randomBrightness: [0, 100],
  rotation: [0, 180],
  zoom: [0, 0.99],
  shift: [0, 0.5],
};

/** The known name closest to `name` (case, then one or two typos), for "did you mean". */
export function closest(name: string, known: string[]): string | null {
  const distance = (a: string, b: string) => {
    const row = Array.from({ length: b.length + 1 }, (_, j) => j);
    for (let i = 1; i <= a.length; i++) {
      let previous = row[0];
      row[0] = i;
      for (let j = 1; j <= b.length; j++) {
        const current = row[j];
        row[j] = Math.min(row[j] + 1, row[j - 1] + 1, previous + (a[i - 1] === b[j - 1] ? 0 : 1));
        previous = current;
      }
    }
    return row[b.length];
  };
  const ranked = known.map((k) => ({ k, d: distance(name.toLowerCase(), k.toLowerCase()) })).sort((x, y) => x.d - y.d);
  return ranked[0] && ranked[0].d <= 2 ? ranked[0].k : null;
}

/** Throws for keys of `given` that are not in `known`, suggesting the closest one. */
export function checkNames(given: object, known: string[], what: string): void {
  for (const name of Object.keys(given)) {
    if (known.includes(name)) continue;
    const guess = closest(name, known);
    throw new Error(`${what}: there is no option "${name}".${guess ? ` Did you mean "${guess}"?` : ` The options are ${known.join(", ")}.`}`);
  }
}

function checkDistortions(d: Distortions): void {
  if (typeof d !== "object" || d === null) throw new Error(`distortions is ${JSON.stringify(d)}: give an object such as { flipLeftRight: true, randomCrop: 10 }.`);
  checkNames(d, Object.keys(DISTORTIONS), "distortions");
  for (const [name, value] of Object.entries(d)) {
    const range = DISTORTIONS[name as keyof Distortions];
    if (range === "boolean") {
      if (typeof value !== "boolean") throw new Error(`distortions.${name} is ${JSON.stringify(value)}: use true or false.`);
    } else if (!(typeof value === "number" && value >= range[0] && value <= range[1])) {
      throw new Error(`distortions.${name} is ${JSON.stringify(value)}: use a number from ${range[0]} to ${range[1]}.`);
    }
  }
}

export function resolve(mode: Mode, options: TrainOptions): Resolved {
  checkNames(options, OPTION_NAMES, "training options");
  const given = Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)) as TrainOptions;
  const o: Resolved = {
    ...RECIPES[mode].defaults,
    dropout: 0.2,
    labelSmoothing: 0,
    distortions: {},
    earlyStopping: false,
    seed: 0,
    maxSeconds: 0,
    resume: false,
    progress: true,
    liveChart: inKernel(),
    unfreezeFrom: "all",
    warmupLearningRate: 1e-3,
    graph: true,
    ...given,
    callbacks: given.callbacks === undefined ? [] : [given.callbacks].flat(),
  };
  const wholeAtLeast = (name: string, value: number, least: number) => {
    if (!(Number.isInteger(value) && value >= least)) throw new Error(`${name} is ${value}: use a whole number of at least ${least}.`);
  };
  const positive = (name: string, value: number) => {
    if (!(Number.isFinite(value) && value > 0)) throw new Error(`${name} is ${value}: it must be a finite number above 0.`);
  };
  const fraction = (name: string, value: number) => {
    if (!(value >= 0 && value < 1)) throw new Error(`${name} is ${value}: use 0 up to below 1.`);
  };
  wholeAtLeast("epochs", o.epochs, 1);
  wholeAtLeast("batchSize", o.batchSize, 1);
  wholeAtLeast("warmupEpochs", o.warmupEpochs, 0);
  positive("learningRate", o.learningRate);
  positive("warmupLearningRate", o.warmupLearningRate);
  fraction("dropout", o.dropout);
  fraction("labelSmoothing", o.labelSmoothing);
  if (!Number.isInteger(o.seed)) throw new Error(`seed is ${o.seed}: use a whole number.`);
  if (!(Number.isFinite(o.maxSeconds) && o.maxSeconds >= 0)) throw new Error(`maxSeconds is ${o.maxSeconds}: use a number of seconds above 0, or 0 for no limit.`);
  if (o.earlyStopping !== false) wholeAtLeast("earlyStopping", o.earlyStopping, 1);
  if (!OPTIMIZERS.includes(o.optimizer)) throw new Error(`optimizer: "${o.optimizer}" is not one of ${OPTIMIZERS.join(", ")}.`);
  if (o.layer !== undefined && !CUT_LAYERS.includes(o.layer)) throw new Error(`layer: "${o.layer}" is not a cut point; use one of ${CUT_LAYERS.join(", ")}.`);
  if (o.inputSize !== undefined) wholeAtLeast("inputSize", o.inputSize, 75);
  if (o.unfreezeFrom !== "all" && !CUT_LAYERS.includes(o.unfreezeFrom)) throw new Error(`unfreezeFrom: "${o.unfreezeFrom}" is not a block; use "all" or one of ${CUT_LAYERS.join(", ")}.`);
  for (const name of ["resume", "progress", "liveChart", "graph"] as const) {
    if (typeof o[name] !== "boolean") throw new Error(`${name} is ${JSON.stringify(o[name])}: use true or false.`);
  }
  for (const name of ["cacheDir", "checkpointDir", "tensorboard"] as const) {
    if (o[name] !== undefined && (typeof o[name] !== "string" || o[name] === "")) throw new Error(`${name} is ${JSON.stringify(o[name])}: give a folder path.`);
  }
  if (o.tensorboard !== undefined) checkLogFolder(path.resolve(o.tensorboard), "tensorboard", o.resume);
  checkDistortions(o.distortions);
  if (o.precision !== undefined) precisionFor(o.precision, o.graph);
  if (o.resume && !o.checkpointDir) throw new Error("resume: true needs checkpointDir, the folder of the run to continue.");
  for (const callback of o.callbacks) {
    if (typeof callback !== "object" || callback === null) throw new Error(`callbacks: ${String(callback)} is not a callback; give objects with onEpochEnd, onBatchEnd, ... methods.`);
  }
  return o;
}
