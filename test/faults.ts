// Faults injected into this process's file calls, for tests: a full disk on chosen writes (half the
// bytes land first, as a real ENOSPC leaves a partial file), reads cut short, and a kernel interrupt.
// The library reaches fs through the module object, so patching it here reaches every write it makes.
import type { PathOrFileDescriptor, WriteFileOptions } from "fs";
// The module object itself (not an import wrapper with getters), so its functions can be replaced.
const fs: typeof import("fs") = require("fs");

export interface FaultCounts {
  enospc: number;
  truncated: number;
  interrupts: number;
}

export interface FaultRules {
  /** Whether this write should fail with ENOSPC. */
  failWrite?: (file: string) => boolean;
  /** Whether this read should return only part of the file. */
  truncateRead?: (file: string) => boolean;
}

/** Applies the rules until `restore()`; `counts` says how many faults were injected. */
export function injectFaults(rules: FaultRules) {
  const counts: FaultCounts = { enospc: 0, truncated: 0, interrupts: 0 };
  const { writeFileSync, readFileSync } = fs;
  const mutable = fs as unknown as Record<string, unknown>;
  mutable.writeFileSync = (file: PathOrFileDescriptor, data: string | NodeJS.ArrayBufferView, options?: WriteFileOptions) => {
    if (typeof file === "string" && rules.failWrite?.(file)) {
      counts.enospc++;
      const bytes = typeof data === "string" ? Buffer.from(data) : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
      writeFileSync(file, bytes.subarray(0, Math.floor(bytes.length / 2)));
      throw Object.assign(new Error(`ENOSPC: no space left on device, write '${file}'`), { code: "ENOSPC", errno: -28, syscall: "write", path: file });
    }
    return writeFileSync(file, data, options);
  };
  mutable.readFileSync = (file: PathOrFileDescriptor, options?: unknown) => {
    const result = (readFileSync as (f: PathOrFileDescriptor, o?: unknown) => string | Buffer)(file, options);
    if (typeof file === "string" && Buffer.isBuffer(result) && rules.truncateRead?.(file)) {
      counts.truncated++;
      return result.subarray(0, Math.floor(result.length / 3));
    }
    return result;
  };
  return {
    counts,
    /** A kernel interrupt, as Jupyter's stop button delivers it to the kernel process. */
    interrupt() {
      counts.interrupts++;
      process.emit("SIGINT");
    },
    restore() {
      mutable.writeFileSync = writeFileSync;
      mutable.readFileSync = readFileSync;
    },
  };
}

/** Every file and folder below `dir`, as relative paths, sorted. */
export function tree(dir: string, prefix = ""): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(`${dir}/${prefix}`, { withFileTypes: true })
    .flatMap((entry) => {
      const relative = prefix ? `${prefix}/${entry.name}` : entry.name;
      return entry.isDirectory() ? [relative + "/", ...tree(dir, relative)] : [relative];
    })
    .sort();
}

/** Names a failed write or an interrupt must never leave behind. */
export const LEFTOVER = /\.(tmp|old)-\d+-[0-9a-f]+|\.lock$|\.part$/;

export interface ProcessEntry {
  pid: number;
  parent: number;
  /** "Z" for a zombie: dead, not yet collected by its parent. */
  state: string;
  command: string;
}

/** The processes of this machine (Linux /proc), with their parents and command lines. */
export function processes(): ProcessEntry[] {
  return fs.readdirSync("/proc").flatMap((name) => {
    if (!/^\d+$/.test(name)) return [];
    try {
      const stat = fs.readFileSync(`/proc/${name}/stat`, "utf8");
      // pid (comm) state ppid ...: comm may hold spaces and parentheses, so read after the last ")".
      const [state, parent] = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      const command = fs.readFileSync(`/proc/${name}/cmdline`, "utf8").split("\0").join(" ");
      return [{ pid: Number(name), parent: Number(parent), state, command }];
    } catch {
      return []; // ended while being read
    }
  });
}

/** Whether a process with this id still runs (a zombie does not). */
export function running(pid: number): boolean {
  return processes().some((p) => p.pid === pid && p.state !== "Z");
}
