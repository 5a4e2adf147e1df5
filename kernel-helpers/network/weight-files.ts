// Reading weights from files into one shape: a map "layer/weight" -> tensor, with Keras-2 layer names
// (conv2d_1, batch_normalization_1, ...). Readers: Keras HDF5 (the official Keras-2 weight files and Keras 3
// .h5 models), a tfjs model.json, and in-memory tfjs artifacts.
import * as fs from "fs";
import * as path from "path";
import type { io } from "@tensorflow/tfjs-core";
import type { NamedTensorMap } from "@tensorflow/tfjs-node";
import { tf } from "../runtime/tf";

// h5wasm is ESM-only; tslab and ts-node compile to CommonJS, which would turn import() into require().
const importEsm = new Function("specifier", "return import(specifier)") as (specifier: string) => Promise<any>;

const HDF5_SIGNATURE = Buffer.from([0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a]);

function hasHdf5Signature(file: string): boolean {
  // The signature sits at 0, 512, 1024, ... (after an optional user block).
  const fd = fs.openSync(file, "r");
  try {
    const size = fs.fstatSync(fd).size;
    const buffer = Buffer.alloc(8);
    for (let offset = 0; offset + 8 <= size && offset <= 1 << 20; offset = offset === 0 ? 512 : offset * 2) {
      fs.readSync(fd, buffer, 0, 8, offset);
      if (buffer.equals(HDF5_SIGNATURE)) return true;
    }
    return false;
  } finally {
    fs.closeSync(fd);
  }
}

const asStrings = (value: unknown): string[] =>
  (Array.isArray(value) ? value : ArrayBuffer.isView(value) ? Array.from(value as unknown as ArrayLike<unknown>) : [value]).map((v) =>
    String(v).replace(/\0+$/, ""),
  );

/** Reads every weight of a Keras HDF5 file. */
export async function readKerasH5(file: string): Promise<NamedTensorMap> {
  if (!fs.existsSync(file)) throw new Error(`${file}: no such file. Check the path (relative paths start at the notebook's folder).`);
  if (!hasHdf5Signature(file)) {
    throw new Error(`${file}: not an HDF5 file (no HDF5 signature). Expected a Keras .h5 weight file; is it a partial download or another format?`);
  }
  const h5wasm = (await importEsm("h5wasm/node")).default;
  await h5wasm.ready;
  let h5: any;
  try {
    h5 = new h5wasm.File(file, "r");
  } catch (error) {
    throw new Error(`${file}: the HDF5 library cannot open it (${(error as Error).message}); the file is probably truncated or damaged: download it again.`);
  }
  try {
    const weights: NamedTensorMap = {};
    const read = (path: string, name: string) => {
      const dataset = h5.get(path);
      if (!dataset || dataset.shape == null) throw new Error(`${file}: ${path} is missing or not an array; the file is damaged or not a Keras weight file.`);
      let values: ArrayLike<number>;
      try {
        values = dataset.value;
      } catch (error) {
        throw new Error(`${file}: cannot read ${path} (${(error as Error).message}); the file is probably truncated: download it again.`);
      }
      weights[name] = tf.tensor(Float32Array.from(values), dataset.shape as number[], "float32");
    };
    const keys: string[] = h5.keys();
    if (keys.includes("layers") && !h5.attrs["layer_names"]) {
      // Keras 3 .weights.h5 stores layers under internal names that do not follow the model's layers.
      throw new Error(
        `${file}: a Keras 3 .weights.h5 file, which does not record layer names. ` +
          `In Python, save the model with model.save("inception.h5") and load that file instead.`,
      );
    }
    const root = keys.includes("model_weights") ? h5.get("model_weights") : h5;
    const layerNames = root.attrs["layer_names"];
    if (!layerNames) throw new Error(`${file}: an HDF5 file, but not a Keras weight file (no layer_names attribute).`);
    for (const layer of asStrings(layerNames.value)) {
      const group = root.get(layer);
      for (const weightName of asStrings(group?.attrs["weight_names"]?.value ?? [])) {
        read(`${group.path}/${weightName}`, `${layer}/${weightName.split("/").pop()!.replace(/:\d+$/, "")}`);
      }
    }
    return toKeras2Names(weights);
  } catch (error) {
    throw error instanceof Error && error.message.startsWith(file)
      ? error
      : new Error(`${file}: cannot read Keras weights (${(error as Error).message}); the file is damaged or truncated: download or export it again.`);
  } finally {
    h5.close();
  }
}

/** Keras 3 numbers auto-named layers from conv2d, conv2d_1, ...; Keras 2 (and this library) from conv2d_1. */
export function toKeras2Names(weights: NamedTensorMap): NamedTensorMap {
  if (!Object.keys(weights).some((name) => name.startsWith("conv2d/"))) return weights;
  const renamed: NamedTensorMap = {};
  for (const [name, tensor] of Object.entries(weights)) {
    const keras2 = name.replace(/^(conv2d|batch_normalization|dense)(?:_(\d+))?\//, (_, kind, n) => `${kind}_${n === undefined ? 1 : Number(n) + 1}/`);
    renamed[keras2] = tensor;
  }
  return renamed;
}

/**
 * Refuses a local model.json whose weightsManifest names files outside its folder (`../other/weights.bin`,
 * an absolute path): a model reads only the shards beside it. Other problems are left to the loader.
 */
export function checkWeightPaths(modelJson: string): void {
  let manifest: unknown;
  try {
    manifest = JSON.parse(fs.readFileSync(modelJson, "utf8"))?.weightsManifest;
  } catch {
    return;
  }
  const folder = path.dirname(path.resolve(modelJson));
  const paths = Array.isArray(manifest) ? manifest.flatMap((group) => (Array.isArray(group?.paths) ? group.paths : [])) : [];
  const outside = paths.filter((p: unknown) => typeof p !== "string" || path.isAbsolute(p) || /^[a-z][a-z0-9+.-]*:/i.test(p) || path.relative(folder, path.resolve(folder, p)).startsWith(".."));
  if (outside.length > 0) {
    throw new Error(
      `${modelJson}: its weightsManifest names weight files outside its folder (${outside.slice(0, 3).map(String).join(", ")}); ` +
        `a model reads only the files beside its model.json: put the shards there and list them by name.`,
    );
  }
}

/** Reads the weights of a tfjs model (model.json plus its shards) from a path or URL. */
export async function readTfjsModel(location: string): Promise<NamedTensorMap> {
  const isUrl = /^https?:\/\//.test(location);
  if (!isUrl) checkWeightPaths(location.replace(/^file:\/\//, ""));
  const handler = isUrl ? tf.io.http(location) : tf.io.fileSystem(location.replace(/^file:\/\//, ""));
  let artifacts: io.ModelArtifacts;
  try {
    artifacts = await handler.load!();
  } catch (error) {
    throw new Error(`${location}: cannot load the tfjs model (${(error as Error).message}). Expected a model.json with its weight shards beside it.`);
  }
  if (!artifacts.weightSpecs || !artifacts.weightData) throw new Error(`${location}: the model.json lists no weights.`);
  return decodeWeights(artifacts.weightData, artifacts.weightSpecs, location);
}

export function decodeWeights(data: io.WeightData, specs: io.WeightsManifestEntry[], source: string): NamedTensorMap {
  try {
    return toKeras2Names(tf.io.decodeWeights(data, specs));
  } catch (error) {
    throw new Error(`${source}: the weight data does not match its manifest (${(error as Error).message}); a shard is missing or truncated.`);
  }
}
