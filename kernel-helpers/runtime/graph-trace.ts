// Recording a tensor function as a TensorFlow graph: every native op tfjs-node executes while the
// function runs becomes a node, tensors made from JavaScript values become constants, inputs and the
// variables read become placeholders (fed on every run, so the graph reads current weights). Written
// as a SavedModel, the recording loads as a TensorFlow session through tfjs-node's own binding.
import * as fs from "fs";
import * as path from "path";
import { withScratchFolder } from "../util/scratch";
import { type Binding, nativeBackend, type NativeBackend, type OpAttr, type TensorMetadata } from "./native-ops";
import { tf } from "./tf";

// tfjs-node ships the TensorFlow protocol buffers it uses to read SavedModels; they write them too.
// eslint-disable-next-line @typescript-eslint/no-var-requires
const proto = require("@tensorflow/tfjs-node/dist/proto/api_pb");

/** The GraphDef version of the TensorFlow the binding is built against (tf.version.GRAPH_DEF_VERSION of 2.21). */
const GRAPH_DEF_VERSION = 2474;
/** Pre-existing tensors that are neither inputs nor variables are copied into the graph up to this size. */
const MAX_CAPTURED_ELEMENTS = 65536;
export const DT_FLOAT = 1;
const DT_INT32 = 3;

export function backend(): NativeBackend {
  return nativeBackend();
}

/** The binding's id of a tensor's native handle, creating the handle if tfjs still holds the values. */
function nativeId(tensor: tf.Tensor): number {
  return backend().getInputTensorIds([tensor])[0];
}

export type GraphNode =
  | { kind: "feed"; shape: number[]; dtype: number }
  | { kind: "const"; shape: number[]; dtype: number; bytes: Uint8Array }
  | { kind: "op"; op: string; inputs: string[]; attrs: OpAttr[]; channels?: (number | null)[] };

/** Node i is named `n${i}`; its outputs are `n${i}:k`. */
export interface Recording {
  nodes: GraphNode[];
  /** What each feed node is given: the inputs (in order), then variables; and the nodes' names. */
  feeds: tf.Tensor[];
  feedNames: string[];
  inputCount: number;
  /** The function's results, then the new values of the variables it assigned. */
  fetches: string[];
  resultCount: number;
  updates: tf.Variable[];
  /** Tensors from before the recording (neither inputs nor variables) copied in as constants. */
  captured: number;
}

class Recorder {
  readonly nodes: GraphNode[] = [];
  readonly feeds: tf.Tensor[] = [];
  readonly feedNames: string[] = [];
  /** binding tensor id → the graph tensor that holds it */
  readonly sources = new Map<number, string>();
  /** Shapes and types of the tensors ops were given, by binding id (the binding knows ids only). */
  readonly described = new Map<number, { shape: number[]; dtype: number }>();
  private readonly variableOf = new Map<number, tf.Variable[]>();
  captured = 0;

  constructor(
    private readonly b: Binding,
    inputs: tf.Tensor[],
    private readonly preferred: Set<tf.Variable>,
  ) {
    inputs.forEach((input) => this.feed(nativeId(input), input));
    for (const variable of Object.values(tf.engine().registeredVariables)) {
      const id = nativeId(variable);
      this.variableOf.set(id, [...(this.variableOf.get(id) ?? []), variable]);
    }
  }

  private add(node: GraphNode, id?: number): string {
    const name = `n${this.nodes.length}`;
    this.nodes.push(node);
    if (id !== undefined) this.sources.set(id, name);
    return name;
  }

  private feed(id: number, tensor: tf.Tensor): string {
    const name = this.add({ kind: "feed", shape: tensor.shape, dtype: backend().getDTypeInteger(tensor.dtype) }, id);
    this.feeds.push(tensor);
    this.feedNames.push(name);
    return name;
  }

  /** The graph tensor for a binding id read by an op: recorded, fed, or copied in as a constant. */
  source(id: number): string {
    const known = this.sources.get(id);
    if (known) return known;
    const candidates = this.variableOf.get(id);
    // Variables can share a handle (a clone's weights until it trains): feed the one the caller named.
    if (candidates) return this.feed(id, candidates.find((v) => this.preferred.has(v)) ?? candidates[0]);
    const info = this.described.get(id);
    if (!info) throw new Error(`tensor ${id} was made before the trace and is not a variable or an input; pass it as an input.`);
    const values = this.b.tensorDataSync(id);
    if (tf.util.sizeFromShape(info.shape) > MAX_CAPTURED_ELEMENTS) {
      throw new Error(`the function reads a tensor of shape [${info.shape}] that is neither an input nor a variable; pass it as an input.`);
    }
    this.captured++;
    return this.constant(id, info.shape, info.dtype, values);
  }

  constant(id: number, shape: number[], dtype: number, values: ArrayBufferView): string {
    const bytes = new Uint8Array(values.buffer.slice(values.byteOffset, values.byteOffset + values.byteLength));
    return this.add({ kind: "const", shape, dtype, bytes }, id);
  }

  op(op: string, attrs: OpAttr[], ids: number[], outputs: TensorMetadata[]): void {
    // The channels of image-shaped (NHWC) inputs: what a rewrite needs to know of shapes, and the same at every batch size.
    const channels = ids.map((id) => {
      const shape = this.described.get(id)?.shape;
      return shape?.length === 4 ? shape[3] : null;
    });
    const name = this.add({ kind: "op", op, inputs: ids.map((id) => this.source(id)), attrs, ...(channels.some((c) => c !== null) ? { channels } : {}) });
    outputs.forEach((output, i) => this.sources.set(output.id, `${name}:${i}`));
  }

  variables(): tf.Variable[] {
    return [...this.variableOf.values()].flat();
  }
}

/**
 * Runs `fn(inputs)` eagerly while recording it. The recording is null when the function created
 * variables (an optimizer's state on its first step): a graph would start them from their initial
 * values on every run. `variables` names the ones meant where several share one value.
 */
export function record(fn: (inputs: tf.Tensor[]) => tf.Tensor[], inputs: tf.Tensor[], variables: tf.Variable[]): { results: tf.Tensor[]; recording: Recording | null } {
  const be = backend();
  const b = be.binding;
  const recorder = new Recorder(b, inputs, new Set(variables));
  const before = new Map(recorder.variables().map((v) => [v, nativeId(v)]));
  const variableCount = Object.keys(tf.engine().registeredVariables).length;
  const getInputTensorIds = be.getInputTensorIds;
  let results: tf.Tensor[];
  // The binding's functions are read-only: the backend gets a recording stand-in that defers to it.
  be.binding = Object.create(b, {
    executeOp: {
      value: (op: string, attrs: OpAttr[], ids: number[], count: number) => {
        const outputs = b.executeOp(op, attrs, ids, count);
        recorder.op(op, attrs, ids, outputs);
        return outputs;
      },
    },
    createTensor: {
      value: (shape: number[], dtype: number, values: ArrayBufferView) => {
        const id = b.createTensor(shape, dtype, values);
        recorder.constant(id, shape, dtype, values);
        return id;
      },
    },
    tensorDataSync: {
      value: (id: number) => {
        if (recorder.sources.has(id)) throw new Error("the function reads a tensor's values in JavaScript; a graph cannot depend on them.");
        return b.tensorDataSync(id);
      },
    },
  });
  be.getInputTensorIds = (tensors) => {
    const ids = getInputTensorIds.call(be, tensors);
    ids.forEach((id, i) => recorder.described.set(id, { shape: tensors[i].shape, dtype: be.getDTypeInteger(tensors[i].dtype) }));
    return ids;
  };
  try {
    results = tf.tidy(() => fn(inputs));
    results.forEach((r) => nativeId(r)); // results made from JavaScript values become constants now
    for (const variable of before.keys()) if (!variable.isDisposed) nativeId(variable);
  } finally {
    be.binding = b;
    be.getInputTensorIds = getInputTensorIds;
  }
  if (Object.keys(tf.engine().registeredVariables).length !== variableCount) return { results, recording: null };
  const updates = [...before].filter(([v, id]) => !v.isDisposed && nativeId(v) !== id).map(([v]) => v);
  const fetches = [...results, ...updates].map((t) => recorder.source(nativeId(t))).map((f) => (f.includes(":") ? f : `${f}:0`));
  return { results, recording: { nodes: recorder.nodes, feeds: recorder.feeds, feedNames: recorder.feedNames, inputCount: inputs.length, fetches, resultCount: results.length, updates, captured: recorder.captured } };
}

/** Values of a constant as numbers (float32, int32), or null for other types. */
function numbers(node: { dtype: number; bytes: Uint8Array }): ArrayLike<number> | null {
  const buffer = node.bytes.buffer.slice(node.bytes.byteOffset, node.bytes.byteOffset + node.bytes.byteLength);
  return node.dtype === DT_FLOAT ? new Float32Array(buffer) : node.dtype === DT_INT32 ? new Int32Array(buffer) : null;
}

function bytesOf(dtype: number, values: number[]): Uint8Array {
  return new Uint8Array((dtype === DT_FLOAT ? new Float32Array(values) : new Int32Array(values)).buffer);
}

/**
 * The recording for batch size `size`, from recordings at batch sizes `a` and `b` of the same function:
 * nodes must agree, and constants that differ must be linear in the batch size (shapes, element counts,
 * divisors) or, where their shape changes, hold one repeated value (tensors of ones). Throws where they
 * are not (random numbers drawn in JavaScript, say): such a function cannot be resized.
 */
export function resize(first: Recording, a: number, second: Recording, b: number, size: number): GraphNode[] {
  const at = (x: number, y: number) => x + ((y - x) * (size - a)) / (b - a);
  if (first.nodes.length !== second.nodes.length || first.fetches.join() !== second.fetches.join()) throw new Error("the function runs different ops at different batch sizes");
  return first.nodes.map((x, i) => {
    const y = second.nodes[i];
    const where = `node ${i}`;
    if (x.kind === "op" && y.kind === "op") {
      if (JSON.stringify(x) !== JSON.stringify(y)) throw new Error(`${where} (${x.op}) differs between batch sizes`);
      return x;
    }
    if (x.kind === "feed" && y.kind === "feed") {
      return i < first.inputCount ? { ...x, shape: [size, ...x.shape.slice(1)] } : x;
    }
    if (x.kind !== "const" || y.kind !== "const" || x.dtype !== y.dtype || x.shape.length !== y.shape.length) throw new Error(`${where} differs between batch sizes`);
    const shape = x.shape.map((d, k) => at(d, y.shape[k]));
    if (!shape.every((d) => Number.isInteger(d) && d >= 0)) throw new Error(`${where}: a constant's shape is not linear in the batch size`);
    const [xs, ys] = [numbers(x), numbers(y)];
    if (Buffer.compare(x.bytes, y.bytes) === 0 && tf.util.arraysEqual(x.shape, y.shape)) return x;
    if (!xs || !ys) throw new Error(`${where}: a constant of type ${x.dtype} differs between batch sizes (random numbers drawn in JavaScript?)`);
    if (xs.length === ys.length && tf.util.arraysEqual(x.shape, y.shape)) {
      const values = Array.from(xs, (v, k) => at(v, ys[k]));
      if (x.dtype === DT_INT32 && !values.every(Number.isInteger)) throw new Error(`${where}: an integer constant is not linear in the batch size`);
      return { ...x, bytes: bytesOf(x.dtype, values) };
    }
    const fill = xs[0];
    if (!Array.from(xs).every((v) => v === fill) || !Array.from(ys).every((v) => v === fill)) throw new Error(`${where}: a constant changes shape and holds different values (random numbers drawn in JavaScript?)`);
    return { ...x, shape, bytes: bytesOf(x.dtype, new Array(tf.util.sizeFromShape(shape)).fill(fill)) };
  });
}

export const attr = (name: string, type: "type" | "int" | "bool", value: number | boolean): OpAttr => {
  const b = backend().binding;
  return { name, type: type === "type" ? b.TF_ATTR_TYPE : type === "int" ? b.TF_ATTR_INT : b.TF_ATTR_BOOL, value };
};

/**
 * One graph for every batch size, from recordings at batch sizes 2, 3 and 4 of the same function. The
 * inputs' first dimension is left open; a constant that depends on the batch size (a shape, an element
 * count, a tensor of ones of batch length) must be linear in it, and becomes ops that compute it from the
 * first input's shape at run time, checked against the recording at 4. Throws where it cannot be done.
 */
export function batchFree(at2: Recording, at3: Recording, at4: Recording): GraphNode[] {
  const recordings = [at2, at3, at4];
  if (!recordings.every((r) => r.nodes.length === at2.nodes.length && r.fetches.join() === at2.fetches.join())) throw new Error("the function runs different ops at different batch sizes");
  const extra: GraphNode[] = [];
  const add = (node: GraphNode) => `n${at2.nodes.length + extra.push(node) - 1}`;
  const constant = (dtype: number, shape: number[], values: number[]) => add({ kind: "const", dtype, shape, bytes: bytesOf(dtype, values) });
  const intType = attr("T", "type", DT_INT32);
  // The batch size at run time: Shape(input 0)[0], as an int32 scalar and, when needed, as a float.
  const input = at2.nodes[0] as { dtype: number };
  const shape = add({ kind: "op", op: "Shape", inputs: ["n0"], attrs: [attr("T", "type", input.dtype), attr("out_type", "type", DT_INT32)] });
  const batchInt = add({
    kind: "op",
    op: "StridedSlice",
    inputs: [shape, constant(DT_INT32, [1], [0]), constant(DT_INT32, [1], [1]), constant(DT_INT32, [1], [1])],
    attrs: [intType, attr("Index", "type", DT_INT32), ...["begin_mask", "end_mask", "ellipsis_mask", "new_axis_mask"].map((n) => attr(n, "int", 0)), attr("shrink_axis_mask", "int", 1)],
  });
  let batchFloat: string | null = null;
  const batchOf = (dtype: number) =>
    dtype === DT_INT32 ? batchInt : (batchFloat ??= add({ kind: "op", op: "Cast", inputs: [batchInt], attrs: [attr("SrcT", "type", DT_INT32), attr("DstT", "type", DT_FLOAT), attr("Truncate", "bool", false)] }));
  /** base + slope * batch, elementwise, checked against the three recordings. */
  const linear = (where: string, dtype: number, shape: number[], values: ArrayLike<number>[]): GraphNode => {
    const slope = Array.from(values[1], (v, k) => v - values[0][k]);
    const base = Array.from(values[0], (v, k) => v - 2 * slope[k]);
    const predicted = base.map((v, k) => v + 4 * slope[k]);
    const close = (x: number, y: number) => (dtype === DT_INT32 ? x === y : Math.abs(x - y) <= 1e-5 * Math.max(1, Math.abs(y)));
    if (!predicted.every((v, k) => close(v, values[2][k]))) throw new Error(`${where}: a constant is not linear in the batch size (random numbers drawn in JavaScript?)`);
    const type = attr("T", "type", dtype);
    const scaled = add({ kind: "op", op: "Mul", inputs: [constant(dtype, shape, slope), batchOf(dtype)], attrs: [type] });
    return { kind: "op", op: "Add", inputs: [constant(dtype, shape, base), scaled], attrs: [type] };
  };
  const nodes = at2.nodes.map((x, i): GraphNode => {
    const [y, z] = [at3.nodes[i], at4.nodes[i]];
    const where = `node ${i}`;
    if (x.kind === "op" || y.kind === "op" || z.kind === "op") {
      if (JSON.stringify(x) !== JSON.stringify(y) || JSON.stringify(x) !== JSON.stringify(z)) throw new Error(`${where} (${x.kind === "op" ? x.op : "?"}) differs between batch sizes`);
      return x;
    }
    if (x.kind === "feed" && y.kind === "feed") return i < at2.inputCount ? { ...x, shape: [-1, ...x.shape.slice(1)] } : x;
    if (x.kind !== "const" || y.kind !== "const" || z.kind !== "const" || x.dtype !== y.dtype || x.shape.length !== y.shape.length) throw new Error(`${where} differs between batch sizes`);
    if (Buffer.compare(x.bytes, y.bytes) === 0 && Buffer.compare(x.bytes, z.bytes) === 0 && tf.util.arraysEqual(x.shape, y.shape) && tf.util.arraysEqual(x.shape, z.shape)) return x;
    const values = [x, y, z].map(numbers);
    if (values.some((v) => v === null)) throw new Error(`${where}: a constant of type ${x.dtype} differs between batch sizes (random numbers drawn in JavaScript?)`);
    if (tf.util.arraysEqual(x.shape, y.shape) && tf.util.arraysEqual(x.shape, z.shape)) return linear(where, x.dtype, x.shape, values as ArrayLike<number>[]);
    // A tensor whose shape follows the batch size, holding one value (tfjs' ones and zeros): Fill.
    const fill = values[0]![0];
    if (!values.every((v) => Array.from(v!).every((value) => value === fill))) throw new Error(`${where}: a constant changes shape and holds different values (random numbers drawn in JavaScript?)`);
    const dims = add(linear(`${where} (shape)`, DT_INT32, [x.shape.length], [x.shape, y.shape, z.shape]));
    return { kind: "op", op: "Fill", inputs: [dims, constant(x.dtype, [], [fill])], attrs: [attr("T", "type", x.dtype), attr("index_type", "type", DT_INT32)] };
  });
  return [...nodes, ...extra];
}

/** Whether two node lists are the same graph (constants equal, floats to float32 rounding). */
export function sameNodes(x: GraphNode[], y: GraphNode[]): boolean {
  return (
    x.length === y.length &&
    x.every((n, i) => {
      const m = y[i];
      if (n.kind !== "const" || m.kind !== "const") return JSON.stringify(n) === JSON.stringify(m);
      if (n.dtype !== m.dtype || !tf.util.arraysEqual(n.shape, m.shape)) return false;
      const [ns, ms] = [numbers(n), numbers(m)];
      if (!ns || !ms || n.dtype === DT_INT32) return Buffer.compare(n.bytes, m.bytes) === 0;
      return Array.from(ns).every((v, k) => Math.abs(v - ms[k]) <= 1e-5 * Math.max(1, Math.abs(ms[k])));
    })
  );
}

function shapeProto(shape: number[]) {
  const result = new proto.TensorShape();
  for (const size of shape) {
    const dim = new proto.TensorShape.Dim();
    dim.setSize(size);
    result.addDim(dim);
  }
  return result;
}

function attrValue(attr: OpAttr) {
  const b = backend().binding;
  const value = new proto.AttrValue();
  const list = Array.isArray(attr.value) && attr.type !== b.TF_ATTR_SHAPE ? new proto.AttrValue.ListValue() : null;
  const values = (list ? attr.value : [attr.value]) as unknown[];
  const set = (single: (v: unknown) => void, add: (v: unknown) => void) => (list ? values.forEach(add) : single(attr.value));
  switch (attr.type) {
    case b.TF_ATTR_STRING:
      set((v) => value.setS(Buffer.from(String(v))), (v) => list.addS(Buffer.from(String(v))));
      break;
    case b.TF_ATTR_INT:
      set((v) => value.setI(v), (v) => list.addI(v));
      break;
    case b.TF_ATTR_FLOAT:
      set((v) => value.setF(v), (v) => list.addF(v));
      break;
    case b.TF_ATTR_BOOL:
      set((v) => value.setB(v), (v) => list.addB(v));
      break;
    case b.TF_ATTR_TYPE:
      value.setType(attr.value); // TF_DataType and the DataType enum share their numbers
      break;
    case b.TF_ATTR_SHAPE:
      value.setShape(shapeProto(attr.value as number[]));
      break;
    default:
      throw new Error(`attribute ${attr.name} has a type (${attr.type}) the recorder does not know.`);
  }
  if (list) value.setList(list);
  return value;
}

function nodeDef(node: GraphNode, index: number) {
  const result = new proto.NodeDef();
  result.setName(`n${index}`);
  const attrs = result.getAttrMap();
  const type = new proto.AttrValue();
  if (node.kind === "op") {
    result.setOp(node.op);
    node.inputs.forEach((input) => result.addInput(input));
    node.attrs.forEach((attr) => attrs.set(attr.name, attrValue(attr)));
    return result;
  }
  type.setType(node.dtype);
  attrs.set("dtype", type);
  if (node.kind === "feed") {
    result.setOp("Placeholder");
    const shape = new proto.AttrValue();
    shape.setShape(shapeProto(node.shape));
    attrs.set("shape", shape);
  } else {
    result.setOp("Const");
    const tensor = new proto.Tensor();
    tensor.setDtype(node.dtype);
    tensor.setTensorShape(shapeProto(node.shape));
    tensor.setTensorContent(node.bytes);
    const value = new proto.AttrValue();
    value.setTensor(tensor);
    attrs.set("value", value);
  }
  return result;
}

/** The nodes as a serialized TensorFlow GraphDef. */
export function graphDef(nodes: GraphNode[]): Uint8Array {
  const graph = new proto.GraphDef();
  graph.setNodeList(nodes.map(nodeDef));
  const versions = new proto.VersionDef();
  versions.setProducer(GRAPH_DEF_VERSION);
  graph.setVersions(versions);
  return graph.serializeBinary();
}

/** Writes a GraphDef as a SavedModel in a temporary folder and loads it as a session; returns its id. */
export function loadSession(graphBytes: Uint8Array): number {
  const graph = proto.GraphDef.deserializeBinary(graphBytes);
  const info = new proto.MetaGraphDef.MetaInfoDef();
  info.addTags("serve");
  const meta = new proto.MetaGraphDef();
  meta.setMetaInfoDef(info);
  meta.setGraphDef(graph);
  const saved = new proto.SavedModel();
  saved.setSavedModelSchemaVersion(1);
  saved.addMetaGraphs(meta);
  return withScratchFolder("graph", (dir) => {
    fs.writeFileSync(path.join(dir, "saved_model.pb"), saved.serializeBinary());
    return backend().binding.loadSavedModel(dir, "serve") as number;
  });
}
