/**
 * Edit metrics (EasyEdit's and ROME/MEMIT's definitions), evaluation modes and summaries.
 */
import type { EditCase } from "../../data/edit/types.js";
import { consistencyTexts } from "./quality.js";
import { knowEditTable, summarizeEasyEdit, summarizeRome, type CaseRecord } from "./summary.js";
import { TfidfVectorizer } from "./text.js";

export * from "./tokens.js";
export * from "./text.js";
export * from "./generation.js";
export * from "./quality.js";
export * from "./summary.js";
export * from "./runner.js";
export { CaseStore } from "./store.js";

/** What every summary that reports reference consistency says about it. */
export const REFERENCE_SCORE_NOTE =
  "reference_score (RS): TF-IDF cosine of the joined generations vs the case's attribute_prompts, each completed " +
  "with ' ' + target_new; the IDF (sklearn's smooth idf, default analyzer) is fitted on the attribute prompts " +
  "(completed the same way) and generation prompts of every record of the dataset file, not on ROME's " +
  "Wikipedia attribute snippets (idf.npy / tfidf_vocab.json are not available), so RS is not comparable with " +
  "published RS values";

/**
 * The TF-IDF vectorizer of reference consistency, fitted on the data at hand: for every case, each
 * attribute prompt completed with " " + target_new, and each generation prompt. Null when no case has
 * attribute prompts (e.g. EasyEdit's CounterFact layout).
 */
export function consistencyVectorizer(cases: EditCase[]): TfidfVectorizer | null {
  const docs: string[] = [];
  for (const c of cases) {
    docs.push(...consistencyTexts(c));
    docs.push(...(c.counterfact?.generationPrompts ?? []));
  }
  return docs.length > 0 && cases.some((c) => consistencyTexts(c).length > 0)
    ? new TfidfVectorizer(docs)
    : null;
}

export interface EditEvalSummary {
  cases: number;
  /** EasyEdit's summary_metrics: {pre, post}, fractions in [0, 1] */
  easyedit: ReturnType<typeof summarizeEasyEdit>;
  /** run_knowedit_llama2.py's table: post, ×100 */
  knowedit: Record<string, number>;
  /** ROME's summarize.py: key -> [mean, std] over cases, ×100, 2 decimals (CounterFact only) */
  rome?: Record<string, [number, number]>;
  notes: string[];
}

/** All summaries of a set of finished case records (in dataset order). */
export function summarizeEditEval(records: CaseRecord[], notes: string[] = []): EditEvalSummary {
  const done = records.filter((r) => r.post !== undefined);
  const out: EditEvalSummary = {
    cases: done.length,
    easyedit: summarizeEasyEdit(done),
    knowedit: knowEditTable(done),
    notes: [...notes],
  };
  const rome = summarizeRome(done);
  if (Object.keys(rome).length > 0) out.rome = rome;
  const hasRS = done.some((r) => r.post?.reference_score !== undefined);
  if (hasRS && !out.notes.includes(REFERENCE_SCORE_NOTE)) out.notes.push(REFERENCE_SCORE_NOTE);
  return out;
}
