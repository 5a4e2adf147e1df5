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
import { CostModel, GPUS, type Throughput } from "../kernel-helpers/lab/cost-model";
import { currentBuild } from "../kernel-helpers/runtime/build";
import { Optimizer } from "../kernel-helpers/train/optimizers";
import { TrainingStep } from "../kernel-helpers/train/step";
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

test("the cost model estimates named GPUs from the recipe's operations at the measured precision, states its assumption beside this machine's measured share, and refuses an impossible share", () => {
  const flops = { forward: 11.5e9, trainTop: 20e9, trainTopCached: 12e9, trainAll: 34.5e9 };
  const throughput: Throughput = { inputSize: 299, batchSize: 8, forward: 35, validation: 35, head: 2000, trainTop: 20, trainTopCached: 30, trainAll: 10, unfreezeFrom: "mixed7", flops, device: "a CPU", onGpu: false, precision: "float32", precisionReason: "float32, as asked", peakFlops: 500e9 };
  const costs = new CostModel(throughput);
  assert.deepEqual(costs.gpuEstimates.map((g) => g.name), GPUS.map((g) => g.name));
  const fineTuneAll = costs.gpuEstimates.map((g) => g.seconds[2]);
  assert.ok(fineTuneAll[0] > fineTuneAll[1] && fineTuneAll[1] > fineTuneAll[2] && fineTuneAll[2] > fineTuneAll[3], `K80 > T4 > A100 > H100: ${fineTuneAll}`);
  // 2,000 steps of 32 images x 34.5 GFLOP on a T4 (no TF32) at 30 % of 8.1 TFLOP/s; on an A100 at 15 % of TF32's 156.
  assert.ok(Math.abs(costs.gpuEstimates[1].seconds[2] - (64000 * 34.5e9) / (8.1e12 * 0.3)) < 1e-6);
  assert.ok(Math.abs(costs.gpuEstimates[2].seconds[2] - (64000 * 34.5e9) / (156e12 * 0.15)) < 1e-6);
  assert.match(costs.toText(), /NVIDIA T4, FP32 \(estimate\)/);
  assert.match(costs.toText(), /assumed 15 % of a GPU's TF32 tensor-core peak, or 30 % of its FP32 peak where it has no such tensor cores\. This machine's full training step reached 345 GFLOP\/s at float32, 69 % of the rate of its own convolution kernel at that precision \(500 GFLOP\/s/);
  assert.equal(costs.utilisation, 0.69);

  // At a lower precision GPUs are estimated at their float16 tensor cores, and a float32 measurement adds its column.
  const low = new CostModel({ ...throughput, precision: "bfloat16", trainAll: 20, peakFlops: 2000e9 }, { float32: throughput });
  assert.ok(Math.abs(low.gpuEstimates[1].seconds[2] - (64000 * 34.5e9) / (65e12 * 0.15)) < 1e-6, "T4 at float16");
  assert.equal(low.gpuEstimates[0].rate, "FP32", "the K80 has no tensor cores");
  assert.match(low.toText(), /at float32 \(measured\)/);
  assert.equal(low.rows[2].float32Seconds, costs.rows[2].seconds);

  // A share above 100 % means the measurements contradict each other: no table is printed.
  assert.throws(() => new CostModel({ ...throughput, peakFlops: 300e9 }), /faster than this machine's own convolution rate at float32 \(300 GFLOP\/s\).*Measure again/);

  // Measured on a GPU: the measurement alone, whatever build the process drawing the table has.
  const onGpu = new CostModel({ ...throughput, device: "NVIDIA H100 80GB HBM3", onGpu: true });
  assert.deepEqual([onGpu.gpuEstimates, onGpu.utilisation], [[], null]);
  assert.match(onGpu.toText(), /NVIDIA H100 80GB HBM3, float32 \(measured\)/);
  assert.doesNotMatch(onGpu.toText(), /estimate|assumed/);
});
