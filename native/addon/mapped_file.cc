// mapFile(path) -> ArrayBuffer over a private memory mapping of the whole file.
//
// MAP_PRIVATE with PROT_READ|PROT_WRITE: pages are shared with the page cache until written, and a write
// (which our code never does) lands in a private copy, so a user's file is never modified and a stray write
// can't crash the process. The mapping lives until the ArrayBuffer is garbage-collected.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "addon/exports.h"

namespace labor {
namespace {

struct Mapping {
  void* address;
  size_t length;
};

void Unmap(Napi::Env, void*, Mapping* mapping) {
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
  return Napi::ArrayBuffer::New(env, address, length, Unmap, mapping);
}

}  // namespace

void RegisterMappedFile(Napi::Env env, Napi::Object exports) {
  exports.Set("mapFile", Napi::Function::New(env, MapFile, "mapFile"));
}

}  // namespace labor
