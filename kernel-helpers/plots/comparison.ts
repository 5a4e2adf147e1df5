// The modes side by side over time and images seen, and accuracy against a swept parameter.
import { rule } from "../util/options";
import { Chart, type ChartOptions } from "../display/chart";
import type { Comparison } from "../lab/compare";
import { COLORS, layout, checkChartOptions } from "./style";

/**
 * Validation accuracy of each mode against wall-clock time and against training images seen. `from: "network"`
 * counts both from the first epoch that trains the network, leaving out a fine-tune's warm-up on cached features
 * (and retraining, which never trains it): the same budget of network training side by side.
 */
export function modeComparison(comparison: Comparison, options: ChartOptions & { from?: "start" | "network" } = {}): Chart {
  checkChartOptions(options, "plot.modeComparison", { from: rule.oneOf(["start", "network"]) });
  const network = options.from === "network";
  const data = comparison.rows.flatMap((row, i) => {
    const all = row.run.history.epochs;
    const first = network ? all.findIndex((e) => e.phase !== "warm-up" && e.phase !== "head") : 0;
    if (first < 0) return [];
    const epochs = all.slice(first);
    const before = network && first > 0 ? all[first - 1] : null;
    const offset = network ? -(before?.seconds ?? 0) : row.run.info.seconds - (all[all.length - 1]?.seconds ?? 0);
    const images = (e: (typeof epochs)[number]) => e.images - (before?.images ?? 0);
    const common = { type: "scatter", mode: "lines+markers", name: row.label, legendgroup: row.label, line: { color: COLORS[i % COLORS.length] } };
    return [
      { ...common, x: [offset + (before?.seconds ?? 0), ...epochs.map((e) => offset + e.seconds)], y: [null, ...epochs.map((e) => e.valAccuracy)], connectgaps: true },
      { ...common, x: epochs.map(images), y: epochs.map((e) => e.valAccuracy), xaxis: "x2", yaxis: "y2", showlegend: false },
    ];
  });
  const title = network ? "Validation accuracy by network training: from its first epoch (a fine-tune's warm-up left out)" : "Validation accuracy: retrain vs fine-tune vs from scratch";
  return new Chart({
    data,
    layout: layout(options, { title }, {
      grid: { rows: 1, columns: 2, pattern: "independent" },
      xaxis: { title: { text: network ? "wall time of network training (s)" : "wall time (s), feature extraction included" } },
      xaxis2: { title: { text: network ? "images through the network in training" : "training images seen" }, type: "log" },
      yaxis: { title: { text: "validation accuracy" }, range: [0, 1.02] },
      yaxis2: { range: [0, 1.02] },
    }),
  });
}

/** Accuracy against a swept parameter (learning rate, unfreeze depth, batch size...). */
export function sweep(points: { value: number | string; accuracy: number; validationAccuracy?: number | null }[], options: ChartOptions & { parameter?: string; log?: boolean } = {}): Chart {
  checkChartOptions(options, "plot.sweep", { parameter: rule.text("give the parameter's name."), log: rule.boolean() });
  const parameter = options.parameter ?? "learning rate";
  const xs = points.map((p) => p.value);
  return new Chart({
    data: [
      { type: "scatter", mode: "lines+markers", name: "test accuracy", x: xs, y: points.map((p) => p.accuracy), line: { color: COLORS[0] } },
      ...(points.some((p) => p.validationAccuracy != null) ? [{ type: "scatter", mode: "lines+markers", name: "best validation accuracy", x: xs, y: points.map((p) => p.validationAccuracy ?? null), line: { color: COLORS[1], dash: "dot" } }] : []),
    ],
    layout: layout(options, { title: `Accuracy against ${parameter}` }, {
      xaxis: { title: { text: parameter }, type: options.log ?? parameter === "learning rate" ? "log" : typeof xs[0] === "string" ? "category" : "linear" },
      yaxis: { title: { text: "accuracy" }, range: [0, 1.02] },
    }),
  });
}
