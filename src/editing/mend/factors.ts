/**
 * What MEND and MALMEN read from the model and how they write to it, shared by both:
 *
 *  - `inputsAndOutputGrads`: one forward and backward of a loss with each edited module's input recorded
 *    and a zero leaf added to its output; the gradient of the loss with respect to that leaf is the
 *    gradient with respect to the module's output (the reference's forward and full-backward hooks:
 *    `__x__` and `__delta__` in MEND, `keys` and `values_grad` in MALMEN).
 *  - `shiftHooks`: the module computes with its weight plus a shift that depends on the editor's
 *    parameters, y + x S (S in the (in, out) orientation), without copying or changing the weight, so the
 *    loss after the edit is differentiable with respect to the editor (MEND's `higher` monkey-patching,
 *    MALMEN's in-place edit_model, done as a differentiable term).
 *  - the losses of the training objective: the token-mean NLL of a target (EasyEdit's masked_log_probs
 *    "nll", MALMEN's cross_entropy) and the locality KL(pre || post) averaged over the answer positions
 *    (MEND's kl_loc_loss, MALMEN's kl_div with batchmean over the selected positions: the same number).
 */
import * as torch from "../../torch/index.js";
import type { Tensor } from "../../torch/index.js";
import type { CausalLM, Hook } from "../../models/model.js";
import type { Tokenizer } from "../../models/tokenizer/index.js";
import { targetText } from "../request.js";
import { targetBatch, type TargetTokens } from "../lora/loss.js";
import type { EditedWeight } from "./hparams.js";

const { F } = torch;

/** Token ids of a prompt followed by the spaced target (EasyEdit: `prompt + " " + target`). */
export function promptTarget(tok: Tokenizer, prompt: string, target: string): TargetTokens {
  return {
    prompt: tok.encode(prompt, { addSpecialTokens: true }),
    target: tok.encode(targetText(target), { addSpecialTokens: false }),
  };
}

export interface TokenBatch {
  /** [B, W] int64 */
  ids: Tensor;
  /** [B, W] int64 (1 = token, 0 = padding) */
  mask: Tensor;
  /** [B, W - 1]: the token position t predicts, -100 outside the targets */
  labels: Tensor;
  width: number;
}

/** Right-padded prompt + target rows with target-only labels. */
export function tokenBatch(tok: Tokenizer, items: TargetTokens[]): TokenBatch {
  return targetBatch(tok, items);
}

/** Rows [start, start + n) of a batch's logits aligned with its labels: [n, W - 1, V]. */
export function labelLogits(logits: Tensor, start: number, n: number): Tensor {
  return logits.narrow(0, start, n).narrow(1, 0, logits.size(1) - 1);
}

/** Logits in float32 (the references' .to(torch.float32)), float64 kept as it is. */
function wide(t: Tensor): Tensor {
  return t.dtype === "float64" || t.dtype === "float32" ? t : t.to("float32");
}

/** Token-mean NLL of the labelled positions (logits [n, W-1, V], labels [n, W-1]). */
export function targetNllOf(logits: Tensor, labels: Tensor): Tensor {
  return F.crossEntropy(wide(logits.reshape(-1, logits.size(-1))), labels.reshape(-1), {
    ignoreIndex: -100,
  });
}

/** Fraction of labelled positions whose argmax is the label (EasyEdit's token accuracy). */
export function targetAccuracyOf(logits: Tensor, labels: Tensor): number {
  return torch.noGrad(() =>
    torch.scope(() => {
      const m = labels.ne(-100);
      const hit = logits.argmax(-1).eq(labels).logicalAnd(m);
      return hit.sum().item() / Math.max(1, m.sum().item());
    }),
  );
}

/** Mean over labelled positions of KL(pre || post) = sum_v p_pre (log p_pre - log p_post). */
export function localityKl(preLogits: Tensor, postLogits: Tensor, labels: Tensor): Tensor {
  const pre = wide(preLogits).logSoftmax(-1);
  const post = wide(postLogits).logSoftmax(-1);
  const kl = pre.exp().mul(pre.sub(post)).sum(-1);
  const m = labels.ne(-100).to(kl.dtype);
  return kl.mul(m).sum().div(m.sum());
}

/**
 * The input of each module [B, W, in] and the gradient of `loss(logits)` with respect to its output
 * [B, W, out], from one forward and backward (detached; in the caller's scope). Gradients are taken only
 * with respect to the added zero leaves, so no weight gets a .grad.
 */
export function inputsAndOutputGrads(
  model: CausalLM,
  weights: EditedWeight[],
  batch: { ids: Tensor; mask: Tensor },
  loss: (logits: Tensor) => Tensor,
): { x: Tensor[]; delta: Tensor[]; loss: number } {
  const B = batch.ids.size(0);
  const W = batch.ids.size(1);
  const xs: (Tensor | null)[] = weights.map(() => null);
  const zs = weights.map((w) => torch.zeros([B, W, w.fout], { dtype: model.dtype }).requiresGrad_(true));
  const hooks = weights.flatMap((w, i) => [
    {
      module: w.module,
      where: "input" as const,
      hook: ((x: Tensor) => {
        xs[i]?.free();
        xs[i] = x.detach().keep();
      }) as Hook,
    },
    { module: w.module, where: "output" as const, hook: ((y: Tensor) => y.add(zs[i] as Tensor)) as Hook },
  ]);
  try {
    const { grads, value } = torch.enableGrad(() =>
      torch.scope(() => {
        const logits = model.withHooks(
          hooks,
          () => model.forward({ inputIds: batch.ids, attentionMask: batch.mask }).logits,
        );
        const l = loss(logits);
        const g = torch.grad([l], zs);
        return { grads: g, value: l.item() };
      }),
    );
    const delta = grads.map((g, i) => {
      if (g === null)
        throw new Error(
          `the loss does not depend on ${weights[i]?.module}'s output (is it after the last logits?)`,
        );
      return g;
    });
    const x = xs.map((t, i) => {
      if (t === null) throw new Error(`module ${weights[i]?.module} did not run in the forward pass`);
      return t.attach();
    });
    return { x, delta, loss: value };
  } catch (e) {
    for (const t of xs) t?.free();
    throw e;
  } finally {
    for (const z of zs) z.free();
  }
}

/** A module computing with its weight shifted: y + term(x), term differentiable in the editor. */
export interface WeightShift {
  module: string;
  /** the output change for the module's input x [..., in] */
  term: (x: Tensor) => Tensor;
}

/** Hooks that make every module compute y + term(x) (the input recorded by an input hook). */
export function shiftHooks(
  shifts: WeightShift[],
): { module: string; where: "input" | "output"; hook: Hook }[] {
  return shifts.flatMap((s) => {
    let x: Tensor | null = null;
    return [
      { module: s.module, where: "input" as const, hook: ((v: Tensor) => void (x = v)) as Hook },
      {
        module: s.module,
        where: "output" as const,
        hook: ((y: Tensor) => {
          const inp = x as Tensor;
          x = null;
          const t = s.term(inp);
          return y.add(t.dtype === y.dtype ? t : t.to(y.dtype));
        }) as Hook,
      },
    ];
  });
}

/** Row indices (into [B * W]) where a per-row condition [B * W] (bool) holds. */
export function rowsWhere(cond: Tensor): Tensor {
  const flags = cond.toNumbers();
  const idx: number[] = [];
  flags.forEach((f, i) => {
    if (f) idx.push(i);
  });
  return torch.tensor(idx, { dtype: "int64" });
}
