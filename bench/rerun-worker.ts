// Interactive speed, the library's side (bench.ts runs it): full fine-tunes at 299 px over the same
// images, as a notebook re-runs a training cell. Prints one JSON line per run: wall time, first step,
// median step, graphs recorded. usage: rerun-worker.ts DATA_DIR LEARNING_RATE [LEARNING_RATE ...]
// (INCEPTION_LAB_CACHE decides whether graphs recorded by an earlier process are found.)
import { fineTune, imageFolder, loadInceptionV3 } from "inception-lab";
import { graphStats } from "../kernel-helpers/runtime/graph";

(async () => {
  const [dir, ...rates] = process.argv.slice(2);
  const data = await imageFolder(dir, { minImagesPerClass: 1 });
  const inception = await loadInceptionV3({ weights: null, inputSize: 299, seed: 0 });
  for (const learningRate of rates.map(Number)) {
    const recorded = graphStats.recorded;
    const steps: number[] = [];
    let last = 0;
    const started = performance.now();
    await fineTune(inception, data, {
      epochs: 1,
      warmupEpochs: 0,
      batchSize: 16,
      learningRate,
      progress: false,
      liveChart: false,
      callbacks: { onTrainBegin: () => void (last = performance.now()), onBatchEnd: () => void (steps.push((performance.now() - last) / 1000), (last = performance.now())) },
    });
    const full = steps.slice(0, -1).sort((a, b) => a - b); // the last batch is smaller
    console.log(JSON.stringify({ learningRate, wall: (performance.now() - started) / 1000, first: steps[0], median: full[Math.floor(full.length / 2)], steps, recorded: graphStats.recorded - recorded }));
  }
})();
