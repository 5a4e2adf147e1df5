// Entry point for `require("inception-lab")` from tslab cells, ts-node scripts and tests.
// tslab compiles only relatively imported files, so a package import reaches Node's plain require,
// which cannot run TypeScript: register ts-node (transpile only; tests run the type check) first.
// This module removes itself from require.cache so that every import runs it again: when a library
// file changed since it was loaded, the library's cached modules are dropped and loaded afresh, so
// re-running an import cell picks up edits without restarting the kernel.
"use strict";
const fs = require("fs");
const path = require("path");

const registered = Symbol.for("ts-node.register.instance");
if (!process[registered]) {
  require("ts-node").register({
    transpileOnly: true,
    project: path.join(__dirname, "tsconfig.json"),
  });
}

const libraryDir = fs.realpathSync(__dirname) + path.sep;
const libraryFiles = () => Object.keys(require.cache).filter((file) => file.startsWith(libraryDir) && file !== __filename);
const mtime = (file) => { try { return fs.statSync(file).mtimeMs; } catch { return -1; } };

const loaded = (globalThis.__inceptionLabLoaded ??= new Map());
const changed = libraryFiles().some((file) => loaded.get(file) !== mtime(file));
if (changed) {
  for (const file of libraryFiles()) delete require.cache[file];
  loaded.clear();
}
module.exports = require("./index.ts");
for (const file of libraryFiles()) if (!loaded.has(file)) loaded.set(file, mtime(file));
delete require.cache[__filename];
