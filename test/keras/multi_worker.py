# Trains the library's Keras export (--keras_dir) on its training split (--output_split) on several machines: the
# same script on each, with TF_CONFIG naming every worker and this one's index (0, the chief, keeps the model).
import csv, json, os
import keras, tensorflow as tf

strategy = tf.distribute.MultiWorkerMirroredStrategy()              # first: it reads TF_CONFIG and waits for every worker
size = json.load(open("export-keras/labels.json"))["inputSize"]     # the image side the library trained at
rows = [row for row in csv.DictReader(open("split.csv", encoding="utf-8")) if row["split"] == "train"]

def load(path, label):                                              # as in the single-machine example above
    image = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
    return tf.image.resize(image, (size, size), antialias=True), label

batch = 16 * strategy.num_replicas_in_sync                          # 16 images a worker a step; each worker reads its share
paths, labels = [row["path"] for row in rows], [int(row["label"]) for row in rows]
train = tf.data.Dataset.from_tensor_slices((paths, labels)).shuffle(len(rows), seed=0).map(load).repeat().batch(batch)
with strategy.scope():
    model = keras.models.load_model("export-keras/model.keras")     # takes RGB 0..255, as the library
    optimizer = keras.optimizers.Adam(1e-5)

# Keras 3's model.fit does not run under MultiWorkerMirroredStrategy (keras-team/keras#20585): a step of our own.
@tf.function
def step(images, labels):
    def on_each_worker(images, labels):
        with tf.GradientTape() as tape:
            losses = keras.losses.sparse_categorical_crossentropy(labels, model(images, training=True))
            loss = tf.nn.compute_average_loss(losses, global_batch_size=batch)
        optimizer.apply_gradients(zip(tape.gradient(loss, model.trainable_variables), model.trainable_variables))  # gradients summed over the workers
        return loss
    return strategy.reduce("SUM", strategy.run(on_each_worker, (images, labels)), axis=None)

steps = max(1, len(rows) // batch)                                  # one epoch; every worker the same number of steps
batches = iter(strategy.experimental_distribute_dataset(train))
for i in range(steps):
    print(f"step {i + 1}/{steps}: loss {float(step(*next(batches))):.4f}", flush=True)

if json.loads(os.environ["TF_CONFIG"])["task"]["index"] == 0:         # the chief keeps the model (Keras 3 saves without the others)
    model.save("trained-multi-worker.keras")
