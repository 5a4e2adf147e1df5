// Which TensorFlow.js build setup put in place, @tensorflow/tfjs-node (CPU) or @tensorflow/tfjs-node-gpu,
// read from the note setup writes (node_modules/.inception-lab-build.json). The library loads that
// package and nothing else names it (tf.ts). The GPU build needs the CUDA libraries of the venv's pip
// wheels on LD_LIBRARY_PATH from the process's start; npm start, npm test and npx inception-lab set it.
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as path from "path";

export interface Build {
  device: "cpu" | "gpu";
  package: "@tensorflow/tfjs-node" | "@tensorflow/tfjs-node-gpu";
  /** Folders of the CUDA and cuDNN libraries (GPU build), for LD_LIBRARY_PATH. */
  libraryPath: string[];
}

const CPU: Build = { device: "cpu", package: "@tensorflow/tfjs-node", libraryPath: [] };

/** The build note setup wrote beside the packages (INCEPTION_LAB_BUILD_NOTE names another, for tests). */
export function buildNote(): string {
  if (process.env.INCEPTION_LAB_BUILD_NOTE) return process.env.INCEPTION_LAB_BUILD_NOTE;
  return path.join(path.dirname(path.dirname(require.resolve("@tensorflow/tfjs-core/package.json"))), "..", ".inception-lab-build.json");
}

export function currentBuild(): Build {
  try {
    const note = JSON.parse(fs.readFileSync(buildNote(), "utf8")) as Build;
    return note.device === "gpu" ? { ...note, package: "@tensorflow/tfjs-node-gpu" } : CPU;
  } catch {
    return CPU; // a project set up before builds were noted has the CPU build
  }
}

/** The GPU that nvidia-smi sees (name, memory, compute capability, driver), or null. */
export function visibleGpu(): { name: string; memoryMiB: number; computeCapability: string; driver: string } | null {
  try {
    const line = execFileSync("nvidia-smi", ["--query-gpu=name,memory.total,compute_cap,driver_version", "--format=csv,noheader,nounits"], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"], timeout: 10_000 }).split("\n")[0];
    const [name, memory, computeCapability, driver] = line.split(",").map((s) => s.trim());
    return name ? { name, memoryMiB: Number(memory), computeCapability, driver } : null;
  } catch {
    return null;
  }
}

/**
 * Throws, saying what to do, when the GPU build cannot work in this process: no GPU visible, or the
 * CUDA libraries not on LD_LIBRARY_PATH (TensorFlow would then quietly compute on the CPU).
 */
export function checkBuild(build: Build): void {
  if (build.device !== "gpu") return;
  if (!visibleGpu()) {
    throw new Error("The GPU build of TensorFlow is in place, but no NVIDIA GPU is visible now (nvidia-smi does not answer). Make the GPU visible, or set up the CPU build: INCEPTION_LAB_DEVICE=cpu npm run setup.");
  }
  const paths = (process.env.LD_LIBRARY_PATH ?? "").split(":");
  const missing = build.libraryPath.filter((dir) => !paths.includes(dir));
  if (missing.length) {
    throw new Error(`The GPU build needs the CUDA libraries on LD_LIBRARY_PATH when the process starts (${missing[0]}, ...). Start through npm start, npm test or npx inception-lab, or run \`source scripts/env.sh\` first.`);
  }
}

let cpuFlags: string[] | null = null;

/** The CPU's feature flags (Linux: /proc/cpuinfo; elsewhere none are known). */
export function cpuFeatureFlags(): string[] {
  if (cpuFlags) return cpuFlags;
  try {
    const line = fs.readFileSync("/proc/cpuinfo", "utf8").split("\n").find((l) => /^(flags|Features)\s*:/.test(l));
    cpuFlags = line ? line.split(":")[1].trim().split(/\s+/) : [];
  } catch {
    cpuFlags = [];
  }
  return cpuFlags;
}

/** What decides precision: the CPU's flags, and the GPU when the GPU build computes on one. */
export function thisMachine(): { cpuFlags: string[]; gpu: { name: string; computeCapability: string } | null } {
  const gpu = currentBuild().device === "gpu" ? visibleGpu() : null;
  return { cpuFlags: cpuFeatureFlags(), gpu: gpu && { name: gpu.name, computeCapability: gpu.computeCapability } };
}
