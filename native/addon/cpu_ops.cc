#include "addon/exports.h"
namespace labor {
void RegisterCpuOps(Napi::Env env, Napi::Object exports) {}
}  // namespace labor
