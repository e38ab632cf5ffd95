/**
 * The editor: applies editing methods to a loaded model, one request after another (sequential) or as
 * a batch, recording every edit in the journal. It owns the per-session caches the methods share: the
 * second-moment statistics of each edited module (computed once, on the model as it was when first
 * needed, as the reference implementations cache them) and the context templates.
 */
import { Tensor } from "../torch/index.js";
import type { CausalLM } from "../models/model.js";
import type { Tokenizer } from "../models/tokenizer/index.js";
import { EditJournal, type EditRecord, type ParamDelta } from "./journal.js";
import { layerSecondMoment, loadStatsFile, type SecondMoment } from "./stats.js";
import { normalizeRequest, type EditRequest } from "./request.js";
import { moduleAt, type Schema } from "./hparams.js";

export interface EditContext {
  model: CausalLM;
  tok: Tokenizer;
  /** E[k k^T] of a module's input (cached; a user file from `statsFiles` takes precedence) */
  stats(module: string, opts: { nSamples: number; dtype: "float32" | "float64" }): SecondMoment;
  /** per-session cache for a method's own reusable values (context templates, projections, ...) */
  cache: Map<string, unknown>;
  journal: EditJournal;
  log: (msg: string) => void;
}

export interface EditResult {
  deltas: ParamDelta[];
  info?: Record<string, unknown>;
}

export interface EditMethod<H> {
  readonly name: string;
  readonly schema: Schema;
  /** hparams from a raw object (EasyEdit YAML), with the model's defaults for what is left out */
  parseHparams(raw: Record<string, unknown>, where: string, model: CausalLM): H;
  /** Computes the deltas for a batch of requests on the current model, leaving the model unchanged. */
  compute(ctx: EditContext, requests: EditRequest[], hparams: H): EditResult;
  /** largest batch the method accepts (1 for ROME) */
  readonly maxBatch: number;
}

export interface EditorOptions {
  /** statistics files per module (ROME .npz or safetensors), instead of computing them */
  statsFiles?: Record<string, string>;
  /** one file for every module (e.g. --stats FILE with a single edited layer) */
  statsFile?: string;
  corpus?: string;
  log?: (msg: string) => void;
}

export class Editor {
  readonly journal: EditJournal;
  private readonly statsCache = new Map<string, SecondMoment>();
  readonly cache = new Map<string, unknown>();

  constructor(
    readonly model: CausalLM,
    readonly tok: Tokenizer,
    readonly opts: EditorOptions = {},
  ) {
    this.journal = new EditJournal(model);
  }

  /** The context handed to methods (public for tests and tools that call method steps directly). */
  context(): EditContext {
    return {
      model: this.model,
      tok: this.tok,
      journal: this.journal,
      cache: this.cache,
      log: this.opts.log ?? ((m) => process.stderr.write(m + "\n")),
      stats: (module, o) => {
        const key = `${module}|${o.nSamples}|${o.dtype}`;
        let s = this.statsCache.get(key);
        if (!s) {
          const file = this.opts.statsFiles?.[module] ?? this.opts.statsFile;
          const dim = this.inputDim(module);
          if (file) s = loadStatsFile(file, dim);
          else
            s = layerSecondMoment(this.model, this.tok, module, {
              nSamples: o.nSamples,
              dtype: o.dtype,
              corpus: this.opts.corpus,
            });
          s.mom2.keep();
          if (s.mom2.size(0) !== dim)
            throw new Error(
              `statistics of ${module} (${s.source}) are [${s.mom2.shape.join(", ")}], the module's input has ${dim} features`,
            );
          this.statsCache.set(key, s);
        }
        return s;
      },
    };
  }

  /** The input size of a linear/Conv1D module, from its weight. */
  inputDim(module: string): number {
    const w = this.model.param(`${module}.weight`);
    return this.model.config.modelType === "gpt2" ? w.size(0) : w.size(1);
  }

  /**
   * Edits the model: requests are split into batches of the method's maximum size and applied in order,
   * each batch computed on the model as the previous ones left it (sequential editing). Returns the
   * journal records. A failure (NaN during optimisation, a bad request) leaves the model as it was
   * before the failing batch.
   */
  edit<H>(
    method: EditMethod<H>,
    requests: EditRequest[],
    hparams: H,
    opts: { batchSize?: number } = {},
  ): EditRecord[] {
    const reqs = requests.map((r, i) => normalizeRequest(r, `request ${i}`));
    const bs = Math.min(opts.batchSize ?? method.maxBatch, method.maxBatch);
    const out: EditRecord[] = [];
    for (let i = 0; i < reqs.length; i += bs) {
      const batch = reqs.slice(i, i + bs);
      const t0 = performance.now();
      const { deltas, info } = method.compute(this.context(), batch, hparams);
      out.push(
        this.journal.apply({
          method: method.name,
          requests: batch,
          hparams,
          deltas,
          seconds: (performance.now() - t0) / 1000,
          info,
        }),
      );
    }
    return out;
  }

  /**
   * Loads, on the model as it is now, the statistics that a method with these hparams will ask for
   * (ROME/MEMIT/PMET/AlphaEdit/EMMET: `layers`, `rewrite_module_tmp`, `mom2_n_samples`, `mom2_dtype`).
   * An experiment calls it on the unedited model, so that a run resumed on a replayed (edited) model
   * uses the same statistics as the uninterrupted run. Hparams without statistics are ignored.
   */
  primeStats(hparams: unknown): void {
    const h = hparams as Partial<{
      layers: number[];
      rewrite_module_tmp: string;
      mom2_n_samples: number;
      mom2_dtype: string;
      mom2_adjustment: boolean;
    }>;
    if (!Array.isArray(h.layers) || typeof h.rewrite_module_tmp !== "string") return;
    if (typeof h.mom2_n_samples !== "number" || h.mom2_adjustment === false) return;
    const ctx = this.context();
    for (const l of h.layers)
      ctx.stats(moduleAt(h.rewrite_module_tmp, l), {
        nSamples: h.mom2_n_samples,
        dtype: (h.mom2_dtype ?? "float32") as "float32" | "float64",
      });
  }

  /**
   * Method state that later edits depend on (cache entries named `state:...`, e.g. AlphaEdit's
   * accumulated K K^T of earlier edits), for saving next to the journal; `importState` restores it.
   */
  exportState(): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    for (const [k, v] of this.cache) if (k.startsWith("state:") && v instanceof Tensor) out.push([k, v]);
    return out;
  }

  importState(entries: Iterable<[string, Tensor]>): void {
    for (const [k, t] of entries) {
      if (!k.startsWith("state:")) throw new Error(`editor state: '${k}' is not a state entry`);
      const old = this.cache.get(k);
      if (old instanceof Tensor) old.free();
      this.cache.set(k, t.clone().keep());
    }
  }

  free(): void {
    for (const s of this.statsCache.values()) s.mom2.free();
    this.statsCache.clear();
    for (const v of this.cache.values()) if (v && typeof v === "object" && "free" in v) (v as Tensor).free();
    this.cache.clear();
    this.journal.free();
  }
}
