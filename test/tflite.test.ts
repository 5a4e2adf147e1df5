// TensorFlow Lite exports (issue 30), checked in a real TFLite interpreter: each quantization written and run
// on the test split against the library's float32 predictions, float32 within 1e-4; loaded back with
// loadClassifier, giving the table's figures; run by tf.lite.Interpreter outside the library's code; a
// fine-tuned run too; the command line's --tflite_dir and --quantize (a run without a test split checked on
// validation, named); folders holding other files refused; a command killed while TensorFlow converts and an
// export interrupted while the interpreter checks it leave nothing behind.
import { test } from "node:test";
import * as assert from "node:assert/strict";
import { execFileSync, spawn, spawnSync } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { fineTune, InterruptedError, loadClassifier, loadInceptionV3, OptionError, retrainFinalLayer, syntheticShapes } from "inception-lab";
import type { ExportResult, ImageFolder, Inception, TrainingRun } from "inception-lab";
import { decodeBatch } from "../kernel-helpers/network/decode";
import type { Quantization, TfliteExportNote } from "../kernel-helpers/train/classifier/tflite";
import { LEFTOVER, processes, tree } from "./faults";
import { python, root, scratch } from "./helpers";

process.env.INCEPTION_LAB_CACHE = scratch("tflite-cache");
// This file's temp folder, and its children's: the exports' scratch folders and the converter's own files go there.
const temp = scratch("tflite-tmp");
process.env.TMPDIR = temp;
const SIZE = 75;
const quiet = { progress: false, liveChart: false };
// Offline whatever the machine: the ImageNet weights are never in this cache and their address answers nothing.
const env = { ...process.env, TF_CPP_MIN_LOG_LEVEL: "3", INCEPTION_LAB_WEIGHTS_URL: "http://127.0.0.1:9/" };
const bin = path.join(root, "node_modules", ".bin", "inception-lab");
const cli = (args: string[]) => spawnSync(bin, args, { encoding: "utf8", env });
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

let shared: { inception: Inception; data: ImageFolder; run: TrainingRun } | null = null;
async function setup() {
  if (!shared) {
    const inception = await loadInceptionV3({ weights: "bundled", inputSize: SIZE });
    const data = await syntheticShapes({ classes: 3, perClass: 10, imageSize: 64, seed: 30, dir: path.join(scratch("tflite-data"), "shapes") });
    shared = { inception, data, run: await retrainFinalLayer(inception, data, { ...quiet, epochs: 5, precision: "float32" }) };
  }
  return shared;
}

const note = (dir: string) => JSON.parse(fs.readFileSync(path.join(dir, "tflite-export.json"), "utf8")) as TfliteExportNote;
const worst = (a: number[][], b: number[][]) => Math.max(...a.flatMap((row, i) => row.map((v, j) => Math.abs(v - b[i][j]))));
const top = (p: number[]) => p.indexOf(Math.max(...p));
/** Interpreter processes (tflite-interpreter.py) whose command names a path under `dir`. */
const interpreters = (dir: string) => processes().filter((p) => p.command.includes("tflite-interpreter.py") && p.command.includes(dir) && p.state !== "Z");

/** Runs `work` with console.warn recorded. */
async function warnings<T>(work: () => Promise<T>): Promise<{ result: T; warned: string[] }> {
  const warned: string[] = [];
  const warn = console.warn;
  console.warn = (...args: unknown[]) => void warned.push(args.join(" "));
  try {
    return { result: await work(), warned };
  } finally {
    console.warn = warn;
  }
}

test("each quantization is written, run in the TFLite interpreter on the test split against the library's float32 predictions, and loads back giving the table's figures", async (t) => {
  const { data, run } = await setup();
  const dir = scratch("formats");
  const testFiles = data.files("test");
  const library = (await run.predict(testFiles, { precision: "float32" })).map((p) => p.probabilities);
  const results: Partial<Record<Quantization, ExportResult>> = {};
  for (const quantize of ["none", "float16", "dynamic", "int8"] as const) {
    const { result, warned } = await warnings(() => run.export(path.join(dir, quantize), { format: "tflite", quantize }));
    results[quantize] = result;
    const check = result.tflite!.check;
    t.diagnostic(`${quantize}: ${result.files.find((f) => f.name === "model.tflite")!.bytes} bytes, ${(check.latency * 1000).toFixed(1)} ms an image, accuracy ${check.accuracy.toFixed(3)} (library ${check.libraryAccuracy.toFixed(3)}), agreement ${check.agreement}, max |diff| ${check.maxDifference.toExponential(2)}, ${check.interpreter}`);
    assert.deepEqual(fs.readdirSync(result.dir).sort(), ["history.json", "inception-lab-manifest.json", "labels.json", "labels.txt", "model.tflite", "tflite-export.json"]);
    assert.equal(fs.readFileSync(path.join(result.dir, "labels.txt"), "utf8"), data.classes.join("\n") + "\n");
    assert.deepEqual(note(result.dir), { quantize, inputType: quantize === "int8" ? "uint8" : null, check }, "tflite-export.json holds the check");
    assert.equal(check.split, "test");
    assert.equal(check.images, testFiles.length);
    assert.match(check.interpreter, /^(LiteRT .* interpreter|tf\.lite\.Interpreter \(TensorFlow 2\.\d+\.\d+\)), \d+ threads$/);
    assert.ok(check.latency > 0 && check.latency < 5, `latency ${check.latency} s`);
    // The library's own accuracy and the largest difference, computed here from its predictions.
    assert.equal(check.libraryAccuracy, testFiles.filter((f, i) => data.classes[top(library[i])] === path.basename(path.dirname(f))).length / testFiles.length);
    // What a shortfall is, and that one is said: in the row, and in a warning.
    const short = quantize === "none" ? check.maxDifference > 1e-4 : check.agreement < 0.98 || Math.abs(check.accuracy - check.libraryAccuracy) > 0.01 + 1e-9;
    assert.equal(check.shortfall !== null, short, `${quantize}: ${check.shortfall}`);
    assert.deepEqual(warned, short ? [result.warning] : []);
    assert.match(result.toText(), short ? /SHORT: / : /meets the targets/);

    const loaded = await loadClassifier(result.dir);
    assert.match(loaded.info.weights, /the TensorFlow Lite model .*model\.tflite/);
    const evaluation = await loaded.evaluate({ data });
    assert.equal(evaluation.accuracy, check.accuracy, `${quantize}: the loaded classifier's accuracy is the table's`);
    const theirs = (await loaded.predict(testFiles)).map((p) => p.probabilities);
    assert.ok(Math.abs(worst(theirs, library) - check.maxDifference) < 1e-6, `${quantize}: the loaded classifier's largest difference is the table's`);
    assert.equal(theirs.filter((p, i) => top(p) === top(library[i])).length / testFiles.length, check.agreement);
    // Tensors go through the same interpreter: the decoded pixels give the same probabilities as the files.
    const { images } = await decodeBatch(testFiles.slice(0, 2), SIZE);
    const fromTensors = (await loaded.predict(images, { precision: "auto" })).map((p) => p.probabilities);
    images.dispose();
    assert.ok(worst(fromTensors, theirs.slice(0, 2)) < 1e-6, "tensors and files alike");
    await assert.rejects(loaded.predict(testFiles, { precision: "bfloat16" }), (error: Error) => error instanceof OptionError && /is a TensorFlow Lite model, which its interpreter runs as it was converted; load the same run's Keras export or tfjs folder to predict at bfloat16/.test(error.message));
    assert.equal(interpreters(result.dir).length, 1, "one interpreter process for the classifier's calls");
    loaded.dispose();
    for (let waited = 0; interpreters(result.dir).length > 0 && waited < 5000; waited += 100) await sleep(100);
    assert.deepEqual(interpreters(result.dir), [], "dispose() ends the interpreter");
  }
  const bytes = (q: Quantization) => results[q]!.files.find((f) => f.name === "model.tflite")!.bytes;
  assert.ok(results.none!.tflite!.check.maxDifference < 1e-4, `float32 within 1e-4 of the library: ${results.none!.tflite!.check.maxDifference}`);
  assert.ok(bytes("float16") < 0.55 * bytes("none"), "float16 weights: about half");
  assert.ok(bytes("dynamic") < 0.3 * bytes("none") && bytes("int8") < 0.3 * bytes("none"), "int8 weights: about a quarter");
  const table = run.exports();
  assert.deepEqual(table.rows.map((row) => row[1]), ["tflite float32", "tflite float16 weights", "tflite dynamic range (int8 weights)", "tflite int8 (uint8 input)"]);
  assert.match(table.toText(), /checked on .*top-1 agreement .*max \|p - library\| .*latency \/ image/);

  // The model file alone, with its classes given; and refusals that name what is wrong.
  const alone = path.join(scratch("alone"), "flowers.tflite");
  fs.copyFileSync(path.join(results.int8!.dir, "model.tflite"), alone);
  await assert.rejects(loadClassifier(alone), /flowers\.tflite: no labels\.json beside it, so its classes are unknown: give them/);
  await assert.rejects(loadClassifier(alone, { classes: ["a", "b"] }), /flowers\.tflite gives 3 probabilities, but classes names 2 classes/);
  await assert.rejects(loadClassifier(results.none!.dir, { precision: "float16" }), /^OptionError: precision: .*is a TensorFlow Lite model/);
  const byFile = await loadClassifier(alone, { classes: data.classes });
  assert.equal((await byFile.evaluate({ data })).accuracy, results.int8!.tflite!.check.accuracy);
  byFile.dispose();
  fs.writeFileSync(alone, Buffer.alloc(1000, 7));
  await assert.rejects(loadClassifier(alone, { classes: data.classes }), (error: Error) => /flowers\.tflite: the TensorFlow Lite interpreter cannot load it \(.*\)$/.test(error.message) && !error.message.includes("\n"));

  // Outside the library: TensorFlow's interpreter, a few lines of Python, on the pixels the library decodes.
  const pixels = path.join(dir, "test.u8");
  const { images } = await decodeBatch(testFiles, SIZE);
  fs.writeFileSync(pixels, Uint8Array.from(await images.data()));
  images.dispose();
  const code = `
import json, sys
import numpy as np, tensorflow as tf
pixels, n, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
images = np.fromfile(pixels, dtype=np.uint8).reshape(n, size, size, 3)
found = {}
for model in sys.argv[4:]:
    interpreter = tf.lite.Interpreter(model_path=model)
    interpreter.allocate_tensors()
    given, taken = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    rows = []
    for image in images:
        interpreter.set_tensor(given["index"], image[None].astype(given["dtype"]))
        interpreter.invoke()
        rows.append(interpreter.get_tensor(taken["index"])[0].tolist())
    found[model] = {"input": np.dtype(given["dtype"]).name, "probabilities": rows}
print(json.dumps(found))`;
  const models = (["none", "int8"] as const).map((q) => path.join(results[q]!.dir, "model.tflite"));
  const outside = JSON.parse(execFileSync(python, ["-c", code, pixels, String(testFiles.length), String(SIZE), ...models], { encoding: "utf8", env, stdio: ["ignore", "pipe", "pipe"] }).trim().split("\n").pop()!);
  for (const [q, model] of [["none", models[0]], ["int8", models[1]]] as const) {
    const { input, probabilities } = outside[model];
    const accuracy = testFiles.filter((f, i) => data.classes[top(probabilities[i])] === path.basename(path.dirname(f))).length / testFiles.length;
    assert.equal(accuracy, results[q]!.tflite!.check.accuracy, `${q}: tf.lite.Interpreter's own accuracy is the table's`);
    assert.equal(input, q === "int8" ? "uint8" : "float32");
    if (q === "none") assert.ok(worst(probabilities, library) < 1e-4);
  }
});

test("a fine-tuned run's TensorFlow Lite export agrees with the library within 1e-4; an int8 one takes float32 pixels when asked; options are checked", async () => {
  const { inception, data, run } = await setup();
  const tuned = await fineTune(inception, data, { ...quiet, epochs: 1, warmupEpochs: 1, batchSize: 8, unfreezeFrom: "mixed6", precision: "float32" });
  const dir = scratch("fine-tuned");
  const exported = await tuned.export(path.join(dir, "float32"), { format: "tflite" });
  assert.equal(exported.tflite!.quantize, "none");
  assert.ok(exported.tflite!.check.maxDifference < 1e-4, `${exported.tflite!.check.maxDifference}`);
  const floatInput = await run.export(path.join(dir, "int8-float-input"), { format: "tflite", quantize: "int8", inputType: "float32" });
  assert.equal(note(floatInput.dir).inputType, "float32");
  assert.equal(exported.row()[1], "tflite float32");
  assert.equal(floatInput.row()[1], "tflite int8 (float32 input)");
  const cases: [object, RegExp][] = [
    [{ format: "keras", quantize: "int8" }, /^quantize: "int8" is for TensorFlow Lite exports, and this one is keras: give \{ format: "tflite", quantize: "int8" \}/],
    [{ quantize: "int8" }, /is for TensorFlow Lite exports, and this one is keras/],
    [{ format: "tflite", quantize: "dynamic", inputType: "uint8" }, /^inputType: only an int8 TensorFlow Lite export chooses its input type; a dynamic one takes float32 pixels 0\.\.255/],
    [{ format: "tflite", quantize: "int4" }, /^quantize: "int4" is not one of none, float16, dynamic, int8/],
    [{ format: "tflite", quantise: "int8" }, /^export: there is no option "quantise"\. Did you mean "quantize"\?/],
  ];
  for (const [options, message] of cases) {
    await assert.rejects(run.export(path.join(dir, "never"), options as never), (error: Error) => error instanceof OptionError && message.test(error.message));
  }
  assert.ok(!fs.existsSync(path.join(dir, "never")));
});

test("a folder holding other files is refused before any work, and left as it was; a missing Python is named with how to fix it", async () => {
  const { run, data } = await setup();
  const folder = path.join(scratch("refused"), "mine");
  fs.mkdirSync(folder);
  fs.writeFileSync(path.join(folder, "notes.txt"), "mine");
  const before = Date.now();
  await assert.rejects(run.export(folder, { format: "tflite", quantize: "int8" }), /mine holds files Inception Lab did not write \(notes\.txt\), and it never replaces those/);
  assert.ok(Date.now() - before < 5000, "refused before converting");
  assert.deepEqual(tree(path.dirname(folder)), ["mine/", "mine/notes.txt"]);
  assert.deepEqual(interpreters(folder), []);

  const nowhere = path.join(path.dirname(folder), "no-venv", "bin", "python");
  const model = path.join(path.dirname(folder), "model.tflite");
  fs.writeFileSync(model, "");
  const given = process.env.INCEPTION_LAB_PYTHON;
  process.env.INCEPTION_LAB_PYTHON = nowhere;
  try {
    await assert.rejects(run.export(path.join(path.dirname(folder), "new"), { format: "tflite" }), /^Error: TensorFlow Lite models are converted and run by Python TensorFlow, and .*no-venv\/bin\/python is not there: set INCEPTION_LAB_PYTHON to a Python with tensorflow, or run `npm run setup`/);
    await assert.rejects(loadClassifier(model, { classes: data.classes }), /^Error: TensorFlow Lite models run in Python's TFLite interpreter, and .*no-venv\/bin\/python is not there: set INCEPTION_LAB_PYTHON/);
  } finally {
    if (given === undefined) delete process.env.INCEPTION_LAB_PYTHON;
    else process.env.INCEPTION_LAB_PYTHON = given;
  }
  assert.deepEqual(tree(path.dirname(folder)), ["mine/", "mine/notes.txt", "model.tflite"], "nothing written");
});

test("the command line: --tflite_dir with --quantize writes the export and prints the table; without a test split it is checked on validation, named; bad uses exit 2 before any work", async () => {
  const { data } = await setup();
  const out = scratch("cli");
  const target = path.join(out, "tflite");
  const base = ["--image_dir", data.dir, "--input_size", String(SIZE), "--weights", "bundled"];
  const bad: [string[], RegExp][] = [
    [["--quantize", "int8"], /--quantize is for the TensorFlow Lite export: give --tflite_dir DIR too, or drop --quantize/],
    [["--tflite_dir", target, "--quantize", "int4"], /--quantize is "int4": use none, float16, dynamic, int8/],
  ];
  fs.mkdirSync(path.join(out, "mine"));
  fs.writeFileSync(path.join(out, "mine", "notes.txt"), "mine");
  bad.push([["--tflite_dir", path.join(out, "mine")], /--tflite_dir: .*mine holds files Inception Lab did not write \(notes\.txt\)/]);
  for (const [args, message] of bad) {
    const refused = cli([...base, ...args]);
    assert.equal(refused.status, 2, `${args.join(" ")}: ${refused.stderr}`);
    assert.match(refused.stderr, message);
    assert.equal(refused.stdout, "", "nothing done");
  }
  assert.deepEqual(tree(out), ["mine/", "mine/notes.txt"]);

  const ran = cli([...base, "--testing_percentage", "0", "--epochs", "2", "--tflite_dir", target, "--quantize", "dynamic"]);
  assert.equal(ran.status, 0, ran.stderr);
  assert.match(ran.stdout, new RegExp(`Written: ${target}`));
  const check = note(target).check;
  assert.equal(check.split, "validation");
  assert.match(ran.stdout, new RegExp(`Exports \\(targets: .*\\n.*checked on.*\\n.*\\n.*tflite dynamic range \\(int8 weights\\) .*validation, ${check.images} images`));
  assert.doesNotMatch(ran.stdout, /Final test accuracy/, "no test split, no test accuracy");
});

test("killed while TensorFlow converts, or interrupted while the interpreter checks, an export leaves nothing: no process, no temporary file or scratch folder, the user's files as they were", async () => {
  const { data, run } = await setup();
  const folder = scratch("interrupted");
  fs.writeFileSync(path.join(folder, "notes.md"), "the user's notes");
  const target = path.join(folder, "model");
  const scratchFolders = () => fs.readdirSync(temp).filter((name) => name.startsWith("inception-lab-"));

  // The command line killed (SIGKILL) once the converter has begun writing its own temporary SavedModel.
  const child = spawn(bin, ["--image_dir", data.dir, "--input_size", String(SIZE), "--weights", "bundled", "--epochs", "1", "--tflite_dir", target], { env, stdio: "ignore" });
  const converting = () => scratchFolders().some((name) => name.startsWith(`inception-lab-keras-${child.pid}-`) && fs.readdirSync(path.join(temp, name)).some((f) => f.startsWith("tmp")));
  try {
    for (let waited = 0; !converting() && child.exitCode === null; waited += 100) {
      assert.ok(waited < 240_000, "the converter started within 4 minutes");
      await sleep(100);
    }
    assert.equal(child.exitCode, null, "killed while converting");
    child.kill("SIGKILL");
    await new Promise((resolve) => child.on("exit", resolve));
  } finally {
    child.kill("SIGKILL");
  }
  const bridges = () => processes().filter((p) => p.command.includes("keras-bridge.py") && p.command.includes(temp) && p.state !== "Z");
  for (let waited = 0; bridges().length > 0 && waited < 20_000; waited += 100) await sleep(100);
  assert.deepEqual(bridges(), [], "the bridge ends with the command that started it");
  assert.ok(tree(folder).some((f) => LEFTOVER.test(f)) && scratchFolders().length > 0, "the killed command left its files (the next export removes them)");

  // An export in this process, interrupted (the kernel's stop button) once its interpreter runs.
  const exporting = run.export(target, { format: "tflite" });
  const outcome = exporting.then(() => null, (error: Error) => error);
  for (let waited = 0; interpreters(folder).length === 0; waited += 50) {
    assert.ok(waited < 240_000 && (await Promise.race([outcome, sleep(50).then(() => undefined)])) === undefined, "the interpreter started, the export still running");
  }
  process.emit("SIGINT");
  const error = await outcome;
  assert.ok(error instanceof InterruptedError, `${error}`);
  assert.match(error.message, /^cannot export to .*model: interrupted: the TensorFlow Lite interpreter/);
  for (let waited = 0; interpreters(folder).length > 0 && waited < 5000; waited += 100) await sleep(100);
  assert.deepEqual(interpreters(folder), [], "the interpreter is stopped");
  assert.deepEqual(tree(folder), ["notes.md"], "nothing written, nothing left, the notes kept");
  assert.equal(fs.readFileSync(path.join(folder, "notes.md"), "utf8"), "the user's notes");
  // Node's own compile cache (the command line's) aside, the temp folder is empty.
  assert.deepEqual(fs.readdirSync(temp).filter((name) => !name.startsWith("v8-compile-cache")), [], "no scratch folder, and none of the converter's files");
});
