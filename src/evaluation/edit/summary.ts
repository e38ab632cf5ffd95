/**
 * Summaries over per-case results, in the reference projects' forms:
 * - EasyEdit's "Metrics Summary" (summary_metrics, easyeditor/editors/utils.py): {pre, post}, fractions;
 * - the KnowEdit table (examples/run_knowedit_llama2.py, eval): post only, ×100;
 * - ROME's summarize.py (experiments/summarize.py): (mean, population std) over cases, ×100, 2 decimals.
 * NaN is written as null in JSON; null is read back as NaN here.
 */
import type { CaseMetrics, NllPair } from "./quality.js";

export interface CaseRecord {
  case_id: number;
  /** position of the record in its dataset file */
  index: number;
  requested_rewrite: Record<string, unknown>;
  /** seconds spent computing the edit this case was part of */
  time?: number;
  pre?: CaseMetrics;
  post?: CaseMetrics;
}

const num = (x: unknown): number => (typeof x === "number" ? x : NaN);

/** np.mean of a list (NaN when empty or when any value is NaN). */
export function mean(xs: readonly (number | null)[]): number {
  if (xs.length === 0) return NaN;
  let s = 0;
  for (const x of xs) s += num(x);
  return s / xs.length;
}

/** np.std (ddof 0). */
export function std(xs: readonly (number | null)[]): number {
  const m = mean(xs);
  if (xs.length === 0) return NaN;
  return Math.sqrt(mean(xs.map((x) => (num(x) - m) ** 2)));
}

/** numpy's around(x, 2): round half to even on x·100. */
export function around2(x: number): number {
  if (!Number.isFinite(x)) return x;
  const y = x * 100;
  const f = Math.floor(y);
  const d = y - f;
  const r = d > 0.5 ? f + 1 : d < 0.5 ? f : f % 2 === 0 ? f : f + 1;
  return r / 100;
}

/** scipy.stats.hmean (0 when a value is 0; NaN when any is NaN). */
export function hmean(xs: number[]): number {
  if (xs.some((x) => Number.isNaN(x))) return NaN;
  if (xs.some((x) => x === 0)) return 0;
  return xs.length / xs.reduce((s, x) => s + 1 / x, 0);
}

export interface EasyEditPhaseSummary {
  rewrite_acc?: number;
  rephrase_acc?: number;
  locality?: Record<string, number>;
  portability?: Record<string, number>;
}

/**
 * EasyEdit's summary_metrics: for rewrite_acc and rephrase_acc, np.mean over the per-case lists
 * (the mean over all (case, prompt) scores; lists are flattened); for locality and portability, per
 * key ending in "acc", the mean over the cases that have the key of each case's mean. Fluency is not
 * summarised (EasyEdit does not), and pre has no locality (EasyEdit removes it).
 */
export function summarizeEasyEdit(records: CaseRecord[]): {
  pre: EasyEditPhaseSummary;
  post: EasyEditPhaseSummary;
} {
  const phase = (p: "pre" | "post"): EasyEditPhaseSummary => {
    const ms = records.map((r) => r[p]).filter((m): m is CaseMetrics => m !== undefined);
    const out: EasyEditPhaseSummary = {};
    for (const key of ["rewrite_acc", "rephrase_acc"] as const) {
      const have = ms.filter((m) => m[key] !== undefined);
      if (have.length > 0) out[key] = mean(have.flatMap((m) => m[key] as number[]));
    }
    for (const section of ["locality", "portability"] as const) {
      const keys = new Set<string>();
      for (const m of ms) for (const k of Object.keys(m[section] ?? {})) if (k.endsWith("acc")) keys.add(k);
      if (keys.size === 0) continue;
      const s: Record<string, number> = {};
      for (const k of [...keys].sort()) {
        const per = ms
          .filter((m) => (m[section] as Record<string, unknown> | undefined)?.[k] !== undefined)
          .map((m) => mean((m[section] as Record<string, number[]>)[k] as number[]));
        if (per.length > 0) s[k] = mean(per);
      }
      out[section] = s;
    }
    return out;
  };
  return { pre: phase("pre"), post: phase("post") };
}

/**
 * The KnowEdit table (run_knowedit_llama2.py eval), from post results, ×100: Edit Succ. = mean of
 * rewrite_acc[0]; Portability and Locality = per case the unweighted mean over its keys of 100·mean(list),
 * then the mean over the cases that have a key; Fluency = 100·mean of fluency.ngram_entropy.
 */
export function knowEditTable(records: CaseRecord[]): Record<string, number> {
  const posts = records.map((r) => r.post).filter((m): m is CaseMetrics => m !== undefined);
  const out: Record<string, number> = {};
  const rw = posts.filter((m) => m.rewrite_acc !== undefined);
  if (rw.length) out["Edit Succ."] = 100 * mean(rw.map((m) => (m.rewrite_acc as number[])[0] ?? NaN));
  for (const [section, label] of [
    ["portability", "Portability"],
    ["locality", "Locality"],
  ] as const) {
    const perCase: number[] = [];
    for (const m of posts) {
      const s = (m[section] ?? {}) as Record<string, number[]>;
      const keys = Object.keys(s).filter((k) => k.endsWith("_acc"));
      if (keys.length === 0) continue;
      perCase.push(mean(keys.map((k) => 100 * mean(s[k] as number[]))));
    }
    if (perCase.length) out[label] = mean(perCase);
  }
  const fl = posts.filter((m) => m.fluency !== undefined);
  if (fl.length) out.Fluency = 100 * mean(fl.map((m) => num(m.fluency?.ngram_entropy)));
  return out;
}

/** ROME summarize.py's per-case values for one phase. */
export function romeCaseValues(m: CaseMetrics, p: string): Record<string, number> {
  const out: Record<string, number> = {};
  const probs = (k: "rewrite" | "paraphrase" | "neighborhood") =>
    m[`${k}_prompts_probs`] as NllPair[] | undefined;
  for (const k of ["rewrite", "paraphrase"] as const) {
    const xs = probs(k);
    if (!xs) continue;
    out[`${p}_${k}_success`] = mean(xs.map((x) => (num(x.target_true) > num(x.target_new) ? 1 : 0)));
    out[`${p}_${k}_diff`] = mean(xs.map((x) => Math.exp(-num(x.target_new)) - Math.exp(-num(x.target_true))));
  }
  const nb = probs("neighborhood");
  if (nb) {
    out[`${p}_neighborhood_success`] = mean(nb.map((x) => (num(x.target_true) < num(x.target_new) ? 1 : 0)));
    out[`${p}_neighborhood_diff`] = mean(
      nb.map((x) => Math.exp(-num(x.target_true)) - Math.exp(-num(x.target_new))),
    );
  }
  for (const k of ["rewrite", "paraphrase", "neighborhood"] as const) {
    const c = m[`${k}_prompts_correct`];
    if (c) out[`${p}_${k}_acc`] = mean(c.map((b) => (b ? 1 : 0)));
  }
  if (m.ngram_entropy !== undefined) out[`${p}_ngram_entropy`] = num(m.ngram_entropy);
  if (m.reference_score !== undefined) out[`${p}_reference_score`] = num(m.reference_score);
  return out;
}

/**
 * ROME's summarize.py: each key's (mean, population std) over cases; `{p}_score` = hmean of the
 * unrounded rewrite/paraphrase/neighbourhood success means (std NaN); then every value ×100 and rounded
 * to 2 decimals (ngram_entropy and reference_score included). Efficacy/Paraphrase/Neighbourhood Score
 * are post_{rewrite,paraphrase,neighborhood}_success; the magnitudes are the _diff keys.
 */
export function summarizeRome(records: CaseRecord[]): Record<string, [number, number]> {
  const cols = new Map<string, number[]>();
  for (const r of records)
    for (const p of ["pre", "post"] as const) {
      const m = r[p];
      if (!m || m.rewrite_prompts_probs === undefined) continue;
      for (const [k, v] of Object.entries(romeCaseValues(m, p))) {
        const c = cols.get(k) ?? [];
        c.push(v);
        cols.set(k, c);
      }
    }
  const out: Record<string, [number, number]> = {};
  for (const [k, v] of cols) out[k] = [mean(v), std(v)];
  for (const p of ["pre", "post"]) {
    const t = [`${p}_rewrite_success`, `${p}_paraphrase_success`, `${p}_neighborhood_success`];
    if (t.every((k) => out[k] !== undefined))
      out[`${p}_score`] = [hmean(t.map((k) => (out[k] as [number, number])[0])), NaN];
  }
  for (const k of Object.keys(out)) {
    const [a, b] = out[k] as [number, number];
    out[k] = [around2(a * 100), around2(b * 100)];
  }
  return Object.fromEntries(Object.entries(out).sort(([a], [b]) => a.localeCompare(b)));
}

/** JSON with NaN and ±Infinity as null (as the summaries are written). */
export function toJson(v: unknown, indent = 2): string {
  return JSON.stringify(v, (_k, x) => (typeof x === "number" && !Number.isFinite(x) ? null : x), indent);
}
