/**
 * ROME's key (the left vector u): the input k* of the edited module at the subject's last token,
 * averaged over the context templates; then C^-1 k* (C = E[k k^T], inverted in float32 as ROME's
 * get_inv_cov), normalised to unit length.
 */
import * as torch from "../../torch/index.js";
import type { Tensor } from "../../torch/index.js";
import type { EditContext } from "../editor.js";
import type { EditRequest } from "../request.js";
import { fill } from "../request.js";
import { moduleAt } from "../hparams.js";
import { reprsAtPositions, wordTokenIndices, type Subtoken } from "../repr.js";
import type { RomeHparams } from "./hparams.js";

/** k*: the mean input of the rewrite module at the subject token over templated prompts ([d]). */
export function computeKeyStar(
  ctx: EditContext,
  request: EditRequest,
  layer: number,
  h: RomeHparams,
  templates: string[],
): Tensor {
  const module = moduleAt(h.rewrite_module_tmp, layer);
  if (!h.fact_token.startsWith("subject_"))
    throw new Error(
      `ROME: fact_token '${h.fact_token}' is not supported for the key (subject_last, subject_first)`,
    );
  const prompts = templates.map((t) => fill(t, request.prompt));
  const idx = wordTokenIndices(
    ctx.tok,
    prompts,
    prompts.map(() => request.subject),
    h.fact_token.slice("subject_".length) as Subtoken,
  );
  return torch.scope(() => {
    const { input } = reprsAtPositions(
      ctx.model,
      ctx.tok,
      module,
      prompts.map((p) => fill(p, request.subject)),
      idx,
    );
    return input.mean(0);
  });
}

/** C^-1 as ROME computes it: the inverse of the moment in its dtype, then float32. Cached per module. */
export function inverseCovariance(ctx: EditContext, module: string, h: RomeHparams): Tensor {
  const key = `rome:invcov:${module}:${h.mom2_n_samples}:${h.mom2_dtype}`;
  let inv = ctx.cache.get(key) as Tensor | undefined;
  if (!inv) {
    const s = ctx.stats(module, { nSamples: h.mom2_n_samples, dtype: h.mom2_dtype as "float32" | "float64" });
    inv = torch.scope(() =>
      torch.linalg
        .inv(s.mom2.to(h.mom2_dtype as torch.DType))
        .to("float32")
        .keep(),
    );
    ctx.cache.set(key, inv);
  }
  return inv;
}

/** u = C^-1 k* / ||C^-1 k*|| (or k* / ||k*|| without mom2_adjustment). */
export function computeU(
  ctx: EditContext,
  request: EditRequest,
  layer: number,
  h: RomeHparams,
  templates: string[],
): Tensor {
  return torch.scope(() => {
    let u = computeKeyStar(ctx, request, layer, h, templates).to("float32");
    if (h.mom2_adjustment) u = inverseCovariance(ctx, moduleAt(h.rewrite_module_tmp, layer), h).matmul(u);
    return u.div(u.norm());
  });
}
