// Live progress for long work: an in-place bar in the notebook (one output, updated at most every
// 300 ms), a carriage-return line on a terminal, silence in pipes and tests.
import { escapeHtml, inKernel, LiveOutput } from "./display";
import { formatDuration } from "./format";


export class Progress {
  private readonly output = new LiveOutput();
  private readonly started = performance.now();
  private lastDrawn = -Infinity;
  private done: number;

  /** `alreadyDone`: work finished before this bar started (a run trained on): shown, but not counted in the rate or ETA. */
  constructor(
    readonly title: string,
    readonly total: number,
    readonly unit = "items",
    private readonly alreadyDone = 0,
  ) {
    this.done = alreadyDone;
  }

  /** Seconds since start. */
  get elapsed(): number {
    return (performance.now() - this.started) / 1000;
  }

  /** Advances to `done` of `total`; `detail` is shown after the bar (loss, accuracy, ...). */
  update(done: number, detail = "", force = false): void {
    this.done = done;
    const now = performance.now();
    if (!force && now - this.lastDrawn < 300 && done < this.total) return;
    this.lastDrawn = now;
    this.draw(detail);
  }

  /** Draws the final state. */
  finish(detail = ""): void {
    this.draw(detail, true);
    if (process.stderr.isTTY && !inKernel()) process.stderr.write("\n");
  }

  private draw(detail: string, finished = false): void {
    const fraction = this.total > 0 ? Math.min(1, this.done / this.total) : 0;
    const rate = (this.done - this.alreadyDone) / Math.max(this.elapsed, 1e-9);
    const eta = finished ? "" : ` · ETA ${formatDuration((this.total - this.done) / rate)}`;
    const text =
      `${this.title}: ${this.done}/${this.total} ${this.unit} (${(fraction * 100).toFixed(0)}%) · ` +
      `${formatDuration(this.elapsed)} · ${rate.toFixed(rate < 10 ? 2 : 0)} ${this.unit}/s${eta}` +
      (detail ? ` · ${detail}` : "");
    if (inKernel()) {
      const bar =
        `<div style="font-family:monospace;font-size:12px">` +
        `<progress value="${this.done}" max="${this.total}" style="width:240px;vertical-align:middle"></progress> ` +
        `${escapeHtml(text)}</div>`;
      this.output.update({ "text/html": bar, "text/plain": text });
    } else if (process.stderr.isTTY) {
      process.stderr.write(`\r${text}`.padEnd(120).slice(0, 160));
    }
  }
}
