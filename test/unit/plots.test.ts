import { test } from "node:test";
import * as assert from "node:assert/strict";
import * as fs from "fs";
import * as path from "path";
import { Chart, loadInceptionV3, plot, tf } from "inception-lab";
import { Evaluation } from "../../kernel-helpers/train/classifier/evaluation";
import { scratch } from "../helpers";

const figure = { data: [{ type: "scatter", x: [1, 2], y: [3, 4] }], layout: { title: { text: "</script> test" } } };

test("a chart is a Plotly bundle whose HTML part draws with plotly.js and escapes script ends", () => {
  const bundle = new Chart(figure).toMimeBundle();
  assert.deepEqual((bundle["application/vnd.plotly.v1+json"] as { data: unknown }).data, figure.data);
  const html = bundle["text/html"];
  assert.match(html, /Plotly\.newPlot/);
  assert.doesNotMatch(html.replace(/<\/script>/g, ""), /<\/script/i, "no premature </script> from the data");
  assert.equal(bundle["text/plain"], "Chart: </script> test (1 traces)");
});

test("saveHtml writes a standalone page with plotly.js inside", () => {
  const file = new Chart(figure).saveHtml(path.join(scratch("chart-html"), "chart.html"));
  const page = fs.readFileSync(file, "utf8");
  assert.ok(page.length > 1_000_000 && page.includes("window.Plotly = Plotly"), "library inlined");
});

test("PCA finds the directions of largest variance", () => {
  // Points spread 10x more along (1, 1, 0) than along (0, 0, 1).
  const rows = Array.from({ length: 200 }, (_, i) => {
    const a = Math.sin(i * 1.7) * 10;
    const b = Math.cos(i * 2.3);
    return [a, a, b];
  });
  const projected = plot.principalComponents(tf.tensor2d(rows));
  const variance = (k: number) => projected.reduce((s, p) => s + p[k] ** 2, 0) / projected.length;
  assert.ok(variance(0) > 50 * variance(1), `${variance(0)} vs ${variance(1)}`);
  const expected = rows.map((r) => (r[0] + r[1]) / Math.SQRT2);
  const mean = expected.reduce((a, b) => a + b) / expected.length;
  projected.forEach((p, i) => assert.ok(Math.abs(Math.abs(p[0]) - Math.abs(expected[i] - mean)) < 1e-2));
});

test("chart builders turn an evaluation into a heatmap and bars with the right numbers", () => {
  const evaluation = new Evaluation(["a", "b"], ["x.jpg", "y.jpg", "z.jpg"], [0, 1, 1], [[0.9, 0.1], [0.8, 0.2], [0.3, 0.7]]);
  const heatmap = plot.confusionMatrix(evaluation).figure.data[0] as { z: number[][] };
  assert.deepEqual(heatmap.z, [[1, 0], [1, 1]]);
  const bars = plot.perClass(evaluation).figure.data as { y: number[] }[];
  assert.deepEqual(bars[0].y, [0.5, 1]);
  assert.deepEqual(bars[1].y, [1, 0.5]);
  assert.equal((plot.sweep([{ value: 0.01, accuracy: 0.5 }]).figure.layout.xaxis as { type: string }).type, "log", "learning rates on a log axis");
});

test("the network diagram marks what each mode computes in a step", async () => {
  const inception = await loadInceptionV3({ weights: null, inputSize: 75 });
  const diagram = plot.network(inception, { layer: "mixed7", unfreezeFrom: "mixed6" });
  const [retrain, top, all, fromScratch] = diagram.rows.map((r) => r.roles);
  const index = (b: string) => diagram.blocks.findIndex((x) => x.block === b);
  assert.equal(retrain[index("mixed3")], "cached");
  assert.equal(retrain[index("mixed9")], "unused");
  assert.equal(top[index("mixed5")], "cached", "run once per image (the frozen-bottom cache)");
  assert.equal(top[index("mixed6")], "trained");
  assert.ok(all.slice(0, index("mixed7") + 1).every((r) => r === "trained"));
  assert.deepEqual(all, fromScratch);
  assert.match(diagram.toHTML(), /<svg/);
  const distorted = plot.network(inception, { layer: "mixed7", unfreezeFrom: "mixed6", distortions: { flipLeftRight: true } });
  assert.equal(distorted.rows[1].roles[index("mixed5")], "frozen", "distortions change every epoch's images: forward every step");
});
