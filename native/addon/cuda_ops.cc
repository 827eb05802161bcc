// exports.cuda: Node-API bindings of the CUDA kernels (native/cuda/ops.h), typed in src/engine/native.ts.
//
// A device buffer is a type-tagged External owning one stream-ordered allocation; the JS tensor object that
// holds it ({ handle, byteOffset, size, dtype, host? }) is what every op receives, so views (reshape,
// sliceRows) are just other offsets into the same External. The External's finalizer frees the memory if JS
// never called free(). i32 tensors carry `host`, an Int32Array mirror kept by the TS side, which is what
// index values (ids, targets, key ranges, scatter rows) are validated against before any kernel runs.
//
// Checked here, before any launch: argument kinds, dtypes, every view inside its allocation, every length
// against the product of the sizes (64-bit, overflow-checked), index ranges, and outputs not overlapping
// inputs they are computed from. Failures throw a JS Error "<op>: <what>"; a failed CUDA call or launch throws
// "<op> [sizes]: <kernel>: <cudaError name>: <description>".
//
// Built without CUDA (no nvcc), exports.cuda only has probe(), which says why.
#include <napi.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "addon/exports.h"
#include "addon/op_args.h"
#include "labor_cuda_build_config.h"

#ifdef LABOR_HAVE_CUDA
#include "cuda/ops.h"
#endif

namespace labor {
namespace {

#ifndef LABOR_HAVE_CUDA

Napi::Value Probe(const Napi::CallbackInfo& info) {
  Napi::Object result = Napi::Object::New(info.Env());
  result.Set("built", false);
  result.Set("available", false);
  result.Set("reason", std::string("the addon was built without CUDA: ") + LABOR_CUDA_ABSENT_REASON);
  return result;
}

#else

using cuda::DType;

using addon::BoolArg;
using addon::CheckArgCount;
using addon::kMaxSize;
using addon::NumberArg;
using addon::Op;
using addon::SizeArg;

const napi_type_tag kBufferTag = {0x6c61626f72636475ULL, 0x6461627566666572ULL};  // "laborcdu" "dabuffer"

struct DeviceBuffer {
  void* data = nullptr;
  size_t bytes = 0;
  bool freed = false;
};

bool ParseDType(const std::string& value, DType* dtype) {
  if (value == "f32") *dtype = DType::kF32;
  else if (value == "bf16") *dtype = DType::kBf16;
  else if (value == "f16") *dtype = DType::kF16;
  else if (value == "i32") *dtype = DType::kI32;
  else return false;
  return true;
}

const char* DTypeName(DType dtype) {
  switch (dtype) {
    case DType::kBf16: return "bf16";
    case DType::kF16: return "f16";
    case DType::kI32: return "i32";
    case DType::kF32: break;
  }
  return "f32";
}

DeviceBuffer* BufferOf(const Op& op, Napi::Value value, const char* name) {
  if (!value.IsExternal()) op.Fail(std::string(name) + " is not a CUDA buffer handle");
  auto external = value.As<Napi::External<DeviceBuffer>>();
  if (!external.CheckTypeTag(&kBufferTag)) op.Fail(std::string(name) + " is not a CUDA buffer handle");
  DeviceBuffer* buffer = external.Data();
  if (buffer->freed) op.Fail(std::string(name) + " was used after free()");
  return buffer;
}

// A tensor argument: a view of `size` elements of `dtype` at byteOffset in a device buffer.
struct View {
  void* data = nullptr;
  int64_t size = 0;
  size_t bytes = 0;
  DType dtype = DType::kF32;
  const int32_t* host = nullptr;  // i32 mirror
};

View TensorArg(const Op& op, const Napi::CallbackInfo& info, size_t index, const char* name,
               std::initializer_list<DType> dtypes) {
  if (!info[index].IsObject()) op.Fail(std::string(name) + " must be a CUDA tensor");
  Napi::Object object = info[index].As<Napi::Object>();
  DeviceBuffer* buffer = BufferOf(op, object.Get("handle"), name);
  Napi::Value dtype_value = object.Get("dtype");
  View view;
  if (!dtype_value.IsString() || !ParseDType(dtype_value.As<Napi::String>().Utf8Value(), &view.dtype)) {
    op.Fail(std::string(name) + " has no valid dtype");
  }
  if (std::find(dtypes.begin(), dtypes.end(), view.dtype) == dtypes.end()) {
    std::string allowed_names;
    for (DType d : dtypes) allowed_names += (allowed_names.empty() ? "" : " or ") + std::string(DTypeName(d));
    op.Fail(std::string(name) + " is " + DTypeName(view.dtype) + ", dtype must be " + allowed_names);
  }
  const Napi::Value offset_value = object.Get("byteOffset"), size_value = object.Get("size");
  if (!offset_value.IsNumber() || !size_value.IsNumber()) op.Fail(std::string(name) + " has no byteOffset/size");
  const double offset = offset_value.As<Napi::Number>().DoubleValue(), size = size_value.As<Napi::Number>().DoubleValue();
  if (!(offset >= 0 && offset <= kMaxSize && std::floor(offset) == offset) ||
      !(size >= 0 && size <= kMaxSize && std::floor(size) == size)) {
    op.Fail(std::string(name) + " has an invalid byteOffset/size");
  }
  const size_t element = cuda::DTypeBytes(view.dtype);
  view.size = static_cast<int64_t>(size);
  view.bytes = static_cast<size_t>(view.size) * element;
  const size_t start = static_cast<size_t>(offset);
  if (start % element != 0 || start > buffer->bytes || view.bytes > buffer->bytes - start) {
    op.Fail(std::string(name) + ": view [" + std::to_string(start) + ", +" + std::to_string(view.bytes) +
            ") bytes is outside its " + std::to_string(buffer->bytes) + "-byte allocation");
  }
  view.data = static_cast<char*>(buffer->data) + start;
  if (view.dtype == DType::kI32) {
    Napi::Value host = object.Get("host");
    if (!host.IsTypedArray() || host.As<Napi::TypedArray>().TypedArrayType() != napi_int32_array) {
      op.Fail(std::string(name) + " (i32) has no host mirror");
    }
    Napi::Int32Array mirror = host.As<Napi::Int32Array>();
    if (static_cast<int64_t>(mirror.ElementLength()) != view.size) {
      op.Fail(std::string(name) + ": host mirror has " + std::to_string(mirror.ElementLength()) + " elements, view " +
              std::to_string(view.size));
    }
    view.host = mirror.Data();
  }
  return view;
}

int64_t Product(const Op& op, std::initializer_list<int64_t> sizes) {
  int64_t product = 1;
  for (int64_t size : sizes) {
    if (__builtin_mul_overflow(product, size, &product)) op.Fail("sizes overflow 64 bits");
  }
  return product;
}

void ExpectLength(const Op& op, const View& view, const char* name, int64_t expected, const char* formula) {
  if (view.size != expected) {
    op.Fail(std::string(name) + " has " + std::to_string(view.size) + " elements, expected " + formula + " = " +
            std::to_string(expected));
  }
}

bool Overlap(const View& x, const View& y) {
  const auto* xb = static_cast<const char*>(x.data);
  const auto* yb = static_cast<const char*>(y.data);
  return x.bytes > 0 && y.bytes > 0 && xb < yb + y.bytes && yb < xb + x.bytes;
}

using Named = std::pair<const View*, const char*>;

void ExpectDisjointFrom(const Op& op, const View& out, const char* out_name, std::initializer_list<Named> others) {
  for (const Named& other : others) {
    if (Overlap(out, *other.first)) op.Fail(std::string(out_name) + " must not share memory with " + other.second);
  }
}

void ExpectSameOrDisjoint(const Op& op, const View& out, const char* out_name, std::initializer_list<Named> inputs) {
  for (const Named& input : inputs) {
    if (out.data == input.first->data && out.bytes == input.first->bytes) continue;
    if (Overlap(out, *input.first)) {
      op.Fail(std::string(out_name) + " must not share memory with " + input.second + " (unless it is " +
              input.second + " itself)");
    }
  }
}

void CheckIds(const Op& op, const View& ids, int64_t vocab) {
  for (int64_t t = 0; t < ids.size; t++) {
    if (ids.host[t] < 0 || ids.host[t] >= vocab) {
      op.Fail("id " + std::to_string(ids.host[t]) + " at position " + std::to_string(t) + " out of range [0, " +
              std::to_string(vocab) + ")");
    }
  }
}

void CheckKeyRanges(const Op& op, const View& start, const View& end, int64_t queries, int64_t keys,
                    const char* what = "key range") {
  for (int64_t t = 0; t < queries; t++) {
    if (start.host[t] < 0 || start.host[t] > end.host[t] || end.host[t] > keys) {
      op.Fail("query " + std::to_string(t) + " has " + what + " [" + std::to_string(start.host[t]) + ", " +
              std::to_string(end.host[t]) + "), outside 0 ≤ start ≤ end ≤ keys = " + std::to_string(keys));
    }
  }
}

void CheckHeads(const Op& op, int64_t heads, int64_t kv_heads) {
  if (heads < 1 || kv_heads < 1 || heads % kv_heads != 0) {
    op.Fail("heads " + std::to_string(heads) + " must be a positive multiple of kvHeads " + std::to_string(kv_heads));
  }
}

// An op's sizes for its error messages, formatted only when an error needs them ("[batch 1, M 1024, …]", then
// " b <dtype>" for matmul): the formatting would otherwise cost every launch a few string allocations.
class Sizes {
 public:
  Sizes(std::initializer_list<std::pair<const char*, int64_t>> sizes, const char* b_dtype = nullptr)
      : count_(sizes.size() < kMax ? sizes.size() : kMax), b_dtype_(b_dtype) {
    std::copy_n(sizes.begin(), count_, items_);
  }

  std::string Text() const {
    if (count_ == 0) return "";
    std::string text = "[";
    for (size_t i = 0; i < count_; i++) {
      text += (i > 0 ? ", " : "") + std::string(items_[i].first) + " " + std::to_string(items_[i].second);
    }
    return text + "]" + (b_dtype_ != nullptr ? std::string(" b ") + b_dtype_ : "");
  }

 private:
  static constexpr size_t kMax = 8;
  std::pair<const char*, int64_t> items_[kMax];
  size_t count_;
  const char* b_dtype_;
};

// Runs the launcher; a CUDA error becomes "<op> <sizes>: <error>".
template <class Kernel>
void Run(const Op& op, const Sizes& sizes, const Kernel& kernel) {
  try {
    kernel();
  } catch (const std::exception& error) {
    const std::string text = sizes.Text();
    op.Fail(text.empty() ? std::string(error.what()) : text + ": " + error.what());
  }
}

float* F(const View& v) { return static_cast<float*>(v.data); }
const int32_t* I(const View& v) { return static_cast<const int32_t*>(v.data); }

// ---------------------------------------------------------------- probe, buffers, transfers

Napi::Value Probe(const Napi::CallbackInfo& info) {
  const cuda::DeviceInfo& device = cuda::Probe();
  Napi::Object result = Napi::Object::New(info.Env());
  result.Set("built", true);
  result.Set("archs", LABOR_CUDA_ARCHS);
  result.Set("available", device.available);
  result.Set("reason", device.reason);
  result.Set("device", device.name);
  result.Set("computeCapability", std::to_string(device.major) + "." + std::to_string(device.minor));
  result.Set("multiprocessors", device.multiprocessors);
  result.Set("memoryBytes", static_cast<double>(device.memory_bytes));
  result.Set("driverVersion", device.driver_version);
  result.Set("runtimeVersion", device.runtime_version);
  return result;
}

// alloc(bytes, zero) → handle
Napi::Value Alloc(const Napi::CallbackInfo& info) {
  const Op op{info.Env(), "alloc"};
  CheckArgCount(op, info, 2);
  const int64_t bytes = SizeArg(op, info, 0, "bytes");
  const bool zero = BoolArg(op, info, 1, "zero");
  auto buffer = std::make_unique<DeviceBuffer>();
  buffer->bytes = static_cast<size_t>(bytes);
  Run(op, Sizes({{"bytes", bytes}}), [&] {
    buffer->data = cuda::Malloc(buffer->bytes);
    if (zero) cuda::Zero(buffer->data, buffer->bytes);
  });
  auto external = Napi::External<DeviceBuffer>::New(info.Env(), buffer.release(), [](Napi::Env, DeviceBuffer* b) {
    if (!b->freed) cuda::Free(b->data);
    delete b;
  });
  external.TypeTag(&kBufferTag);
  return external;
}

// free(handle): frees now (the stream orders it after queued work); later use of any view throws.
void FreeBuffer(const Napi::CallbackInfo& info) {
  const Op op{info.Env(), "free"};
  CheckArgCount(op, info, 1);
  DeviceBuffer* buffer = BufferOf(op, info[0], "t");
  cuda::Free(buffer->data);
  buffer->data = nullptr;
  buffer->freed = true;
}

// upload(t, data): host typed array of t's element size and count into t.
void Upload(const Napi::CallbackInfo& info) {
  const Op op{info.Env(), "upload"};
  CheckArgCount(op, info, 2);
  const View t = TensorArg(op, info, 0, "t", {DType::kF32, DType::kBf16, DType::kF16, DType::kI32});
  if (!info[1].IsTypedArray()) op.Fail("data must be a typed array");
  Napi::TypedArray data = info[1].As<Napi::TypedArray>();
  if (data.ByteLength() != t.bytes) {
    op.Fail("data has " + std::to_string(data.ByteLength()) + " bytes, the tensor " + std::to_string(t.bytes));
  }
  const void* source = static_cast<const char*>(data.ArrayBuffer().Data()) + data.ByteOffset();
  Run(op, Sizes({{"bytes", static_cast<int64_t>(t.bytes)}}), [&] { cuda::CopyToDevice(t.data, source, t.bytes); });
}

float HalfToFloat(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exponent = (h >> 10) & 0x1fu, mantissa = h & 0x3ffu;
  float magnitude;
  if (exponent == 0) {
    magnitude = std::ldexp(static_cast<float>(mantissa), -24);
  } else if (exponent == 31) {
    magnitude = mantissa == 0 ? INFINITY : NAN;
  } else {
    magnitude = std::ldexp(static_cast<float>(mantissa | 0x400u), static_cast<int>(exponent) - 25);
  }
  uint32_t bits;
  std::memcpy(&bits, &magnitude, 4);
  bits |= sign;
  std::memcpy(&magnitude, &bits, 4);
  return magnitude;
}

// Readback worker: waits for the snapshot, converts 16-bit floats to f32, resolves a typed array.
class DownloadWorker : public Napi::AsyncWorker {
 public:
  DownloadWorker(Napi::Env env, cuda::Readback readback, DType dtype, int64_t size)
      : Napi::AsyncWorker(env, "labor-llm cuda download"), deferred_(Napi::Promise::Deferred::New(env)),
        readback_(readback), dtype_(dtype), size_(size) {}
  ~DownloadWorker() override { cuda::AbandonReadback(readback_); }

  Napi::Promise Promise() { return deferred_.Promise(); }

  void Execute() override {
    try {
      raw_.resize(readback_.bytes);
      cuda::FinishReadback(readback_, raw_.data());
      if (dtype_ == DType::kBf16 || dtype_ == DType::kF16) {
        std::vector<uint8_t> wide(static_cast<size_t>(size_) * 4);
        auto* out = reinterpret_cast<float*>(wide.data());
        const auto* in = reinterpret_cast<const uint16_t*>(raw_.data());
        for (int64_t i = 0; i < size_; i++) {
          if (dtype_ == DType::kBf16) {
            const uint32_t bits = static_cast<uint32_t>(in[i]) << 16;
            std::memcpy(out + i, &bits, 4);
          } else {
            out[i] = HalfToFloat(in[i]);
          }
        }
        raw_.swap(wide);
      }
    } catch (const std::exception& error) {
      SetError(std::string("download: ") + error.what());
    }
  }

  void OnOK() override {
    Napi::Env env = Env();
    Napi::ArrayBuffer buffer = Napi::ArrayBuffer::New(env, raw_.size());
    if (!raw_.empty()) std::memcpy(buffer.Data(), raw_.data(), raw_.size());
    if (dtype_ == DType::kI32) {
      deferred_.Resolve(Napi::Int32Array::New(env, static_cast<size_t>(size_), buffer, 0));
    } else {
      deferred_.Resolve(Napi::Float32Array::New(env, static_cast<size_t>(size_), buffer, 0));
    }
  }

  void OnError(const Napi::Error& error) override { deferred_.Reject(error.Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  cuda::Readback readback_;
  DType dtype_;
  int64_t size_;
  std::vector<uint8_t> raw_;
};

// download(t) → Promise<Float32Array | Int32Array>
Napi::Value Download(const Napi::CallbackInfo& info) {
  const Op op{info.Env(), "download"};
  CheckArgCount(op, info, 1);
  const View t = TensorArg(op, info, 0, "t", {DType::kF32, DType::kBf16, DType::kF16, DType::kI32});
  cuda::Readback readback;
  Run(op, Sizes({{"elements", t.size}}), [&] { readback = cuda::StartReadback(t.data, t.bytes); });
  auto* worker = new DownloadWorker(info.Env(), readback, t.dtype, t.size);
  Napi::Promise promise = worker->Promise();
  worker->Queue();
  return promise;
}

class SumWorker : public Napi::AsyncWorker {
 public:
  SumWorker(Napi::Env env, cuda::Readback readback)
      : Napi::AsyncWorker(env, "labor-llm cuda sumOfSquares"), deferred_(Napi::Promise::Deferred::New(env)),
        readback_(readback) {}
  ~SumWorker() override { cuda::AbandonReadback(readback_); }
  Napi::Promise Promise() { return deferred_.Promise(); }
  void Execute() override {
    try {
      cuda::FinishReadback(readback_, &result_);
    } catch (const std::exception& error) {
      SetError(std::string("sumOfSquares: ") + error.what());
    }
  }
  void OnOK() override { deferred_.Resolve(Napi::Number::New(Env(), result_)); }
  void OnError(const Napi::Error& error) override { deferred_.Reject(error.Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  cuda::Readback readback_;
  double result_ = 0;
};

// sumOfSquares(x, count) → Promise<number>
Napi::Value SumOfSquares(const Napi::CallbackInfo& info) {
  const Op op{info.Env(), "sumOfSquares"};
  CheckArgCount(op, info, 2);
  const View x = TensorArg(op, info, 0, "x", {DType::kF32});
  const int64_t count = SizeArg(op, info, 1, "count");
  ExpectLength(op, x, "x", count, "count");
  cuda::Readback readback;
  Run(op, Sizes({{"count", count}}), [&] {
    auto* result = static_cast<double*>(cuda::Malloc(sizeof(double)));
    try {
      cuda::SumOfSquares(F(x), count, result);
    } catch (...) {
      cuda::Free(result);
      throw;
    }
    readback = cuda::StartReadbackOwned(result, sizeof(double));
  });
  auto* worker = new SumWorker(info.Env(), readback);
  Napi::Promise promise = worker->Promise();
  worker->Queue();
  return promise;
}

// synchronize() → Promise<void>: resolves once everything queued so far has finished.
Napi::Value Synchronize(const Napi::CallbackInfo& info) {
  const Op op{info.Env(), "sync"};
  cuda::Readback readback;
  Run(op, Sizes({}), [&] { readback = cuda::StartReadbackOwned(nullptr, 0); });
  auto* worker = new SumWorker(info.Env(), readback);  // a 0-byte readback: waits for the event only
  Napi::Promise promise = worker->Promise();
  worker->Queue();
  return promise;
}

// timingMark() → index: a timing event queued on the stream (profiling; nothing waits for it).
Napi::Value TimingMark(const Napi::CallbackInfo& info) {
  const Op op{info.Env(), "timingMark"};
  CheckArgCount(op, info, 0);
  int64_t index = 0;
  Run(op, Sizes({}), [&] { index = cuda::RecordTimingMark(); });
  return Napi::Number::New(info.Env(), static_cast<double>(index));
}

// takeTimingMarks() → Float64Array: milliseconds of each mark since the first (waits for the last); clears them.
Napi::Value TakeTimingMarks(const Napi::CallbackInfo& info) {
  const Op op{info.Env(), "takeTimingMarks"};
  CheckArgCount(op, info, 0);
  std::vector<double> times;
  Run(op, Sizes({}), [&] { times = cuda::TakeTimingMarks(); });
  Napi::Float64Array result = Napi::Float64Array::New(info.Env(), times.size());
  std::copy(times.begin(), times.end(), result.Data());
  return result;
}

// ---------------------------------------------------------------- ops

const std::initializer_list<DType> kF32 = {DType::kF32};
const std::initializer_list<DType> kFloat = {DType::kF32, DType::kBf16, DType::kF16};
const std::initializer_list<DType> kI32 = {DType::kI32};

// matmul(a, b, out, batch, m, n, k, transA, transB, bBatched, accumulate, alpha)
void Matmul(const Napi::CallbackInfo& info) {
  const Op op{info.Env(), "matmul"};
  CheckArgCount(op, info, 12);
  const View a = TensorArg(op, info, 0, "a", kF32), b = TensorArg(op, info, 1, "b", kFloat);
  const View out = TensorArg(op, info, 2, "out", kF32);
  const int64_t batch = SizeArg(op, info, 3, "batch"), m = SizeArg(op, info, 4, "m");
  const int64_t n = SizeArg(op, info, 5, "n"), k = SizeArg(op, info, 6, "k");
  const bool trans_a = BoolArg(op, info, 7, "transA"), trans_b = BoolArg(op, info, 8, "transB");
  const bool b_batched = BoolArg(op, info, 9, "bBatched"), accumulate = BoolArg(op, info, 10, "accumulate");
  const float alpha = static_cast<float>(NumberArg(op, info, 11, "alpha"));
  ExpectLength(op, a, "a", Product(op, {batch, m, k}), "batch·M·K");
  ExpectLength(op, b, "b", Product(op, {b_batched ? batch : 1, k, n}), b_batched ? "batch·K·N" : "K·N");
  ExpectLength(op, out, "out", Product(op, {batch, m, n}), "batch·M·N");
  ExpectDisjointFrom(op, out, "out", {{&a, "a"}, {&b, "b"}});
  const cuda::MatmulArgs args{F(a), b.data, b.dtype, F(out), batch, m, n, k, trans_a, trans_b, b_batched, accumulate,
                              alpha};
  Run(op, Sizes({{"batch", batch}, {"M", m}, {"N", n}, {"K", k}}, DTypeName(b.dtype)),
      [&] { cuda::Matmul(args); });
}

// embedding(ids, table, out, vocab, dim)
void Embedding(const Napi::CallbackInfo& info) {
  const Op op{info.Env(), "embedding"};
  CheckArgCount(op, info, 5);
  const View ids = TensorArg(op, info, 0, "ids", kI32), table = TensorArg(op, info, 1, "table", kFloat);
  const View out = TensorArg(op, info, 2, "out", kF32);
  const int64_t vocab = SizeArg(op, info, 3, "vocab"), dim = SizeArg(op, info, 4, "dim");
  ExpectLength(op, table, "table", Product(op, {vocab, dim}), "vocab·dim");
  ExpectLength(op, out, "out", Product(op, {ids.size, dim}), "ids·dim");
  ExpectDisjointFrom(op, out, "out", {{&table, "table"}, {&ids, "ids"}});
  CheckIds(op, ids, vocab);
  Run(op, Sizes({{"tokens", ids.size}, {"vocab", vocab}, {"dim", dim}}),
      [&] { cuda::Embedding(I(ids), ids.size, table.data, table.dtype, vocab, dim, F(out)); });
}

// embeddingBackward(ids, dOut, dTable, vocab, dim)
void EmbeddingBackward(const Napi::CallbackInfo& info) {
  const Op op{info.Env(), "embeddingBackward"};
  CheckArgCount(op, info, 5);
  const View ids = TensorArg(op, info, 0, "ids", kI32), d_out = TensorArg(op, info, 1, "dOut", kF32);
  const View d_table = TensorArg(op, info, 2, "dTable", kF32);
  const int64_t vocab = SizeArg(op, info, 3, "vocab"), dim = SizeArg(op, info, 4, "dim");
  ExpectLength(op, d_out, "dOut", Product(op, {ids.size, dim}), "ids·dim");
  ExpectLength(op, d_table, "dTable", Product(op, {vocab, dim}), "vocab·dim");
  ExpectDisjointFrom(op, d_table, "dTable", {{&ids, "ids"}, {&d_out, "dOut"}});
  CheckIds(op, ids, vocab);
  Run(op, Sizes({{"tokens", ids.size}, {"vocab", vocab}, {"dim", dim}}),
      [&] { cuda::EmbeddingBackward(I(ids), ids.size, F(d_out), F(d_table), vocab, dim); });
}

// rmsnorm(x, weight, out, rows, dim, eps)
void RmsNorm(const Napi::CallbackInfo& info) {
  const Op op{info.Env(), "rmsnorm"};
  CheckArgCount(op, info, 6);
  const View x = TensorArg(op, info, 0, "x", kF32), weight = TensorArg(op, info, 1, "weight", kFloat);
  const View out = TensorArg(op, info, 2, "out", kF32);
  const int64_t rows = SizeArg(op, info, 3, "rows"), dim = SizeArg(op, info, 4, "dim");
  const float eps = static_cast<float>(NumberArg(op, info, 5, "eps"));
  ExpectLength(op, x, "x", Product(op, {rows, dim}), "rows·dim");
  ExpectLength(op, out, "out", Product(op, {rows, dim}), "rows·dim");
  ExpectLength(op, weight, "weight", dim, "dim");
  ExpectSameOrDisjoint(op, out, "out", {{&x, "x"}});
  ExpectDisjointFrom(op, out, "out", {{&weight, "weight"}});
  Run(op, Sizes({{"rows", rows}, {"dim", dim}}),
      [&] { cuda::RmsNorm(F(x), weight.data, weight.dtype, F(out), rows, dim, eps); });
}

// rmsnormBackward(x, weight, dOut, dx, dWeight | null, rows, dim, eps)
void RmsNormBackward(const Napi::CallbackInfo& info) {
  const Op op{info.Env(), "rmsnormBackward"};
  CheckArgCount(op, info, 8);
  const View x = TensorArg(op, info, 0, "x", kF32), weight = TensorArg(op, info, 1, "weight", kFloat);
  const View d_out = TensorArg(op, info, 2, "dOut", kF32), dx = TensorArg(op, info, 3, "dx", kF32);
  const bool has_d_weight = !info[4].IsNull();
  const View d_weight = has_d_weight ? TensorArg(op, info, 4, "dWeight", kF32) : View{};
  const int64_t rows = SizeArg(op, info, 5, "rows"), dim = SizeArg(op, info, 6, "dim");
  const float eps = static_cast<float>(NumberArg(op, info, 7, "eps"));
  ExpectLength(op, x, "x", Product(op, {rows, dim}), "rows·dim");
  ExpectLength(op, d_out, "dOut", Product(op, {rows, dim}), "rows·dim");
  ExpectLength(op, dx, "dx", Product(op, {rows, dim}), "rows·dim");
  ExpectLength(op, weight, "weight", dim, "dim");
  ExpectDisjointFrom(op, dx, "dx", {{&x, "x"}, {&weight, "weight"}, {&d_out, "dOut"}});
  if (has_d_weight) {
    ExpectLength(op, d_weight, "dWeight", dim, "dim");
    ExpectDisjointFrom(op, d_weight, "dWeight", {{&x, "x"}, {&weight, "weight"}, {&d_out, "dOut"}, {&dx, "dx"}});
  }
  Run(op, Sizes({{"rows", rows}, {"dim", dim}}), [&] {
    cuda::RmsNormBackward(F(x), weight.data, weight.dtype, F(d_out), F(dx), has_d_weight ? F(d_weight) : nullptr, rows,
                          dim, eps);
  });
}

// rope(x, positions, invFreq, out, tokens, heads, headDim) and ropeBackward(dOut, positions, invFreq, dx, ...)
void RopeCommon(const Napi::CallbackInfo& info, bool inverse) {
  const Op op{info.Env(), inverse ? "ropeBackward" : "rope"};
  const char* in_name = inverse ? "dOut" : "x";
  const char* out_name = inverse ? "dx" : "out";
  CheckArgCount(op, info, 7);
  const View x = TensorArg(op, info, 0, in_name, kF32), positions = TensorArg(op, info, 1, "positions", kI32);
  const View inv_freq = TensorArg(op, info, 2, "invFreq", kF32), out = TensorArg(op, info, 3, out_name, kF32);
  const int64_t tokens = SizeArg(op, info, 4, "tokens"), heads = SizeArg(op, info, 5, "heads");
  const int64_t head_dim = SizeArg(op, info, 6, "headDim");
  if (head_dim % 2 != 0) op.Fail("headDim " + std::to_string(head_dim) + " must be even");
  ExpectLength(op, x, in_name, Product(op, {tokens, heads, head_dim}), "tokens·heads·headDim");
  ExpectLength(op, out, out_name, Product(op, {tokens, heads, head_dim}), "tokens·heads·headDim");
  ExpectLength(op, positions, "positions", tokens, "tokens");
  ExpectLength(op, inv_freq, "invFreq", head_dim / 2, "headDim/2");
  ExpectSameOrDisjoint(op, out, out_name, {{&x, in_name}});
  ExpectDisjointFrom(op, out, out_name, {{&positions, "positions"}, {&inv_freq, "invFreq"}});
  Run(op, Sizes({{"tokens", tokens}, {"heads", heads}, {"headDim", head_dim}}), [&] {
    cuda::Rope(F(x), I(positions), F(inv_freq), F(out), tokens, heads, head_dim, inverse);
  });
}
void Rope(const Napi::CallbackInfo& info) { RopeCommon(info, false); }
void RopeBackward(const Napi::CallbackInfo& info) { RopeCommon(info, true); }

struct AttentionSizes {
  int64_t queries, keys, heads, kv_heads, head_dim;
  float scale;
  Sizes sizes{{}};
};

AttentionSizes AttentionSizeArgs(const Op& op, const Napi::CallbackInfo& info, size_t first) {
  AttentionSizes s;
  s.queries = SizeArg(op, info, first, "queries");
  s.keys = SizeArg(op, info, first + 1, "keys");
  s.heads = SizeArg(op, info, first + 2, "heads");
  s.kv_heads = SizeArg(op, info, first + 3, "kvHeads");
  s.head_dim = SizeArg(op, info, first + 4, "headDim");
  s.scale = static_cast<float>(NumberArg(op, info, first + 5, "scale"));
  CheckHeads(op, s.heads, s.kv_heads);
  if (s.head_dim > cuda::kMaxHeadDim) {
    op.Fail("headDim " + std::to_string(s.head_dim) + " exceeds the CUDA kernels' limit " +
            std::to_string(cuda::kMaxHeadDim));
  }
  if (s.keys > INT32_MAX) op.Fail("more than 2³¹ − 1 keys");
  s.sizes = Sizes({{"queries", s.queries}, {"keys", s.keys}, {"heads", s.heads}, {"kvHeads", s.kv_heads},
                  {"headDim", s.head_dim}});
  return s;
}

void ExpectQkvo(const Op& op, const AttentionSizes& s, const View& q, const View& k, const View& v, const View& out) {
  ExpectLength(op, q, "q", Product(op, {s.queries, s.heads, s.head_dim}), "queries·heads·headDim");
  ExpectLength(op, out, "out", Product(op, {s.queries, s.heads, s.head_dim}), "queries·heads·headDim");
  ExpectLength(op, k, "k", Product(op, {s.keys, s.kv_heads, s.head_dim}), "keys·kvHeads·headDim");
  ExpectLength(op, v, "v", Product(op, {s.keys, s.kv_heads, s.head_dim}), "keys·kvHeads·headDim");
}

// attention(q, k, v, keyStart, keyEnd, out, queries, keys, heads, kvHeads, headDim, scale[, lse, bf16])
void AttentionCommon(const Napi::CallbackInfo& info, bool with_lse) {
  const Op op{info.Env(), with_lse ? "attentionForTraining" : "attention"};
  CheckArgCount(op, info, with_lse ? 14 : 12);
  const View q = TensorArg(op, info, 0, "q", kF32), k = TensorArg(op, info, 1, "k", kF32);
  const View v = TensorArg(op, info, 2, "v", kF32);
  const View start = TensorArg(op, info, 3, "keyStart", kI32), end = TensorArg(op, info, 4, "keyEnd", kI32);
  const View out = TensorArg(op, info, 5, "out", kF32);
  const AttentionSizes s = AttentionSizeArgs(op, info, 6);
  const View lse = with_lse ? TensorArg(op, info, 12, "lse", kF32) : View{};
  const bool bf16 = with_lse && BoolArg(op, info, 13, "bf16");
  ExpectQkvo(op, s, q, k, v, out);
  ExpectLength(op, start, "keyStart", s.queries, "queries");
  ExpectLength(op, end, "keyEnd", s.queries, "queries");
  ExpectDisjointFrom(op, out, "out", {{&q, "q"}, {&k, "k"}, {&v, "v"}, {&start, "keyStart"}, {&end, "keyEnd"}});
  if (with_lse) {
    ExpectLength(op, lse, "lse", Product(op, {s.queries, s.heads}), "queries·heads");
    ExpectDisjointFrom(op, lse, "lse", {{&q, "q"}, {&k, "k"}, {&v, "v"}, {&out, "out"}});
  }
  CheckKeyRanges(op, start, end, s.queries, s.keys);
  cuda::AttentionArgs args{F(q), F(k), F(v), F(out), with_lse ? F(lse) : nullptr, I(start), I(end), nullptr, nullptr,
                           s.queries, s.keys, s.heads, s.kv_heads, s.head_dim, s.scale, bf16};
  Run(op, s.sizes, [&] { cuda::Attention(args); });
}
void Attention(const Napi::CallbackInfo& info) { AttentionCommon(info, false); }
void AttentionForTraining(const Napi::CallbackInfo& info) { AttentionCommon(info, true); }

// treeAttention(q, k, v, prefixStart, prefixEnd, extraOffsets, extraKeys, out, queries, keys, heads, kvHeads,
//               headDim, scale)
void TreeAttention(const Napi::CallbackInfo& info) {
  const Op op{info.Env(), "treeAttention"};
  CheckArgCount(op, info, 14);
  const View q = TensorArg(op, info, 0, "q", kF32), k = TensorArg(op, info, 1, "k", kF32);
  const View v = TensorArg(op, info, 2, "v", kF32);
  const View start = TensorArg(op, info, 3, "prefixStart", kI32), end = TensorArg(op, info, 4, "prefixEnd", kI32);
  const View offsets = TensorArg(op, info, 5, "extraOffsets", kI32), extra = TensorArg(op, info, 6, "extraKeys", kI32);
  const View out = TensorArg(op, info, 7, "out", kF32);
  const AttentionSizes s = AttentionSizeArgs(op, info, 8);
  ExpectQkvo(op, s, q, k, v, out);
  ExpectLength(op, start, "prefixStart", s.queries, "queries");
  ExpectLength(op, end, "prefixEnd", s.queries, "queries");
  ExpectLength(op, offsets, "extraOffsets", Product(op, {s.queries, 1}) + 1, "queries + 1");
  ExpectDisjointFrom(op, out, "out", {{&q, "q"}, {&k, "k"}, {&v, "v"}});
  CheckKeyRanges(op, start, end, s.queries, s.keys, "prefix range");
  const int32_t* o = offsets.host;
  for (int64_t t = 0; t <= s.queries; t++) {
    const bool ordered = t == s.queries ? o[t] >= 0 : o[t] >= 0 && o[t] <= o[t + 1];
    if (!ordered || o[t] > extra.size) {
      op.Fail("extraOffsets must be non-decreasing in [0, " + std::to_string(extra.size) +
              "] (the extraKeys length); extraOffsets[" + std::to_string(t) + "] = " + std::to_string(o[t]) +
              (t < s.queries ? ", extraOffsets[" + std::to_string(t + 1) + "] = " + std::to_string(o[t + 1]) : ""));
    }
  }
  for (int64_t e = 0; e < extra.size; e++) {
    if (extra.host[e] < 0 || extra.host[e] >= s.keys) {
      op.Fail("extra key " + std::to_string(extra.host[e]) + " at index " + std::to_string(e) + " out of range [0, " +
              std::to_string(s.keys) + ")");
    }
  }
  cuda::AttentionArgs args{F(q), F(k), F(v), F(out), nullptr, I(start), I(end), I(offsets), I(extra),
                           s.queries, s.keys, s.heads, s.kv_heads, s.head_dim, s.scale, false};
  Run(op, s.sizes, [&] { cuda::Attention(args); });
}

// attentionBackward(q, k, v, out, dOut, lse, keyStart, keyEnd, dq, dk, dv, queries, keys, heads, kvHeads,
//                   headDim, scale, bf16)
void AttentionBackward(const Napi::CallbackInfo& info) {
  const Op op{info.Env(), "attentionBackward"};
  CheckArgCount(op, info, 18);
  const View q = TensorArg(op, info, 0, "q", kF32), k = TensorArg(op, info, 1, "k", kF32);
  const View v = TensorArg(op, info, 2, "v", kF32), out = TensorArg(op, info, 3, "out", kF32);
  const View d_out = TensorArg(op, info, 4, "dOut", kF32), lse = TensorArg(op, info, 5, "lse", kF32);
  const View start = TensorArg(op, info, 6, "keyStart", kI32), end = TensorArg(op, info, 7, "keyEnd", kI32);
  const View dq = TensorArg(op, info, 8, "dq", kF32), dk = TensorArg(op, info, 9, "dk", kF32);
  const View dv = TensorArg(op, info, 10, "dv", kF32);
  const AttentionSizes s = AttentionSizeArgs(op, info, 11);
  const bool bf16 = BoolArg(op, info, 17, "bf16");
  ExpectQkvo(op, s, q, k, v, out);
  ExpectLength(op, d_out, "dOut", q.size, "queries·heads·headDim");
  ExpectLength(op, dq, "dq", q.size, "queries·heads·headDim");
  ExpectLength(op, dk, "dk", k.size, "keys·kvHeads·headDim");
  ExpectLength(op, dv, "dv", k.size, "keys·kvHeads·headDim");
  ExpectLength(op, lse, "lse", Product(op, {s.queries, s.heads}), "queries·heads");
  ExpectLength(op, start, "keyStart", s.queries, "queries");
  ExpectLength(op, end, "keyEnd", s.queries, "queries");
  const std::initializer_list<Named> inputs = {{&q, "q"}, {&k, "k"}, {&v, "v"}, {&out, "out"}, {&d_out, "dOut"},
                                               {&lse, "lse"}, {&start, "keyStart"}, {&end, "keyEnd"}};
  ExpectDisjointFrom(op, dq, "dq", inputs);
  ExpectDisjointFrom(op, dk, "dk", inputs);
  ExpectDisjointFrom(op, dv, "dv", inputs);
  ExpectDisjointFrom(op, dq, "dq", {{&dk, "dk"}, {&dv, "dv"}});
  ExpectDisjointFrom(op, dk, "dk", {{&dv, "dv"}});
  CheckKeyRanges(op, start, end, s.queries, s.keys);
  cuda::AttentionBackwardArgs args{F(q), F(k), F(v), F(out), F(d_out), F(lse), I(start), I(end), F(dq), F(dk), F(dv),
                                   s.queries, s.keys, s.heads, s.kv_heads, s.head_dim, s.scale, bf16};
  Run(op, s.sizes, [&] { cuda::AttentionBackward(args); });
}

// swiglu(gate, up, out, count), add(a, b, out, count)
void Swiglu(const Napi::CallbackInfo& info) {
  const Op op{info.Env(), "swiglu"};
  CheckArgCount(op, info, 4);
  const View g = TensorArg(op, info, 0, "gate", kF32), u = TensorArg(op, info, 1, "up", kF32);
  const View out = TensorArg(op, info, 2, "out", kF32);
  const int64_t count = SizeArg(op, info, 3, "count");
  ExpectLength(op, g, "gate", count, "count");
  ExpectLength(op, u, "up", count, "count");
  ExpectLength(op, out, "out", count, "count");
  ExpectSameOrDisjoint(op, out, "out", {{&g, "gate"}, {&u, "up"}});
  Run(op, Sizes({{"count", count}}), [&] { cuda::Swiglu(F(g), F(u), F(out), count); });
}

void Add(const Napi::CallbackInfo& info) {
  const Op op{info.Env(), "add"};
  CheckArgCount(op, info, 4);
  const View a = TensorArg(op, info, 0, "a", kF32), b = TensorArg(op, info, 1, "b", kF32);
  const View out = TensorArg(op, info, 2, "out", kF32);
  const int64_t count = SizeArg(op, info, 3, "count");
  ExpectLength(op, a, "a", count, "count");
  ExpectLength(op, b, "b", count, "count");
  ExpectLength(op, out, "out", count, "count");
  ExpectSameOrDisjoint(op, out, "out", {{&a, "a"}, {&b, "b"}});
  Run(op, Sizes({{"count", count}}), [&] { cuda::Add(F(a), F(b), F(out), count); });
}

// swigluBackward(gate, up, dOut, dGate, dUp, count)
void SwigluBackward(const Napi::CallbackInfo& info) {
  const Op op{info.Env(), "swigluBackward"};
  CheckArgCount(op, info, 6);
  const View g = TensorArg(op, info, 0, "gate", kF32), u = TensorArg(op, info, 1, "up", kF32);
  const View d_out = TensorArg(op, info, 2, "dOut", kF32);
  const View d_gate = TensorArg(op, info, 3, "dGate", kF32), d_up = TensorArg(op, info, 4, "dUp", kF32);
  const int64_t count = SizeArg(op, info, 5, "count");
  for (const auto& [view, name] : {Named{&g, "gate"}, Named{&u, "up"}, Named{&d_out, "dOut"}, Named{&d_gate, "dGate"},
                                   Named{&d_up, "dUp"}}) {
    ExpectLength(op, *view, name, count, "count");
  }
  ExpectSameOrDisjoint(op, d_gate, "dGate", {{&g, "gate"}, {&u, "up"}, {&d_out, "dOut"}});
  ExpectSameOrDisjoint(op, d_up, "dUp", {{&g, "gate"}, {&u, "up"}, {&d_out, "dOut"}});
  ExpectDisjointFrom(op, d_gate, "dGate", {{&d_up, "dUp"}});
  Run(op, Sizes({{"count", count}}), [&] { cuda::SwigluBackward(F(g), F(u), F(d_out), F(d_gate), F(d_up), count); });
}

// scale(x, factor, out, count)
void Scale(const Napi::CallbackInfo& info) {
  const Op op{info.Env(), "scale"};
  CheckArgCount(op, info, 4);
  const View x = TensorArg(op, info, 0, "x", kF32);
  const float factor = static_cast<float>(NumberArg(op, info, 1, "factor"));
  const View out = TensorArg(op, info, 2, "out", kF32);
  const int64_t count = SizeArg(op, info, 3, "count");
  ExpectLength(op, x, "x", count, "count");
  ExpectLength(op, out, "out", count, "count");
  ExpectSameOrDisjoint(op, out, "out", {{&x, "x"}});
  Run(op, Sizes({{"count", count}}), [&] { cuda::Scale(F(x), factor, F(out), count); });
}

// fill(t, value): any dtype (the TS side updates an i32 tensor's host mirror)
void Fill(const Napi::CallbackInfo& info) {
  const Op op{info.Env(), "fill"};
  CheckArgCount(op, info, 2);
  const View t = TensorArg(op, info, 0, "t", {DType::kF32, DType::kBf16, DType::kF16, DType::kI32});
  const double value = NumberArg(op, info, 1, "value", false);
  if (t.dtype == DType::kI32 && !(std::floor(value) == value && value >= -2147483648.0 && value < 2147483648.0)) {
    op.Fail(std::to_string(value) + " is not an i32 value");
  }
  Run(op, Sizes({{"count", t.size}}), [&] { cuda::Fill(t.data, t.dtype, t.size, value); });
}

// convert(src, dst): f32/bf16/f16 both, same element count
void Convert(const Napi::CallbackInfo& info) {
  const Op op{info.Env(), "convert"};
  CheckArgCount(op, info, 2);
  const View src = TensorArg(op, info, 0, "src", kFloat), dst = TensorArg(op, info, 1, "dst", kFloat);
  ExpectLength(op, dst, "dst", src.size, "src's element count");
  ExpectSameOrDisjoint(op, dst, "dst", {{&src, "src"}});
  if (src.data == dst.data && src.dtype != dst.dtype) op.Fail("dst may be src itself only when the dtypes agree");
  Run(op, Sizes({{"count", src.size}}), [&] { cuda::Convert(src.data, src.dtype, dst.data, dst.dtype, src.size); });
}

// logSoftmax(logits, out, rows, vocab)
void LogSoftmax(const Napi::CallbackInfo& info) {
  const Op op{info.Env(), "logSoftmax"};
  CheckArgCount(op, info, 4);
  const View logits = TensorArg(op, info, 0, "logits", kF32), out = TensorArg(op, info, 1, "out", kF32);
  const int64_t rows = SizeArg(op, info, 2, "rows"), vocab = SizeArg(op, info, 3, "vocab");
  ExpectLength(op, logits, "logits", Product(op, {rows, vocab}), "rows·vocab");
  ExpectLength(op, out, "out", Product(op, {rows, vocab}), "rows·vocab");
  ExpectDisjointFrom(op, out, "out", {{&logits, "logits"}});
  Run(op, Sizes({{"rows", rows}, {"vocab", vocab}}), [&] { cuda::LogSoftmax(F(logits), F(out), rows, vocab); });
}

// logSoftmaxGather(logits, targets, out, rows, vocab)
void LogSoftmaxGather(const Napi::CallbackInfo& info) {
  const Op op{info.Env(), "logSoftmaxGather"};
  CheckArgCount(op, info, 5);
  const View logits = TensorArg(op, info, 0, "logits", kF32), targets = TensorArg(op, info, 1, "targets", kI32);
  const View out = TensorArg(op, info, 2, "out", kF32);
  const int64_t rows = SizeArg(op, info, 3, "rows"), vocab = SizeArg(op, info, 4, "vocab");
  ExpectLength(op, logits, "logits", Product(op, {rows, vocab}), "rows·vocab");
  ExpectLength(op, targets, "targets", rows, "rows");
  ExpectLength(op, out, "out", rows, "rows");
  ExpectDisjointFrom(op, out, "out", {{&logits, "logits"}, {&targets, "targets"}});
  for (int64_t r = 0; r < rows; r++) {
    if (targets.host[r] >= vocab) {
      op.Fail("target " + std::to_string(targets.host[r]) + " at row " + std::to_string(r) + " is not below vocab " +
              std::to_string(vocab));
    }
  }
  Run(op, Sizes({{"rows", rows}, {"vocab", vocab}}),
      [&] { cuda::LogSoftmaxGather(F(logits), I(targets), F(out), rows, vocab); });
}

// crossEntropy(logits, targets, losses, dLogits, rows, vocab, gradScale)
void CrossEntropy(const Napi::CallbackInfo& info) {
  const Op op{info.Env(), "crossEntropy"};
  CheckArgCount(op, info, 7);
  const View logits = TensorArg(op, info, 0, "logits", kF32), targets = TensorArg(op, info, 1, "targets", kI32);
  const View losses = TensorArg(op, info, 2, "losses", kF32), d_logits = TensorArg(op, info, 3, "dLogits", kF32);
  const int64_t rows = SizeArg(op, info, 4, "rows"), vocab = SizeArg(op, info, 5, "vocab");
  const float grad_scale = static_cast<float>(NumberArg(op, info, 6, "gradScale"));
  ExpectLength(op, logits, "logits", Product(op, {rows, vocab}), "rows·vocab");
  ExpectLength(op, d_logits, "dLogits", Product(op, {rows, vocab}), "rows·vocab");
  ExpectLength(op, targets, "targets", rows, "rows");
  ExpectLength(op, losses, "losses", rows, "rows");
  ExpectSameOrDisjoint(op, d_logits, "dLogits", {{&logits, "logits"}});
  ExpectDisjointFrom(op, d_logits, "dLogits", {{&targets, "targets"}, {&losses, "losses"}});
  ExpectDisjointFrom(op, losses, "losses", {{&logits, "logits"}, {&targets, "targets"}});
  for (int64_t r = 0; r < rows; r++) {
    if (targets.host[r] < -1 || targets.host[r] >= vocab) {
      op.Fail("target " + std::to_string(targets.host[r]) + " at row " + std::to_string(r) +
              " must be -1 (ignored) or in [0, " + std::to_string(vocab) + ")");
    }
  }
  Run(op, Sizes({{"rows", rows}, {"vocab", vocab}}),
      [&] { cuda::CrossEntropy(F(logits), I(targets), F(losses), F(d_logits), rows, vocab, grad_scale); });
}

// scatterRows(src, index, dst, rows, dstRows, width): duplicates resolved on the host (the last wins)
void ScatterRows(const Napi::CallbackInfo& info) {
  const Op op{info.Env(), "scatterRows"};
  CheckArgCount(op, info, 6);
  const View src = TensorArg(op, info, 0, "src", {DType::kF32, DType::kBf16, DType::kF16, DType::kI32});
  const View index = TensorArg(op, info, 1, "index", kI32);
  const View dst = TensorArg(op, info, 2, "dst", {src.dtype});
  const int64_t rows = SizeArg(op, info, 3, "rows"), dst_rows = SizeArg(op, info, 4, "dstRows");
  const int64_t width = SizeArg(op, info, 5, "width");
  ExpectLength(op, src, "src", Product(op, {rows, width}), "rows·width");
  ExpectLength(op, dst, "dst", Product(op, {dst_rows, width}), "dstRows·width");
  ExpectLength(op, index, "index", rows, "rows");
  ExpectDisjointFrom(op, dst, "dst", {{&src, "src"}, {&index, "index"}});
  std::vector<int32_t> effective(index.host, index.host + rows);
  std::vector<bool> taken(static_cast<size_t>(dst_rows), false);
  for (int64_t t = 0; t < rows; t++) {
    if (effective[t] < 0 || effective[t] >= dst_rows) {
      op.Fail("index " + std::to_string(effective[t]) + " at row " + std::to_string(t) + " out of range [0, " +
              std::to_string(dst_rows) + ")");
    }
  }
  for (int64_t t = rows - 1; t >= 0; t--) {  // keep the last write of each destination row
    if (taken[effective[t]]) {
      effective[t] = -1;
    } else {
      taken[effective[t]] = true;
    }
  }
  Run(op, Sizes({{"rows", rows}, {"dstRows", dst_rows}, {"width", width}}), [&] {
    auto* device_index = static_cast<int32_t*>(cuda::Malloc(static_cast<size_t>(rows) * sizeof(int32_t)));
    try {
      cuda::CopyToDevice(device_index, effective.data(), static_cast<size_t>(rows) * sizeof(int32_t));
      cuda::ScatterRows(src.data, device_index, dst.data, rows, dst_rows,
                        width * static_cast<int64_t>(cuda::DTypeBytes(src.dtype)));
    } catch (...) {
      cuda::Free(device_index);
      throw;
    }
    cuda::Free(device_index);
  });
}

// adamw(param, grad, m, v, count, learningRate, beta1, beta2, epsilon, weightDecay, step)
void AdamW(const Napi::CallbackInfo& info) {
  const Op op{info.Env(), "adamw"};
  CheckArgCount(op, info, 11);
  const View param = TensorArg(op, info, 0, "param", kF32), grad = TensorArg(op, info, 1, "grad", kF32);
  const View m = TensorArg(op, info, 2, "m", kF32), v = TensorArg(op, info, 3, "v", kF32);
  const int64_t count = SizeArg(op, info, 4, "count");
  for (const auto& [view, name] : {Named{&param, "param"}, Named{&grad, "grad"}, Named{&m, "m"}, Named{&v, "v"}}) {
    ExpectLength(op, *view, name, count, "count");
  }
  ExpectDisjointFrom(op, param, "param", {{&grad, "grad"}, {&m, "m"}, {&v, "v"}});
  ExpectDisjointFrom(op, m, "m", {{&grad, "grad"}, {&v, "v"}});
  ExpectDisjointFrom(op, v, "v", {{&grad, "grad"}});
  cuda::AdamWArgs args{F(param), F(grad), F(m), F(v), count, NumberArg(op, info, 5, "learningRate"),
                       NumberArg(op, info, 6, "beta1"), NumberArg(op, info, 7, "beta2"),
                       NumberArg(op, info, 8, "epsilon"), NumberArg(op, info, 9, "weightDecay"),
                       SizeArg(op, info, 10, "step")};
  if (args.step < 1) op.Fail("step must be ≥ 1, got " + std::to_string(args.step));
  if (!(args.beta1 >= 0 && args.beta1 < 1 && args.beta2 >= 0 && args.beta2 < 1)) {
    op.Fail("beta1 and beta2 must be in [0, 1)");
  }
  Run(op, Sizes({{"count", count}}), [&] { cuda::AdamW(args); });
}

#endif  // LABOR_HAVE_CUDA

}  // namespace

void RegisterCudaOps(Napi::Env env, Napi::Object exports) {
  Napi::Object object = Napi::Object::New(env);
  auto add = [&](const char* name, auto function) { object.Set(name, Napi::Function::New(env, function, name)); };
  add("probe", Probe);
#ifdef LABOR_HAVE_CUDA
  add("alloc", Alloc);
  add("free", FreeBuffer);
  add("upload", Upload);
  add("download", Download);
  add("sumOfSquares", SumOfSquares);
  add("synchronize", Synchronize);
  add("timingMark", TimingMark);
  add("takeTimingMarks", TakeTimingMarks);
  add("matmul", Matmul);
  add("embedding", Embedding);
  add("embeddingBackward", EmbeddingBackward);
  add("rmsnorm", RmsNorm);
  add("rmsnormBackward", RmsNormBackward);
  add("rope", Rope);
  add("ropeBackward", RopeBackward);
  add("attention", Attention);
  add("attentionForTraining", AttentionForTraining);
  add("attentionBackward", AttentionBackward);
  add("treeAttention", TreeAttention);
  add("swiglu", Swiglu);
  add("swigluBackward", SwigluBackward);
  add("add", Add);
  add("scale", Scale);
  add("fill", Fill);
  add("convert", Convert);
  add("logSoftmax", LogSoftmax);
  add("logSoftmaxGather", LogSoftmaxGather);
  add("crossEntropy", CrossEntropy);
  add("scatterRows", ScatterRows);
  add("adamw", AdamW);
#endif
  exports.Set("cuda", object);
}

}  // namespace labor
