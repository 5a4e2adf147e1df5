// What a notebook adds to the library: every training run in a kernel draws its learning curves live
// (option `liveChart`, on by default in a kernel). Training does not know about charts; this layer adds
// the chart to the runs' callbacks. index.ts calls it when the library is imported.
import { LiveCurves } from "../plots/curves";
import { addDefaultCallbacks } from "../train/modes/run-callbacks";

export function registerNotebookDefaults(): void {
  addDefaultCallbacks("live learning curves", (options) => (options.liveChart ? [new LiveCurves()] : []));
}
