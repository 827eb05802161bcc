// One registration function per exported family (one file each under native/addon/).
#pragma once
#include <napi.h>

namespace labor {
void RegisterMappedFile(Napi::Env env, Napi::Object exports);
void RegisterCpuOps(Napi::Env env, Napi::Object exports);
void RegisterCudaOps(Napi::Env env, Napi::Object exports);

// mapped_file.cc: when [data, data + bytes) lies in a live mapFile mapping, drops this process's copies of
// the whole pages inside it (reread from the file if touched again) and returns true; else false. For
// weight bytes that were packed and are no longer read.
bool DropMappedPages(const void* data, size_t bytes);
}  // namespace labor
