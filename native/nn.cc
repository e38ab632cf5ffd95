// Neural-network functions: softmax family, normalisation, embedding and gather/scatter, losses.
#include "common.h"

namespace ee {

static c10::optional<at::ScalarType> OptDType(const Napi::CallbackInfo& info, size_t i) {
  if (!Opt(info, i)) return c10::nullopt;
  return DType(info[i]);
}

EE_FN(Softmax) { return Wrap(info.Env(), at::softmax(T(info, 0), I(info[1], "dim"), OptDType(info, 2))); }
EE_FN(LogSoftmax) { return Wrap(info.Env(), at::log_softmax(T(info, 0), I(info[1], "dim"), OptDType(info, 2))); }

// layerNorm(x, normalizedShape, weight?, bias?, eps)
EE_FN(LayerNorm) {
  c10::optional<at::Tensor> w, b;
  if (Opt(info, 2)) w = T(info, 2, "weight");
  if (Opt(info, 3)) b = T(info, 3, "bias");
  return Wrap(info.Env(), at::layer_norm(T(info, 0), IntList(info[1], "normalizedShape"), w, b, D(info[4], "eps")));
}

// embedding(weight, indices)
EE_FN(Embedding) { return Wrap(info.Env(), at::embedding(T(info, 0, "weight"), T(info, 1, "indices"))); }
// gather(t, dim, index)
EE_FN(Gather) { return Wrap(info.Env(), at::gather(T(info, 0), I(info[1], "dim"), T(info, 2, "index"))); }
// scatter(t, dim, index, src tensor or number)
EE_FN(Scatter) {
  if (IsTensor(info[3])) return Wrap(info.Env(), at::scatter(T(info, 0), I(info[1], "dim"), T(info, 2, "index"), T(info, 3, "src")));
  return Wrap(info.Env(), at::scatter(T(info, 0), I(info[1], "dim"), T(info, 2, "index"), S(info[3], "value")));
}
EE_FN(ScatterAdd) {
  return Wrap(info.Env(), at::scatter_add(T(info, 0), I(info[1], "dim"), T(info, 2, "index"), T(info, 3, "src")));
}
EE_FN(IndexSelect) { return Wrap(info.Env(), at::index_select(T(info, 0), I(info[1], "dim"), T(info, 2, "index"))); }
// indexAdd(t, dim, index, source, alpha)
EE_FN(IndexAdd) {
  return Wrap(info.Env(), at::index_add(T(info, 0), I(info[1], "dim"), T(info, 2, "index"), T(info, 3, "source"),
                                        Opt(info, 4) ? S(info[4], "alpha") : at::Scalar(1)));
}
EE_FN(IndexAdd_) {
  T(info, 0).index_add_(I(info[1], "dim"), T(info, 2, "index"), T(info, 3, "source"),
                        Opt(info, 4) ? S(info[4], "alpha") : at::Scalar(1));
  return info.Env().Undefined();
}

// crossEntropy(logits [N, C], target [N] int64, ignoreIndex, reduction 0 none / 1 mean / 2 sum)
EE_FN(CrossEntropy) {
  return Wrap(info.Env(), at::cross_entropy_loss(T(info, 0, "input"), T(info, 1, "target"), c10::nullopt,
                                                 Opt(info, 3) ? I(info[3], "reduction") : 1,
                                                 Opt(info, 2) ? I(info[2], "ignoreIndex") : -100, 0.0));
}
// nllLoss(logprobs [N, C], target [N], ignoreIndex, reduction)
EE_FN(NllLoss) {
  return Wrap(info.Env(), at::nll_loss(T(info, 0, "input"), T(info, 1, "target"), c10::nullopt,
                                       Opt(info, 3) ? I(info[3], "reduction") : 1, Opt(info, 2) ? I(info[2], "ignoreIndex") : -100));
}
// klDiv(input logprobs, target, reduction, logTarget): as torch.nn.functional.kl_div with reduction codes
// 0 none, 1 mean, 2 sum; "batchmean" is sum / batch size, composed in TypeScript.
EE_FN(KlDiv) {
  return Wrap(info.Env(), at::kl_div(T(info, 0, "input"), T(info, 1, "target"), Opt(info, 2) ? I(info[2], "reduction") : 1,
                                     Opt(info, 3) && B(info[3], "logTarget")));
}

void InitNN(Napi::Env env, Napi::Object e) {
  EE_EXPORT(e, "softmax", Softmax);
  EE_EXPORT(e, "logSoftmax", LogSoftmax);
  EE_EXPORT(e, "layerNorm", LayerNorm);
  EE_EXPORT(e, "embedding", Embedding);
  EE_EXPORT(e, "gather", Gather);
  EE_EXPORT(e, "scatter", Scatter);
  EE_EXPORT(e, "scatterAdd", ScatterAdd);
  EE_EXPORT(e, "indexSelect", IndexSelect);
  EE_EXPORT(e, "indexAdd", IndexAdd);
  EE_EXPORT(e, "indexAdd_", IndexAdd_);
  EE_EXPORT(e, "crossEntropy", CrossEntropy);
  EE_EXPORT(e, "nllLoss", NllLoss);
  EE_EXPORT(e, "klDiv", KlDiv);
}

}  // namespace ee
