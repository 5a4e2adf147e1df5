// loadInceptionV3: the network with weights from any source, and what a notebook asks of it:
// pooled features at a cut point, ImageNet classification, a summary of its blocks.
import { createHash } from "crypto";
import * as fs from "fs";
import * as path from "path";
import type { NamedTensorMap, Tensor2D } from "@tensorflow/tfjs-node";
import { Displayable, escapeHtml, Table } from "../display/display";
import { cachedDownload, digest, downloadable } from "../util/download";
import { batchesOf, type ImageInput, pathsOf, probabilitiesOf } from "./images";
import { defaultTopK, type Prediction, predictions } from "./predictions";
import { type Block, BLOCKS, buildInceptionV3, CUT_LAYERS, type CutLayer, layerFlops, maxInputSize, MIN_INPUT_SIZE, type Preprocessing } from "./inception";
import { type CompiledFunction, inferenceGraphs } from "../runtime/graph";
import { type PrecisionChoice, PRECISION_OPTIONS, type PrecisionOption, resolvePrecision } from "../runtime/precision";
import { checkOptions, OptionError, rule } from "../util/options";
import { tf } from "../runtime/tf";
import { decodeWeights, readKerasH5, readTfjsModel } from "./weight-files";

/**
 * Where the weights come from:
 * - "imagenet": the official Keras ImageNet weights, downloaded once into the cache folder;
 * - "bundled": the offline pretrained Inception-v3 shipped in the nsfwjs npm package;
 * - a path or URL of a Keras .h5 file or a tfjs model.json;
 * - null: random initialisation (to train from scratch).
 */
export type WeightsOption = "imagenet" | "bundled" | string | null;

export interface LoadOptions {
  weights?: WeightsOption;
  /** Keep the 1000-class ImageNet classifier (only with weights that have it). Default false. */
  includeTop?: boolean;
  /** Input side in pixels, 299 as trained; smaller (at least 75) is faster and fine for features. */
  inputSize?: number;
  /** Overrides how pixels are scaled for this source (rarely needed: each source knows its own). */
  preprocessing?: Preprocessing;
  /** Seed for random initialisation (weights: null). */
  seed?: number;
  /**
   * The precision features, classification and training on this network compute at (training options can
   * override it): "auto" (default) is bfloat16 on CPUs with AMX or AVX-512 BF16, float16 on GPUs with
   * tensor cores, float32 elsewhere; weights always stay float32.
   */
  precision?: PrecisionOption;
}

export interface WeightsSource {
  kind: "imagenet" | "bundled" | "keras-h5" | "tfjs" | "random";
  /** Identity of the exact weights, for cache keys: a content hash or a package version. */
  id: string;
  description: string;
  provenance: string;
  preprocessing: Preprocessing;
  /**
   * The `layer` the training options and features() cut at by default with these weights: where their
   * features transfer best. One name for one idea: the option, this default and RunInfo say `layer`
   * (its values are the type CutLayer).
   */
  layer: CutLayer;
  location?: string;
}

const KERAS_BASE = "https://storage.googleapis.com/tensorflow/keras-applications/inception_v3/";
const IMAGENET_FILES = {
  top: { file: "inception_v3_weights_tf_dim_ordering_tf_kernels.h5", md5: "9a0d58056eeedaa3f26cb7ebd46da564" },
  notop: { file: "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5", md5: "bcbd6486424b2319ff4ef7d526e38f63" },
};
const IMAGENET_CLASSES = { url: "https://storage.googleapis.com/download.tensorflow.org/data/imagenet_class_index.json", md5: "c2c37ea517e94d9795004a39431a14cb" };
const OFFLINE_HINT =
  'Offline? Use weights: "bundled" (a pretrained Inception-v3 that ships with the project), or a local copy: weights: "/path/to/inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5".';
/** The one account of the bundled weights' origin (README, "Weights", cites the training script). */
const BUNDLED_PROVENANCE =
  "Inception-v3 from the nsfwjs npm package (MIT): trained by its authors from the Keras ImageNet weights, " +
  "the stem to mixed5 frozen and everything from mixed6's conv2d_56 up to mixed10 fine-tuned for a 5-class content-moderation task " +
  "(GantMan/nsfw_model, train_fine_tune.py); weights quantized to 8 bits. A real pretrained network, but not the ImageNet one: " +
  "its top blocks compute moderation features, so the library cuts it at mixed7.";

const fileId = async (file: string) => `sha1:${await digest(file, "sha1")}`;

async function readImagenet(includeTop: boolean): Promise<{ weights: NamedTensorMap; source: WeightsSource }> {
  const { file, md5 } = includeTop ? IMAGENET_FILES.top : IMAGENET_FILES.notop;
  const base = process.env.INCEPTION_LAB_WEIGHTS_URL ?? KERAS_BASE;
  const local = await cachedDownload(base + file, file, { hash: `md5:${md5}`, subdir: "weights", offlineHint: OFFLINE_HINT });
  return {
    weights: await readKerasH5(local),
    source: {
      kind: "imagenet",
      id: `md5:${md5}`,
      description: "ImageNet (official Keras weights)",
      provenance: "Keras applications InceptionV3, trained on ImageNet-1k (Szegedy et al. 2016).",
      preprocessing: "inception",
      layer: "mixed10",
      location: local,
    },
  };
}

function readBundled(): { weights: NamedTensorMap; source: WeightsSource } {
  // nsfwjs' exports map hides its files; its main module sits in <package>/dist/cjs/.
  const packageDir = path.resolve(path.dirname(require.resolve("nsfwjs")), "..", "..");
  const dir = path.join(packageDir, "dist", "models", "inception_v3");
  const version: string = JSON.parse(fs.readFileSync(path.join(packageDir, "package.json"), "utf8")).version;
  const { weightsManifest } = require(path.join(dir, "model.min.js"));
  const group = weightsManifest[0];
  const shards = (group.paths as string[]).map((shard) => Buffer.from(require(path.join(dir, `${shard}.min.js`)) as string, "base64"));
  const data = Buffer.concat(shards);
  return {
    weights: decodeWeights(data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength), group.weights, "bundled weights (nsfwjs)"),
    source: {
      kind: "bundled",
      id: `nsfwjs@${version}`,
      description: `bundled (nsfwjs ${version}, offline)`,
      provenance: BUNDLED_PROVENANCE,
      preprocessing: "unit",
      // Its top blocks were fine-tuned for content moderation (BUNDLED_PROVENANCE): a linear probe of mixed7's
      // features beat mixed10's on every offline set measured (shared/notes/weights-and-data.md).
      layer: "mixed7",
      location: dir,
    },
  };
}

async function readWeights(weights: string, includeTop: boolean): Promise<{ weights: NamedTensorMap; source: WeightsSource }> {
  if (weights === "imagenet") return readImagenet(includeTop);
  if (weights === "bundled") return readBundled();
  const isUrl = /^https?:\/\//.test(weights);
  if (/\.json$/i.test(weights)) {
    return {
      weights: await readTfjsModel(weights),
      source: { kind: "tfjs", id: isUrl ? `url:${weights}` : await fileId(weights), description: `tfjs model ${weights}`, provenance: weights, preprocessing: "inception", layer: "mixed10", location: weights },
    };
  }
  if (/\.h5$/i.test(weights)) {
    const local = isUrl ? await cachedDownload(weights, path.basename(new URL(weights).pathname), { subdir: "weights" }) : weights;
    return {
      weights: await readKerasH5(local),
      source: { kind: "keras-h5", id: await fileId(local), description: `Keras weights ${path.basename(local)}`, provenance: weights, preprocessing: "inception", layer: "mixed10", location: local },
    };
  }
  throw new OptionError("weights", `weights: "${weights}" is not a source this library knows. Use "imagenet", "bundled", null (random), or a path/URL ending in .h5 or model.json.`);
}

/** Copies named weights into the model, checking that every weight is there with the right shape. */
function assignWeights(model: tf.LayersModel, weights: NamedTensorMap, source: string): void {
  const missing: string[] = [];
  for (const layer of model.layers) {
    if (layer.weights.length === 0) continue;
    const values = layer.weights.map((variable) => {
      const tensor = weights[variable.originalName];
      if (!tensor) {
        missing.push(variable.originalName);
        return null;
      }
      if (tensor.shape.join() !== variable.shape.join()) {
        throw new Error(
          `${source}: ${variable.originalName} has shape [${tensor.shape}], Inception-v3 needs [${variable.shape}]. ` +
            `These are weights of another network (or another Inception variant).`,
        );
      }
      return tensor;
    });
    if (values.every((v) => v !== null)) layer.setWeights(values as tf.Tensor[]);
  }
  if (missing.length > 0) {
    const found = [...new Set(Object.keys(weights).map((name) => name.split("/")[0]))];
    throw new Error(
      `${source}: not Inception-v3 weights: ${missing.length} weights are missing (${missing.slice(0, 4).join(", ")}, ...). ` +
        `The file has layers ${found.slice(0, 6).join(", ")}${found.length > 6 ? ", ..." : ""}.`,
    );
  }
}

/** Inception-v3 with its weights' source and preprocessing; `model` is the tfjs LayersModel. */
export class Inception extends Displayable {
  private readonly featureModels = new Map<CutLayer, tf.LayersModel>();
  /** Inference graphs by model and precision: features at each cut, the ImageNet classifier. */
  private readonly graphs = new Map<string, CompiledFunction>();
  private readonly fingerprints = new Map<CutLayer, { data: object[]; hash: string }>();

  constructor(
    readonly model: tf.LayersModel,
    readonly blockOf: Map<string, Block>,
    readonly source: WeightsSource,
    readonly inputSize: number,
    readonly classNames?: string[],
    /** The precision asked for at load time; training options may ask for another. */
    readonly precisionOption: PrecisionOption = "auto",
  ) {
    super();
  }

  /** The precision this network computes at, chosen for this machine (runtime/precision.ts). */
  get precision(): PrecisionChoice {
    return resolvePrecision(this.precisionOption);
  }

  /** The network to `layer` with pooling. */
  private featureModel(layer: CutLayer): tf.LayersModel {
    let model = this.featureModels.get(layer);
    if (!model) {
      const pooled = tf.layers.globalAveragePooling2d({ name: `${layer}_features` }).apply(this.model.getLayer(layer).output) as tf.SymbolicTensor;
      model = tf.model({ inputs: this.model.inputs, outputs: pooled });
      this.featureModels.set(layer, model);
    }
    return model;
  }

  /** `model`'s inference pass as a TensorFlow graph per batch shape at `precision` (runtime/graph.ts), kept for later calls. */
  private graphOf(name: string, model: tf.LayersModel, precision: PrecisionChoice): CompiledFunction {
    const key = `${name} ${precision.precision}`;
    let graph = this.graphs.get(key);
    if (!graph) this.graphs.set(key, (graph = inferenceGraphs(model, true, precision.precision)));
    return graph;
  }

  /**
   * Global-average-pooled features at a cut point (default `source.layer`, where these weights transfer best: mixed10, 2048 numbers per image, for ImageNet's), run as a
   * TensorFlow graph (`graph: false`: op by op, as tfjs runs models).
   */
  async features(images: ImageInput, options: { layer?: CutLayer; batchSize?: number; graph?: boolean; precision?: PrecisionOption } = {}): Promise<Tensor2D> {
    checkOptions(options, { layer: rule.oneOf(CUT_LAYERS, "not a cut point. Use one of"), batchSize: rule.whole(1), graph: rule.boolean(), precision: rule.oneOf(PRECISION_OPTIONS) }, "features");
    const { layer = this.source.layer, batchSize = 32, graph: asGraph = true } = options;
    const precision = resolvePrecision(options.precision ?? this.precisionOption, asGraph);
    const model = this.featureModel(layer);
    const graph = this.graphOf(layer, model, precision);
    const parts: tf.Tensor[] = [];
    try {
      for await (const batch of batchesOf(images, this.inputSize, batchSize)) {
        // One graph serves every batch size, the last smaller batch included.
        parts.push(tf.tidy(() => (asGraph ? graph.run([batch])[0] : (model.predict(batch) as tf.Tensor))));
        batch.dispose();
      }
      if (parts.length === 0) throw new Error("features: no images given.");
      return tf.concat(parts) as Tensor2D;
    } finally {
      tf.dispose(parts);
    }
  }

  /** Classes with probabilities, best first, per image (needs the top: ImageNet names with "imagenet"). */
  async classify(images: ImageInput, options: { topK?: number; batchSize?: number; precision?: PrecisionOption } = {}): Promise<Prediction[]> {
    checkOptions(options, { topK: rule.whole(1), batchSize: rule.whole(1), precision: rule.oneOf(PRECISION_OPTIONS) }, "classify");
    if (!this.blockOf.has("predictions")) {
      throw new Error('classify needs the ImageNet classifier: loadInceptionV3({ weights: "imagenet", includeTop: true }).');
    }
    const classes = (this.model.getLayer("predictions").outputShape as number[])[1];
    const { topK = defaultTopK(classes), batchSize = 32 } = options;
    const precision = resolvePrecision(options.precision ?? this.precisionOption);
    const graph = this.graphOf("classify", this.model, precision);
    const rows = await probabilitiesOf(images, this.inputSize, batchSize, (batch) => graph.run([batch])[0]);
    return predictions(rows, (index) => this.classNames?.[index] ?? `class ${index}`, topK, precision.precision, pathsOf(images));
  }

  /**
   * A content hash of the weights that features at `layer` depend on (every block up to it): two
   * networks with this fingerprint compute the same features there, also after weights were changed in place.
   */
  weightsFingerprint(layer: CutLayer): string {
    const blocks = new Set(BLOCKS.slice(0, BLOCKS.indexOf(layer) + 1));
    const weights = this.model.layers.filter((l) => blocks.has(this.blockOf.get(l.name)!)).flatMap((l) => l.weights);
    // tfjs never changes a tensor's data in place: every write (setWeights, training) gives a variable
    // new data. The same data objects therefore mean the same values, and the hash (31 ms at mixed7) is kept.
    const data = weights.map((w) => w.read().dataId);
    const known = this.fingerprints.get(layer);
    if (known && known.data.length === data.length && known.data.every((d, i) => d === data[i])) return known.hash;
    const hash = createHash("sha256");
    for (const w of weights) {
      const values = w.read().dataSync() as Float32Array;
      hash.update(w.originalName).update(new Uint8Array(values.buffer, values.byteOffset, values.byteLength));
    }
    const digest = hash.digest("hex");
    this.fingerprints.set(layer, { data, hash: digest });
    return digest;
  }

  /**
   * An independent copy (same weights, own variables): training the copy leaves this one as it is. At another
   * `inputSize` it is the same network for other images (Inception-v3's weights do not depend on the image side).
   */
  async clone(options: { inputSize?: number } = {}): Promise<Inception> {
    checkOptions(options, { inputSize: LOAD_RULES.inputSize }, "clone");
    const inputSize = options.inputSize ?? this.inputSize;
    const includeTop = this.blockOf.has("predictions") && inputSize === this.inputSize;
    const classes = includeTop ? (this.model.getLayer("predictions").outputShape as number[])[1] : undefined;
    // Built without random weights (most of a build's time), then given these: measured at 299 px,
    // 650 ms with random initialisation, the weight copy itself 2 ms (tfjs shares data until written).
    const { model, blockOf } = buildInceptionV3({ inputSize, includeTop, classes, preprocessing: this.source.preprocessing, randomWeights: false });
    model.setWeights(this.model.getWeights().slice(0, model.weights.length));
    return new Inception(model, blockOf, { ...this.source }, inputSize, includeTop ? this.classNames : undefined, this.precisionOption);
  }

  /** Blocks with output shapes, parameters (trainable / non-trainable) and forward FLOPs per image. */
  summary(): ModelSummary {
    return new ModelSummary(this);
  }

  toText(): string {
    const params = this.model.countParams();
    return `Inception-v3, ${this.source.description}, input ${this.inputSize}x${this.inputSize}, ${(params / 1e6).toFixed(1)}M parameters, computing in ${this.precision.precision} (${this.precision.reason})`;
  }

  toHTML(): string {
    return `<p><b>${escapeHtml(this.toText())}</b><br><small>${escapeHtml(this.source.provenance)}</small></p>` + this.summary().toHTML();
  }
}

export interface BlockRow {
  block: Block;
  outputShape: string;
  parameters: number;
  trainable: number;
  /** Batch norms' moving statistics: updated by training, never by a gradient. */
  nonTrainable: number;
  gflops: number;
}

export class ModelSummary extends Table {
  readonly blocks: BlockRow[];

  constructor(readonly inception: Inception) {
    const rows = new Map<Block, BlockRow>();
    for (const layer of inception.model.layers) {
      const block = inception.blockOf.get(layer.name);
      if (!block) continue;
      const row = rows.get(block) ?? { block, outputShape: "", parameters: 0, trainable: 0, nonTrainable: 0, gflops: 0 };
      for (const variable of layer.weights) {
        const size = variable.shape.reduce((a: number, b) => a * (b ?? 1), 1);
        row.parameters += size;
        if (layer.trainable && variable.trainable) row.trainable += size;
        else row.nonTrainable += size;
      }
      row.gflops += layerFlops(layer) / 1e9;
      row.outputShape = `[${(layer.outputShape as number[]).slice(1).join(", ")}]`;
      rows.set(block, row);
    }
    const blocks = BLOCKS.filter((b) => rows.has(b)).map((b) => rows.get(b)!);
    const total = (key: "parameters" | "trainable" | "nonTrainable" | "gflops") => blocks.reduce((sum, row) => sum + row[key], 0);
    super(
      // Keras' word for batch norms' moving statistics, which no gradient trains (not the frozen blocks of a fine-tune).
      ["block", "output", "parameters", "trainable", "non-trainable", "GFLOPs/image"],
      [
        ...blocks.map((r) => [r.block, r.outputShape, r.parameters, r.trainable, r.nonTrainable, Number(r.gflops.toFixed(3))]),
        ["total", "", total("parameters"), total("trainable"), total("nonTrainable"), Number(total("gflops").toFixed(2))],
      ],
      `Inception-v3 (${inception.source.description}), input ${inception.inputSize}x${inception.inputSize}`,
    );
    this.blocks = blocks;
  }
}

async function imagenetClassNames(): Promise<string[]> {
  const file = await cachedDownload(process.env.INCEPTION_LAB_CLASSES_URL ?? IMAGENET_CLASSES.url, "imagenet_class_index.json", {
    hash: `md5:${IMAGENET_CLASSES.md5}`,
    subdir: "weights",
    offlineHint: OFFLINE_HINT,
  });
  const index: Record<string, [string, string]> = JSON.parse(fs.readFileSync(file, "utf8"));
  return Array.from({ length: 1000 }, (_, i) => index[String(i)][1]);
}

/** Whether the official ImageNet weights are cached or can be downloaded now (the notebooks choose with it). */
export async function imagenetAvailable(includeTop = false): Promise<boolean> {
  const { file } = includeTop ? IMAGENET_FILES.top : IMAGENET_FILES.notop;
  return downloadable((process.env.INCEPTION_LAB_WEIGHTS_URL ?? KERAS_BASE) + file, file, "weights");
}

const LOAD_RULES = {
  weights: rule.orNull(rule.text('use "imagenet", "bundled", null (random), or a path/URL ending in .h5 or model.json.')),
  includeTop: rule.boolean(),
  inputSize: (v: unknown) => rule.whole(MIN_INPUT_SIZE, maxInputSize())(v) && `${rule.whole(MIN_INPUT_SIZE, maxInputSize())(v)!.replace(/\.$/, "")} (299 as trained; the most is what this machine's memory holds).`,
  preprocessing: rule.oneOf(["inception", "unit"]),
  seed: rule.whole(-Number.MAX_SAFE_INTEGER),
  precision: rule.oneOf(PRECISION_OPTIONS),
};

/** Builds Inception-v3 and loads its weights. Pixels in are always RGB 0..255, whatever the source. */
export async function loadInceptionV3(options: LoadOptions = {}): Promise<Inception> {
  checkOptions(options, LOAD_RULES, "loadInceptionV3"); // a bad option fails before any work
  const { weights = "imagenet", includeTop = false, inputSize = 299, seed } = options;
  if (weights === null) {
    if (includeTop) throw new OptionError("includeTop", "includeTop: random weights have no trained classifier; add your own head (the training functions do).");
    const { model, blockOf } = withSeed(seed, () => buildInceptionV3({ inputSize, preprocessing: options.preprocessing }));
    const source: WeightsSource = {
      kind: "random",
      id: `random:${seed ?? "unseeded"}`,
      description: "random initialisation",
      provenance: "Glorot-uniform convolutions, BatchNorm at identity: no pretraining.",
      preprocessing: options.preprocessing ?? "inception",
      layer: "mixed10",
    };
    return new Inception(model, blockOf, source, inputSize, undefined, options.precision);
  }
  const { weights: tensors, source } = await readWeights(weights, includeTop);
  try {
    if (options.preprocessing) source.preprocessing = options.preprocessing;
    const top = tensors["predictions/kernel"];
    if (includeTop && !top) {
      throw new OptionError("includeTop", `includeTop: ${source.description} has no ImageNet classifier (predictions layer). Use includeTop: false.`);
    }
    const classes = top?.shape[1] ?? 1000;
    const { model, blockOf } = buildInceptionV3({ inputSize, includeTop, classes, preprocessing: source.preprocessing, randomWeights: false });
    assignWeights(model, tensors, source.location ?? source.description);
    const classNames = includeTop && source.kind === "imagenet" ? await imagenetClassNames() : undefined;
    return new Inception(model, blockOf, source, inputSize, classNames, options.precision);
  } finally {
    tf.dispose(Object.values(tensors));
  }
}

/** Runs `build` with TensorFlow.js' random initialisers seeded, so a seeded model is reproducible. */
function withSeed<T>(seed: number | undefined, build: () => T): T {
  if (seed === undefined) return build();
  const original = Math.random;
  let state = seed >>> 0 || 1;
  // xorshift32: initialisers without their own seed draw from Math.random.
  Math.random = () => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0) / 2 ** 32;
  };
  try {
    return build();
  } finally {
    Math.random = original;
  }
}
