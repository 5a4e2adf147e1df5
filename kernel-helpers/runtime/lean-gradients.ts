// Backpropagation that frees memory as it goes. tfjs' engine.gradients keeps every tensor a node saved
// for its gradient, and every intermediate gradient, until the whole backward pass ends: at its peak a
// training step holds the forward activations plus a gradient of the same size for each of them (about
// twice what TensorFlow's graph holds for Inception-v3). This version walks the same filtered tape with
// the same gradient functions, and releases a node's saved tensors and its outputs' gradients as soon as
// the node is done. Higher-order gradients (a tape inside a tape) keep tfjs' own path.
import { tf } from "./tf";

interface TapeNode {
  id: number;
  kernelName: string;
  inputs: Record<string, tf.Tensor>;
  outputs: tf.Tensor[];
  gradient: (dys: (tf.Tensor | null)[]) => Record<string, () => tf.Tensor>;
  saved: tf.Tensor[];
}

interface EngineInternals {
  state: { activeTape: TapeNode[] | null; gradientDepth: number };
  scopedRun<T>(start: () => void, end: () => void, f: () => T): T;
  startTape(): void;
  endTape(): void;
  tidy<T extends tf.TensorContainer>(name: string | (() => T), f?: () => T): T;
  gradients: (f: () => tf.Tensor, xs: tf.Tensor[], dy?: tf.Tensor, allowNoGradients?: boolean) => { value: tf.Tensor; grads: tf.Tensor[] };
}

/** The nodes on a path from xs to y, with inputs not computed from xs pruned (as tfjs-core's tape.ts). */
function nodesFromXToY(tape: TapeNode[], xs: tf.Tensor[], y: tf.Tensor): TapeNode[] {
  const fromX = new Set(xs.map((x) => x.id));
  const nodesFromX = new Set<number>();
  for (const node of tape) {
    if (Object.values(node.inputs).some((input) => fromX.has(input.id))) {
      node.outputs.forEach((output) => fromX.add(output.id));
      nodesFromX.add(node.id);
    }
  }
  const leadToY = new Set([y.id]);
  const nodesToY = new Set<number>();
  for (let i = tape.length - 1; i >= 0; i--) {
    const node = tape[i];
    if (node.outputs.some((output) => leadToY.has(output.id))) {
      Object.values(node.inputs).forEach((input) => leadToY.add(input.id));
      nodesToY.add(node.id);
    }
  }
  return tape
    .filter((node) => nodesFromX.has(node.id) && nodesToY.has(node.id))
    .map((node) => ({ ...node, inputs: Object.fromEntries(Object.entries(node.inputs).filter(([, input]) => fromX.has(input.id))) }));
}

export function installLeanGradients(): void {
  const engine = tf.engine() as unknown as EngineInternals;
  const original = engine.gradients;
  if ((original as { lean?: boolean }).lean) return;
  const lean = function (this: EngineInternals, f: () => tf.Tensor, xs: tf.Tensor[], dy?: tf.Tensor, allowNoGradients = false) {
    if (this.state.gradientDepth > 0 || this.state.activeTape !== null) return original.call(this, f, xs, dy, allowNoGradients);
    const y = this.scopedRun(() => this.startTape(), () => this.endTape(), () => this.tidy("forward", f));
    if (!(y instanceof tf.Tensor)) throw new Error("The result y returned by f() must be a tensor.");
    const tape = this.state.activeTape!;
    const filtered = nodesFromXToY(tape, xs, y);
    if (!allowNoGradients && filtered.length === 0 && xs.length > 0) {
      throw new Error("Cannot compute gradient of y=f(x) with respect to x. Make sure that the f you passed encloses all operations that lead from x to y.");
    }
    const xIds = new Set(xs.map((x) => x.id));
    return this.tidy("backward", () => {
      const gradients = new Map<number, tf.Tensor>([[y.id, dy ?? tf.onesLike(y)]]);
      for (let i = filtered.length - 1; i >= 0; i--) {
        const node = filtered[i];
        const dys = node.outputs.map((output) => gradients.get(output.id) ?? null);
        const inputGradients = node.gradient(dys);
        const stored = new Set(gradients.values());
        for (const [name, input] of Object.entries(node.inputs)) {
          if (!(name in inputGradients)) throw new Error(`Cannot backprop through input ${name}. Available gradients found: ${Object.keys(inputGradients)}.`);
          let dx = this.tidy(() => inputGradients[name]());
          // A gradient function may hand back dy itself, or one tensor for two inputs: give each entry
          // its own tensor object (same data), so freeing one entry never frees another.
          if (stored.has(dx)) dx = dx.clone();
          const previous = gradients.get(input.id);
          const sum = previous ? tf.add(previous, dx) : dx;
          if (previous) tf.dispose([previous, dx]);
          gradients.set(input.id, sum);
          stored.add(sum);
        }
        // This node is done: what it saved and the gradients of its outputs are no longer needed.
        node.saved.forEach((t) => t.dispose());
        for (const output of node.outputs) {
          const gradient = gradients.get(output.id);
          if (gradient && !xIds.has(output.id) && gradient !== dy) gradient.dispose();
          gradients.delete(output.id);
        }
      }
      const grads = xs.map((x) => gradients.get(x.id)!);
      tape.forEach((node) => node.saved.forEach((t) => t.dispose()));
      this.state.activeTape = null;
      return { value: y, grads };
    });
  };
  Object.assign(lean, { lean: true, original });
  engine.gradients = lean as EngineInternals["gradients"];
}
