// The three modes as data: where each starts, which blocks it trains, whether a head is first trained on
// cached features, and its defaults. Training (modes.ts), the comparison and the cost model (lab/) and the
// network picture (plots/) all read the same plan, so a new mode is one entry here.
import { type Block, BLOCKS, type CutLayer } from "../../network/inception";
import { type Distortions, hasDistortions } from "../../data/augment";
import type { OptimizerName } from "../loop/optimizers";
import { OptionError } from "../../util/options";

export type Mode = "retrain-final-layer" | "fine-tune" | "from-scratch";
export const MODES: Mode[] = ["retrain-final-layer", "fine-tune", "from-scratch"];

/**
 * What a training step does with a block: computed once per image and cached (retraining's features, a
 * fine-tune's frozen bottom without distortions), run forward at every step, trained, or not used.
 */
export type Role = "cached" | "frozen" | "trained" | "unused";

export interface Recipe {
  mode: Mode;
  /** "pretrained": the weights given; "random": new random weights. */
  start: "pretrained" | "random";
  defaults: { epochs: number; batchSize: number; optimizer: OptimizerName; learningRate: number; warmupEpochs: number };
  /** The first block of the network that trains, or null when the network stays frozen. */
  firstTrained(unfreezeFrom: CutLayer | "all"): Block | null;
  /** Whether a head is trained on cached features first: all of retraining; a fine-tune's warm-up. */
  headOnFeatures(warmupEpochs: number): boolean;
}

export const RECIPES: Record<Mode, Recipe> = {
  "retrain-final-layer": {
    mode: "retrain-final-layer",
    start: "pretrained",
    // A linear head on cached features: an epoch costs milliseconds, so the default trains it to convergence.
    // Measured on the generated shapes (6 classes, 279 training images, bundled features at mixed7, 3 seeds): 50
    // epochs at 1e-3 left the loss at 0.56 and test accuracy at 0.85-0.90; 200 epochs at 1e-2 reached a loss of
    // 0.011 and 0.97-1.00 in about 2 s of training (retrain.py's 4,000 steps of 100 are also run to convergence).
    defaults: { epochs: 200, batchSize: 32, optimizer: "adam", learningRate: 1e-2, warmupEpochs: 0 },
    firstTrained: () => null,
    headOnFeatures: () => true,
  },
  "fine-tune": {
    mode: "fine-tune",
    start: "pretrained",
    defaults: { epochs: 5, batchSize: 16, optimizer: "adam", learningRate: 1e-4, warmupEpochs: 2 },
    firstTrained: (unfreezeFrom) => (unfreezeFrom === "all" ? "stem" : unfreezeFrom),
    headOnFeatures: (warmupEpochs) => warmupEpochs > 0,
  },
  "from-scratch": {
    mode: "from-scratch",
    start: "random",
    defaults: { epochs: 10, batchSize: 16, optimizer: "adam", learningRate: 1e-3, warmupEpochs: 0 },
    firstTrained: () => "stem",
    headOnFeatures: () => false,
  },
};

/** What a run computes, block by block. */
export interface Plan {
  mode: Mode;
  layer: CutLayer;
  /** The first trained block of the network, or null when only the head trains. */
  firstTrained: Block | null;
  headOnFeatures: boolean;
  /** The trained blocks, then "head". */
  trainedBlocks: string[];
  /** Each block of the network (not the ImageNet top) with its role in a training step on images. */
  roles: { block: Block; role: Role }[];
}

/** The blocks from the stem up to `layer`: the part of the network a classifier cut there uses. */
export function blocksUpTo(layer: CutLayer): Block[] {
  return BLOCKS.slice(0, BLOCKS.indexOf(layer) + 1);
}

export function plan(mode: Mode, layer: CutLayer, options: { unfreezeFrom?: CutLayer | "all"; warmupEpochs?: number; distortions?: Distortions; frozenBottomCache?: boolean; graph?: boolean } = {}): Plan {
  const recipe = RECIPES[mode];
  const unfreezeFrom = options.unfreezeFrom ?? "all";
  const firstTrained = recipe.firstTrained(unfreezeFrom);
  const cut = BLOCKS.indexOf(layer);
  if (firstTrained && BLOCKS.indexOf(firstTrained) > cut) throw new OptionError("unfreezeFrom", `unfreezeFrom: "${unfreezeFrom}" lies above the cut layer ${layer}: nothing of the network would train.`);
  const from = firstTrained ? BLOCKS.indexOf(firstTrained) : Infinity;
  // Below the trained blocks: run once per image and kept (train/modes/trainer.ts), unless distortions change the
  // images or the run goes op by op (the cache keeps what a recorded graph computes).
  const below: Role = options.frozenBottomCache !== false && options.graph !== false && !hasDistortions(options.distortions ?? {}) ? "cached" : "frozen";
  const roles = BLOCKS.filter((b) => b !== "top").map((block, i): { block: Block; role: Role } => ({
    block,
    role: i > cut ? "unused" : firstTrained === null ? "cached" : i < from ? below : "trained",
  }));
  return {
    mode,
    layer,
    firstTrained,
    headOnFeatures: recipe.headOnFeatures(options.warmupEpochs ?? recipe.defaults.warmupEpochs),
    trainedBlocks: [...roles.filter((r) => r.role === "trained").map((r) => r.block), "head"],
    roles,
  };
}
