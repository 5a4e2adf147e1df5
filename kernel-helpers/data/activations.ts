// The frozen-bottom cache: a fine-tune of the top blocks runs the frozen blocks below them forward on
// every image in every epoch, though without distortions their output never changes. This store keeps
// that output (the activations entering the first trained block) per image, so epochs after the first
// cost only the trained blocks. retrain.py caches the pooled features for the same reason, one cut higher.
// Items are found by the image's content (util/content-cache.ts), which the caller reads afresh on every
// training call: an image changed, replaced or deleted between calls is computed again (or left out), never
// served from memory. Activations are stored at the precision they were computed in, so reading them back is
// exact: bfloat16 in 2 bytes a value (its float32 values are bfloat16 numbers), float32 in 4. At 299 px a
// mixed5 or mixed6 boundary is 17 x 17 x 768 values: 444 KB an image in bfloat16. They stay in memory up to
// `memoryLimit`; a larger set goes to disk beside the feature cache, each file checked when read.
import type { Precision } from "../runtime/precision";
import { ContentCache } from "../util/content-cache";
import { cacheDir } from "../util/download";

/** Held in memory up to this many bytes for one store; past it, stored on disk. */
export const DEFAULT_MEMORY_LIMIT = 1 << 30;

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
  private readonly store: ContentCache;
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
    options: { root?: string; memoryLimit?: number; onWarning?: (message: string) => void } = {},
  ) {
    this.bytesPerValue = precision === "bfloat16" ? 2 : 4;
    this.onDisk = images * valuesPerImage * this.bytesPerValue > (options.memoryLimit ?? DEFAULT_MEMORY_LIMIT);
    const warn = options.onWarning ?? ((message: string) => console.warn(`inception-lab: ${message}`));
    this.store = new ContentCache({
      magic: "ILA2",
      description: { ...description, bytesPerValue: this.bytesPerValue },
      valuesPerItem: valuesPerImage,
      bytesPerValue: this.bytesPerValue,
      root: options.root ?? cacheDir("activations"),
      extension: "act",
      inMemory: !this.onDisk,
      onWriteFailure: (problem) => warn(`the frozen-bottom cache was not written (${problem}); this run keeps its activations in memory.`),
    });
  }

  get dir(): string {
    return this.store.dir;
  }

  /** Bytes the store holds for one image, and for `images` of them (what it takes in memory or on disk). */
  bytesFor(images = 1): number {
    return images * this.valuesPerImage * this.bytesPerValue;
  }

  /** Stores the activations (float32 values) of the image whose content hash is `hash`. */
  put(hash: string, values: Float32Array): void {
    const stored = this.bytesPerValue === 2 ? toBfloat16(values) : values.slice();
    this.counts.stored++;
    this.store.put(hash, new Uint8Array(stored.buffer, stored.byteOffset, stored.byteLength));
  }

  /** Whether every image is stored (by content hash; null: an image that could not be read, never stored). Files are checked when read. */
  has(hashes: (string | null)[]): boolean {
    return hashes.every((hash) => hash !== null && this.store.has(hash));
  }

  /** The activations of the images, one after the other as float32, or null if any is missing, unreadable or damaged. */
  get(hashes: (string | null)[]): Float32Array | null {
    const out = new Float32Array(hashes.length * this.valuesPerImage);
    for (const [i, hash] of hashes.entries()) {
      const payload = hash === null ? null : this.store.get(hash);
      if (!payload) return null;
      if (this.bytesPerValue === 4) out.set(new Float32Array(payload.buffer, payload.byteOffset, this.valuesPerImage), i * this.valuesPerImage);
      else fromBfloat16(new Uint16Array(payload.buffer, payload.byteOffset, this.valuesPerImage), out, i * this.valuesPerImage);
    }
    this.counts.read++;
    return out;
  }
}
