// The cost model must tell the truth about a real run: from throughput measured on this machine and the
// run's own images and epochs, its prediction lands within a factor of 2 of the run's wall time. The bound
// is loose because the test suite runs on shared, noisy machines: alone, the ratio is 0.89-0.92; with other
// work on the machine, a fine-tune measured 10.07 s against 7.59 s predicted (0.75), as the load changed
// between measuring throughput and training. A model off by 2x or more still fails; the precise figure
// is the bench's (npm run bench).
import { test } from "node:test";
import * as assert from "node:assert/strict";
import * as path from "path";
import { fineTune, loadInceptionV3, measureThroughput, retrainFinalLayer, syntheticShapes } from "inception-lab";
import { predictRun } from "../kernel-helpers/lab/cost-model";
import { graphStats } from "../kernel-helpers/runtime/graph";
import { scratch } from "./helpers";

process.env.INCEPTION_LAB_CACHE = scratch("cost-cache");

test("predicted seconds of a fine-tune and a retraining are within a factor of 2 of their measured wall time", async (t) => {
  const data = await syntheticShapes({ classes: 3, perClass: 50, imageSize: 96, seed: 6, dir: path.join(scratch("cost-data"), "set") });
  // At the network's precision ("auto"), as measureThroughput and the runs both take it.
  const inception = await loadInceptionV3({ weights: "bundled", inputSize: 96 });
  const throughput = await measureThroughput(inception, { batchSize: 8, classes: 3, steps: 4 });
  const shape = { trainImages: data.files("train").length, validationImages: data.files("validation").length, epochs: 2, warmupEpochs: 1 };
  const recorded = graphStats.recorded;
  const options = { progress: false, liveChart: false, epochs: 2, warmupEpochs: 1, batchSize: 8 };
  const tuned = await fineTune(inception, data, { ...options, cacheDir: scratch("cost-features-1") });
  const { warmupEpochs: _, ...retrainOptions } = options;
  const retrained = await retrainFinalLayer(inception, data, { ...retrainOptions, cacheDir: scratch("cost-features-2") });
  assert.equal(graphStats.recorded, recorded, "the runs found every graph measureThroughput recorded");
  for (const [run, predicted] of [
    [tuned, predictRun(throughput, { mode: "fine-tune", ...shape })],
    [retrained, predictRun(throughput, { mode: "retrain-final-layer", ...shape })],
  ] as const) {
    const ratio = predicted.seconds / run.info.seconds;
    t.diagnostic(`${run.mode}: predicted ${predicted.seconds.toFixed(2)} s (${JSON.stringify(predicted.parts)}), measured ${run.info.seconds.toFixed(2)} s (features ${run.info.bottlenecks?.seconds.toFixed(2)} s), ratio ${ratio.toFixed(2)}`);
    assert.ok(ratio > 0.5 && ratio < 2, `${run.mode}: predicted ${predicted.seconds.toFixed(2)} s, measured ${run.info.seconds.toFixed(2)} s (ratio ${ratio.toFixed(2)}; a factor of 2 either way is allowed)`);
  }
});
