// Downloads into the user's cache folder once: progress display, resume after an interruption
// (HTTP range), hash check, atomic rename (a file in the cache is always complete and verified).
import { createHash } from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { Progress } from "../display/progress";

/** INCEPTION_LAB_CACHE, else $XDG_CACHE_HOME/inception-lab, else ~/.cache/inception-lab. */
export function cacheDir(...parts: string[]): string {
  const base = process.env.INCEPTION_LAB_CACHE ?? path.join(process.env.XDG_CACHE_HOME ?? path.join(os.homedir(), ".cache"), "inception-lab");
  const dir = path.join(base, ...parts);
  fs.mkdirSync(dir, { recursive: true });
  return dir;
}

export interface DownloadOptions {
  /** Expected digest, as `md5:<hex>` or `sha256:<hex>`. */
  hash?: string;
  /** Folder under the cache directory. */
  subdir?: string;
  /** What to tell the user when the download fails (offline alternatives). */
  offlineHint?: string;
}

/** Hex digest of a file, read as a stream. */
export async function digest(file: string, algorithm: string): Promise<string> {
  const hash = createHash(algorithm);
  for await (const chunk of fs.createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest("hex");
}

/** Returns the path of the cached file, downloading it first if needed. */
export async function cachedDownload(url: string, fileName: string, options: DownloadOptions = {}): Promise<string> {
  const target = path.join(cacheDir(options.subdir ?? ""), fileName);
  if (fs.existsSync(target)) return target;
  const partial = `${target}.part`;
  const resumeFrom = fs.existsSync(partial) ? fs.statSync(partial).size : 0;
  let response: Response;
  try {
    response = await fetch(url, { headers: resumeFrom > 0 ? { Range: `bytes=${resumeFrom}-` } : {} });
  } catch (error) {
    const cause = (error as { cause?: { code?: string } }).cause?.code ?? (error as Error).message;
    throw new Error(`Cannot download ${url} (${cause}).${options.offlineHint ? " " + options.offlineHint : ""}`);
  }
  if (!response.ok || !response.body) {
    throw new Error(`Cannot download ${url}: HTTP ${response.status}.${options.offlineHint ? " " + options.offlineHint : ""}`);
  }
  const resumed = response.status === 206;
  const already = resumed ? resumeFrom : 0;
  const total = already + Number(response.headers.get("content-length") ?? 0);
  const progress = new Progress(`downloading ${fileName}`, Math.round(total / 1e6) || 1, "MB");
  const out = fs.createWriteStream(partial, { flags: resumed ? "a" : "w" });
  let received = already;
  try {
    for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
      if (!out.write(chunk)) await new Promise<void>((resolve) => out.once("drain", () => resolve()));
      received += chunk.length;
      progress.update(Math.round(received / 1e6));
    }
  } finally {
    await new Promise<void>((resolve) => out.end(resolve));
  }
  progress.finish();
  if (options.hash) {
    const [algorithm, expected] = options.hash.split(":");
    const actual = await digest(partial, algorithm);
    if (actual !== expected) {
      fs.rmSync(partial);
      throw new Error(`${url}: ${algorithm} of the download is ${actual}, expected ${expected}; the file was removed. Run the cell again to download it afresh.`);
    }
  }
  fs.renameSync(partial, target);
  return target;
}

/** Whether a file is in the cache already or its URL answers within `timeoutMs` (a HEAD request). */
export async function downloadable(url: string, fileName: string, subdir: string, timeoutMs = 3000): Promise<boolean> {
  if (fs.existsSync(path.join(cacheDir(subdir), fileName))) return true;
  try {
    const response = await fetch(url, { method: "HEAD", signal: AbortSignal.timeout(timeoutMs) });
    return response.ok;
  } catch {
    return false;
  }
}
