// Module entry: thread settings and registration of every part of the binding.
//
// Threads: torch's intra-op pool gets OMP_NUM_THREADS threads when set, else 1; OpenBLAS threads
// itself (OPENBLAS_NUM_THREADS). Measured on the 2-core machines of this project: letting both
// spawn threads made a transformer block 2x slower and noisy.
#include "common.h"

#include <ATen/Parallel.h>

#include <cstdlib>

namespace ee {

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  InitAllocator(env, exports);
  const char* omp = std::getenv("OMP_NUM_THREADS");
  int threads = 1;
  if (omp && std::atoi(omp) > 0) threads = std::atoi(omp);
  at::set_num_threads(threads);
  try {
    at::set_num_interop_threads(1);
  } catch (...) {
    // already set (a second instance of the addon in the same process)
  }
  InitTensor(env, exports);
  InitOps(env, exports);
  InitNN(env, exports);
  InitLinalg(env, exports);
  InitAutograd(env, exports);
  InitIO(env, exports);
  return exports;
}

}  // namespace ee

static Napi::Object InitAddon(Napi::Env env, Napi::Object exports) { return ee::Init(env, exports); }

NODE_API_MODULE(editeval_native, InitAddon)
