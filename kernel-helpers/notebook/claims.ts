// Sentences of a notebook that state numbers, computed from the run and checked as they are said. A reader
// who checks every sentence against the numbers beside it should find nothing to correct: a sentence that
// states a number is made from that number, and a figure outside its possible range (a share of peak above
// 100 %, an accuracy at chance called learning) stops the notebook instead of being printed. Each claim's
// output carries its numbers and checks as data (CLAIM_MIME), so test/claims.test.ts re-checks the
// committed notebooks against what they recorded.
import { Displayable, escapeHtml } from "../display/display";

export const CLAIM_MIME = "application/vnd.inception-lab.claim+json";

/** One number a sentence rests on, with the range it must lie in (or the value it must equal). */
export interface Check {
  what: string;
  value: number | string;
  atLeast?: number;
  atMost?: number;
  equals?: number | string;
}

/** The checks that fail, each said in words; none for a sentence that holds. */
export function failures(checks: Check[]): string[] {
  return checks.flatMap((c) => {
    const problems: string[] = [];
    if (typeof c.value === "number" && !Number.isFinite(c.value)) problems.push(`${c.what} is ${c.value}, not a number`);
    if (c.atLeast !== undefined && !(typeof c.value === "number" && c.value >= c.atLeast)) problems.push(`${c.what} is ${c.value}, below ${c.atLeast}`);
    if (c.atMost !== undefined && !(typeof c.value === "number" && c.value <= c.atMost)) problems.push(`${c.what} is ${c.value}, above ${c.atMost}`);
    if (c.equals !== undefined && c.value !== c.equals) problems.push(`${c.what} is ${c.value}, not ${c.equals}`);
    return problems;
  });
}

export class ClaimError extends Error {}

/** A sentence (Markdown) and the numbers it rests on. */
export class Claim extends Displayable {
  constructor(
    readonly text: string,
    readonly checks: Check[],
  ) {
    super();
  }

  toText(): string {
    return this.text;
  }

  toHTML(): string {
    // Markdown's **bold** and `code` as HTML, for outputs that render HTML only.
    return `<p>${escapeHtml(this.text)
      .replace(/\*\*(.+?)\*\*/g, "<b>$1</b>")
      .replace(/`(.+?)`/g, "<code>$1</code>")}</p>`;
  }

  toMimeBundle() {
    return { "text/markdown": this.text, "text/html": this.toHTML(), "text/plain": this.text, [CLAIM_MIME]: { text: this.text, checks: this.checks } };
  }
}

/**
 * A sentence that states numbers, with the checks they must pass: throws (stopping the notebook) when one
 * fails, naming the figure and its range, rather than printing a sentence that cannot be true.
 */
export function claim(text: string, ...checks: Check[]): Claim {
  const failed = failures(checks);
  if (failed.length) throw new ClaimError(`The notebook would say "${text}", but ${failed.join("; ")}: a figure outside its possible range. Look at the measurement before trusting this run.`);
  return new Claim(text, checks);
}

/** Several claims as one paragraph, one output. */
export function claims(...items: Claim[]): Claim {
  return new Claim(items.map((c) => c.text).join(" "), items.flatMap((c) => c.checks));
}
