/**
 * WISE (Wang et al. 2024, "WISE: Rethinking the Knowledge Memory for Lifelong Model Editing of LLMs"), as
 * EasyEdit runs it (easyeditor/models/wise/: WISE.py, wise_main.py, utils.py, merge/; hparams/WISE/*.yaml).
 * No weight of the model changes: a side memory (copies of one module's weight, `inner_params`, e.g.
 * GPT-2 XL's transformer.h[8].mlp.c_fc) is edited, and a router sends each input to the side or the main
 * memory by its activation score (./memory.ts: the journal adaptor, shards, merges and routing).
 *
 * One edit (one request, EasyEdit WISE.edit):
 *  1. Rows: the request's "prompt target" behind each context template (./templates.ts: "{}" and ten
 *     greedy continuations of "I", "You", "Because", "Yes", "Q: "), plus one out-of-scope text
 *     (`loc_prompts`: EasyEdit's loc_prompts argument, e.g. ZsRE train questions with their answers).
 *  2. The shard W_v' starts from the current unsaved shard (or the main weight after a save). At the
 *     first edit of each shard (edit count % save_freq == 0) a random gradient mask is drawn: each entry
 *     trainable with probability mask_ratio.
 *  3. n_iter steps of SGD (lr edit_lr, weight decay 1e-5 as EasyEdit hard-codes it) on ft loss + routing
 *     loss (./loss.ts), with the module's output replaced by the shard's on every row; the gradient is
 *     multiplied by the mask before the step (the decay then applies to every entry, as in torch's SGD);
 *     after each step the shard is clamped to W_v +- norm_constraint. The loop stops early once the loss
 *     moved by <= 1e-4 and is <= 0.02 (EarlyStopMeter). The in-scope score of the last forward pass
 *     (mean over the templated rows) is recorded: the routing threshold is act_ratio times the least
 *     recorded score of the memory's edits.
 *  4. Edit count + 1; every save_freq edits the shard is saved (a new shard starts from W_v); every
 *     merge_freq edits shards are merged with `merge_alg` (./merge.ts; TIES by default): WISE-Retrieve
 *     (retrieve: true) merges the last merge_freq/save_freq saved shards into one memory, WISE-Merge
 *     merges the saved shards (and the previous side memory, weights 0.4/n and 0.6) into the side memory.
 *
 * Differences from EasyEdit, each deliberate:
 *  - rows are right-padded with an attention mask and scored on real tokens only (EasyEdit left-pads
 *    without position ids, so GPT-2 sees shifted positions in the shorter rows, and averages the scores
 *    over the padding);
 *  - the i-th edit of a module uses loc_prompts[i mod n] (EasyEdit: one per request, repeated and
 *    shuffled when there are fewer); `loc_prompts` is an hparam here because EasyEdit passes it to
 *    editor.edit, and it is required (EasyEdit fails without it too);
 *  - random masks and DARE's merge masks come from generators seeded by `seed` (EasyEdit: numpy's and
 *    torch's global RNGs);
 *  - `norm_constraint` clamps when it is a number (EasyEdit: only when YAML wrote a float; 1 is skipped);
 *  - not implemented, rejected with an error: `replay: true` (Appendix B.3's memory replay),
 *    `use_chat_template: true`, objective_optimization other than only_label, batches of requests
 *    (EasyEdit's batch_edit), the subject-mask mode (a loc_prompt that occurs in the prompt). save_path
 *    and load_path (EasyEdit's own checkpoint) are read and unused: the journal saves and replays edits;
 *  - see ./memory.ts for the routing's differences (per-sequence decisions on the real tokens of a padded
 *    batch, ./padding.ts; the WISE-Merge evaluation view stored in the entry instead of merged inside the
 *    forward call).
 */
import * as torch from "../../torch/index.js";
import type { Tensor } from "../../torch/index.js";
import type { CausalLM } from "../../models/model.js";
import { activation } from "../../models/layers.js";
import type { EditContext, EditMethod, EditResult } from "../editor.js";
import { fillPrompt, type EditRequest } from "../request.js";
import { HparamsError, parseHparams, type Schema } from "../hparams.js";
import { withAdaptors, type AdaptorEntry } from "../journal.js";
import { targetTokens } from "../lora/loss.js";
import { rightPadIds } from "../repr.js";
import { moduleOfParamName } from "../modules.js";
import { EarlyStopMeter, ftLoss, maskedRowMean, routingLoss } from "./loss.js";
import { MERGE_ALGS, mergeShards, type MergeAlg } from "./merge.js";
import {
  WISE_KIND,
  activationDistance,
  foldWise,
  isConv1d,
  sideForward,
  type WiseEntryMeta,
  type WiseState,
} from "./memory.js";
import { fillTemplate, wiseContextTemplates } from "./templates.js";

export { WISE_KIND, foldWise, route, routingScores, sideForward, type WiseState } from "./memory.js";
export { mergeShards, gtaMerge, magnitudePrune, MERGE_ALGS, type MergeAlg } from "./merge.js";
export { wiseContextTemplates } from "./templates.js";

/** SGD weight decay of the side memory (EasyEdit WISE.edit hard-codes 1e-5). */
export const WISE_SGD_WEIGHT_DECAY = 1e-5;

export interface WiseHparams {
  inner_params: string[];
  edit_lr: number;
  n_iter: number;
  objective_optimization: string;
  mask_ratio: number;
  /** act_margin[0..2] */
  alpha: number;
  beta: number;
  gamma: number;
  act_ratio: number;
  save_freq: number;
  merge_freq: number;
  merge_alg: MergeAlg;
  norm_constraint: number | false;
  densities: number;
  weights: number;
  retrieve: boolean;
  replay: boolean;
  use_chat_template: boolean;
  save_path: string | null;
  load_path: string | null;
  loc_prompts: string[];
  context_templates: string[];
  seed: number;
}

/** Defaults: EasyEdit hparams/WISE/gpt2-xl.yaml (act_margin [5, 20, 10] -> alpha, beta, gamma). */
export const WISE_SCHEMA: Schema = {
  inner_params: {
    type: "string[]",
    default: ["transformer.h[8].mlp.c_fc.weight"],
    doc: "the side memory's module weight (first entry; brackets or dots)",
  },
  edit_lr: { type: "number", default: 1.0, doc: "SGD learning rate of the side memory" },
  n_iter: { type: "int", default: 40, doc: "optimisation steps per edit" },
  objective_optimization: {
    type: "string",
    default: "only_label",
    doc: "only_label (the loss on the target tokens; the only mode implemented)",
  },
  mask_ratio: { type: "number", default: 0.2, doc: "fraction of the shard's entries a shard trains" },
  alpha: { type: "number", default: 5.0, doc: "act_margin[0]: out-of-scope score ceiling" },
  beta: { type: "number", default: 20.0, doc: "act_margin[1]: in-scope score floor" },
  gamma: { type: "number", default: 10.0, doc: "act_margin[2]: in/out score margin" },
  act_ratio: { type: "number", default: 0.8, doc: "routing threshold = act_ratio x least edit score" },
  save_freq: { type: "int", default: 500, doc: "edits per knowledge shard" },
  merge_freq: { type: "int", default: 1000, doc: "edits between merges (a multiple of save_freq)" },
  merge_alg: { type: "string", default: "ties", doc: `shard merging: ${MERGE_ALGS.join(", ")}` },
  norm_constraint: {
    type: "number",
    default: 1.0,
    doc: "clamp the shard to W +- this after each step (false/null: no clamp)",
  },
  densities: { type: "number", default: 0.53, doc: "merge density (TIES/DARE keep this fraction)" },
  weights: { type: "number", default: 1.0, doc: "merge weight (split evenly over the merged shards)" },
  retrieve: { type: "bool", default: true, doc: "WISE-Retrieve (true) or WISE-Merge (false)" },
  replay: { type: "bool", default: false, doc: "memory replay (Appendix B.3; not implemented)" },
  use_chat_template: { type: "bool", default: false, doc: "chat templates (not implemented)" },
  save_path: {
    type: "string|null",
    default: null,
    doc: "read for EasyEdit files; unused (the journal saves)",
  },
  load_path: {
    type: "string|null",
    default: null,
    doc: "read for EasyEdit files; unused (the journal replays)",
  },
  loc_prompts: {
    type: "string[]",
    default: [],
    doc: "out-of-scope training texts (EasyEdit's loc_prompts argument); the i-th edit uses entry i mod n",
  },
  context_templates: {
    type: "string[]",
    default: [],
    doc: 'templates with "{}" ([]: EasyEdit\'s greedy ones from the model)',
  },
  seed: { type: "int", default: 42, doc: "seed of the gradient masks and DARE's merge masks" },
};

/** "transformer.h[8].mlp.c_fc.weight" -> "transformer.h.8.mlp.c_fc" (EasyEdit brackets_to_periods). */
export function wiseModule(innerParam: string): string {
  return moduleOfParamName(innerParam);
}

function parse(raw: Record<string, unknown>, where: string, model: CausalLM): WiseHparams {
  const r = { ...raw };
  if ("act_margin" in r) {
    const m = r.act_margin;
    if (!Array.isArray(m) || m.length !== 3 || !m.every((x) => typeof x === "number" && Number.isFinite(x)))
      throw new HparamsError(
        `${where}: WISE act_margin must be three numbers [alpha, beta, gamma], got ${JSON.stringify(m)}`,
      );
    for (const k of ["alpha", "beta", "gamma"])
      if (k in r) throw new HparamsError(`${where}: WISE gives both act_margin and ${k}; keep one`);
    [r.alpha, r.beta, r.gamma] = m as number[];
    delete r.act_margin;
  }
  const nc = r.norm_constraint;
  delete r.norm_constraint;
  for (const k of ["weights", "densities"])
    if (r[k] === null)
      throw new HparamsError(
        `${where}: WISE ${k} is null; set a number (EasyEdit's files: weights 1.0, densities 0.53)`,
      );
  const h = parseHparams<WiseHparams>(WISE_SCHEMA, r, where, "WISE");
  if (nc === undefined) h.norm_constraint = WISE_SCHEMA.norm_constraint?.default as number;
  else if (nc === false || nc === null) h.norm_constraint = false;
  else if (typeof nc === "number" && Number.isFinite(nc)) h.norm_constraint = nc;
  else throw new HparamsError(`${where}: WISE norm_constraint must be a number, false or null`);
  if (!(MERGE_ALGS as readonly string[]).includes(h.merge_alg))
    throw new HparamsError(
      `${where}: WISE merge_alg must be one of ${MERGE_ALGS.join(", ")}, got ${JSON.stringify(h.merge_alg)}`,
    );
  if (h.save_freq < 1 || h.merge_freq < 1 || h.merge_freq % h.save_freq !== 0)
    throw new HparamsError(
      `${where}: WISE merge_freq (${h.merge_freq}) must be a positive multiple of save_freq (${h.save_freq}) (EasyEdit asserts it)`,
    );
  if (!(h.mask_ratio > 0 && h.mask_ratio <= 1))
    throw new HparamsError(`${where}: WISE mask_ratio must be in (0, 1], got ${h.mask_ratio}`);
  if (h.objective_optimization !== "only_label")
    throw new HparamsError(
      `${where}: WISE objective_optimization ${JSON.stringify(h.objective_optimization)} is not implemented (use only_label, as every EasyEdit file does)`,
    );
  if (h.replay)
    throw new HparamsError(
      `${where}: WISE replay: true (memory replay, Appendix B.3) is not implemented; set replay: false`,
    );
  if (h.use_chat_template)
    throw new HparamsError(`${where}: WISE use_chat_template: true is not implemented; set it to false`);
  if (h.n_iter < 1) throw new HparamsError(`${where}: WISE n_iter must be >= 1`);
  h.loc_prompts.forEach((t, i) => {
    if (t.trim() === "") throw new HparamsError(`${where}: WISE loc_prompts[${i}] is empty; give a text`);
  });
  for (const t of h.context_templates)
    if (!t.includes("{}"))
      throw new HparamsError(`${where}: WISE context template ${JSON.stringify(t)} has no "{}"`);
  if (h.inner_params.length === 0) throw new HparamsError(`${where}: WISE inner_params is empty`);
  const module = wiseModule(h.inner_params[0] as string);
  try {
    model.checkModule(module);
  } catch (e) {
    const example =
      model.config.modelType === "gpt2"
        ? `transformer.h[${Math.floor(model.config.numLayers / 2)}].mlp.c_fc.weight`
        : `model.layers[${model.config.numLayers - 1}].mlp.down_proj.weight`;
    throw new HparamsError(
      `${where}: WISE inner_params ${JSON.stringify(h.inner_params[0])}: ${(e as Error).message} (set inner_params to a module of this model, e.g. ${example})`,
    );
  }
  const w = model.params.get(`${module}.weight`);
  if (!w || w.ndim !== 2)
    throw new HparamsError(`${where}: WISE inner_params ${module} must be a linear module with a 2-D weight`);
  return h;
}

/** The shard's gradient mask: each entry 1 with probability mask_ratio (EasyEdit generate_activation_mask). */
export function shardMask(shape: number[], maskRatio: number, seed: number, shardIndex: number): Tensor {
  const gen = new torch.Generator((seed * 1000003 + shardIndex) % 2147483647);
  return torch.rand(shape, { generator: gen }).lt(maskRatio).to("float32");
}

/** torch 1.13 SGD with weight decay, no momentum: p -= lr (g + wd p). */
export function sgdStep(p: Tensor, grad: Tensor, lr: number, weightDecay: number): void {
  torch.noGrad(() =>
    torch.scope(() => {
      const d = weightDecay !== 0 ? grad.add(p, weightDecay) : grad;
      p.add_(d, -lr);
    }),
  );
}

/** The WISE-Merge side weight after merging `shards` into `side` (EasyEdit merge_weight, retrieve off). */
function mergeIntoSide(
  h: WiseHparams,
  base: Tensor,
  shards: Tensor[],
  side: Tensor | null,
  gen: torch.Generator,
): Tensor {
  const n = shards.length;
  const fresh = side === null || side.eq(base).all().item() === 1;
  if (fresh)
    return mergeShards(h.merge_alg, new Array<number>(n).fill(h.weights / n), base, shards, h.densities, gen);
  return mergeShards(
    h.merge_alg,
    [...new Array<number>(n).fill(0.4 / n), 0.6],
    base,
    [...shards, side as Tensor],
    h.densities,
    gen,
  );
}

/** The context templates of this editor session (EasyEdit's global cache), or the hparams' own. */
function templatesFor(ctx: EditContext, h: WiseHparams): string[] {
  if (h.context_templates.length > 0) return h.context_templates;
  const key = "wise:context_templates";
  let t = ctx.cache.get(key) as string[] | undefined;
  if (!t) {
    t = torch.noGrad(() => wiseContextTemplates(ctx.model, ctx.tok));
    ctx.cache.set(key, t);
    ctx.log(`WISE: context templates ${JSON.stringify(t)}`);
  }
  return t;
}

interface TrainResult {
  shard: Tensor;
  act: number;
  losses: number[];
  steps: number;
  stoppedEarly: boolean;
}

/** Steps 2-3 of the header: trains the shard on the rows; returns it and the recorded in-scope score. */
function trainShard(
  ctx: EditContext,
  module: string,
  h: WiseHparams,
  state: WiseState,
  rows: { prompt: number; ids: number[] }[],
  locIds: number[],
): TrainResult {
  const { model, tok } = ctx;
  const W0 = model.param(`${module}.weight`);
  const conv1d = isConv1d(model);
  const act = activation(model.config.activation, `${model.config.modelType} activation`);
  const pad = tok.padTokenId ?? tok.eosTokenId ?? 0;
  const R = rows.length;
  const seqs = [...rows.map((r) => r.ids), locIds];
  const { ids, mask, width } = rightPadIds(seqs, pad);
  const valid = mask.keep();
  const inputIds = ids.keep();
  const gradMask = shardMask(W0.shape, h.mask_ratio, h.seed, state.nextShardIndex).to(W0.dtype).keep();
  const lo = h.norm_constraint === false ? null : W0.sub(h.norm_constraint).keep();
  const hi = h.norm_constraint === false ? null : W0.add(h.norm_constraint).keep();
  const shard = (state.shard ?? W0).detach().clone().keep().requiresGrad_(true);
  const meter = new EarlyStopMeter();
  const losses: number[] = [];
  let recorded = NaN;
  let steps = 0;
  let stoppedEarly = false;
  let x: Tensor | null = null;
  let orig: Tensor | null = null;
  let out: Tensor | null = null;
  try {
    model.withHooks(
      [
        { module, where: "input", hook: (v) => void (x = v) },
        {
          module,
          where: "output",
          hook: (y) => {
            const bias = model.params.get(`${module}.bias`) ?? null;
            orig = y.detach().keep();
            const o = sideForward(x as Tensor, shard, bias, conv1d).keep();
            out = o;
            x = null;
            return o;
          },
        },
      ],
      () => {
        for (let i = 0; i < h.n_iter; i++) {
          shard.grad = null;
          const r = torch.scope(() => {
            const { logits } = model.forward({ inputIds, attentionMask: valid });
            const o = (orig as unknown as Tensor).attach();
            const n = (out as unknown as Tensor).attach();
            orig = null;
            out = null;
            const ft = ftLoss(logits, rows, width);
            const scores = maskedRowMean(activationDistance(o, n, act), valid);
            const inScope = scores.narrow(0, 0, R);
            const outScope = scores.narrow(0, R, 1);
            const loss = ft.add(routingLoss(inScope, outScope, h.alpha, h.beta, h.gamma).to(ft.dtype));
            const value = loss.item();
            if (!Number.isFinite(value))
              throw new Error(`WISE: the loss became ${value} at step ${i}; the model is left unedited`);
            if (meter.stop()) return { value, stop: true, act: inScope.mean().item(), ft: NaN };
            const a = i === h.n_iter - 1 ? inScope.mean().item() : NaN;
            loss.backward();
            return { value, stop: false, act: a, ft: ft.item() };
          });
          if (r.stop) {
            recorded = r.act;
            stoppedEarly = true;
            break;
          }
          if (!Number.isNaN(r.act)) recorded = r.act;
          losses.push(r.value);
          const g = shard.grad as Tensor | null;
          if (!g) throw new Error(`WISE: no gradient reached the side memory of ${module}`);
          const masked = torch.noGrad(() => g.mul(gradMask).keep());
          shard.grad = null;
          sgdStep(shard, masked, h.edit_lr, WISE_SGD_WEIGHT_DECAY);
          masked.free();
          steps++;
          meter.update(r.value);
          if (lo && hi)
            torch.noGrad(() => torch.scope(() => void shard.copy_(shard.maximum(lo).minimum(hi))));
          if (i % 10 === 0 || i === h.n_iter - 1)
            ctx.log(
              `WISE ${module}: step ${i + 1}/${h.n_iter} loss ${r.value.toFixed(4)} (ft ${r.ft.toFixed(4)})`,
            );
        }
      },
    );
    return { shard: shard.detach().clone().keep(), act: recorded, losses, steps, stoppedEarly };
  } finally {
    shard.grad = null;
    shard.free();
    for (const t of [valid, inputIds, gradMask, lo, hi]) t?.free();
    for (const t of [orig, out] as (Tensor | null)[]) t?.free();
  }
}

export const wise: EditMethod<WiseHparams> = {
  name: "WISE",
  schema: WISE_SCHEMA,
  maxBatch: 1,
  parseHparams: parse,
  compute(ctx: EditContext, requests: EditRequest[], h: WiseHparams): EditResult {
    if (requests.length !== 1) throw new Error(`WISE edits one request at a time, got ${requests.length}`);
    const { model, tok, journal } = ctx;
    const r = requests[0] as EditRequest;
    const module = wiseModule(h.inner_params[0] as string);
    if (h.loc_prompts.length === 0)
      throw new HparamsError(
        "WISE needs out-of-scope training texts: set loc_prompts in the hparams to a list of texts unrelated to the edits " +
          "(EasyEdit passes loc_prompts to editor.edit; its examples use the train split's locality prompt + ' ' + answer)",
      );
    const applied = journal.adaptorEntries(WISE_KIND, module);
    return journal.withoutAdaptor(WISE_KIND, module, () =>
      torch.scope(() => {
        const state = foldWise(applied);
        if (applied.length > 0 && state.retrieve !== h.retrieve)
          throw new HparamsError(
            `WISE: ${module} holds ${state.retrieve ? "WISE-Retrieve" : "WISE-Merge"} edits; an edit with retrieve: ${h.retrieve} cannot join them`,
          );
        const prompt = fillPrompt(r);
        const loc = h.loc_prompts[state.count % h.loc_prompts.length] as string;
        if (loc.length > 0 && prompt.includes(loc))
          throw new Error(
            `WISE: the out-of-scope text ${JSON.stringify(loc)} occurs in the prompt (EasyEdit's subject-mask mode, not implemented); use a text unrelated to the edit`,
          );
        const tt = targetTokens(tok, r);
        if (tt.target.length === 0)
          throw new Error(`WISE: target_new ${JSON.stringify(r.targetNew)} has no tokens`);
        const templates = templatesFor(ctx, h);
        const rows = templates.map((t) => {
          const p = tok.encode(fillTemplate(t, prompt), { addSpecialTokens: true });
          return { prompt: p.length, ids: [...p, ...tt.target] };
        });
        const locIds = tok.encode(loc, { addSpecialTokens: true });
        const trained = trainShard(ctx, module, h, state, rows, locIds);
        const shard = trained.shard.attach();

        // --- step 4: count, save, merge ---
        const W0 = model.param(`${module}.weight`);
        const count = state.count + 1;
        const saved = count % h.save_freq === 0;
        const merged = count % h.merge_freq === 0;
        const mergeNum = h.merge_freq / h.save_freq;
        const gen = new torch.Generator((h.seed * 7919 + count) % 2147483647);
        const memories = [...state.memories.map((m) => m.weight), ...(saved ? [shard] : [])];
        const tensors: Record<string, Tensor> = { shard };
        let side = state.side;
        if (merged) {
          if (h.retrieve) {
            if (memories.length < mergeNum)
              throw new Error(
                `WISE: a merge needs ${mergeNum} saved shards, ${module} has ${memories.length}`,
              );
            tensors.merged = mergeShards(
              h.merge_alg,
              new Array<number>(mergeNum).fill(h.weights / mergeNum),
              W0,
              memories.slice(-mergeNum),
              h.densities,
              gen,
            );
          } else {
            tensors.merged = mergeIntoSide(h, W0, memories, state.side, gen);
            side = tensors.merged;
          }
        }
        if (!h.retrieve && count >= h.save_freq) {
          // the side memory EasyEdit's evaluation sees: pending shards merged in (WISE.__call__)
          const pending = merged ? [] : [...memories];
          if (!saved && !merged && shard.eq(W0).all().item() !== 1) pending.push(shard);
          if (pending.length > 0) tensors.view = mergeIntoSide(h, W0, pending, side, gen);
        }
        const meta: WiseEntryMeta = {
          count,
          shard_index: state.nextShardIndex,
          act: trained.act,
          saved,
          merged,
          merge_num: mergeNum,
          retrieve: h.retrieve,
          act_ratio: h.act_ratio,
          save_freq: h.save_freq,
          merge_freq: h.merge_freq,
        };
        const entry: AdaptorEntry = { kind: WISE_KIND, module, tensors, meta: { ...meta } };
        for (const t of Object.values(tensors)) t.keep();
        const least = h.retrieve
          ? Math.min(state.shardMinAct, trained.act)
          : Math.min(state.minActAll, trained.act);
        ctx.log(
          `WISE ${module}: edit ${count} ${JSON.stringify(prompt)} -> ${JSON.stringify(r.targetNew)}: loss ${trained.losses[0]?.toFixed(4)} -> ${trained.losses[trained.losses.length - 1]?.toFixed(4)}, in-scope score ${trained.act.toFixed(4)}${saved ? ", shard saved" : ""}${merged ? `, merged (${h.merge_alg})` : ""}`,
        );
        return {
          deltas: withAdaptors([], [entry]),
          info: {
            module,
            prompt,
            loc_prompt: loc,
            edit_count: count,
            shard_index: state.nextShardIndex,
            activation: trained.act,
            threshold: least * h.act_ratio,
            saved,
            merged,
            steps: trained.steps,
            stopped_early: trained.stoppedEarly,
            loss_first: trained.losses[0],
            loss_last: trained.losses[trained.losses.length - 1],
          },
        };
      }),
    );
  },
};
