// The one place the library names its TensorFlow package. Setup builds either @tensorflow/tfjs-node (CPU)
// or @tensorflow/tfjs-node-gpu (runtime/build.ts); both have one API, so the types are tfjs-node's and
// the package is the built one. A GPU build is registered under tfjs-node's name too, so that code
// importing @tensorflow/tfjs-node (a notebook's own cell, a test) gets the same single TensorFlow.
import { checkBuild, currentBuild } from "./build";

const build = currentBuild();
if (build.device === "gpu") {
  checkBuild(build);
  require(build.package);
  require.cache[require.resolve("@tensorflow/tfjs-node")] = require.cache[require.resolve(build.package)];
}

export * as tf from "@tensorflow/tfjs-node";
