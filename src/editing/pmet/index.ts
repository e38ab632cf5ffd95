/**
 * PMET (Li et al., 2024; xpq-tech/PMET and EasyEdit's easyeditor/models/pmet): precise editing of the
 * FFN with the attention taken into account. compute_zs optimises two deltas jointly at the last edited
 * layer, one on the attention projection's output and one on the MLP projection's output (dynamic NLL
 * factor, early stop when the target is the argmax everywhere and KL <= 0.01); the targets are the
 * projection outputs v*_m. Each module m of `rewrite_module_tmps` (MLP only in every shipped config)
 * is then updated layer by layer, with the residual measured at the last layer's module output and
 * split by sqrt(layers left):
 *
 *   dW = (R / sqrt(L - i)) K^T (K K^T + mom2_update_weight C)^-1       (float64, explicit inverse)
 */
import * as torch from "../../torch/index.js";
import type { Tensor } from "../../torch/index.js";
import type { CausalLM } from "../../models/model.js";
import type { ModelType } from "../../models/config.js";
import type { EditContext, EditMethod, EditResult } from "../editor.js";
import type { EditRequest } from "../request.js";
import { moduleAt, type Schema } from "../hparams.js";
import { TemporaryEdits, type ParamDelta } from "../journal.js";
import { MEMIT_SCHEMA, parseMemitHparams, type MemitHparams } from "../memit/hparams.js";
import { covariance, templateGroups } from "../memit/index.js";
import { computeKs, currentOutputs } from "../memit/compute_ks.js";
import { optimiseDeltas } from "../rome/compute_v.js";
import { freeDelta, isConv1D } from "../rome/index.js";

export interface PmetHparams extends MemitHparams {
  nll_loss_factor: number;
  rewrite_module_tmps: string[];
}

/** PMET's module templates are the projections themselves. */
const PROJECTIONS: Record<ModelType, { mlp: string; attn: string }> = {
  gpt2: { mlp: "transformer.h.{}.mlp.c_proj", attn: "transformer.h.{}.attn.c_proj" },
  gptj: { mlp: "transformer.h.{}.mlp.fc_out", attn: "transformer.h.{}.attn.out_proj" },
  gpt_neox: { mlp: "gpt_neox.layers.{}.mlp.dense_4h_to_h", attn: "gpt_neox.layers.{}.attention.dense" },
  llama: { mlp: "model.layers.{}.mlp.down_proj", attn: "model.layers.{}.self_attn.o_proj" },
  mistral: { mlp: "model.layers.{}.mlp.down_proj", attn: "model.layers.{}.self_attn.o_proj" },
  qwen2: { mlp: "model.layers.{}.mlp.down_proj", attn: "model.layers.{}.self_attn.o_proj" },
};

export const PMET_SCHEMA: Schema = {
  ...MEMIT_SCHEMA,
  layers: { type: "int[]", default: [3, 4, 5, 6, 7, 8], doc: "edited layers (EasyEdit gpt-j-6B.yaml)" },
  v_num_grad_steps: { type: "int", default: 30, doc: "Adam steps of compute_zs" },
  v_lr: { type: "number", default: 0.2, doc: "learning rate of compute_zs" },
  kl_factor: { type: "number", default: 1, doc: "weight of the KL term" },
  mom2_update_weight: { type: "number", default: 15000, doc: "lambda in (K K^T + lambda C)" },
  nll_loss_factor: {
    type: "number",
    default: 1,
    doc: "NLL weight (x0.1 once the target is the argmax everywhere)",
  },
  rewrite_module_tmps: { type: "string[]", default: [], doc: "modules edited (default: the MLP projection)" },
};

function parse(raw: Record<string, unknown>, where: string, model: CausalLM): PmetHparams {
  const proj = PROJECTIONS[model.config.modelType];
  const withDefaults = {
    mlp_module_tmp: proj.mlp,
    attn_module_tmp: proj.attn,
    rewrite_module_tmp: proj.mlp,
    ...raw,
  };
  const h = parseMemitHparams<PmetHparams>(PMET_SCHEMA, withDefaults, where, model, "PMET");
  if (h.rewrite_module_tmps.length === 0) h.rewrite_module_tmps = [h.mlp_module_tmp];
  for (const m of h.rewrite_module_tmps)
    if (m !== h.mlp_module_tmp && m !== h.attn_module_tmp)
      throw new Error(
        `${where}: rewrite_module_tmps entry '${m}' must be mlp_module_tmp or attn_module_tmp (PMET's targets live there)`,
      );
  return h;
}

export const pmet: EditMethod<PmetHparams> = {
  name: "PMET",
  schema: PMET_SCHEMA,
  maxBatch: Number.MAX_SAFE_INTEGER,
  parseHparams: parse,
  compute(ctx: EditContext, requests: EditRequest[], h: PmetHparams): EditResult {
    const groups = templateGroups(ctx, h);
    const flat = groups.flat();
    const zLayer = h.layers[h.layers.length - 1] as number;
    const zModules = { mlp: moduleAt(h.mlp_module_tmp, zLayer), attn: moduleAt(h.attn_module_tmp, zLayer) };
    const losses: number[][] = [];
    const zs = torch.scope(() => {
      const mlp: Tensor[] = [];
      const attn: Tensor[] = [];
      for (const r of requests) {
        const [zm, za] = optimiseDeltas(ctx, r, [zModules.mlp, zModules.attn], h, flat, {
          method: "PMET",
          pmet: { nllLossFactor: h.nll_loss_factor },
        }) as unknown as [{ target: Tensor; losses: number[] }, { target: Tensor }];
        mlp.push(zm.target.to("float32"));
        attn.push(za.target.to("float32"));
        losses.push(zm.losses);
      }
      return { mlp: torch.stack(mlp, 1), attn: torch.stack(attn, 1) };
    });
    const layers = [...h.layers].sort((a, b) => a - b);
    const deltas: ParamDelta[] = [];
    const live = new TemporaryEdits(ctx.model);
    const conv = isConv1D(ctx.model);
    try {
      layers.forEach((layer, i) => {
        for (const tmpl of h.rewrite_module_tmps) {
          const isMlp = tmpl === h.mlp_module_tmp;
          const module = moduleAt(tmpl, layer);
          const param = `${module}.weight`;
          const d = torch.scope(() => {
            const K = computeKs(ctx, requests, module, groups, h.fact_token).T.to("float64"); // [d_in, n]
            const cur = currentOutputs(
              ctx,
              requests,
              isMlp ? zModules.mlp : zModules.attn,
              h.fact_token,
            ).T.to("float32");
            const R = (isMlp ? zs.mlp : zs.attn)
              .sub(cur)
              .to("float64")
              .div(Math.sqrt(layers.length - i));
            const C = covariance(ctx, module, h).to("float32").to("float64");
            const Ainv = torch.linalg.inv(K.matmul(K.T).add(C.mul(h.mom2_update_weight)));
            const V = Ainv.matmul(K); // (K^T A^-1)^T
            const delta: ParamDelta = conv
              ? { param, u: V.keep(), v: R.keep() }
              : { param, u: R.keep(), v: V.keep() };
            return delta;
          });
          deltas.push(d);
          live.add(d);
        }
      });
    } catch (e) {
      for (const d of deltas) freeDelta(d);
      throw e;
    } finally {
      live.restore();
      zs.mlp.free();
      zs.attn.free();
    }
    return { deltas, info: { losses } };
  },
};
