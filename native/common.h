// Shared pieces of the libtorch binding: the tensor handle, argument conversion, error guard.
//
// A tensor crosses into JavaScript as a Napi::External<Handle>. The TypeScript class `Tensor`
// (src/torch/tensor.ts) owns one handle and frees it deterministically (scopes, `using`, free());
// the External's finalizer is only a safety net for handles the program forgot.
#pragma once

#include <napi.h>

#include <ATen/ATen.h>
#include <c10/util/Exception.h>

#include <cstdint>
#include <string>
#include <vector>

namespace ee {

constexpr uint32_t kHandleMagic = 0x7E45A11Fu;

struct Handle {
  uint32_t magic = kHandleMagic;
  at::Tensor t;
  int64_t reported = 0;  // bytes reported to V8 as external memory
  bool freed = false;
};

// Wraps a tensor into a new JavaScript handle and reports its bytes to V8.
Napi::Value Wrap(Napi::Env env, at::Tensor t);
// Releases the tensor held by a handle (idempotent) and un-reports its bytes.
void Release(Napi::Env env, Handle* h);

bool IsTensor(const Napi::Value& v);
Handle* GetHandle(const Napi::Value& v, const char* what);
inline at::Tensor& T(const Napi::Value& v, const char* what = "tensor") { return GetHandle(v, what)->t; }
inline at::Tensor& T(const Napi::CallbackInfo& info, size_t i, const char* what = "tensor") {
  return GetHandle(info[i], what)->t;
}

at::Scalar S(const Napi::Value& v, const char* what = "scalar");
double D(const Napi::Value& v, const char* what);
int64_t I(const Napi::Value& v, const char* what);
bool B(const Napi::Value& v, const char* what);
std::string Str(const Napi::Value& v, const char* what);
std::vector<int64_t> IntList(const Napi::Value& v, const char* what);
std::vector<at::Tensor> TensorList(const Napi::Value& v, const char* what);
at::ScalarType DType(const Napi::Value& v);
int DTypeCode(at::ScalarType st);
at::Device Dev(const Napi::Value& v);
bool Opt(const Napi::CallbackInfo& info, size_t i);  // argument i present and not undefined/null

// Error guard: every exported function runs inside it, so a C++ exception (c10::Error, std::exception)
// becomes a JavaScript Error and never aborts the process.
[[noreturn]] void ThrowJs(Napi::Env env, const std::string& msg);
std::string CleanTorchMessage(const char* what);

template <Napi::Value (*F)(const Napi::CallbackInfo&)>
Napi::Value Guard(const Napi::CallbackInfo& info) {
  try {
    return F(info);
  } catch (const Napi::Error&) {
    throw;
  } catch (const c10::Error& e) {
    throw Napi::Error::New(info.Env(), CleanTorchMessage(e.what_without_backtrace()));
  } catch (const std::exception& e) {
    throw Napi::Error::New(info.Env(), e.what());
  } catch (...) {
    throw Napi::Error::New(info.Env(), "unknown native exception");
  }
}

#define EE_FN(name) static Napi::Value name(const Napi::CallbackInfo& info)
#define EE_EXPORT(exports, jsname, fn) \
  (exports).Set(jsname, Napi::Function::New<ee::Guard<fn>>((exports).Env(), jsname))

void InitTensor(Napi::Env env, Napi::Object exports);
void InitOps(Napi::Env env, Napi::Object exports);
void InitNN(Napi::Env env, Napi::Object exports);
void InitLinalg(Napi::Env env, Napi::Object exports);
void InitAutograd(Napi::Env env, Napi::Object exports);
void InitIO(Napi::Env env, Napi::Object exports);
void InitAllocator(Napi::Env env, Napi::Object exports);

}  // namespace ee
