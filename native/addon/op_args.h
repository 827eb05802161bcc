// Argument checks shared by the op bindings (cpu_ops.cc, cuda_ops.cc): kernels trust their arguments, so each
// binding checks count and kinds first and throws a JS Error "<op>: <what>" on the first bad one.
#pragma once

#include <napi.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>

namespace labor {
namespace addon {

// Sizes above 2⁵³ can't come from a JS number exactly; no typed array is that long anyway.
constexpr double kMaxSize = 9007199254740992.0;

// The op being bound: its name prefixes every error.
struct Op {
  Napi::Env env;
  const char* name;

  [[noreturn]] void Fail(const std::string& message) const {
    throw Napi::Error::New(env, std::string(name) + ": " + message);
  }
};

inline void CheckArgCount(const Op& op, const Napi::CallbackInfo& info, size_t expected) {
  if (info.Length() != expected) {
    op.Fail("expected " + std::to_string(expected) + " arguments, got " + std::to_string(info.Length()));
  }
}

inline int64_t SizeArg(const Op& op, const Napi::CallbackInfo& info, size_t index, const char* name) {
  if (!info[index].IsNumber()) op.Fail(std::string(name) + " must be a number");
  const double value = info[index].As<Napi::Number>().DoubleValue();
  if (!(value >= 0 && value <= kMaxSize && std::floor(value) == value)) {
    op.Fail(std::string(name) + " must be a non-negative integer, got " + std::to_string(value));
  }
  return static_cast<int64_t>(value);
}

// A number argument; finite unless `finite` is false (a fill value may be ±Infinity, e.g. an attention mask).
inline double NumberArg(const Op& op, const Napi::CallbackInfo& info, size_t index, const char* name, bool finite = true) {
  if (!info[index].IsNumber()) op.Fail(std::string(name) + " must be a number");
  const double value = info[index].As<Napi::Number>().DoubleValue();
  if (finite && !std::isfinite(value)) op.Fail(std::string(name) + " must be finite, got " + std::to_string(value));
  return value;
}

inline bool BoolArg(const Op& op, const Napi::CallbackInfo& info, size_t index, const char* name) {
  if (!info[index].IsBoolean()) op.Fail(std::string(name) + " must be a boolean");
  return info[index].As<Napi::Boolean>().Value();
}

}  // namespace addon
}  // namespace labor
