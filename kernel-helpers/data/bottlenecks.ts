// retrain.py's bottleneck cache: each image goes through the frozen network once; its pooled features are
// stored on disk (util/content-cache.ts), found by the image's content and kept apart by what determines them
// (the bytes of the network's weights up to the cut, the cut, preprocessing, input size and precision), so a
// cache survives kernel restarts and is never served stale: not when weights were changed in place, not when an
// image changed under its name, not when a cache file was copied over another's. A damaged file is computed
// again. Writing the cache is a side job: when it fails (a full disk, a read-only folder) the features are kept
// in memory for this run, and the warning goes to whoever asked (a run's warnings).
import { Progress } from "../display/progress";
import { decodeBatch } from "../network/decode";
import type { CutLayer } from "../network/inception";
import type { Inception } from "../network/model";
import type { Precision } from "../runtime/precision";
import { tf } from "../runtime/tf";
import { contentHash, ContentCache } from "../util/content-cache";
import { cacheDir } from "../util/download";
import { type InterruptFlag, InterruptedError } from "../util/interrupt";

export interface BottleneckStats {
  /** Images run through the network in this call. */
  computed: number;
  /** Images whose features came from the cache (disk, or memory when the disk refused them). */
  cached: number;
  /** Cache files found damaged (or another image's) and computed again. */
  repaired: number;
  /** Seconds spent computing. */
  seconds: number;
}

export interface Bottlenecks {
  features: tf.Tensor2D;
  /** Files the rows belong to (files that could not be read or decoded are left out). */
  files: string[];
  failed: { path: string; reason: string }[];
  stats: BottleneckStats;
}

/** The kind of file a feature is stored in: float32 values under a header (util/content-cache.ts). */
export const FEATURE_FILES = { magic: "ILF2", extension: "f32", bytesPerValue: 4 } as const;

export class BottleneckCache {
  readonly width: number;
  private readonly store: ContentCache;

  constructor(
    readonly inception: Inception,
    readonly layer: CutLayer,
    root?: string,
    /** Features computed at another precision are other numbers: they are cached apart. */
    readonly precision: Precision = "float32",
    /** Told once when the cache cannot be written (the features then stay in memory for this run). */
    onWarning: (message: string) => void = (message) => console.warn(`inception-lab: ${message}`),
  ) {
    this.width = (inception.model.getLayer(layer).outputShape as number[])[3];
    const description = { weights: inception.source.id, fingerprint: inception.weightsFingerprint(layer), layer, preprocessing: inception.source.preprocessing, inputSize: inception.inputSize, precision };
    this.store = new ContentCache({
      ...FEATURE_FILES,
      description,
      valuesPerItem: this.width,
      root: root ?? cacheDir("bottlenecks"),
      onWriteFailure: (problem) => onWarning(`the feature cache was not written (${problem}); this run keeps its features in memory.`),
    });
  }

  get dir(): string {
    return this.store.dir;
  }

  /**
   * Features of every file, from the cache where present and intact; the rest computed in batches and stored.
   * Every file is read to find its features by content. Stops between batches when `interrupt` is raised
   * (throws InterruptedError).
   */
  async get(files: string[], options: { batchSize?: number; title?: string; interrupt?: InterruptFlag } = {}): Promise<Bottlenecks> {
    const { batchSize = 32, title = "bottlenecks", interrupt } = options;
    const started = performance.now();
    const rows = new Map<string, Float32Array>();
    const failed: { path: string; reason: string }[] = [];
    const hashes = new Map<string, string>();
    let repaired = 0;
    for (const file of files) {
      let hash: string;
      try {
        hash = contentHash(file);
      } catch (error) {
        failed.push({ path: file, reason: `unreadable (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})` });
        continue;
      }
      hashes.set(file, hash);
      const payload = this.store.get(hash, () => repaired++);
      if (!payload) continue;
      const values = new Float32Array(payload.buffer, payload.byteOffset, this.width);
      if (values.every(Number.isFinite)) rows.set(file, values);
      else repaired++;
    }
    const missing = files.filter((file) => hashes.has(file) && !rows.has(file));
    const progress = missing.length > 0 ? new Progress(title, missing.length, "images") : null;
    let done = 0;
    for (let i = 0; i < missing.length; i += batchSize) {
      if (interrupt?.requested) throw new InterruptedError(`interrupted while computing features (${done} of ${missing.length} done and cached)`);
      const chunk = missing.slice(i, i + batchSize);
      const { images, decoded, failed: bad } = await decodeBatch(chunk, this.inception.inputSize);
      bad.forEach(({ index, reason }) => failed.push({ path: chunk[index], reason }));
      try {
        if (decoded.length > 0) {
          const features = await this.inception.features(images, { layer: this.layer, batchSize, precision: this.precision });
          const values = (await features.data()) as Float32Array;
          features.dispose();
          decoded.forEach((index, row) => {
            const vector = values.slice(row * this.width, (row + 1) * this.width);
            rows.set(chunk[index], vector);
            this.store.put(hashes.get(chunk[index])!, new Uint8Array(vector.buffer));
          });
        }
      } finally {
        images.dispose();
      }
      done += chunk.length;
      progress?.update(done);
    }
    progress?.finish();
    const kept = files.filter((f) => rows.has(f));
    const matrix = new Float32Array(kept.length * this.width);
    kept.forEach((file, i) => matrix.set(rows.get(file)!, i * this.width));
    const computed = missing.length - failed.filter((f) => hashes.has(f.path)).length;
    return {
      features: tf.tensor2d(matrix, [kept.length, this.width]),
      files: kept,
      failed,
      stats: { computed, cached: kept.length - computed, repaired, seconds: (performance.now() - started) / 1000 },
    };
  }
}
