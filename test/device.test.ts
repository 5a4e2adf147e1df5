// The GPU build, as far as a machine without a GPU can check it: setup's choice of build against a fake
// nvidia-smi (no driver, a driver that does not answer, one too old for CUDA 12, a good one), a GPU
// wheel that cannot be had (the venv is left as it was), the import point loading
// @tensorflow/tfjs-node-gpu when that build is noted (compiled against the CPU wheel, it runs on the
// CPU: the binding is the same code), and the messages a GPU user meets.
import { test } from "node:test";
import * as assert from "node:assert/strict";
import * as fs from "fs";
import * as path from "path";
import { execFileSync, spawnSync } from "child_process";
import { tf } from "inception-lab";
import { CostModel, type Throughput } from "../kernel-helpers/lab/cost-model";
import { precisionFor } from "../kernel-helpers/runtime/precision";
import { currentBuild } from "../kernel-helpers/runtime/build";
import { Optimizer } from "../kernel-helpers/train/loop/optimizers";
import { TrainingStep } from "../kernel-helpers/train/loop/step";
import { python, root, scratch } from "./helpers";

/** A folder holding an nvidia-smi that behaves as told, to put first on PATH. */
function fakeNvidiaSmi(name: string, behaviour: "fails" | { driver: string }): string {
  const bin = scratch(`fake-nvidia-${name}`);
  const script =
    behaviour === "fails"
      ? `#!/bin/sh\necho "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver." >&2\nexit 9\n`
      : `#!/bin/sh\ncase "$*" in\n  *driver_version*name*|*name*driver_version*) echo "NVIDIA H100 80GB HBM3, 81559, 9.0, ${behaviour.driver}" ;;\n  *compute-apps*) ;;\n  *driver_version*) echo "${behaviour.driver}" ;;\n  *) echo "NVIDIA H100 80GB HBM3, 81559, 9.0, ${behaviour.driver}" ;;\nesac\n`;
  fs.writeFileSync(path.join(bin, "nvidia-smi"), script, { mode: 0o755 });
  return bin;
}

/** PATH without any real nvidia-smi: the system folders and node's. */
const basePath = ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin", path.dirname(process.execPath)].join(":");

function choose(env: Record<string, string>, bin?: string) {
  const result = spawnSync("bash", [path.join(root, "scripts", "device.sh"), "choose"], { encoding: "utf8", env: { ...process.env, INCEPTION_LAB_DEVICE: "", ...env, PATH: bin ? `${bin}:${basePath}` : basePath } });
  return { status: result.status, device: result.stdout.trim(), message: result.stderr.trim() };
}

test("setup's choice: the GPU build only with a working, recent driver; a GPU asked for and not usable is an error with the fix", () => {
  assert.deepEqual(choose({}), { status: 0, device: "cpu", message: "" });
  assert.match(choose({ INCEPTION_LAB_DEVICE: "gpu" }).message, /there is no nvidia-smi: no NVIDIA driver is installed here\. Install the driver \(525\.60 or newer\), or use INCEPTION_LAB_DEVICE=cpu/);
  assert.equal(choose({ INCEPTION_LAB_DEVICE: "gpu" }).status, 1);

  const broken = fakeNvidiaSmi("broken", "fails");
  const fallback = choose({}, broken);
  assert.deepEqual([fallback.status, fallback.device], [0, "cpu"]);
  assert.match(fallback.message, /nvidia-smi is here but does not answer \(no working driver\): using the CPU build/);
  assert.match(choose({ INCEPTION_LAB_DEVICE: "gpu" }, broken).message, /nvidia-smi does not answer: the NVIDIA driver is not loaded or not working/);

  const old = fakeNvidiaSmi("old", { driver: "450.80.02" });
  assert.deepEqual([choose({}, old).device, choose({}, old).status], ["cpu", 0]);
  assert.match(choose({}, old).message, /NVIDIA driver 450\.80\.02 is too old for CUDA 12 \(needs 525\.60\): using the CPU build/);
  const forced = choose({ INCEPTION_LAB_DEVICE: "gpu" }, old);
  assert.equal(forced.status, 1);
  assert.match(forced.message, /the NVIDIA driver is 450\.80\.02, too old for CUDA 12 \(TensorFlow 2\.21 needs 525\.60 or newer\)\. Update the driver, or use INCEPTION_LAB_DEVICE=cpu/);

  const good = fakeNvidiaSmi("good", { driver: "550.54.14" });
  assert.deepEqual(choose({}, good), { status: 0, device: "gpu", message: "" });
  assert.equal(choose({ INCEPTION_LAB_DEVICE: "cpu" }, good).device, "cpu", "the override wins");
  assert.match(choose({ INCEPTION_LAB_DEVICE: "tpu" }).message, /INCEPTION_LAB_DEVICE is "tpu": use gpu, cpu, or leave it unset/);
});

test("a GPU wheel that cannot be installed stops setup with the fix, and leaves the venv's TensorFlow in place", () => {
  const good = fakeNvidiaSmi("wheel", { driver: "550.54.14" });
  const result = spawnSync("bash", [path.join(root, "scripts", "setup.sh")], {
    encoding: "utf8",
    env: { ...process.env, PATH: `${good}:${process.env.PATH}`, INCEPTION_LAB_DEVICE: "gpu", INCEPTION_LAB_GPU_WHEEL: "tensorflow-gpu-that-does-not-exist==9.9.9", PIP_TIMEOUT: "5" },
  });
  assert.equal(result.status, 1, result.stdout + result.stderr);
  assert.match(result.stderr, /FAILED at: installing the GPU wheel tensorflow-gpu-that-does-not-exist==9\.9\.9/);
  assert.match(result.stderr, /use the CPU build: INCEPTION_LAB_DEVICE=cpu npm run setup/);
  const version = execFileSync(python, ["-c", "import importlib.metadata as m; print(m.version('tensorflow-cpu'))"], { encoding: "utf8" }).trim();
  assert.equal(version, "2.21.0", "tensorflow-cpu is still installed");
});

test("with the GPU build noted, the import point loads @tensorflow/tfjs-node-gpu (built against the wheel) and nothing else", () => {
  const built = spawnSync("bash", [path.join(root, "scripts", "build-binding.sh"), "gpu"], { encoding: "utf8" });
  assert.equal(built.status, 0, built.stdout + built.stderr);
  const note = path.join(scratch("gpu-note"), "build.json");
  fs.writeFileSync(note, JSON.stringify({ device: "gpu", package: "@tensorflow/tfjs-node-gpu", libraryPath: [] }));
  const probe = `
    const lab = require("inception-lab");
    const tf = lab.tf;
    const loaded = Object.keys(require.cache).filter((f) => f.endsWith("tfjs_binding.node"));
    const product = tf.matMul(tf.tensor2d([[1, 2], [3, 4]]), tf.tensor2d([[5], [6]])).arraySync();
    console.log(JSON.stringify({ loaded, same: require("@tensorflow/tfjs-node") === require("@tensorflow/tfjs-node-gpu"), backend: tf.getBackend(), version: tf.engine().backend.binding.TF_Version, product, build: lab.environment().info.build }));`;
  const run = (bin: string | null) =>
    spawnSync(process.execPath, ["--require", "ts-node/register/transpile-only", "-e", probe], {
      cwd: root,
      encoding: "utf8",
      env: { ...process.env, INCEPTION_LAB_BUILD_NOTE: note, PATH: bin ? `${bin}:${process.env.PATH}` : basePath },
    });
  const result = run(fakeNvidiaSmi("import", { driver: "550.54.14" }));
  assert.equal(result.status, 0, result.stderr);
  const seen = JSON.parse(result.stdout.trim().split("\n").pop()!);
  assert.deepEqual(seen.loaded.map((f: string) => path.relative(path.join(root, "node_modules"), f)), ["@tensorflow/tfjs-node-gpu/lib/napi-v8/tfjs_binding.node"]);
  assert.equal(seen.same, true, "@tensorflow/tfjs-node resolves to the -gpu package: one TensorFlow in the process");
  assert.deepEqual([seen.backend, seen.version, seen.product], ["tensorflow", "2.21.0", [[17], [39]]]);
  assert.match(seen.build, /@tensorflow\/tfjs-node-gpu \(GPU build\)/);

  const noGpu = run(null);
  assert.notEqual(noGpu.status, 0);
  assert.match(noGpu.stderr, /The GPU build of TensorFlow is in place, but no NVIDIA GPU is visible now.*INCEPTION_LAB_DEVICE=cpu npm run setup/);
});

test("a training step out of memory says which batch size to try", () => {
  const w = tf.variable(tf.ones([2, 2]));
  const step = new TrainingStep(() => {
    throw new Error("OOM when allocating tensor with shape[64,147,147,64] and type float on /job:localhost/replica:0/task:0/device:GPU:0");
  }, new Optimizer("sgd", [w], 0.1), { classes: 2, graph: false });
  const where = currentBuild().device === "gpu" ? "GPU memory" : "memory";
  assert.throws(() => step.run(tf.zeros([16, 2]), tf.zeros([16], "int32") as tf.Tensor1D), new RegExp(`Out of ${where} in a training step of 16 images: try batchSize: 8 \\(or a smaller inputSize\\)\\. TensorFlow said: OOM when allocating`));
  step.dispose();
});

test("the cost model prices named GPUs from their published, measured Inception-v3 training rates at the measured precision, with sources, and prices the whole network", () => {
  const flops = { forward: 11.5e9, trainTop: 20e9, trainTopCached: 12e9, trainAll: 34.5e9 };
  const float32 = precisionFor("float32");
  const throughput: Throughput = { inputSize: 299, batchSize: 8, layer: "mixed10", forward: 35, validation: 35, head: 2000, trainTop: 20, trainTopCached: 30, trainAll: 10, unfreezeFrom: "mixed7", flops, device: "a CPU", onGpu: false, precision: float32 };
  const costs = new CostModel(throughput);
  assert.deepEqual(costs.gpuEstimates.map((g) => `${g.rate.gpu} ${g.rate.precision}`), ["NVIDIA K80 FP32", "NVIDIA P100 FP32", "NVIDIA V100 FP32", "NVIDIA A100 TF32"]);
  const fineTuneAll = costs.gpuEstimates.map((g) => g.seconds[2]);
  assert.ok(fineTuneAll.every((s, i) => i === 0 || s < fineTuneAll[i - 1]), `each newer GPU faster: ${fineTuneAll}`);
  // 2,000 steps of 32 images at the K80's measured 29.5 images/s (TensorFlow's benchmarks, 2017): 36 min, so a day is 40x.
  assert.ok(Math.abs(costs.gpu("NVIDIA K80")!.seconds[2] - 64000 / 29.5) < 1e-6);
  // retrain.py: 3,670 images forward at 3x the training rate, then 4,000 head steps of 100 at this machine's measured time.
  assert.ok(Math.abs(costs.gpu("NVIDIA K80")!.seconds[0] - (3670 / (3 * 29.5) + 4000 * (100 / 2000))) < 1e-6);
  assert.match(costs.assumptions(), /NVIDIA K80 FP32: 29\.5 training images\/s \(TensorFlow's benchmarks page .*May 2017\)/);
  assert.match(costs.toText(), /NVIDIA K80, FP32 \(from published rate\)/);
  assert.match(costs.table().title!, /the whole network \(to mixed10\)/);

  // At a lower precision the GPUs' float16 rates price it (the H100's converted from ResNet-50, and said so), and a float32 measurement adds its column.
  const low = new CostModel({ ...throughput, precision: precisionFor("bfloat16"), trainAll: 20 }, { float32: throughput });
  assert.deepEqual(low.gpuEstimates.map((g) => `${g.rate.gpu} ${g.rate.precision}`), ["NVIDIA V100 FP16", "NVIDIA A100 FP16", "NVIDIA H100 SXM FP16"]);
  assert.ok(Math.abs(low.gpu("NVIDIA A100")!.seconds[2] - 64000 / 1222) < 1e-6);
  assert.match(low.assumptions(), /ResNet-50's 2,616 images\/s times 0\.60/);
  assert.match(low.toText(), /at float32 \(measured\)/);
  assert.equal(low.rows[2].float32Seconds, costs.rows[2].seconds);

  // The recipes train the whole network: a throughput measured to another cut is refused, naming the fix.
  assert.throws(() => new CostModel({ ...throughput, layer: "mixed7" }), /measured up to mixed7, but the recipes .* use the whole network: measure with measureThroughput\(inception, \{ layer: "mixed10" \}\)/);
  assert.throws(() => new CostModel(throughput, { images: 200 } as never), /CostModel: there is no option "images"/);

  // Measured on a GPU: the measurement alone, whatever build the process drawing the table has.
  const onGpu = new CostModel({ ...throughput, device: "NVIDIA H100 80GB HBM3", onGpu: true });
  assert.deepEqual(onGpu.gpuEstimates, []);
  assert.match(onGpu.toText(), /NVIDIA H100 80GB HBM3, float32 \(measured\)/);
  assert.doesNotMatch(onGpu.toText(), /published|assum/);
});
