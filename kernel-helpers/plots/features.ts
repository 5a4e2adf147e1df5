// Feature vectors on a map: the first two principal components, one colour per class.
import * as path from "path";
import { Chart, type ChartOptions } from "../display/chart";
import { tf } from "../runtime/tf";
import { COLORS, layout } from "./style";

/** The first two principal components of feature vectors, computed with TensorFlow. */
export function principalComponents(features: tf.Tensor2D): number[][] {
  return tf.tidy(() => {
    const centred = tf.sub(features, tf.mean(features, 0));
    const covariance = tf.div(tf.matMul(centred, centred, true, false), Math.max(features.shape[0] - 1, 1)) as tf.Tensor2D;
    const components: tf.Tensor2D[] = [];
    let matrix = covariance;
    for (let k = 0; k < 2; k++) {
      // Power iteration with deflation: plenty for two components of a covariance matrix.
      let v = tf.div(tf.ones([matrix.shape[0], 1]), Math.sqrt(matrix.shape[0])) as tf.Tensor2D;
      for (let i = 0; i < 100; i++) v = tf.tidy(() => { const w = tf.matMul(matrix, v); return tf.div(w, tf.add(tf.norm(w), 1e-12)) as tf.Tensor2D; });
      const eigenvalue = tf.sum(tf.mul(v, tf.matMul(matrix, v)));
      matrix = tf.sub(matrix, tf.mul(eigenvalue, tf.matMul(v, v, false, true))) as tf.Tensor2D;
      components.push(v);
    }
    return tf.matMul(centred, tf.concat(components, 1)).arraySync() as number[][];
  });
}

/** A 2-D PCA map of features (bottlenecks), one colour per class. */
export function featureMap(features: tf.Tensor2D, labels: number[], classes: string[], options: ChartOptions & { files?: string[] } = {}): Chart {
  const points = principalComponents(features);
  return new Chart({
    data: classes.map((label, c) => {
      const rows = points.map((p, i) => ({ p, i })).filter(({ i }) => labels[i] === c);
      return { type: "scatter", mode: "markers", name: label, x: rows.map((r) => r.p[0]), y: rows.map((r) => r.p[1]), text: options.files ? rows.map((r) => path.basename(options.files![r.i])) : undefined, marker: { size: 7, color: COLORS[c % COLORS.length] } };
    }),
    layout: layout(options, { title: "Features, first two principal components" }, { xaxis: { title: { text: "PC 1" } }, yaxis: { title: { text: "PC 2" } } }),
  });
}
