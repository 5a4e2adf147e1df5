// One options shape for the three training modes, with each mode's defaults and clear errors.
import type { Distortions } from "../data/augment";
import { type CutLayer, CUT_LAYERS } from "../network/inception";
import type { OptimizerName, TrainCallbacks } from "./loop";
import { inKernel } from "../display/display";

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
  /** Run each training step as one TensorFlow graph, recorded on the first step (default on; false: op by op, as tfjs runs). */
  graph?: boolean;
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

export type Resolved = Required<Omit<TrainOptions, "checkpointDir" | "layer" | "inputSize" | "cacheDir">> & Pick<TrainOptions, "checkpointDir" | "layer" | "inputSize" | "cacheDir">;

export function resolve(mode: Mode, options: TrainOptions): Resolved {
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
    graph: true,
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
