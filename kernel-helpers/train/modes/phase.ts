// What every phase of a training call is made of: the run's setup shared by its phases, a batch as the
// phases yield it, a phase whose learning rate is its optimizer's, and the network's flags and FLOPs by block.
// The phases themselves: the head on features (head-phase.ts) and the network on images (image-phase.ts).
import type { ImageFolder } from "../../data/image-folder";
import { type Block, BLOCKS } from "../../network/inception";
import type { Inception } from "../../network/model";
import type { Precision } from "../../runtime/precision";
import type { tf } from "../../runtime/tf";
import type { Head } from "../classifier/classifier";
import type { LabelledBatch, Phase } from "../loop/loop";
import type { Optimizer } from "../loop/optimizers";
import type { Resolved } from "./options";

export interface TensorBatch extends LabelledBatch {
  x: tf.Tensor;
  y: tf.Tensor1D;
  /** x holds activations at the frozen bottom's boundary, not images. */
  prepared?: boolean;
  /** Those activations were read from the frozen-bottom cache, not computed for this batch. */
  fromStore?: boolean;
}

/** What every phase of one training call shares. */
export interface Setup {
  settings: Resolved;
  /** The precision of the network's work in this run (the head's step on features stays float32). */
  precision: Precision;
  data: ImageFolder;
  classes: number;
  head: Head;
}

/** Forward FLOPs per image of each block (from the model summary). */
export function blockFlops(inception: Inception): Map<string, number> {
  return new Map(inception.summary().blocks.map((b) => [b.block, b.gflops * 1e9]));
}

/** Loss scaling where gradients need it: float16's range ends at 65,504 and below 6e-8 (Keras' mixed_float16 does the same). */
export const lossScalingFor = (precision: Precision) => (precision === "float16" ? {} : null);

/** Makes exactly the blocks from `firstTrained` up (and the head) trainable; null freezes the network. */
export function setTrainable(inception: Inception, firstTrained: Block | null): void {
  const trained = firstTrained === null ? [] : BLOCKS.slice(BLOCKS.indexOf(firstTrained));
  for (const layer of inception.model.layers) {
    const block = inception.blockOf.get(layer.name);
    if (block) layer.trainable = trained.includes(block);
  }
}

/**
 * A phase from its parts; its learning rate is its optimizer's. The optimizer belongs to the run, which
 * keeps it (with its moments) for the next call that trains the same variables.
 */
export function phase(parts: Omit<Phase<TensorBatch>, "learningRate"> & { optimizer: Optimizer }): Phase<TensorBatch> {
  const { optimizer, ...rest } = parts;
  return {
    ...rest,
    get learningRate() {
      return optimizer.learningRate;
    },
    set learningRate(value: number) {
      optimizer.learningRate = value;
    },
  };
}
