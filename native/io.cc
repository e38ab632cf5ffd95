// Zero-copy file access for safetensors: a file is mapped once (MAP_PRIVATE, copy-on-write, so an
// in-place edit of a loaded weight never reaches the file) and tensors are created over byte ranges
// of the mapping. The mapping lives until its handle and every tensor over it are gone. Header
// parsing and validation live in TypeScript (src/torch/safetensors.ts); this file checks bounds again.
#include "common.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>

namespace ee {

struct Mapping {
  void* base = nullptr;
  size_t len = 0;
  ~Mapping() {
    if (base && len) munmap(base, len);
  }
};

struct MapHandle {
  std::shared_ptr<Mapping> m;
};

// mmapFile(path) -> { handle, byteLength }
EE_FN(MmapFile) {
  std::string path = Str(info[0], "path");
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) ThrowJs(info.Env(), path + ": cannot open (" + std::strerror(errno) + ")");
  struct stat st;
  if (fstat(fd, &st) != 0) {
    int err = errno;
    close(fd);
    ThrowJs(info.Env(), path + ": cannot stat (" + std::strerror(err) + ")");
  }
  auto m = std::make_shared<Mapping>();
  m->len = static_cast<size_t>(st.st_size);
  if (m->len > 0) {
    void* p = mmap(nullptr, m->len, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      int err = errno;
      close(fd);
      m->len = 0;
      ThrowJs(info.Env(), path + ": mmap failed (" + std::strerror(err) + ")");
    }
    m->base = p;
  }
  close(fd);
  auto* h = new MapHandle{m};
  auto o = Napi::Object::New(info.Env());
  o.Set("handle", Napi::External<MapHandle>::New(info.Env(), h, [](Napi::Env, MapHandle* p) { delete p; }));
  o.Set("byteLength", Napi::Number::New(info.Env(), static_cast<double>(m->len)));
  return o;
}

// closeMapping(handle): drops this handle's reference (tensors over the mapping keep it alive)
EE_FN(CloseMapping) {
  auto* h = info[0].As<Napi::External<MapHandle>>().Data();
  h->m.reset();
  return info.Env().Undefined();
}

// fromMapping(handle, byteOffset, byteLength, dtype, shape) -> tensor over the mapped bytes
// (copied instead when the offset is not aligned to the element size).
EE_FN(FromMapping) {
  if (!info[0].IsExternal()) throw Napi::TypeError::New(info.Env(), "fromMapping: expected a mapping handle");
  auto* h = info[0].As<Napi::External<MapHandle>>().Data();
  if (!h->m) ThrowJs(info.Env(), "fromMapping: the mapping was closed");
  int64_t off = I(info[1], "byteOffset");
  int64_t len = I(info[2], "byteLength");
  auto dtype = DType(info[3]);
  auto shape = IntList(info[4], "shape");
  auto m = h->m;
  if (off < 0 || len < 0 || static_cast<size_t>(off) > m->len || static_cast<size_t>(len) > m->len - off)
    ThrowJs(info.Env(), "fromMapping: byte range [" + std::to_string(off) + ", " + std::to_string(off + len) +
                            ") lies outside the file (" + std::to_string(m->len) + " bytes)");
  int64_t numel = 1;
  for (auto s : shape) {
    if (s < 0) ThrowJs(info.Env(), "fromMapping: negative size in shape");
    numel *= s;
  }
  int64_t esize = static_cast<int64_t>(c10::elementSize(dtype));
  if (numel * esize != len)
    ThrowJs(info.Env(), "fromMapping: shape [" + c10::Join(",", shape) + "] of " + c10::toString(dtype) + " needs " +
                            std::to_string(numel * esize) + " bytes, the range has " + std::to_string(len));
  auto opts = at::TensorOptions().dtype(dtype);
  if (numel == 0) return Wrap(info.Env(), at::empty(shape, opts));
  char* ptr = static_cast<char*>(m->base) + off;
  if (reinterpret_cast<uintptr_t>(ptr) % esize != 0) {
    auto t = at::empty(shape, opts);
    std::memcpy(t.data_ptr(), ptr, len);
    return Wrap(info.Env(), t);
  }
  auto* keep = new std::shared_ptr<Mapping>(m);
  auto t = at::from_blob(ptr, shape, [keep](void*) { delete keep; }, opts);
  return Wrap(info.Env(), t);
}

void InitIO(Napi::Env env, Napi::Object e) {
  EE_EXPORT(e, "mmapFile", MmapFile);
  EE_EXPORT(e, "closeMapping", CloseMapping);
  EE_EXPORT(e, "fromMapping", FromMapping);
}

}  // namespace ee
