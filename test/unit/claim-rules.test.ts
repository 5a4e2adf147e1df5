// The rules a notebook sentence is held to (lab/claims.ts), on made-up sentences: a number it claims to state is
// in it, a direction word stands on a check of that direction, a check's misspelt bound is refused, not ignored.
import { test } from "node:test";
import * as assert from "node:assert/strict";
import { claim, ClaimError, directionWords, states } from "../../kernel-helpers/lab/claims";

test("a sentence must write the number it claims: 'Accuracy was 99 %' with a value of 0.41 is refused", () => {
  assert.throws(() => claim("Accuracy was 99 %.", { what: "accuracy", value: 0.41, atLeast: 0, atMost: 1 }), (e: Error) => e instanceof ClaimError && /does not write accuracy \(0\.41\)/.test(e.message));
  assert.doesNotThrow(() => claim("Accuracy was 41 %.", { what: "accuracy", value: 0.41, atLeast: 0, atMost: 1 }));
  assert.doesNotThrow(() => claim("Accuracy was 0.41.", { what: "accuracy", value: 0.41 }));
  assert.doesNotThrow(() => claim("It took 1 min 39 s.", { what: "seconds", value: 99.2 }));
  assert.doesNotThrow(() => claim("It holds 4,614 weights.", { what: "weights", value: 4614 }));
  assert.doesNotThrow(() => claim("The rate of 9.1e-4 fits.", { what: "rate", value: 0.000912 }));
  assert.ok(!states("a spread of 10.55 points", 0.5), "0.5 is not read inside 10.55");
  assert.doesNotThrow(() => claim("It chose the first.", { what: "which", value: 0, equals: 0, stated: false }));
});

test("a check's misspelt bound is refused, not ignored", () => {
  assert.throws(() => claim("Accuracy was 41 %.", { what: "accuracy", value: 0.41, atleast: 0 } as never), /claim check: there is no option "atleast"\. Did you mean "atLeast"\?/);
});

test("a direction word needs a check of that direction, and the check must hold", () => {
  assert.deepEqual(directionWords("A tenth of the rate gives 1.5e-3, the older, more cautious rule."), ["more", "cautious"]);
  assert.throws(() => claim("The older rule gives 1.5e-3, more cautious.", { what: "rate", value: 0.0015 }), /says "more" with no check of that direction/);
  // 1.5e-3 is above the valley's 9.1e-4: "more cautious" is false, and the check says so.
  assert.throws(
    () => claim("The older rule gives 1.5e-3, lower, more cautious.", { what: "rate", value: 0.0015 }, { what: "valley over the older rule", value: 0.00091 / 0.0015, above: 1, word: "lower, more cautious", stated: false }),
    /not above 1, so "lower, more cautious" is not true/,
  );
  assert.doesNotThrow(() => claim("The older rule gives 1.5e-3, higher, less cautious.", { what: "rate", value: 0.0015 }, { what: "older rule over valley", value: 0.0015 / 0.00091, above: 1, word: "higher, less cautious", stated: false }));
  assert.throws(() => claim("Fine-tuning gains 42 points.", { what: "gain", value: 0.42 }), /says "gains" with no check/);
  assert.throws(() => claim("Classes came apart: 0.36 to 0.88.", { what: "before", value: 0.36 }, { what: "after", value: 0.88 }), /says "apart"/);
});
