/**
 * The edit journal: every applied edit is a recorded delta on named parameters (rank-one factors where
 * the method produces them, so 1,000 ROME edits on GPT-2 XL hold 1,000 pairs of vectors, not 1,000
 * dense matrices), with its requests, hyper-parameters and timing.
 *
 * Undo in any order is exact: the journal keeps one copy of each touched parameter as it was before the
 * first edit, and a parameter's value is always base + the deltas of the applied edits, added in order.
 * Undoing edit k recomputes that sum without k, so the result is bit-for-bit what applying the other
 * edits alone gives, and undoing everything restores the original weights bit-for-bit.
 *
 * Some methods change no weight but wrap a module (GRACE's codebook): their edits carry adaptor entries
 * (`AdaptorEntry`: a kind, a module, tensors and JSON metadata). The adaptor of a (kind, module) is built
 * from the entries of the applied edits, in order, by the kind's registered `AdaptorKind`, and installed
 * as hooks on the model; applying or undoing an edit rebuilds it, and undoing every edit removes the hooks,
 * so the model computes exactly what it computed before. Journals without adaptors save as before.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import * as torch from "../torch/index.js";
import type { Tensor } from "../torch/index.js";
import { loadSafetensors, saveSafetensors } from "../torch/io.js";
import type { CausalLM, Hook, HookHandle } from "../models/model.js";
import type { EditRequest } from "./request.js";
import { createHash } from "node:crypto";

/**
 * A change to one parameter, in the parameter's own layout: u v^T (rank one with u, v vectors; low rank
 * with u [rows, r], v [cols, r], as MEMIT's batch updates) or a dense tensor.
 */
export type ParamDelta = { param: string; u: Tensor; v: Tensor } | { param: string; dense: Tensor };

/**
 * One edit's contribution to a module adaptor (a hook-based edit such as GRACE's codebook): the tensors
 * and JSON-serialisable metadata the adaptor kind needs. The journal owns the tensors once applied.
 */
export interface AdaptorEntry {
  /** the adaptor kind (registered with registerAdaptorKind), e.g. "grace" */
  kind: string;
  /** the module the adaptor wraps, e.g. "transformer.h.3.mlp.c_fc" */
  module: string;
  tensors: Record<string, Tensor>;
  meta: Record<string, unknown>;
}

/** How an adaptor kind turns the applied entries of one module (in edit order) into hooks. */
export interface AdaptorKind {
  hooks(
    model: CausalLM,
    module: string,
    entries: AdaptorEntry[],
  ): { where: "input" | "output"; hook: Hook }[];
}

const ADAPTOR_KINDS = new Map<string, AdaptorKind>();

/** Registers an adaptor kind (the method's module does it when imported). */
export function registerAdaptorKind(kind: string, impl: AdaptorKind): void {
  ADAPTOR_KINDS.set(kind, impl);
}

const ADAPTORS = Symbol("editeval.adaptors");

/**
 * Attaches adaptor entries to a method's delta list, so that they reach the journal through code that
 * passes `deltas` along unchanged (the Editor); `apply` takes them from there or from `adaptors`.
 */
export function withAdaptors(deltas: ParamDelta[], adaptors: AdaptorEntry[]): ParamDelta[] {
  Object.defineProperty(deltas, ADAPTORS, { value: adaptors, enumerable: false, configurable: true });
  return deltas;
}

function attachedAdaptors(deltas: ParamDelta[]): AdaptorEntry[] | undefined {
  return (deltas as unknown as Record<symbol, AdaptorEntry[] | undefined>)[ADAPTORS];
}

export interface EditRecord {
  id: number;
  method: string;
  requests: EditRequest[];
  hparams: unknown;
  deltas: ParamDelta[];
  /** module adaptors this edit writes (hook-based methods); absent for weight-only edits */
  adaptors?: AdaptorEntry[];
  /** wall time of computing the edit */
  seconds: number;
  createdAt: string;
  /** method-specific notes (e.g. the loss trajectory of the value optimisation) */
  info?: Record<string, unknown>;
}

function deltaShape(d: ParamDelta): number[] {
  return "dense" in d ? d.dense.shape : [d.u.size(0), d.v.size(0)];
}

/** Materialises a delta in a given dtype (u v^T computed in the factors' dtype, then cast). */
export function materialize(d: ParamDelta, dtype: torch.DType): Tensor {
  const full = "dense" in d ? d.dense : d.u.ndim === 1 ? d.u.outer(d.v) : d.u.matmul(d.v.T);
  return full.dtype === dtype ? full : full.to(dtype);
}

export class EditJournal {
  readonly records: EditRecord[] = [];
  private readonly base = new Map<string, Tensor>();
  /** installed adaptor hooks by "kind|module" */
  private readonly installed = new Map<string, HookHandle[]>();
  private nextId = 1;

  constructor(readonly model: CausalLM) {}

  /** Checks that each delta fits its parameter. */
  private check(deltas: ParamDelta[]): void {
    for (const d of deltas) {
      const p = this.model.param(d.param);
      const s = deltaShape(d);
      if (s.join(",") !== p.shape.join(","))
        throw new Error(
          `edit delta for '${d.param}' has shape [${s.join(", ")}], the parameter [${p.shape.join(", ")}]`,
        );
    }
  }

  /** Applies an edit's deltas to the model and records it; the record takes ownership of the delta tensors. */
  apply(rec: Omit<EditRecord, "id" | "createdAt"> & { createdAt?: string }): EditRecord {
    this.check(rec.deltas);
    const adaptors = rec.adaptors ?? attachedAdaptors(rec.deltas);
    for (const a of adaptors ?? []) {
      if (!ADAPTOR_KINDS.has(a.kind))
        throw new Error(
          `edit adaptor of kind '${a.kind}' is not registered (import src/editing/methods.js, which registers every method's adaptors)`,
        );
      this.model.checkModule(a.module);
    }
    const record: EditRecord = {
      ...rec,
      ...(adaptors && adaptors.length > 0 ? { adaptors } : {}),
      id: this.nextId++,
      createdAt: rec.createdAt ?? new Date().toISOString(),
    };
    for (const a of record.adaptors ?? []) for (const t of Object.values(a.tensors)) t.keep();
    for (const d of record.deltas) {
      if ("dense" in d) d.dense.keep();
      else {
        d.u.keep();
        d.v.keep();
      }
    }
    torch.noGrad(() =>
      torch.scope(() => {
        for (const d of record.deltas) {
          const p = this.model.param(d.param);
          if (!this.base.has(d.param)) this.base.set(d.param, p.detach().clone().keep());
          p.add_(materialize(d, p.dtype));
        }
      }),
    );
    this.records.push(record);
    if (record.adaptors) this.refreshAdaptors(adaptorKeys([record]));
    return record;
  }

  /** The applied adaptor entries of a (kind, module), in edit order. */
  adaptorEntries(kind: string, module: string): AdaptorEntry[] {
    return this.records.flatMap((r) =>
      (r.adaptors ?? []).filter((a) => a.kind === kind && a.module === module),
    );
  }

  /** Runs fn with the installed adaptor of a (kind, module) removed (a method computing on the bare module). */
  withoutAdaptor<T>(kind: string, module: string, fn: () => T): T {
    const key = `${kind}|${module}`;
    const h = this.installed.get(key);
    if (!h) return fn();
    for (const x of h) x.remove();
    this.installed.delete(key);
    this.model.adaptorDigests.delete(key);
    try {
      return fn();
    } finally {
      this.refreshAdaptors(new Set([key]));
    }
  }

  /** Rebuilds the hooks of the given (kind|module) keys from the applied records. */
  private refreshAdaptors(keys: Set<string>): void {
    for (const key of keys) {
      for (const h of this.installed.get(key) ?? []) h.remove();
      this.installed.delete(key);
      const sep = key.indexOf("|");
      const kind = key.slice(0, sep);
      const module = key.slice(sep + 1);
      const entries = this.adaptorEntries(kind, module);
      if (entries.length === 0) {
        this.model.adaptorDigests.delete(key);
        continue;
      }
      this.model.adaptorDigests.set(key, adaptorDigest(entries));
      const impl = ADAPTOR_KINDS.get(kind) as AdaptorKind;
      const hooks = impl.hooks(this.model, module, entries);
      this.installed.set(
        key,
        hooks.map((h) => this.model.addHook(module, h.where, h.hook)),
      );
    }
  }

  /** Removes an applied edit (any one, by id); the touched parameters are recomputed from base. */
  undo(id: number): void {
    const i = this.records.findIndex((r) => r.id === id);
    if (i < 0)
      throw new Error(
        `undo: no applied edit with id ${id} (applied: ${this.records.map((r) => r.id).join(", ") || "none"})`,
      );
    const [rec] = this.records.splice(i, 1) as [EditRecord];
    this.recompute(new Set(rec.deltas.map((d) => d.param)));
    if (rec.adaptors) this.refreshAdaptors(adaptorKeys([rec]));
    freeDeltas(rec);
  }

  /** Undoes every edit: the model's weights are bit-for-bit the original ones. */
  undoAll(): void {
    const params = new Set(this.records.flatMap((r) => r.deltas.map((d) => d.param)));
    const recs = this.records.splice(0);
    this.recompute(params);
    this.refreshAdaptors(adaptorKeys(recs));
    for (const r of recs) freeDeltas(r);
  }

  private recompute(params: Set<string>): void {
    torch.noGrad(() =>
      torch.scope(() => {
        for (const name of params) {
          const base = this.base.get(name) as Tensor;
          const w = base.clone();
          for (const r of this.records)
            for (const d of r.deltas) if (d.param === name) w.add_(materialize(d, w.dtype));
          this.model.param(name).copy_(w);
        }
      }),
    );
  }

  /** The original value of a parameter (before any journaled edit). */
  original(name: string): Tensor {
    return this.base.get(name) ?? this.model.param(name);
  }

  /** Writes edits.json (requests, hparams, timings, delta shapes and norms) and edits.safetensors (the deltas). */
  save(dir: string): void {
    mkdirSync(dir, { recursive: true });
    const tensors: [string, Tensor][] = [];
    const meta = this.records.map((r) => ({
      id: r.id,
      method: r.method,
      created_at: r.createdAt,
      seconds: r.seconds,
      requests: r.requests,
      hparams: r.hparams,
      info: r.info ?? {},
      deltas: r.deltas.map((d, k) => {
        const key = `edit${r.id}.delta${k}`;
        if ("dense" in d) tensors.push([`${key}.dense`, d.dense]);
        else tensors.push([`${key}.u`, d.u], [`${key}.v`, d.v]);
        const norm = torch.scope(() => materialize(d, "float32").norm().item());
        const kind = "dense" in d ? "dense" : d.u.ndim === 1 ? "rank1" : `rank${d.u.size(1)}`;
        return { param: d.param, kind, shape: deltaShape(d), frobenius_norm: norm, key };
      }),
      ...(r.adaptors
        ? {
            adaptors: r.adaptors.map((a, k) => {
              const names: Record<string, string> = {};
              for (const [n, t] of Object.entries(a.tensors)) {
                names[n] = `edit${r.id}.adaptor${k}.${n}`;
                tensors.push([names[n], t]);
              }
              return { kind: a.kind, module: a.module, meta: a.meta, tensors: names };
            }),
          }
        : {}),
    }));
    writeFileSync(
      join(dir, "edits.json"),
      JSON.stringify({ format: "editeval-journal/1", edits: meta }, null, 2) + "\n",
    );
    if (tensors.length > 0) saveSafetensors(join(dir, "edits.safetensors"), tensors);
  }

  /** Re-applies the edits saved in a directory (edits.json + edits.safetensors) to this journal's model. */
  replay(dir: string): EditRecord[] {
    const meta = JSON.parse(readFileSync(join(dir, "edits.json"), "utf8")) as {
      edits: {
        method: string;
        seconds: number;
        requests: EditRequest[];
        hparams: unknown;
        info: Record<string, unknown>;
        created_at: string;
        deltas: { param: string; kind: string; key: string }[];
        adaptors?: {
          kind: string;
          module: string;
          meta: Record<string, unknown>;
          tensors: Record<string, string>;
        }[];
      }[];
    };
    const tensors =
      meta.edits.length && existsSync(join(dir, "edits.safetensors"))
        ? loadSafetensors(join(dir, "edits.safetensors"))
        : new Map<string, Tensor>();
    const get = (k: string) => {
      const t = tensors.get(k);
      if (!t) throw new Error(`${join(dir, "edits.safetensors")}: missing tensor '${k}'`);
      return t;
    };
    const out = meta.edits.map((e) =>
      this.apply({
        method: e.method,
        requests: e.requests,
        hparams: e.hparams,
        seconds: e.seconds,
        info: e.info,
        createdAt: e.created_at,
        deltas: e.deltas.map((d) =>
          d.kind === "dense"
            ? { param: d.param, dense: get(`${d.key}.dense`) }
            : { param: d.param, u: get(`${d.key}.u`), v: get(`${d.key}.v`) },
        ),
        ...(e.adaptors
          ? {
              adaptors: e.adaptors.map((a) => ({
                kind: a.kind,
                module: a.module,
                meta: a.meta,
                tensors: Object.fromEntries(Object.entries(a.tensors).map(([n, k]) => [n, get(k)])),
              })),
            }
          : {}),
      }),
    );
    return out;
  }

  /**
   * Frees the journal's tensors (base copies and deltas); the model keeps its current weights, and loses
   * its adaptor hooks (their tensors are freed).
   */
  free(): void {
    for (const hs of this.installed.values()) for (const h of hs) h.remove();
    for (const key of this.installed.keys()) this.model.adaptorDigests.delete(key);
    this.installed.clear();
    for (const r of this.records) freeDeltas(r);
    this.records.length = 0;
    for (const t of this.base.values()) t.free();
    this.base.clear();
  }
}

function adaptorKeys(recs: EditRecord[]): Set<string> {
  return new Set(recs.flatMap((r) => (r.adaptors ?? []).map((a) => `${a.kind}|${a.module}`)));
}

function freeDeltas(r: EditRecord): void {
  for (const a of r.adaptors ?? []) for (const t of Object.values(a.tensors)) t.free();
  for (const d of r.deltas) {
    if ("dense" in d) d.dense.free();
    else {
      d.u.free();
      d.v.free();
    }
  }
}

/**
 * Deltas added to the live weights for the duration of a computation (a method's later layers see its
 * earlier layers' updates, as the references' execute_* functions do), then removed by restoring each
 * weight's saved copy: the model ends bit for bit as it started, whether the computation succeeded or not.
 */
export class TemporaryEdits {
  private readonly saved: [Tensor, Tensor][] = [];

  constructor(private readonly model: CausalLM) {}

  /** Adds a delta to its parameter (saving the parameter's value the first time it is touched). */
  add(d: ParamDelta): void {
    const w = this.model.param(d.param);
    if (!this.saved.some(([t]) => t === w)) this.saved.push([w, w.detach().clone().keep()]);
    torch.noGrad(() => torch.scope(() => w.add_(materialize(d, w.dtype))));
  }

  /** Restores every touched parameter. */
  restore(): void {
    torch.noGrad(() => {
      for (const [w, copy] of this.saved.reverse()) {
        w.copy_(copy);
        copy.free();
      }
    });
    this.saved.length = 0;
  }
}

/** A digest of adaptor entries (their metadata and tensor bytes, in order), for the model's fingerprint. */
function adaptorDigest(entries: AdaptorEntry[]): string {
  const h = createHash("sha256");
  for (const e of entries) {
    h.update(JSON.stringify(e.meta));
    for (const name of Object.keys(e.tensors).sort()) {
      const t = e.tensors[name] as Tensor;
      h.update(`${name}|${t.dtype}|${t.shape.join("x")}|`);
      h.update(t.toBytes());
    }
  }
  return h.digest("hex").slice(0, 16);
}
