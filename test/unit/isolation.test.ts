// Test files run two at a time (scripts/test.sh), so none may touch another's files: every scratch folder is
// the test file's own (test-output/<file>/<name>, helpers.ts), and nothing else in test/ names test-output/
// directly. A fresh clone's run once failed because inside.test.ts read images that model.test.ts, beside it,
// was regenerating under the same folder name.
import { test } from "node:test";
import * as assert from "node:assert/strict";
import * as fs from "fs";
import * as path from "path";
import { root, scratchRoot, testFileName } from "../helpers";

function testSources(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return testSources(full);
    return /\.(ts|js|py)$/.test(entry.name) ? [full] : [];
  });
}

test("only helpers.ts names test-output: every other folder a test writes there goes through scratch()", () => {
  const offenders = testSources(path.join(root, "test")).filter((file) => {
    if (file === path.join(root, "test", "helpers.ts")) return false;
    // Comments may say where outputs go; code may not build the path itself.
    const code = fs.readFileSync(file, "utf8").replace(/^\s*\/\/.*$/gm, "");
    return /["'`/]test-output\b/.test(code);
  });
  assert.deepEqual(offenders.map((file) => path.relative(root, file)), []);
});

test("two test files' scratch folders never meet, and scratch() outside a test file is refused", () => {
  const [a, b] = [scratchRoot("inside"), scratchRoot("model")];
  assert.notEqual(a, b);
  assert.ok(!a.startsWith(b + path.sep) && !b.startsWith(a + path.sep), `${a} and ${b} are apart`);
  assert.equal(testFileName("/x/test/inside.test.ts"), "inside");
  assert.equal(testFileName("/x/test/unit/options.test.ts"), "options");
  assert.throws(() => testFileName("/x/bench/bench.ts"), /scratch folders belong to a test file/);
});

test("no two test files share a name, so no two share a scratch root", () => {
  const names = testSources(path.join(root, "test")).filter((file) => file.endsWith(".test.ts")).map((file) => path.basename(file));
  const twice = names.filter((name, i) => names.indexOf(name) !== i);
  assert.deepEqual(twice, [], "test/ and test/unit/ hold files of the same name");
});
