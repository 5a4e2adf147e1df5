"""Writes Keras reference files for the parity tests: Inception-v3 weight files in three layouts,
test images, and what Keras computes on them.

usage: reference.py OUT_DIR [--size 299] [--images 4] [--seed 0]

OUT_DIR/
  keras2-official.h5, keras2-official-notop.h5   the layout of the official Keras-2 weight files
                                                 (root groups, Keras-2 names conv2d_1.., "kernel:0")
  keras3-legacy.h5                               Keras 3 model.save("x.h5"): model_weights/, Keras-3 names
  keras3.weights.h5                              Keras 3 model.save_weights("x.weights.h5")
  other-network.h5                               a small non-Inception Keras model (for error tests)
  images.u8                                      uint8 [n, size, size, 3] RGB
  features.f32, predictions.f32                  Keras' pooled mixed10 features and softmax outputs
  meta.json                                      shapes, parameter counts and the layer list
"""
import argparse
import json
import os
import re

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import h5py  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402

AUTO_NAMED = re.compile(r"^(conv2d|batch_normalization|activation|max_pooling2d|average_pooling2d|concatenate|dense)(?:_(\d+))?$")


def keras2_name(name: str) -> str:
    """Keras 3 numbers auto-named layers conv2d, conv2d_1, ...; Keras 2 conv2d_1, conv2d_2, ..."""
    match = AUTO_NAMED.match(name)
    return f"{match[1]}_{int(match[2] or 0) + 1}" if match else name


def write_keras2_layout(model, path: str, until: str | None = None) -> None:
    with h5py.File(path, "w") as f:
        f.attrs["backend"] = b"tensorflow"
        f.attrs["keras_version"] = b"2.1.5"
        names = []
        for layer in model.layers:
            if until and layer.name == until:
                break
            name = keras2_name(layer.name)
            names.append(name.encode())
            group = f.create_group(name)
            weight_names = []
            for weight in layer.weights:
                full = f"{name}/{weight.name}:0"
                group.create_dataset(full, data=weight.numpy())
                weight_names.append(full.encode())
            group.attrs["weight_names"] = weight_names
        f.attrs["layer_names"] = names


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--size", type=int, default=299)
    parser.add_argument("--images", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    rng = np.random.default_rng(args.seed)
    keras.utils.set_random_seed(args.seed)

    model = keras.applications.InceptionV3(weights=None, include_top=True, input_shape=(args.size, args.size, 3))
    # Fresh BatchNorm layers are the identity; give them real statistics so loading them is tested.
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            channels = layer.beta.shape[0]
            layer.beta.assign(rng.normal(0, 0.1, channels).astype("float32"))
            layer.moving_mean.assign(rng.normal(0, 0.2, channels).astype("float32"))
            layer.moving_variance.assign(rng.uniform(0.5, 1.5, channels).astype("float32"))

    write_keras2_layout(model, os.path.join(args.out, "keras2-official.h5"))
    write_keras2_layout(model, os.path.join(args.out, "keras2-official-notop.h5"), until="avg_pool")
    model.save(os.path.join(args.out, "keras3-legacy.h5"))
    model.save_weights(os.path.join(args.out, "keras3.weights.h5"))
    other = keras.Sequential([keras.Input((8,)), keras.layers.Dense(4, name="dense_a"), keras.layers.Dense(2, name="dense_b")])
    other.save(os.path.join(args.out, "other-network.h5"))

    images = rng.integers(0, 256, size=(args.images, args.size, args.size, 3), dtype=np.uint8)
    images.tofile(os.path.join(args.out, "images.u8"))
    x = keras.applications.inception_v3.preprocess_input(images.astype("float32"))
    pooled = keras.Model(model.input, keras.layers.GlobalAveragePooling2D()(model.get_layer("mixed10").output))
    pooled.predict_on_batch(x).astype("float32").tofile(os.path.join(args.out, "features.f32"))
    model.predict_on_batch(x).astype("float32").tofile(os.path.join(args.out, "predictions.f32"))

    notop = keras.applications.InceptionV3(weights=None, include_top=False, input_shape=(args.size, args.size, 3))
    meta = {
        "size": args.size,
        "images": args.images,
        "params_top": model.count_params(),
        "params_notop": notop.count_params(),
        "layers": [
            {"name": keras2_name(layer.name), "class": layer.__class__.__name__, "output": list(layer.output.shape[1:])}
            for layer in model.layers
        ],
    }
    with open(os.path.join(args.out, "meta.json"), "w") as f:
        json.dump(meta, f)


if __name__ == "__main__":
    main()
