// A trained classifier: Inception-v3 cut at a layer, global average pooling, then the new head
// (dropout, a dense layer to one logit per class, softmax). It predicts, evaluates, saves and loads.
import * as fs from "fs";
import * as path from "path";
import { ImageFolder, SPLITS, type Split } from "../../data/image-folder";
import { Displayable } from "../../display/display";
import { decodeBatch, ImageDecodeError, thumbnail } from "../../network/decode";
import { type ImageInput, pathsOf, probabilitiesOf } from "../../network/images";
import { type CutLayer, CUT_LAYERS } from "../../network/inception";
import type { Inception } from "../../network/model";
import { loadModelFolder, writeTfjsModel } from "../../network/model-files";
import { defaultTopK, type Prediction, predictions } from "../../network/predictions";
import { inferenceGraphs } from "../../runtime/graph";
import { dropout } from "../../runtime/native-ops";
import { type Precision, type PrecisionChoice, precisionFor, PRECISION_OPTIONS, type PrecisionOption, resolvePrecision } from "../../runtime/precision";
import { tf } from "../../runtime/tf";
import { newVariable } from "../../runtime/variable";
import { MANIFEST, verifyFolder, writeAtomically, writeFolder } from "../../util/atomic";
import { checkOptions, OptionError, rule } from "../../util/options";
import { Evaluation } from "./evaluation";

/** The new classifier on top of the features; its layers can be applied to features or to the network. */
export class Head {
  readonly dropout: tf.layers.Layer;
  /** The dropout rate as a variable, so a recorded training step takes a new rate as an input. */
  readonly dropoutRate: tf.Variable;
  /** [seed, masks drawn]: each training step's mask follows from the run's seed alone (native-ops' dropout). */
  readonly dropoutSeed: tf.Variable;
  readonly dense: tf.layers.Layer;
  readonly softmax: tf.layers.Layer;

  constructor(
    classes: number,
    dropoutRate: number,
    /** The seed of the dropout masks and the dense layer's initial weights. */
    seed: number,
  ) {
    this.dropout = tf.layers.dropout({ rate: dropoutRate, seed, name: "head_dropout" });
    this.dropoutRate = newVariable(() => tf.scalar(dropoutRate));
    this.dropoutSeed = newVariable(() => tf.tensor1d([seed, 0], "int32"));
    // Same layer (it saves and loads as tfjs' Dropout), masks drawn by TensorFlow: see native-ops' dropout.
    this.dropout.call = (inputs, kwargs) => {
      const x = Array.isArray(inputs) ? inputs[0] : inputs;
      return kwargs.training ? dropout(x, this.dropoutRate as tf.Scalar, this.dropoutSeed) : x;
    };
    this.dense = tf.layers.dense({ units: classes, kernelInitializer: tf.initializers.glorotUniform({ seed }), name: "logits" });
    this.softmax = tf.layers.activation({ activation: "softmax", name: "probabilities" });
  }

  /** What a training step through the head reads and advances besides the layers' weights. */
  variables(): tf.Variable[] {
    return [this.dropoutRate, this.dropoutSeed];
  }

  dispose(): void {
    tf.dispose(this.variables());
  }

  /** Model from `input` through `features` and the head: one giving probabilities, one giving logits. */
  models(input: tf.SymbolicTensor, features: tf.SymbolicTensor): { model: tf.LayersModel; logitsModel: tf.LayersModel } {
    const logits = this.dense.apply(this.dropout.apply(features)) as tf.SymbolicTensor;
    const probabilities = this.softmax.apply(logits) as tf.SymbolicTensor;
    return { model: tf.model({ inputs: input, outputs: probabilities }), logitsModel: tf.model({ inputs: input, outputs: logits }) };
  }
}

/** Image -> probabilities and image -> logits, sharing the network's and the head's layers. */
export function attachHead(inception: Inception, layer: CutLayer, head: Head) {
  const pooled = tf.layers.globalAveragePooling2d({ name: "features" }).apply(inception.model.getLayer(layer).output) as tf.SymbolicTensor;
  return head.models(inception.model.inputs[0], pooled);
}

/** The head on cached features (for retraining and a fine-tune's warm-up) and on the network (for images), one set of layers. */
export function classifierModels(inception: Inception, layer: CutLayer, head: Head) {
  const width = (inception.model.getLayer(layer).outputShape as number[])[3];
  const featureInput = tf.input({ shape: [width], name: "bottleneck" });
  return { head: head.models(featureInput, featureInput), full: attachHead(inception, layer, head) };
}


export interface ClassifierInfo {
  classes: string[];
  inputSize: number;
  mode: string;
  layer: CutLayer;
  weights: string;
}

/** The class probabilities of image files: rows for those that decoded, and the others with the reason. */
export interface Scores {
  files: string[];
  probabilities: number[][];
  failed: { path: string; reason: string }[];
}

/** Decoded images (a batch of pixels 0..255) in, one row of class probabilities per image out; at once, or from another process (a TFLite interpreter). */
export type ImageProbabilities = (images: tf.Tensor4D) => tf.Tensor | Promise<tf.Tensor>;

/**
 * Class probabilities of image files (files that fail to decode are listed apart), and where it can, of decoded
 * images (`images`).
 */
export type Scorer = ((files: string[]) => Promise<Scores>) & { images?: ImageProbabilities; dispose?(): void };

/** Runs image files through `probabilities` (decoded pixels 0..255 in, one row per image out) in batches. */
export function batchScorer(inputSize: number, probabilities: ImageProbabilities, batchSize = 32): Scorer {
  const scorer: Scorer = async (files) => {
    const kept: string[] = [];
    const rows: number[][] = [];
    const failed: Scores["failed"] = [];
    for (let i = 0; i < files.length; i += batchSize) {
      const chunk = files.slice(i, i + batchSize);
      const { images, decoded, failed: bad } = await decodeBatch(chunk, inputSize);
      bad.forEach(({ index, reason }) => failed.push({ path: chunk[index], reason }));
      try {
        if (decoded.length > 0) {
          const output = await probabilities(images);
          rows.push(...((await output.array()) as number[][]));
          output.dispose();
          kept.push(...decoded.map((d) => chunk[d]));
        }
      } finally {
        images.dispose();
      }
    }
    return { files: kept, probabilities: rows, failed };
  };
  return Object.assign(scorer, { images: probabilities });
}

/** Runs image files through a model in batches, as a graph at `precision`; `dispose` frees the graph. */
export function imageScorer(model: tf.LayersModel, inputSize: number, precision: Precision, batchSize = 32): Scorer & { dispose(): void } {
  const graph = inferenceGraphs(model, true, precision);
  return Object.assign(batchScorer(inputSize, (images) => graph.run([images])[0], batchSize), { dispose: () => graph.dispose() });
}

/** The mistakes an evaluation keeps pictures of (worst first): what plot.misclassified shows at most. */
export const MISTAKES_SHOWN = 48;

/**
 * Frees a classifier's weights once nothing reaches its model any more: a notebook that re-runs a training
 * cell drops the old run, and tfjs would otherwise keep its variables (a whole network per fine-tune) for
 * the life of the kernel. `dispose()` frees them at once.
 */
const freeWhenUnreachable = new FinalizationRegistry<tf.Tensor[]>((tensors) => tf.dispose(tensors.filter((t) => !t.isDisposed)));

/** What predict takes besides the images. */
export interface PredictOptions {
  /** How many of the best classes each prediction lists (default 5, or every class when there are fewer). */
  topK?: number;
  /** The precision to run the network at (default the classifier's own, which a run's classifier took from the run). */
  precision?: PrecisionOption;
}

/** What evaluate takes: the data set (a run's own by default), the split, the precision. */
export interface EvaluateOptions {
  data?: ImageFolder;
  /** Default "test". */
  split?: Split;
  precision?: PrecisionOption;
}

export const PREDICT_RULES = { topK: rule.whole(1), precision: rule.oneOf(PRECISION_OPTIONS) };
export const EVALUATE_RULES = { data: rule.any(), split: rule.oneOf(SPLITS), precision: rule.oneOf(PRECISION_OPTIONS) };

export class Classifier extends Displayable {
  private readonly layersModel: tf.LayersModel | null;
  /** Scorers made so far, by precision: file scorers, and tensor scorers where the file scorer takes files only. */
  private readonly scorers = new Map<Precision, Scorer>();
  private readonly tensorScorers = new Map<Precision, Scorer>();
  private readonly owned: tf.Tensor[];
  private disposed = false;

  constructor(
    /** The network and head as tfjs layers; null for one that only predicts (a SavedModel's graph), given `scorerFor`. */
    model: tf.LayersModel | null,
    readonly info: ClassifierInfo,
    /** The precision it predicts at unless asked otherwise (runtime/precision.ts); a run's classifier computes as the run did. */
    readonly precision: PrecisionChoice = precisionFor("float32"),
    /** How this classifier scores files at a precision (default: its model as a graph); may refuse a precision; `dispose` frees what it scores with. */
    private readonly scorerFor?: ((precision: Precision) => Scorer) & { dispose?(): void },
    /**
     * The tensors this classifier owns and frees (default its model's weights; a run passes its own list, which
     * grows as it trains: optimizer state, and never the caller's network that a retrained head shares).
     */
    owned: tf.Tensor[] = model ? model.weights.map((w) => w.read()) : [],
  ) {
    super();
    if (!model && !scorerFor) throw new Error("Classifier: a classifier without layers needs a scorer.");
    this.layersModel = model;
    this.owned = owned;
    if (model) freeWhenUnreachable.register(model, this.owned, this);
  }

  /** Frees the weights this classifier owns (and its graphs); using it afterwards is an error. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    freeWhenUnreachable.unregister(this);
    tf.dispose(this.owned.filter((v) => !v.isDisposed));
    for (const scorer of new Set([...this.scorers.values(), ...this.tensorScorers.values()])) scorer.dispose?.();
    this.scorerFor?.dispose?.();
  }

  protected checkAlive(call: string): void {
    if (this.disposed) throw new Error(`${call}: this classifier was disposed (dispose()); train or load it again.`);
  }

  /** The classifier as tfjs layers (to save, export, train on or look inside). */
  get model(): tf.LayersModel {
    if (!this.layersModel) {
      throw new Error(
        `This classifier was read from ${this.info.weights}, which TensorFlow runs as a whole graph: it predicts and evaluates, ` +
          `but has no layers to save, export, train or look inside. Load the same run's Keras export (model.keras) or tfjs folder for that.`,
      );
    }
    return this.layersModel;
  }

  get classes(): string[] {
    return this.info.classes;
  }

  /**
   * The precision a call runs at: the one asked for, or the classifier's own. "auto" is the best one a
   * classifier has: for one without layers (a SavedModel, a TFLite model), the one it runs at.
   */
  private precisionOf(option: PrecisionOption | undefined): PrecisionChoice {
    return option === undefined || (option === "auto" && !this.layersModel) ? this.precision : resolvePrecision(option);
  }

  /** The file scorer at a precision, made once. */
  private scorer(precision: Precision): Scorer {
    let scorer = this.scorers.get(precision);
    if (!scorer) this.scorers.set(precision, (scorer = this.scorerFor ? this.scorerFor(precision) : imageScorer(this.model, this.info.inputSize, precision)));
    return scorer;
  }

  /** A scorer of decoded images at a precision: the file scorer's where it has one, else the model as a graph. */
  private tensorScorer(precision: Precision): Scorer {
    const files = this.scorer(precision);
    if (files.images) return files;
    let scorer = this.tensorScorers.get(precision);
    if (!scorer) this.tensorScorers.set(precision, (scorer = imageScorer(this.model, this.info.inputSize, precision)));
    return scorer;
  }

  /**
   * The classes of images, best first: file paths (JPEG, PNG, GIF, BMP), or decoded images as
   * inception.classify takes them (a tensor of pixels 0..255, a list of them, batches). One shape of
   * prediction everywhere: label, probability, the topK best, every class's probability, the path, and the
   * precision the network ran at.
   */
  async predict(images: ImageInput, options: PredictOptions = {}): Promise<Prediction[]> {
    this.checkAlive("predict");
    checkOptions(options, PREDICT_RULES, "predict");
    const topK = options.topK ?? defaultTopK(this.classes.length);
    const precision = this.precisionOf(options.precision);
    const className = (index: number) => this.classes[index];
    const paths = pathsOf(images);
    if (!paths) {
      if (images === undefined || images === null || (Array.isArray(images) && images.length === 0)) throw new OptionError("images", 'predict: give an image file path, a list of them (for example data.files("test")), or images as a tensor of pixels 0..255.');
      return predictions(await probabilitiesOf(images, this.info.inputSize, 32, this.tensorScorer(precision.precision).images!), className, topK, precision.precision);
    }
    for (const file of paths) {
      if (typeof file !== "string") throw new OptionError("images", `predict: ${String(file)} is not a file path.`);
      if (!fs.existsSync(file)) throw new OptionError("images", `${file}: no such image file.`);
      if (fs.statSync(file).isDirectory()) throw new OptionError("images", `${file} is a folder: give image files (data.files("test") lists a data set's).`);
    }
    const { files: kept, probabilities, failed } = await this.scorer(precision.precision)(paths);
    if (failed.length) throw new ImageDecodeError(`cannot decode ${failed.map((f) => `${f.path} (${f.reason})`).join(", ")}: not a readable JPEG, PNG, GIF or BMP image.`);
    return predictions(probabilities, className, topK, precision.precision, kept);
  }

  /**
   * Accuracy, per-class precision/recall, confusion matrix, misclassified files and top losses on a split of
   * `data`. Images that cannot be read are left out and counted; a split none of whose images can be read is an error.
   */
  async evaluate(options: EvaluateOptions = {}): Promise<Evaluation> {
    this.checkAlive("evaluate");
    checkOptions(options, EVALUATE_RULES, "evaluate");
    const { data, split = "test" } = options;
    if (!(data instanceof ImageFolder)) throw new OptionError("data", "evaluate: give data, the data set to evaluate on (imageFolder(...)): evaluate({ data, split: \"test\" }).");
    const precision = this.precisionOf(options.precision);
    const missingClasses = data.classes.filter((c) => !this.classes.includes(c));
    if (missingClasses.length) throw new Error(`The data set has classes this classifier does not know: ${missingClasses.join(", ")}.`);
    const examples = data.examples(split);
    if (examples.length === 0) throw new Error(`The ${split} split of ${data.dir} is empty: set a ${split}Percent above 0 in imageFolder().`);
    const labelOf = new Map(examples.map((e) => [e.path, this.classes.indexOf(data.classes[e.label])]));
    const { files, probabilities, failed } = await this.scorer(precision.precision)(examples.map((e) => e.path));
    failed.forEach((f) => data.reportBadFile(f.path, f.reason));
    if (files.length === 0) throw new ImageDecodeError(`${data.dir}: none of the ${examples.length} ${split} images could be read (${failed[0]?.reason ?? "unreadable"}), so there is nothing to evaluate; data.report() lists them.`);
    const evaluation = new Evaluation(this.classes, files, files.map((f) => labelOf.get(f)!), probabilities, split, precision, failed.length);
    // The worst mistakes as small pictures, read now, so plot.misclassified(evaluation) draws without reading files.
    for (const mistake of evaluation.misclassified.slice(0, MISTAKES_SHOWN)) evaluation.thumbnails.set(mistake.path, await thumbnail(mistake.path));
    return evaluation;
  }

  /**
   * Writes a tfjs model (model.json + weights.bin), labels.json and `extra` files into `dir`, all or
   * nothing. `dir` must be new, empty, or a folder this library wrote: it never replaces other files.
   */
  save(dir: string, extra: Record<string, string> = {}): Promise<string> {
    this.checkAlive("save");
    return writeFolder(dir, async (tmp) => {
      await writeTfjsModel(tmp, this.model);
      for (const [name, content] of Object.entries({ ...labelsFile(this.info), ...extra })) writeAtomically(path.join(tmp, name), content);
    });
  }

  toText(): string {
    return `Classifier (${this.info.mode}) of ${this.classes.length} classes: ${this.classes.join(", ")}; Inception-v3 cut at ${this.info.layer}, ${this.info.weights}`;
  }
}

/** A labels file as retrain.py and TensorFlow Lite's task libraries read it: one class per line. */
export const labelsText = (classes: string[]) => classes.join("\n") + "\n";

/** labels.json, as every folder the library writes holds it (saves, checkpoints, exports): the one writer of it. */
export function labelsFile(info: ClassifierInfo): Record<string, string> {
  return { "labels.json": JSON.stringify(info, null, 1) };
}

const labelsError = (file: string, what: string) => new Error(`${file} ${what}; it must hold {"classes": [one name per output], "inputSize": n, ...} as run.save() writes it.`);

/** A labels.json's class names (distinct strings, as many as `outputs` when given); throws naming the file and the problem. */
export function readClassNames(file: string, outputs?: number): Partial<ClassifierInfo> & { classes: string[] } {
  let info: Partial<ClassifierInfo>;
  try {
    info = JSON.parse(fs.readFileSync(file, "utf8"));
  } catch (error) {
    throw labelsError(file, `cannot be read (${(error as Error).message})`);
  }
  if (!info || !Array.isArray(info.classes) || info.classes.length === 0 || !info.classes.every((c) => typeof c === "string")) throw labelsError(file, "has no list of class names");
  if (outputs !== undefined && info.classes.length !== outputs) throw labelsError(file, `names ${info.classes.length} classes, but the model has ${outputs} outputs`);
  const twice = info.classes.find((name, i) => info.classes!.indexOf(name) !== i);
  if (twice !== undefined) throw labelsError(file, `names the class "${twice}" twice`);
  return info as Partial<ClassifierInfo> & { classes: string[] };
}

/** The class names given, or those of a labels.json beside `file`, checked before any work; null when neither. */
export function classNamesFor(file: string, classes: string[] | undefined): string[] | null {
  if (classes !== undefined) {
    if (!Array.isArray(classes) || !classes.every((c) => typeof c === "string")) throw new OptionError("classes", `classes: give a list of class names, e.g. ["cat", "dog"].`);
    const twice = classes.find((name, i) => classes.indexOf(name) !== i);
    if (twice !== undefined) throw new OptionError("classes", `classes: "${twice}" is given twice; give each class name once.`);
    return classes;
  }
  const beside = path.join(path.dirname(file), "labels.json");
  return fs.existsSync(beside) ? readClassNames(beside).classes : null;
}

/** labels.json, checked against the model it belongs to (its number of outputs, when known); throws naming the file and the problem. */
export function readLabels(file: string, outputs?: number): ClassifierInfo {
  const info = readClassNames(file, outputs);
  if (!(Number.isInteger(info.inputSize) && info.inputSize! >= 75)) throw labelsError(file, `has no valid inputSize (${JSON.stringify(info.inputSize)})`);
  if (info.layer !== undefined && !CUT_LAYERS.includes(info.layer)) throw labelsError(file, `names an unknown cut layer "${info.layer}"`);
  return { mode: "unknown", layer: "mixed10", weights: "unknown", ...info } as ClassifierInfo;
}

/**
 * Reads a classifier folder written by `save()` (or a run's checkpoint), after checking its files against
 * their manifest (a folder from elsewhere, without one, is checked for shape only).
 */
export async function readClassifierFolder(dir: string, precision: PrecisionChoice = precisionFor("float32")): Promise<Classifier> {
  const labels = path.join(dir, "labels.json");
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) throw new Error(`${dir}: no such folder; give a folder written by run.save(dir).`);
  if (!fs.existsSync(labels)) throw new Error(`${dir}: no labels.json here; expected a folder written by run.save(dir).`);
  if (fs.existsSync(path.join(dir, MANIFEST))) verifyFolder(dir);
  const model = await loadModelFolder(dir);
  const outputs = (model.outputs[0].shape as number[])[1];
  return new Classifier(model, readLabels(labels, outputs), precision);
}
