// Writing so that nothing is lost: a reader never sees half a file or half a folder, a failed write
// (a full disk, an interrupt) leaves what was there before and no temporary files, and a folder is only
// ever replaced when this library wrote all of it. Folders the library writes (saved models,
// checkpoints) carry a manifest of their files with sizes and SHA-256, and of their empty folders (a
// SavedModel's assets/), which is how the library knows a folder is its own, and how it checks a folder
// it reads back. What is written reaches the disk before it is renamed into place, so a power cut after
// a write returned loses nothing (fsync of a small file and its folder: 0.67 ms here, against 0.05 ms
// without). Temporary names carry the writer's process id: the next write removes those of a writer
// that was killed.
import { createHash, randomBytes } from "crypto";
import * as fs from "fs";
import * as path from "path";
import { processAlive, withLock } from "./lock";
import { OptionError } from "./options";

export const MANIFEST = "inception-lab-manifest.json";

/** A name beside `file` no other writer (this process or another) uses at the same time. */
function temporaryName(file: string, kind: "tmp" | "old"): string {
  return `${file}.${kind}-${process.pid}-${randomBytes(4).toString("hex")}`;
}

const TEMPORARY_NAME = /^(.+)\.(tmp|old)-(\d+)-[0-9a-f]{8}$/;

/**
 * Removes what writers that are gone left in `dir`: their temporary files and folders, and their
 * replaced folders; a replaced folder whose new one never arrived (the writer died between the two
 * renames) is put back in its place.
 */
export function sweepLeftovers(dir: string): void {
  let entries: string[];
  try {
    entries = fs.readdirSync(dir);
  } catch {
    return;
  }
  for (const name of entries) {
    const match = TEMPORARY_NAME.exec(name);
    if (!match) continue;
    const [, original, kind, pid] = match;
    if (Number(pid) === process.pid || processAlive(Number(pid))) continue;
    const leftover = path.join(dir, name);
    try {
      if (kind === "old" && !fs.existsSync(path.join(dir, original))) fs.renameSync(leftover, path.join(dir, original));
      else fs.rmSync(leftover, { recursive: true, force: true });
    } catch {
      // Not removable (another user's, a read-only folder): the write itself says what is wrong.
    }
  }
}

/** Folders swept by writeAtomically in this process: a feature cache writes thousands of files into one. */
const swept = new Set<string>();

/** Flushes a file to the disk; an error here is a failed write. */
function flushFile(file: string): void {
  const fd = fs.openSync(file, "r");
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/** Flushes a folder's entries (a new name, a rename) to the disk where the system allows it: not every one opens or syncs a folder. */
function flushFolder(dir: string): void {
  try {
    flushFile(dir);
  } catch {
    // A folder we may write in but not read (-wx), or a file system without folder sync: the write stands.
  }
}

/** The nearest existing folder above `target`, when this process cannot write in it; else null. */
function unwritableAncestor(target: string): string | null {
  let dir = path.dirname(path.resolve(target));
  while (!fs.existsSync(dir) && path.dirname(dir) !== dir) dir = path.dirname(dir);
  try {
    fs.accessSync(dir, fs.constants.W_OK);
    return null;
  } catch {
    return dir;
  }
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
  // A folder that cannot be made because an ancestor is read-only says ENOENT; the ancestor is the news.
  const blocked = code === "ENOENT" ? unwritableAncestor(what) : null;
  const message = blocked ? `${blocked} is read-only or not writable, so ${what} cannot be made: choose a writable folder (ENOENT)` : code && hint[code] ? `${hint[code]} (${code})` : (error as Error).message;
  const wrapped = new Error(`cannot write ${what}: ${message}.`);
  (wrapped as NodeJS.ErrnoException).code = code;
  return wrapped;
}

/**
 * Writes a whole file or nothing: a temporary sibling, flushed to the disk, renamed into place, removed
 * if anything fails. The first write into a folder in a process removes what killed writers left there.
 */
export function writeAtomically(file: string, data: string | Uint8Array): void {
  const dir = path.dirname(path.resolve(file));
  if (!swept.has(dir)) {
    sweepLeftovers(dir);
    swept.add(dir);
  }
  const tmp = temporaryName(file, "tmp");
  try {
    fs.writeFileSync(tmp, data);
    flushFile(tmp);
    fs.renameSync(tmp, file);
    flushFolder(dir);
  } catch (error) {
    fs.rmSync(tmp, { force: true });
    throw describeFileError(error, file);
  }
}

export const sha256 = (data: Uint8Array | string) => createHash("sha256").update(data).digest("hex");

interface Manifest {
  writtenBy: "inception-lab";
  files: Record<string, { bytes: number; sha256: string }>;
  /** Empty folders, as relative paths (absent in manifests written before they were recorded). */
  folders?: string[];
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
  // A manifest lists files and empty folders by relative path; a top-level entry is the library's when
  // one of them lies in it. Manifests before empty folders were recorded: an empty folder holds nothing to lose.
  const recorded = manifest?.folders ?? entries.filter((name) => isEmptyFolder(path.join(dir, name)));
  const listed = new Set([...Object.keys(manifest?.files ?? {}), ...recorded].map((entry) => entry.split("/")[0]));
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
  if (refusal) throw new OptionError(option, `${option}: ${refusal}`);
  try {
    fs.mkdirSync(path.dirname(dir), { recursive: true });
    fs.accessSync(path.dirname(dir), fs.constants.W_OK);
  } catch (error) {
    throw new OptionError(option, `${option}: ${describeFileError(error, path.dirname(dir)).message}`);
  }
}

function isEmptyFolder(entry: string): boolean {
  try {
    return fs.lstatSync(entry).isDirectory() && fs.readdirSync(entry).length === 0;
  } catch {
    return false;
  }
}

/** Every file and every folder below `dir` as relative paths with "/" separators, sorted; a folder's path ends in "/". */
function entriesBelow(dir: string, prefix = ""): string[] {
  return fs
    .readdirSync(path.join(dir, prefix), { withFileTypes: true })
    .flatMap((entry) => (entry.isDirectory() ? [`${prefix}${entry.name}/`, ...entriesBelow(dir, `${prefix}${entry.name}/`)] : [`${prefix}${entry.name}`]))
    .sort();
}

function writeManifest(dir: string): void {
  const entries = entriesBelow(dir);
  const files: Manifest["files"] = {};
  for (const name of entries.filter((entry) => !entry.endsWith("/"))) {
    const data = fs.readFileSync(path.join(dir, name));
    files[name] = { bytes: data.length, sha256: sha256(data) };
  }
  const folders = entries.filter((entry) => entry.endsWith("/") && !entries.some((other) => other !== entry && other.startsWith(entry))).map((entry) => entry.slice(0, -1));
  const manifest: Manifest = { writtenBy: "inception-lab", files, folders };
  fs.writeFileSync(path.join(dir, MANIFEST), JSON.stringify(manifest, null, 1));
}

/** Flushes every file and folder of `dir` to the disk, each folder after what it holds. */
function flushTree(dir: string): void {
  for (const entry of entriesBelow(dir).reverse()) (entry.endsWith("/") ? flushFolder : flushFile)(path.join(dir, entry));
  flushFolder(dir);
}

/**
 * Writes a folder whole or not at all: `fill` writes into a temporary sibling, a manifest is added, and
 * the result replaces `dir` in one rename. Refuses (before writing anything) a `dir` holding files the
 * library did not write. Concurrent writers of one folder take turns. Returns the folder's absolute path.
 */
export async function writeFolder(dir: string, fill: (tmp: string) => Promise<void> | void): Promise<string> {
  if (typeof dir !== "string" || dir === "") throw new Error(`dir is ${dir === "" ? "empty" : String(dir)}: give the path of the folder to write, e.g. "models/flowers".`);
  const target = path.resolve(dir);
  const refusal = cannotReplace(target);
  if (refusal) throw new Error(refusal);
  try {
    fs.mkdirSync(path.dirname(target), { recursive: true });
  } catch (error) {
    throw describeFileError(error, path.dirname(target));
  }
  return withLock(target, async () => {
    sweepLeftovers(path.dirname(target));
    const again = cannotReplace(target);
    if (again) throw new Error(again);
    const tmp = temporaryName(target, "tmp");
    const old = temporaryName(target, "old");
    try {
      fs.mkdirSync(tmp);
      await fill(tmp);
      writeManifest(tmp);
      flushTree(tmp);
      if (fs.existsSync(target)) fs.renameSync(target, old);
      fs.renameSync(tmp, target);
      flushFolder(path.dirname(target));
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
  for (const folder of manifest.folders ?? []) {
    if (!fs.statSync(path.join(dir, folder), { throwIfNoEntry: false })?.isDirectory()) throw new Error(`${path.join(dir, folder)} is missing: the folder is incomplete; save or export it again.`);
  }
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
