// A folder of images as a data set, the way retrain.py reads one: a sub-folder per class, the label
// from the folder name, and a split decided by a hash of each file name, so it is stable across runs
// and when files are added. Files that cannot be used are listed with the reason, never fatal.
import { createHash } from "crypto";
import * as fs from "fs";
import * as path from "path";
import { Displayable, escapeHtml, Table } from "../display/display";
import { decodeBatch, thumbnail } from "../network/decode";
import { tf } from "../runtime/tf";
import { writeExactFile } from "../util/exact-file";
import { checkOptions, OptionError, rule } from "../util/options";
import { shuffleInPlace } from "../util/random";

export type Split = "train" | "validation" | "test";
export const SPLITS: Split[] = ["train", "validation", "test"];
export const IMAGE_EXTENSIONS = [".jpg", ".jpeg", ".png", ".gif", ".bmp"];

export interface ImageFolderOptions {
  validationPercent?: number;
  testPercent?: number;
  /** Files larger than this many bytes are skipped (default 50 MB). */
  maxFileBytes?: number;
  /** Classes with fewer images get a warning (retrain.py: 20). */
  minImagesPerClass?: number;
}

export const FOLDER_RULES = { validationPercent: rule.between(0, 99.999), testPercent: rule.between(0, 99.999), maxFileBytes: rule.positive(), minImagesPerClass: rule.whole(0) };
const BATCH_RULES = { batchSize: rule.whole(1), inputSize: rule.whole(1), shuffle: rule.boolean(), seed: rule.whole(-Number.MAX_SAFE_INTEGER), prefetch: rule.whole(0) };

export interface ImageFile {
  path: string;
  label: number;
  split: Split;
}

export interface SkippedFile {
  path: string;
  reason: string;
}

/** retrain.py's label rule: lower case, runs of anything but letters and digits become one space. */
export function labelFromFolder(name: string): string {
  return name.toLowerCase().replace(/[^a-z0-9]+/g, " ").trim();
}

const MAX_PER_CLASS = 2n ** 27n - 1n;

/** retrain.py's split: SHA-1 of the file name (ignoring anything after `_nohash_`), as a percentage. */
export function splitOf(file: string, validationPercent: number, testPercent: number): Split {
  const name = path.basename(file).replace(/_nohash_.*$/, "");
  const hash = BigInt("0x" + createHash("sha1").update(name).digest("hex"));
  const percentage = Number(hash % (MAX_PER_CLASS + 1n)) * (100 / Number(MAX_PER_CLASS));
  if (percentage < validationPercent) return "validation";
  if (percentage < validationPercent + testPercent) return "test";
  return "train";
}

const SIGNATURES: [string, (b: Buffer) => boolean][] = [
  ["jpeg", (b) => b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff],
  ["png", (b) => b.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]))],
  ["gif", (b) => b.subarray(0, 4).toString("latin1") === "GIF8"],
  ["bmp", (b) => b.subarray(0, 2).toString("latin1") === "BM"],
];

/** Why a file cannot be used, judged from its size and first bytes; null when it looks fine. */
function quickCheck(file: string, maxFileBytes: number): string | null {
  let stat: fs.Stats;
  try {
    stat = fs.statSync(file);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    return code === "ELOOP" ? "symbolic link loop" : code === "ENOENT" ? "broken symbolic link" : `unreadable (${code})`;
  }
  if (!stat.isFile()) return "not a regular file";
  if (stat.size === 0) return "empty file (0 bytes)";
  if (stat.size > maxFileBytes) return `file too large (${(stat.size / 1e6).toFixed(0)} MB > ${(maxFileBytes / 1e6).toFixed(0)} MB)`;
  const head = Buffer.alloc(8);
  try {
    const fd = fs.openSync(file, "r");
    fs.readSync(fd, head, 0, 8, 0);
    fs.closeSync(fd);
  } catch (error) {
    return `unreadable (${(error as NodeJS.ErrnoException).code})`;
  }
  return SIGNATURES.some(([, matches]) => matches(head)) ? null : "not an image (no JPEG, PNG, GIF or BMP signature)";
}

/**
 * Image files under `dir`, recursively, following links but never in circles, and never up into a
 * folder that contains the data set (`root`): a link to ".." would pull in every class.
 */
function listImages(dir: string, skipped: SkippedFile[], root: string, seen = new Set<string>()): string[] {
  let real: string;
  try {
    real = fs.realpathSync(dir);
  } catch (error) {
    skipped.push({ path: dir, reason: (error as NodeJS.ErrnoException).code === "ELOOP" ? "symbolic link loop" : "unreadable folder" });
    return [];
  }
  if (seen.has(real)) {
    skipped.push({ path: dir, reason: "symbolic link loop (folder already visited)" });
    return [];
  }
  if (root === real || root.startsWith(real + path.sep)) {
    skipped.push({ path: dir, reason: "links to a folder that contains the data set" });
    return [];
  }
  seen.add(real);
  const files: string[] = [];
  for (const entry of fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
    const full = path.join(dir, entry.name);
    let isDir = entry.isDirectory();
    if (entry.isSymbolicLink()) {
      try {
        isDir = fs.statSync(full).isDirectory();
      } catch {
        isDir = false; // quickCheck reports the broken or looping link
      }
    }
    if (isDir) files.push(...listImages(full, skipped, root, seen));
    else if (IMAGE_EXTENSIONS.includes(path.extname(entry.name).toLowerCase())) files.push(full);
  }
  return files;
}

/** How many names a warning about many folders shows before "and N more". */
const NAMES_SHOWN = 3;

/**
 * Warnings of one kind in one line however many folders they concern (300 classes of 2 images are one
 * line, not 300): the sentence for one, or the sentence for many with the first few names and a count.
 */
function oneLine<T>(items: T[], one: (item: T) => string, many: (names: string) => string, name: (item: T) => string): string[] {
  if (items.length === 0) return [];
  if (items.length === 1) return [one(items[0])];
  const shown = items.slice(0, NAMES_SHOWN).map(name);
  const rest = items.length - shown.length;
  return [many(`${shown.join(", ")}${rest > 0 ? ` and ${rest} more (${items.length} in all)` : ""}`)];
}

export interface Batch {
  images: tf.Tensor4D;
  labels: tf.Tensor1D;
  files: string[];
}

export interface BatchOptions {
  batchSize?: number;
  /** Side of the decoded images: the network's input size. */
  inputSize?: number;
  shuffle?: boolean;
  seed?: number;
  /** Batches decoded ahead while the current one is used. */
  prefetch?: number;
}

/** A data set read from a folder of class sub-folders. */
export class ImageFolder extends Displayable {
  readonly classes: string[];
  readonly skipped: SkippedFile[] = [];
  readonly warnings: string[] = [];
  private readonly entries: ImageFile[];
  /** The paths of `entries`, for holds(). */
  private readonly present: Set<string>;
  private samples: { label: string; images: string[] }[] = [];

  constructor(
    readonly dir: string,
    readonly options: ImageFolderOptions = {},
  ) {
    super();
    checkOptions(options, FOLDER_RULES, "imageFolder");
    const { validationPercent = 10, testPercent = 10, maxFileBytes = 50e6, minImagesPerClass = 20 } = options;
    if (validationPercent + testPercent >= 100) throw new OptionError("testPercent", `validationPercent + testPercent is ${validationPercent + testPercent}: leave some images for training (under 100).`);
    if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) throw new Error(`${dir}: no such folder. Give a folder with one sub-folder of images per class.`);

    const classFolders = fs
      .readdirSync(dir, { withFileTypes: true })
      .filter((e) => e.isDirectory() || (e.isSymbolicLink() && fs.statSync(path.join(dir, e.name), { throwIfNoEntry: false })?.isDirectory()))
      .map((e) => e.name)
      .sort();
    const unnamed = classFolders.filter((folder) => labelFromFolder(folder) === "");
    if (unnamed.length) {
      throw new Error(
        `${dir}: the class folder${unnamed.length > 1 ? "s" : ""} ${unnamed.map((f) => `"${f}"`).join(", ")} give${unnamed.length > 1 ? "" : "s"} an empty label ` +
          `(labels keep letters and digits, as retrain.py's do): rename ${unnamed.length > 1 ? "them" : "it"}.`,
      );
    }
    const root = fs.realpathSync(dir);
    const byLabel = new Map<string, string[]>();
    const foldersOf = new Map<string, string[]>();
    const selfLinks: { folder: string; real: string }[] = [];
    const empty: string[] = [];
    const small: { label: string; count: number }[] = [];
    for (const folder of classFolders) {
      const label = labelFromFolder(folder);
      const real = fs.realpathSync(path.join(dir, folder));
      if (root === real || root.startsWith(real + path.sep)) {
        selfLinks.push({ folder, real });
        continue;
      }
      const usable = listImages(path.join(dir, folder), this.skipped, root).filter((file) => {
        const reason = quickCheck(file, maxFileBytes);
        if (reason) this.skipped.push({ path: file, reason });
        return !reason;
      });
      if (usable.length === 0) {
        empty.push(folder);
        continue;
      }
      if (usable.length < minImagesPerClass) small.push({ label, count: usable.length });
      byLabel.set(label, [...(byLabel.get(label) ?? []), ...usable]);
      foldersOf.set(label, [...(foldersOf.get(label) ?? []), folder]);
    }
    const merged = [...foldersOf].filter(([, folders]) => folders.length > 1);
    const quoted = (folders: string[]) => folders.map((f) => `"${f}"`).join(" and ");
    this.warnings.push(
      ...oneLine(selfLinks, ({ folder, real }) => `class folder "${folder}" links to ${real}, which contains the data set itself: left out.`, (names) => `class folders ${names} link to folders that contain the data set itself: left out.`, (l) => `"${l.folder}"`),
      ...oneLine(empty, (folder) => `class folder "${folder}" has no usable image: left out.`, (names) => `class folders ${names} have no usable image: left out.`, (f) => `"${f}"`),
      ...oneLine(small, (c) => `class "${c.label}" has only ${c.count} images (fewer than ${minImagesPerClass}): expect unreliable accuracy.`, (names) => `classes ${names} have fewer than ${minImagesPerClass} images each: expect unreliable accuracy.`, (c) => `"${c.label}" (${c.count})`),
      ...oneLine(merged, ([label, folders]) => `the folders ${quoted(folders)} give the same label "${label}" (retrain.py's rule): they form one class.`, (names) => `folders give the same label (retrain.py's rule) and form one class each: ${names}.`, ([label, folders]) => `${quoted(folders)} as "${label}"`),
    );
    this.classes = [...byLabel.keys()];
    if (this.classes.length < 2) {
      throw new Error(`${dir}: ${this.classes.length} class folder(s) with usable images; a classifier needs at least 2 sub-folders of JPEG/PNG/GIF/BMP images.`);
    }
    this.entries = this.classes.flatMap((label, index) =>
      byLabel.get(label)!.map((file) => ({ path: file, label: index, split: splitOf(file, validationPercent, testPercent) })),
    );
    this.present = new Set(this.entries.map((e) => e.path));
    this.warnings.push(...sharedImages(this.entries, this.classes));
    for (const warning of this.warnings) console.warn(`imageFolder: ${warning}`);
  }

  /** File paths of one split (all files without an argument). */
  files(split?: Split): string[] {
    return this.examples(split).map((e) => e.path);
  }

  /** Files with their label index and split. */
  examples(split?: Split): ImageFile[] {
    return split ? this.entries.filter((e) => e.split === split) : [...this.entries];
  }

  /** Number of images per class and split. */
  counts(): Record<Split, number[]> {
    const counts = Object.fromEntries(SPLITS.map((s) => [s, this.classes.map(() => 0)])) as Record<Split, number[]>;
    for (const e of this.entries) counts[e.split][e.label]++;
    return counts;
  }

  /**
   * The split as CSV, one row per image: `path` (absolute), `label` (the class index, as the library and
   * its exports number classes), `class` and `split` ("train", "validation" or "test"). Python reads it with
   * csv.DictReader or pandas.read_csv, and trains on the same training images as the library.
   */
  splitCsv(): string {
    const cell = (value: string | number) => (/[",\r\n]/.test(String(value)) ? `"${String(value).replace(/"/g, '""')}"` : String(value));
    const rows = this.entries.map((e) => [e.path, e.label, this.classes[e.label], e.split].map(cell).join(","));
    return ["path,label,class,split", ...rows].join("\n") + "\n";
  }

  /**
   * Writes splitCsv() to `file` and returns its absolute path. A file already there is left alone when it
   * holds exactly this split, and refused when it holds anything else.
   */
  writeSplit(file: string): string {
    return writeExactFile(path.resolve(file), this.splitCsv(), "writeSplit");
  }

  /** Whether the data set holds this file still (not reported bad since it was listed). */
  holds(file: string): boolean {
    return this.present.has(file);
  }

  /** Moves a failed file from the data set to `skipped` (decode errors found while streaming). */
  reportBadFile(file: string, reason: string): void {
    const index = this.entries.findIndex((e) => e.path === file);
    if (index >= 0) this.entries.splice(index, 1);
    this.present.delete(file);
    if (!this.skipped.some((s) => s.path === file)) this.skipped.push({ path: file, reason });
  }

  /**
   * Decoded batches of a split, decoding ahead (`prefetch` batches) while the caller computes. Memory
   * stays bounded by (prefetch + 1) batches whatever the data set size. Files that fail to decode are
   * left out of the batch and recorded in `skipped`. The caller disposes each batch's tensors.
   */
  async *batches(split: Split, options: BatchOptions = {}): AsyncGenerator<Batch> {
    checkOptions(options, BATCH_RULES, "batches");
    const { batchSize = 32, inputSize = 299, shuffle = false, seed = 0, prefetch = 2 } = options;
    const examples = this.examples(split);
    if (shuffle) shuffleInPlace(examples, seed);
    const chunks: ImageFile[][] = [];
    for (let i = 0; i < examples.length; i += batchSize) chunks.push(examples.slice(i, i + batchSize));
    const decode = (chunk: ImageFile[]) => decodeBatch(chunk.map((e) => e.path), inputSize).then((result) => ({ chunk, ...result }));
    const pending = chunks.slice(0, prefetch + 1).map(decode);
    for (let next = pending.length; pending.length > 0; next++) {
      const { chunk, images, decoded, failed } = await pending.shift()!;
      if (next < chunks.length) pending.push(decode(chunks[next]));
      for (const { index, reason } of failed) this.reportBadFile(chunk[index].path, reason);
      if (decoded.length === 0) {
        images.dispose();
        continue;
      }
      yield { images, labels: tf.tensor1d(decoded.map((i) => chunk[i].label), "int32"), files: decoded.map((i) => chunk[i].path) };
    }
  }

  /** The files that were left out, with reasons, as a table. */
  report(): Table {
    return new Table(["file", "reason"], this.skipped.map((s) => [path.relative(this.dir, s.path) || s.path, s.reason]), `Skipped files in ${this.dir}: ${this.skipped.length}`);
  }

  toText(): string {
    const counts = this.counts();
    const rows = this.classes.map((label, i) => `  ${label}: ${SPLITS.map((s) => `${counts[s][i]} ${s}`).join(", ")}`);
    return [
      `ImageFolder ${this.dir}: ${this.classes.length} classes, ${this.entries.length} images, ${this.skipped.length} skipped`,
      ...rows,
      ...this.warnings.map((w) => `  warning: ${w}`),
    ].join("\n");
  }

  private countsTable(): Table {
    const counts = this.counts();
    const rows = this.classes.map((label, i) => [label, ...SPLITS.map((s) => counts[s][i]), SPLITS.reduce((sum, s) => sum + counts[s][i], 0)]);
    rows.push(["all", ...SPLITS.map((s) => counts[s].reduce((a, b) => a + b, 0)), this.entries.length]);
    return new Table(["class", ...SPLITS, "total"], rows, `${this.dir}: ${this.classes.length} classes, ${this.entries.length} images`);
  }

  /** Decodes a few sample thumbnails per class for the notebook display. */
  async loadSamples(samplesPerClass = 6, size = 64): Promise<this> {
    this.samples = await Promise.all(
      this.classes.map(async (label, index) => {
        const files = this.entries.filter((e) => e.label === index).slice(0, samplesPerClass);
        const images = await Promise.all(files.map((e) => thumbnail(e.path, { size }).catch(() => null)));
        return { label, images: images.filter((i): i is string => i !== null) };
      }),
    );
    return this;
  }

  toHTML(): string {
    const grid = this.samples
      .map(({ label, images }) => `<tr><td style="text-align:left">${escapeHtml(label)}</td><td style="text-align:left">${images.map((src) => `<img src="${src}" style="margin:1px">`).join("")}</td></tr>`)
      .join("");
    return (
      this.countsTable().toHTML() +
      this.warnings.map((w) => `<p style="color:#a60">warning: ${escapeHtml(w)}</p>`).join("") +
      (this.skipped.length ? `<p>${this.skipped.length} files skipped: <code>data.report()</code> lists them.</p>` : "") +
      (grid ? `<table>${grid}</table>` : "")
    );
  }
}

/**
 * One warning line for files that are the same file under two classes (a class folder linking into a sibling):
 * their images would be trained under both labels.
 */
function sharedImages(entries: ImageFile[], classes: string[]): string[] {
  const byReal = new Map<string, Set<number>>();
  for (const e of entries) {
    const real = fs.realpathSync(e.path);
    byReal.set(real, (byReal.get(real) ?? new Set()).add(e.label));
  }
  const pairs = new Map<string, number>();
  for (const labels of byReal.values()) {
    if (labels.size < 2) continue;
    const key = [...labels].map((l) => `"${classes[l]}"`).join(" and ");
    pairs.set(key, (pairs.get(key) ?? 0) + 1);
  }
  return oneLine(
    [...pairs],
    ([names, count]) => `classes ${names} hold the same ${count} image file${count > 1 ? "s" : ""} (a folder linking into another?): each is trained under both labels. Remove the link, or give each class its own images.`,
    (names) => `classes share image files (folders linking into others?), each trained under two labels: ${names}. Remove the links, or give each class its own images.`,
    ([names, count]) => `${names} (${count})`,
  );
}

/**
 * Reads a folder of class sub-folders (retrain.py's layout) with a stable hash-based split. As the last
 * line of a cell it shows counts per class and split, warnings, and sample thumbnails.
 */
export async function imageFolder(dir: string, options: ImageFolderOptions = {}): Promise<ImageFolder> {
  return new ImageFolder(path.resolve(dir), options).loadSamples();
}
