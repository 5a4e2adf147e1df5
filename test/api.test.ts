// One API (issue 23): one set of mode names, one prediction shape, predict taking what classify takes,
// every plot drawn synchronously, one name for the cut layer, classes and error types as values.
import { test } from "node:test";
import * as assert from "node:assert/strict";
import * as fs from "fs";
import * as path from "path";
import * as lab from "inception-lab";
import { compareModes, Comparison, Evaluation, fineTune, ImageDecodeError, ImageFolder, Inception, InterruptedError, loadInceptionV3, plot, retrainFinalLayer, syntheticShapes, tf, TrainingRun } from "inception-lab";
import { scratch } from "./helpers";

process.env.INCEPTION_LAB_CACHE = scratch("api-cache");
const quiet = { progress: false, liveChart: false, batchSize: 8 } as const;

test("classes and error types are values: instanceof works on what the library returns and throws", async () => {
  for (const name of ["Inception", "ImageFolder", "TrainingRun", "Evaluation", "Classifier", "Comparison", "LearningRateFinder", "CostModel", "InterruptedError", "ImageDecodeError", "Table", "Chart"]) {
    assert.equal(typeof (lab as unknown as Record<string, unknown>)[name], "function", `${name} is exported as a value`);
  }
  const data = await syntheticShapes({ classes: 2, perClass: 6, imageSize: 48 });
  assert.ok(data instanceof ImageFolder);
  const inception = await loadInceptionV3({ weights: "bundled", inputSize: 75 });
  assert.ok(inception instanceof Inception);
  const bad = path.join(scratch("api-bad"), "not-an-image.jpg");
  fs.writeFileSync(bad, "text, not pixels");
  await assert.rejects(inception.features(bad), (error: unknown) => error instanceof ImageDecodeError && /not-an-image\.jpg/.test((error as Error).message));
  assert.ok(new InterruptedError("x") instanceof Error);
});

test("one name for the cut layer: the option, the weights' default and RunInfo all say layer", async () => {
  const inception = await loadInceptionV3({ weights: "bundled", inputSize: 75 });
  assert.equal(inception.source.layer, "mixed7");
  assert.equal((inception.source as unknown as Record<string, unknown>).featureLayer, undefined);
  const data = await syntheticShapes({ classes: 2, perClass: 6, imageSize: 48 });
  const run = await retrainFinalLayer(inception, data, { ...quiet, epochs: 1 });
  assert.equal(run.info.layer, inception.source.layer);
  run.dispose();
});

test("one prediction shape: predict takes files or images as classify does, and answers alike", async () => {
  const data = await syntheticShapes({ classes: 3, perClass: 8, imageSize: 48 });
  const inception = await loadInceptionV3({ weights: "bundled", inputSize: 75 });
  const run = await fineTune(inception, data, { ...quiet, epochs: 1, warmupEpochs: 1, unfreezeFrom: "mixed6" });
  assert.ok(run instanceof TrainingRun);
  const files = data.files("train").slice(0, 3);
  const fromFiles = await run.predict(files, { topK: 2 });
  const pixels = tf.stack(await Promise.all(files.map(async (f) => tf.node.decodeImage(fs.readFileSync(f), 3) as tf.Tensor3D)));
  const fromImages = await run.predict(pixels, { topK: 2 });
  for (const [i, p] of fromFiles.entries()) {
    assert.deepEqual(Object.keys(p).sort(), ["label", "path", "precision", "probabilities", "probability", "top"]);
    assert.equal(p.precision, run.info.precision.precision, "it says which precision ran");
    assert.equal(p.path, files[i]);
    assert.equal(p.top.length, 2);
    assert.deepEqual([p.label, p.probability], [p.top[0].label, p.top[0].probability]);
    assert.deepEqual(Object.keys(fromImages[i]).sort(), ["label", "precision", "probabilities", "probability", "top"]);
  }
  // Resized by sharp from files, by TensorFlow from tensors: the same classes, close probabilities.
  assert.deepEqual(fromImages.map((p) => p.label), fromFiles.map((p) => p.label));
  tf.dispose(pixels);
  run.dispose();
});

test("one set of mode names: compareModes takes the modes' names and refuses others; every plot draws synchronously", async () => {
  const data = await syntheticShapes({ classes: 2, perClass: 8, imageSize: 48 });
  const inception = await loadInceptionV3({ weights: "bundled", inputSize: 75 });
  await assert.rejects(compareModes(inception, data, { modes: ["fine-tune-top" as never] }), /modes: "fine-tune-top" is not a mode; use retrain-final-layer, fine-tune, from-scratch/);
  const comparison = await compareModes(inception, data, { ...quiet, epochs: 1, warmupEpochs: 1, modes: ["retrain-final-layer", { mode: "fine-tune", unfreezeFrom: "mixed6" }] });
  assert.ok(comparison instanceof Comparison);
  assert.deepEqual(comparison.rows.map((r) => [r.mode, r.label]), [["retrain-final-layer", "retrain the final layer"], ["fine-tune", "fine-tune mixed6 to mixed7"]]);
  const evaluation = comparison.rows[0].evaluation;
  assert.ok(evaluation instanceof Evaluation);
  const run = comparison.run("fine-tune", "mixed6")!;
  const drawn = [
    plot.learningCurves(run),
    plot.modeComparison(comparison),
    plot.confusionMatrix(evaluation),
    plot.perClass(evaluation),
    plot.misclassified(evaluation),
    plot.datasetCounts(data),
    plot.network(inception),
    plot.weightChange(lab.weightChange(inception, [run])),
    plot.featuresBeforeAfter(await lab.featuresBeforeAfter(inception, run)),
    plot.gradCam(await lab.gradCam([run], data.files("test").slice(0, 1))),
  ];
  for (const chart of drawn) assert.ok(!(chart instanceof Promise) && typeof (chart as { toHTML?: unknown }).toHTML === "function", "drawn at once, shown as a cell's last line");
  if (evaluation.misclassified.length) assert.match((plot.misclassified(evaluation) as { toHTML(): string }).toHTML(), /data:image\/jpeg;base64/);
  comparison.rows.forEach((r) => r.run.dispose());
});
