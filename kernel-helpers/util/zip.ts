// A zip file's table of contents, checked whole, and one member read out: enough to check a Keras file
// (a .keras is a zip of metadata.json, config.json and model.weights.h5) before anything trusts it. A
// .keras cut short has lost its table of contents, and Keras then says "File not found" (issue 20).
import * as zlib from "zlib";

export interface ZipMember {
  name: string;
  /** 0 stored, 8 deflated. */
  method: number;
  crc: number;
  /** Where the member's bytes start in the file, and how many there are. */
  start: number;
  compressedSize: number;
}

const END_OF_DIRECTORY = 0x06054b50;
const DIRECTORY_ENTRY = 0x02014b50;
const LOCAL_HEADER = 0x04034b50;
const ZIP64_SIZE = 0xffffffff;

/**
 * The members of the zip file `data`, each checked to lie whole inside the file with its local header;
 * or what is wrong, in words.
 */
export function zipMembers(data: Buffer): ZipMember[] | string {
  // The end record sits in the last 22 bytes, followed by a comment of at most 65,535.
  let end = -1;
  for (let at = data.length - 22; at >= Math.max(0, data.length - 22 - 0xffff); at--) {
    if (data.readUInt32LE(at) === END_OF_DIRECTORY) {
      end = at;
      break;
    }
  }
  if (end < 0) return "no zip table of contents at its end: the file is cut short or not a zip";
  const count = data.readUInt16LE(end + 10);
  const directoryStart = data.readUInt32LE(end + 16);
  if (directoryStart + data.readUInt32LE(end + 12) > end) return "its zip table of contents points past its end";
  const members: ZipMember[] = [];
  let at = directoryStart;
  for (let i = 0; i < count; i++) {
    if (at + 46 > end || data.readUInt32LE(at) !== DIRECTORY_ENTRY) return `zip entry ${i + 1} of ${count} is damaged`;
    const nameLength = data.readUInt16LE(at + 28);
    const name = data.toString("utf8", at + 46, at + 46 + nameLength);
    const compressedSize = data.readUInt32LE(at + 20);
    const local = data.readUInt32LE(at + 42);
    if (compressedSize === ZIP64_SIZE || local === ZIP64_SIZE) return `${name} is stored as zip64, which this check does not read`;
    if (local + 30 > directoryStart || data.readUInt32LE(local) !== LOCAL_HEADER) return `${name}'s zip header is damaged`;
    const start = local + 30 + data.readUInt16LE(local + 26) + data.readUInt16LE(local + 28);
    if (start + compressedSize > directoryStart) return `${name} runs past the end of its data`;
    members.push({ name, method: data.readUInt16LE(at + 10), crc: data.readUInt32LE(at + 16), start, compressedSize });
    at += 46 + nameLength + data.readUInt16LE(at + 30) + data.readUInt16LE(at + 32);
  }
  return members;
}

/** A member's bytes, checked against its CRC-32 (where this Node has zlib.crc32, from 20.15); or what is wrong. */
export function zipMemberData(data: Buffer, member: ZipMember): Buffer | string {
  if (member.method !== 0 && member.method !== 8) return `${member.name} uses zip method ${member.method}, which this check does not read`;
  const raw = data.subarray(member.start, member.start + member.compressedSize);
  let bytes: Buffer;
  try {
    bytes = member.method === 0 ? raw : zlib.inflateRawSync(raw);
  } catch {
    return `${member.name} does not decompress`;
  }
  const crc32 = (zlib as { crc32?: (data: Buffer) => number }).crc32;
  if (crc32 && crc32(bytes) >>> 0 !== member.crc) return `${member.name}'s contents do not match their checksum`;
  return bytes;
}
