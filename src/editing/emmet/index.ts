/**
 * EMMET (Gupta et al., 2024; scalable-model-editing/unified-model-editing): the equality-constrained
 * batch update. With MEMIT's keys K, residuals R (split over the layers) and C = w C0 (+ mu I):
 *
 *   dW = R (K^T C^-1 K + lambda_E I)^-1 K^T C^-1        (float64, explicit inverses as the reference)
 *
 * With lambda_E = 0 the edited layer maps each key exactly to its target, (W + dW) K = W K + R, while the
 * change on the preserved keys' second moment is smallest. As in the original repository, lambda_E is
 * added only for batches of more than one edit (EasyEdit adds it always: set emmet_lambda_always).
 */
import * as torch from "../../torch/index.js";
import type { EditContext, EditMethod, EditResult } from "../editor.js";
import type { EditRequest } from "../request.js";
import { moduleAt, type Schema } from "../hparams.js";
import { MEMIT_SCHEMA, parseMemitHparams, type MemitHparams } from "../memit/hparams.js";
import { computeZs, covariance, spreadOverLayers, templateGroups } from "../memit/index.js";

export interface EmmetHparams extends MemitHparams {
  emmet_lambda: number;
  update_norm_lambda: number;
  emmet_lambda_always: boolean;
}

export const EMMET_SCHEMA: Schema = {
  ...MEMIT_SCHEMA,
  layers: { type: "int[]", default: [17], doc: "edited layers (EMMET's configs edit one)" },
  mom2_update_weight: { type: "number", default: 1000, doc: "w in C = w C0 (unified-model-editing gpt2-xl)" },
  emmet_lambda: { type: "number", default: 0.1, doc: "lambda_E added to K^T C^-1 K" },
  update_norm_lambda: { type: "number", default: 0, doc: "mu in C = w C0 + mu I" },
  emmet_lambda_always: { type: "bool", default: false, doc: "add lambda_E for single edits too (EasyEdit)" },
  calculate_objective_value: { type: "bool", default: false, doc: "diagnostics of the reference; no effect" },
};

export const emmet: EditMethod<EmmetHparams> = {
  name: "EMMET",
  schema: EMMET_SCHEMA,
  maxBatch: Number.MAX_SAFE_INTEGER,
  parseHparams: (raw, where, model) =>
    parseMemitHparams<EmmetHparams>(EMMET_SCHEMA, raw, where, model, "EMMET"),
  compute(ctx: EditContext, requests: EditRequest[], h: EmmetHparams): EditResult {
    const groups = templateGroups(ctx, h);
    const { zs, losses } = computeZs(ctx, requests, h, groups, "EMMET");
    try {
      const deltas = spreadOverLayers(ctx, requests, h, groups, zs, (layer, _i, K, R) => {
        let C = covariance(ctx, moduleAt(h.rewrite_module_tmp, layer), h).to("float64");
        if (h.mom2_update_weight !== 1) C = C.mul(h.mom2_update_weight);
        if (h.update_norm_lambda !== 0)
          C = C.add(torch.eye(C.size(0), C.size(0), { dtype: "float64" }).mul(h.update_norm_lambda));
        const Cinv = torch.linalg.inv(C);
        let D = K.T.matmul(Cinv).matmul(K); // [n, n]
        if (K.size(1) > 1 || h.emmet_lambda_always)
          D = D.add(torch.eye(D.size(0), D.size(0), { dtype: "float64" }).mul(h.emmet_lambda));
        const adjK = Cinv.matmul(K).matmul(torch.linalg.inv(D)); // [d_in, n]
        return { U: R, V: adjK };
      });
      return { deltas, info: { losses } };
    } finally {
      zs.free();
    }
  },
};
