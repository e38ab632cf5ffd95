/**
 * One MEND edit (MEND.edit in eric-mitchell/mend algs/mend.py and EasyEdit trainer/algs/MEND.py):
 *
 *  1. the edit loss (token-mean NLL of the target after the prompt) is run forward and backward once; each
 *     edited weight's module gives its input u_t and output gradient delta_t at every token t
 *     (`inputsAndOutputGrads`);
 *  2. tokens where u_t or delta_t is all zero are dropped (padding, and the positions after the last
 *     target token); the rest pass through the weight's gradient transform (./nets.ts), giving
 *     pseudo-factors u~_t, delta~_t;
 *  3. the weight's pseudo-gradient is sum_t u~_t delta~_t^T (in the (in, out) orientation; transposed for
 *     a linear layer's [out, in] weight), rank one per token, and the edit is W <- W - lr_i * that, with
 *     lr_i the weight's learned edit learning rate.
 *
 * Sign: the paper writes W~ = W - alpha grad~ (MEND paper, eq. for the edited weight); both reference
 * implementations add (`p + lr * g`), a bug the author confirmed (eric-mitchell/mend issue #13) that
 * training compensates by flipping signs. We subtract, so an untrained identity editor takes a
 * (normalised) gradient descent step; an EasyEdit archive converted to our format must have its
 * edit_lrs negated (docs/reference/mend.md).
 */
import * as torch from "../../torch/index.js";
import type { Tensor } from "../../torch/index.js";
import type { CausalLM } from "../../models/model.js";
import type { Tokenizer } from "../../models/tokenizer/index.js";
import type { ParamDelta } from "../journal.js";
import type { TargetTokens } from "../lora/loss.js";
import { transformFactors, type MendEditor, type MendSlot } from "./nets.js";
import {
  inputsAndOutputGrads,
  labelLogits,
  rowsWhere,
  shiftHooks,
  targetNllOf,
  tokenBatch,
  type WeightShift,
} from "./factors.js";

/** The pseudo-factors of one edited weight: u~ [n, in], delta~ [n, out], and its edit learning rate. */
export interface MendFactors {
  slot: MendSlot;
  u: Tensor;
  v: Tensor;
  /** edit_lrs[i] (a 0-d view, differentiable) */
  lr: Tensor;
  /** tokens kept (non-zero input and gradient) */
  tokens: number;
}

/**
 * The raw factors of an edit batch: each edited weight's inputs u and output gradients delta at the
 * tokens where both are non-zero ([n, in], [n, out]), and the edit loss before the edit.
 */
export function rawFactors(
  model: CausalLM,
  tok: Tokenizer,
  ed: MendEditor,
  items: TargetTokens[],
): { u: Tensor[]; delta: Tensor[]; loss: number } {
  const batch = tokenBatch(tok, items);
  const { x, delta, loss } = inputsAndOutputGrads(
    model,
    ed.slots.map((s) => s.weight),
    batch,
    (logits) => targetNllOf(labelLogits(logits, 0, items.length), batch.labels),
  );
  const us: Tensor[] = [];
  const ds: Tensor[] = [];
  ed.slots.forEach((s, i) => {
    const u = (x[i] as Tensor).reshape(-1, s.weight.fin);
    const d = (delta[i] as Tensor).reshape(-1, s.weight.fout);
    const keep = rowsWhere(u.abs().amax(-1).gt(0).logicalAnd(d.abs().amax(-1).gt(0)));
    us.push(u.indexSelect(0, keep));
    ds.push(d.indexSelect(0, keep));
  });
  return { u: us, delta: ds, loss };
}

/**
 * MEND's edit factors for a batch of (prompt, target) items: the raw factors through each weight's
 * gradient transform. With `training`, the running statistics are updated first (weight by weight, in
 * inner_params order, as the reference's loop does) and the result is differentiable in the editor.
 */
export function mendFactors(
  model: CausalLM,
  tok: Tokenizer,
  ed: MendEditor,
  items: TargetTokens[],
  training: boolean,
): { factors: MendFactors[]; loss: number } {
  const raw = rawFactors(model, tok, ed, items);
  const factors = ed.slots.map((slot, i) => {
    const u = raw.u[i] as Tensor;
    if (u.size(0) === 0)
      throw new Error(
        `MEND: the edit loss has no gradient at ${slot.weight.module} (is the layer after the target's last position?)`,
      );
    const t = transformFactors(ed, slot, u, raw.delta[i] as Tensor, training);
    return { slot, u: t.u, v: t.v, lr: ed.editLrs.select(0, i), tokens: u.size(0) };
  });
  return { factors, loss: raw.loss };
}

/** The weight change lr * u~^T delta~ in the (in, out) orientation (the edit subtracts it). */
export function mendUpdate(f: MendFactors): Tensor {
  return f.u.T.matmul(f.v).mul(f.lr);
}

/** Hooks computing every edited module with W - lr u~^T delta~ (differentiable in the editor). */
export function mendEditHooks(factors: MendFactors[]) {
  const shifts: WeightShift[] = factors.map((f) => ({
    module: f.slot.weight.module,
    // x (W - lr u~^T v~) = x W - lr (x u~^T) v~
    term: (x: Tensor) => x.to(f.u.dtype).matmul(f.u.T).matmul(f.v).mul(f.lr.neg()),
  }));
  return shiftHooks(shifts);
}

/**
 * The journal deltas of an edit: -lr u~^T delta~ as rank-(tokens) factors in the weight's own layout
 * (Conv1D [in, out]: u = -lr u~^T, v = delta~^T; linear [out, in]: u = delta~^T, v = -lr u~^T). Kept
 * (the journal takes ownership).
 */
export function mendDeltas(factors: MendFactors[]): ParamDelta[] {
  return torch.noGrad(() =>
    factors.map((f) =>
      torch.scope(() => {
        const a = f.u.detach().mul(f.lr.detach().neg()).T.contiguous().keep(); // [in, n]
        const b = f.v.detach().T.contiguous().keep(); // [out, n]
        return f.slot.weight.conv1d
          ? { param: f.slot.weight.param, u: a, v: b }
          : { param: f.slot.weight.param, u: b, v: a };
      }),
    ),
  );
}
