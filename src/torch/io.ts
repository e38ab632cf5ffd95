/**
 * Tensors from and to files: safetensors (memory-mapped, zero-copy where the dtype is kept), sharded
 * checkpoints, and numpy's .npy/.npz (EasyEdit and ROME keep second-moment statistics as .npz).
 * Pickle files (.bin, .pt, .pth, .ckpt) are never read: they can run code when loaded.
 */
import { N, type Handle, type MapHandle } from "./native.js";
import { Tensor, scope } from "./tensor.js";
import { dtypeCode, type DType } from "./dtype.js";
import {
  readSafetensorsHeader,
  writeSafetensors,
  writeShardedSafetensors,
  type SafetensorsHeader,
  type SafetensorsTensorInput,
  type ShardedWriteResult,
} from "./formats/safetensors.js";
import { readNpz, type NpyArray } from "./formats/npy.js";

const PICKLE = /\.(bin|pt|pth|ckpt|pkl)$/i;

export function rejectPickle(path: string): void {
  if (PICKLE.test(path))
    throw new Error(
      `${path}: pickle checkpoints are not read (unpickling can run arbitrary code). Convert it to safetensors, ` +
        "e.g. in Python: `AutoModelForCausalLM.from_pretrained(dir).save_pretrained(out, safe_serialization=True)`",
    );
}

/** An open safetensors file: its header, and tensors created over the mapped bytes on demand. */
export class SafetensorsFile {
  readonly header: SafetensorsHeader;
  private mapping: MapHandle | null;

  constructor(readonly path: string) {
    rejectPickle(path);
    this.header = readSafetensorsHeader(path);
    const m = N.mmapFile(path) as { handle: MapHandle; byteLength: number };
    if (m.byteLength !== this.header.fileSize)
      throw new Error(
        `${path}: the file changed size while being opened (${this.header.fileSize} -> ${m.byteLength} bytes)`,
      );
    this.mapping = m.handle;
  }

  names(): string[] {
    return this.header.entries.map((e) => e.name);
  }

  /**
   * The tensor `name`, sharing the mapped pages (copy-on-write: in-place edits never reach the file).
   * With `dtype`, converted (a copy). The caller owns the result.
   */
  tensor(name: string, dtype?: DType): Tensor {
    if (this.mapping === null) throw new Error(`${this.path}: file already closed`);
    const e = this.header.entries.find((x) => x.name === name);
    if (!e) throw new Error(`${this.path}: no tensor named '${name}'`);
    const mapped = new Tensor(
      N.fromMapping(this.mapping, e.byteOffset, e.byteLength, dtypeCode(e.dtype), e.shape) as Handle,
    );
    if (dtype === undefined || dtype === e.dtype) return mapped;
    return scope(() => mapped.to(dtype)).keep();
  }

  /** Drops this file's own reference to the mapping; tensors created from it stay valid. */
  close(): void {
    if (this.mapping !== null) N.closeMapping(this.mapping);
    this.mapping = null;
  }
}

/** Loads all tensors of a safetensors file (zero-copy unless converted). The caller owns them. */
export function loadSafetensors(path: string, opts: { dtype?: DType } = {}): Map<string, Tensor> {
  const f = new SafetensorsFile(path);
  try {
    const out = new Map<string, Tensor>();
    for (const name of f.names()) out.set(name, f.tensor(name, opts.dtype));
    return out;
  } finally {
    f.close();
  }
}

function toInput(name: string, t: Tensor): SafetensorsTensorInput {
  return { name, dtype: t.dtype, shape: t.shape, data: () => t.toBytes() };
}

/** Writes tensors to one safetensors file (atomically: a temporary file renamed into place). */
export function saveSafetensors(
  path: string,
  tensors: Map<string, Tensor> | [string, Tensor][],
  metadata?: Record<string, string>,
): void {
  const entries = tensors instanceof Map ? [...tensors] : tensors;
  writeSafetensors(
    path,
    entries.map(([n, t]) => toInput(n, t)),
    metadata,
  );
}

/** Writes a Hugging Face checkpoint's weights: model.safetensors, or shards with an index. */
export function saveShardedSafetensors(
  dir: string,
  tensors: [string, Tensor][],
  opts: { maxShardBytes?: number; metadata?: Record<string, string> } = {},
): ShardedWriteResult {
  return writeShardedSafetensors(
    dir,
    tensors.map(([n, t]) => toInput(n, t)),
    opts,
  );
}

/** A numpy array as a tensor (a copy). */
export function npyToTensor(a: NpyArray): Tensor {
  return new Tensor(N.fromBuffer(a.data, dtypeCode(a.dtype), a.shape, null) as Handle);
}

/** Loads every array of an .npz file as tensors (keys without ".npy"). Zip bombs are refused. */
export function loadNpz(
  path: string,
  opts: { maxEntryBytes?: number; maxTotalBytes?: number } = {},
): Map<string, Tensor> {
  rejectPickle(path);
  const out = new Map<string, Tensor>();
  for (const [k, a] of readNpz(path, opts)) out.set(k, npyToTensor(a));
  return out;
}
