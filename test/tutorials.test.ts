// Executes every tutorial notebook in notebooks/ through the real tslab kernel (nbclient), on the budget
// INCEPTION_LAB_BUDGET names (scripts/test.sh sets "fast"). Outputs go to test-output/tutorials/notebooks/,
// so the committed notebooks and their recorded outputs are never overwritten by a test run.
import { test } from "node:test";
import * as assert from "node:assert/strict";
import * as fs from "fs";
import * as path from "path";
import { spawnSync } from "child_process";
import { python, root, scratch } from "./helpers";

const outputDir = scratch("notebooks");

function runNotebook(notebook: string) {
  const target = path.join(outputDir, path.basename(notebook));
  const result = spawnSync(python, [path.join(root, "scripts", "run_notebook.py"), notebook, target], {
    encoding: "utf8",
    env: { ...process.env, INCEPTION_LAB_BUDGET: process.env.INCEPTION_LAB_BUDGET ?? "fast" },
  });
  return { ...result, target, log: `${result.stdout}\n${result.stderr}` };
}

const notebooks = fs.readdirSync(path.join(root, "notebooks")).filter((name) => name.endsWith(".ipynb")).sort();

test("there are tutorial notebooks to run", () => {
  assert.ok(notebooks.includes("00-environment.ipynb"), `found: ${notebooks.join(", ")}`);
});

for (const name of notebooks) {
  test(`notebook ${name} runs without errors through the tslab kernel`, () => {
    const run = runNotebook(path.join(root, "notebooks", name));
    assert.equal(run.status, 0, run.log);
    const executed = JSON.parse(fs.readFileSync(run.target, "utf8"));
    const codeCells = executed.cells.filter((cell: { cell_type: string }) => cell.cell_type === "code");
    assert.ok(codeCells.length > 0);
    for (const cell of codeCells) assert.ok(cell.execution_count !== null, `a cell was not executed:\n${cell.source}`);
  });
}

test("a notebook whose cell throws fails the run and keeps the outputs before it", () => {
  const run = runNotebook(path.join(__dirname, "fixtures", "throws.ipynb"));
  assert.equal(run.status, 1, run.log);
  assert.match(run.stderr, /deliberate failure/);
  const executed = JSON.parse(fs.readFileSync(run.target, "utf8"));
  const text = JSON.stringify(executed.cells[0].outputs);
  assert.match(text, /before the failure/, "outputs of cells before the failing one are kept");
});
