// The comparison's verdict (lab/compare.ts) on made-up rows: the fine-tune it reports is chosen by validation
// accuracy, the regime by the test accuracies' difference against what the test images can tell apart, and every
// sentence is a claim whose checks stand behind its numbers and words.
import { test } from "node:test";
import * as assert from "node:assert/strict";
import { Comparison, type ComparisonRow } from "../../kernel-helpers/lab/compare";
import { failures } from "../../kernel-helpers/lab/claims";
import { accuracyStandardError, guessSpread } from "../../kernel-helpers/lab/statistics";

const images = (n: number) => ({ classes: ["a", "b", "c", "d"], files: Array.from({ length: n }, String) });

function rows(retrain: number, tuned: number, n = 100, extra: Partial<ComparisonRow>[] = []): ComparisonRow[] {
  const common = { secondsToTarget: 3, imagesPerSecond: 1, flopsPerImage: 1e6, trainedParameters: 1, evaluation: images(n) };
  const run = (validation: number) => ({ info: { precision: { precision: "float32" } }, bestValidationAccuracy: validation });
  return [
    { ...common, mode: "retrain-final-layer", unfreezeFrom: null, label: "retrain the final layer", testAccuracy: retrain, seconds: 4, targetPhase: "head", run: run(retrain) },
    { ...common, mode: "fine-tune", unfreezeFrom: "mixed6", label: "fine-tune mixed6 to mixed7", testAccuracy: tuned, seconds: 80, targetPhase: "fine-tune", run: run(tuned) },
    { ...common, mode: "from-scratch", unfreezeFrom: null, label: "from scratch, stem to mixed7", testAccuracy: 0.3, seconds: 90, targetPhase: null, run: run(0.3) },
    ...extra,
  ] as unknown as ComparisonRow[];
}

const holds = (comparison: Comparison) => {
  const verdict = comparison.verdict();
  for (const c of verdict.claims) assert.deepEqual(failures(c.checks, c.text), [], c.text);
  return verdict;
};

test("the regime: fit within what the test images can resolve, short beyond 10 points and that, in between otherwise", () => {
  const fit = holds(new Comparison(rows(0.98, 0.99), 0.8, "shapes"));
  assert.equal(fit.regime, "features fit");
  assert.match(fit.toText(), /On shapes, retraining the final layer reached 0\.98 test accuracy in 4 s; fine-tune mixed6 to mixed7, the fine-tune with the best validation accuracy \(0\.99\), reached 0\.99 in 1 min 20 s \(20\.0x the time\)\./);
  assert.match(fit.toText(), /differ by 1 point, within what 100 test images can resolve \(twice the standard error of the difference, 5 points\)/);
  const short = holds(new Comparison(rows(0.5, 0.85), 0.8, "mirrored glyphs"));
  assert.equal(short.regime, "features fall short");
  assert.match(short.toText(), /fine-tuning gains 35 points, more than 12 points/);
  // Six points on 100 images: these images cannot resolve ten points, so undecided; on 1,000 beyond the noise and below ten points: "in between".
  const few = holds(new Comparison(rows(0.8, 0.86), 0.8, "x"));
  assert.equal(few.regime, "undecided");
  assert.match(few.toText(), /cannot tell a gain of 10 points from none, so this comparison does not say whether the features fit/);
  assert.equal(holds(new Comparison(rows(0.8, 0.86, 1000), 0.8, "x")).regime, "in between");
  // Both at chance on 1,000 images, within the noise of each other: nothing learned, so nothing to say about the features.
  const neither = holds(new Comparison(rows(0.25, 0.27, 1000), 0.8, "x"));
  assert.equal(neither.regime, "undecided");
  assert.match(neither.toText(), /Retraining scored 0\.25, within twice a guess's spread of chance .*neither learned this task measurably on this budget/);
});

test("validation chooses the fine-tune the verdict reports; the test split only reports it", () => {
  const better = { mode: "fine-tune", unfreezeFrom: "all", label: "fine-tune stem to mixed7", testAccuracy: 0.95, seconds: 100, targetPhase: "fine-tune", secondsToTarget: 5, imagesPerSecond: 1, flopsPerImage: 1, trainedParameters: 1, evaluation: images(100), run: { info: {}, bestValidationAccuracy: 0.8 } };
  const verdict = holds(new Comparison(rows(0.5, 0.85, 100, [better as never]), 0.8, "x"));
  assert.match(verdict.toText(), /fine-tune mixed6 to mixed7, the fine-tune with the best validation accuracy \(0\.85\), reached 0\.85/, "not the one with the best test accuracy");
});

test("from scratch against chance and against the fine-tune; a target reached in a warm-up is retraining's work", () => {
  const scratchAt = (accuracy: number) => holds(new Comparison(rows(0.5, 0.85).map((r) => (r.mode === "from-scratch" ? { ...r, testAccuracy: accuracy } : r)), 0.8, "x")).toText();
  assert.match(scratchAt(0.26), /reached 0\.26, chance level for 4 classes \(a guess scores 0\.25 give or take 0\.04 on these 100 test images\): with random weights, this budget learns nothing measurable/);
  assert.match(scratchAt(0.4), /reached 0\.40, barely above chance .*only begun to learn/);
  assert.match(scratchAt(0.45), /reached 0\.45 \(a guess scores .*\): it learns, but without a head start it trails fine-tune mixed6 to mixed7, which reached 0\.85/);
  assert.match(scratchAt(0.85), /reached 0\.85 \(a guess scores .*\), as high as fine-tune mixed6 to mixed7 \(0\.85\) on these test images: this task was within its reach without a head start/);
  const warmed = rows(0.5, 0.85).map((r) => (r.mode === "fine-tune" ? { ...r, targetPhase: "warm-up" } : r));
  const comparison = new Comparison(warmed, 0.8, "x");
  assert.match(holds(comparison).toText(), /Fine-tune mixed6 to mixed7 reached 80 % validation accuracy in its warm-up, which trains the head on the cached features as retraining does/);
  assert.match(comparison.table().toText(), /fine-tune mixed6 to mixed7 +0\.85 +80 +in the warm-up/);
});

test("an accuracy on a few images is never exact: 7 of 7 right is 1 give or take 0.12, not 0; a guess's spread is the exact binomial one", () => {
  assert.equal(accuracyStandardError(1, 7).toFixed(2), "0.12");
  assert.equal(accuracyStandardError(0, 7).toFixed(2), "0.12");
  // Many images: close to the plain binomial formula.
  assert.ok(Math.abs(accuracyStandardError(0.8, 10_000) - Math.sqrt((0.8 * 0.2) / 10_000)) < 1e-4);
  assert.equal(guessSpread(0.25, 100).toFixed(3), "0.043");
});
