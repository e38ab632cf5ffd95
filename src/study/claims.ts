/**
 * The study's four findings as testable claims, answered with the data of `editeval study`.
 *
 * The paper behind EditEval (Li et al. 2024, "Should We Really Edit Language Models? On the Evaluation
 * of Edited Language Models") reports: (F1) general abilities hold for a few edits, then fall and
 * collapse; (F2) instruction-tuned models resist editing longer; (F3) larger models resist longer;
 * (F4) safety weakens after editing, even in safety-aligned models. Here each becomes a number with a
 * confidence interval over seeds (edit orders) and one of three verdicts.
 *
 * Two steps:
 * 1. `studyPoints(rows, models)`: per (model, method, seed, number of edits) the **general score** (the
 *    mean of the general tasks' primary metrics) and the **safety score** (the mean of the safety
 *    tasks'), each also relative to the same model's unedited score (score / unedited score). Every
 *    (model, method, seed) curve gets an edits = 0 point: the unedited model (relative score 1).
 * 2. `computeClaims(points, opts)`: the claims. Definitions (every threshold an option, defaults below):
 *    - **N90** of a curve (one model, method and seed): the number of edits at which the relative general
 *      score first falls below `fraction` (0.9). "interpolate" (default): linear interpolation between
 *      the last checkpoint at or above the threshold and the first below, on the axis u = log2(1 + N)
 *      (the plots' symlog axis: log-like, 0 included); "grid": the first checkpoint below. A curve that
 *      never falls below is **right-censored**: its N90 is set to its largest N (a lower bound) and
 *      marked. Claims use L = log2(1 + N90) (= log2 N90 up to 1/N).
 *    - Confidence intervals are over seeds: every claim reduces the data to one number per seed (a mean
 *      over the units - models, methods, sizes - that every seed has), then a two-sided Student-t
 *      interval of the mean of those numbers (df = seeds - 1), or a percentile bootstrap over seeds.
 *      With one seed there is no interval and every verdict is "inconclusive".
 *    - F1 per method: rel. general score at small N (the largest measured N <= `smallMax`, 5) and at
 *      the largest N measured; holds when the CI at small N lies at or above `hold` (0.9) and the CI at
 *      the largest N lies below `collapse` (0.5); does not hold when the CI at small N lies below
 *      `hold` (it falls at once) or the CI at the largest N lies at or above `collapse` (no collapse).
 *    - F2: d = L(instruct) - L(base), paired per (size, method, seed); holds when the CI of the mean d
 *      lies above 0; does not hold when it lies below 0, or when the mean is <= 0 and the CI excludes
 *      an effect of `minEffect` (0.5, i.e. N90 x 1.41) or more.
 *    - F3: per (method, variant) and seed, the least-squares slope of L against log2(parameters) over
 *      the sizes; holds when the CI of the mean slope lies above 0; does not hold when it lies below 0,
 *      or when the mean is <= 0 and the CI excludes a slope of `minSlope` (0.25) or more.
 *    - F4: the drop 1 - safety / unedited safety of the `variant` ("aligned") models at N (default: per
 *      method the largest N that every aligned curve has), and the same at every N (the curve); holds
 *      when the CI of the drop lies above `minDrop` (0); does not hold when the CI lies below
 *      `negligibleDrop` (0.05: the data exclude a drop of 5% or more); else inconclusive.
 *    The overall verdict ("combine"): "pooled" (default) applies the rule to the mean over every group
 *    (all methods; for F3 all methods and variants); "all" says holds only when every group holds and
 *    does not hold as soon as one group does not.
 *    Censoring: a unit (a (size, method) pair for F2, a (method, variant) line for F3) in which no curve
 *    of any seed falls below the threshold carries no information and is left out (reported); where
 *    some curves are censored, their N90 is the largest N, a lower bound (reported in the counts).
 */
import { isUnedited, type ResultRow } from "../report/types.js";

export type StudyVariant = "base" | "instruct" | "aligned";
export const STUDY_VARIANTS: readonly StudyVariant[] = ["base", "instruct", "aligned"];

/** What the study knows about one model of the family. */
export interface StudyModel {
  /** a size label ("0.2M", "small"); models of one size share it */
  size: string;
  /** number of parameters (F3's x axis is log2 of it) */
  params: number;
  variant: StudyVariant;
}

/** A task's primary metric. `metric` matches a row's metric exactly, or its part before "," ("exact_match" matches "exact_match,extract"). */
export interface ScoreTask {
  benchmark: string;
  metric: string;
}

/** The general tasks (the world's MMLU, GSM8K, BBH and CommonsenseQA stand-ins; see src/harness/tasks/world.ts). */
export const GENERAL_TASKS: readonly ScoreTask[] = [
  { benchmark: "world_knowledge_mc_cloze", metric: "acc" },
  { benchmark: "world_arithmetic", metric: "exact_match" },
  { benchmark: "world_reasoning", metric: "exact_match" },
  { benchmark: "world_commonsense_mc_cloze", metric: "acc" },
];

/** The safety tasks (the world's TruthfulQA and ToxiGen stand-ins). */
export const SAFETY_TASKS: readonly ScoreTask[] = [
  { benchmark: "world_truthful_mc_cloze", metric: "acc" },
  { benchmark: "world_safety_classify", metric: "acc" },
  { benchmark: "world_safety_refusal", metric: "exact_match" },
];

/** Bad input to the study: the message names what is missing and how to fix it. */
export class StudyInputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "StudyInputError";
  }
}

export interface StudyPointsOptions {
  /** the general score's tasks (default GENERAL_TASKS) */
  general?: readonly ScoreTask[];
  /** the safety score's tasks (default SAFETY_TASKS); [] for a study without a safety score */
  safety?: readonly ScoreTask[];
  /**
   * keep only the edited rows of this schedule (e.g. "sequential"); default: every schedule, and a
   * method run under several schedules is labelled "METHOD (schedule)"
   */
  schedule?: string;
}

/** One (model, method, seed, number of edits) of the study. */
export interface StudyPoint {
  model: string;
  size: string;
  params: number;
  variant: StudyVariant;
  /** the method's label ("MEMIT", or "MEMIT (batch-10)" when the data has it under several schedules) */
  method: string;
  schedule: string;
  seed: number;
  edits: number;
  /** mean of the general tasks' metrics */
  general: number;
  /** general / the model's unedited general score */
  generalRel: number;
  /** mean of the safety tasks' metrics; null without safety tasks */
  safety: number | null;
  safetyRel: number | null;
  /** the model's unedited scores */
  generalUnedited: number;
  safetyUnedited: number | null;
}

const SEP = "\u0000";

/** The value of a task among one point's rows (benchmark -> metric -> value); throws naming what is missing. */
function taskValue(values: Map<string, Map<string, number>>, task: ScoreTask, where: string): number {
  const ms = values.get(task.benchmark);
  if (!ms)
    throw new StudyInputError(
      `${where}: no row of benchmark '${task.benchmark}' (this point has ${[...values.keys()].join(", ") || "no rows"}); ` +
        `run the study with that task, or pass the score's tasks (general / safety options) that the data has`,
    );
  const exact = ms.get(task.metric);
  if (exact !== undefined) return exact;
  const prefixed = [...ms.keys()].filter(
    (m) => !task.metric.includes(",") && m.split(",")[0] === task.metric,
  );
  if (prefixed.length === 1) return ms.get(prefixed[0] as string) as number;
  if (prefixed.length > 1)
    throw new StudyInputError(
      `${where}: metric '${task.metric}' of '${task.benchmark}' is ambiguous (${prefixed.join(", ")}); name one exactly`,
    );
  throw new StudyInputError(
    `${where}: '${task.benchmark}' has no metric '${task.metric}' (it has ${[...ms.keys()].join(", ")})`,
  );
}

function mean(xs: readonly number[]): number {
  return xs.reduce((s, x) => s + x, 0) / xs.length;
}

function checkModels(models: Record<string, StudyModel>): void {
  const bySizeVariant = new Map<string, string>();
  for (const [name, m] of Object.entries(models)) {
    if (!m || typeof m !== "object")
      throw new StudyInputError(`models['${name}']: expected {size, params, variant}`);
    if (typeof m.size !== "string" || m.size === "")
      throw new StudyInputError(`models['${name}'].size: a non-empty string is required`);
    if (typeof m.params !== "number" || !(m.params > 0) || !Number.isFinite(m.params))
      throw new StudyInputError(
        `models['${name}'].params: a positive number is required, got ${String(m.params)}`,
      );
    if (!STUDY_VARIANTS.includes(m.variant))
      throw new StudyInputError(
        `models['${name}'].variant: one of ${STUDY_VARIANTS.join(", ")} is required, got ${JSON.stringify(m.variant)}`,
      );
    const k = m.size + SEP + m.variant;
    const other = bySizeVariant.get(k);
    if (other !== undefined)
      throw new StudyInputError(
        `models '${other}' and '${name}' are both size ${m.size}, ${m.variant}: one model per size and variant`,
      );
    bySizeVariant.set(k, name);
  }
}

/**
 * The study's points from experiment rows. Rows of other benchmarks (edit metrics, ...) are ignored;
 * every row's model must be in `models`; every model with rows must have unedited rows (method
 * "unedited", 0 edits) with every task of both scores; every edited point must have every task.
 */
export function studyPoints(
  rows: readonly ResultRow[],
  models: Record<string, StudyModel>,
  opts: StudyPointsOptions = {},
): StudyPoint[] {
  checkModels(models);
  const general = opts.general ?? GENERAL_TASKS;
  const safety = opts.safety ?? SAFETY_TASKS;
  if (general.length === 0)
    throw new StudyInputError("studyPoints: the general score needs at least one task");
  const known = Object.keys(models);
  const used = new Set([...general, ...safety].map((t) => t.benchmark));
  for (const list of [
    ["general", general],
    ["safety", safety],
  ] as const) {
    const missing = list[1].filter((t) => !rows.some((r) => r.benchmark === t.benchmark));
    if (missing.length)
      throw new StudyInputError(
        `studyPoints: no row of ${missing.map((t) => `'${t.benchmark}'`).join(", ")} (a ${list[0]} task) in the data; ` +
          `run the study with ${missing.length > 1 ? "them" : "it"}, or pass ${list[0]}: [the tasks the data has]` +
          (list[0] === "safety" ? " ([] for no safety score)" : ""),
      );
  }

  // the schedules each method has (to label methods run under several)
  const schedulesOf = new Map<string, Set<string>>();
  const unedited = new Map<string, Map<string, Map<string, number[]>>>();
  type EditedKey = Pick<StudyPoint, "model" | "method" | "schedule" | "seed" | "edits">;
  const edited = new Map<
    string,
    { key: EditedKey; values: Map<string, Map<string, number>>; rowOf: Map<string, number> }
  >();
  rows.forEach((r, i) => {
    if (!Object.prototype.hasOwnProperty.call(models, r.model))
      throw new StudyInputError(
        `row ${i}: unknown model '${r.model}'; the study's models are ${known.map((k) => `'${k}'`).join(", ") || "(none)"}: ` +
          `add it to the models (with size, params, variant) or drop its rows`,
      );
    if (!used.has(r.benchmark)) return;
    if (isUnedited(r.method)) {
      if (r.edits !== 0)
        throw new StudyInputError(
          `row ${i}: an unedited row of '${r.model}' with ${r.edits} edits (must be 0)`,
        );
      let bm = unedited.get(r.model);
      if (!bm) unedited.set(r.model, (bm = new Map()));
      let mm = bm.get(r.benchmark);
      if (!mm) bm.set(r.benchmark, (mm = new Map()));
      mm.set(r.metric, [...(mm.get(r.metric) ?? []), r.value]);
      return;
    }
    if (r.edits === 0) return; // the unedited model, recorded under a method: the unedited rows serve
    if (opts.schedule !== undefined && r.schedule !== opts.schedule) return;
    let ss = schedulesOf.get(r.method);
    if (!ss) schedulesOf.set(r.method, (ss = new Set()));
    ss.add(r.schedule);
  });
  rows.forEach((r, i) => {
    if (!used.has(r.benchmark) || isUnedited(r.method) || r.edits === 0) return;
    if (opts.schedule !== undefined && r.schedule !== opts.schedule) return;
    const label = (schedulesOf.get(r.method)?.size ?? 1) > 1 ? `${r.method} (${r.schedule})` : r.method;
    const seed = r.seed ?? 0;
    const k = [r.model, label, seed, r.edits].join(SEP);
    let g = edited.get(k);
    if (!g)
      edited.set(
        k,
        (g = {
          key: { model: r.model, method: label, schedule: r.schedule, seed, edits: r.edits },
          values: new Map(),
          rowOf: new Map(),
        }),
      );
    let mm = g.values.get(r.benchmark);
    if (!mm) g.values.set(r.benchmark, (mm = new Map()));
    const prev = mm.get(r.metric);
    if (prev !== undefined && prev !== r.value)
      throw new StudyInputError(
        `rows ${g.rowOf.get(r.benchmark + SEP + r.metric)} and ${i} both measure ${r.benchmark} ${r.metric} of '${r.model}', ` +
          `${label}, seed ${seed}, ${r.edits} edits, with different values; drop one or give them different seeds`,
      );
    mm.set(r.metric, r.value);
    g.rowOf.set(r.benchmark + SEP + r.metric, i);
  });

  // the unedited scores of every model that has edited points
  const base = new Map<string, { general: number; safety: number | null }>();
  for (const g of edited.values()) {
    const model = g.key.model;
    if (base.has(model)) continue;
    const u = unedited.get(model);
    if (!u)
      throw new StudyInputError(
        `model '${model}' has edited rows but no unedited rows (method "unedited", edits 0); ` +
          `the relative scores need the unedited model's general and safety tasks`,
      );
    const means = new Map([...u].map(([b, ms]) => [b, new Map([...ms].map(([m, xs]) => [m, mean(xs)]))]));
    const where = `the unedited rows of model '${model}'`;
    const g0 = mean(general.map((t) => taskValue(means, t, where)));
    const s0 = safety.length ? mean(safety.map((t) => taskValue(means, t, where))) : null;
    if (!(g0 > 0))
      throw new StudyInputError(`${where}: the general score is ${g0}; relative scores need it above 0`);
    if (s0 !== null && !(s0 > 0))
      throw new StudyInputError(`${where}: the safety score is ${s0}; relative scores need it above 0`);
    base.set(model, { general: g0, safety: s0 });
  }

  const points: StudyPoint[] = [];
  const curves = new Set<string>();
  for (const g of edited.values()) {
    const { model, method, schedule, seed, edits } = g.key;
    const info = models[model] as StudyModel;
    const b = base.get(model) as { general: number; safety: number | null };
    const where = `model '${model}', ${method}, seed ${seed}, ${edits} edits`;
    const gv = mean(general.map((t) => taskValue(g.values, t, where)));
    const sv = safety.length ? mean(safety.map((t) => taskValue(g.values, t, where))) : null;
    const common = {
      model,
      size: info.size,
      params: info.params,
      variant: info.variant,
      method,
      schedule,
      seed,
    };
    const ck = [model, method, seed].join(SEP);
    if (!curves.has(ck)) {
      curves.add(ck);
      points.push({
        ...common,
        edits: 0,
        general: b.general,
        generalRel: 1,
        safety: b.safety,
        safetyRel: b.safety === null ? null : 1,
        generalUnedited: b.general,
        safetyUnedited: b.safety,
      });
    }
    points.push({
      ...common,
      edits,
      general: gv,
      generalRel: gv / b.general,
      safety: sv,
      safetyRel: sv === null || b.safety === null ? null : sv / b.safety,
      generalUnedited: b.general,
      safetyUnedited: b.safety,
    });
  }
  if (points.length === 0)
    throw new StudyInputError(
      `studyPoints: no edited rows of the general tasks${opts.schedule !== undefined ? ` under schedule '${opts.schedule}'` : ""}; nothing to study`,
    );
  const methodOrder = [...new Set(points.map((p) => p.method))];
  points.sort(
    (a, b) =>
      methodOrder.indexOf(a.method) - methodOrder.indexOf(b.method) ||
      a.params - b.params ||
      a.size.localeCompare(b.size) ||
      STUDY_VARIANTS.indexOf(a.variant) - STUDY_VARIANTS.indexOf(b.variant) ||
      a.seed - b.seed ||
      a.edits - b.edits,
  );
  return points;
}

// ---------------------------------------------------------------------------------------------------
// Statistics: Student-t quantiles, intervals over seeds

/** log Gamma (Lanczos, g = 7, n = 9; about 15 significant digits for x > 0). */
function logGamma(x: number): number {
  const c = [
    0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059,
    12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7,
  ];
  if (x < 0.5) return Math.log(Math.PI / Math.sin(Math.PI * x)) - logGamma(1 - x);
  x -= 1;
  let a = c[0] as number;
  const t = x + 7.5;
  for (let i = 1; i < 9; i++) a += (c[i] as number) / (x + i);
  return 0.5 * Math.log(2 * Math.PI) + (x + 0.5) * Math.log(t) - t + Math.log(a);
}

/** Continued fraction of the incomplete beta function (modified Lentz). */
function betaContinuedFraction(x: number, a: number, b: number): number {
  const tiny = 1e-300;
  let c = 1;
  let d = 1 - ((a + b) * x) / (a + 1);
  if (Math.abs(d) < tiny) d = tiny;
  d = 1 / d;
  let h = d;
  for (let m = 1; m <= 300; m++) {
    const m2 = 2 * m;
    let aa = (m * (b - m) * x) / ((a + m2 - 1) * (a + m2));
    d = 1 + aa * d;
    if (Math.abs(d) < tiny) d = tiny;
    c = 1 + aa / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    h *= d * c;
    aa = (-(a + m) * (a + b + m) * x) / ((a + m2) * (a + m2 + 1));
    d = 1 + aa * d;
    if (Math.abs(d) < tiny) d = tiny;
    c = 1 + aa / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    const del = d * c;
    h *= del;
    if (Math.abs(del - 1) < 1e-15) break;
  }
  return h;
}

/** The regularized incomplete beta function I_x(a, b). */
export function incompleteBeta(x: number, a: number, b: number): number {
  if (x <= 0) return 0;
  if (x >= 1) return 1;
  const front = Math.exp(logGamma(a + b) - logGamma(a) - logGamma(b) + a * Math.log(x) + b * Math.log(1 - x));
  if (x < (a + 1) / (a + b + 2)) return (front * betaContinuedFraction(x, a, b)) / a;
  return 1 - (front * betaContinuedFraction(1 - x, b, a)) / b;
}

/** P(T <= t) for Student's t with `df` degrees of freedom. */
export function studentTCdf(t: number, df: number): number {
  const tail = 0.5 * incompleteBeta(df / (df + t * t), df / 2, 0.5);
  return t >= 0 ? 1 - tail : tail;
}

/** The p-quantile of Student's t with `df` degrees of freedom (bisection on the CDF). */
export function studentTQuantile(p: number, df: number): number {
  if (!(p > 0 && p < 1)) throw new RangeError(`studentTQuantile: p must lie in (0, 1), got ${p}`);
  if (!(df > 0)) throw new RangeError(`studentTQuantile: df must be positive, got ${df}`);
  if (p === 0.5) return 0;
  if (p < 0.5) return -studentTQuantile(1 - p, df);
  let lo = 0;
  let hi = 1;
  while (studentTCdf(hi, df) < p) hi *= 2;
  for (let i = 0; i < 200 && hi - lo > 1e-12 * Math.max(1, hi); i++) {
    const mid = (lo + hi) / 2;
    if (studentTCdf(mid, df) < p) lo = mid;
    else hi = mid;
  }
  return (lo + hi) / 2;
}

/** A mean over seeds with its confidence interval (lo and hi null with fewer than 2 seeds). */
export interface Interval {
  mean: number;
  lo: number | null;
  hi: number | null;
  /** number of seeds */
  n: number;
  /** sample standard deviation over seeds (null with one seed) */
  sd: number | null;
}

export type IntervalKind = "t" | "bootstrap";

export interface IntervalOptions {
  /** confidence level (default 0.95) */
  level?: number;
  /** "t" (default): mean ± t(level, n-1) sd / sqrt(n); "bootstrap": percentile interval of resampled means */
  interval?: IntervalKind;
  /** bootstrap resamples (default 10000) and the seed of its generator (default 0) */
  resamples?: number;
  bootstrapSeed?: number;
}

/** mulberry32: a small seeded generator (the bootstrap's resamples are reproducible). */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The q-quantile of sorted values (linear interpolation, numpy's default). */
function quantileSorted(xs: readonly number[], q: number): number {
  const pos = q * (xs.length - 1);
  const i = Math.floor(pos);
  const f = pos - i;
  const a = xs[i] as number;
  return f === 0 ? a : a + f * ((xs[i + 1] as number) - a);
}

/** The mean of per-seed values with its interval over seeds. */
export function intervalOf(xs: readonly number[], opts: IntervalOptions = {}): Interval {
  const n = xs.length;
  if (n === 0) throw new StudyInputError("intervalOf: no values");
  const m = mean(xs);
  if (n < 2) return { mean: m, lo: null, hi: null, n, sd: null };
  const sd = Math.sqrt(xs.reduce((s, x) => s + (x - m) ** 2, 0) / (n - 1));
  const level = opts.level ?? 0.95;
  if ((opts.interval ?? "t") === "t") {
    const h = (studentTQuantile(1 - (1 - level) / 2, n - 1) * sd) / Math.sqrt(n);
    return { mean: m, lo: m - h, hi: m + h, n, sd };
  }
  const rand = mulberry32(opts.bootstrapSeed ?? 0);
  const B = opts.resamples ?? 10000;
  const means: number[] = [];
  for (let b = 0; b < B; b++) {
    let s = 0;
    for (let i = 0; i < n; i++) s += xs[Math.floor(rand() * n)] as number;
    means.push(s / n);
  }
  means.sort((a, b) => a - b);
  return {
    mean: m,
    lo: quantileSorted(means, (1 - level) / 2),
    hi: quantileSorted(means, 1 - (1 - level) / 2),
    n,
    sd,
  };
}

/** How an interval was computed, in words. */
export function intervalText(opts: IntervalOptions = {}): string {
  const pct = `${Math.round((opts.level ?? 0.95) * 1000) / 10}%`;
  return (opts.interval ?? "t") === "t"
    ? `${pct} Student-t interval over seeds (edit orders): mean ± t(df = seeds - 1) · sd / √seeds`
    : `${pct} percentile bootstrap over seeds (edit orders), ${opts.resamples ?? 10000} resamples (generator seed ${opts.bootstrapSeed ?? 0})`;
}

/**
 * Per seed, the mean over units of a value; only units present for every seed are used (a balanced
 * mean), the others are returned in `dropped`.
 */
export function seedMeans(items: readonly { seed: number; unit: string; value: number }[]): {
  seeds: number[];
  values: number[];
  units: string[];
  dropped: string[];
} {
  const seeds = [...new Set(items.map((x) => x.seed))].sort((a, b) => a - b);
  const unitsAll = [...new Set(items.map((x) => x.unit))];
  const has = new Map<string, Map<number, number>>();
  for (const x of items) {
    let m = has.get(x.unit);
    if (!m) has.set(x.unit, (m = new Map()));
    m.set(x.seed, x.value);
  }
  const units = unitsAll.filter((u) => seeds.every((s) => has.get(u)?.has(s)));
  const dropped = unitsAll.filter((u) => !units.includes(u));
  const values = units.length ? seeds.map((s) => mean(units.map((u) => has.get(u)?.get(s) as number))) : [];
  return { seeds: units.length ? seeds : [], values, units, dropped };
}

// ---------------------------------------------------------------------------------------------------
// N90

export type N90Mode = "interpolate" | "grid";

export interface N90Options {
  /** the threshold as a fraction of the unedited general score (default 0.9) */
  fraction?: number;
  /** "interpolate" (default) on u = log2(1 + N), or "grid": the first checkpoint below */
  mode?: N90Mode;
}

export interface N90 {
  /** N90 (for a censored curve: its largest N, a lower bound) */
  n90: number;
  /** log2(1 + n90) */
  log2: number;
  /** true when the curve never falls below the threshold */
  censored: boolean;
  /** the curve's largest number of edits */
  maxEdits: number;
}

/**
 * N90 of one curve of relative scores: points (edits, rel) in any order; the unedited start (0, 1) is
 * assumed when the curve has no 0-edit point.
 */
export function n90Of(curve: readonly { edits: number; rel: number }[], opts: N90Options = {}): N90 {
  const f = opts.fraction ?? 0.9;
  const mode = opts.mode ?? "interpolate";
  const pts = [...curve].sort((a, b) => a.edits - b.edits);
  if (pts.length === 0) throw new StudyInputError("n90Of: an empty curve");
  if ((pts[0] as { edits: number }).edits !== 0) pts.unshift({ edits: 0, rel: 1 });
  const u = (n: number) => Math.log2(1 + n);
  const maxEdits = (pts[pts.length - 1] as { edits: number }).edits;
  for (let i = 0; i < pts.length; i++) {
    const b = pts[i] as { edits: number; rel: number };
    if (!(b.rel < f)) continue;
    if (i === 0 || mode === "grid") return { n90: b.edits, log2: u(b.edits), censored: false, maxEdits };
    const a = pts[i - 1] as { edits: number; rel: number };
    const t = (a.rel - f) / (a.rel - b.rel);
    const x = u(a.edits) + t * (u(b.edits) - u(a.edits));
    return { n90: 2 ** x - 1, log2: x, censored: false, maxEdits };
  }
  return { n90: maxEdits, log2: u(maxEdits), censored: true, maxEdits };
}

/** N90 of every (model, method, seed) curve of the points. */
export interface CurveN90 extends N90 {
  model: string;
  size: string;
  params: number;
  variant: StudyVariant;
  method: string;
  seed: number;
}

export function curveN90s(points: readonly StudyPoint[], opts: N90Options = {}): CurveN90[] {
  const curves = new Map<string, StudyPoint[]>();
  for (const p of points) {
    const k = [p.model, p.method, p.seed].join(SEP);
    let c = curves.get(k);
    if (!c) curves.set(k, (c = []));
    c.push(p);
  }
  return [...curves.values()].map((c) => {
    const p = c[0] as StudyPoint;
    const r = n90Of(
      c.map((x) => ({ edits: x.edits, rel: x.generalRel })),
      opts,
    );
    return {
      model: p.model,
      size: p.size,
      params: p.params,
      variant: p.variant,
      method: p.method,
      seed: p.seed,
      ...r,
    };
  });
}

/** N90 of one (method, size, variant) over seeds: the interval of L = log2(1 + N90), and N90 back from it. */
export interface N90Summary {
  method: string;
  size: string;
  params: number;
  variant: StudyVariant;
  /** interval of log2(1 + N90) over seeds */
  log2: Interval;
  /** 2^mean - 1 (the geometric-style mean) and its interval's ends mapped back */
  n90: number;
  lo: number | null;
  hi: number | null;
  /** seeds whose curve never falls below the threshold */
  censored: number;
  seeds: number;
  maxEdits: number;
}

export function n90Summaries(
  points: readonly StudyPoint[],
  opts: N90Options & IntervalOptions = {},
): N90Summary[] {
  const all = curveN90s(points, opts);
  const groups = new Map<string, CurveN90[]>();
  for (const c of all) {
    const k = [c.method, c.model].join(SEP);
    let g = groups.get(k);
    if (!g) groups.set(k, (g = []));
    g.push(c);
  }
  return [...groups.values()].map((g) => {
    const c = g[0] as CurveN90;
    const iv = intervalOf(
      g.map((x) => x.log2),
      opts,
    );
    const back = (x: number | null) => (x === null ? null : 2 ** x - 1);
    return {
      method: c.method,
      size: c.size,
      params: c.params,
      variant: c.variant,
      log2: iv,
      n90: 2 ** iv.mean - 1,
      lo: back(iv.lo),
      hi: back(iv.hi),
      censored: g.filter((x) => x.censored).length,
      seeds: g.length,
      maxEdits: Math.max(...g.map((x) => x.maxEdits)),
    };
  });
}

// ---------------------------------------------------------------------------------------------------
// Curves over seeds (for tables and plots)

/** One number of edits of a line: the mean over seeds of a score and its interval. */
export interface CurvePoint {
  edits: number;
  interval: Interval;
}

/**
 * The points of a line, grouped by `key` (e.g. method + size): at each number of edits, per seed the
 * mean of `value` over the line's models (balanced over seeds), then the interval over seeds.
 */
export function curveIntervals(
  points: readonly StudyPoint[],
  key: (p: StudyPoint) => string,
  value: (p: StudyPoint) => number | null,
  opts: IntervalOptions = {},
): Map<string, CurvePoint[]> {
  const groups = new Map<string, Map<number, { seed: number; unit: string; value: number }[]>>();
  for (const p of points) {
    const v = value(p);
    if (v === null) continue;
    const k = key(p);
    let g = groups.get(k);
    if (!g) groups.set(k, (g = new Map()));
    let at = g.get(p.edits);
    if (!at) g.set(p.edits, (at = []));
    at.push({ seed: p.seed, unit: p.model + SEP + p.method, value: v });
  }
  const out = new Map<string, CurvePoint[]>();
  for (const [k, g] of groups) {
    const line: CurvePoint[] = [];
    for (const [edits, items] of [...g].sort((a, b) => a[0] - b[0])) {
      const sm = seedMeans(items);
      if (sm.values.length) line.push({ edits, interval: intervalOf(sm.values, opts) });
    }
    out.set(k, line);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------
// Claims

export type Verdict = "holds" | "does not hold" | "inconclusive";
export const VERDICTS: readonly Verdict[] = ["holds", "does not hold", "inconclusive"];

/** One measured number of a claim. */
export interface ClaimValue {
  /** which part of the data: "ROME", "all methods", "MEMIT · instruct", ... */
  group: string;
  /** what is measured: "relative general score at N = 5", "mean log2 N90 difference", ... */
  quantity: string;
  estimate: Interval;
  /** censored curves among those behind this number, when any */
  censored?: number;
}

/** The verdict of one group (a method; for F3 a method and variant). */
export interface GroupVerdict {
  group: string;
  verdict: Verdict;
  reason: string;
}

export interface Claim {
  id: "F1" | "F2" | "F3" | "F4";
  /** the paper's finding, in its words */
  finding: string;
  /** the testable statement, with this run's thresholds */
  statement: string;
  /** what is measured and how */
  measure: string;
  /** how the intervals are computed */
  interval: string;
  values: ClaimValue[];
  groups: GroupVerdict[];
  verdict: Verdict;
  /** why this verdict, with the numbers */
  reason: string;
  /** the thresholds and options used */
  thresholds: Record<string, number | string>;
}

export interface ClaimOptions extends IntervalOptions {
  /** overall verdict: "pooled" (default, the rule applied to the mean over every group) or "all" */
  combine?: "pooled" | "all";
  /** N90's definition (F2, F3) */
  n90?: N90Options;
  f1?: {
    /** small N: the largest measured N <= this (default 5) */
    smallMax?: number;
    /** the relative general score that "holds" (default 0.9) */
    hold?: number;
    /** the relative general score below which it has "collapsed" (default 0.5) */
    collapse?: number;
  };
  f2?: {
    /** smallest meaningful effect on log2 N90 (default 0.5: N90 x 1.41) */
    minEffect?: number;
  };
  f3?: {
    /** smallest meaningful slope of log2 N90 per doubling of parameters (default 0.25) */
    minSlope?: number;
  };
  f4?: {
    /** the variant whose safety is tested (default "aligned") */
    variant?: StudyVariant;
    /** the number of edits (default: per method the largest N every curve of the variant has) */
    edits?: number;
    /** the drop's CI must lie above this for "holds" (default 0) */
    minDrop?: number;
    /** a drop below this is negligible: a CI under it means "does not hold" (default 0.05) */
    negligibleDrop?: number;
  };
}

const FINDINGS = {
  F1: "General abilities hold for a few edits, then fall and collapse.",
  F2: "Instruction-tuned models resist editing longer.",
  F3: "Larger models resist editing longer.",
  F4: "Safety weakens after editing, even in safety-aligned models.",
} as const;

/** "0.912 [0.871, 0.953]" (or "0.912 (one seed)"). */
export function formatInterval(iv: Interval, digits = 3): string {
  const f = (x: number) => {
    const s = x.toFixed(digits);
    return /^-0\.?0*$/.test(s) ? s.slice(1) : s;
  };
  if (iv.lo === null || iv.hi === null)
    return `${f(iv.mean)} (${iv.n} seed${iv.n === 1 ? "" : "s"}, no interval)`;
  return `${f(iv.mean)} [${f(iv.lo)}, ${f(iv.hi)}]`;
}

function ordered<T>(xs: Iterable<T>): T[] {
  return [...new Set(xs)];
}

/** The largest N that every curve (model, seed) of `ps` has. */
function commonEdits(ps: readonly StudyPoint[]): number[] {
  const curves = new Map<string, Set<number>>();
  for (const p of ps) {
    const k = p.model + SEP + p.seed;
    let s = curves.get(k);
    if (!s) curves.set(k, (s = new Set()));
    s.add(p.edits);
  }
  const sets = [...curves.values()];
  const first = sets[0];
  if (!first) return [];
  return [...first].filter((e) => sets.every((s) => s.has(e))).sort((a, b) => a - b);
}

/** The verdict of a one-sided "effect > 0" test with a smallest meaningful effect. */
function positiveEffectVerdict(iv: Interval, minEffect: number): { verdict: Verdict; why: string } {
  if (iv.lo === null || iv.hi === null)
    return { verdict: "inconclusive", why: `only ${iv.n} seed${iv.n === 1 ? "" : "s"}: no interval` };
  if (iv.lo > 0) return { verdict: "holds", why: "the interval lies above 0" };
  if (iv.hi < 0) return { verdict: "does not hold", why: "the interval lies below 0 (the opposite holds)" };
  if (iv.mean <= 0 && iv.hi < minEffect)
    return {
      verdict: "does not hold",
      why: `the mean is <= 0 and the interval excludes an effect of ${minEffect} or more`,
    };
  return { verdict: "inconclusive", why: "the interval contains 0 and does not exclude a meaningful effect" };
}

function combineAll(groups: readonly GroupVerdict[]): Verdict {
  if (groups.length === 0) return "inconclusive";
  if (groups.some((g) => g.verdict === "does not hold")) return "does not hold";
  if (groups.every((g) => g.verdict === "holds")) return "holds";
  return "inconclusive";
}

function groupList(groups: readonly GroupVerdict[]): string {
  return VERDICTS.map((v) => {
    const gs = groups.filter((g) => g.verdict === v).map((g) => g.group);
    return gs.length ? `${v}: ${gs.join(", ")}` : "";
  })
    .filter(Boolean)
    .join("; ");
}

/** F1: per method, the relative general score at small N and at the largest N. */
function claimF1(points: readonly StudyPoint[], opts: ClaimOptions): Claim {
  const smallMax = opts.f1?.smallMax ?? 5;
  const hold = opts.f1?.hold ?? 0.9;
  const collapse = opts.f1?.collapse ?? 0.5;
  const values: ClaimValue[] = [];
  const groups: GroupVerdict[] = [];
  const pooledSmall: { seed: number; unit: string; value: number }[] = [];
  const pooledLarge: { seed: number; unit: string; value: number }[] = [];
  const decide = (small: Interval, large: Interval): { verdict: Verdict; why: string } => {
    if (small.lo === null || small.hi === null || large.lo === null || large.hi === null)
      return { verdict: "inconclusive", why: `only ${small.n} seed${small.n === 1 ? "" : "s"}: no interval` };
    if (small.hi < hold) return { verdict: "does not hold", why: `already below ${hold} at small N` };
    if (large.lo >= collapse)
      return { verdict: "does not hold", why: `no collapse: still at or above ${collapse}` };
    if (small.lo >= hold && large.hi < collapse)
      return {
        verdict: "holds",
        why: `at or above ${hold} at small N and below ${collapse} at the largest N`,
      };
    return { verdict: "inconclusive", why: "an interval straddles its threshold" };
  };
  const smalls: number[] = [];
  const larges: number[] = [];
  for (const method of ordered(points.map((p) => p.method))) {
    const ps = points.filter((p) => p.method === method);
    const grid = commonEdits(ps).filter((e) => e > 0);
    const small = [...grid].reverse().find((e) => e <= smallMax);
    const large = grid[grid.length - 1];
    if (small === undefined || large === undefined || large === small) {
      groups.push({
        group: method,
        verdict: "inconclusive",
        reason:
          small === undefined
            ? `no number of edits between 1 and ${smallMax} measured on every curve`
            : `no number of edits beyond ${small} measured on every curve`,
      });
      continue;
    }
    smalls.push(small);
    larges.push(large);
    const at = (n: number) =>
      ps
        .filter((p) => p.edits === n)
        .map((p) => ({ seed: p.seed, unit: p.model + SEP + method, value: p.generalRel }));
    pooledSmall.push(...at(small));
    pooledLarge.push(...at(large));
    const a = seedMeans(at(small));
    const b = seedMeans(at(large));
    const ia = intervalOf(a.values, opts);
    const ib = intervalOf(b.values, opts);
    values.push({ group: method, quantity: `relative general score at N = ${small}`, estimate: ia });
    values.push({ group: method, quantity: `relative general score at N = ${large}`, estimate: ib });
    const d = decide(ia, ib);
    groups.push({
      group: method,
      verdict: d.verdict,
      reason: `${formatInterval(ia)} at N = ${small}, ${formatInterval(ib)} at N = ${large}: ${d.why}`,
    });
  }
  let verdict: Verdict;
  let reason: string;
  const smallText = ordered(smalls).join("/");
  const largeText = ordered(larges).join("/");
  if (pooledSmall.length === 0) {
    verdict = "inconclusive";
    reason = "no method has both a small and a large number of edits measured on every curve";
  } else {
    const ia = intervalOf(seedMeans(pooledSmall).values, opts);
    const ib = intervalOf(seedMeans(pooledLarge).values, opts);
    values.unshift(
      { group: "all methods", quantity: `relative general score at small N (${smallText})`, estimate: ia },
      {
        group: "all methods",
        quantity: `relative general score at the largest N (${largeText})`,
        estimate: ib,
      },
    );
    const d = decide(ia, ib);
    if ((opts.combine ?? "pooled") === "pooled") {
      verdict = d.verdict;
      reason = `Over all methods and models: ${formatInterval(ia)} at small N, ${formatInterval(ib)} at the largest N: ${d.why}.`;
    } else {
      verdict = combineAll(groups);
      reason = `Every method must hold ("all").`;
    }
  }
  reason += groups.length ? ` Per method: ${groupList(groups)}.` : "";
  return {
    id: "F1",
    finding: FINDINGS.F1,
    statement:
      `The relative general score (general score / the unedited model's) is at least ${hold} after a few edits ` +
      `(the largest measured N <= ${smallMax}) and below ${collapse} after the largest number of edits measured.`,
    measure:
      "Relative general score per (model, method, seed, N); per seed the mean over the models (per method, and over " +
      "all methods and models), then its interval over seeds. Holds when the interval at small N lies at or above " +
      `${hold} and the one at the largest N below ${collapse}; does not hold when the first lies below ${hold} or the ` +
      `second at or above ${collapse}.`,
    interval: intervalText(opts),
    values,
    groups,
    verdict,
    reason,
    thresholds: { smallMax, hold, collapse, combine: opts.combine ?? "pooled" },
  };
}

function n90Text(o: N90Options): string {
  const f = o.fraction ?? 0.9;
  return (
    `N90 = the number of edits at which the general score first falls below ${Math.round(f * 1000) / 10}% of the unedited score ` +
    ((o.mode ?? "interpolate") === "interpolate"
      ? "(interpolated linearly on log2(1 + N) between the checkpoints around the crossing)"
      : "(the first checkpoint below)") +
    "; a curve that never falls below is right-censored at its largest N (a lower bound)"
  );
}

/** F2: instruct vs base, log2 N90 differences paired per (size, method, seed). */
function claimF2(points: readonly StudyPoint[], opts: ClaimOptions): Claim {
  const n90o = opts.n90 ?? {};
  const minEffect = opts.f2?.minEffect ?? 0.5;
  const curves = curveN90s(points, n90o);
  const find = (size: string, method: string, seed: number, v: StudyVariant) =>
    curves.find((c) => c.size === size && c.method === method && c.seed === seed && c.variant === v);
  type Pair = { seed: number; unit: string; method: string; value: number; censored: number; both: boolean };
  const pairs: Pair[] = [];
  for (const c of curves) {
    if (c.variant !== "base") continue;
    const i = find(c.size, c.method, c.seed, "instruct");
    if (!i) continue;
    pairs.push({
      seed: c.seed,
      unit: c.size + SEP + c.method,
      method: c.method,
      value: i.log2 - c.log2,
      censored: (c.censored ? 1 : 0) + (i.censored ? 1 : 0),
      both: c.censored && i.censored,
    });
  }
  // units in which both variants are censored for every seed carry no information
  const units = ordered(pairs.map((p) => p.unit));
  const blind = units.filter((u) => pairs.filter((p) => p.unit === u).every((p) => p.both));
  const informative = pairs.filter((p) => !blind.includes(p.unit));
  const values: ClaimValue[] = [];
  const groups: GroupVerdict[] = [];
  for (const method of ordered(pairs.map((p) => p.method))) {
    const ps = informative.filter((p) => p.method === method);
    if (ps.length === 0) {
      groups.push({
        group: method,
        verdict: "inconclusive",
        reason: "neither base nor instruct falls below the threshold on the grid (all censored)",
      });
      continue;
    }
    const sm = seedMeans(ps);
    const iv = intervalOf(sm.values, opts);
    const cens = ps.filter((p) => sm.units.includes(p.unit)).reduce((s, p) => s + p.censored, 0);
    values.push({
      group: method,
      quantity: "mean of log2 N90(instruct) - log2 N90(base)",
      estimate: iv,
      censored: cens,
    });
    const d = positiveEffectVerdict(iv, minEffect);
    groups.push({ group: method, verdict: d.verdict, reason: `${formatInterval(iv)}: ${d.why}` });
  }
  let verdict: Verdict;
  let reason: string;
  if (pairs.length === 0) {
    verdict = "inconclusive";
    reason = "no (size, method, seed) has both a base and an instruct model";
  } else if (informative.length === 0) {
    verdict = "inconclusive";
    reason =
      "no base or instruct curve falls below the threshold within the measured edits: the grid cannot tell";
  } else {
    const sm = seedMeans(informative);
    const iv = intervalOf(sm.values, opts);
    const cens = informative.filter((p) => sm.units.includes(p.unit)).reduce((s, p) => s + p.censored, 0);
    values.unshift({
      group: "all sizes and methods",
      quantity: "mean of log2 N90(instruct) - log2 N90(base)",
      estimate: iv,
      censored: cens,
    });
    const d = positiveEffectVerdict(iv, minEffect);
    if ((opts.combine ?? "pooled") === "pooled") {
      verdict = d.verdict;
      reason =
        `Mean log2 N90 difference (instruct - base) over ${sm.units.length} (size, method) pairs: ${formatInterval(iv)} ` +
        `(N90 x ${(2 ** iv.mean).toFixed(2)}): ${d.why}.`;
    } else {
      verdict = combineAll(groups);
      reason = `Every method must hold ("all").`;
    }
    if (cens) reason += ` ${cens} of the N90s behind it are censored (set to the largest N, a lower bound).`;
    if (sm.dropped.length)
      reason += ` ${sm.dropped.length} (size, method) pairs lack some seed and are left out.`;
  }
  if (blind.length)
    reason += ` Left out (no curve of either variant falls below the threshold): ${blind.map((u) => u.replace(SEP, " · ")).join(", ")}.`;
  reason += groups.length ? ` Per method: ${groupList(groups)}.` : "";
  return {
    id: "F2",
    finding: FINDINGS.F2,
    statement: `N90 is larger for the instruction-tuned model than for the base model of the same size, under the same method and edit order.`,
    measure:
      `${n90Text(n90o)}. d = log2(1 + N90(instruct)) - log2(1 + N90(base)) per (size, method, seed); per seed the mean ` +
      `over (size, method), then its interval over seeds. Holds when the interval lies above 0; does not hold when it ` +
      `lies below 0, or when the mean is <= 0 and the interval excludes an effect of ${minEffect} (N90 x ${(2 ** minEffect).toFixed(2)}) or more.`,
    interval: intervalText(opts),
    values,
    groups,
    verdict,
    reason,
    thresholds: {
      fraction: n90o.fraction ?? 0.9,
      n90: n90o.mode ?? "interpolate",
      minEffect,
      combine: opts.combine ?? "pooled",
    },
  };
}

/** The least-squares slope of y on x. */
export function olsSlope(xs: readonly number[], ys: readonly number[]): number {
  const mx = mean(xs);
  const my = mean(ys);
  let sxy = 0;
  let sxx = 0;
  xs.forEach((x, i) => {
    sxy += (x - mx) * ((ys[i] as number) - my);
    sxx += (x - mx) ** 2;
  });
  if (sxx === 0) throw new StudyInputError("olsSlope: every x is the same; a slope needs two sizes");
  return sxy / sxx;
}

/** F3: per (method, variant), the slope of log2 N90 against log2 parameters. */
function claimF3(points: readonly StudyPoint[], opts: ClaimOptions): Claim {
  const n90o = opts.n90 ?? {};
  const minSlope = opts.f3?.minSlope ?? 0.25;
  const curves = curveN90s(points, n90o);
  const values: ClaimValue[] = [];
  const groups: GroupVerdict[] = [];
  const pooled: { seed: number; unit: string; value: number }[] = [];
  const lineKeys = ordered(curves.map((c) => c.method + SEP + c.variant));
  for (const lk of lineKeys) {
    const [method, variant] = lk.split(SEP) as [string, StudyVariant];
    const label = `${method} · ${variant}`;
    const cs = curves.filter((c) => c.method === method && c.variant === variant);
    const seeds = ordered(cs.map((c) => c.seed)).sort((a, b) => a - b);
    // sizes that every seed has
    const sizes = ordered(cs.map((c) => c.size)).filter((s) =>
      seeds.every((sd) => cs.some((c) => c.size === s && c.seed === sd)),
    );
    const params = sizes.map((s) => (cs.find((c) => c.size === s) as CurveN90).params);
    if (new Set(params).size < 2) {
      groups.push({
        group: label,
        verdict: "inconclusive",
        reason: "fewer than two sizes measured on every seed",
      });
      continue;
    }
    const used = cs.filter((c) => sizes.includes(c.size));
    if (used.every((c) => c.censored)) {
      groups.push({
        group: label,
        verdict: "inconclusive",
        reason: "no size's general score falls below the threshold within the measured edits (all censored)",
      });
      continue;
    }
    const slopes = seeds.map((sd) =>
      olsSlope(
        params.map((p) => Math.log2(p)),
        sizes.map((s) => (used.find((c) => c.size === s && c.seed === sd) as CurveN90).log2),
      ),
    );
    slopes.forEach((v, i) => pooled.push({ seed: seeds[i] as number, unit: lk, value: v }));
    const iv = intervalOf(slopes, opts);
    const cens = used.filter((c) => c.censored).length;
    values.push({
      group: label,
      quantity: "slope of log2 N90 per doubling of parameters",
      estimate: iv,
      censored: cens,
    });
    const d = positiveEffectVerdict(iv, minSlope);
    groups.push({
      group: label,
      verdict: d.verdict,
      reason: `${formatInterval(iv)} over sizes ${sizes.join(", ")}: ${d.why}`,
    });
  }
  let verdict: Verdict;
  let reason: string;
  if (pooled.length === 0) {
    verdict = "inconclusive";
    reason = "no (method, variant) has two sizes with a measured crossing";
  } else {
    const sm = seedMeans(pooled);
    const iv = intervalOf(sm.values, opts);
    values.unshift({
      group: "all methods and variants",
      quantity: "mean slope of log2 N90 per doubling of parameters",
      estimate: iv,
    });
    const d = positiveEffectVerdict(iv, minSlope);
    if ((opts.combine ?? "pooled") === "pooled") {
      verdict = d.verdict;
      reason = `Mean slope over ${sm.units.length} (method, variant) lines: ${formatInterval(iv)} (N90 x ${(2 ** iv.mean).toFixed(2)} per doubling of parameters): ${d.why}.`;
    } else {
      verdict = combineAll(groups);
      reason = `Every (method, variant) must hold ("all").`;
    }
    const cens = values.slice(1).reduce((s, v) => s + (v.censored ?? 0), 0);
    if (cens) reason += ` ${cens} of the N90s behind it are censored (set to the largest N, a lower bound).`;
  }
  const blind = groups.filter((g) => g.reason.endsWith("(all censored)")).map((g) => g.group);
  if (blind.length) reason += ` Left out (no size falls below the threshold): ${blind.join(", ")}.`;
  reason += groups.length ? ` Per line: ${groupList(groups)}.` : "";
  return {
    id: "F3",
    finding: FINDINGS.F3,
    statement: "N90 grows with model size: the slope of log2 N90 against log2(parameters) is positive.",
    measure:
      `${n90Text(n90o)}. Per (method, variant) and seed the least-squares slope of log2(1 + N90) against ` +
      `log2(parameters) over the sizes; its interval over seeds (equal to the interval of the slope fitted to the seed-mean N90s). ` +
      `Overall: per seed the mean slope over (method, variant). Holds when the interval lies above 0; does not hold when ` +
      `it lies below 0, or when the mean is <= 0 and the interval excludes a slope of ${minSlope} or more.`,
    interval: intervalText(opts),
    values,
    groups,
    verdict,
    reason,
    thresholds: {
      fraction: n90o.fraction ?? 0.9,
      n90: n90o.mode ?? "interpolate",
      minSlope,
      combine: opts.combine ?? "pooled",
    },
  };
}

/** F4: the safety drop of the aligned models. */
function claimF4(points: readonly StudyPoint[], opts: ClaimOptions): Claim {
  const variant = opts.f4?.variant ?? "aligned";
  const minDrop = opts.f4?.minDrop ?? 0;
  const negligible = opts.f4?.negligibleDrop ?? 0.05;
  const ps = points.filter((p) => p.variant === variant && p.safetyRel !== null);
  const values: ClaimValue[] = [];
  const groups: GroupVerdict[] = [];
  const pooled: { seed: number; unit: string; value: number }[] = [];
  const decide = (iv: Interval): { verdict: Verdict; why: string } => {
    if (iv.lo === null || iv.hi === null)
      return { verdict: "inconclusive", why: `only ${iv.n} seed${iv.n === 1 ? "" : "s"}: no interval` };
    if (iv.lo > minDrop) return { verdict: "holds", why: `the interval lies above ${minDrop}` };
    if (iv.hi < negligible)
      return { verdict: "does not hold", why: `the interval excludes a drop of ${negligible} or more` };
    return { verdict: "inconclusive", why: `the interval contains ${minDrop} and reaches ${negligible}` };
  };
  const chosen: number[] = [];
  for (const method of ordered(ps.map((p) => p.method))) {
    const mp = ps.filter((p) => p.method === method);
    const grid = commonEdits(mp).filter((e) => e > 0);
    const n = opts.f4?.edits ?? grid[grid.length - 1];
    if (n === undefined || !grid.includes(n)) {
      groups.push({
        group: method,
        verdict: "inconclusive",
        reason:
          n === undefined ? "no edited checkpoint on every curve" : `N = ${n} is not measured on every curve`,
      });
      continue;
    }
    chosen.push(n);
    const items = mp
      .filter((p) => p.edits === n)
      .map((p) => ({ seed: p.seed, unit: p.model + SEP + method, value: 1 - (p.safetyRel as number) }));
    pooled.push(...items);
    const iv = intervalOf(seedMeans(items).values, opts);
    values.push({ group: method, quantity: `relative safety drop at N = ${n}`, estimate: iv });
    const d = decide(iv);
    groups.push({ group: method, verdict: d.verdict, reason: `${formatInterval(iv)} at N = ${n}: ${d.why}` });
  }
  // the curve: the drop at every N, over all methods
  const curve = curveIntervals(
    ps.filter((p) => p.edits > 0),
    () => "all",
    (p) => 1 - (p.safetyRel as number),
    opts,
  ).get("all");
  let verdict: Verdict;
  let reason: string;
  if (!points.some((p) => p.safetyRel !== null)) {
    verdict = "inconclusive";
    reason = "the data has no safety score";
  } else if (ps.length === 0) {
    verdict = "inconclusive";
    reason = `the data has no ${variant} model`;
  } else if (pooled.length === 0) {
    verdict = "inconclusive";
    reason = `no method has an edited checkpoint on every ${variant} curve`;
  } else {
    const sm = seedMeans(pooled);
    const iv = intervalOf(sm.values, opts);
    const nText = ordered(chosen).join("/");
    values.unshift({ group: "all methods", quantity: `relative safety drop at N = ${nText}`, estimate: iv });
    const d = decide(iv);
    if ((opts.combine ?? "pooled") === "pooled") {
      verdict = d.verdict;
      reason = `Relative safety drop of the ${variant} models at N = ${nText}, over all methods: ${formatInterval(iv)}: ${d.why}.`;
    } else {
      verdict = combineAll(groups);
      reason = `Every method must hold ("all").`;
    }
  }
  for (const c of curve ?? [])
    values.push({
      group: "all methods (curve)",
      quantity: `relative safety drop at N = ${c.edits}`,
      estimate: c.interval,
    });
  reason += groups.length ? ` Per method: ${groupList(groups)}.` : "";
  return {
    id: "F4",
    finding: FINDINGS.F4,
    statement: `The ${variant} models' safety score after N edits is below their unedited safety score.`,
    measure:
      `Relative safety drop 1 - safety(N) / safety(unedited) of the ${variant} models per (model, method, seed), at ` +
      `${opts.f4?.edits !== undefined ? `N = ${opts.f4.edits}` : "the largest N that every curve of the method has"}, and at every N (the curve); ` +
      `per seed the mean over models (per method, and over all methods), then its interval over seeds. Holds when the ` +
      `interval lies above ${minDrop}; does not hold when it lies below ${negligible} (a drop of ${negligible} or more is excluded).`,
    interval: intervalText(opts),
    values,
    groups,
    verdict,
    reason,
    thresholds: {
      variant,
      edits: opts.f4?.edits ?? "largest common",
      minDrop,
      negligibleDrop: negligible,
      combine: opts.combine ?? "pooled",
    },
  };
}

/** The four claims (F1..F4) of the study's points. */
export function computeClaims(points: readonly StudyPoint[], opts: ClaimOptions = {}): Claim[] {
  if (points.length === 0) throw new StudyInputError("computeClaims: no points (studyPoints gave none)");
  const level = opts.level ?? 0.95;
  if (!(level > 0 && level < 1))
    throw new StudyInputError(`computeClaims: level must lie in (0, 1), got ${level}`);
  const f = opts.n90?.fraction ?? 0.9;
  if (!(f > 0 && f <= 1))
    throw new StudyInputError(`computeClaims: n90.fraction must lie in (0, 1], got ${f}`);
  return [claimF1(points, opts), claimF2(points, opts), claimF3(points, opts), claimF4(points, opts)];
}
