// Rich output in the notebook. tslab prints a cell's last expression with console.log, which goes
// through util.inspect: objects that extend Displayable send a MIME bundle (HTML, Plotly JSON, text)
// from their inspect hook, so `run` alone on the last line of a cell shows a table or chart.
// Outside a kernel (scripts, tests) the same objects print as plain text.
import { randomBytes } from "crypto";
import * as fs from "fs";
import * as path from "path";
import { inspect } from "util";

export type MimeBundle = Record<string, unknown>;

type WriteDisplayData = (content: object, update: boolean) => void;

function kernelWriter(): WriteDisplayData | null {
  try {
    // tslab's public display API sends one MIME type per output; its internal writer takes a bundle.
    return require("tslab/dist/jupyter").lastWriteDisplayData ?? null;
  } catch {
    return null;
  }
}

/** True when running inside a Jupyter kernel (tslab), false in scripts and tests. */
export function inKernel(): boolean {
  return kernelWriter() !== null;
}

/** Sends a MIME bundle as one notebook output. Returns false outside a kernel. */
export function displayBundle(bundle: MimeBundle, displayId?: string, update = false): boolean {
  const write = kernelWriter();
  if (!write) return false;
  write({ data: bundle, metadata: {}, transient: displayId ? { display_id: displayId } : {} }, update);
  return true;
}

/** One output that can be replaced in place (progress bars, live charts). */
export class LiveOutput {
  private readonly id = randomBytes(8).toString("hex");
  private shown = false;

  update(bundle: MimeBundle): void {
    if (displayBundle(bundle, this.id, this.shown)) this.shown = true;
  }
}

/** Base for results that render themselves when they are the last line of a cell. */
export abstract class Displayable {
  /** Plain-text rendering, used in scripts and as the text/plain part of the bundle. */
  abstract toText(): string;

  /** Rich rendering; the default is HTML from toHTML() plus the text. */
  toMimeBundle(): MimeBundle {
    return { "text/html": this.toHTML(), "text/plain": this.toText() };
  }

  toHTML(): string {
    return `<pre>${escapeHtml(this.toText())}</pre>`;
  }

  /** The page saveHtml writes (a chart adds plotly.js to it). */
  protected standaloneHtml(): string {
    return this.toHTML();
  }

  /**
   * Writes this output as a standalone HTML page, whole or not at all (charts carry plotly.js inside): it opens
   * offline in any browser. Returns the file's absolute path.
   */
  saveHtml(file: string): string {
    const target = path.resolve(file);
    const title = escapeHtml(this.toText().split("\n")[0].slice(0, 120));
    fs.mkdirSync(path.dirname(target), { recursive: true });
    const tmp = `${target}.tmp-${process.pid}-${randomBytes(4).toString("hex")}`;
    try {
      fs.writeFileSync(tmp, `<!doctype html><html><head><meta charset="utf-8"><title>${title}</title></head><body>${this.standaloneHtml()}</body></html>`);
      fs.renameSync(tmp, target);
    } finally {
      fs.rmSync(tmp, { force: true });
    }
    return target;
  }

  /** Shows this object as a notebook output now (or prints it outside a kernel). */
  show(): void {
    if (!displayBundle(this.toMimeBundle())) console.log(this.toText());
  }

  toString(): string {
    return this.toText();
  }

  [inspect.custom](): string {
    if (!displayBundle(this.toMimeBundle())) return this.toText();
    swallowNextNewline();
    return "";
  }
}

/**
 * tslab prints the value of a cell's last line with console.log; once the value has shown itself as a
 * rich output, that call would still add an empty stdout line. Drops exactly that one newline.
 */
function swallowNextNewline(): void {
  const write = process.stdout.write;
  process.stdout.write = function (this: NodeJS.WriteStream, chunk: unknown, ...rest: unknown[]) {
    process.stdout.write = write;
    return chunk === "\n" ? true : (write as (...args: unknown[]) => boolean).call(this, chunk, ...rest);
  } as typeof process.stdout.write;
}

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!);
}


export type Cell = string | number | null | undefined;

/** A table that renders as HTML in the notebook and as aligned columns in text. */
export class Table extends Displayable {
  constructor(
    readonly columns: string[],
    readonly rows: Cell[][],
    readonly title?: string,
  ) {
    super();
  }

  private static format(value: Cell): string {
    if (value === null || value === undefined) return "";
    // Four significant digits, without trailing zeros or exponents (0.8, 10.6, 0.9744, 78640).
    if (typeof value === "number") return Number.isInteger(value) ? String(value) : String(Number(value.toPrecision(4)));
    return value;
  }

  toText(): string {
    const cells = [this.columns, ...this.rows.map((row) => row.map(Table.format))];
    const widths = this.columns.map((_, i) => Math.max(...cells.map((row) => (row[i] ?? "").length)));
    const lines = cells.map((row) => row.map((cell, i) => (cell ?? "").padEnd(widths[i])).join("  ").trimEnd());
    lines.splice(1, 0, widths.map((w) => "-".repeat(w)).join("  "));
    return (this.title ? this.title + "\n" : "") + lines.join("\n");
  }

  toHTML(): string {
    const head = this.columns.map((c) => `<th style="text-align:left">${escapeHtml(c)}</th>`).join("");
    const body = this.rows
      .map((row) => `<tr>${row.map((cell) => `<td style="text-align:left">${escapeHtml(Table.format(cell))}</td>`).join("")}</tr>`)
      .join("");
    const caption = this.title ? `<caption style="text-align:left;font-weight:bold">${escapeHtml(this.title)}</caption>` : "";
    return `<table>${caption}<thead><tr>${head}</tr></thead><tbody>${body}</tbody></table>`;
  }
}
