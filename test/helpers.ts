/**
 * Test helpers: paths to shared data and fixtures, float comparison, and a finite-difference
 * gradient checker (float64 central differences, the oracle for every differentiable op).
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { dirname, join, resolve } from "node:path";
import { existsSync } from "node:fs";
import * as torch from "../src/torch/index.js";

function repoRoot(): string {
  let d = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    if (existsSync(join(d, "package.json")) && existsSync(join(d, "native"))) return d;
    d = resolve(d, "..");
  }
  throw new Error("test helpers: repository root not found");
}
export const ROOT = repoRoot();
export const SHARED = process.env.EDITEVAL_SHARED ?? resolve(ROOT, "..", "shared");
export const FIXTURES = join(SHARED, "fixtures");
export const DATA = join(SHARED, "data");
export const TEST_FIXTURES = join(ROOT, "test", "fixtures");

export function assertClose(
  actual: ArrayLike<number> | number,
  expected: ArrayLike<number> | number,
  tol = 1e-6,
  what = "value",
): void {
  const a = typeof actual === "number" ? [actual] : Array.from(actual);
  const e = typeof expected === "number" ? [expected] : Array.from(expected);
  assert.equal(a.length, e.length, `${what}: length ${a.length} != ${e.length}`);
  for (let i = 0; i < a.length; i++) {
    const x = a[i] as number;
    const y = e[i] as number;
    if (Number.isNaN(y)) {
      assert.ok(Number.isNaN(x), `${what}[${i}]: expected NaN, got ${x}`);
      continue;
    }
    const err = Math.abs(x - y);
    assert.ok(
      err <= tol * Math.max(1, Math.abs(y)),
      `${what}[${i}]: ${x} vs expected ${y} (|diff| ${err} > ${tol})`,
    );
  }
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs((a[i] as number) - (b[i] as number)));
  return m;
}

/**
 * Checks autograd's gradient of sum(w * fn(inputs)) (w fixed random weights) against float64 central
 * differences, for every input that requires grad.
 */
export function gradcheck(
  fn: (...xs: torch.Tensor[]) => torch.Tensor,
  inputs: torch.Tensor[],
  opts: { eps?: number; tol?: number; name?: string } = {},
): void {
  const eps = opts.eps ?? 1e-6;
  const tol = opts.tol ?? 1e-5;
  const name = opts.name ?? "gradcheck";
  torch.scope(() => {
    const xs = inputs.map((x) =>
      x
        .detach()
        .clone()
        .requiresGrad_(x.requiresGrad || x.dtype === "float64"),
    );
    const out0 = fn(...xs);
    const w = torch.randn(out0.shape, { dtype: "float64", generator: new torch.Generator(123) });
    out0.mul(w).sum().backward();
    const objective = (vals: torch.Tensor[]): number =>
      torch.noGrad(() =>
        torch.scope(() =>
          fn(...vals)
            .mul(w)
            .sum()
            .item(),
        ),
      );
    xs.forEach((x, k) => {
      if (!x.requiresGrad) return;
      const g = x.grad;
      assert.ok(g !== null, `${name}: input ${k} got no gradient`);
      const analytic = g.toNumbers();
      const base = x.detach().clone();
      const flat = base.toNumbers();
      const numeric: number[] = [];
      for (let i = 0; i < flat.length; i++) {
        const probe = (delta: number): number => {
          const v = flat.slice();
          v[i] = (v[i] as number) + delta;
          const pert = torch.tensor(v, { dtype: "float64", shape: base.shape });
          const vals = xs.map((y, j) => (j === k ? pert : y.detach()));
          return objective(vals);
        };
        numeric.push((probe(eps) - probe(-eps)) / (2 * eps));
      }
      assertClose(analytic, numeric, tol, `${name} d/dinput${k}`);
    });
  });
}
