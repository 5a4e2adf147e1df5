// The command line's flags: TensorFlow retrain.py's names where they mean the same thing, each with its
// help, its default and its rule. Everything a flag can get wrong is found here, before the network loads
// and before any image is read: a bad value exits 2 with the flag's name and what it takes (the library's
// own checks would name its options, `testPercent`, which the user never typed).
import * as fs from "fs";
import * as path from "path";
import { parseArgs } from "util";
import { CUT_LAYERS, type CutLayer, maxInputSize, MIN_INPUT_SIZE } from "../network/inception";
import { PRECISION_OPTIONS, type PrecisionOption } from "../runtime/precision";
import { closest } from "../util/options";
import { type Quantization, QUANTIZATIONS } from "../train/classifier/tflite";
import { MODE_ONLY, type TrainOptions } from "../train/modes/options";
import { type Mode, MODES, RECIPES } from "../train/modes/recipes";

/** A flag's value is wrong: exit status 2, the message names the flag. */
export class UsageError extends Error {}

interface NumberRule {
  whole?: boolean;
  least: number;
  /** The least value itself is not allowed (a learning rate above 0). */
  above?: boolean;
  most?: number;
  /** The most value itself is not allowed (a percentage below 100). */
  below?: boolean;
}

interface Flag {
  type: "string" | "boolean";
  help: string;
  default?: string;
  number?: NumberRule;
  /** The library option the flag becomes, where it becomes one: the library's errors name the option, the command line the flag. */
  option?: string;
}

const PERCENT: NumberRule = { least: 0, most: 100, below: true };
const DISTORTION: NumberRule = { least: 0, most: 100 };

/** retrain.py's defaults for the flags it has: the retrain-final-layer mode takes them (measured in README). */
export const RETRAIN_PY = { steps: 4000, learningRate: 0.01, batchSize: 100, optimizer: "sgd" } as const;

export const FLAGS: Record<string, Flag> = {
  image_dir: { type: "string", help: "folder with one sub-folder of images per class (required)" },
  mode: { type: "string", help: `${MODES.join(", ")}: retrain the final layer (retrain.py), fine-tune the network, or train it from random weights`, default: "retrain-final-layer" },
  unfreeze_from: { type: "string", help: `fine-tune only: train the blocks from this one up (${CUT_LAYERS.join(", ")}) or "all"`, default: "all", option: "unfreezeFrom" },
  warmup_epochs: { type: "string", help: "fine-tune only: epochs that first train the new classifier alone, on cached features (0: none)", default: String(RECIPES["fine-tune"].defaults.warmupEpochs), number: { whole: true, least: 0 }, option: "warmupEpochs" },
  weights: { type: "string", help: 'pretrained weights: "imagenet" (the Keras ImageNet weights, downloaded once), "bundled" (offline, ships with the project), or a .h5 / model.json path; default imagenet when it can be had, else bundled', option: "weights" },
  input_size: { type: "string", help: `image side in pixels (${MIN_INPUT_SIZE} to ${maxInputSize()}, what this machine's memory holds; smaller is faster)`, default: "299", number: { whole: true, least: MIN_INPUT_SIZE, most: maxInputSize() }, option: "inputSize" },
  precision: { type: "string", help: `${PRECISION_OPTIONS.join(", ")}: what the network computes in; auto is bfloat16 on CPUs with AMX or AVX-512 BF16, float16 on GPUs with tensor cores, else float32`, default: "auto", option: "precision" },
  how_many_training_steps: {
    type: "string",
    help: `training steps (batches), turned into whole epochs over the training images; default ${RETRAIN_PY.steps} for retrain-final-layer (retrain.py's), the mode's epochs otherwise (fine-tune ${RECIPES["fine-tune"].defaults.epochs}, from-scratch ${RECIPES["from-scratch"].defaults.epochs})`,
    number: { whole: true, least: 1 },
  },
  epochs: { type: "string", help: "epochs instead of steps (fine-tune: after the warm-up epochs)", number: { whole: true, least: 1 }, option: "epochs" },
  learning_rate: {
    type: "string",
    help: `default ${RETRAIN_PY.learningRate} with plain gradient descent for retrain-final-layer (retrain.py's); ${RECIPES["fine-tune"].defaults.learningRate} (fine-tune) and ${RECIPES["from-scratch"].defaults.learningRate} (from-scratch) with Adam`,
    number: { least: 0, above: true },
    option: "learningRate",
  },
  train_batch_size: {
    type: "string",
    help: `images per training step; default ${RETRAIN_PY.batchSize} for retrain-final-layer (retrain.py's), ${RECIPES["fine-tune"].defaults.batchSize} (fine-tune) and ${RECIPES["from-scratch"].defaults.batchSize} (from-scratch)`,
    number: { whole: true, least: 1 },
    option: "batchSize",
  },
  testing_percentage: { type: "string", help: "percentage of images for the test split", default: "10", number: PERCENT, option: "testPercent" },
  validation_percentage: { type: "string", help: "percentage of images for the validation split", default: "10", number: PERCENT, option: "validationPercent" },
  seed: { type: "string", help: "seed of the shuffles, distortions, dropout and new weights: the same seed trains the same again", default: "0", number: { whole: true, least: 0 }, option: "seed" },
  bottleneck_dir: { type: "string", help: "folder for the cached features (default: the user cache folder, ~/.cache/inception-lab)", option: "cacheDir" },
  print_misclassified_test_images: { type: "boolean", help: "list the test images the final classifier gets wrong" },
  flip_left_right: { type: "boolean", help: "distortion: mirror half of the training images" },
  random_crop: { type: "string", help: "distortion: percentage of margin to crop at random", number: DISTORTION },
  random_scale: { type: "string", help: "distortion: percentage to enlarge at random", number: DISTORTION },
  random_brightness: { type: "string", help: "distortion: percentage to brighten or darken at random", number: DISTORTION },
  summaries_dir: { type: "string", help: "write TensorBoard logs into this folder, a new one per run (the command prints how to view them)", option: "tensorboard" },
  saved_model_dir: { type: "string", help: "write a TensorFlow SavedModel here (serving_default: images 0..255 in, probabilities and labels out)" },
  keras_dir: { type: "string", help: "write a Keras model (model.keras, labels.json) here" },
  tflite_dir: { type: "string", help: "write a TensorFlow Lite model (model.tflite, labels.txt, labels.json) here, run in a TFLite interpreter on the test split before it is written" },
  quantize: { type: "string", help: `the TensorFlow Lite model's quantization (with --tflite_dir): ${QUANTIZATIONS.join(", ")} (float32, float16 weights, int8 weights, or integers throughout calibrated on the training images)`, default: "none", option: "quantize" },
  output_dir: { type: "string", help: "write the library's own model folder (tfjs model.json, labels.json) here" },
  output_labels: { type: "string", help: "write the class labels, one per line, to this file" },
  output_split: { type: "string", help: "write the split (path,label,class,split per image, CSV) to this file, to train on the same images in Python" },
  tfhub_module: { type: "string", help: "not taken: this command trains Inception-v3 only; --weights chooses its weights" },
  help: { type: "boolean", help: "show this list" },
};

/** The flag a library option comes from, where one does. */
export function flagOf(option: string): string | null {
  return Object.entries(FLAGS).find(([, flag]) => flag.option === option)?.[0] ?? null;
}

export function usage(): string {
  const rows = Object.entries(FLAGS).map(([name, flag]) => `  --${name}${flag.type === "string" ? " VALUE" : ""}\n      ${flag.help}${flag.default ? ` (default ${flag.default})` : ""}`);
  return [
    "usage: npx inception-lab --image_dir DIR [flags]",
    "",
    "Trains Inception-v3 on a folder of images, as TensorFlow's retrain.py does, or fine-tunes it, or trains it from scratch.",
    "Exit status: 0 done, 2 a bad flag (nothing done), 130 interrupted (the best epoch so far written), 1 anything that failed on the way.",
    "",
    ...rows,
  ].join("\n");
}

/** The flags as typed: strings, booleans, undefined where absent. */
export type Given = Record<string, string | boolean | undefined>;

export function parseFlags(argv: string[]): Given {
  try {
    return parseArgs({ args: argv, options: Object.fromEntries(Object.entries(FLAGS).map(([name, flag]) => [name, { type: flag.type }])), strict: true, allowPositionals: false }).values;
  } catch (error) {
    const message = (error as Error).message.split("\n")[0].replace(/\. To specify.*$/, "").replace(/\.$/, "");
    const unknown = /Unknown option '--?([^']+)'/.exec(message)?.[1];
    const guess = unknown ? closest(unknown, Object.keys(FLAGS)) : null;
    const dashed = /Option '(--[^']+)' argument is ambiguous/.exec(message)?.[1];
    const hint = guess ? ` Did you mean --${guess}?` : dashed ? ` (a value that starts with "-" reads as a flag: write ${dashed}=VALUE)` : "";
    throw new UsageError(`${message}.${hint} npx inception-lab --help lists the flags.`);
  }
}

/** A number flag's value, checked against its rule; undefined when absent. */
export function numberFlag(given: Given, name: string): number | undefined {
  const value = given[name] ?? FLAGS[name].default;
  if (value === undefined) return undefined;
  const rule = FLAGS[name].number!;
  // Decimal numbers only: Number("0x4b") would read as 75.
  const decimal = rule.whole ? /^\s*\+?\d+\s*$/ : /^\s*[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?\s*$/i;
  const parsed = typeof value === "string" && decimal.test(value) ? Number(value) : NaN;
  const fits =
    Number.isFinite(parsed) &&
    (!rule.whole || Number.isInteger(parsed)) &&
    (rule.above ? parsed > rule.least : parsed >= rule.least) &&
    (rule.most === undefined || (rule.below ? parsed < rule.most : parsed <= rule.most));
  if (fits) return parsed;
  const kind = rule.whole ? "a whole number" : "a number";
  const range =
    rule.most !== undefined ? `from ${rule.least} to ${rule.below ? `below ${rule.most}` : rule.most}` : rule.above ? `above ${rule.least}` : `of at least ${rule.least}`;
  throw new UsageError(`--${name} is "${value}": give ${kind} ${range}.`);
}

/** What the flags ask for, checked. */
export interface Command {
  imageDir: string;
  mode: Mode;
  unfreezeFrom: CutLayer | "all";
  warmupEpochs: number;
  /** The --weights given, or undefined: ImageNet when it can be had, else bundled. */
  weights?: string;
  inputSize: number;
  precision: PrecisionOption;
  steps?: number;
  epochs?: number;
  learningRate?: number;
  batchSize?: number;
  testPercent: number;
  validationPercent: number;
  seed: number;
  distortions: { flipLeftRight?: boolean; randomCrop?: number; randomScale?: number; randomBrightness?: number };
  printMisclassified: boolean;
  /** Output paths by flag name, resolved against the current folder. */
  outputs: Partial<Record<OutputFlag, string>>;
  /** The TensorFlow Lite export's quantization (--quantize, with --tflite_dir). */
  quantize: Quantization;
}

export const OUTPUT_FLAGS = ["output_dir", "keras_dir", "saved_model_dir", "tflite_dir", "summaries_dir", "bottleneck_dir", "output_labels", "output_split"] as const;
export type OutputFlag = (typeof OUTPUT_FLAGS)[number];

/** A flag that only some modes take, given with another: an error, not silently ignored (the library's MODE_ONLY table, or `only`). */
function onlyWith(given: Given, flag: string, mode: Mode, only = MODE_ONLY[FLAGS[flag].option as keyof TrainOptions]!): void {
  const { modes, what } = only;
  if (given[flag] !== undefined && !modes.includes(mode)) throw new UsageError(`--${flag} is for ${modes.map((m) => `--mode ${m}`).join(" or ")} (${what}); --mode is ${mode}: drop --${flag} or change --mode.`);
}

export function checkFlags(given: Given): Command {
  if (given.tfhub_module !== undefined) {
    throw new UsageError(
      `--tfhub_module is not taken: this command trains Inception-v3 (retrain.py's default module) from its own weights. ` +
        `Use --weights imagenet (the Keras ImageNet weights), --weights bundled (offline), or --weights path/to/weights.h5, and drop --tfhub_module.`,
    );
  }
  const text = (name: string) => (given[name] as string | undefined) ?? FLAGS[name].default;
  const imageDir = text("image_dir");
  if (!imageDir) throw new UsageError("--image_dir is required: the folder with one sub-folder of images per class.");
  if (!fs.statSync(imageDir, { throwIfNoEntry: false })?.isDirectory()) throw new UsageError(`--image_dir: ${path.resolve(imageDir)} is not a folder. Give a folder with one sub-folder of images per class.`);
  const mode = text("mode") as Mode;
  if (!MODES.includes(mode)) {
    const guess = MODES.find((m) => m.includes(mode.toLowerCase())) ?? closest(mode, MODES);
    throw new UsageError(`--mode is "${mode}": ${guess ? `did you mean --mode ${guess}? ` : ""}Use ${MODES.join(", ")}.`);
  }
  onlyWith(given, "unfreeze_from", mode);
  onlyWith(given, "warmup_epochs", mode);
  onlyWith(given, "weights", mode, { modes: ["retrain-final-layer", "fine-tune"], what: "the pretrained start; from-scratch starts from random weights" });
  onlyWith(given, "bottleneck_dir", mode);
  const unfreezeFrom = text("unfreeze_from") as CutLayer | "all";
  if (unfreezeFrom !== "all" && !CUT_LAYERS.includes(unfreezeFrom)) throw new UsageError(`--unfreeze_from is "${unfreezeFrom}": use "all" or one of ${CUT_LAYERS.join(", ")}.`);
  const precision = text("precision") as PrecisionOption;
  if (!PRECISION_OPTIONS.includes(precision)) throw new UsageError(`--precision is "${precision}": use ${PRECISION_OPTIONS.join(", ")}.`);
  const weights = text("weights");
  if (weights !== undefined && !["imagenet", "bundled"].includes(weights) && !/^https?:\/\//.test(weights)) {
    if (!/\.(h5|json)$/i.test(weights)) throw new UsageError(`--weights is "${weights}": use imagenet, bundled, or the path of a Keras .h5 or tfjs model.json file.`);
    if (!fs.statSync(weights, { throwIfNoEntry: false })?.isFile()) throw new UsageError(`--weights: ${path.resolve(weights)} is not a file.`);
  }
  if (given.epochs !== undefined && given.how_many_training_steps !== undefined) throw new UsageError("--epochs and --how_many_training_steps both say how long to train: give one of them.");
  const quantize = text("quantize") as Quantization;
  if (!QUANTIZATIONS.includes(quantize)) throw new UsageError(`--quantize is "${quantize}": use ${QUANTIZATIONS.join(", ")}.`);
  if (given.quantize !== undefined && given.tflite_dir === undefined) throw new UsageError("--quantize is for the TensorFlow Lite export: give --tflite_dir DIR too, or drop --quantize.");

  const numbers = Object.fromEntries(Object.keys(FLAGS).filter((name) => FLAGS[name].number).map((name) => [name, numberFlag(given, name)]));
  const [testPercent, validationPercent] = [numbers.testing_percentage!, numbers.validation_percentage!];
  if (testPercent + validationPercent >= 100) throw new UsageError(`--testing_percentage ${testPercent} and --validation_percentage ${validationPercent} leave no image for training: keep their sum under 100.`);
  const outputs: Command["outputs"] = {};
  for (const flag of OUTPUT_FLAGS) {
    const value = given[flag];
    if (value === "") throw new UsageError(`--${flag} is empty: give a path.`);
    if (typeof value === "string") outputs[flag] = path.resolve(value);
  }
  return {
    imageDir: path.resolve(imageDir),
    mode,
    unfreezeFrom,
    warmupEpochs: numbers.warmup_epochs!,
    weights,
    inputSize: numbers.input_size!,
    precision,
    steps: numbers.how_many_training_steps,
    epochs: numbers.epochs,
    learningRate: numbers.learning_rate,
    batchSize: numbers.train_batch_size,
    testPercent,
    validationPercent,
    seed: numbers.seed!,
    distortions: {
      ...(given.flip_left_right ? { flipLeftRight: true } : {}),
      ...(numbers.random_crop !== undefined ? { randomCrop: numbers.random_crop } : {}),
      ...(numbers.random_scale !== undefined ? { randomScale: numbers.random_scale } : {}),
      ...(numbers.random_brightness !== undefined ? { randomBrightness: numbers.random_brightness } : {}),
    },
    printMisclassified: given.print_misclassified_test_images === true,
    outputs,
    quantize,
  };
}
