// TensorFlow Lite, for phones and small devices: a classifier as model.tflite, float32 or quantized, and
// checked where it will run. files.ts writes the export (the venv's TensorFlow converts the Keras model
// keras-bridge.py builds); this file runs .tflite files in a TFLite interpreter in Python
// (tflite-interpreter.py: LiteRT's where it is installed, else TensorFlow's own), one process per model
// kept for its calls. An export is run there on a split of its data set, fed exactly the pixels the library
// decodes, so that its accuracy, its agreement with the library's float32 predictions, its largest
// probability difference and its latency are the model's, not a decoder's; loadClassifier predicts and
// evaluates through the same interpreter.
import type { ChildProcess } from "child_process";
import * as fs from "fs";
import type { Socket } from "net";
import * as path from "path";
import type { ImageFolder, Split } from "../../data/image-folder";
import { decodeBatch, ImageDecodeError } from "../../network/decode";
import { type Precision, precisionFor, type PrecisionOption } from "../../runtime/precision";
import { tf } from "../../runtime/tf";
import { InterruptedError, listenForInterrupt } from "../../util/interrupt";
import { OptionError } from "../../util/options";
import { pythonFailure, pythonNotRunnable, startPythonScript } from "../../util/python";
import { batchScorer, Classifier, type ClassifierInfo, classNamesFor, readLabels } from "./classifier";

/** "none": float32; "float16": float16 weights; "dynamic": int8 weights, float activations; "int8": integers throughout, calibrated. */
export type Quantization = "none" | "float16" | "dynamic" | "int8";
export const QUANTIZATIONS: Quantization[] = ["none", "float16", "dynamic", "int8"];
/** What an int8 export takes: pixels as uint8 (the default, what a camera gives) or float32. */
export type InputType = "uint8" | "float32";
export const INPUT_TYPES: InputType[] = ["uint8", "float32"];

/** What an export must reach against the library's float32 predictions: float32 its largest probability difference, quantized ones their top-1 agreement and accuracy. */
export const TARGETS = { maxDifference: 1e-4, agreement: 0.98, accuracyPoints: 1 };

/** Training images at most that an int8 export calibrates on, spread over the split (TensorFlow suggests 100 to 500). */
const CALIBRATION_IMAGES = 200;
/** Single-image invocations timed for the latency, after 3 warm-up ones. */
const LATENCY_REPEATS = 15;

/** What the interpreter's process says as it starts: which interpreter, and the model's input and outputs. */
interface Started {
  interpreter: string;
  inputSize: number;
  inputType: string;
  outputs: number;
}

/** One process of tflite-interpreter.py: its first line, and requests answered in order. */
interface Session {
  started: Started;
  ask(request: object, images: tf.Tensor4D): Promise<Record<string, unknown>>;
  stop(): void;
  readonly ended: boolean;
}

/** The pipes and the process keep Node alive only while an answer is awaited: an idle classifier never holds a script open. */
function holdNodeOpen(child: ChildProcess, waiting: boolean): void {
  for (const stream of [child.stdin, child.stdout, child.stderr] as unknown as Socket[]) (waiting ? stream.ref() : stream.unref());
  if (waiting) child.ref();
  else child.unref();
}

/** Awaits `answer`; an interrupt (Ctrl-C, the kernel's stop button) stops the process and rejects at once. */
async function interruptible<T>(session: { stop(error: Error): void }, answer: Promise<T>): Promise<T> {
  const interrupt = listenForInterrupt();
  const off = interrupt.onInterrupt(() => session.stop(new InterruptedError("interrupted: the TensorFlow Lite interpreter was stopped before it answered.")));
  try {
    return await answer;
  } finally {
    off();
    interrupt.release();
  }
}

/** Starts tflite-interpreter.py on `file` and waits for its first line (an interrupt stops the wait). */
async function startSession(file: string): Promise<Session> {
  const script = path.join(__dirname, "tflite-interpreter.py");
  const { child, python, lastWords, release } = startPythonScript(script, [file], { what: "TensorFlow Lite models run in Python's TFLite interpreter", stdout: "pipe" });
  const waiting: { resolve: (answer: Record<string, unknown>) => void; reject: (error: Error) => void }[] = [];
  let ended: Error | null = null;
  let lines = "";
  const stop = (error: Error) => {
    ended ??= error;
    release();
    child.kill("SIGKILL");
    for (const request of waiting.splice(0)) request.reject(ended);
  };
  child.stdout!.setEncoding("utf8").on("data", (chunk: string) => {
    lines += chunk;
    for (let end = lines.indexOf("\n"); end >= 0; end = lines.indexOf("\n")) {
      const line = lines.slice(0, end);
      lines = lines.slice(end + 1);
      try {
        waiting.shift()?.resolve(JSON.parse(line));
      } catch {
        return stop(new Error(`tflite-interpreter.py answered "${line.slice(0, 80)}", which is not JSON; set INCEPTION_LAB_DEBUG=1 to see its output.`));
      }
      if (waiting.length === 0) holdNodeOpen(child, false);
    }
  });
  child.on("error", (error) => stop(pythonNotRunnable(python, error)));
  child.on("close", (code, signal) => stop(pythonFailure(script, python, lastWords(), code, signal)));
  const answer = () =>
    new Promise<Record<string, unknown>>((resolve, reject) => {
      if (ended) return reject(ended);
      waiting.push({ resolve, reject });
      holdNodeOpen(child, true);
    });
  const started = (await interruptible({ stop }, answer())) as unknown as Started;
  return {
    started,
    get ended() {
      return ended !== null;
    },
    async ask(request, images) {
      const pixels = (await images.data()) as Float32Array;
      const replied = answer();
      child.stdin!.write(Buffer.concat([Buffer.from(JSON.stringify(request) + "\n"), Buffer.from(pixels.buffer, pixels.byteOffset, pixels.byteLength)]));
      const reply = await interruptible({ stop }, replied);
      if (typeof reply.error === "string") throw new Error(`${file}: the TensorFlow Lite interpreter failed (${reply.error}).`);
      return reply;
    },
    stop: () => stop(new Error(`${file}: its TensorFlow Lite interpreter was stopped (the classifier was disposed).`)),
  };
}

/**
 * A .tflite file in Python's TFLite interpreter: one process, started at the first call and kept for the
 * calls after (started again after an interrupt or a failure stopped it), until stop().
 */
export class TfliteInterpreter {
  private session: Promise<Session> | null = null;

  constructor(readonly file: string) {}

  private running(): Promise<Session> {
    this.session ??= startSession(path.resolve(this.file)).catch((error) => {
      this.session = null;
      throw error;
    });
    return this.session;
  }

  /** Which interpreter runs the model, and the model's input and outputs. */
  async started(): Promise<Started> {
    return (await this.running()).started;
  }

  private async ask(request: object, images: tf.Tensor4D): Promise<Record<string, unknown>> {
    const session = await this.running();
    try {
      return await session.ask(request, images);
    } finally {
      if (session.ended && this.session) this.session = null; // the next call starts a new process
    }
  }

  /** Each image's class probabilities (pixels 0..255 in), one invocation per image, as a device runs it. */
  async probabilities(images: tf.Tensor4D): Promise<tf.Tensor2D> {
    const { probabilities } = await this.ask({ op: "probabilities", images: images.shape[0] }, images);
    return tf.tensor2d(probabilities as number[][]);
  }

  /** Seconds of `repeats` invocations on one image (a batch of one), after 3 warm-up ones. */
  async latency(image: tf.Tensor4D, repeats = LATENCY_REPEATS): Promise<number[]> {
    return (await this.ask({ op: "latency", repeats }, image)).seconds as number[];
  }

  /** Ends the process, if one runs. */
  stop(): void {
    void this.session?.then((session) => session.stop(), () => undefined);
    this.session = null;
  }
}

/** Interpreters whose classifier nothing reaches any more: their processes end (dispose() ends one at once). */
const stopWhenUnreachable = new FinalizationRegistry<TfliteInterpreter>((interpreter) => interpreter.stop());

/** The sentence refusing a precision a TensorFlow Lite model does not run at. */
const precisionRefusal = (file: string, precision: string) =>
  `precision: ${file} is a TensorFlow Lite model, which its interpreter runs as it was converted; load the same run's Keras export or tfjs folder to predict at ${precision}.`;

/** A classifier that predicts and evaluates through `interpreter` (at "float32" or "auto": as it was converted); no layers (see Classifier.model). */
function interpreterClassifier(interpreter: TfliteInterpreter, info: ClassifierInfo): Classifier {
  const scorer = batchScorer(info.inputSize, (images) => interpreter.probabilities(images));
  const only = Object.assign(
    (precision: Precision) => {
      if (precision !== "float32") throw new OptionError("precision", precisionRefusal(interpreter.file, precision));
      return scorer;
    },
    { dispose: () => interpreter.stop() },
  );
  const classifier = new Classifier(null, info, precisionFor("float32"), only);
  stopWhenUnreachable.register(classifier, interpreter);
  return classifier;
}

/** What an export's tflite-export.json holds: how it was converted and how it ran in the interpreter. */
export interface TfliteExportNote {
  quantize: Quantization;
  /** An int8 export's input type; null for the others, which take float32. */
  inputType: InputType | null;
  check: InterpreterCheck;
}

/** "int8 (uint8 input)", "float16 weights", ...: a conversion in words. */
export function quantizationName(note: Pick<TfliteExportNote, "quantize" | "inputType">): string {
  const names: Record<Quantization, string> = { none: "float32", float16: "float16 weights", dynamic: "dynamic range (int8 weights)", int8: `int8 (${note.inputType} input)` };
  return names[note.quantize];
}

/**
 * Reads a .tflite file (an export's model.tflite, with its labels.json beside it, or one given `classes`):
 * a classifier that predicts and evaluates in the TFLite interpreter, its process kept until dispose().
 */
export async function readTfliteClassifier(file: string, classes: string[] | undefined, precision: PrecisionOption | undefined): Promise<Classifier> {
  if (precision === "bfloat16" || precision === "float16") throw new OptionError("precision", precisionRefusal(file, precision));
  if (!fs.existsSync(file)) throw new Error(`${file}: no such file.`);
  const labels = path.join(path.dirname(file), "labels.json");
  const saved = fs.existsSync(labels) ? readLabels(labels) : null;
  const names = classes !== undefined ? classNamesFor(file, classes) : (saved?.classes ?? null);
  if (!names) throw new Error(`${file}: no labels.json beside it, so its classes are unknown: give them (loadClassifier(file, { classes: [...] })), or load the folder run.export(dir, { format: "tflite" }) wrote.`);
  const noteFile = path.join(path.dirname(file), "tflite-export.json");
  const note = fs.existsSync(noteFile) ? (JSON.parse(fs.readFileSync(noteFile, "utf8")) as TfliteExportNote) : null;
  const interpreter = new TfliteInterpreter(file);
  try {
    const started = await interpreter.started();
    if (started.outputs !== names.length) throw new Error(`${file} gives ${started.outputs} probabilities, but ${classes ? "classes names" : `${labels} names`} ${names.length} classes.`);
    if (saved && saved.inputSize !== started.inputSize) throw new Error(`${file} takes ${started.inputSize}x${started.inputSize} images, but ${labels} says ${saved.inputSize}: export it again.`);
    const weights = `the TensorFlow Lite model ${file}, ${note ? quantizationName(note) : `${started.inputType} input`}`;
    return interpreterClassifier(interpreter, { mode: "unknown", layer: "mixed10", ...saved, classes: names, inputSize: started.inputSize, weights });
  } catch (error) {
    interpreter.stop();
    throw error;
  }
}

/** How an export ran in the interpreter, against the library's float32 predictions on the same images. */
export interface InterpreterCheck {
  /** Which interpreter ran it, and with how many threads. */
  interpreter: string;
  /** The split it ran on: test, else validation (a data set without a test split), else train; `images` of it. */
  split: Split;
  images: number;
  /** Its accuracy on that split, and the library's float32 accuracy on the same images. */
  accuracy: number;
  libraryAccuracy: number;
  /** The fraction of images whose most probable class is the library's. */
  agreement: number;
  /** The largest |difference| between its probabilities and the library's, over every image and class. */
  maxDifference: number;
  /** Median seconds of one single-image invocation on this CPU. */
  latency: number;
  /** What falls short of its TARGETS, in words; null when nothing does. */
  shortfall: string | null;
}

/** What falls short of the targets, in words, or null. */
function shortfall(quantize: Quantization, check: Omit<InterpreterCheck, "shortfall">): string | null {
  if (quantize === "none") {
    return check.maxDifference <= TARGETS.maxDifference ? null : `its probabilities differ from the library's float32 ones by up to ${check.maxDifference.toExponential(1)} (target ${TARGETS.maxDifference})`;
  }
  const misses: string[] = [];
  const differing = Math.round((1 - check.agreement) * check.images);
  if (check.agreement < TARGETS.agreement)
    misses.push(
      `its top-1 class is the library's float32 one on ${(check.agreement * 100).toFixed(1)} % of the ${check.images} ${check.split} images (${differing} differ${differing === 1 ? "s" : ""}; target ${TARGETS.agreement * 100} %, and one image is ${(100 / check.images).toFixed(1)} points of it here)`,
    );
  const points = Math.abs(check.accuracy - check.libraryAccuracy) * 100;
  if (points > TARGETS.accuracyPoints + 1e-9) misses.push(`its ${check.split} accuracy ${check.accuracy.toFixed(3)} is ${points.toFixed(1)} points from the library's float32 ${check.libraryAccuracy.toFixed(3)} (target within ${TARGETS.accuracyPoints})`);
  return misses.length ? misses.join("; ") : null;
}

/** The median of some numbers. */
const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];

/**
 * Runs the TFLite file `model` (an export of `classifier`) in the interpreter on a split of `data` (test,
 * else validation, else train) and measures it against the library's own float32 predictions on the same
 * decoded images; throws unless it gives one probability per class.
 */
export async function checkOnInterpreter(classifier: Classifier, model: string, data: ImageFolder, quantize: Quantization): Promise<InterpreterCheck> {
  const interpreter = new TfliteInterpreter(model);
  const exported = interpreterClassifier(interpreter, classifier.info);
  // An interrupt stops a request at once (TfliteInterpreter), and the check at its next step when it comes between two.
  const interrupt = listenForInterrupt();
  const going = () => {
    if (interrupt.requested) throw new InterruptedError("interrupted: the TensorFlow Lite interpreter's check was stopped before it finished.");
  };
  try {
    const { interpreter: name, outputs } = await interpreter.started();
    if (outputs !== classifier.classes.length) throw new Error(`the export is not whole (model.tflite gives ${outputs} probabilities for ${classifier.classes.length} classes)`);
    const split = (["test", "validation", "train"] as const).find((s) => data.examples(s).length > 0)!;
    const theirs = await exported.evaluate({ data, split });
    going();
    const ours = await classifier.evaluate({ data, split, precision: "float32" });
    going();
    const row = new Map(ours.files.map((file, i) => [file, ours.probabilities[i]]));
    const top = (p: number[]) => p.indexOf(Math.max(...p));
    const pairs = theirs.files.map((file, i) => ({ theirs: theirs.probabilities[i], ours: row.get(file)! })).filter((pair) => pair.ours);
    const { images } = await decodeBatch([theirs.files[0]], classifier.info.inputSize);
    const seconds = await interpreter.latency(images).finally(() => images.dispose());
    const check = {
      interpreter: name,
      split,
      images: pairs.length,
      accuracy: theirs.accuracy,
      libraryAccuracy: ours.accuracy,
      agreement: pairs.filter((pair) => top(pair.theirs) === top(pair.ours)).length / pairs.length,
      maxDifference: Math.max(...pairs.flatMap((pair) => pair.theirs.map((p, j) => Math.abs(p - pair.ours[j])))),
      latency: median(seconds),
    };
    return { ...check, shortfall: shortfall(quantize, check) };
  } finally {
    interrupt.release();
    exported.dispose();
  }
}

/**
 * Writes the training images an int8 export calibrates on into `file`: decoded as the library decodes them,
 * raw uint8 at the input size (pixels 0..255, as the model takes them), at most CALIBRATION_IMAGES spread
 * over the training split (never validation or test). Returns the file.
 */
export async function writeCalibrationImages(data: ImageFolder, inputSize: number, file: string): Promise<string> {
  const train = data.files("train");
  const count = Math.min(train.length, CALIBRATION_IMAGES);
  const picked = Array.from({ length: count }, (_, i) => train[Math.floor((i * train.length) / count)]);
  fs.writeFileSync(file, new Uint8Array(0));
  let written = 0;
  for (let i = 0; i < picked.length; i += 32) {
    const { images, decoded } = await decodeBatch(picked.slice(i, i + 32), inputSize);
    fs.appendFileSync(file, Uint8Array.from((await images.data()) as Float32Array));
    images.dispose();
    written += decoded.length;
  }
  if (written === 0) throw new ImageDecodeError(`an int8 export calibrates on the training images, and ${data.dir} has ${train.length ? "none that can be read" : "none"}: export with quantize "dynamic" or "float16", or add training images.`);
  return file;
}
