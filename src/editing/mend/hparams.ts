/**
 * MEND's hyper-parameters: one schema for EasyEdit's edit file (hparams/MEND/<model>.yaml, with `archive`
 * naming the trained editor) and its training file (hparams/TRAINING/MEND/<model>.yaml, `archive: null`),
 * whose keys are the same plus `alg`. Defaults are EasyEdit's hparams/MEND/gpt2-xl.yaml
 * (zjunlp/EasyEdit@14cea8245f06715684592ab55184939b99d70784), which are the original repository's
 * config/alg/mend.yaml and config/config.yaml values (eric-mitchell/mend@e04fdb9c).
 *
 * Also the shared module plumbing of MEND and MALMEN: `inner_params` names weights
 * ("transformer.h.45.mlp.c_fc.weight", brackets accepted), each method edits the weight of that module,
 * and every factor is kept in the (input, output) orientation of the reference's `get_shape`.
 */
import { existsSync } from "node:fs";
import { dirname, isAbsolute, join, resolve } from "node:path";
import type { CausalLM } from "../../models/model.js";
import { HparamsError, parseHparams, type Schema } from "../hparams.js";

export interface MendHparams {
  archive: string | null;
  inner_params: string[];
  lr: number;
  edit_lr: number;
  lr_lr: number;
  lr_scale: number;
  seed: number;
  cedit: number;
  cloc: number;
  cbase: number;
  dropout: number;
  train_base: boolean;
  no_grad_layers: number | null;
  one_sided: boolean;
  n_hidden: number;
  hidden_dim: number | null;
  init: string;
  norm: boolean;
  combine: boolean;
  x_only: boolean;
  delta_only: boolean;
  act: string;
  rank: number;
  mlp_class: string;
  shared: boolean;
  // training
  batch_size: number;
  model_save_pt: number;
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
  half: boolean;
  debug: boolean;
  save: boolean;
  verbose: boolean;
  val_batch_size: number;
  accumulate_bs: number;
  val_steps: number;
  opt: string;
  grad_clip: number;
  // bookkeeping of EasyEdit's files
  alg: string;
  model_class: string;
  tokenizer_class: string;
  tokenizer_name: string;
}

const unused = (doc = "read for EasyEdit files; unused") => doc;

export const MEND_SCHEMA: Schema = {
  archive: {
    type: "string|null",
    default: null,
    doc: "the trained editor (.safetensors written by `editeval train-mend`); null while training",
  },
  inner_params: {
    type: "string[]",
    default: [
      "transformer.h.45.mlp.c_proj.weight",
      "transformer.h.45.mlp.c_fc.weight",
      "transformer.h.46.mlp.c_proj.weight",
      "transformer.h.46.mlp.c_fc.weight",
      "transformer.h.47.mlp.c_proj.weight",
      "transformer.h.47.mlp.c_fc.weight",
    ],
    doc: "the edited weights (module name + .weight; brackets or dots)",
  },
  lr: { type: "number", default: 1e-6, doc: "Adam learning rate of the editor networks and edit_lrs" },
  edit_lr: { type: "number", default: 1e-4, doc: "initial per-weight edit learning rate (learned)" },
  lr_lr: {
    type: "number",
    default: 1e-4,
    doc: "no effect, as in the references (edit_lrs learn at lr; see train.ts)",
  },
  lr_scale: { type: "number", default: 1.0, doc: unused() },
  seed: { type: "int", default: 42, doc: "seed of the editor's initialisation and of the data order" },
  cedit: { type: "number", default: 0.1, doc: "weight of the post-edit loss on the rephrase" },
  cloc: { type: "number", default: 1.0, doc: "weight of the locality KL" },
  cbase: { type: "number", default: 1.0, doc: "weight of the base loss (only with train_base)" },
  dropout: { type: "number", default: 0.0, doc: unused() },
  train_base: { type: "bool", default: false, doc: "also fine-tune the base model (not supported: false)" },
  no_grad_layers: { type: "int|null", default: null, doc: unused() },
  one_sided: { type: "bool", default: false, doc: "transform only the smaller of input / gradient" },
  n_hidden: { type: "int", default: 1, doc: "hidden layers of the IDMLP (n_hidden + 1 LRLinear layers)" },
  hidden_dim: { type: "int|null", default: null, doc: unused("unused by IDMLP (as in the reference)") },
  init: { type: "string", default: "id", doc: "id (identity at start) or xavier" },
  norm: { type: "bool", default: true, doc: "normalise inputs and gradients by running statistics" },
  combine: { type: "bool", default: true, doc: "one network over [input, gradient] concatenated" },
  x_only: { type: "bool", default: false, doc: "transform only the input" },
  delta_only: { type: "bool", default: false, doc: "transform only the gradient" },
  act: { type: "string", default: "relu", doc: "relu (IDMLP always clamps at 0)" },
  rank: { type: "int", default: 1920, doc: "rank of each LRLinear (capped at its width)" },
  mlp_class: { type: "string", default: "IDMLP", doc: "IDMLP (the only class the reference files use)" },
  shared: { type: "bool", default: true, doc: "one network per weight shape, with per-weight scale/shift" },
  batch_size: { type: "int", default: 1, doc: "edits per training iteration (one batched edit)" },
  model_save_pt: { type: "int", default: 5000, doc: "iterations between checkpoints" },
  silent: { type: "bool", default: false, doc: "no progress lines" },
  max_iters: { type: "int", default: 100000, doc: "training iterations (each one edit batch)" },
  max_epochs: { type: "int|null", default: null, doc: "caps max_iters at max_epochs passes over the data" },
  log_interval: { type: "int", default: 1000, doc: "iterations between progress lines" },
  eval_log_interval: { type: "int", default: 1000, doc: unused() },
  final_eval: { type: "bool", default: true, doc: "validate after the last iteration" },
  val_interval: { type: "int", default: 1000, doc: "iterations between validations" },
  early_stop_patience: { type: "int", default: 20000, doc: unused("not implemented (see docs)") },
  early_stop_key: { type: "string", default: "loss/total_edit_val", doc: unused("not implemented") },
  eval_only: { type: "bool", default: true, doc: unused() },
  half: { type: "bool", default: false, doc: unused() },
  debug: { type: "bool", default: false, doc: unused() },
  save: { type: "bool", default: false, doc: unused() },
  verbose: { type: "bool", default: true, doc: unused() },
  val_batch_size: { type: "int", default: 5, doc: "edits per validation edit" },
  accumulate_bs: { type: "int", default: 10, doc: "iterations whose gradients make one optimiser step" },
  val_steps: { type: "int", default: 500, doc: "held-out records per validation (capped by the data)" },
  opt: { type: "string", default: "Adam", doc: "Adam (the only optimiser the reference files use)" },
  grad_clip: { type: "number", default: 100, doc: "global gradient-norm clip of each optimiser step" },
  alg: { type: "string", default: "MEND", doc: "EasyEdit's training files: the algorithm name" },
  model_class: { type: "string", default: "", doc: unused() },
  tokenizer_class: { type: "string", default: "", doc: unused() },
  tokenizer_name: { type: "string", default: "", doc: unused() },
};

/** "transformer.h[35].mlp.c_fc.weight" -> "transformer.h.35.mlp.c_fc" (EasyEdit's brackets_to_periods, .weight dropped). */
export function moduleOfParam(name: string): string {
  const dotted = name.replace(/\[/g, ".").replace(/\]/g, "");
  return dotted.replace(/\.weight$/, "");
}

/** A module's weight in the reference's get_shape orientation: (input size, output size). */
export interface EditedWeight {
  module: string;
  param: string;
  fin: number;
  fout: number;
  /** GPT-2's Conv1D stores the weight [in, out]; linear layers store [out, in] */
  conv1d: boolean;
}

/** Resolves `inner_params` against the model: each names an existing module with a 2-D weight. */
export function editedWeights(model: CausalLM, innerParams: string[], where: string): EditedWeight[] {
  if (innerParams.length === 0) throw new HparamsError(`${where}: inner_params is empty`);
  const seen = new Set<string>();
  return innerParams.map((p) => {
    const module = moduleOfParam(p);
    if (seen.has(module)) throw new HparamsError(`${where}: inner_params names ${module} twice`);
    seen.add(module);
    try {
      model.checkModule(module);
    } catch (e) {
      throw new HparamsError(`${where}: inner_params entry '${p}': ${(e as Error).message}`);
    }
    const w = model.params.get(`${module}.weight`);
    if (!w || w.ndim !== 2)
      throw new HparamsError(`${where}: inner_params entry '${p}': ${module} has no 2-D weight`);
    const conv1d = model.config.modelType === "gpt2";
    return {
      module,
      param: `${module}.weight`,
      fin: conv1d ? w.size(0) : w.size(1),
      fout: conv1d ? w.size(1) : w.size(0),
      conv1d,
    };
  });
}

/**
 * A relative `archive` path: next to the hparams file `where` when it exists there (the hparams.yaml that
 * `editeval train-mend` writes names its editor so), else as given, from the working directory (as
 * EasyEdit reads it); the error, if it exists nowhere, comes when the editor is loaded.
 */
export function resolveArchive(archive: string | null, where: string): string | null {
  if (archive === null || isAbsolute(archive)) return archive;
  if (existsSync(where)) {
    const beside = join(dirname(resolve(where)), archive);
    if (existsSync(beside)) return beside;
  }
  return archive;
}

/** Schema-level parse (no model): types, allowed values. */
export function parseMendHparamsRaw(raw: Record<string, unknown>, where: string): MendHparams {
  const h = parseHparams<MendHparams>(MEND_SCHEMA, raw, where, "MEND");
  const oneOf = (k: keyof MendHparams, allowed: string[]) => {
    if (!allowed.includes(h[k] as string))
      throw new HparamsError(
        `${where}: MEND ${k} must be one of ${allowed.join(", ")}, got ${JSON.stringify(h[k])}`,
      );
  };
  oneOf("init", ["id", "xavier"]);
  oneOf("act", ["relu"]);
  oneOf("mlp_class", ["IDMLP"]);
  oneOf("opt", ["Adam"]);
  if (h.alg.toUpperCase() !== "MEND")
    throw new HparamsError(`${where}: alg is ${JSON.stringify(h.alg)}; this file is not for MEND`);
  if (h.train_base)
    throw new HparamsError(
      `${where}: train_base: true (fine-tuning the base model with MEND) is not supported; set it to false`,
    );
  if (h.combine && (h.one_sided || h.x_only || h.delta_only))
    throw new HparamsError(
      `${where}: combine cannot be used with one_sided, x_only or delta_only (as in MEND)`,
    );
  for (const k of ["n_hidden"] as const)
    if (h[k] < 0) throw new HparamsError(`${where}: ${k} must be >= 0, got ${h[k]}`);
  for (const k of [
    "rank",
    "batch_size",
    "accumulate_bs",
    "val_batch_size",
    "log_interval",
    "val_interval",
    "model_save_pt",
  ] as const)
    if (h[k] < 1) throw new HparamsError(`${where}: ${k} must be >= 1, got ${h[k]}`);
  if (h.max_iters < 0) throw new HparamsError(`${where}: max_iters must be >= 0`);
  h.archive = resolveArchive(h.archive, where);
  return h;
}

/** Full parse: the schema, then the edited weights checked against the model. */
export function parseMendHparams(raw: Record<string, unknown>, where: string, model: CausalLM): MendHparams {
  const h = parseMendHparamsRaw(raw, where);
  editedWeights(model, h.inner_params, where);
  return h;
}
