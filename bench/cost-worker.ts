// The cost model against real runs, the library's side (bench.ts runs it): throughput measured at 299 px on
// this machine, then a retraining, a fine-tune from mixed7 and a full fine-tune of the same images, each
// predicted from that throughput and timed. test/cost.test.ts only checks a factor of 2 (CI machines are
// loaded); this is the precise figure. Prints one JSON line per run. usage: cost-worker.ts DATA_DIR
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { fineTune, imageFolder, loadInceptionV3, measureThroughput, retrainFinalLayer } from "inception-lab";
import { predictRun, type RunShape } from "../kernel-helpers/lab/cost-model";
import type { TrainingRun } from "../kernel-helpers/train/modes/run";

(async () => {
  const data = await imageFolder(process.argv[2], { minImagesPerClass: 1 });
  const classes = data.classes.length;
  const inception = await loadInceptionV3({ weights: "bundled", inputSize: 299 });
  const batchSize = 16;
  const throughput = await measureThroughput(inception, { batchSize, classes, steps: 4 });
  const images = { trainImages: data.files("train").length, validationImages: data.files("validation").length };
  const features = fs.mkdtempSync(path.join(os.tmpdir(), "bench-cost-"));
  // Each run computes its own features (a first run, as the model predicts with featuresCached unset).
  const options = (name: string) => ({ progress: false, liveChart: false, batchSize, cacheDir: path.join(features, name) });
  const runs: [RunShape, () => Promise<TrainingRun>][] = [
    [{ mode: "retrain-final-layer", ...images, epochs: 30 }, () => retrainFinalLayer(inception, data, { ...options("retrain"), epochs: 30 })],
    [{ mode: "fine-tune", unfreezeFrom: "mixed7", ...images, epochs: 3, warmupEpochs: 1 }, () => fineTune(inception, data, { ...options("top"), epochs: 3, warmupEpochs: 1, unfreezeFrom: "mixed7" })],
    [{ mode: "fine-tune", unfreezeFrom: "all", ...images, epochs: 2, warmupEpochs: 1 }, () => fineTune(inception, data, { ...options("all"), epochs: 2, warmupEpochs: 1, unfreezeFrom: "all" })],
  ];
  for (const [shape, train] of runs) {
    const predicted = predictRun(throughput, shape);
    const run = await train();
    console.log(JSON.stringify({ mode: shape.mode, unfreezeFrom: shape.unfreezeFrom, epochs: shape.epochs, precision: run.info.precision.precision, predicted: predicted.seconds, parts: predicted.parts, measured: run.info.seconds }));
    run.dispose();
  }
  fs.rmSync(features, { recursive: true, force: true });
})();
