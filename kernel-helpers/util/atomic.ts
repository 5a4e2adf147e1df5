// Writing so that nothing is lost: a reader never sees half a file or half a folder, a failed write
// (a full disk, an interrupt) leaves what was there before and no temporary files, and a folder is only
// ever replaced when this library wrote all of it. Folders the library writes (saved models,
// checkpoints) carry a manifest of their files with sizes and SHA-256, which is how the library knows
// a folder is its own, and how it checks a folder it reads back.
import { createHash, randomBytes } from "crypto";
import * as fs from "fs";
import * as path from "path";
import { withLock } from "./lock";

export const MANIFEST = "inception-lab-manifest.json";

/** A name beside `file` no other writer (this process or another) uses at the same time. */
function temporaryName(file: string, kind: string): string {
  return `${file}.${kind}-${process.pid}-${randomBytes(4).toString("hex")}`;
}

/** What went wrong with a file operation, in words, with the path and what to do. */
export function describeFileError(error: unknown, what: string): Error {
  const code = (error as NodeJS.ErrnoException).code;
  const hint: Record<string, string> = {
    ENOSPC: "the disk is full: free some space and run it again",
    EDQUOT: "the disk quota is used up: free some space and run it again",
    EROFS: "the file system is read-only: choose a writable folder",
    EACCES: "permission denied: choose a folder you can write to",
    EPERM: "permission denied: choose a folder you can write to",
    ENOTDIR: "a part of the path is a file, not a folder",
  };
  const message = code && hint[code] ? `${hint[code]} (${code})` : (error as Error).message;
  const wrapped = new Error(`cannot write ${what}: ${message}.`);
  (wrapped as NodeJS.ErrnoException).code = code;
  return wrapped;
}

/** Writes a whole file or nothing: a temporary sibling renamed into place, removed if anything fails. */
export function writeAtomically(file: string, data: string | Uint8Array): void {
  const tmp = temporaryName(file, "tmp");
  try {
    fs.writeFileSync(tmp, data);
    fs.renameSync(tmp, file);
  } catch (error) {
    fs.rmSync(tmp, { force: true });
    throw describeFileError(error, file);
  }
}

export const sha256 = (data: Uint8Array | string) => createHash("sha256").update(data).digest("hex");

interface Manifest {
  writtenBy: "inception-lab";
  files: Record<string, { bytes: number; sha256: string }>;
}

function readManifest(dir: string): Manifest | null {
  try {
    const manifest = JSON.parse(fs.readFileSync(path.join(dir, MANIFEST), "utf8"));
    return manifest?.writtenBy === "inception-lab" && typeof manifest.files === "object" && manifest.files ? manifest : null;
  } catch {
    return null;
  }
}

/** Versions before the manifest saved exactly these files, with a labels.json of this shape. */
function savedByEarlierVersion(dir: string, entries: string[]): boolean {
  const expected = ["labels.json", "model.json", "weights.bin"];
  if (!expected.every((name) => entries.includes(name)) || !entries.every((name) => expected.includes(name) || name === "history.json")) return false;
  try {
    const labels = JSON.parse(fs.readFileSync(path.join(dir, "labels.json"), "utf8"));
    return Array.isArray(labels.classes) && typeof labels.inputSize === "number" && typeof labels.mode === "string";
  } catch {
    return false;
  }
}

/**
 * Why the library may not replace `dir` (it holds files the library did not write, or it is a file),
 * or null when it may: it does not exist, is empty, or holds exactly the files of its manifest.
 */
export function cannotReplace(dir: string): string | null {
  let stat: fs.Stats;
  try {
    stat = fs.lstatSync(dir);
  } catch {
    return null;
  }
  if (!stat.isDirectory()) return `${dir} is ${stat.isSymbolicLink() ? "a symbolic link" : "a file"}, not a folder: give the path of a new or empty folder.`;
  const entries = fs.readdirSync(dir);
  if (entries.length === 0 || savedByEarlierVersion(dir, entries)) return null;
  const manifest = readManifest(dir);
  // A manifest lists files by relative path; a top-level folder is the library's when files of its list lie in it.
  const listed = new Set(Object.keys(manifest?.files ?? {}).map((file) => file.split("/")[0]));
  const foreign = entries.filter((name) => name !== MANIFEST && !listed.has(name));
  if (!manifest || foreign.length > 0) {
    const shown = (manifest ? foreign : entries).slice(0, 5).join(", ");
    return (
      `${dir} holds files Inception Lab did not write (${shown}${entries.length > 5 ? ", ..." : ""}), and it never replaces those: ` +
      `choose a new or empty folder (or delete the folder yourself if you no longer need it).`
    );
  }
  return null;
}

/** Throws when `dir` cannot become a folder the library writes; creates its parent. Run it before long work. */
export function checkWritableFolder(dir: string, option: string): void {
  const refusal = cannotReplace(dir);
  if (refusal) throw new Error(`${option}: ${refusal}`);
  try {
    fs.mkdirSync(path.dirname(dir), { recursive: true });
    fs.accessSync(path.dirname(dir), fs.constants.W_OK);
  } catch (error) {
    throw new Error(`${option}: ${describeFileError(error, path.dirname(dir)).message}`);
  }
}

/** Every file below `dir` as a relative path with "/" separators, sorted. */
function filesBelow(dir: string, prefix = ""): string[] {
  return fs
    .readdirSync(path.join(dir, prefix), { withFileTypes: true })
    .flatMap((entry) => (entry.isDirectory() ? filesBelow(dir, `${prefix}${entry.name}/`) : [`${prefix}${entry.name}`]))
    .sort();
}

function writeManifest(dir: string): void {
  const files: Manifest["files"] = {};
  for (const name of filesBelow(dir)) {
    const data = fs.readFileSync(path.join(dir, name));
    files[name] = { bytes: data.length, sha256: sha256(data) };
  }
  const manifest: Manifest = { writtenBy: "inception-lab", files };
  fs.writeFileSync(path.join(dir, MANIFEST), JSON.stringify(manifest, null, 1));
}

/**
 * Writes a folder whole or not at all: `fill` writes into a temporary sibling, a manifest is added, and
 * the result replaces `dir` in one rename. Refuses (before writing anything) a `dir` holding files the
 * library did not write. Concurrent writers of one folder take turns. Returns the folder's absolute path.
 */
export async function writeFolder(dir: string, fill: (tmp: string) => Promise<void> | void): Promise<string> {
  const target = path.resolve(dir);
  const refusal = cannotReplace(target);
  if (refusal) throw new Error(refusal);
  try {
    fs.mkdirSync(path.dirname(target), { recursive: true });
  } catch (error) {
    throw describeFileError(error, path.dirname(target));
  }
  return withLock(target, async () => {
    const again = cannotReplace(target);
    if (again) throw new Error(again);
    const tmp = temporaryName(target, "tmp");
    const old = temporaryName(target, "old");
    try {
      fs.mkdirSync(tmp);
      await fill(tmp);
      writeManifest(tmp);
      if (fs.existsSync(target)) fs.renameSync(target, old);
      fs.renameSync(tmp, target);
    } catch (error) {
      fs.rmSync(tmp, { recursive: true, force: true });
      if (fs.existsSync(old) && !fs.existsSync(target)) fs.renameSync(old, target);
      // A file system's error is said as one; any other (what `fill` ran) as it is.
      throw (error as NodeJS.ErrnoException).code ? describeFileError(error, target) : error;
    } finally {
      fs.rmSync(old, { recursive: true, force: true });
    }
    return target;
  });
}

/**
 * Checks a folder the library wrote against its manifest (every file there, with its size and SHA-256)
 * and throws, naming the damaged file, when it does not match.
 */
export function verifyFolder(dir: string): void {
  const manifest = readManifest(dir);
  if (!manifest) throw new Error(`${dir}: no ${MANIFEST}; this is not a folder Inception Lab wrote, or it was written by an older version: save or train it again.`);
  for (const [name, expected] of Object.entries(manifest.files)) {
    const file = path.join(dir, name);
    let data: Buffer;
    try {
      data = fs.readFileSync(file);
    } catch {
      throw new Error(`${file} is missing: the folder is incomplete; save or train it again.`);
    }
    if (data.length !== expected.bytes || sha256(data) !== expected.sha256) {
      throw new Error(`${file} is damaged (${data.length} bytes, expected ${expected.bytes}${data.length === expected.bytes ? ", contents differ" : ""}): save or train it again.`);
    }
  }
}
