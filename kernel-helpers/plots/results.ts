// What a classifier gets right and wrong: the confusion matrix, precision and recall per class,
// the misclassified images, and the data set's counts per class and split.
import { checkOptions, rule } from "../util/options";
import * as path from "path";
import { Chart, type ChartOptions } from "../display/chart";
import { Displayable, escapeHtml } from "../display/display";
import { type ImageFolder, SPLITS } from "../data/image-folder";
import { MISTAKES_SHOWN } from "../train/classifier/classifier";
import type { Evaluation } from "../train/classifier/evaluation";
import { COLORS, layout, checkChartOptions } from "./style";

/** The confusion matrix as a heatmap with counts. */
export function confusionMatrix(evaluation: Evaluation, options: ChartOptions = {}): Chart {
  checkChartOptions(options, "plot.confusionMatrix");
  const classes = evaluation.classes;
  return new Chart({
    data: [{ type: "heatmap", z: evaluation.confusion, x: classes, y: classes, colorscale: "Blues", texttemplate: "%{z}", hovertemplate: "true %{y}, predicted %{x}: %{z}<extra></extra>" }],
    layout: layout(options, { title: `Confusion matrix (${evaluation.split}, accuracy ${(evaluation.accuracy * 100).toFixed(1)} %)`, height: 300 + 30 * classes.length }, {
      xaxis: { title: { text: "predicted" } },
      yaxis: { title: { text: "true" }, autorange: "reversed" },
    }),
  });
}

/** Precision and recall of each class as bars. */
export function perClass(evaluation: Evaluation, options: ChartOptions = {}): Chart {
  checkChartOptions(options, "plot.perClass");
  const labels = evaluation.perClass.map((c) => c.label);
  return new Chart({
    data: [
      { type: "bar", name: "precision", x: labels, y: evaluation.perClass.map((c) => c.precision), marker: { color: COLORS[0] } },
      { type: "bar", name: "recall", x: labels, y: evaluation.perClass.map((c) => c.recall), marker: { color: COLORS[1] } },
    ],
    layout: layout(options, { title: `Precision and recall per class (${evaluation.split})` }, { barmode: "group", yaxis: { range: [0, 1.02] } }),
  });
}

/** Images per class in each split, stacked. */
export function datasetCounts(data: ImageFolder, options: ChartOptions = {}): Chart {
  checkChartOptions(options, "plot.datasetCounts");
  const counts = data.counts();
  return new Chart({
    data: SPLITS.map((split, i) => ({ type: "bar", name: split, x: data.classes, y: counts[split], marker: { color: COLORS[i] } })),
    layout: layout(options, { title: `Images per class and split (${data.files().length} images)` }, { barmode: "stack" }),
  });
}

/** Thumbnails of misclassified test images with true and predicted labels and confidence, worst first. */
/** Images with captions, flowing, or in `columns` columns (one row per subject, one column per view). */
export class Gallery extends Displayable {
  constructor(
    readonly title: string,
    readonly items: { src: string; caption: string }[],
    readonly columns?: number,
  ) {
    super();
  }

  toText(): string {
    return `${this.title}\n${this.items.map((i) => `  ${i.caption}`).join("\n")}`;
  }

  toHTML(): string {
    const cells = this.items
      .map((i) => `<figure style="margin:4px;width:140px;display:inline-block;vertical-align:top"><img src="${i.src}" style="width:128px;height:128px"><figcaption style="font-size:11px">${escapeHtml(i.caption)}</figcaption></figure>`)
      .join("");
    const grid = this.columns ? ` style="display:grid;grid-template-columns:repeat(${this.columns},148px)"` : "";
    return `<h4>${escapeHtml(this.title)}</h4><div${grid}>${cells || "<p>None.</p>"}</div>`;
  }
}

/** The worst misclassified images of an evaluation with their captions (their pictures were read by evaluate()). */
export function misclassified(evaluation: Evaluation, options: { max?: number } = {}): Gallery {
  checkOptions(options, { max: rule.whole(1) }, "plot.misclassified");
  const mistakes = evaluation.misclassified.slice(0, Math.min(options.max ?? 24, MISTAKES_SHOWN)).filter((m) => evaluation.thumbnails.has(m.path));
  const items = mistakes.map((m) => ({ src: evaluation.thumbnails.get(m.path)!, caption: `${path.basename(m.path)}: ${m.label} → ${m.predicted} (${(m.confidence * 100).toFixed(0)} %)` }));
  return new Gallery(`Misclassified ${evaluation.split} images: ${evaluation.misclassified.length} of ${evaluation.files.length}${evaluation.misclassified.length > items.length ? ` (the ${items.length} worst shown)` : ""}`, items);
}
