/**
 * ROME's hyper-parameters: EasyEdit's ROMEHyperParams fields, with the values of EasyEdit's
 * hparams/ROME/gpt2-xl.yaml as defaults (module templates default to the loaded architecture's).
 */
import type { CausalLM } from "../../models/model.js";
import { parseHparams, type Schema } from "../hparams.js";
import { fillModuleTemplates } from "../modules.js";
import { checkTargetLayer } from "../memit/hparams.js";

export interface RomeHparams {
  layers: number[];
  fact_token: string;
  v_num_grad_steps: number;
  v_lr: number;
  v_loss_layer: number;
  v_weight_decay: number;
  clamp_norm_factor: number;
  kl_factor: number;
  mom2_adjustment: boolean;
  context_template_length_params: number[][];
  /** explicit context templates (each with one "{}"), used instead of generating them */
  context_templates: string[];
  /** seed of the context-template sampling */
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

export const ROME_SCHEMA: Schema = {
  layers: { type: "int[]", default: [17], doc: "layer whose MLP down-projection is edited (one)" },
  fact_token: { type: "string", default: "subject_last", doc: "token whose key is edited" },
  v_num_grad_steps: { type: "int", default: 20, doc: "Adam steps of the value optimisation" },
  v_lr: { type: "number", default: 0.5, doc: "learning rate of the value optimisation" },
  v_loss_layer: { type: "int", default: 47, doc: "layer whose output the loss is read from (the last one)" },
  v_weight_decay: { type: "number", default: 0.5, doc: "weight of ||delta|| / ||v_init||^2" },
  clamp_norm_factor: { type: "number", default: 4, doc: "||delta|| is clamped to this times ||v_init||" },
  kl_factor: { type: "number", default: 0.0625, doc: "weight of the KL term on '{subject} is a'" },
  mom2_adjustment: { type: "bool", default: true, doc: "apply C^-1 to the key" },
  context_template_length_params: {
    type: "number[][]",
    default: [
      [5, 10],
      [10, 10],
    ],
    doc: "[[tokens, count], ...] of generated context templates",
  },
  context_templates: {
    type: "string[]",
    default: [],
    doc: "explicit templates (with '{}'), instead of generating them",
  },
  seed: { type: "int", default: 0, doc: "seed of the context-template sampling" },
  rewrite_module_tmp: { type: "string", default: "", doc: "module whose weight is edited" },
  layer_module_tmp: { type: "string", default: "", doc: "a whole block" },
  mlp_module_tmp: { type: "string", default: "", doc: "the MLP, whose output gets the delta" },
  attn_module_tmp: { type: "string", default: "", doc: "the attention" },
  ln_f_module: { type: "string", default: "", doc: "final norm" },
  lm_head_module: { type: "string", default: "", doc: "unembedding" },
  mom2_dataset: {
    type: "string",
    default: "wikitext",
    doc: "statistics corpus (ROME: wikipedia; here: the shared WikiText)",
  },
  mom2_n_samples: { type: "int", default: 100000, doc: "statistics samples (capped by the corpus size)" },
  mom2_dtype: { type: "string", default: "float32", doc: "statistics accumulation dtype" },
};

/**
 * r-ROME's flags (rebuilding-rome; EasyEdit R_ROMEHyperParams): only the default mode, template-averaged
 * keys (enable_random_prefix_keys), is implemented; the others are refused rather than ignored.
 */
export const R_ROME_SCHEMA: Schema = {
  ...ROME_SCHEMA,
  enable_prompt_keys: { type: "bool", default: false, doc: "keys from the bare prompt (not implemented)" },
  enable_random_prefix_keys: { type: "bool", default: true, doc: "keys averaged over the context templates" },
  original_implementation: {
    type: "bool",
    default: false,
    doc: "accepted for EasyEdit files; no effect on the averaged keys",
  },
};

export function parseRomeHparams(
  raw: Record<string, unknown>,
  where: string,
  model: CausalLM,
  method = "ROME",
): RomeHparams {
  const h = parseHparams<RomeHparams>(method === "R-ROME" ? R_ROME_SCHEMA : ROME_SCHEMA, raw, where, method);
  if (method === "R-ROME") {
    const r = h as unknown as Record<string, unknown>;
    if (r.enable_prompt_keys === true || r.enable_random_prefix_keys !== true)
      throw new Error(
        `${where}: R-ROME here implements enable_random_prefix_keys: true, enable_prompt_keys: false only`,
      );
  }
  fillModuleTemplates(h, model.config.modelType);
  if (!("v_loss_layer" in raw)) h.v_loss_layer = model.config.numLayers - 1;
  if (!("layers" in raw))
    throw new Error(`${where}: ${method} needs 'layers' (the layer to edit, e.g. [17] for GPT-2 XL)`);
  for (const l of h.layers)
    if (l < 0 || l >= model.config.numLayers)
      throw new Error(
        `${where}: layer ${l} is out of range (the model has ${model.config.numLayers} layers, 0..${model.config.numLayers - 1})`,
      );
  checkTargetLayer(h.layers, h.fact_token, model.config.numLayers - 1, where, method);
  if (h.mom2_dtype !== "float32" && h.mom2_dtype !== "float64")
    throw new Error(`${where}: mom2_dtype must be float32 or float64, got '${h.mom2_dtype}'`);
  for (const t of h.context_templates)
    if (t.split("{}").length !== 2)
      throw new Error(`${where}: context template ${JSON.stringify(t)} must contain exactly one "{}"`);
  return h;
}
