/**
 * A minimal, defensive ZIP reader: enough for the archives `np.savez` / `np.savez_compressed` write
 * (PKWARE APPNOTE 6.3: stored or deflated entries, optional ZIP64 fields), and nothing more.
 *
 * Every offset and size read from the archive is checked against the archive's size before it is
 * used, so a malformed or hostile file produces an `Error` that names the archive and the entry
 * rather than an out-of-range read. Deflated data is inflated with `maxOutputLength` set to the
 * size the central directory declares, so a zip bomb is stopped before its output is allocated.
 */
import * as fs from "node:fs";
import * as zlib from "node:zlib";
import { constants as bufferConstants } from "node:buffer";

/** One file in the archive, as its central directory record (with ZIP64 extras applied) describes it. */
export interface ZipEntry {
  name: string;
  /** 0 = stored, 8 = deflate; anything else is rejected when the entry is read. */
  method: number;
  /** General-purpose bit flags (bit 0: encrypted, bit 3: data descriptor, bit 11: UTF-8 name). */
  flags: number;
  crc32: number;
  compressedSize: number;
  uncompressedSize: number;
  /** Offset of the entry's local file header from the start of the archive. */
  localHeaderOffset: number;
}

/** Limits on what reading may allocate; both default to {@link DEFAULT_MAX_ENTRY_BYTES}. */
export interface ZipLimits {
  /** Largest uncompressed size accepted for one entry. */
  maxEntryBytes?: number;
  /** Largest sum of uncompressed sizes accepted for all entries read through one call. */
  maxTotalBytes?: number;
}

/** 4 GiB: the largest Buffer Node 20 can allocate, and far more than any statistics file needs. */
export const DEFAULT_MAX_ENTRY_BYTES = 4 * 1024 ** 3;
export const DEFAULT_MAX_TOTAL_BYTES = 4 * 1024 ** 3;

const SIG_LOCAL = 0x04034b50;
const SIG_CENTRAL = 0x02014b50;
const SIG_EOCD = 0x06054b50;
const SIG_ZIP64_EOCD = 0x06064b50;
const SIG_ZIP64_LOCATOR = 0x07064b50;
const EOCD_SIZE = 22;
const ZIP64_LOCATOR_SIZE = 20;
const ZIP64_EOCD_MIN_SIZE = 56;
const CENTRAL_HEADER_SIZE = 46;
const LOCAL_HEADER_SIZE = 30;
/** The EOCD's trailing comment is at most 0xFFFF bytes, so the record lies in the last 64 KiB + 22. */
const MAX_COMMENT = 0xffff;
const ZIP64_EXTRA_ID = 0x0001;
const FLAG_ENCRYPTED = 0x0001;
const FLAG_UTF8 = 0x0800;
const METHOD_STORED = 0;
const METHOD_DEFLATE = 8;

/** Random access to the archive's bytes; `read` never returns bytes outside `[0, size)`. */
interface ByteSource {
  readonly size: number;
  read(offset: number, length: number): Buffer;
  close(): void;
}

function bufferSource(buf: Uint8Array): ByteSource {
  const b = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  return {
    size: b.length,
    read: (offset, length) => b.subarray(offset, offset + length),
    close: () => {},
  };
}

function fileSource(path: string): ByteSource {
  const fd = fs.openSync(path, "r");
  try {
    const size = fs.fstatSync(fd).size;
    return {
      size,
      read(offset, length) {
        const out = Buffer.allocUnsafe(length);
        let done = 0;
        while (done < length) {
          const n = fs.readSync(fd, out, done, Math.min(length - done, 1 << 30), offset + done);
          if (n === 0) throw new Error(`${path}: unexpected end of file at byte ${offset + done}`);
          done += n;
        }
        return out;
      },
      close: () => fs.closeSync(fd),
    };
  } catch (e) {
    fs.closeSync(fd);
    throw e;
  }
}

/** Reads a u64 little-endian field, rejecting values above 2^53 (no real archive has them). */
function readU64(b: Buffer, at: number, what: string, source: string): number {
  const v = b.readBigUInt64LE(at);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new Error(`${source}: ${what} ${v} is out of range`);
  return Number(v);
}

/** The upper half of code page 437, the encoding of entry names whose UTF-8 flag (bit 11) is clear. */
const CP437_HIGH =
  "ÇüéâäàåçêëèïîìÄÅÉæÆôöòûùÿÖÜ¢£¥₧ƒáíóúñÑªº¿⌐¬½¼¡«»░▒▓│┤╡╢╖╕╣║╗╝╜╛┐└┴┬├─┼╞╟╚╔╩╦╠═╬╧╨╤╥╙╘╒╓╫╪┘┌█▄▌▐▀αßΓπΣσµτΦΘΩδ∞φε∩≡±≥≤⌠⌡÷≈°∙·√ⁿ²■\u00a0";

function decodeName(bytes: Buffer, flags: number): string {
  if (flags & FLAG_UTF8) return new TextDecoder("utf-8").decode(bytes);
  let s = "";
  for (const c of bytes) s += c < 0x80 ? String.fromCharCode(c) : CP437_HIGH[c - 0x80];
  return s;
}

let crcTable: Uint32Array | undefined;

/** CRC-32 (ISO-HDLC, the polynomial ZIP uses); `zlib.crc32` where Node has it (20.15+), else {@link crc32Table}. */
export function crc32(data: Uint8Array): number {
  const native = (zlib as { crc32?: (d: Uint8Array) => number }).crc32;
  return typeof native === "function" ? native(data) >>> 0 : crc32Table(data);
}

/** CRC-32 computed byte by byte from a 256-entry table (reflected polynomial 0xEDB88320). */
export function crc32Table(data: Uint8Array): number {
  if (!crcTable) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  let crc = 0xffffffff;
  for (let i = 0; i < data.length; i++) crc = (crcTable[(crc ^ data[i]!) & 0xff]! ^ (crc >>> 8)) >>> 0;
  return (crc ^ 0xffffffff) >>> 0;
}

/**
 * An open archive: its central directory is parsed on open; entry data is read (and verified) on
 * demand. Close it when done; a reader made from a buffer holds no file descriptor.
 */
export class ZipReader {
  readonly entries: readonly ZipEntry[];
  private readonly byName: Map<string, ZipEntry>;
  private totalRead = 0;

  private constructor(
    private readonly src: ByteSource,
    readonly source: string,
    private readonly limits: Required<ZipLimits>,
  ) {
    this.entries = readCentralDirectory(src, source);
    this.byName = new Map();
    for (const e of this.entries) {
      if (this.byName.has(e.name))
        throw new Error(`${source}: entry "${e.name}" appears twice in the archive`);
      this.byName.set(e.name, e);
    }
  }

  /** Opens the archive at `path` (reads only the directory now). */
  static open(path: string, limits: ZipLimits = {}): ZipReader {
    const src = fileSource(path);
    try {
      return new ZipReader(src, path, withDefaults(limits));
    } catch (e) {
      src.close();
      throw e;
    }
  }

  /** Reads an archive held in memory; `source` names it in errors. */
  static fromBuffer(buf: Uint8Array, source: string, limits: ZipLimits = {}): ZipReader {
    return new ZipReader(bufferSource(buf), source, withDefaults(limits));
  }

  get(name: string): ZipEntry | undefined {
    return this.byName.get(name);
  }

  /**
   * Checks, before anything is read, that the named entries' declared sizes fit the per-entry and
   * total limits, so a whole-archive read is refused up front rather than part-way through.
   */
  checkSizes(entries: readonly ZipEntry[]): void {
    let total = this.totalRead;
    for (const e of entries) {
      this.checkEntrySize(e);
      total += e.uncompressedSize;
      if (total > this.limits.maxTotalBytes)
        throw new Error(
          `${this.source}: the entries declare ${total} uncompressed bytes in all, more than the ` +
            `limit of ${this.limits.maxTotalBytes} (raise maxTotalBytes if the archive is trusted)`,
        );
    }
  }

  /** Returns the entry's uncompressed bytes, after checking the limits, the method and the CRC-32. */
  read(entry: ZipEntry): Buffer {
    const where = `${this.source}: entry "${entry.name}"`;
    this.checkSizes([entry]);
    if (entry.flags & FLAG_ENCRYPTED) throw new Error(`${where} is encrypted, which is not supported`);
    if (entry.method !== METHOD_STORED && entry.method !== METHOD_DEFLATE)
      throw new Error(
        `${where} uses compression method ${entry.method}; only 0 (stored) and 8 (deflate) are supported`,
      );
    const dataStart = this.localDataStart(entry);
    if (dataStart + entry.compressedSize > this.src.size)
      throw new Error(
        `${where}: its data (bytes ${dataStart}..${dataStart + entry.compressedSize}) lies outside ` +
          `the ${this.src.size}-byte archive (truncated file?)`,
      );
    const raw = this.src.read(dataStart, entry.compressedSize);
    let data: Buffer;
    if (entry.method === METHOD_STORED) {
      if (entry.compressedSize !== entry.uncompressedSize)
        throw new Error(
          `${where} is stored (uncompressed) but declares ${entry.compressedSize} compressed and ` +
            `${entry.uncompressedSize} uncompressed bytes`,
        );
      data = raw;
    } else {
      data = inflateExactly(raw, entry.uncompressedSize, where);
    }
    const crc = crc32(data);
    if (crc !== entry.crc32)
      throw new Error(
        `${where}: CRC-32 mismatch (computed ${hex32(crc)}, archive says ${hex32(entry.crc32)}); ` +
          `the archive is corrupted`,
      );
    this.totalRead += entry.uncompressedSize;
    return data;
  }

  close(): void {
    this.src.close();
  }

  private checkEntrySize(e: ZipEntry): void {
    const size = Math.max(e.uncompressedSize, e.compressedSize);
    if (size > this.limits.maxEntryBytes)
      throw new Error(
        `${this.source}: entry "${e.name}" declares ${size} bytes, more than the limit of ` +
          `${this.limits.maxEntryBytes} (raise maxEntryBytes if the archive is trusted)`,
      );
  }

  /**
   * The local header repeats name and sizes (numpy writes 0xFFFFFFFF sizes plus a ZIP64 extra
   * there); only its signature and its name/extra lengths are used, to find where the data begins.
   */
  private localDataStart(entry: ZipEntry): number {
    const where = `${this.source}: entry "${entry.name}"`;
    if (entry.localHeaderOffset + LOCAL_HEADER_SIZE > this.src.size)
      throw new Error(`${where}: local header offset ${entry.localHeaderOffset} lies outside the archive`);
    const h = this.src.read(entry.localHeaderOffset, LOCAL_HEADER_SIZE);
    if (h.readUInt32LE(0) !== SIG_LOCAL)
      throw new Error(`${where}: no local file header at offset ${entry.localHeaderOffset}`);
    return entry.localHeaderOffset + LOCAL_HEADER_SIZE + h.readUInt16LE(26) + h.readUInt16LE(28);
  }
}

function withDefaults(l: ZipLimits): Required<ZipLimits> {
  return {
    maxEntryBytes: l.maxEntryBytes ?? DEFAULT_MAX_ENTRY_BYTES,
    maxTotalBytes: l.maxTotalBytes ?? DEFAULT_MAX_TOTAL_BYTES,
  };
}

function hex32(n: number): string {
  return "0x" + n.toString(16).padStart(8, "0");
}

/**
 * Inflates raw deflate data that must produce exactly `size` bytes. `maxOutputLength` stops zlib
 * as soon as the output would exceed the declared size, so a bomb never allocates its full output.
 */
function inflateExactly(raw: Buffer, size: number, where: string): Buffer {
  if (size > bufferConstants.MAX_LENGTH)
    throw new Error(`${where} declares ${size} bytes, more than one Buffer can hold`);
  let out: Buffer;
  try {
    out = zlib.inflateRawSync(raw, { maxOutputLength: Math.max(size, 1) });
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (err.code === "ERR_BUFFER_TOO_LARGE" || err instanceof RangeError)
      throw new Error(
        `${where} inflates to more than the ${size} bytes its directory declares ` +
          `(possible zip bomb); refusing to read it`,
      );
    throw new Error(`${where}: corrupt deflate data (${err.message})`);
  }
  if (out.length !== size)
    throw new Error(`${where} inflates to ${out.length} bytes but its directory declares ${size}`);
  return out;
}

/** Finds the End Of Central Directory record by scanning backwards over the possible comment. */
function findEocd(src: ByteSource, source: string): { at: number; rec: Buffer } {
  if (src.size < EOCD_SIZE)
    throw new Error(`${source}: not a ZIP archive (${src.size} bytes, shorter than an end record)`);
  const tailStart = Math.max(0, src.size - EOCD_SIZE - MAX_COMMENT);
  const tail = src.read(tailStart, src.size - tailStart);
  for (let i = tail.length - EOCD_SIZE; i >= 0; i--) {
    // The comment length must account exactly for the bytes after the record.
    if (tail.readUInt32LE(i) === SIG_EOCD && i + EOCD_SIZE + tail.readUInt16LE(i + 20) === tail.length)
      return { at: tailStart + i, rec: tail.subarray(i, i + EOCD_SIZE) };
  }
  throw new Error(`${source}: not a ZIP archive (no end-of-central-directory record)`);
}

interface DirectoryLocation {
  count: number;
  offset: number;
  size: number;
  /** Where the directory must end: the ZIP64 end record if there is one, else the EOCD. */
  limit: number;
}

/** Reads the EOCD and, when a ZIP64 locator precedes it, the ZIP64 end record it points to. */
function locateDirectory(src: ByteSource, source: string): DirectoryLocation {
  const { at, rec } = findEocd(src, source);
  if (rec.readUInt16LE(4) !== 0 || rec.readUInt16LE(6) !== 0)
    throw new Error(`${source}: multi-disk (spanned) archives are not supported`);
  let loc: DirectoryLocation = {
    count: rec.readUInt16LE(10),
    size: rec.readUInt32LE(12),
    offset: rec.readUInt32LE(16),
    limit: at,
  };
  if (at >= ZIP64_LOCATOR_SIZE) {
    const l = src.read(at - ZIP64_LOCATOR_SIZE, ZIP64_LOCATOR_SIZE);
    if (l.readUInt32LE(0) === SIG_ZIP64_LOCATOR) {
      const recAt = readU64(l, 8, "ZIP64 end record offset", source);
      if (recAt + ZIP64_EOCD_MIN_SIZE > at - ZIP64_LOCATOR_SIZE)
        throw new Error(`${source}: ZIP64 end record offset ${recAt} lies outside the archive`);
      const z = src.read(recAt, ZIP64_EOCD_MIN_SIZE);
      if (z.readUInt32LE(0) !== SIG_ZIP64_EOCD)
        throw new Error(`${source}: no ZIP64 end record at offset ${recAt}`);
      if (z.readUInt32LE(16) !== 0 || z.readUInt32LE(20) !== 0)
        throw new Error(`${source}: multi-disk (spanned) archives are not supported`);
      loc = {
        count: readU64(z, 32, "ZIP64 entry count", source),
        size: readU64(z, 40, "ZIP64 central directory size", source),
        offset: readU64(z, 48, "ZIP64 central directory offset", source),
        limit: recAt,
      };
    }
  }
  if (loc.offset + loc.size > loc.limit)
    throw new Error(
      `${source}: central directory (bytes ${loc.offset}..${loc.offset + loc.size}) overruns its end ` +
        `record at byte ${loc.limit} (truncated or corrupt archive)`,
    );
  if (loc.count * CENTRAL_HEADER_SIZE > loc.size)
    throw new Error(`${source}: ${loc.count} entries cannot fit in a ${loc.size}-byte central directory`);
  return loc;
}

/**
 * Applies a ZIP64 extended-information extra field (id 0x0001): it holds, in this order, only those
 * of uncompressed size, compressed size and local header offset whose 32-bit field is 0xFFFFFFFF.
 */
function applyZip64Extra(extra: Buffer, e: ZipEntry, where: string): void {
  const needs = [
    e.uncompressedSize === 0xffffffff,
    e.compressedSize === 0xffffffff,
    e.localHeaderOffset === 0xffffffff,
  ];
  if (!needs.some(Boolean)) return;
  for (let p = 0; p + 4 <= extra.length;) {
    const id = extra.readUInt16LE(p);
    const len = extra.readUInt16LE(p + 2);
    const body = extra.subarray(p + 4, p + 4 + len);
    if (body.length !== len) break;
    if (id === ZIP64_EXTRA_ID) {
      let q = 0;
      const next = (what: string): number => {
        if (q + 8 > body.length) throw new Error(`${where}: ZIP64 extra field is too short for the ${what}`);
        const v = readU64(body, q, `ZIP64 ${what}`, where);
        q += 8;
        return v;
      };
      if (needs[0]) e.uncompressedSize = next("uncompressed size");
      if (needs[1]) e.compressedSize = next("compressed size");
      if (needs[2]) e.localHeaderOffset = next("local header offset");
      return;
    }
    p += 4 + len;
  }
  throw new Error(`${where}: sizes are 0xFFFFFFFF but there is no ZIP64 extra field giving them`);
}

function readCentralDirectory(src: ByteSource, source: string): ZipEntry[] {
  const loc = locateDirectory(src, source);
  const dir = src.read(loc.offset, loc.size);
  const entries: ZipEntry[] = [];
  let p = 0;
  for (let i = 0; i < loc.count; i++) {
    if (p + CENTRAL_HEADER_SIZE > dir.length || dir.readUInt32LE(p) !== SIG_CENTRAL)
      throw new Error(`${source}: central directory record ${i} is missing or corrupt`);
    const flags = dir.readUInt16LE(p + 8);
    const nameLen = dir.readUInt16LE(p + 28);
    const extraLen = dir.readUInt16LE(p + 30);
    const commentLen = dir.readUInt16LE(p + 32);
    const end = p + CENTRAL_HEADER_SIZE + nameLen + extraLen + commentLen;
    if (end > dir.length) throw new Error(`${source}: central directory record ${i} overruns the directory`);
    const nameBytes = dir.subarray(p + CENTRAL_HEADER_SIZE, p + CENTRAL_HEADER_SIZE + nameLen);
    const entry: ZipEntry = {
      name: decodeName(nameBytes, flags),
      method: dir.readUInt16LE(p + 10),
      flags,
      crc32: dir.readUInt32LE(p + 16),
      compressedSize: dir.readUInt32LE(p + 20),
      uncompressedSize: dir.readUInt32LE(p + 24),
      localHeaderOffset: dir.readUInt32LE(p + 42),
    };
    const extra = dir.subarray(
      p + CENTRAL_HEADER_SIZE + nameLen,
      p + CENTRAL_HEADER_SIZE + nameLen + extraLen,
    );
    applyZip64Extra(extra, entry, `${source}: entry "${entry.name}"`);
    entries.push(entry);
    p = end;
  }
  return entries;
}
