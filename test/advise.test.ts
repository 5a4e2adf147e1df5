// advise() answers "which should I use" for a folder: it says what it ran and what it predicts, recommends
// retraining where the features fit and fine-tuning where they fall short, and its predicted time of the next
// step holds within 20 % of that step run (advice.follow()). Timed alone (scripts/test.sh), as the cost test is:
// another file's work on the same cores would move the clock between measuring and running.
import { test } from "node:test";
import * as assert from "node:assert/strict";
import * as path from "path";
import { advise, Advice, loadInceptionV3, syntheticMirrors, syntheticShapes } from "inception-lab";
import { CLAIM_MIME, failures, type Check } from "../kernel-helpers/lab/claims";
import { scratch } from "./helpers";

process.env.INCEPTION_LAB_CACHE = scratch("advise-cache");
const quiet = { progress: false, liveChart: false } as const;

test("on shapes the features fit: stop here; on mirrored glyphs fine-tune the top blocks; each prediction of the next step within 20 % of the step run", async (t) => {
  const inception = await loadInceptionV3({ weights: "bundled", inputSize: 96 });
  const sets = {
    shapes: await syntheticShapes({ classes: 3, perClass: 40, imageSize: 96, seed: 12, dir: path.join(scratch("advise-shapes"), "set") }),
    mirrors: await syntheticMirrors({ perClass: 30, imageSize: 96, seed: 12, dir: path.join(scratch("advise-mirrors"), "set") }),
  };
  const expected = { shapes: "stop here", mirrors: "fine-tune the top blocks" };
  for (const [name, data] of Object.entries(sets) as [keyof typeof sets, (typeof sets)["shapes"]][]) {
    const advice = await advise(inception, data, { ...quiet, target: 0.9 });
    assert.ok(advice instanceof Advice);
    assert.equal(advice.recommendation, expected[name], `${name}: ${advice.toText()}`);
    assert.match(advice.toText(), /ran +retrain the final layer at mixed7/);
    assert.match(advice.toText(), /Retraining the final layer reached [\d.]+ validation accuracy/);
    const { checks, text } = advice.toMimeBundle()[CLAIM_MIME] as { checks: Check[]; text: string };
    assert.deepEqual(failures(checks, text), [], "its sentences hold, as claims");
    const run = await advice.follow();
    const ratio = run.info.seconds / advice.next.seconds;
    t.diagnostic(`${name}: ${advice.recommendation}; next: ${advice.next.label}: predicted ${advice.next.seconds.toFixed(1)} s, took ${run.info.seconds.toFixed(1)} s (ratio ${ratio.toFixed(2)})`);
    assert.ok(ratio > 0.8 && ratio < 1.2, `${name}: predicted ${advice.next.seconds.toFixed(1)} s, took ${run.info.seconds.toFixed(1)} s`);
    run.dispose();
    advice.retrained.dispose();
  }
});
