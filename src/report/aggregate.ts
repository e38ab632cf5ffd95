/**
 * From rows to points: one point per (model, method, schedule, benchmark, metric, edits), averaged over
 * seeds, and the unedited reference score of each (model, benchmark, metric).
 */
import { isUnedited, UNEDITED, type ResultRow } from "./types.js";
import { ReportInputError } from "./validate.js";

export interface Point {
  model: string;
  /** "unedited" for the unedited model's points */
  method: string;
  /** "" for the unedited model's points (one unedited model serves every schedule) */
  schedule: string;
  benchmark: string;
  metric: string;
  edits: number;
  /** the value, or the mean over seeds */
  value: number;
  /** the row's stderr (one seed), or the standard error of the mean over seeds; null when unknown */
  stderr: number | null;
  /** items per value (when every seed's row gives the same n) */
  n?: number;
  /** number of seeds (rows) averaged */
  seeds: number;
}

/** A benchmark's metric: one table, one panel. */
export interface Measure {
  benchmark: string;
  metric: string;
}

const SEP = "\u0000";

/** Key of a line (series): model, method, schedule. */
export function seriesKey(p: { model: string; method: string; schedule: string }): string {
  return [p.model, p.method, p.schedule].join(SEP);
}

export function measureKey(m: Measure): string {
  return m.benchmark + SEP + m.metric;
}

/** Groups rows into points. Rows that agree on everything but the seed are averaged; true duplicates throw. */
export function aggregate(rows: readonly ResultRow[]): Point[] {
  const groups = new Map<string, { rows: ResultRow[]; seeds: Map<string, number> }>();
  rows.forEach((r, i) => {
    const unedited = isUnedited(r.method);
    const key = [
      r.model,
      unedited ? UNEDITED : r.method,
      unedited ? "" : r.schedule,
      r.benchmark,
      r.metric,
      r.edits,
    ].join(SEP);
    let g = groups.get(key);
    if (!g) groups.set(key, (g = { rows: [], seeds: new Map() }));
    const seed = String(r.seed ?? "");
    const prev = g.seeds.get(seed);
    if (prev !== undefined) {
      const p = rows[prev] as ResultRow;
      // the same number twice is no conflict (the unedited model may be recorded once per schedule)
      if (p.value === r.value) return;
      throw new ReportInputError(
        `report rows: rows ${prev} and ${i} measure the same thing (model "${r.model}", method "${r.method}", ` +
          `schedule "${r.schedule}", ${r.edits} edits, ${r.benchmark} ${r.metric}, seed ${r.seed ?? "(none)"}) ` +
          `with different values; give them different seeds or drop one`,
        i,
      );
    }
    g.seeds.set(seed, i);
    g.rows.push(r);
  });
  const points: Point[] = [];
  for (const g of groups.values()) {
    const first = g.rows[0] as ResultRow;
    const k = g.rows.length;
    const unedited = isUnedited(first.method);
    let value: number;
    let stderr: number | null;
    if (k === 1) {
      value = first.value;
      stderr = first.stderr ?? null;
    } else {
      value = g.rows.reduce((s, r) => s + r.value, 0) / k;
      const variance = g.rows.reduce((s, r) => s + (r.value - value) ** 2, 0) / (k - 1);
      stderr = Math.sqrt(variance / k);
    }
    const ns = new Set(g.rows.map((r) => r.n));
    const p: Point = {
      model: first.model,
      method: unedited ? UNEDITED : first.method,
      schedule: unedited ? "" : first.schedule,
      benchmark: first.benchmark,
      metric: first.metric,
      edits: first.edits,
      value,
      stderr,
      seeds: k,
    };
    if (ns.size === 1 && first.n !== undefined) p.n = first.n;
    points.push(p);
  }
  return points;
}

/** Distinct values in order of first appearance. */
export function distinct<T>(xs: Iterable<T>): T[] {
  return [...new Set(xs)];
}

/** The measures (benchmark, metric) in order of first appearance. */
export function measures(points: readonly Point[]): Measure[] {
  const seen = new Map<string, Measure>();
  for (const p of points) {
    const k = measureKey(p);
    if (!seen.has(k)) seen.set(k, { benchmark: p.benchmark, metric: p.metric });
  }
  return [...seen.values()];
}

/**
 * The unedited score of a model on a measure: the "unedited" point at 0 edits, or else the mean of the
 * other methods' points at 0 edits (they are all the unedited model); undefined when there is none.
 */
export function uneditedPoint(points: readonly Point[], model: string, m: Measure): Point | undefined {
  const at0 = points.filter(
    (p) => p.model === model && p.benchmark === m.benchmark && p.metric === m.metric && p.edits === 0,
  );
  const u = at0.find((p) => p.method === UNEDITED);
  if (u || at0.length === 0) return u;
  const value = at0.reduce((s, p) => s + p.value, 0) / at0.length;
  return {
    ...(at0[0] as Point),
    method: UNEDITED,
    schedule: "",
    value,
    stderr: at0.length === 1 ? (at0[0] as Point).stderr : null,
  };
}
