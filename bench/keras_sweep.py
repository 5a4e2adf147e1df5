"""Interactive speed, Keras' side (bench.ts runs it): a learning-rate sweep as a Keras notebook does it,
a fresh InceptionV3 built, compiled and fitted for one epoch per point, over the same images and split
as the library's run. Prints one JSON line per point. usage: keras_sweep.py TRAIN_LIST VALIDATION_LIST EPOCHS LR [LR ...]
(each list: a file with one "path<TAB>label" per line)."""
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import keras  # noqa: E402

threads = int(os.environ.get("TF_NUM_INTRAOP_THREADS", "0"))
if threads:
    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(int(os.environ.get("TF_NUM_INTEROP_THREADS", threads)))


def load(listing):
    rows = [line.rstrip("\n").split("\t") for line in open(listing)]
    images = np.stack([tf.image.resize(tf.io.decode_image(tf.io.read_file(p), channels=3), (299, 299)).numpy() for p, _ in rows])
    return images.astype("float32"), np.array([int(label) for _, label in rows])


# Keras at its best setting on a CPU with bfloat16 units: BENCH_POLICY=mixed_bfloat16 (float32 by default).
keras.mixed_precision.set_global_policy(os.environ.get("BENCH_POLICY", "float32"))
train, validation = load(sys.argv[1]), load(sys.argv[2])
classes = int(max(train[1].max(), validation[1].max())) + 1
epochs = int(sys.argv[3])
# BENCH_TRAIN_FROM=mixed7: layers below that block frozen (Keras puts frozen BatchNorm in inference mode).
train_from = os.environ.get("BENCH_TRAIN_FROM")


class EpochTimes(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.seconds, self.last = [], time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        now = time.perf_counter()
        self.seconds.append(now - self.last)
        self.last = now


for rate in map(float, sys.argv[4:]):
    started = time.perf_counter()
    keras.utils.set_random_seed(0)
    inputs = keras.Input((299, 299, 3))
    base = keras.applications.InceptionV3(weights=None, include_top=False, input_tensor=keras.layers.Rescaling(1 / 127.5, -1)(inputs))
    outputs = keras.layers.Dense(classes)(keras.layers.Dropout(0.2)(keras.layers.GlobalAveragePooling2D()(base.output)))
    model = keras.Model(inputs, outputs)
    if train_from:
        before = f"mixed{int(train_from[5:]) - 1}"
        trainable = False
        for layer in base.layers:
            layer.trainable = trainable
            if layer.name == before:
                trainable = True  # layers after mixed(N-1)'s output belong to mixedN and up
    model.compile(optimizer=keras.optimizers.Adam(rate), loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    times = EpochTimes()
    model.fit(train[0], train[1], batch_size=16, epochs=epochs, validation_data=validation, validation_batch_size=32, verbose=0, callbacks=[times])
    print(json.dumps({"learningRate": rate, "wall": time.perf_counter() - started, "epochSeconds": times.seconds}), flush=True)
