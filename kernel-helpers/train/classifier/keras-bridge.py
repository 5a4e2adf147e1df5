"""The library's bridge to Python Keras and TensorFlow (train/classifier/files.ts runs it with the project's venv).

  keras-bridge.py export SPEC.json   build the classifier in Keras from the library's weights, save it
                                     (model.keras, a SavedModel, or model.tflite by TensorFlow's converter)
  keras-bridge.py import MODEL OUT   read a Keras Inception-v3 classifier's weights for the library

Keras builds its own InceptionV3 and writes its own files, so what comes out is what Keras itself would
save; TensorFlow Lite files are converted from that same Keras model. Weights travel as raw float32 in the networks' shared layer order (the library's Inception-v3 is
Keras' layer for layer); every shape is checked on the way.

Every failure ends in one line, `keras-bridge: <what and which file>`, which is all the library shows
(with INCEPTION_LAB_DEBUG=1, the traceback too). Started with a pipe as stdin (as the library does), the
bridge exits when the pipe closes: a killed Node process leaves no bridge behind finishing a file.
"""
import json
import os
import stat
import sys
import threading
import traceback


def exit_when_parent_goes():
    """The parent holds the other end of stdin: end of file means it is gone (even killed), so stop."""
    mode = os.fstat(0).st_mode
    if not (stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)):
        return

    def watch():
        while os.read(0, 1 << 16):
            pass
        os._exit(3)

    threading.Thread(target=watch, daemon=True).start()


if __name__ == "__main__":
    exit_when_parent_goes()  # before TensorFlow's imports, which take seconds

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np  # noqa: E402
import keras  # noqa: E402
import tensorflow as tf  # noqa: E402


def fail(message):
    if os.environ.get("INCEPTION_LAB_DEBUG") == "1" and sys.exc_info()[0] is not None:
        traceback.print_exc()
    print(f"keras-bridge: {message}", file=sys.stderr)
    sys.exit(1)


def weighted_layers(model):
    """Layers that hold weights, in order, with nested models (a Keras user's `base`) opened up."""
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from weighted_layers(layer)
        elif layer.weights:
            yield layer


def keras_name(name):
    """The library's Keras-2 layer names (conv2d_1, ...) as a fresh Keras 3 process names them (conv2d, conv2d_1, ...)."""
    kind, _, number = name.rpartition("_")
    if kind in ("conv2d", "batch_normalization") and number.isdigit():
        return kind if number == "1" else f"{kind}_{int(number) - 1}"
    return name


def build(spec):
    size = spec["inputSize"]
    inputs = keras.Input((size, size, 3), name="image")  # RGB pixels 0..255, as the library takes them
    scaled = keras.layers.Rescaling(spec["scale"], spec["offset"], name="preprocess")(inputs)
    base = keras.applications.InceptionV3(include_top=False, weights=None, input_tensor=scaled)
    pooled = keras.layers.GlobalAveragePooling2D(name="features")(base.get_layer(spec["layer"]).output)
    dropped = keras.layers.Dropout(spec["dropout"], name="head_dropout")(pooled)
    logits = keras.layers.Dense(len(spec["classes"]), name="logits")(dropped)
    probabilities = keras.layers.Activation("softmax", name="probabilities")(logits)
    model = keras.Model(inputs, probabilities, name="inception_lab_classifier")
    values = np.fromfile(spec["weightsFile"], dtype="<f4")
    if len(list(weighted_layers(model))) != len(spec["layers"]):
        fail(f"Keras' classifier has {len(list(weighted_layers(model)))} layers with weights, the library's {len(spec['layers'])}")
    offset = 0
    for entry in spec["layers"]:
        layer = model.get_layer(keras_name(entry["name"]))
        arrays = []
        for weight, shape in zip(layer.weights, entry["shapes"]):
            if list(weight.shape) != shape:
                fail(f"{layer.name}/{weight.name}: Keras has shape {list(weight.shape)}, the library {shape}")
            size_ = int(np.prod(shape))
            arrays.append(values[offset : offset + size_].reshape(shape))
            offset += size_
        layer.set_weights(arrays)
    if offset != values.size:
        fail(f"{values.size - offset} weight values left over")
    return model


class Serving(tf.Module):
    """Images 0..255 of any batch and size in, resized to the input size, probabilities and labels out.

    It saves the TensorFlow variables themselves, not the Keras model: a Keras 3 model saved by
    tf.saved_model restores into copies of its variables ("Variable_N") while the signatures read the
    originals, which works in Python but leaves TensorFlow's C loader (TensorFlow Serving, tfjs-node)
    with "Could not find variable conv2d/kernel".
    """

    def __init__(self, model, classes, size):
        super().__init__()
        self.tf_variables = [variable.value for variable in model.variables]
        self._model = self._no_dependency(model)
        self.classes = tf.constant(classes)
        self.size = size

    def predict(self, images):
        resized = tf.image.resize(images, (self.size, self.size))
        probabilities = self._model(resized, training=False)
        return {"probabilities": probabilities, "labels": tf.gather(self.classes, tf.argmax(probabilities, -1))}

    @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32, name="images")])
    def serve_float(self, images):
        return self.predict(images)

    @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.uint8, name="images")])
    def serve_uint8(self, images):
        return self.predict(tf.cast(images, tf.float32))


def tflite(model, spec):
    """model.tflite bytes from TensorFlow's converter, at the spec's quantization ("none", "float16",
    "dynamic", "int8"). int8 calibrates its activations on the library's decoded training images (raw
    uint8, pixels 0..255 as the model takes them) and takes uint8 or float32 pixels; every output is
    float32 probabilities. No metadata: TensorFlow's converter writes none without tflite_support (not in
    the venv), so the labels are the labels.txt beside the file."""
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    quantize = spec["quantize"]
    if quantize != "none":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantize == "float16":
        converter.target_spec.supported_types = [tf.float16]
    if quantize == "int8":
        size = spec["inputSize"]
        images = np.fromfile(spec["calibration"], dtype=np.uint8).reshape(-1, size, size, 3)
        converter.representative_dataset = lambda: ([image[None].astype(np.float32)] for image in images)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.uint8 if spec["inputType"] == "uint8" else tf.float32
        converter.inference_output_type = tf.float32
    return converter.convert()


def export(spec_file):
    spec = json.load(open(spec_file))
    model = build(spec)
    out = spec["out"]
    if spec["format"] == "keras":
        model.save(os.path.join(out, "model.keras"))
    elif spec["format"] == "tflite":
        with open(os.path.join(out, "model.tflite"), "wb") as f:
            f.write(tflite(model, spec))
    else:
        serving = Serving(model, spec["classes"], spec["inputSize"])
        tf.saved_model.save(serving, out, signatures={"serving_default": serving.serve_float, "serving_uint8": serving.serve_uint8})


# Conv2D layers up to each mixed block's end, in Keras' order (as the library's inception.ts builds them).
CONVS_UP_TO = {"mixed0": 12, "mixed1": 19, "mixed2": 26, "mixed3": 30, "mixed4": 40, "mixed5": 50, "mixed6": 60, "mixed7": 70, "mixed8": 76, "mixed9": 85, "mixed10": 94}


def import_model(model_file, out):
    try:
        model = keras.models.load_model(model_file, compile=False)
    except Exception as error:  # Keras' own words, on one line: the file is not one it reads
        fail(f"{model_file}: Keras cannot load it ({first_line(error)}); give a .keras or .h5 file saved by Keras' model.save")
    layers = list(weighted_layers(model))
    convs = [l for l in layers if isinstance(l, keras.layers.Conv2D)]
    norms = [l for l in layers if isinstance(l, keras.layers.BatchNormalization)]
    dense = [l for l in layers if isinstance(l, keras.layers.Dense)]
    cut = next((block for block, n in CONVS_UP_TO.items() if n == len(convs)), None)
    if cut is None or len(norms) != len(convs) or len(dense) != 1:
        fail(f"{model_file}: not an Inception-v3 with one dense layer on top ({len(convs)} convolutions, {len(norms)} batch norms, {len(dense)} dense layers)")
    if any(n.scale for n in norms):
        fail(f"{model_file}: its batch norms have a scale (gamma); Keras' InceptionV3 has none")
    rescaling = [l for l in model.layers if isinstance(l, keras.layers.Rescaling)] + [
        l for sub in model.layers if isinstance(sub, keras.Model) for l in sub.layers if isinstance(l, keras.layers.Rescaling)
    ]
    scale, offset = (float(rescaling[0].scale), float(rescaling[0].offset)) if rescaling else (None, None)
    ordered = [l for l in layers if isinstance(l, (keras.layers.Conv2D, keras.layers.BatchNormalization))] + dense
    with open(os.path.join(out, "weights.f32"), "wb") as f:
        for layer in ordered:
            for w in layer.get_weights():
                f.write(np.asarray(w, dtype="<f4").tobytes())
    json.dump(
        {
            "inputSize": int(model.inputs[0].shape[1]),
            "layer": cut,
            "classes": int(dense[0].units),
            "scale": scale,
            "offset": offset,
            "softmax": dense[0].activation.__name__ == "softmax",
            "layers": [[list(w.shape) for w in l.weights] for l in ordered],
        },
        open(os.path.join(out, "spec.json"), "w"),
    )


def first_line(error):
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


if __name__ == "__main__":
    try:
        if len(sys.argv) >= 3 and sys.argv[1] == "export":
            export(sys.argv[2])
        elif len(sys.argv) >= 4 and sys.argv[1] == "import":
            import_model(sys.argv[2], sys.argv[3])
        else:
            fail("usage: keras-bridge.py export SPEC.json, or keras-bridge.py import MODEL OUT_DIR")
    except KeyboardInterrupt:
        fail("interrupted")
    except Exception as error:
        fail(f"{type(error).__name__}: {first_line(error)}")
