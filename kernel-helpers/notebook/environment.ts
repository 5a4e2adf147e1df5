// What the notebook runs on: shown at the top of every tutorial so measurements can be compared.
import { execFileSync } from "child_process";
import * as os from "os";
import { Table } from "../display/display";
import { currentBuild, visibleGpu } from "../runtime/build";
import { precisionFor } from "../runtime/precision";
import { tensorflowVersion } from "../runtime/native-ops";
import { tf } from "../runtime/tf";
import { projectPython } from "../util/python";

export interface EnvironmentInfo {
  backend: string;
  tensorflow: string;
  tfjs: string;
  node: string;
  cpu: string;
  cpuThreads: number;
  tensorflowThreads: string;
  /** Which build setup put in place: the package and its device. */
  build: string;
  gpu: string;
  /** What precision "auto" chooses here, and why. */
  precision: string;
  /** GPU build: the CUDA and cuDNN versions TensorFlow was built with, and whether an op ran on the GPU. */
  cuda?: string;
  gpuCheck?: string;
  memoryTotalGiB: number;
  memoryFreeGiB: number;
  processRssGiB: number;
  tensors: number;
  budget: Budget;
}

/** Budget the tutorials run with: "full" by default, "fast" for the test run (INCEPTION_LAB_BUDGET=fast). */
export type Budget = "fast" | "full";

export function budget(): Budget {
  const value = (process.env.INCEPTION_LAB_BUDGET ?? "full").toLowerCase();
  if (value !== "fast" && value !== "full") {
    throw new Error(`INCEPTION_LAB_BUDGET is "${value}": set it to "fast" (small test runs) or "full" (default), or unset it.`);
  }
  return value;
}

/** What nvidia-smi says of the GPU, and whether this build uses it. */
function describeGpu(device: "cpu" | "gpu"): string {
  const gpu = visibleGpu();
  if (!gpu) return "none visible";
  const what = `${gpu.name}, ${(gpu.memoryMiB / 1024).toFixed(0)} GiB, compute capability ${gpu.computeCapability}, driver ${gpu.driver}`;
  return device === "gpu" ? what : `${what}: present, not used (the CPU build is set up; INCEPTION_LAB_DEVICE=gpu npm run setup builds for the GPU)`;
}

/** The CUDA and cuDNN versions of the TensorFlow wheel (its build info, read by the venv's Python). */
function cudaVersions(): string {
  try {
    const code = "import tensorflow as tf; i = tf.sysconfig.get_build_info(); print(f\"CUDA {i.get('cuda_version', '?')}, cuDNN {i.get('cudnn_version', '?')}\")";
    return execFileSync(projectPython(), ["-c", code], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"], env: { ...process.env, TF_CPP_MIN_LOG_LEVEL: "3" } }).trim();
  } catch {
    return "unknown (the venv's Python could not tell)";
  }
}

/** Runs a matrix product, then asks nvidia-smi whether this process holds GPU memory: proof the op ran there. */
function gpuCheck(): string {
  const a = tf.randomNormal([2048, 2048]);
  const product = tf.matMul(a, a);
  product.dataSync();
  tf.dispose([a, product]);
  try {
    const apps = execFileSync("nvidia-smi", ["--query-compute-apps=pid,used_memory", "--format=csv,noheader,nounits"], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] });
    const mine = apps.split("\n").map((l) => l.split(",").map((x) => x.trim())).find(([pid]) => Number(pid) === process.pid);
    return mine ? `yes: a matrix product ran, and this process holds ${mine[1]} MiB of GPU memory` : "NO: this process holds no GPU memory after a matrix product; TensorFlow computes on the CPU";
  } catch {
    return "unknown (nvidia-smi did not answer)";
  }
}

export class Environment extends Table {
  constructor(readonly info: EnvironmentInfo) {
    super(
      ["", "value"],
      [
        ["backend", info.backend],
        ["TensorFlow (native)", info.tensorflow],
        ["TensorFlow.js", info.tfjs],
        ["Node.js", info.node],
        ["CPU", info.cpu],
        ["CPU threads", info.cpuThreads],
        ["TensorFlow threads", info.tensorflowThreads],
        ["build", info.build],
        ["GPU", info.gpu],
        ["precision (auto)", info.precision],
        ...(info.cuda ? [["CUDA (TensorFlow)", info.cuda]] : []),
        ...(info.gpuCheck ? [["ran on the GPU", info.gpuCheck]] : []),
        ["memory", `${info.memoryFreeGiB.toFixed(1)} GiB free of ${info.memoryTotalGiB.toFixed(1)} GiB`],
        ["this process", `${info.processRssGiB.toFixed(2)} GiB resident, ${info.tensors} tensors`],
        ["budget", `${info.budget} (INCEPTION_LAB_BUDGET)`],
      ],
      "Environment",
    );
  }
}

/** Backend, versions, threads, the build and its device, and memory, as a table. */
export function environment(): Environment {
  const build = currentBuild();
  const threads = [process.env.TF_NUM_INTRAOP_THREADS, process.env.TF_NUM_INTEROP_THREADS];
  return new Environment({
    backend: tf.getBackend(),
    tensorflow: tensorflowVersion() ?? "not native",
    tfjs: tf.version.tfjs,
    node: process.versions.node,
    cpu: os.cpus()[0]?.model.trim() ?? "unknown",
    cpuThreads: os.availableParallelism(),
    tensorflowThreads: threads.some(Boolean)
      ? `intra-op ${threads[0] ?? "all"}, inter-op ${threads[1] ?? "all"}`
      : "all cores (TF_NUM_INTRAOP_THREADS unset)",
    build: `${build.package} (${build.device === "gpu" ? "GPU" : "CPU"} build)`,
    gpu: describeGpu(build.device),
    precision: (({ precision, reason }) => `${precision} (${reason.replace(/^auto: /, "")})`)(precisionFor("auto")),
    ...(build.device === "gpu" ? { cuda: cudaVersions(), gpuCheck: gpuCheck() } : {}),
    memoryTotalGiB: os.totalmem() / 2 ** 30,
    memoryFreeGiB: os.freemem() / 2 ** 30,
    processRssGiB: process.memoryUsage.rss() / 2 ** 30,
    tensors: tf.memory().numTensors,
    budget: budget(),
  });
}
