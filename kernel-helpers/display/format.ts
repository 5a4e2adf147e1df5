// Numbers as people read them, one function per kind: durations, parameter counts, bytes and operations.

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return "?";
  // Below 10 s two significant digits: a GPU's estimate of 0.4 s must not read "0 s".
  if (seconds < 10) return `${Number(seconds.toPrecision(2))} s`;
  const s = Math.round(seconds);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, "0")} s`;
  return `${Math.floor(s / 3600)} h ${String(Math.floor((s % 3600) / 60)).padStart(2, "0")} min`;
}

/** A parameter count as people read it: 4,614 or 3.83M (never "0.00M" for a head of a few thousand weights). */
export function formatCount(count: number): string {
  return count < 1e5 ? count.toLocaleString("en-US") : `${(count / 1e6).toFixed(2)}M`;
}

/** Bytes in KiB, MiB or GiB. */
export function formatBytes(bytes: number): string {
  const [value, unit] = bytes >= 2 ** 30 ? [bytes / 2 ** 30, "GiB"] : bytes >= 2 ** 20 ? [bytes / 2 ** 20, "MiB"] : [bytes / 2 ** 10, "KiB"];
  return `${value.toFixed(value < 10 ? 1 : 0)} ${unit}`;
}

/** Floating-point operations in MFLOP, GFLOP or TFLOP. */
export function formatFlops(flops: number): string {
  const [value, unit] = flops >= 1e12 ? [flops / 1e12, "TFLOP"] : flops >= 1e9 ? [flops / 1e9, "GFLOP"] : [flops / 1e6, "MFLOP"];
  return `${value.toFixed(value < 10 ? 2 : 0)} ${unit}`;
}
