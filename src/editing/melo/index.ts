/**
 * MELO (Yu et al. 2024, "MELO: Enhancing Model Editing with Neuron-Indexed Dynamic LoRA"), as EasyEdit runs
 * it (easyeditor/models/melo/: melo.py LORA.edit, melo_main.py, util.py tokenize_gpt, peft_egg/.../melo.py;
 * the same algorithm in ECNU-ICALK/MELO). No weight of the model changes: LoRA blocks on the target
 * modules, one block per edit, and a vector database of edit keys (./vecdb.ts) that chooses the block of
 * each input at inference (./adaptors.ts).
 *
 * One edit (one request; EasyEdit edits requests[0]):
 *  1. Tokens: prompt + " " + target (the prompt's positions masked out of the labels, util.py
 *     tokenize_gpt, task "hall"). The key is the grace layer's output at position key_id (-1: the last
 *     token, here the target's last token), computed on the model without MELO's adaptors.
 *  2. The block b = the next unused one (b < num_block); the key is written into the database with b
 *     (./vecdb.ts: new cluster, joined cluster or split radii).
 *  3. The block's A [in, r_b] is its slice of a Kaiming-uniform init of the whole [in, num_block * r_b]
 *     matrix (bound 1/sqrt(num_block * r_b), peft's reset_lora_parameters), B = 0; they are trained for
 *     num_iter Adam steps (lr edit_lr, halved every 20 steps: StepLR(20, 0.5)) on the target's
 *     teacher-forced NLL (../lora/loss.ts) with y + num_block * dropout(x) A B at every position of every
 *     target module (the other blocks stay off during training, as the reference's mapping is the new
 *     block for the edit's rows).
 *
 * The edit's journal record holds a "melo" entry on the grace layer (the clusters it wrote) and a
 * "melo-lora" entry per target module (its block), so undo, save and replay rebuild both.
 *
 * Differences from EasyEdit, each deliberate:
 *  - one request per edit, as EasyEdit (the original repository trains num_edit_per_block requests per
 *    block; num_edit_per_block is read and unused);
 *  - A's init is drawn from a generator seeded by `seed` and the target's index (EasyEdit: the global RNG
 *    once, when the adapters are created);
 *  - lora_dropout draws from a generator seeded with `seed` and the block;
 *  - only task "hall" (causal-LM tokenisation) exists here: "qa" and "scotus" are T5/BERT tasks;
 *  - read for EasyEdit files and unused, as there: val_init, val_train, val_reg, reg, replacement,
 *    expand_mode, num_pert, metric_period, the model section's names and `pt`, and the lora section
 *    except lora_dropout (its classifier fields belong to the original repository's baselines);
 *  - fan_in_fan_out is checked against the module's layout instead of corrected with a warning.
 */
import * as torch from "../../torch/index.js";
import type { Tensor } from "../../torch/index.js";
import type { CausalLM, Hook } from "../../models/model.js";
import type { EditContext, EditMethod, EditResult } from "../editor.js";
import type { EditJournal } from "../journal.js";
import { fillPrompt, type EditRequest } from "../request.js";
import { HparamsError, parseHparams, type Schema } from "../hparams.js";
import { withAdaptors, type AdaptorEntry } from "../journal.js";
import { targetNll, targetTokens } from "../lora/loss.js";
import { MELO_LORA_KIND, blockDelta, keyPosition, type Block, type MeloLoraMeta } from "./adaptors.js";
import { MELO_DB_KIND, dbEntry, foldDb, writeKey, type MeloDbMeta } from "./vecdb.js";

export { MELO_LORA_KIND, blockDelta, blocksOf, foldBlocks, keyPosition } from "./adaptors.js";
export { MELO_DB_KIND, NO_BLOCK, foldDb, searchBlocks, writeKey, type Cluster } from "./vecdb.js";

export interface MeloGraceHparams {
  name: string;
  num_iter: number;
  init_radius: number;
  dist_fn: string;
  val_init: string;
  val_train: string;
  val_reg: string;
  reg: string;
  replacement: string;
  expand_mode: string;
  num_pert: number;
  key_id: number;
  num_edit_per_block: number;
  num_block: number;
  num_rank_per_block: number;
  metric_period: number;
  edit_lr: number;
}

export interface MeloModelHparams {
  name: string;
  class_name: string;
  tokenizer_class: string;
  tokenizer_name: string;
  fan_in_fan_out: boolean;
  target_modules: string[];
  pt: string | null;
  grace_layer: string;
}

export interface MeloLoraHparams {
  cls_name: string;
  cls_class: string;
  supervised: boolean;
  cos: boolean;
  freeze: string | null;
  square: boolean;
  bound_embeds: boolean;
  use_all_negatives: boolean;
  freeze_lora: boolean;
  dist_heads: number;
  cross_attend: boolean;
  soft_weighting: boolean;
  checkpoint_grad: boolean;
  lora_r: number;
  lora_alpha: number;
  lora_dropout: number;
}

export interface MeloHparams {
  task: string;
  lora_task_type: string;
  check_dir: string | null;
  seed: number;
  grace: MeloGraceHparams;
  model: MeloModelHparams;
  lora: MeloLoraHparams;
}

/** Defaults of each section: EasyEdit hparams/MELO/gpt2-xl.yaml. */
export const MELO_GRACE_SCHEMA: Schema = {
  name: { type: "string", default: "grace", doc: "read; unused" },
  num_iter: { type: "int", default: 50, doc: "Adam steps per edit" },
  init_radius: { type: "number", default: 0.5, doc: "radius of a new cluster" },
  dist_fn: { type: "string", default: "euc", doc: "euc (the only distance the database uses)" },
  val_init: { type: "string", default: "cold", doc: "read; unused (as in MELO)" },
  val_train: { type: "string", default: "sgd", doc: "read; unused" },
  val_reg: { type: "string", default: "None", doc: "read; unused" },
  reg: { type: "string", default: "early_stop", doc: "read; unused" },
  replacement: { type: "string", default: "replace_prompt", doc: "read; unused" },
  expand_mode: {
    type: "string",
    default: "moving_avg",
    doc: "read; unused (clusters re-centre on the mean)",
  },
  num_pert: { type: "int", default: 8, doc: "read; unused" },
  key_id: { type: "int", default: -1, doc: "token position of the key (-1: the last)" },
  num_edit_per_block: { type: "int", default: 4, doc: "read; unused (one request per edit, as EasyEdit)" },
  num_block: { type: "int", default: 350, doc: "LoRA blocks (the most edits a model can take)" },
  num_rank_per_block: { type: "int", default: 2, doc: "rank of each block" },
  metric_period: { type: "int", default: 400, doc: "read; unused" },
  edit_lr: { type: "number", default: 0.001, doc: "Adam learning rate (halved every 20 steps)" },
};

export const MELO_MODEL_SCHEMA: Schema = {
  name: { type: "string", default: "", doc: "read; unused" },
  class_name: { type: "string", default: "", doc: "read; unused" },
  tokenizer_class: { type: "string", default: "", doc: "read; unused" },
  tokenizer_name: { type: "string", default: "", doc: "read; unused" },
  fan_in_fan_out: { type: "bool", default: true, doc: "the weight layout (true: GPT-2 Conv1D); checked" },
  target_modules: {
    type: "string[]",
    default: ["transformer.h.36.mlp.c_fc", "transformer.h.37.mlp.c_fc"],
    doc: "modules that get LoRA blocks (peft: names ending with an entry)",
  },
  pt: { type: "string|null", default: null, doc: "read; unused" },
  grace_layer: {
    type: "string",
    default: "transformer.h.35.mlp.c_fc",
    doc: "the module whose output keys the database (a regular expression matching one module)",
  },
};

export const MELO_LORA_SCHEMA: Schema = {
  cls_name: { type: "string", default: "distilbert-base-cased", doc: "read; unused" },
  cls_class: { type: "string", default: "AutoModel", doc: "read; unused" },
  supervised: { type: "bool", default: true, doc: "read; unused" },
  cos: { type: "bool", default: false, doc: "read; unused" },
  freeze: { type: "string|null", default: null, doc: "read; unused" },
  square: { type: "bool", default: true, doc: "read; unused" },
  bound_embeds: { type: "bool", default: false, doc: "read; unused" },
  use_all_negatives: { type: "bool", default: false, doc: "read; unused" },
  freeze_lora: { type: "bool", default: false, doc: "read; unused" },
  dist_heads: { type: "int", default: 1, doc: "read; unused" },
  cross_attend: { type: "bool", default: false, doc: "read; unused" },
  soft_weighting: { type: "bool", default: false, doc: "read; unused" },
  checkpoint_grad: { type: "bool", default: false, doc: "read; unused" },
  lora_r: { type: "int", default: 64, doc: "read; unused (the rank is num_block x num_rank_per_block)" },
  lora_alpha: { type: "int", default: 64, doc: "read; unused (MeloConfig sets alpha = rank)" },
  lora_dropout: { type: "number", default: 0.0, doc: "dropout on the blocks' input during training" },
};

export const MELO_TOP_SCHEMA: Schema = {
  task: { type: "string", default: "hall", doc: "hall (causal-LM tokenisation; the only task here)" },
  lora_task_type: { type: "string", default: "CAUSAL_LM", doc: "read; unused" },
  check_dir: {
    type: "string|null",
    default: null,
    doc: "must be null (EasyEdit's checkpoint loading is a stub)",
  },
  seed: { type: "int", default: 42, doc: "seed of the blocks' initialisation and dropout" },
};

const SECTIONS: [keyof Pick<MeloHparams, "grace" | "model" | "lora">, Schema][] = [
  ["grace", MELO_GRACE_SCHEMA],
  ["model", MELO_MODEL_SCHEMA],
  ["lora", MELO_LORA_SCHEMA],
];

/** Every field, sections as dotted names (for help texts). */
export const MELO_SCHEMA: Schema = {
  ...MELO_TOP_SCHEMA,
  ...Object.fromEntries(
    SECTIONS.flatMap(([sec, schema]) => Object.entries(schema).map(([k, v]) => [`${sec}.${k}`, v])),
  ),
};

/** The order in which modules return their outputs in one forward pass. */
function outputOrder(model: CausalLM, modules: string[]): string[] {
  const order: string[] = [];
  torch.noGrad(() =>
    torch.scope(() =>
      model.withHooks(
        modules.map((m) => ({
          module: m,
          where: "output" as const,
          hook: () => void (order.includes(m) || order.push(m)),
        })),
        () => model.forward({ inputIds: torch.tensor([[0]], { dtype: "int64" }) }),
      ),
    ),
  );
  return order;
}

/** The modules the blocks go on: 2-D weights whose names end with a target (peft's match). */
export function meloTargets(model: CausalLM, targets: string[], where = "MELO"): string[] {
  const out = [...model.moduleNames()].filter(
    (m) => targets.some((t) => m.endsWith(t)) && model.params.get(`${m}.weight`)?.ndim === 2,
  );
  if (out.length === 0)
    throw new HparamsError(
      `${where}: MELO model.target_modules ${JSON.stringify(targets)} match no linear module of this model`,
    );
  return out.sort((a, b) => a.localeCompare(b, "en", { numeric: true }));
}

function parse(raw: Record<string, unknown>, where: string, model: CausalLM): MeloHparams {
  const top = { ...raw };
  const sections: Record<string, unknown> = {};
  for (const [sec, schema] of SECTIONS) {
    const v = top[sec];
    delete top[sec];
    if (v !== undefined && (typeof v !== "object" || v === null || Array.isArray(v)))
      throw new HparamsError(`${where}: MELO section '${sec}' must be a mapping`);
    const r = { ...((v as Record<string, unknown> | undefined) ?? {}) };
    if (sec === "grace" && "_name" in r) {
      r.name ??= r._name;
      delete r._name;
    }
    if (sec === "grace" && r.val_reg === null) r.val_reg = "None";
    sections[sec] = parseHparams(schema, r, `${where} (${sec})`, "MELO");
  }
  const h = {
    ...parseHparams<Omit<MeloHparams, "grace" | "model" | "lora">>(MELO_TOP_SCHEMA, top, where, "MELO"),
    ...sections,
  } as MeloHparams;
  if (h.task !== "hall")
    throw new HparamsError(
      `${where}: MELO task ${JSON.stringify(h.task)} is not available (only "hall", EasyEdit's causal-LM tokenisation)`,
    );
  if (h.check_dir !== null)
    throw new HparamsError(
      `${where}: MELO check_dir must be null (loading MELO checkpoints is not implemented)`,
    );
  const g = h.grace;
  if (g.dist_fn !== "euc")
    throw new HparamsError(`${where}: MELO grace.dist_fn must be euc, got ${JSON.stringify(g.dist_fn)}`);
  if (g.num_block < 1 || g.num_rank_per_block < 1)
    throw new HparamsError(`${where}: MELO grace.num_block and grace.num_rank_per_block must be >= 1`);
  if (!(g.init_radius >= 0)) throw new HparamsError(`${where}: MELO grace.init_radius must be >= 0`);
  if (!(h.lora.lora_dropout >= 0 && h.lora.lora_dropout < 1))
    throw new HparamsError(`${where}: MELO lora.lora_dropout must be in [0, 1)`);
  let re: RegExp;
  try {
    re = new RegExp(`^(?:${h.model.grace_layer})$`);
  } catch (e) {
    throw new HparamsError(
      `${where}: MELO model.grace_layer is not a regular expression (${(e as Error).message})`,
    );
  }
  const graces = [...model.moduleNames()].filter(
    (m) => re.test(m) && model.params.get(`${m}.weight`)?.ndim === 2,
  );
  if (graces.length !== 1)
    throw new HparamsError(
      `${where}: MELO model.grace_layer ${JSON.stringify(h.model.grace_layer)} must match exactly one linear module, matches ${graces.length}${graces.length ? ` (${graces.join(", ")})` : ""} (e.g. transformer.h.${Math.max(0, model.config.numLayers - 3)}.mlp.c_fc)`,
    );
  h.model.grace_layer = graces[0] as string;
  const targets = meloTargets(model, h.model.target_modules, where);
  if (targets.includes(h.model.grace_layer))
    throw new HparamsError(
      `${where}: MELO grace_layer ${h.model.grace_layer} cannot also be a target module`,
    );
  const conv1d = model.config.modelType === "gpt2";
  if (h.model.fan_in_fan_out !== conv1d)
    throw new HparamsError(
      `${where}: MELO model.fan_in_fan_out is ${h.model.fan_in_fan_out}, but this ${model.config.modelType} model's linear weights are ${conv1d ? "[in, out] (set true)" : "[out, in] (set false)"}`,
    );
  const order = outputOrder(model, [h.model.grace_layer, ...targets]);
  const early = targets.filter((t) => order.indexOf(t) < order.indexOf(h.model.grace_layer));
  if (early.length > 0)
    throw new HparamsError(
      `${where}: MELO target modules ${early.join(", ")} run before the grace layer ${h.model.grace_layer}; the blocks must come after the layer that chooses them`,
    );
  return h;
}

/** Runs fn with every MELO adaptor of the journal removed. */
function withoutMelo<T>(journal: EditJournal, fn: () => T): T {
  const keys = new Map<string, [string, string]>();
  for (const r of journal.records)
    for (const a of r.adaptors ?? [])
      if (a.kind === MELO_DB_KIND || a.kind === MELO_LORA_KIND)
        keys.set(`${a.kind}|${a.module}`, [a.kind, a.module]);
  const list = [...keys.values()];
  const go = (i: number): T => {
    const k = list[i];
    return k ? journal.withoutAdaptor(k[0], k[1], () => go(i + 1)) : fn();
  };
  return go(0);
}

/** The module's input and output sizes (GPT-2 Conv1D stores [in, out]). */
function inOut(model: CausalLM, module: string): [number, number] {
  const w = model.param(`${module}.weight`);
  return model.config.modelType === "gpt2" ? [w.size(0), w.size(1)] : [w.size(1), w.size(0)];
}

/** Step 3's initialisation: block b's slice of a Kaiming-uniform [in, num_block * r_b] matrix, and B = 0. */
export function initBlock(
  model: CausalLM,
  module: string,
  index: number,
  block: number,
  h: MeloHparams,
): { A: Tensor; B: Tensor } {
  const [fin, fout] = inOut(model, module);
  const rb = h.grace.num_rank_per_block;
  const r = h.grace.num_block * rb;
  const bound = 1 / Math.sqrt(r);
  const dtype = model.param(`${module}.weight`).dtype;
  const full = torch
    .rand([fin, r], { generator: new torch.Generator((h.seed * 1000003 + index) % 2147483647) })
    .mul(2 * bound)
    .sub(bound);
  return {
    A: full
      .narrow(1, block * rb, rb)
      .contiguous()
      .to(dtype),
    B: torch.zeros([rb, fout], { dtype }),
  };
}

/** The grace layer's output at one position of one sequence (the key), on the bare model. */
function keyOf(model: CausalLM, module: string, ids: number[], pos: number): Tensor {
  return torch.noGrad(() =>
    torch.scope(() => {
      let k: Tensor | null = null;
      model.withHooks(
        [{ module, where: "output", hook: (y) => void (k = y.select(0, 0).select(0, pos).clone().keep()) }],
        () => model.forward({ inputIds: torch.tensor([ids], { dtype: "int64" }) }),
      );
      if (!k) throw new Error(`MELO: module ${module} did not run`);
      return (k as Tensor).attach();
    }),
  );
}

export const melo: EditMethod<MeloHparams> = {
  name: "MELO",
  schema: MELO_SCHEMA,
  maxBatch: 1,
  parseHparams: parse,
  compute(ctx: EditContext, requests: EditRequest[], h: MeloHparams): EditResult {
    if (requests.length !== 1) throw new Error(`MELO edits one request at a time, got ${requests.length}`);
    const { model, tok, journal } = ctx;
    const r = requests[0] as EditRequest;
    const grace = h.model.grace_layer;
    const targets = meloTargets(model, h.model.target_modules);
    const g = h.grace;
    const tt = targetTokens(tok, r);
    if (tt.target.length === 0)
      throw new Error(`MELO: target_new ${JSON.stringify(r.targetNew)} has no tokens`);
    const dbEntries = journal.adaptorEntries(MELO_DB_KIND, grace);
    const used = journal.records.flatMap((rec) =>
      (rec.adaptors ?? [])
        .filter((a) => a.kind === MELO_DB_KIND)
        .map((a) => (a.meta as unknown as MeloDbMeta).block),
    );
    const block = Math.max(-1, ...used) + 1;
    if (block >= g.num_block)
      throw new Error(
        `MELO: all ${g.num_block} blocks are used (grace.num_block); raise num_block or undo edits`,
      );

    return withoutMelo(journal, () =>
      torch.scope(() => {
        // --- steps 1-2: the key and the database write ---
        const ids = [...tt.prompt, ...tt.target];
        const q = keyOf(model, grace, ids, keyPosition(g.key_id, ids.length));
        const db = foldDb(dbEntries);
        const w = writeKey(db, q, block, tt.target, g.init_radius);

        // --- step 3: train the block ---
        const blocks: Block[] = [];
        const params: Tensor[] = [];
        targets.forEach((m, i) => {
          const { A, B } = initBlock(model, m, i, block, h);
          A.keep().requiresGrad_(true);
          B.keep().requiresGrad_(true);
          params.push(A, B);
          blocks.push({ A, B, scale: g.num_block });
        });
        const opt = new torch.optim.Adam(params, { lr: g.edit_lr });
        const dropGen = new torch.Generator((h.seed * 7919 + block) % 2147483647);
        const p = h.lora.lora_dropout;
        const losses: number[] = [];
        try {
          const hooks = targets.flatMap(
            (m, i): { module: string; where: "input" | "output"; hook: Hook }[] => {
              let x: Tensor | null = null;
              return [
                { module: m, where: "input" as const, hook: (v: Tensor) => void (x = v) },
                {
                  module: m,
                  where: "output" as const,
                  hook: (y: Tensor): Tensor => {
                    let inp = x as Tensor;
                    x = null;
                    if (p > 0)
                      inp = inp
                        .mul(torch.rand(inp.shape, { generator: dropGen }).ge(p).to(inp.dtype))
                        .div(1 - p);
                    return y.add(blockDelta(inp, blocks[i] as Block));
                  },
                },
              ];
            },
          );
          model.withHooks(hooks, () => {
            for (let i = 0; i < g.num_iter; i++) {
              opt.lr = g.edit_lr * 0.5 ** Math.floor(i / 20);
              opt.zeroGrad();
              const l = torch.scope(() => {
                const loss = targetNll(model, tok, [tt]);
                loss.backward();
                return loss.item();
              });
              if (!Number.isFinite(l))
                throw new Error(`MELO: the loss became ${l} at step ${i}; the model is left unedited`);
              losses.push(l);
              opt.step();
              if (i % 10 === 0 || i === g.num_iter - 1)
                ctx.log(`MELO block ${block}: step ${i + 1}/${g.num_iter} loss ${l.toFixed(4)}`);
            }
          });
          const entries: AdaptorEntry[] = [
            dbEntry(grace, w.written, { block, key_id: g.key_id, targets, num_block: g.num_block }),
            ...targets.map((m, i) => {
              const b = blocks[i] as Block;
              const meta: MeloLoraMeta = { block, grace_layer: grace, scale: g.num_block };
              return {
                kind: MELO_LORA_KIND,
                module: m,
                tensors: { A: b.A.detach().clone(), B: b.B.detach().clone() },
                meta: { ...meta },
              };
            }),
          ];
          for (const e of entries) for (const t of Object.values(e.tensors)) t.keep();
          ctx.log(
            `MELO: ${JSON.stringify(fillPrompt(r))} -> ${JSON.stringify(r.targetNew)}: block ${block}, ${w.action}, loss ${losses[0]?.toFixed(4)} -> ${losses[losses.length - 1]?.toFixed(4)}`,
          );
          return {
            deltas: withAdaptors([], entries),
            info: {
              grace_layer: grace,
              targets,
              block,
              action: w.action,
              forgotten_keys: w.forgotten,
              clusters: new Set([...db.map((c) => c.id), ...w.written.map((c) => c.id)]).size,
              prompt: fillPrompt(r),
              loss_first: losses[0],
              loss_last: losses[losses.length - 1],
            },
          };
        } finally {
          for (const t of params) {
            t.grad = null;
            t.free();
          }
          opt.free();
        }
      }),
    );
  },
};
