// One options shape for the three training modes, with each mode's defaults (recipes.ts), checked before
// any work starts: a misspelt name, a learning rate of Infinity or a negative time budget is an error
// that names the option and says what it takes.
import * as path from "path";
import type { Distortions } from "../data/augment";
import { inKernel } from "../display/display";
import { type CutLayer, CUT_LAYERS } from "../network/inception";
import { precisionFor, type PrecisionOption } from "../runtime/precision";
import { isTfjsCallback, type UserCallback } from "./callback-adapter";
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
  /**
   * Your own rules: objects with onTrainBegin / onEpochBegin / onBatchBegin / onBatchEnd / onEpochEnd / onTrainEnd
   * (each gets the record and the loop), or tfjs callbacks (tf.callbacks.earlyStopping(), new tf.CustomCallback({...})).
   */
  callbacks?: UserCallback | UserCallback[];
  /** Run each training step as one TensorFlow graph, recorded on the first step (default on; false: op by op, as tfjs runs). */
  graph?: boolean;
  /**
   * fineTune of the top blocks without distortions: run the frozen blocks once per image and keep their output
   * (in memory, on disk beside the feature cache when large), so later epochs cost only the trained blocks
   * (default on; data/activations.ts).
   */
  frozenBottomCache?: boolean;
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
  Pick<TrainOptions, "checkpointDir" | "layer" | "inputSize" | "cacheDir" | "tensorboard" | "precision"> & { callbacks: UserCallback[] };

export const OPTION_NAMES = [
  "epochs", "batchSize", "optimizer", "learningRate", "dropout", "labelSmoothing", "distortions", "earlyStopping", "seed", "layer", "inputSize", "maxSeconds",
  "cacheDir", "checkpointDir", "tensorboard", "resume", "progress", "liveChart", "callbacks", "graph", "unfreezeFrom", "warmupEpochs", "warmupLearningRate", "precision", "frozenBottomCache",
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

/** "Did you mean" the closest known name, or the list of known names. */
function suggestion(name: string, known: string[], kind: string): string {
  const guess = closest(name, known);
  return guess ? `Did you mean "${guess}"?` : `The ${kind} are ${known.join(", ")}.`;
}

/** Throws for keys of `given` that are not in `known`, suggesting the closest one. */
export function checkNames(given: object, known: string[], what: string): void {
  for (const name of Object.keys(given)) {
    if (!known.includes(name)) throw new Error(`${what}: there is no option "${name}". ${suggestion(name, known, "options")}`);
  }
}

/** The hooks the loop calls, each with the parameters it passes. */
const HOOKS: Record<keyof Callback, string> = {
  onTrainBegin: "loop",
  onEpochBegin: "epoch, loop",
  onBatchBegin: "step, loop",
  onBatchEnd: "record, loop",
  onEpochEnd: "record, loop",
  onTrainEnd: "loop",
};

/** The names of a function's plain parameters, read from its source (destructured ones are left out). */
function parameterNames(hook: Function): string[] {
  const source = Function.prototype.toString.call(hook);
  const list = /^(?:async\s*)?(?:function\b[^(]*)?(?:[\w$]+\s*)?\(([^)]*)\)/.exec(source)?.[1] ?? /^(?:async\s+)?([\w$]+)\s*=>/.exec(source)?.[1] ?? "";
  return list.split(",").flatMap((parameter) => /^\s*(?:\.\.\.)?([\w$]+)/.exec(parameter)?.[1] ?? []);
}

/** Every property and method of an object, its class's included. */
function memberNames(object: object): string[] {
  const names = new Set<string>();
  for (let o: object | null = object; o && o !== Object.prototype; o = Object.getPrototypeOf(o)) Object.getOwnPropertyNames(o).forEach((name) => names.add(name));
  names.delete("constructor");
  return [...names];
}

/**
 * Refuses, before any work, a callback the loop would call wrongly or never: a hook name it does not
 * know (a misspelt one is never called), a hook that is not a function, or a hook written for Keras'
 * (epoch, logs), which the loop would hand a record and itself. A parameter named `logs` is the sign: the
 * library's hooks never get logs. tfjs callback objects are taken whole: the adapter calls them Keras' way.
 */
function checkCallback(callback: unknown): void {
  if (typeof callback !== "object" || callback === null) throw new Error(`callbacks: ${String(callback)} is not a callback; give objects with onEpochEnd, onBatchEnd, ... methods.`);
  if (isTfjsCallback(callback)) return;
  const hooks = Object.keys(HOOKS);
  for (const name of memberNames(callback)) {
    if (!hooks.includes(name)) {
      // State and helpers of the user's own are fine; a name that looks like a hook is a mistake.
      if (/^[oO]n[A-Z_]/.test(name) || closest(name, hooks)) throw new Error(`callbacks: there is no hook "${name}", so it would never be called. ${suggestion(name, hooks, "hooks")}`);
      continue;
    }
    const hook: unknown = (callback as Record<string, unknown>)[name];
    const form = `${name}(${HOOKS[name as keyof Callback]})`;
    if (typeof hook !== "function") throw new Error(`callbacks: ${name} is ${typeof hook}: give a function, ${form}.`);
    const parameters = parameterNames(hook);
    if (parameters.some((p) => /^logs?$/i.test(p))) {
      const fields = /record/.test(form) ? `record.loss, record.accuracy${name === "onEpochEnd" ? ", record.valLoss, record.valAccuracy" : ""} and ` : "";
      throw new Error(
        `callbacks: ${name}(${parameters.join(", ")}) is written for Keras' (epoch, logs), but the library calls ${form}, with ${fields}loop.stop(reason). ` +
          `Write it so, or keep the Keras form inside new tf.CustomCallback({ ${name}: ... }), which gets 0-based epochs and logs.loss, logs.acc, logs.val_loss, logs.val_acc.`,
      );
    }
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
    frozenBottomCache: true,
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
  for (const name of ["resume", "progress", "liveChart", "graph", "frozenBottomCache"] as const) {
    if (typeof o[name] !== "boolean") throw new Error(`${name} is ${JSON.stringify(o[name])}: use true or false.`);
  }
  for (const name of ["cacheDir", "checkpointDir", "tensorboard"] as const) {
    if (o[name] !== undefined && (typeof o[name] !== "string" || o[name] === "")) throw new Error(`${name} is ${JSON.stringify(o[name])}: give a folder path.`);
  }
  if (o.tensorboard !== undefined) checkLogFolder(path.resolve(o.tensorboard), "tensorboard", o.resume);
  checkDistortions(o.distortions);
  if (o.precision !== undefined) precisionFor(o.precision, o.graph);
  if (o.resume && !o.checkpointDir) throw new Error("resume: true needs checkpointDir, the folder of the run to continue.");
  o.callbacks.forEach(checkCallback);
  return o;
}
