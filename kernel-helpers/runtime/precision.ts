// Mixed precision for recorded graphs: the convolutions (forward and both gradients) in bfloat16 or
// float16, with what sits between them (batch norm, ReLU, pooling, concatenation and their gradients)
// following, so activations are stored at half the bytes; everything else (the loss, softmax, pooling
// to features, the optimizer's update, batch-norm statistics) stays float32, and so do the tensors that
// go in and out: weights are float32 master copies, cast inside the step. Keras' mixed_bfloat16 policy
// computes the same way. tfjs has no 16-bit dtypes, but a recorded graph is TensorFlow's own: the casts
// and 16-bit kernels live inside it. Measured here (TensorFlow 2.21, 2 cores with AMX): a 3x3
// convolution runs 6.4x faster in bfloat16, a matrix product 4x (shared/notes/measurements-3.md).
import { thisMachine } from "./build";
import { OptionError } from "../util/options";
import { attr, DT_FLOAT, type GraphNode } from "./graph-trace";

export type Precision = "float32" | "bfloat16" | "float16";
export const PRECISIONS: Precision[] = ["float32", "bfloat16", "float16"];

/** TensorFlow's DataType numbers (tensorflow/core/framework/types.proto). */
const DT_BFLOAT16 = 14;
const DT_HALF = 19;
const LOW_TYPE: Record<Exclude<Precision, "float32">, number> = { bfloat16: DT_BFLOAT16, float16: DT_HALF };

/** Which inputs and outputs of an op carry its type attribute "T" (the rest keep their types). */
interface TypedSlots {
  inputs: number[] | "all" | "allButLast";
  outputs: number[] | "all";
  /** Low only when every typed input is low (arithmetic), rather than any (layers). */
  needsAllLow?: boolean;
  /** Low only where this holds (a kernel known to be wrong elsewhere). */
  when?: (node: { channels?: (number | null)[] }) => boolean;
}

/** Ops that always run low: where the operations are (Keras' mixed policy: convolutions and their gradients). */
const LOW: Record<string, TypedSlots> = {
  // TensorFlow 2.21's oneDNN bfloat16 convolution is wrong for an odd number of input channels on an AMD
  // EPYC with AVX-512 BF16 (measured: 43 % relative error with 3 channels, 28 % with 5; 0.3 % with 2, 4,
  // 6, 12; its gradients are right): Inception-v3's first convolution, on RGB, stays float32.
  Conv2D: { inputs: [0, 1], outputs: "all", when: (node) => (node.channels?.[0] ?? 1) % 2 === 0 },
  Conv2DBackpropInput: { inputs: [1, 2], outputs: "all" },
  Conv2DBackpropFilter: { inputs: [0, 2], outputs: "all" },
};

/**
 * Ops that run low when their inputs come low: memory-bound layers between convolutions, whose output is
 * what the next convolution reads and what backpropagation keeps. Batch norm computes its statistics in
 * float32 ("U") whatever its data type. Anything not listed runs float32.
 */
const FOLLOW: Record<string, TypedSlots> = {
  Relu: { inputs: [0], outputs: "all" },
  ReluGrad: { inputs: [0, 1], outputs: "all" },
  MaxPool: { inputs: [0], outputs: "all" },
  MaxPoolGrad: { inputs: [0, 1, 2], outputs: "all" },
  AvgPool: { inputs: [0], outputs: "all" },
  AvgPoolGrad: { inputs: [1], outputs: "all" },
  ConcatV2: { inputs: "allButLast", outputs: "all" },
  SplitV: { inputs: [0], outputs: "all" },
  Reshape: { inputs: [0], outputs: "all" },
  BiasAdd: { inputs: [0, 1], outputs: "all" },
  FusedBatchNormV3: { inputs: [0], outputs: [0] },
  FusedBatchNormGradV3: { inputs: [0, 1], outputs: [0] },
  AddN: { inputs: "all", outputs: "all", needsAllLow: true },
  AddV2: { inputs: [0, 1], outputs: "all", needsAllLow: true },
  Add: { inputs: [0, 1], outputs: "all", needsAllLow: true },
  Shape: { inputs: [0], outputs: [] },
};

const indices = (slots: number[] | "all" | "allButLast", count: number) =>
  slots === "all" ? Array.from({ length: count }, (_, i) => i) : slots === "allButLast" ? Array.from({ length: count - 1 }, (_, i) => i) : slots;

/** The node index and output of a tensor name ("n12" is "n12:0"). */
function parse(name: string): [number, number] {
  const [node, output = "0"] = name.slice(1).split(":");
  return [Number(node), Number(output)];
}

/**
 * The graph with its convolutions, and the layers between them, at `precision`; returns the new nodes and
 * the names of the fetches (a fetch produced at low precision is cast back to float32). Only float32 ops
 * change; the graph's inputs and outputs keep their types.
 */
export function lowerPrecision(nodes: GraphNode[], fetches: string[], precision: Precision): { nodes: GraphNode[]; fetches: string[] } {
  if (precision === "float32") return { nodes, fetches };
  const low = LOW_TYPE[precision];
  const result: GraphNode[] = nodes.map((node) => (node.kind === "op" ? { ...node, inputs: [...node.inputs], attrs: [...node.attrs] } : node));
  /** Low nodes: every output low, or the listed ones. */
  const lowOutputs = new Map<number, "all" | number[]>();
  const isLow = (name: string) => {
    const [node, output] = parse(name);
    const outputs = lowOutputs.get(node);
    return outputs === "all" || (outputs !== undefined && outputs.includes(output));
  };
  const casts = new Map<string, string>();
  const cast = (source: string, to: number): string => {
    const key = `${source}>${to}`;
    let name = casts.get(key);
    if (!name) {
      name = `n${result.length}:0`;
      result.push({ kind: "op", op: "Cast", inputs: [source], attrs: [attr("SrcT", "type", to === DT_FLOAT ? low : DT_FLOAT), attr("DstT", "type", to), attr("Truncate", "bool", false)] });
      casts.set(key, name);
    }
    return name;
  };
  nodes.forEach((original, i) => {
    const node = result[i];
    if (original.kind !== "op" || node.kind !== "op") return;
    const rule = LOW[node.op] ?? FOLLOW[node.op];
    const float = node.attrs.some((a) => a.name === "T" && a.value === DT_FLOAT);
    const typed = rule && float && (rule.when?.(node) ?? true) ? indices(rule.inputs, node.inputs.length) : [];
    const lowInputs = typed.filter((k) => isLow(node.inputs[k]));
    const runsLow = typed.length > 0 && (node.op in LOW || (rule.needsAllLow ? lowInputs.length === typed.length : lowInputs.length > 0));
    node.inputs = node.inputs.map((input, k) => {
      const wantsLow = runsLow && typed.includes(k);
      return isLow(input) === wantsLow ? input : cast(input, wantsLow ? low : DT_FLOAT);
    });
    if (!runsLow) return;
    node.attrs = node.attrs.map((a) => (a.name === "T" ? attr("T", "type", low) : a));
    lowOutputs.set(i, rule.outputs);
  });
  return { nodes: result, fetches: fetches.map((f) => (isLow(f) ? cast(f, DT_FLOAT) : f)) };
}

/** What precision option a call takes: "auto" chooses from the machine (choosePrecision). */
export type PrecisionOption = "auto" | Precision;
export const PRECISION_OPTIONS: PrecisionOption[] = ["auto", ...PRECISIONS];

/** What decides the automatic choice: the CPU's feature flags, and the GPU the build computes on. */
export interface Machine {
  cpuFlags: string[];
  /** The GPU of the GPU build (null under the CPU build), with its compute capability ("8.0"). */
  gpu: { name: string; computeCapability: string } | null;
}

export interface PrecisionChoice {
  precision: Precision;
  /** Why, in words, for the run's summary and environment(). */
  reason: string;
  /** Said when a precision was asked for that this machine does not accelerate. */
  warning?: string;
}

/**
 * The precision to run at: what was asked, or for "auto" the fastest this machine computes without
 * losing accuracy: float16 (with loss scaling) on GPUs with tensor cores (compute capability 7.0 or
 * more), bfloat16 on CPUs with AMX or AVX-512 BF16, float32 elsewhere.
 */
export function choosePrecision(option: PrecisionOption, machine: Machine): PrecisionChoice {
  const bf16Units = ["amx_bf16", "avx512_bf16"].filter((flag) => machine.cpuFlags.includes(flag));
  const tensorCores = machine.gpu !== null && Number(machine.gpu.computeCapability) >= 7;
  if (option === "auto") {
    if (machine.gpu) {
      return tensorCores
        ? { precision: "float16", reason: `auto: ${machine.gpu.name} has tensor cores for float16 (compute capability ${machine.gpu.computeCapability})` }
        : { precision: "float32", reason: `auto: ${machine.gpu.name} (compute capability ${machine.gpu.computeCapability}) has no float16 tensor cores` };
    }
    return bf16Units.length
      ? { precision: "bfloat16", reason: `auto: this CPU computes bfloat16 in hardware (${bf16Units.join(", ")})` }
      : { precision: "float32", reason: "auto: this CPU has no bfloat16 units (AMX or AVX-512 BF16)" };
  }
  const choice: PrecisionChoice = { precision: option, reason: `${option}, as asked` };
  if (option === "bfloat16" && !machine.gpu && !bf16Units.length) choice.warning = "this CPU has no bfloat16 units (AMX or AVX-512 BF16): TensorFlow emulates bfloat16 here, slower than float32.";
  if (option === "float16" && !tensorCores) choice.warning = `float16 is fast only on GPUs with tensor cores; ${machine.gpu ? `${machine.gpu.name} has none` : "on this CPU it is emulated, slower than float32"}.`;
  return choice;
}

/** The choice for this machine; op by op (graph: false) always computes float32, tfjs having no 16-bit types. */
export function precisionFor(option: PrecisionOption, graph = true): PrecisionChoice {
  if (!PRECISION_OPTIONS.includes(option)) throw new OptionError("precision", `precision: "${option}" is not one of ${PRECISION_OPTIONS.join(", ")}.`);
  if (!graph) {
    if (option !== "auto" && option !== "float32") throw new OptionError("precision", `precision: "${option}" runs inside TensorFlow graphs; with graph: false everything runs op by op in float32. Drop one of the two options.`);
    return { precision: "float32", reason: "float32: op by op (graph: false) computes in float32" };
  }
  return choosePrecision(option, thisMachine());
}

/** Says a precision warning once per process. */
const warned = new Set<string>();

/** The choice for this machine, as precisionFor, with its warning said once per process (asking bfloat16 where it is emulated). */
export function resolvePrecision(option: PrecisionOption, graph = true): PrecisionChoice {
  const choice = precisionFor(option, graph);
  if (choice.warning && !warned.has(choice.warning)) {
    warned.add(choice.warning);
    console.warn(`inception-lab: precision ${choice.precision}: ${choice.warning}`);
  }
  return choice;
}
