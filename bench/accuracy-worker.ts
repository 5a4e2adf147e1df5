// Accuracy at each precision, the library's side (bench.ts runs it): notebook 03's base fine-tune (mirrored
// glyphs at 128 px, from mixed6, 20 warm-up and 12 network epochs, batch 16, Adam at 1e-3) and its retraining of
// the final layer (the library's defaults: 200 epochs, Adam at 1e-2) over the same seeds, at float32 and at
// bfloat16, in one process on one machine. Whether bfloat16 costs accuracy is a question of seed spread, so both
// precisions get the same seeds. Prints one JSON line per run.
// usage: accuracy-worker.ts SEED [SEED ...]
import { fineTune, loadInceptionV3, retrainFinalLayer, syntheticMirrors } from "inception-lab";

(async () => {
  const seeds = process.argv.slice(2).map(Number);
  const data = await syntheticMirrors({ perClass: 150, imageSize: 128, folderOptions: { testPercent: 20 } });
  const inception = await loadInceptionV3({ weights: "bundled", inputSize: 128 });
  const quiet = { batchSize: 16, progress: false, liveChart: false };
  for (const precision of ["float32", "bfloat16"] as const) {
    for (const seed of seeds) {
      const runs = [
        await fineTune(inception, data, { ...quiet, unfreezeFrom: "mixed6", epochs: 12, warmupEpochs: 20, learningRate: 1e-3, seed, precision }),
        await retrainFinalLayer(inception, data, { ...quiet, epochs: 200, learningRate: 1e-2, seed, precision }),
      ];
      for (const run of runs) {
        const accuracy = (await run.evaluate()).accuracy;
        console.log(JSON.stringify({ mode: run.mode, precision: run.info.precision.precision, seed, accuracy, seconds: run.info.seconds }));
        run.dispose();
      }
    }
  }
})();
