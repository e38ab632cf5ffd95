// Autograd: every differentiable op's gradient against float64 central finite differences,
// plus backward/grad/detach/noGrad semantics and torch.autograd.grad.
import { test } from "node:test";
import assert from "node:assert/strict";
import * as torch from "../../src/torch/index.js";
import { gradcheck, assertClose } from "../helpers.js";

const { F, linalg } = torch;
const gen = new torch.Generator(7);
const r = (...shape: number[]) => torch.randn(shape, { dtype: "float64", generator: gen }).keep();
/** random values bounded away from zero (for abs, relu, sqrt, log, div, ...) */
const rpos = (...shape: number[]) =>
  torch.scope(() =>
    r(...shape)
      .abs()
      .add(0.5)
      .keep(),
  );
const rsign = (...shape: number[]) =>
  torch.scope(() => {
    const x = r(...shape);
    return x.sign().mul(x.abs().add(0.3)).keep();
  });
const idx = (v: number[] | number[][]) => torch.tensor(v, { dtype: "int64" }).keep();
const spd = (n: number) =>
  torch.scope(() => {
    const a = r(n, n);
    return a
      .matmul(a.T)
      .add(torch.eye(n, n, { dtype: "float64" }).mul(n))
      .keep();
  });
const sym = (f: (a: torch.Tensor) => torch.Tensor) => (a: torch.Tensor) => f(a.add(a.T).div(2));

const cases: [string, (...xs: torch.Tensor[]) => torch.Tensor, torch.Tensor[]][] = [
  // elementwise
  ["add", (a, b) => a.add(b, 0.5), [r(2, 3), r(3)]],
  ["add scalar", (a) => a.add(2), [r(3)]],
  ["sub", (a, b) => a.sub(b, 2), [r(2, 3), r(2, 3)]],
  ["rsub", (a) => a.rsub(1), [r(3)]],
  ["mul", (a, b) => a.mul(b), [r(2, 3), r(2, 1)]],
  ["div", (a, b) => a.div(b), [r(3), rpos(3)]],
  ["pow scalar", (a) => a.pow(3), [r(4)]],
  ["pow tensor", (a, b) => a.pow(b), [rpos(3), r(3)]],
  ["neg", (a) => a.neg(), [r(3)]],
  ["abs", (a) => a.abs(), [rsign(4)]],
  ["exp", (a) => a.exp(), [r(4)]],
  ["log", (a) => a.log(), [rpos(4)]],
  ["log1p", (a) => a.log1p(), [rpos(4)]],
  ["sqrt", (a) => a.sqrt(), [rpos(4)]],
  ["rsqrt", (a) => a.rsqrt(), [rpos(4)]],
  ["square", (a) => a.square(), [r(4)]],
  ["reciprocal", (a) => a.reciprocal(), [rpos(4)]],
  ["sin", (a) => a.sin(), [r(4)]],
  ["cos", (a) => a.cos(), [r(4)]],
  ["tanh", (a) => a.tanh(), [r(4)]],
  ["sigmoid", (a) => a.sigmoid(), [r(4)]],
  ["relu", (a) => a.relu(), [rsign(5)]],
  ["erf", (a) => a.erf(), [r(4)]],
  ["gelu", (a) => F.gelu(a), [r(5)]],
  ["gelu tanh", (a) => F.gelu(a, "tanh"), [r(5)]],
  ["silu", (a) => F.silu(a), [r(5)]],
  ["clamp", (a) => a.clamp(-0.5, 0.5), [torch.tensor([-1.2, -0.2, 0.3, 0.9], { dtype: "float64" }).keep()]],
  [
    "maximum",
    (a, b) => a.maximum(b),
    [
      torch.tensor([1, 2, 3], { dtype: "float64" }).keep(),
      torch.tensor([2.5, 1, 3.5], { dtype: "float64" }).keep(),
    ],
  ],
  [
    "minimum",
    (a, b) => a.minimum(b),
    [
      torch.tensor([1, 2, 3], { dtype: "float64" }).keep(),
      torch.tensor([2.5, 1, 3.5], { dtype: "float64" }).keep(),
    ],
  ],
  ["lerp", (a, b) => a.lerp(b, 0.3), [r(3), r(3)]],
  ["where", (a, b) => torch.where(a.gt(0), a, b), [rsign(4), r(4)]],
  ["maskedFill", (a) => a.maskedFill(torch.tensor([true, false, true]), 2), [r(3)]],
  // reductions
  ["sum", (a) => a.sum(1), [r(2, 3)]],
  ["sum all", (a) => a.sum(), [r(2, 3)]],
  ["mean", (a) => a.mean([0, 1], true), [r(2, 3)]],
  ["prod", (a) => a.prod(1), [rpos(2, 3)]],
  ["var", (a) => a.var(1), [r(2, 4)]],
  ["std", (a) => a.std(null, { correction: 0 }), [r(5)]],
  ["amax", (a) => a.amax(1), [r(3, 4)]],
  ["amin", (a) => a.amin(0), [r(3, 4)]],
  ["logsumexp", (a) => a.logsumexp(-1), [r(2, 5)]],
  ["max", (a) => a.max(), [r(6)]],
  ["min", (a) => a.min(), [r(6)]],
  ["maxDim", (a) => a.maxDim(1).values, [r(3, 4)]],
  ["norm 2", (a) => a.norm(2, 1), [r(3, 4)]],
  ["norm 1", (a) => a.norm(1), [rsign(5)]],
  ["cumsum", (a) => a.cumsum(0), [r(5)]],
  ["topk", (a) => a.topk(2).values, [r(2, 5)]],
  ["sort", (a) => a.sort(-1, true).values, [r(6)]],
  ["triu", (a) => a.triu(), [r(3, 3)]],
  ["tril", (a) => a.tril(-1), [r(3, 3)]],
  ["diagonal", (a) => a.diagonal(), [r(3, 3)]],
  ["diag", (a) => torch.diag(a), [r(3)]],
  // products
  ["matmul", (a, b) => a.matmul(b), [r(2, 3, 4), r(4, 2)]],
  ["mm", (a, b) => a.mm(b), [r(3, 4), r(4, 2)]],
  ["bmm", (a, b) => a.bmm(b), [r(2, 3, 4), r(2, 4, 2)]],
  ["dot", (a, b) => a.dot(b), [r(4), r(4)]],
  ["outer", (a, b) => a.outer(b), [r(3), r(2)]],
  ["addmm", (i, a, b) => torch.addmm(i, a, b, 0.5, 2), [r(2), r(3, 4), r(4, 2)]],
  ["baddbmm", (i, a, b) => torch.baddbmm(i, a, b, 0.5, 2), [r(2, 3, 2), r(2, 3, 4), r(2, 4, 2)]],
  ["linear", (x, w, b) => F.linear(x, w, b), [r(2, 4), r(3, 4), r(3)]],
  // nn
  ["softmax", (a) => F.softmax(a, -1), [r(2, 4)]],
  ["logSoftmax", (a) => F.logSoftmax(a, 0), [r(4, 2)]],
  ["layerNorm", (x, w, b) => F.layerNorm(x, [4], w, b, 1e-5), [r(3, 4), r(4), r(4)]],
  ["rmsNorm", (x, w) => F.rmsNorm(x, w, 1e-6), [r(3, 4), r(4)]],
  ["embedding", (w) => F.embedding(idx([[0, 2, 2]]), w), [r(3, 4)]],
  [
    "gather",
    (a) =>
      a.gather(
        1,
        idx([
          [1, 0],
          [2, 2],
        ]),
      ),
    [r(2, 3)],
  ],
  ["scatter", (a, s) => a.scatter(1, idx([[2], [0]]), s), [r(2, 3), r(2, 1)]],
  ["scatterAdd", (a, s) => a.scatterAdd(1, idx([[0, 0]]), s), [r(1, 3), r(1, 2)]],
  ["indexSelect", (a) => a.indexSelect(0, idx([2, 0, 2])), [r(3, 2)]],
  ["indexAdd", (a, s) => a.indexAdd(0, idx([1, 1]), s, 2), [r(3, 2), r(2, 2)]],
  ["crossEntropy", (a) => F.crossEntropy(a, idx([1, 0, -100])), [r(3, 4)]],
  ["nllLoss", (a) => F.nllLoss(a, idx([3, 0]), { reduction: "sum" }), [r(2, 4)]],
  [
    "klDiv",
    (a, b) => F.klDiv(F.logSoftmax(a, -1), F.softmax(b, -1), { reduction: "batchmean" }),
    [r(2, 3), r(2, 3)],
  ],
  // shape and indexing
  ["cat", (a, b) => torch.cat([a, b], 1), [r(2, 2), r(2, 3)]],
  ["stack", (a, b) => torch.stack([a, b], 0), [r(3), r(3)]],
  ["split", (a) => a.split([1, 2], 1)[1] as torch.Tensor, [r(2, 3)]],
  ["chunk", (a) => a.chunk(2, 0)[0] as torch.Tensor, [r(4, 2)]],
  ["view/transpose/permute", (a) => a.view(2, 6).transpose(0, 1).reshape(3, 4).permute(1, 0), [r(3, 4)]],
  ["unsqueeze/expand/squeeze", (a) => a.unsqueeze(0).expand(3, 4).squeeze(), [r(4)]],
  ["repeat/flip", (a) => a.repeat(2, 1).flip(0), [r(2, 3)]],
  ["narrow/select", (a) => a.narrow(1, 1, 2).select(0, 1), [r(3, 4)]],
  ["index", (a) => a.index(":", "1:", idx([0, 0])), [r(2, 3, 2)]],
  ["contiguous/clone", (a) => a.T.contiguous().clone(), [r(2, 3)]],
  // linear algebra (functions whose value is unique: no sign ambiguity)
  ["cholesky", (a) => linalg.cholesky(sym((x) => x)(a)), [spd(3)]],
  ["choleskySolve", (b, a) => linalg.choleskySolve(b, linalg.cholesky(sym((x) => x)(a))), [r(3, 2), spd(3)]],
  ["solve", (a, b) => linalg.solve(a, b), [spd(3), r(3, 2)]],
  ["inv", (a) => linalg.inv(a), [spd(3)]],
  ["det", (a) => linalg.det(a), [spd(3)]],
  ["eigh values", (a) => linalg.eigh(sym((x) => x)(a)).eigenvalues, [spd(3)]],
  [
    "eigh reconstruction",
    (a) => {
      const { eigenvalues: w, eigenvectors: v } = linalg.eigh(sym((x) => x)(a));
      return v.mul(w.exp()).matmul(v.T); // matrix exponential: unique whatever the eigenvector signs
    },
    [spd(3).div(3)],
  ],
  ["svd values", (a) => linalg.svd(a).S, [r(3, 2)]],
  ["pinv", (a) => linalg.pinv(a), [r(3, 2)]],
  ["lstsq", (a, b) => linalg.lstsq(a, b), [r(4, 2), r(4, 1)]],
];

for (const [name, fn, inputs] of cases) {
  test(`gradient of ${name} matches finite differences`, () => {
    gradcheck(fn, inputs, { name });
  });
}

test("backward accumulates into .grad of leaves; zeroing; retain_graph", () => {
  torch.scope(() => {
    const x = torch.tensor([1, 2, 3], { dtype: "float64", requiresGrad: true });
    assert.equal(x.isLeaf, true);
    const y = x.mul(x).sum(); // dy/dx = 2x
    y.backward(undefined, { retainGraph: true });
    assert.deepEqual(x.grad?.toNumbers(), [2, 4, 6]);
    y.backward();
    assert.deepEqual(x.grad?.toNumbers(), [4, 8, 12]); // accumulated
    x.grad = null;
    assert.equal(x.grad, null);
    const z = x.mul(3);
    z.backward(torch.tensor([1, 0, 2], { dtype: "float64" }));
    const gradOf = (t: torch.Tensor) => t.grad;
    assert.deepEqual(gradOf(x)?.toNumbers(), [3, 0, 6]);
    assert.throws(() => z.backward(), /retain_graph|backward through the graph a second time|scalar/);
  });
});

test("retainGrad exposes the gradient of a non-leaf", () => {
  torch.scope(() => {
    const x = torch.tensor([1, 2], { dtype: "float64", requiresGrad: true });
    const h = x.mul(2).retainGrad();
    h.square().sum().backward(); // d/dh = 2h = 4x
    assert.deepEqual(h.grad?.toNumbers(), [4, 8]);
  });
});

test("detach and noGrad stop gradient flow; grad mode is restored after exceptions", () => {
  torch.scope(() => {
    const x = torch.tensor([1, 2], { dtype: "float64", requiresGrad: true });
    assert.equal(x.detach().requiresGrad, false);
    const y = torch.noGrad(() => x.mul(2));
    assert.equal(y.requiresGrad, false);
    assert.throws(() => y.sum().backward(), /does not require grad/);
    assert.throws(() =>
      torch.noGrad(() => {
        throw new Error("inner");
      }),
    );
    assert.equal(torch.isGradEnabled(), true);
    const z = x.mul(x.detach()).sum(); // d/dx = x (the detached factor is a constant)
    z.backward();
    assert.deepEqual(x.grad?.toNumbers(), [1, 2]);
  });
});

test("torch.autograd.grad returns gradients without touching .grad; second order via createGraph", () => {
  torch.scope(() => {
    const x = torch.tensor([0.5, -1], { dtype: "float64", requiresGrad: true });
    const y = x.pow(3).sum();
    const [g] = torch.grad([y], [x], { createGraph: true });
    assertClose(g?.toNumbers() ?? [], [0.75, 3], 1e-15); // 3x^2
    assert.equal(x.grad, null);
    const [g2] = torch.grad([(g as torch.Tensor).sum()], [x]);
    assertClose(g2?.toNumbers() ?? [], [3, -6], 1e-15); // 6x
    const unused = torch.tensor([1], { dtype: "float64", requiresGrad: true });
    const [, none] = torch.grad([x.sum()], [x, unused]);
    assert.equal(none, null);
  });
});
