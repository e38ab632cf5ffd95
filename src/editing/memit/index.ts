/**
 * MEMIT (Meng et al., 2023): edits many facts at once by spreading each fact's residual over several
 * MLP layers. kmeng01/memit's execute_memit:
 *
 *   z_i   = target block output of the last edited layer for request i (compute_z: ROME's value
 *           optimisation with the delta on the block output)
 *   for each layer l (ascending), on the model with the earlier layers' updates:
 *     K   = keys at l [d_in, n];  R = (z - current block output of the last layer) / (layers left)
 *     dW  = R K^T (mom2_update_weight * C + K K^T)^-1      (float64 solve)
 *   all weights are restored; the deltas (rank n) are returned and applied by the journal.
 */
import * as torch from "../../torch/index.js";
import type { Tensor } from "../../torch/index.js";
import type { EditContext, EditMethod, EditResult } from "../editor.js";
import type { EditRequest } from "../request.js";
import { moduleAt } from "../hparams.js";
import { TemporaryEdits, type ParamDelta } from "../journal.js";
import { optimiseValue } from "../rome/compute_v.js";
import { contextTemplates, freeDelta, isConv1D } from "../rome/index.js";
import { computeKs, currentOutputs } from "./compute_ks.js";
import { MEMIT_SCHEMA, parseMemitHparams, type MemitHparams } from "./hparams.js";

/**
 * Template groups: ["{}"] and the generated (or given) templates, as MEMIT averages them. MEMIT
 * generates its 5 templates with "{" and "}" replaced by spaces (ROME removes them).
 */
export function templateGroups(ctx: EditContext, h: MemitHparams): string[][] {
  const flat = contextTemplates(ctx, h, "space");
  const rest = flat.filter((t) => t !== "{}");
  return rest.length > 0 ? [["{}"], rest] : [["{}"]];
}

/** The targets z_i of compute_z, stacked [d, n]. */
export function computeZs(
  ctx: EditContext,
  requests: EditRequest[],
  h: MemitHparams,
  groups: string[][],
  method: string,
): { zs: Tensor; losses: number[][] } {
  const zLayer = h.layers[h.layers.length - 1] as number;
  const module = moduleAt(h.layer_module_tmp, zLayer);
  const flat = groups.flat();
  const losses: number[][] = [];
  const zs = torch.scope(() => {
    const cols = requests.map((r) => {
      const o = optimiseValue(ctx, r, zLayer, h, flat, { module, method });
      losses.push(o.losses);
      return o.target.to("float32");
    });
    return torch.stack(cols, 1);
  });
  return { zs, losses };
}

/** The covariance C (moment, float32) of a module's input, as MEMIT's get_cov. */
export function covariance(ctx: EditContext, module: string, h: MemitHparams): Tensor {
  return ctx.stats(module, { nSamples: h.mom2_n_samples, dtype: h.mom2_dtype as "float32" | "float64" }).mom2;
}

/**
 * The per-layer update loop shared by MEMIT and its successors. `solve(l, K, R)` returns the update
 * factors for layer l: the update is U V^T in [d_out, d_in] orientation (MEMIT: U = R, V = adj_k).
 */
export function spreadOverLayers(
  ctx: EditContext,
  requests: EditRequest[],
  h: MemitHparams,
  groups: string[][],
  zs: Tensor,
  solve: (layer: number, i: number, K: Tensor, R: Tensor) => { U: Tensor; V: Tensor },
): ParamDelta[] {
  const zLayer = h.layers[h.layers.length - 1] as number;
  const zModule = moduleAt(h.layer_module_tmp, zLayer);
  const layers = [...h.layers].sort((a, b) => a - b);
  const deltas: ParamDelta[] = [];
  const live = new TemporaryEdits(ctx.model);
  const conv = isConv1D(ctx.model);
  try {
    layers.forEach((layer, i) => {
      const module = moduleAt(h.rewrite_module_tmp, layer);
      const param = `${module}.weight`;
      const d = torch.scope(() => {
        const K = computeKs(ctx, requests, module, groups, h.fact_token).T.to("float64"); // [d_in, n]
        const cur = currentOutputs(ctx, requests, zModule, h.fact_token).T.to("float32"); // [d, n]
        const R = zs
          .sub(cur)
          .to("float64")
          .div(layers.length - i); // residual spread over the layers left
        const { U, V } = solve(layer, i, K, R);
        const delta: ParamDelta = conv
          ? { param, u: V.keep(), v: U.keep() }
          : { param, u: U.keep(), v: V.keep() };
        return delta;
      });
      deltas.push(d);
      // on the live weight (W0 + delta, as MEMIT's weights_copy + upd) for the next layers
      live.add(d);
    });
  } catch (e) {
    for (const d of deltas) freeDelta(d);
    throw e;
  } finally {
    live.restore();
  }
  return deltas;
}

export const memit: EditMethod<MemitHparams> = {
  name: "MEMIT",
  schema: MEMIT_SCHEMA,
  maxBatch: Number.MAX_SAFE_INTEGER,
  parseHparams: (raw, where, model) =>
    parseMemitHparams<MemitHparams>(MEMIT_SCHEMA, raw, where, model, "MEMIT"),
  compute(ctx: EditContext, requests: EditRequest[], h: MemitHparams): EditResult {
    const groups = templateGroups(ctx, h);
    const { zs, losses } = computeZs(ctx, requests, h, groups, "MEMIT");
    try {
      const deltas = spreadOverLayers(ctx, requests, h, groups, zs, (layer, _i, K, R) => {
        const C = covariance(ctx, moduleAt(h.rewrite_module_tmp, layer), h).to("float32").to("float64");
        const A = C.mul(h.mom2_update_weight).add(K.matmul(K.T));
        const adjK = torch.linalg.solve(A, K); // [d_in, n]
        return { U: R, V: adjK };
      });
      return { deltas, info: { losses } };
    } finally {
      zs.free();
    }
  },
};
