// A classifier to and from files, for the rest of TensorFlow: the library's own folders (tfjs model.json,
// what browsers and Node load), a Keras file Python loads whole, a SavedModel for TensorFlow Serving, and
// TensorFlow Lite for phones and small devices (tflite.ts checks it in a TFLite interpreter).
// Keras and TensorFlow write their own formats: the library hands the weights to the project's Python
// (the venv setup made, with TensorFlow in it) through keras-bridge.py, which builds the same network in
// Keras (and converts it for TensorFlow Lite). The same bridge reads a Keras-trained Inception-v3 classifier back.
import * as fs from "fs";
import * as path from "path";
import { type CutLayer, SCALING } from "../../network/inception";
import { loadInceptionV3 } from "../../network/model";
import { type Precision, type PrecisionChoice, precisionFor, PRECISION_OPTIONS, type PrecisionOption, resolvePrecision } from "../../runtime/precision";
import { tf } from "../../runtime/tf";
import type { ImageFolder } from "../../data/image-folder";
import { MANIFEST, verifyFolder, writeAtomically, writeFolder } from "../../util/atomic";
import { InterruptedError, listenForInterrupt } from "../../util/interrupt";
import { pythonFailure, pythonNotRunnable, pythonWithTensorFlow, startPythonScript } from "../../util/python";
import { withScratchFolder } from "../../util/scratch";
import { zipMemberData, zipMembers } from "../../util/zip";
import { type Cell, Displayable, Table } from "../../display/display";
import { formatBytes } from "../../display/format";
import { checkOptions, OptionError, rule } from "../../util/options";
import { batchScorer, Classifier, type ClassifierInfo, classifierModels, classNamesFor, Head, labelsFile, labelsText, readClassifierFolder, readLabels } from "./classifier";
import { checkOnInterpreter, type InputType, INPUT_TYPES, type Quantization, QUANTIZATIONS, quantizationName, readTfliteClassifier, TARGETS, type TfliteExportNote, writeCalibrationImages } from "./tflite";

export type ExportFormat = "keras" | "savedmodel" | "tfjs" | "tflite";
export const EXPORT_FORMATS: ExportFormat[] = ["keras", "savedmodel", "tfjs", "tflite"];

/** What run.export takes besides the folder. */
export interface ExportOptions {
  /**
   * "keras" (default): model.keras for Python; "savedmodel": TensorFlow Serving and tf.saved_model.load;
   * "tfjs": as run.save; "tflite": model.tflite for TensorFlow Lite (LiteRT) on phones and small devices.
   */
  format?: ExportFormat;
  /**
   * TensorFlow Lite only: "none" (default, float32), "float16" (float16 weights, half the size), "dynamic"
   * (int8 weights, float activations, a quarter), "int8" (integers throughout, calibrated on training images:
   * for integer-only accelerators and microcontrollers).
   */
  quantize?: Quantization;
  /** An int8 export's input: "uint8" pixels (default) or "float32" pixels 0..255. */
  inputType?: InputType;
}
const EXPORT_RULES = { format: rule.oneOf(EXPORT_FORMATS), quantize: rule.oneOf(QUANTIZATIONS), inputType: rule.oneOf(INPUT_TYPES) };

/** An export, as written: its folder, format and files, and for TensorFlow Lite how it ran in the interpreter; shows itself as a table row. */
export class ExportResult extends Displayable {
  constructor(
    readonly dir: string,
    readonly format: ExportFormat,
    /** The files written, with their sizes in bytes. */
    readonly files: { name: string; bytes: number }[],
    /** A TensorFlow Lite export's conversion and check (also in its tflite-export.json); null for the other formats. */
    readonly tflite: TfliteExportNote | null = null,
  ) {
    super();
  }

  /** Bytes on disk, every file of the export. */
  get bytes(): number {
    return this.files.reduce((sum, f) => sum + f.bytes, 0);
  }

  /** The warning of an export that falls short of its targets (TARGETS in tflite.ts), or null: it was written, and says so. */
  get warning(): string | null {
    const shortfall = this.tflite?.check.shortfall;
    return shortfall ? `inception-lab: the TensorFlow Lite export in ${this.dir} (${quantizationName(this.tflite!)}) falls short: ${shortfall}. It was written; see its mistakes with (await loadClassifier(dir)).evaluate(...) before you ship it.` : null;
  }

  /** The export as a row of exportsTable. */
  row(): Cell[] {
    const note = this.tflite;
    const check = note?.check;
    const shown = path.relative(process.cwd(), this.dir);
    return [
      shown.length < this.dir.length && !shown.startsWith("..") ? shown : this.dir,
      note ? `tflite ${quantizationName(note)}` : this.format,
      formatBytes(this.bytes),
      ...(check
        ? [
            `${check.split}, ${check.images} images`,
            check.accuracy.toFixed(3),
            check.libraryAccuracy.toFixed(3),
            `${(check.agreement * 100).toFixed(1)} %`,
            check.maxDifference.toExponential(1),
            `${(check.latency * 1000).toFixed(1)} ms`,
            check.interpreter,
            check.shortfall ? `SHORT: ${check.shortfall}` : "meets the targets",
          ]
        : ["-", "-", "-", "-", "-", "-", "-", "not run in an interpreter"]),
    ];
  }

  toText(): string {
    return exportsTable([this]).toText();
  }

  toHTML(): string {
    return exportsTable([this]).toHTML();
  }
}

/** Exports as a table, a row each: what the TensorFlow Lite ones measured in the interpreter against the library's float32 predictions. */
export function exportsTable(results: ExportResult[]): Table {
  const columns = ["export", "format", "size", "checked on", "accuracy", "library float32", "top-1 agreement", "max |p - library|", "latency / image", "interpreter", "verdict"];
  const targets = `targets: float32 within ${TARGETS.maxDifference} of the library's float32 probabilities; quantized ${TARGETS.agreement * 100} % top-1 agreement and accuracy within ${TARGETS.accuracyPoints} point`;
  return new Table(columns, results.map((result) => result.row()), `Exports (${targets})`);
}

/** The files of a written folder, with sizes (the manifest aside). */
function folderFiles(dir: string): { name: string; bytes: number }[] {
  const walk = (sub: string): { name: string; bytes: number }[] =>
    fs.readdirSync(path.join(dir, sub), { withFileTypes: true }).flatMap((e) => {
      const name = path.join(sub, e.name);
      return e.isDirectory() ? walk(name) : e.name === MANIFEST ? [] : [{ name, bytes: fs.statSync(path.join(dir, name)).size }];
    });
  return walk("");
}

/** history.json: a run's info and history, beside every saved or exported classifier. */
export function historyFile(info: object, history: object): Record<string, string> {
  return { "history.json": JSON.stringify({ info, history }) };
}

/**
 * Runs keras-bridge.py. Rejects with the bridge's own one-line message when it fails (its whole output
 * with INCEPTION_LAB_DEBUG=1). The bridge never outlives the call: an interrupt stops it, this process
 * ending kills it, and it exits by itself when this process is killed (its stdin closes).
 */
function bridge(args: string[], scratch?: string): Promise<void> {
  const script = path.join(__dirname, "keras-bridge.py");
  return new Promise((resolve, reject) => {
    // Python's own temporary files (the TFLite converter saves a SavedModel first) go into the caller's scratch folder, and with it.
    const { child, python, lastWords, release } = startPythonScript(script, args, { stdout: "ignore", env: scratch ? { TMPDIR: scratch } : {} });
    const interrupt = listenForInterrupt();
    const off = interrupt.onInterrupt(() => child.kill("SIGTERM"));
    let settled = false;
    const settle = (error: Error | null) => {
      if (settled) return;
      settled = true;
      off();
      interrupt.release();
      release();
      if (error) reject(error);
      else resolve();
    };
    child.on("error", (error: NodeJS.ErrnoException) => settle(pythonNotRunnable(python, error)));
    child.on("close", (code, signal) => {
      if (interrupt.requested) return settle(new InterruptedError("interrupted: the Python bridge was stopped before it finished; nothing was written."));
      settle(code === 0 ? null : pythonFailure(script, python, lastWords(), code, signal));
    });
  });
}

/** What is wrong with a Keras file (.keras: a zip with its config and weights), or null when it is whole. */
function kerasFileProblem(file: string): string | null {
  const data = fs.readFileSync(file);
  const members = zipMembers(data);
  if (typeof members === "string") return members;
  for (const name of ["config.json", "model.weights.h5"]) if (!members.some((m) => m.name === name)) return `it holds no ${name}`;
  for (const member of members) {
    const bytes = zipMemberData(data, member);
    if (typeof bytes === "string") return bytes;
    if (member.name === "config.json") {
      try {
        if (typeof JSON.parse(bytes.toString("utf8"))?.config !== "object") return "its config.json holds no model config";
      } catch {
        return "its config.json is not JSON";
      }
    }
  }
  return null;
}

/** What is wrong with a SavedModel folder (saved_model.pb parses with a serving_default signature, its variables are there), or null. */
async function savedModelProblem(dir: string): Promise<string | null> {
  if (!fs.existsSync(path.join(dir, "saved_model.pb"))) return "it holds no saved_model.pb";
  try {
    const graphs = await tf.node.getMetaGraphsFromSavedModel(dir);
    if (!graphs.some((graph) => graph.signatureDefs?.serving_default)) return "saved_model.pb has no serving_default signature";
  } catch (error) {
    return `saved_model.pb does not parse (${(error as Error).message.split("\n")[0]})`;
  }
  const variables = path.join(dir, "variables");
  const names = fs.existsSync(variables) ? fs.readdirSync(variables) : [];
  if (!names.includes("variables.index") || !names.some((name) => /^variables\.data-\d+-of-\d+$/.test(name))) return "its variables/ folder is missing or incomplete";
  return null;
}

/** What is wrong with a TensorFlow Lite file (a FlatBuffer with the identifier TFL3), or null when it looks whole; the interpreter checks the rest. */
function tfliteFileProblem(file: string): string | null {
  if (!fs.existsSync(file)) return "it wrote no model.tflite";
  const head = Buffer.alloc(8);
  const fd = fs.openSync(file, "r");
  const read = fs.readSync(fd, head, 0, 8, 0);
  fs.closeSync(fd);
  return read === 8 && head.toString("latin1", 4, 8) === "TFL3" ? null : "model.tflite is not a TensorFlow Lite file (no TFL3 identifier)";
}

type BridgeFormat = "keras" | "savedmodel" | "tflite";

/** Throws unless the bridge left a whole model in `out`: a bridge that exits 0 is not trusted on its word. */
async function checkExported(out: string, format: BridgeFormat, dir: string): Promise<void> {
  const keras = path.join(out, "model.keras");
  const problem =
    format === "keras" ? (fs.existsSync(keras) ? kerasFileProblem(keras) : "it wrote no model.keras") : format === "tflite" ? tfliteFileProblem(path.join(out, "model.tflite")) : await savedModelProblem(out);
  if (problem) throw new Error(`${dir}: the export is not whole (${problem}), so nothing was written and the folder is as it was; export again, or set INCEPTION_LAB_DEBUG=1 to see the Python bridge's output.`);
}

/** Pixel scaling of the classifier's first layer ("preprocess"): x * scale + offset. */
function scaling(model: tf.LayersModel): { scale: number; offset: number } {
  const config = model.getLayer("preprocess").getConfig() as { scale: number; offset: number };
  return { scale: config.scale, offset: config.offset };
}

/**
 * Writes `classifier` into `dir` as a Keras file (model.keras), a SavedModel, the library's tfjs folder, or
 * TensorFlow Lite (model.tflite, with labels.txt), with labels.json and `extra` files; all or nothing, and
 * never over files the library did not write. The Keras model, the SavedModel and the TFLite model take RGB
 * pixels 0..255 (the scaling is a layer inside) and give probabilities; the SavedModel takes images of any
 * batch and size (resized inside), float32 as `serving_default` and uint8 as `serving_uint8`, and also
 * returns each image's label. A TFLite export runs in the TFLite interpreter on a split of `data` before it
 * replaces the folder (an int8 one calibrates on its training images first); one that falls short of its
 * targets is written, and says so in its row and in a warning.
 */
export async function exportClassifier(classifier: Classifier, dir: string, options: ExportOptions = {}, extra: Record<string, string> = {}, data?: ImageFolder): Promise<ExportResult> {
  if (typeof dir !== "string" || dir === "") throw new OptionError("dir", `dir is ${dir === "" ? "empty" : String(dir)}: give the folder to export into, e.g. run.export("models/flowers-keras").`);
  checkOptions(options, EXPORT_RULES, "export");
  const format = options.format ?? "keras";
  if (options.quantize !== undefined && format !== "tflite") throw new OptionError("quantize", `quantize: "${options.quantize}" is for TensorFlow Lite exports, and this one is ${format}: give { format: "tflite", quantize: "${options.quantize}" }.`);
  const quantize = options.quantize ?? "none";
  if (options.inputType !== undefined && quantize !== "int8") throw new OptionError("inputType", `inputType: only an int8 TensorFlow Lite export chooses its input type; ${format === "tflite" ? `a ${quantize} one` : `a ${format} export`} takes float32 pixels 0..255. Drop inputType, or give quantize: "int8".`);
  if (format === "tflite") {
    if (!data) throw new Error(`export to ${dir}: a TensorFlow Lite export is checked on images of its data set; export it from a run, run.export(dir, { format: "tflite" }).`);
    const note = { quantize, inputType: quantize === "int8" ? (options.inputType ?? "uint8") : null };
    const { written, check } = await bridgeExport(classifier, dir, "tflite", { ...labelsFile(classifier.info), "labels.txt": labelsText(classifier.classes), ...extra }, { ...note, data });
    const result = new ExportResult(written, format, folderFiles(written), { ...note, check: check! });
    if (result.warning) console.warn(result.warning);
    return result;
  }
  const written = format === "tfjs" ? await classifier.save(dir, extra) : (await bridgeExport(classifier, dir, format, { ...labelsFile(classifier.info), ...extra })).written;
  return new ExportResult(written, format, folderFiles(written));
}

/** What a TensorFlow Lite export asks of the bridge: its conversion, and the data set it calibrates on (int8) and is checked on. */
type TfliteRequest = Pick<TfliteExportNote, "quantize" | "inputType"> & { data: ImageFolder };

/**
 * A Keras file, a SavedModel or a TFLite model, written by the Python bridge from the classifier's weights,
 * checked whole (a TFLite model also in the interpreter: tflite-export.json holds how it ran), with `extra`
 * files beside it. Returns the folder, and the TFLite check.
 */
function bridgeExport(classifier: Classifier, dir: string, format: BridgeFormat, extra: Record<string, string>, tflite: TfliteRequest | null = null) {
  pythonWithTensorFlow(tflite ? "TensorFlow Lite models are converted and run by Python TensorFlow" : undefined);
  const model = classifier.model;
  const layers = model.layers.filter((l) => l.weights.length > 0);
  const failed = (error: Error): never => {
    error.message = `cannot export to ${dir}: ${error.message}`;
    throw error;
  };
  return withScratchFolder("keras", async (scratch) => {
    let check: TfliteExportNote["check"] | null = null;
    const written = await writeFolder(dir, async (tmp) => {
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
        ...(tflite && {
          quantize: tflite.quantize,
          inputType: tflite.inputType,
          calibration: tflite.quantize === "int8" ? await writeCalibrationImages(tflite.data, classifier.info.inputSize, path.join(scratch, "calibration.u8")) : null,
        }),
      };
      const specFile = path.join(scratch, "spec.json");
      fs.writeFileSync(specFile, JSON.stringify(spec));
      await bridge(["export", specFile], scratch).catch(failed);
      await checkExported(tmp, format, dir);
      const checked: Record<string, string> = {};
      if (tflite) {
        check = await checkOnInterpreter(classifier, path.join(tmp, "model.tflite"), tflite.data, tflite.quantize).catch(failed);
        checked["tflite-export.json"] = JSON.stringify({ quantize: tflite.quantize, inputType: tflite.inputType, check } satisfies TfliteExportNote, null, 1);
      }
      for (const [name, content] of Object.entries({ ...extra, ...checked })) writeAtomically(path.join(tmp, name), content);
    });
    return { written, check };
  });
}

/**
 * Reads a Keras file (.keras or .h5) of Inception-v3 with one dense layer on top, as Python users build
 * it (InceptionV3(include_top=False) as a nested base, or flat; a Rescaling layer for the pixel scaling,
 * else Keras' preprocess_input scaling to [-1, 1] is assumed). Class names come from `classes`, else from
 * a labels.json beside the file (as export writes it), else "class 0", "class 1", ...
 */
async function readKerasClassifier(file: string, classes: string[] | undefined, precision: PrecisionChoice): Promise<Classifier> {
  const given = classNamesFor(file, classes);
  if (/\.keras$/i.test(file)) {
    const problem = kerasFileProblem(file);
    if (problem) throw new Error(`${file} is damaged or cut short (${problem}): save or export it again.`);
  }
  return withScratchFolder("keras", async (scratch) => {
    await bridge(["import", path.resolve(file), scratch]);
    const spec = JSON.parse(fs.readFileSync(path.join(scratch, "spec.json"), "utf8")) as { inputSize: number; layer: CutLayer; classes: number; scale: number | null; offset: number | null; layers: number[][][] };
    const preprocessing = spec.scale === null ? "inception" : Object.entries(SCALING).find(([, s]) => Math.abs(s.scale - spec.scale!) < 1e-9 && Math.abs(s.offset - spec.offset!) < 1e-9)?.[0];
    if (!preprocessing) throw new Error(`${file}: its Rescaling layer (scale ${spec.scale}, offset ${spec.offset}) is neither [-1, 1] nor [0, 1] scaling of pixels 0..255.`);
    const names = given ?? Array.from({ length: spec.classes }, (_, i) => `class ${i}`);
    if (names.length !== spec.classes) throw new Error(`${file} has ${spec.classes} classes; ${names.length} class names were given${classes ? "" : " (in the labels.json beside it)"}.`);
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
    // Its network is its own, blocks above the cut included: freed with it.
    return new Classifier(full.model, info, precision, undefined, [...new Set([...inception.model.weights, ...full.model.weights])].map((w) => w.read()));
  });
}

/** Throws unless the SavedModel gives one probability per class of its labels.json for a blank image. */
function checkSavedModelRuns(dir: string, labels: string, info: ClassifierInfo, score: (images: tf.Tensor4D) => tf.Tensor): void {
  let classes: number;
  try {
    classes = tf.tidy(() => score(tf.zeros([1, info.inputSize, info.inputSize, 3])).shape[1] ?? 0);
  } catch (error) {
    const message = (error as Error).message;
    throw new Error(
      /Could not find variable/.test(message)
        ? `${dir} was exported by an earlier Inception Lab, whose SavedModels TensorFlow's C loader (TensorFlow Serving, tfjs-node) cannot restore: export it again.`
        : `${dir}: the SavedModel does not run (${message.split("\n")[0]}): export it again.`,
    );
  }
  if (classes !== info.classes.length) throw new Error(`${labels} names ${info.classes.length} classes, but the SavedModel gives ${classes} probabilities; export it again.`);
}

/**
 * Reads a SavedModel folder that run.export wrote, through TensorFlow's own loader and its serving_default
 * signature: a classifier that predicts and evaluates at float32, without tfjs layers (see Classifier.model).
 */
async function readSavedModelClassifier(dir: string, precision: PrecisionOption | undefined): Promise<Classifier> {
  if (precision === "bfloat16" || precision === "float16") {
    throw new OptionError("precision", `precision: ${dir} is a SavedModel, which TensorFlow runs as it was saved (float32); load the same run's Keras export or tfjs folder to predict at ${precision}.`);
  }
  const labels = path.join(dir, "labels.json");
  if (!fs.existsSync(labels)) throw new Error(`${dir}: a SavedModel without labels.json, so not one Inception Lab exported (its classes and input size are unknown); give a folder run.export(dir, { format: "savedmodel" }) wrote.`);
  const problem = await savedModelProblem(dir);
  if (problem) throw new Error(`${dir}: the SavedModel is damaged (${problem}): export it again.`);
  let saved: Awaited<ReturnType<typeof tf.node.loadSavedModel>>;
  try {
    saved = await tf.node.loadSavedModel(dir, ["serve"], "serving_default");
  } catch (error) {
    throw new Error(`${dir}: TensorFlow cannot load the SavedModel (${(error as Error).message.split("\n")[0]}): export it again.`);
  }
  const score = (images: tf.Tensor4D) => {
    const outputs = saved.predict({ images }) as tf.NamedTensorMap;
    tf.dispose(Object.entries(outputs).filter(([name]) => name !== "probabilities").map(([, tensor]) => tensor));
    return outputs.probabilities;
  };
  let info: ClassifierInfo;
  try {
    info = readLabels(labels);
    checkSavedModelRuns(dir, labels, info, score);
  } catch (error) {
    saved.dispose();
    throw error;
  }
  // It runs as it was saved, at float32 only; dispose() frees the TensorFlow session with the classifier.
  const scorer = batchScorer(info.inputSize, score);
  const only = Object.assign(
    (precision: Precision) => {
      if (precision !== "float32") throw new OptionError("precision", `precision: ${dir} is a SavedModel, which TensorFlow runs as it was saved (float32); load the same run's Keras export or tfjs folder to predict at ${precision}.`);
      return scorer;
    },
    { dispose: () => saved.dispose() },
  );
  return new Classifier(null, { ...info, weights: `the SavedModel ${dir}` }, precisionFor("float32"), only);
}

/**
 * Loads a classifier: a folder written by `run.save()` or `run.export(dir)` in any format (tfjs, Keras,
 * SavedModel, TensorFlow Lite) or a run's checkpoint, a Keras file (.keras, .h5) of Inception-v3 with a new
 * head trained in Python, or a .tflite file (its labels.json beside it, or `classes`). What the library wrote
 * is checked against its manifest first. A TensorFlow Lite classifier predicts and evaluates in the TFLite
 * interpreter, a Python process kept until dispose() (or until Node exits).
 */
export async function loadClassifier(location: string, options: { classes?: string[]; precision?: PrecisionOption } = {}): Promise<Classifier> {
  checkOptions(options, { classes: rule.any(), precision: rule.oneOf(PRECISION_OPTIONS) }, "loadClassifier");
  if (typeof location !== "string" || location === "") throw new Error(`location is ${location === "" ? "empty" : String(location)}: give a folder run.save(dir) or run.export(dir) wrote, or a Keras file (.keras, .h5).`);
  const precision = resolvePrecision(options.precision ?? "auto");
  if (/\.(keras|h5)$/i.test(location)) {
    if (!fs.existsSync(location)) throw new Error(`${location}: no such file.`);
    return readKerasClassifier(location, options.classes, precision);
  }
  if (/\.tflite$/i.test(location)) return readTfliteClassifier(location, options.classes, options.precision);
  const holds = (name: string) => fs.existsSync(path.join(location, name));
  if (fs.statSync(location, { throwIfNoEntry: false })?.isDirectory() && !holds("model.json")) {
    if (holds(MANIFEST)) verifyFolder(location);
    if (holds("model.keras")) return readKerasClassifier(path.join(location, "model.keras"), options.classes, precision);
    if (holds("saved_model.pb")) return readSavedModelClassifier(location, options.precision);
    if (holds("model.tflite")) return readTfliteClassifier(path.join(location, "model.tflite"), options.classes, options.precision);
    throw new Error(
      `${location} is not a classifier folder: it holds no model.json (run.save, a tfjs export), model.keras (a Keras export), saved_model.pb (a SavedModel export) or model.tflite (a TensorFlow Lite export); ` +
        `give a folder run.save(dir) or run.export(dir) wrote, a Keras file (.keras, .h5) or a .tflite file.`,
    );
  }
  return readClassifierFolder(location, precision);
}
