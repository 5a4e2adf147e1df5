// Batch norm in inference mode folded into the convolution before it, inside a recorded graph: the
// convolution's filter is scaled per output channel and the normalisation becomes a bias, so TensorFlow
// runs convolution, bias and ReLU as one fused kernel. Measured here (TensorFlow 2.21, 16x35x35x384):
// an inference-mode FusedBatchNormV3 on its own takes 56 ms in float32 and 12 ms in bfloat16, where a
// bias added in the fused convolution costs next to nothing. The fold is computed from the fed
// variables on every run (a few thousand multiplications per layer), so the graph keeps reading the
// current weights; only inference graphs have such batch norms (frozen blocks, features, validation).
import { attr, DT_FLOAT, type GraphNode } from "./graph-trace";


const floatConstant = (value: number): GraphNode => ({ kind: "const", shape: [], dtype: DT_FLOAT, bytes: new Uint8Array(new Float32Array([value]).buffer) });

/** Who reads each output of each node: "n3:1" -> count. */
function readers(nodes: GraphNode[], fetches: string[]): Map<string, number> {
  const count = new Map<string, number>();
  const add = (name: string) => {
    const full = name.includes(":") ? name : `${name}:0`;
    count.set(full, (count.get(full) ?? 0) + 1);
  };
  for (const node of nodes) if (node.kind === "op") node.inputs.forEach(add);
  fetches.forEach(add);
  return count;
}

/**
 * The graph with every inference-mode FusedBatchNormV3 that alone reads a float32 Conv2D folded into it:
 * Conv2D(x, w * s) + (offset - mean * s), where s = scale / sqrt(variance + epsilon). The batch norm's
 * node becomes the BiasAdd, so everything that read its output reads the bias's.
 */
export function foldBatchNorms(nodes: GraphNode[], fetches: string[]): GraphNode[] {
  const result = [...nodes];
  const read = readers(nodes, fetches);
  const add = (node: GraphNode) => `n${result.push(node) - 1}`;
  const T = attr("T", "type", DT_FLOAT);
  const op = (name: string, inputs: string[]) => add({ kind: "op", op: name, inputs, attrs: [T] });
  nodes.forEach((node, i) => {
    if (node.kind !== "op" || node.op !== "FusedBatchNormV3") return;
    const value = (name: string) => node.attrs.find((a) => a.name === name)?.value;
    if (value("is_training") !== false || value("T") !== DT_FLOAT || value("U") !== DT_FLOAT) return;
    const source = node.inputs[0].split(":")[0];
    const conv = nodes[Number(source.slice(1))];
    if (conv.kind !== "op" || conv.op !== "Conv2D" || !conv.attrs.some((a) => a.name === "T" && a.value === DT_FLOAT)) return;
    // The convolution feeds only this batch norm, and nothing reads the batch norm's statistics.
    if ((read.get(`${source}:0`) ?? 0) !== 1 || [1, 2, 3, 4, 5].some((k) => read.has(`n${i}:${k}`))) return;
    const [, scale, offset, mean, variance] = node.inputs;
    const s = op("Mul", [scale, op("Rsqrt", [op("AddV2", [variance, add(floatConstant(value("epsilon") as number))])])]);
    const filter = op("Mul", [conv.inputs[1], s]);
    result[Number(source.slice(1))] = { ...conv, inputs: [conv.inputs[0], filter] };
    result[i] = { kind: "op", op: "BiasAdd", inputs: [node.inputs[0], op("Sub", [offset, op("Mul", [mean, s])])], attrs: [T] };
  });
  return result;
}
