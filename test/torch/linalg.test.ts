// Linear algebra against defining identities (closed forms), including the float32 eigh workaround
// for Debian's LAPACK at n >= 2895 and the d = 6400 size of GPT-2 XL's MLP.
import { test } from "node:test";
import assert from "node:assert/strict";
import * as torch from "../../src/torch/index.js";
import { assertClose } from "../helpers.js";

const { linalg } = torch;

function maxAbs(t: torch.Tensor): number {
  return torch.scope(() => t.abs().max().item());
}

function spd(n: number, dtype: "float32" | "float64", seed = 0): torch.Tensor {
  return torch.scope(() => {
    const a = torch.randn([n, n], { dtype, generator: new torch.Generator(seed) });
    return a
      .matmul(a.T)
      .div(n)
      .add(torch.eye(n, n, { dtype }))
      .keep();
  });
}

test("hand-computed 2x2 cases", () => {
  torch.scope(() => {
    const a = torch.tensor(
      [
        [4, 2],
        [2, 3],
      ],
      { dtype: "float64" },
    );
    // cholesky of [[4,2],[2,3]] = [[2,0],[1,sqrt(2)]]
    assertClose(linalg.cholesky(a).toNumbers(), [2, 0, 1, Math.SQRT2], 1e-15);
    assertClose(linalg.cholesky(a, { upper: true }).toNumbers(), [2, 1, 0, Math.SQRT2], 1e-15);
    // inverse = 1/8 [[3,-2],[-2,4]]
    assertClose(linalg.inv(a).toNumbers(), [3 / 8, -2 / 8, -2 / 8, 4 / 8], 1e-15);
    assertClose(linalg.det(a).item(), 8, 1e-14);
    // solve [[4,2],[2,3]] x = [2, 1] -> x = [0.5, 0]
    assertClose(linalg.solve(a, torch.tensor([[2], [1]], { dtype: "float64" })).toNumbers(), [0.5, 0], 1e-15);
    assertClose(
      linalg.choleskySolve(torch.tensor([[2], [1]], { dtype: "float64" }), linalg.cholesky(a)).toNumbers(),
      [0.5, 0],
      1e-15,
    );
    // eigenvalues of [[4,2],[2,3]]: (7 +- sqrt(17)) / 2, ascending
    assertClose(
      linalg.eigh(a).eigenvalues.toNumbers(),
      [(7 - Math.sqrt(17)) / 2, (7 + Math.sqrt(17)) / 2],
      1e-14,
    );
    // singular values of diag(3, -2) are 3, 2
    assertClose(
      linalg
        .svd(
          torch.tensor(
            [
              [3, 0],
              [0, -2],
            ],
            { dtype: "float64" },
          ),
        )
        .S.toNumbers(),
      [3, 2],
      1e-15,
    );
    // pinv of a rank-1 matrix u v^T is v u^T / (|u|^2 |v|^2)
    const r1 = torch.tensor(
      [
        [1, 2],
        [2, 4],
      ],
      { dtype: "float64" },
    );
    assertClose(linalg.pinv(r1).toNumbers(), [1 / 25, 2 / 25, 2 / 25, 4 / 25], 1e-14);
    // least squares: fit y = 2x + 1 exactly
    const A = torch.tensor(
      [
        [0, 1],
        [1, 1],
        [2, 1],
      ],
      { dtype: "float64" },
    );
    assertClose(
      linalg.lstsq(A, torch.tensor([[1], [3], [5]], { dtype: "float64" })).toNumbers(),
      [2, 1],
      1e-12,
    );
    const { Q, R } = linalg.qr(A);
    assert.ok(maxAbs(Q.matmul(R).sub(A)) < 1e-14);
  });
});

test("identities on random 64x64 matrices (float64)", () => {
  torch.scope(() => {
    const n = 64;
    const a = spd(n, "float64", 3);
    const eye = torch.eye(n, n, { dtype: "float64" });
    const l = linalg.cholesky(a);
    assert.ok(maxAbs(l.matmul(l.T).sub(a)) < 1e-12);
    assert.ok(maxAbs(l.triu(1)) === 0);
    assert.ok(maxAbs(a.matmul(linalg.inv(a)).sub(eye)) < 1e-12);
    const b = torch.randn([n, 3], { dtype: "float64", generator: new torch.Generator(4) });
    assert.ok(maxAbs(a.matmul(linalg.solve(a, b)).sub(b)) < 1e-12);
    assert.ok(maxAbs(a.matmul(linalg.choleskySolve(b, l)).sub(b)) < 1e-12);
    const { eigenvalues: w, eigenvectors: v } = linalg.eigh(a);
    assert.ok(maxAbs(a.matmul(v).sub(v.mul(w))) < 1e-12);
    assert.ok(maxAbs(v.T.matmul(v).sub(eye)) < 1e-12);
    const m = torch.randn([n, 40], { dtype: "float64", generator: new torch.Generator(5) });
    const { U, S, Vh } = linalg.svd(m);
    assert.deepEqual(U.shape, [n, 40]);
    assert.ok(maxAbs(U.mul(S).matmul(Vh).sub(m)) < 1e-12);
    assert.deepEqual(linalg.svd(m, { fullMatrices: true }).U.shape, [n, n]);
    const p = linalg.pinv(m);
    assert.ok(maxAbs(m.matmul(p).matmul(m).sub(m)) < 1e-12); // Penrose: A A+ A = A
    assert.ok(maxAbs(p.matmul(m).matmul(p).sub(p)) < 1e-12); // A+ A A+ = A+
  });
});

test("errors name the problem: not square, not positive-definite, singular", () => {
  torch.scope(() => {
    assert.throws(() => linalg.cholesky(torch.zeros([2, 3])), /square matrix/);
    assert.throws(
      () =>
        linalg.cholesky(
          torch.tensor([
            [1, 2],
            [2, 1],
          ]),
        ),
      /not positive-definite/,
    );
    assert.throws(() => linalg.inv(torch.zeros([2, 2])), /singular/);
    assert.throws(() => linalg.eigh(torch.zeros([3])), /square matrix/);
    assert.throws(() => linalg.solve(torch.eye(2), torch.zeros([3, 1])), /./);
  });
});

test("float32 eigh above Debian LAPACK's ssyevd limit (n = 2900) works and is accurate", () => {
  torch.scope(() => {
    const n = 2900;
    const a = spd(n, "float32", 11);
    const { eigenvalues: w, eigenvectors: v } = linalg.eigh(a);
    assert.equal(w.dtype, "float32");
    assert.equal(v.dtype, "float32");
    // residual |A v - v w| relative to |A|
    const res = maxAbs(a.matmul(v).sub(v.mul(w))) / maxAbs(a);
    assert.ok(res < 1e-4, `eigh residual ${res}`);
    // pinv with hermitian=true goes through eigh too
    const p = linalg.pinv(a, { hermitian: true });
    assert.equal(p.dtype, "float32");
  });
});

test("linear algebra at d = 6400 (GPT-2 XL MLP): cholesky, solve and eigh", { timeout: 300_000 }, () => {
  torch.scope(() => {
    const n = 6400;
    // C = X X^T / m + I built from a thin X keeps this quick to form; eigenvalues of C - I are those of X^T X / m
    const x = torch.randn([n, 64], { generator: new torch.Generator(2) });
    const c = x.matmul(x.T).div(64).add(torch.eye(n));
    const l = linalg.cholesky(c);
    const b = torch.randn([n, 2], { generator: new torch.Generator(3) });
    const sol = linalg.choleskySolve(b, l);
    assert.ok(maxAbs(c.matmul(sol).sub(b)) < 1e-3);
    const { eigenvalues: w } = linalg.eigh(c);
    assert.equal(w.dtype, "float32");
    // n - 64 eigenvalues are exactly 1; the top 64 equal 1 + eig(X^T X / 64)
    const small = linalg.eigh(x.T.matmul(x).div(64).double()).eigenvalues.add(1);
    assertClose(w.index(`${n - 64}:`).toNumbers(), small.toNumbers(), 1e-4, "top eigenvalues");
    assertClose(w.index("0:10").toNumbers(), new Array(10).fill(1), 1e-4, "unit eigenvalues");
  });
});
