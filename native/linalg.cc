// Linear algebra: cholesky, solves, inverse, eigh, svd, pinv.
//
// Debian's LAPACK (reference or OpenBLAS) receives the workspace size of ssyevd as a float32; from
// n = 2895 on, 1 + 6n + 2n^2 exceeds 2^24 and rounds down, and ssyevd rejects it ("parameter number 8
// had an illegal value"). float32 eigh of such matrices therefore runs in float64 and is cast back,
// which is also the more accurate result. The threshold below keeps a margin.
#include "common.h"

namespace ee {

constexpr int64_t kEighF64Threshold = 2048;

static Napi::Array WrapTuple(Napi::Env env, std::initializer_list<at::Tensor> ts) {
  auto arr = Napi::Array::New(env, ts.size());
  uint32_t i = 0;
  for (auto& t : ts) arr.Set(i++, Wrap(env, t));
  return arr;
}

static void RequireSquare(Napi::Env env, const at::Tensor& a, const char* what) {
  if (a.dim() < 2 || a.size(-1) != a.size(-2))
    ThrowJs(env, std::string(what) + ": expected a square matrix (or a batch of them), got shape [" +
                     c10::Join(",", a.sizes()) + "]");
}

EE_FN(Cholesky) {
  auto& a = T(info, 0, "cholesky");
  RequireSquare(info.Env(), a, "cholesky");
  auto r = at::linalg_cholesky_ex(a, Opt(info, 1) && B(info[1], "upper"), false);
  int64_t bad = std::get<1>(r).max().item<int64_t>();
  if (bad > 0)
    ThrowJs(info.Env(), "cholesky: the matrix is not positive-definite (leading minor of order " + std::to_string(bad) +
                            " is not positive); add a multiple of the identity or use solve()");
  return Wrap(info.Env(), std::get<0>(r));
}
// choleskySolve(B, L, upper): solves A X = B given A's Cholesky factor L
EE_FN(CholeskySolve) {
  return Wrap(info.Env(), at::cholesky_solve(T(info, 0, "B"), T(info, 1, "L"), Opt(info, 2) && B(info[2], "upper")));
}
// solve(A, B): A X = B
EE_FN(Solve) {
  auto& a = T(info, 0, "solve A");
  RequireSquare(info.Env(), a, "solve");
  return Wrap(info.Env(), at::linalg_solve(a, T(info, 1, "solve B")));
}
EE_FN(Inverse) {
  auto& a = T(info, 0, "inverse");
  RequireSquare(info.Env(), a, "inverse");
  auto r = at::linalg_inv_ex(a, false);
  if (std::get<1>(r).max().item<int64_t>() > 0) ThrowJs(info.Env(), "inverse: the matrix is singular");
  return Wrap(info.Env(), std::get<0>(r));
}
// eigh(A, uplo) -> [eigenvalues ascending, eigenvectors as columns]
EE_FN(Eigh) {
  auto& a = T(info, 0, "eigh");
  RequireSquare(info.Env(), a, "eigh");
  std::string uplo = Opt(info, 1) ? Str(info[1], "uplo") : "L";
  if (a.scalar_type() == at::kFloat && a.size(-1) >= kEighF64Threshold && a.device().is_cpu()) {
    auto r = at::linalg_eigh(a.to(at::kDouble), uplo);
    return WrapTuple(info.Env(), {std::get<0>(r).to(at::kFloat), std::get<1>(r).to(at::kFloat)});
  }
  auto r = at::linalg_eigh(a, uplo);
  return WrapTuple(info.Env(), {std::get<0>(r), std::get<1>(r)});
}
// svd(A, fullMatrices) -> [U, S, Vh]
EE_FN(Svd) {
  auto r = at::linalg_svd(T(info, 0, "svd"), Opt(info, 1) && B(info[1], "fullMatrices"));
  return WrapTuple(info.Env(), {std::get<0>(r), std::get<1>(r), std::get<2>(r)});
}
// pinv(A, rtol?, hermitian)
EE_FN(Pinv) {
  auto& a = T(info, 0, "pinv");
  bool herm = Opt(info, 2) && B(info[2], "hermitian");
  c10::optional<double> rtol;
  if (Opt(info, 1)) rtol = D(info[1], "rtol");
  if (herm && a.scalar_type() == at::kFloat && a.size(-1) >= kEighF64Threshold && a.device().is_cpu())
    return Wrap(info.Env(), at::linalg_pinv(a.to(at::kDouble), c10::nullopt, rtol, true).to(at::kFloat));
  return Wrap(info.Env(), at::linalg_pinv(a, c10::nullopt, rtol, herm));
}
EE_FN(Det) { return Wrap(info.Env(), at::linalg_det(T(info, 0, "det"))); }
// qr(A, mode) -> [Q, R]
EE_FN(Qr) {
  auto r = at::linalg_qr(T(info, 0, "qr"), Opt(info, 1) ? Str(info[1], "mode") : "reduced");
  return WrapTuple(info.Env(), {std::get<0>(r), std::get<1>(r)});
}
// lstsq(A, B) -> solution (gelsd driver: works for rank-deficient systems)
EE_FN(Lstsq) {
  auto r = at::linalg_lstsq(T(info, 0, "lstsq A"), T(info, 1, "lstsq B"), c10::nullopt, c10::string_view("gelsd"));
  return Wrap(info.Env(), std::get<0>(r));
}

void InitLinalg(Napi::Env env, Napi::Object e) {
  EE_EXPORT(e, "cholesky", Cholesky);
  EE_EXPORT(e, "choleskySolve", CholeskySolve);
  EE_EXPORT(e, "solve", Solve);
  EE_EXPORT(e, "inverse", Inverse);
  EE_EXPORT(e, "eigh", Eigh);
  EE_EXPORT(e, "svd", Svd);
  EE_EXPORT(e, "pinv", Pinv);
  EE_EXPORT(e, "det", Det);
  EE_EXPORT(e, "qr", Qr);
  EE_EXPORT(e, "lstsq", Lstsq);
}

}  // namespace ee
