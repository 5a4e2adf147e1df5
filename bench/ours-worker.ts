// Inception Lab side of the benchmark: the same work as keras_worker.py through the library's own
// paths (features(), the training step of the modes), timed step by step after warm-up steps (BENCH_WARMUP), as JSON;
// BENCH_GRAPH=0 runs op by op; BENCH_PRECISION (default float32) the precision of the network's work.
// usage: ours-worker.ts KIND BATCH SIZE STEPS
import { loadInceptionV3, tf } from "inception-lab";
import { attachHead, Head } from "../kernel-helpers/train/classifier/classifier";
import { Optimizer } from "../kernel-helpers/train/loop/optimizers";
import { networkStep } from "../kernel-helpers/train/modes/forward";
import { setTrainable } from "../kernel-helpers/train/modes/phase";
import { TrainingStep } from "../kernel-helpers/train/loop/step";
import type { Precision } from "../kernel-helpers/runtime/precision";

const [kind, batchArg, sizeArg, stepsArg] = process.argv.slice(2);
const [batch, size, steps] = [Number(batchArg), Number(sizeArg), Number(stepsArg)];
const CLASSES = 5;

async function timed(step: () => Promise<void> | void): Promise<number[]> {
  for (let i = 0; i < Number(process.env.BENCH_WARMUP ?? 1); i++) await step();
  const times: number[] = [];
  for (let i = 0; i < steps; i++) {
    const started = performance.now();
    await step();
    times.push((performance.now() - started) / 1000);
  }
  return times;
}

(async () => {
  const labels = tf.tensor1d(Array.from({ length: batch }, (_, i) => i % CLASSES), "int32");
  let times: number[];
  // The training steps of the modes: the head phase's, and networkStep (frozen bottom outside the tape).
  const graph = process.env.BENCH_GRAPH !== "0";
  const precision = (process.env.BENCH_PRECISION ?? "float32") as Precision;
  const adam = (model: tf.LayersModel, learningRate: number) => new Optimizer("adam", model.trainableWeights.map((w) => w.read() as tf.Variable), learningRate);
  if (kind === "head") {
    const head = new Head(CLASSES, 0.2, 0);
    const input = tf.input({ shape: [2048] });
    const { logitsModel } = head.models(input, input);
    const step = new TrainingStep((x, training) => logitsModel.apply(x, { training }) as tf.Tensor2D, adam(logitsModel, 1e-3), { classes: CLASSES, graph, reads: () => head.variables() });
    const features = tf.randomNormal([batch, 2048]);
    times = await timed(() => void step.run(features, labels));
  } else {
    const inception = await loadInceptionV3({ weights: null, inputSize: size, seed: 0, precision });
    const x = tf.randomUniform([batch, size, size, 3], 0, 255);
    if (kind === "features") {
      times = await timed(async () => {
        const f = await inception.features(x, { batchSize: batch, graph });
        await f.data();
        f.dispose();
      });
    } else {
      const firstTrained = kind === "finetune-top" ? "mixed7" : "stem";
      setTrainable(inception, firstTrained);
      const head = new Head(CLASSES, 0.2, 0);
      const { logitsModel } = attachHead(inception, "mixed10", head);
      const step = networkStep(inception, logitsModel, firstTrained, adam(logitsModel, 1e-4), { classes: CLASSES, graph, head, precision });
      times = await timed(() => void step.run(x, labels));
    }
  }
  console.log(JSON.stringify({ runtime: "ours", precision, kind, batch, times, peakRssMB: process.resourceUsage().maxRSS / 1024 }));
})();
