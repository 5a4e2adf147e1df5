// The one place the library loads TensorFlow: the native tfjs-node backend, GPU build when installed.
import type * as tfType from "@tensorflow/tfjs-node";

function loadTensorFlow(): typeof tfType {
  try {
    return require("@tensorflow/tfjs-node-gpu");
  } catch {
    return require("@tensorflow/tfjs-node");
  }
}

export const tf = loadTensorFlow();
