// Feature vectors on a plane: the first two principal components, for maps of how classes lie (plots draw
// them; lab/inside.ts computes them for features before and after fine-tuning).
import { tf } from "../runtime/tf";

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

