// A tfjs model as files (model.json + weights.bin, the layout `model.save("file://…")` writes and
// `tf.loadLayersModel("file://…")` reads), written by this library's own file code: so the write goes
// through the atomic folder writer, and a full disk fails cleanly instead of inside tfjs' own writer.
import * as fs from "fs";
import * as path from "path";
import { tf } from "../runtime/tf";
import { checkWeightPaths } from "./weight-files";

/** Writes `model` as model.json and weights.bin into the existing folder `dir`. */
export async function writeTfjsModel(dir: string, model: tf.LayersModel): Promise<void> {
  await model.save(
    tf.io.withSaveHandler(async (artifacts) => {
      const weights = artifacts.weightData instanceof ArrayBuffer ? artifacts.weightData : new tf.io.CompositeArrayBuffer(artifacts.weightData).slice();
      fs.writeFileSync(path.join(dir, "weights.bin"), Buffer.from(weights ?? new ArrayBuffer(0)));
      const modelJson = {
        modelTopology: artifacts.modelTopology,
        format: artifacts.format,
        generatedBy: artifacts.generatedBy,
        convertedBy: artifacts.convertedBy,
        weightsManifest: [{ paths: ["weights.bin"], weights: artifacts.weightSpecs }],
      };
      fs.writeFileSync(path.join(dir, "model.json"), JSON.stringify(modelJson));
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: "JSON" } };
    }),
  );
}

/**
 * Reads a model folder written by writeTfjsModel or `model.save("file://…")`, naming the folder in errors;
 * weights named outside the folder are refused.
 */
export async function loadModelFolder(dir: string): Promise<tf.LayersModel> {
  const modelJson = path.resolve(dir, "model.json");
  checkWeightPaths(modelJson);
  try {
    return await tf.loadLayersModel(`file://${modelJson}`);
  } catch (error) {
    throw new Error(`${dir}: cannot load the model (${(error as Error).message}); model.json or weights.bin is damaged or incomplete.`);
  }
}
