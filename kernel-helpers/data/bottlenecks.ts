// retrain.py's bottleneck cache: each image goes through the frozen network once; its pooled features
// are stored on disk, keyed by what determines them (weights, cut layer, preprocessing, input size and
// the image file's bytes), so a cache survives kernel restarts and is never served stale.
import { createHash } from "crypto";
import * as fs from "fs";
import * as path from "path";
import { decodeBatch } from "../network/decode";
import { cacheDir } from "../util/download";
import type { CutLayer } from "../network/inception";
import type { Inception } from "../network/model";
import { Progress } from "../display/progress";
import { tf } from "../runtime/tf";

export interface BottleneckStats {
  /** Images run through the network in this call. */
  computed: number;
  /** Images whose features came from the disk cache. */
  cached: number;
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

const sha1 = (data: string | Buffer) => createHash("sha1").update(data).digest("hex");

export class BottleneckCache {
  readonly dir: string;

  constructor(
    readonly inception: Inception,
    readonly layer: CutLayer,
    root?: string,
  ) {
    const key = { weights: inception.source.id, layer, preprocessing: inception.source.preprocessing, inputSize: inception.inputSize };
    this.dir = path.join(root ?? cacheDir("bottlenecks"), sha1(JSON.stringify(key)).slice(0, 16));
    fs.mkdirSync(this.dir, { recursive: true });
    const description = path.join(this.dir, "key.json");
    if (!fs.existsSync(description)) writeAtomically(description, JSON.stringify(key, null, 1));
  }

  private fileFor(image: string): string {
    return path.join(this.dir, `${sha1(fs.readFileSync(image))}.f32`);
  }

  /** Features of every file, from the cache where present; the rest computed in batches and stored. */
  async get(files: string[], options: { batchSize?: number; title?: string } = {}): Promise<Bottlenecks> {
    const { batchSize = 32, title = "bottlenecks" } = options;
    const started = performance.now();
    fs.mkdirSync(this.dir, { recursive: true }); // a temporary cache may have been cleared since
    const entries = files.map((file) => ({ file, cacheFile: this.fileFor(file) }));
    const missing = entries.filter((e) => !fs.existsSync(e.cacheFile));
    const failed: { path: string; reason: string }[] = [];
    const progress = missing.length > 0 ? new Progress(title, missing.length, "images") : null;
    let done = 0;
    for (let i = 0; i < missing.length; i += batchSize) {
      const chunk = missing.slice(i, i + batchSize);
      const { images, decoded, failed: bad } = await decodeBatch(chunk.map((e) => e.file), this.inception.inputSize);
      bad.forEach(({ index, reason }) => failed.push({ path: chunk[index].file, reason }));
      if (decoded.length > 0) {
        const features = await this.inception.features(images, { layer: this.layer, batchSize });
        const rows = (await features.array()) as number[][];
        decoded.forEach((index, row) => writeAtomically(chunk[index].cacheFile, Buffer.from(new Float32Array(rows[row]).buffer)));
        features.dispose();
      }
      images.dispose();
      done += chunk.length;
      progress?.update(done);
    }
    progress?.finish();
    const failedFiles = new Set(failed.map((f) => f.path));
    const kept = entries.filter((e) => !failedFiles.has(e.file));
    const rows = kept.map((e) => {
      const bytes = fs.readFileSync(e.cacheFile);
      return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
    });
    const width = rows[0]?.length ?? 0;
    const matrix = new Float32Array(rows.length * width);
    rows.forEach((row, i) => matrix.set(row, i * width));
    return {
      features: tf.tensor2d(matrix, [rows.length, width]),
      files: kept.map((e) => e.file),
      failed,
      stats: { computed: missing.length - failed.length, cached: files.length - missing.length, seconds: (performance.now() - started) / 1000 },
    };
  }
}

/** Writes a whole file or nothing: a temporary sibling renamed into place. */
export function writeAtomically(file: string, data: string | Buffer): void {
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, data);
  fs.renameSync(tmp, file);
}
