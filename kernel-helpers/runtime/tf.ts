// The one place the library names its TensorFlow package: tfjs-node on native TensorFlow.
export * as tf from "@tensorflow/tfjs-node";
