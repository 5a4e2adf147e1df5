// npx inception-lab: training from a script or a shell, with TensorFlow retrain.py's flag names and
// defaults where they mean the same thing, and its way of reporting (a line per epoch, the final test
// accuracy). Before training it says what the flags became: steps as epochs, warm-up epochs, the weights
// and why, the input size, the precision and why. Exit status: 0 done, 2 a bad flag or output (found
// before any work: before the network loads and before any image is read), 130 interrupted (Ctrl-C: the
// outputs hold the best epoch so far, and the command says so), 1 anything that failed on the way. The
// status and the flag an error names follow from the error's type (OptionError, UsageError, ...), never
// from its text.
import * as path from "path";
import { ImageFolder } from "../data/image-folder";
import { precisionFor } from "../runtime/precision";
import { labelsText } from "../train/classifier/classifier";
import type { EpochRecord } from "../train/loop/loop";
import { resolve, type TrainOptions } from "../train/modes/options";
import { RECIPES } from "../train/modes/recipes";
import { DownloadError } from "../util/download";
import { InterruptedError } from "../util/interrupt";
import { OptionError } from "../util/options";
import { checkFlags, type Command, flagOf, parseFlags, RETRAIN_PY, usage, UsageError } from "./flags";
import { checkOutputFiles, checkOutputFolders, tensorboardCommand, writeOutputFile } from "./outputs";

/** Epoch lines printed at most, about: a run of 4,000 one-step epochs prints every 40th. */
const EPOCH_LINES = 100;

/** How long to train, from the flags and the data: steps become whole epochs, said exactly. */
function trainingPlan(command: Command, trainImages: number) {
  const { mode } = command;
  const retraining = mode === "retrain-final-layer";
  const defaults = RECIPES[mode].defaults;
  const batchSize = command.batchSize ?? (retraining ? RETRAIN_PY.batchSize : defaults.batchSize);
  const stepsPerEpoch = Math.ceil(trainImages / batchSize);
  const steps = command.steps ?? (retraining && command.epochs === undefined ? RETRAIN_PY.steps : undefined);
  const epochs = command.epochs ?? (steps !== undefined ? Math.max(1, Math.round(steps / stepsPerEpoch)) : defaults.epochs);
  const warmupEpochs = mode === "fine-tune" ? command.warmupEpochs : 0;
  const options: TrainOptions = {
    epochs,
    batchSize,
    ...(retraining ? { optimizer: RETRAIN_PY.optimizer, learningRate: command.learningRate ?? RETRAIN_PY.learningRate } : { learningRate: command.learningRate }),
    ...(mode === "fine-tune" ? { warmupEpochs, unfreezeFrom: command.unfreezeFrom } : {}),
  };
  const settings = resolve(mode, options); // with the library's defaults for what the flags leave open
  const perEpoch = `${trainImages} training images in batches of ${batchSize} make ${stepsPerEpoch} step${stepsPerEpoch > 1 ? "s" : ""} per epoch`;
  const length =
    steps !== undefined
      ? `${steps} steps (--how_many_training_steps${command.steps === undefined ? ", retrain.py's default" : ""}): ${perEpoch}, so ${epochs} epochs = ${epochs * stepsPerEpoch} steps` +
        (epochs * stepsPerEpoch !== steps ? " (the nearest whole number of epochs)" : "")
      : `${epochs} epoch${epochs > 1 ? "s" : ""}${command.epochs === undefined ? ` (the ${mode} mode's default)` : ""} = ${epochs * stepsPerEpoch} steps: ${perEpoch}`;
  const what =
    mode === "retrain-final-layer"
      ? `the new final layer on cached features, ${length}.`
      : mode === "fine-tune"
        ? (warmupEpochs > 0
            ? `first ${warmupEpochs} warm-up epoch${warmupEpochs > 1 ? "s" : ""} (${warmupEpochs * stepsPerEpoch} steps) train the new classifier alone on cached features (--warmup_epochs; 0 skips them), then `
            : "") + `the network from ${command.unfreezeFrom === "all" ? "its first layer" : command.unfreezeFrom} up, ${length}${warmupEpochs > 0 ? `; ${warmupEpochs + epochs} epochs in all` : ""}.`
        : `the whole network from random weights, ${length}.`;
  const chosen = [
    `${settings.optimizer === "sgd" ? "plain gradient descent" : settings.optimizer} at learning rate ${settings.learningRate}${command.learningRate === undefined ? "" : " (--learning_rate)"}`,
    `batch ${batchSize}${command.batchSize === undefined ? "" : " (--train_batch_size)"}`,
  ].join(", ");
  const why = retraining
    ? "retrain.py's defaults where not given (measured on bundled features: they train as well as Adam at 1e-3, README)"
    : `the ${mode} mode's defaults where not given (retrain.py's 0.01 with gradient descent and batch 100 are for a new final layer on cached features, not for training the network)` +
      (warmupEpochs > 0 ? `; the warm-up: ${settings.optimizer} at learning rate ${settings.warmupLearningRate}` : "");
  const totalEpochs = warmupEpochs + epochs;
  const every = Math.ceil(totalEpochs / EPOCH_LINES);
  return {
    options,
    lines: [`Training: ${what}`, `Optimizer: ${chosen}: ${why}.`, ...(every > 1 ? [`(a line every ${every} epochs, and the last of each phase)`] : [])],
    /** Whether an epoch gets its line. */
    shown: (epoch: number) => epoch % every === 0 || epoch === warmupEpochs || epoch === totalEpochs,
    totalEpochs,
  };
}

function epochLine(e: EpochRecord, totalEpochs: number): string {
  return (
    `Epoch ${e.epoch}/${totalEpochs} (${e.phase}): train accuracy = ${(e.accuracy * 100).toFixed(1)}%, cross entropy = ${e.loss.toFixed(4)}` +
    (e.valAccuracy === null ? "" : `, validation accuracy = ${(e.valAccuracy * 100).toFixed(1)}%`) +
    `, ${e.seconds.toFixed(1)} s since start`
  );
}

/** A data set's skipped files in one line: how many, and the commonest reasons. */
function skippedLine(data: ImageFolder): string | null {
  if (data.skipped.length === 0) return null;
  const reasons = new Map<string, number>();
  for (const { reason } of data.skipped) reasons.set(reason, (reasons.get(reason) ?? 0) + 1);
  const top = [...reasons].sort((a, b) => b[1] - a[1]).slice(0, 3).map(([reason, n]) => `${n} ${reason}`);
  return `Skipped: ${data.skipped.length} file${data.skipped.length > 1 ? "s" : ""} (${top.join("; ")}${reasons.size > 3 ? "; ..." : ""}).`;
}

/** What run() ended with: the exit status of a run that did not fail. */
type Ended = 0 | 130;

async function run(argv: string[], loadLibrary: () => void): Promise<Ended> {
  const given = parseFlags(argv);
  if (given.help) {
    console.log(usage());
    return 0;
  }
  const command = checkFlags(given);
  const { outputs } = command;
  checkOutputFolders(outputs);
  let data: ImageFolder;
  try {
    data = new ImageFolder(command.imageDir, { testPercent: command.testPercent, validationPercent: command.validationPercent }); // lists the files, reads no image
  } catch (error) {
    throw new UsageError(`--image_dir: ${(error as Error).message}`);
  }
  checkOutputFiles(outputs, { output_labels: () => labelsText(data.classes), output_split: () => data.splitCsv() });
  const trainImages = data.files("train").length;
  if (trainImages === 0) throw new UsageError(`--testing_percentage ${command.testPercent} and --validation_percentage ${command.validationPercent} leave no training image in ${command.imageDir}: lower them, or add images.`);

  loadLibrary();
  const { imagenetAvailable, loadInceptionV3 } = await import("../network/model");
  const { fineTune, retrainFinalLayer, trainFromScratch } = await import("../train/modes/modes");
  const pretrained = command.mode !== "from-scratch";
  let weights = command.weights;
  let weightsWhy = weights === undefined ? "" : " (--weights)";
  if (pretrained && (weights === undefined || weights === "imagenet")) {
    const available = await imagenetAvailable();
    if (!available && weights === "imagenet") {
      throw new Error(
        "--weights imagenet: the ImageNet weights are not in the cache and cannot be downloaded now (offline?). " +
          "Use --weights bundled (a pretrained Inception-v3 that ships with the project, no download) or --weights path/to/inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5.",
      );
    }
    if (weights === undefined) {
      weights = available ? "imagenet" : "bundled";
      weightsWhy = available ? " (the default)" : ", because the ImageNet weights are not in the cache and cannot be downloaded now (offline?); --weights imagenet once online";
    }
  }
  console.log(`Data: ${data.classes.length} classes, ${data.files().length} images in ${data.dir} (${trainImages} training, ${data.files("validation").length} validation, ${data.files("test").length} test)`);
  const skipped = skippedLine(data);
  if (skipped) console.log(`${skipped} data.report() in a notebook lists them.`);
  const inception = await loadInceptionV3({ weights: pretrained ? weights : null, inputSize: command.inputSize, precision: command.precision, seed: command.seed }).catch((error: Error) => {
    throw error instanceof DownloadError ? new Error(`--weights ${weights}: ${error.reason} Use --weights bundled (a pretrained Inception-v3 that ships with the project, no download), or a local copy: --weights path/to/weights.h5.`) : error;
  });
  console.log(
    pretrained
      ? `Weights: ${inception.source.description}${weightsWhy}.${inception.source.provenance === weights ? "" : ` ${inception.source.provenance}`}`
      : `Weights: random (from-scratch), seed ${command.seed}${given.seed === undefined ? " (the default; --seed to change)" : " (--seed)"}.`,
  );
  const network = pretrained ? `Inception-v3 cut at ${inception.source.layer} (where these weights' features transfer best)` : "Inception-v3, all of it";
  console.log(`Network: ${network}, input ${command.inputSize}x${command.inputSize}${given.input_size === undefined ? " (the default; --input_size 75 and up trains faster)" : " (--input_size)"}.`);
  const precision = precisionFor(command.precision);
  console.log(`Precision: ${precision.precision} (${precision.reason})${precision.precision === "float32" ? "" : "; --precision float32 turns it off"}.${precision.warning ? ` Note: ${precision.warning}` : ""}`);
  const plan = trainingPlan(command, trainImages);
  for (const line of plan.lines) console.log(line);

  const options: TrainOptions = {
    ...plan.options,
    seed: command.seed,
    precision: command.precision,
    distortions: command.distortions,
    ...(outputs.bottleneck_dir ? { cacheDir: outputs.bottleneck_dir } : {}),
    ...(outputs.summaries_dir ? { tensorboard: outputs.summaries_dir } : {}),
    progress: false,
    liveChart: false,
    callbacks: { onEpochEnd: (e) => void (plan.shown(e.epoch) && console.log(epochLine(e, plan.totalEpochs))) },
  };
  const train = command.mode === "from-scratch" ? trainFromScratch : command.mode === "fine-tune" ? fineTune : retrainFinalLayer;
  // Another run took the log folder since the flags were checked: the library refuses it before any work, as an OptionError.
  const trained = await train(inception, data, options);
  const interrupted = trained.info.stopReason === "interrupted";
  if (trained.info.stopReason && !interrupted) console.log(`Stopped: ${trained.info.stopMessage}.`);
  if (interrupted) console.log(`Interrupted: the outputs below hold the weights of the best epoch so far (epoch ${trained.bestEpoch?.epoch ?? "none"} of ${trained.history.epochs.length}), not a finished run.`);
  if (data.files("test").length > 0) {
    const evaluation = await trained.evaluate();
    console.log(`Final test accuracy = ${(evaluation.accuracy * 100).toFixed(1)}% (N=${evaluation.files.length})`);
    if (command.printMisclassified) {
      console.log("=== MISCLASSIFIED TEST IMAGES ===");
      for (const m of evaluation.misclassified) console.log(`${path.relative(data.dir, m.path)}  ${m.predicted}`);
    }
  }
  const models: [string | undefined, (dir: string) => Promise<string>][] = [
    [outputs.output_dir, (dir) => trained.save(dir)],
    [outputs.keras_dir, async (dir) => (await trained.export(dir, { format: "keras" })).dir],
    [outputs.saved_model_dir, async (dir) => (await trained.export(dir, { format: "savedmodel" })).dir],
    [outputs.tflite_dir, async (dir) => (await trained.export(dir, { format: "tflite", quantize: command.quantize })).dir],
  ];
  for (const [dir, write] of models) if (dir) console.log(`Written: ${await write(dir)}`);
  if (outputs.keras_dir || outputs.saved_model_dir || outputs.tflite_dir) console.log(trained.exports().toText());
  if (outputs.output_labels) console.log(writeOutputFile(outputs.output_labels, labelsText(data.classes), "output_labels"));
  if (outputs.output_split) console.log(writeOutputFile(outputs.output_split, data.splitCsv(), "output_split"));
  // A run that found its log folder taken wrote no log and said so (train/classifier/tensorboard.ts).
  const logged = !trained.info.warnings.some((warning) => warning.startsWith("no TensorBoard log"));
  if (outputs.summaries_dir && logged) console.log(`TensorBoard: ${tensorboardCommand(outputs.summaries_dir)}`);
  const skippedNow = skippedLine(data);
  if (skippedNow && skippedNow !== skipped) console.log(`${skippedNow} (some found unreadable while training)`);
  return interrupted ? 130 : 0;
}

/** A library option's name at the start of its message, said as the command line's flag. */
function asFlag(error: OptionError): string {
  const flag = flagOf(error.option);
  if (!flag || !error.message.startsWith(error.option)) return error.message;
  return `--${flag}${error.message.slice(error.option.length)}`;
}

/**
 * Runs the command line; resolves to the exit status. `loadLibrary` makes the library's registrations
 * (index.ts), once the flags are checked.
 */
export async function main(argv: string[], loadLibrary: () => void = () => undefined): Promise<number> {
  try {
    return await run(argv, loadLibrary);
  } catch (error) {
    if (error instanceof OptionError) {
      console.error(`inception-lab: ${asFlag(error)}`);
      return 2;
    }
    console.error(`inception-lab: ${(error as Error).message}`);
    if (error instanceof InterruptedError) return 130;
    return error instanceof UsageError ? 2 : 1;
  }
}
