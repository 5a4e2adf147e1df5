// What the notebook runs on: shown at the top of every tutorial so measurements can be compared.
import * as fs from "fs";
import * as os from "os";
import { Table } from "../display/display";
import { tf } from "../runtime/tf";

export interface EnvironmentInfo {
  backend: string;
  tensorflow: string;
  tfjs: string;
  node: string;
  cpu: string;
  cpuThreads: number;
  tensorflowThreads: string;
  gpu: string;
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

function visibleGpu(): string {
  const nvidia = fs.existsSync("/dev/nvidia0") || fs.existsSync("/proc/driver/nvidia/version");
  return nvidia ? "NVIDIA GPU present, not used (this project builds the CPU tfjs-node)" : "none visible";
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
        ["GPU", info.gpu],
        ["memory", `${info.memoryFreeGiB.toFixed(1)} GiB free of ${info.memoryTotalGiB.toFixed(1)} GiB`],
        ["this process", `${info.processRssGiB.toFixed(2)} GiB resident, ${info.tensors} tensors`],
        ["budget", `${info.budget} (INCEPTION_LAB_BUDGET)`],
      ],
      "Environment",
    );
  }
}

/** Backend, versions, threads, GPU and memory, as a table. */
export function environment(): Environment {
  const binding = (tf.engine().backend as unknown as { binding?: { TF_Version?: string } }).binding;
  const threads = [process.env.TF_NUM_INTRAOP_THREADS, process.env.TF_NUM_INTEROP_THREADS];
  return new Environment({
    backend: tf.getBackend(),
    tensorflow: binding?.TF_Version ?? "not native",
    tfjs: tf.version.tfjs,
    node: process.versions.node,
    cpu: os.cpus()[0]?.model.trim() ?? "unknown",
    cpuThreads: os.availableParallelism(),
    tensorflowThreads: threads.some(Boolean)
      ? `intra-op ${threads[0] ?? "all"}, inter-op ${threads[1] ?? "all"}`
      : "all cores (TF_NUM_INTRAOP_THREADS unset)",
    gpu: visibleGpu(),
    memoryTotalGiB: os.totalmem() / 2 ** 30,
    memoryFreeGiB: os.freemem() / 2 ** 30,
    processRssGiB: process.memoryUsage.rss() / 2 ** 30,
    tensors: tf.memory().numTensors,
    budget: budget(),
  });
}
