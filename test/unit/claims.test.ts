// The committed notebooks, read as a sceptical teacher would: every sentence that states a measured number
// is an output computed from the run (notebook/claims.ts), its checks hold on the numbers it recorded, and
// the prose around it states none by hand. Runs on the committed files, so a notebook re-recorded with a
// figure out of range, or edited to claim what its run did not show, fails here.
import { test } from "node:test";
import * as assert from "node:assert/strict";
import * as fs from "fs";
import * as path from "path";
import { claim, ClaimError, CLAIM_MIME, failures, type Check } from "../../kernel-helpers/lab/claims";
import { root } from "../helpers";

interface Cell {
  cell_type: string;
  source: string[] | string;
  outputs?: { output_type: string; data?: Record<string, unknown>; text?: string[] | string }[];
}

const text = (value: string[] | string | undefined) => (Array.isArray(value) ? value.join("") : (value ?? ""));

/**
 * A number with a unit of measurement in prose: percentages, durations, rates, ratios, accuracies. Recipe
 * constants ("4,000 steps of 100", "3,670 images", "299 x 299") are not measurements and pass.
 */
const MEASURED = /(\b\d[\d,.]*\s*(%|percent\b|s\b|seconds?\b|min(utes?)?\b|h\b|hours?\b|days?\b|x\b(?!\s*\d)|times\b|GFLOP|img\/s|images\/s|points?\b)|\b0\.\d+\b)/i;

/** Prose of a markdown cell: quotations (the question, in the reader's words) and code are not the notebook's claims. */
function prose(markdown: string): string {
  return markdown
    .split("\n")
    .filter((line) => !line.trimStart().startsWith(">"))
    .join("\n")
    .replace(/`[^`]*`/g, "");
}

/** What each committed notebook must show as claims (by the checks' names), at the least. */
const REQUIRED: Record<string, string[]> = {
  "01-quickstart.ipynb": ["images computed or cached", "calls", "best validation accuracy of the new epochs"],
  "02-retrain-vs-fine-tune.ipynb": ["share of the convolution rate", "mirror-image share of the mistakes", "fine-tuning everything over retraining", "retrain.py with distortions over without", "from-scratch validation accuracy", "first network epoch's validation accuracy"],
  "03-hyperparameters.ipynb": ["test images", "finder seconds"],
  "04-inside-the-network.ipynb": ["frozen blocks that moved", "nearest-centroid accuracy after"],
};

/** The checks a notebook's claim outputs recorded, and the notebook's plain-text outputs. */
function recorded(cells: Cell[]) {
  const claims: { text: string; checks: Check[] }[] = [];
  const plain: string[] = [];
  for (const cell of cells) {
    for (const output of cell.outputs ?? []) {
      const data = output.data ?? {};
      if (data[CLAIM_MIME]) claims.push(data[CLAIM_MIME] as { text: string; checks: Check[] });
      plain.push(text(data["text/plain"] as string[] | string) + text(output.text));
    }
  }
  return { claims, plain: plain.join("\n") };
}

/** Every check of the committed notebook `file`: the problems found, in words (none when it holds). */
export function problems(file: string): string[] {
  const name = path.basename(file);
  const cells: Cell[] = JSON.parse(fs.readFileSync(file, "utf8")).cells;
  const found: string[] = [];
  for (const [i, cell] of cells.entries()) {
    if (cell.cell_type !== "markdown") continue;
    for (const sentence of prose(text(cell.source)).split(/(?<=[.:;!?])\s+/)) {
      if (MEASURED.test(sentence)) found.push(`cell ${i} states a measured number by hand: "${sentence.trim().slice(0, 140)}"`);
    }
  }
  const { claims, plain } = recorded(cells);
  if (cells.some((c) => c.cell_type === "code") && !cells.some((c) => (c.outputs ?? []).length > 0)) found.push("it carries no outputs: record it (npm run notebooks)");
  for (const claim of claims) for (const failure of failures(claim.checks)) found.push(`"${claim.text.slice(0, 100)}...": ${failure}`);
  const names = new Set(claims.flatMap((c) => c.checks.map((check) => check.what)));
  for (const required of REQUIRED[name] ?? []) if (!names.has(required)) found.push(`no claim checks "${required}"`);
  if (name === "02-retrain-vs-fine-tune.ipynb") {
    // The cost model prices the depth the experiments fine-tuned from, and no share of a peak exceeds 100 %.
    const depths = new Set([...plain.matchAll(/fine-tune from (mixed\d+)/g)].map((m) => m[1]));
    if (depths.size > 1) found.push(`fine-tunes "from" more than one block across the experiments and the cost model: ${[...depths].join(", ")}`);
    for (const m of plain.matchAll(/(\d+) % of (?:its assumed peak|the rate of)/g)) if (Number(m[1]) > 100) found.push(`a share of ${m[1]} %, above 100 %`);
  }
  return found;
}

const notebooks = fs.readdirSync(path.join(root, "notebooks")).filter((n) => n.endsWith(".ipynb")).sort();

for (const name of notebooks) {
  test(`committed notebook ${name}: every measured number in it is computed and checked, and holds`, () => {
    assert.deepEqual(problems(path.join(root, "notebooks", name)), []);
  });
}

test("a claim whose figure is out of range stops the notebook, naming the figure; one in range is shown with its checks", () => {
  assert.throws(
    () => claim("The step reached 166 % of the convolution rate.", { what: "share of the convolution rate", value: 1.66, atLeast: 0, atMost: 1 }),
    (error: Error) => error instanceof ClaimError && /share of the convolution rate is 1\.66, above 1/.test(error.message) && /166 %/.test(error.message),
  );
  assert.throws(() => claim("It learns.", { what: "accuracy over chance", value: Number.NaN, atLeast: 0 }), /accuracy over chance is NaN, not a number/);
  assert.throws(() => claim("Five runs agree.", { what: "runs", value: 4, equals: 5 }), /runs is 4, not 5/);
  const shown = claim("The step reached 65 % of the convolution rate.", { what: "share of the convolution rate", value: 0.65, atLeast: 0, atMost: 1 });
  assert.deepEqual(shown.toMimeBundle()[CLAIM_MIME], { text: "The step reached 65 % of the convolution rate.", checks: [{ what: "share of the convolution rate", value: 0.65, atLeast: 0, atMost: 1 }] });
});
