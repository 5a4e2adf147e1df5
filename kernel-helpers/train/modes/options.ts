// One options shape for the three training modes, with each mode's defaults (recipes.ts), checked before
// any work starts by the library's one mechanism (util/options.ts): a misspelt name, a learning rate of
// Infinity, a negative time budget, or an option the mode would ignore is an OptionError that names the
// option and says what it takes.
import * as path from "path";
import type { Distortions } from "../../data/augment";
import { inKernel } from "../../display/display";
import { type CutLayer, CUT_LAYERS } from "../../network/inception";
import { PRECISION_OPTIONS, precisionFor, type PrecisionOption } from "../../runtime/precision";
import { badValue, checkNames, checkOptions, closest, OptionError, rule, type Rule, suggestion } from "../../util/options";
import { isTfjsCallback, type UserCallback } from "../loop/callback-adapter";
import type { Callback } from "../loop/loop";
import { type OptimizerName, OPTIMIZERS } from "../loop/optimizers";
import { type Mode, RECIPES } from "./recipes";
import { checkLogFolder } from "../classifier/tensorboard";

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

export type Resolved = Required<Omit<TrainOptions, "checkpointDir" | "layer" | "cacheDir" | "callbacks" | "tensorboard" | "precision">> &
  Pick<TrainOptions, "checkpointDir" | "layer" | "cacheDir" | "tensorboard" | "precision"> & { callbacks: UserCallback[] };

const DISTORTIONS: Record<keyof Distortions, Rule> = {
  flipLeftRight: rule.boolean(),
  randomCrop: rule.between(0, 100),
  randomScale: rule.between(0, 100),
  randomBrightness: rule.between(0, 100),
  rotation: rule.between(0, 180),
  zoom: rule.between(0, 0.99),
  shift: rule.between(0, 0.5),
};

/** Each training option's rule (util/options.ts): the one check every call that trains runs before any work. */
export const TRAIN_RULES: Record<keyof TrainOptions, Rule> = {
  epochs: rule.whole(1),
  batchSize: rule.whole(1),
  optimizer: rule.oneOf(OPTIMIZERS),
  learningRate: rule.positive(),
  dropout: rule.fraction(),
  labelSmoothing: rule.fraction(),
  distortions: rule.object("give an object such as { flipLeftRight: true, randomCrop: 10 }."),
  earlyStopping: rule.either(rule.whole(1), (v) => (v === false ? null : "use a whole number of at least 1, or false.")),
  seed: rule.whole(-Number.MAX_SAFE_INTEGER),
  layer: rule.oneOf(CUT_LAYERS, "not a cut point; use one of"),
  maxSeconds: (v) => (typeof v === "number" && Number.isFinite(v) && v >= 0 ? null : "use a number of seconds above 0, or 0 for no limit."),
  cacheDir: rule.text("give a folder path."),
  checkpointDir: rule.text("give a folder path."),
  tensorboard: rule.text("give a folder path."),
  resume: rule.boolean(),
  progress: rule.boolean(),
  liveChart: rule.boolean(),
  callbacks: rule.any(),
  graph: rule.boolean(),
  frozenBottomCache: rule.boolean(),
  precision: rule.oneOf(PRECISION_OPTIONS),
  unfreezeFrom: rule.oneOf(["all", ...CUT_LAYERS], 'not a block; use "all" or one of'),
  warmupEpochs: rule.whole(0),
  warmupLearningRate: rule.positive(),
};
export const OPTION_NAMES = Object.keys(TRAIN_RULES);

/** The function each mode is trained with, as errors name it. */
export const MODE_CALLS: Record<Mode, string> = { "retrain-final-layer": "retrainFinalLayer", "fine-tune": "fineTune", "from-scratch": "trainFromScratch" };

/**
 * Options only some modes take, and what they are for: given to another mode they would be ignored, so they
 * are refused, as the command line refuses the flags (cli/flags.ts reads this table).
 */
export const MODE_ONLY: Partial<Record<keyof TrainOptions, { modes: Mode[]; what: string }>> = {
  unfreezeFrom: { modes: ["fine-tune"], what: "the blocks a fine-tune trains" },
  warmupEpochs: { modes: ["fine-tune"], what: "a fine-tune's epochs of the head alone before the network trains" },
  warmupLearningRate: { modes: ["fine-tune"], what: "the learning rate of a fine-tune's warm-up" },
  frozenBottomCache: { modes: ["fine-tune"], what: "a fine-tune's store of its frozen blocks' output" },
  cacheDir: { modes: ["retrain-final-layer", "fine-tune"], what: "where features are cached; a run from scratch computes none" },
};

/** Refuses an option the mode would ignore, naming what it is for and the mode that takes it. */
export function checkModeTakes(mode: Mode, options: object, call = MODE_CALLS[mode]): void {
  for (const [name, value] of Object.entries(options)) {
    const only = MODE_ONLY[name as keyof TrainOptions];
    if (value === undefined || !only || only.modes.includes(mode)) continue;
    throw new OptionError(name, `${name}: ${call} does not take it (${only.what}), so it would be ignored: drop it${only.modes.length === 1 ? `, or use ${MODE_CALLS[only.modes[0]]}` : ""}.`);
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
  if (typeof callback !== "object" || callback === null) throw new OptionError("callbacks", `callbacks: ${String(callback)} is not a callback; give objects with onEpochEnd, onBatchEnd, ... methods.`);
  if (isTfjsCallback(callback)) return;
  const hooks = Object.keys(HOOKS);
  for (const name of memberNames(callback)) {
    if (!hooks.includes(name)) {
      // State and helpers of the user's own are fine; a name that looks like a hook is a mistake.
      if (/^[oO]n[A-Z_]/.test(name) || closest(name, hooks)) throw new OptionError("callbacks", `callbacks: there is no hook "${name}", so it would never be called. ${suggestion(name, hooks, "hooks")}`);
      continue;
    }
    const hook: unknown = (callback as Record<string, unknown>)[name];
    const form = `${name}(${HOOKS[name as keyof Callback]})`;
    if (typeof hook !== "function") throw new OptionError("callbacks", `callbacks: ${name} is ${typeof hook}: give a function, ${form}.`);
    const parameters = parameterNames(hook);
    if (parameters.some((p) => /^logs?$/i.test(p))) {
      const fields = /record/.test(form) ? `record.loss, record.accuracy${name === "onEpochEnd" ? ", record.valLoss, record.valAccuracy" : ""} and ` : "";
      throw new OptionError(
        "callbacks",
        `callbacks: ${name}(${parameters.join(", ")}) is written for Keras' (epoch, logs), but the library calls ${form}, with ${fields}loop.stop(reason). ` +
          `Write it so, or keep the Keras form inside new tf.CustomCallback({ ${name}: ... }), which gets 0-based epochs and logs.loss, logs.acc, logs.val_loss, logs.val_acc.`,
      );
    }
  }
}

function checkDistortions(d: Distortions): void {
  checkNames(d, Object.keys(DISTORTIONS), "distortions");
  for (const [name, value] of Object.entries(d)) {
    const problem = DISTORTIONS[name as keyof Distortions](value);
    if (problem) throw badValue(`distortions.${name}`, value, problem);
  }
}

/**
 * The settings of a training call of `mode`: the options checked (names, values, and that the mode takes them),
 * then the mode's defaults for what they leave open. Throws an OptionError naming the first bad option.
 */
export function resolve(mode: Mode, options: TrainOptions, call = MODE_CALLS[mode]): Resolved {
  checkOptions(options, TRAIN_RULES, "training options");
  checkModeTakes(mode, options, call);
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
  if (o.tensorboard !== undefined) checkLogFolder(path.resolve(o.tensorboard), "tensorboard", o.resume);
  checkDistortions(o.distortions);
  if (o.precision !== undefined) precisionFor(o.precision, o.graph);
  if (o.resume && !o.checkpointDir) throw new OptionError("resume", "resume: true needs checkpointDir, the folder of the run to continue.");
  o.callbacks.forEach(checkCallback);
  return o;
}
