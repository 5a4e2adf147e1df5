// TensorFlow Lite on this CPU, the library's side of bench.ts's "tflite" table: a classifier retrained (at 299 px
// in the bench) on generated photos, exported at each quantization (each export times the TFLite interpreter's single-image
// invocations and checks itself on the test split against the library's float32 predictions), beside the
// library's own per-image latency: run.predict on one decoded image, at float32 and at the run's precision.
// Prints one JSON line per row. usage: tflite-worker.ts DATA_DIR OUT_DIR INPUT_SIZE
import * as path from "path";
import { imageFolder, loadInceptionV3, retrainFinalLayer } from "inception-lab";
import { decodeBatch } from "../kernel-helpers/network/decode";
import type { Precision } from "../kernel-helpers/runtime/precision";
import { QUANTIZATIONS } from "../kernel-helpers/train/classifier/tflite";

const REPEATS = 15;
const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];

(async () => {
  const [dir, out, size] = process.argv.slice(2);
  const inputSize = Number(size);
  const data = await imageFolder(dir, { minImagesPerClass: 1 });
  const inception = await loadInceptionV3({ weights: "bundled", inputSize });
  const run = await retrainFinalLayer(inception, data, { epochs: 30, progress: false, liveChart: false });
  const { images } = await decodeBatch(data.files("test").slice(0, 1), inputSize);
  for (const precision of [...new Set<Precision>(["float32", run.info.precision.precision])]) {
    const seconds: number[] = [];
    for (let i = 0; i < 3 + REPEATS; i++) {
      const started = performance.now();
      await run.predict(images, { precision });
      if (i >= 3) seconds.push((performance.now() - started) / 1000);
    }
    console.log(JSON.stringify({ model: `library run.predict, ${precision}`, bytes: run.info.totalParameters * 4, latency: median(seconds) }));
  }
  images.dispose();
  for (const quantize of QUANTIZATIONS) {
    const result = await run.export(path.join(out, quantize), { format: "tflite", quantize });
    const check = result.tflite!.check;
    console.log(JSON.stringify({ model: result.row()[1], bytes: result.files.find((f) => f.name === "model.tflite")!.bytes, ...check }));
  }
})();
