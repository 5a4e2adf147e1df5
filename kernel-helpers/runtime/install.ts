// The changes the library makes to TensorFlow.js for the whole process, in one place; the library's
// entry point (index.ts) calls installRuntime() when it is imported. Both keep tfjs' results and change
// what a training step costs (measured in test/numerics.test.ts and bench/):
//  - ReLU's gradient is TensorFlow's ReluGrad on the output: one op instead of seven, one activation less kept;
//  - backpropagation frees each layer's saved tensors as soon as it is done with them (lean-gradients.ts).
import { installLeanGradients } from "./lean-gradients";
import { registerFastReluGradient } from "./native-ops";

export function installRuntime(): void {
  registerFastReluGradient();
  installLeanGradients();
}
