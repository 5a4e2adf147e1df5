#!/usr/bin/env node
// `npx inception-lab`: the command line (cli/main.ts), run from TypeScript through ts-node (transpile
// only; the tests run the type check), with the library's global registrations made by index.ts once the
// flags are checked (a bad flag is answered before the whole library and its network code load). With
// the GPU build, TensorFlow finds the CUDA libraries only through LD_LIBRARY_PATH as the process starts:
// without it, the command runs itself again with it.
"use strict";
const fs = require("fs");
const path = require("path");
const { spawnSync } = require("child_process");

let note = null;
try {
  note = JSON.parse(fs.readFileSync(path.join(__dirname, "..", "node_modules", ".inception-lab-build.json"), "utf8"));
} catch {}
const wanted = note && note.device === "gpu" ? note.libraryPath : [];
const current = (process.env.LD_LIBRARY_PATH || "").split(":");
if (wanted.some((dir) => !current.includes(dir))) {
  const env = { ...process.env, LD_LIBRARY_PATH: [...wanted, ...current.filter(Boolean)].join(":") };
  const again = spawnSync(process.execPath, process.argv.slice(1), { env, stdio: "inherit" });
  process.exit(again.status === null ? 1 : again.status);
}

process.env.TF_CPP_MIN_LOG_LEVEL = process.env.TF_CPP_MIN_LOG_LEVEL || "2";
require("ts-node").register({ transpileOnly: true, project: path.join(__dirname, "tsconfig.json") });
require("./cli/main.ts")
  .main(process.argv.slice(2), () => require("./index.ts"))
  .then((status) => process.exit(status));
