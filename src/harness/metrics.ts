/**
 * Per-document metrics and their aggregation, with lm-evaluation-harness's semantics
 * (lm_eval/api/metrics.py, lm_eval/api/task.py process_results):
 * - multiple choice: acc (argmax of the log-likelihoods is gold), acc_norm (argmax of log-likelihood
 *   divided by the choice's length in characters), exact_match (is_greedy of the gold choice);
 * - mc2 (TruthfulQA): the normalised probability mass of the true answers;
 * - exact_match for generations: HF evaluate's exact_match (regexes removed, case and punctuation
 *   optionally ignored), any of several references;
 * - aggregation: mean; standard error of the mean with Bessel's correction (`mean_stderr`), the
 *   bootstrap (`bootstrap_stderr`, Python's Random seeded per chunk of 1,000 draws) for the
 *   aggregations the harness bootstraps, and the pooled standard error of a group weighted by size.
 */
import { PyRandom } from "./pyrandom.js";
import { pyRegex } from "./filters.js";

/** Index of the first maximum (numpy's argmax). */
export function argmax(xs: readonly number[]): number {
  let best = 0;
  for (let i = 1; i < xs.length; i++) if ((xs[i] as number) > (xs[best] as number)) best = i;
  return best;
}

export interface ChoiceResult {
  acc: number;
  acc_norm: number;
  exact_match: number;
}

/**
 * The harness's multiple-choice results for one document: `lls` the choices' log-likelihoods,
 * `isGreedy` their greedy flags, `choices` the choice strings (without the target delimiter, as
 * doc_to_choice returns them: acc_norm divides by their length in characters), `gold` an index or
 * several (any counts).
 */
export function multipleChoiceResult(
  lls: readonly number[],
  isGreedy: readonly boolean[],
  choices: readonly string[],
  gold: number | readonly number[],
): ChoiceResult {
  const pred = argmax(lls);
  const predNorm = argmax(lls.map((ll, i) => ll / [...(choices[i] as string)].length));
  const golds = (typeof gold === "number" ? [gold] : gold).map((g) => (g < choices.length ? g : -100));
  return {
    acc: golds.includes(pred) ? 1 : 0,
    acc_norm: golds.includes(predNorm) ? 1 : 0,
    exact_match: golds.some((g) => g !== -100 && isGreedy[g]) ? 1 : 0,
  };
}

/** TruthfulQA MC2: exp(ll) normalised over the choices, summed over the true ones (labels 1). */
export function mc2(lls: readonly number[], labels: readonly number[]): number {
  // subtracting the maximum leaves the normalised probabilities unchanged and avoids underflow
  const m = Math.max(...lls);
  const p = lls.map((x) => Math.exp(x - m));
  const z = p.reduce((a, b) => a + b, 0);
  let t = 0;
  p.forEach((x, i) => {
    if (labels[i] === 1) t += x / z;
  });
  return t;
}

/** Python's string.punctuation. */
export const PUNCTUATION = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";

export interface ExactMatchOptions {
  regexes_to_ignore?: string[];
  ignore_case?: boolean;
  ignore_punctuation?: boolean;
  ignore_numbers?: boolean;
}

/** Applies exact_match's normalisation to one string (regexes, case, punctuation, digits). */
export function exactMatchNormalize(s: string, o: ExactMatchOptions = {}): string {
  for (const r of o.regexes_to_ignore ?? []) s = s.replace(pyRegex(r, "g"), "");
  if (o.ignore_case) s = s.toLowerCase();
  if (o.ignore_punctuation) s = [...s].filter((c) => !PUNCTUATION.includes(c)).join("");
  if (o.ignore_numbers) s = s.replace(/[0-9]/g, "");
  return s;
}

/** HF evaluate's exact_match for one prediction: 1 when it equals any reference after normalisation. */
export function exactMatch(
  prediction: string,
  references: string | readonly string[],
  o: ExactMatchOptions = {},
): number {
  const p = exactMatchNormalize(prediction, o);
  const refs = typeof references === "string" ? [references] : references;
  return refs.some((r) => exactMatchNormalize(r, o) === p) ? 1 : 0;
}

export function mean(xs: readonly number[]): number {
  return xs.reduce((a, b) => a + b, 0) / xs.length;
}

/** Sample standard deviation (n - 1). */
export function sampleStddev(xs: readonly number[]): number {
  const mu = mean(xs);
  return Math.sqrt(xs.reduce((a, x) => a + (x - mu) ** 2, 0) / (xs.length - 1));
}

/** The harness's mean_stderr: sample standard deviation / sqrt(n). */
export function meanStderr(xs: readonly number[]): number {
  return sampleStddev(xs) / Math.sqrt(xs.length);
}

/**
 * The harness's bootstrap_stderr: `iters` resamples (with replacement) in chunks of min(1000, iters),
 * chunk i drawn with Random(i).choices, and the sample standard deviation of the statistic over them.
 */
export function bootstrapStderr(f: (xs: number[]) => number, xs: readonly number[], iters: number): number {
  const chunk = Math.min(1000, iters);
  const res: number[] = [];
  for (let i = 0; i < Math.floor(iters / chunk); i++) {
    const rnd = new PyRandom(i);
    for (let j = 0; j < chunk; j++) res.push(f(rnd.choices(xs, xs.length)));
  }
  return sampleStddev(res);
}

/** The pooled standard error of a group of subtasks weighted by size (metrics.py pooled_sample_stderr). */
export function pooledSampleStderr(stderrs: readonly number[], sizes: readonly number[]): number {
  let num = 0;
  let total = 0;
  sizes.forEach((n, i) => {
    num += (n - 1) * (stderrs[i] as number) ** 2 * n;
    total += n;
  });
  return Math.sqrt(num / (total - sizes.length) / total);
}

/** The group's value: the subtasks' values weighted by their sizes (or equally). */
export function aggregateSubtaskMetrics(
  values: readonly number[],
  sizes: readonly number[],
  weightBySize = true,
): number {
  const w = weightBySize ? sizes : sizes.map(() => 1);
  let s = 0;
  let t = 0;
  values.forEach((v, i) => {
    s += v * (w[i] as number);
    t += w[i] as number;
  });
  return s / t;
}

export type Aggregation = "mean" | "median";

export function aggregate(agg: Aggregation, xs: readonly number[]): number {
  if (agg === "median") return [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
  return mean(xs);
}

/**
 * The standard error the harness reports for an aggregation: mean_stderr for "mean", the bootstrap
 * for "median" (when bootstrapIters > 0); "N/A" for fewer than two values or no iterations.
 */
export function stderrFor(agg: Aggregation, xs: readonly number[], bootstrapIters: number): number | "N/A" {
  if (bootstrapIters <= 0 || xs.length < 2) return "N/A";
  if (agg === "mean") return meanStderr(xs);
  return bootstrapStderr((s) => aggregate(agg, s), xs, bootstrapIters);
}
