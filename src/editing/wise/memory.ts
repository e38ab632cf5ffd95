/**
 * WISE's memories as a journal adaptor (EasyEdit easyeditor/models/wise/WISE.py, WISEAdapter).
 *
 * The main memory is the wrapped module as it is (its weight W_v is never changed). The side memory is
 * kept as full copies of that weight (W_v'): the shard being edited, the shards saved every `save_freq`
 * edits and the merges of `merge_freq / save_freq` saved shards (WISE-Retrieve), or one merged side
 * weight (WISE-Merge, `retrieve: false`).
 *
 * Each WISE edit is one adaptor entry. It holds the shard weight as the edit left it (tensor `shard`),
 * the merged weight when the edit triggered a merge (`merged`), in WISE-Merge the side weight that
 * EasyEdit's evaluation sees (`view`, see below), and in `meta` the edit count after it, whether it
 * saved the shard and merged, and the in-scope activation it recorded (EasyEdit's editing_mean_act:
 * the threshold is its minimum times act_ratio). The memories are the fold of the applied entries in
 * order: a shard is the last entry's snapshot since the last save; a save pushes it onto the memory list
 * with the minimum activation of its edits; a retrieve merge replaces the last merge_num memories by the
 * merged weight (minimum activation: the least of theirs); a WISE-Merge merge sets the side weight and
 * empties the list. Undoing the last edit restores the state exactly as it was; undoing an earlier one
 * removes its snapshot and activation record but not its share of later snapshots of the same shard.
 *
 * Routing (WISEAdapter.forward, not editing), for each sequence of the batch: with o = W_v x (the
 * module's own output) and s(W') = mean over its real positions of ||act(W' x) - act(o)||_2 (max over
 * them when the sequence has more than 100 real tokens: EasyEdit's `infer` rule; act = the model's MLP
 * activation). Real positions are those of the forward pass that the attention mask marks 1 (./padding.ts):
 * a padded row is scored as the reference scores it unpadded, alone; a row with no real position in the
 * pass stays on the main memory. In a KV-cached pass the score is over the new positions only, as in the
 * reference, whose forward sees only them: batched cached generation decides the prompt on its real
 * tokens and then each step on its new token, exactly as each prompt generated alone;
 *  - retrieve: out = o if s(shard) < thr_shard, else the shard's output; then every memory i whose score
 *    exceeds both the best score so far and its own threshold takes over;
 *  - merge: with s1 = s(side), s2 = s(shard): o if both are below the threshold, else the side output
 *    when s1 > s2, else the shard's.
 * A sequence routed to the main memory gets o itself, bit for bit.
 *
 * Differences from EasyEdit, each deliberate:
 *  - the decision is per sequence of the batch, on its real tokens (EasyEdit: one decision per forward
 *    call, on the batch mean of the scores, padding positions included); unpadded single sequences are
 *    scored exactly as before (the same reduction over all positions). A batch right-padded without an
 *    attention mask cannot be told from longer sequences: its padding counts;
 *  - EasyEdit's WISE-Merge evaluation merges the unsaved shard into the side memory inside its forward
 *    call (WISE.__call__, once edit count >= save_freq) and keeps that state for later edits; here the
 *    merged view is computed when the edit is made and stored in its entry (`view`), used for routing
 *    only, so editing continues from the state EasyEdit has before any evaluation;
 *  - the side forward adds the module's bias when it has one (EasyEdit: GPT-2's Conv1D only; the same
 *    for GPT-2 and Llama, whose down_proj has none).
 */
import * as torch from "../../torch/index.js";
import type { Tensor } from "../../torch/index.js";
import { wrapModuleHooks, type CausalLM, type Hook } from "../../models/model.js";
import { activation, type Activation } from "../../models/layers.js";
import { registerAdaptorKind, type AdaptorEntry } from "../journal.js";
import { realPositions } from "./padding.js";

export const WISE_KIND = "wise";

/** What one WISE edit records (JSON). */
export interface WiseEntryMeta {
  /** edits of this module after this one (EasyEdit editing_total_cnt) */
  count: number;
  /** index of the shard this edit trained (count before the edit / save_freq) */
  shard_index: number;
  /** the in-scope activation recorded at the end of training (EasyEdit save_editing_activation) */
  act: number;
  /** this edit completed a shard (count % save_freq == 0): it joins the memory list */
  saved: boolean;
  /** this edit merged (count % merge_freq == 0); the entry holds the merged weight */
  merged: boolean;
  /** saved shards per retrieve merge (merge_freq / save_freq) */
  merge_num: number;
  retrieve: boolean;
  act_ratio: number;
  save_freq: number;
  merge_freq: number;
}

export interface Memory {
  weight: Tensor;
  minAct: number;
}

/** The memories the applied entries define (views of the entries' tensors, no copies). */
export interface WiseState {
  /** applied edits (EasyEdit editing_total_cnt) */
  count: number;
  /** the unsaved shard (null: none, i.e. the main weight) and the least activation of its edits */
  shard: Tensor | null;
  shardMinAct: number;
  /** saved shards and retrieve merges, oldest first */
  memories: Memory[];
  /** WISE-Merge: the merged side weight (null: none yet) */
  side: Tensor | null;
  /** WISE-Merge: the side weight EasyEdit's evaluation sees (pending shards merged), if any */
  view: Tensor | null;
  /** least activation of every edit (WISE-Merge's threshold) */
  minActAll: number;
  retrieve: boolean;
  actRatio: number;
  /** shard index the next edit trains */
  nextShardIndex: number;
  last: WiseEntryMeta | null;
}

export function emptyWiseState(): WiseState {
  return {
    count: 0,
    shard: null,
    shardMinAct: Infinity,
    memories: [],
    side: null,
    view: null,
    minActAll: Infinity,
    retrieve: true,
    actRatio: 1,
    nextShardIndex: 0,
    last: null,
  };
}

/** Folds the applied entries of one module, in edit order. */
export function foldWise(entries: AdaptorEntry[]): WiseState {
  const s = emptyWiseState();
  for (const e of entries) {
    const m = e.meta as unknown as WiseEntryMeta;
    s.count = m.count;
    s.retrieve = m.retrieve;
    s.actRatio = m.act_ratio;
    s.last = m;
    s.shard = e.tensors.shard as Tensor;
    s.shardMinAct = Math.min(s.shardMinAct, m.act);
    s.minActAll = Math.min(s.minActAll, m.act);
    if (m.saved) {
      s.memories.push({ weight: s.shard, minAct: s.shardMinAct });
      s.shard = null;
      s.shardMinAct = Infinity;
    }
    if (m.merged) {
      const merged = e.tensors.merged as Tensor;
      if (m.retrieve) {
        const group = s.memories.splice(Math.max(0, s.memories.length - m.merge_num));
        s.memories.push({ weight: merged, minAct: Math.min(...group.map((g) => g.minAct)) });
      } else {
        s.side = merged;
        s.memories = [];
        s.shard = null;
      }
    }
    s.view = (e.tensors.view as Tensor | undefined) ?? null;
  }
  s.nextShardIndex = s.last ? Math.floor(s.count / s.last.save_freq) : 0;
  return s;
}

/** The module's output with another weight W' (the side memory): GPT-2 Conv1D x W' + b, else x W'^T + b. */
export function sideForward(x: Tensor, weight: Tensor, bias: Tensor | null, conv1d: boolean): Tensor {
  if (conv1d) {
    const shape = x.shape;
    const flat = x.reshape(-1, shape[shape.length - 1] as number);
    const out = bias ? torch.addmm(bias, flat, weight) : flat.matmul(weight);
    return out.view(...shape.slice(0, -1), weight.size(1));
  }
  return torch.F.linear(x, weight, bias);
}

/** ||act(new) - act(orig)||_2 at every position: [B, T]. */
export function activationDistance(orig: Tensor, out: Tensor, act: Activation): Tensor {
  return act(out).sub(act(orig)).norm(2, -1);
}

/** EasyEdit's euc with infer=True on distances [B, n]: the mean over positions, the maximum when n > 100. */
function inferScore(d: Tensor): Tensor {
  return d.size(1) > 100 ? d.amax(1) : d.mean(1);
}

/**
 * The routing score of each sequence (EasyEdit euc with infer=True): the mean over its positions of the
 * activation distance, or its maximum when the sequence is longer than 100 tokens. With `real` (the
 * real positions of each row, ./padding.ts) only those count, as if the row ran alone unpadded; a row
 * without one scores NaN.
 */
export function routingScores(
  orig: Tensor,
  out: Tensor,
  act: Activation,
  real: number[][] | null = null,
): number[] {
  const d = activationDistance(orig, out, act);
  if (real === null) return inferScore(d).to("float64").toNumbers();
  return real.map((pos, b) => {
    if (pos.length === 0) return NaN;
    const row = d.select(0, b);
    const kept =
      pos.length === row.size(0)
        ? row
        : row.indexSelect(0, torch.tensor(pos, { dtype: "int64", device: row.device }));
    return inferScore(kept.unsqueeze(0)).to("float64").item();
  });
}

/** Which memory each sequence uses: -1 the main memory, 0 the shard, 1 + i memory i (retrieve) / the side (merge). */
export interface Routed {
  choice: number[];
  outputs: Tensor[];
}

/**
 * The routing decision of WISEAdapter.forward for a batch (see the header); `real`: the real positions
 * of each row (null: all of them), rows without one stay on the main memory.
 */
export function route(
  s: WiseState,
  orig: Tensor,
  x: Tensor,
  bias: Tensor | null,
  conv1d: boolean,
  act: Activation,
  real: number[][] | null = null,
): Routed {
  const routed = decide(s, orig, x, bias, conv1d, act, real);
  real?.forEach((pos, b) => {
    if (pos.length === 0) routed.choice[b] = -1;
  });
  return routed;
}

function decide(
  s: WiseState,
  orig: Tensor,
  x: Tensor,
  bias: Tensor | null,
  conv1d: boolean,
  act: Activation,
  real: number[][] | null,
): Routed {
  const B = orig.size(0);
  const outputs: Tensor[] = [];
  const choice = new Array<number>(B).fill(-1);
  if (s.retrieve) {
    const best = new Array<number>(B).fill(0);
    if (s.shard) {
      const out = sideForward(x, s.shard.to(orig.dtype), bias, conv1d);
      outputs.push(out);
      const sc = routingScores(orig, out, act, real);
      const thr = s.shardMinAct * s.actRatio;
      sc.forEach((v, b) => {
        best[b] = v;
        if (!(v < thr)) choice[b] = 0;
      });
    } else outputs.push(orig);
    s.memories.forEach((m, i) => {
      const out = sideForward(x, m.weight.to(orig.dtype), bias, conv1d);
      outputs.push(out);
      const sc = routingScores(orig, out, act, real);
      const thr = m.minAct * s.actRatio;
      sc.forEach((v, b) => {
        if (v > (best[b] as number) && v > thr) {
          choice[b] = 1 + i;
          best[b] = v;
        }
      });
    });
    return { choice, outputs };
  }
  // WISE-Merge
  const side = s.view ?? s.side;
  const shard = s.view ? null : s.shard;
  const shardOut = shard ? sideForward(x, shard.to(orig.dtype), bias, conv1d) : orig;
  const sideOut = side ? sideForward(x, side.to(orig.dtype), bias, conv1d) : orig;
  outputs.push(shardOut, sideOut);
  const s2 = shard ? routingScores(orig, shardOut, act, real) : new Array<number>(B).fill(0);
  const s1 = side ? routingScores(orig, sideOut, act, real) : new Array<number>(B).fill(0);
  const thr = s.minActAll * s.actRatio;
  for (let b = 0; b < B; b++) {
    const d1 = s1[b] as number;
    const d2 = s2[b] as number;
    if (d1 < thr && d2 < thr) choice[b] = -1;
    else if (d1 > d2) choice[b] = side ? 1 : -1;
    else choice[b] = shard ? 0 : -1;
  }
  return { choice, outputs };
}

/** Puts each sequence's chosen output in place of the module's output (untouched rows keep their bits). */
export function applyRouting(orig: Tensor, r: Routed): Tensor {
  let y = orig;
  const B = orig.size(0);
  r.outputs.forEach((out, k) => {
    if (out === orig) return;
    const rows = r.choice.map((c) => c === k);
    if (!rows.some(Boolean)) return;
    const m = torch.tensor(rows, { dtype: "bool", device: orig.device }).view(B, 1, 1);
    y = torch.where(m, out, y);
  });
  return y;
}

/** Whether the module is a GPT-2 Conv1D (weight [in, out]). */
export function isConv1d(model: CausalLM): boolean {
  return model.config.modelType === "gpt2";
}

/** The adaptor's hooks for a WISE state. */
export function wiseHooks(
  model: CausalLM,
  module: string,
  s: WiseState,
): { where: "input" | "output"; hook: Hook }[] {
  const act = activation(model.config.activation, `${model.config.modelType} activation`);
  const conv1d = isConv1d(model);
  const active = s.shard !== null || s.memories.length > 0 || s.side !== null || s.view !== null;
  return wrapModuleHooks((inp, y) => {
    if (!active) return;
    const bias = model.params.get(`${module}.bias`) ?? null;
    const real = realPositions(model, y.size(0), y.size(1), `WISE ${module}`);
    const r = route(s, y, inp, bias, conv1d, act, real);
    if (r.choice.every((c) => c < 0)) return;
    return applyRouting(y, r);
  });
}

registerAdaptorKind(WISE_KIND, {
  hooks(model: CausalLM, module: string, entries: AdaptorEntry[]) {
    return wiseHooks(model, module, foldWise(entries));
  },
});
