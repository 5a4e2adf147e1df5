// Interactive speed, the library's side (bench.ts runs it): full fine-tunes at 299 px over the same
// images, as a notebook re-runs a training cell. Prints one JSON line per run: wall time, first step,
// median step, graphs recorded. usage: rerun-worker.ts DATA_DIR EPOCHS LEARNING_RATE [LEARNING_RATE ...]
// (the network's precision is "auto", the library's default). BENCH_UNFREEZE=mixed7 fine-tunes from that block
// (default all), BENCH_FROZEN_CACHE=0 turns the frozen-bottom cache off; each line also has the epochs' seconds.
// (INCEPTION_LAB_CACHE decides whether graphs recorded by an earlier process are found.)
import { fineTune, imageFolder, loadInceptionV3 } from "inception-lab";
import { graphStats } from "../kernel-helpers/runtime/graph";

(async () => {
  const [dir, epochs, ...rates] = process.argv.slice(2);
  const started = performance.now();
  const data = await imageFolder(dir, { minImagesPerClass: 1 });
  const inception = await loadInceptionV3({ weights: null, inputSize: 299, seed: 0 });
  for (const [i, learningRate] of rates.map(Number).entries()) {
    const recorded = graphStats.recorded;
    const steps: number[] = [];
    let last = 0;
    // The first run's wall time counts from the start of the process's work (the network's build included).
    const runStarted = i === 0 ? started : performance.now();
    const run = await fineTune(inception, data, {
      epochs: Number(epochs),
      warmupEpochs: 0,
      unfreezeFrom: (process.env.BENCH_UNFREEZE ?? "all") as "all",
      frozenBottomCache: process.env.BENCH_FROZEN_CACHE !== "0",
      batchSize: 16,
      learningRate,
      progress: false,
      liveChart: false,
      callbacks: { onTrainBegin: () => void (last = performance.now()), onBatchEnd: () => void (steps.push((performance.now() - last) / 1000), (last = performance.now())) },
    });
    const full = steps.slice(0, -1).sort((a, b) => a - b); // the last batch is smaller
    const ends = run.history.epochs.map((e) => e.seconds);
    const epochSeconds = ends.map((end, i) => end - (i ? ends[i - 1] : 0));
    console.log(JSON.stringify({ learningRate, precision: run.info.precision.precision, epochSeconds, frozenBottom: run.info.frozenBottom, wall: (performance.now() - runStarted) / 1000, first: steps[0], median: full[Math.floor(full.length / 2)], steps, recorded: graphStats.recorded - recorded }));
    run.dispose();
  }
})();
