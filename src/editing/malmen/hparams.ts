/**
 * MALMEN's hyper-parameters: EasyEdit's hparams/MALMEN/gpt2-xl.yaml (edit, with `archive`) and
 * hparams/TRAINING/MALMEN/gpt2-xl.yaml (training, `archive: null`, plus `alg`), defaults from the former
 * (zjunlp/EasyEdit@14cea8245f06715684592ab55184939b99d70784); the original repository's
 * config/editor/malmen.yaml (ChenmienTan/malmen@1df295dc) has the same rank, n_blocks, lr, meta_lr,
 * loc_coef, max_grad_norm, and `token: ans`, `batch_size: 1024` (EasyEdit's `editor_batch_size`).
 */
import type { CausalLM } from "../../models/model.js";
import { HparamsError, parseHparams, type Schema } from "../hparams.js";
import { editedWeights, resolveArchive } from "../mend/hparams.js";

export interface MalmenHparams {
  archive: string | null;
  inner_params: string[];
  dropout: number;
  train_base: boolean;
  no_grad_layers: number | null;
  rank: number;
  n_blocks: number;
  lr: number;
  meta_lr: number;
  loc_coef: number;
  max_grad_norm: number;
  token: string;
  n_edits: number;
  batch_size: number;
  editor_batch_size: number;
  seed: number;
  silent: boolean;
  max_iters: number;
  max_epochs: number | null;
  log_interval: number;
  eval_log_interval: number;
  final_eval: boolean;
  val_interval: number;
  early_stop_patience: number;
  early_stop_key: string;
  eval_only: boolean;
  debug: boolean;
  save: boolean;
  half: boolean;
  model_save_pt: number;
  val_batch_size: number;
  val_steps: number;
  alg: string;
  model_class: string;
  tokenizer_class: string;
  tokenizer_name: string;
}

const unused = "read for EasyEdit files; unused";

export const MALMEN_SCHEMA: Schema = {
  archive: {
    type: "string|null",
    default: null,
    doc: "the trained editor (malmen.safetensors written by `editeval train-mend --method malmen`)",
  },
  inner_params: {
    type: "string[]",
    default: [42, 43, 44, 45, 46, 47].map((l) => `transformer.h.${l}.mlp.c_proj.weight`),
    doc: "the edited weights (module name, .weight optional)",
  },
  dropout: { type: "number", default: 0.0, doc: unused },
  train_base: { type: "bool", default: false, doc: "fine-tune the base model (not supported: false)" },
  no_grad_layers: { type: "int|null", default: null, doc: unused },
  rank: { type: "int", default: 1920, doc: "rank of each block's A B" },
  n_blocks: { type: "int", default: 2, doc: "residual blocks of the shift network" },
  lr: {
    type: "number",
    default: 1e-6,
    doc: "initial per-weight learning rate of the value change (learned)",
  },
  meta_lr: { type: "number", default: 1e-5, doc: "Adam learning rate of the shift network" },
  loc_coef: { type: "number", default: 1, doc: "weight of the locality KL" },
  max_grad_norm: { type: "number", default: 1, doc: "global gradient-norm clip of each step" },
  token: { type: "string", default: "mask", doc: "tokens whose keys enter the solve: mask (all) or ans" },
  n_edits: { type: "int", default: 1, doc: "edits solved together in one training iteration" },
  batch_size: { type: "int", default: 1, doc: "edits per forward pass (n_edits is split into these)" },
  editor_batch_size: { type: "int", default: 1024, doc: "tokens per pass of the shift network" },
  seed: { type: "int", default: 42, doc: "seed of the network's initialisation and of the data order" },
  silent: { type: "bool", default: false, doc: "no progress lines" },
  max_iters: { type: "int", default: 10000, doc: "training iterations (each n_edits edits)" },
  max_epochs: { type: "int|null", default: null, doc: "caps max_iters at max_epochs passes over the data" },
  log_interval: { type: "int", default: 100, doc: "iterations between progress lines" },
  eval_log_interval: { type: "int", default: 100, doc: unused },
  final_eval: { type: "bool", default: true, doc: "validate after the last iteration" },
  val_interval: { type: "int", default: 100, doc: "iterations between validations" },
  early_stop_patience: { type: "int", default: 1000, doc: "read; not implemented (see docs)" },
  early_stop_key: { type: "string", default: "ES_val", doc: "read; not implemented" },
  eval_only: { type: "bool", default: false, doc: unused },
  debug: { type: "bool", default: false, doc: unused },
  save: { type: "bool", default: false, doc: unused },
  half: { type: "bool", default: false, doc: unused },
  model_save_pt: { type: "int", default: 5000, doc: "iterations between checkpoints" },
  val_batch_size: { type: "int", default: 1, doc: unused },
  val_steps: { type: "int", default: 200, doc: "held-out records per validation (capped by the data)" },
  alg: { type: "string", default: "MALMEN", doc: "EasyEdit's training files: the algorithm name" },
  model_class: { type: "string", default: "", doc: unused },
  tokenizer_class: { type: "string", default: "", doc: unused },
  tokenizer_name: { type: "string", default: "", doc: unused },
};

export function parseMalmenHparamsRaw(raw: Record<string, unknown>, where: string): MalmenHparams {
  const h = parseHparams<MalmenHparams>(MALMEN_SCHEMA, raw, where, "MALMEN");
  if (h.alg.toUpperCase() !== "MALMEN")
    throw new HparamsError(`${where}: alg is ${JSON.stringify(h.alg)}; this file is not for MALMEN`);
  if (h.token !== "mask" && h.token !== "ans")
    throw new HparamsError(`${where}: MALMEN token must be mask or ans, got ${JSON.stringify(h.token)}`);
  if (h.train_base) throw new HparamsError(`${where}: train_base: true is not supported; set it to false`);
  for (const k of [
    "rank",
    "n_edits",
    "batch_size",
    "editor_batch_size",
    "log_interval",
    "val_interval",
    "model_save_pt",
  ] as const)
    if (h[k] < 1) throw new HparamsError(`${where}: ${k} must be >= 1, got ${h[k]}`);
  if (h.n_blocks < 0) throw new HparamsError(`${where}: n_blocks must be >= 0`);
  h.archive = resolveArchive(h.archive, where);
  return h;
}

export function parseMalmenHparams(
  raw: Record<string, unknown>,
  where: string,
  model: CausalLM,
): MalmenHparams {
  const h = parseMalmenHparamsRaw(raw, where);
  editedWeights(model, h.inner_params, where);
  return h;
}
