// Losing nothing in exports, model files, temporary files and loading (issue 20), and loadClassifier on
// every folder the library writes (issue 21, item 8). Each test failed on the code before that work.
// Exports run the venv's real Python; where a test needs a bridge that misbehaves, a small Python script
// stands in for keras-bridge.py through INCEPTION_LAB_PYTHON, as a user's broken Python would.
import { test } from "node:test";
import * as assert from "node:assert/strict";
import { createHash } from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { execFileSync, spawnSync } from "child_process";
import { loadClassifier, loadInceptionV3, retrainFinalLayer, syntheticShapes } from "inception-lab";
import type { ImageFolder, TrainingRun } from "inception-lab";
import { writeAtomically, writeFolder } from "../kernel-helpers/util/atomic";
import { withScratchFolder } from "../kernel-helpers/util/scratch";
import { readTfjsModel } from "../kernel-helpers/network/weight-files";
import { LEFTOVER, tree } from "./faults";
import { python, scratch } from "./helpers";

process.env.INCEPTION_LAB_CACHE = scratch("files-safety-cache");
let shared: { run: TrainingRun; data: ImageFolder } | null = null;
async function setup() {
  if (!shared) {
    const inception = await loadInceptionV3({ weights: "bundled", inputSize: 75 });
    const data = await syntheticShapes({ classes: 3, perClass: 8, imageSize: 64, seed: 8, dir: path.join(scratch("files-safety-data"), "shapes") });
    shared = { run: await retrainFinalLayer(inception, data, { progress: false, liveChart: false, epochs: 3, precision: "float32" }), data };
  }
  return shared;
}

/** Every file below `dir` with its SHA-256: what "as it was" means. */
const fingerprint = (dir: string) => tree(dir).map((f) => (f.endsWith("/") ? f : `${f} ${createHash("sha256").update(fs.readFileSync(path.join(dir, f))).digest("hex")}`));

/** A process id that no process has now. */
function deadPid(): number {
  const { pid } = spawnSync("true");
  return pid!;
}

/** Runs `work` with INCEPTION_LAB_PYTHON set to `pythonPath`. */
async function withPython<T>(pythonPath: string, work: () => Promise<T>): Promise<T> {
  const before = process.env.INCEPTION_LAB_PYTHON;
  process.env.INCEPTION_LAB_PYTHON = pythonPath;
  try {
    return await work();
  } finally {
    if (before === undefined) delete process.env.INCEPTION_LAB_PYTHON;
    else process.env.INCEPTION_LAB_PYTHON = before;
  }
}

/** A zip laid out as a .keras file (metadata, config, weights), written by Python's zipfile as Keras does. */
function kerasLikeZip(file: string): string {
  const code = `import json, sys, zipfile
with zipfile.ZipFile(sys.argv[1], "w") as z:
    z.writestr("metadata.json", json.dumps({"keras_version": "3"}))
    z.writestr("config.json", json.dumps({"class_name": "Functional", "config": {"layers": []}}))
    z.writestr("model.weights.h5", bytes(range(256)) * 400)`;
  execFileSync(python, ["-c", code, file]);
  return file;
}

test("re-exporting into a folder the library wrote works, and loadClassifier reads its tfjs, Keras and SavedModel folders, predicting as the run", async () => {
  const { run, data } = await setup();
  const dir = scratch("files-safety-formats");
  const files = data.files("test").slice(0, 4);
  const ours = await run.predict(files);
  const tfjs = await run.save(path.join(dir, "tfjs"));
  const keras = (await run.export(path.join(dir, "keras"), { format: "keras" })).dir;
  const saved = (await run.export(path.join(dir, "savedmodel"), { format: "savedmodel" })).dir;
  // The SavedModel's empty assets/ is the library's too: the second export replaces the first.
  assert.deepEqual(JSON.parse(fs.readFileSync(path.join(saved, "inception-lab-manifest.json"), "utf8")).folders, ["assets"]);
  await run.export(saved, { format: "savedmodel" });
  assert.deepEqual(tree(dir).filter((f) => LEFTOVER.test(f)), []);

  for (const folder of [tfjs, keras, saved]) {
    const classifier = await loadClassifier(folder, { precision: "float32" });
    assert.deepEqual(classifier.classes, data.classes, folder);
    const theirs = await classifier.predict(files);
    theirs.forEach((p, i) => p.probabilities.forEach((v, j) => assert.ok(Math.abs(v - ours[i].probabilities[j]) < 1e-4, `${folder}: image ${i} class ${j}: ${v} vs ${ours[i].probabilities[j]}`)));
    assert.equal((await classifier.evaluate({ data })).accuracy, (await run.evaluate()).accuracy, folder);
  }
  const fromSavedModel = await loadClassifier(saved);
  assert.equal(fromSavedModel.precision.precision, "float32");
  assert.throws(() => fromSavedModel.model, /read from the SavedModel .*savedmodel, which TensorFlow runs as a whole graph: it predicts and evaluates, but has no layers to save, export, train or look inside/);
  await assert.rejects(loadClassifier(saved, { precision: "bfloat16" }), /^OptionError: precision: .*savedmodel is a SavedModel, which TensorFlow runs as it was saved \(float32\)/);

  const notes = path.join(dir, "notes");
  fs.mkdirSync(notes);
  fs.writeFileSync(path.join(notes, "notes.txt"), "mine");
  await assert.rejects(loadClassifier(notes), /notes is not a classifier folder: it holds no model\.json \(run\.save, a tfjs export\), model\.keras \(a Keras export\), saved_model\.pb \(a SavedModel export\) or model\.tflite \(a TensorFlow Lite export\)/);
});

test("a SavedModel as earlier versions exported it (its variables restored into copies TensorFlow's C loader never reads) is refused with what to do", async () => {
  const dir = scratch("files-safety-old-savedmodel");
  const code = `import os, sys
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import keras, tensorflow as tf
inputs = keras.Input((75, 75, 3))
outputs = keras.layers.Dense(3, activation="softmax")(keras.layers.GlobalAveragePooling2D()(inputs))
model = keras.Model(inputs, outputs)
class Serving(tf.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model  # as keras-bridge.py did: the Keras model tracked, not its TensorFlow variables
    @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32, name="images")])
    def serve(self, images):
        return {"probabilities": self.model(tf.image.resize(images, (75, 75)), training=False)}
serving = Serving(model)
tf.saved_model.save(serving, sys.argv[1], signatures={"serving_default": serving.serve})`;
  const saved = path.join(dir, "old");
  execFileSync(python, ["-c", code, saved], { stdio: ["ignore", "ignore", "ignore"] });
  fs.writeFileSync(path.join(saved, "labels.json"), JSON.stringify({ classes: ["a", "b", "c"], inputSize: 75 }));
  await assert.rejects(loadClassifier(saved), /old was exported by an earlier Inception Lab, whose SavedModels TensorFlow's C loader \(TensorFlow Serving, tfjs-node\) cannot restore: export it again/);
});

test("an export succeeds only with a model: a bridge that exits 0 having written nothing, a cut-short model.keras or a saved_model.pb that does not parse fail clearly, and the previous folder stays as it was", async () => {
  const { run } = await setup();
  const dir = scratch("files-safety-no-model");
  const fake = path.join(dir, "fake-bridge.py");
  fs.writeFileSync(
    fake,
    `import json, os, sys, zipfile
mode = os.environ["FAKE_BRIDGE"]
out = json.load(open(sys.argv[3]))["out"]
if mode == "cut-keras":
    keras = os.path.join(out, "model.keras")
    with zipfile.ZipFile(keras, "w") as z:
        z.writestr("config.json", json.dumps({"class_name": "Functional", "config": {}}))
        z.writestr("model.weights.h5", os.urandom(100000))
    os.truncate(keras, os.path.getsize(keras) // 2)
elif mode == "bad-savedmodel":
    open(os.path.join(out, "saved_model.pb"), "wb").write(b"\\xff" * 100)
    os.makedirs(os.path.join(out, "variables"))
`,
  );
  const fakePython = path.join(dir, "python");
  fs.writeFileSync(fakePython, `#!/bin/sh\nexec "${python}" "${fake}" "$@"\n`, { mode: 0o755 });
  const target = path.join(dir, "exported");
  await run.save(target);
  const before = fingerprint(target);
  const cases = [
    { mode: "nothing", format: "keras", why: /it wrote no model\.keras/ },
    { mode: "cut-keras", format: "keras", why: /no zip table of contents at its end: the file is cut short/ },
    { mode: "bad-savedmodel", format: "savedmodel", why: /saved_model\.pb does not parse/ },
  ] as const;
  for (const { mode, format, why } of cases) {
    process.env.FAKE_BRIDGE = mode;
    await assert.rejects(withPython(fakePython, () => run.export(target, { format })), (error: Error) => {
      assert.match(error.message, /exported: the export is not whole \(.*\), so nothing was written and the folder is as it was/, mode);
      assert.match(error.message, why, mode);
      return true;
    });
    assert.deepEqual(fingerprint(target), before, `${mode}: the previous folder as it was`);
    assert.deepEqual(tree(dir).filter((f) => LEFTOVER.test(f)), [], `${mode}: temporary files left`);
    assert.deepEqual(fs.readdirSync(os.tmpdir()).filter((name) => name.startsWith(`inception-lab-keras-${process.pid}-`)), [], `${mode}: scratch folder left`);
  }
  delete process.env.FAKE_BRIDGE;
});

test("a Python that cannot run is named with how to fix it (not blamed on the output folder); export(undefined) names dir", async () => {
  const { run } = await setup();
  const dir = scratch("files-safety-python");
  const notExecutable = path.join(dir, "python3");
  fs.writeFileSync(notExecutable, "#!/bin/sh\nexit 0\n", { mode: 0o644 });
  await assert.rejects(withPython(notExecutable, () => run.export(path.join(dir, "out"), { format: "keras" })), (error: Error) => {
    assert.match(error.message, /python3 cannot be run .*INCEPTION_LAB_PYTHON.*npm run setup/);
    assert.doesNotMatch(error.message, /EACCES|choose a folder/);
    return true;
  });
  assert.ok(!fs.existsSync(path.join(dir, "out")));
  await assert.rejects(run.export(undefined as unknown as string), /^OptionError: dir is undefined: give the folder to export into/);
});

test("a Keras file is checked before it is read: cut short, and a labels.json beside it that is not JSON, lists classes as a string or names one twice, each named", async () => {
  const dir = scratch("files-safety-keras-file");
  const file = kerasLikeZip(path.join(dir, "model.keras"));
  const cut = path.join(dir, "cut", "model.keras");
  fs.mkdirSync(path.dirname(cut));
  fs.writeFileSync(cut, fs.readFileSync(file).subarray(0, Math.floor(fs.statSync(file).size * 0.6)));
  await assert.rejects(loadClassifier(cut), /cut\/model\.keras is damaged or cut short \(no zip table of contents at its end: the file is cut short or not a zip\): save or export it again/);
  const labels = path.join(dir, "labels.json");
  const cases: [string, RegExp][] = [
    ["{ classes: [", /labels\.json cannot be read \(.*JSON.*\); it must hold \{"classes"/],
    [JSON.stringify({ classes: "a,b,c" }), /labels\.json has no list of class names/],
    [JSON.stringify({ classes: ["a", "a", "b", "c", "d"] }), /labels\.json names the class "a" twice/],
  ];
  for (const [content, message] of cases) {
    fs.writeFileSync(labels, content);
    await assert.rejects(loadClassifier(file), message, content);
  }
  await assert.rejects(loadClassifier(file, { classes: ["x", "y", "x"] }), /^OptionError: classes: "x" is given twice/);
});

test("a Python-side failure is one line naming the file, without TensorFlow's log banner or a traceback; INCEPTION_LAB_DEBUG=1 shows the bridge's output", async () => {
  const dir = scratch("files-safety-python-error");
  const file = kerasLikeZip(path.join(dir, "not-a-model.keras"));
  await assert.rejects(loadClassifier(file), (error: Error) => {
    assert.match(error.message, /^.*not-a-model\.keras: Keras cannot load it \(.+\); give a \.keras or \.h5 file saved by Keras' model\.save$/);
    assert.doesNotMatch(error.message, /\n|Traceback|WARNING|absl/);
    return true;
  });
  process.env.INCEPTION_LAB_DEBUG = "1";
  try {
    await assert.rejects(loadClassifier(file), /Keras cannot load it[\s\S]*\nTraceback \(most recent call last\)/);
  } finally {
    delete process.env.INCEPTION_LAB_DEBUG;
  }
});

test("a model.json whose weightsManifest reaches outside its folder is refused, by loadClassifier and by the weight reader", async () => {
  const { run } = await setup();
  const dir = scratch("files-safety-weight-paths");
  const model = await run.save(path.join(dir, "model"));
  fs.rmSync(path.join(model, "inception-lab-manifest.json")); // as a folder from elsewhere: no manifest to catch the edit
  fs.mkdirSync(path.join(dir, "other"));
  fs.renameSync(path.join(model, "weights.bin"), path.join(dir, "other", "weights.bin"));
  const modelJson = path.join(model, "model.json");
  const json = JSON.parse(fs.readFileSync(modelJson, "utf8"));
  json.weightsManifest[0].paths = ["../other/weights.bin"];
  fs.writeFileSync(modelJson, JSON.stringify(json));
  const refused = /model\.json: its weightsManifest names weight files outside its folder \(\.\.\/other\/weights\.bin\)/;
  await assert.rejects(loadClassifier(model), refused);
  await assert.rejects(readTfjsModel(modelJson), refused);
});

test("what a killed writer left is removed by the next write: temporary siblings, its lock, its scratch folders; a folder it had moved aside is put back", async () => {
  const { run } = await setup();
  const dir = scratch("files-safety-leftovers");
  const dead = deadPid();
  const target = path.join(dir, "model");
  await run.save(target);
  fs.mkdirSync(path.join(dir, `model.tmp-${dead}-0123abcd`));
  fs.writeFileSync(path.join(dir, `model.tmp-${dead}-0123abcd`, "model.keras"), "half a model");
  fs.mkdirSync(path.join(dir, `model.old-${dead}-4567cdef`)); // the target is in place: this copy is stale
  fs.writeFileSync(path.join(dir, "model.lock"), JSON.stringify({ pid: dead, since: new Date().toISOString() }));
  fs.writeFileSync(path.join(dir, `labels.txt.tmp-${dead}-89abcdef`), "a\nb\n");
  const alive = path.join(dir, `labels.txt.tmp-${process.pid}-01234567`); // a live writer's (this process): kept
  fs.writeFileSync(alive, "mine");
  const deadScratch = path.join(os.tmpdir(), `inception-lab-keras-${dead}-AbCdEf`);
  fs.mkdirSync(deadScratch, { recursive: true });
  fs.writeFileSync(path.join(deadScratch, "weights.f32"), Buffer.alloc(1024));
  const liveScratch = fs.mkdtempSync(path.join(os.tmpdir(), `inception-lab-graph-1-`)); // pid 1 runs
  try {
    await run.save(target);
    writeAtomically(path.join(dir, "labels.txt"), "a\nb\nc\n");
    withScratchFolder("graph", () => undefined);
    assert.deepEqual(fs.readdirSync(dir).sort(), ["labels.txt", path.basename(alive), "model"]);
    assert.ok(!fs.existsSync(deadScratch), "a dead process's scratch folder is removed");
    assert.ok(fs.existsSync(liveScratch), "a live process's scratch folder stays");
  } finally {
    fs.rmSync(liveScratch, { recursive: true, force: true });
  }
  fs.rmSync(alive);

  // Killed between its two renames: the previous folder is aside, the new one not in place. It comes back.
  const second = path.join(dir, "second");
  await run.save(second);
  const before = fingerprint(second);
  fs.renameSync(second, path.join(dir, `second.old-${dead}-fedcba98`));
  await assert.rejects(
    writeFolder(second, () => {
      throw new Error("the new folder fails");
    }),
    /the new folder fails/,
  );
  assert.deepEqual(fingerprint(second), before, "the folder moved aside is back");
  assert.deepEqual(fs.readdirSync(dir).sort(), ["labels.txt", "model", "second"]);
});

test("atomic writes reach the disk before they are renamed into place: the file (every file of a folder) is synced before, its folder after", async () => {
  const dir = scratch("files-safety-fsync");
  const mutable: Record<string, unknown> = require("fs"); // the module object itself, as test/faults.ts patches it
  const { openSync, fsyncSync, renameSync } = fs;
  const events: string[] = [];
  const opened = new Map<number, string>();
  mutable.openSync = (file: string, ...rest: unknown[]) => {
    const fd = (openSync as (...a: unknown[]) => number)(file, ...rest);
    opened.set(fd, path.relative(dir, String(file)) || ".");
    return fd;
  };
  mutable.fsyncSync = (fd: number) => {
    events.push(`sync ${opened.get(fd)}`);
    return fsyncSync(fd);
  };
  mutable.renameSync = (from: string, to: string) => {
    events.push(`rename ${path.relative(dir, from)} -> ${path.relative(dir, to)}`);
    return renameSync(from, to);
  };
  try {
    writeAtomically(path.join(dir, "notes.txt"), "saved");
    await writeFolder(path.join(dir, "folder"), (tmp) => {
      fs.mkdirSync(path.join(tmp, "assets"));
      fs.writeFileSync(path.join(tmp, "a.bin"), "a");
    });
  } finally {
    Object.assign(mutable, { openSync, fsyncSync, renameSync });
  }
  const tmpFile = events[0].replace(/^sync /, "");
  assert.match(tmpFile, /^notes\.txt\.tmp-\d+-[0-9a-f]{8}$/);
  assert.deepEqual(events.slice(0, 3), [`sync ${tmpFile}`, `rename ${tmpFile} -> notes.txt`, "sync ."]);
  const rest = events.slice(3);
  const commit = rest.findIndex((e) => /^rename folder\.tmp-\S+ -> folder$/.test(e));
  assert.ok(commit > 0, rest.join("\n"));
  const tmpFolder = rest[commit].split(" ")[1];
  const syncedBefore = rest.slice(0, commit).filter((e) => e.startsWith("sync ")).map((e) => e.slice(5));
  for (const entry of ["a.bin", "assets", "inception-lab-manifest.json", ""]) assert.ok(syncedBefore.includes(path.join(tmpFolder, entry)), `${entry || "the folder"} synced before the rename: ${syncedBefore.join(", ")}`);
  assert.deepEqual(rest.slice(commit + 1), ["sync ."], "the parent folder synced after the rename");
});
