// Feature vectors on a map: the first two principal components, one colour per class.
import { rule } from "../util/options";
import * as path from "path";
import { Chart, type ChartOptions } from "../display/chart";
import { principalComponents } from "../lab/pca";
import type { tf } from "../runtime/tf";
import { COLORS, layout, checkChartOptions } from "./style";

export { principalComponents };

/** A 2-D PCA map of features (bottlenecks), one colour per class. */
export function featureMap(features: tf.Tensor2D, labels: number[], classes: string[], options: ChartOptions & { files?: string[] } = {}): Chart {
  checkChartOptions(options, "plot.featureMap", { files: rule.list(rule.text()) });
  const points = principalComponents(features);
  return new Chart({
    data: classes.map((label, c) => {
      const rows = points.map((p, i) => ({ p, i })).filter(({ i }) => labels[i] === c);
      return { type: "scatter", mode: "markers", name: label, x: rows.map((r) => r.p[0]), y: rows.map((r) => r.p[1]), text: options.files ? rows.map((r) => path.basename(options.files![r.i])) : undefined, marker: { size: 7, color: COLORS[c % COLORS.length] } };
    }),
    layout: layout(options, { title: "Features, first two principal components" }, { xaxis: { title: { text: "PC 1" } }, yaxis: { title: { text: "PC 2" } } }),
  });
}
