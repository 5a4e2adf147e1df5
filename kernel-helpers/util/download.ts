// Downloads into the user's cache folder once: progress display, resume after an interruption
// (HTTP range), length and hash checks, atomic rename (a file in the cache is always complete and
// verified), and one download at a time per file: a second caller, in this kernel or another process,
// waits and then uses the finished file.
import { createHash } from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { Progress } from "../display/progress";
import { describeFileError } from "./atomic";
import { withLock } from "./lock";

/** INCEPTION_LAB_CACHE, else $XDG_CACHE_HOME/inception-lab, else ~/.cache/inception-lab. */
export function cacheDir(...parts: string[]): string {
  const configured = process.env.INCEPTION_LAB_CACHE;
  const base = configured ?? path.join(process.env.XDG_CACHE_HOME ?? path.join(os.homedir(), ".cache"), "inception-lab");
  const where = configured ? `INCEPTION_LAB_CACHE (${base})` : base;
  if (fs.existsSync(base) && !fs.statSync(base).isDirectory()) {
    throw new Error(`${where} is a file, not a folder: point INCEPTION_LAB_CACHE at a folder (or unset it to use ~/.cache/inception-lab).`);
  }
  const dir = path.join(base, ...parts);
  try {
    fs.mkdirSync(dir, { recursive: true });
  } catch (error) {
    throw new Error(`The cache folder ${describeFileError(error, dir).message.replace(/^cannot write /, "")} Set INCEPTION_LAB_CACHE to a writable folder.`);
  }
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

const megabytes = (bytes: number) => (bytes / 1e6).toFixed(1);

/** A download that failed: `reason` says what happened; the message adds what to do offline, where the caller said. */
export class DownloadError extends Error {
  constructor(
    readonly url: string,
    readonly reason: string,
    hint = "",
  ) {
    super(reason + hint);
    this.name = "DownloadError";
  }
}

async function fetchOrExplain(url: string, init: RequestInit, hint: string): Promise<Response> {
  try {
    return await fetch(url, init);
  } catch (error) {
    const cause = (error as { cause?: { code?: string } }).cause?.code ?? (error as Error).message;
    throw new DownloadError(url, `Cannot download ${url} (${cause}).`, hint);
  }
}

/** Fetches `url` into `partial`, resuming from what it holds; returns when the body has fully arrived. */
async function fetchInto(url: string, partial: string, fileName: string, hint: string): Promise<void> {
  let resumeFrom = fs.existsSync(partial) ? fs.statSync(partial).size : 0;
  let response = await fetchOrExplain(url, { headers: resumeFrom > 0 ? { Range: `bytes=${resumeFrom}-` } : {} }, hint);
  if (response.status === 416) {
    // The partial file is not a prefix of this file (it changed on the server, or the partial file is
    // from elsewhere): start over rather than fail on every attempt.
    await response.body?.cancel();
    fs.rmSync(partial, { force: true });
    resumeFrom = 0;
    response = await fetchOrExplain(url, {}, hint);
  }
  if (!response.ok || !response.body) throw new DownloadError(url, `Cannot download ${url}: HTTP ${response.status}.`, hint);
  const resumed = response.status === 206;
  const already = resumed ? resumeFrom : 0;
  const length = response.headers.get("content-length");
  const total = length === null ? null : already + Number(length);
  const progress = new Progress(`downloading ${fileName}`, total ? Math.max(1, Math.round(total / 1e6)) : 1, "MB");
  let out: fs.WriteStream | null = null;
  let received = already;
  try {
    out = fs.createWriteStream(partial, { flags: resumed ? "a" : "w" });
    const failed = new Promise<never>((_, reject) => out!.once("error", reject));
    failed.catch(() => undefined);
    for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
      if (!out.write(chunk)) await Promise.race([new Promise<void>((resolve) => out!.once("drain", () => resolve())), failed]);
      received += chunk.length;
      progress.update(Math.round(received / 1e6));
    }
    await Promise.race([new Promise<void>((resolve) => out!.end(resolve)), failed]);
  } catch (error) {
    out?.destroy();
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOSPC" || code === "EDQUOT" || code === "EACCES" || code === "EROFS") {
      fs.rmSync(partial, { force: true });
      throw describeFileError(error, partial);
    }
    const cause = (error as { cause?: { code?: string } }).cause?.code ?? (error as Error).message;
    throw new DownloadError(url, `The download of ${url} was cut off after ${megabytes(received)} MB${total ? ` of ${megabytes(total)} MB` : ""} (${cause}). Run it again: it resumes where it stopped.`, hint);
  }
  progress.finish();
  if (total !== null && received !== total) {
    throw new DownloadError(url, `The download of ${url} ended after ${megabytes(received)} MB of ${megabytes(total)} MB. Run it again: it resumes where it stopped.`, hint);
  }
}

/** Returns the path of the cached file, downloading it first if needed. */
export async function cachedDownload(url: string, fileName: string, options: DownloadOptions = {}): Promise<string> {
  const target = path.join(cacheDir(options.subdir ?? ""), fileName);
  if (fs.existsSync(target)) return target;
  const hint = options.offlineHint ? " " + options.offlineHint : "";
  return withLock(
    target,
    async () => {
      if (fs.existsSync(target)) return target; // another caller finished it while this one waited
      const partial = `${target}.part`;
      await fetchInto(url, partial, fileName, hint);
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
    },
    () => console.warn(`inception-lab: ${fileName} is being downloaded by another cell or process; waiting for it.`),
  );
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
