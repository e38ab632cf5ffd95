/**
 * WISE's knowledge-shard merging (EasyEdit easyeditor/models/wise/merge/: gta.py, utils.py, linear.py,
 * slerp.py; WISE.py `merge_dict`). Shards are full copies of the side-memory weight; a merge works on
 * their task vectors tau_i = W_i - W_base:
 *
 *   GTA(sparsify, consensus, normalize) with weights w_i and density rho:
 *     tau_i  <- sparsify(tau_i, rho)          magnitude: keep the k = int(rho * numel) entries of largest |tau|;
 *                                             rescaled_random / random: Bernoulli(rho) mask (/ rho if rescaled)
 *     d_i     = w_i tau_i
 *     consensus "sum" (TIES' sign election): s = sign(sum_i d_i) (>= 0 counts as +), m_i = [sign(d_i) == s],
 *                                            mixed = sum_i m_i d_i, divisor = sum_i m_i w_i (0 -> 1);
 *     no consensus:                          mixed = sum_i d_i,     divisor = sum_i w_i (|.| < 1e-8 -> 1)
 *     normalize: mixed /= divisor;  result = W_base + mixed
 *
 *   merge_alg: ties = GTA(magnitude, sum, normalize), magnitude_norm = GTA(magnitude, -, normalize),
 *   magnitude = GTA(magnitude, -, -), sign = GTA(-, sum, normalize), dare_ties = GTA(rescaled_random, sum, -),
 *   dare_linear = GTA(random, -, -); linear: t v1 + (1 - t) v0; slerp: spherical interpolation of the
 *   flattened weights (lerp when |cos| > 0.9995). As in the reference, linear and slerp take only the first
 *   weight and the first shard of their lists.
 *
 * Deliberate differences: the random masks of the DARE variants come from a seeded generator (EasyEdit:
 * the global RNG); slerp computes in float64 (EasyEdit: numpy float32).
 */
import * as torch from "../../torch/index.js";
import type { Tensor } from "../../torch/index.js";

export const MERGE_ALGS = [
  "ties",
  "magnitude_norm",
  "magnitude",
  "sign",
  "dare_ties",
  "dare_linear",
  "linear",
  "slerp",
] as const;
export type MergeAlg = (typeof MERGE_ALGS)[number];

type Sparsify = "magnitude" | "rescaled_random" | "random" | null;

interface GtaSpec {
  sparsify: Sparsify;
  consensus: "sum" | null;
  normalize: boolean;
}

/** EasyEdit WISE.py merge_dict, the GTA entries. */
const GTA: Record<Exclude<MergeAlg, "linear" | "slerp">, GtaSpec> = {
  ties: { sparsify: "magnitude", consensus: "sum", normalize: true },
  magnitude_norm: { sparsify: "magnitude", consensus: null, normalize: true },
  magnitude: { sparsify: "magnitude", consensus: null, normalize: false },
  sign: { sparsify: null, consensus: "sum", normalize: true },
  dare_ties: { sparsify: "rescaled_random", consensus: "sum", normalize: false },
  dare_linear: { sparsify: "random", consensus: null, normalize: false },
};

/** merge/utils.py magnitude: keeps the int(density * numel) entries of largest magnitude. */
export function magnitudePrune(tau: Tensor, density: number): Tensor {
  if (density >= 1) return tau;
  const n = tau.numel();
  const k = Math.trunc(density * n);
  if (k <= 0) throw new Error(`WISE merge: density ${density} keeps no entry of a ${n}-entry shard`);
  const flat = tau.reshape(-1);
  const { indices } = flat.abs().to("float32").topk(k, -1, true, true);
  const mask = torch.zerosLike(flat).scatter(0, indices, 1);
  return flat.mul(mask).view(...tau.shape);
}

/** merge/utils.py bernoulli: a Bernoulli(density) mask, divided by density when rescaled. */
export function bernoulliPrune(tau: Tensor, density: number, rescale: boolean, gen: torch.Generator): Tensor {
  if (density >= 1) return tau;
  const mask = torch.rand(tau.shape, { generator: gen }).lt(density).to(tau.dtype);
  const out = tau.mul(mask);
  return rescale ? out.div(density) : out;
}

/** gta.py GTA.execute: base + the (sparsified, sign-elected, normalised) weighted task vectors. */
export function gtaMerge(
  spec: GtaSpec,
  weights: number[],
  base: Tensor,
  shards: Tensor[],
  density: number,
  gen: torch.Generator,
): Tensor {
  if (weights.length !== shards.length)
    throw new Error(`WISE merge: ${weights.length} weights for ${shards.length} shards`);
  if (shards.length === 0) return base.clone();
  const taus = shards.map((s) => {
    const tau = s.sub(base);
    if (spec.sparsify === "magnitude") return magnitudePrune(tau, density);
    if (spec.sparsify === "rescaled_random") return bernoulliPrune(tau, density, true, gen);
    if (spec.sparsify === "random") return bernoulliPrune(tau, density, false, gen);
    return tau;
  });
  const deltas = torch.stack(taus, 0);
  const w = torch.tensor(weights, { dtype: deltas.dtype }).view(weights.length, ...base.shape.map(() => 1));
  const weighted = deltas.mul(w);
  let mixed: Tensor;
  let divisor: Tensor;
  if (spec.consensus === "sum") {
    const majority = weighted.sum(0).ge(0).to(base.dtype).mul(2).sub(1);
    const mask = weighted.sign().to(base.dtype).eq(majority).to(base.dtype);
    mixed = weighted.mul(mask).sum(0);
    divisor = w.mul(mask).sum(0);
    divisor = torch.where(divisor.eq(0), 1, divisor);
  } else {
    mixed = weighted.sum(0);
    divisor = w.sum(0);
    divisor = torch.where(divisor.abs().lt(1e-8), 1, divisor);
  }
  if (spec.normalize) mixed = mixed.div(divisor);
  return base.add(mixed).to(base.dtype);
}

/** linear.py: t v1 + (1 - t) v0. */
export function linearMerge(t: number, v0: Tensor, v1: Tensor): Tensor {
  return v1.mul(t).add(v0.mul(1 - t));
}

/** slerp.py: spherical interpolation of the flattened tensors (lerp when nearly colinear). */
export function slerpMerge(t: number, v0: Tensor, v1: Tensor, dotThreshold = 0.9995, eps = 1e-8): Tensor {
  const a = v0.to("float64");
  const b = v1.to("float64");
  const unit = (v: Tensor) => {
    const n = v.norm().item();
    return n > eps ? v.div(n) : v;
  };
  const dot = unit(a).mul(unit(b)).sum().item();
  let res: Tensor;
  if (Math.abs(dot) > dotThreshold) res = a.mul(1 - t).add(b.mul(t));
  else {
    const theta0 = Math.acos(dot);
    const sin0 = Math.sin(theta0);
    const thetaT = theta0 * t;
    res = a.mul(Math.sin(theta0 - thetaT) / sin0).add(b.mul(Math.sin(thetaT) / sin0));
  }
  return res.to(v0.dtype);
}

/** One merge as WISE calls merge_alg.execute(weights, base, shards, densities). */
export function mergeShards(
  alg: MergeAlg,
  weights: number[],
  base: Tensor,
  shards: Tensor[],
  density: number,
  gen: torch.Generator,
): Tensor {
  if (alg === "linear") return linearMerge(weights[0] as number, base, shards[0] as Tensor);
  if (alg === "slerp") return slerpMerge(weights[0] as number, base, shards[0] as Tensor);
  return gtaMerge(GTA[alg], weights, base, shards, density, gen);
}
