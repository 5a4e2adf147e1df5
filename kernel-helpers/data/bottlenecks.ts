// retrain.py's bottleneck cache: each image goes through the frozen network once; its pooled features
// are stored on disk, keyed by what determines them (the bytes of the network's weights up to the cut,
// the cut, preprocessing, input size and the image file's bytes), so a cache survives kernel restarts
// and is never served stale, not even when weights were changed in place. Every file read back is
// checked (size, header with the cache key, checksum, finite values); a damaged one is computed again.
// Writing the cache is a side job: when it fails (a full disk, a read-only folder) the features are
// kept in memory for this run and a warning says so.
import { createHash } from "crypto";
import * as fs from "fs";
import * as path from "path";
import { Progress } from "../display/progress";
import { decodeBatch } from "../network/decode";
import type { CutLayer } from "../network/inception";
import type { Inception } from "../network/model";
import type { Precision } from "../runtime/precision";
import { tf } from "../runtime/tf";
import { writeAtomically } from "../util/atomic";
import { cacheDir } from "../util/download";
import { type InterruptFlag, InterruptedError } from "../util/interrupt";

export interface BottleneckStats {
  /** Images run through the network in this call. */
  computed: number;
  /** Images whose features came from the disk cache. */
  cached: number;
  /** Cache files found damaged and computed again. */
  repaired: number;
  /** Seconds spent computing. */
  seconds: number;
}

export interface Bottlenecks {
  features: tf.Tensor2D;
  /** Files the rows belong to (files that failed to decode are left out). */
  files: string[];
  failed: { path: string; reason: string }[];
  stats: BottleneckStats;
}

const MAGIC = "ILF1";
const HEADER_BYTES = 32;
const digestOf = (data: string | Uint8Array, algorithm = "sha1") => createHash(algorithm).update(data).digest();

/**
 * A cache file of one image's values (features here, frozen-bottom activations in activations.ts): a header
 * (magic, cache key, count of values, checksum of the payload), then the values' bytes.
 */
export function encodeCacheFile(magic: string, key: Buffer, payload: Uint8Array, count: number): Buffer {
  const header = Buffer.alloc(HEADER_BYTES);
  header.write(magic, 0, "latin1");
  key.copy(header, 4, 0, 8);
  header.writeUInt32LE(count, 12);
  digestOf(payload).copy(header, 16, 0, 16);
  return Buffer.concat([header, payload]);
}

/** The payload of a cache file (a copy, aligned), or why it cannot be trusted. */
export function decodeCacheFile(bytes: Buffer, magic: string, key: Buffer, count: number, bytesPerValue: number): ArrayBuffer | string {
  if (bytes.length !== HEADER_BYTES + bytesPerValue * count) return `${bytes.length} bytes, expected ${HEADER_BYTES + bytesPerValue * count}`;
  if (bytes.toString("latin1", 0, 4) !== magic) return "not a cache file of this kind";
  if (!bytes.subarray(4, 12).equals(key.subarray(0, 8))) return "written for another network or cut";
  if (bytes.readUInt32LE(12) !== count) return "another number of values";
  const payload = bytes.subarray(HEADER_BYTES);
  if (!digestOf(payload).subarray(0, 16).equals(bytes.subarray(16, 32))) return "checksum mismatch";
  return payload.buffer.slice(payload.byteOffset, payload.byteOffset + payload.byteLength);
}

/** A feature file: float32 values. */
export function encodeFeatures(key: Buffer, values: Float32Array): Buffer {
  return encodeCacheFile(MAGIC, key, new Uint8Array(values.buffer, values.byteOffset, values.byteLength), values.length);
}

/** The values of a feature file, or why it cannot be trusted. */
export function decodeFeatures(bytes: Buffer, key: Buffer, width: number): Float32Array | string {
  const payload = decodeCacheFile(bytes, MAGIC, key, width, 4);
  if (typeof payload === "string") return payload;
  const values = new Float32Array(payload);
  return values.every(Number.isFinite) ? values : "values that are not finite numbers";
}

export class BottleneckCache {
  readonly dir: string;
  readonly width: number;
  private readonly key: Buffer;
  /** Features kept in memory when the disk would not take them. */
  private readonly unwritten = new Map<string, Float32Array>();
  private warned = false;

  constructor(
    readonly inception: Inception,
    readonly layer: CutLayer,
    root?: string,
    /** Features computed at another precision are other numbers: they are cached apart. */
    readonly precision: Precision = "float32",
  ) {
    const description = { weights: inception.source.id, fingerprint: inception.weightsFingerprint(layer), layer, preprocessing: inception.source.preprocessing, inputSize: inception.inputSize, precision };
    this.key = digestOf(JSON.stringify(description));
    this.width = (inception.model.getLayer(layer).outputShape as number[])[3];
    this.dir = path.join(root ?? cacheDir("bottlenecks"), this.key.toString("hex").slice(0, 16));
    this.tryWrite(() => {
      fs.mkdirSync(this.dir, { recursive: true });
      const keyFile = path.join(this.dir, "key.json");
      if (!fs.existsSync(keyFile)) writeAtomically(keyFile, JSON.stringify(description, null, 1));
    });
  }

  private tryWrite(write: () => void): boolean {
    try {
      write();
      return true;
    } catch (error) {
      if (!this.warned) console.warn(`inception-lab: cannot write the feature cache in ${this.dir} (${(error as Error).message}); this run keeps its features in memory.`);
      this.warned = true;
      return false;
    }
  }

  private fileFor(image: string): string {
    return path.join(this.dir, `${digestOf(fs.readFileSync(image)).toString("hex")}.f32`);
  }

  /** A verified cached row, or null (missing, or damaged: then `damaged` is told why). */
  private read(cacheFile: string, damaged: (reason: string) => void): Float32Array | null {
    const kept = this.unwritten.get(cacheFile);
    if (kept) return kept;
    let bytes: Buffer;
    try {
      bytes = fs.readFileSync(cacheFile);
    } catch {
      return null;
    }
    const values = decodeFeatures(bytes, this.key, this.width);
    if (typeof values !== "string") return values;
    damaged(values);
    return null;
  }

  /**
   * Features of every file, from the cache where present and intact; the rest computed in batches and
   * stored. Stops between batches when `interrupt` is raised (throws InterruptedError).
   */
  async get(files: string[], options: { batchSize?: number; title?: string; interrupt?: InterruptFlag } = {}): Promise<Bottlenecks> {
    const { batchSize = 32, title = "bottlenecks", interrupt } = options;
    const started = performance.now();
    const rows = new Map<string, Float32Array>();
    const entries = files.map((file) => ({ file, cacheFile: this.fileFor(file) }));
    let repaired = 0;
    for (const e of entries) {
      const values = this.read(e.cacheFile, () => repaired++);
      if (values) rows.set(e.file, values);
    }
    const missing = entries.filter((e) => !rows.has(e.file));
    const failed: { path: string; reason: string }[] = [];
    const progress = missing.length > 0 ? new Progress(title, missing.length, "images") : null;
    let done = 0;
    for (let i = 0; i < missing.length; i += batchSize) {
      if (interrupt?.requested) throw new InterruptedError(`interrupted while computing features (${done} of ${missing.length} done and cached)`);
      const chunk = missing.slice(i, i + batchSize);
      const { images, decoded, failed: bad } = await decodeBatch(chunk.map((e) => e.file), this.inception.inputSize);
      bad.forEach(({ index, reason }) => failed.push({ path: chunk[index].file, reason }));
      try {
        if (decoded.length > 0) {
          const features = await this.inception.features(images, { layer: this.layer, batchSize, precision: this.precision });
          const values = (await features.data()) as Float32Array;
          features.dispose();
          decoded.forEach((index, row) => {
            const { file, cacheFile } = chunk[index];
            const vector = values.slice(row * this.width, (row + 1) * this.width);
            rows.set(file, vector);
            if (!this.tryWrite(() => writeAtomically(cacheFile, encodeFeatures(this.key, vector)))) this.unwritten.set(cacheFile, vector);
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
    return {
      features: tf.tensor2d(matrix, [kept.length, this.width]),
      files: kept,
      failed,
      stats: { computed: missing.length - failed.length, cached: files.length - missing.length, repaired, seconds: (performance.now() - started) / 1000 },
    };
  }
}
