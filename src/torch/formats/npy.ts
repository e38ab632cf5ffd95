/**
 * NumPy's `.npy` format (versions 1.0, 2.0 and 3.0) and `.npz` archives of them, in plain TypeScript.
 *
 *   bytes 0..6    magic "\x93NUMPY"
 *   bytes 6, 7    major, minor version
 *   then          header length: u16 LE (1.0) or u32 LE (2.0, 3.0)
 *   then          header: a Python dict literal {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }
 *                 (latin-1 in 1.0/2.0, UTF-8 in 3.0), space-padded and ending in "\n"
 *   then          the array's bytes, C or Fortran order, in the byte order the descr names
 *
 * An `.npz` file is a ZIP archive with one `<key>.npy` entry per array (`np.savez` stores them,
 * `np.savez_compressed` deflates them).
 */
import * as fs from "node:fs";
import { type DTypeName, elementSize, numel } from "./safetensors.js";
import { type ZipLimits, ZipReader } from "./zip.js";

export interface NpyArray {
  dtype: DTypeName;
  shape: number[];
  /** What the file said; `data` is always in C (row-major) order. */
  fortranOrder: boolean;
  /** Little-endian, C-order bytes; byteOffset is a multiple of 8, so typed-array views of it are valid. */
  data: Uint8Array;
}

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // "\x93NUMPY"

/** (kind, itemsize) pairs of numpy type strings and the element types they map to. */
const KINDS: Readonly<Record<string, DTypeName>> = {
  f4: "float32",
  f8: "float64",
  f2: "float16",
  i8: "int64",
  i4: "int32",
  i2: "int16",
  i1: "int8",
  u1: "uint8",
  b1: "bool",
};
const SUPPORTED_DESCRS = "<f4 <f8 <f2 <i8 <i4 <i2 |i1 |u1 |b1 (and big-endian >f8 >f4 >f2 >i8 >i4 >i2)";

/**
 * Maps a descr such as '<f4' to an element type and whether its bytes are big-endian. One-byte
 * types carry no byte order ('|'); wider ones must say '<' or '>'.
 */
function parseDescr(descr: unknown, source: string): { dtype: DTypeName; bigEndian: boolean } {
  if (typeof descr !== "string")
    throw new Error(
      `${source}: descr ${pyRepr(descr)} is a structured (record) dtype, which is not supported; ` +
        `save each field as its own array`,
    );
  if (/^[|<>=]?O\d*$/.test(descr))
    throw new Error(`${source}: descr '${descr}' is an object array (pickled Python objects); not supported`);
  const m = /^([|<>=])([a-zA-Z]\d+)$/.exec(descr);
  const dtype = m ? KINDS[m[2]!] : undefined;
  if (!m || !dtype)
    throw new Error(`${source}: unsupported descr '${descr}' (supported: ${SUPPORTED_DESCRS})`);
  const order = m[1]!;
  if (elementSize(dtype) > 1 && order !== "<" && order !== ">")
    throw new Error(`${source}: descr '${descr}' does not say its byte order ('<' or '>'); not supported`);
  return { dtype, bigEndian: elementSize(dtype) > 1 && order === ">" };
}

// ---------------------------------------------------------------------------------------------
// The header: a Python literal. Parsed by a small recursive-descent reader, never evaluated.

type PyValue = string | number | boolean | null | PyValue[] | Map<string, PyValue>;

function pyRepr(v: unknown): string {
  if (v instanceof Map) return `{${[...v].map(([k, x]) => `'${k}': ${pyRepr(x)}`).join(", ")}}`;
  if (Array.isArray(v)) return `(${v.map(pyRepr).join(", ")})`;
  return typeof v === "string" ? `'${v}'` : String(v);
}

class PyLiteralReader {
  private pos = 0;
  constructor(
    private readonly text: string,
    private readonly source: string,
  ) {}

  /** Parses the whole text as one literal; only whitespace may follow it. */
  parseAll(): PyValue {
    const v = this.value();
    this.skipSpace();
    if (this.pos !== this.text.length) this.fail("unexpected text after the header dict");
    return v;
  }

  private fail(what: string): never {
    throw new Error(
      `${this.source}: malformed .npy header at character ${this.pos}: ${what} (header: ${JSON.stringify(this.text.trim())})`,
    );
  }

  private skipSpace(): void {
    while (this.pos < this.text.length && /\s/.test(this.text[this.pos]!)) this.pos++;
  }

  private value(): PyValue {
    this.skipSpace();
    const c = this.text[this.pos];
    if (c === "{") return this.dict();
    if (c === "(") return this.sequence(")");
    if (c === "[") return this.sequence("]");
    if (c === "'" || c === '"') return this.string();
    const word = /^(?:True|False|None|[-+]?\d+L?)/.exec(this.text.slice(this.pos))?.[0];
    if (!word) this.fail("expected a value");
    this.pos += word.length;
    if (word === "True") return true;
    if (word === "False") return false;
    if (word === "None") return null;
    const n = Number(word.replace(/L$/, ""));
    if (!Number.isSafeInteger(n)) this.fail(`integer ${word} is out of range`);
    return n;
  }

  private expect(ch: string): void {
    this.skipSpace();
    if (this.text[this.pos] !== ch) this.fail(`expected '${ch}'`);
    this.pos++;
  }

  /** `(a, b)`, `(a,)`, `()` and `[a, b]`, with an optional trailing comma. */
  private sequence(close: string): PyValue[] {
    this.pos++;
    const out: PyValue[] = [];
    for (;;) {
      this.skipSpace();
      if (this.text[this.pos] === close) break;
      out.push(this.value());
      this.skipSpace();
      if (this.text[this.pos] === ",") this.pos++;
      else if (this.text[this.pos] !== close) this.fail(`expected ',' or '${close}'`);
    }
    this.pos++;
    return out;
  }

  private dict(): Map<string, PyValue> {
    this.pos++;
    const out = new Map<string, PyValue>();
    for (;;) {
      this.skipSpace();
      if (this.text[this.pos] === "}") break;
      const key = this.value();
      if (typeof key !== "string") this.fail("dict keys must be strings");
      this.expect(":");
      out.set(key, this.value());
      this.skipSpace();
      if (this.text[this.pos] === ",") this.pos++;
      else if (this.text[this.pos] !== "}") this.fail("expected ',' or '}'");
    }
    this.pos++;
    return out;
  }

  /** A quoted string with the common backslash escapes. */
  private string(): string {
    const quote = this.text[this.pos++];
    let s = "";
    for (;;) {
      if (this.pos >= this.text.length) this.fail("unterminated string");
      const c = this.text[this.pos++]!;
      if (c === quote) return s;
      if (c !== "\\") {
        s += c;
        continue;
      }
      const e = this.text[this.pos++];
      const simple: Record<string, string> = {
        n: "\n",
        t: "\t",
        r: "\r",
        "0": "\0",
        "\\": "\\",
        "'": "'",
        '"': '"',
      };
      if (e !== undefined && e in simple) s += simple[e];
      else if (e === "x" || e === "u") {
        const len = e === "x" ? 2 : 4;
        const hex = this.text.slice(this.pos, this.pos + len);
        if (!/^[0-9a-fA-F]+$/.test(hex) || hex.length !== len) this.fail("bad escape in string");
        s += String.fromCharCode(parseInt(hex, 16));
        this.pos += len;
      } else this.fail("unsupported escape in string");
    }
  }
}

/** Validates the header dict: exactly the keys descr, fortran_order (a bool), shape (a tuple of ints). */
function parseHeaderDict(
  text: string,
  source: string,
): { descr: unknown; fortranOrder: boolean; shape: number[] } {
  const d = new PyLiteralReader(text, source).parseAll();
  if (!(d instanceof Map)) throw new Error(`${source}: .npy header is not a dict`);
  for (const k of ["descr", "fortran_order", "shape"])
    if (!d.has(k)) throw new Error(`${source}: .npy header lacks '${k}'`);
  const extra = [...d.keys()].filter((k) => !["descr", "fortran_order", "shape"].includes(k));
  if (extra.length) throw new Error(`${source}: .npy header has unexpected keys ${extra.join(", ")}`);
  const fortranOrder = d.get("fortran_order");
  if (typeof fortranOrder !== "boolean")
    throw new Error(`${source}: .npy 'fortran_order' must be True or False, got ${pyRepr(fortranOrder)}`);
  const shape = d.get("shape");
  if (!Array.isArray(shape) || !shape.every((x) => typeof x === "number" && x >= 0))
    throw new Error(`${source}: .npy 'shape' must be a tuple of non-negative integers, got ${pyRepr(shape)}`);
  return { descr: d.get("descr"), fortranOrder, shape: shape as number[] };
}

// ---------------------------------------------------------------------------------------------
// Parsing

/** Copies into a fresh buffer (byteOffset 0, so 8-byte aligned). */
function copyAligned(src: Uint8Array): Uint8Array {
  const out = new Uint8Array(src.byteLength);
  out.set(src);
  return out;
}

/** Reverses the bytes of each `size`-byte element in place (big-endian to little-endian). */
function swapBytes(data: Uint8Array, size: number): void {
  for (let i = 0; i < data.length; i += size) {
    for (let a = i, b = i + size - 1; a < b; a++, b--) {
      const t = data[a]!;
      data[a] = data[b]!;
      data[b] = t;
    }
  }
}

/**
 * Reorders Fortran-order (column-major) bytes into C order: the element at C position (i0, ..., ik)
 * is at Fortran position sum(i_j * prod(shape[0..j])), walked incrementally with an odometer.
 */
function fortranToC(src: Uint8Array, shape: readonly number[], size: number): Uint8Array {
  const out = new Uint8Array(src.byteLength);
  const n = src.byteLength / size;
  const rank = shape.length;
  if (rank <= 1 || n === 0) {
    out.set(src);
    return out;
  }
  const fStride: number[] = [];
  let s = size;
  for (let j = 0; j < rank; j++) {
    fStride.push(s);
    s *= shape[j]!;
  }
  const idx = new Array<number>(rank).fill(0);
  let from = 0;
  for (let to = 0; to < out.length; to += size) {
    for (let b = 0; b < size; b++) out[to + b] = src[from + b]!;
    for (let j = rank - 1; j >= 0; j--) {
      if (++idx[j]! < shape[j]!) {
        from += fStride[j]!;
        break;
      }
      from -= fStride[j]! * (shape[j]! - 1);
      idx[j] = 0;
    }
  }
  return out;
}

/**
 * Parses a whole `.npy` file held in memory. `source` names it in errors. Big-endian data is
 * byte-swapped and Fortran-order data transposed, so `data` is always little-endian C order; when
 * no conversion is needed and `buf` is suitably aligned, `data` is a view of `buf`, not a copy.
 */
export function parseNpy(buf: Uint8Array, source: string): NpyArray {
  if (buf.length < 10 || !MAGIC.every((b, i) => buf[i] === b))
    throw new Error(`${source}: not a .npy file (missing the "\\x93NUMPY" magic)`);
  const major = buf[6]!;
  const minor = buf[7]!;
  if (major < 1 || major > 3 || minor !== 0)
    throw new Error(`${source}: unsupported .npy format version ${major}.${minor} (1.0, 2.0 and 3.0 are)`);
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const lenSize = major === 1 ? 2 : 4;
  if (buf.length < 8 + lenSize) throw new Error(`${source}: truncated .npy header`);
  const headerLen = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  const dataStart = 8 + lenSize + headerLen;
  if (dataStart > buf.length)
    throw new Error(
      `${source}: .npy header length ${headerLen} runs past the end of the ${buf.length}-byte file`,
    );
  const headerBytes = buf.subarray(8 + lenSize, dataStart);
  const text = new TextDecoder(major === 3 ? "utf-8" : "latin1").decode(headerBytes);
  const h = parseHeaderDict(text, source);
  const { dtype, bigEndian } = parseDescr(h.descr, source);

  const size = elementSize(dtype);
  const expected = numel(h.shape, `${source}: shape`) * size;
  const available = buf.length - dataStart;
  if (available !== expected)
    throw new Error(
      `${source}: byte count mismatch: shape ${pyRepr(h.shape)} of '${String(h.descr)}' needs ${expected} ` +
        `data bytes but the file holds ${available}`,
    );
  let data = buf.subarray(dataStart);
  if (h.fortranOrder) data = fortranToC(data, h.shape, size);
  if (bigEndian) {
    if (data.buffer === buf.buffer) data = copyAligned(data);
    swapBytes(data, size);
  }
  if (data.byteOffset % 8 !== 0) data = copyAligned(data);
  return { dtype, shape: h.shape, fortranOrder: h.fortranOrder, data };
}

// ---------------------------------------------------------------------------------------------
// Writing

const DESCRS: Readonly<Partial<Record<DTypeName, string>>> = {
  float32: "<f4",
  float64: "<f8",
  float16: "<f2",
  int64: "<i8",
  int32: "<i4",
  int16: "<i2",
  int8: "|i1",
  uint8: "|u1",
  bool: "|b1",
};

/**
 * Encodes an array as a little-endian, C-order `.npy` file, as `np.save` does: version 1.0 (2.0 if
 * the header exceeds 65535 bytes), header space-padded so the data starts at a multiple of 64.
 */
export function encodeNpy(arr: { dtype: DTypeName; shape: number[]; data: Uint8Array }): Buffer {
  const descr = DESCRS[arr.dtype];
  if (!descr) throw new Error(`.npy cannot hold ${arr.dtype} (numpy has no such dtype)`);
  const expected = numel(arr.shape, "encodeNpy shape") * elementSize(arr.dtype);
  if (arr.data.byteLength !== expected)
    throw new Error(`encodeNpy: ${arr.data.byteLength} data bytes given but shape needs ${expected}`);
  const shape = arr.shape.length === 1 ? `(${arr.shape[0]},)` : `(${arr.shape.join(", ")})`;
  const dict = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shape}, }`;
  const paddedEnd = (prefix: number) => Math.ceil((prefix + dict.length + 1) / 64) * 64;
  const v1 = paddedEnd(10) - 10 <= 0xffff;
  const prefix = v1 ? 10 : 12;
  const total = paddedEnd(prefix);
  const header = dict + " ".repeat(total - prefix - dict.length - 1) + "\n";
  const out = Buffer.alloc(total + expected);
  Buffer.from(MAGIC).copy(out, 0);
  out[6] = v1 ? 1 : 2;
  out[7] = 0;
  if (v1) out.writeUInt16LE(header.length, 8);
  else out.writeUInt32LE(header.length, 8);
  out.write(header, prefix, "latin1");
  out.set(arr.data, total);
  return out;
}

/** Writes `encodeNpy(arr)` to `file`. */
export function writeNpy(file: string, arr: { dtype: DTypeName; shape: number[]; data: Uint8Array }): void {
  fs.writeFileSync(file, encodeNpy(arr));
}

// ---------------------------------------------------------------------------------------------
// .npz

const NPY_SUFFIX = ".npy";

/**
 * Reads every `<key>.npy` entry of an `.npz` archive; keys lose the `.npy` suffix, as in `np.load`
 * (so `np.savez(p, **{"mom2.mom2": a})` gives key "mom2.mom2"). Entries not ending in `.npy` are
 * skipped. The declared sizes of all entries are checked against the limits before anything is read.
 */
export function readNpz(file: string, opts: ZipLimits = {}): Map<string, NpyArray> {
  const zip = ZipReader.open(file, opts);
  try {
    const entries = zip.entries.filter((e) => e.name.endsWith(NPY_SUFFIX));
    zip.checkSizes(entries);
    const out = new Map<string, NpyArray>();
    for (const e of entries)
      out.set(e.name.slice(0, -NPY_SUFFIX.length), parseNpy(zip.read(e), `${file}: ${e.name}`));
    return out;
  } finally {
    zip.close();
  }
}

/** Reads one array of an `.npz` archive by key (with or without the `.npy` suffix). */
export function readNpzEntry(file: string, key: string, opts: ZipLimits = {}): NpyArray {
  const zip = ZipReader.open(file, opts);
  try {
    const entry = zip.get(key + NPY_SUFFIX) ?? zip.get(key);
    if (!entry) {
      const keys = zip.entries.map((e) => e.name.replace(/\.npy$/, ""));
      throw new Error(`${file}: no array "${key}" in the archive (it has: ${keys.join(", ") || "nothing"})`);
    }
    return parseNpy(zip.read(entry), `${file}: ${entry.name}`);
  } finally {
    zip.close();
  }
}
