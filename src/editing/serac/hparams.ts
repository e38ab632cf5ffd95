/**
 * SERAC's hyper-parameters: every key of EasyEdit's hparams/SERAC/gpt2-xl.yaml (edit time) and
 * hparams/TRAINING/SERAC/gpt2-xl.yaml (training), with the edit-time file's values as defaults
 * (easyeditor/models/serac/serac_hparams.py, SERACHparams). Keys that name Hugging Face models
 * (cls_name, small_name, model_class, ...) or select code paths this implementation does not have are
 * read and checked, not used; see ./index.ts for what each key does here.
 */
import { HparamsError, parseHparams, type Schema } from "../hparams.js";

export interface SeracHparams {
  archive: string | null;
  model_class: string;
  small_name: string;
  tokenizer_class: string;
  tokenizer_name: string;
  cls_name: string;
  cls_class: string;
  inner_params: string[];
  alg: string;
  lr: number;
  edit_lr: number;
  seed: number;
  lr_lr: number;
  cedit: number;
  cloc: number;
  cbase: number;
  dropout: number;
  final_eval: boolean;
  supervised: boolean;
  train_base: boolean;
  no_grad_layers: number | null;
  soft_weighting: boolean;
  checkpoint_grad: boolean;
  cross_attend: boolean;
  cos: boolean;
  freeze: number | null;
  square: boolean;
  bound_embeds: boolean;
  use_all_negatives: boolean;
  freeze_cntr: boolean;
  dist_heads: number;
  lora: string | null;
  batch_size: number;
  model_save_pt: number;
  edit_bs: number;
  silent: boolean;
  max_iters: number;
  max_epochs: number | null;
  log_interval: number;
  val_interval: number;
  early_stop_patience: number;
  early_stop_key: string;
  eval_only: boolean;
  half: boolean;
  save: boolean;
  debug: boolean;
  log_errors: boolean;
  unlikelihood: boolean;
  val_batch_size: number;
  accumulate_bs: number;
  val_steps: number;
  opt: string;
  grad_clip: number;
  threshold: number;
  cls_proj_dim: number | null;
}

const unused = "read for EasyEdit files; unused here";

/** Defaults: EasyEdit hparams/SERAC/gpt2-xl.yaml (threshold: SERAC.py's constant 0.5). */
export const SERAC_SCHEMA: Schema = {
  archive: {
    type: "string|null",
    default: "./results/models/SERAC/gpt2-xl",
    doc: "the trained classifier and counterfactual model (a directory written by `editeval train-serac`)",
  },
  model_class: { type: "string", default: "GPT2LMHeadModel", doc: unused },
  small_name: {
    type: "string",
    default: "./hugging_cache/gpt2",
    doc: "the counterfactual model's initialisation in EasyEdit; here train-serac --cf-model",
  },
  tokenizer_class: { type: "string", default: "GPT2Tokenizer", doc: unused },
  tokenizer_name: { type: "string", default: "./hugging_cache/gpt2-xl", doc: unused },
  cls_name: {
    type: "string",
    default: "./hugging_cache/distilbert-base-cased",
    doc: "the classifier's initialisation in EasyEdit; here train-serac --cls-model (default the base model)",
  },
  cls_class: { type: "string", default: "AutoModel", doc: unused },
  inner_params: { type: "string[]", default: [], doc: "must be empty (SERAC changes no weight)" },
  alg: { type: "string", default: "SERAC", doc: "EasyEdit training files' algorithm name" },
  lr: { type: "number", default: 1e-5, doc: "Adam learning rate of classifier and counterfactual model" },
  edit_lr: { type: "number", default: 1e-2, doc: unused },
  seed: { type: "int", default: 0, doc: "seed of the training batch order" },
  lr_lr: { type: "number", default: 0.0, doc: unused },
  cedit: { type: "number", default: 0.1, doc: "weight of the counterfactual model's NLL" },
  cloc: { type: "number", default: 1.0, doc: "weight of the classifier's balanced BCE" },
  cbase: { type: "number", default: 1.0, doc: unused },
  dropout: { type: "number", default: 0.0, doc: "must be 0 (no dropout in these models)" },
  final_eval: { type: "bool", default: true, doc: unused },
  supervised: {
    type: "bool",
    default: false,
    doc: "read; training is always the original's supervised objective, inference always hard routing",
  },
  train_base: { type: "bool", default: false, doc: "must be false" },
  no_grad_layers: { type: "int|null", default: null, doc: unused },
  soft_weighting: { type: "bool", default: false, doc: "must be false (hard routing)" },
  checkpoint_grad: { type: "bool", default: false, doc: unused },
  cross_attend: { type: "bool", default: false, doc: "must be false (embedding classifier)" },
  cos: { type: "bool", default: false, doc: "distance 1 - cos instead of Euclidean" },
  freeze: { type: "int|null", default: null, doc: "must be null (the whole classifier trains)" },
  square: { type: "bool", default: true, doc: "square the Euclidean distance" },
  bound_embeds: { type: "bool", default: false, doc: "tanh the embeddings before the distance" },
  use_all_negatives: {
    type: "bool",
    default: false,
    doc: "training: each locality input is a negative for every edit of the batch, not only its own",
  },
  freeze_cntr: {
    type: "bool",
    default: false,
    doc: "no counterfactual model: the edited model itself answers with the edit in front",
  },
  dist_heads: { type: "int", default: 1, doc: "heads the embedding is split into (minimum distance)" },
  lora: { type: "string|null", default: null, doc: "must be null" },
  batch_size: { type: "int", default: 1, doc: "training: edits per batch" },
  model_save_pt: { type: "int", default: 500, doc: "training: iterations between checkpoints" },
  edit_bs: { type: "int", default: 1, doc: unused },
  silent: { type: "bool", default: false, doc: "training: no log lines" },
  max_iters: { type: "int", default: 10000, doc: "training: iterations (batches)" },
  max_epochs: { type: "int|null", default: null, doc: unused },
  log_interval: { type: "int", default: 500, doc: "training: iterations between log lines" },
  val_interval: { type: "int", default: 500, doc: "training: iterations between validations" },
  early_stop_patience: { type: "int", default: 40000, doc: unused },
  early_stop_key: { type: "string", default: "loss/total_edit_val", doc: unused },
  eval_only: { type: "bool", default: false, doc: unused },
  half: { type: "bool", default: false, doc: unused },
  save: { type: "bool", default: false, doc: unused },
  debug: { type: "bool", default: false, doc: unused },
  log_errors: { type: "bool", default: false, doc: unused },
  unlikelihood: { type: "bool", default: true, doc: unused },
  val_batch_size: { type: "int", default: 1, doc: unused },
  accumulate_bs: { type: "int", default: 10, doc: "training: batches per optimiser step" },
  val_steps: { type: "int", default: 500, doc: "training: validation records (at most)" },
  opt: { type: "string", default: "Adam", doc: "must be Adam" },
  grad_clip: { type: "number", default: 100.0, doc: "training: gradient norm clip" },
  threshold: { type: "number", default: 0.5, doc: "similarity above which an input is in scope" },
  cls_proj_dim: {
    type: "int|null",
    default: null,
    doc: "size of the classifier's projection (null: the backbone's hidden size)",
  },
};

/** Parses SERAC hparams (EasyEdit YAML or ours) and rejects what this implementation cannot do. */
export function parseSeracHparams(raw: Record<string, unknown>, where: string): SeracHparams {
  const h = parseHparams<SeracHparams>(SERAC_SCHEMA, raw, where, "SERAC");
  const must = (ok: boolean, msg: string) => {
    if (!ok) throw new HparamsError(`${where}: SERAC ${msg}`);
  };
  must(h.inner_params.length === 0, "inner_params must be empty: SERAC changes no weight");
  must(h.dropout === 0, `dropout ${h.dropout} is not supported (set 0)`);
  must(!h.cross_attend, "cross_attend: true (a cross-encoder classifier) is not implemented; set false");
  must(!h.soft_weighting, "soft_weighting: true is not implemented (routing is hard); set false");
  must(h.lora === null, "lora is not supported; set null");
  must(h.freeze === null, "freeze (training only the last classifier layers) is not supported; set null");
  must(!h.train_base, "train_base: true is not supported; set false");
  must(h.opt === "Adam", `opt '${h.opt}' is not supported (Adam)`);
  must(h.dist_heads >= 1, `dist_heads must be >= 1, got ${h.dist_heads}`);
  must(h.threshold > 0 && h.threshold < 1, `threshold must be in (0, 1), got ${h.threshold}`);
  must(h.batch_size >= 1 && h.accumulate_bs >= 1, "batch_size and accumulate_bs must be >= 1");
  must(h.lr > 0, `lr must be > 0, got ${h.lr}`);
  must(h.model_save_pt >= 1 && h.log_interval >= 1 && h.val_interval >= 1, "intervals must be >= 1");
  must(h.cls_proj_dim === null || h.cls_proj_dim >= 1, "cls_proj_dim must be null or >= 1");
  return h;
}

/** The settings that shape the trained classifier and counterfactual model (must match the archive's). */
export const ARCHITECTURE_KEYS = [
  "cos",
  "square",
  "dist_heads",
  "bound_embeds",
  "freeze_cntr",
  "cls_proj_dim",
] as const;
