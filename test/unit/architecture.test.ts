// The library's folders are layers: a file may import from its own folder and from layers below it,
// never from a layer above (README, "Layout"). The checker reads the import statements themselves, so a
// new upward import fails here before anyone has to notice it in review.
import { test } from "node:test";
import * as assert from "node:assert/strict";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { root } from "../helpers";

/**
 * Bottom to top; files directly in kernel-helpers/ (index.ts) sit above them all. train/ is three layers: the
 * loop engine, what a trained classifier is and where it goes, and the modes that use both.
 */
export const LAYERS = ["display", "util", "runtime", "network", "data", "train/loop", "train/classifier", "train/modes", "lab", "plots", "notebook", "cli"];

function sourceFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(full);
    return entry.name.endsWith(".ts") ? [full] : [];
  });
}

/** Every relative import (static, dynamic or require) of every library file that points to a higher layer, or out of the layers. */
export function importViolations(library: string): string[] {
  const rank = (file: string) => {
    const relative = path.relative(library, file).split(path.sep).join("/");
    if (!relative.includes("/")) return LAYERS.length;
    // The deepest layer folder that holds the file (train/loop/x.ts is in train/loop, not train).
    const layer = LAYERS.filter((l) => relative.startsWith(l + "/")).sort((a, b) => b.length - a.length)[0];
    return layer === undefined ? NaN : LAYERS.indexOf(layer);
  };
  const violations: string[] = [];
  for (const file of sourceFiles(library)) {
    const source = fs.readFileSync(file, "utf8");
    for (const match of source.matchAll(/(?:from\s+|import\(\s*|require\(\s*)"(\.{1,2}\/[^"]+)"/g)) {
      const target = path.resolve(path.dirname(file), match[1]);
      const [from, to] = [rank(file), rank(target)];
      const where = `${path.relative(library, file)} imports ${match[1]}`;
      if (Number.isNaN(from) || Number.isNaN(to)) violations.push(`${where}: outside the layers ${LAYERS.join(", ")}`);
      else if (to > from) violations.push(`${where}: ${LAYERS[from] ?? "the root"} may not import from ${LAYERS[to] ?? "the root"}, a layer above it`);
    }
  }
  return violations;
}

const library = path.join(root, "kernel-helpers");

test("every import in the library points to its own layer or one below", () => {
  assert.deepEqual(importViolations(library), []);
});

test("the check catches an upward import planted in a copy of the library", () => {
  const copy = fs.mkdtempSync(path.join(os.tmpdir(), "layers-"));
  try {
    fs.cpSync(library, copy, { recursive: true });
    const runtimeFile = path.join(copy, "runtime", "tf.ts");
    fs.appendFileSync(runtimeFile, '\nimport { retrainFinalLayer } from "../train/modes/modes";\n');
    const found = importViolations(copy);
    assert.equal(found.length, 1, found.join("\n"));
    assert.match(found[0], /runtime\/tf\.ts imports \.\.\/train\/modes\/modes: runtime may not import from train\/modes/);
  } finally {
    fs.rmSync(copy, { recursive: true, force: true });
  }
});

test("each layer folder exists and every library file lives in one", () => {
  for (const layer of LAYERS) assert.ok(fs.statSync(path.join(library, layer)).isDirectory(), layer);
  const loose = fs.readdirSync(library).filter((name) => name.endsWith(".ts"));
  assert.deepEqual(loose, ["index.ts"], "only the entry point sits above the layers");
  // A folder that holds layers holds nothing else: every file of train/ is in one of its three.
  const parents = [...new Set(LAYERS.filter((l) => l.includes("/")).map((l) => l.split("/")[0]))];
  for (const parent of parents) assert.deepEqual(fs.readdirSync(path.join(library, parent)).filter((name) => !LAYERS.includes(`${parent}/${name}`)), [], `${parent}/ holds only its layers`);
});

test("a file in the modes may use the loop, but the loop never the modes", () => {
  const copy = fs.mkdtempSync(path.join(os.tmpdir(), "layers-"));
  try {
    fs.cpSync(library, copy, { recursive: true });
    fs.appendFileSync(path.join(copy, "train", "loop", "loop.ts"), '\nimport { RECIPES } from "../modes/recipes";\n');
    const found = importViolations(copy);
    assert.equal(found.length, 1, found.join("\n"));
    assert.match(found[0], /train\/loop\/loop\.ts imports \.\.\/modes\/recipes: train\/loop may not import from train\/modes/);
  } finally {
    fs.rmSync(copy, { recursive: true, force: true });
  }
});
