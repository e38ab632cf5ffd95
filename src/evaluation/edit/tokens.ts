/**
 * Token-level edit metrics on a model: EasyEdit's teacher-forced token accuracy (rewrite_acc,
 * rephrase_acc, portability) and locality token outputs, and ROME/MEMIT's CounterFact per-token NLL
 * comparison. Each reproduces the reference's tokenisation and position bookkeeping, quirks included
 * (see docs/reference/edit-metrics.md §2.3 and §3.2).
 */
import * as torch from "../../torch/index.js";
import type { Tensor } from "../../torch/index.js";
import type { CausalLM } from "../../models/model.js";
import type { Tokenizer } from "../../models/tokenizer/index.js";

/** The slice a[i:j] with Python's semantics (negative indices count from the end; clamped). */
export function pySlice<T>(a: readonly T[], i: number, j?: number): T[] {
  const n = a.length;
  const norm = (k: number) => (k < 0 ? Math.max(0, n + k) : Math.min(k, n));
  return a.slice(norm(i), j === undefined ? n : norm(j));
}

/** EasyEdit's pad id: the tokenizer's pad token, else EOS (editor.py sets pad = eos for GPT/Llama). */
export function easyEditPadId(tok: Tokenizer): number {
  const id = tok.padTokenId ?? tok.eosTokenId;
  if (id === null)
    throw new Error(`${tok.source}: the tokenizer has neither a pad nor an EOS token to pad with`);
  return id;
}

/** Positions 0..L-1 for every row: what a Hugging Face model uses when `model(**batch)` passes no position_ids. */
function hfDefaultPositions(batch: number, len: number): Tensor {
  return torch.arange(0, len).unsqueeze(0).expand(batch, len);
}

/** Arg-max token ids [B][L] of the logits of a padded batch. */
function argmaxIds(model: CausalLM, ids: number[][], mask: number[][]): number[][] {
  const B = ids.length;
  const L = (ids[0] as number[]).length;
  return torch.scope(() =>
    torch.noGrad(() => {
      const { logits } = model.forward({
        inputIds: torch.tensor(ids, { dtype: "int64" }),
        attentionMask: torch.tensor(mask, { dtype: "int64" }),
        positionIds: hfDefaultPositions(B, L),
      });
      const flat = logits.argmax(-1).toNumbers();
      return ids.map((_, b) => flat.slice(b * L, (b + 1) * L));
    }),
  );
}

/** For each prompt: the arg-max predictions and the labels at the target positions. */
export interface TeacherForcedSlice {
  /** argmax at positions start-1 .. L-2 */
  pred: number[];
  /** the token ids at positions start .. L-1 (the target as tokenised after the prompt) */
  labels: number[];
}

/**
 * The core of EasyEdit's test_prediction_acc (easyeditor/evaluate/evaluate_utils.py, with slice_list):
 * `full = prompt + " " + target` (one ASCII space, nothing stripped), `full` and `prompt` tokenised with
 * the tokenizer's special tokens and left-padded with the pad id (pad = EOS when unset), one forward pass
 * with the attention mask and Hugging Face's default positions 0..L-1 (so a left-padded row sees shifted
 * positions, as in EasyEdit). The target starts at `start = #pad ids in the padded full row + #non-pad
 * ids in the prompt row`; predictions are `argmax[start-1:-1]`, labels `ids[start:]`.
 */
export function teacherForcedSlices(
  model: CausalLM,
  tok: Tokenizer,
  prompts: string[],
  targets: string[],
): TeacherForcedSlice[] {
  if (prompts.length !== targets.length)
    throw new Error(`teacher forcing: ${prompts.length} prompts but ${targets.length} targets`);
  if (prompts.length === 0) return [];
  const pad = easyEditPadId(tok);
  const full = tok.encodeBatch(
    prompts.map((p, i) => `${p} ${targets[i] as string}`),
    { paddingSide: "left", padTokenId: pad },
  );
  const promptRows = prompts.map((p) => tok.encode(p));
  const preds = argmaxIds(model, full.inputIds, full.attentionMask);
  return full.inputIds.map((row, i) => {
    const nPad = row.filter((x) => x === pad).length;
    const nPrompt = (promptRows[i] as number[]).filter((x) => x !== pad).length;
    const start = nPad + nPrompt;
    const pred = pySlice(preds[i] as number[], start - 1, -1);
    const labels = pySlice(row, start);
    if (pred.length !== labels.length)
      throw new Error(
        `teacher forcing: prompt ${JSON.stringify(prompts[i])} gives ${pred.length} predictions for ${labels.length} labels (an empty prompt?)`,
      );
    return { pred, labels };
  });
}

/** Mean of elementwise equality (NaN for empty lists, as np.mean). */
export function agreement(a: readonly number[], b: readonly number[]): number {
  if (a.length !== b.length) throw new Error(`agreement: lengths ${a.length} and ${b.length} differ`);
  if (a.length === 0) return NaN;
  let k = 0;
  for (let i = 0; i < a.length; i++) if (a[i] === b[i]) k++;
  return k / a.length;
}

/**
 * EasyEdit's teacher-forced token accuracy, test_prediction_acc (easyeditor/evaluate/evaluate_utils.py)
 * in its scoring mode: per prompt, the fraction of target tokens whose position's arg-max (the gold
 * prefix fed as input) equals the token. With several prompts a NaN score (no target tokens) is dropped;
 * a single prompt keeps it. Used for rewrite_acc, rephrase_acc and portability `<key>_acc`.
 */
export function teacherForcedAccuracy(
  model: CausalLM,
  tok: Tokenizer,
  prompts: string[],
  targets: string[],
): number[] {
  const accs = teacherForcedSlices(model, tok, prompts, targets).map((s) => agreement(s.pred, s.labels));
  return prompts.length === 1 ? accs : accs.filter((x) => !Number.isNaN(x));
}

/**
 * test_prediction_acc in locality mode (easyeditor/evaluate/evaluate_utils.py; collected by
 * compute_locality_quality in easyeditor/evaluate/evaluate.py): the arg-max token ids at the target
 * positions of `prompt + " " + ground_truth`, one list per prompt. The ground truth only fixes where
 * the positions are; it is never compared with.
 */
export function localityOutputs(
  model: CausalLM,
  tok: Tokenizer,
  prompts: string[],
  groundTruths: string[],
): number[][] {
  return teacherForcedSlices(model, tok, prompts, groundTruths).map((s) => s.pred);
}

/**
 * EasyEdit's locality score (EEc editor.py edit_requests; EE editors/editor.py finalize_locality_metrics):
 * per prompt, the fraction of target positions where the post-edit arg-max equals the pre-edit arg-max.
 */
export function localityAgreement(pre: number[][], post: number[][]): number[] {
  if (pre.length !== post.length)
    throw new Error(`locality: ${pre.length} pre-edit outputs but ${post.length} post-edit outputs`);
  return post.map((p, k) => agreement(pre[k] as number[], p));
}

/** Per-prompt result of ROME's CounterFact probability test. */
export interface TargetNLL {
  /** mean per-token negative log-probability of " " + target_new after the prompt */
  target_new: number;
  /** the same for target_true */
  target_true: number;
  /** MEMIT: every target_new token is the arg-max of its position */
  new_correct: boolean;
  /** MEMIT: every target_true token is the arg-max of its position */
  true_correct: boolean;
}

/**
 * ROME's test_batch_prediction (experiments/py/eval_utils_counterfact.py; MEMIT's adds the
 * `*_correct` flags): for each prefix P, `f"{P} {target}"` for target_new and target_true, tokenised
 * right-padded in one batch; `plen = len(tok(P))`; the target tokens X come from tokenising
 * `" " + target` separately (ROME's assumption that tok(P + " " + X) = tok(P) ++ tok(" " + X), not checked);
 * NLL = (1/T) Σ_j −log softmax(logits[plen + j − 1])[x_j]. The target is tokenised without special
 * tokens (identical for GPT-2/GPT-J; ROME would count a Llama BOS as a target token).
 * Rows are run `batchSize` at a time (the values do not depend on the batching).
 */
export function counterfactTargetNLL(
  model: CausalLM,
  tok: Tokenizer,
  prefixes: string[],
  targetNew: string,
  targetTrue: string,
  opts: { batchSize?: number } = {},
): TargetNLL[] {
  if (prefixes.length === 0) return [];
  const pad = easyEditPadId(tok);
  const a = tok.encode(` ${targetNew}`, { addSpecialTokens: false });
  const b = tok.encode(` ${targetTrue}`, { addSpecialTokens: false });
  if (a.length === 0 || b.length === 0) throw new Error("counterfact: a target has no tokens");
  const rows: { text: string; plen: number; target: number[] }[] = [];
  for (const p of prefixes) {
    const plen = tok.encode(p).length;
    rows.push({ text: `${p} ${targetNew}`, plen, target: a });
    rows.push({ text: `${p} ${targetTrue}`, plen, target: b });
  }
  const bs = Math.max(2, opts.batchSize ?? 16);
  const results: { nll: number; correct: boolean }[] = [];
  for (let s = 0; s < rows.length; s += bs) {
    const chunk = rows.slice(s, s + bs);
    const enc = tok.encodeBatch(
      chunk.map((r) => r.text),
      { paddingSide: "right", padTokenId: pad },
    );
    const L = (enc.inputIds[0] as number[]).length;
    const out = torch.scope(() =>
      torch.noGrad(() => {
        const { logits } = model.forward({
          inputIds: torch.tensor(enc.inputIds, { dtype: "int64" }),
          attentionMask: torch.tensor(enc.attentionMask, { dtype: "int64" }),
          positionIds: hfDefaultPositions(chunk.length, L),
        });
        return chunk.map((r, i) => {
          const T = r.target.length;
          if (r.plen - 1 + T > L || r.plen < 1)
            throw new Error(`counterfact: prompt ${JSON.stringify(r.text)} is too short for its target`);
          const lp = logits
            .select(0, i)
            .narrow(0, r.plen - 1, T)
            .to("float32")
            .logSoftmax(-1);
          const idx = torch.tensor(r.target, { dtype: "int64" }).unsqueeze(1);
          const lps = lp.gather(1, idx).squeeze(1).toNumbers();
          const am = lp.argmax(-1).toNumbers();
          return {
            nll: -lps.reduce((x, y) => x + y, 0) / T,
            correct: am.every((t, j) => t === r.target[j]),
          };
        });
      }),
    );
    results.push(...out);
  }
  return prefixes.map((_, i) => {
    const n = results[2 * i] as { nll: number; correct: boolean };
    const t = results[2 * i + 1] as { nll: number; correct: boolean };
    return { target_new: n.nll, target_true: t.nll, new_correct: n.correct, true_correct: t.correct };
  });
}
