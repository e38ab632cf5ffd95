/**
 * LoRA fine-tuning as EasyEdit runs it (easyeditor/models/lora/lora_main.py, with peft's adapters):
 * low-rank adapters on the `target_modules` of `layers` (all layers when empty), trained with Adam for
 * `num_steps` epochs over the requests (in chunks of `batch_size`, one step per chunk, no early stop) on
 * the teacher-forced NLL of the target (./loss.ts), then merged into the weights. The merged change of
 * each module is a rank-r delta, recorded as factors u v^T in the weight's own layout.
 *
 *  - lora_type "lora" (peft LoraLayer): y = W x + s * B A dropout(x), A [r, in] ~ U(-1/sqrt(in), 1/sqrt(in))
 *    (kaiming_uniform_ with a = sqrt(5)), B [out, r] = 0, s = lora_alpha / rank. Merged: W += s B A.
 *  - lora_type "adalora" (peft AdaLoraLayer, the type every EasyEdit LoRA file names): the SVD-form
 *    y = W x + (alpha / (r + 1e-5)) * B (A * E) dropout(x) with r = init_r (12: AdaLoRA uses `init_r`, not
 *    `rank`), A, B ~ N(0, 0.02), E = 0 [r, 1]; the loss gains orth_reg_weight * mean over the A's and B's of
 *    ||A A^T - I||_F and ||B^T B - I||_F. EasyEdit never calls update_and_allocate, so no rank is pruned.
 *    (Current peft also demands `total_step`, which EasyEdit does not pass; the peft that EasyEdit pins
 *    did not.)
 *
 * Differences from EasyEdit, each deliberate:
 *  - each edit trains fresh adapters on the model as it is and merges them (a journal delta per edit);
 *    EasyEdit's sequential mode keeps training one unmerged adapter across edits;
 *  - dropout (lora_dropout) draws from a generator seeded with `seed` at every edit, so an edit is
 *    reproducible; set lora_dropout 0 to train without it;
 *  - the prompt and the spaced target are tokenised separately and concatenated (EasyEdit tokenises
 *    "prompt target" whole; identical for GPT-2's byte-level BPE).
 * `kl_factor` and `norm_constraint` are read for EasyEdit files and unused, as in EasyEdit.
 */
import * as torch from "../../torch/index.js";
import type { Tensor } from "../../torch/index.js";
import type { CausalLM, Hook } from "../../models/model.js";
import type { ModelType } from "../../models/config.js";
import type { EditContext, EditMethod, EditResult } from "../editor.js";
import type { EditRequest } from "../request.js";
import { HparamsError, parseHparams, type Schema } from "../hparams.js";
import { targetNll, targetTokens } from "./loss.js";

export interface LoraHparams {
  lora_type: "lora" | "adalora";
  layers: number[];
  num_steps: number;
  lr: number;
  weight_decay: number;
  kl_factor: number;
  norm_constraint: number | false;
  target_modules: string[];
  rank: number;
  lora_alpha: number;
  lora_dropout: number;
  batch_size: number;
  init_r: number;
  orth_reg_weight: number;
  seed: number;
}

/** Defaults: EasyEdit hparams/LoRA/gpt2-xl.yaml; init_r and orth_reg_weight are peft's AdaLoraConfig defaults. */
export const LORA_SCHEMA: Schema = {
  lora_type: { type: "string", default: "adalora", doc: "lora or adalora (EasyEdit's files: adalora)" },
  layers: { type: "int[]", default: [], doc: "layers whose target modules get adapters ([]: all)" },
  num_steps: { type: "int", default: 30, doc: "epochs over the requests (one Adam step per batch)" },
  lr: { type: "number", default: 5e-3, doc: "Adam learning rate" },
  weight_decay: { type: "number", default: 0, doc: "Adam (L2) weight decay" },
  kl_factor: { type: "number", default: 0, doc: "read for EasyEdit files; unused (as in EasyEdit)" },
  norm_constraint: {
    type: "number",
    default: false,
    doc: "read for EasyEdit files; unused (as in EasyEdit)",
  },
  target_modules: {
    type: "string[]",
    default: [],
    doc: "module name suffixes (peft target_modules); [] = the architecture's EasyEdit choice",
  },
  rank: { type: "int", default: 8, doc: "LoRA rank r (lora); AdaLoRA uses init_r" },
  lora_alpha: {
    type: "number",
    default: 32,
    doc: "scaling numerator (lora: alpha / r; adalora: alpha / init_r)",
  },
  lora_dropout: { type: "number", default: 0.1, doc: "dropout on the adapter's input (seeded)" },
  batch_size: { type: "int", default: 1, doc: "requests per optimisation step" },
  init_r: { type: "int", default: 12, doc: "AdaLoRA's rank (peft AdaLoraConfig.init_r)" },
  orth_reg_weight: { type: "number", default: 0.5, doc: "AdaLoRA's orthogonal regularisation weight" },
  seed: {
    type: "int",
    default: 42,
    doc: "seed of the adapter initialisation and dropout (EasyEdit seeds 42)",
  },
};

/** EasyEdit's target_modules per architecture (hparams/LoRA/{gpt2-xl,gpt-j-6B,llama-7b}.yaml; peft's for GPT-NeoX). */
const DEFAULT_TARGETS: Record<ModelType, string[]> = {
  gpt2: ["c_attn"],
  gptj: ["fc_in", "fc_out"],
  gpt_neox: ["query_key_value"],
  llama: ["q_proj", "v_proj"],
  mistral: ["q_proj", "v_proj"],
  qwen2: ["q_proj", "v_proj"],
};

function parse(raw: Record<string, unknown>, where: string, model: CausalLM): LoraHparams {
  const nc = raw.norm_constraint;
  const rest = { ...raw };
  delete rest.norm_constraint;
  const h = parseHparams<LoraHparams>(LORA_SCHEMA, rest, where, "LoRA");
  if (nc === false || nc === undefined) h.norm_constraint = false;
  else if (typeof nc === "number") h.norm_constraint = nc;
  else throw new HparamsError(`${where}: LoRA hyper-parameter 'norm_constraint' must be a number or false`);
  if (h.lora_type !== "lora" && h.lora_type !== "adalora")
    throw new HparamsError(
      `${where}: lora_type must be "lora" or "adalora", got ${JSON.stringify(h.lora_type)}`,
    );
  if (h.rank < 1 || h.init_r < 1) throw new HparamsError(`${where}: rank and init_r must be >= 1`);
  if (!(h.lora_dropout >= 0 && h.lora_dropout < 1))
    throw new HparamsError(`${where}: lora_dropout must be in [0, 1), got ${h.lora_dropout}`);
  if (h.batch_size < 1) throw new HparamsError(`${where}: batch_size must be >= 1`);
  if (h.target_modules.length === 0) h.target_modules = [...DEFAULT_TARGETS[model.config.modelType]];
  for (const l of h.layers)
    if (l < 0 || l >= model.config.numLayers)
      throw new HparamsError(`${where}: layer ${l} is out of range (0..${model.config.numLayers - 1})`);
  loraModules(model, h, where);
  return h;
}

/**
 * The modules that get adapters: every module with a 2-D weight whose name equals a target or ends with
 * "." + target (peft's suffix match), restricted to `layers` (the first ".<n>." of the name, as peft's
 * layers_to_transform) when given.
 */
export function loraModules(
  model: CausalLM,
  h: Pick<LoraHparams, "target_modules" | "layers">,
  where = "LoRA",
): string[] {
  const out: string[] = [];
  for (const m of model.moduleNames()) {
    if (!h.target_modules.some((t) => m === t || m.endsWith("." + t))) continue;
    const w = model.params.get(`${m}.weight`);
    if (!w || w.ndim !== 2) continue;
    if (h.layers.length > 0) {
      const l = /\.(\d+)\./.exec(m);
      if (!l || !h.layers.includes(Number(l[1]))) continue;
    }
    out.push(m);
  }
  if (out.length === 0)
    throw new HparamsError(
      `${where}: no module matches target_modules ${JSON.stringify(h.target_modules)}` +
        (h.layers.length ? ` in layers ${JSON.stringify(h.layers)}` : "") +
        ` (linear modules of layer 0: ${[...model.moduleNames()].filter((m) => /\.0\./.test(m) && model.params.get(`${m}.weight`)?.ndim === 2).join(", ")})`,
    );
  return out.sort((a, b) => a.localeCompare(b, "en", { numeric: true }));
}

/** One module's adapter: A [r, in], B [out, r] (and E [r, 1] for AdaLoRA). */
export interface Adapter {
  module: string;
  A: Tensor;
  B: Tensor;
  E: Tensor | null;
  scaling: number;
}

/** The weight layout of a module: GPT-2's Conv1D stores [in, out], linear layers [out, in]. */
function inOut(model: CausalLM, module: string): { fin: number; fout: number; conv1d: boolean } {
  const w = model.param(`${module}.weight`);
  const conv1d = model.config.modelType === "gpt2";
  return conv1d ? { fin: w.size(0), fout: w.size(1), conv1d } : { fin: w.size(1), fout: w.size(0), conv1d };
}

export function initAdapter(model: CausalLM, module: string, h: LoraHparams, gen: torch.Generator): Adapter {
  const { fin, fout } = inOut(model, module);
  const dtype = model.param(`${module}.weight`).dtype;
  if (h.lora_type === "lora") {
    const bound = 1 / Math.sqrt(fin);
    const A = torch
      .rand([h.rank, fin], { generator: gen })
      .mul(2 * bound)
      .sub(bound)
      .to(dtype);
    const B = torch.zeros([fout, h.rank], { dtype });
    return { module, A, B, E: null, scaling: h.lora_alpha / h.rank };
  }
  const r = h.init_r;
  const A = torch.randn([r, fin], { generator: gen }).mul(0.02).to(dtype);
  const B = torch.randn([fout, r], { generator: gen }).mul(0.02).to(dtype);
  const E = torch.zeros([r, 1], { dtype });
  return { module, A, B, E, scaling: (h.lora_alpha > 0 ? h.lora_alpha : r) / (r + 1e-5) };
}

/** A's effective value (A for LoRA, A * E for AdaLoRA). */
function effA(a: Adapter): Tensor {
  return a.E ? a.A.mul(a.E) : a.A;
}

/** The merged change of the weight, in math orientation [out, in]: s * B A_eff. */
export function adapterDelta(a: Adapter): Tensor {
  return a.B.matmul(effA(a)).mul(a.scaling);
}

/** The journal delta (rank-r factors in the weight's layout) of an adapter. */
export function adapterParamDelta(
  model: CausalLM,
  a: Adapter,
  keep = false,
): { param: string; u: Tensor; v: Tensor } {
  const { conv1d } = inOut(model, a.module);
  let u = a.B.detach().mul(a.scaling); // [out, r]
  let v = effA(a).detach().T.contiguous(); // [in, r]
  if (keep) {
    u = u.keep();
    v = v.keep();
  }
  return conv1d ? { param: `${a.module}.weight`, u: v, v: u } : { param: `${a.module}.weight`, u, v };
}

/** Hooks adding the adapter's output s * B A_eff dropout(x) to the module's output. */
export function adapterHooks(
  a: Adapter,
  dropout: number,
  gen: torch.Generator,
): { module: string; where: "input" | "output"; hook: Hook }[] {
  let x: Tensor | null = null;
  return [
    { module: a.module, where: "input", hook: (v) => void (x = v) },
    {
      module: a.module,
      where: "output",
      hook: (y) => {
        let inp = x as Tensor;
        x = null;
        if (dropout > 0)
          inp = inp.mul(torch.rand(inp.shape, { generator: gen }).ge(dropout).to(inp.dtype)).div(1 - dropout);
        return y.add(inp.matmul(effA(a).T).matmul(a.B.T).mul(a.scaling));
      },
    },
  ];
}

/** AdaLoRA's orthogonal regularisation: mean over A's and B's of ||P P^T - I||_F (A) and ||B^T B - I||_F (B). */
function orthReg(adapters: Adapter[]): Tensor {
  const terms: Tensor[] = [];
  for (const a of adapters) {
    const ca = a.A.matmul(a.A.T);
    terms.push(ca.sub(torch.eye(ca.size(0), ca.size(1), { dtype: ca.dtype })).norm());
    const cb = a.B.T.matmul(a.B);
    terms.push(cb.sub(torch.eye(cb.size(0), cb.size(1), { dtype: cb.dtype })).norm());
  }
  return torch.stack(terms).sum().div(terms.length);
}

export const lora: EditMethod<LoraHparams> = {
  name: "LoRA",
  schema: LORA_SCHEMA,
  maxBatch: Number.MAX_SAFE_INTEGER,
  parseHparams: parse,
  compute(ctx: EditContext, requests: EditRequest[], h: LoraHparams): EditResult {
    const { model, tok } = ctx;
    const modules = loraModules(model, h);
    const gen = new torch.Generator(h.seed);
    const adapters = modules.map((m) => initAdapter(model, m, h, gen));
    const params = adapters.flatMap((a) => (a.E ? [a.A, a.B, a.E] : [a.A, a.B]));
    for (const p of params) p.keep().requiresGrad_(true);
    const opt = new torch.optim.Adam(params, { lr: h.lr, weightDecay: h.weight_decay });
    const items = requests.map((r) => targetTokens(tok, r));
    const losses: number[] = [];
    try {
      model.withHooks(
        adapters.flatMap((a) => adapterHooks(a, h.lora_dropout, gen)),
        () => {
          for (let step = 0; step < h.num_steps; step++) {
            let sum = 0;
            for (let b = 0; b < items.length; b += h.batch_size) {
              const batch = items.slice(b, b + h.batch_size);
              opt.zeroGrad();
              const value = torch.scope(() => {
                let l = targetNll(model, tok, batch);
                if (h.lora_type === "adalora" && h.orth_reg_weight > 0)
                  l = l.add(orthReg(adapters).mul(h.orth_reg_weight));
                l.backward();
                return l.item();
              });
              if (!Number.isFinite(value))
                throw new Error(`LoRA: the loss became ${value} at step ${step}; the model is left unedited`);
              opt.step();
              sum += value * batch.length;
            }
            losses.push(sum / items.length);
          }
        },
      );
      const deltas = torch.noGrad(() =>
        adapters.map((a) => torch.scope(() => adapterParamDelta(model, a, true))),
      );
      return { deltas, info: { losses, modules } };
    } finally {
      for (const p of params) {
        p.grad = null;
        p.free();
      }
      opt.free();
    }
  },
};
