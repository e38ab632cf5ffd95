// Every op against an independent value: hand-computed numbers or a plain-JavaScript float64 formula.
import { test } from "node:test";
import assert from "node:assert/strict";
import * as torch from "../../src/torch/index.js";
import { assertClose } from "../helpers.js";

const { F } = torch;
const f64 = (data: number[] | number[][], shape?: number[]) =>
  torch.tensor(data, shape ? { dtype: "float64", shape } : { dtype: "float64" });

/** erf by its Maclaurin series (converges to double precision for |x| <= 3 with enough terms). */
function erf(x: number): number {
  let sum = 0;
  let term = x;
  for (let n = 0; n < 200; n++) {
    sum += term / (2 * n + 1);
    term *= (-x * x) / (n + 1);
  }
  return (2 / Math.sqrt(Math.PI)) * sum;
}

const xs = [-2.5, -1, -0.3, 0, 0.4, 1, 2.2];

test("elementwise math matches Math.*", () => {
  torch.scope(() => {
    const x = f64(xs);
    const pos = f64(xs.map((v) => Math.abs(v) + 0.5));
    assertClose(x.exp().toNumbers(), xs.map(Math.exp), 1e-15);
    assertClose(
      pos.log().toNumbers(),
      xs.map((v) => Math.log(Math.abs(v) + 0.5)),
      1e-15,
    );
    assertClose(
      pos.sqrt().toNumbers(),
      xs.map((v) => Math.sqrt(Math.abs(v) + 0.5)),
      1e-15,
    );
    assertClose(
      pos.rsqrt().toNumbers(),
      xs.map((v) => 1 / Math.sqrt(Math.abs(v) + 0.5)),
      1e-15,
    );
    assertClose(x.log1p().index("3:").toNumbers(), xs.slice(3).map(Math.log1p), 1e-15);
    assertClose(x.tanh().toNumbers(), xs.map(Math.tanh), 1e-15);
    assertClose(x.sin().toNumbers(), xs.map(Math.sin), 1e-15);
    assertClose(x.cos().toNumbers(), xs.map(Math.cos), 1e-15);
    assertClose(
      x.sigmoid().toNumbers(),
      xs.map((v) => 1 / (1 + Math.exp(-v))),
      1e-15,
    );
    assertClose(
      x.relu().toNumbers(),
      xs.map((v) => Math.max(0, v)),
      0,
    );
    assertClose(x.abs().toNumbers(), xs.map(Math.abs), 0);
    assertClose(
      x.neg().toNumbers(),
      xs.map((v) => -v),
      0,
    );
    assertClose(x.sign().toNumbers(), xs.map(Math.sign), 0);
    assertClose(
      x.square().toNumbers(),
      xs.map((v) => v * v),
      1e-15,
    );
    assertClose(
      pos.reciprocal().toNumbers(),
      xs.map((v) => 1 / (Math.abs(v) + 0.5)),
      1e-15,
    );
    assertClose(x.erf().toNumbers(), xs.map(erf), 1e-13);
    assertClose(x.floor().toNumbers(), xs.map(Math.floor), 0);
    assertClose(x.ceil().toNumbers(), xs.map(Math.ceil), 0);
    assertClose(f64([0.5, 1.5, 2.5, -0.5]).round().toNumbers(), [0, 2, 2, -0], 0); // round half to even
    assertClose(
      x.clamp(-1, 1).toNumbers(),
      xs.map((v) => Math.min(1, Math.max(-1, v))),
      0,
    );
    assertClose(
      x.clamp(0).toNumbers(),
      xs.map((v) => Math.max(0, v)),
      0,
    );
    assertClose(
      x.pow(2).toNumbers(),
      xs.map((v) => v ** 2),
      1e-15,
    );
    assertClose(
      pos.pow(0.5).toNumbers(),
      xs.map((v) => (Math.abs(v) + 0.5) ** 0.5),
      1e-15,
    );
    assertClose(
      x.remainder(1).toNumbers(),
      xs.map((v) => v - Math.floor(v)),
      1e-15,
    ); // Python-style modulo
    assertClose(
      torch.atan2(x, pos).toNumbers(),
      xs.map((v) => Math.atan2(v, Math.abs(v) + 0.5)),
      1e-15,
    );
  });
});

test("activations: gelu (both forms), silu", () => {
  torch.scope(() => {
    const x = f64(xs);
    const exact = xs.map((v) => 0.5 * v * (1 + erf(v / Math.SQRT2)));
    const tanhForm = xs.map(
      (v) => 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3))),
    );
    assertClose(F.gelu(x).toNumbers(), exact, 1e-13);
    assertClose(F.gelu(x, "tanh").toNumbers(), tanhForm, 1e-13);
    assertClose(
      F.silu(x).toNumbers(),
      xs.map((v) => v / (1 + Math.exp(-v))),
      1e-15,
    );
  });
});

test("binary ops broadcast; integral numbers keep integer dtypes", () => {
  torch.scope(() => {
    const a = f64([
      [1, 2],
      [3, 4],
    ]);
    const b = f64([10, 20]);
    assert.deepEqual(a.add(b).tolist(), [
      [11, 22],
      [13, 24],
    ]);
    assert.deepEqual(a.add(b, 2).toNumbers(), [21, 42, 23, 44]);
    assert.deepEqual(a.sub(b).toNumbers(), [-9, -18, -7, -16]);
    assert.deepEqual(a.rsub(1).toNumbers(), [0, -1, -2, -3]);
    assert.deepEqual(a.mul(b).toNumbers(), [10, 40, 30, 80]);
    assert.deepEqual(a.div(2).toNumbers(), [0.5, 1, 1.5, 2]);
    assert.deepEqual(a.maximum(f64([2.5])).toNumbers(), [2.5, 2.5, 3, 4]);
    assert.deepEqual(a.minimum(f64([2.5])).toNumbers(), [1, 2, 2.5, 2.5]);
    const i = torch.tensor([1, 2], { dtype: "int64" });
    assert.equal(i.add(1).dtype, "int64");
    assert.equal(i.mul(0.5).dtype, "float32");
    assert.deepEqual(a.lerp(f64([0, 0, 0, 0], [2, 2]), 0.25).toNumbers(), [0.75, 1.5, 2.25, 3]);
  });
});

test("comparisons, logic, where, masked fill", () => {
  torch.scope(() => {
    const x = f64([1, 2, 3, NaN]);
    assert.deepEqual(x.gt(1.5).tolist(), [false, true, true, false]);
    assert.deepEqual(x.ge(2).tolist(), [false, true, true, false]);
    assert.deepEqual(x.lt(2).tolist(), [true, false, false, false]);
    assert.deepEqual(x.le(2).tolist(), [true, true, false, false]);
    assert.deepEqual(x.eq(2).tolist(), [false, true, false, false]);
    assert.deepEqual(x.ne(2).tolist(), [true, false, true, true]);
    assert.deepEqual(x.isnan().tolist(), [false, false, false, true]);
    assert.deepEqual(x.isfinite().tolist(), [true, true, true, false]);
    assert.deepEqual(f64([Infinity, 1]).isinf().tolist(), [true, false]);
    const m = torch.tensor([true, false, true, false]);
    assert.deepEqual(m.logicalNot().tolist(), [false, true, false, true]);
    assert.deepEqual(m.logicalAnd(torch.tensor([true, true, false, false])).tolist(), [
      true,
      false,
      false,
      false,
    ]);
    assert.deepEqual(m.logicalOr(torch.tensor([false, true, false, false])).tolist(), [
      true,
      true,
      true,
      false,
    ]);
    assert.equal(m.any().item(), 1);
    assert.equal(m.all().item(), 0);
    assert.deepEqual(torch.where(m, x, -1).toNumbers(), [1, -1, 3, -1]);
    assert.deepEqual(torch.where(m, 5, x).toNumbers().slice(0, 3), [5, 2, 5]);
    assert.deepEqual(f64([1, 2, 3, 4]).maskedFill(m, -Infinity).toNumbers(), [-Infinity, 2, -Infinity, 4]);
  });
});

test("reductions: sum, mean, prod, var/std (Bessel), max/min, argmax, logsumexp, norms, cumsum", () => {
  torch.scope(() => {
    const a = f64([
      [1, 2, 3],
      [4, 5, 9],
    ]);
    assert.equal(a.sum().item(), 24);
    assert.deepEqual(a.sum(0).toNumbers(), [5, 7, 12]);
    assert.deepEqual(a.sum(1, true).shape, [2, 1]);
    assert.deepEqual(a.sum([0, 1]).toNumbers(), [24]);
    assert.deepEqual(a.mean(1).toNumbers(), [2, 6]);
    assert.equal(a.prod().item(), 1080);
    assert.deepEqual(a.prod(1).toNumbers(), [6, 180]);
    // variance of [4,5,9]: mean 6, squared deviations 4+1+9=14; unbiased 7, biased 14/3
    assertClose(a.var(1).toNumbers(), [1, 7], 1e-15);
    assertClose(a.var(1, { correction: 0 }).toNumbers(), [2 / 3, 14 / 3], 1e-15);
    assertClose(a.std(1).toNumbers(), [1, Math.sqrt(7)], 1e-15);
    assert.equal(a.max().item(), 9);
    assert.equal(a.min().item(), 1);
    const { values, indices } = a.maxDim(1);
    assert.deepEqual(values.toNumbers(), [3, 9]);
    assert.deepEqual(indices.toNumbers(), [2, 2]);
    assert.deepEqual(a.minDim(0).indices.toNumbers(), [0, 0, 0]);
    assert.deepEqual(a.argmax(1).toNumbers(), [2, 2]);
    assert.equal(a.argmax().item(), 5);
    assert.deepEqual(a.argmin(1).toNumbers(), [0, 0]);
    assert.deepEqual(a.amax(0).toNumbers(), [4, 5, 9]);
    assert.deepEqual(a.amin(1).toNumbers(), [1, 4]);
    assertClose(
      a.logsumexp(1).toNumbers(),
      [Math.log(Math.E + Math.E ** 2 + Math.E ** 3), Math.log(Math.E ** 4 + Math.E ** 5 + Math.E ** 9)],
      1e-15,
    );
    assertClose(f64([3, 4]).norm().item(), 5, 1e-15);
    assertClose(f64([3, -4]).norm(1).item(), 7, 1e-15);
    assertClose(a.norm(2, 1).toNumbers(), [Math.sqrt(14), Math.sqrt(122)], 1e-15);
    assert.deepEqual(a.cumsum(1).toNumbers(), [1, 3, 6, 4, 9, 18]);
    assert.equal(torch.tensor([1, 2], { dtype: "int64" }).cumsum(0).dtype, "int64");
  });
});

test("topk, sort, argsort, triu, tril, diagonal, diag", () => {
  torch.scope(() => {
    const x = f64([3, 1, 4, 1, 5, 9, 2, 6]);
    const { values, indices } = x.topk(3);
    assert.deepEqual(values.toNumbers(), [9, 6, 5]);
    assert.deepEqual(indices.toNumbers(), [5, 7, 4]);
    assert.deepEqual(x.topk(2, -1, false).values.toNumbers(), [1, 1]);
    const s = x.sort();
    assert.deepEqual(s.values.toNumbers(), [1, 1, 2, 3, 4, 5, 6, 9]);
    assert.deepEqual(s.indices.toNumbers(), [1, 3, 6, 0, 2, 4, 7, 5]); // stable: the two 1s keep order
    assert.deepEqual(x.argsort(-1, true).toNumbers().slice(0, 2), [5, 7]);
    const m = f64([1, 2, 3, 4, 5, 6, 7, 8, 9], [3, 3]);
    assert.deepEqual(m.triu().toNumbers(), [1, 2, 3, 0, 5, 6, 0, 0, 9]);
    assert.deepEqual(m.triu(1).toNumbers(), [0, 2, 3, 0, 0, 6, 0, 0, 0]);
    assert.deepEqual(m.tril(-1).toNumbers(), [0, 0, 0, 4, 0, 0, 7, 8, 0]);
    assert.deepEqual(m.diagonal().toNumbers(), [1, 5, 9]);
    assert.deepEqual(torch.diag(f64([1, 2])).toNumbers(), [1, 0, 0, 2]);
  });
});

test("matrix products: matmul (batched, broadcast), mm, bmm, dot, outer, addmm, baddbmm, linear", () => {
  torch.scope(() => {
    const a = f64([
      [1, 2],
      [3, 4],
    ]);
    const b = f64([
      [5, 6],
      [7, 8],
    ]);
    assert.deepEqual(a.matmul(b).tolist(), [
      [19, 22],
      [43, 50],
    ]);
    assert.deepEqual(a.mm(b).toNumbers(), [19, 22, 43, 50]);
    assert.deepEqual(a.matmul(f64([1, 1])).toNumbers(), [3, 7]);
    const batch = torch.stack([a, b]);
    assert.deepEqual(batch.bmm(batch).toNumbers(), [7, 10, 15, 22, 67, 78, 91, 106]);
    assert.deepEqual(batch.matmul(a).shape, [2, 2, 2]);
    assert.equal(
      f64([1, 2, 3])
        .dot(f64([4, 5, 6]))
        .item(),
      32,
    );
    assert.deepEqual(
      f64([1, 2])
        .outer(f64([3, 4, 5]))
        .toNumbers(),
      [3, 4, 5, 6, 8, 10],
    );
    assert.deepEqual(torch.addmm(f64([1, 1]), a, b, 2, 0.5).toNumbers(), [11.5, 13, 23.5, 27]);
    assert.deepEqual(
      torch.baddbmm(torch.zeros([2, 2, 2], { dtype: "float64" }), batch, batch, 1, 2).toNumbers(),
      [14, 20, 30, 44, 134, 156, 182, 212],
    );
    // linear: x W^T + b with W [out, in]
    assert.deepEqual(F.linear(f64([[1, 1]]), a, f64([10, 20])).toNumbers(), [13, 27]);
    assert.deepEqual(F.linear(f64([[1, 1]]), a).toNumbers(), [3, 7]);
  });
});

test("softmax, log-softmax, layer norm, RMS norm", () => {
  torch.scope(() => {
    const v = [1, 2, 3, -1];
    const x = f64(v);
    const z = v.reduce((s, t) => s + Math.exp(t), 0);
    assertClose(
      F.softmax(x, 0).toNumbers(),
      v.map((t) => Math.exp(t) / z),
      1e-15,
    );
    assertClose(
      F.logSoftmax(x, 0).toNumbers(),
      v.map((t) => t - Math.log(z)),
      1e-15,
    );
    assertClose(
      torch.tensor([1, 2], { dtype: "float16" }).softmax(0, "float32").toNumbers(),
      [1 / (1 + Math.E), Math.E / (1 + Math.E)],
      1e-6,
    );
    // layer norm: (x - mean) / sqrt(var_biased + eps) * w + b
    const mean = v.reduce((s, t) => s + t, 0) / 4;
    const varB = v.reduce((s, t) => s + (t - mean) ** 2, 0) / 4;
    const w = [1, 2, 0.5, -1];
    const b = [0, 0.1, 0.2, 0.3];
    const expected = v.map(
      (t, i) => ((t - mean) / Math.sqrt(varB + 1e-5)) * (w[i] as number) + (b[i] as number),
    );
    assertClose(F.layerNorm(x.unsqueeze(0), [4], f64(w), f64(b), 1e-5).toNumbers(), expected, 1e-14);
    const ms = v.reduce((s, t) => s + t * t, 0) / 4;
    assertClose(
      F.rmsNorm(x, f64(w), 1e-6).toNumbers(),
      v.map((t, i) => (w[i] as number) * (t / Math.sqrt(ms + 1e-6))),
      1e-14,
    );
  });
});

test("embedding, gather, scatter, scatterAdd, indexSelect, indexAdd", () => {
  torch.scope(() => {
    const w = f64([0, 1, 10, 11, 20, 21], [3, 2]);
    const ids = torch.tensor([[2, 0]], { dtype: "int64" });
    assert.deepEqual(F.embedding(ids, w).tolist(), [
      [
        [20, 21],
        [0, 1],
      ],
    ]);
    const src = f64([1, 2, 3, 4], [2, 2]);
    const gi = torch.tensor(
      [
        [1, 0],
        [0, 0],
      ],
      { dtype: "int64" },
    );
    assert.deepEqual(src.gather(1, gi).toNumbers(), [2, 1, 3, 3]);
    const zeros = torch.zeros([2, 3], { dtype: "float64" });
    const si = torch.tensor([[2], [0]], { dtype: "int64" });
    assert.deepEqual(zeros.scatter(1, si, 7).toNumbers(), [0, 0, 7, 7, 0, 0]);
    assert.deepEqual(zeros.scatter(1, si, f64([[5], [6]])).toNumbers(), [0, 0, 5, 6, 0, 0]);
    const ai = torch.tensor([[0, 0]], { dtype: "int64" });
    assert.deepEqual(
      torch
        .zeros([1, 2], { dtype: "float64" })
        .scatterAdd(1, ai, f64([[1, 2]]))
        .toNumbers(),
      [3, 0],
    );
    assert.deepEqual(
      w.indexSelect(0, torch.tensor([2, 2], { dtype: "int64" })).toNumbers(),
      [20, 21, 20, 21],
    );
    const base = torch.zeros([3, 2], { dtype: "float64" });
    assert.deepEqual(
      base.indexAdd(0, torch.tensor([0, 0], { dtype: "int64" }), f64([1, 1, 2, 2], [2, 2])).toNumbers(),
      [3, 3, 0, 0, 0, 0],
    );
    base.indexAdd_(0, torch.tensor([1], { dtype: "int64" }), f64([[5, 5]]), 2);
    assert.deepEqual(base.toNumbers(), [0, 0, 10, 10, 0, 0]);
  });
});

test("losses: cross-entropy (ignore index), nll, KL divergence (batchmean)", () => {
  torch.scope(() => {
    const logits = f64([
      [1, 2, 0.5],
      [0.1, -1, 3],
    ]);
    const lse = (r: number[]) => Math.log(r.reduce((s, t) => s + Math.exp(t), 0));
    const l0 = lse([1, 2, 0.5]) - 2;
    const l1 = lse([0.1, -1, 3]) - 0.1;
    const target = torch.tensor([1, 0], { dtype: "int64" });
    assertClose(F.crossEntropy(logits, target).item(), (l0 + l1) / 2, 1e-14);
    assertClose(F.crossEntropy(logits, target, { reduction: "sum" }).item(), l0 + l1, 1e-14);
    assertClose(F.crossEntropy(logits, target, { reduction: "none" }).toNumbers(), [l0, l1], 1e-14);
    assertClose(F.crossEntropy(logits, torch.tensor([1, -100], { dtype: "int64" })).item(), l0, 1e-14);
    assertClose(F.nllLoss(F.logSoftmax(logits, -1), target).item(), (l0 + l1) / 2, 1e-14);
    // KL(p || q) with input = log q, target = p: sum p (log p - log q)
    const p = [0.2, 0.8];
    const q = [0.5, 0.5];
    const kl = p.reduce((s, pi, i) => s + pi * Math.log(pi / (q[i] as number)), 0);
    const logq = f64([q.map(Math.log)]);
    assertClose(F.klDiv(logq, f64([p]), { reduction: "batchmean" }).item(), kl, 1e-14);
    assertClose(
      F.klDiv(logq, f64([p.map(Math.log)]), { reduction: "sum", logTarget: true }).item(),
      kl,
      1e-14,
    );
  });
});
