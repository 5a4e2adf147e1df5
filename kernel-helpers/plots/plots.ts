// The charts the tutorials show, each one call: learning curves (also live), the mode comparison,
// confusion matrix, per-class precision/recall, misclassified images, data set counts, a PCA map of
// features, parameter sweeps, and the network with what each mode trains.
import * as path from "path";
import { Chart, type ChartOptions, type Figure, LiveChart } from "../display/chart";
import type { Comparison } from "../lab/compare";
import { decodeFile } from "../network/decode";
import { Displayable, escapeHtml } from "../display/display";
import type { Evaluation } from "../train/evaluation";
import { type ImageFolder, SPLITS } from "../data/image-folder";
import { BLOCKS, type CutLayer } from "../network/inception";
import type { Inception } from "../network/model";
import type { TrainingRun } from "../train/run";
import type { Mode } from "../train/options";
import { tf } from "../runtime/tf";
import type { EpochRecord, History, StepRecord, TrainCallbacks } from "../train/loop";

const COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"];

function layout(options: ChartOptions, defaults: { title: string; height?: number }, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    title: { text: options.title ?? defaults.title },
    height: options.height ?? defaults.height ?? 420,
    ...(options.width ? { width: options.width } : {}),
    margin: { t: 60, l: 60, r: 20, b: 50 },
    legend: { orientation: "h", y: -0.2 },
    ...extra,
  };
}

export type CurveAxis = "step" | "epoch" | "seconds" | "images";
const AXIS_TITLES: Record<CurveAxis, string> = { step: "step", epoch: "epoch", seconds: "wall time (s)", images: "training images seen" };

export interface CurveOptions extends ChartOptions {
  x?: CurveAxis;
}

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
  const history = "history" in run ? run.history : run;
  const title = "history" in run ? `Learning curves: ${run.mode}` : "Learning curves";
  return new Chart(curvesFigure(history, { title, ...options }));
}

/**
 * Training callbacks that draw the learning curves live in the cell's output, in place, and leave the
 * final chart there. Training functions use it by default in a notebook (option `liveChart`).
 */
export function liveCurves(options: CurveOptions = {}): TrainCallbacks & { finish(): void } {
  const history: History = { steps: [], epochs: [] };
  const live = new LiveChart();
  const draw = (force = false) => live.frame(curvesFigure(history, { title: "Learning curves (live)", ...options }), force);
  return {
    onBatchEnd(step) {
      history.steps.push(step);
      draw();
    },
    onEpochEnd(epoch) {
      history.epochs.push(epoch);
      draw(true);
    },
    finish() {
      live.finish(new Chart(curvesFigure(history, { title: "Learning curves", ...options })));
    },
  };
}

/** Validation accuracy of each mode against wall-clock time and against training images seen. */
export function modeComparison(comparison: Comparison, options: ChartOptions = {}): Chart {
  const data = comparison.rows.flatMap((row, i) => {
    const epochs = row.run.history.epochs;
    const offset = row.run.info.seconds - (epochs[epochs.length - 1]?.seconds ?? 0);
    const common = { type: "scatter", mode: "lines+markers", name: row.label, legendgroup: row.label, line: { color: COLORS[i % COLORS.length] } };
    return [
      { ...common, x: [offset, ...epochs.map((e) => offset + e.seconds)], y: [null, ...epochs.map((e) => e.valAccuracy)], connectgaps: true },
      { ...common, x: epochs.map((e) => e.images), y: epochs.map((e) => e.valAccuracy), xaxis: "x2", yaxis: "y2", showlegend: false },
    ];
  });
  return new Chart({
    data,
    layout: layout(options, { title: "Validation accuracy: retrain vs fine-tune vs from scratch" }, {
      grid: { rows: 1, columns: 2, pattern: "independent" },
      xaxis: { title: { text: "wall time (s), feature extraction included" } },
      xaxis2: { title: { text: "training images seen" }, type: "log" },
      yaxis: { title: { text: "validation accuracy" }, range: [0, 1.02] },
      yaxis2: { range: [0, 1.02] },
    }),
  });
}

/** The confusion matrix as a heatmap with counts. */
export function confusionMatrix(evaluation: Evaluation, options: ChartOptions = {}): Chart {
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
  const counts = data.counts();
  return new Chart({
    data: SPLITS.map((split, i) => ({ type: "bar", name: split, x: data.classes, y: counts[split], marker: { color: COLORS[i] } })),
    layout: layout(options, { title: `Images per class and split (${data.files().length} images)` }, { barmode: "stack" }),
  });
}

/** Thumbnails of misclassified test images with true and predicted labels and confidence, worst first. */
export class Gallery extends Displayable {
  constructor(
    readonly title: string,
    readonly items: { src: string; caption: string }[],
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
    return `<h4>${escapeHtml(this.title)}</h4><div>${cells || "<p>None.</p>"}</div>`;
  }
}

export async function misclassified(evaluation: Evaluation, options: { max?: number } = {}): Promise<Gallery> {
  const mistakes = evaluation.misclassified.slice(0, options.max ?? 24);
  const items = await Promise.all(
    mistakes.map(async (m) => {
      const pixels = tf.tensor3d(await decodeFile(m.path, 128), [128, 128, 3], "int32");
      const jpeg = await tf.node.encodeJpeg(pixels, "rgb", 80);
      pixels.dispose();
      return { src: `data:image/jpeg;base64,${Buffer.from(jpeg).toString("base64")}`, caption: `${path.basename(m.path)}: ${m.label} → ${m.predicted} (${(m.confidence * 100).toFixed(0)} %)` };
    }),
  );
  return new Gallery(`Misclassified ${evaluation.split} images: ${evaluation.misclassified.length} of ${evaluation.files.length}`, items);
}

/** The first two principal components of feature vectors, computed with TensorFlow. */
export function principalComponents(features: tf.Tensor2D): number[][] {
  return tf.tidy(() => {
    const centred = tf.sub(features, tf.mean(features, 0));
    const covariance = tf.div(tf.matMul(centred, centred, true, false), Math.max(features.shape[0] - 1, 1)) as tf.Tensor2D;
    const components: tf.Tensor2D[] = [];
    let matrix = covariance;
    for (let k = 0; k < 2; k++) {
      // Power iteration with deflation: plenty for two components of a covariance matrix.
      let v = tf.div(tf.ones([matrix.shape[0], 1]), Math.sqrt(matrix.shape[0])) as tf.Tensor2D;
      for (let i = 0; i < 100; i++) v = tf.tidy(() => { const w = tf.matMul(matrix, v); return tf.div(w, tf.add(tf.norm(w), 1e-12)) as tf.Tensor2D; });
      const eigenvalue = tf.sum(tf.mul(v, tf.matMul(matrix, v)));
      matrix = tf.sub(matrix, tf.mul(eigenvalue, tf.matMul(v, v, false, true))) as tf.Tensor2D;
      components.push(v);
    }
    return tf.matMul(centred, tf.concat(components, 1)).arraySync() as number[][];
  });
}

/** A 2-D PCA map of features (bottlenecks), one colour per class. */
export function featureMap(features: tf.Tensor2D, labels: number[], classes: string[], options: ChartOptions & { files?: string[] } = {}): Chart {
  const points = principalComponents(features);
  return new Chart({
    data: classes.map((label, c) => {
      const rows = points.map((p, i) => ({ p, i })).filter(({ i }) => labels[i] === c);
      return { type: "scatter", mode: "markers", name: label, x: rows.map((r) => r.p[0]), y: rows.map((r) => r.p[1]), text: options.files ? rows.map((r) => path.basename(options.files![r.i])) : undefined, marker: { size: 7, color: COLORS[c % COLORS.length] } };
    }),
    layout: layout(options, { title: "Features, first two principal components" }, { xaxis: { title: { text: "PC 1" } }, yaxis: { title: { text: "PC 2" } } }),
  });
}

/** Accuracy against a swept parameter (learning rate, unfreeze depth, batch size...). */
export function sweep(points: { value: number | string; accuracy: number; validationAccuracy?: number | null }[], options: ChartOptions & { parameter?: string; log?: boolean } = {}): Chart {
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

/** What one training step computes in each mode, block by block, as a picture. */
export class NetworkDiagram extends Displayable {
  constructor(
    readonly blocks: { block: string; parameters: number; gflops: number }[],
    readonly rows: { label: string; roles: ("cached" | "frozen" | "trained" | "unused")[] }[],
  ) {
    super();
  }

  toText(): string {
    const header = this.blocks.map((b) => b.block.padEnd(8)).join(" ");
    return [`${"".padEnd(24)} ${header}`, ...this.rows.map((r) => `${r.label.padEnd(24)} ${r.roles.map((x) => x.padEnd(8)).join(" ")}`)].join("\n");
  }

  toHTML(): string {
    const fill = { cached: "#c6dbef", frozen: "#9ecae1", trained: "#fd8d3c", unused: "#f0f0f0" };
    const w = 62;
    const left = 190;
    const rowHeight = 46;
    const width = left + this.blocks.length * w + 10;
    const height = 60 + this.rows.length * rowHeight + 50;
    const header = this.blocks
      .map((b, i) => `<text x="${left + i * w + w / 2}" y="20" text-anchor="middle" font-size="11" font-weight="bold">${b.block}</text><text x="${left + i * w + w / 2}" y="34" text-anchor="middle" font-size="9">${(b.parameters / 1e6).toFixed(2)}M</text><text x="${left + i * w + w / 2}" y="46" text-anchor="middle" font-size="9">${b.gflops.toFixed(2)} GF</text>`)
      .join("");
    const rows = this.rows
      .map((r, j) => {
        const y = 56 + j * rowHeight;
        return `<text x="4" y="${y + 24}" font-size="12">${escapeHtml(r.label)}</text>` + r.roles.map((role, i) => `<rect x="${left + i * w + 2}" y="${y}" width="${w - 4}" height="${rowHeight - 10}" rx="4" fill="${fill[role]}" stroke="#555" stroke-width="0.5"><title>${role}</title></rect>`).join("");
      })
      .join("");
    const legendY = height - 26;
    const legend = (
      [
        ["cached", "forward once, features cached"],
        ["frozen", "forward every step, frozen"],
        ["trained", "forward and backward every step"],
        ["unused", "not part of the classifier"],
      ] as const
    )
      .map(([role, text], i) => `<rect x="${4 + i * 200}" y="${legendY}" width="14" height="14" fill="${fill[role]}" stroke="#555" stroke-width="0.5"/><text x="${22 + i * 200}" y="${legendY + 11}" font-size="11">${text}</text>`)
      .join("");
    return `<svg xmlns="http://www.w3.org/2000/svg" width="${Math.max(width, 820)}" height="${height}" font-family="sans-serif">${header}${rows}${legend}</svg>`;
  }
}

/** Inception-v3's blocks with parameters and FLOPs, coloured by what each mode does with them in a step. */
export function network(inception: Inception, options: { layer?: CutLayer; unfreezeFrom?: CutLayer; classes?: number } = {}): NetworkDiagram {
  const layer = options.layer ?? inception.source.featureLayer;
  const cut = BLOCKS.indexOf(layer);
  const unfreezeFrom = BLOCKS.indexOf(options.unfreezeFrom ?? (BLOCKS[Math.max(cut - 1, 1)] as CutLayer));
  const bodies = inception.summary().blocks.filter((b) => b.block !== "top");
  const width = (inception.model.getLayer(layer).outputShape as number[])[3];
  const classes = options.classes ?? 5;
  const head = { block: "new head", parameters: width * classes + classes, gflops: (2 * width * classes) / 1e9 };
  const role = (i: number, mode: Mode | "fine-tune-top") => {
    if (i > cut) return "unused" as const;
    if (mode === "retrain-final-layer") return "cached" as const;
    if (mode === "fine-tune-top" && i < unfreezeFrom) return "frozen" as const;
    return "trained" as const;
  };
  const rowFor = (label: string, mode: Mode | "fine-tune-top") => ({ label, roles: [...bodies.map((_, i) => role(i, mode)), "trained" as const] });
  return new NetworkDiagram([...bodies, head], [
    rowFor("retrain the final layer", "retrain-final-layer"),
    rowFor(`fine-tune from ${BLOCKS[unfreezeFrom]}`, "fine-tune-top"),
    rowFor("fine-tune all", "fine-tune"),
    rowFor("train from scratch", "from-scratch"),
  ]);
}
