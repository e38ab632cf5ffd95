/**
 * MEMIT's hyper-parameters: EasyEdit's MEMITHyperParams fields, with kmeng01/memit's gpt2-xl values as
 * defaults (module templates default to the loaded architecture's).
 */
import type { CausalLM } from "../../models/model.js";
import { parseHparams, type Schema } from "../hparams.js";
import { fillModuleTemplates } from "../modules.js";

export interface MemitHparams {
  layers: number[];
  layer_selection: string;
  fact_token: string;
  v_num_grad_steps: number;
  v_lr: number;
  v_loss_layer: number;
  v_weight_decay: number;
  clamp_norm_factor: number;
  kl_factor: number;
  mom2_adjustment: boolean;
  mom2_update_weight: number;
  context_template_length_params: number[][];
  context_templates: string[];
  seed: number;
  rewrite_module_tmp: string;
  layer_module_tmp: string;
  mlp_module_tmp: string;
  attn_module_tmp: string;
  ln_f_module: string;
  lm_head_module: string;
  mom2_dataset: string;
  mom2_n_samples: number;
  mom2_dtype: string;
}

export const MEMIT_SCHEMA: Schema = {
  layers: {
    type: "int[]",
    default: [13, 14, 15, 16, 17],
    doc: "edited layers (the residual is spread over them)",
  },
  layer_selection: { type: "string", default: "all", doc: "kept for EasyEdit files ('all')" },
  fact_token: { type: "string", default: "subject_last", doc: "token whose key is edited" },
  v_num_grad_steps: { type: "int", default: 20, doc: "Adam steps of the target optimisation (compute_z)" },
  v_lr: { type: "number", default: 0.5, doc: "learning rate of compute_z" },
  v_loss_layer: { type: "int", default: 47, doc: "layer the loss is read from (must be the last)" },
  v_weight_decay: { type: "number", default: 0.5, doc: "weight of ||delta|| / ||z_init||^2" },
  clamp_norm_factor: { type: "number", default: 0.75, doc: "||delta|| is clamped to this times ||z_init||" },
  kl_factor: { type: "number", default: 0.0625, doc: "weight of the KL term on '{subject} is a'" },
  mom2_adjustment: { type: "bool", default: true, doc: "use the covariance in the update" },
  mom2_update_weight: { type: "number", default: 20000, doc: "lambda in (lambda C + K K^T)" },
  context_template_length_params: {
    type: "number[][]",
    default: [[10, 5]],
    doc: "[[tokens, count]] of generated templates (MEMIT hard-codes [[10, 5]]: one per prompt)",
  },
  context_templates: {
    type: "string[]",
    default: [],
    doc: "explicit templates (with '{}'), instead of generating them",
  },
  seed: { type: "int", default: 0, doc: "seed of the context-template sampling" },
  rewrite_module_tmp: { type: "string", default: "", doc: "module whose weight is edited" },
  layer_module_tmp: { type: "string", default: "", doc: "a whole block (the target z lives at its output)" },
  mlp_module_tmp: { type: "string", default: "", doc: "the MLP" },
  attn_module_tmp: { type: "string", default: "", doc: "the attention" },
  ln_f_module: { type: "string", default: "", doc: "final norm" },
  lm_head_module: { type: "string", default: "", doc: "unembedding" },
  mom2_dataset: {
    type: "string",
    default: "wikitext",
    doc: "statistics corpus (MEMIT: wikipedia; here: the shared WikiText)",
  },
  mom2_n_samples: { type: "int", default: 100000, doc: "statistics samples (capped by the corpus size)" },
  mom2_dtype: { type: "string", default: "float32", doc: "statistics accumulation dtype" },
};

export function parseMemitHparams<T extends MemitHparams>(
  schema: Schema,
  raw: Record<string, unknown>,
  where: string,
  model: CausalLM,
  method: string,
): T {
  const h = parseHparams<T>(schema, raw, where, method);
  fillModuleTemplates(h, model.config.modelType);
  const last = model.config.numLayers - 1;
  if (!("v_loss_layer" in raw)) h.v_loss_layer = last;
  if (h.v_loss_layer !== last)
    throw new Error(
      `${where}: v_loss_layer ${h.v_loss_layer} is not the last layer (${last}); only the last is supported`,
    );
  if (!("layers" in raw))
    throw new Error(`${where}: ${method} needs 'layers' (e.g. [13, 14, 15, 16, 17] for GPT-2 XL)`);
  if (h.layers.length === 0) throw new Error(`${where}: 'layers' is empty`);
  for (const l of h.layers)
    if (l < 0 || l > last)
      throw new Error(`${where}: layer ${l} is out of range (the model has ${last + 1} layers, 0..${last})`);
  checkTargetLayer(h.layers, h.fact_token, last, where, method);
  if (h.mom2_dtype !== "float32" && h.mom2_dtype !== "float64")
    throw new Error(`${where}: mom2_dtype must be float32 or float64, got '${h.mom2_dtype}'`);
  return h;
}

/**
 * The target (MEMIT's z, ROME's v*) is a change at the subject's token of `layers[-1]`; only the
 * attention of later blocks carries it to the prompt's last token, where the target is predicted. At the
 * last block nothing follows, so the NLL does not depend on the delta at all (its gradient is exactly 0),
 * the optimisation moves the delta only by the KL term, Adam's normalisation and the weight decay, and the
 * edit changes nothing the request asks for. The references (kmeng01/memit compute_z, kmeng01/rome
 * compute_v) run such a configuration silently; it is refused here. fact_token "last" (the delta at the
 * prompt's last token) is not affected.
 */
export function checkTargetLayer(
  layers: number[],
  factToken: string,
  lastLayer: number,
  where: string,
  method: string,
): void {
  if (factToken === "last") return;
  const zLayer = Math.max(...layers);
  if (zLayer === lastLayer)
    throw new Error(
      `${where}: ${method} edits layer ${zLayer}, the model's last (0..${lastLayer}); its target is a change to that ` +
        `layer's output at the subject's token, and no later attention carries that to the prompt's last token, so ` +
        `the edit cannot make the model say target_new. Edit layers below ${lastLayer} (e.g. [${Math.max(0, lastLayer - 1)}]).`,
    );
}
