// Elementwise math, comparisons, reductions, matrix products, joining and splitting.
// Names follow torch; each function takes handles (and numbers) and returns a new handle, except the
// in-place ones (trailing underscore), which return undefined.
#include "common.h"

namespace ee {

static Napi::Array WrapList(Napi::Env env, const std::vector<at::Tensor>& ts) {
  auto arr = Napi::Array::New(env, ts.size());
  for (size_t i = 0; i < ts.size(); i++) arr.Set(i, Wrap(env, ts[i]));
  return arr;
}

static Napi::Array WrapPair(Napi::Env env, const at::Tensor& a, const at::Tensor& b) {
  auto arr = Napi::Array::New(env, 2);
  arr.Set(uint32_t(0), Wrap(env, a));
  arr.Set(uint32_t(1), Wrap(env, b));
  return arr;
}

// ---- unary -------------------------------------------------------------------------------------
#define EE_UNARY(NAME, EXPR)                   \
  EE_FN(NAME) {                                \
    auto& a = T(info, 0, #NAME);               \
    return Wrap(info.Env(), EXPR);             \
  }
EE_UNARY(Neg, at::neg(a))
EE_UNARY(Abs, at::abs(a))
EE_UNARY(Sign, at::sign(a))
EE_UNARY(Exp, at::exp(a))
EE_UNARY(Log, at::log(a))
EE_UNARY(Log1p, at::log1p(a))
EE_UNARY(Sqrt, at::sqrt(a))
EE_UNARY(Rsqrt, at::rsqrt(a))
EE_UNARY(Square, at::square(a))
EE_UNARY(Reciprocal, at::reciprocal(a))
EE_UNARY(Sin, at::sin(a))
EE_UNARY(Cos, at::cos(a))
EE_UNARY(Tanh, at::tanh(a))
EE_UNARY(Sigmoid, at::sigmoid(a))
EE_UNARY(Relu, at::relu(a))
EE_UNARY(Silu, at::silu(a))
EE_UNARY(Erf, at::erf(a))
EE_UNARY(Floor, at::floor(a))
EE_UNARY(Ceil, at::ceil(a))
EE_UNARY(Round, at::round(a))
EE_UNARY(LogicalNot, at::logical_not(a))
EE_UNARY(IsNan, at::isnan(a))
EE_UNARY(IsFinite, at::isfinite(a))
EE_UNARY(IsInf, at::isinf(a))
EE_UNARY(Any, at::any(a))
EE_UNARY(All, at::all(a))
EE_UNARY(Tr, a.t())
#undef EE_UNARY

EE_FN(Gelu) {
  // approximate: "none" (erf form, GPT-J/NeoX "gelu") or "tanh" (GPT-2's "gelu_new")
  std::string approx = Opt(info, 1) ? Str(info[1], "approximate") : "none";
  if (approx != "none" && approx != "tanh") ThrowJs(info.Env(), "gelu: approximate must be 'none' or 'tanh'");
  return Wrap(info.Env(), at::gelu(T(info, 0), approx));
}

EE_FN(Clamp) {
  c10::optional<at::Scalar> lo, hi;
  if (Opt(info, 1)) lo = S(info[1], "min");
  if (Opt(info, 2)) hi = S(info[2], "max");
  return Wrap(info.Env(), at::clamp(T(info, 0), lo, hi));
}

// ---- binary (tensor or number as the second operand) -------------------------------------------
#define EE_BINARY(NAME, FN)                                                          \
  EE_FN(NAME) {                                                                      \
    auto& a = T(info, 0, #NAME);                                                     \
    if (IsTensor(info[1])) return Wrap(info.Env(), FN(a, T(info, 1, #NAME " other"))); \
    return Wrap(info.Env(), FN(a, S(info[1], #NAME " other")));                      \
  }
EE_BINARY(Mul, at::mul)
EE_BINARY(Div, at::div)
EE_BINARY(Pow, at::pow)
EE_BINARY(Remainder, at::remainder)
EE_BINARY(Eq, at::eq)
EE_BINARY(Ne, at::ne)
EE_BINARY(Lt, at::lt)
EE_BINARY(Le, at::le)
EE_BINARY(Gt, at::gt)
EE_BINARY(Ge, at::ge)
#undef EE_BINARY

// add(a, b, alpha?) and sub(a, b, alpha?)
EE_FN(Add) {
  auto& a = T(info, 0, "add");
  at::Scalar alpha = Opt(info, 2) ? S(info[2], "alpha") : at::Scalar(1);
  if (IsTensor(info[1])) return Wrap(info.Env(), at::add(a, T(info, 1), alpha));
  return Wrap(info.Env(), at::add(a, S(info[1]), alpha));
}
EE_FN(Sub) {
  auto& a = T(info, 0, "sub");
  at::Scalar alpha = Opt(info, 2) ? S(info[2], "alpha") : at::Scalar(1);
  if (IsTensor(info[1])) return Wrap(info.Env(), at::sub(a, T(info, 1), alpha));
  return Wrap(info.Env(), at::sub(a, S(info[1]), alpha));
}
// rsub(a, scalar): scalar - a
EE_FN(Rsub) { return Wrap(info.Env(), at::rsub(T(info, 0), S(info[1], "other"))); }

#define EE_BINARY_T(NAME, FN) \
  EE_FN(NAME) { return Wrap(info.Env(), FN(T(info, 0, #NAME), T(info, 1, #NAME " other"))); }
EE_BINARY_T(Maximum, at::maximum)
EE_BINARY_T(Minimum, at::minimum)
EE_BINARY_T(LogicalAnd, at::logical_and)
EE_BINARY_T(LogicalOr, at::logical_or)
EE_BINARY_T(Matmul, at::matmul)
EE_BINARY_T(Mm, at::mm)
EE_BINARY_T(Bmm, at::bmm)
EE_BINARY_T(Outer, at::outer)
EE_BINARY_T(Dot, at::dot)
EE_BINARY_T(Atan2, at::atan2)
#undef EE_BINARY_T

// addmm(input, m1, m2, beta, alpha): beta * input + alpha * m1 @ m2
EE_FN(Addmm) {
  return Wrap(info.Env(), at::addmm(T(info, 0), T(info, 1), T(info, 2), Opt(info, 3) ? S(info[3], "beta") : at::Scalar(1),
                                    Opt(info, 4) ? S(info[4], "alpha") : at::Scalar(1)));
}
// baddbmm(input, b1, b2, beta, alpha)
EE_FN(Baddbmm) {
  return Wrap(info.Env(), at::baddbmm(T(info, 0), T(info, 1), T(info, 2), Opt(info, 3) ? S(info[3], "beta") : at::Scalar(1),
                                      Opt(info, 4) ? S(info[4], "alpha") : at::Scalar(1)));
}
// linear(input, weight[out,in], bias?)
EE_FN(Linear) {
  c10::optional<at::Tensor> bias;
  if (Opt(info, 2)) bias = T(info, 2, "bias");
  return Wrap(info.Env(), at::linear(T(info, 0, "input"), T(info, 1, "weight"), bias));
}

// where(cond, a, b) with a, b tensors or numbers
EE_FN(Where) {
  auto& c = T(info, 0, "condition");
  bool ta = IsTensor(info[1]), tb = IsTensor(info[2]);
  if (ta && tb) return Wrap(info.Env(), at::where(c, T(info, 1), T(info, 2)));
  if (ta) return Wrap(info.Env(), at::where(c, T(info, 1), S(info[2])));
  if (tb) return Wrap(info.Env(), at::where(c, S(info[1]), T(info, 2)));
  return Wrap(info.Env(), at::where(c, S(info[1]), S(info[2])));
}

EE_FN(MaskedFill) {
  if (IsTensor(info[2])) return Wrap(info.Env(), T(info, 0).masked_fill(T(info, 1, "mask"), T(info, 2, "value")));
  return Wrap(info.Env(), T(info, 0).masked_fill(T(info, 1, "mask"), S(info[2], "value")));
}

// lerp(a, b, weight)
EE_FN(Lerp) { return Wrap(info.Env(), at::lerp(T(info, 0), T(info, 1), S(info[2], "weight"))); }

// ---- in-place ----------------------------------------------------------------------------------
EE_FN(Add_) {
  at::Scalar alpha = Opt(info, 2) ? S(info[2], "alpha") : at::Scalar(1);
  if (IsTensor(info[1]))
    T(info, 0).add_(T(info, 1), alpha);
  else
    T(info, 0).add_(S(info[1]), alpha);
  return info.Env().Undefined();
}
EE_FN(Sub_) {
  at::Scalar alpha = Opt(info, 2) ? S(info[2], "alpha") : at::Scalar(1);
  if (IsTensor(info[1]))
    T(info, 0).sub_(T(info, 1), alpha);
  else
    T(info, 0).sub_(S(info[1]), alpha);
  return info.Env().Undefined();
}
EE_FN(Mul_) {
  if (IsTensor(info[1]))
    T(info, 0).mul_(T(info, 1));
  else
    T(info, 0).mul_(S(info[1]));
  return info.Env().Undefined();
}
EE_FN(Div_) {
  if (IsTensor(info[1]))
    T(info, 0).div_(T(info, 1));
  else
    T(info, 0).div_(S(info[1]));
  return info.Env().Undefined();
}
// addcmul_(t, a, b, value): t += value * a * b
EE_FN(Addcmul_) {
  T(info, 0).addcmul_(T(info, 1), T(info, 2), Opt(info, 3) ? S(info[3], "value") : at::Scalar(1));
  return info.Env().Undefined();
}
// addcdiv_(t, a, b, value): t += value * a / b
EE_FN(Addcdiv_) {
  T(info, 0).addcdiv_(T(info, 1), T(info, 2), Opt(info, 3) ? S(info[3], "value") : at::Scalar(1));
  return info.Env().Undefined();
}
EE_FN(Lerp_) {
  T(info, 0).lerp_(T(info, 1), S(info[2], "weight"));
  return info.Env().Undefined();
}
EE_FN(Zero_) {
  T(info, 0).zero_();
  return info.Env().Undefined();
}
EE_FN(Fill_) {
  T(info, 0).fill_(S(info[1], "value"));
  return info.Env().Undefined();
}
EE_FN(Clamp_) {
  c10::optional<at::Scalar> lo, hi;
  if (Opt(info, 1)) lo = S(info[1], "min");
  if (Opt(info, 2)) hi = S(info[2], "max");
  T(info, 0).clamp_(lo, hi);
  return info.Env().Undefined();
}
EE_FN(MaskedFill_) {
  T(info, 0).masked_fill_(T(info, 1, "mask"), S(info[2], "value"));
  return info.Env().Undefined();
}
EE_FN(Sqrt_) {
  T(info, 0).sqrt_();
  return info.Env().Undefined();
}

// ---- reductions --------------------------------------------------------------------------------
// sum(t, dims|null, keepdim, dtype?)
EE_FN(Sum) {
  auto& t = T(info, 0, "sum");
  c10::optional<at::ScalarType> dt;
  if (Opt(info, 3)) dt = DType(info[3]);
  if (!Opt(info, 1)) return Wrap(info.Env(), at::sum(t, dt));
  return Wrap(info.Env(), at::sum(t, IntList(info[1], "dim"), Opt(info, 2) && B(info[2], "keepdim"), dt));
}
EE_FN(Mean) {
  auto& t = T(info, 0, "mean");
  if (!Opt(info, 1)) return Wrap(info.Env(), at::mean(t));
  return Wrap(info.Env(), at::mean(t, IntList(info[1], "dim"), Opt(info, 2) && B(info[2], "keepdim")));
}
EE_FN(Prod) {
  auto& t = T(info, 0, "prod");
  if (!Opt(info, 1)) return Wrap(info.Env(), at::prod(t));
  return Wrap(info.Env(), at::prod(t, I(info[1], "dim"), Opt(info, 2) && B(info[2], "keepdim")));
}
// var(t, dims|null, correction, keepdim)
EE_FN(Var) {
  auto& t = T(info, 0, "var");
  c10::optional<at::IntArrayRef> dims;
  std::vector<int64_t> d;
  if (Opt(info, 1)) {
    d = IntList(info[1], "dim");
    dims = d;
  }
  return Wrap(info.Env(), at::var(t, dims, I(info[2], "correction"), Opt(info, 3) && B(info[3], "keepdim")));
}
EE_FN(Std) {
  auto& t = T(info, 0, "std");
  c10::optional<at::IntArrayRef> dims;
  std::vector<int64_t> d;
  if (Opt(info, 1)) {
    d = IntList(info[1], "dim");
    dims = d;
  }
  return Wrap(info.Env(), at::std(t, dims, I(info[2], "correction"), Opt(info, 3) && B(info[3], "keepdim")));
}
EE_FN(Amax) { return Wrap(info.Env(), at::amax(T(info, 0), IntList(info[1], "dim"), Opt(info, 2) && B(info[2], "keepdim"))); }
EE_FN(Amin) { return Wrap(info.Env(), at::amin(T(info, 0), IntList(info[1], "dim"), Opt(info, 2) && B(info[2], "keepdim"))); }
EE_FN(Logsumexp) {
  return Wrap(info.Env(), at::logsumexp(T(info, 0), IntList(info[1], "dim"), Opt(info, 2) && B(info[2], "keepdim")));
}
// max(t) -> scalar tensor; max(t, dim, keepdim) -> [values, indices]
EE_FN(Max) {
  if (!Opt(info, 1)) return Wrap(info.Env(), at::max(T(info, 0)));
  auto r = at::max(T(info, 0), I(info[1], "dim"), Opt(info, 2) && B(info[2], "keepdim"));
  return WrapPair(info.Env(), std::get<0>(r), std::get<1>(r));
}
EE_FN(Min) {
  if (!Opt(info, 1)) return Wrap(info.Env(), at::min(T(info, 0)));
  auto r = at::min(T(info, 0), I(info[1], "dim"), Opt(info, 2) && B(info[2], "keepdim"));
  return WrapPair(info.Env(), std::get<0>(r), std::get<1>(r));
}
EE_FN(Argmax) {
  c10::optional<int64_t> dim;
  if (Opt(info, 1)) dim = I(info[1], "dim");
  return Wrap(info.Env(), at::argmax(T(info, 0), dim, Opt(info, 2) && B(info[2], "keepdim")));
}
EE_FN(Argmin) {
  c10::optional<int64_t> dim;
  if (Opt(info, 1)) dim = I(info[1], "dim");
  return Wrap(info.Env(), at::argmin(T(info, 0), dim, Opt(info, 2) && B(info[2], "keepdim")));
}
// norm(t, p, dims|null, keepdim): vector norm (torch.linalg.vector_norm)
EE_FN(VectorNorm) {
  c10::optional<at::IntArrayRef> dims;
  std::vector<int64_t> d;
  if (Opt(info, 2)) {
    d = IntList(info[2], "dim");
    dims = d;
  }
  return Wrap(info.Env(), at::linalg_vector_norm(T(info, 0), S(info[1], "ord"), dims, Opt(info, 3) && B(info[3], "keepdim"),
                                                 c10::nullopt));
}
EE_FN(Cumsum) {
  c10::optional<at::ScalarType> dt;
  if (Opt(info, 2)) dt = DType(info[2]);
  return Wrap(info.Env(), at::cumsum(T(info, 0), I(info[1], "dim"), dt));
}
// topk(t, k, dim, largest, sorted) -> [values, indices]
EE_FN(Topk) {
  auto r = at::topk(T(info, 0), I(info[1], "k"), Opt(info, 2) ? I(info[2], "dim") : -1,
                    Opt(info, 3) ? B(info[3], "largest") : true, Opt(info, 4) ? B(info[4], "sorted") : true);
  return WrapPair(info.Env(), std::get<0>(r), std::get<1>(r));
}
// sort(t, dim, descending, stable) -> [values, indices]
EE_FN(Sort) {
  auto r = at::sort(T(info, 0), Opt(info, 3) ? c10::optional<bool>(B(info[3], "stable")) : c10::optional<bool>(true),
                    Opt(info, 1) ? I(info[1], "dim") : -1, Opt(info, 2) && B(info[2], "descending"));
  return WrapPair(info.Env(), std::get<0>(r), std::get<1>(r));
}

EE_FN(Triu) { return Wrap(info.Env(), at::triu(T(info, 0), Opt(info, 1) ? I(info[1], "diagonal") : 0)); }
EE_FN(Tril) { return Wrap(info.Env(), at::tril(T(info, 0), Opt(info, 1) ? I(info[1], "diagonal") : 0)); }
EE_FN(Diagonal) { return Wrap(info.Env(), at::diagonal(T(info, 0), Opt(info, 1) ? I(info[1], "offset") : 0, -2, -1)); }
EE_FN(Diag) { return Wrap(info.Env(), at::diag(T(info, 0), Opt(info, 1) ? I(info[1], "diagonal") : 0)); }

// ---- joining and splitting ---------------------------------------------------------------------
EE_FN(Cat) { return Wrap(info.Env(), at::cat(TensorList(info[0], "cat"), Opt(info, 1) ? I(info[1], "dim") : 0)); }
EE_FN(Stack) { return Wrap(info.Env(), at::stack(TensorList(info[0], "stack"), Opt(info, 1) ? I(info[1], "dim") : 0)); }
// split(t, sizeOrSizes, dim)
EE_FN(Split) {
  auto& t = T(info, 0, "split");
  int64_t dim = Opt(info, 2) ? I(info[2], "dim") : 0;
  if (info[1].IsArray()) return WrapList(info.Env(), at::split_with_sizes(t, IntList(info[1], "split sizes"), dim));
  return WrapList(info.Env(), at::split(t, I(info[1], "split size"), dim));
}
EE_FN(Chunk) { return WrapList(info.Env(), at::chunk(T(info, 0), I(info[1], "chunks"), Opt(info, 2) ? I(info[2], "dim") : 0)); }

void InitOps(Napi::Env env, Napi::Object e) {
  EE_EXPORT(e, "neg", Neg);
  EE_EXPORT(e, "abs", Abs);
  EE_EXPORT(e, "sign", Sign);
  EE_EXPORT(e, "exp", Exp);
  EE_EXPORT(e, "log", Log);
  EE_EXPORT(e, "log1p", Log1p);
  EE_EXPORT(e, "sqrt", Sqrt);
  EE_EXPORT(e, "rsqrt", Rsqrt);
  EE_EXPORT(e, "square", Square);
  EE_EXPORT(e, "reciprocal", Reciprocal);
  EE_EXPORT(e, "sin", Sin);
  EE_EXPORT(e, "cos", Cos);
  EE_EXPORT(e, "tanh", Tanh);
  EE_EXPORT(e, "sigmoid", Sigmoid);
  EE_EXPORT(e, "relu", Relu);
  EE_EXPORT(e, "silu", Silu);
  EE_EXPORT(e, "erf", Erf);
  EE_EXPORT(e, "floor", Floor);
  EE_EXPORT(e, "ceil", Ceil);
  EE_EXPORT(e, "round", Round);
  EE_EXPORT(e, "logicalNot", LogicalNot);
  EE_EXPORT(e, "isnan", IsNan);
  EE_EXPORT(e, "isfinite", IsFinite);
  EE_EXPORT(e, "isinf", IsInf);
  EE_EXPORT(e, "any", Any);
  EE_EXPORT(e, "all", All);
  EE_EXPORT(e, "t", Tr);
  EE_EXPORT(e, "gelu", Gelu);
  EE_EXPORT(e, "clamp", Clamp);
  EE_EXPORT(e, "add", Add);
  EE_EXPORT(e, "sub", Sub);
  EE_EXPORT(e, "rsub", Rsub);
  EE_EXPORT(e, "mul", Mul);
  EE_EXPORT(e, "div", Div);
  EE_EXPORT(e, "pow", Pow);
  EE_EXPORT(e, "remainder", Remainder);
  EE_EXPORT(e, "eq", Eq);
  EE_EXPORT(e, "ne", Ne);
  EE_EXPORT(e, "lt", Lt);
  EE_EXPORT(e, "le", Le);
  EE_EXPORT(e, "gt", Gt);
  EE_EXPORT(e, "ge", Ge);
  EE_EXPORT(e, "maximum", Maximum);
  EE_EXPORT(e, "minimum", Minimum);
  EE_EXPORT(e, "logicalAnd", LogicalAnd);
  EE_EXPORT(e, "logicalOr", LogicalOr);
  EE_EXPORT(e, "matmul", Matmul);
  EE_EXPORT(e, "mm", Mm);
  EE_EXPORT(e, "bmm", Bmm);
  EE_EXPORT(e, "outer", Outer);
  EE_EXPORT(e, "dot", Dot);
  EE_EXPORT(e, "atan2", Atan2);
  EE_EXPORT(e, "addmm", Addmm);
  EE_EXPORT(e, "baddbmm", Baddbmm);
  EE_EXPORT(e, "linear", Linear);
  EE_EXPORT(e, "where", Where);
  EE_EXPORT(e, "maskedFill", MaskedFill);
  EE_EXPORT(e, "lerp", Lerp);
  EE_EXPORT(e, "add_", Add_);
  EE_EXPORT(e, "sub_", Sub_);
  EE_EXPORT(e, "mul_", Mul_);
  EE_EXPORT(e, "div_", Div_);
  EE_EXPORT(e, "addcmul_", Addcmul_);
  EE_EXPORT(e, "addcdiv_", Addcdiv_);
  EE_EXPORT(e, "lerp_", Lerp_);
  EE_EXPORT(e, "zero_", Zero_);
  EE_EXPORT(e, "fill_", Fill_);
  EE_EXPORT(e, "clamp_", Clamp_);
  EE_EXPORT(e, "maskedFill_", MaskedFill_);
  EE_EXPORT(e, "sqrt_", Sqrt_);
  EE_EXPORT(e, "sum", Sum);
  EE_EXPORT(e, "mean", Mean);
  EE_EXPORT(e, "prod", Prod);
  EE_EXPORT(e, "var", Var);
  EE_EXPORT(e, "std", Std);
  EE_EXPORT(e, "amax", Amax);
  EE_EXPORT(e, "amin", Amin);
  EE_EXPORT(e, "logsumexp", Logsumexp);
  EE_EXPORT(e, "max", Max);
  EE_EXPORT(e, "min", Min);
  EE_EXPORT(e, "argmax", Argmax);
  EE_EXPORT(e, "argmin", Argmin);
  EE_EXPORT(e, "vectorNorm", VectorNorm);
  EE_EXPORT(e, "cumsum", Cumsum);
  EE_EXPORT(e, "topk", Topk);
  EE_EXPORT(e, "sort", Sort);
  EE_EXPORT(e, "triu", Triu);
  EE_EXPORT(e, "tril", Tril);
  EE_EXPORT(e, "diagonal", Diagonal);
  EE_EXPORT(e, "diag", Diag);
  EE_EXPORT(e, "cat", Cat);
  EE_EXPORT(e, "stack", Stack);
  EE_EXPORT(e, "split", Split);
  EE_EXPORT(e, "chunk", Chunk);
}

}  // namespace ee
