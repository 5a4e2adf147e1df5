// One content-addressed store for the values the library computes once per image and reads back later: the
// features retraining trains on (data/bottlenecks.ts) and the frozen-bottom activations a fine-tune of the top
// blocks keeps (data/activations.ts). An item is found by its input's content (the SHA-1 of the image file's
// bytes), never by its name, so an image changed or replaced under the same name is computed afresh. A store
// belongs to what decides its values (weights, cut, preprocessing, input size, precision): that description's
// hash is its key. Every file read back is checked before use: its header names the kind of file, the store's
// key and the content hash of the input it belongs to, the count of values, and a checksum of them; a file cut
// short, flipped, or copied over another image's file fails one of these and is computed again. Writing is a side
// job: when the disk will not take a file (full, read-only), the store says so once and keeps its values in memory.
import { createHash } from "crypto";
import * as fs from "fs";
import * as path from "path";
import { describeFileError, writeAtomically } from "./atomic";

const sha1 = (data: string | Uint8Array) => createHash("sha1").update(data).digest();

/** magic (4) | store key (8) | content hash of the input (20) | count of values (4) | checksum of the payload (16) */
const HEADER_BYTES = 52;

/** The content hash of a file (hex SHA-1 of its bytes): what a store finds an item by. Throws when it cannot be read. */
export function contentHash(file: string): string {
  return sha1(fs.readFileSync(file)).toString("hex");
}

export interface ContentCacheOptions {
  /** Four letters for the kind of file: a file of another kind is never read as this one. */
  magic: string;
  /** What decides the values: its hash is the store's key (and its folder's name). */
  description: object;
  valuesPerItem: number;
  bytesPerValue: 2 | 4;
  /** The folder the store's own folder is made in. */
  root: string;
  /** The files' extension, for people looking at the folder. */
  extension: string;
  /** Keep values in memory only (a store small enough for it). */
  inMemory?: boolean;
  /** Told once, when the disk refuses a write; the store keeps its values in memory from then on. */
  onWriteFailure?: (message: string) => void;
}

export class ContentCache {
  readonly key: Buffer;
  readonly dir: string;
  /** Payloads kept in memory, by content hash: all of them for an in-memory store, else those the disk refused. */
  private readonly memory = new Map<string, Uint8Array>();
  private writable: boolean;

  constructor(readonly options: ContentCacheOptions) {
    this.key = sha1(JSON.stringify(options.description));
    this.dir = path.join(options.root, this.key.toString("hex").slice(0, 16));
    this.writable = !options.inMemory;
  }

  get payloadBytes(): number {
    return this.options.valuesPerItem * this.options.bytesPerValue;
  }

  /** Where an item's file is (or would be). */
  fileFor(hash: string): string {
    return path.join(this.dir, `${hash}.${this.options.extension}`);
  }

  /** The file's bytes for an item: the header that names the store and the input, then the payload. */
  encode(hash: string, payload: Uint8Array): Buffer {
    const header = Buffer.alloc(HEADER_BYTES);
    header.write(this.options.magic, 0, "latin1");
    this.key.copy(header, 4, 0, 8);
    Buffer.from(hash, "hex").copy(header, 12);
    header.writeUInt32LE(this.options.valuesPerItem, 32);
    sha1(payload).copy(header, 36, 0, 16);
    return Buffer.concat([header, payload]);
  }

  /** The payload of a file's bytes (a copy, aligned), or why it cannot be trusted for the input `hash`. */
  decode(bytes: Buffer, hash: string): Uint8Array | string {
    if (bytes.length !== HEADER_BYTES + this.payloadBytes) return `${bytes.length} bytes, expected ${HEADER_BYTES + this.payloadBytes}`;
    if (bytes.toString("latin1", 0, 4) !== this.options.magic) return "not a cache file of this kind";
    if (!bytes.subarray(4, 12).equals(this.key.subarray(0, 8))) return "written for another network, cut or precision";
    if (bytes.subarray(12, 32).toString("hex") !== hash) return "written for another image (a file copied over another's)";
    if (bytes.readUInt32LE(32) !== this.options.valuesPerItem) return "another number of values";
    const payload = bytes.subarray(HEADER_BYTES);
    if (!sha1(payload).subarray(0, 16).equals(bytes.subarray(36, 52))) return "checksum mismatch";
    return new Uint8Array(payload);
  }

  /** Whether an item is held (in memory, or as a file: checked only when read). */
  has(hash: string): boolean {
    return this.memory.has(hash) || (!this.options.inMemory && fs.existsSync(this.fileFor(hash)));
  }

  /** An item's payload, checked, or null: not there, or damaged (then `damaged` says why, and it is computed again). */
  get(hash: string, damaged?: (reason: string) => void): Uint8Array | null {
    const kept = this.memory.get(hash);
    if (kept || this.options.inMemory) return kept ?? null;
    let bytes: Buffer;
    try {
      bytes = fs.readFileSync(this.fileFor(hash));
    } catch {
      return null;
    }
    const payload = this.decode(bytes, hash);
    if (typeof payload !== "string") return payload;
    damaged?.(payload);
    return null;
  }

  /** Stores an item: on disk, written whole; in memory for an in-memory store or once the disk has refused one. */
  put(hash: string, payload: Uint8Array): void {
    if (this.writable) {
      try {
        if (!fs.existsSync(this.dir)) {
          fs.mkdirSync(this.dir, { recursive: true });
          writeAtomically(path.join(this.dir, "key.json"), JSON.stringify(this.options.description, null, 1));
        }
        writeAtomically(this.fileFor(hash), this.encode(hash, payload));
        return;
      } catch (error) {
        this.writable = false;
        // writeAtomically's errors say the file and the cause already; a folder that could not be made says it here.
        const message = (error as Error).message;
        this.options.onWriteFailure?.(message.startsWith("cannot write ") ? message : describeFileError(error, this.dir).message);
      }
    }
    this.memory.set(hash, payload.slice());
  }
}
