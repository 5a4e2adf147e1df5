"""A TensorFlow Lite model in an interpreter, for the library (train/classifier/tflite.ts keeps one process
per model for as long as its classifier lives, so no call waits for Python and TensorFlow to start).

  tflite-interpreter.py MODEL.tflite

The interpreter is LiteRT's (ai_edge_litert), as on a phone, where it is installed, else TensorFlow's own
tf.lite.Interpreter (deprecated in favour of LiteRT, and the same kernels); the first line says which. Each
request is one JSON line on stdin followed by its images, raw little-endian float32 pixels 0..255 (n x size
x size x 3, as the library decodes them); each answer is one JSON line on stdout:

  {"op": "probabilities", "images": n}   -> {"probabilities": [[...], ...]}   one invocation per image
  {"op": "latency", "repeats": r}  + 1   -> {"seconds": [...]}                r invocations after 3 warm-up

A model whose input is integer (int8 quantization) gets the pixels quantized by its own input scale. A
failure to start is one line, `tflite-interpreter: <what>`, on stderr; a failed request answers
{"error": "<what>"}. stdin closing (the library ended, or was killed) ends the process.
"""
import json
import os
import sys
import time

# Answers go to the real stdout; anything TensorFlow prints goes to stderr, so it cannot garble them.
answers = os.fdopen(os.dup(1), "w")
os.dup2(2, 1)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np  # noqa: E402


def open_interpreter(model_file):
    """The interpreter and its name: LiteRT's when installed, else TensorFlow's."""
    threads = os.cpu_count()
    try:
        from ai_edge_litert.interpreter import Interpreter
        from importlib.metadata import version

        return Interpreter(model_path=model_file, num_threads=threads), f"LiteRT {version('ai-edge-litert')} interpreter, {threads} threads"
    except ImportError:
        import warnings

        warnings.simplefilter("ignore")  # tf.lite.Interpreter's deprecation notice: the name above says which ran
        import tensorflow as tf

        return tf.lite.Interpreter(model_path=model_file, num_threads=threads), f"tf.lite.Interpreter (TensorFlow {tf.__version__}), {threads} threads"


def first_line(error):
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def main(model_file):
    try:
        interpreter, name = open_interpreter(model_file)
        interpreter.allocate_tensors()
    except Exception as error:  # the interpreter's own words: the file is not a model it runs
        print(f"tflite-interpreter: {model_file}: the TensorFlow Lite interpreter cannot load it ({first_line(error)})", file=sys.stderr)
        sys.exit(1)
    given, taken = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    shape = [int(n) for n in given["shape"]]
    if len(shape) != 4 or shape[0] != 1 or shape[1] != shape[2] or shape[3] != 3:
        print(f"tflite-interpreter: {model_file}: its input is {shape}, not one square RGB image [1, size, size, 3]", file=sys.stderr)
        sys.exit(1)
    size = shape[1]

    def invoke(image):
        """One image's probabilities, as the model's input and output types need them."""
        scale, zero = given["quantization"]
        if np.issubdtype(given["dtype"], np.integer):
            limits = np.iinfo(given["dtype"])
            image = np.clip(np.round(image / scale + zero) if scale else image, limits.min, limits.max)
        interpreter.set_tensor(given["index"], image[None].astype(given["dtype"]))
        interpreter.invoke()
        output = interpreter.get_tensor(taken["index"])[0]
        scale, zero = taken["quantization"]
        return (output.astype(np.float32) - zero) * scale if np.issubdtype(taken["dtype"], np.integer) else output

    def answer(message):
        answers.write(json.dumps(message) + "\n")
        answers.flush()

    answer({"interpreter": name, "inputSize": size, "inputType": np.dtype(given["dtype"]).name, "outputs": int(taken["shape"][-1])})
    image_bytes = size * size * 3 * 4
    while True:
        header = sys.stdin.buffer.readline()
        if not header:
            return
        request = json.loads(header)
        count = request.get("images", 1)
        pixels = sys.stdin.buffer.read(count * image_bytes)
        if len(pixels) < count * image_bytes:
            return  # the library went away mid-request
        images = np.frombuffer(pixels, dtype="<f4").reshape(count, size, size, 3)
        try:
            if request["op"] == "probabilities":
                answer({"probabilities": [invoke(image).tolist() for image in images]})
            else:
                for _ in range(3):
                    invoke(images[0])
                seconds = []
                for _ in range(request["repeats"]):
                    started = time.perf_counter()
                    invoke(images[0])
                    seconds.append(time.perf_counter() - started)
                answer({"seconds": seconds})
        except Exception as error:
            answer({"error": first_line(error)})


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print("tflite-interpreter: usage: tflite-interpreter.py MODEL.tflite", file=sys.stderr)
        sys.exit(1)
    try:
        main(sys.argv[1])
    except (KeyboardInterrupt, BrokenPipeError):
        pass
