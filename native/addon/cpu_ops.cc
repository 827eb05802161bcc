// exports.cpu: Node-API bindings of the CPU kernels (native/cpu/ops.h), typed in src/engine/native.ts.
//
// Kernels trust their arguments, so everything is checked here first: argument count and kinds, typed
// array kinds against dtype strings, every length against the product of the sizes (64-bit, overflow-
// checked), index ranges, and that an output doesn't overlap an input it is computed from. Failures throw
// a JS Error "<op>: <what>" naming the sizes involved.
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "addon/exports.h"
#include "cpu/isa.h"
#include "cpu/ops.h"
#include "cpu/thread_pool.h"

namespace labor {
namespace {

using cpu::DType;

// Sizes above 2⁵³ can't come from a JS number exactly; no typed array is that long anyway.
constexpr double kMaxSize = 9007199254740992.0;

struct Op {
  Napi::Env env;
  const char* name;

  [[noreturn]] void Fail(const std::string& message) const {
    throw Napi::Error::New(env, std::string(name) + ": " + message);
  }
};

void CheckArgCount(const Op& op, const Napi::CallbackInfo& info, size_t expected) {
  if (info.Length() != expected) {
    op.Fail("expected " + std::to_string(expected) + " arguments, got " + std::to_string(info.Length()));
  }
}

int64_t SizeArg(const Op& op, const Napi::CallbackInfo& info, size_t index, const char* name) {
  if (!info[index].IsNumber()) op.Fail(std::string(name) + " must be a number");
  const double value = info[index].As<Napi::Number>().DoubleValue();
  if (!(value >= 0 && value <= kMaxSize && std::floor(value) == value)) {
    op.Fail(std::string(name) + " must be a non-negative integer, got " + std::to_string(value));
  }
  return static_cast<int64_t>(value);
}

float FloatArg(const Op& op, const Napi::CallbackInfo& info, size_t index, const char* name) {
  if (!info[index].IsNumber()) op.Fail(std::string(name) + " must be a number");
  const double value = info[index].As<Napi::Number>().DoubleValue();
  if (!std::isfinite(value)) op.Fail(std::string(name) + " must be finite, got " + std::to_string(value));
  return static_cast<float>(value);
}

bool BoolArg(const Op& op, const Napi::CallbackInfo& info, size_t index, const char* name) {
  if (!info[index].IsBoolean()) op.Fail(std::string(name) + " must be a boolean");
  return info[index].As<Napi::Boolean>().Value();
}

DType DTypeArg(const Op& op, const Napi::CallbackInfo& info, size_t index, const char* name) {
  if (!info[index].IsString()) op.Fail(std::string(name) + " must be a dtype string");
  const std::string value = info[index].As<Napi::String>().Utf8Value();
  if (value == "f32") return DType::kF32;
  if (value == "bf16") return DType::kBf16;
  if (value == "f16") return DType::kF16;
  op.Fail(std::string(name) + " must be \"f32\", \"bf16\" or \"f16\", got \"" + value + "\"");
}

const char* DTypeName(DType dtype) {
  switch (dtype) {
    case DType::kBf16: return "bf16";
    case DType::kF16: return "f16";
    case DType::kF32: break;
  }
  return "f32";
}

// A typed array argument: its data, element count and byte size.
struct Array {
  void* data;
  int64_t length;
  size_t bytes;
  napi_typedarray_type type;
};

const char* TypedArrayName(napi_typedarray_type type) {
  switch (type) {
    case napi_float32_array: return "Float32Array";
    case napi_uint16_array: return "Uint16Array";
    case napi_int32_array: return "Int32Array";
    default: return "another typed array";
  }
}

Array ArrayArg(const Op& op, const Napi::CallbackInfo& info, size_t index, const char* name,
               napi_typedarray_type expected, const char* why = "") {
  if (!info[index].IsTypedArray()) op.Fail(std::string(name) + " must be a " + TypedArrayName(expected));
  Napi::TypedArray array = info[index].As<Napi::TypedArray>();
  if (array.TypedArrayType() != expected) {
    op.Fail(std::string(name) + " must be a " + TypedArrayName(expected) + why + ", got " +
            TypedArrayName(array.TypedArrayType()));
  }
  void* data = static_cast<uint8_t*>(array.ArrayBuffer().Data()) + array.ByteOffset();
  return Array{data, static_cast<int64_t>(array.ElementLength()), array.ByteLength(), expected};
}

// A float array whose kind must match its dtype string (Float32Array for f32, Uint16Array for bf16/f16).
Array FloatArrayArg(const Op& op, const Napi::CallbackInfo& info, size_t index, const char* name, DType dtype) {
  const std::string why = std::string(" for dtype ") + DTypeName(dtype);
  return ArrayArg(op, info, index, name, dtype == DType::kF32 ? napi_float32_array : napi_uint16_array,
                  why.c_str());
}

int64_t Product(const Op& op, std::initializer_list<int64_t> sizes) {
  int64_t product = 1;
  for (int64_t size : sizes) {
    if (__builtin_mul_overflow(product, size, &product)) op.Fail("sizes overflow 64 bits");
  }
  return product;
}

void ExpectLength(const Op& op, const Array& array, const char* name, int64_t expected, const char* formula) {
  if (array.length != expected) {
    op.Fail(std::string(name) + " has " + std::to_string(array.length) + " elements, expected " + formula +
            " = " + std::to_string(expected));
  }
}

bool Overlap(const Array& x, const Array& y) {
  const auto* xb = static_cast<const uint8_t*>(x.data);
  const auto* yb = static_cast<const uint8_t*>(y.data);
  return x.bytes > 0 && y.bytes > 0 && xb < yb + y.bytes && yb < xb + x.bytes;
}

void ExpectDisjoint(const Op& op, const Array& out, const char* out_name, const Array& in, const char* in_name) {
  if (Overlap(out, in)) op.Fail(std::string(out_name) + " must not share memory with " + in_name);
}

// Runs a kernel, turning a C++ exception (allocation failure) into a JS Error naming the op.
template <class Kernel>
void RunKernel(const Op& op, const Kernel& kernel) {
  try {
    kernel();
  } catch (const std::exception& error) {
    op.Fail(error.what());
  }
}

Napi::Value IsaInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const cpu::IsaInfo& detected = cpu::DetectIsa();
  Napi::Object result = Napi::Object::New(env);
  Napi::Array available = Napi::Array::New(env, detected.available.size());
  for (size_t i = 0; i < detected.available.size(); i++) available.Set(i, cpu::IsaName(detected.available[i]));
  Napi::Object features = Napi::Object::New(env);
  for (const auto& [name, present] : detected.features) features.Set(name, present);
  result.Set("available", available);
  result.Set("selected", cpu::IsaName(cpu::SelectedIsa()));
  result.Set("features", features);
  result.Set("amxUnavailableReason", detected.amx_unavailable_reason);
  return result;
}

void SetIsa(const Napi::CallbackInfo& info) {
  const Op op{info.Env(), "setIsa"};
  CheckArgCount(op, info, 1);
  if (!info[0].IsString()) op.Fail("isa must be a string");
  const std::string name = info[0].As<Napi::String>().Utf8Value();
  cpu::Isa isa;
  if (!cpu::ParseIsa(name, &isa)) op.Fail("unknown ISA \"" + name + "\" (amx, avx512, avx2, scalar)");
  try {
    cpu::SelectIsa(isa);
  } catch (const std::invalid_argument& error) {
    op.Fail(error.what());
  }
}

void SetThreads(const Napi::CallbackInfo& info) {
  const Op op{info.Env(), "setThreads"};
  CheckArgCount(op, info, 1);
  const int64_t count = SizeArg(op, info, 0, "count");
  if (count < 1 || count > 1024) op.Fail("count must be in [1, 1024], got " + std::to_string(count));
  cpu::ThreadPool::Global().SetThreads(static_cast<int>(count));
}

Napi::Value GetThreads(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), cpu::ThreadPool::Global().Threads());
}

void Matmul(const Napi::CallbackInfo& info) {
  const Op op{info.Env(), "matmul"};
  CheckArgCount(op, info, 12);
  const DType b_dtype = DTypeArg(op, info, 2, "bDtype");
  const Array a = ArrayArg(op, info, 0, "a", napi_float32_array);
  const Array b = FloatArrayArg(op, info, 1, "b", b_dtype);
  const Array out = ArrayArg(op, info, 3, "out", napi_float32_array);
  const int64_t batch = SizeArg(op, info, 4, "batch"), m = SizeArg(op, info, 5, "m");
  const int64_t n = SizeArg(op, info, 6, "n"), k = SizeArg(op, info, 7, "k");
  const bool trans_a = BoolArg(op, info, 8, "transA"), trans_b = BoolArg(op, info, 9, "transB");
  const bool b_batched = BoolArg(op, info, 10, "bBatched"), accumulate = BoolArg(op, info, 11, "accumulate");
  ExpectLength(op, a, "a", Product(op, {batch, m, k}), "batch·M·K");
  ExpectLength(op, b, "b", Product(op, {b_batched ? batch : 1, k, n}), b_batched ? "batch·K·N" : "K·N");
  ExpectLength(op, out, "out", Product(op, {batch, m, n}), "batch·M·N");
  ExpectDisjoint(op, out, "out", a, "a");
  ExpectDisjoint(op, out, "out", b, "b");
  const cpu::MatmulArgs args{static_cast<const float*>(a.data), b.data, b_dtype, static_cast<float*>(out.data),
                             batch, m, n, k, trans_a, trans_b, b_batched, accumulate};
  RunKernel(op, [&] { cpu::Matmul(args); });
}

void Embedding(const Napi::CallbackInfo& info) {
  const Op op{info.Env(), "embedding"};
  CheckArgCount(op, info, 6);
  const DType dtype = DTypeArg(op, info, 2, "tableDtype");
  const Array ids = ArrayArg(op, info, 0, "ids", napi_int32_array);
  const Array table = FloatArrayArg(op, info, 1, "table", dtype);
  const Array out = ArrayArg(op, info, 3, "out", napi_float32_array);
  const int64_t vocab = SizeArg(op, info, 4, "vocab"), dim = SizeArg(op, info, 5, "dim");
  ExpectLength(op, table, "table", Product(op, {vocab, dim}), "vocab·dim");
  ExpectLength(op, out, "out", Product(op, {ids.length, dim}), "ids·dim");
  ExpectDisjoint(op, out, "out", table, "table");
  const auto* id = static_cast<const int32_t*>(ids.data);
  for (int64_t t = 0; t < ids.length; t++) {
    if (id[t] < 0 || id[t] >= vocab) {
      op.Fail("id " + std::to_string(id[t]) + " at position " + std::to_string(t) + " out of range [0, " +
              std::to_string(vocab) + ")");
    }
  }
  RunKernel(op, [&] { cpu::Embedding(id, ids.length, table.data, dtype, dim, static_cast<float*>(out.data)); });
}

void RmsNorm(const Napi::CallbackInfo& info) {
  const Op op{info.Env(), "rmsnorm"};
  CheckArgCount(op, info, 7);
  const DType dtype = DTypeArg(op, info, 2, "weightDtype");
  const Array x = ArrayArg(op, info, 0, "x", napi_float32_array);
  const Array weight = FloatArrayArg(op, info, 1, "weight", dtype);
  const Array out = ArrayArg(op, info, 3, "out", napi_float32_array);
  const int64_t rows = SizeArg(op, info, 4, "rows"), dim = SizeArg(op, info, 5, "dim");
  const float eps = FloatArg(op, info, 6, "eps");
  ExpectLength(op, x, "x", Product(op, {rows, dim}), "rows·dim");
  ExpectLength(op, weight, "weight", dim, "dim");
  ExpectLength(op, out, "out", Product(op, {rows, dim}), "rows·dim");
  if (out.data != x.data) ExpectDisjoint(op, out, "out", x, "x (unless it is x itself)");
  ExpectDisjoint(op, out, "out", weight, "weight");
  RunKernel(op, [&] {
    cpu::RmsNorm(static_cast<const float*>(x.data), weight.data, dtype, static_cast<float*>(out.data), rows, dim,
                 eps);
  });
}

void Rope(const Napi::CallbackInfo& info) {
  const Op op{info.Env(), "rope"};
  CheckArgCount(op, info, 7);
  const Array x = ArrayArg(op, info, 0, "x", napi_float32_array);
  const Array positions = ArrayArg(op, info, 1, "positions", napi_int32_array);
  const Array inv_freq = ArrayArg(op, info, 2, "invFreq", napi_float32_array);
  const Array out = ArrayArg(op, info, 3, "out", napi_float32_array);
  const int64_t tokens = SizeArg(op, info, 4, "tokens"), heads = SizeArg(op, info, 5, "heads");
  const int64_t head_dim = SizeArg(op, info, 6, "headDim");
  if (head_dim % 2 != 0) op.Fail("headDim must be even, got " + std::to_string(head_dim));
  ExpectLength(op, x, "x", Product(op, {tokens, heads, head_dim}), "tokens·heads·headDim");
  ExpectLength(op, out, "out", Product(op, {tokens, heads, head_dim}), "tokens·heads·headDim");
  ExpectLength(op, positions, "positions", tokens, "tokens");
  ExpectLength(op, inv_freq, "invFreq", head_dim / 2, "headDim/2");
  if (out.data != x.data) ExpectDisjoint(op, out, "out", x, "x (unless it is x itself)");
  ExpectDisjoint(op, out, "out", positions, "positions");
  ExpectDisjoint(op, out, "out", inv_freq, "invFreq");
  RunKernel(op, [&] {
    cpu::Rope(static_cast<const float*>(x.data), static_cast<const int32_t*>(positions.data),
              static_cast<const float*>(inv_freq.data), static_cast<float*>(out.data), tokens, heads, head_dim);
  });
}

void Attention(const Napi::CallbackInfo& info) {
  const Op op{info.Env(), "attention"};
  CheckArgCount(op, info, 12);
  const Array q = ArrayArg(op, info, 0, "q", napi_float32_array);
  const Array k = ArrayArg(op, info, 1, "k", napi_float32_array);
  const Array v = ArrayArg(op, info, 2, "v", napi_float32_array);
  const Array key_start = ArrayArg(op, info, 3, "keyStart", napi_int32_array);
  const Array key_end = ArrayArg(op, info, 4, "keyEnd", napi_int32_array);
  const Array out = ArrayArg(op, info, 5, "out", napi_float32_array);
  const int64_t queries = SizeArg(op, info, 6, "queries"), keys = SizeArg(op, info, 7, "keys");
  const int64_t heads = SizeArg(op, info, 8, "heads"), kv_heads = SizeArg(op, info, 9, "kvHeads");
  const int64_t head_dim = SizeArg(op, info, 10, "headDim");
  const float scale = FloatArg(op, info, 11, "scale");
  if (heads < 1 || kv_heads < 1 || heads % kv_heads != 0) {
    op.Fail("heads " + std::to_string(heads) + " must be a positive multiple of kvHeads " +
            std::to_string(kv_heads));
  }
  ExpectLength(op, q, "q", Product(op, {queries, heads, head_dim}), "queries·heads·headDim");
  ExpectLength(op, out, "out", Product(op, {queries, heads, head_dim}), "queries·heads·headDim");
  ExpectLength(op, k, "k", Product(op, {keys, kv_heads, head_dim}), "keys·kvHeads·headDim");
  ExpectLength(op, v, "v", Product(op, {keys, kv_heads, head_dim}), "keys·kvHeads·headDim");
  ExpectLength(op, key_start, "keyStart", queries, "queries");
  ExpectLength(op, key_end, "keyEnd", queries, "queries");
  ExpectDisjoint(op, out, "out", q, "q");
  ExpectDisjoint(op, out, "out", k, "k");
  ExpectDisjoint(op, out, "out", v, "v");
  const auto* start = static_cast<const int32_t*>(key_start.data);
  const auto* end = static_cast<const int32_t*>(key_end.data);
  for (int64_t t = 0; t < queries; t++) {
    if (start[t] < 0 || start[t] > end[t] || end[t] > keys) {
      op.Fail("query " + std::to_string(t) + " has key range [" + std::to_string(start[t]) + ", " +
              std::to_string(end[t]) + "), outside 0 ≤ start ≤ end ≤ keys = " + std::to_string(keys));
    }
  }
  const cpu::AttentionArgs args{static_cast<const float*>(q.data), static_cast<const float*>(k.data),
                                static_cast<const float*>(v.data), start, end, static_cast<float*>(out.data),
                                queries, keys, heads, kv_heads, head_dim, scale};
  RunKernel(op, [&] { cpu::Attention(args); });
}

// Elementwise binary ops: out may be either input (same index in, same index out), nothing else.
template <void (*Kernel)(const float*, const float*, float*, int64_t)>
void Elementwise(const Napi::CallbackInfo& info, const char* name, const char* first, const char* second) {
  const Op op{info.Env(), name};
  CheckArgCount(op, info, 4);
  const Array x = ArrayArg(op, info, 0, first, napi_float32_array);
  const Array y = ArrayArg(op, info, 1, second, napi_float32_array);
  const Array out = ArrayArg(op, info, 2, "out", napi_float32_array);
  const int64_t count = SizeArg(op, info, 3, "count");
  ExpectLength(op, x, first, count, "count");
  ExpectLength(op, y, second, count, "count");
  ExpectLength(op, out, "out", count, "count");
  if (out.data != x.data) ExpectDisjoint(op, out, "out", x, first);
  if (out.data != y.data) ExpectDisjoint(op, out, "out", y, second);
  RunKernel(op, [&] {
    Kernel(static_cast<const float*>(x.data), static_cast<const float*>(y.data), static_cast<float*>(out.data),
           count);
  });
}

void Swiglu(const Napi::CallbackInfo& info) { Elementwise<cpu::Swiglu>(info, "swiglu", "gate", "up"); }
void Add(const Napi::CallbackInfo& info) { Elementwise<cpu::Add>(info, "add", "a", "b"); }

void LogSoftmax(const Napi::CallbackInfo& info) {
  const Op op{info.Env(), "logSoftmax"};
  CheckArgCount(op, info, 4);
  const Array logits = ArrayArg(op, info, 0, "logits", napi_float32_array);
  const Array out = ArrayArg(op, info, 1, "out", napi_float32_array);
  const int64_t rows = SizeArg(op, info, 2, "rows"), vocab = SizeArg(op, info, 3, "vocab");
  ExpectLength(op, logits, "logits", Product(op, {rows, vocab}), "rows·vocab");
  ExpectLength(op, out, "out", Product(op, {rows, vocab}), "rows·vocab");
  if (out.data != logits.data) ExpectDisjoint(op, out, "out", logits, "logits (unless it is logits itself)");
  RunKernel(op, [&] {
    cpu::LogSoftmax(static_cast<const float*>(logits.data), static_cast<float*>(out.data), rows, vocab);
  });
}

void LogSoftmaxGather(const Napi::CallbackInfo& info) {
  const Op op{info.Env(), "logSoftmaxGather"};
  CheckArgCount(op, info, 5);
  const Array logits = ArrayArg(op, info, 0, "logits", napi_float32_array);
  const Array targets = ArrayArg(op, info, 1, "targets", napi_int32_array);
  const Array out = ArrayArg(op, info, 2, "out", napi_float32_array);
  const int64_t rows = SizeArg(op, info, 3, "rows"), vocab = SizeArg(op, info, 4, "vocab");
  ExpectLength(op, logits, "logits", Product(op, {rows, vocab}), "rows·vocab");
  ExpectLength(op, targets, "targets", rows, "rows");
  ExpectLength(op, out, "out", rows, "rows");
  ExpectDisjoint(op, out, "out", logits, "logits");
  const auto* target = static_cast<const int32_t*>(targets.data);
  for (int64_t r = 0; r < rows; r++) {
    if (target[r] >= vocab) {
      op.Fail("target " + std::to_string(target[r]) + " at row " + std::to_string(r) + " is not below vocab " +
              std::to_string(vocab));
    }
  }
  RunKernel(op, [&] {
    cpu::LogSoftmaxGather(static_cast<const float*>(logits.data), target, static_cast<float*>(out.data), rows,
                          vocab);
  });
}

void ScatterRows(const Napi::CallbackInfo& info) {
  const Op op{info.Env(), "scatterRows"};
  CheckArgCount(op, info, 6);
  if (!info[0].IsTypedArray()) op.Fail("src must be a Float32Array, Uint16Array or Int32Array");
  const napi_typedarray_type type = info[0].As<Napi::TypedArray>().TypedArrayType();
  if (type != napi_float32_array && type != napi_uint16_array && type != napi_int32_array) {
    op.Fail("src must be a Float32Array, Uint16Array or Int32Array");
  }
  const Array src = ArrayArg(op, info, 0, "src", type);
  const Array index = ArrayArg(op, info, 1, "index", napi_int32_array);
  const Array dst = ArrayArg(op, info, 2, "dst", type, " like src");
  const int64_t rows = SizeArg(op, info, 3, "rows"), dst_rows = SizeArg(op, info, 4, "dstRows");
  const int64_t width = SizeArg(op, info, 5, "width");
  ExpectLength(op, src, "src", Product(op, {rows, width}), "rows·width");
  ExpectLength(op, dst, "dst", Product(op, {dst_rows, width}), "dstRows·width");
  ExpectLength(op, index, "index", rows, "rows");
  ExpectDisjoint(op, dst, "dst", src, "src");
  ExpectDisjoint(op, dst, "dst", index, "index");
  const auto* row = static_cast<const int32_t*>(index.data);
  for (int64_t t = 0; t < rows; t++) {
    if (row[t] < 0 || row[t] >= dst_rows) {
      op.Fail("index " + std::to_string(row[t]) + " at row " + std::to_string(t) + " out of range [0, " +
              std::to_string(dst_rows) + ")");
    }
  }
  const int64_t row_bytes = width * static_cast<int64_t>(type == napi_uint16_array ? 2 : 4);
  RunKernel(op, [&] { cpu::ScatterRows(src.data, row, dst.data, rows, row_bytes); });
}

void Convert(const Napi::CallbackInfo& info) {
  const Op op{info.Env(), "convert"};
  CheckArgCount(op, info, 5);
  const DType src_dtype = DTypeArg(op, info, 1, "srcDtype"), dst_dtype = DTypeArg(op, info, 3, "dstDtype");
  const Array src = FloatArrayArg(op, info, 0, "src", src_dtype);
  const Array dst = FloatArrayArg(op, info, 2, "dst", dst_dtype);
  const int64_t count = SizeArg(op, info, 4, "count");
  ExpectLength(op, src, "src", count, "count");
  ExpectLength(op, dst, "dst", count, "count");
  if (src_dtype != dst_dtype || src.data != dst.data) ExpectDisjoint(op, dst, "dst", src, "src");
  RunKernel(op, [&] { cpu::Convert(src.data, src_dtype, dst.data, dst_dtype, count); });
}

}  // namespace

void RegisterCpuOps(Napi::Env env, Napi::Object exports) {
  Napi::Object cpu = Napi::Object::New(env);
  auto add = [&](const char* name, auto function) { cpu.Set(name, Napi::Function::New(env, function, name)); };
  add("isaInfo", IsaInfo);
  add("setIsa", SetIsa);
  add("setThreads", SetThreads);
  add("getThreads", GetThreads);
  add("matmul", Matmul);
  add("embedding", Embedding);
  add("rmsnorm", RmsNorm);
  add("rope", Rope);
  add("attention", Attention);
  add("swiglu", Swiglu);
  add("add", Add);
  add("logSoftmax", LogSoftmax);
  add("logSoftmaxGather", LogSoftmaxGather);
  add("scatterRows", ScatterRows);
  add("convert", Convert);
  exports.Set("cpu", cpu);
}

}  // namespace labor
