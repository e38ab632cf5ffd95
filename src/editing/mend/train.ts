/**
 * Training MEND's editor (EditTrainer.edit_step / train_step of eric-mitchell/mend trainer.py and
 * EasyEdit trainer/EditTrainer.py). Each iteration takes `batch_size` records:
 *
 *  1. the edit: prompt + target, MEND's factors with the running statistics updated (./edit.ts);
 *  2. after the edit (the edited weights W - lr u~^T delta~ as hooks, differentiable in the editor):
 *     l_edit = token-mean NLL of the target after a rephrase of the prompt (the reference's `edit_outer`;
 *     MEND's original trainer, `data.rephrase: true`), l_loc = KL(pre || post) over the answer positions
 *     of a locality prompt + its answer;
 *  3. l = cedit * l_edit + cloc * l_loc; its gradient with respect to the networks and edit_lrs, skipped
 *     when not finite, is added divided by `accumulate_bs` (safe_backward);
 *  4. every `accumulate_bs` iterations: the global gradient norm clipped to `grad_clip` (over networks and
 *     edit_lrs), one Adam(lr) step of the networks and edit_lrs.
 *
 * `lr_lr` has no effect, as in both references: they put edit_lrs in the main optimiser (outer_parameters,
 * lr) and also in an `lr_opt` at lr_lr, but step lr_opt after opt.zero_grad(), so it sees zero gradients
 * (torch < 2) or none (torch >= 2) and never moves them. (Stepping them at lr_lr as intended, which we
 * tried, makes edit_lr swing by about lr_lr / edit_lr per step: with EasyEdit's 1e-4 / 1e-4 that is 100%.)
 *
 * Deliberate differences:
 *  - EasyEdit's trainer computes the post-edit loss on the edit prompt itself (`edit_inner`); we follow
 *    the original (the rephrase), as the paper does.
 *  - the locality KL is taken at the positions that predict the answer's tokens; EasyEdit takes the last
 *    len(answer) positions of the logits (one position later: the answer tokens' own positions).
 *  - no early stopping or best-checkpoint selection: the archive is the editor after the last iteration
 *    (validation numbers are logged at `val_interval`).
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { stringify as yamlStringify } from "yaml";
import * as torch from "../../torch/index.js";
import type { Tensor } from "../../torch/index.js";
import type { CausalLM } from "../../models/model.js";
import type { Tokenizer } from "../../models/tokenizer/index.js";
import type { MendHparams } from "./hparams.js";
import {
  createMendEditor,
  freeMendEditor,
  mendNamedTensors,
  mendParameters,
  saveMendEditor,
  type MendEditor,
} from "./nets.js";
import { mendEditHooks, mendFactors } from "./edit.js";
import {
  labelLogits,
  localityKl,
  promptTarget,
  targetAccuracyOf,
  targetNllOf,
  tokenBatch,
} from "./factors.js";
import { sampleBatch, validationBatches, type MetaData, type MetaSample } from "./data.js";
import {
  ResumableAdam,
  accumulateGrad,
  allFinite,
  clipGradNorm,
  runMetaTraining,
  type LoopResult,
  type MetaLearner,
} from "./loop.js";

export interface EditorTrainOptions {
  outDir: string;
  data: MetaData;
  /** overrides max_iters */
  maxIters?: number;
  resume?: boolean;
  /** stop after this iteration with a checkpoint (an interrupted run; tests) */
  stopAfter?: number;
  log?: (line: string) => void;
  silent?: boolean;
  /** the hparams as given (written back with `archive` set, for editing with the trained editor) */
  rawHparams?: Record<string, unknown>;
}

/**
 * The MEND objective of a batch of samples. `training`: the statistics are updated and the result is
 * differentiable in the editor; `grad` alone keeps the graph without updating statistics (gradient
 * checks); neither: validation (no graph, and the post-edit accuracy on the edit prompt is added).
 */
export function mendObjective(
  model: CausalLM,
  tok: Tokenizer,
  ed: MendEditor,
  samples: MetaSample[],
  h: Pick<MendHparams, "cedit" | "cloc">,
  training: boolean,
  grad = training,
): { total: Tensor; info: Record<string, number> } {
  const b = samples.length;
  const editItems = samples.map((s) => promptTarget(tok, s.record.prompt, s.record.target));
  const { factors } = grad
    ? torch.enableGrad(() => mendFactors(model, tok, ed, editItems, training))
    : torch.noGrad(() => mendFactors(model, tok, ed, editItems, false));
  const items = [
    ...samples.map((s) => promptTarget(tok, s.rephrase, s.record.target)),
    ...samples.map((s) => promptTarget(tok, s.loc.prompt, s.loc.answer)),
    ...(training ? [] : editItems),
  ];
  const batch = tokenBatch(tok, items);
  const inputs = { inputIds: batch.ids, attentionMask: batch.mask };
  const base = torch.noGrad(() => model.forward(inputs).logits);
  const post = model.withHooks(mendEditHooks(factors), () => model.forward(inputs).logits);
  const labels = (start: number) => batch.labels.narrow(0, start, b);
  const lEdit = targetNllOf(labelLogits(post, 0, b), labels(0));
  const lLoc = localityKl(labelLogits(base, b, b), labelLogits(post, b, b), labels(b));
  const total = lEdit.mul(h.cedit).add(lLoc.mul(h.cloc));
  const info: Record<string, number> = {
    "loss/edit": lEdit.item(),
    "loss/loc": lLoc.item(),
    "loss/total_edit": total.item(),
    "edit/acc": targetAccuracyOf(labelLogits(post, 0, b), labels(0)),
    "nll/pre": torch.noGrad(() => targetNllOf(labelLogits(base, 0, b), labels(0)).item()),
  };
  if (!training) info["edit/acc_inner"] = targetAccuracyOf(labelLogits(post, 2 * b, b), labels(2 * b));
  return { total, info };
}

/** The loop's view of a MEND editor in training. */
export function mendLearner(
  model: CausalLM,
  tok: Tokenizer,
  ed: MendEditor,
  h: MendHparams,
  data: MetaData,
): MetaLearner & { free(): void } {
  const all = mendParameters(ed);
  const params = all.map(([, t]) => t);
  const opt = new ResumableAdam(params, { lr: h.lr });
  return {
    method: "MEND",
    archiveName: "mend.safetensors",
    tensors: () => mendNamedTensors(ed),
    parameters: () => all,
    optimizers: () => [{ name: "opt", opt }],
    iterate(iteration: number) {
      const samples = sampleBatch(data.train, iteration, h.batch_size, h.seed);
      const info = torch.scope(() => {
        const { total, info } = mendObjective(model, tok, ed, samples, h, true);
        const grads = torch.grad([total], params);
        if (allFinite(grads))
          grads.forEach((g, i) => g && accumulateGrad(params[i] as Tensor, g, 1 / h.accumulate_bs));
        else info.skipped = 1;
        return info;
      });
      if ((iteration + 1) % h.accumulate_bs === 0) {
        info.grad = clipGradNorm(params, h.grad_clip);
        opt.step();
        opt.zeroGrad();
      }
      ed.editLrs.toNumbers().forEach((v, i) => (info[`lr/lr${i}`] = v));
      return info;
    },
    validate() {
      const batches = validationBatches(data.val, h.val_steps, h.val_batch_size, h.seed);
      const sums: Record<string, number> = {};
      for (const s of batches) {
        const info = torch.scope(() => mendObjective(model, tok, ed, s, h, false).info);
        for (const [k, v] of Object.entries(info)) sums[k] = (sums[k] ?? 0) + v;
      }
      for (const k of Object.keys(sums)) sums[k] = (sums[k] as number) / Math.max(1, batches.length);
      return sums;
    },
    saveArchive: (path) => saveMendEditor(path, ed, { data: data.path }),
    free() {
      opt.free();
    },
  };
}

/** Keys that do not change what training computes (they may differ on resume). */
const LOOP_KEYS = new Set([
  "archive",
  "max_iters",
  "max_epochs",
  "log_interval",
  "eval_log_interval",
  "val_interval",
  "val_steps",
  "model_save_pt",
  "silent",
  "final_eval",
  "verbose",
  "debug",
  "save",
  "eval_only",
]);

/** What must match for a resume: the method, the hyper-parameters that shape the training, data, model. */
export function trainingFingerprint(
  method: string,
  h: object,
  data: MetaData,
  model: CausalLM,
): Record<string, unknown> {
  return {
    method,
    hparams: Object.fromEntries(Object.entries(h).filter(([k]) => !LOOP_KEYS.has(k))),
    data: { path: data.path, train: data.train.length, val: data.val.length },
    model: {
      type: model.config.modelType,
      layers: model.config.numLayers,
      parameters: model.numParameters(),
      dtype: model.dtype,
    },
  };
}

/** Iterations to run: max_iters, capped by max_epochs passes over the training records. */
export function iterationsOf(
  h: { max_iters: number; max_epochs: number | null },
  perIteration: number,
  records: number,
  override?: number,
): number {
  if (override !== undefined) return override;
  if (h.max_epochs === null) return h.max_iters;
  return Math.min(h.max_iters, Math.ceil((h.max_epochs * records) / perIteration));
}

/** Writes <out>/hparams.yaml: the given hparams with `archive` naming the trained editor (beside it). */
export function writeEditHparams(
  outDir: string,
  alg: string,
  raw: Record<string, unknown> | undefined,
  archiveName: string,
): string {
  const path = join(outDir, "hparams.yaml");
  const h = { alg_name: alg, ...(raw ?? {}), archive: archiveName };
  delete (h as Record<string, unknown>).alg;
  writeFileSync(
    path,
    `# ${alg} editor trained by editeval train-mend; archive is relative to this file\n` + yamlStringify(h),
  );
  return path;
}

/** The hyper-parameters the shared training run reads (MEND's and MALMEN's files both have them). */
interface TrainingHparams {
  max_iters: number;
  max_epochs: number | null;
  log_interval: number;
  val_interval: number;
  model_save_pt: number;
  final_eval: boolean;
  silent: boolean;
}

/**
 * Runs (or resumes) the meta-training of an editor network's learner and, when an archive was written,
 * the edit hparams file naming it; frees the learner and calls `free` at the end. MEND and MALMEN differ
 * only in the learner (which names the method) and the requests per iteration.
 */
export function trainEditorNetwork(
  model: CausalLM,
  h: TrainingHparams,
  perIteration: number,
  learner: MetaLearner & { free(): void },
  opts: EditorTrainOptions,
  free: () => void,
): LoopResult & { hparamsFile: string | null } {
  const alg = learner.method;
  try {
    const res = runMetaTraining(learner, {
      outDir: opts.outDir,
      maxIters: iterationsOf(h, perIteration, opts.data.train.length, opts.maxIters),
      resume: opts.resume,
      stopAfter: opts.stopAfter,
      logInterval: h.log_interval,
      valInterval: h.val_interval,
      saveEvery: h.model_save_pt,
      finalEval: h.final_eval,
      fingerprint: trainingFingerprint(alg, h, opts.data, model),
      log: opts.log,
      silent: opts.silent ?? h.silent,
    });
    const hparamsFile = res.archive
      ? writeEditHparams(opts.outDir, alg, opts.rawHparams, learner.archiveName)
      : null;
    return { ...res, hparamsFile };
  } finally {
    learner.free();
    free();
  }
}

/**
 * Trains (or resumes training) a MEND editor for `model` on `opts.data`, writing checkpoints, log.jsonl,
 * mend.safetensors and hparams.yaml to `opts.outDir`.
 */
export function trainMend(
  model: CausalLM,
  tok: Tokenizer,
  h: MendHparams,
  opts: EditorTrainOptions,
): LoopResult & { hparamsFile: string | null } {
  const ed = createMendEditor(model, h);
  const learner = mendLearner(model, tok, ed, h, opts.data);
  return trainEditorNetwork(model, h, h.batch_size, learner, opts, () => freeMendEditor(ed));
}
