/**
 * Default module templates per architecture, for hparams that leave them out (EasyEdit's files spell
 * them out per model; these are the same strings).
 */
import type { ModelType } from "../models/config.js";

export interface ModuleTemplates {
  rewrite_module_tmp: string;
  layer_module_tmp: string;
  mlp_module_tmp: string;
  attn_module_tmp: string;
  ln_f_module: string;
  lm_head_module: string;
}

export const MODULE_TEMPLATES: Record<ModelType, ModuleTemplates> = {
  gpt2: {
    rewrite_module_tmp: "transformer.h.{}.mlp.c_proj",
    layer_module_tmp: "transformer.h.{}",
    mlp_module_tmp: "transformer.h.{}.mlp",
    attn_module_tmp: "transformer.h.{}.attn",
    ln_f_module: "transformer.ln_f",
    lm_head_module: "transformer.wte",
  },
  gptj: {
    rewrite_module_tmp: "transformer.h.{}.mlp.fc_out",
    layer_module_tmp: "transformer.h.{}",
    mlp_module_tmp: "transformer.h.{}.mlp",
    attn_module_tmp: "transformer.h.{}.attn",
    ln_f_module: "transformer.ln_f",
    lm_head_module: "lm_head",
  },
  gpt_neox: {
    rewrite_module_tmp: "gpt_neox.layers.{}.mlp.dense_4h_to_h",
    layer_module_tmp: "gpt_neox.layers.{}",
    mlp_module_tmp: "gpt_neox.layers.{}.mlp",
    attn_module_tmp: "gpt_neox.layers.{}.attention",
    ln_f_module: "gpt_neox.final_layer_norm",
    lm_head_module: "embed_out",
  },
  llama: {
    rewrite_module_tmp: "model.layers.{}.mlp.down_proj",
    layer_module_tmp: "model.layers.{}",
    mlp_module_tmp: "model.layers.{}.mlp",
    attn_module_tmp: "model.layers.{}.self_attn",
    ln_f_module: "model.norm",
    lm_head_module: "lm_head",
  },
  mistral: {
    rewrite_module_tmp: "model.layers.{}.mlp.down_proj",
    layer_module_tmp: "model.layers.{}",
    mlp_module_tmp: "model.layers.{}.mlp",
    attn_module_tmp: "model.layers.{}.self_attn",
    ln_f_module: "model.norm",
    lm_head_module: "lm_head",
  },
  qwen2: {
    rewrite_module_tmp: "model.layers.{}.mlp.down_proj",
    layer_module_tmp: "model.layers.{}",
    mlp_module_tmp: "model.layers.{}.mlp",
    attn_module_tmp: "model.layers.{}.self_attn",
    ln_f_module: "model.norm",
    lm_head_module: "lm_head",
  },
};

/** The weight parameter of a module ("transformer.h.5.mlp.c_proj" -> "transformer.h.5.mlp.c_proj.weight"). */
/**
 * The module of an EasyEdit parameter name: "transformer.h[35].mlp.c_fc.weight" ->
 * "transformer.h.35.mlp.c_fc" (EasyEdit's brackets_to_periods, a trailing .weight or .bias dropped;
 * a module name is returned as it is).
 */
export function moduleOfParamName(name: string): string {
  return name
    .replace(/\[/g, ".")
    .replace(/\]/g, "")
    .replace(/\.(weight|bias)$/, "");
}

export function weightOf(module: string): string {
  return `${module}.weight`;
}

/** Fills the module templates an hparams object leaves empty with the architecture's defaults. */
export function fillModuleTemplates(h: ModuleTemplates, modelType: ModelType): void {
  const mods = MODULE_TEMPLATES[modelType];
  for (const k of Object.keys(mods) as (keyof ModuleTemplates)[]) if (!h[k]) h[k] = mods[k];
}
