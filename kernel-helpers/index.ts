// inception-lab: what a notebook calls, and the types it sees, one import away. Everything else is
// reached by path (kernel-helpers/<layer>/<file>), as the tests and the bench do.
import { registerLayers } from "./network/batch-norm";
import { registerNotebookDefaults } from "./notebook/defaults";
import { installRuntime } from "./runtime/install";

// The library's changes to the process, all of them, here:
installRuntime(); // TensorFlow.js: ReLU's gradient as TensorFlow's ReluGrad, and lean backpropagation
registerLayers(); // tfjs: the BatchNorm layer class, so saved models load
registerNotebookDefaults(); // training: live learning curves in a kernel

export { tf } from "./runtime/tf";
export { precisionFor } from "./runtime/precision";
export type { Precision, PrecisionOption, PrecisionChoice } from "./runtime/precision";
export { environment, budget, Environment } from "./notebook/environment";
export { claim, claims, Claim, ClaimError } from "./lab/claims";
export type { Check } from "./lab/claims";
export type { Budget } from "./notebook/environment";
export { Table } from "./display/display";
export { formatBytes, formatCount, formatDuration, formatFlops } from "./display/format";
export { Chart } from "./display/chart";
export type { Figure, ChartOptions } from "./display/chart";

// Classes and error types are values, so `instanceof` works (`catch (e) { if (e instanceof InterruptedError) ... }`).
export { loadInceptionV3, imagenetAvailable, Inception, ModelSummary } from "./network/model";
export type { LoadOptions, WeightsOption } from "./network/model";
export type { Prediction } from "./network/predictions";
export { CUT_LAYERS } from "./network/inception";
export type { Block, CutLayer } from "./network/inception";
export type { ImageInput } from "./network/images";
export { ImageDecodeError } from "./network/decode";
export { InterruptedError } from "./util/interrupt";
export { OptionError } from "./util/options";

export { imageFolder, ImageFolder } from "./data/image-folder";
export type { ImageFolderOptions, Split } from "./data/image-folder";
export { flowers, flowersAvailable, syntheticMirrors, syntheticShapes } from "./data/datasets";
export type { SyntheticOptions } from "./data/datasets";
export type { Distortions } from "./data/augment";

export { retrainFinalLayer, fineTune, trainFromScratch } from "./train/modes/modes";
export { lastRun, TrainingRun } from "./train/modes/run";
export type { RunInfo, FitOptions } from "./train/modes/run";
export type { PredictOptions, EvaluateOptions } from "./train/classifier/classifier";
export type { TrainOptions } from "./train/modes/options";
export type { Mode } from "./train/modes/recipes";
export type { OptimizerName } from "./train/loop/optimizers";
export { loadClassifier, ExportResult } from "./train/classifier/files";
export type { ExportFormat, ExportOptions } from "./train/classifier/files";
export type { InputType, InterpreterCheck, Quantization, TfliteExportNote } from "./train/classifier/tflite";
export { Classifier } from "./train/classifier/classifier";
export { Evaluation } from "./train/classifier/evaluation";
export { TrainingLoop } from "./train/loop/loop";
export type { Callback, History, StepRecord, EpochRecord, StopReason } from "./train/loop/loop";
export { cosineDecay, stepDecay, LearningRateSchedule } from "./train/loop/schedules";

export { compareModes, Comparison, Verdict } from "./lab/compare";
export type { CompareEntry, CompareOptions, ComparisonRow } from "./lab/compare";
export { measureThroughput, predictRun, CostModel, FLOWERS_RECIPE, GPUS, gpuRatesFor, gpuSeconds } from "./lab/cost-model";
export { benchAccuracyRecord } from "./lab/bench-record";
export type { AccuracyRecord, RecordedMode } from "./lab/bench-record";
export { findLearningRate, LearningRateFinder, LearningRateRamp } from "./lab/lr-finder";
export { advise, Advice, confusedPairs, FROM_SCRATCH_MIN_PER_CLASS } from "./lab/advise";
export type { AdviseOptions, ConfusedPair, PricedStep } from "./lab/advise";
export type { FinderOptions, RampEnd } from "./lab/lr-finder";
export type { CostRow, CostModelOptions, GpuRate, Throughput, ThroughputOptions, Recipe, RunShape } from "./lab/cost-model";
export { centroidAccuracy, featuresBeforeAfter, gradCam, heatmaps, runFeatures, weightChange } from "./lab/inside";
export type { BlockChange, FeatureMaps, GradCams, Heatmap, WeightChanges } from "./lab/inside";

export * as plot from "./plots/plot";
