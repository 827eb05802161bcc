// mapFile(path) -> ArrayBuffer over a private memory mapping of the whole file.
//
// MAP_PRIVATE with PROT_READ|PROT_WRITE: pages are shared with the page cache until written, and a write
// (which our code never does) lands in a private copy, so a user's file is never modified and a stray write
// can't crash the process. The mapping lives until the ArrayBuffer is garbage-collected.
// Live mappings are listed so that DropMappedPages (exports.h) can tell file-backed bytes from others.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <string>
#include <vector>

#include "addon/exports.h"

namespace labor {
namespace {

struct Mapping {
  void* address;
  size_t length;
};

std::mutex live_mutex;
std::vector<Mapping*> live_mappings;  // every mapping made by MapFile and not unmapped yet

void Unmap(Napi::Env, void*, Mapping* mapping) {
  {
    std::lock_guard<std::mutex> lock(live_mutex);
    for (size_t i = 0; i < live_mappings.size(); i++) {
      if (live_mappings[i] == mapping) {
        live_mappings[i] = live_mappings.back();
        live_mappings.pop_back();
        break;
      }
    }
  }
  if (mapping->length > 0) munmap(mapping->address, mapping->length);
  delete mapping;
}

Napi::Value MapFile(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 1 || !info[0].IsString()) {
    throw Napi::TypeError::New(env, "mapFile(path): path must be a string");
  }
  const std::string path = info[0].As<Napi::String>().Utf8Value();
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw Napi::Error::New(env, path + ": cannot open: " + std::strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0) {
    const int err = errno;
    close(fd);
    throw Napi::Error::New(env, path + ": cannot stat: " + std::strerror(err));
  }
  if (!S_ISREG(st.st_mode)) {
    close(fd);
    throw Napi::Error::New(env, path + ": not a regular file");
  }
  const size_t length = static_cast<size_t>(st.st_size);
  if (length == 0) {
    close(fd);
    return Napi::ArrayBuffer::New(env, 0);
  }
  void* address = mmap(nullptr, length, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
  const int err = errno;
  close(fd);
  if (address == MAP_FAILED) throw Napi::Error::New(env, path + ": mmap failed: " + std::strerror(err));
  auto* mapping = new Mapping{address, length};
  {
    std::lock_guard<std::mutex> lock(live_mutex);
    live_mappings.push_back(mapping);
  }
  return Napi::ArrayBuffer::New(env, address, length, Unmap, mapping);
}

}  // namespace

bool DropMappedPages(const void* data, size_t bytes) {
  const auto begin = reinterpret_cast<uintptr_t>(data), end = begin + bytes;
  const auto page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  // Whole pages inside the range only: the pages at its edges may hold other tensors' bytes.
  const uintptr_t first = (begin + page - 1) / page * page, last = end / page * page;
  if (bytes == 0 || first >= last) return false;
  std::lock_guard<std::mutex> lock(live_mutex);  // the mapping can't be unmapped meanwhile
  for (const Mapping* mapping : live_mappings) {
    const auto start = reinterpret_cast<uintptr_t>(mapping->address);
    if (begin >= start && end <= start + mapping->length) {
      // Pages of a MAP_PRIVATE file mapping that were never written come back from the file if touched
      // again, so dropping them loses nothing: it only takes them out of this process's RSS.
      return madvise(reinterpret_cast<void*>(first), last - first, MADV_DONTNEED) == 0;
    }
  }
  return false;
}

void RegisterMappedFile(Napi::Env env, Napi::Object exports) {
  exports.Set("mapFile", Napi::Function::New(env, MapFile, "mapFile"));
}

}  // namespace labor
