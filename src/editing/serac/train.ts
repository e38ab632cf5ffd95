/**
 * Training SERAC's scope classifier and counterfactual model, with the original's supervised objective
 * (eric-mitchell/serac trainer.py SupervisedTrainer.edit_step, config/alg/rep.yaml `supervised: true`):
 * for a batch of `batch_size` edits (records),
 *   l_cls  = balanced BCE of the classifier's log-similarities: positives = each in-scope input against
 *            its own edit, negatives = each locality input against its own edit (`use_all_negatives`:
 *            against every edit of the batch); one locality input per edit, as the reference's
 *            records have (a record with several is read with the next one each epoch);
 *   l_cntr = the counterfactual model's NLL of the target tokens of each in-scope input, read with its
 *            own edit in front (the reference's "gold" edit: rep_gold_logits);
 *   loss   = cedit * l_cntr + cloc * l_cls, summed over `accumulate_bs` batches (each divided by it), then
 *            the gradient norm is clipped to `grad_clip` and Adam (lr `lr`) steps.
 * What the classifier sees is what the router (./router.ts) asks it at inference: the prefixes of
 * `f"{input} {answer}"` that predict the answer's tokens (the input itself, then with each answer token
 * but the last). The counterfactual input is the router's: the edit `f"{prompt} {target} "` joined to the
 * input. EasyEdit trains the unsupervised form instead (supervised: false: the soft mixture's edit NLL and
 * locality KL); `supervised` is read and this objective is used whatever it says.
 *
 * Batches are drawn without replacement from one seeded permutation of the records per epoch (the
 * reference samples with a DataLoader); a checkpoint (./archive.ts) is written every `model_save_pt`
 * iterations at an optimiser step, and at the end; a resumed run continues with exactly the numbers an
 * uninterrupted one gives. If the last iterations do not fill `accumulate_bs`, their gradients are
 * applied in one last step.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import * as torch from "../../torch/index.js";
import type { Tensor } from "../../torch/index.js";
import { loadSafetensors } from "../../torch/io.js";
import { loadModel } from "../../models/load.js";
import type { CausalLM } from "../../models/model.js";
import type { Tokenizer } from "../../models/tokenizer/index.js";
import { rightPadIds } from "../repr.js";
import { targetText } from "../request.js";
import { ResumableAdamW, clipGradNorm } from "../../train/trainer.js";
import { Progress, formatDuration } from "../../util/progress.js";
import { ScopeClassifier, balancedBce } from "./classifier.js";
import { routedInput } from "./router.js";
import { ARCHITECTURE_KEYS, type SeracHparams } from "./hparams.js";
import { TOKENIZER_PROBE, readArchiveMeta, saveArchive, type ArchiveMeta } from "./archive.js";
import type { ScopeRecord } from "./data.js";

/** The edit as the counterfactual model reads it in front of an input (SERAC.py build_rep_cache_contexts). */
export function editContext(prompt: string, target: string): string {
  return `${prompt}${targetText(target)} `;
}

/** An input with its answer: ids of f"{input} {answer}"; positions plen-1 .. ids.length-2 predict the answer. */
export interface AnswerItem {
  ids: number[];
  plen: number;
}

export function answerItem(tok: Tokenizer, input: string, answer: string): AnswerItem {
  return {
    ids: tok.encode(`${input}${targetText(answer)}`, { addSpecialTokens: true }),
    plen: tok.encode(input, { addSpecialTokens: true }).length,
  };
}

/** The answer positions of an item (those that predict an answer token). */
export function answerPositions(it: AnswerItem): number[] {
  const out: number[] = [];
  for (let p = Math.max(0, it.plen - 1); p <= it.ids.length - 2; p++) out.push(p);
  return out;
}

/** The record indices of iteration `iter`: batch `iter` of the concatenated per-epoch permutations. */
export function batchIndices(n: number, batchSize: number, seed: number, iter: number): number[] {
  const perms = new Map<number, number[]>();
  const perm = (epoch: number) => {
    let p = perms.get(epoch);
    if (!p) {
      // torch.randperm with a generator seeded per epoch (the same permutation as Python's torch)
      const g = new torch.Generator(seed * 100003 + epoch);
      p = torch.scope(() => torch.randperm(n, { generator: g }).toNumbers());
      perms.set(epoch, p);
    }
    return p;
  };
  const out: number[] = [];
  for (let k = iter * batchSize; k < (iter + 1) * batchSize; k++)
    out.push(perm(Math.floor(k / n))[k % n] as number);
  return out;
}

export interface BatchStats {
  loss: number;
  cls: number;
  cntr: number;
  /** fraction of in-scope prefixes above the threshold / locality prefixes at or below it */
  pos_acc: number;
  neg_acc: number;
}

/**
 * The batch loss (a scalar with gradients) and its parts; each record's locality input is its
 * outScope[locRound mod count] (the trainer passes the epoch).
 */
export function seracBatchLoss(
  classifier: ScopeClassifier,
  cf: CausalLM | null,
  tok: Tokenizer,
  records: ScopeRecord[],
  h: SeracHparams,
  locRound = 0,
): { loss: Tensor; stats: BatchStats } {
  const pad = tok.padTokenId ?? tok.eosTokenId ?? 0;
  const B = records.length;
  const keys = records.map((r) => tok.encode(r.prompt, { addSpecialTokens: true }));
  const tests: { it: AnswerItem; edit: number }[] = [];
  const locs: { it: AnswerItem; edit: number }[] = [];
  records.forEach((r, i) => {
    for (const s of r.inScope) tests.push({ it: answerItem(tok, s, r.target), edit: i });
    const l = r.outScope[locRound % r.outScope.length] as { prompt: string; answer: string };
    locs.push({ it: answerItem(tok, l.prompt, l.answer), edit: i });
  });
  const rows = [...keys, ...tests.map((t) => t.it.ids), ...locs.map((l) => l.it.ids)];
  const { ids, width } = rightPadIds(rows, pad);
  const E = classifier.prefixEmbeddings(ids).reshape(rows.length * width, -1);
  const K = E.indexSelect(
    0,
    torch.tensor(
      keys.map((k, i) => i * width + k.length - 1),
      { dtype: "int64" },
    ),
  );
  const gather = (items: { it: AnswerItem; edit: number }[], rowBase: number) => {
    const q: number[] = [];
    const e: number[] = [];
    items.forEach(({ it, edit }, j) => {
      for (const p of answerPositions(it)) {
        q.push((rowBase + j) * width + p);
        e.push(edit);
      }
    });
    return { q, e };
  };
  const pos = gather(tests, B);
  const neg = gather(locs, B + tests.length);
  const own = (ls: Tensor, e: number[]) =>
    ls.gather(1, torch.tensor(e, { dtype: "int64" }).view(-1, 1)).squeeze(1);
  const posLs = own(classifier.logSims(E.indexSelect(0, torch.tensor(pos.q, { dtype: "int64" })), K), pos.e);
  const negAll = classifier.logSims(E.indexSelect(0, torch.tensor(neg.q, { dtype: "int64" })), K);
  const negLs = h.use_all_negatives ? negAll.reshape(-1) : own(negAll, neg.e);
  const lCls = balancedBce(posLs, negLs);

  let lCntr: Tensor | null = null;
  if (cf) {
    const window = cf.config.maxPositions > 0 ? cf.config.maxPositions : Infinity;
    const seqs: number[][] = [];
    const labels: number[][] = [];
    for (const { it, edit } of tests) {
      const r = records[edit] as ScopeRecord;
      const { ids: x, offset } = routedInput(tok, editContext(r.prompt, r.target), it.ids, window);
      const lab = new Array<number>(x.length).fill(-100);
      for (const p of answerPositions(it)) if (offset + p >= 0) lab[offset + p] = it.ids[p + 1] as number;
      seqs.push(x);
      labels.push(lab);
    }
    const w = Math.max(...seqs.map((s) => s.length));
    const padded = rightPadIds(seqs, pad).ids;
    const lab = torch.tensor(
      labels.map((l) => [...l, ...new Array<number>(w - l.length).fill(-100)]),
      { dtype: "int64" },
    );
    const logits = cf.forward({ inputIds: padded }).logits;
    lCntr = torch.F.crossEntropy(logits.reshape(-1, logits.size(-1)), lab.reshape(-1), { ignoreIndex: -100 });
  }
  const loss = lCntr ? lCntr.mul(h.cedit).add(lCls.mul(h.cloc)) : lCls.mul(h.cloc);
  const thr = Math.log(h.threshold);
  const stats = torch.noGrad(() => ({
    loss: loss.item(),
    cls: lCls.item(),
    cntr: lCntr ? lCntr.item() : 0,
    pos_acc: posLs.numel() ? posLs.gt(thr).to("float32").mean().item() : 1,
    neg_acc: negLs.numel() ? negLs.le(thr).to("float32").mean().item() : 1,
  }));
  return { loss, stats };
}

/** Embeddings [n, p] of whole texts (a right-padded batch read at each row's last token). */
export function embedTexts(classifier: ScopeClassifier, tok: Tokenizer, texts: string[]): Tensor {
  const pad = tok.padTokenId ?? tok.eosTokenId ?? 0;
  const parts: Tensor[] = [];
  for (let s = 0; s < texts.length; s += 64) {
    const rows = texts.slice(s, s + 64).map((t) => tok.encode(t, { addSpecialTokens: true }));
    const { ids, width } = rightPadIds(rows, pad);
    const E = classifier.prefixEmbeddings(ids).reshape(rows.length * width, -1);
    parts.push(
      E.indexSelect(
        0,
        torch.tensor(
          rows.map((r, i) => i * width + r.length - 1),
          { dtype: "int64" },
        ),
      ),
    );
  }
  return torch.cat(parts, 0);
}

export interface ScopeAccuracy {
  /** rephrases (in-scope inputs other than the edit's prompt) whose similarity to their edit exceeds the threshold */
  in_scope: number;
  /** locality inputs whose similarity to their own edit is at most the threshold */
  out_scope_own: number;
  /** locality inputs whose best similarity over every edit of the set is at most the threshold */
  out_scope_all: number;
  n_in: number;
  n_out: number;
}

/**
 * The classifier's scope decisions at the point that matters most, the input's last token (the decision
 * for the first answer token), on records as a memory of edits.
 */
export function scopeAccuracy(
  classifier: ScopeClassifier,
  tok: Tokenizer,
  records: ScopeRecord[],
  threshold: number,
): ScopeAccuracy {
  return torch.scope(() =>
    torch.noGrad(() => {
      const K = embedTexts(
        classifier,
        tok,
        records.map((r) => r.prompt),
      );
      const ins = records.flatMap((r, i) => r.inScope.slice(1).map((p) => ({ p, i })));
      const outs = records.flatMap((r, i) => r.outScope.map((l) => ({ p: l.prompt, i })));
      const thr = Math.log(threshold);
      const rate = (items: { p: string; i: number }[], inside: boolean) => {
        if (items.length === 0) return { own: 1, all: 1 };
        const ls = classifier.logSims(
          embedTexts(
            classifier,
            tok,
            items.map((x) => x.p),
          ),
          K,
        );
        const own = ls
          .gather(
            1,
            torch
              .tensor(
                items.map((x) => x.i),
                { dtype: "int64" },
              )
              .view(-1, 1),
          )
          .squeeze(1);
        const best = ls.amax(1);
        const ok = (t: Tensor) => (inside ? t.gt(thr) : t.le(thr)).to("float32").mean().item();
        return { own: ok(own), all: ok(best) };
      };
      const a = rate(ins, true);
      const b = rate(outs, false);
      return {
        in_scope: a.own,
        out_scope_own: b.own,
        out_scope_all: b.all,
        n_in: ins.length,
        n_out: outs.length,
      };
    }),
  );
}

export interface TrainSeracOptions {
  hparams: SeracHparams;
  /** the edited model's tokenizer (shared by classifier and counterfactual model) */
  tok: Tokenizer;
  /** the classifier backbone's initial weights (a model directory) */
  clsInit: string;
  /** the counterfactual model's initial weights (a model directory; unused with freeze_cntr) */
  cfInit: string;
  data: { spec: string; source: string; train: ScopeRecord[]; val: ScopeRecord[] };
  /** the archive directory (checkpoints go there) */
  out: string;
  /** total iterations (default hparams.max_iters) */
  steps?: number;
  /** continue from the checkpoint in `out` (without it, an existing checkpoint is an error) */
  resume?: boolean;
  /** stop after this iteration (an interruption on purpose: tests) */
  stopAfter?: number;
  log?: (line: string) => void;
  progress?: boolean;
}

export interface TrainSeracResult {
  step: number;
  seconds: number;
  log: Record<string, number>[];
  resumedFrom: number | null;
}

/** Settings that must match between a checkpoint and the run resuming it. */
function resumeFingerprint(h: SeracHparams, spec: string): string {
  const keep: Partial<Record<keyof SeracHparams, unknown>> = {};
  for (const k of [
    ...ARCHITECTURE_KEYS,
    "lr",
    "seed",
    "cedit",
    "cloc",
    "use_all_negatives",
    "batch_size",
    "accumulate_bs",
    "grad_clip",
    "threshold",
  ] as const)
    keep[k] = h[k];
  return JSON.stringify({ keep, spec });
}

/** Trains (or resumes training of) a SERAC archive; see the file comment. */
export function trainSerac(o: TrainSeracOptions): TrainSeracResult {
  const h = o.hparams;
  const log = o.log ?? ((l: string) => process.stderr.write(l + "\n"));
  const steps = o.steps ?? h.max_iters;
  if (!(steps >= 1)) throw new Error(`train-serac: steps must be >= 1, got ${steps}`);
  if (o.data.train.length === 0) throw new Error("train-serac: no training records");
  const existing = readArchiveMeta(o.out);
  if (existing && !o.resume)
    throw new Error(
      `train-serac: ${o.out} already holds a SERAC checkpoint (step ${existing.step}); pass --resume to continue it, or choose another --out`,
    );
  if (
    existing &&
    resumeFingerprint(existing.hparams, existing.data.spec) !== resumeFingerprint(h, o.data.spec)
  )
    throw new Error(
      `train-serac: the checkpoint in ${o.out} was trained with other settings or data (${resumeFingerprint(existing.hparams, existing.data.spec)}); ` +
        "resume with the same hparams and --data, or start afresh in another --out",
    );
  const probe = o.tok.encode(TOKENIZER_PROBE, { addSpecialTokens: false });

  // models
  const from = existing ? o.out : null;
  const backbone = loadModel(from ? join(from, "classifier") : o.clsInit);
  let proj: Tensor;
  if (from) {
    const head = loadSafetensors(join(from, "classifier_head.safetensors"));
    proj = head.get("proj") as Tensor;
  } else {
    const d = backbone.config.hiddenSize;
    const p = h.cls_proj_dim ?? d;
    proj = torch.scope(() =>
      torch
        .eye(p, d)
        .mul(1 / Math.sqrt(d))
        .keep(),
    );
  }
  const classifier = new ScopeClassifier(backbone, proj, {
    cos: h.cos,
    square: h.square,
    dist_heads: h.dist_heads,
    bound_embeds: h.bound_embeds,
  });
  const cf = h.freeze_cntr ? null : loadModel(from ? join(from, "cf_model") : o.cfInit);
  for (const m of [backbone, cf])
    if (m && m.config.vocabSize < o.tok.vocabSize)
      throw new Error(
        `train-serac: ${m.source} has ${m.config.vocabSize} token embeddings, the tokenizer ${o.tok.vocabSize} (they must share the edited model's tokenizer)`,
      );

  // parameters, named for the optimiser state
  const names = new Map<Tensor, string>();
  const params: Tensor[] = [];
  const add = (n: string, t: Tensor) => {
    if (!t.requiresGrad) t.requiresGrad_(true);
    names.set(t, n);
    params.push(t);
  };
  for (const [n, t] of backbone.uniqueParameters()) add(`cls.${n}`, t);
  add("head.proj", proj);
  if (cf) for (const [n, t] of cf.uniqueParameters()) add(`cf.${n}`, t);
  const opt = new ResumableAdamW(params, { lr: h.lr, betas: [0.9, 0.999], eps: 1e-8, weightDecay: 0 });
  const state = {
    step: existing?.step ?? 0,
    seconds: existing?.seconds ?? 0,
    log: existing?.log ?? ([] as Record<string, number>[]),
  };
  if (existing) {
    const file = join(o.out, "optimizer.safetensors");
    const t = existsSync(file) ? loadSafetensors(file) : new Map<string, Tensor>();
    opt.importState(names, t, existing.optimizer_steps, file);
    for (const x of t.values()) x.free();
    log(`train-serac: resumed ${o.out} at iteration ${existing.step}`);
  }
  const resumedFrom = existing ? existing.step : null;

  const save = () => {
    const st = opt.exportState(names);
    const meta: ArchiveMeta = {
      format: "editeval-serac/1",
      step: state.step,
      seconds: state.seconds,
      hparams: h,
      data: { spec: o.data.spec, source: o.data.source, train: o.data.train.length, val: o.data.val.length },
      tokenizer: { vocab_size: o.tok.vocabSize, probe },
      log: state.log,
      optimizer_steps: st.steps,
    };
    saveArchive(o.out, meta, classifier, cf, st.tensors);
  };
  const validate = (): Record<string, number> => {
    const val = o.data.val.slice(0, h.val_steps);
    if (val.length === 0) return {};
    const a = scopeAccuracy(classifier, o.tok, val, h.threshold);
    return {
      val_in_scope: a.in_scope,
      val_out_scope_own: a.out_scope_own,
      val_out_scope_all: a.out_scope_all,
    };
  };

  const end = Math.min(steps, o.stopAfter ?? steps);
  const progress = new Progress(
    "train-serac",
    Math.max(0, end - state.step),
    (o.progress ?? true) && !h.silent && process.env.EDITEVAL_QUIET !== "1",
  );
  const window: BatchStats[] = [];
  const t0 = performance.now();
  const sec0 = state.seconds;
  const startStep = state.step;
  try {
    while (state.step < end) {
      const it = state.step;
      const batch = batchIndices(o.data.train.length, h.batch_size, h.seed, it).map(
        (i) => o.data.train[i] as ScopeRecord,
      );
      const stats = torch.scope(() => {
        const epoch = Math.floor((it * h.batch_size) / o.data.train.length);
        const { loss, stats } = seracBatchLoss(classifier, cf, o.tok, batch, h, epoch);
        if (!Number.isFinite(stats.loss))
          throw new Error(`train-serac: the loss became ${stats.loss} at iteration ${it}`);
        loss.div(h.accumulate_bs).backward();
        return stats;
      });
      state.step = it + 1;
      const boundary = state.step % h.accumulate_bs === 0 || state.step === steps;
      if (boundary) {
        clipGradNorm(params, h.grad_clip);
        opt.step();
        opt.zeroGrad();
      }
      window.push(stats);
      state.seconds = sec0 + (performance.now() - t0) / 1000;
      progress.tick(1, `loss ${stats.loss.toFixed(3)}`);
      const logNow = state.step % h.log_interval === 0 || state.step === end;
      const valNow = state.step % h.val_interval === 0 || state.step === end;
      if (logNow || valNow) {
        const mean = (k: keyof BatchStats) =>
          window.reduce((s, x) => s + x[k], 0) / Math.max(1, window.length);
        const entry: Record<string, number> = {
          step: state.step,
          loss: mean("loss"),
          cls: mean("cls"),
          cntr: mean("cntr"),
          pos_acc: mean("pos_acc"),
          neg_acc: mean("neg_acc"),
          ...(valNow ? validate() : {}),
        };
        window.length = 0;
        state.log.push(entry);
        const rate = (state.step - startStep) / Math.max(1e-9, state.seconds - sec0);
        if (!h.silent)
          log(
            `train-serac: iteration ${state.step}/${steps} loss ${entry.loss?.toFixed(4)} cls ${entry.cls?.toFixed(4)} ` +
              `(in ${entry.pos_acc?.toFixed(3)}, out ${entry.neg_acc?.toFixed(3)}) cf ${entry.cntr?.toFixed(4)}` +
              (entry.val_in_scope !== undefined
                ? ` | val in ${entry.val_in_scope.toFixed(3)} out ${entry.val_out_scope_own?.toFixed(3)} (all ${entry.val_out_scope_all?.toFixed(3)})`
                : "") +
              ` | ${formatDuration(state.seconds)} elapsed, ETA ${formatDuration((end - state.step) / rate)}`,
          );
      }
      if (boundary && (state.step % h.model_save_pt === 0 || state.step === end)) save();
    }
  } finally {
    opt.free();
    backbone.free();
    proj.free();
    cf?.free();
  }
  return { step: state.step, seconds: state.seconds, log: state.log, resumedFrom };
}
