// Inception Lab side of the benchmark: the same work as keras_worker.py through the library's own
// paths (features(), the training step of the modes), timed step by step after warm-up steps (BENCH_WARMUP), as JSON;
// BENCH_GRAPH=0 runs op by op.
// usage: ours-worker.ts KIND BATCH SIZE STEPS
import { loadInceptionV3, tf } from "inception-lab";
import { attachHead, Head } from "../kernel-helpers/train/classifier";
import { splitForward } from "../kernel-helpers/train/phases";
import { TrainingStep } from "../kernel-helpers/train/loop";

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
  // The training step of the modes: frozen bottom outside the tape, then loss and update on the rest.
  const graph = process.env.BENCH_GRAPH !== "0";
  const trainStep = (model: tf.LayersModel, images: tf.Tensor, optimizer: tf.Optimizer, forward = { prepare: (x: tf.Tensor) => x, logits: (x: tf.Tensor, training: boolean) => model.apply(x, { training }) as tf.Tensor2D }) => {
    const step = new TrainingStep(forward.logits, optimizer, model.trainableWeights.map((w) => w.read() as tf.Variable), { classes: CLASSES, graph });
    return () => {
      const x = forward.prepare(images);
      step.run(x, labels);
      if (x !== images) x.dispose();
    };
  };
  if (kind === "head") {
    const head = new Head(CLASSES, 0.2, 0);
    const input = tf.input({ shape: [2048] });
    const { logitsModel } = head.models(input, input);
    times = await timed(trainStep(logitsModel, tf.randomNormal([batch, 2048]), tf.train.adam(1e-3)));
  } else {
    const inception = await loadInceptionV3({ weights: null, inputSize: size, seed: 0 });
    const x = tf.randomUniform([batch, size, size, 3], 0, 255);
    if (kind === "features") {
      times = await timed(async () => {
        const f = await inception.features(x, { batchSize: batch, graph });
        await f.data();
        f.dispose();
      });
    } else {
      const firstTrained = kind === "finetune-top" ? "mixed7" : "stem";
      const trained = ["stem", "mixed0", "mixed1", "mixed2", "mixed3", "mixed4", "mixed5", "mixed6", "mixed7", "mixed8", "mixed9", "mixed10"].slice(kind === "finetune-top" ? 8 : 0);
      for (const layer of inception.model.layers) layer.trainable = trained.includes(inception.blockOf.get(layer.name) ?? "");
      const { logitsModel } = attachHead(inception, "mixed10", new Head(CLASSES, 0.2, 0));
      times = await timed(trainStep(logitsModel, x, tf.train.adam(1e-4), splitForward(inception, logitsModel, firstTrained, graph)));
    }
  }
  console.log(JSON.stringify({ runtime: "ours", kind, batch, times, peakRssMB: process.resourceUsage().maxRSS / 1024 }));
})();
