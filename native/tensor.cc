// Tensor handles, argument conversion, creation, metadata, data in/out, views and indexing.
#include "common.h"

#include <ATen/Parallel.h>
#include <ATen/TensorIndexing.h>
#include <torch/version.h>

#include <cstring>
#include <cstdlib>

namespace ee {

// ---------------------------------------------------------------------------------------------
// Handles and memory accounting
// ---------------------------------------------------------------------------------------------
static int64_t BytesOf(const at::Tensor& t) {
  if (!t.defined()) return 0;
  return static_cast<int64_t>(t.numel()) * static_cast<int64_t>(t.element_size());
}

static int64_t g_live_handles = 0;
static int64_t g_reported_bytes = 0;

static void Finalize(Napi::Env env, Handle* h) {
  if (!h->freed) Release(env, h);
  h->magic = 0;
  delete h;
}

Napi::Value Wrap(Napi::Env env, at::Tensor t) {
  auto* h = new Handle();
  h->t = std::move(t);
  h->reported = BytesOf(h->t);
  if (h->reported > 0) {
    int64_t adjusted = 0;
    napi_adjust_external_memory(env, h->reported, &adjusted);
  }
  g_live_handles++;
  g_reported_bytes += h->reported;
  return Napi::External<Handle>::New(env, h, Finalize);
}

void Release(Napi::Env env, Handle* h) {
  if (h->freed) return;
  h->freed = true;
  h->t = at::Tensor();
  if (h->reported > 0) {
    int64_t adjusted = 0;
    napi_adjust_external_memory(env, -h->reported, &adjusted);
  }
  g_live_handles--;
  g_reported_bytes -= h->reported;
  h->reported = 0;
}

bool IsTensor(const Napi::Value& v) {
  if (!v.IsExternal()) return false;
  auto* h = v.As<Napi::External<Handle>>().Data();
  return h != nullptr && h->magic == kHandleMagic;
}

Handle* GetHandle(const Napi::Value& v, const char* what) {
  if (!IsTensor(v)) throw Napi::TypeError::New(v.Env(), std::string(what) + ": expected a Tensor");
  auto* h = v.As<Napi::External<Handle>>().Data();
  if (h->freed)
    throw Napi::Error::New(v.Env(), std::string(what) +
                                        ": this tensor was freed (its scope ended or free() was called); "
                                        "keep() it or clone() it before the scope ends");
  return h;
}

// ---------------------------------------------------------------------------------------------
// Argument conversion
// ---------------------------------------------------------------------------------------------
at::Scalar S(const Napi::Value& v, const char* what) {
  if (v.IsBoolean()) return at::Scalar(v.As<Napi::Boolean>().Value());
  if (v.IsNumber()) {
    double d = v.As<Napi::Number>().DoubleValue();
    // JavaScript has one number type; an integral value acts like a Python int (keeps integer dtypes),
    // anything else like a Python float.
    if (std::isfinite(d) && d == static_cast<double>(static_cast<int64_t>(d)) && std::abs(d) < 9.007199254740992e15)
      return at::Scalar(static_cast<int64_t>(d));
    return at::Scalar(d);
  }
  if (v.IsBigInt()) {
    bool lossless = false;
    int64_t x = v.As<Napi::BigInt>().Int64Value(&lossless);
    return at::Scalar(x);
  }
  throw Napi::TypeError::New(v.Env(), std::string(what) + ": expected a number");
}

double D(const Napi::Value& v, const char* what) {
  if (!v.IsNumber()) throw Napi::TypeError::New(v.Env(), std::string(what) + ": expected a number");
  return v.As<Napi::Number>().DoubleValue();
}

int64_t I(const Napi::Value& v, const char* what) {
  if (v.IsBigInt()) {
    bool lossless = false;
    return v.As<Napi::BigInt>().Int64Value(&lossless);
  }
  if (!v.IsNumber()) throw Napi::TypeError::New(v.Env(), std::string(what) + ": expected an integer");
  double d = v.As<Napi::Number>().DoubleValue();
  if (d != static_cast<double>(static_cast<int64_t>(d)))
    throw Napi::TypeError::New(v.Env(), std::string(what) + ": expected an integer, got " + std::to_string(d));
  return static_cast<int64_t>(d);
}

bool B(const Napi::Value& v, const char* what) {
  if (!v.IsBoolean()) throw Napi::TypeError::New(v.Env(), std::string(what) + ": expected a boolean");
  return v.As<Napi::Boolean>().Value();
}

std::string Str(const Napi::Value& v, const char* what) {
  if (!v.IsString()) throw Napi::TypeError::New(v.Env(), std::string(what) + ": expected a string");
  return v.As<Napi::String>().Utf8Value();
}

std::vector<int64_t> IntList(const Napi::Value& v, const char* what) {
  std::vector<int64_t> out;
  if (v.IsNumber()) {
    out.push_back(I(v, what));
    return out;
  }
  if (!v.IsArray()) throw Napi::TypeError::New(v.Env(), std::string(what) + ": expected an array of integers");
  auto arr = v.As<Napi::Array>();
  out.reserve(arr.Length());
  for (uint32_t i = 0; i < arr.Length(); i++) out.push_back(I(arr.Get(i), what));
  return out;
}

std::vector<at::Tensor> TensorList(const Napi::Value& v, const char* what) {
  if (!v.IsArray()) throw Napi::TypeError::New(v.Env(), std::string(what) + ": expected an array of tensors");
  auto arr = v.As<Napi::Array>();
  std::vector<at::Tensor> out;
  out.reserve(arr.Length());
  for (uint32_t i = 0; i < arr.Length(); i++) out.push_back(T(arr.Get(i), what));
  return out;
}

// dtype codes shared with src/torch/dtype.ts
static const at::ScalarType kDTypes[] = {
    at::kFloat, at::kDouble, at::kBFloat16, at::kHalf, at::kLong, at::kInt, at::kShort, at::kChar, at::kByte, at::kBool,
};
constexpr int kNumDTypes = sizeof(kDTypes) / sizeof(kDTypes[0]);

at::ScalarType DType(const Napi::Value& v) {
  int64_t code = I(v, "dtype");
  if (code < 0 || code >= kNumDTypes) throw Napi::TypeError::New(v.Env(), "dtype: unknown code " + std::to_string(code));
  return kDTypes[code];
}

int DTypeCode(at::ScalarType st) {
  for (int i = 0; i < kNumDTypes; i++)
    if (kDTypes[i] == st) return i;
  return -1;
}

at::Device Dev(const Napi::Value& v) {
  std::string s = Str(v, "device");
  try {
    return at::Device(s);
  } catch (const c10::Error&) {
    throw Napi::TypeError::New(v.Env(), "device: cannot parse '" + s + "' (expected 'cpu', 'cuda' or 'cuda:N')");
  }
}

bool Opt(const Napi::CallbackInfo& info, size_t i) {
  return info.Length() > i && !info[i].IsUndefined() && !info[i].IsNull();
}

[[noreturn]] void ThrowJs(Napi::Env env, const std::string& msg) { throw Napi::Error::New(env, msg); }

std::string CleanTorchMessage(const char* what) {
  std::string s(what ? what : "torch error");
  // c10 appends "Exception raised from ..." with a C++ frame; keep the user-facing first part.
  auto pos = s.find("\nException raised from");
  if (pos != std::string::npos) s = s.substr(0, pos);
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

static at::TensorOptions Options(const Napi::CallbackInfo& info, size_t dtypeIdx, size_t deviceIdx,
                                 at::ScalarType def = at::kFloat) {
  auto o = at::TensorOptions().dtype(Opt(info, dtypeIdx) ? DType(info[dtypeIdx]) : def);
  if (Opt(info, deviceIdx)) o = o.device(Dev(info[deviceIdx]));
  return o;
}

// ---------------------------------------------------------------------------------------------
// Lifetime and metadata
// ---------------------------------------------------------------------------------------------
EE_FN(Free) {
  if (!IsTensor(info[0])) throw Napi::TypeError::New(info.Env(), "free: expected a Tensor");
  Release(info.Env(), info[0].As<Napi::External<Handle>>().Data());
  return info.Env().Undefined();
}

EE_FN(IsFreed) {
  if (!IsTensor(info[0])) throw Napi::TypeError::New(info.Env(), "isFreed: expected a Tensor");
  return Napi::Boolean::New(info.Env(), info[0].As<Napi::External<Handle>>().Data()->freed);
}

EE_FN(Shape) {
  auto& t = T(info, 0);
  auto sizes = t.sizes();
  auto arr = Napi::Array::New(info.Env(), sizes.size());
  for (size_t i = 0; i < sizes.size(); i++) arr.Set(i, Napi::Number::New(info.Env(), static_cast<double>(sizes[i])));
  return arr;
}

EE_FN(Strides) {
  auto& t = T(info, 0);
  auto st = t.strides();
  auto arr = Napi::Array::New(info.Env(), st.size());
  for (size_t i = 0; i < st.size(); i++) arr.Set(i, Napi::Number::New(info.Env(), static_cast<double>(st[i])));
  return arr;
}

EE_FN(Dim) { return Napi::Number::New(info.Env(), T(info, 0).dim()); }
EE_FN(Numel) { return Napi::Number::New(info.Env(), static_cast<double>(T(info, 0).numel())); }
EE_FN(DTypeOf) {
  int code = DTypeCode(T(info, 0).scalar_type());
  if (code < 0) ThrowJs(info.Env(), std::string("unsupported dtype ") + c10::toString(T(info, 0).scalar_type()));
  return Napi::Number::New(info.Env(), code);
}
EE_FN(DeviceOf) { return Napi::String::New(info.Env(), T(info, 0).device().str()); }
EE_FN(IsContiguous) { return Napi::Boolean::New(info.Env(), T(info, 0).is_contiguous()); }
EE_FN(DataPtr) {
  // identity of the underlying storage, for tests of views and zero-copy loading
  return Napi::Number::New(info.Env(), static_cast<double>(reinterpret_cast<uintptr_t>(T(info, 0).data_ptr())));
}

EE_FN(MemoryStats) {
  auto o = Napi::Object::New(info.Env());
  o.Set("liveHandles", Napi::Number::New(info.Env(), static_cast<double>(g_live_handles)));
  o.Set("reportedBytes", Napi::Number::New(info.Env(), static_cast<double>(g_reported_bytes)));
  return o;
}

// ---------------------------------------------------------------------------------------------
// Data in and out
// ---------------------------------------------------------------------------------------------
// fromBuffer(typedArrayOrBuffer, dtype, shape, device?)
EE_FN(FromBuffer) {
  if (!info[0].IsTypedArray() && !info[0].IsBuffer() && !info[0].IsArrayBuffer())
    throw Napi::TypeError::New(info.Env(), "fromBuffer: expected a TypedArray, Buffer or ArrayBuffer");
  const uint8_t* data = nullptr;
  size_t len = 0;
  if (info[0].IsArrayBuffer()) {
    auto ab = info[0].As<Napi::ArrayBuffer>();
    data = static_cast<const uint8_t*>(ab.Data());
    len = ab.ByteLength();
  } else {
    auto ta = info[0].As<Napi::TypedArray>();
    data = static_cast<const uint8_t*>(ta.ArrayBuffer().Data()) + ta.ByteOffset();
    len = ta.ByteLength();
  }
  auto dtype = DType(info[1]);
  auto shape = IntList(info[2], "fromBuffer shape");
  for (auto s : shape)
    if (s < 0) ThrowJs(info.Env(), "fromBuffer: negative size in shape");
  auto t = at::empty(shape, at::TensorOptions().dtype(dtype));
  size_t need = static_cast<size_t>(t.numel()) * t.element_size();
  if (need != len)
    ThrowJs(info.Env(), "fromBuffer: shape [" + c10::Join(",", shape) + "] of " + c10::toString(dtype) + " needs " +
                            std::to_string(need) + " bytes, got " + std::to_string(len));
  if (need > 0) std::memcpy(t.data_ptr(), data, need);
  if (Opt(info, 3)) t = t.to(Dev(info[3]));
  return Wrap(info.Env(), t);
}

// toBuffer(t) -> ArrayBuffer with a contiguous CPU copy of the data (row-major)
EE_FN(ToBuffer) {
  auto t = T(info, 0).detach();
  if (t.device().type() != at::kCPU) t = t.to(at::kCPU);
  t = t.contiguous();
  size_t n = static_cast<size_t>(t.numel()) * t.element_size();
  auto ab = Napi::ArrayBuffer::New(info.Env(), n);
  if (n > 0) std::memcpy(ab.Data(), t.data_ptr(), n);
  return ab;
}

EE_FN(Item) {
  auto& t = T(info, 0);
  if (t.numel() != 1)
    ThrowJs(info.Env(), "item: a tensor with " + std::to_string(t.numel()) + " elements cannot be converted to a number");
  auto s = t.item();
  if (s.isBoolean()) return Napi::Boolean::New(info.Env(), s.toBool());
  if (s.isIntegral(false)) return Napi::Number::New(info.Env(), static_cast<double>(s.toLong()));
  return Napi::Number::New(info.Env(), s.toDouble());
}

// ---------------------------------------------------------------------------------------------
// Creation
// ---------------------------------------------------------------------------------------------
EE_FN(Empty) { return Wrap(info.Env(), at::empty(IntList(info[0], "shape"), Options(info, 1, 2))); }
EE_FN(Zeros) { return Wrap(info.Env(), at::zeros(IntList(info[0], "shape"), Options(info, 1, 2))); }
EE_FN(Ones) { return Wrap(info.Env(), at::ones(IntList(info[0], "shape"), Options(info, 1, 2))); }
EE_FN(Full) { return Wrap(info.Env(), at::full(IntList(info[0], "shape"), S(info[1], "fill value"), Options(info, 2, 3))); }
EE_FN(Eye) { return Wrap(info.Env(), at::eye(I(info[0], "n"), I(info[1], "m"), Options(info, 2, 3))); }
// arange(start, end, step, dtype?, device?)
EE_FN(Arange) {
  auto o = Options(info, 3, 4, at::kLong);
  return Wrap(info.Env(), at::arange(S(info[0], "start"), S(info[1], "end"), S(info[2], "step"), o));
}
EE_FN(Linspace) {
  return Wrap(info.Env(), at::linspace(S(info[0], "start"), S(info[1], "end"), I(info[2], "steps"), Options(info, 3, 4)));
}
EE_FN(ZerosLike) { return Wrap(info.Env(), at::zeros_like(T(info, 0))); }
EE_FN(OnesLike) { return Wrap(info.Env(), at::ones_like(T(info, 0))); }
EE_FN(FullLike) { return Wrap(info.Env(), at::full_like(T(info, 0), S(info[1], "fill value"))); }

// ---------------------------------------------------------------------------------------------
// Random numbers: the global generator (manualSeed) or an explicit Generator handle
// ---------------------------------------------------------------------------------------------
struct GenHandle {
  at::Generator g;
};

static c10::optional<at::Generator> Gen(const Napi::CallbackInfo& info, size_t i) {
  if (!Opt(info, i)) return c10::nullopt;
  if (!info[i].IsExternal()) throw Napi::TypeError::New(info.Env(), "generator: expected a Generator");
  return info[i].As<Napi::External<GenHandle>>().Data()->g;
}

EE_FN(ManualSeed) {
  at::manual_seed(static_cast<uint64_t>(I(info[0], "seed")));
  return info.Env().Undefined();
}
EE_FN(NewGenerator) {
  auto* gh = new GenHandle{at::make_generator<at::CPUGeneratorImpl>(static_cast<uint64_t>(I(info[0], "seed")))};
  return Napi::External<GenHandle>::New(info.Env(), gh, [](Napi::Env, GenHandle* p) { delete p; });
}
// randn(shape, dtype?, device?, generator?)
EE_FN(Randn) { return Wrap(info.Env(), at::randn(IntList(info[0], "shape"), Gen(info, 3), Options(info, 1, 2))); }
EE_FN(Rand) { return Wrap(info.Env(), at::rand(IntList(info[0], "shape"), Gen(info, 3), Options(info, 1, 2))); }
// randint(low, high, shape, dtype?, device?, generator?)
EE_FN(Randint) {
  return Wrap(info.Env(), at::randint(I(info[0], "low"), I(info[1], "high"), IntList(info[2], "shape"), Gen(info, 5),
                                      Options(info, 3, 4, at::kLong)));
}
EE_FN(Randperm) {
  return Wrap(info.Env(), at::randperm(I(info[0], "n"), Gen(info, 1), at::TensorOptions().dtype(at::kLong)));
}
// multinomial(probs, numSamples, replacement, generator?)
EE_FN(Multinomial) {
  return Wrap(info.Env(), at::multinomial(T(info, 0), I(info[1], "numSamples"), B(info[2], "replacement"), Gen(info, 3)));
}

// ---------------------------------------------------------------------------------------------
// Conversion, copies, views
// ---------------------------------------------------------------------------------------------
// to(t, dtype|null, device|null, copy)
EE_FN(To) {
  auto& t = T(info, 0);
  auto dtype = Opt(info, 1) ? DType(info[1]) : t.scalar_type();
  auto device = Opt(info, 2) ? Dev(info[2]) : t.device();
  bool copy = Opt(info, 3) && B(info[3], "copy");
  return Wrap(info.Env(), t.to(device, dtype, /*non_blocking=*/false, copy));
}
EE_FN(Clone) { return Wrap(info.Env(), T(info, 0).clone()); }
EE_FN(Contiguous) { return Wrap(info.Env(), T(info, 0).contiguous()); }
EE_FN(Copy_) {
  T(info, 0).copy_(T(info, 1, "src"));
  return info.Env().Undefined();
}
EE_FN(View) { return Wrap(info.Env(), T(info, 0).view(IntList(info[1], "shape"))); }
EE_FN(Reshape) { return Wrap(info.Env(), T(info, 0).reshape(IntList(info[1], "shape"))); }
EE_FN(Transpose) { return Wrap(info.Env(), T(info, 0).transpose(I(info[1], "dim0"), I(info[2], "dim1"))); }
EE_FN(Permute) { return Wrap(info.Env(), T(info, 0).permute(IntList(info[1], "dims"))); }
EE_FN(Unsqueeze) { return Wrap(info.Env(), T(info, 0).unsqueeze(I(info[1], "dim"))); }
EE_FN(Squeeze) {
  if (Opt(info, 1)) return Wrap(info.Env(), T(info, 0).squeeze(I(info[1], "dim")));
  return Wrap(info.Env(), T(info, 0).squeeze());
}
EE_FN(Flatten) { return Wrap(info.Env(), T(info, 0).flatten(I(info[1], "startDim"), I(info[2], "endDim"))); }
EE_FN(Expand) { return Wrap(info.Env(), T(info, 0).expand(IntList(info[1], "shape"))); }
EE_FN(Repeat) { return Wrap(info.Env(), T(info, 0).repeat(IntList(info[1], "repeats"))); }
EE_FN(RepeatInterleave) {
  return Wrap(info.Env(), T(info, 0).repeat_interleave(I(info[1], "repeats"), I(info[2], "dim")));
}
EE_FN(Narrow) { return Wrap(info.Env(), T(info, 0).narrow(I(info[1], "dim"), I(info[2], "start"), I(info[3], "length"))); }
EE_FN(Select) { return Wrap(info.Env(), T(info, 0).select(I(info[1], "dim"), I(info[2], "index"))); }
EE_FN(Flip) { return Wrap(info.Env(), T(info, 0).flip(IntList(info[1], "dims"))); }
EE_FN(Roll) { return Wrap(info.Env(), T(info, 0).roll(IntList(info[1], "shifts"), IntList(info[2], "dims"))); }

// Indexing with a list of specs, as in Python's t[...]:
//   number -> integer index; {start?, stop?, step?} -> slice; null -> None (new axis);
//   "..." -> Ellipsis; Tensor -> advanced (integer or boolean) index.
static std::vector<at::indexing::TensorIndex> IndexSpecs(const Napi::Value& v) {
  using namespace at::indexing;
  if (!v.IsArray()) throw Napi::TypeError::New(v.Env(), "index: expected an array of index specs");
  auto arr = v.As<Napi::Array>();
  std::vector<TensorIndex> out;
  out.reserve(arr.Length());
  for (uint32_t i = 0; i < arr.Length(); i++) {
    Napi::Value s = arr.Get(i);
    if (s.IsNull()) {
      out.emplace_back(None);
    } else if (s.IsNumber()) {
      out.emplace_back(I(s, "index"));
    } else if (s.IsString() && s.As<Napi::String>().Utf8Value() == "...") {
      out.emplace_back(Ellipsis);
    } else if (IsTensor(s)) {
      out.emplace_back(T(s, "index"));
    } else if (s.IsObject()) {
      auto o = s.As<Napi::Object>();
      c10::optional<int64_t> start, stop, step;
      if (o.Has("start") && !o.Get("start").IsUndefined() && !o.Get("start").IsNull()) start = I(o.Get("start"), "slice start");
      if (o.Has("stop") && !o.Get("stop").IsUndefined() && !o.Get("stop").IsNull()) stop = I(o.Get("stop"), "slice stop");
      if (o.Has("step") && !o.Get("step").IsUndefined() && !o.Get("step").IsNull()) step = I(o.Get("step"), "slice step");
      out.emplace_back(Slice(start, stop, step));
    } else {
      throw Napi::TypeError::New(v.Env(), "index: unsupported index spec at position " + std::to_string(i));
    }
  }
  return out;
}

EE_FN(Index) { return Wrap(info.Env(), T(info, 0).index(IndexSpecs(info[1]))); }
// indexPut_(t, specs, value tensor or scalar)
EE_FN(IndexPut_) {
  auto specs = IndexSpecs(info[1]);
  if (IsTensor(info[2]))
    T(info, 0).index_put_(specs, T(info, 2, "value"));
  else
    T(info, 0).index_put_(specs, S(info[2], "value"));
  return info.Env().Undefined();
}

// ---------------------------------------------------------------------------------------------
// Threads
// ---------------------------------------------------------------------------------------------
EE_FN(SetNumThreads) {
  at::set_num_threads(static_cast<int>(I(info[0], "threads")));
  return info.Env().Undefined();
}
EE_FN(GetNumThreads) { return Napi::Number::New(info.Env(), at::get_num_threads()); }
EE_FN(CudaAvailable) {
  return Napi::Boolean::New(info.Env(), at::hasCUDA());
}
EE_FN(Version) {
  auto o = Napi::Object::New(info.Env());
  o.Set("torch", Napi::String::New(info.Env(), TORCH_VERSION));
  o.Set("parallel", Napi::String::New(info.Env(), at::get_parallel_info()));
  return o;
}

void InitTensor(Napi::Env env, Napi::Object e) {
  EE_EXPORT(e, "free", Free);
  EE_EXPORT(e, "isFreed", IsFreed);
  EE_EXPORT(e, "shape", Shape);
  EE_EXPORT(e, "strides", Strides);
  EE_EXPORT(e, "dim", Dim);
  EE_EXPORT(e, "numel", Numel);
  EE_EXPORT(e, "dtype", DTypeOf);
  EE_EXPORT(e, "device", DeviceOf);
  EE_EXPORT(e, "isContiguous", IsContiguous);
  EE_EXPORT(e, "dataPtr", DataPtr);
  EE_EXPORT(e, "memoryStats", MemoryStats);
  EE_EXPORT(e, "fromBuffer", FromBuffer);
  EE_EXPORT(e, "toBuffer", ToBuffer);
  EE_EXPORT(e, "item", Item);
  EE_EXPORT(e, "empty", Empty);
  EE_EXPORT(e, "zeros", Zeros);
  EE_EXPORT(e, "ones", Ones);
  EE_EXPORT(e, "full", Full);
  EE_EXPORT(e, "eye", Eye);
  EE_EXPORT(e, "arange", Arange);
  EE_EXPORT(e, "linspace", Linspace);
  EE_EXPORT(e, "zerosLike", ZerosLike);
  EE_EXPORT(e, "onesLike", OnesLike);
  EE_EXPORT(e, "fullLike", FullLike);
  EE_EXPORT(e, "manualSeed", ManualSeed);
  EE_EXPORT(e, "newGenerator", NewGenerator);
  EE_EXPORT(e, "randn", Randn);
  EE_EXPORT(e, "rand", Rand);
  EE_EXPORT(e, "randint", Randint);
  EE_EXPORT(e, "randperm", Randperm);
  EE_EXPORT(e, "multinomial", Multinomial);
  EE_EXPORT(e, "to", To);
  EE_EXPORT(e, "clone", Clone);
  EE_EXPORT(e, "contiguous", Contiguous);
  EE_EXPORT(e, "copy_", Copy_);
  EE_EXPORT(e, "view", View);
  EE_EXPORT(e, "reshape", Reshape);
  EE_EXPORT(e, "transpose", Transpose);
  EE_EXPORT(e, "permute", Permute);
  EE_EXPORT(e, "unsqueeze", Unsqueeze);
  EE_EXPORT(e, "squeeze", Squeeze);
  EE_EXPORT(e, "flatten", Flatten);
  EE_EXPORT(e, "expand", Expand);
  EE_EXPORT(e, "repeat", Repeat);
  EE_EXPORT(e, "repeatInterleave", RepeatInterleave);
  EE_EXPORT(e, "narrow", Narrow);
  EE_EXPORT(e, "select", Select);
  EE_EXPORT(e, "flip", Flip);
  EE_EXPORT(e, "roll", Roll);
  EE_EXPORT(e, "index", Index);
  EE_EXPORT(e, "indexPut_", IndexPut_);
  EE_EXPORT(e, "setNumThreads", SetNumThreads);
  EE_EXPORT(e, "getNumThreads", GetNumThreads);
  EE_EXPORT(e, "cudaAvailable", CudaAvailable);
  EE_EXPORT(e, "version", Version);
}

}  // namespace ee
