/**
 * MEMIT's keys: for each request, the input of the edited module at the subject's last token, averaged
 * within each group of context templates and then across the groups (compute_ks); and the block
 * outputs at the subject token of the bare prompts (the current z).
 */
import * as torch from "../../torch/index.js";
import type { Tensor } from "../../torch/index.js";
import type { EditContext } from "../editor.js";
import { fill, type EditRequest } from "../request.js";
import { lookupIndex, reprsAtPositions } from "../repr.js";

/** Keys [n, d_in]: per request, mean over template groups of the mean within each group. */
export function computeKs(
  ctx: EditContext,
  requests: EditRequest[],
  module: string,
  groups: string[][],
  factToken: string,
): Tensor {
  return torch.scope(() => {
    const prompts: string[] = [];
    const pos: number[] = [];
    for (const r of requests)
      for (const g of groups)
        for (const t of g) {
          const p = fill(t, r.prompt);
          prompts.push(fill(p, r.subject));
          pos.push(lookupIndex(ctx.tok, p, r.subject, factToken));
        }
    const { input } = reprsAtPositions(ctx.model, ctx.tok, module, prompts, pos);
    const per = groups.reduce((s, g) => s + g.length, 0);
    const rows: Tensor[] = [];
    requests.forEach((_, i) => {
      let off = i * per;
      const means = groups.map((g) => {
        const m = input.narrow(0, off, g.length).mean(0);
        off += g.length;
        return m;
      });
      rows.push(torch.stack(means).mean(0));
    });
    return torch.stack(rows);
  });
}

/** Outputs of `module` at each bare prompt's subject token: [n, d]. */
export function currentOutputs(
  ctx: EditContext,
  requests: EditRequest[],
  module: string,
  factToken: string,
): Tensor {
  const prompts = requests.map((r) => fill(r.prompt, r.subject));
  const pos = requests.map((r) => lookupIndex(ctx.tok, r.prompt, r.subject, factToken));
  return reprsAtPositions(ctx.model, ctx.tok, module, prompts, pos).output;
}
