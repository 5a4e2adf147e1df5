// TensorFlow ops that tfjs-node does not wrap, run by name on the native backend. The tensors they
// return are registered with the tfjs engine, so tf.tidy and tf.memory() see them.
import { tf } from "./tf";

/** An op attribute as the binding takes it. */
export interface OpAttr {
  name: string;
  type: number;
  value: unknown;
}
export interface TensorMetadata {
  id: number;
  shape: number[];
  dtype: number;
}

/** What the library uses of tfjs-node's native binding (the one place it is typed). */
export interface Binding {
  TF_Version: string;
  executeOp(name: string, attrs: OpAttr[], inputs: number[], outputs: number): TensorMetadata[];
  createTensor(shape: number[], dtype: number, values: ArrayBufferView): number;
  tensorDataSync(id: number): ArrayBufferView;
  loadSavedModel(dir: string, tags: string): number;
  deleteSavedModel(id: number): void;
  TF_ATTR_TYPE: number;
  TF_ATTR_STRING: number;
  TF_ATTR_FLOAT: number;
  TF_ATTR_BOOL: number;
  TF_ATTR_INT: number;
  TF_ATTR_SHAPE: number;
  TF_FLOAT: number;
  TF_INT32: number;
}

/** tfjs-node's backend, as far as the library uses it beyond tfjs' own API. */
export interface NativeBackend {
  binding: Binding;
  executeSingleOutput(name: string, attrs: object[], inputs: tf.Tensor[]): tf.Tensor;
  executeMultipleOutputs(name: string, attrs: object[], inputs: tf.Tensor[], count: number): tf.Tensor[];
  getInputTensorIds(tensors: tf.Tensor[]): number[];
  getDTypeInteger(dtype: string): number;
  runSavedModel(id: number, inputs: tf.Tensor[], infos: { name: string; tfDtype: string }[], outputs: string[]): tf.Tensor[];
}

export function nativeBackend(): NativeBackend {
  const backend = tf.engine().backend as unknown as Partial<NativeBackend>;
  if (tf.getBackend() !== "tensorflow" || !backend.binding) throw new Error(`This needs the native TensorFlow backend; the backend is "${tf.getBackend()}".`);
  return backend as NativeBackend;
}

/** The version of the native TensorFlow library tfjs-node runs on ("2.21.0"), or null without the native backend. */
export function tensorflowVersion(): string | null {
  const backend = tf.engine().backend as unknown as Partial<NativeBackend>;
  return backend.binding?.TF_Version ?? null;
}

export type Attr = { type: "dtype"; value: "float32" | "int32" } | { type: "string"; value: string } | { type: "float"; value: number } | { type: "bool"; value: boolean } | { type: "int"; value: number };

export function attrs(values: Record<string, Attr>): object[] {
  const b = nativeBackend().binding;
  return Object.entries(values).map(([name, attr]) => {
    switch (attr.type) {
      case "dtype":
        return { name, type: b.TF_ATTR_TYPE, value: attr.value === "float32" ? b.TF_FLOAT : b.TF_INT32 };
      case "string":
        return { name, type: b.TF_ATTR_STRING, value: attr.value };
      case "float":
        return { name, type: b.TF_ATTR_FLOAT, value: attr.value };
      case "bool":
        return { name, type: b.TF_ATTR_BOOL, value: attr.value };
      case "int":
        return { name, type: b.TF_ATTR_INT, value: attr.value };
    }
  });
}

/**
 * Applies one projective transform per image (TensorFlow's ImageProjectiveTransformV3; tfjs-node lacks
 * the Transform kernel). Each row [a0, a1, a2, b0, b1, b2, c0, c1] maps an output pixel to its source.
 */
export function projectiveTransform(images: tf.Tensor4D, transforms: tf.Tensor2D, fillMode: "NEAREST" | "CONSTANT" | "REFLECT" = "NEAREST"): tf.Tensor4D {
  return tf.tidy(() => {
    const outputShape = tf.tensor1d(images.shape.slice(1, 3), "int32");
    const fillValue = tf.scalar(0, "float32");
    return nativeBackend().executeSingleOutput(
      "ImageProjectiveTransformV3",
      attrs({ dtype: { type: "dtype", value: "float32" }, interpolation: { type: "string", value: "BILINEAR" }, fill_mode: { type: "string", value: fillMode } }),
      [images.toFloat(), transforms, outputShape, fillValue],
    ) as tf.Tensor4D;
  });
}

/**
 * tfjs differentiates ReLU as dy * cast(step(x)): several full-size ops per layer, and it keeps the
 * input x alive for it. TensorFlow's ReluGrad does it in one op, and it can use the output instead
 * (y > 0 exactly where x > 0), which the next layer keeps anyway: same gradient, one activation less
 * held per ReLU. The library registers it as ReLU's gradient.
 */
export function registerFastReluGradient(): void {
  tf.registerGradient({
    kernelName: "Relu",
    outputsToSave: [true],
    gradFunc: (dy, saved) => ({ x: () => nativeBackend().executeSingleOutput("ReluGrad", attrs({ T: { type: "dtype", value: "float32" } }), [dy as tf.Tensor, saved[0]]) }),
  });
}

/**
 * Dropout whose mask is a function of `seed`, an int32 variable [seed, draw] that each call advances by
 * one draw (TensorFlow's StatelessRandomUniform). tfjs draws its masks in JavaScript, which a step recorded
 * as a graph would freeze into one constant mask. TensorFlow's stateful RandomUniform draws anew on every
 * run but continues one sequence per op for the life of the process (a cached graph, an eager kernel), so
 * the same training call run again in a kernel drew other masks (measured in notebook 03: one setting
 * trained to 0.835, 0.727 and 0.760 test accuracy). The rate and the seed are variables, so a recorded
 * graph takes new ones as inputs.
 */
export function dropout(x: tf.Tensor, rate: tf.Scalar, seed: tf.Variable): tf.Tensor {
  return tf.tidy(() => {
    const int32 = { type: "dtype", value: "int32" } as const;
    const uniform = nativeBackend().executeSingleOutput(
      "StatelessRandomUniform",
      attrs({ dtype: { type: "dtype", value: "float32" }, T: int32, Tseed: int32 }),
      [nativeBackend().executeSingleOutput("Shape", attrs({ T: { type: "dtype", value: "float32" }, out_type: int32 }), [x]), seed],
    );
    seed.assign(tf.add(seed, tf.tensor1d([0, 1], "int32")));
    const keep = tf.sub(1, rate);
    return tf.mul(x, tf.div(tf.floor(tf.add(uniform, keep)), keep));
  });
}
