// What fine-tuning changed, as pictures: the test images' features before and after (PCA maps side by
// side, with how well each separates the classes), how far each block's weights moved, and where each
// classifier looks (Grad-CAM heatmaps over the images).
import * as path from "path";
import { Chart, type ChartOptions } from "../display/chart";
import { labelFromFolder, type Split } from "../data/image-folder";
import { centroidAccuracy, gradCam as heatmaps, runFeatures, weightChange as blockChanges } from "../lab/inside";
import { decodeFile } from "../network/decode";
import type { Inception } from "../network/model";
import { tf } from "../runtime/tf";
import type { TrainingRun } from "../train/run";
import { principalComponents } from "./features";
import { Gallery } from "./results";
import { COLORS, layout } from "./style";

/**
 * The pooled features of one split's images at the run's cut, from the network before training
 * (`before`) and from the run's trained network, each on its first two principal components, one colour
 * per class. Each panel's title gives its nearest-centroid accuracy: how far the classes came apart.
 */
export async function featuresBeforeAfter(before: Inception, run: TrainingRun, options: ChartOptions & { split?: Split } = {}): Promise<Chart> {
  const split = options.split ?? "test";
  const examples = run.data.examples(split);
  const files = examples.map((e) => e.path);
  const labels = examples.map((e) => e.label);
  const [first, second] = [await before.features(files, { layer: run.info.layer }), await runFeatures(run, files)];
  const panels = [first, second].map((features) => ({ points: principalComponents(features), accuracy: centroidAccuracy(features, labels) }));
  tf.dispose([first, second]);
  const classes = run.data.classes;
  return new Chart({
    data: panels.flatMap((panel, p) =>
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
    layout: layout(options, { title: `The ${split} images' features at ${run.info.layer}, before and after ${run.mode} (first two principal components)`, height: 460 }, {
      grid: { rows: 1, columns: 2, pattern: "independent" },
      annotations: panels.map((panel, p) => ({
        text: `${p === 0 ? "before (pretrained)" : `after (${run.mode})`}: nearest-centroid accuracy ${panel.accuracy.toFixed(2)}`,
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

/** How far each block's weights moved from `before`, one group of bars per block, one colour per run. */
export function weightChange(before: Inception, runs: TrainingRun[], options: ChartOptions = {}): Chart {
  return new Chart({
    data: runs.map((run, i) => {
      const rows = blockChanges(before, run);
      return { type: "bar", name: `${run.mode}: ${run.info.trainedBlocks[0] === "head" ? "head only" : `from ${run.info.trainedBlocks[0]}`}`, x: rows.map((r) => r.block), y: rows.map((r) => r.relativeChange), marker: { color: COLORS[i % COLORS.length] } };
    }),
    layout: layout(options, { title: "How far each block's weights moved (|after - before| / |before|)" }, { barmode: "group", yaxis: { title: { text: "relative change" } } }),
  });
}

/** A heatmap (rows of 0..1) over an image as a JPEG data URL: blue (no evidence) to red (most). */
async function overlay(file: string, map: number[][], size = 128): Promise<string> {
  const pixels = await decodeFile(file, size);
  const jpeg = await tf.tidy(() => {
    const heat = tf.image.resizeBilinear(tf.tensor3d(map.map((row) => row.map((v) => [v]))), [size, size]) as tf.Tensor3D;
    const channel = (centre: number) => tf.clipByValue(tf.sub(1.5, tf.abs(tf.sub(tf.mul(heat, 4), centre))), 0, 1);
    const colour = tf.concat([channel(3), channel(2), channel(1)], 2);
    const image = tf.tensor3d(pixels, [size, size, 3], "int32").toFloat();
    return tf.add(tf.mul(image, 0.5), tf.mul(colour, 127)).toInt() as tf.Tensor3D;
  });
  try {
    return `data:image/jpeg;base64,${Buffer.from(await tf.node.encodeJpeg(jpeg, "rgb", 85)).toString("base64")}`;
  } finally {
    jpeg.dispose();
  }
}

/** Grad-CAM heatmaps of each run over the same images: one row per image, one column per run. */
export async function gradCam(runs: TrainingRun[], files: string[]): Promise<Gallery> {
  const perRun = await Promise.all(runs.map((run) => heatmaps(run, files)));
  const items = [];
  for (let i = 0; i < files.length; i++) {
    for (const [r, run] of runs.entries()) {
      const h = perRun[r][i];
      // The folder's label as the data set spells it ("F mirrored" is the class "f mirrored"), so a right answer reads as one.
      const truth = labelFromFolder(path.basename(path.dirname(files[i])));
      items.push({ src: await overlay(files[i], h.map), caption: `${run.mode}: ${truth} → ${h.predicted} (${(h.probability * 100).toFixed(0)} %)${truth === h.predicted ? "" : " ✗"}` });
    }
  }
  return new Gallery(`Where each classifier finds the evidence for the class it predicts (Grad-CAM at the cut layer; red: most). Captions: true class → predicted (probability), ✗ when wrong`, items, runs.length);
}
