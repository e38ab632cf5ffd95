/**
 * Tests for the tensor file formats (safetensors, .npy/.npz, the ZIP reader). The oracles are
 * independent of the code under test: fixtures and their values come from numpy, Python's zipfile
 * and a safetensors writer written from the spec (test/fixtures/formats/make_fixtures.py), plus a
 * checkpoint written by Hugging Face transformers (../shared/fixtures/gpt2-tiny).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import {
  type DTypeName,
  type SafetensorsTensorInput,
  elementSize,
  parseSafetensorsHeader,
  readSafetensorsBytes,
  readSafetensorsHeader,
  readSafetensorsIndex,
  writeSafetensors,
  writeShardedSafetensors,
} from "../../src/torch/formats/safetensors.js";
import { encodeNpy, parseNpy, readNpz, readNpzEntry } from "../../src/torch/formats/npy.js";
import { ZipReader, crc32, crc32Table } from "../../src/torch/formats/zip.js";

/** The repository root: the nearest ancestor holding the fixture generator (works from dist/ too). */
function findRoot(): string {
  let d = path.dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    if (fs.existsSync(path.join(d, "test", "fixtures", "formats", "make_fixtures.py"))) return d;
    d = path.resolve(d, "..");
  }
  throw new Error("formats.test: repository root (with test/fixtures/formats) not found");
}
const ROOT = findRoot();
const FIX = path.join(ROOT, "test", "fixtures", "formats");
const GPT2 = path.resolve(ROOT, "..", "shared", "fixtures", "gpt2-tiny", "model.safetensors");

const fixture = (name: string): string => path.join(FIX, name);
const readJson = (name: string): unknown => JSON.parse(fs.readFileSync(fixture(name), "utf-8"));

function tmpDir(t: { after: (fn: () => void) => void }): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), "editeval-formats-"));
  t.after(() => fs.rmSync(d, { recursive: true, force: true }));
  return d;
}

// ---------------------------------------------------------------------------------------------
// Decoding bytes to values, written independently of the readers under test.

type Value = number | string | boolean;

/** IEEE 754 binary16 to number: sign, 5-bit exponent (bias 15), 10-bit fraction. */
function halfToNumber(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 31) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

/** Decodes little-endian bytes of `dtype` to plain values (int64 as decimal strings). */
function decode(dtype: DTypeName, bytes: Uint8Array): Value[] {
  const b = new Uint8Array(bytes); // a fresh, aligned copy
  const buf = b.buffer;
  switch (dtype) {
    case "float32":
      return Array.from(new Float32Array(buf));
    case "float64":
      return Array.from(new Float64Array(buf));
    case "float16":
      return Array.from(new Uint16Array(buf), halfToNumber);
    case "bfloat16":
      return Array.from(new Uint16Array(buf), (h) => new Float32Array(new Uint32Array([h << 16]).buffer)[0]!);
    case "int64":
      return Array.from(new BigInt64Array(buf), (x) => x.toString());
    case "int32":
      return Array.from(new Int32Array(buf));
    case "int16":
      return Array.from(new Int16Array(buf));
    case "int8":
      return Array.from(new Int8Array(buf));
    case "uint8":
      return Array.from(b);
    case "bool":
      return Array.from(b, (x) => x !== 0);
  }
}

/** The JSON dumps write inf/nan as strings; turn them back into numbers. */
function expectedValue(v: Value, dtype: DTypeName): Value {
  if (dtype === "int64" || typeof v !== "string") return v;
  return v === "nan" ? NaN : v === "inf" ? Infinity : v === "-inf" ? -Infinity : v;
}

function assertValues(actual: Value[], expected: Value[], dtype: DTypeName, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: element count`);
  expected.forEach((e, i) => {
    const want = expectedValue(e, dtype);
    const got = actual[i];
    if (typeof want === "number" && Number.isNaN(want))
      assert.ok(Number.isNaN(got), `${what}[${i}]: want NaN`);
    else assert.equal(got, want, `${what}[${i}]`); // Object.is: distinguishes -0 from 0
  });
}

interface Described {
  dtype: DTypeName;
  shape: number[];
  values: Value[];
  fortran_order?: boolean;
}

// ---------------------------------------------------------------------------------------------
// safetensors: reading

test("safetensors: reads every dtype of a file written from the spec by make_fixtures.py", () => {
  const file = fixture("dtypes.safetensors");
  const oracle = readJson("dtypes.safetensors.json") as {
    metadata: Record<string, string>;
    tensors: Record<string, Described>;
  };
  const h = readSafetensorsHeader(file);
  assert.deepEqual(h.metadata, oracle.metadata);
  assert.equal(h.fileSize, fs.statSync(file).size);
  assert.equal(h.dataStart % 8, 0, "the writer pads the header to 8 bytes");
  assert.deepEqual(h.entries.map((e) => e.name).sort(), Object.keys(oracle.tensors).sort());
  for (const e of h.entries) {
    const want = oracle.tensors[e.name];
    assert.ok(want, `unexpected tensor ${e.name}`);
    assert.equal(e.dtype, want.dtype, e.name);
    assert.deepEqual(e.shape, want.shape, e.name);
    assert.equal(e.byteLength, want.values.length * elementSize(e.dtype), e.name);
    assertValues(decode(e.dtype, readSafetensorsBytes(file, e)), want.values, e.dtype, e.name);
  }
  // Tensors are returned in file order and tile the data buffer exactly.
  let at = h.dataStart;
  for (const e of h.entries) {
    assert.equal(e.byteOffset, at, e.name);
    at += e.byteLength;
  }
  assert.equal(at, h.fileSize);
});

test(
  "safetensors: header of the gpt2-tiny checkpoint written by transformers",
  { skip: !fs.existsSync(GPT2) && "no shared gpt2-tiny fixture" },
  () => {
    const h = readSafetensorsHeader(GPT2);
    const wte = h.entries.find((e) => e.name === "transformer.wte.weight");
    assert.ok(wte, "transformer.wte.weight is listed");
    assert.equal(wte.dtype, "float32");
    assert.deepEqual(wte.shape, [768, 64]);
    assert.equal(wte.byteLength, 768 * 64 * 4);
    assert.equal(
      h.entries.find((e) => e.name === "lm_head.weight"),
      undefined,
      "lm_head is tied, not stored",
    );
    assert.deepEqual(h.metadata, { format: "pt" });
    const last = h.entries[h.entries.length - 1]!;
    assert.equal(last.byteOffset + last.byteLength, h.fileSize, "data runs to the end of the file");
    const bytes = readSafetensorsBytes(GPT2, wte);
    assert.ok(
      decode("float32", bytes).every((v) => Number.isFinite(v)),
      "wte values are finite",
    );
  },
);

/** Builds a safetensors file: the prefix, the header (a string is used verbatim), then dataLen bytes. */
function stBytes(header: unknown, dataLen: number, headerLenOverride?: bigint): Buffer {
  const json = Buffer.from(typeof header === "string" ? header : JSON.stringify(header));
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(headerLenOverride ?? BigInt(json.length));
  return Buffer.concat([prefix, json, Buffer.alloc(dataLen, 7)]);
}

const f32 = (shape: number[], begin: number) => ({
  dtype: "F32",
  shape,
  data_offsets: [begin, begin + 4 * shape.reduce((a, b) => a * b, 1)],
});

test("safetensors: malformed files are rejected with errors naming the file, tensor and problem", (t) => {
  const dir = tmpDir(t);
  const write = (name: string, bytes: Buffer): string => {
    const p = path.join(dir, name);
    fs.writeFileSync(p, bytes);
    return p;
  };
  const rejects = (file: string, pattern: RegExp) => {
    assert.throws(
      () => readSafetensorsHeader(file),
      (e: Error) => {
        assert.match(e.message, pattern);
        assert.ok(e.message.includes(file), `message names the file: ${e.message}`);
        return true;
      },
    );
  };
  const parseRejects = (buf: Buffer, pattern: RegExp) =>
    assert.throws(() => parseSafetensorsHeader(buf, buf.length, "mem.safetensors"), pattern);

  rejects(write("short.safetensors", Buffer.from([1, 2, 3, 4, 5])), /truncated.*5 bytes/);
  rejects(write("empty.safetensors", Buffer.alloc(0)), /truncated/);
  rejects(write("toolong.safetensors", stBytes({}, 0, 1000n)), /header length 1000 exceeds the file/);
  rejects(
    write("absurd.safetensors", stBytes({}, 0, 1n << 40n)),
    /header length 1099511627776 is larger than/,
  );
  rejects(write("badjson.safetensors", stBytes('{"a": {"dtype": "F32",', 0)), /header is not valid JSON/);
  rejects(write("array.safetensors", stBytes("[1, 2]", 0)), /must be a JSON object/);
  rejects(
    write("dtype.safetensors", stBytes({ x: { dtype: "F8_E4M3", shape: [1], data_offsets: [0, 1] } }, 1)),
    /tensor "x": unknown dtype "F8_E4M3" \(known dtypes: F32, F64, BF16, F16, I64, I32, I16, I8, U8, BOOL\)/,
  );
  rejects(
    write("mismatch.safetensors", stBytes({ w: { dtype: "F32", shape: [2, 3], data_offsets: [0, 20] } }, 20)),
    /tensor "w": shape\/byte-count mismatch: shape \[2,3\] of F32 needs 24 bytes but data_offsets \[0, 20\] span 20/,
  );
  rejects(
    write("overlap.safetensors", stBytes({ a: f32([4], 0), b: f32([4], 8) }, 24)),
    /tensors "a" and "b" have overlapping data_offsets/,
  );
  rejects(
    write("range.safetensors", stBytes({ a: f32([4], 0), b: f32([4], 16) }, 24)),
    /tensor "b": data_offsets end at 32 but the data buffer has only 24 bytes \(truncated file\?\)/,
  );
  // A good file with its data cut short.
  const good = stBytes({ a: f32([2, 2], 0), b: f32([3], 16) }, 28);
  assert.equal(readSafetensorsHeader(write("good.safetensors", good)).entries.length, 2);
  rejects(write("cut.safetensors", good.subarray(0, good.length - 5)), /tensor "b".*truncated file/);

  parseRejects(
    stBytes({ a: { dtype: "F32", shape: [-1], data_offsets: [0, 0] } }, 0),
    /tensor "a": shape \[-1\] must be an array of non-negative integers/,
  );
  parseRejects(stBytes({ a: { dtype: "F32", shape: [1.5], data_offsets: [0, 0] } }, 0), /shape/);
  parseRejects(stBytes({ a: { dtype: "F32", shape: "4", data_offsets: [0, 16] } }, 16), /shape "4"/);
  parseRejects(
    stBytes({ a: { dtype: "F32", shape: [1], data_offsets: [4, 0] } }, 4),
    /data_offsets \[4,0\] must be two non-negative integers/,
  );
  parseRejects(stBytes({ a: { dtype: "F32", shape: [1], data_offsets: [0] } }, 4), /data_offsets/);
  parseRejects(stBytes({ a: "F32" }, 0), /tensor "a": entry must be an object/);
  parseRejects(stBytes({ __metadata__: { n: 3 } }, 0), /"__metadata__" value for "n" must be a string/);
  parseRejects(Buffer.concat([stBytes("", 0, 2n), Buffer.from([0xff, 0xfe])]), /not valid UTF-8/);
  // Overlap is found whatever the header order; a tensor nested inside another also counts.
  parseRejects(stBytes({ b: f32([1], 4), a: f32([4], 0) }, 16), /"a" and "b" have overlapping/);
  // Gaps and empty tensors are allowed.
  const gap = stBytes(
    { a: f32([1], 0), e: { dtype: "F32", shape: [0], data_offsets: [2, 2] }, b: f32([1], 8) },
    12,
  );
  assert.deepEqual(
    parseSafetensorsHeader(gap, gap.length, "gap").entries.map((e) => e.name),
    ["a", "e", "b"],
  );
});

// ---------------------------------------------------------------------------------------------
// safetensors: writing

function bytesOf(arr: ArrayBufferView): Uint8Array {
  return new Uint8Array(arr.buffer, arr.byteOffset, arr.byteLength);
}

test("safetensors: write then read back gives identical bytes, aligned data and ordered keys", (t) => {
  const dir = tmpDir(t);
  const file = path.join(dir, "rt.safetensors");
  const produced: string[] = [];
  const lazy = (name: string, data: Uint8Array) => () => {
    produced.push(name);
    return data;
  };
  const tensors: SafetensorsTensorInput[] = [
    { name: "z.last", dtype: "float32", shape: [2, 3], data: bytesOf(new Float32Array([1, 2, 3, 4, 5, -0])) },
    {
      name: "10",
      dtype: "int64",
      shape: [2],
      data: lazy("10", bytesOf(new BigInt64Array([-(2n ** 63n), 42n]))),
    },
    {
      name: "2",
      dtype: "bfloat16",
      shape: [3],
      data: lazy("2", bytesOf(new Uint16Array([0x3f80, 0xc000, 0x7f80]))),
    },
    { name: "a.half", dtype: "float16", shape: [1], data: bytesOf(new Uint16Array([0x3c00])) },
    { name: "scalar", dtype: "float64", shape: [], data: bytesOf(new Float64Array([Math.PI])) },
    { name: "empty", dtype: "int8", shape: [0, 5], data: new Uint8Array(0) },
    { name: "flags", dtype: "bool", shape: [3], data: lazy("flags", new Uint8Array([1, 0, 1])) },
  ];
  writeSafetensors(file, tensors, { format: "pt", "a key": 'a "quoted" value' });
  assert.deepEqual(produced, ["10", "2", "flags"], "lazy tensors are produced once each, in order");
  assert.deepEqual(fs.readdirSync(dir), ["rt.safetensors"], "no temporary file is left behind");

  const h = readSafetensorsHeader(file);
  assert.equal(h.dataStart % 8, 0);
  assert.deepEqual(h.metadata, { format: "pt", "a key": 'a "quoted" value' });
  assert.deepEqual(
    h.entries.map((e) => e.name),
    tensors.map((x) => x.name),
  );
  // The JSON text lists keys in insertion order, even integer-like ones, and is space-padded.
  const raw = fs.readFileSync(file);
  const text = raw.subarray(8, h.dataStart).toString("utf-8");
  const positions = ["__metadata__", ...tensors.map((x) => x.name)].map((n) =>
    text.indexOf(JSON.stringify(n)),
  );
  assert.deepEqual(
    [...positions].sort((a, b) => a - b),
    positions,
  );
  assert.match(text, /^\{.*\} *$/);
  for (const [i, e] of h.entries.entries()) {
    const src = tensors[i]!;
    const want = typeof src.data === "function" ? src.data() : src.data;
    assert.equal(e.dtype, src.dtype);
    assert.deepEqual(e.shape, src.shape);
    assert.deepEqual(new Uint8Array(readSafetensorsBytes(file, e)), new Uint8Array(want), e.name);
  }
  assert.equal(
    h.entries.reduce((n, e) => n + e.byteLength, h.dataStart),
    h.fileSize,
    "data follows the header with no gaps",
  );

  // Overwriting replaces the file atomically (a new inode, so a reader's mapping stays valid).
  const inode = fs.statSync(file).ino;
  writeSafetensors(file, [tensors[0]!]);
  assert.notEqual(fs.statSync(file).ino, inode);
  assert.deepEqual(readSafetensorsHeader(file).metadata, {});
  assert.deepEqual(fs.readdirSync(dir), ["rt.safetensors"]);
});

test("safetensors: invalid tensors are refused before the target is touched", (t) => {
  const dir = tmpDir(t);
  const file = path.join(dir, "w.safetensors");
  const ok: SafetensorsTensorInput = { name: "ok", dtype: "int32", shape: [2], data: new Uint8Array(8) };
  assert.throws(
    () =>
      writeSafetensors(file, [
        ok,
        { name: "bad", dtype: "float32", shape: [2, 2], data: new Uint8Array(12) },
      ]),
    /tensor "bad": 12 data bytes given but shape \[2,2\] of float32 needs 16/,
  );
  assert.equal(fs.existsSync(file), false, "nothing is created for an eager mismatch");
  assert.throws(() => writeSafetensors(file, [ok, ok]), /tensor "ok" is listed twice/);
  assert.throws(
    () => writeSafetensors(file, [{ ...ok, dtype: "complex64" as DTypeName }]),
    /unknown dtype 'complex64'/,
  );
  assert.throws(() => writeSafetensors(file, [{ ...ok, shape: [-2] }]), /dimension -2/);

  writeSafetensors(file, [ok]);
  const before = fs.readFileSync(file);
  assert.throws(
    () =>
      writeSafetensors(file, [
        ok,
        { name: "lazy", dtype: "uint8", shape: [4], data: () => new Uint8Array(3) },
      ]),
    /tensor "lazy": 3 data bytes given/,
  );
  assert.deepEqual(fs.readFileSync(file), before, "a failed lazy write leaves the old file intact");
  assert.deepEqual(fs.readdirSync(dir), ["w.safetensors"], "and removes its temporary file");
});

// ---------------------------------------------------------------------------------------------
// Sharded checkpoints

function f32Tensor(name: string, n: number, seed: number): SafetensorsTensorInput {
  const a = new Float32Array(n).map((_, i) => seed * 1000 + i);
  return { name, dtype: "float32", shape: [n], data: bytesOf(a) };
}

test("safetensors: sharded write and index read, as save_pretrained lays them out", (t) => {
  const dir = tmpDir(t);
  // 400-byte tensors, 1000-byte shards. "big" (1200 bytes) exceeds the limit and is put in a shard
  // of its own at once, while the open shard [c d] stays open (huggingface_hub's
  // split_state_dict_into_shards_factory), so the shards are [a b] [big] [c d] [e].
  const tensors = [
    f32Tensor("m.a", 100, 1),
    f32Tensor("m.b", 100, 2),
    f32Tensor("m.c", 100, 3),
    f32Tensor("m.d", 100, 4),
    f32Tensor("m.big", 300, 5),
    f32Tensor("m.e", 100, 6),
  ];
  const res = writeShardedSafetensors(dir, tensors, { maxShardBytes: 1000, metadata: { format: "pt" } });
  const names = [1, 2, 3, 4].map((i) => `model-0000${i}-of-00004.safetensors`);
  assert.deepEqual(res.files, [...names, "model.safetensors.index.json"]);
  assert.equal(res.totalSize, 5 * 400 + 1200);
  assert.deepEqual(fs.readdirSync(dir).sort(), res.files.slice().sort());

  const index = JSON.parse(fs.readFileSync(path.join(dir, "model.safetensors.index.json"), "utf-8"));
  assert.deepEqual(index, {
    metadata: { total_size: 3200 },
    weight_map: {
      "m.a": names[0],
      "m.b": names[0],
      "m.big": names[1],
      "m.c": names[2],
      "m.d": names[2],
      "m.e": names[3],
    },
  });
  assert.deepEqual(
    Object.keys(index.weight_map),
    ["m.a", "m.b", "m.big", "m.c", "m.d", "m.e"],
    "sorted keys",
  );

  const read = readSafetensorsIndex(dir);
  assert.ok(read);
  assert.deepEqual(read.weightMap, index.weight_map);
  assert.deepEqual(read.metadata, { total_size: 3200 });
  assert.deepEqual(read.shards.slice().sort(), names);
  for (const tensor of tensors) {
    const shard = path.join(dir, read.weightMap[tensor.name]!);
    const h = readSafetensorsHeader(shard);
    assert.deepEqual(h.metadata, { format: "pt" });
    const e = h.entries.find((x) => x.name === tensor.name)!;
    assert.deepEqual(new Uint8Array(readSafetensorsBytes(shard, e)), tensor.data);
  }

  // Everything fits in one shard: a single model.safetensors, and the old shards and index go.
  const single = writeShardedSafetensors(dir, tensors.slice(0, 2));
  assert.deepEqual(single, { files: ["model.safetensors"], indexPath: null, totalSize: 800 });
  assert.deepEqual(fs.readdirSync(dir), ["model.safetensors"]);
  assert.equal(readSafetensorsIndex(dir), null);
  assert.deepEqual(
    readSafetensorsHeader(path.join(dir, "model.safetensors")).entries.map((e) => e.name),
    ["m.a", "m.b"],
  );
});

test("safetensors: an index naming a missing or outside shard is rejected", (t) => {
  const dir = tmpDir(t);
  writeShardedSafetensors(dir, [f32Tensor("a", 10, 1), f32Tensor("b", 10, 2)], { maxShardBytes: 40 });
  const indexPath = path.join(dir, "model.safetensors.index.json");
  fs.rmSync(path.join(dir, "model-00002-of-00002.safetensors"));
  assert.throws(
    () => readSafetensorsIndex(dir),
    (e: Error) =>
      e.message.includes(indexPath) &&
      /shard "model-00002-of-00002.safetensors" \(holding "b"\) does not exist/.test(e.message),
  );
  fs.writeFileSync(indexPath, JSON.stringify({ weight_map: { a: "../model-00001-of-00002.safetensors" } }));
  assert.throws(
    () => readSafetensorsIndex(dir),
    /weight_map\["a"\].*must be a file name in the same directory/,
  );
  fs.writeFileSync(indexPath, "{not json");
  assert.throws(() => readSafetensorsIndex(dir), /model.safetensors.index.json: not valid JSON/);
  fs.writeFileSync(indexPath, JSON.stringify({ metadata: {} }));
  assert.throws(() => readSafetensorsIndex(dir), /"weight_map" object/);
});

// ---------------------------------------------------------------------------------------------
// .npy

test("npy: arrays saved by numpy (all dtypes, Fortran order, big-endian, 0-d, versions 2 and 3)", () => {
  const oracle = readJson("npy_values.json") as Record<string, Described>;
  assert.ok(Object.keys(oracle).length >= 19);
  for (const [key, want] of Object.entries(oracle)) {
    const arr = parseNpy(fs.readFileSync(fixture(`${key}.npy`)), `${key}.npy`);
    assert.equal(arr.dtype, want.dtype, key);
    assert.deepEqual(arr.shape, want.shape, key);
    assert.equal(arr.fortranOrder, want.fortran_order, key);
    assert.equal(arr.data.byteOffset % 8, 0, `${key}: data is aligned`);
    assertValues(decode(arr.dtype, arr.data), want.values, arr.dtype, key);
  }
  assert.equal(oracle.fortran?.fortran_order, true, "the Fortran fixture is really Fortran-ordered");
  assert.equal(oracle.scalar?.shape.length, 0, "the scalar fixture is 0-d");
});

test("npy: encodeNpy writes byte-for-byte what np.save writes", () => {
  for (const key of ["f32", "f64", "f16", "i64", "i32", "i16", "i8", "u8", "bool", "scalar", "empty"]) {
    const file = fs.readFileSync(fixture(`${key}.npy`));
    const arr = parseNpy(file, key);
    assert.deepEqual(encodeNpy(arr), file, key);
  }
  // Converted arrays (Fortran, big-endian) re-encode as C-order little-endian and read back the same.
  for (const key of ["fortran", "be_f8", "be_i8"]) {
    const arr = parseNpy(fs.readFileSync(fixture(`${key}.npy`)), key);
    const again = parseNpy(encodeNpy(arr), key);
    const plain = (x: typeof arr) => ({ ...x, data: new Uint8Array(x.data) });
    assert.deepEqual(plain(again), plain({ ...arr, fortranOrder: false }), key);
  }
  assert.throws(
    () => encodeNpy({ dtype: "bfloat16", shape: [1], data: new Uint8Array(2) }),
    /numpy has no such dtype/,
  );
});

test("npy: unsupported or malformed files are rejected with errors naming the source", () => {
  const rejects = (name: string, pattern: RegExp) =>
    assert.throws(
      () => parseNpy(fs.readFileSync(fixture(name)), name),
      (e: Error) => pattern.test(e.message) && e.message.startsWith(`${name}: `),
    );
  rejects("bad_object.npy", /descr '\|O' is an object array/);
  rejects("bad_complex.npy", /unsupported descr '<c8' \(supported: <f4/);
  rejects("bad_u4.npy", /unsupported descr '<u4'/);
  rejects("bad_structured.npy", /structured \(record\) dtype/);
  rejects(
    "bad_truncated.npy",
    /byte count mismatch: shape \(2, 3\) of '<f4' needs 24 data bytes but the file holds 21/,
  );

  const good = fs.readFileSync(fixture("f32.npy"));
  const patched = (edit: (b: Buffer) => void) => {
    const b = Buffer.from(good);
    edit(b);
    return b;
  };
  const text = (b: Buffer) => b.toString("latin1");
  assert.throws(() => parseNpy(Buffer.from("PK\x03\x04 not npy"), "x.npy"), /x.npy: not a .npy file/);
  assert.throws(
    () =>
      parseNpy(
        patched((b) => (b[6] = 4)),
        "v4.npy",
      ),
    /unsupported .npy format version 4.0/,
  );
  assert.throws(
    () =>
      parseNpy(
        patched((b) => b.writeUInt16LE(5000, 8)),
        "h.npy",
      ),
    /header length 5000 runs past the end/,
  );
  const withHeader = (h: string) =>
    patched((b) => b.write(h.padEnd(text(b).indexOf("\n") - 10), 10, "latin1"));
  assert.throws(
    () => parseNpy(withHeader("{'descr': '<f4', 'fortran_order': False}"), "k.npy"),
    /lacks 'shape'/,
  );
  assert.throws(
    () => parseNpy(withHeader("{'descr': '<f4', 'fortran_order': 0, 'shape': (2, 3)}"), "o.npy"),
    /'fortran_order' must be True or False/,
  );
  assert.throws(
    () => parseNpy(withHeader("{'descr': '<f4', 'fortran_order': False, 'shape': (2, -3)}"), "s.npy"),
    /'shape' must be a tuple of non-negative integers/,
  );
  assert.throws(
    () => parseNpy(withHeader("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3) + x}"), "m.npy"),
    /m.npy: malformed .npy header/,
  );
  assert.throws(
    () => parseNpy(withHeader("{'descr': 'f4', 'fortran_order': False, 'shape': (2, 3)}"), "d.npy"),
    /unsupported descr 'f4'/,
  );
  // Python 2 era long literals and double quotes are still read.
  const py2 = parseNpy(
    withHeader('{"descr": "<f4", "fortran_order": False, "shape": (2L, 3L), }'),
    "py2.npy",
  );
  assert.deepEqual(py2.shape, [2, 3]);
});

// ---------------------------------------------------------------------------------------------
// .npz and the ZIP reader

test("npz: np.savez and np.savez_compressed archives, keys with dots", () => {
  const oracle = readJson("npz_values.json") as Record<string, Described>;
  for (const name of ["stats.npz", "stats_compressed.npz"]) {
    const file = fixture(name);
    const arrays = readNpz(file);
    assert.deepEqual([...arrays.keys()].sort(), Object.keys(oracle).sort(), name);
    for (const [key, want] of Object.entries(oracle)) {
      const arr = arrays.get(key)!;
      assert.equal(arr.dtype, want.dtype, `${name} ${key}`);
      assert.deepEqual(arr.shape, want.shape, `${name} ${key}`);
      assertValues(decode(arr.dtype, arr.data), want.values, arr.dtype, `${name} ${key}`);
    }
    assert.equal(arrays.get("fortran")!.fortranOrder, true);
    const count = readNpzEntry(file, "mom2.count");
    assert.deepEqual(count.shape, []);
    assert.deepEqual(decode("int64", count.data), ["1234567"]);
    assert.deepEqual(readNpzEntry(file, "mom2.mom2.npy").shape, [4, 4]);
    assert.throws(
      () => readNpzEntry(file, "mom2"),
      /no array "mom2" in the archive \(it has: mom2.mom2, mom2.count/,
    );
  }
});

test("npz: ZIP64 end records, ZIP64 central-directory extras and an archive comment", () => {
  const oracle = readJson("zip64_eocd.json") as Record<string, Described>;
  const arrays = readNpz(fixture("zip64_eocd.npz"));
  assert.deepEqual([...arrays.keys()], ["a", "b"]);
  for (const [key, want] of Object.entries(oracle)) {
    const arr = arrays.get(key)!;
    assert.deepEqual(arr.shape, want.shape);
    assertValues(decode(arr.dtype, arr.data), want.values, arr.dtype, key);
  }
});

test("npz: zip bombs are refused without inflating them", () => {
  const small = fixture("bomb_small_declared.npz");
  // 20 MB of zeros whose directory declares 1000 bytes: inflation stops at 1000.
  const before = process.memoryUsage().arrayBuffers;
  assert.throws(
    () => readNpz(small),
    /bomb_small_declared.npz: entry "x.npy" inflates to more than the 1000 bytes its directory declares \(possible zip bomb\)/,
  );
  assert.ok(process.memoryUsage().arrayBuffers - before < 10e6, "the 20 MB output was never allocated");
  // An entry declaring 1 TiB is over the default limit and refused before any data is read.
  const huge = fixture("bomb_huge_declared.npz");
  assert.throws(
    () => readNpz(huge),
    /entry "x.npy" declares 1099511627776 bytes, more than the limit of 4294967296/,
  );
  assert.throws(() => readNpzEntry(huge, "x"), /declares 1099511627776 bytes/);
  // Limits are configurable, per entry and in total.
  assert.throws(
    () => readNpz(fixture("stats.npz"), { maxEntryBytes: 100 }),
    /entry "mom2.mom2.npy" declares 192 bytes, more than the limit of 100/,
  );
  assert.throws(
    () => readNpz(fixture("stats.npz"), { maxTotalBytes: 500 }),
    /declare \d+ uncompressed bytes in all, more than the limit of 500/,
  );
});

test("npz: corrupt, encrypted, out-of-range and unsupported entries are rejected", () => {
  assert.throws(
    () => readNpz(fixture("bad_crc.npz")),
    /bad_crc.npz: entry "mom2.mom2.npy": CRC-32 mismatch \(computed 0x[0-9a-f]{8}, archive says 0x[0-9a-f]{8}\)/,
  );
  assert.throws(() => readNpz(fixture("bad_encrypted.npz")), /entry "a.npy" is encrypted/);
  assert.throws(
    () => readNpz(fixture("bad_method.npz")),
    /entry "a.npy" uses compression method 12; only 0 \(stored\) and 8 \(deflate\)/,
  );
  assert.throws(
    () => readNpz(fixture("bad_range.npz")),
    /entry "a.npy": its data \(bytes \d+\.\.\d+\) lies outside the 256-byte archive/,
  );

  const good = fs.readFileSync(fixture("stats.npz"));
  assert.throws(() => ZipReader.fromBuffer(good.subarray(0, 600), "half.npz"), /half.npz: not a ZIP archive/);
  assert.throws(() => ZipReader.fromBuffer(new Uint8Array(10), "tiny.npz"), /tiny.npz: not a ZIP archive/);
  // A directory offset pointing past the end record.
  const eocd = good.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06]));
  const moved = Buffer.from(good);
  moved.writeUInt32LE(good.length, eocd + 16);
  assert.throws(() => ZipReader.fromBuffer(moved, "moved.npz"), /moved.npz: central directory .* overruns/);
  const zip = ZipReader.fromBuffer(good, "mem.npz");
  assert.deepEqual(zip.entries.map((e) => e.name).sort(), [
    "fortran.npy",
    "half.npy",
    "mask.npy",
    "mom2.count.npy",
    "mom2.mom2.npy",
  ]);
  assert.deepEqual(
    zip.read(zip.get("mom2.count.npy")!),
    Buffer.from(encodeNpy(readNpzEntry(fixture("stats.npz"), "mom2.count"))),
  );
  zip.close();
});

test("zip: CRC-32 matches the standard check value, natively and from the table", () => {
  const check = new TextEncoder().encode("123456789");
  assert.equal(crc32Table(check), 0xcbf43926);
  assert.equal(crc32(check), 0xcbf43926);
  assert.equal(crc32Table(new Uint8Array(0)), 0);
  const data = new Uint8Array(100_000).map((_, i) => (i * 2654435761) >>> 24);
  assert.equal(crc32Table(data), crc32(data));
});
