// A kernel interrupt (Jupyter's stop button sends SIGINT to the kernel) as a flag that long work polls
// at safe points: between two batches of features, between two training steps. tslab ends the cell at
// once while the code keeps running; polling the flag makes the work stop too, leaving a consistent state.
// Work that waits on something it does not control (a callback's promise) listens for the interrupt
// instead, so a wait that would never end still ends at Ctrl-C.
// Outside a kernel, the first SIGINT also hands the signal back to Node: the listener that keeps Node
// from ending the process is gone, so a second Ctrl-C ends it as it would without the library (even if
// the work never reaches a safe point). In a kernel, tslab owns interrupts and the kernel must stay alive:
// the flag listens until released.
import { inKernel } from "../display/display";

export interface InterruptFlag {
  readonly requested: boolean;
  /** Calls `listener` at each interrupt from now on; returns the function that stops it. */
  onInterrupt(listener: () => void): () => void;
  /** Stops listening; call it when the work is over. */
  release(): void;
}

/** Listens for SIGINT until released (outside a kernel, until the first one); the flag turns true at the first one. */
export function listenForInterrupt(): InterruptFlag {
  let requested = false;
  const listeners = new Set<() => void>();
  const kernel = inKernel();
  const onSignal = () => {
    requested = true;
    if (!kernel) {
      process.off("SIGINT", onSignal);
      const nodeHandlesNext = process.listenerCount("SIGINT") === 0;
      console.warn(`inception-lab: interrupted: stopping after the current batch${nodeHandlesNext ? "; Ctrl-C again ends the process now" : ""}.`);
    }
    for (const listener of [...listeners]) listener();
  };
  process.on("SIGINT", onSignal);
  return {
    get requested() {
      return requested;
    },
    onInterrupt(listener) {
      listeners.add(listener);
      return () => void listeners.delete(listener);
    },
    release() {
      process.off("SIGINT", onSignal);
      listeners.clear();
    },
  };
}

/** Thrown by long work that stopped because the kernel was interrupted. */
export class InterruptedError extends Error {}
