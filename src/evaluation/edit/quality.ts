/**
 * One case's metrics on the model as it is now: EasyEdit's compute_edit_quality and ROME/MEMIT's
 * compute_rewrite_quality_counterfact, merged into one result object (their key names do not collide).
 */
import type { CausalLM } from "../../models/model.js";
import type { Tokenizer } from "../../models/tokenizer/index.js";
import type { EditCase } from "../../data/edit/types.js";
import {
  counterfactTargetNLL,
  localityAgreement,
  localityOutputs,
  teacherForcedAccuracy,
  type TargetNLL,
} from "./tokens.js";
import { generateFast } from "./generation.js";
import { nGramEntropy, type TfidfVectorizer } from "./text.js";

export interface EvalOptions {
  /** EasyEdit's token-level metrics (default true) */
  easyedit?: boolean;
  /** ROME/MEMIT CounterFact metrics when the case has CounterFact prompts (default true) */
  rome?: boolean;
  /** generation tests: EasyEdit fluency on the rewrite prompt, ROME's on generation_prompts (default false) */
  generation?: boolean;
  /** base seed of the sampling (per case: seed + 7919·caseId; the same for pre and post) */
  seed?: number;
  /** total generated length, prompt included (100) */
  maxOutLen?: number;
  /** the TF-IDF vectorizer for reference consistency (ROME's reference_score); none: not computed */
  tfidf?: TfidfVectorizer | null;
  /** rows per forward pass of the CounterFact probability test */
  batchSize?: number;
}

/** ROME's per-prompt record: NLLs of the two targets (the reference calls them "probs"). */
export interface NllPair {
  target_new: number;
  target_true: number;
}

/** A phase's metrics (pre or post); EasyEdit keys and ROME keys side by side. */
export interface CaseMetrics {
  // EasyEdit (compute_edit_quality)
  rewrite_acc?: number[];
  rephrase_acc?: number[];
  /** "{key}_output" (before finalisation), "{key}_acc" (post, after) */
  locality?: Record<string, number[] | number[][]>;
  portability?: Record<string, number[]>;
  fluency?: { ngram_entropy: number };
  // ROME / MEMIT (compute_rewrite_quality_counterfact)
  rewrite_prompts_probs?: NllPair[];
  paraphrase_prompts_probs?: NllPair[];
  neighborhood_prompts_probs?: NllPair[];
  attribute_prompts_probs?: NllPair[];
  rewrite_prompts_correct?: boolean[];
  paraphrase_prompts_correct?: boolean[];
  neighborhood_prompts_correct?: boolean[];
  ngram_entropy?: number;
  reference_score?: number;
  text?: string[];
}

function caseSeed(c: EditCase, seed: number): number {
  return (seed + 7919 * c.caseId) % 2147483647;
}

/**
 * EasyEdit's compute_edit_quality (easyeditor/evaluate/evaluate.py): rewrite_acc and rephrase_acc
 * (teacher-forced accuracy of target_new), locality "{key}_output" (arg-max tokens, scored later against
 * the pre-edit outputs), portability "{key}_acc", and with generation the fluency (n-gram entropy of one
 * generate_fast text from the rewrite prompt, special tokens skipped).
 */
export function easyEditQuality(
  model: CausalLM,
  tok: Tokenizer,
  c: EditCase,
  opts: EvalOptions = {},
): CaseMetrics {
  const e = c.easyedit;
  const out: CaseMetrics = {
    rewrite_acc: teacherForcedAccuracy(model, tok, [e.prompt], [e.targetNew]),
  };
  if (e.rephrasePrompts.length > 0)
    out.rephrase_acc = e.rephrasePrompts.flatMap((p) =>
      teacherForcedAccuracy(model, tok, [p], [e.targetNew]),
    );
  const locality: Record<string, number[][]> = {};
  for (const [key, items] of Object.entries(e.locality))
    locality[`${key}_output`] = localityOutputs(
      model,
      tok,
      items.map((x) => x.prompt),
      items.map((x) => x.groundTruth),
    );
  out.locality = locality;
  const portability: Record<string, number[]> = {};
  for (const [key, items] of Object.entries(e.portability))
    portability[`${key}_acc`] = teacherForcedAccuracy(
      model,
      tok,
      items.map((x) => x.prompt),
      items.map((x) => x.groundTruth),
    );
  out.portability = portability;
  if (opts.generation) {
    const [text] = generateFast(model, tok, [e.prompt], {
      maxOutLen: opts.maxOutLen,
      seed: caseSeed(c, opts.seed ?? 42),
      skipSpecialTokens: true,
    });
    out.fluency = { ngram_entropy: nGramEntropy([text as string]) };
  }
  return out;
}

/**
 * The reference texts of ROME's reference consistency here: each attribute prompt (another subject whose
 * true object is target_new) completed with " " + target_new. ROME uses Wikipedia snippets about such
 * subjects (attribute_snippets.json), which are not available.
 */
export function consistencyTexts(c: EditCase): string[] {
  const cf = c.counterfact;
  if (!cf) return [];
  return cf.attributePrompts.map((p) => `${p} ${cf.targetNew}`);
}

/**
 * ROME's compute_rewrite_quality_counterfact (experiments/py/eval_utils_counterfact.py), with MEMIT's
 * `*_correct` lists: per-prompt NLLs of target_new and target_true for the rewrite, paraphrase,
 * neighbourhood and attribute prompts; with generation, ngram_entropy over the generation prompts'
 * texts and reference_score = TF-IDF cosine of the joined texts against the joined consistency texts.
 */
export function romeCounterfactQuality(
  model: CausalLM,
  tok: Tokenizer,
  c: EditCase,
  opts: EvalOptions = {},
): CaseMetrics {
  const cf = c.counterfact;
  if (!cf) throw new Error(`case ${c.caseId}: no CounterFact prompts (a ${c.format} record)`);
  const groups = [
    ["rewrite", cf.rewritePrompts],
    ["paraphrase", cf.paraphrasePrompts],
    ["neighborhood", cf.neighborhoodPrompts],
    ["attribute", cf.attributePrompts],
  ] as const;
  const all = groups.flatMap(([, ps]) => ps);
  const nll = counterfactTargetNLL(model, tok, all, cf.targetNew, cf.targetTrue, {
    batchSize: opts.batchSize,
  });
  const out: CaseMetrics = {};
  let k = 0;
  for (const [name, ps] of groups) {
    const part = nll.slice(k, k + ps.length) as TargetNLL[];
    k += ps.length;
    out[`${name}_prompts_probs`] = part.map((x) => ({
      target_new: x.target_new,
      target_true: x.target_true,
    }));
    if (name === "rewrite" || name === "paraphrase")
      out[`${name}_prompts_correct`] = part.map((x) => x.new_correct);
    if (name === "neighborhood") out.neighborhood_prompts_correct = part.map((x) => x.true_correct);
  }
  if (opts.generation && cf.generationPrompts.length > 0) {
    const texts = generateFast(model, tok, cf.generationPrompts, {
      maxOutLen: opts.maxOutLen,
      seed: caseSeed(c, opts.seed ?? 42),
      skipSpecialTokens: false,
    });
    out.ngram_entropy = nGramEntropy(texts);
    const refs = consistencyTexts(c);
    if (opts.tfidf && refs.length > 0)
      out.reference_score = opts.tfidf.similarity(texts.join(" "), refs.join(" "));
    out.text = texts;
  }
  return out;
}

/** Every metric the options ask for on one case, on the model as it is now. */
export function caseQuality(
  model: CausalLM,
  tok: Tokenizer,
  c: EditCase,
  opts: EvalOptions = {},
): CaseMetrics {
  const out: CaseMetrics = {};
  if (opts.easyedit ?? true) Object.assign(out, easyEditQuality(model, tok, c, opts));
  if ((opts.rome ?? true) && c.counterfact) Object.assign(out, romeCounterfactQuality(model, tok, c, opts));
  return out;
}

/**
 * EasyEdit's locality finalisation, classic form (EEc editors/editor.py edit_requests; also the 2024
 * code): post.locality["{key}_acc"] = per-prompt agreement of post and pre outputs, then the post
 * "{key}_output" lists and the whole pre locality are removed. Mutates both.
 */
export function finalizeLocality(pre: CaseMetrics, post: CaseMetrics): void {
  const postLoc = post.locality ?? {};
  const preLoc = pre.locality ?? {};
  for (const k of Object.keys(postLoc)) {
    if (!k.endsWith("_output")) continue;
    const key = k.slice(0, -"_output".length);
    const before = preLoc[k] as number[][] | undefined;
    if (!before) throw new Error(`locality '${key}': no pre-edit outputs to compare with`);
    postLoc[`${key}_acc`] = localityAgreement(before, postLoc[k] as number[][]);
    delete postLoc[k];
  }
  pre.locality = {};
}
