// A kernel interrupt (Jupyter's stop button sends SIGINT to the kernel) as a flag that long work polls
// at safe points: between two batches of features, between two training steps. tslab ends the cell at
// once while the code keeps running; polling the flag makes the work stop too, leaving a consistent state.

export interface InterruptFlag {
  readonly requested: boolean;
  /** Stops listening; call it when the work is over. */
  release(): void;
}

/** Listens for SIGINT until released; the flag turns true at the first one. */
export function listenForInterrupt(): InterruptFlag {
  let requested = false;
  const onInterrupt = () => {
    requested = true;
  };
  process.on("SIGINT", onInterrupt);
  return {
    get requested() {
      return requested;
    },
    release: () => void process.off("SIGINT", onInterrupt),
  };
}

/** Thrown by long work that stopped because the kernel was interrupted. */
export class InterruptedError extends Error {}
