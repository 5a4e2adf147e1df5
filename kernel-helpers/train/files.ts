// A classifier to and from files, for the rest of TensorFlow: the library's own folders (tfjs model.json,
// what browsers and Node load), a Keras file Python loads whole, and a SavedModel for TensorFlow Serving.
// Keras and TensorFlow write their own formats: the library hands the weights to the project's Python
// (the venv setup made, with TensorFlow in it) through keras-bridge.py, which builds the same network in
// Keras. The same bridge reads a Keras-trained Inception-v3 classifier back.
import { spawn } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { type CutLayer } from "../network/inception";
import { loadInceptionV3, resolvePrecision } from "../network/model";
import type { Precision, PrecisionOption } from "../runtime/precision";
import { tf } from "../runtime/tf";
import { writeAtomically, writeFolder } from "../util/atomic";
import { Classifier, type ClassifierInfo, classifierModels, Head, readClassifierFolder } from "./classifier";

export type ExportFormat = "keras" | "savedmodel" | "tfjs";
export const EXPORT_FORMATS: ExportFormat[] = ["keras", "savedmodel", "tfjs"];

/** The Python that has TensorFlow: INCEPTION_LAB_PYTHON, or the project's venv. */
export function pythonWithTensorFlow(): string {
  const python = process.env.INCEPTION_LAB_PYTHON ?? path.resolve(__dirname, "..", "..", ".venv", "bin", "python");
  if (!fs.existsSync(python)) {
    throw new Error(`Keras and SavedModel files are written by Python TensorFlow, and ${python} is not there: run \`npm run setup\` (it makes the project's venv), or set INCEPTION_LAB_PYTHON to a Python with tensorflow.`);
  }
  return python;
}

/** Runs keras-bridge.py; rejects with the bridge's own message when it fails. */
function bridge(args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(pythonWithTensorFlow(), [path.join(__dirname, "keras-bridge.py"), ...args], { stdio: ["ignore", "ignore", "pipe"], env: { ...process.env, TF_CPP_MIN_LOG_LEVEL: "3" } });
    let errors = "";
    child.stderr.on("data", (chunk) => (errors += chunk));
    child.on("error", reject);
    child.on("close", (code) => (code === 0 ? resolve() : reject(new Error(errors.trim().split("\n").slice(-6).join("\n") || `keras-bridge.py exited with ${code}`))));
  });
}

/** A scratch folder for files passed to Python, removed whatever happens. */
async function withScratch<T>(work: (dir: string) => Promise<T>): Promise<T> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "inception-lab-keras-"));
  try {
    return await work(dir);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** Pixel scaling of the classifier's first layer ("preprocess"): x * scale + offset. */
function scaling(model: tf.LayersModel): { scale: number; offset: number } {
  const config = model.getLayer("preprocess").getConfig() as { scale: number; offset: number };
  return { scale: config.scale, offset: config.offset };
}

/**
 * Writes `classifier` into `dir` as a Keras file (model.keras), a SavedModel, or the library's tfjs
 * folder, with labels.json and `extra` files; all or nothing, and never over files the library did not write.
 * The Keras model and the SavedModel take RGB pixels 0..255 (the scaling is a layer inside) and give
 * probabilities; the SavedModel takes images of any batch and size (resized inside), float32 as
 * `serving_default` and uint8 as `serving_uint8`, and also returns each image's label.
 */
export async function exportClassifier(classifier: Classifier, dir: string, format: ExportFormat, extra: Record<string, string> = {}): Promise<string> {
  if (!EXPORT_FORMATS.includes(format)) throw new Error(`format: "${format}" is not one of ${EXPORT_FORMATS.join(", ")}.`);
  if (format === "tfjs") return classifier.save(dir, extra);
  pythonWithTensorFlow();
  const model = classifier.model;
  const layers = model.layers.filter((l) => l.weights.length > 0);
  const labels = { "labels.json": JSON.stringify(classifier.info, null, 1), ...extra };
  return withScratch((scratch) =>
    writeFolder(dir, async (tmp) => {
      const weightsFile = path.join(scratch, "weights.f32");
      const values = layers.flatMap((l) => l.getWeights().map((w) => Buffer.from((w.dataSync() as Float32Array).buffer.slice(0))));
      fs.writeFileSync(weightsFile, Buffer.concat(values));
      const spec = {
        format,
        out: tmp,
        weightsFile,
        inputSize: classifier.info.inputSize,
        ...scaling(model),
        layer: classifier.info.layer,
        classes: classifier.info.classes,
        dropout: (model.getLayer("head_dropout").getConfig() as { rate: number }).rate,
        layers: layers.map((l) => ({ name: l.name, shapes: l.weights.map((w) => w.shape) })),
      };
      const specFile = path.join(scratch, "spec.json");
      fs.writeFileSync(specFile, JSON.stringify(spec));
      await bridge(["export", specFile]);
      for (const [name, content] of Object.entries(labels)) writeAtomically(path.join(tmp, name), content);
    }),
  );
}

const SCALINGS: Record<string, { scale: number; offset: number }> = { inception: { scale: 1 / 127.5, offset: -1 }, unit: { scale: 1 / 255, offset: 0 } };

/**
 * Reads a Keras file (.keras or .h5) of Inception-v3 with one dense layer on top, as Python users build
 * it (InceptionV3(include_top=False) as a nested base, or flat; a Rescaling layer for the pixel scaling,
 * else Keras' preprocess_input scaling to [-1, 1] is assumed). Class names come from a labels.json beside
 * the file (as export writes it), else from `classes`, else "class 0", "class 1", ...
 */
async function readKerasClassifier(file: string, classes: string[] | undefined, precision: Precision): Promise<Classifier> {
  return withScratch(async (scratch) => {
    await bridge(["import", path.resolve(file), scratch]);
    const spec = JSON.parse(fs.readFileSync(path.join(scratch, "spec.json"), "utf8")) as { inputSize: number; layer: CutLayer; classes: number; scale: number | null; offset: number | null; layers: number[][][] };
    const preprocessing = spec.scale === null ? "inception" : Object.entries(SCALINGS).find(([, s]) => Math.abs(s.scale - spec.scale!) < 1e-9 && Math.abs(s.offset - spec.offset!) < 1e-9)?.[0];
    if (!preprocessing) throw new Error(`${file}: its Rescaling layer (scale ${spec.scale}, offset ${spec.offset}) is neither [-1, 1] nor [0, 1] scaling of pixels 0..255.`);
    const beside = path.join(path.dirname(file), "labels.json");
    const names = classes ?? (fs.existsSync(beside) ? (JSON.parse(fs.readFileSync(beside, "utf8")) as { classes: string[] }).classes : Array.from({ length: spec.classes }, (_, i) => `class ${i}`));
    if (names.length !== spec.classes) throw new Error(`${file} has ${spec.classes} classes; ${names.length} class names were given.`);
    const inception = await loadInceptionV3({ weights: null, inputSize: spec.inputSize, preprocessing: preprocessing as "inception" | "unit" });
    const head = new Head(spec.classes, 0, 0);
    const { full } = classifierModels(inception, spec.layer, head);
    head.dispose(); // the classifier only predicts: no dropout
    // Keras' InceptionV3 and this library's have the same layers in the same order: the file's convolutions
    // and batch norms fill this network's in order, then the dense layer the head.
    const targets = [...full.model.layers.filter((l) => l.weights.length > 0 && l.name !== "logits"), full.model.getLayer("logits")];
    const values = new Float32Array(fs.readFileSync(path.join(scratch, "weights.f32")).buffer.slice(0));
    let offset = 0;
    targets.forEach((layer, i) => {
      const shapes = layer.weights.map((w) => w.shape as number[]);
      if (JSON.stringify(shapes) !== JSON.stringify(spec.layers[i])) throw new Error(`${file}: layer ${i + 1} holds shapes ${JSON.stringify(spec.layers[i])}, Inception-v3's ${layer.name} takes ${JSON.stringify(shapes)}.`);
      tf.tidy(() => layer.setWeights(shapes.map((shape) => tf.tensor(values.subarray(offset, (offset += tf.util.sizeFromShape(shape))), shape))));
    });
    const info: ClassifierInfo = { classes: names, inputSize: spec.inputSize, mode: "keras", layer: spec.layer, weights: `Keras file ${path.basename(file)}` };
    return new Classifier(full.model, info, precision);
  });
}

/**
 * Loads a classifier: a folder written by `run.save()` or `run.export(dir)` (or a run's checkpoint), or a
 * Keras file (.keras, .h5) of Inception-v3 with a new head trained in Python.
 */
export async function loadClassifier(location: string, options: { classes?: string[]; precision?: PrecisionOption } = {}): Promise<Classifier> {
  const { precision } = resolvePrecision(options.precision ?? "auto");
  if (/\.(keras|h5)$/i.test(location)) {
    if (!fs.existsSync(location)) throw new Error(`${location}: no such file.`);
    return readKerasClassifier(location, options.classes, precision);
  }
  return readClassifierFolder(location, precision);
}
