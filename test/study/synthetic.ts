/**
 * A synthetic study (no model): experiment rows of 3 sizes x {base, instruct, aligned} x methods x seeds,
 * whose general score follows a logistic curve in log2(1 + N) with a known midpoint per model, for the
 * plot and report tests and for looking at the figures.
 */
import type { ResultRow } from "../../src/report/types.js";
import { GENERAL_TASKS, SAFETY_TASKS, type StudyModel } from "../../src/study/claims.js";

export const SIZES: [string, number][] = [
  ["0.2M", 0.25e6],
  ["0.9M", 0.9e6],
  ["2.2M", 2.2e6],
];
export const GRID = [1, 5, 10, 20, 50, 100, 200, 500, 1000];

export function syntheticModels(): Record<string, StudyModel> {
  const out: Record<string, StudyModel> = {};
  for (const [size, params] of SIZES)
    for (const variant of ["base", "instruct", "aligned"] as const)
      out[`world-${size}-${variant}`] = { size, params, variant };
  return out;
}

/** Rows of a synthetic study; `mid(model, method)` is the log2(1+N) at which the relative general score is 0.5. */
export function syntheticRows(
  methods = ["ROME", "MEMIT", "AlphaEdit", "FT-L"],
  seeds = [0, 1, 2],
  grid = GRID,
): ResultRow[] {
  const rows: ResultRow[] = [];
  const models = syntheticModels();
  methods.forEach((method, mi) => {
    for (const [name, m] of Object.entries(models)) {
      const si = SIZES.findIndex(([s]) => s === m.size);
      const gen0 = 0.55 + 0.1 * si;
      const saf0 = m.variant === "aligned" ? 0.9 : 0.55;
      const push = (meth: string, edits: number, seed: number, rel: number, srel: number) => {
        for (const t of GENERAL_TASKS)
          rows.push({
            model: name,
            method: meth,
            schedule: meth === "unedited" ? "none" : "sequential",
            edits,
            benchmark: t.benchmark,
            metric: t.metric === "exact_match" ? "exact_match,extract" : t.metric,
            value: gen0 * rel,
            seed,
            n: 50,
          });
        for (const t of SAFETY_TASKS)
          rows.push({
            model: name,
            method: meth,
            schedule: meth === "unedited" ? "none" : "sequential",
            edits,
            benchmark: t.benchmark,
            metric: t.metric === "exact_match" ? "exact_match,extract" : t.metric,
            value: saf0 * srel,
            seed,
            n: 50,
          });
      };
      if (mi === 0) push("unedited", 0, 0, 1, 1);
      const mid = 4 + mi + 0.8 * si + (m.variant === "base" ? 0 : 0.7);
      for (const seed of seeds)
        for (const n of grid) {
          const u = Math.log2(1 + n);
          const jitter = 0.02 * Math.sin(7 * seed + n + mi);
          const rel = Math.min(
            1,
            1 / (1 + Math.exp(2 * (u - mid))) / (1 / (1 + Math.exp(-2 * mid))) + jitter,
          );
          const srel = 1 - 0.4 * (1 - rel) + jitter;
          push(method, n, seed, rel, srel);
        }
    }
  });
  return rows;
}
