// One registration function per exported family (one file each under native/addon/).
#pragma once
#include <napi.h>

namespace labor {
void RegisterMappedFile(Napi::Env env, Napi::Object exports);
void RegisterCpuOps(Napi::Env env, Napi::Object exports);
void RegisterCudaOps(Napi::Env env, Napi::Object exports);
}  // namespace labor
