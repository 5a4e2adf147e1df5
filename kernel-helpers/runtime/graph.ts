// Runs a tensor function as one TensorFlow graph instead of op by op. Measured here, TensorFlow's own
// Inception-v3 runs about 1.5x faster as a graph than eagerly (Python, same kernels), and tfjs-node only
// runs eagerly. A compiled function records itself (graph-trace.ts) and later calls run the whole
// function in one native call. The function must not read tensor values in JavaScript, nor draw random
// numbers there (tfjs' randomUniform does; TensorFlow's random ops are fine).
//
// Tracing runs the function eagerly, and an eager Inception-v3 training step at full batch needs far
// more memory than the graph will. So a batch above MAX_SMALL_BATCH is traced at batch sizes 2, 3 and 4,
// constants that depend on the batch size are scaled to the real one, and the scaling is checked
// against the third trace. Variables are put back after each trace: tracing leaves no step behind.
import { backend, type GraphNode, loadSession, record, type Recording, resize, sameNodes } from "./graph-trace";
import { tf } from "./tf";

const TRACE_SIZES = [2, 3, 4];
const MAX_SMALL_BATCH = TRACE_SIZES[TRACE_SIZES.length - 1];

/** A recorded function loaded as a TensorFlow session. Dispose it to free the session. */
export class Graph {
  private disposed = false;
  private readonly feedInfos: { name: string; tfDtype: string }[];

  constructor(
    private readonly sessionId: number,
    private readonly nodes: GraphNode[],
    private readonly recording: Recording,
  ) {
    this.feedInfos = recording.feeds.map((t, i) => ({ name: `${recording.feedNames[i]}:0`, tfDtype: t.dtype === "int32" ? "DT_INT32" : t.dtype === "bool" ? "DT_BOOL" : "DT_FLOAT" }));
  }

  get nodeCount(): number {
    return this.nodes.length;
  }

  /** Runs the graph; assigns the variables the function assigned; returns the function's results. */
  run(inputs: tf.Tensor[]): tf.Tensor[] {
    const { inputCount, resultCount, feeds, fetches, updates } = this.recording;
    if (this.disposed) throw new Error("This graph was disposed.");
    if (inputs.length !== inputCount) throw new Error(`The graph takes ${inputCount} inputs; ${inputs.length} given.`);
    inputs.forEach((input, i) => {
      const node = this.nodes[i] as { shape: number[] };
      if (!tf.util.arraysEqual(input.shape, node.shape)) throw new Error(`Input ${i} has shape [${input.shape}]; the graph takes [${node.shape}].`);
    });
    const outputs = backend().runSavedModel(this.sessionId, [...inputs, ...feeds.slice(inputCount)], this.feedInfos, fetches);
    updates.forEach((variable, i) => {
      variable.assign(outputs[resultCount + i]);
      outputs[resultCount + i].dispose();
    });
    return outputs.slice(0, resultCount);
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    backend().binding.deleteSavedModel(this.sessionId);
  }
}

/** The values of every variable, to put back after a trace; variables made meanwhile go back to their initial values. */
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

/** Records `fn` at batch size `size` (a slice of the inputs), then puts every variable back. */
function traceAt(fn: (inputs: tf.Tensor[]) => tf.Tensor[], inputs: tf.Tensor[], size: number, variables: tf.Variable[], snapshot: VariableSnapshot): Recording | null {
  const sliced = tf.tidy(() => inputs.map((x) => (x.shape[0] === size ? tf.clone(x) : tf.slice(x, 0, size))));
  try {
    const { results, recording } = snapshot.watch(() => record(fn, sliced, variables));
    tf.dispose(results);
    return recording;
  } finally {
    snapshot.restore();
    tf.dispose(sliced);
  }
}

/** The graph of `fn` at the inputs' batch size, recorded at small batch sizes where it is large. */
export function compileGraph(fn: (inputs: tf.Tensor[]) => tf.Tensor[], inputs: tf.Tensor[], variables: tf.Variable[] = []): Graph {
  const batch = inputs[0].shape[0];
  const snapshot = new VariableSnapshot();
  try {
    // A first call can differ from later ones (an optimizer makes its state, layers cache constants):
    // it runs once before the recordings that count.
    const sizes = batch > MAX_SMALL_BATCH ? TRACE_SIZES : [batch, batch];
    traceAt(fn, inputs, sizes[0], variables, snapshot);
    const [a, b, c] = sizes.map((size) => traceAt(fn, inputs, size, variables, snapshot));
    if (!a || !b || c === null) throw new Error("the function makes new variables on every call");
    let nodes: GraphNode[];
    if (c) {
      if (!sameNodes(resize(a, sizes[0], b, sizes[1], sizes[2]), c.nodes)) throw new Error("constants are not linear in the batch size (random numbers drawn in JavaScript?)");
      nodes = resize(a, sizes[0], c, sizes[2], batch);
    } else {
      // Same size twice: any difference is a value drawn in JavaScript, which a graph would freeze.
      if (!sameNodes(a.nodes, b.nodes)) throw new Error("the function makes different constants on every call (random numbers drawn in JavaScript?)");
      nodes = a.nodes;
    }
    return new Graph(loadSession(nodes), nodes, a);
  } finally {
    snapshot.dispose();
  }
}

/**
 * A tensor function run as graphs, one per input shape (a training step's last, smaller batch gets its
 * own). A shape's first call compiles its graph and runs it. A function that cannot be compiled runs
 * op by op, with the reason in `notCompiled` and in a warning; so do shapes past `maxGraphs`, and every
 * call with `enabled: false` (for comparison and debugging).
 */
export class CompiledFunction {
  private readonly graphs = new Map<string, Graph | null>();
  readonly notCompiled: string[] = [];

  constructor(
    private readonly fn: (inputs: tf.Tensor[]) => tf.Tensor[],
    private readonly options: { variables?: () => tf.Variable[]; enabled?: boolean; maxGraphs?: number } = {},
  ) {}

  run(inputs: tf.Tensor[]): tf.Tensor[] {
    const { enabled = true, maxGraphs = 4, variables } = this.options;
    const key = inputs.map((t) => `${t.dtype}[${t.shape}]`).join(" ");
    let graph = this.graphs.get(key);
    if (graph === undefined && enabled && this.graphs.size < maxGraphs) {
      try {
        graph = compileGraph(this.fn, inputs, variables?.());
      } catch (error) {
        graph = null;
        this.notCompiled.push(`${key}: ${(error as Error).message}`);
        // Said once per shape: the work still gets done, only slower.
        console.warn(`inception-lab: this function runs op by op, not as a graph, for inputs ${key}: ${(error as Error).message}`);
      }
      this.graphs.set(key, graph);
    }
    return graph ? graph.run(inputs) : tf.tidy(() => this.fn(inputs));
  }

  dispose(): void {
    this.graphs.forEach((graph) => graph?.dispose());
    this.graphs.clear();
  }
}

/** A model's inference pass (training: false) as graphs per batch shape, fed the model's current weights. */
export function inferenceGraphs(model: tf.LayersModel, enabled = true): CompiledFunction {
  return new CompiledFunction(([x]) => [model.apply(x, { training: false }) as tf.Tensor], { enabled, variables: () => model.weights.map((w) => w.read() as tf.Variable) });
}
