// Sentences that state numbers, computed from the run and checked as they are said. A reader who checks every
// sentence against the numbers beside it should find nothing to correct: a sentence that states a number is
// made from that number (and must show it), a figure outside its possible range (a share of peak above 100 %,
// an accuracy at chance called learning) stops the notebook instead of being printed, and a word that states a
// direction ("more", "faster", "came apart", "won") must stand on a check of that direction on the numbers
// (`word`, with `above` or `below`). Each claim's output carries its numbers and checks as data (CLAIM_MIME), so
// test/claims.test.ts re-checks the committed notebooks against what they recorded. Experiments that speak in
// sentences (the finder, the comparison's verdict) make claims too; the notebook layer re-exports them.
import { Displayable, escapeHtml } from "../display/display";
import { formatCount, formatDuration } from "../display/format";
import { checkOptions, rule } from "../util/options";

export const CLAIM_MIME = "application/vnd.inception-lab.claim+json";

/** One number a sentence rests on, with the range it must lie in, the value it must equal, or the direction it states. */
export interface Check {
  what: string;
  value: number | string;
  atLeast?: number;
  atMost?: number;
  equals?: number | string;
  /** The value is strictly above this (the sentence says more, faster, higher...). */
  above?: number;
  /** The value is strictly below this (the sentence says less, slower, lower...). */
  below?: number;
  /** The words of the sentence this check stands behind ("more cautious", "came apart"): they must be in it. */
  word?: string;
  /**
   * Whether the sentence writes the value (default yes, for numbers: in one of the forms people write it: 0.71,
   * 71 %, 7.1e-4, 1 min 39 s, 4,614). False for a number that chose the sentence's words or bounds another.
   */
  stated?: boolean;
}

const CHECK_RULES = {
  what: rule.text("name what the number is."),
  value: rule.any(),
  atLeast: rule.either(rule.between(-Infinity, Infinity), () => "give a number."),
  atMost: rule.either(rule.between(-Infinity, Infinity), () => "give a number."),
  equals: rule.any(),
  above: rule.either(rule.between(-Infinity, Infinity), () => "give a number."),
  below: rule.either(rule.between(-Infinity, Infinity), () => "give a number."),
  word: rule.text("give the words of the sentence."),
  stated: rule.boolean(),
};

/**
 * Words that state a direction or a verdict about the run's numbers. A claim that uses one must carry a check
 * whose `word` covers it, so the word follows from the numbers; prose around the claims must not use them.
 */
export const DIRECTION_WORDS = [
  "more", "less", "fewer", "faster", "slower", "higher", "lower", "better", "worse", "larger", "smaller", "cheaper",
  "ahead", "behind", "beat", "beats", "won", "wins", "cautious", "apart", "continues", "agree", "agrees", "disagree",
  "gains", "gained", "trails", "dropped", "rose", "fell", "improved", "same budget", "suit", "suits", "where it stopped",
];

/** The direction words a text uses (whole words, any case). */
export function directionWords(text: string): string[] {
  return DIRECTION_WORDS.filter((word) => new RegExp(`(?<![\\w-])${word.replace(/ /g, "\\s+")}(?![\\w-])`, "i").test(text));
}

/** The ways a number is written in these notebooks. */
function writtenForms(value: number): string[] {
  const forms = new Set<string>();
  for (let d = 0; d <= 4; d++) forms.add(value.toFixed(d));
  for (let d = 0; d <= 2; d++) forms.add((value * 100).toFixed(d));
  for (let d = 0; d <= 3; d++) forms.add(value.toExponential(d));
  for (let p = 1; p <= 4; p++) forms.add(String(Number(value.toPrecision(p))));
  forms.add(value.toLocaleString("en-US"));
  forms.add(formatCount(value));
  if (value >= 0) forms.add(formatDuration(value));
  return [...forms].map((f) => f.replace(/^-0(\.0*)?$/, "0$1"));
}

/** Whether `text` writes `value` in one of its usual forms (a whole token, not part of a longer number). */
export function states(text: string, value: number): boolean {
  return writtenForms(value).some((form) => new RegExp(`(?<![\\d.])${form.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}(?![\\d])`).test(text));
}

/** The problems of a sentence and its checks, each in words; none for a sentence that holds. */
export function failures(checks: Check[], text?: string): string[] {
  const problems = checks.flatMap((c) => {
    const found: string[] = [];
    if (typeof c.value === "number" && !Number.isFinite(c.value)) found.push(`${c.what} is ${c.value}, not a number`);
    if (c.atLeast !== undefined && !(typeof c.value === "number" && c.value >= c.atLeast)) found.push(`${c.what} is ${c.value}, below ${c.atLeast}`);
    if (c.atMost !== undefined && !(typeof c.value === "number" && c.value <= c.atMost)) found.push(`${c.what} is ${c.value}, above ${c.atMost}`);
    if (c.equals !== undefined && c.value !== c.equals) found.push(`${c.what} is ${c.value}, not ${c.equals}`);
    if (c.above !== undefined && !(typeof c.value === "number" && c.value > c.above)) found.push(`${c.what} is ${c.value}, not above ${c.above}${c.word ? `, so "${c.word}" is not true` : ""}`);
    if (c.below !== undefined && !(typeof c.value === "number" && c.value < c.below)) found.push(`${c.what} is ${c.value}, not below ${c.below}${c.word ? `, so "${c.word}" is not true` : ""}`);
    if (text !== undefined && c.word !== undefined && !text.toLowerCase().includes(c.word.toLowerCase())) found.push(`the sentence does not say "${c.word}", which the check of ${c.what} stands behind`);
    if (text !== undefined && typeof c.value === "number" && Number.isFinite(c.value) && c.stated !== false && !states(text, c.value)) found.push(`the sentence does not write ${c.what} (${c.value}) in any usual form; mark the check stated: false if it only chose the words`);
    return found;
  });
  if (text !== undefined) {
    const covered = checks.flatMap((c) => (c.word ? directionWords(c.word) : []));
    for (const word of directionWords(text)) if (!covered.includes(word)) problems.push(`the sentence says "${word}" with no check of that direction (a check with word: "${word}" and above or below)`);
  }
  return problems;
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
 * fails, naming the figure and its range, when the sentence does not write a number it claims to state, or
 * when it uses a direction word no check stands behind, rather than printing a sentence that cannot be true.
 */
export function claim(text: string, ...checks: Check[]): Claim {
  checks.forEach((check) => checkOptions(check, CHECK_RULES, "claim check"));
  const failed = failures(checks, text);
  if (failed.length) throw new ClaimError(`The notebook would say "${text}", but ${failed.join("; ")}. Look at the measurement before trusting this run.`);
  return new Claim(text, checks);
}

/** Several claims as one paragraph, one output. */
export function claims(...items: Claim[]): Claim {
  return new Claim(items.map((c) => c.text).join(" "), items.flatMap((c) => c.checks));
}
