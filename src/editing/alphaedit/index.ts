/**
 * AlphaEdit (Fang et al., 2025; jianghoucheng/AlphaEdit): MEMIT's targets, keys and residuals, with the
 * update projected onto the null space of the preserved keys so their outputs do not move:
 *
 *   P_l = U U^T over the eigenvectors of C_l (the unedited model's E[k k^T]) with eigenvalue
 *         < nullspace_threshold (absolute, strict), computed once per session;
 *   X   = solve(P (K K^T + Cp_l) + L2 I,  P K R^T)          [d_in, d_out], float32
 *   W  += X (in the weight's layout), and after the batch Cp_l += K' K'^T with the keys of the edited model
 *         (the accumulated term of sequential editing).
 *
 * The update is stored as rank-n factors (A^-1 P K) R^T instead of the dense solve A^-1 (P K R^T): the
 * same matrix up to float32 rounding, and 1,000 sequential edits do not hold 1,000 dense matrices.
 * Cp accumulates when an edit is applied; undoing an edit does not remove its keys from Cp (as in the
 * reference, where Cp only grows).
 */
import * as torch from "../../torch/index.js";
import type { Tensor } from "../../torch/index.js";
import type { EditContext, EditMethod, EditResult } from "../editor.js";
import type { EditRequest } from "../request.js";
import { moduleAt, type Schema } from "../hparams.js";
import { TemporaryEdits } from "../journal.js";
import { MEMIT_SCHEMA, parseMemitHparams, type MemitHparams } from "../memit/hparams.js";
import { computeZs, covariance, spreadOverLayers, templateGroups } from "../memit/index.js";
import { computeKs } from "../memit/compute_ks.js";

export interface AlphaEditHparams extends MemitHparams {
  nullspace_threshold: number;
  L2: number;
}

export const ALPHAEDIT_SCHEMA: Schema = {
  ...MEMIT_SCHEMA,
  mom2_update_weight: {
    type: "number",
    default: 20000,
    doc: "read for EasyEdit files; AlphaEdit does not use it",
  },
  nullspace_threshold: {
    type: "number",
    default: 2e-2,
    doc: "eigenvalues of C below this span the null space",
  },
  L2: { type: "number", default: 10, doc: "ridge term L2 * I in the solve" },
  P_loc: {
    type: "string|null",
    default: null,
    doc: "EasyEdit's projector file (not read: P is computed from the statistics)",
  },
};

/** The null-space projector of a layer (cached per session). */
export function projector(ctx: EditContext, module: string, h: AlphaEditHparams): Tensor {
  const key = `alphaedit:P:${module}:${h.nullspace_threshold}:${h.mom2_n_samples}`;
  let P = ctx.cache.get(key) as Tensor | undefined;
  if (!P) {
    P = torch.scope(() => {
      const C = covariance(ctx, module, h).to("float64");
      const { eigenvalues, eigenvectors } = torch.linalg.eigh(C);
      const keep = eigenvalues.abs().lt(h.nullspace_threshold);
      const U = eigenvectors.index(":", keep);
      return U.matmul(U.T).to("float32").keep();
    });
    ctx.cache.set(key, P);
  }
  return P;
}

function accumulated(ctx: EditContext, module: string, d: number): Tensor {
  // a `state:` entry: saved with the journal so that a resumed sequential run continues it
  const key = `state:alphaedit:Cp:${module}`;
  let Cp = ctx.cache.get(key) as Tensor | undefined;
  if (!Cp) {
    Cp = torch.zeros([d, d]).keep();
    ctx.cache.set(key, Cp);
  }
  return Cp;
}

export const alphaedit: EditMethod<AlphaEditHparams> = {
  name: "AlphaEdit",
  schema: ALPHAEDIT_SCHEMA,
  maxBatch: Number.MAX_SAFE_INTEGER,
  parseHparams: (raw, where, model) =>
    parseMemitHparams<AlphaEditHparams>(ALPHAEDIT_SCHEMA, raw, where, model, "AlphaEdit"),
  compute(ctx: EditContext, requests: EditRequest[], h: AlphaEditHparams): EditResult {
    const groups = templateGroups(ctx, h);
    // projectors come from the statistics of the model as first seen (unedited), before any update
    for (const l of h.layers) projector(ctx, moduleAt(h.rewrite_module_tmp, l), h);
    const { zs, losses } = computeZs(ctx, requests, h, groups, "AlphaEdit");
    try {
      const deltas = spreadOverLayers(ctx, requests, h, groups, zs, (layer, _i, K64, R64) => {
        const module = moduleAt(h.rewrite_module_tmp, layer);
        const K = K64.to("float32");
        const R = R64.to("float32");
        const P = projector(ctx, module, h);
        const Cp = accumulated(ctx, module, K.size(0));
        const A = P.matmul(K.matmul(K.T).add(Cp)).add(torch.eye(K.size(0)).mul(h.L2));
        const AinvPK = torch.linalg.solve(A, P.matmul(K)); // [d_in, n]
        return { U: R, V: AinvPK };
      });
      // Cp += K' K'^T with the keys of the edited model (the deltas applied temporarily)
      const live = new TemporaryEdits(ctx.model);
      for (const d of deltas) live.add(d);
      try {
        for (const l of h.layers) {
          const module = moduleAt(h.rewrite_module_tmp, l);
          torch.scope(() => {
            const K = computeKs(ctx, requests, module, groups, h.fact_token).T.to("float32");
            accumulated(ctx, module, K.size(0)).add_(K.matmul(K.T));
          });
        }
      } finally {
        live.restore();
      }
      return { deltas, info: { losses } };
    } finally {
      zs.free();
    }
  },
};
