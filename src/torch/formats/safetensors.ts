/**
 * The safetensors format (https://github.com/huggingface/safetensors), read and written in plain
 * TypeScript:
 *
 *   bytes 0..8        N, the header length, an unsigned 64-bit little-endian integer
 *   bytes 8..8+N      a UTF-8 JSON object: {name: {dtype, shape, data_offsets: [begin, end]}, ...,
 *                     "__metadata__"?: {string: string}}, padded with spaces
 *   bytes 8+N..       the data buffer; data_offsets are relative to its start, little-endian, C order
 *
 * Also Hugging Face's sharded layout: `model-00001-of-0000K.safetensors` files plus
 * `model.safetensors.index.json` mapping each tensor name to its shard.
 */
import * as fs from "node:fs";
import * as path from "node:path";

/** Element types, with torch's names (the same set as src/torch/dtype.ts). */
export type DTypeName =
  "float32" | "float64" | "bfloat16" | "float16" | "int64" | "int32" | "int16" | "int8" | "uint8" | "bool";

/** Safetensors dtype strings and the element types they denote. */
export const SAFETENSORS_DTYPES: Readonly<Record<string, DTypeName>> = Object.freeze({
  F32: "float32",
  F64: "float64",
  BF16: "bfloat16",
  F16: "float16",
  I64: "int64",
  I32: "int32",
  I16: "int16",
  I8: "int8",
  U8: "uint8",
  BOOL: "bool",
});

/** The inverse of {@link SAFETENSORS_DTYPES}: the string written for each element type. */
export const DTYPE_TO_SAFETENSORS: Readonly<Record<DTypeName, string>> = Object.freeze({
  float32: "F32",
  float64: "F64",
  bfloat16: "BF16",
  float16: "F16",
  int64: "I64",
  int32: "I32",
  int16: "I16",
  int8: "I8",
  uint8: "U8",
  bool: "BOOL",
});

const ELEMENT_SIZES: Readonly<Record<DTypeName, number>> = {
  float32: 4,
  float64: 8,
  bfloat16: 2,
  float16: 2,
  int64: 8,
  int32: 4,
  int16: 2,
  int8: 1,
  uint8: 1,
  bool: 1,
};

/** Bytes per element of `dtype`. */
export function elementSize(dtype: DTypeName): number {
  const s = ELEMENT_SIZES[dtype];
  if (s === undefined) throw new Error(`unknown dtype '${String(dtype)}'`);
  return s;
}

/** Number of elements of a shape; throws if it is not a list of non-negative integers. */
export function numel(shape: readonly number[], what = "shape"): number {
  let n = 1;
  for (const d of shape) {
    if (!Number.isSafeInteger(d) || d < 0)
      throw new Error(`${what}: dimension ${String(d)} is not a non-negative integer`);
    n *= d;
  }
  if (!Number.isSafeInteger(n)) throw new Error(`${what}: ${JSON.stringify(shape)} has too many elements`);
  return n;
}

/** One tensor listed in a header; offsets are absolute positions in the file. */
export interface SafetensorsEntry {
  name: string;
  dtype: DTypeName;
  shape: number[];
  byteOffset: number;
  byteLength: number;
}

export interface SafetensorsHeader {
  /**
   * Tensors in the order of their data in the file (for files this module writes, the order they
   * were given in; the JSON key order itself is not preserved by JSON.parse for integer-like names).
   */
  entries: SafetensorsEntry[];
  metadata: Record<string, string>;
  /** Absolute offset of the data buffer (8 + header length). */
  dataStart: number;
  fileSize: number;
}

/** Headers longer than this are refused as corrupt (the reference implementation also caps them). */
export const MAX_HEADER_BYTES = 100 * 1024 * 1024;
const METADATA_KEY = "__metadata__";
const KNOWN_DTYPES = Object.keys(SAFETENSORS_DTYPES).join(", ");

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/**
 * Reads the 8-byte length prefix, refusing files too short to hold it and lengths that are absurd
 * or exceed the file; returns the header length N.
 */
function headerLength(prefix: Buffer, fileSize: number, file: string): number {
  if (prefix.length < 8 || fileSize < 8)
    throw new Error(
      `${file}: truncated safetensors file (${fileSize} bytes; at least 8 are needed for the header length)`,
    );
  const n = prefix.readBigUInt64LE(0);
  if (n > BigInt(MAX_HEADER_BYTES))
    throw new Error(
      `${file}: header length ${n} is larger than ${MAX_HEADER_BYTES} bytes; not a safetensors file, or corrupt`,
    );
  if (Number(n) + 8 > fileSize)
    throw new Error(
      `${file}: header length ${n} exceeds the file (${fileSize} bytes); the file is truncated or not safetensors`,
    );
  return Number(n);
}

/**
 * Parses and validates a header. `buf` holds the file's first bytes (at least 8 + N of them: the
 * whole file is fine); `fileSize` is the size of the whole file, against which data ranges are checked.
 */
export function parseSafetensorsHeader(buf: Buffer, fileSize: number, file: string): SafetensorsHeader {
  const n = headerLength(buf, fileSize, file);
  if (buf.length < 8 + n)
    throw new Error(`${file}: only ${buf.length} bytes given, but the header ends at byte ${8 + n}`);
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(buf.subarray(8, 8 + n));
  } catch {
    throw new Error(`${file}: header is not valid UTF-8`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new Error(`${file}: header is not valid JSON (${(e as Error).message})`);
  }
  if (!isPlainObject(json)) throw new Error(`${file}: header must be a JSON object of tensors`);

  const dataStart = 8 + n;
  const dataSize = fileSize - dataStart;
  const entries: SafetensorsEntry[] = [];
  let metadata: Record<string, string> = {};
  for (const [name, info] of Object.entries(json)) {
    if (name === METADATA_KEY) {
      metadata = parseMetadata(info, file);
      continue;
    }
    const e = parseEntry(name, info, file);
    const end = e.byteOffset + e.byteLength;
    if (end > dataSize)
      throw new Error(
        `${file}: tensor "${name}": data_offsets end at ${end} but the data buffer has only ${dataSize} ` +
          `bytes (truncated file?)`,
      );
    e.byteOffset += dataStart;
    entries.push(e);
  }
  checkNoOverlap(entries, file);
  entries.sort((a, b) => a.byteOffset - b.byteOffset);
  return { entries, metadata, dataStart, fileSize };
}

/** `__metadata__` is a flat string-to-string map (or null); anything else is refused. */
function parseMetadata(info: unknown, file: string): Record<string, string> {
  if (info === null) return {};
  if (!isPlainObject(info)) throw new Error(`${file}: "__metadata__" must be an object of strings`);
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(info)) {
    if (typeof v !== "string")
      throw new Error(`${file}: "__metadata__" value for "${k}" must be a string, got ${JSON.stringify(v)}`);
    out[k] = v;
  }
  return out;
}

/**
 * Validates one tensor record: a known dtype string, a shape of non-negative integers, data_offsets
 * [begin, end] with begin <= end, and end - begin == product(shape) * element size. The returned
 * byteOffset is still relative to the data buffer.
 */
function parseEntry(name: string, info: unknown, file: string): SafetensorsEntry {
  const where = `${file}: tensor "${name}"`;
  if (!isPlainObject(info))
    throw new Error(`${where}: entry must be an object with dtype, shape, data_offsets`);
  const { dtype: ds, shape, data_offsets: offs } = info;
  if (typeof ds !== "string" || !Object.hasOwn(SAFETENSORS_DTYPES, ds))
    throw new Error(`${where}: unknown dtype ${JSON.stringify(ds)} (known dtypes: ${KNOWN_DTYPES})`);
  const dtype = SAFETENSORS_DTYPES[ds]!;
  if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0))
    throw new Error(`${where}: shape ${JSON.stringify(shape)} must be an array of non-negative integers`);
  if (
    !Array.isArray(offs) ||
    offs.length !== 2 ||
    !offs.every((o) => Number.isSafeInteger(o) && o >= 0) ||
    offs[0] > offs[1]
  )
    throw new Error(
      `${where}: data_offsets ${JSON.stringify(offs)} must be two non-negative integers [begin, end] with begin <= end`,
    );
  const [begin, end] = offs as [number, number];
  const expected = numel(shape as number[], where) * elementSize(dtype);
  if (end - begin !== expected)
    throw new Error(
      `${where}: shape/byte-count mismatch: shape ${JSON.stringify(shape)} of ${ds} needs ${expected} bytes ` +
        `but data_offsets [${begin}, ${end}] span ${end - begin}`,
    );
  return { name, dtype, shape: shape as number[], byteOffset: begin, byteLength: end - begin };
}

/**
 * Tensors must not share bytes. (Gaps between them are tolerated; empty tensors occupy nothing.)
 */
function checkNoOverlap(entries: readonly SafetensorsEntry[], file: string): void {
  const sorted = entries.filter((e) => e.byteLength > 0).sort((a, b) => a.byteOffset - b.byteOffset);
  let prev: SafetensorsEntry | undefined;
  for (const e of sorted) {
    if (prev && e.byteOffset < prev.byteOffset + prev.byteLength)
      throw new Error(
        `${file}: tensors "${prev.name}" and "${e.name}" have overlapping data_offsets ` +
          `(bytes ${prev.byteOffset}..${prev.byteOffset + prev.byteLength} and ` +
          `${e.byteOffset}..${e.byteOffset + e.byteLength} of the file)`,
      );
    if (!prev || e.byteOffset + e.byteLength > prev.byteOffset + prev.byteLength) prev = e;
  }
}

function readExactly(fd: number, length: number, position: number, file: string): Buffer {
  const out = Buffer.allocUnsafe(length);
  let done = 0;
  while (done < length) {
    const n = fs.readSync(fd, out, done, Math.min(length - done, 1 << 30), position + done);
    if (n === 0) throw new Error(`${file}: unexpected end of file at byte ${position + done}`);
    done += n;
  }
  return out;
}

/** Reads and validates the header of a safetensors file, reading only the header's bytes. */
export function readSafetensorsHeader(file: string): SafetensorsHeader {
  const fd = fs.openSync(file, "r");
  try {
    const fileSize = fs.fstatSync(fd).size;
    const prefix = readExactly(fd, Math.min(8, fileSize), 0, file);
    const n = headerLength(prefix, fileSize, file);
    const buf = Buffer.concat([prefix, readExactly(fd, n, 8, file)]);
    return parseSafetensorsHeader(buf, fileSize, file);
  } finally {
    fs.closeSync(fd);
  }
}

/** Reads one tensor's raw little-endian bytes (a fresh buffer, so typed-array views of it are aligned). */
export function readSafetensorsBytes(file: string, entry: SafetensorsEntry): Buffer {
  const fd = fs.openSync(file, "r");
  try {
    return readExactly(fd, entry.byteLength, entry.byteOffset, file);
  } finally {
    fs.closeSync(fd);
  }
}

/** A tensor to write; `data` may be a callback so a large model is produced one tensor at a time. */
export interface SafetensorsTensorInput {
  name: string;
  dtype: DTypeName;
  shape: number[];
  data: Uint8Array | (() => Uint8Array);
}

function byteLengthOf(t: SafetensorsTensorInput, file: string): number {
  const where = `${file}: tensor "${t.name}"`;
  if (!Object.hasOwn(ELEMENT_SIZES, t.dtype))
    throw new Error(
      `${where}: unknown dtype '${String(t.dtype)}' (expected one of ${Object.keys(ELEMENT_SIZES).join(", ")})`,
    );
  return numel(t.shape, where) * elementSize(t.dtype);
}

function checkDataLength(t: SafetensorsTensorInput, bytes: Uint8Array, expected: number, file: string): void {
  if (bytes.byteLength !== expected)
    throw new Error(
      `${file}: tensor "${t.name}": ${bytes.byteLength} data bytes given but shape ${JSON.stringify(t.shape)} ` +
        `of ${t.dtype} needs ${expected}`,
    );
}

function writeAll(fd: number, bytes: Uint8Array): void {
  for (let done = 0; done < bytes.byteLength;) {
    done += fs.writeSync(fd, bytes, done, Math.min(bytes.byteLength - done, 1 << 30));
  }
}

/**
 * Builds the header: keys in the given order (`__metadata__` first), offsets contiguous from 0, then
 * spaces so that 8 + N is a multiple of 8, which keeps every tensor's data aligned as the Python
 * writer does. The JSON text is assembled by hand because JS objects reorder integer-like keys.
 */
function encodeHeader(
  tensors: readonly SafetensorsTensorInput[],
  lengths: readonly number[],
  metadata: Record<string, string> | undefined,
): Buffer {
  const parts: string[] = [];
  if (metadata !== undefined) parts.push(`${JSON.stringify(METADATA_KEY)}:${JSON.stringify(metadata)}`);
  let offset = 0;
  tensors.forEach((t, i) => {
    const end = offset + lengths[i]!;
    const info = { dtype: DTYPE_TO_SAFETENSORS[t.dtype], shape: t.shape, data_offsets: [offset, end] };
    parts.push(`${JSON.stringify(t.name)}:${JSON.stringify(info)}`);
    offset = end;
  });
  const json = Buffer.from(`{${parts.join(",")}}`, "utf-8");
  const padded = Buffer.alloc(json.length + ((8 - (json.length % 8)) % 8), 0x20);
  json.copy(padded);
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(BigInt(padded.length));
  return Buffer.concat([prefix, padded]);
}

/**
 * Writes a safetensors file. Everything checkable is checked before the file is created; the bytes
 * go to `file.tmp-<pid>`, which is renamed over `file` only when complete, so an existing file (which
 * may be memory-mapped by a reader) is replaced atomically and never truncated in place.
 */
export function writeSafetensors(
  file: string,
  tensors: readonly SafetensorsTensorInput[],
  metadata?: Record<string, string>,
): void {
  const names = new Set<string>();
  for (const t of tensors) {
    if (typeof t.name !== "string" || t.name === "" || t.name === METADATA_KEY)
      throw new Error(`${file}: invalid tensor name ${JSON.stringify(t.name)}`);
    if (names.has(t.name)) throw new Error(`${file}: tensor "${t.name}" is listed twice`);
    names.add(t.name);
  }
  if (metadata !== undefined) parseMetadata(metadata, file);
  const lengths = tensors.map((t) => byteLengthOf(t, file));
  tensors.forEach((t, i) => {
    if (typeof t.data !== "function") checkDataLength(t, t.data, lengths[i]!, file);
  });

  const tmp = `${file}.tmp-${process.pid}`;
  const fd = fs.openSync(tmp, "w");
  try {
    writeAll(fd, encodeHeader(tensors, lengths, metadata));
    tensors.forEach((t, i) => {
      const bytes = typeof t.data === "function" ? t.data() : t.data;
      checkDataLength(t, bytes, lengths[i]!, file);
      writeAll(fd, bytes);
    });
    fs.fsyncSync(fd);
    fs.closeSync(fd);
  } catch (e) {
    fs.closeSync(fd);
    fs.rmSync(tmp, { force: true });
    throw e;
  }
  try {
    fs.renameSync(tmp, file);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw e;
  }
}

// ---------------------------------------------------------------------------------------------
// Sharded checkpoints

export const SAFETENSORS_INDEX_FILE = "model.safetensors.index.json";
export const SAFETENSORS_SINGLE_FILE = "model.safetensors";
/** Hugging Face's default `max_shard_size` ("5GB", decimal). */
export const DEFAULT_MAX_SHARD_BYTES = 5_000_000_000;
const SHARD_NAME = /^model(-\d{5}-of-\d{5})?\.safetensors$/;

export interface SafetensorsIndex {
  indexPath: string;
  /** Tensor name to shard file name (relative to the index's directory). */
  weightMap: Record<string, string>;
  /** The index's "metadata" object (Hugging Face writes {total_size}). */
  metadata: Record<string, unknown>;
  /** Distinct shard file names, in order of first appearance in weight_map. */
  shards: string[];
}

/**
 * Reads `dir/model.safetensors.index.json`, or returns null when there is none. Checks that
 * weight_map maps names to plain file names (no directories, so an index cannot point outside
 * `dir`) and that every shard it names exists.
 */
export function readSafetensorsIndex(dir: string): SafetensorsIndex | null {
  const indexPath = path.join(dir, SAFETENSORS_INDEX_FILE);
  if (!fs.existsSync(indexPath)) return null;
  let json: unknown;
  try {
    json = JSON.parse(fs.readFileSync(indexPath, "utf-8"));
  } catch (e) {
    throw new Error(`${indexPath}: not valid JSON (${(e as Error).message})`);
  }
  if (!isPlainObject(json) || !isPlainObject(json.weight_map))
    throw new Error(`${indexPath}: expected an object with a "weight_map" object`);
  const metadata = json.metadata ?? {};
  if (!isPlainObject(metadata)) throw new Error(`${indexPath}: "metadata" must be an object`);
  const weightMap: Record<string, string> = {};
  const shards: string[] = [];
  for (const [name, shard] of Object.entries(json.weight_map)) {
    if (typeof shard !== "string" || shard === "" || shard !== path.basename(shard) || shard === "..")
      throw new Error(
        `${indexPath}: weight_map["${name}"] = ${JSON.stringify(shard)} must be a file name in the same directory`,
      );
    if (!shards.includes(shard)) {
      const shardPath = path.join(dir, shard);
      if (!fs.existsSync(shardPath) || !fs.statSync(shardPath).isFile())
        throw new Error(`${indexPath}: shard "${shard}" (holding "${name}") does not exist at ${shardPath}`);
      shards.push(shard);
    }
    weightMap[name] = shard;
  }
  return { indexPath, weightMap, metadata, shards };
}

export interface ShardedWriteOptions {
  /** Largest shard, in bytes of tensor data; a tensor larger than this gets a shard of its own. */
  maxShardBytes?: number;
  /** `__metadata__` written into every shard (Hugging Face writes {"format": "pt"}). */
  metadata?: Record<string, string>;
}

export interface ShardedWriteResult {
  /** File names written in `dir`, in order. */
  files: string[];
  /** Path of the index, or null when everything fit in a single `model.safetensors`. */
  indexPath: string | null;
  /** Sum of all tensors' byte sizes (the index's metadata.total_size). */
  totalSize: number;
}

/**
 * Splits tensors into shards the way `save_pretrained` does: in order, starting a new shard when
 * the next tensor would push the current one past `maxShardBytes`, and giving any tensor larger
 * than the limit a shard to itself.
 */
function planShards(sizes: readonly number[], maxShardBytes: number): number[][] {
  const shards: number[][] = [];
  let current: number[] = [];
  let currentSize = 0;
  sizes.forEach((size, i) => {
    if (size > maxShardBytes) {
      shards.push([i]);
      return;
    }
    if (current.length > 0 && currentSize + size > maxShardBytes) {
      shards.push(current);
      current = [];
      currentSize = 0;
    }
    current.push(i);
    currentSize += size;
  });
  if (current.length > 0 || shards.length === 0) shards.push(current);
  return shards;
}

/**
 * Writes a checkpoint into `dir` as Hugging Face does: `model.safetensors` when everything fits in
 * one shard, else `model-00001-of-0000K.safetensors`... plus `model.safetensors.index.json`
 * ({"metadata": {"total_size"}, "weight_map"}, keys sorted, 2-space indent). Each file is written
 * atomically; afterwards, weight files from an earlier save that are not part of this one
 * (other `model*.safetensors` shards, a stale index) are removed, so the directory is unambiguous.
 */
export function writeShardedSafetensors(
  dir: string,
  tensors: readonly SafetensorsTensorInput[],
  options: ShardedWriteOptions = {},
): ShardedWriteResult {
  const maxShardBytes = options.maxShardBytes ?? DEFAULT_MAX_SHARD_BYTES;
  if (!(maxShardBytes > 0)) throw new Error(`${dir}: maxShardBytes must be positive, got ${maxShardBytes}`);
  const sizes = tensors.map((t) => byteLengthOf(t, dir));
  const totalSize = sizes.reduce((a, b) => a + b, 0);
  const plan = planShards(sizes, maxShardBytes);
  fs.mkdirSync(dir, { recursive: true });

  const files: string[] = [];
  let indexPath: string | null = null;
  if (plan.length === 1) {
    writeSafetensors(path.join(dir, SAFETENSORS_SINGLE_FILE), tensors, options.metadata);
    files.push(SAFETENSORS_SINGLE_FILE);
  } else {
    const count = String(plan.length).padStart(5, "0");
    const weightMap: Record<string, string> = {};
    plan.forEach((indices, s) => {
      const name = `model-${String(s + 1).padStart(5, "0")}-of-${count}.safetensors`;
      const shardTensors = indices.map((i) => tensors[i]!);
      writeSafetensors(path.join(dir, name), shardTensors, options.metadata);
      for (const t of shardTensors) weightMap[t.name] = name;
      files.push(name);
    });
    const sortedMap: Record<string, string> = {};
    for (const k of Object.keys(weightMap).sort()) sortedMap[k] = weightMap[k]!;
    const index = { metadata: { total_size: totalSize }, weight_map: sortedMap };
    indexPath = path.join(dir, SAFETENSORS_INDEX_FILE);
    const tmp = `${indexPath}.tmp-${process.pid}`;
    fs.writeFileSync(tmp, JSON.stringify(index, null, 2) + "\n");
    fs.renameSync(tmp, indexPath);
    files.push(SAFETENSORS_INDEX_FILE);
  }
  for (const f of fs.readdirSync(dir)) {
    if ((SHARD_NAME.test(f) || f === SAFETENSORS_INDEX_FILE) && !files.includes(f))
      fs.rmSync(path.join(dir, f), { force: true });
  }
  return { files, indexPath, totalSize };
}
