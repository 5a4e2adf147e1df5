"""Keras side of the benchmark: one kind of work, timed step by step after a warm-up, as JSON.

usage: keras_worker.py KIND BATCH SIZE STEPS
KIND: features | head | finetune-top | finetune-all | scratch
"""
import json
import os
import resource
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

kind, batch, size, steps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
# Keras at its best setting on a CPU with AMX: BENCH_POLICY=mixed_bfloat16 (float32 by default).
policy = os.environ.get("BENCH_POLICY", "float32")
keras.mixed_precision.set_global_policy(policy)
CLASSES = 5
rng = np.random.default_rng(0)
keras.utils.set_random_seed(0)


def timed(step):
    for _ in range(int(os.environ.get("BENCH_WARMUP", "1"))):
        step()  # warm-up: graph building and first-run costs
    times = []
    for _ in range(steps):
        started = time.perf_counter()
        step()
        times.append(time.perf_counter() - started)
    return times


labels = rng.integers(0, CLASSES, size=batch)
if kind == "head":
    x = rng.normal(size=(batch, 2048)).astype("float32")
    head = keras.Sequential([keras.Input((2048,)), keras.layers.Dropout(0.2), keras.layers.Dense(CLASSES)])
    head.compile(keras.optimizers.Adam(1e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    times = timed(lambda: head.train_on_batch(x, labels))
else:
    x = keras.applications.inception_v3.preprocess_input(rng.uniform(0, 255, size=(batch, size, size, 3)).astype("float32"))
    base = keras.applications.InceptionV3(weights=None, include_top=False, input_shape=(size, size, 3))
    pooled = keras.layers.GlobalAveragePooling2D()(base.output)
    if kind == "features":
        model = keras.Model(base.input, pooled)
        times = timed(lambda: model.predict_on_batch(x))
    else:
        if kind == "finetune-top":
            # Keras puts frozen BatchNorm layers in inference mode: the behaviour the library matches.
            trainable = False
            for layer in base.layers:
                if layer.name == "mixed6":
                    trainable = True  # layers after mixed6's output belong to mixed7 and up
                    layer.trainable = False
                    continue
                layer.trainable = trainable
        logits = keras.layers.Dense(CLASSES)(keras.layers.Dropout(0.2)(pooled))
        model = keras.Model(base.input, logits)
        model.compile(keras.optimizers.Adam(1e-4), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        times = timed(lambda: model.train_on_batch(x, labels))

peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"runtime": "keras", "policy": policy, "kind": kind, "batch": batch, "times": times, "peakRssMB": peak}))
