// A Plotly chart that shows itself as the last line of a cell and works offline everywhere:
//  - JupyterLab, live and reopened: the `application/vnd.plotly.v1+json` output (rendered by the
//    plotly lab extension, no "trust" needed);
//  - nbconvert HTML: a text/html part drawing with plotly.js, whose library (the cartesian bundle,
//    1.5 MB) is inlined only into the first chart of a kernel session, so ten charts stay small;
//  - a standalone HTML file (saveHtml), library inlined.
import { randomBytes } from "crypto";
import * as fs from "fs";
import { Displayable, inKernel, LiveOutput } from "./display";

export interface Figure {
  data: Record<string, unknown>[];
  layout: Record<string, unknown>;
  config?: Record<string, unknown>;
}

export interface ChartOptions {
  title?: string;
  width?: number;
  height?: number;
}

let plotlyLibrary: string | null = null;
function plotlyScript(): string {
  plotlyLibrary ??= fs.readFileSync(require.resolve("plotly.js-cartesian-dist-min"), "utf8");
  // Hides AMD/CommonJS loaders a page may have (nbconvert's template loads require.js when online),
  // so the bundle always sets window.Plotly.
  return `<script>(function(define, module, exports){${plotlyLibrary}\n}).call(window);</script>`;
}

let libraryShipped = false;

/** Plotly JSON is embedded in HTML scripts: keep "</script>" out of it. */
const jsonForScript = (value: unknown) => JSON.stringify(value).replace(/</g, "\\u003c");

export function plotlyHtml(figure: Figure, includeLibrary: boolean): string {
  const id = `il-${randomBytes(6).toString("hex")}`;
  const height = Number(figure.layout.height ?? 420);
  return (
    (includeLibrary ? plotlyScript() : "") +
    `<div id="${id}" class="inception-lab-chart" style="width:100%;min-height:${height}px"></div>` +
    `<script>(function(){var el=document.getElementById(${JSON.stringify(id)});` +
    `if(!window.Plotly){el.textContent="This chart needs plotly.js, which the first chart of the notebook carries: run all cells again, in order.";return;}` +
    `window.Plotly.newPlot(el,${jsonForScript(figure.data)},${jsonForScript(figure.layout)},${jsonForScript({ responsive: true, displaylogo: false, ...figure.config })});})();</script>`
  );
}

export class Chart extends Displayable {
  constructor(readonly figure: Figure) {
    super();
  }

  get title(): string {
    const title = this.figure.layout.title;
    return typeof title === "string" ? title : ((title as { text?: string } | undefined)?.text ?? "chart");
  }

  toMimeBundle() {
    const includeLibrary = !libraryShipped;
    if (inKernel()) libraryShipped = true;
    return {
      "application/vnd.plotly.v1+json": { data: this.figure.data, layout: this.figure.layout, config: this.figure.config ?? {} },
      "text/html": plotlyHtml(this.figure, includeLibrary),
      "text/plain": this.toText(),
    };
  }

  toText(): string {
    return `Chart: ${this.title} (${this.figure.data.length} traces)`;
  }

  /** The chart with plotly.js inlined, for saveHtml's standalone page. */
  protected standaloneHtml(): string {
    return plotlyHtml(this.figure, true);
  }
}

/**
 * A chart redrawn in place while work runs. JupyterLab's plotly renderer ignores updates to an
 * existing graph, so live frames are HTML drawn with plotly.js (the library sent with the first frame);
 * the final frame is the full Chart bundle, which also replaces the renderer.
 */
export class LiveChart {
  private readonly output = new LiveOutput();
  private frames = 0;
  private lastDrawn = -Infinity;

  constructor(readonly minSecondsBetweenFrames = 1) {}

  /** Draws a frame unless one was drawn less than minSecondsBetweenFrames ago. */
  frame(figure: Figure, force = false): void {
    const now = performance.now();
    if (!inKernel() || (!force && now - this.lastDrawn < this.minSecondsBetweenFrames * 1000)) return;
    this.lastDrawn = now;
    this.output.update({ "text/html": plotlyHtml(figure, this.frames++ === 0), "text/plain": "live chart" });
  }

  finish(chart: Chart): void {
    this.output.update(chart.toMimeBundle());
  }
}
