// Autograd: requires_grad, backward, .grad, detach, grad mode, torch.autograd.grad.
#include "common.h"

#include <torch/csrc/autograd/autograd.h>
#include <torch/csrc/autograd/grad_mode.h>

namespace ee {

EE_FN(RequiresGrad_) {
  T(info, 0).requires_grad_(Opt(info, 1) ? B(info[1], "requiresGrad") : true);
  return info.Env().Undefined();
}
EE_FN(RequiresGrad) { return Napi::Boolean::New(info.Env(), T(info, 0).requires_grad()); }
EE_FN(IsLeaf) { return Napi::Boolean::New(info.Env(), T(info, 0).is_leaf()); }
EE_FN(RetainGrad) {
  T(info, 0).retain_grad();
  return info.Env().Undefined();
}
// grad(t) -> handle or null
EE_FN(Grad) {
  auto g = T(info, 0).grad();
  if (!g.defined()) return info.Env().Null();
  return Wrap(info.Env(), g);
}
// setGrad(t, g|null)
EE_FN(SetGrad) {
  auto& t = T(info, 0);
  if (Opt(info, 1))
    t.mutable_grad() = T(info, 1, "grad");
  else
    t.mutable_grad() = at::Tensor();
  return info.Env().Undefined();
}
// backward(t, gradient?, retainGraph)
EE_FN(Backward) {
  auto& t = T(info, 0, "backward");
  if (!t.requires_grad())
    ThrowJs(info.Env(), "backward: the tensor does not require grad (no parameter in its graph has requiresGrad, "
                        "or it was computed inside noGrad)");
  at::Tensor g;
  if (Opt(info, 1)) g = T(info, 1, "gradient");
  else if (t.numel() != 1)
    ThrowJs(info.Env(), "backward: grad can be implicitly created only for scalar outputs; pass a gradient tensor");
  c10::optional<bool> retain;
  if (Opt(info, 2)) retain = B(info[2], "retainGraph");
  torch::autograd::backward({t}, g.defined() ? torch::autograd::variable_list{g} : torch::autograd::variable_list{}, retain);
  return info.Env().Undefined();
}
// autogradGrad(outputs[], inputs[], gradOutputs[]|null, retainGraph, createGraph) -> grads[] (null where unused)
EE_FN(AutogradGrad) {
  auto outs = TensorList(info[0], "outputs");
  auto ins = TensorList(info[1], "inputs");
  std::vector<at::Tensor> gouts;
  if (Opt(info, 2)) gouts = TensorList(info[2], "gradOutputs");
  c10::optional<bool> retain;
  if (Opt(info, 3)) retain = B(info[3], "retainGraph");
  bool create = Opt(info, 4) && B(info[4], "createGraph");
  auto gs = torch::autograd::grad(outs, ins, gouts, retain, create, /*allow_unused=*/true);
  auto arr = Napi::Array::New(info.Env(), gs.size());
  for (size_t i = 0; i < gs.size(); i++) arr.Set(i, gs[i].defined() ? Wrap(info.Env(), gs[i]) : info.Env().Null());
  return arr;
}
EE_FN(Detach) { return Wrap(info.Env(), T(info, 0).detach()); }
EE_FN(Detach_) {
  T(info, 0).detach_();
  return info.Env().Undefined();
}
EE_FN(SetGradEnabled) {
  c10::GradMode::set_enabled(B(info[0], "enabled"));
  return info.Env().Undefined();
}
EE_FN(IsGradEnabled) { return Napi::Boolean::New(info.Env(), c10::GradMode::is_enabled()); }

void InitAutograd(Napi::Env env, Napi::Object e) {
  EE_EXPORT(e, "requiresGrad_", RequiresGrad_);
  EE_EXPORT(e, "requiresGrad", RequiresGrad);
  EE_EXPORT(e, "isLeaf", IsLeaf);
  EE_EXPORT(e, "retainGrad", RetainGrad);
  EE_EXPORT(e, "grad", Grad);
  EE_EXPORT(e, "setGrad", SetGrad);
  EE_EXPORT(e, "backward", Backward);
  EE_EXPORT(e, "autogradGrad", AutogradGrad);
  EE_EXPORT(e, "detach", Detach);
  EE_EXPORT(e, "detach_", Detach_);
  EE_EXPORT(e, "setGradEnabled", SetGradEnabled);
  EE_EXPORT(e, "isGradEnabled", IsGradEnabled);
}

}  // namespace ee
