// Optimisers against hand-computed Adam/AdamW steps (torch's update rule, written out in float64).
import { test } from "node:test";
import assert from "node:assert/strict";
import * as torch from "../../src/torch/index.js";
import { assertClose } from "../helpers.js";

/** Reference Adam on plain numbers for the loss sum(c * p^2) (gradient 2 c p). */
function referenceAdam(
  p0: number[],
  c: number[],
  steps: number,
  o: { lr: number; b1: number; b2: number; eps: number; wd: number; decoupled: boolean },
) {
  const p = p0.slice();
  const m = p.map(() => 0);
  const v = p.map(() => 0);
  for (let t = 1; t <= steps; t++) {
    for (let i = 0; i < p.length; i++) {
      let g = 2 * (c[i] as number) * (p[i] as number);
      if (o.wd !== 0) {
        if (o.decoupled) p[i] = (p[i] as number) * (1 - o.lr * o.wd);
        else g += o.wd * (p[i] as number);
      }
      m[i] = (m[i] as number) * o.b1 + (1 - o.b1) * g;
      v[i] = (v[i] as number) * o.b2 + (1 - o.b2) * g * g;
      const denom = Math.sqrt(v[i] as number) / Math.sqrt(1 - o.b2 ** t) + o.eps;
      p[i] = (p[i] as number) - (o.lr / (1 - o.b1 ** t)) * ((m[i] as number) / denom);
    }
  }
  return p;
}

for (const [name, decoupled, wd] of [
  ["Adam", false, 0],
  ["Adam with L2 weight decay", false, 0.1],
  ["AdamW", true, 0.05],
] as const) {
  test(`${name} follows torch's update rule for 5 steps`, () => {
    const p0 = [1.5, -0.5, 0.25];
    const c = [1, 3, -2];
    const param = torch.tensor(p0, { dtype: "float64", requiresGrad: true });
    const opts = { lr: 0.1, betas: [0.9, 0.999] as [number, number], eps: 1e-8, weightDecay: wd };
    const opt = decoupled ? new torch.optim.AdamW([param], opts) : new torch.optim.Adam([param], opts);
    const coef = torch.tensor(c, { dtype: "float64" });
    for (let s = 0; s < 5; s++) {
      opt.zeroGrad();
      torch.scope(() => coef.mul(param.square()).sum().backward());
      opt.step();
    }
    const expected = referenceAdam(p0, c, 5, { lr: 0.1, b1: 0.9, b2: 0.999, eps: 1e-8, wd, decoupled });
    assertClose(param.toNumbers(), expected, 1e-14);
    opt.free();
    param.free();
    coef.free();
  });
}

test("the first Adam step moves each parameter by lr * g / (|g| + eps)", () => {
  const param = torch.tensor([2, -3], { dtype: "float64", requiresGrad: true });
  const opt = new torch.optim.Adam([param], { lr: 0.5 });
  torch.scope(() => param.sum().backward()); // g = 1
  opt.step();
  assertClose(param.toNumbers(), [2 - 0.5 / (1 + 1e-8), -3 - 0.5 / (1 + 1e-8)], 1e-15);
  assert.throws(() => new torch.optim.Adam([torch.zeros(2)]), /requiresGrad/);
  opt.free();
  param.free();
});

test("SGD with momentum", () => {
  const param = torch.tensor([1], { dtype: "float64", requiresGrad: true });
  const opt = new torch.optim.SGD([param], 0.1, 0.9);
  for (let s = 0; s < 2; s++) {
    opt.zeroGrad();
    torch.scope(() => param.square().sum().backward());
    opt.step();
  }
  // step 1: g=2, buf=2, p=0.8; step 2: g=1.6, buf=0.9*2+1.6=3.4, p=0.8-0.34=0.46
  assertClose(param.toNumbers(), [0.46], 1e-15);
  opt.free();
  param.free();
});
