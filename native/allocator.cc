// A caching CPU allocator for large tensors.
//
// Why: on the VMs this project runs on, a fresh page costs a fault (and a zeroing) the first time it is
// touched, and glibc returns large freed blocks to the OS at once (mmap above its threshold, heap trim),
// so a forward pass that allocates and frees tens of MB per op pays those faults again at every op.
// Measured: softmax over an [8,12,256,256] float32 tensor took 75 ms allocating its output and 5 ms
// writing into a reused one. PyTorch on CPU has no caching allocator; this one keeps freed blocks of
// >= 1 MiB in size classes and hands them out again, and backs blocks of >= 2 MiB with transparent huge
// pages (madvise), so the remaining first touches fault 512x less often.
//
// Bounded: at most EDITEVAL_CPU_CACHE_MB (default 2048) of freed blocks are kept; beyond that the
// oldest are released. EDITEVAL_CPU_CACHE_MB=0 turns caching off (huge pages stay).
#include "common.h"

#include <c10/core/Allocator.h>
#include <c10/core/CPUAllocator.h>
#include <c10/core/impl/alloc_cpu.h>

#include <sys/mman.h>

#include <cstdlib>
#include <deque>
#include <map>
#include <mutex>
#include <unordered_map>

namespace ee {

namespace {

constexpr size_t kMinCached = 1u << 20;  // smaller blocks go to glibc as usual
constexpr size_t kHuge = 2u << 20;       // transparent huge page size on x86-64

// Blocks of >= 2 MiB are their own anonymous mappings, aligned to 2 MiB and advised as huge pages.
void* MapHuge(size_t size) {
  size_t span = size + kHuge;
  void* raw = mmap(nullptr, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) throw std::bad_alloc();
  uintptr_t start = reinterpret_cast<uintptr_t>(raw);
  uintptr_t aligned = (start + kHuge - 1) & ~(uintptr_t)(kHuge - 1);
  if (aligned > start) munmap(raw, aligned - start);
  uintptr_t end = aligned + size;
  uintptr_t rawEnd = start + span;
  if (rawEnd > end) munmap(reinterpret_cast<void*>(end), rawEnd - end);
  void* p = reinterpret_cast<void*>(aligned);
  madvise(p, size, MADV_HUGEPAGE);
  return p;
}

void* AllocBlock(size_t size) {
  if (size >= kHuge) return MapHuge(size);
  void* p = nullptr;
  if (posix_memalign(&p, 64, size) != 0 || p == nullptr) throw std::bad_alloc();
  return p;
}

void FreeBlock(void* p, size_t size) {
  if (size >= kHuge)
    munmap(p, size);
  else
    std::free(p);
}

size_t RoundSize(size_t n) {
  // size classes with at most 1/8 waste: round up to a multiple of (the top power of two below n) / 8
  size_t p = 1;
  while ((p << 1) <= n) p <<= 1;
  size_t step = std::max<size_t>(p / 8, 64 * 1024);
  return (n + step - 1) / step * step;
}

class CachingCPUAllocator final : public c10::Allocator {
 public:
  CachingCPUAllocator() {
    const char* v = std::getenv("EDITEVAL_CPU_CACHE_MB");
    limit_ = (v ? static_cast<size_t>(std::atoll(v)) : 2048) << 20;
  }

  c10::DataPtr allocate(size_t nbytes) const override {
    auto* self = const_cast<CachingCPUAllocator*>(this);
    if (nbytes < kMinCached) {
      void* p = c10::alloc_cpu(nbytes);
      return {p, p, &FreeAny, c10::Device(c10::DeviceType::CPU)};
    }
    size_t size = RoundSize(nbytes);
    void* p = self->TakeCached(size);
    if (p == nullptr) p = AllocBlock(size);
    {
      std::lock_guard<std::mutex> g(self->mu_);
      self->sizes_[p] = size;
    }
    return {p, p, &FreeAny, c10::Device(c10::DeviceType::CPU)};
  }

  // raw_allocate/raw_deallocate (used inside some kernels) need a deleter that takes the bare pointer
  c10::DeleterFnPtr raw_deleter() const override { return &FreeAny; }

  static CachingCPUAllocator& Get() {
    static CachingCPUAllocator* a = new CachingCPUAllocator();  // never destroyed: tensors may outlive statics
    return *a;
  }

  size_t CachedBytes() {
    std::lock_guard<std::mutex> g(mu_);
    return cached_;
  }

  void EmptyCache() {
    std::lock_guard<std::mutex> g(mu_);
    for (auto& kv : free_) FreeBlock(kv.second, kv.first);
    free_.clear();
    order_.clear();
    cached_ = 0;
  }

 private:
  // Frees any block of this allocator: large blocks are known by address, the rest came from alloc_cpu.
  static void FreeAny(void* p) {
    if (p == nullptr) return;
    auto& a = Get();
    std::lock_guard<std::mutex> g(a.mu_);
    auto it = a.sizes_.find(p);
    if (it == a.sizes_.end()) {
      c10::free_cpu(p);
      return;
    }
    size_t size = it->second;
    a.sizes_.erase(it);
    if (a.limit_ == 0 || size > a.limit_) {
      FreeBlock(p, size);
      return;
    }
    a.free_.emplace(size, p);
    a.order_.push_back(p);
    a.cached_ += size;
    while (a.cached_ > a.limit_ && !a.order_.empty()) a.EvictOldestLocked();
  }

  void* TakeCached(size_t size) {
    std::lock_guard<std::mutex> g(mu_);
    auto it = free_.find(size);
    if (it == free_.end()) return nullptr;
    void* p = it->second;
    free_.erase(it);
    cached_ -= size;
    for (auto o = order_.begin(); o != order_.end(); ++o)
      if (*o == p) {
        order_.erase(o);
        break;
      }
    return p;
  }

  void EvictOldestLocked() {
    void* p = order_.front();
    order_.pop_front();
    for (auto it = free_.begin(); it != free_.end(); ++it)
      if (it->second == p) {
        cached_ -= it->first;
        FreeBlock(p, it->first);
        free_.erase(it);
        return;
      }
  }

  std::mutex mu_;
  std::unordered_map<void*, size_t> sizes_;  // live large blocks
  std::multimap<size_t, void*> free_;        // cached blocks by size
  std::deque<void*> order_;                  // cached blocks, oldest first
  size_t cached_ = 0;
  size_t limit_ = 0;
};

}  // namespace

EE_FN(CpuCacheStats) {
  auto o = Napi::Object::New(info.Env());
  o.Set("cachedBytes", Napi::Number::New(info.Env(), static_cast<double>(CachingCPUAllocator::Get().CachedBytes())));
  return o;
}

EE_FN(EmptyCpuCache) {
  CachingCPUAllocator::Get().EmptyCache();
  return info.Env().Undefined();
}

void InitAllocator(Napi::Env env, Napi::Object e) {
  const char* off = std::getenv("EDITEVAL_CPU_ALLOCATOR");
  if (!(off && std::string(off) == "default")) c10::SetCPUAllocator(&CachingCPUAllocator::Get(), /*priority=*/100);
  EE_EXPORT(e, "cpuCacheStats", CpuCacheStats);
  EE_EXPORT(e, "emptyCpuCache", EmptyCpuCache);
}

}  // namespace ee
