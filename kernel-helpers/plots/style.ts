// What every chart of the library shares: the colours and the layout defaults.
import type { ChartOptions } from "../display/chart";
import { checkOptions, rule, type Rule } from "../util/options";

/** Checks a plot's options: the chart options every plot takes, and the plot's own (`extra`). */
export function checkChartOptions(options: object | undefined, call: string, extra: Record<string, Rule> = {}): void {
  checkOptions(options, { title: rule.text("give a title."), width: rule.whole(100), height: rule.whole(100), ...extra }, call);
}

export const COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"];

export function layout(options: ChartOptions, defaults: { title: string; height?: number }, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    title: { text: options.title ?? defaults.title },
    height: options.height ?? defaults.height ?? 420,
    ...(options.width ? { width: options.width } : {}),
    margin: { t: 60, l: 60, r: 20, b: 50 },
    legend: { orientation: "h", y: -0.2 },
    ...extra,
  };
}
