// Learning curves: loss and accuracy, train and validation, after a run or drawn live while it trains
// (a training callback the notebook layer adds to every run in a kernel).
import { rule } from "../util/options";
import { Chart, type ChartOptions, type Figure, LiveChart } from "../display/chart";
import type { Callback, EpochRecord, History, StepRecord, TrainingLoop } from "../train/loop/loop";
import type { TrainingRun } from "../train/modes/run";
import { COLORS, layout, checkChartOptions } from "./style";

export type CurveAxis = "step" | "epoch" | "seconds" | "images";
const AXIS_TITLES: Record<CurveAxis, string> = { step: "step", epoch: "epoch", seconds: "wall time (s)", images: "training images seen" };

export interface CurveOptions extends ChartOptions {
  x?: CurveAxis;
}

const CURVE_RULES = { x: rule.oneOf(["step", "epoch", "seconds", "images"]) };

function stepX(step: StepRecord, x: CurveAxis): number {
  return x === "step" ? step.step : x === "epoch" ? step.epoch : x === "seconds" ? step.seconds : step.images;
}

function epochX(epoch: EpochRecord, history: History, x: CurveAxis): number {
  if (x === "epoch") return epoch.epoch;
  if (x === "seconds") return epoch.seconds;
  if (x === "images") return epoch.images;
  return history.steps.filter((s) => s.epoch <= epoch.epoch).length;
}

function curvesFigure(history: History, options: CurveOptions): Figure {
  const x = options.x ?? "step";
  const steps = history.steps;
  const epochs = history.epochs;
  const line = (name: string, xs: number[], ys: (number | null)[], axis: 1 | 2, color: string, extra: object = {}) => ({
    type: "scatter",
    mode: "lines+markers",
    name,
    x: xs,
    y: ys,
    xaxis: `x${axis === 1 ? "" : 2}`,
    yaxis: `y${axis === 1 ? "" : 2}`,
    line: { color },
    ...extra,
  });
  const faint = { mode: "lines", opacity: 0.35, showlegend: true };
  const ex = epochs.map((e) => epochX(e, history, x));
  return {
    data: [
      line("train loss (per step)", steps.map((s) => stepX(s, x)), steps.map((s) => s.loss), 1, COLORS[0], faint),
      line("train loss", ex, epochs.map((e) => e.loss), 1, COLORS[0]),
      line("validation loss", ex, epochs.map((e) => e.valLoss), 1, COLORS[1]),
      line("train accuracy", ex, epochs.map((e) => e.accuracy), 2, COLORS[0], { showlegend: true, line: { color: COLORS[0], dash: "dot" } }),
      line("validation accuracy", ex, epochs.map((e) => e.valAccuracy), 2, COLORS[1], { line: { color: COLORS[1], dash: "dot" } }),
    ],
    layout: layout(options, { title: "Learning curves" }, {
      grid: { rows: 1, columns: 2, pattern: "independent" },
      xaxis: { title: { text: AXIS_TITLES[x] } },
      xaxis2: { title: { text: AXIS_TITLES[x] } },
      yaxis: { title: { text: "loss" }, rangemode: "tozero" },
      yaxis2: { title: { text: "accuracy" }, range: [0, 1.02] },
    }),
  };
}

/** Loss and accuracy, train and validation, against step, epoch, wall time or images seen. */
export function learningCurves(run: TrainingRun | History, options: CurveOptions = {}): Chart {
  checkChartOptions(options, "plot.learningCurves", CURVE_RULES);
  const history = "history" in run ? run.history : run;
  const title = "history" in run ? `Learning curves: ${run.mode}` : "Learning curves";
  return new Chart(curvesFigure(history, { title, ...options }));
}

/**
 * Draws the learning curves live in the cell's output, in place, while training runs, and leaves the
 * final chart there. The notebook layer adds one to every run in a kernel (option `liveChart`).
 */
export class LiveCurves implements Callback {
  private readonly history: History = { steps: [], epochs: [] };
  private readonly live = new LiveChart();

  constructor(readonly options: CurveOptions = {}) {
    checkChartOptions(options, "LiveCurves", CURVE_RULES);
  }

  /** A run trained further (run.fit) draws on from its earlier epochs. */
  onTrainBegin(loop: TrainingLoop): void {
    this.history.steps.push(...loop.history.steps);
    this.history.epochs.push(...loop.history.epochs);
  }

  private draw(force = false): void {
    this.live.frame(curvesFigure(this.history, { title: "Learning curves (live)", ...this.options }), force);
  }

  onBatchEnd(step: StepRecord): void {
    this.history.steps.push(step);
    this.draw();
  }

  onEpochEnd(epoch: EpochRecord): void {
    this.history.epochs.push(epoch);
    this.draw(true);
  }

  onTrainEnd(): void {
    this.live.finish(new Chart(curvesFigure(this.history, { title: "Learning curves", ...this.options })));
  }
}
