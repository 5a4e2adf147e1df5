// The frozen-bottom cache: a fine-tune of the top blocks runs the frozen blocks below them forward on
// every image in every epoch, though without distortions their output never changes. This store keeps
// that output (the activations entering the first trained block) per image, so epochs after the first
// cost only the trained blocks. retrain.py caches the pooled features for the same reason, one cut higher.
// Activations are stored at the precision they were computed in, so reading them back is exact: bfloat16
// in 2 bytes a value (its float32 values are bfloat16 numbers), float32 in 4. At 299 px a mixed5 or mixed6
// boundary is 17 x 17 x 768 values: 444 KB an image in bfloat16. They stay in memory up to `memoryLimit`;
// a larger set goes to disk beside the feature cache, each file checked (key, length, checksum) when read.
import { createHash } from "crypto";
import * as fs from "fs";
import * as path from "path";
import type { Precision } from "../runtime/precision";
import { writeAtomically } from "../util/atomic";
import { decodeCacheFile, encodeCacheFile } from "./bottlenecks";
import { cacheDir } from "../util/download";

const MAGIC = "ILA1";
/** Held in memory up to this many bytes for one store; past it, stored on disk. */
export const DEFAULT_MEMORY_LIMIT = 1 << 30;

const digest = (data: string | Uint8Array) => createHash("sha1").update(data).digest();

/** bfloat16 is float32's top half: float32 values that are bfloat16 numbers round-trip exactly. */
function toBfloat16(values: Float32Array): Uint16Array {
  const words = new Uint32Array(values.buffer, values.byteOffset, values.length);
  const half = new Uint16Array(values.length);
  for (let i = 0; i < words.length; i++) half[i] = words[i] >>> 16;
  return half;
}

function fromBfloat16(half: Uint16Array, into: Float32Array, offset: number): void {
  const words = new Uint32Array(into.buffer, into.byteOffset + offset * 4, half.length);
  for (let i = 0; i < half.length; i++) words[i] = half[i] << 16;
}

export class ActivationStore {
  readonly bytesPerValue: 2 | 4;
  readonly onDisk: boolean;
  readonly dir: string;
  private readonly key: Buffer;
  private readonly memory = new Map<string, Uint16Array | Float32Array>();
  private readonly fileKeys = new Map<string, string>();
  private warned = false;
  /** Images whose activations were stored, and batches of them read back. */
  readonly counts = { stored: 0, read: 0 };

  /**
   * `description` decides the activations (weights up to the boundary, preprocessing, input size,
   * precision); `valuesPerImage` their size; `images` how many the store is for (to choose memory or disk).
   */
  constructor(
    description: object,
    readonly valuesPerImage: number,
    precision: Precision,
    images: number,
    options: { root?: string; memoryLimit?: number } = {},
  ) {
    this.bytesPerValue = precision === "bfloat16" ? 2 : 4;
    this.key = digest(JSON.stringify({ ...description, bytesPerValue: this.bytesPerValue }));
    this.onDisk = images * valuesPerImage * this.bytesPerValue > (options.memoryLimit ?? DEFAULT_MEMORY_LIMIT);
    this.dir = path.join(options.root ?? cacheDir("activations"), this.key.toString("hex").slice(0, 16));
  }

  /** Bytes the store holds for one image, and for `images` of them (what it takes in memory or on disk). */
  bytesFor(images = 1): number {
    return images * this.valuesPerImage * this.bytesPerValue;
  }

  private fileFor(image: string): string {
    let name = this.fileKeys.get(image);
    if (!name) this.fileKeys.set(image, (name = digest(fs.readFileSync(image)).toString("hex")));
    return path.join(this.dir, `${name}.act`);
  }

  /** Stores the activations of `image` (float32 values); a disk that will not take them keeps them in memory, with a warning. */
  put(image: string, values: Float32Array): void {
    const stored = this.bytesPerValue === 2 ? toBfloat16(values) : values.slice();
    this.counts.stored++;
    if (!this.onDisk) {
      this.memory.set(image, stored);
      return;
    }
    try {
      fs.mkdirSync(this.dir, { recursive: true });
      writeAtomically(this.fileFor(image), encodeCacheFile(MAGIC, this.key, new Uint8Array(stored.buffer, stored.byteOffset, stored.byteLength), values.length));
    } catch (error) {
      if (!this.warned) console.warn(`inception-lab: the frozen-bottom cache in ${this.dir} cannot be written (${(error as Error).message}); this run keeps its activations in memory.`);
      this.warned = true;
      this.memory.set(image, stored);
    }
  }

  /** The stored values of `image`, checked, or null (not stored, or damaged: then computed again). */
  private read(image: string): Uint16Array | Float32Array | null {
    const kept = this.memory.get(image);
    if (kept || !this.onDisk) return kept ?? null;
    let bytes: Buffer;
    try {
      bytes = fs.readFileSync(this.fileFor(image));
    } catch {
      return null;
    }
    const payload = decodeCacheFile(bytes, MAGIC, this.key, this.valuesPerImage, this.bytesPerValue);
    if (typeof payload === "string") return null;
    return this.bytesPerValue === 2 ? new Uint16Array(payload) : new Float32Array(payload);
  }

  /** Whether every one of `images` is stored (on disk: present; they are checked when read). */
  has(images: string[]): boolean {
    return images.every((image) => this.memory.has(image) || (this.onDisk && fs.existsSync(this.fileFor(image))));
  }

  /** The activations of `images`, one after the other as float32, or null if any is missing or damaged. */
  get(images: string[]): Float32Array | null {
    const out = new Float32Array(images.length * this.valuesPerImage);
    for (const [i, image] of images.entries()) {
      const values = this.read(image);
      if (!values) return null;
      if (values instanceof Float32Array) out.set(values, i * this.valuesPerImage);
      else fromBfloat16(values, out, i * this.valuesPerImage);
    }
    this.counts.read++;
    return out;
  }
}
