/**
 * ROME (Meng et al., 2022): a rank-one update of one MLP down-projection that maps the subject's key k*
 * to a value v* that makes the model state the new object. Follows kmeng01/rome and EasyEdit's
 * easyeditor/models/rome: u = compute_u (C^-1 k*, normalised), v = compute_v, W += u v^T in the
 * module's own layout (GPT-2's Conv1D stores [in, out]; nn.Linear [out, in], so there W += v u^T).
 */
import * as torch from "../../torch/index.js";
import type { CausalLM } from "../../models/model.js";
import type { EditContext, EditMethod, EditResult } from "../editor.js";
import type { EditRequest } from "../request.js";
import { moduleAt } from "../hparams.js";
import { TemporaryEdits, type ParamDelta } from "../journal.js";
import { generateContextTemplates } from "../context.js";
import { ROME_SCHEMA, R_ROME_SCHEMA, parseRomeHparams, type RomeHparams } from "./hparams.js";
import { computeU } from "./compute_u.js";
import { computeV, optimiseValue } from "./compute_v.js";

/** The context templates of a run: explicit ones from hparams, else generated once per session. */
export function contextTemplates(
  ctx: EditContext,
  h: { context_templates: string[]; context_template_length_params: number[][]; seed: number },
  braces: "remove" | "space" = "remove",
): string[] {
  if (h.context_templates.length > 0) return h.context_templates;
  const key = `context-templates:${JSON.stringify(h.context_template_length_params)}:${h.seed}:${braces}`;
  let t = ctx.cache.get(key) as string[] | undefined;
  if (!t) {
    t = generateContextTemplates(ctx.model, ctx.tok, h.context_template_length_params, {
      seed: h.seed,
      braces,
    });
    ctx.cache.set(key, t);
  }
  return t;
}

/** Whether a module's weight is stored [in, out] (GPT-2's Conv1D) rather than [out, in] (nn.Linear). */
export function isConv1D(model: CausalLM): boolean {
  return model.config.modelType === "gpt2";
}

function makeRome(name: "ROME" | "R-ROME"): EditMethod<RomeHparams> {
  const rrome = name === "R-ROME";
  return {
    name,
    schema: rrome ? R_ROME_SCHEMA : ROME_SCHEMA,
    maxBatch: 1,
    parseHparams: (raw, where, model) => parseRomeHparams(raw, where, model, name),
    compute(ctx: EditContext, requests: EditRequest[], h: RomeHparams): EditResult {
      const request = requests[0] as EditRequest;
      const templates = contextTemplates(ctx, h);
      const deltas: ParamDelta[] = [];
      const info: Record<string, unknown> = { losses: {} };
      // layers in ascending order; a later layer is computed on the model holding the earlier layers'
      // updates (as execute_rome does); every weight is restored before returning
      const live = new TemporaryEdits(ctx.model);
      try {
        for (const layer of [...h.layers].sort((a, b) => a - b)) {
          const param = `${moduleAt(h.rewrite_module_tmp, layer)}.weight`;
          const { u, v, losses } = torch.scope(() => {
            const u = computeU(ctx, request, layer, h, templates);
            const opt = optimiseValue(ctx, request, layer, h, templates);
            // r-ROME: the update's key and current value are the template averages (the key u was
            // built from); ROME uses the bare prompt's
            const v = computeV(ctx, request, layer, h, u, opt.target, rrome ? templates : null);
            return { u, v, losses: opt.losses };
          });
          (info.losses as Record<number, number[]>)[layer] = losses;
          const d: ParamDelta = isConv1D(ctx.model)
            ? { param, u: u.keep(), v: v.keep() }
            : { param, u: v.keep(), v: u.keep() };
          deltas.push(d);
          if (h.layers.length > 1) live.add(d);
        }
      } catch (e) {
        for (const d of deltas) freeDelta(d);
        throw e;
      } finally {
        live.restore();
      }
      return { deltas, info };
    },
  };
}

/** ROME, as kmeng01/rome and EasyEdit compute it. */
export const rome = makeRome("ROME");
/** r-ROME (scalable-model-editing/rebuilding-rome): the update uses the template-averaged key and value. */
export const rrome = makeRome("R-ROME");

export function freeDelta(d: ParamDelta): void {
  if ("dense" in d) d.dense.free();
  else {
    d.u.free();
    d.v.free();
  }
}
