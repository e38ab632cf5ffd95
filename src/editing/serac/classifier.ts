/**
 * SERAC's scope classifier (Mitchell et al. 2022; eric-mitchell/serac algs/rep.py, EasyEdit
 * easyeditor/trainer/algs/SERAC.py `embedding_logsim_matrix`): an embedding model maps the edit's input
 * and the test input to vectors; with `dist_heads` heads of the vector,
 *   dist = ||e_edit - e_test||_2 (squared with `square`), or 1 - cos(e_edit, e_test) with `cos`,
 *   (each head bounded by tanh first with `bound_embeds`), the minimum over heads,
 *   log sim = -dist * scale  (scale: a buffer fixed at 1.0 in the reference),
 * and the test is in the edit's scope when exp(log sim) > 0.5.
 *
 * The embedding model: the reference fine-tunes distilbert and reads its first ([CLS]) token. No such
 * model is available here and the scope decision must be causal (see ./router.ts), so the embedding of a
 * sequence's prefix x_1..x_t is the mean of a causal LM's final hidden states (after its final norm) over
 * positions 1..t, through a learned linear projection: one forward pass gives every prefix's embedding.
 * The backbone must share the edited model's tokenizer.
 */
import * as torch from "../../torch/index.js";
import type { Tensor } from "../../torch/index.js";
import type { CausalLM } from "../../models/model.js";

export interface ScopeGeometry {
  cos: boolean;
  square: boolean;
  dist_heads: number;
  bound_embeds: boolean;
}

export class ScopeClassifier {
  constructor(
    /** the embedding backbone (a causal LM with the edited model's tokenizer) */
    readonly backbone: CausalLM,
    /** the projection [p, d] applied to the mean hidden state */
    readonly proj: Tensor,
    readonly geometry: ScopeGeometry,
    /** the reference's `scale` buffer (1.0) */
    readonly scale = 1,
  ) {
    if (proj.shape[1] !== backbone.config.hiddenSize)
      throw new Error(
        `scope classifier: the projection is [${proj.shape.join(", ")}], the backbone's hidden size ${backbone.config.hiddenSize}`,
      );
    if ((proj.shape[0] as number) % geometry.dist_heads !== 0)
      throw new Error(
        `scope classifier: dist_heads ${geometry.dist_heads} does not divide the embedding size ${proj.shape[0]}`,
      );
  }

  get dim(): number {
    return this.proj.shape[0] as number;
  }

  /**
   * Embeddings of every prefix of right-padded rows ids [R, W]: [R, W, p], position t holding the
   * projected mean of the final hidden states at 0..t (padding after a row's end does not reach them).
   */
  prefixEmbeddings(ids: Tensor): Tensor {
    const W = ids.shape[1] as number;
    const out = this.backbone.forward({ inputIds: ids, outputHiddenStates: true, lastOnly: true });
    const hs = out.hiddenStates as Tensor[];
    const h = hs[hs.length - 1] as Tensor; // [R, W, d], after the final norm
    const counts = torch
      .arange(1, W + 1)
      .to(h.dtype)
      .view(1, W, 1);
    return h.cumsum(1).div(counts).matmul(this.proj.T);
  }

  /** Embeddings [m, p] of one row's prefixes ending at the given positions. */
  embedAt(row: readonly number[], positions: readonly number[]): Tensor {
    const e = this.prefixEmbeddings(torch.tensor([[...row]], { dtype: "int64" })).select(0, 0);
    return e.indexSelect(0, torch.tensor([...positions], { dtype: "int64" }));
  }

  /** The embedding [p] of a whole sequence (an edit's input). */
  embed(row: readonly number[]): Tensor {
    return this.embedAt(row, [row.length - 1]).select(0, 0);
  }

  /** log sim [Q, K] of queries [Q, p] against keys [K, p] (the reference's embedding_logsim_matrix). */
  logSims(queries: Tensor, keys: Tensor): Tensor {
    return scopeLogSims(queries, keys, this.geometry, this.scale);
  }
}

/** The reference's log-similarity matrix: -min over heads of the distance, times scale. */
export function scopeLogSims(queries: Tensor, keys: Tensor, g: ScopeGeometry, scale: number): Tensor {
  const Q = queries.shape[0] as number;
  const K = keys.shape[0] as number;
  const H = g.dist_heads;
  let q = queries.view(Q, H, -1);
  let k = keys.view(K, H, -1);
  if (g.bound_embeds) {
    q = q.tanh();
    k = k.tanh();
  }
  const qe = q.unsqueeze(1); // [Q, 1, H, p/H]
  const ke = k.unsqueeze(0); // [1, K, H, p/H]
  let dist: Tensor;
  if (g.cos) {
    const cos = qe
      .mul(ke)
      .sum(-1)
      .div(qe.norm(2, -1).mul(ke.norm(2, -1)));
    dist = cos.rsub(1);
  } else {
    const diff = qe.sub(ke);
    dist = g.square ? diff.mul(diff).sum(-1) : diff.norm(2, -1);
  }
  const minDist = H === 1 ? dist.squeeze(-1) : dist.amin(-1);
  return minDist.mul(-scale);
}

/**
 * The original's balanced binary cross-entropy on log-similarities (eric-mitchell/serac losses.py
 * balanced_bce): mean(-log sim) over positives + mean(-log(1 - sim)) over negatives (1 - sim = 0 moved
 * to float32 eps).
 */
export function balancedBce(posLogSims: Tensor | null, negLogSims: Tensor | null): Tensor {
  const eps = 1.1920928955078125e-7;
  const parts: Tensor[] = [];
  if (posLogSims && posLogSims.numel() > 0) parts.push(posLogSims.neg().mean());
  if (negLogSims && negLogSims.numel() > 0) {
    const p = negLogSims.exp().rsub(1);
    parts.push(torch.where(p.eq(0), p.add(eps), p).log().neg().mean());
  }
  if (parts.length === 0) return torch.tensor(0);
  return parts.length === 1 ? (parts[0] as Tensor) : (parts[0] as Tensor).add(parts[1] as Tensor);
}
