/**
 * MALMEN's parameter shift (ChenmienTan/malmen editor/base.py cache, editor/malmen.py
 * predict_param_shifts and update_hypernet; EasyEdit trainer/algs/MALMEN.py, the same math):
 *
 *  - keys K [N, in] and value gradients V [N, out]: a module's inputs and the gradient of the edit loss
 *    (token-mean cross-entropy of the targets of one forward chunk) with respect to its outputs, at the
 *    selected tokens of every edit (`token: mask`: every token; `ans`: the positions predicting a target
 *    token);
 *  - value differences D = -lr[m] (k . k~) v~ per token, (k~, v~) the shift network's output
 *    (`valueDiffs`, in chunks of editor_batch_size);
 *  - the shift S [in, out] that maps every key to its value difference in the least-squares sense with a
 *    ridge term: S = argmin ||K S - D||^2 + e^lamda ||S||^2 = (K^T K + e^lamda I)^-1 K^T D, the normal
 *    equation (`solveShift`); the weight becomes W + S (transposed for a linear layer's [out, in] weight);
 *  - training by truncated back-propagation (`shiftMetaGradients`): with G = dL/dS (the gradient of the
 *    post-edit losses with respect to the shifted weight) and M = (K^T K + e^lamda I)^-1 G,
 *    dL/dD = K M and dL/dlamda = -e^lamda <M, S>; dL/dD is then pushed through the shift network chunk
 *    by chunk, so no graph spans the model and the network at once.
 */
import * as torch from "../../torch/index.js";
import type { Tensor } from "../../torch/index.js";
import type { CausalLM } from "../../models/model.js";
import type { Tokenizer } from "../../models/tokenizer/index.js";
import type { ParamDelta } from "../journal.js";
import type { TargetTokens } from "../lora/loss.js";
import { accumulateGrad } from "../mend/loop.js";
import {
  inputsAndOutputGrads,
  labelLogits,
  rowsWhere,
  shiftHooks,
  targetNllOf,
  tokenBatch,
} from "../mend/factors.js";
import { malmenForward, updateNormalizer, type MalmenEditor, type MalmenSlot } from "./nets.js";

/**
 * Keys and value gradients of one forward chunk of edits, per slot ([n, in], [n, out], float32 or the
 * editor's dtype), at the tokens `token` selects; the statistics are updated with them when `training`.
 */
export function keysAndValueGrads(
  model: CausalLM,
  tok: Tokenizer,
  ed: MalmenEditor,
  items: TargetTokens[],
  token: string,
  training: boolean,
): { keys: Tensor[]; valuesGrad: Tensor[]; loss: number } {
  const batch = tokenBatch(tok, items);
  const { x, delta, loss } = inputsAndOutputGrads(
    model,
    ed.slots.map((s) => s.weight),
    batch,
    (logits) => targetNllOf(labelLogits(logits, 0, items.length), batch.labels),
  );
  const select =
    token === "ans"
      ? torch.cat([batch.labels.ne(-100), torch.zeros([items.length, 1], { dtype: "bool" })], 1)
      : batch.mask.eq(1);
  const rows = rowsWhere(select.reshape(-1));
  const keys: Tensor[] = [];
  const valuesGrad: Tensor[] = [];
  ed.slots.forEach((s, i) => {
    const k = (x[i] as Tensor).reshape(-1, s.weight.fin).indexSelect(0, rows).to(ed.dtype);
    const v = (delta[i] as Tensor).reshape(-1, s.weight.fout).indexSelect(0, rows).to(ed.dtype);
    if (training) updateNormalizer(s.net, torch.cat([k, v], -1));
    keys.push(k);
    valuesGrad.push(v);
  });
  return { keys, valuesGrad, loss };
}

/** D = -lr[m] (k . k~) v~ for rows [start, end) of the keys (differentiable in the network). */
export function valueDiffsChunk(slot: MalmenSlot, keys: Tensor, valuesGrad: Tensor): Tensor {
  const { k, v } = malmenForward(slot.net, keys, valuesGrad, slot.index);
  const coeffs = keys.mul(k).sum(-1, true).mul(slot.net.lr.select(0, slot.index).neg());
  return coeffs.mul(v);
}

/** D for all rows, computed in chunks of `chunk` rows without gradients. */
export function valueDiffs(slot: MalmenSlot, keys: Tensor, valuesGrad: Tensor, chunk: number): Tensor {
  return torch.noGrad(() => {
    const parts: Tensor[] = [];
    for (let s = 0; s < keys.size(0); s += chunk) {
      const n = Math.min(chunk, keys.size(0) - s);
      parts.push(valueDiffsChunk(slot, keys.narrow(0, s, n), valuesGrad.narrow(0, s, n)));
    }
    return parts.length === 1 ? (parts[0] as Tensor) : torch.cat(parts, 0);
  });
}

/** K^T K + e^lamda I. */
export function normalMatrix(keys: Tensor, lamda: number): Tensor {
  const n = keys.size(1);
  return keys.T.matmul(keys).add(torch.eye(n, n, { dtype: keys.dtype }).mul(Math.exp(lamda)));
}

/** The least-squares shift S = (K^T K + e^lamda I)^-1 K^T D [in, out] (torch.linalg.solve, as the reference). */
export function solveShift(keys: Tensor, diffs: Tensor, lamda: number): Tensor {
  return torch.linalg.solve(normalMatrix(keys, lamda), keys.T.matmul(diffs));
}

/** lamda[m] of a slot (a number). */
export function lamdaOf(slot: MalmenSlot): number {
  return slot.net.lamda.select(0, slot.index).item();
}

/**
 * The journal delta of a shift S = M D with M = (K^T K + e^lamda I)^-1 K^T [in, N]: factors (M, D^T)
 * when N < min(in, out) (rank N), else the dense matrix; in the weight's own layout. Kept.
 */
export function shiftDelta(slot: MalmenSlot, keys: Tensor, diffs: Tensor, lamda: number): ParamDelta {
  return torch.noGrad(() =>
    torch.scope(() => {
      const w = slot.weight;
      const n = keys.size(0);
      if (n < Math.min(w.fin, w.fout)) {
        const m = torch.linalg.solve(normalMatrix(keys, lamda), keys.T.contiguous()).contiguous().keep(); // [in, N]
        const d = diffs.T.contiguous().keep(); // [out, N]
        return w.conv1d ? { param: w.param, u: m, v: d } : { param: w.param, u: d, v: m };
      }
      const s = solveShift(keys, diffs, lamda);
      return { param: w.param, dense: (w.conv1d ? s.contiguous() : s.T.contiguous()).keep() };
    }),
  );
}

/** Hooks computing each module with W + S (S in the (in, out) orientation). */
export function shiftWeightHooks(slots: MalmenSlot[], shifts: Tensor[]) {
  return shiftHooks(
    slots.map((s, i) => ({
      module: s.weight.module,
      term: (x: Tensor) => x.to((shifts[i] as Tensor).dtype).matmul(shifts[i] as Tensor),
    })),
  );
}

/**
 * update_hypernet for one slot: given the shift S it applied, the gradient G = dL/dS of the post-edit
 * loss, and the keys / value gradients it was computed from, adds dL/dtheta to the network's parameters'
 * .grad (lamda through dL/dlamda = -e^lamda <M, S>, the rest through dL/dD = K M, chunk by chunk).
 */
export function shiftMetaGradients(
  slot: MalmenSlot,
  keys: Tensor,
  valuesGrad: Tensor,
  shift: Tensor,
  grad: Tensor,
  chunk: number,
): void {
  const lamda = lamdaOf(slot);
  const net = slot.net;
  const params = [...net.blocks.flatMap((b) => [b.A, b.B, b.bias, b.scale, b.shift]), net.lr];
  torch.scope(() => {
    const m = torch.noGrad(() => torch.linalg.solve(normalMatrix(keys, lamda), grad.to(keys.dtype)));
    const lamdaGrad = torch.noGrad(() => m.mul(shift).sum().item()) * -Math.exp(lamda);
    const g = torch.zerosLike(net.lamda);
    g.indexPut_([slot.index, 0], lamdaGrad);
    accumulateGrad(net.lamda, g);
    const dDiffs = torch.noGrad(() => keys.matmul(m));
    for (let s = 0; s < keys.size(0); s += chunk) {
      torch.scope(() => {
        const n = Math.min(chunk, keys.size(0) - s);
        const d = valueDiffsChunk(slot, keys.narrow(0, s, n), valuesGrad.narrow(0, s, n));
        const obj = dDiffs.narrow(0, s, n).mul(d).sum();
        const grads = torch.grad([obj], params);
        grads.forEach((gr, i) => gr && accumulateGrad(params[i] as Tensor, gr));
      });
    }
  });
}
