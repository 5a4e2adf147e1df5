// A trained classifier: Inception-v3 cut at a layer, global average pooling, then the new head
// (dropout, a dense layer to one logit per class, softmax). It predicts, evaluates, saves and loads.
import * as fs from "fs";
import * as path from "path";
import { decodeBatch, thumbnail } from "../network/decode";
import { Displayable } from "../display/display";
import { type ImageInput, pathsOf, probabilitiesOf } from "../network/images";
import { type Prediction, predictions } from "../network/predictions";
import { Evaluation } from "./evaluation";
import type { ImageFolder, Split } from "../data/image-folder";
import { type CutLayer, CUT_LAYERS } from "../network/inception";
import type { Inception } from "../network/model";
import { inferenceGraphs } from "../runtime/graph";
import { dropout } from "../runtime/native-ops";
import type { Precision } from "../runtime/precision";
import { tf } from "../runtime/tf";
import { newVariable } from "../runtime/variable";
import { loadModelFolder, writeTfjsModel } from "../network/model-files";
import { MANIFEST, verifyFolder, writeAtomically, writeFolder } from "../util/atomic";

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

/**
 * Class probabilities of image files (files that fail to decode are left out), and where it can, of decoded
 * images (`images`: a batch of pixels 0..255 in, one row per image out).
 */
type Scorer = ((files: string[]) => Promise<{ files: string[]; probabilities: number[][] }>) & { images?: (batch: tf.Tensor4D) => tf.Tensor; dispose?(): void };

/** Runs image files through `probabilities` (decoded pixels 0..255 in, one row per image out) in batches; failed files are left out. */
export function batchScorer(inputSize: number, probabilities: (images: tf.Tensor4D) => tf.Tensor, batchSize = 32): Scorer {
  const scorer: Scorer = async (files) => {
    const kept: string[] = [];
    const rows: number[][] = [];
    for (let i = 0; i < files.length; i += batchSize) {
      const chunk = files.slice(i, i + batchSize);
      const { images, decoded } = await decodeBatch(chunk, inputSize);
      if (decoded.length > 0) {
        const output = probabilities(images);
        rows.push(...((await output.array()) as number[][]));
        output.dispose();
        kept.push(...decoded.map((d) => chunk[d]));
      }
      images.dispose();
    }
    return { files: kept, probabilities: rows };
  };
  return Object.assign(scorer, { images: probabilities });
}

/** Runs image files through a model in batches, as a graph at `precision` (failed files are left out); `dispose` frees the graph. */
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

export class Classifier extends Displayable {
  protected readonly score: Scorer;
  private readonly layersModel: tf.LayersModel | null;
  /** Scores decoded images, where `score` reads files only (a retraining's scorer reads cached features). */
  private tensorScorer: Scorer | null = null;
  private readonly owned: tf.Tensor[];
  private disposed = false;

  constructor(
    /** The network and head as tfjs layers; null for one that only predicts (a SavedModel's graph), given `score`. */
    model: tf.LayersModel | null,
    readonly info: ClassifierInfo,
    /** The precision it predicts at (runtime/precision.ts); a run's classifier computes as the run did. */
    readonly precision: Precision = "float32",
    score?: Scorer,
    /**
     * The tensors this classifier owns and frees (default its model's weights; a run passes its own list, which
     * grows as it trains: optimizer state, and never the caller's network that a retrained head shares).
     */
    owned: tf.Tensor[] = model ? model.weights.map((w) => w.read()) : [],
  ) {
    super();
    if (!model && !score) throw new Error("Classifier: a classifier without layers needs a scorer.");
    this.layersModel = model;
    this.score = score ?? imageScorer(model!, info.inputSize, precision);
    this.owned = owned;
    if (model) freeWhenUnreachable.register(model, this.owned, this);
  }

  /** Frees the weights this classifier owns (and its graphs); using it afterwards is an error. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    freeWhenUnreachable.unregister(this);
    tf.dispose(this.owned.filter((v) => !v.isDisposed));
    this.score.dispose?.();
    if (this.tensorScorer !== this.score) this.tensorScorer?.dispose?.();
  }

  protected checkAlive(): void {
    if (this.disposed) throw new Error("This classifier was disposed (dispose()); train or load it again.");
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

  /** Labels for image files, best class first. */
  /**
   * The classes of images, best first: file paths (JPEG, PNG, GIF, BMP), or decoded images as
   * inception.classify takes them (a tensor of pixels 0..255, a list of them, batches). One shape of
   * prediction everywhere: label, probability, the topK best, every class's probability, and the path.
   */
  async predict(images: ImageInput, options: { topK?: number } = {}): Promise<Prediction[]> {
    this.checkAlive();
    const topK = options.topK ?? Math.min(5, this.classes.length);
    const className = (index: number) => this.classes[index];
    const paths = pathsOf(images);
    if (!paths) {
      if (images === undefined || images === null || (Array.isArray(images) && images.length === 0)) throw new Error("predict: give an image file path, a list of them (for example data.files(\"test\")), or images as a tensor of pixels 0..255.");
      this.tensorScorer ??= this.score.images ? this.score : imageScorer(this.model, this.info.inputSize, this.precision);
      return predictions(await probabilitiesOf(images, this.info.inputSize, 32, this.tensorScorer.images!), className, topK);
    }
    const files = paths;
    for (const file of files) {
      if (typeof file !== "string") throw new Error(`predict: ${String(file)} is not a file path.`);
      if (!fs.existsSync(file)) throw new Error(`${file}: no such image file.`);
      if (fs.statSync(file).isDirectory()) throw new Error(`${file} is a folder: give image files (data.files("test") lists a data set's).`);
    }
    const { files: kept, probabilities } = await this.score(files);
    const missing = files.filter((f) => !kept.includes(f));
    if (missing.length) throw new Error(`cannot decode ${missing.join(", ")}: not a readable JPEG, PNG, GIF or BMP image.`);
    return predictions(probabilities, className, topK, kept);
  }

  /** Accuracy, per-class precision/recall, confusion matrix, misclassified files and top losses on a split. */
  async evaluate(data: ImageFolder, split: Split = "test"): Promise<Evaluation> {
    this.checkAlive();
    const missingClasses = data.classes.filter((c) => !this.classes.includes(c));
    if (missingClasses.length) throw new Error(`The data set has classes this classifier does not know: ${missingClasses.join(", ")}.`);
    const examples = data.examples(split);
    if (examples.length === 0) throw new Error(`The ${split} split of ${data.dir} is empty: set a ${split}Percent above 0 in imageFolder().`);
    const labelOf = new Map(examples.map((e) => [e.path, this.classes.indexOf(data.classes[e.label])]));
    const { files, probabilities } = await this.score(examples.map((e) => e.path));
    const evaluation = new Evaluation(this.classes, files, files.map((f) => labelOf.get(f)!), probabilities, split);
    // The worst mistakes as small pictures, read now, so plot.misclassified(evaluation) draws without reading files.
    for (const mistake of evaluation.misclassified.slice(0, MISTAKES_SHOWN)) evaluation.thumbnails.set(mistake.path, await thumbnail(mistake.path));
    return evaluation;
  }

  /**
   * Writes a tfjs model (model.json + weights.bin), labels.json and `extra` files into `dir`, all or
   * nothing. `dir` must be new, empty, or a folder this library wrote: it never replaces other files.
   */
  save(dir: string, extra: Record<string, string> = {}): Promise<string> {
    this.checkAlive();
    return writeFolder(dir, async (tmp) => {
      await writeTfjsModel(tmp, this.model);
      for (const [name, content] of Object.entries({ "labels.json": JSON.stringify(this.info, null, 1), ...extra })) writeAtomically(path.join(tmp, name), content);
    });
  }

  toText(): string {
    return `Classifier (${this.info.mode}) of ${this.classes.length} classes: ${this.classes.join(", ")}; Inception-v3 cut at ${this.info.layer}, ${this.info.weights}`;
  }
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
export async function readClassifierFolder(dir: string, precision: Precision = "float32"): Promise<Classifier> {
  const labels = path.join(dir, "labels.json");
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) throw new Error(`${dir}: no such folder; give a folder written by run.save(dir).`);
  if (!fs.existsSync(labels)) throw new Error(`${dir}: no labels.json here; expected a folder written by run.save(dir).`);
  if (fs.existsSync(path.join(dir, MANIFEST))) verifyFolder(dir);
  const model = await loadModelFolder(dir);
  const outputs = (model.outputs[0].shape as number[])[1];
  return new Classifier(model, readLabels(labels, outputs), precision);
}
