// A classifier's forward pass for training, split at the last frozen block: the frozen bottom runs outside
// the gradient tape (so the tape neither records it nor keeps its activations), the trained top runs layer by
// layer freeing each intermediate as soon as its last reader is done. `networkStep` is the one place where a
// training step through the network is built; the modes, the cost model and the bench all run this step.
import { type Block, BLOCKS } from "../../network/inception";
import type { Inception } from "../../network/model";
import { CompiledFunction, inferenceGraphs, modelStructure } from "../../runtime/graph";
import type { Precision } from "../../runtime/precision";
import { tf } from "../../runtime/tf";
import type { Head } from "../classifier/classifier";
import type { Optimizer } from "../loop/optimizers";
import { TrainingStep } from "../loop/step";

interface PlanStep {
  layer: tf.layers.Layer;
  inputs: number[];
  outputs: number[];
}

/** The layers of `model` that compute its output from `start`, in order, as steps over tensor ids. */
function planFrom(model: tf.LayersModel, start: tf.SymbolicTensor): PlanStep[] {
  const known = new Set([start.id]);
  const steps: PlanStep[] = [];
  for (const layer of model.layers) {
    // A shared layer has several nodes (the head is applied to features and to the network): take
    // the ones whose inputs are known.
    for (const node of layer.inboundNodes) {
      const inputs = node.inputTensors.map((t) => t.id);
      const outputs = node.outputTensors.map((t) => t.id);
      if (inputs.length === 0 || !inputs.every((id) => known.has(id)) || outputs.some((id) => known.has(id))) continue;
      steps.push({ layer, inputs, outputs });
      outputs.forEach((id) => known.add(id));
    }
  }
  if (!known.has(model.outputs[0].id)) throw new Error(`The model's output does not depend on ${start.name} alone.`);
  return steps;
}

/**
 * Runs a plan on real tensors, disposing each intermediate as soon as its last reader has run. In a
 * training step this lowers the peak: tfjs would keep every intermediate until the forward pass ends,
 * while the gradient tape holds its own references to what the gradients need.
 */
function runPlan(steps: PlanStep[], startId: number, x: tf.Tensor, outputId: number, training: boolean): tf.Tensor {
  const readers = new Map<number, number>();
  for (const step of steps) for (const id of step.inputs) readers.set(id, (readers.get(id) ?? 0) + 1);
  const values = new Map<number, tf.Tensor>([[startId, x]]);
  for (const step of steps) {
    const inputs = step.inputs.map((id) => values.get(id)!);
    const result = step.layer.apply(inputs.length === 1 ? inputs[0] : inputs, { training }) as tf.Tensor | tf.Tensor[];
    [result].flat().forEach((t, i) => values.set(step.outputs[i], t));
    for (const id of step.inputs) {
      const left = readers.get(id)! - 1;
      readers.set(id, left);
      if (left === 0 && id !== startId && id !== outputId) values.get(id)!.dispose();
    }
  }
  return values.get(outputId)!;
}

/**
 * A classifier's forward pass for training, split at the last frozen block: `prepare` runs the frozen
 * bottom once per batch outside the gradient tape (so the tape neither records it nor keeps its
 * activations), `logits` runs the rest. With nothing frozen, `prepare` passes images through. With
 * `graph`, `prepare` runs as a TensorFlow graph per batch shape; `dispose` frees those.
 */
export function splitForward(inception: Inception, logitsModel: tf.LayersModel, firstTrainedBlock: Block, graph = true, precision: Precision = "float32") {
  const from = BLOCKS.indexOf(firstTrainedBlock);
  // Every block reads only the previous block's output: the stem's last pooling, or mixedN's concatenation.
  const boundary =
    from <= 0 ? logitsModel.inputs[0] : ((BLOCKS[from - 1] === "stem" ? inception.model.getLayer("max_pooling2d_2") : inception.model.getLayer(BLOCKS[from - 1])).output as tf.SymbolicTensor);
  const bottom = from <= 0 ? null : tf.model({ inputs: logitsModel.inputs, outputs: boundary });
  const top = planFrom(logitsModel, boundary);
  const output = logitsModel.outputs[0].id;
  const frozen = bottom && inferenceGraphs(bottom, graph, precision);
  const logits = (x: tf.Tensor, training: boolean) => runPlan(top, boundary.id, x, output, training) as tf.Tensor2D;
  // Inference from the boundary up, for validation on cached frozen-bottom activations.
  const topInference = new CompiledFunction(([x]) => [logits(x, false)], {
    enabled: graph,
    precision,
    variables: () => logitsModel.layers.flatMap((l) => l.weights).map((w) => w.read() as tf.Variable),
    key: () => JSON.stringify({ function: "inference from", model: modelStructure(logitsModel, false), from: firstTrainedBlock }),
  });
  return {
    prepare: (images: tf.Tensor) => (frozen ? frozen.run([images])[0] : images),
    logits,
    /** Logits in inference from activations at the boundary (what `prepare` gives). */
    inferFrom: (x: tf.Tensor) => topInference.run([x])[0] as tf.Tensor2D,
    /** The shape of one image's activations at the boundary, [height, width, channels]. */
    boundaryShape: boundary.shape.slice(1) as number[],
    dispose: () => {
      frozen?.dispose();
      topInference.dispose();
    },
  };
}

/**
 * One training step through the network from `firstTrained` up: the frozen bottom outside the tape,
 * then loss and update of the rest. `run` takes images; the caller owns them.
 */
export function networkStep(inception: Inception, logitsModel: tf.LayersModel, firstTrained: Block, optimizer: Optimizer, options: { classes: number; labelSmoothing?: number; graph?: boolean; precision?: Precision; head?: Head }) {
  const forward = splitForward(inception, logitsModel, firstTrained, options.graph, options.precision);
  const reads = () => [...logitsModel.nonTrainableWeights.map((w) => w.read() as tf.Variable), ...(options.head?.variables() ?? [])];
  const describe = () => ({ step: "network", model: modelStructure(logitsModel), firstTrained });
  const step = new TrainingStep(forward.logits, optimizer, { ...options, reads, describe });
  return {
    step,
    forward,
    run(images: tf.Tensor, labels: tf.Tensor1D) {
      const x = forward.prepare(images);
      try {
        return step.run(x, labels);
      } finally {
        if (x !== images) x.dispose();
      }
    },
    /** A step on activations the frozen bottom gave before (the frozen-bottom cache). */
    runPrepared: (x: tf.Tensor, labels: tf.Tensor1D) => step.run(x, labels),
    dispose() {
      step.dispose();
      forward.dispose();
    },
  };
}

