/**
 * CausalLM: one loaded model. Parameters live in a Map under their Hugging Face names; the forward pass
 * of each architecture (src/models/<arch>.ts) reads them by name and runs every named module through
 * `module(name, input, fn)`, which is where tracing and patching hooks attach. Editing methods change
 * parameters in place (through src/editing's journal); nobody copies the weights.
 */
import * as torch from "../torch/index.js";
import type { Tensor } from "../torch/index.js";
import { KVCache } from "./layers.js";
import type { ModelConfig } from "./config.js";

/** The modules whose output is the logits, by family (GPT-NeoX: embed_out; the others: lm_head). */
export const LOGITS_MODULES = ["lm_head", "embed_out"];

export interface ForwardInputs {
  /** token ids [B, T] (int64) */
  inputIds: Tensor;
  /** 1 for real tokens, 0 for padding, over past + new positions [B, Tpast + T] */
  attentionMask?: Tensor | null;
  /** positions [B, T]; default past .. past + T - 1 (transformers' forward); see positionsFromMask for left padding */
  positionIds?: Tensor | null;
  /** a cache to read past keys/values from and append the new ones to */
  cache?: KVCache | null;
  /** also return the hidden states (embedding output, each block's output, final-norm output) */
  outputHiddenStates?: boolean;
  /** compute logits only for the last position (generation) */
  lastOnly?: boolean;
  /**
   * compute logits only at these (row, position) pairs (int64 [N] each): the logits are [1, N, V]. For
   * losses that read a few positions of long prompts (the value optimisation of ROME and MEMIT): the
   * vocabulary projection of the other positions is skipped (the same values as those rows of the full
   * logits up to the BLAS's rounding for another matrix shape; tests compare). With a hook on the
   * projection every position is projected and the pairs picked afterwards.
   */
  logitsAt?: { rows: Tensor; positions: Tensor } | null;
  /**
   * token ids of the positions already in the cache ([B, Tpast], or [1, Tpast] shared by every row),
   * aligned with the attention mask's first Tpast columns. The architectures ignore it; a model-level
   * hook that answers from whole sequences (see `activeForwards`) reads it. generate() passes it.
   */
  pastIds?: Tensor | null;
  /**
   * Start at block `layer` with its input given (`hidden` [B, T, d], what that block received in an
   * earlier forward of the same inputs): the blocks before it are skipped. For optimisations that change
   * nothing below a layer (ROME's and MEMIT's value optimisation) and re-run the same prompts at every
   * step; the result is bit-identical to the full forward. Not with a cache or outputHiddenStates.
   */
  resumeAt?: { layer: number; hidden: Tensor } | null;
  /**
   * Keep block `layer`'s input (before any hook on that block) in `hidden`: what resumeAt takes later.
   * The tensor is detached and kept (outlives the forward): the caller frees it.
   */
  captureAt?: { layer: number; hidden: Tensor | null } | null;
}

export interface ForwardOutput {
  /** [B, T, V] (or [B, 1, V] with lastOnly, [1, N, V] with logitsAt) */
  logits: Tensor;
  /** transformers' output_hidden_states: L + 1 tensors [B, T, d]; [L] is after the final norm */
  hiddenStates?: Tensor[];
}

/** A hook sees a module's input or output; returning a tensor replaces it (gradients flow through). */
export type Hook = (value: Tensor, module: string) => Tensor | void;

/**
 * A module wrapper as an input hook and an output hook: the output hook's function sees the module's
 * input of the same call too (GRACE's codebook, WISE's memory, MELO's blocks key on it). The function
 * returns the replaced output, or nothing to keep it.
 */
export function wrapModuleHooks(
  fn: (input: Tensor, output: Tensor) => Tensor | void,
): { where: "input" | "output"; hook: Hook }[] {
  let x: Tensor | null = null;
  return [
    { where: "input", hook: (v) => void (x = v) },
    {
      where: "output",
      hook: (y) => {
        const inp = x as Tensor;
        x = null;
        return fn(inp, y);
      },
    },
  ];
}

export interface HookHandle {
  remove(): void;
}

/** Everything an architecture implements. */
export interface Architecture {
  readonly modelType: string;
  /** Parameter names and shapes the config implies, in a stable order. */
  parameterShapes(cfg: ModelConfig): Map<string, number[]>;
  /** Parameters that are tied to another (name -> source), when the config ties them. */
  tiedParameters(cfg: ModelConfig): Map<string, string>;
  /** Names of modules whose input/output can be traced, for one layer (with {} for the layer index) and globally. */
  moduleNames(cfg: ModelConfig): { perLayer: string[]; global: string[] };
  /** Parameter names stored in a checkpoint that carry no weights (buffers), ignored when loading. */
  ignoredCheckpointKeys: RegExp[];
  forward(model: CausalLM, inputs: ForwardInputs): ForwardOutput;
}

export class CausalLM {
  readonly hooks = new Map<string, { input: Hook[]; output: Hook[] }>();
  /**
   * Digests of installed edit adaptors (hook-based edits such as GRACE's codebook) by "kind|module",
   * kept by the edit journal: part of the model's fingerprint, since they change what it computes.
   */
  readonly adaptorDigests = new Map<string, string>();
  /**
   * The inputs of the forward passes under way, innermost last: a hook on the logits module reads the
   * whole input of its pass here (token ids, mask, cache, pastIds), e.g. to answer a sequence with another
   * model (SERAC's router, IKE's prompt).
   */
  readonly activeForwards: ForwardInputs[] = [];
  private knownModules: Set<string> | null = null;

  constructor(
    readonly config: ModelConfig,
    readonly arch: Architecture,
    /** parameters by Hugging Face name (tied ones appear under both names, sharing one tensor) */
    readonly params: Map<string, Tensor>,
    /** where it was loaded from, if anywhere */
    readonly source: string | null = null,
  ) {}

  get dtype(): torch.DType {
    const first = this.params.values().next().value as Tensor | undefined;
    return first ? first.dtype : "float32";
  }
  get device(): string {
    const first = this.params.values().next().value as Tensor | undefined;
    return first ? first.device : "cpu";
  }
  get numLayers(): number {
    return this.config.numLayers;
  }

  /** A parameter by its Hugging Face name; the error lists near names. */
  param(name: string): Tensor {
    const t = this.params.get(name);
    if (t === undefined) {
      const stem = name.split(".").slice(0, -1).join(".");
      const near = [...this.params.keys()].filter((k) => k.startsWith(stem)).slice(0, 6);
      throw new Error(
        `${this.config.modelType} model has no parameter '${name}'` +
          (near.length ? ` (near: ${near.join(", ")})` : ""),
      );
    }
    return t;
  }

  /** Unique parameters (tied names counted once), as [name, tensor]. */
  uniqueParameters(): [string, Tensor][] {
    const seen = new Set<Tensor>();
    const out: [string, Tensor][] = [];
    for (const [k, t] of this.params) {
      if (seen.has(t)) continue;
      seen.add(t);
      out.push([k, t]);
    }
    return out;
  }

  numParameters(): number {
    return this.uniqueParameters().reduce((s, [, t]) => s + t.numel(), 0);
  }

  /** Every traceable module name of this model (e.g. transformer.h.5.mlp.c_proj). */
  moduleNames(): Set<string> {
    if (this.knownModules === null) {
      const { perLayer, global } = this.arch.moduleNames(this.config);
      const names = new Set<string>(global);
      for (let l = 0; l < this.config.numLayers; l++)
        for (const p of perLayer) names.add(p.replace("{}", String(l)));
      this.knownModules = names;
    }
    return this.knownModules;
  }

  /** Throws a clear error when a module name does not exist in this model. */
  checkModule(name: string): void {
    if (this.moduleNames().has(name)) return;
    const layerMatch = /\.(\d+)\./.exec(name);
    if (layerMatch && Number(layerMatch[1]) >= this.config.numLayers)
      throw new Error(
        `module '${name}': layer ${layerMatch[1]} is out of range (the model has ${this.config.numLayers} layers, 0..${this.config.numLayers - 1})`,
      );
    const { perLayer, global } = this.arch.moduleNames(this.config);
    throw new Error(
      `module '${name}' does not exist in this ${this.config.modelType} model; modules are ${global.join(", ")} and, per layer, ${perLayer.join(", ")}`,
    );
  }

  /** Registers a hook on a module's input or output; returns a handle to remove it. */
  addHook(module: string, where: "input" | "output", hook: Hook): HookHandle {
    this.checkModule(module);
    let h = this.hooks.get(module);
    if (!h) {
      h = { input: [], output: [] };
      this.hooks.set(module, h);
    }
    h[where].push(hook);
    return {
      remove: () => {
        const e = this.hooks.get(module);
        if (!e) return;
        const i = e[where].indexOf(hook);
        if (i >= 0) e[where].splice(i, 1);
        if (e.input.length === 0 && e.output.length === 0) this.hooks.delete(module);
      },
    };
  }

  /** Runs fn with hooks registered, removing them afterwards (also on errors). */
  withHooks<T>(hooks: { module: string; where: "input" | "output"; hook: Hook }[], fn: () => T): T {
    const handles = hooks.map((h) => this.addHook(h.module, h.where, h.hook));
    try {
      return fn();
    } finally {
      for (const h of handles) h.remove();
    }
  }

  /**
   * Runs a named module: input hooks, fn, output hooks. Architectures call this for every module
   * whose input or output an editing method may read or change.
   */
  module(name: string, input: Tensor, fn: (x: Tensor) => Tensor): Tensor {
    const h = this.hooks.get(name);
    if (h === undefined) return fn(input);
    let x = input;
    for (const hook of h.input) {
      const r = hook(x, name);
      if (r) x = r;
    }
    let y = fn(x);
    for (const hook of h.output) {
      const r = hook(y, name);
      if (r) y = r;
    }
    return y;
  }

  /**
   * Runs one block as a module inside its own scope, so the block's intermediate tensors are freed as
   * soon as it returns (memory is reused from layer to layer instead of growing with depth; autograd
   * keeps what backward needs by itself).
   */
  block(name: string, input: Tensor, fn: (x: Tensor) => Tensor): Tensor {
    const inputs = this.activeForwards[this.activeForwards.length - 1];
    const resume = inputs?.resumeAt;
    if (resume) {
      const layer = blockIndex(name);
      if (layer < resume.layer) return input; // skipped: the resumed block's input replaces its output
      if (layer === resume.layer) input = resume.hidden;
    }
    const capture = inputs?.captureAt;
    if (capture && capture.hidden === null && blockIndex(name) === capture.layer)
      capture.hidden = torch.noGrad(() => input.detach().clone().keep());
    return torch.scope(() => this.module(name, input, fn));
  }

  /**
   * The forward pass. Intermediate tensors are freed when it returns; the logits and hidden states
   * move to the caller's scope. Tensors a hook wants to keep past the call must be keep()-ed.
   */
  forward(inputs: ForwardInputs): ForwardOutput {
    if (inputs.inputIds.ndim !== 2)
      throw new Error(
        `forward: inputIds must be [batch, tokens], got shape [${inputs.inputIds.shape.join(", ")}]`,
      );
    if (inputs.resumeAt) {
      const { layer, hidden } = inputs.resumeAt;
      if (inputs.cache || inputs.outputHiddenStates)
        throw new Error("forward: resumeAt cannot be combined with a cache or outputHiddenStates");
      if (!Number.isInteger(layer) || layer < 0 || layer >= this.config.numLayers)
        throw new Error(
          `forward: resumeAt.layer ${layer} is not a layer of this ${this.config.numLayers}-layer model`,
        );
      const [b, t] = inputs.inputIds.shape as [number, number];
      if (
        hidden.ndim !== 3 ||
        hidden.size(0) !== b ||
        hidden.size(1) !== t ||
        hidden.size(2) !== this.config.hiddenSize
      )
        throw new Error(
          `forward: resumeAt.hidden has shape [${hidden.shape.join(", ")}], expected [${b}, ${t}, ${this.config.hiddenSize}]`,
        );
    }
    if (inputs.logitsAt && LOGITS_MODULES.some((m) => this.hooks.has(m))) {
      // a hook on the vocabulary projection (SERAC's, IKE's router) reads whole sequences: project every
      // position and pick the pairs afterwards
      const { rows, positions } = inputs.logitsAt;
      const out = this.forward({ ...inputs, logitsAt: null });
      return { ...out, logits: out.logits.index(rows, positions).unsqueeze(0) };
    }
    this.activeForwards.push(inputs);
    try {
      return torch.scope(() => this.arch.forward(this, inputs));
    } finally {
      this.activeForwards.pop();
    }
  }

  /** Logits [B, T, V] of token ids (a convenience for forward()). */
  logits(ids: number[][] | Tensor, attentionMask?: Tensor): Tensor {
    const inputIds = ids instanceof torch.Tensor ? ids : torch.tensor(ids, { dtype: "int64" });
    return torch.scope(() => this.forward({ inputIds, attentionMask: attentionMask ?? null }).logits);
  }

  newCache(): KVCache {
    return new KVCache(this.config.numLayers);
  }

  /** Frees every parameter. The model is unusable afterwards. */
  free(): void {
    for (const [, t] of this.uniqueParameters()) t.free();
    this.params.clear();
  }
}

/**
 * Default position ids, as transformers' forward() uses them when none are given: past .. past + T - 1
 * for every row, whatever the attention mask (a left-padded batch needs positionsFromMask, as generate()
 * passes it).
 */
export function defaultPositionIds(
  batch: number,
  queryLen: number,
  pastLen: number,
  _attentionMask: Tensor | null,
): Tensor {
  return torch
    .arange(pastLen, pastLen + queryLen)
    .unsqueeze(0)
    .expand(batch, queryLen);
}

/**
 * Positions of a (left-)padded batch, transformers' generate() rule: cumsum(mask) - 1 with padding
 * positions set to 1, taken over the new positions past .. past + T - 1.
 */
export function positionsFromMask(attentionMask: Tensor, pastLen: number, queryLen: number): Tensor {
  const m = attentionMask.to("int64");
  const pos = m.cumsum(-1).sub(1).maskedFill(m.eq(0), 1);
  return pos.narrow(1, pastLen, queryLen);
}

/** The layer index of a block name ("transformer.h.7", "model.layers.7"): its last number. */
export function blockIndex(name: string): number {
  const m = /\.(\d+)$/.exec(name);
  if (!m) throw new Error(`blockIndex: ${JSON.stringify(name)} does not end with a layer number`);
  return Number(m[1]);
}

/** What the vocabulary projection reads: every position, the last one (lastOnly) or the selected ones (logitsAt). */
export function headInput(h: Tensor, inp: ForwardInputs): Tensor {
  if (inp.logitsAt) return h.index(inp.logitsAt.rows, inp.logitsAt.positions).unsqueeze(0);
  return inp.lastOnly ? h.narrow(1, h.size(1) - 1, 1) : h;
}
