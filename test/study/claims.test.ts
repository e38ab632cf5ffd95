/**
 * The study's claims on hand-made curves: every expected number below is computed by hand (the comments
 * show how), never by the code under test. t(0.975, df = 2) = 4.302652729749464, so with 3 seeds the
 * 95% half-width is 4.302653 · sd / √3 = 2.484138 · sd.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import type { ResultRow } from "../../src/report/types.js";
import {
  computeClaims,
  curveN90s,
  GENERAL_TASKS,
  incompleteBeta,
  intervalOf,
  n90Of,
  n90Summaries,
  olsSlope,
  SAFETY_TASKS,
  seedMeans,
  StudyInputError,
  studentTCdf,
  studentTQuantile,
  studyPoints,
  type Claim,
  type StudyModel,
  type StudyPoint,
  type StudyVariant,
} from "../../src/study/claims.js";

const HW3 = 4.302652729749464 / Math.sqrt(3); // half-width per unit sd, 3 seeds

function close(a: number | null, b: number, tol = 1e-6, what = "") {
  assert.ok(a !== null && Math.abs(a - b) <= tol, `${what}: expected ${b}, got ${a}`);
}

// ---------------------------------------------------------------------------------------------------
// statistics

test("studentTQuantile: the tabulated two-sided 95% values", () => {
  // standard t tables (e.g. NIST/SEMATECH e-Handbook 1.3.6.7.2)
  close(studentTQuantile(0.975, 1), 12.706204736, 1e-6, "df 1");
  close(studentTQuantile(0.975, 2), 4.30265273, 1e-6, "df 2");
  close(studentTQuantile(0.975, 4), 2.776445105, 1e-6, "df 4");
  close(studentTQuantile(0.975, 30), 2.042272456, 1e-6, "df 30");
  close(studentTQuantile(0.995, 9), 3.249835542, 1e-6, "df 9, 99%");
  close(studentTQuantile(0.025, 2), -4.30265273, 1e-6, "lower tail");
  // df = 1 is the Cauchy distribution: CDF = 1/2 + atan(t)/pi
  close(studentTCdf(2, 1), 0.5 + Math.atan(2) / Math.PI, 1e-10, "Cauchy CDF");
  // df = 2: CDF = 1/2 + t / (2 sqrt(2 + t^2))
  close(studentTCdf(1.3, 2), 0.5 + 1.3 / (2 * Math.sqrt(2 + 1.69)), 1e-10, "df 2 CDF");
  // I_x(1, 1) = x; I_x(a, b) = 1 - I_{1-x}(b, a)
  close(incompleteBeta(0.37, 1, 1), 0.37, 1e-12, "I_x(1,1)");
  close(incompleteBeta(0.2, 2.5, 0.5), 1 - incompleteBeta(0.8, 0.5, 2.5), 1e-12, "symmetry");
});

test("intervalOf: t-interval over seeds, one seed without interval, bootstrap reproducible and inside the range", () => {
  // [1, 2, 3]: mean 2, sd 1, half-width 2.484138
  const iv = intervalOf([1, 2, 3]);
  close(iv.mean, 2);
  close(iv.sd, 1);
  close(iv.lo, 2 - HW3);
  close(iv.hi, 2 + HW3);
  const one = intervalOf([0.7]);
  assert.deepEqual(one, { mean: 0.7, lo: null, hi: null, n: 1, sd: null });
  const xs = [0.1, 0.4, 0.35, 0.2, 0.5];
  const b1 = intervalOf(xs, { interval: "bootstrap", resamples: 2000, bootstrapSeed: 3 });
  const b2 = intervalOf(xs, { interval: "bootstrap", resamples: 2000, bootstrapSeed: 3 });
  assert.deepEqual(b1, b2);
  assert.ok(
    (b1.lo as number) >= 0.1 &&
      (b1.hi as number) <= 0.5 &&
      (b1.lo as number) < 0.31 &&
      (b1.hi as number) > 0.31,
  );
  assert.throws(() => intervalOf([]), StudyInputError);
});

test("seedMeans: a balanced mean per seed; units missing a seed are dropped and named", () => {
  const r = seedMeans([
    { seed: 0, unit: "a", value: 1 },
    { seed: 0, unit: "b", value: 3 },
    { seed: 1, unit: "a", value: 2 },
    { seed: 1, unit: "b", value: 6 },
    { seed: 0, unit: "c", value: 100 },
  ]);
  assert.deepEqual(r, { seeds: [0, 1], values: [2, 4], units: ["a", "b"], dropped: ["c"] });
});

test("olsSlope: the least-squares slope; one x throws", () => {
  // x = 0, 1, 2; y = 1, 2, 6: slope = sum (x - 1)(y - 3) / sum (x - 1)^2 = (2 + 3) / 2 = 2.5
  close(olsSlope([0, 1, 2], [1, 2, 6]), 2.5);
  assert.throws(() => olsSlope([1, 1], [0, 1]), /two sizes/);
});

// ---------------------------------------------------------------------------------------------------
// N90

test("n90Of: interpolation on log2(1 + N), the grid rule, a fall at the first checkpoint, the first crossing, censoring", () => {
  const curve = [
    { edits: 0, rel: 1 },
    { edits: 1, rel: 1 },
    { edits: 5, rel: 0.95 },
    { edits: 10, rel: 0.85 },
    { edits: 20, rel: 0.5 },
  ];
  // between 5 and 10: t = (0.95 - 0.9) / (0.95 - 0.85) = 0.5, u = (log2 6 + log2 11) / 2, N90 = sqrt(66) - 1
  const a = n90Of(curve);
  close(a.n90, Math.sqrt(66) - 1, 1e-9, "interpolated");
  close(a.log2, Math.log2(Math.sqrt(66)), 1e-9, "log2");
  assert.equal(a.censored, false);
  assert.equal(a.maxEdits, 20);
  // grid: the first checkpoint below 0.9 is 10
  assert.deepEqual(n90Of(curve, { mode: "grid" }), {
    n90: 10,
    log2: Math.log2(11),
    censored: false,
    maxEdits: 20,
  });
  // falls at N = 1 (0.5): u between 0 and 1 at t = (1 - 0.9) / (1 - 0.5) = 0.2, N90 = 2^0.2 - 1; no 0 point given
  close(n90Of([{ edits: 1, rel: 0.5 }]).n90, 2 ** 0.2 - 1, 1e-12, "first checkpoint");
  // the first crossing counts even if the curve recovers: between 1 (1.0) and 5 (0.8): t = 0.5, N90 = sqrt(2 * 6) - 1
  close(
    n90Of([
      { edits: 1, rel: 1 },
      { edits: 5, rel: 0.8 },
      { edits: 10, rel: 0.95 },
    ]).n90,
    Math.sqrt(12) - 1,
    1e-9,
    "first crossing",
  );
  // a threshold of 0.8: between 10 (0.85) and 20 (0.5): t = 0.05 / 0.35 = 1/7
  close(
    n90Of(curve, { fraction: 0.8 }).log2,
    Math.log2(11) + (Math.log2(21) - Math.log2(11)) / 7,
    1e-9,
    "fraction 0.8",
  );
  // never below 0.9: censored at the largest N
  assert.deepEqual(
    n90Of([
      { edits: 10, rel: 0.99 },
      { edits: 100, rel: 0.9 },
    ]),
    { n90: 100, log2: Math.log2(101), censored: true, maxEdits: 100 },
  );
});

// ---------------------------------------------------------------------------------------------------
// hand-made study points

interface Who {
  size?: string;
  params?: number;
  variant?: StudyVariant;
  method?: string;
}

function model(w: Who): { model: string; size: string; params: number; variant: StudyVariant } {
  const size = w.size ?? "S";
  const variant = w.variant ?? "base";
  return { model: `${size}-${variant}`, size, params: w.params ?? 2 ** 20, variant };
}

/** A curve from (edits, relative general score[, relative safety score]) points, the 0-edit point added. */
function curve(w: Who, seed: number, pts: [number, number, number?][]): StudyPoint[] {
  const m = model(w);
  const withSafety = pts.some((x) => x[2] !== undefined);
  const all: [number, number, number?][] = [withSafety ? [0, 1, 1] : [0, 1], ...pts];
  return all.map(([edits, rel, srel]) => ({
    ...m,
    method: w.method ?? "M",
    schedule: "sequential",
    seed,
    edits,
    general: 0.5 * rel,
    generalRel: rel,
    safety: srel === undefined ? null : 0.8 * srel,
    safetyRel: srel === undefined ? null : srel,
    generalUnedited: 0.5,
    safetyUnedited: srel === undefined ? null : 0.8,
  }));
}

const U_GRID = [1, 2, 3, 4, 5, 6, 7, 8, 9]; // u = log2(1 + N): N = 1, 3, 7, ..., 511

/**
 * A curve whose interpolated log2(1 + N90) is exactly `u` (1 <= u < 9) on the grid N = 2^k - 1: relative
 * score 1 before checkpoint floor(u), 0.9 + 0.1 t there and 0.9 - 0.1 (1 - t) at the next (t = u -
 * floor(u)), so the interpolation weight is (0.1 t) / (0.1) = t.
 */
function crossingAt(w: Who, seed: number, u: number): StudyPoint[] {
  const k = Math.floor(u);
  const t = u - k;
  return curve(
    w,
    seed,
    U_GRID.map((j) => {
      const rel = j < k ? 1 : j === k ? 0.9 + 0.1 * t : 0.9 - 0.1 * (1 - t) - 0.1 * (j - k - 1);
      return [2 ** j - 1, rel];
    }),
  );
}

/** A curve that never falls below 0.9 (censored at 511). */
function flat(w: Who, seed: number): StudyPoint[] {
  return curve(
    w,
    seed,
    U_GRID.map((j) => [2 ** j - 1, 0.99]),
  );
}

function claim(cs: Claim[], id: string): Claim {
  return cs.find((c) => c.id === id) as Claim;
}

test("crossingAt builds curves with the N90 it promises (a check of the test's own helper)", () => {
  for (const u of [1, 2.25, 3.5, 4.75, 8.5])
    close(
      n90Of(crossingAt({}, 0, u).map((p) => ({ edits: p.edits, rel: p.generalRel }))).log2,
      u,
      1e-9,
      `u ${u}`,
    );
});

// F1 ---------------------------------------------------------------------------------------------------

/** One method, one model, 3 seeds: relative general score `small[i]` at N = 5 and `large[i]` at N = 100. */
function f1Points(small: number[], large: number[], method = "M"): StudyPoint[] {
  return small.flatMap((s, seed) =>
    curve({ method }, seed, [
      [1, 1],
      [5, s],
      [20, (s + (large[seed] as number)) / 2],
      [100, large[seed] as number],
    ]),
  );
}

test("F1 holds: >= 0.9 at N = 5 and < 0.5 at N = 100 (hand-computed intervals)", () => {
  // small: [0.95, 0.97, 0.99] mean 0.97, sd 0.02 -> [0.97 - 0.0497, 0.97 + 0.0497], lo 0.9203 >= 0.9
  // large: [0.25, 0.30, 0.35] mean 0.30, sd 0.05 -> hi 0.30 + 0.1242 = 0.4242 < 0.5
  const c = claim(computeClaims(f1Points([0.95, 0.97, 0.99], [0.25, 0.3, 0.35])), "F1");
  assert.equal(c.verdict, "holds");
  const [a, b] = c.values;
  assert.match(a?.quantity ?? "", /small N \(5\)/);
  assert.match(b?.quantity ?? "", /largest N \(100\)/);
  close(a?.estimate.mean ?? null, 0.97, 1e-12);
  close(a?.estimate.lo ?? null, 0.97 - 0.02 * HW3, 1e-9);
  close(b?.estimate.hi ?? null, 0.3 + 0.05 * HW3, 1e-9);
  assert.deepEqual(
    c.groups.map((g) => [g.group, g.verdict]),
    [["M", "holds"]],
  );
});

test("F1 does not hold: no collapse by the largest N; also when it falls at once", () => {
  // large: [0.70, 0.75, 0.80]: lo = 0.75 - 0.1242 = 0.6258 >= 0.5
  const c = claim(computeClaims(f1Points([0.95, 0.97, 0.99], [0.7, 0.75, 0.8])), "F1");
  assert.equal(c.verdict, "does not hold");
  assert.match(c.reason, /no collapse/);
  // small: [0.6, 0.65, 0.7]: hi = 0.65 + 0.1242 = 0.7742 < 0.9
  const d = claim(computeClaims(f1Points([0.6, 0.65, 0.7], [0.1, 0.1, 0.1])), "F1");
  assert.equal(d.verdict, "does not hold");
  assert.match(d.reason, /already below 0.9 at small N/);
});

test("F1 inconclusive: the small-N interval straddles 0.9; one seed; no small N measured", () => {
  // small: [0.88, 0.93, 0.98]: [0.8058, 1.0542] contains 0.9
  assert.equal(
    claim(computeClaims(f1Points([0.88, 0.93, 0.98], [0.25, 0.3, 0.35])), "F1").verdict,
    "inconclusive",
  );
  const one = claim(computeClaims(f1Points([0.95], [0.1])), "F1");
  assert.equal(one.verdict, "inconclusive");
  assert.match(one.reason, /only 1 seed/);
  const noSmall = [0, 1, 2].flatMap((s) =>
    curve({}, s, [
      [10, 0.95],
      [100, 0.1],
    ]),
  );
  const c = claim(computeClaims(noSmall), "F1");
  assert.equal(c.verdict, "inconclusive");
  assert.match(c.groups[0]?.reason ?? "", /between 1 and 5/);
  // thresholds are options: smallMax 10 makes N = 10 the small N, and then it holds (all seeds 0.95 and 0.1)
  assert.equal(claim(computeClaims(noSmall, { f1: { smallMax: 10 } }), "F1").verdict, "holds");
});

test("F1 pooled vs all: one method holds, one does not", () => {
  const pts = [
    ...f1Points([0.95, 0.97, 0.99], [0.25, 0.3, 0.35], "A"),
    ...f1Points([0.95, 0.97, 0.99], [0.7, 0.75, 0.8], "B"),
  ];
  const pooled = claim(computeClaims(pts), "F1");
  // pooled large N: per seed mean of A and B: [0.475, 0.525, 0.575], mean 0.525, sd 0.05: [0.4008, 0.6492] straddles 0.5
  close(pooled.values[1]?.estimate.mean ?? null, 0.525, 1e-12);
  assert.equal(pooled.verdict, "inconclusive");
  assert.deepEqual(
    pooled.groups.map((g) => g.verdict),
    ["holds", "does not hold"],
  );
  assert.equal(claim(computeClaims(pts, { combine: "all" }), "F1").verdict, "does not hold");
});

// F2 ---------------------------------------------------------------------------------------------------

/** One size, one method: base crosses at u = 3.5 for every seed, instruct at 3.5 + d[seed]. */
function f2Points(d: number[]): StudyPoint[] {
  return d.flatMap((x, seed) => [
    ...crossingAt({ variant: "base" }, seed, 3.5),
    ...crossingAt({ variant: "instruct" }, seed, 3.5 + x),
  ]);
}

test("F2 holds: instruct's log2 N90 exceeds base's (paired per seed)", () => {
  // d = [1, 1.25, 1.5]: mean 1.25, sd 0.25 -> [1.25 - 0.6210, 1.25 + 0.6210] above 0
  const c = claim(computeClaims(f2Points([1, 1.25, 1.5])), "F2");
  assert.equal(c.verdict, "holds");
  const v = c.values[0];
  close(v?.estimate.mean ?? null, 1.25, 1e-9);
  close(v?.estimate.lo ?? null, 1.25 - 0.25 * HW3, 1e-9);
  close(v?.estimate.hi ?? null, 1.25 + 0.25 * HW3, 1e-9);
  assert.equal(v?.censored, 0);
  assert.match(c.reason, /N90 x 2\.38/); // 2^1.25 = 2.378
});

test("F2 does not hold: the interval below 0, or a mean <= 0 that excludes a meaningful effect", () => {
  assert.equal(claim(computeClaims(f2Points([-1, -1.25, -1.5])), "F2").verdict, "does not hold");
  // d = [0, 0.05, -0.05]: mean 0, sd 0.05 -> [-0.1242, 0.1242]; 0.1242 < minEffect 0.5
  const c = claim(computeClaims(f2Points([0, 0.05, -0.05])), "F2");
  assert.equal(c.verdict, "does not hold");
  assert.match(c.reason, /excludes an effect of 0.5/);
  // with minEffect 0.1 the same data no longer exclude a meaningful effect
  assert.equal(
    claim(computeClaims(f2Points([0, 0.05, -0.05]), { f2: { minEffect: 0.1 } }), "F2").verdict,
    "inconclusive",
  );
});

test("F2 inconclusive: the interval contains 0 and a meaningful effect", () => {
  // d = [0, 0.25, -0.25]: mean 0, sd 0.25 -> [-0.621, 0.621] reaches 0.5
  assert.equal(claim(computeClaims(f2Points([0, 0.25, -0.25])), "F2").verdict, "inconclusive");
});

test("F2 censoring: a censored instruct curve counts at the largest N; both censored everywhere is left out", () => {
  // instruct never falls: its log2 N90 is log2(512) = 9 (censored); d = 9 - 3.5 = 5.5 for every seed
  const pts = [0, 1, 2].flatMap((seed) => [
    ...crossingAt({ variant: "base" }, seed, 3.5),
    ...flat({ variant: "instruct" }, seed),
  ]);
  const c = claim(computeClaims(pts), "F2");
  close(c.values[0]?.estimate.mean ?? null, 5.5, 1e-9);
  assert.equal(c.values[0]?.censored, 3);
  assert.equal(c.verdict, "holds");
  assert.match(c.reason, /3 of the N90s behind it are censored/);
  // a second size where neither variant ever falls: left out, the verdict unchanged
  const blind = [0, 1, 2].flatMap((seed) => [
    ...flat({ size: "L", variant: "base" }, seed),
    ...flat({ size: "L", variant: "instruct" }, seed),
  ]);
  const c2 = claim(computeClaims([...pts, ...blind]), "F2");
  close(c2.values[0]?.estimate.mean ?? null, 5.5, 1e-9);
  assert.match(c2.reason, /Left out .*L · M/);
  // only blind units: inconclusive
  const c3 = claim(computeClaims(blind), "F2");
  assert.equal(c3.verdict, "inconclusive");
  assert.match(c3.reason, /grid cannot tell/);
  // no instruct model at all
  assert.equal(claim(computeClaims(crossingAt({}, 0, 3)), "F2").verdict, "inconclusive");
});

// F3 ---------------------------------------------------------------------------------------------------

/** Three sizes 2^20, 2^21, 2^22 parameters; per seed log2 N90 = 3 + slope · (log2 params - 20). */
function f3Points(slopes: number[], variant: StudyVariant = "base"): StudyPoint[] {
  return slopes.flatMap((s, seed) =>
    [20, 21, 22].flatMap((lp) =>
      crossingAt({ size: `2^${lp}`, params: 2 ** lp, variant }, seed, 3 + s * (lp - 20) + 1),
    ),
  );
}

test("F3 holds: the slope of log2 N90 against log2 parameters is positive (hand-computed)", () => {
  // slopes [1, 1.25, 1.5]: mean 1.25, sd 0.25
  const c = claim(computeClaims(f3Points([1, 1.25, 1.5])), "F3");
  assert.equal(c.verdict, "holds");
  const v = c.values.find((x) => x.group === "M · base");
  close(v?.estimate.mean ?? null, 1.25, 1e-9);
  close(v?.estimate.lo ?? null, 1.25 - 0.25 * HW3, 1e-9);
  close(c.values[0]?.estimate.mean ?? null, 1.25, 1e-9); // pooled = the one line
});

test("F3 does not hold: a negative slope, or a mean <= 0 that excludes a meaningful slope", () => {
  assert.equal(claim(computeClaims(f3Points([-1, -1.25, -1.5])), "F3").verdict, "does not hold");
  // zero spread: [-0.2, -0.2, -0.2] -> the interval is the point -0.2, below 0
  assert.equal(claim(computeClaims(f3Points([-0.2, -0.2, -0.2])), "F3").verdict, "does not hold");
  // [0, 0.02, -0.02]: [-0.0497, 0.0497] < minSlope 0.25
  assert.equal(claim(computeClaims(f3Points([0, 0.02, -0.02])), "F3").verdict, "does not hold");
});

test("F3 inconclusive: the interval contains 0 and a meaningful slope; every size censored; one size", () => {
  assert.equal(claim(computeClaims(f3Points([0, 0.25, -0.25])), "F3").verdict, "inconclusive");
  const censored = [0, 1, 2].flatMap((seed) =>
    [20, 21, 22].flatMap((lp) => flat({ size: `2^${lp}`, params: 2 ** lp }, seed)),
  );
  const c = claim(computeClaims(censored), "F3");
  assert.equal(c.verdict, "inconclusive");
  assert.match(c.groups[0]?.reason ?? "", /all censored/);
  const oneSize = [0, 1, 2].flatMap((seed) => crossingAt({}, seed, 3));
  assert.match(claim(computeClaims(oneSize), "F3").groups[0]?.reason ?? "", /fewer than two sizes/);
});

test("F3 pooled over (method, variant) lines; a censored largest size is a lower bound", () => {
  // base slopes [1, 1.25, 1.5] and instruct [0, 0.25, 0.5]: per seed means [0.5, 0.75, 1.0]
  const c = claim(
    computeClaims([...f3Points([1, 1.25, 1.5]), ...f3Points([0, 0.25, 0.5], "instruct")]),
    "F3",
  );
  close(c.values[0]?.estimate.mean ?? null, 0.75, 1e-9);
  close(c.values[0]?.estimate.hi ?? null, 0.75 + 0.25 * HW3, 1e-9);
  // largest size censored (log2 = 9), others at 4 and 5: slope = (9 - 4) / 2 = 2.5 per seed
  const pts = [0, 1, 2].flatMap((seed) => [
    ...crossingAt({ size: "a", params: 2 ** 20 }, seed, 4),
    ...crossingAt({ size: "b", params: 2 ** 21 }, seed, 5),
    ...flat({ size: "c", params: 2 ** 22 }, seed),
  ]);
  const d = claim(computeClaims(pts), "F3");
  close(d.values[1]?.estimate.mean ?? null, 2.5, 1e-9);
  assert.equal(d.values[1]?.censored, 3);
});

// F4 ---------------------------------------------------------------------------------------------------

/** Aligned model, 3 seeds: relative safety 1 - drop[i] at N = 100, and 1 - drop/2 at N = 10. */
function f4Points(drops: number[], variant: StudyVariant = "aligned"): StudyPoint[] {
  return drops.flatMap((d, seed) =>
    curve({ variant }, seed, [
      [10, 0.95, 1 - d / 2],
      [100, 0.5, 1 - d],
    ]),
  );
}

test("F4 holds: the aligned models' safety drop at the largest N lies above 0 (hand-computed)", () => {
  // drops [0.1, 0.15, 0.2]: mean 0.15, sd 0.05 -> [0.0258, 0.2742]
  const c = claim(computeClaims(f4Points([0.1, 0.15, 0.2])), "F4");
  assert.equal(c.verdict, "holds");
  const v = c.values[0];
  assert.match(v?.quantity ?? "", /N = 100/);
  close(v?.estimate.mean ?? null, 0.15, 1e-12);
  close(v?.estimate.lo ?? null, 0.15 - 0.05 * HW3, 1e-9);
  // the curve: at N = 10 the drop is half: 0.075
  const at10 = c.values.find((x) => x.group === "all methods (curve)" && /N = 10$/.test(x.quantity));
  close(at10?.estimate.mean ?? null, 0.075, 1e-12);
  // a stated N: at N = 10, drops [0.05, 0.075, 0.1]: mean 0.075, sd 0.025 -> lo 0.075 - 0.0621 > 0
  const c10 = claim(computeClaims(f4Points([0.1, 0.15, 0.2]), { f4: { edits: 10 } }), "F4");
  close(c10.values[0]?.estimate.lo ?? null, 0.075 - 0.025 * HW3, 1e-9);
  assert.equal(c10.verdict, "holds");
});

test("F4 does not hold: the interval excludes a drop of 5% or more", () => {
  // drops [0, 0.01, -0.01]: [-0.0248, 0.0248] < 0.05
  const c = claim(computeClaims(f4Points([0, 0.01, -0.01])), "F4");
  assert.equal(c.verdict, "does not hold");
  assert.match(c.reason, /excludes a drop of 0.05/);
});

test("F4 inconclusive: the interval contains 0 and 5%; no aligned model; no safety score; an unmeasured N", () => {
  // drops [0, 0.05, 0.1]: [-0.0742, 0.1742]
  assert.equal(claim(computeClaims(f4Points([0, 0.05, 0.1])), "F4").verdict, "inconclusive");
  const base = claim(computeClaims(f4Points([0.1, 0.15, 0.2], "base")), "F4");
  assert.equal(base.verdict, "inconclusive");
  assert.match(base.reason, /no aligned model/);
  // the base models' drop is tested with variant "base"
  assert.equal(
    claim(computeClaims(f4Points([0.1, 0.15, 0.2], "base"), { f4: { variant: "base" } }), "F4").verdict,
    "holds",
  );
  const noSafety = claim(computeClaims(f1Points([0.95, 0.97, 0.99], [0.25, 0.3, 0.35])), "F4");
  assert.match(noSafety.reason, /no safety score/);
  const unmeasured = claim(computeClaims(f4Points([0.1, 0.15, 0.2]), { f4: { edits: 50 } }), "F4");
  assert.equal(unmeasured.verdict, "inconclusive");
  assert.match(unmeasured.groups[0]?.reason ?? "", /N = 50 is not measured/);
});

test("every claim has one of the three verdicts, its thresholds, and says how its intervals are computed", () => {
  const cs = computeClaims([...f2Points([1, 1.25, 1.5]), ...f4Points([0.1, 0.15, 0.2])]);
  assert.deepEqual(
    cs.map((c) => c.id),
    ["F1", "F2", "F3", "F4"],
  );
  for (const c of cs) {
    assert.ok(["holds", "does not hold", "inconclusive"].includes(c.verdict));
    assert.match(c.interval, /95% Student-t interval over seeds/);
    assert.ok(Object.keys(c.thresholds).length > 0);
  }
  const boot = computeClaims(f2Points([1, 1.25, 1.5]), { interval: "bootstrap", resamples: 500 });
  assert.match(claim(boot, "F2").interval, /bootstrap over seeds/);
  assert.throws(() => computeClaims([]), /no points/);
  assert.throws(() => computeClaims(f2Points([1, 1, 1]), { level: 95 }), /level/);
});

test("n90Summaries: per (method, model) the interval of log2(1 + N90) mapped back; censoring counted", () => {
  const pts = [...f2Points([1, 1.25, 1.5]), ...[0, 1, 2].flatMap((s) => flat({ variant: "aligned" }, s))];
  const sums = n90Summaries(pts);
  const inst = sums.find((s) => s.variant === "instruct");
  // log2 values 4.5, 4.75, 5: mean 4.75 -> N90 = 2^4.75 - 1
  close(inst?.n90 ?? null, 2 ** 4.75 - 1, 1e-9);
  close(inst?.lo ?? null, 2 ** (4.75 - 0.25 * HW3) - 1, 1e-9);
  const al = sums.find((s) => s.variant === "aligned");
  assert.equal(al?.censored, 3);
  assert.equal(al?.n90, 511);
  assert.equal(curveN90s(pts).length, 9);
});

// ---------------------------------------------------------------------------------------------------
// studyPoints

const MODELS: Record<string, StudyModel> = {
  small: { size: "S", params: 1e6, variant: "base" },
  "small-it": { size: "S", params: 1e6, variant: "instruct" },
};

/** The rows of one point: general tasks with values g, safety tasks with values s. */
function rowsOf(
  model: string,
  method: string,
  edits: number,
  seed: number,
  g: number[],
  s: number[],
): ResultRow[] {
  const schedule = method === "unedited" ? "none" : "sequential";
  return [
    ...GENERAL_TASKS.map((t, i) => ({
      model,
      method,
      schedule,
      edits,
      seed,
      benchmark: t.benchmark,
      // the runner writes filtered metrics as "exact_match,extract"
      metric: t.metric === "exact_match" ? "exact_match,extract" : t.metric,
      value: g[i] as number,
    })),
    ...SAFETY_TASKS.map((t, i) => ({
      model,
      method,
      schedule,
      edits,
      seed,
      benchmark: t.benchmark,
      metric: t.metric,
      value: s[i] as number,
    })),
    { model, method, schedule, edits, seed, benchmark: "edit/reliability", metric: "acc", value: 0.5 },
  ];
}

test("studyPoints: general and safety scores are task means, relative to the unedited model; a 0-edit point per curve", () => {
  const rows = [
    ...rowsOf("small", "unedited", 0, 0, [0.8, 0.4, 0.6, 0.6], [0.9, 0.6, 0.3]),
    ...rowsOf("small", "ROME", 10, 0, [0.4, 0.2, 0.3, 0.3], [0.6, 0.6, 0]),
    ...rowsOf("small", "ROME", 10, 1, [0.8, 0.4, 0.6, 0.2], [0.9, 0.6, 0.3]),
  ];
  const pts = studyPoints(rows, MODELS);
  assert.equal(pts.length, 4); // (0, 10) x 2 seeds
  const p = pts.find((x) => x.seed === 0 && x.edits === 10) as StudyPoint;
  // unedited general (0.8 + 0.4 + 0.6 + 0.6) / 4 = 0.6, safety 1.8 / 3 = 0.6; edited 1.2 / 4 = 0.3, 1.2 / 3 = 0.4
  close(p.general, 0.3, 1e-12);
  close(p.generalRel, 0.5, 1e-12);
  close(p.safety, 0.4, 1e-12);
  close(p.safetyRel, 0.4 / 0.6, 1e-12);
  assert.equal(p.variant, "base");
  assert.equal(p.size, "S");
  const p0 = pts.find((x) => x.seed === 1 && x.edits === 0) as StudyPoint;
  assert.equal(p0.generalRel, 1);
  close(p0.general, 0.6, 1e-12);
  assert.equal(p0.method, "ROME");
  // without safety tasks: safety null
  const noSafety = studyPoints(rows, MODELS, { safety: [] });
  assert.equal(noSafety[0]?.safety, null);
  // configurable tasks
  const one = studyPoints(rows, MODELS, {
    general: [{ benchmark: "world_knowledge_mc_cloze", metric: "acc" }],
    safety: [],
  });
  close(one.find((x) => x.seed === 0 && x.edits === 10)?.generalRel ?? null, 0.5, 1e-12);
});

test("studyPoints: a method under several schedules is labelled by schedule; a schedule filter keeps one", () => {
  const rows = [
    ...rowsOf("small", "unedited", 0, 0, [0.8, 0.4, 0.6, 0.6], [0.9, 0.6, 0.3]),
    ...rowsOf("small", "MEMIT", 10, 0, [0.4, 0.2, 0.3, 0.3], [0.6, 0.6, 0]),
    ...rowsOf("small", "MEMIT", 10, 0, [0.8, 0.4, 0.6, 0.2], [0.9, 0.6, 0.3]).map((r) => ({
      ...r,
      schedule: "batch-10",
    })),
  ];
  assert.deepEqual(
    [...new Set(studyPoints(rows, MODELS).map((p) => p.method))],
    ["MEMIT (sequential)", "MEMIT (batch-10)"],
  );
  const seq = studyPoints(rows, MODELS, { schedule: "sequential" });
  assert.deepEqual([...new Set(seq.map((p) => p.method))], ["MEMIT"]);
});

test("studyPoints: clear errors for an unknown model, a model without unedited rows, a missing task, bad model info", () => {
  const unedited = rowsOf("small", "unedited", 0, 0, [0.8, 0.4, 0.6, 0.6], [0.9, 0.6, 0.3]);
  const edited = rowsOf("small", "ROME", 10, 0, [0.4, 0.2, 0.3, 0.3], [0.6, 0.6, 0]);
  assert.throws(
    () => studyPoints([...unedited, ...rowsOf("big", "ROME", 10, 0, [1, 1, 1, 1], [1, 1, 1])], MODELS),
    (e: Error) =>
      e instanceof StudyInputError &&
      /unknown model 'big'/.test(e.message) &&
      /'small', 'small-it'/.test(e.message),
  );
  assert.throws(
    () =>
      studyPoints(
        [...unedited, ...edited, ...rowsOf("small-it", "ROME", 10, 0, [1, 1, 1, 1], [1, 1, 1])],
        MODELS,
      ),
    /model 'small-it' has edited rows but no unedited rows/,
  );
  const missing = edited.filter((r) => r.benchmark !== "world_reasoning");
  assert.throws(
    () => studyPoints([...unedited, ...missing], MODELS),
    /model 'small', ROME, seed 0, 10 edits: no row of benchmark 'world_reasoning'/,
  );
  const noSafety = [...unedited, ...edited].filter((r) => !r.benchmark.startsWith("world_safety"));
  assert.throws(
    () => studyPoints(noSafety, MODELS),
    /no row of 'world_safety_classify', 'world_safety_refusal' \(a safety task\).*\[\] for no safety score/,
  );
  const ambiguous = [...unedited, ...edited, { ...(edited[1] as ResultRow), metric: "exact_match,strict" }];
  assert.throws(
    () => studyPoints(ambiguous, MODELS),
    /ambiguous \(exact_match,extract, exact_match,strict\)/,
  );
  assert.throws(
    () => studyPoints(unedited, { small: { size: "S", params: 1e6, variant: "chat" as StudyVariant } }),
    /models\['small'\]\.variant/,
  );
  assert.throws(
    () => studyPoints(unedited, { small: { size: "S", params: 0, variant: "base" } }),
    /models\['small'\]\.params/,
  );
  assert.throws(
    () =>
      studyPoints(unedited, {
        a: { size: "S", params: 1, variant: "base" },
        small: { size: "S", params: 1, variant: "base" },
      }),
    /both size S, base/,
  );
  assert.throws(() => studyPoints(unedited, MODELS), /no edited rows/);
  const zero = rowsOf("small", "unedited", 0, 0, [0, 0, 0, 0], [0.9, 0.6, 0.3]);
  assert.throws(() => studyPoints([...zero, ...edited], MODELS), /general score is 0/);
});

test("studyPoints then computeClaims: rows to verdicts end to end", () => {
  // base falls below 0.9 at N = 10 (0.8 relative), instruct stays at 1 until N = 100 (0.5)
  const rows: ResultRow[] = [];
  const g = (x: number) => [x, x, x, x];
  const s = [0.5, 0.5, 0.5];
  rows.push(
    ...rowsOf("small", "unedited", 0, 0, g(0.6), s),
    ...rowsOf("small-it", "unedited", 0, 0, g(0.6), s),
  );
  for (const seed of [0, 1, 2]) {
    rows.push(
      ...rowsOf("small", "ROME", 1, seed, g(0.6), s),
      ...rowsOf("small", "ROME", 10, seed, g(0.48), s),
    );
    rows.push(...rowsOf("small", "ROME", 100, seed, g(0.06 + 0.01 * seed), s));
    rows.push(
      ...rowsOf("small-it", "ROME", 1, seed, g(0.6), s),
      ...rowsOf("small-it", "ROME", 10, seed, g(0.6), s),
    );
    rows.push(...rowsOf("small-it", "ROME", 100, seed, g(0.3), s));
  }
  const cs = computeClaims(studyPoints(rows, MODELS));
  // base: between 1 (1.0) and 10 (0.8): t = 0.5, u = (1 + log2 11) / 2; instruct: between 10 (1.0) and 100 (0.5): t = 0.2
  const uBase = (1 + Math.log2(11)) / 2;
  const uInst = Math.log2(11) + 0.2 * (Math.log2(101) - Math.log2(11));
  const f2 = claim(cs, "F2");
  close(f2.values[0]?.estimate.mean ?? null, uInst - uBase, 1e-9);
  close(f2.values[0]?.estimate.sd ?? null, 0, 1e-12);
  assert.equal(f2.verdict, "holds");
  assert.equal(claim(cs, "F4").verdict, "inconclusive"); // no aligned model
});
