// A trained classifier: Inception-v3 cut at a layer, global average pooling, then the new head
// (dropout, a dense layer to one logit per class, softmax). It predicts, evaluates, saves and loads.
import * as fs from "fs";
import * as path from "path";
import { decodeBatch } from "../network/decode";
import { Displayable } from "../display/display";
import { Evaluation } from "./evaluation";
import type { ImageFolder, Split } from "../data/image-folder";
import type { CutLayer } from "../network/inception";
import type { Inception } from "../network/model";
import { dropout } from "../runtime/native-ops";
import { tf } from "../runtime/tf";
import { saveAtomically } from "./loop";

/** The new classifier on top of the features; its layers can be applied to features or to the network. */
export class Head {
  readonly dropout: tf.layers.Layer;
  readonly dense: tf.layers.Layer;
  readonly softmax: tf.layers.Layer;

  constructor(classes: number, dropoutRate: number, seed: number) {
    this.dropout = tf.layers.dropout({ rate: dropoutRate, seed, name: "head_dropout" });
    // Same layer (it saves and loads as tfjs' Dropout), masks drawn by TensorFlow: see native-ops' dropout.
    this.dropout.call = (inputs, kwargs) => {
      const x = Array.isArray(inputs) ? inputs[0] : inputs;
      return kwargs.training && dropoutRate > 0 ? dropout(x, dropoutRate, seed) : x;
    };
    this.dense = tf.layers.dense({ units: classes, kernelInitializer: tf.initializers.glorotUniform({ seed }), name: "logits" });
    this.softmax = tf.layers.activation({ activation: "softmax", name: "probabilities" });
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

export interface Prediction {
  path: string;
  label: string;
  probability: number;
  /** Probability of every class, in `classes` order. */
  probabilities: number[];
}

export interface ClassifierInfo {
  classes: string[];
  inputSize: number;
  mode: string;
  layer: CutLayer;
  weights: string;
}

type Scorer = (files: string[]) => Promise<{ files: string[]; probabilities: number[][] }>;

/** Runs image files through a model in batches (failed files are left out). */
export function imageScorer(model: tf.LayersModel, inputSize: number, batchSize = 32): Scorer {
  return async (files) => {
    const kept: string[] = [];
    const probabilities: number[][] = [];
    for (let i = 0; i < files.length; i += batchSize) {
      const chunk = files.slice(i, i + batchSize);
      const { images, decoded } = await decodeBatch(chunk, inputSize);
      if (decoded.length > 0) {
        const output = model.predict(images) as tf.Tensor2D;
        probabilities.push(...((await output.array()) as number[][]));
        output.dispose();
        kept.push(...decoded.map((d) => chunk[d]));
      }
      images.dispose();
    }
    return { files: kept, probabilities };
  };
}

export class Classifier extends Displayable {
  constructor(
    readonly model: tf.LayersModel,
    readonly info: ClassifierInfo,
    protected readonly score: Scorer = imageScorer(model, info.inputSize),
  ) {
    super();
  }

  get classes(): string[] {
    return this.info.classes;
  }

  /** Labels for image files, best class first. */
  async predict(paths: string | string[]): Promise<Prediction[]> {
    const files = typeof paths === "string" ? [paths] : paths;
    for (const file of files) if (!fs.existsSync(file)) throw new Error(`${file}: no such image file.`);
    const { files: kept, probabilities } = await this.score(files);
    const missing = files.filter((f) => !kept.includes(f));
    if (missing.length) throw new Error(`cannot decode ${missing.join(", ")}: not a readable JPEG, PNG, GIF or BMP image.`);
    return kept.map((file, i) => {
      const p = probabilities[i];
      const best = p.indexOf(Math.max(...p));
      return { path: file, label: this.classes[best], probability: p[best], probabilities: p };
    });
  }

  /** Accuracy, per-class precision/recall, confusion matrix, misclassified files and top losses on a split. */
  async evaluate(data: ImageFolder, split: Split = "test"): Promise<Evaluation> {
    const missingClasses = data.classes.filter((c) => !this.classes.includes(c));
    if (missingClasses.length) throw new Error(`The data set has classes this classifier does not know: ${missingClasses.join(", ")}.`);
    const examples = data.examples(split);
    if (examples.length === 0) throw new Error(`The ${split} split of ${data.dir} is empty: set a ${split}Percent above 0 in imageFolder().`);
    const labelOf = new Map(examples.map((e) => [e.path, this.classes.indexOf(data.classes[e.label])]));
    const { files, probabilities } = await this.score(examples.map((e) => e.path));
    return new Evaluation(this.classes, files, files.map((f) => labelOf.get(f)!), probabilities, split);
  }

  /** Writes a tfjs model (model.json + weights) and labels.json into `dir`, atomically. */
  async save(dir: string): Promise<string> {
    const target = path.resolve(dir);
    fs.mkdirSync(path.dirname(target), { recursive: true });
    await saveAtomically(target, this.model, { "labels.json": JSON.stringify(this.info, null, 1) });
    return target;
  }

  toText(): string {
    return `Classifier (${this.info.mode}) of ${this.classes.length} classes: ${this.classes.join(", ")}; Inception-v3 cut at ${this.info.layer}, ${this.info.weights}`;
  }
}

/** Loads a classifier written by `save()` (or a run's checkpoint). */
export async function loadClassifier(dir: string): Promise<Classifier> {
  const labels = path.join(dir, "labels.json");
  if (!fs.existsSync(labels)) throw new Error(`${dir}: no labels.json here; expected a folder written by run.save(dir).`);
  require("../network/batch-norm"); // registers the BatchNorm layer class the saved model uses
  const model = await tf.loadLayersModel(`file://${path.resolve(dir, "model.json")}`);
  return new Classifier(model, JSON.parse(fs.readFileSync(labels, "utf8")));
}
