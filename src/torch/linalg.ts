/**
 * torch.linalg: factorizations and solves. Errors name the problem (not square, not
 * positive-definite, singular) instead of LAPACK's info codes.
 *
 * Debian's LAPACK fails on float32 eigh from n = 2895 on (the workspace size is passed as a float32
 * and rounds down); float32 eigh at n >= 2048 therefore runs in float64 and is cast back (native/linalg.cc).
 */
import { N, type Handle } from "./native.js";
import { Tensor } from "./tensor.js";

const wrap = (h: Handle) => new Tensor(h);

/** Lower Cholesky factor L with A = L L^T (upper: U with A = U^T U). */
export function cholesky(a: Tensor, opts: { upper?: boolean } = {}): Tensor {
  return wrap(N.cholesky(a._handle, opts.upper ?? false) as Handle);
}
/** Solves A X = B given the Cholesky factor of A (torch.cholesky_solve(B, L)). */
export function choleskySolve(b: Tensor, l: Tensor, opts: { upper?: boolean } = {}): Tensor {
  return wrap(N.choleskySolve(b._handle, l._handle, opts.upper ?? false) as Handle);
}
/** Solves A X = B. */
export function solve(a: Tensor, b: Tensor): Tensor {
  return wrap(N.solve(a._handle, b._handle) as Handle);
}
export function inv(a: Tensor): Tensor {
  return wrap(N.inverse(a._handle) as Handle);
}
export const inverse = inv;
/** Eigen-decomposition of a symmetric matrix: eigenvalues ascending, eigenvectors as columns. */
export function eigh(a: Tensor, uplo: "L" | "U" = "L"): { eigenvalues: Tensor; eigenvectors: Tensor } {
  const [w, v] = N.eigh(a._handle, uplo) as [Handle, Handle];
  return { eigenvalues: wrap(w), eigenvectors: wrap(v) };
}
/** A = U diag(S) Vh (reduced unless fullMatrices). */
export function svd(a: Tensor, opts: { fullMatrices?: boolean } = {}): { U: Tensor; S: Tensor; Vh: Tensor } {
  const [u, s, vh] = N.svd(a._handle, opts.fullMatrices ?? false) as [Handle, Handle, Handle];
  return { U: wrap(u), S: wrap(s), Vh: wrap(vh) };
}
/** Moore-Penrose pseudo-inverse (torch.linalg.pinv; rtol defaults as in torch). */
export function pinv(a: Tensor, opts: { rtol?: number; hermitian?: boolean } = {}): Tensor {
  return wrap(N.pinv(a._handle, opts.rtol ?? null, opts.hermitian ?? false) as Handle);
}
export function det(a: Tensor): Tensor {
  return wrap(N.det(a._handle) as Handle);
}
export function qr(a: Tensor, mode: "reduced" | "complete" | "r" = "reduced"): { Q: Tensor; R: Tensor } {
  const [q, r] = N.qr(a._handle, mode) as [Handle, Handle];
  return { Q: wrap(q), R: wrap(r) };
}
/** Least-squares solution of A X = B (gelsd: rank-deficient systems allowed). */
export function lstsq(a: Tensor, b: Tensor): Tensor {
  return wrap(N.lstsq(a._handle, b._handle) as Handle);
}
/** Vector norm (torch.linalg.vector_norm). */
export function vectorNorm(x: Tensor, ord = 2, dim?: number | number[] | null, keepdim = false): Tensor {
  return x.norm(ord, dim, keepdim);
}
