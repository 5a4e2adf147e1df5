// The README's and the notebooks' TypeScript compiles as written: every ```ts block of the README, and each
// notebook's code cells in order, with the repository's compiler options (noUnusedLocals included), against the
// package as a notebook imports it. A block is a notebook cell: its imports stay at the top, the rest runs inside
// an async function (top-level await). A README block that names values made in earlier cells declares them
// itself (`declare const data: ImageFolder;`), so every name it uses is accounted for. A notebook that would fail
// on a renamed export fails here in seconds, not after minutes of a kernel. The bash blocks run in
// test/readme.test.ts; the notebooks themselves in test/tutorials.test.ts.
import { test } from "node:test";
import * as assert from "node:assert/strict";
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { FIT_RULES } from "../../kernel-helpers/train/modes/run";
import { root, scratch } from "../helpers";

/** Every ```ts block of a Markdown text, with the line it starts on, its indentation removed. */
export function typeScriptBlocks(markdown: string): { line: number; code: string }[] {
  const blocks: { line: number; code: string }[] = [];
  const lines = markdown.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const open = /^(\s*)```ts\s*$/.exec(lines[i]);
    if (!open) continue;
    const indent = open[1].length;
    const body: string[] = [];
    for (i++; i < lines.length && !/^\s*```\s*$/.test(lines[i]); i++) body.push(lines[i].slice(Math.min(indent, lines[i].search(/\S|$/))));
    blocks.push({ line: i - body.length, code: body.join("\n") });
  }
  return blocks;
}

/** A block as a module: imports and declarations at the top, the cell's statements in an async function. */
export function asModule(code: string): string {
  const lines = code.split("\n");
  const top = lines.filter((l) => /^(import|declare)\b/.test(l));
  const body = lines.filter((l) => !/^(import|declare)\b/.test(l));
  return `${top.join("\n")}\nexport async function cell(): Promise<void> {\n${body.join("\n")}\n}\n`;
}

/** Compiler errors of `modules` (name: code) written into `dir`, with the repository's options. */
function compile(modules: Record<string, string>, dir: string): string {
  for (const [name, code] of Object.entries(modules)) fs.writeFileSync(path.join(dir, `${name}.ts`), asModule(code));
  fs.writeFileSync(path.join(dir, "tsconfig.json"), JSON.stringify({ extends: path.join(root, "tsconfig.json"), include: ["./*.ts"], compilerOptions: { noEmit: true } }));
  const result = spawnSync(path.join(root, "node_modules", ".bin", "tsc"), ["-p", dir], { encoding: "utf8" });
  return `${result.stdout}${result.stderr}`.trim();
}

/** The README's blocks as modules, each named by the line it starts on. */
const readmeModules = (markdown: string) => Object.fromEntries(typeScriptBlocks(markdown).map((block, i) => [`block-${i + 1}-line-${block.line}`, block.code]));

test("every TypeScript block of the README type-checks against the package, unused names included", () => {
  const readme = fs.readFileSync(path.join(root, "README.md"), "utf8");
  assert.ok(typeScriptBlocks(readme).length >= 2, "the README has TypeScript examples");
  assert.equal(compile(readmeModules(readme), scratch("readme")), "");
});

test("the check fails on a block that imports a name it never uses, or uses one it never declares", () => {
  const bad = ["```ts", 'import { fineTune, plot } from "inception-lab";', "plot.confusionMatrix(evaluation);", "```"].join("\n");
  const errors = compile(readmeModules(bad), scratch("bad-readme"));
  assert.match(errors, /'fineTune' is declared but its value is never read/);
  assert.match(errors, /Cannot find name 'evaluation'/);
});

test("every notebook's code cells, in order, type-check against the package", () => {
  const notebooks = fs.readdirSync(path.join(root, "notebooks")).filter((name) => name.endsWith(".ipynb"));
  const modules = Object.fromEntries(
    notebooks.map((name) => {
      const cells: { cell_type: string; source: string[] | string }[] = JSON.parse(fs.readFileSync(path.join(root, "notebooks", name), "utf8")).cells;
      const code = cells.filter((c) => c.cell_type === "code").map((c) => (Array.isArray(c.source) ? c.source.join("") : c.source));
      return [name.replace(/\.ipynb$/, "").replace(/\W/g, "_"), code.join("\n")];
    }),
  );
  assert.ok(Object.keys(modules).length >= 4);
  assert.equal(compile(modules, scratch("notebooks")), "");
});

test("the README's list of run.fit's options is the list fit takes", () => {
  const readme = fs.readFileSync(path.join(root, "README.md"), "utf8");
  const listed = /- `run\.fit\(\{ ([^}]*) \}\)`/.exec(readme.replace(/\n\s*/g, " "));
  assert.ok(listed, "the README lists run.fit's options as - `run.fit({ a, b, ... })`");
  assert.deepEqual(listed[1].split(/,\s*/).sort(), Object.keys(FIT_RULES).sort());
});
