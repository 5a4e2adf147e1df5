// What fine-tuning changed, as pictures: the test images' features before and after (PCA maps side by
// side, with how well each separates the classes), how far each block's weights moved, and where each
// classifier looks (Grad-CAM heatmaps over the images).
// Every plot draws what it is given and returns at once: the work that reads images or runs a network is
// the lab's (featuresBeforeAfter, gradCam), awaited once, and its result can be drawn again for free.
import * as path from "path";
import { Chart, type ChartOptions } from "../display/chart";
import type { FeatureMaps, GradCams, WeightChanges } from "../lab/inside";
import { Gallery } from "./results";
import { COLORS, layout, checkChartOptions } from "./style";

/**
 * The features of featuresBeforeAfter(before, run): before training and after, on their first two principal
 * components side by side, one colour per class, each panel titled with its nearest-centroid accuracy.
 */
export function featuresBeforeAfter(maps: FeatureMaps, options: ChartOptions = {}): Chart {
  checkChartOptions(options, "plot.featuresBeforeAfter");
  const { classes, labels, files, split, layer, mode } = maps;
  return new Chart({
    data: maps.panels.flatMap((panel, p) =>
      classes.map((label, c) => {
        const rows = panel.points.map((point, i) => ({ point, i })).filter(({ i }) => labels[i] === c);
        return {
          type: "scatter",
          mode: "markers",
          name: label,
          legendgroup: label,
          showlegend: p === 0,
          x: rows.map((r) => r.point[0]),
          y: rows.map((r) => r.point[1]),
          text: rows.map((r) => path.basename(files[r.i])),
          marker: { size: 7, color: COLORS[c % COLORS.length] },
          ...(p === 1 ? { xaxis: "x2", yaxis: "y2" } : {}),
        };
      }),
    ),
    layout: layout(options, { title: `The ${split} images' features at ${layer}, before and after ${mode} (first two principal components)`, height: 460 }, {
      grid: { rows: 1, columns: 2, pattern: "independent" },
      annotations: maps.panels.map((panel, p) => ({
        text: `${p === 0 ? "before (pretrained)" : `after (${mode})`}: nearest centroid ${panel.accuracy.toFixed(2)} in ${maps.dimensions} dims, ${panel.accuracyShown.toFixed(2)} in the 2 shown`,
        xref: `x${p ? 2 : ""} domain`,
        yref: "paper",
        x: 0.5,
        y: 1.02,
        showarrow: false,
        xanchor: "center",
        yanchor: "bottom",
      })),
      xaxis: { title: { text: "PC 1" } },
      xaxis2: { title: { text: "PC 1" } },
      yaxis: { title: { text: "PC 2" } },
    }),
  });
}

/**
 * How far each block moved, from weightChange(before, runs): the learned weights (solid bars) and, beside them,
 * the batch norms' moving statistics (pale bars), one colour per run; the axis is the change as a fraction of
 * the weights' own size (1 = 100 %).
 */
export function weightChange(changes: WeightChanges[], options: ChartOptions = {}): Chart {
  checkChartOptions(options, "plot.weightChange");
  const name = (c: WeightChanges) => `${c.mode} ${c.trainedBlocks[0] === "head" ? "(head only)" : `${c.trainedBlocks[0]} to ${c.trainedBlocks[c.trainedBlocks.length - 2]}`}`;
  return new Chart({
    data: changes.flatMap((c, i) => [
      { type: "bar", name: `${name(c)}: learned weights`, x: c.blocks.map((b) => b.block), y: c.blocks.map((b) => b.relativeChange), marker: { color: COLORS[i % COLORS.length] } },
      { type: "bar", name: `${name(c)}: batch-norm statistics`, x: c.blocks.map((b) => b.block), y: c.blocks.map((b) => b.statisticsChange), marker: { color: COLORS[i % COLORS.length], opacity: 0.35 } },
    ]),
    layout: layout(options, { title: "How far each block moved: |after - before| / |before|, learned weights and batch-norm statistics as separate bars" }, { barmode: "group", yaxis: { title: { text: "change as a fraction of the weights' size (1 = 100 %)" } } }),
  });
}

/** The heatmaps of gradCam(runs, files): one row per image, one column per run. */
export function gradCam(cams: GradCams): Gallery {
  const items = cams.files.flatMap((_, i) =>
    cams.runs.map((run) => {
      const h = run.heatmaps[i];
      const truth = cams.truths[i];
      return { src: run.images[i], caption: `${run.mode}: ${truth} → ${h.predicted} (${(h.probability * 100).toFixed(0)} %)${truth === h.predicted ? "" : " ✗"}; half the evidence in ${(h.spread * 100).toFixed(0)} % of the image` };
    }),
  );
  return new Gallery(`Where each classifier finds the evidence for the class it predicts (Grad-CAM at the cut layer; red: most). Captions: true class → predicted (probability), ✗ when wrong`, items, cams.runs.length);
}
