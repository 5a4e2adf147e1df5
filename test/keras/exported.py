"""Python's side of test/export.test.ts, with the venv's TensorFlow. Prints one JSON line.

  exported.py keras MODEL.keras PIXELS N SIZE [LABELS]   probabilities; with LABELS, one fit step too
  exported.py savedmodel DIR PIXELS N SIZE                 probabilities and labels of both signatures
  exported.py train OUT_DIR PIXELS N SIZE LABELS TEST_PIXELS M CLASSES
      a classifier as a Keras user builds it (InceptionV3 base inside, Rescaling, pooling, softmax
      dense), trained briefly, saved as OUT_DIR/model.keras; its accuracy on the test pixels
PIXELS: raw uint8 images, N x SIZE x SIZE x 3; LABELS: raw int32 class indices.
"""
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np  # noqa: E402
import keras  # noqa: E402
import tensorflow as tf  # noqa: E402


def pixels(file, n, size):
    return np.fromfile(file, dtype=np.uint8).reshape(int(n), int(size), int(size), 3)


command = sys.argv[1]
if command == "keras":
    model = keras.models.load_model(sys.argv[2])
    x = pixels(sys.argv[3], sys.argv[4], sys.argv[5]).astype("float32")
    result = {"probabilities": model.predict(x, verbose=0).tolist(), "input": list(model.inputs[0].shape)}
    if len(sys.argv) > 6:
        y = np.fromfile(sys.argv[6], dtype=np.int32)
        model.compile(optimizer=keras.optimizers.Adam(1e-4), loss="sparse_categorical_crossentropy")
        result["fitLoss"] = float(model.fit(x, y, batch_size=len(y), epochs=1, verbose=0).history["loss"][0])
    print(json.dumps(result))
elif command == "savedmodel":
    loaded = tf.saved_model.load(sys.argv[2])
    x = pixels(sys.argv[3], sys.argv[4], sys.argv[5])
    as_float = loaded.signatures["serving_default"](images=tf.constant(x.astype("float32")))
    as_uint8 = loaded.signatures["serving_uint8"](images=tf.constant(x))
    print(json.dumps({
        "probabilities": as_float["probabilities"].numpy().tolist(),
        "probabilitiesUint8": as_uint8["probabilities"].numpy().tolist(),
        "labels": [l.decode() for l in as_float["labels"].numpy().tolist()],
    }))
elif command == "train":
    out, size, classes = sys.argv[2], int(sys.argv[5]), int(sys.argv[9])
    x = pixels(sys.argv[3], sys.argv[4], size).astype("float32")
    y = np.fromfile(sys.argv[6], dtype=np.int32)
    test = pixels(sys.argv[7], sys.argv[8], size).astype("float32")
    keras.utils.set_random_seed(0)
    base = keras.applications.InceptionV3(include_top=False, weights=None, input_shape=(size, size, 3))
    model = keras.Sequential([keras.Input((size, size, 3)), keras.layers.Rescaling(1 / 127.5, -1), base, keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(classes, activation="softmax")])
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy")
    model.fit(x, y, batch_size=16, epochs=3, verbose=0)
    model.save(os.path.join(out, "model.keras"))
    print(json.dumps({"predicted": model.predict(test, verbose=0).argmax(-1).tolist()}))
