/**
 * The Tensor: a libtorch tensor seen from TypeScript, with torch's names and semantics.
 *
 * Memory is freed deterministically, never by the garbage collector alone:
 *  - `scope(() => ...)` frees every tensor created inside it except those returned (in a Tensor, an
 *    array, or a plain object) or `keep()`-ed; returned tensors move to the enclosing scope.
 *  - `using t = ...` or `t.free()` frees one tensor now.
 * Tensors created outside any scope belong to the caller (model parameters, optimiser state).
 * Native bytes are reported to V8 so that forgotten tensors still trigger garbage collection.
 */
import { N, type Handle, type GenHandle, type IndexSpec as NativeIndexSpec, type Scalar } from "./native.js";
import { type DType, dtypeCode, dtypeFromCode, elementSize, isFloating } from "./dtype.js";

export type { DType } from "./dtype.js";
export type Shape = readonly number[];
/** A tensor or a number (broadcast like a Python scalar: integral numbers keep integer dtypes). */
export type TensorOrScalar = Tensor | Scalar;
export type Device = string;

/** One position of `t.index(...)`: as in Python `t[...]`. */
export type IndexSpec =
  number | null | "..." | ":" | string | Tensor | { start?: number; stop?: number; step?: number };

// ------------------------------------------------------------------------------------------------
// Scopes
// ------------------------------------------------------------------------------------------------
class Scope {
  readonly tensors: Tensor[] = [];
}
const scopeStack: Scope[] = [];

function collectTensors(value: unknown, out: Set<Tensor>, seen: Set<unknown>, depth = 0): void {
  if (value === null || typeof value !== "object" || depth > 8 || seen.has(value)) return;
  seen.add(value);
  if (value instanceof Tensor) {
    out.add(value);
    return;
  }
  if (Array.isArray(value)) {
    for (const v of value) collectTensors(v, out, seen, depth + 1);
    return;
  }
  if (value instanceof Map) {
    for (const v of value.values()) collectTensors(v, out, seen, depth + 1);
    return;
  }
  if (Object.getPrototypeOf(value) === Object.prototype) {
    for (const v of Object.values(value)) collectTensors(v, out, seen, depth + 1);
  }
}

function closeScope(s: Scope, result: unknown): void {
  const keep = new Set<Tensor>();
  collectTensors(result, keep, new Set());
  const parent = scopeStack[scopeStack.length - 1];
  for (const t of s.tensors) {
    if (t._scope !== s) continue; // kept or moved meanwhile
    if (keep.has(t)) {
      t._scope = parent ?? null;
      parent?.tensors.push(t);
    } else {
      t.free();
    }
  }
  s.tensors.length = 0;
}

/**
 * Runs `fn` and frees every tensor created inside it, except the tensors in its result (a Tensor, or
 * arrays / plain objects / Maps holding tensors) and those marked with `keep()`.
 */
export function scope<T>(fn: () => T): T {
  const s = new Scope();
  scopeStack.push(s);
  let result: T;
  try {
    result = fn();
  } catch (e) {
    scopeStack.pop();
    closeScope(s, undefined);
    throw e;
  }
  scopeStack.pop();
  if (result instanceof Promise) {
    closeScope(s, undefined);
    throw new Error("scope(): the function returned a Promise; use scopeAsync() for async work");
  }
  closeScope(s, result);
  return result;
}

/**
 * The async form of `scope`. Tensors created by other async work while this one awaits are attributed
 * to this scope too; run one scopeAsync at a time per flow of work.
 */
export async function scopeAsync<T>(fn: () => Promise<T>): Promise<T> {
  const s = new Scope();
  scopeStack.push(s);
  const pop = () => {
    const i = scopeStack.lastIndexOf(s);
    if (i >= 0) scopeStack.splice(i, 1);
  };
  let result: T;
  try {
    result = await fn();
  } catch (e) {
    pop();
    closeScope(s, undefined);
    throw e;
  }
  pop();
  closeScope(s, result);
  return result;
}

/** Number of live native tensors and the bytes reported to V8 (for leak tests and diagnostics). */
export function memoryStats(): { liveHandles: number; reportedBytes: number } {
  return N.memoryStats() as { liveHandles: number; reportedBytes: number };
}

// ------------------------------------------------------------------------------------------------
// Helpers
// ------------------------------------------------------------------------------------------------
function h(x: TensorOrScalar): Handle | Scalar {
  return x instanceof Tensor ? x._handle : x;
}
const wrap = (handle: Handle): Tensor => new Tensor(handle);
const wrapAll = (hs: Handle[]): Tensor[] => hs.map(wrap);

function parseSliceString(s: string): NativeIndexSpec {
  if (s === "...") return "...";
  const parts = s.split(":");
  if (parts.length < 2 || parts.length > 3)
    throw new Error(`index: cannot parse '${s}' (expected 'a:b' or 'a:b:c')`);
  const num = (p: string | undefined, what: string): number | undefined => {
    if (p === undefined || p.trim() === "") return undefined;
    const v = Number(p);
    if (!Number.isInteger(v)) throw new Error(`index: slice ${what} '${p}' in '${s}' is not an integer`);
    return v;
  };
  return { start: num(parts[0], "start"), stop: num(parts[1], "stop"), step: num(parts[2], "step") };
}

function toNativeIndex(specs: IndexSpec[]): NativeIndexSpec[] {
  return specs.map((s) => {
    if (s instanceof Tensor) return s._handle;
    if (typeof s === "string") return parseSliceString(s);
    return s as NativeIndexSpec;
  });
}

function normalizeShape(shape: Shape | number, what = "shape"): number[] {
  const arr = typeof shape === "number" ? [shape] : [...shape];
  for (const s of arr)
    if (!Number.isInteger(s) || s < -1)
      throw new Error(`${what}: expected non-negative integers, got [${arr.join(", ")}]`);
  return arr;
}

// ------------------------------------------------------------------------------------------------
// Tensor
// ------------------------------------------------------------------------------------------------
export class Tensor {
  /** @internal the native handle; do not use outside src/torch */
  readonly _handle: Handle;
  /** @internal the scope that will free this tensor, or null when the caller owns it */
  _scope: Scope | null;

  /** @internal use the factory functions (tensor, zeros, ...) instead */
  constructor(handle: Handle) {
    this._handle = handle;
    const s = scopeStack[scopeStack.length - 1];
    this._scope = s ?? null;
    s?.tensors.push(this);
  }

  // ---- lifetime --------------------------------------------------------------------------------
  /** Frees the native memory now. Idempotent. Any later use throws a clear error. */
  free(): void {
    N.free(this._handle);
    this._scope = null;
  }
  [Symbol.dispose](): void {
    this.free();
  }
  get isFreed(): boolean {
    return N.isFreed(this._handle) as boolean;
  }
  /** Takes this tensor out of its scope: the caller now owns it and frees it. Returns this. */
  keep(): this {
    this._scope = null;
    return this;
  }
  /**
   * Puts a tensor under the current scope (the reverse of keep()): it will be freed when that scope
   * ends unless returned from it. Used for tensors kept inside an inner scope (a hook inside a forward
   * pass) and handed back to the caller's scope. Returns this.
   */
  attach(): this {
    const s = scopeStack[scopeStack.length - 1];
    if (s && this._scope !== s) {
      this._scope = s;
      s.tensors.push(this);
    }
    return this;
  }

  // ---- metadata --------------------------------------------------------------------------------
  get shape(): number[] {
    return N.shape(this._handle) as number[];
  }
  size(dim?: number): number {
    const s = this.shape;
    if (dim === undefined) return s.reduce((a, b) => a * b, 1);
    const d = dim < 0 ? s.length + dim : dim;
    const v = s[d];
    if (v === undefined) throw new Error(`size: dim ${dim} out of range for a ${s.length}-d tensor`);
    return v;
  }
  get ndim(): number {
    return N.dim(this._handle) as number;
  }
  dim(): number {
    return this.ndim;
  }
  numel(): number {
    return N.numel(this._handle) as number;
  }
  get dtype(): DType {
    return dtypeFromCode(N.dtype(this._handle) as number);
  }
  get device(): Device {
    return N.device(this._handle) as string;
  }
  stride(): number[] {
    return N.strides(this._handle) as number[];
  }
  isContiguous(): boolean {
    return N.isContiguous(this._handle) as boolean;
  }
  /** @internal address of the first element (identity of storage, for tests) */
  dataPtr(): number {
    return N.dataPtr(this._handle) as number;
  }
  toString(): string {
    return `Tensor(shape=[${this.shape.join(", ")}], dtype=${this.dtype}, device=${this.device})`;
  }

  // ---- data out --------------------------------------------------------------------------------
  /** The raw bytes, row-major, little-endian (a copy). */
  toBytes(): Uint8Array {
    return new Uint8Array(N.toBuffer(this._handle) as ArrayBuffer);
  }
  /**
   * The values as a typed array (a copy, row-major): Float32Array for float32 (and for bfloat16 /
   * float16, converted), Float64Array, BigInt64Array for int64, Int32Array, Int16Array, Int8Array,
   * Uint8Array for uint8 and bool.
   */
  toArray(): Float32Array | Float64Array | BigInt64Array | Int32Array | Int16Array | Int8Array | Uint8Array {
    const dt = this.dtype;
    if (dt === "bfloat16" || dt === "float16") {
      const f = new Tensor(N.to(this._handle, dtypeCode("float32"), null, false) as Handle);
      try {
        return f.toArray();
      } finally {
        f.free();
      }
    }
    const buf = N.toBuffer(this._handle) as ArrayBuffer;
    switch (dt) {
      case "float32":
        return new Float32Array(buf);
      case "float64":
        return new Float64Array(buf);
      case "int64":
        return new BigInt64Array(buf);
      case "int32":
        return new Int32Array(buf);
      case "int16":
        return new Int16Array(buf);
      case "int8":
        return new Int8Array(buf);
      default:
        return new Uint8Array(buf);
    }
  }
  /** The values as a flat array of numbers (int64 converted with Number()). */
  toNumbers(): number[] {
    const a = this.toArray();
    if (a instanceof BigInt64Array) return Array.from(a, (v) => Number(v));
    return Array.from(a as ArrayLike<number>);
  }
  /** The values as nested arrays, like torch's tolist(). */
  tolist(): unknown {
    const flat = this.toNumbers();
    const shape = this.shape;
    const asBool = this.dtype === "bool";
    const build = (offset: number, d: number): unknown => {
      if (d === shape.length) return asBool ? flat[offset] !== 0 : flat[offset];
      const stride = shape.slice(d + 1).reduce((a, b) => a * b, 1);
      return Array.from({ length: shape[d] as number }, (_, i) => build(offset + i * stride, d + 1));
    };
    return build(0, 0);
  }
  /** The single value of a one-element tensor. */
  item(): number {
    const v = N.item(this._handle) as number | boolean;
    return typeof v === "boolean" ? (v ? 1 : 0) : v;
  }

  // ---- conversion, copies, views ---------------------------------------------------------------
  /** Converts dtype and/or device; returns a new handle (sharing storage when nothing changes). */
  to(dtypeOrDevice: DType | Device, opts: { copy?: boolean } = {}): Tensor {
    const isDevice = /^(cpu|cuda|mps|meta)(:\d+)?$/.test(dtypeOrDevice);
    return wrap(
      N.to(
        this._handle,
        isDevice ? null : dtypeCode(dtypeOrDevice as DType),
        isDevice ? dtypeOrDevice : null,
        opts.copy ?? false,
      ) as Handle,
    );
  }
  float(): Tensor {
    return this.to("float32");
  }
  double(): Tensor {
    return this.to("float64");
  }
  long(): Tensor {
    return this.to("int64");
  }
  bool(): Tensor {
    return this.to("bool");
  }
  cpu(): Tensor {
    return this.to("cpu");
  }
  clone(): Tensor {
    return wrap(N.clone(this._handle) as Handle);
  }
  contiguous(): Tensor {
    return wrap(N.contiguous(this._handle) as Handle);
  }
  /** Copies src's values into this tensor in place (broadcasting); returns this. */
  copy_(src: Tensor): this {
    N.copy_(this._handle, src._handle);
    return this;
  }
  view(...shape: number[]): Tensor {
    return wrap(N.view(this._handle, normalizeShape(shape)) as Handle);
  }
  reshape(...shape: number[]): Tensor {
    return wrap(N.reshape(this._handle, normalizeShape(shape)) as Handle);
  }
  transpose(dim0: number, dim1: number): Tensor {
    return wrap(N.transpose(this._handle, dim0, dim1) as Handle);
  }
  /** 2-d transpose (torch's .t()); the mT of a batch is transpose(-2, -1). */
  t(): Tensor {
    return wrap(N.t(this._handle) as Handle);
  }
  get T(): Tensor {
    return this.t();
  }
  permute(...dims: number[]): Tensor {
    return wrap(N.permute(this._handle, dims) as Handle);
  }
  unsqueeze(dim: number): Tensor {
    return wrap(N.unsqueeze(this._handle, dim) as Handle);
  }
  squeeze(dim?: number): Tensor {
    return wrap(N.squeeze(this._handle, dim) as Handle);
  }
  flatten(startDim = 0, endDim = -1): Tensor {
    return wrap(N.flatten(this._handle, startDim, endDim) as Handle);
  }
  expand(...shape: number[]): Tensor {
    return wrap(N.expand(this._handle, shape) as Handle);
  }
  expandAs(other: Tensor): Tensor {
    return this.expand(...other.shape);
  }
  repeat(...repeats: number[]): Tensor {
    return wrap(N.repeat(this._handle, repeats) as Handle);
  }
  repeatInterleave(repeats: number, dim: number): Tensor {
    return wrap(N.repeatInterleave(this._handle, repeats, dim) as Handle);
  }
  narrow(dim: number, start: number, length: number): Tensor {
    return wrap(N.narrow(this._handle, dim, start, length) as Handle);
  }
  select(dim: number, index: number): Tensor {
    return wrap(N.select(this._handle, dim, index) as Handle);
  }
  flip(...dims: number[]): Tensor {
    return wrap(N.flip(this._handle, dims) as Handle);
  }
  roll(shifts: number | number[], dims: number | number[]): Tensor {
    return wrap(N.roll(this._handle, shifts, dims) as Handle);
  }
  /**
   * Python-style indexing: `x.index(":", -1)` is `x[:, -1]`; specs are integers, slices as strings
   * ("1:3", "::2", ":") or objects ({start, stop, step}), null (new axis), "..." and index tensors.
   */
  index(...specs: IndexSpec[]): Tensor {
    return wrap(N.index(this._handle, toNativeIndex(specs)) as Handle);
  }
  /** In-place `x[...] = value`; returns this. */
  indexPut_(specs: IndexSpec[], value: TensorOrScalar): this {
    N.indexPut_(this._handle, toNativeIndex(specs), h(value));
    return this;
  }
  split(sizeOrSizes: number | number[], dim = 0): Tensor[] {
    return wrapAll(N.split(this._handle, sizeOrSizes, dim) as Handle[]);
  }
  chunk(chunks: number, dim = 0): Tensor[] {
    return wrapAll(N.chunk(this._handle, chunks, dim) as Handle[]);
  }

  // ---- elementwise -----------------------------------------------------------------------------
  add(other: TensorOrScalar, alpha?: number): Tensor {
    return wrap(N.add(this._handle, h(other), alpha) as Handle);
  }
  sub(other: TensorOrScalar, alpha?: number): Tensor {
    return wrap(N.sub(this._handle, h(other), alpha) as Handle);
  }
  /** other - this, for a number other */
  rsub(other: Scalar): Tensor {
    return wrap(N.rsub(this._handle, other) as Handle);
  }
  mul(other: TensorOrScalar): Tensor {
    return wrap(N.mul(this._handle, h(other)) as Handle);
  }
  div(other: TensorOrScalar): Tensor {
    return wrap(N.div(this._handle, h(other)) as Handle);
  }
  pow(exponent: TensorOrScalar): Tensor {
    return wrap(N.pow(this._handle, h(exponent)) as Handle);
  }
  remainder(other: TensorOrScalar): Tensor {
    return wrap(N.remainder(this._handle, h(other)) as Handle);
  }
  neg(): Tensor {
    return wrap(N.neg(this._handle) as Handle);
  }
  abs(): Tensor {
    return wrap(N.abs(this._handle) as Handle);
  }
  sign(): Tensor {
    return wrap(N.sign(this._handle) as Handle);
  }
  exp(): Tensor {
    return wrap(N.exp(this._handle) as Handle);
  }
  log(): Tensor {
    return wrap(N.log(this._handle) as Handle);
  }
  log1p(): Tensor {
    return wrap(N.log1p(this._handle) as Handle);
  }
  sqrt(): Tensor {
    return wrap(N.sqrt(this._handle) as Handle);
  }
  rsqrt(): Tensor {
    return wrap(N.rsqrt(this._handle) as Handle);
  }
  square(): Tensor {
    return wrap(N.square(this._handle) as Handle);
  }
  reciprocal(): Tensor {
    return wrap(N.reciprocal(this._handle) as Handle);
  }
  sin(): Tensor {
    return wrap(N.sin(this._handle) as Handle);
  }
  cos(): Tensor {
    return wrap(N.cos(this._handle) as Handle);
  }
  tanh(): Tensor {
    return wrap(N.tanh(this._handle) as Handle);
  }
  sigmoid(): Tensor {
    return wrap(N.sigmoid(this._handle) as Handle);
  }
  relu(): Tensor {
    return wrap(N.relu(this._handle) as Handle);
  }
  erf(): Tensor {
    return wrap(N.erf(this._handle) as Handle);
  }
  floor(): Tensor {
    return wrap(N.floor(this._handle) as Handle);
  }
  ceil(): Tensor {
    return wrap(N.ceil(this._handle) as Handle);
  }
  round(): Tensor {
    return wrap(N.round(this._handle) as Handle);
  }
  clamp(min?: number | null, max?: number | null): Tensor {
    return wrap(N.clamp(this._handle, min ?? null, max ?? null) as Handle);
  }
  maximum(other: Tensor): Tensor {
    return wrap(N.maximum(this._handle, other._handle) as Handle);
  }
  minimum(other: Tensor): Tensor {
    return wrap(N.minimum(this._handle, other._handle) as Handle);
  }
  lerp(end: Tensor, weight: number): Tensor {
    return wrap(N.lerp(this._handle, end._handle, weight) as Handle);
  }
  // comparisons and logic
  eq(other: TensorOrScalar): Tensor {
    return wrap(N.eq(this._handle, h(other)) as Handle);
  }
  ne(other: TensorOrScalar): Tensor {
    return wrap(N.ne(this._handle, h(other)) as Handle);
  }
  lt(other: TensorOrScalar): Tensor {
    return wrap(N.lt(this._handle, h(other)) as Handle);
  }
  le(other: TensorOrScalar): Tensor {
    return wrap(N.le(this._handle, h(other)) as Handle);
  }
  gt(other: TensorOrScalar): Tensor {
    return wrap(N.gt(this._handle, h(other)) as Handle);
  }
  ge(other: TensorOrScalar): Tensor {
    return wrap(N.ge(this._handle, h(other)) as Handle);
  }
  logicalNot(): Tensor {
    return wrap(N.logicalNot(this._handle) as Handle);
  }
  logicalAnd(other: Tensor): Tensor {
    return wrap(N.logicalAnd(this._handle, other._handle) as Handle);
  }
  logicalOr(other: Tensor): Tensor {
    return wrap(N.logicalOr(this._handle, other._handle) as Handle);
  }
  isnan(): Tensor {
    return wrap(N.isnan(this._handle) as Handle);
  }
  isfinite(): Tensor {
    return wrap(N.isfinite(this._handle) as Handle);
  }
  isinf(): Tensor {
    return wrap(N.isinf(this._handle) as Handle);
  }
  any(): Tensor {
    return wrap(N.any(this._handle) as Handle);
  }
  all(): Tensor {
    return wrap(N.all(this._handle) as Handle);
  }
  maskedFill(mask: Tensor, value: TensorOrScalar): Tensor {
    return wrap(N.maskedFill(this._handle, mask._handle, h(value)) as Handle);
  }

  // ---- in place (return this) ------------------------------------------------------------------
  add_(other: TensorOrScalar, alpha?: number): this {
    N.add_(this._handle, h(other), alpha);
    return this;
  }
  sub_(other: TensorOrScalar, alpha?: number): this {
    N.sub_(this._handle, h(other), alpha);
    return this;
  }
  mul_(other: TensorOrScalar): this {
    N.mul_(this._handle, h(other));
    return this;
  }
  div_(other: TensorOrScalar): this {
    N.div_(this._handle, h(other));
    return this;
  }
  addcmul_(a: Tensor, b: Tensor, value = 1): this {
    N.addcmul_(this._handle, a._handle, b._handle, value);
    return this;
  }
  addcdiv_(a: Tensor, b: Tensor, value = 1): this {
    N.addcdiv_(this._handle, a._handle, b._handle, value);
    return this;
  }
  lerp_(end: Tensor, weight: number): this {
    N.lerp_(this._handle, end._handle, weight);
    return this;
  }
  zero_(): this {
    N.zero_(this._handle);
    return this;
  }
  fill_(value: Scalar): this {
    N.fill_(this._handle, value);
    return this;
  }
  clamp_(min?: number | null, max?: number | null): this {
    N.clamp_(this._handle, min ?? null, max ?? null);
    return this;
  }
  maskedFill_(mask: Tensor, value: Scalar): this {
    N.maskedFill_(this._handle, mask._handle, value);
    return this;
  }
  sqrt_(): this {
    N.sqrt_(this._handle);
    return this;
  }
  indexAdd_(dim: number, index: Tensor, source: Tensor, alpha = 1): this {
    N.indexAdd_(this._handle, dim, index._handle, source._handle, alpha);
    return this;
  }

  // ---- reductions ------------------------------------------------------------------------------
  sum(dim?: number | number[] | null, keepdim = false, dtype?: DType): Tensor {
    return wrap(
      N.sum(this._handle, dim ?? null, keepdim, dtype === undefined ? null : dtypeCode(dtype)) as Handle,
    );
  }
  mean(dim?: number | number[] | null, keepdim = false): Tensor {
    return wrap(N.mean(this._handle, dim ?? null, keepdim) as Handle);
  }
  prod(dim?: number | null, keepdim = false): Tensor {
    return wrap(N.prod(this._handle, dim ?? null, keepdim) as Handle);
  }
  /** Variance with Bessel's correction by default (torch's unbiased=True, i.e. correction=1). */
  var(dim?: number | number[] | null, opts: { correction?: number; keepdim?: boolean } = {}): Tensor {
    return wrap(N.var(this._handle, dim ?? null, opts.correction ?? 1, opts.keepdim ?? false) as Handle);
  }
  std(dim?: number | number[] | null, opts: { correction?: number; keepdim?: boolean } = {}): Tensor {
    return wrap(N.std(this._handle, dim ?? null, opts.correction ?? 1, opts.keepdim ?? false) as Handle);
  }
  amax(dim: number | number[], keepdim = false): Tensor {
    return wrap(N.amax(this._handle, dim, keepdim) as Handle);
  }
  amin(dim: number | number[], keepdim = false): Tensor {
    return wrap(N.amin(this._handle, dim, keepdim) as Handle);
  }
  logsumexp(dim: number | number[], keepdim = false): Tensor {
    return wrap(N.logsumexp(this._handle, dim, keepdim) as Handle);
  }
  /** Overall maximum (a 0-d tensor). For values and indices along a dim use maxDim. */
  max(): Tensor {
    return wrap(N.max(this._handle) as Handle);
  }
  min(): Tensor {
    return wrap(N.min(this._handle) as Handle);
  }
  maxDim(dim: number, keepdim = false): { values: Tensor; indices: Tensor } {
    const [v, i] = N.max(this._handle, dim, keepdim) as [Handle, Handle];
    return { values: wrap(v), indices: wrap(i) };
  }
  minDim(dim: number, keepdim = false): { values: Tensor; indices: Tensor } {
    const [v, i] = N.min(this._handle, dim, keepdim) as [Handle, Handle];
    return { values: wrap(v), indices: wrap(i) };
  }
  argmax(dim?: number, keepdim = false): Tensor {
    return wrap(N.argmax(this._handle, dim ?? null, keepdim) as Handle);
  }
  argmin(dim?: number, keepdim = false): Tensor {
    return wrap(N.argmin(this._handle, dim ?? null, keepdim) as Handle);
  }
  /** Vector p-norm over dims (all elements when dim is omitted), as torch.linalg.vector_norm / Tensor.norm. */
  norm(p = 2, dim?: number | number[] | null, keepdim = false): Tensor {
    return wrap(N.vectorNorm(this._handle, p, dim ?? null, keepdim) as Handle);
  }
  cumsum(dim: number, dtype?: DType): Tensor {
    return wrap(N.cumsum(this._handle, dim, dtype === undefined ? null : dtypeCode(dtype)) as Handle);
  }
  topk(k: number, dim = -1, largest = true, sorted = true): { values: Tensor; indices: Tensor } {
    const [v, i] = N.topk(this._handle, k, dim, largest, sorted) as [Handle, Handle];
    return { values: wrap(v), indices: wrap(i) };
  }
  /** Stable sort along dim. */
  sort(dim = -1, descending = false): { values: Tensor; indices: Tensor } {
    const [v, i] = N.sort(this._handle, dim, descending, true) as [Handle, Handle];
    return { values: wrap(v), indices: wrap(i) };
  }
  argsort(dim = -1, descending = false): Tensor {
    const { values, indices } = this.sort(dim, descending);
    values.free();
    return indices;
  }
  triu(diagonal = 0): Tensor {
    return wrap(N.triu(this._handle, diagonal) as Handle);
  }
  tril(diagonal = 0): Tensor {
    return wrap(N.tril(this._handle, diagonal) as Handle);
  }
  diagonal(offset = 0): Tensor {
    return wrap(N.diagonal(this._handle, offset) as Handle);
  }

  // ---- products --------------------------------------------------------------------------------
  matmul(other: Tensor): Tensor {
    return wrap(N.matmul(this._handle, other._handle) as Handle);
  }
  mm(other: Tensor): Tensor {
    return wrap(N.mm(this._handle, other._handle) as Handle);
  }
  bmm(other: Tensor): Tensor {
    return wrap(N.bmm(this._handle, other._handle) as Handle);
  }
  dot(other: Tensor): Tensor {
    return wrap(N.dot(this._handle, other._handle) as Handle);
  }
  outer(other: Tensor): Tensor {
    return wrap(N.outer(this._handle, other._handle) as Handle);
  }

  // ---- indexing ops ----------------------------------------------------------------------------
  gather(dim: number, index: Tensor): Tensor {
    return wrap(N.gather(this._handle, dim, index._handle) as Handle);
  }
  scatter(dim: number, index: Tensor, src: TensorOrScalar): Tensor {
    return wrap(N.scatter(this._handle, dim, index._handle, h(src)) as Handle);
  }
  scatterAdd(dim: number, index: Tensor, src: Tensor): Tensor {
    return wrap(N.scatterAdd(this._handle, dim, index._handle, src._handle) as Handle);
  }
  indexSelect(dim: number, index: Tensor): Tensor {
    return wrap(N.indexSelect(this._handle, dim, index._handle) as Handle);
  }
  indexAdd(dim: number, index: Tensor, source: Tensor, alpha = 1): Tensor {
    return wrap(N.indexAdd(this._handle, dim, index._handle, source._handle, alpha) as Handle);
  }
  softmax(dim: number, dtype?: DType): Tensor {
    return wrap(N.softmax(this._handle, dim, dtype === undefined ? null : dtypeCode(dtype)) as Handle);
  }
  logSoftmax(dim: number, dtype?: DType): Tensor {
    return wrap(N.logSoftmax(this._handle, dim, dtype === undefined ? null : dtypeCode(dtype)) as Handle);
  }

  // ---- autograd --------------------------------------------------------------------------------
  get requiresGrad(): boolean {
    return N.requiresGrad(this._handle) as boolean;
  }
  requiresGrad_(value = true): this {
    N.requiresGrad_(this._handle, value);
    return this;
  }
  get isLeaf(): boolean {
    return N.isLeaf(this._handle) as boolean;
  }
  retainGrad(): this {
    N.retainGrad(this._handle);
    return this;
  }
  /** The accumulated gradient (a new handle on it each call), or null. */
  get grad(): Tensor | null {
    const g = N.grad(this._handle) as Handle | null;
    return g === null ? null : wrap(g);
  }
  set grad(g: Tensor | null) {
    N.setGrad(this._handle, g === null ? null : g._handle);
  }
  backward(gradient?: Tensor, opts: { retainGraph?: boolean } = {}): void {
    N.backward(this._handle, gradient?._handle ?? null, opts.retainGraph ?? null);
  }
  detach(): Tensor {
    return wrap(N.detach(this._handle) as Handle);
  }
  detach_(): this {
    N.detach_(this._handle);
    return this;
  }
}

// ------------------------------------------------------------------------------------------------
// Creation
// ------------------------------------------------------------------------------------------------
type Nested = number | boolean | Nested[];
export interface CreateOptions {
  dtype?: DType;
  device?: Device;
  requiresGrad?: boolean;
}

function finish(t: Tensor, opts: CreateOptions): Tensor {
  if (opts.requiresGrad) t.requiresGrad_(true);
  return t;
}

function flattenNested(data: Nested, shape: number[], out: (number | boolean)[], depth: number): void {
  if (Array.isArray(data)) {
    if (shape.length <= depth) shape.push(data.length);
    else if (shape[depth] !== data.length)
      throw new Error(
        `tensor: ragged nested array (expected length ${shape[depth]} at depth ${depth}, got ${data.length})`,
      );
    for (const d of data) flattenNested(d, shape, out, depth + 1);
  } else {
    if (shape.length > depth) throw new Error(`tensor: ragged nested array (a scalar at depth ${depth})`);
    out.push(data);
  }
}

function typedFor(dtype: DType, values: ArrayLike<number | boolean>): ArrayBufferView {
  const n = values.length;
  switch (dtype) {
    case "float32":
      return Float32Array.from(values as ArrayLike<number>);
    case "float64":
      return Float64Array.from(values as ArrayLike<number>);
    case "int64": {
      const a = new BigInt64Array(n);
      for (let i = 0; i < n; i++) a[i] = BigInt(Math.trunc(Number(values[i])));
      return a;
    }
    case "int32":
      return Int32Array.from(values as ArrayLike<number>);
    case "int16":
      return Int16Array.from(values as ArrayLike<number>);
    case "int8":
      return Int8Array.from(values as ArrayLike<number>);
    case "uint8":
      return Uint8Array.from(values as ArrayLike<number>);
    case "bool": {
      const a = new Uint8Array(n);
      for (let i = 0; i < n; i++) a[i] = values[i] ? 1 : 0;
      return a;
    }
    default:
      return Float32Array.from(values as ArrayLike<number>);
  }
}

/**
 * Creates a tensor from nested arrays or a typed array. The dtype defaults to float32 for numbers
 * (JavaScript cannot tell 1 from 1.0; pass dtype "int64" for token ids), bool for booleans, and the
 * typed array's own type otherwise.
 */
export function tensor(
  data:
    Nested | Float32Array | Float64Array | BigInt64Array | Int32Array | Int16Array | Int8Array | Uint8Array,
  opts: CreateOptions & { shape?: Shape } = {},
): Tensor {
  let values: ArrayLike<number | boolean>;
  let shape: number[];
  let inferred: DType = "float32";
  if (ArrayBuffer.isView(data)) {
    shape = opts.shape ? [...opts.shape] : [data.length];
    if (data instanceof Float64Array) inferred = "float64";
    else if (data instanceof BigInt64Array) inferred = "int64";
    else if (data instanceof Int32Array) inferred = "int32";
    else if (data instanceof Int16Array) inferred = "int16";
    else if (data instanceof Int8Array) inferred = "int8";
    else if (data instanceof Uint8Array) inferred = "uint8";
    const dtype = opts.dtype ?? inferred;
    if (dtype === inferred) return fromBytesView(data, dtype, shape, opts);
    values = data instanceof BigInt64Array ? Array.from(data, Number) : (data as ArrayLike<number>);
  } else {
    const flat: (number | boolean)[] = [];
    shape = [];
    flattenNested(data, shape, flat, 0);
    if (flat.length > 0 && typeof flat[0] === "boolean") inferred = "bool";
    values = flat;
    if (opts.shape) shape = [...opts.shape];
  }
  const dtype = opts.dtype ?? inferred;
  if (dtype === "bfloat16" || dtype === "float16") {
    const f = fromBytesView(typedFor("float32", values), "float32", shape, {});
    const out = f.to(dtype);
    f.free();
    return finish(opts.device ? out.to(opts.device) : out, opts);
  }
  return fromBytesView(typedFor(dtype, values), dtype, shape, opts);
}

function fromBytesView(view: ArrayBufferView, dtype: DType, shape: number[], opts: CreateOptions): Tensor {
  const t = wrap(N.fromBuffer(view, dtypeCode(dtype), shape, opts.device ?? null) as Handle);
  return finish(t, opts);
}

/** Creates a tensor over a copy of raw little-endian bytes (bfloat16 / float16 as their 16-bit patterns). */
export function fromBytes(bytes: Uint8Array, dtype: DType, shape: Shape, opts: CreateOptions = {}): Tensor {
  const need = shape.reduce((a, b) => a * b, 1) * elementSize(dtype);
  if (need !== bytes.byteLength)
    throw new Error(
      `fromBytes: shape [${shape.join(", ")}] of ${dtype} needs ${need} bytes, got ${bytes.byteLength}`,
    );
  return fromBytesView(bytes, dtype, [...shape], opts);
}

const dt = (o: CreateOptions) => (o.dtype === undefined ? null : dtypeCode(o.dtype));

export function zeros(shape: Shape | number, opts: CreateOptions = {}): Tensor {
  return finish(wrap(N.zeros(normalizeShape(shape), dt(opts), opts.device ?? null) as Handle), opts);
}
export function ones(shape: Shape | number, opts: CreateOptions = {}): Tensor {
  return finish(wrap(N.ones(normalizeShape(shape), dt(opts), opts.device ?? null) as Handle), opts);
}
export function empty(shape: Shape | number, opts: CreateOptions = {}): Tensor {
  return finish(wrap(N.empty(normalizeShape(shape), dt(opts), opts.device ?? null) as Handle), opts);
}
export function full(shape: Shape | number, value: Scalar, opts: CreateOptions = {}): Tensor {
  return finish(wrap(N.full(normalizeShape(shape), value, dt(opts), opts.device ?? null) as Handle), opts);
}
export function eye(n: number, m = n, opts: CreateOptions = {}): Tensor {
  return finish(wrap(N.eye(n, m, dt(opts), opts.device ?? null) as Handle), opts);
}
/** arange(end) or arange(start, end, step); int64 unless a dtype is given. */
export function arange(startOrEnd: number, end?: number, step = 1, opts: CreateOptions = {}): Tensor {
  const [s, e] = end === undefined ? [0, startOrEnd] : [startOrEnd, end];
  return finish(wrap(N.arange(s, e, step, dt(opts), opts.device ?? null) as Handle), opts);
}
export function linspace(start: number, end: number, steps: number, opts: CreateOptions = {}): Tensor {
  return finish(wrap(N.linspace(start, end, steps, dt(opts), opts.device ?? null) as Handle), opts);
}
export function zerosLike(t: Tensor): Tensor {
  return wrap(N.zerosLike(t._handle) as Handle);
}
export function onesLike(t: Tensor): Tensor {
  return wrap(N.onesLike(t._handle) as Handle);
}
export function fullLike(t: Tensor, value: Scalar): Tensor {
  return wrap(N.fullLike(t._handle, value) as Handle);
}

// ------------------------------------------------------------------------------------------------
// Randomness
// ------------------------------------------------------------------------------------------------
/** A seeded random number generator independent of the global one (torch.Generator). */
export class Generator {
  /** @internal */ readonly _g: GenHandle;
  constructor(seed: number) {
    this._g = N.newGenerator(seed) as GenHandle;
  }
}
/** Seeds the global generator; the same seed gives the same numbers as Python's torch.manual_seed. */
export function manualSeed(seed: number): void {
  N.manualSeed(seed);
}
export function randn(shape: Shape | number, opts: CreateOptions & { generator?: Generator } = {}): Tensor {
  return finish(
    wrap(N.randn(normalizeShape(shape), dt(opts), opts.device ?? null, opts.generator?._g ?? null) as Handle),
    opts,
  );
}
export function rand(shape: Shape | number, opts: CreateOptions & { generator?: Generator } = {}): Tensor {
  return finish(
    wrap(N.rand(normalizeShape(shape), dt(opts), opts.device ?? null, opts.generator?._g ?? null) as Handle),
    opts,
  );
}
export function randint(
  low: number,
  high: number,
  shape: Shape | number,
  opts: CreateOptions & { generator?: Generator } = {},
): Tensor {
  return wrap(
    N.randint(
      low,
      high,
      normalizeShape(shape),
      dt(opts),
      opts.device ?? null,
      opts.generator?._g ?? null,
    ) as Handle,
  );
}
export function randperm(n: number, opts: { generator?: Generator } = {}): Tensor {
  return wrap(N.randperm(n, opts.generator?._g ?? null) as Handle);
}
export function multinomial(
  probs: Tensor,
  numSamples: number,
  opts: { replacement?: boolean; generator?: Generator } = {},
): Tensor {
  return wrap(
    N.multinomial(probs._handle, numSamples, opts.replacement ?? false, opts.generator?._g ?? null) as Handle,
  );
}

// ------------------------------------------------------------------------------------------------
// Functions over several tensors
// ------------------------------------------------------------------------------------------------
export function cat(tensors: Tensor[], dim = 0): Tensor {
  return wrap(
    N.cat(
      tensors.map((t) => t._handle),
      dim,
    ) as Handle,
  );
}
export function stack(tensors: Tensor[], dim = 0): Tensor {
  return wrap(
    N.stack(
      tensors.map((t) => t._handle),
      dim,
    ) as Handle,
  );
}
export function where(condition: Tensor, a: TensorOrScalar, b: TensorOrScalar): Tensor {
  return wrap(N.where(condition._handle, h(a), h(b)) as Handle);
}
/** beta * input + alpha * (m1 @ m2) */
export function addmm(input: Tensor, m1: Tensor, m2: Tensor, beta = 1, alpha = 1): Tensor {
  return wrap(N.addmm(input._handle, m1._handle, m2._handle, beta, alpha) as Handle);
}
export function baddbmm(input: Tensor, b1: Tensor, b2: Tensor, beta = 1, alpha = 1): Tensor {
  return wrap(N.baddbmm(input._handle, b1._handle, b2._handle, beta, alpha) as Handle);
}
export function matmul(a: Tensor, b: Tensor): Tensor {
  return a.matmul(b);
}
export function outer(a: Tensor, b: Tensor): Tensor {
  return a.outer(b);
}
export function diag(t: Tensor, diagonal = 0): Tensor {
  return wrap(N.diag(t._handle, diagonal) as Handle);
}
export function atan2(a: Tensor, b: Tensor): Tensor {
  return wrap(N.atan2(a._handle, b._handle) as Handle);
}

// ------------------------------------------------------------------------------------------------
// Grad mode
// ------------------------------------------------------------------------------------------------
export function isGradEnabled(): boolean {
  return N.isGradEnabled() as boolean;
}
export function setGradEnabled(enabled: boolean): void {
  N.setGradEnabled(enabled);
}
/** Runs fn with autograd recording off (torch.no_grad()), restoring the previous mode afterwards. */
export function noGrad<T>(fn: () => T): T {
  const prev = isGradEnabled();
  N.setGradEnabled(false);
  try {
    return fn();
  } finally {
    N.setGradEnabled(prev);
  }
}
export function enableGrad<T>(fn: () => T): T {
  const prev = isGradEnabled();
  N.setGradEnabled(true);
  try {
    return fn();
  } finally {
    N.setGradEnabled(prev);
  }
}
/**
 * torch.autograd.grad: gradients of outputs with respect to inputs (null for inputs not in the graph),
 * without touching `.grad`.
 */
export function grad(
  outputs: Tensor[],
  inputs: Tensor[],
  opts: { gradOutputs?: Tensor[]; retainGraph?: boolean; createGraph?: boolean } = {},
): (Tensor | null)[] {
  const gs = N.autogradGrad(
    outputs.map((t) => t._handle),
    inputs.map((t) => t._handle),
    opts.gradOutputs?.map((t) => t._handle) ?? null,
    opts.retainGraph ?? null,
    opts.createGraph ?? false,
  ) as (Handle | null)[];
  return gs.map((g) => (g === null ? null : wrap(g)));
}

// ------------------------------------------------------------------------------------------------
// Runtime
// ------------------------------------------------------------------------------------------------
export function setNumThreads(n: number): void {
  N.setNumThreads(n);
}
export function getNumThreads(): number {
  return N.getNumThreads() as number;
}
export function cudaIsAvailable(): boolean {
  return N.cudaAvailable() as boolean;
}
export function version(): { torch: string; parallel: string } {
  return N.version() as { torch: string; parallel: string };
}
export { isFloating };
