// Entry point of the labor-llm Node-API addon: each exported family registers itself here.
#include <napi.h>

#include "addon/exports.h"

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  labor::RegisterMappedFile(env, exports);
  labor::RegisterCpuOps(env, exports);
  labor::RegisterCudaOps(env, exports);
  return exports;
}

NODE_API_MODULE(labor_llm, Init)
