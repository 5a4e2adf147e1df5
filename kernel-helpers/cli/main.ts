// npx inception-lab: training from a script or a shell, with TensorFlow retrain.py's flag names where
// they mean the same thing, and its way of reporting (a line per epoch, the final test accuracy).
// Exit status: 0 done, 2 bad flags, 1 anything that failed on the way (with the reason on stderr).
import * as fs from "fs";
import * as path from "path";
import { parseArgs } from "util";
import type { Distortions } from "../data/augment";
import { imageFolder } from "../data/image-folder";
import { CUT_LAYERS, type CutLayer } from "../network/inception";
import { imagenetAvailable, loadInceptionV3 } from "../network/model";
import { writeAtomically } from "../util/atomic";
import { fineTune, retrainFinalLayer, trainFromScratch } from "../train/modes";
import type { TrainOptions } from "../train/options";

interface Flag {
  type: "string" | "boolean";
  help: string;
  default?: string;
}

const FLAGS: Record<string, Flag> = {
  image_dir: { type: "string", help: "folder with one sub-folder of images per class (required)" },
  mode: { type: "string", help: "retrain (the final layer, retrain.py), fine-tune, or scratch", default: "retrain" },
  unfreeze_from: { type: "string", help: `fine-tune: train the blocks from this one up (${CUT_LAYERS.join(", ")}) or "all"`, default: "all" },
  weights: { type: "string", help: 'pretrained weights: "imagenet" (downloaded once), "bundled" (offline), or a .h5 / model.json path; default imagenet when it can be had, else bundled' },
  input_size: { type: "string", help: "image side in pixels", default: "299" },
  how_many_training_steps: { type: "string", help: "training steps (batches); turned into epochs over the training images", default: "4000" },
  epochs: { type: "string", help: "epochs instead of steps" },
  learning_rate: { type: "string", help: "learning rate (default: the mode's, 1e-3 retraining, 1e-4 fine-tuning)" },
  train_batch_size: { type: "string", help: "images per training step (default: the mode's, 32 retraining, 16 otherwise)" },
  testing_percentage: { type: "string", help: "percentage of images for the test split", default: "10" },
  validation_percentage: { type: "string", help: "percentage of images for the validation split", default: "10" },
  bottleneck_dir: { type: "string", help: "folder for the cached features (default: the user cache folder)" },
  print_misclassified_test_images: { type: "boolean", help: "list the test images the final classifier gets wrong" },
  flip_left_right: { type: "boolean", help: "distortion: mirror half of the training images" },
  random_crop: { type: "string", help: "distortion: percentage of margin to crop at random" },
  random_scale: { type: "string", help: "distortion: percentage to enlarge at random" },
  random_brightness: { type: "string", help: "distortion: percentage to brighten or darken at random" },
  summaries_dir: { type: "string", help: "TensorBoard logs go here (npm run tensorboard)" },
  saved_model_dir: { type: "string", help: "write a TensorFlow SavedModel here (serving_default: images 0..255 in, probabilities and labels out)" },
  keras_dir: { type: "string", help: "write a Keras model (model.keras, labels.json) here" },
  output_dir: { type: "string", help: "write the library's own model folder (tfjs model.json, labels.json) here" },
  output_labels: { type: "string", help: "write the class labels, one per line, to this file" },
  help: { type: "boolean", help: "show this list" },
};

export function usage(): string {
  const rows = Object.entries(FLAGS).map(([name, flag]) => `  --${name}${flag.type === "string" ? " VALUE" : ""}\n      ${flag.help}${flag.default ? ` (default ${flag.default})` : ""}`);
  return ["usage: npx inception-lab --image_dir DIR [flags]", "", "Trains Inception-v3 on a folder of images, as TensorFlow's retrain.py does, or fine-tunes it, or trains it from scratch.", "", ...rows].join("\n");
}

class UsageError extends Error {}

function number(flags: Record<string, string | boolean | undefined>, name: string): number | undefined {
  const value = flags[name];
  if (value === undefined) return undefined;
  const parsed = Number(value);
  if (typeof value !== "string" || value.trim() === "" || !Number.isFinite(parsed)) throw new UsageError(`--${name} is "${value}": give a number.`);
  return parsed;
}

async function run(argv: string[]): Promise<void> {
  let flags: Record<string, string | boolean | undefined>;
  try {
    flags = parseArgs({ args: argv, options: Object.fromEntries(Object.entries(FLAGS).map(([name, flag]) => [name, { type: flag.type }])), strict: true, allowPositionals: false }).values;
  } catch (error) {
    throw new UsageError(`${(error as Error).message.replace(/\. To specify.*$/, "")}. npx inception-lab --help lists the flags.`);
  }
  if (flags.help) {
    console.log(usage());
    return;
  }
  const get = (name: string) => (flags[name] as string | undefined) ?? FLAGS[name].default;
  const dir = get("image_dir");
  if (!dir) throw new UsageError("--image_dir is required: the folder with one sub-folder of images per class.");
  const mode = get("mode")!;
  if (!["retrain", "fine-tune", "scratch"].includes(mode)) throw new UsageError(`--mode is "${mode}": use retrain, fine-tune or scratch.`);
  const unfreezeFrom = get("unfreeze_from") as CutLayer | "all";
  if (unfreezeFrom !== "all" && !CUT_LAYERS.includes(unfreezeFrom)) throw new UsageError(`--unfreeze_from is "${unfreezeFrom}": use "all" or one of ${CUT_LAYERS.join(", ")}.`);

  const data = await imageFolder(dir, { testPercent: number(flags, "testing_percentage") ?? 10, validationPercent: number(flags, "validation_percentage") ?? 10 });
  console.log(`${data.classes.length} classes, ${data.files().length} images (${data.files("train").length} training, ${data.files("validation").length} validation, ${data.files("test").length} test)`);
  const batchSize = number(flags, "train_batch_size");
  const steps = number(flags, "how_many_training_steps")!;
  const epochs = number(flags, "epochs") ?? Math.max(1, Math.round((steps * (batchSize ?? (mode === "retrain" ? 32 : 16))) / Math.max(data.files("train").length, 1)));
  const distortions: Distortions = {
    ...(flags.flip_left_right ? { flipLeftRight: true } : {}),
    ...(flags.random_crop !== undefined ? { randomCrop: number(flags, "random_crop") } : {}),
    ...(flags.random_scale !== undefined ? { randomScale: number(flags, "random_scale") } : {}),
    ...(flags.random_brightness !== undefined ? { randomBrightness: number(flags, "random_brightness") } : {}),
  };
  const options: TrainOptions = {
    epochs,
    ...(batchSize !== undefined ? { batchSize } : {}),
    ...(flags.learning_rate !== undefined ? { learningRate: number(flags, "learning_rate") } : {}),
    ...(get("bottleneck_dir") ? { cacheDir: get("bottleneck_dir") } : {}),
    ...(get("summaries_dir") ? { tensorboard: get("summaries_dir") } : {}),
    distortions,
    progress: false,
    liveChart: false,
    callbacks: {
      onEpochEnd: (e) =>
        console.log(
          `Epoch ${e.epoch} (${e.phase}): train accuracy = ${(e.accuracy * 100).toFixed(1)}%, cross entropy = ${e.loss.toFixed(4)}` +
            (e.valAccuracy === null ? "" : `, validation accuracy = ${(e.valAccuracy * 100).toFixed(1)}%`) +
            `, ${e.seconds.toFixed(1)} s`,
        ),
    },
  };
  const inputSize = number(flags, "input_size")!;
  const weights = get("weights") ?? ((await imagenetAvailable()) ? "imagenet" : "bundled");
  console.log(`${mode === "scratch" ? "Random weights" : `Weights: ${weights}`}, input ${inputSize}x${inputSize}, ${epochs} epochs`);
  const trained =
    mode === "scratch"
      ? await trainFromScratch(data, { ...options, inputSize })
      : mode === "fine-tune"
        ? await fineTune(await loadInceptionV3({ weights, inputSize }), data, { ...options, unfreezeFrom })
        : await retrainFinalLayer(await loadInceptionV3({ weights, inputSize }), data, options);
  if (trained.info.stopReason) console.log(`Stopped: ${trained.info.stopReason}.`);
  if (data.files("test").length > 0) {
    const evaluation = await trained.evaluate();
    console.log(`Final test accuracy = ${(evaluation.accuracy * 100).toFixed(1)}% (N=${evaluation.files.length})`);
    if (flags.print_misclassified_test_images) {
      console.log("=== MISCLASSIFIED TEST IMAGES ===");
      for (const m of evaluation.misclassified) console.log(`${path.relative(data.dir, m.path)}  ${m.predicted}`);
    }
  }
  const outputs: [string, () => Promise<string>][] = [
    ["output_dir", () => trained.save(get("output_dir")!)],
    ["keras_dir", () => trained.export(get("keras_dir")!, { format: "keras" })],
    ["saved_model_dir", () => trained.export(get("saved_model_dir")!, { format: "savedmodel" })],
  ];
  for (const [flag, write] of outputs) if (get(flag)) console.log(`Written: ${await write()}`);
  const labels = get("output_labels");
  if (labels) {
    fs.mkdirSync(path.dirname(path.resolve(labels)), { recursive: true });
    writeAtomically(path.resolve(labels), data.classes.join("\n") + "\n");
    console.log(`Written: ${path.resolve(labels)}`);
  }
}

/** Runs the command line; resolves to the exit status. */
export async function main(argv: string[]): Promise<number> {
  try {
    await run(argv);
    return 0;
  } catch (error) {
    console.error(`inception-lab: ${(error as Error).message}`);
    return error instanceof UsageError ? 2 : 1;
  }
}
