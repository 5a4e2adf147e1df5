// Runs a tensor function as one TensorFlow graph instead of op by op. Measured here, TensorFlow's own
// Inception-v3 runs about 1.5x faster as a graph than eagerly (Python, same kernels), and tfjs-node only
// runs eagerly. A compiled function records itself (graph-trace.ts) and later calls run the whole
// function in one native call. The function must not read tensor values in JavaScript, nor draw random
// numbers there (tfjs' randomUniform does; TensorFlow's random ops are fine).
//
// Recording runs the function eagerly, and an eager Inception-v3 training step at full batch needs far
// more memory than the graph will; so it is recorded at batch sizes 2, 3 and 4, and the constants that
// depend on the batch size become ops computing them from the input's shape: one graph for every batch
// size (where a constant is not linear in the batch size, the graph is made for the one size asked).
// Variables are put back after each recording: recording leaves no step behind.
//
// A recorded graph is a template: it reads and assigns variables by their place in the list the caller
// gives, not by identity. A caller that describes its function (`key`) shares graphs with every later
// caller of the same description: in this process (the session is kept), and after a restart (the graph
// is stored in the cache folder, keyed by the description, the variables' shapes, the library's source
// and TensorFlow's version, and checked when read back). Re-running a training cell then records nothing.
import { createHash } from "crypto";
import * as fs from "fs";
import * as path from "path";
import { writeAtomically } from "../util/atomic";
import { cacheDir } from "../util/download";
import { backend, batchFree, graphDef, type GraphNode, loadSession, record, type Recording, resize, sameNodes } from "./graph-trace";
import { foldBatchNorms } from "./fold-batch-norm";
import { tensorflowVersion } from "./native-ops";
import { lowerPrecision, type Precision } from "./precision";
import { tf } from "./tf";

const RECORD_SIZES = [2, 3, 4];

/** A recorded function as a graph any caller with the same variables (in the same order and shapes) can run. */
export interface Template {
  graph: Uint8Array;
  /** Input placeholders, their dtypes and shapes (-1: any batch size). */
  inputs: { name: string; dtype: string; shape: number[] }[];
  /** Variable placeholders: each is fed the caller's variable at `slot`. */
  feeds: { name: string; dtype: string; slot: number }[];
  fetches: string[];
  resultCount: number;
  /** Slots of the variables the function assigns, in the order their new values come after the results. */
  updates: number[];
}

const tfDtype = (dtype: string) => (dtype === "int32" ? "DT_INT32" : dtype === "bool" ? "DT_BOOL" : "DT_FLOAT");

/** What happened to graphs in this process: recorded, found in memory, read from the disk cache. */
export const graphStats = { recorded: 0, reused: 0, loadedFromDisk: 0, rejectedFromDisk: 0 };

/** Whether a template's placeholders take these inputs (-1: any size). */
function fits(template: Template, inputs: tf.Tensor[]): boolean {
  return inputs.length === template.inputs.length && inputs.every((x, i) => x.shape.length === template.inputs[i].shape.length && x.shape.every((d, k) => template.inputs[i].shape[k] === -1 || template.inputs[i].shape[k] === d));
}

/** A template loaded as a TensorFlow session. */
class Graph {
  constructor(
    readonly sessionId: number,
    readonly template: Template,
  ) {}

  /** Runs the graph with `variables` in the slots; assigns what the function assigned; returns its results. */
  run(inputs: tf.Tensor[], variables: tf.Variable[]): tf.Tensor[] {
    const t = this.template;
    const feeds = [...inputs, ...t.feeds.map((f) => variables[f.slot])];
    const infos = [...t.inputs, ...t.feeds].map((f) => ({ name: f.name, tfDtype: f.dtype }));
    const outputs = backend().runSavedModel(this.sessionId, feeds, infos, t.fetches);
    t.updates.forEach((slot, i) => {
      variables[slot].assign(outputs[t.resultCount + i]);
      outputs[t.resultCount + i].dispose();
    });
    return outputs.slice(0, t.resultCount);
  }

  dispose(): void {
    backend().binding.deleteSavedModel(this.sessionId);
  }
}

/**
 * Sessions of described graphs, kept for later callers in this process. A session holds its graph
 * only (variables are fed), so a few are cheap; the least recently used goes beyond MAX_SESSIONS.
 */
const MAX_SESSIONS = 12;
const sessions = new Map<string, Graph>();

function keep(key: string, graph: Graph): Graph {
  sessions.delete(key);
  sessions.set(key, graph);
  while (sessions.size > MAX_SESSIONS) {
    const [oldest, evicted] = sessions.entries().next().value as [string, Graph];
    sessions.delete(oldest);
    evicted.dispose();
  }
  return graph;
}

/** Frees every kept session (they come back from the disk cache when next needed). */
export function releaseGraphs(): void {
  for (const graph of sessions.values()) graph.dispose();
  sessions.clear();
}

let sourceVersion: string | null = null;
/** A hash of the library's source and TensorFlow's versions: any change to either makes new keys. */
function codeVersion(): string {
  if (sourceVersion) return sourceVersion;
  const library = path.resolve(__dirname, "..");
  const hash = createHash("sha256");
  const walk = (dir: string) => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(full);
      else if (entry.name.endsWith(".ts")) hash.update(path.relative(library, full)).update(fs.readFileSync(full));
    }
  };
  walk(library);
  hash.update(`tfjs ${tf.version.tfjs}, TensorFlow ${tensorflowVersion()}`);
  return (sourceVersion = hash.digest("hex"));
}

/**
 * A graph file: MAGIC, the SHA-256 of everything after it, the header's length, the header (the key and the
 * template: which variable feeds which placeholder) and the graph. One checksum covers header and graph: a
 * header with two slots swapped, read back, would train the wrong variables (it once trained to NaN).
 */
const MAGIC = "ILG2";
const PREFIX = 4 + 32;

function graphFile(key: string): string {
  return path.join(cacheDir("graphs"), `${key}.graph`);
}

/** The stored template for `key`, or null when absent or damaged (a damaged file is recorded again). */
function readTemplate(key: string): Template | null {
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(graphFile(key));
  } catch {
    return null;
  }
  try {
    if (bytes.length < PREFIX + 4 || bytes.toString("latin1", 0, 4) !== MAGIC) throw new Error("not a graph file");
    if (!createHash("sha256").update(bytes.subarray(PREFIX)).digest().equals(bytes.subarray(4, PREFIX))) throw new Error("damaged");
    const headerLength = bytes.readUInt32LE(PREFIX);
    const header = JSON.parse(bytes.toString("utf8", PREFIX + 4, PREFIX + 4 + headerLength));
    const graph = bytes.subarray(PREFIX + 4 + headerLength);
    if (header.key !== key || graph.length !== header.graphBytes) throw new Error("written for another key");
    return { ...header.template, graph: new Uint8Array(graph) };
  } catch {
    graphStats.rejectedFromDisk++;
    return null;
  }
}

function writeTemplate(key: string, template: Template): void {
  const { graph, ...rest } = template;
  const header = Buffer.from(JSON.stringify({ key, template: rest, graphBytes: graph.length }));
  const length = Buffer.alloc(4);
  length.writeUInt32LE(header.length);
  const body = Buffer.concat([length, header, graph]);
  try {
    writeAtomically(graphFile(key), Buffer.concat([Buffer.from(MAGIC, "latin1"), createHash("sha256").update(body).digest(), body]));
  } catch (error) {
    // A cache that cannot be written costs the next session a recording, nothing more.
    console.warn(`inception-lab: the recorded graph was not stored (${(error as Error).message})`);
  }
}

/** The values of every variable, to put back after a recording; variables made meanwhile go back to their initial values. */
class VariableSnapshot {
  private readonly saved = new Map<tf.Variable, tf.Tensor>();

  constructor() {
    for (const v of Object.values(tf.engine().registeredVariables)) this.saved.set(v, tf.keep(tf.clone(v)));
  }

  /** Runs `f`, remembering the initial value of any variable it makes. */
  watch<T>(f: () => T): T {
    const engine = tf.engine();
    const makeVariable = engine.makeVariable;
    engine.makeVariable = (...args: Parameters<typeof makeVariable>) => {
      const v = makeVariable.apply(engine, args);
      this.saved.set(v, tf.keep(tf.clone(v)));
      return v;
    };
    try {
      return f();
    } finally {
      engine.makeVariable = makeVariable;
    }
  }

  restore(): void {
    for (const [v, value] of this.saved) if (!v.isDisposed && v.dataId !== value.dataId) v.assign(value);
  }

  dispose(): void {
    tf.dispose([...this.saved.values()]);
  }
}

/** The inputs at batch size `size`: the first rows, repeated when there are fewer. */
function atBatch(x: tf.Tensor, size: number): tf.Tensor {
  return tf.tidy(() => {
    const n = x.shape[0];
    const enough = n >= size ? x : tf.tile(x, [Math.ceil(size / n), ...x.shape.slice(1).map(() => 1)]);
    return tf.slice(enough, 0, size);
  });
}

/** Records `fn` at batch size `size`, then puts every variable back. */
function recordAt(fn: (inputs: tf.Tensor[]) => tf.Tensor[], inputs: tf.Tensor[], size: number, variables: tf.Variable[], snapshot: VariableSnapshot): Recording | null {
  const sized = inputs.map((x) => atBatch(x, size));
  try {
    const { results, recording } = snapshot.watch(() => record(fn, sized, variables));
    tf.dispose(results);
    return recording;
  } finally {
    snapshot.restore();
    tf.dispose(sized);
  }
}

/** The recording as a template over `variables`: null where it reads a variable that is not in the list. */
function templateOf(nodes: GraphNode[], recording: Recording, variables: tf.Variable[], fetches: string[]): Template | null {
  const slots = recording.feeds.slice(recording.inputCount).map((t) => variables.indexOf(t as tf.Variable));
  const updates = recording.updates.map((v) => variables.indexOf(v));
  if (slots.includes(-1) || updates.includes(-1)) return null;
  return {
    graph: graphDef(nodes),
    inputs: recording.feeds.slice(0, recording.inputCount).map((t, i) => ({ name: `${recording.feedNames[i]}:0`, dtype: tfDtype(t.dtype), shape: (nodes[i] as { shape: number[] }).shape })),
    feeds: slots.map((slot, i) => ({ name: `${recording.feedNames[recording.inputCount + i]}:0`, dtype: tfDtype(recording.feeds[recording.inputCount + i].dtype), slot })),
    fetches,
    resultCount: recording.resultCount,
    updates,
  };
}

/**
 * The template of `fn` for inputs like these: one graph for every batch size where the constants allow,
 * else for this batch size. `reusable` is false when the recording copied in tensors from outside the
 * function, which another caller's run may not share.
 */
function compile(fn: (inputs: tf.Tensor[]) => tf.Tensor[], inputs: tf.Tensor[], variables: tf.Variable[], precision: Precision): { template: Template; reusable: boolean } {
  const snapshot = new VariableSnapshot();
  try {
    // A first call can differ from later ones (tfjs makes a gradient's seed from JavaScript the first
    // time, layers and optimizers make what they keep): it runs once before the recordings that count.
    recordAt(fn, inputs, RECORD_SIZES[0], variables, snapshot);
    const recordings = RECORD_SIZES.map((size) => recordAt(fn, inputs, size, variables, snapshot));
    if (recordings.includes(null)) throw new Error("the function makes new variables on every call");
    const [a, b, c] = recordings as Recording[];
    let nodes: GraphNode[];
    try {
      nodes = batchFree(a, b, c);
    } catch {
      // Today's path for such a function: the constants scaled to this one batch size, checked against the third recording.
      if (!sameNodes(resize(a, 2, b, 3, 4), c.nodes)) throw new Error("constants are not linear in the batch size (random numbers drawn in JavaScript?)");
      nodes = resize(a, 2, c, 4, inputs[0].shape[0]);
    }
    graphStats.recorded++;
    // At float32 the graph stays op for op what eager execution runs (the tests hold them equal); folding
    // pays at low precision, where an unfused batch norm costs as much as the convolution saves.
    const lowered = precision === "float32" ? { nodes, fetches: a.fetches } : lowerPrecision(foldBatchNorms(nodes, a.fetches), a.fetches, precision);
    const template = templateOf(lowered.nodes, a, variables, lowered.fetches);
    if (!template) throw new Error("the function reads or assigns a variable that is not in its list of variables");
    return { template, reusable: a.captured === 0 };
  } finally {
    snapshot.dispose();
  }
}

export interface CompileOptions {
  /** Every variable the function may read or assign, in a fixed order (its graph refers to them by place). */
  variables?: () => tf.Variable[];
  /** false: always op by op (for comparison and debugging). */
  enabled?: boolean;
  /**
   * Describes everything that decides the function's ops besides the variables' shapes and the inputs
   * (the model's structure and trainable flags, optimizer kind, seeds): graphs with equal descriptions
   * are shared across calls, runs and kernel restarts. Without it, graphs belong to this function only.
   */
  key?: () => string;
  maxGraphs?: number;
  /** The precision of the graph's convolutions (runtime/precision.ts); op by op is always float32. */
  precision?: Precision;
}

/**
 * A tensor function run as graphs: one per input signature (dtypes and shapes past the batch size),
 * plus one per batch size where the graph could not be made for every batch size. A signature's first
 * call finds or records its graph. A function that cannot be a graph runs op by op, with the reason in
 * `notCompiled` and in a warning; so do signatures past `maxGraphs`, and every call with `enabled: false`.
 */
export class CompiledFunction {
  /**
   * By input signature: a graph of its own, the key of a shared one (looked up at every call: the
   * process may have let it go, and then it comes back from the disk cache), or null for op by op.
   */
  private readonly graphs = new Map<string, Graph | string | null>();
  /** Graphs owned by this function (not described, so not shared): freed by dispose. */
  private readonly owned: Graph[] = [];
  readonly notCompiled: string[] = [];
  /** Graphs this function recorded itself (the rest it found in memory or on disk). */
  recordings = 0;

  constructor(
    private readonly fn: (inputs: tf.Tensor[]) => tf.Tensor[],
    private readonly options: CompileOptions = {},
  ) {}

  get precision(): Precision {
    return this.options.precision ?? "float32";
  }

  /** The shared graph of `key` kept in this process or stored on disk, if it takes these inputs. */
  private shared(key: string, inputs: tf.Tensor[]): Graph | null {
    const kept = sessions.get(key);
    if (kept && fits(kept.template, inputs)) return keep(key, kept);
    const stored = readTemplate(key);
    if (!stored || !fits(stored, inputs)) return null;
    graphStats.loadedFromDisk++;
    return keep(key, new Graph(loadSession(stored.graph), stored));
  }

  /**
   * Finds or records the graph for these inputs; returns it, or its key when it is shared. A graph for
   * one batch size only (constants not linear in it) is kept under a key that names the size.
   */
  private find(inputs: tf.Tensor[], variables: tf.Variable[], signature: string): Graph | string {
    const key = this.options.key && createHash("sha256").update(JSON.stringify([this.options.key(), this.precision, signature, variables.map((v) => `${v.dtype}[${v.shape}]`), codeVersion()])).digest("hex").slice(0, 32);
    const keys = key ? [key, `${key}-batch${inputs[0].shape[0]}`] : [];
    if (keys.some((k) => sessions.has(k))) graphStats.reused++;
    const found = keys.find((k) => this.shared(k, inputs));
    if (found) return found;
    const { template, reusable } = compile(this.fn, inputs, variables, this.precision);
    this.recordings++;
    const graph = new Graph(loadSession(template.graph), template);
    if (!key || !reusable) {
      this.owned.push(graph);
      return graph;
    }
    const kept = template.inputs.every((input) => input.shape[0] === -1) ? keys[0] : keys[1];
    writeTemplate(kept, template);
    keep(kept, graph);
    return kept;
  }

  run(inputs: tf.Tensor[]): tf.Tensor[] {
    const { enabled = true, maxGraphs = 4 } = this.options;
    const signature = inputs.map((t) => `${t.dtype}[${t.shape.slice(1)}]`).join(" ");
    const resolve = (entry: Graph | string | null) => (typeof entry === "string" ? this.shared(entry, inputs) : entry);
    let graph: Graph | null | undefined;
    for (const k of [signature, `${signature} batch ${inputs[0].shape[0]}`]) {
      if (!this.graphs.has(k)) continue;
      const entry = this.graphs.get(k)!;
      const resolved = resolve(entry);
      // A shared graph the process let go and the disk no longer holds is found or recorded again below.
      if (resolved === null && typeof entry === "string") this.graphs.delete(k);
      else if (resolved === null || fits(resolved.template, inputs)) {
        graph = resolved;
        break;
      }
    }
    if (graph === undefined && enabled && this.graphs.size < maxGraphs) {
      const variables = this.options.variables?.() ?? [];
      let entry: Graph | string | null = null;
      try {
        entry = this.find(inputs, variables, signature);
        graph = resolve(entry);
      } catch (error) {
        graph = null;
        this.notCompiled.push(`${signature}: ${(error as Error).message}`);
        // Said once per signature: the work still gets done, only slower.
        console.warn(`inception-lab: this function runs op by op, not as a graph, for inputs ${signature}: ${(error as Error).message}`);
      }
      const batchFreeGraph = graph?.template.inputs.every((input) => input.shape[0] === -1);
      this.graphs.set(graph && !batchFreeGraph ? `${signature} batch ${inputs[0].shape[0]}` : signature, entry);
    }
    return graph ? graph.run(inputs, this.options.variables?.() ?? []) : tf.tidy(() => this.fn(inputs));
  }

  dispose(): void {
    this.owned.forEach((graph) => graph.dispose());
    this.owned.length = 0;
    this.graphs.clear();
  }
}

/**
 * What decides a model's ops: its layers, their configuration and connections, and, in training,
 * which layers train (a frozen BatchNorm takes another path; in inference none trains). The model's own
 * name is left out: tfjs numbers unnamed models as they are made, and two models of one structure must
 * describe alike.
 */
export function modelStructure(model: tf.LayersModel, forTraining = true): object {
  const topology = model.toJSON(undefined, false) as { config: { name?: string; layers: { config: { trainable?: boolean } }[] } };
  topology.config.name = "model";
  if (!forTraining) topology.config.layers.forEach((layer) => delete layer.config.trainable);
  return topology;
}

/** A model's inference pass (training: false) as graphs, fed the model's current weights, shared by models of the same structure. */
export function inferenceGraphs(model: tf.LayersModel, enabled = true, precision: Precision = "float32"): CompiledFunction {
  return new CompiledFunction(([x]) => [model.apply(x, { training: false }) as tf.Tensor], {
    enabled,
    precision,
    // Layer by layer: model.weights lists trainable weights first, an order the trainable flags change.
    variables: () => model.layers.flatMap((l) => l.weights).map((w) => w.read() as tf.Variable),
    key: () => JSON.stringify({ function: "inference", model: modelStructure(model, false) }),
  });
}
