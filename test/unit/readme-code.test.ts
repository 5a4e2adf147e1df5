// The README's TypeScript compiles as written: every ```ts block, with the repository's compiler options
// (noUnusedLocals included), against the package as a notebook imports it. A block is a notebook cell: its
// imports stay at the top, the rest runs inside an async function (top-level await). A block that names values
// made in earlier cells declares them itself (`declare const data: ImageFolder;`), so every name it uses is
// accounted for. The bash blocks run in test/readme.test.ts.
import { test } from "node:test";
import * as assert from "node:assert/strict";
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as path from "path";
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

/** Compiler errors of the README's blocks written as modules into `dir`, with the repository's options. */
function compile(markdown: string, dir: string): string {
  const blocks = typeScriptBlocks(markdown);
  blocks.forEach((block, i) => fs.writeFileSync(path.join(dir, `block-${i + 1}-line-${block.line}.ts`), asModule(block.code)));
  fs.writeFileSync(path.join(dir, "tsconfig.json"), JSON.stringify({ extends: path.join(root, "tsconfig.json"), include: ["./*.ts"], compilerOptions: { noEmit: true } }));
  const result = spawnSync(path.join(root, "node_modules", ".bin", "tsc"), ["-p", dir], { encoding: "utf8" });
  return `${result.stdout}${result.stderr}`.trim();
}

test("every TypeScript block of the README type-checks against the package, unused names included", () => {
  const readme = fs.readFileSync(path.join(root, "README.md"), "utf8");
  assert.ok(typeScriptBlocks(readme).length >= 2, "the README has TypeScript examples");
  assert.equal(compile(readme, scratch("readme")), "");
});

test("the check fails on a block that imports a name it never uses, or uses one it never declares", () => {
  const bad = ["```ts", 'import { fineTune, plot } from "inception-lab";', "plot.confusionMatrix(evaluation);", "```"].join("\n");
  const errors = compile(bad, scratch("bad-readme"));
  assert.match(errors, /'fineTune' is declared but its value is never read/);
  assert.match(errors, /Cannot find name 'evaluation'/);
});
