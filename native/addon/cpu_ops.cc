// exports.cpu: Node-API bindings of the CPU kernels (native/cpu/ops.h), typed in src/engine/native.ts.
//
// Kernels trust their arguments, so everything is checked here first: argument count and kinds, typed
// array kinds against dtype strings, every length against the product of the sizes (64-bit, overflow-
// checked), index ranges, and that an output doesn't overlap an input it is computed from. Failures throw
// a JS Error "<op>: <what>" naming the sizes involved.
#include <time.h>

#include <atomic>
#include <cmath>
#include <cstdint>
#include <functional>
#include <stdexcept>
#include <initializer_list>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "addon/exports.h"
#include "addon/op_args.h"
#include "cpu/isa.h"
#include "cpu/ops.h"
#include "cpu/thread_pool.h"
#include "cpu/training_ops.h"

namespace labor {
namespace {

using cpu::DType;

using addon::BoolArg;
using addon::CheckArgCount;
using addon::NumberArg;
using addon::Op;
using addon::SizeArg;

float FloatArg(const Op& op, const Napi::CallbackInfo& info, size_t index, const char* name) {
  return static_cast<float>(NumberArg(op, info, index, name));
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

// ---- the CPU stream: kernels recorded on the JS thread, run in order on a libuv worker thread ----
//
// Between record(isa) and record(null) (src/engine/cpu/backend.ts wraps every op in them), an op's
// arguments are checked at once, as always, but its kernel is appended to the recording instead of run;
// flush() hands everything recorded so far to one AsyncWorker that runs it in order off the JS thread and
// settles a promise. The recording holds a reference to every typed array and packed weight an op was
// given, released once the batch has run, so nothing it reads or writes can be collected meanwhile.
// Checks of array *contents* (ids, key ranges, targets, indices) run again right before their kernel,
// because an earlier recorded op may write those arrays. One batch runs at a time (the TS side chains its
// flushes); each recorded op carries the ISA to run with, selected by the worker before it runs.
struct Launched {
  const char* name;
  cpu::Isa isa;
  std::function<void()> kernel;
};

struct Recording {
  bool on = false;
  cpu::Isa isa = cpu::Isa::kScalar;
  std::vector<Launched> launched;
  std::vector<Napi::Reference<Napi::Value>> keep;
  int in_flight = 0;
};

// Per JS thread (each Node environment records its own); never destroyed, so no Reference outlives its env
// in a static destructor.
Recording& Pending() {
  thread_local Recording* recording = new Recording;
  return *recording;
}

// A content check's failure at run time (the message has no op name; the batch runner adds it).
void Require(const std::string& problem) {
  if (!problem.empty()) throw std::runtime_error(problem);
}

// Runs `kernel` now, or, while recording, records it (by value: it must capture only plain values and
// pointers into the arguments' memory) with references to the call's arrays.
template <class Kernel>
void Launch(const Op& op, const Napi::CallbackInfo& info, Kernel kernel) {
  Recording& recording = Pending();
  if (!recording.on) {
    RunKernel(op, kernel);
    return;
  }
  for (size_t i = 0; i < info.Length(); i++) {
    if (info[i].IsTypedArray() || info[i].IsExternal()) recording.keep.push_back(Napi::Persistent(info[i]));
  }
  recording.launched.push_back(Launched{op.name, recording.isa, std::function<void()>(std::move(kernel))});
}

class FlushWorker : public Napi::AsyncWorker {
 public:
  FlushWorker(Napi::Env env, Recording& recording)
      : Napi::AsyncWorker(env, "labor-llm:cpu-flush"),
        deferred_(Napi::Promise::Deferred::New(env)),
        launched_(std::move(recording.launched)),
        keep_(std::move(recording.keep)) {
    recording.launched.clear();
    recording.keep.clear();
  }

  Napi::Promise Promise() const { return deferred_.Promise(); }

  // Worker thread: the kernels in order; the first failure ends the batch ("<op>: <what>").
  void Execute() override {
    for (const Launched& launched : launched_) {
      try {
        if (cpu::SelectedIsa() != launched.isa) cpu::SelectIsa(launched.isa);
        launched.kernel();
      } catch (const std::exception& error) {
        SetError(std::string(launched.name) + ": " + error.what());
        return;
      }
    }
  }

  void OnOK() override {
    Release();
    deferred_.Resolve(Env().Undefined());
  }

  void OnError(const Napi::Error& error) override {
    Release();
    deferred_.Reject(error.Value());
  }

 private:
  void Release() {
    launched_.clear();
    keep_.clear();
    Pending().in_flight--;
  }

  Napi::Promise::Deferred deferred_;
  std::vector<Launched> launched_;
  std::vector<Napi::Reference<Napi::Value>> keep_;
};

// The ISA named by string argument `index`, which this CPU must run (record, setIsa, packWeight).
cpu::Isa AvailableIsaArg(const Op& op, const Napi::CallbackInfo& info, size_t index) {
  if (!info[index].IsString()) op.Fail("isa must be a string");
  const std::string name = info[index].As<Napi::String>().Utf8Value();
  cpu::Isa isa;
  if (!cpu::ParseIsa(name, &isa)) op.Fail("unknown ISA \"" + name + "\" (amx, avx512, avx2, scalar)");
  const std::string unavailable = cpu::UnavailableReason(isa);
  if (!unavailable.empty()) op.Fail(unavailable);
  return isa;
}

// record(isa | null): start recording ops for `isa`, or stop.
void Record(const Napi::CallbackInfo& info) {
  const Op op{info.Env(), "record"};
  CheckArgCount(op, info, 1);
  Recording& recording = Pending();
  if (info[0].IsNull()) {
    recording.on = false;
    return;
  }
  recording.isa = AvailableIsaArg(op, info, 0);
  recording.on = true;
}

// flush() -> Promise<void>: runs everything recorded so far off the JS thread; rejects with the first
// kernel's error. Fails when a batch is still running (callers chain their flushes).
Napi::Value Flush(const Napi::CallbackInfo& info) {
  const Op op{info.Env(), "flush"};
  CheckArgCount(op, info, 0);
  Recording& recording = Pending();
  if (recording.on) op.Fail("called while recording");
  if (recording.in_flight > 0) op.Fail("the previous batch is still running (await its flush first)");
  if (recording.launched.empty()) {
    recording.keep.clear();
    auto deferred = Napi::Promise::Deferred::New(info.Env());
    deferred.Resolve(info.Env().Undefined());
    return deferred.Promise();
  }
  auto* worker = new FlushWorker(info.Env(), recording);
  recording.in_flight++;
  worker->Queue();
  return worker->Promise();
}

// pendingOps() -> ops recorded and not yet handed to a flush.
Napi::Value PendingOps(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(Pending().launched.size()));
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
  cpu::SelectIsa(AvailableIsaArg(op, info, 0));
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

// A packed weight as JS holds it: an External (type-tagged) over this holder, which releasePackedWeight
// empties at once and the garbage collector deletes with the External.
struct PackedHandle {
  std::unique_ptr<cpu::PackedWeight> weight;
};

constexpr napi_type_tag kPackedWeightTag = {0x6c61626f722d6c6cULL, 0x7061636b65642d77ULL};

// The PackedWeight behind argument `index` (an External made by packWeight); fails when it is anything
// else or was released.
const cpu::PackedWeight& PackedArg(const Op& op, const Napi::CallbackInfo& info, size_t index, const char* name) {
  if (!info[index].IsExternal() || !info[index].As<Napi::External<PackedHandle>>().CheckTypeTag(&kPackedWeightTag)) {
    op.Fail(std::string(name) + " must be a packed weight from packWeight");
  }
  const PackedHandle* handle = info[index].As<Napi::External<PackedHandle>>().Data();
  if (!handle->weight) op.Fail(std::string(name) + " was released");
  return *handle->weight;
}

// packWeight(b, n, k, transB, isa) -> packed weight | null: b (bf16, [N,K] when transB, else [K,N]) packed
// for `isa`'s matmul (the ISA its matmuls will run on, whatever the process-wide selection is now), or null
// when that ISA reads b in place (all but AMX). b must not change afterwards (a frozen weight). When b lies
// in a mapped file, its pages are dropped from RSS after packing.
Napi::Value PackWeight(const Napi::CallbackInfo& info) {
  const Op op{info.Env(), "packWeight"};
  CheckArgCount(op, info, 5);
  const Array b = ArrayArg(op, info, 0, "b", napi_uint16_array, " (bf16)");
  const int64_t n = SizeArg(op, info, 1, "n"), k = SizeArg(op, info, 2, "k");
  const bool trans_b = BoolArg(op, info, 3, "transB");
  const cpu::Isa isa = AvailableIsaArg(op, info, 4);
  ExpectLength(op, b, "b", Product(op, {n, k}), "N·K");
  std::unique_ptr<cpu::PackedWeight> packed;
  RunKernel(op, [&] { packed = cpu::PackWeight(static_cast<const uint16_t*>(b.data), n, k, trans_b, isa); });
  if (!packed) return info.Env().Null();
  DropMappedPages(b.data, b.bytes);
  auto external = Napi::External<PackedHandle>::New(info.Env(), new PackedHandle{std::move(packed)},
                                                    [](Napi::Env, PackedHandle* handle) { delete handle; });
  external.TypeTag(&kPackedWeightTag);
  return external;
}

// releasePackedWeight(packed): frees the packed copy now (a matmul given it afterwards fails).
void ReleasePackedWeight(const Napi::CallbackInfo& info) {
  const Op op{info.Env(), "releasePackedWeight"};
  CheckArgCount(op, info, 1);
  PackedArg(op, info, 0, "packed");  // checks the kind; releasing twice fails
  info[0].As<Napi::External<PackedHandle>>().Data()->weight.reset();
}

Napi::Value PackStats(const Napi::CallbackInfo& info) {
  const cpu::PackStats stats = cpu::GetPackStats();
  Napi::Object result = Napi::Object::New(info.Env());
  result.Set("liveWeights", static_cast<double>(stats.live_weights));
  result.Set("liveBytes", static_cast<double>(stats.live_bytes));
  result.Set("cachedPacks", static_cast<double>(stats.cached_packs));
  result.Set("cachedSeconds", stats.cached_seconds);
  result.Set("perCallPacks", static_cast<double>(stats.per_call_packs));
  result.Set("perCallSeconds", stats.per_call_seconds);
  return result;
}

// Content checks, run when an op is called and again right before its kernel (a recorded op may write
// the arrays they read): "" when fine, else the problem without the op's name.
std::string IdProblem(const int32_t* id, int64_t count, int64_t vocab) {
  for (int64_t t = 0; t < count; t++) {
    if (id[t] < 0 || id[t] >= vocab) {
      return "id " + std::to_string(id[t]) + " at position " + std::to_string(t) + " out of range [0, " +
             std::to_string(vocab) + ")";
    }
  }
  return "";
}

// Every query's key range satisfies 0 ≤ start ≤ end ≤ keys.
std::string KeyRangeProblem(const int32_t* start, const int32_t* end, int64_t queries, int64_t keys,
                            const char* what = "key range") {
  for (int64_t t = 0; t < queries; t++) {
    if (start[t] < 0 || start[t] > end[t] || end[t] > keys) {
      return "query " + std::to_string(t) + " has " + what + " [" + std::to_string(start[t]) + ", " +
             std::to_string(end[t]) + "), outside 0 ≤ start ≤ end ≤ keys = " + std::to_string(keys);
    }
  }
  return "";
}

// Row indices in [0, rows).
std::string IndexProblem(const int32_t* row, int64_t count, int64_t rows) {
  for (int64_t t = 0; t < count; t++) {
    if (row[t] < 0 || row[t] >= rows) {
      return "index " + std::to_string(row[t]) + " at row " + std::to_string(t) + " out of range [0, " +
             std::to_string(rows) + ")";
    }
  }
  return "";
}

// Targets below vocab (logSoftmaxGather), or −1 (ignored) or in [0, vocab) (crossEntropy, `ignore`).
std::string TargetProblem(const int32_t* target, int64_t rows, int64_t vocab, bool ignore) {
  for (int64_t r = 0; r < rows; r++) {
    if (ignore ? target[r] < -1 || target[r] >= vocab : target[r] >= vocab) {
      return "target " + std::to_string(target[r]) + " at row " + std::to_string(r) +
             (ignore ? " must be -1 (ignored) or in [0, " + std::to_string(vocab) + ")"
                     : " is not below vocab " + std::to_string(vocab));
    }
  }
  return "";
}

// Tree attention's extra keys: offsets non-decreasing in [0, extraCount], every key in [0, keys).
std::string TreeProblem(const int32_t* offsets, const int32_t* extra, int64_t queries, int64_t extra_count,
                        int64_t keys) {
  for (int64_t t = 0; t <= queries; t++) {
    const bool ordered = t == queries ? offsets[t] >= 0 : offsets[t] >= 0 && offsets[t] <= offsets[t + 1];
    if (!ordered || offsets[t] > extra_count) {
      return "extraOffsets must be non-decreasing in [0, " + std::to_string(extra_count) +
             "] (the extraKeys length); extraOffsets[" + std::to_string(t) + "] = " + std::to_string(offsets[t]) +
             (t < queries ? ", extraOffsets[" + std::to_string(t + 1) + "] = " + std::to_string(offsets[t + 1]) : "");
    }
  }
  for (int64_t e = 0; e < extra_count; e++) {
    if (extra[e] < 0 || extra[e] >= keys) {
      return "extra key " + std::to_string(extra[e]) + " at index " + std::to_string(e) + " out of range [0, " +
             std::to_string(keys) + ")";
    }
  }
  return "";
}

void Matmul(const Napi::CallbackInfo& info) {
  const Op op{info.Env(), "matmul"};
  if (info.Length() < 12 || info.Length() > 14) {
    op.Fail("expected 12 arguments (13 with alpha, 14 with a packed b), got " + std::to_string(info.Length()));
  }
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
  const float alpha = info.Length() >= 13 ? FloatArg(op, info, 12, "alpha") : 1.0f;
  const cpu::PackedWeight* packed = nullptr;
  if (info.Length() == 14 && !info[13].IsNull() && !info[13].IsUndefined()) {
    packed = &PackedArg(op, info, 13, "packedB");
    if (b_dtype != DType::kBf16 || b_batched || packed->source != b.data || packed->n != n || packed->k != k ||
        packed->trans_b != trans_b) {
      op.Fail("packedB was packed from another b (b must be the same bf16 array, shared by every batch item, with "
              "the same N, K and transB)");
    }
  }
  cpu::MatmulArgs args{static_cast<const float*>(a.data), b.data, b_dtype, static_cast<float*>(out.data),
                       batch, m, n, k, trans_a, trans_b, b_batched, accumulate, alpha};
  args.packed_b = packed;
  Launch(op, info, [=] { cpu::Matmul(args); });
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
  if (const std::string problem = IdProblem(id, ids.length, vocab); !problem.empty()) op.Fail(problem);
  Launch(op, info, [=] {
    Require(IdProblem(id, ids.length, vocab));
    cpu::Embedding(id, ids.length, table.data, dtype, dim, static_cast<float*>(out.data)); });
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
  Launch(op, info, [=] {
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
  Launch(op, info, [=] {
    cpu::Rope(static_cast<const float*>(x.data), static_cast<const int32_t*>(positions.data),
              static_cast<const float*>(inv_freq.data), static_cast<float*>(out.data), tokens, heads, head_dim);
  });
}

// Checks that every query's key range satisfies 0 ≤ start ≤ end ≤ keys.
void CheckKeyRanges(const Op& op, const int32_t* start, const int32_t* end, int64_t queries, int64_t keys,
                    const char* what = "key range") {
  if (const std::string problem = KeyRangeProblem(start, end, queries, keys, what); !problem.empty()) op.Fail(problem);
}

void CheckHeads(const Op& op, int64_t heads, int64_t kv_heads) {
  if (heads < 1 || kv_heads < 1 || heads % kv_heads != 0) {
    op.Fail("heads " + std::to_string(heads) + " must be a positive multiple of kvHeads " +
            std::to_string(kv_heads));
  }
}

// attention(q, k, v, keyStart, keyEnd, out, queries, keys, heads, kvHeads, headDim, scale[, lse]): the
// forward, and with lse (attentionForTraining) also each row's log-sum-exp.
void AttentionWith(const Napi::CallbackInfo& info, const char* name, bool with_lse) {
  const Op op{info.Env(), name};
  CheckArgCount(op, info, with_lse ? 13 : 12);
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
  CheckHeads(op, heads, kv_heads);
  ExpectLength(op, q, "q", Product(op, {queries, heads, head_dim}), "queries·heads·headDim");
  ExpectLength(op, out, "out", Product(op, {queries, heads, head_dim}), "queries·heads·headDim");
  ExpectLength(op, k, "k", Product(op, {keys, kv_heads, head_dim}), "keys·kvHeads·headDim");
  ExpectLength(op, v, "v", Product(op, {keys, kv_heads, head_dim}), "keys·kvHeads·headDim");
  ExpectLength(op, key_start, "keyStart", queries, "queries");
  ExpectLength(op, key_end, "keyEnd", queries, "queries");
  ExpectDisjoint(op, out, "out", q, "q");
  ExpectDisjoint(op, out, "out", k, "k");
  ExpectDisjoint(op, out, "out", v, "v");
  float* lse = nullptr;
  if (with_lse) {
    const Array lse_array = ArrayArg(op, info, 12, "lse", napi_float32_array);
    ExpectLength(op, lse_array, "lse", Product(op, {queries, heads}), "queries·heads");
    for (const auto& [input, input_name] : {std::pair{&q, "q"}, {&k, "k"}, {&v, "v"}, {&out, "out"}}) {
      ExpectDisjoint(op, lse_array, "lse", *input, input_name);
    }
    lse = static_cast<float*>(lse_array.data);
  }
  const auto* start = static_cast<const int32_t*>(key_start.data);
  const auto* end = static_cast<const int32_t*>(key_end.data);
  CheckKeyRanges(op, start, end, queries, keys);
  cpu::AttentionArgs args{static_cast<const float*>(q.data), static_cast<const float*>(k.data),
                          static_cast<const float*>(v.data), start, end, static_cast<float*>(out.data),
                          queries, keys, heads, kv_heads, head_dim, scale};
  args.lse = lse;
  Launch(op, info, [=] {
    Require(KeyRangeProblem(start, end, queries, keys));
    cpu::Attention(args);
  });
}

void Attention(const Napi::CallbackInfo& info) { AttentionWith(info, "attention", false); }
void AttentionForTraining(const Napi::CallbackInfo& info) { AttentionWith(info, "attentionForTraining", true); }

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
  Launch(op, info, [=] {
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
  Launch(op, info, [=] {
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
  if (const std::string problem = TargetProblem(target, rows, vocab, false); !problem.empty()) op.Fail(problem);
  Launch(op, info, [=] {
    Require(TargetProblem(target, rows, vocab, false));
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
  if (const std::string problem = IndexProblem(row, rows, dst_rows); !problem.empty()) op.Fail(problem);
  const int64_t row_bytes = width * static_cast<int64_t>(type == napi_uint16_array ? 2 : 4);
  Launch(op, info, [=] {
    Require(IndexProblem(row, rows, dst_rows));
    cpu::ScatterRows(src.data, row, dst.data, rows, row_bytes);
  });
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
  Launch(op, info, [=] { cpu::Convert(src.data, src_dtype, dst.data, dst_dtype, count); });
}

// ---- training and scoring ops (native/cpu/training_ops.h) ----

using Named = std::pair<const Array*, const char*>;

// `out` must share no memory with any of `others`.
void ExpectDisjointFrom(const Op& op, const Array& out, const char* out_name, std::initializer_list<Named> others) {
  for (const Named& other : others) ExpectDisjoint(op, out, out_name, *other.first, other.second);
}

// An output that may be exactly one of `inputs` (same start and length: same index in, same index out) but
// must not partly overlap any of them.
void ExpectSameOrDisjoint(const Op& op, const Array& out, const char* out_name, std::initializer_list<Named> inputs) {
  for (const Named& input : inputs) {
    if (out.data == input.first->data && out.bytes == input.first->bytes) continue;
    ExpectDisjoint(op, out, out_name, *input.first, (std::string(input.second) + " (unless it is " + input.second +
                                                     " itself)").c_str());
  }
}

// A finite number kept in f64 (optimizer hyperparameters).
double DoubleArg(const Op& op, const Napi::CallbackInfo& info, size_t index, const char* name) {
  if (!info[index].IsNumber()) op.Fail(std::string(name) + " must be a number");
  const double value = info[index].As<Napi::Number>().DoubleValue();
  if (!std::isfinite(value)) op.Fail(std::string(name) + " must be finite, got " + std::to_string(value));
  return value;
}

// A float argument that may also be ±inf or NaN (fill values).
float AnyFloatArg(const Op& op, const Napi::CallbackInfo& info, size_t index, const char* name) {
  if (!info[index].IsNumber()) op.Fail(std::string(name) + " must be a number");
  return static_cast<float>(info[index].As<Napi::Number>().DoubleValue());
}

// attentionBackward(q, k, v, out, dOut, lse, keyStart, keyEnd, dq, dk, dv, queries, keys, heads, kvHeads,
// headDim, scale)
void AttentionBackward(const Napi::CallbackInfo& info) {
  const Op op{info.Env(), "attentionBackward"};
  CheckArgCount(op, info, 17);
  const Array q = ArrayArg(op, info, 0, "q", napi_float32_array);
  const Array k = ArrayArg(op, info, 1, "k", napi_float32_array);
  const Array v = ArrayArg(op, info, 2, "v", napi_float32_array);
  const Array out = ArrayArg(op, info, 3, "out", napi_float32_array);
  const Array d_out = ArrayArg(op, info, 4, "dOut", napi_float32_array);
  const Array lse = ArrayArg(op, info, 5, "lse", napi_float32_array);
  const Array key_start = ArrayArg(op, info, 6, "keyStart", napi_int32_array);
  const Array key_end = ArrayArg(op, info, 7, "keyEnd", napi_int32_array);
  const Array dq = ArrayArg(op, info, 8, "dq", napi_float32_array);
  const Array dk = ArrayArg(op, info, 9, "dk", napi_float32_array);
  const Array dv = ArrayArg(op, info, 10, "dv", napi_float32_array);
  const int64_t queries = SizeArg(op, info, 11, "queries"), keys = SizeArg(op, info, 12, "keys");
  const int64_t heads = SizeArg(op, info, 13, "heads"), kv_heads = SizeArg(op, info, 14, "kvHeads");
  const int64_t head_dim = SizeArg(op, info, 15, "headDim");
  const float scale = FloatArg(op, info, 16, "scale");
  CheckHeads(op, heads, kv_heads);
  const int64_t q_size = Product(op, {queries, heads, head_dim}), kv_size = Product(op, {keys, kv_heads, head_dim});
  for (const auto& [array, name] : {Named{&q, "q"}, {&out, "out"}, {&d_out, "dOut"}, {&dq, "dq"}}) {
    ExpectLength(op, *array, name, q_size, "queries·heads·headDim");
  }
  for (const auto& [array, name] : {Named{&k, "k"}, {&v, "v"}, {&dk, "dk"}, {&dv, "dv"}}) {
    ExpectLength(op, *array, name, kv_size, "keys·kvHeads·headDim");
  }
  ExpectLength(op, lse, "lse", Product(op, {queries, heads}), "queries·heads");
  ExpectLength(op, key_start, "keyStart", queries, "queries");
  ExpectLength(op, key_end, "keyEnd", queries, "queries");
  const std::initializer_list<Named> inputs = {{&q, "q"}, {&k, "k"}, {&v, "v"}, {&out, "out"}, {&d_out, "dOut"},
                                               {&lse, "lse"}, {&key_start, "keyStart"}, {&key_end, "keyEnd"}};
  ExpectDisjointFrom(op, dq, "dq", inputs);
  ExpectDisjointFrom(op, dk, "dk", inputs);
  ExpectDisjointFrom(op, dv, "dv", inputs);
  ExpectDisjointFrom(op, dq, "dq", {{&dk, "dk"}, {&dv, "dv"}});
  ExpectDisjoint(op, dk, "dk", dv, "dv");
  const auto* start = static_cast<const int32_t*>(key_start.data);
  const auto* end = static_cast<const int32_t*>(key_end.data);
  CheckKeyRanges(op, start, end, queries, keys);
  const cpu::AttentionBackwardArgs args{
      static_cast<const float*>(q.data), static_cast<const float*>(k.data), static_cast<const float*>(v.data),
      static_cast<const float*>(out.data), static_cast<const float*>(d_out.data), static_cast<const float*>(lse.data),
      start, end, static_cast<float*>(dq.data), static_cast<float*>(dk.data), static_cast<float*>(dv.data),
      queries, keys, heads, kv_heads, head_dim, scale};
  Launch(op, info, [=] {
    Require(KeyRangeProblem(start, end, queries, keys));
    cpu::AttentionBackward(args);
  });
}

// treeAttention(q, k, v, prefixStart, prefixEnd, extraOffsets, extraKeys, out, queries, keys, heads, kvHeads,
// headDim, scale)
void TreeAttention(const Napi::CallbackInfo& info) {
  const Op op{info.Env(), "treeAttention"};
  CheckArgCount(op, info, 14);
  const Array q = ArrayArg(op, info, 0, "q", napi_float32_array);
  const Array k = ArrayArg(op, info, 1, "k", napi_float32_array);
  const Array v = ArrayArg(op, info, 2, "v", napi_float32_array);
  const Array prefix_start = ArrayArg(op, info, 3, "prefixStart", napi_int32_array);
  const Array prefix_end = ArrayArg(op, info, 4, "prefixEnd", napi_int32_array);
  const Array extra_offsets = ArrayArg(op, info, 5, "extraOffsets", napi_int32_array);
  const Array extra_keys = ArrayArg(op, info, 6, "extraKeys", napi_int32_array);
  const Array out = ArrayArg(op, info, 7, "out", napi_float32_array);
  const int64_t queries = SizeArg(op, info, 8, "queries"), keys = SizeArg(op, info, 9, "keys");
  const int64_t heads = SizeArg(op, info, 10, "heads"), kv_heads = SizeArg(op, info, 11, "kvHeads");
  const int64_t head_dim = SizeArg(op, info, 12, "headDim");
  const float scale = FloatArg(op, info, 13, "scale");
  CheckHeads(op, heads, kv_heads);
  ExpectLength(op, q, "q", Product(op, {queries, heads, head_dim}), "queries·heads·headDim");
  ExpectLength(op, out, "out", Product(op, {queries, heads, head_dim}), "queries·heads·headDim");
  ExpectLength(op, k, "k", Product(op, {keys, kv_heads, head_dim}), "keys·kvHeads·headDim");
  ExpectLength(op, v, "v", Product(op, {keys, kv_heads, head_dim}), "keys·kvHeads·headDim");
  ExpectLength(op, prefix_start, "prefixStart", queries, "queries");
  ExpectLength(op, prefix_end, "prefixEnd", queries, "queries");
  ExpectLength(op, extra_offsets, "extraOffsets", Product(op, {queries, 1}) + 1, "queries + 1");
  ExpectDisjointFrom(op, out, "out", {{&q, "q"}, {&k, "k"}, {&v, "v"}});
  const auto* start = static_cast<const int32_t*>(prefix_start.data);
  const auto* end = static_cast<const int32_t*>(prefix_end.data);
  CheckKeyRanges(op, start, end, queries, keys, "prefix range");
  const auto* offsets = static_cast<const int32_t*>(extra_offsets.data);
  const auto* extra = static_cast<const int32_t*>(extra_keys.data);
  const int64_t extra_count = extra_keys.length;
  if (const std::string problem = TreeProblem(offsets, extra, queries, extra_count, keys); !problem.empty()) {
    op.Fail(problem);
  }
  const cpu::TreeAttentionArgs args{static_cast<const float*>(q.data), static_cast<const float*>(k.data),
                                    static_cast<const float*>(v.data), start, end, offsets, extra,
                                    static_cast<float*>(out.data), queries, keys, heads, kv_heads, head_dim, scale};
  Launch(op, info, [=] {
    Require(KeyRangeProblem(start, end, queries, keys, "prefix range"));
    Require(TreeProblem(offsets, extra, queries, extra_count, keys));
    cpu::TreeAttention(args);
  });
}

// embeddingBackward(ids, dOut, dTable, vocab, dim): dTable[ids[t]] += dOut[t]
void EmbeddingBackward(const Napi::CallbackInfo& info) {
  const Op op{info.Env(), "embeddingBackward"};
  CheckArgCount(op, info, 5);
  const Array ids = ArrayArg(op, info, 0, "ids", napi_int32_array);
  const Array d_out = ArrayArg(op, info, 1, "dOut", napi_float32_array);
  const Array d_table = ArrayArg(op, info, 2, "dTable", napi_float32_array);
  const int64_t vocab = SizeArg(op, info, 3, "vocab"), dim = SizeArg(op, info, 4, "dim");
  ExpectLength(op, d_out, "dOut", Product(op, {ids.length, dim}), "ids·dim");
  ExpectLength(op, d_table, "dTable", Product(op, {vocab, dim}), "vocab·dim");
  ExpectDisjointFrom(op, d_table, "dTable", {{&ids, "ids"}, {&d_out, "dOut"}});
  const auto* id = static_cast<const int32_t*>(ids.data);
  if (const std::string problem = IdProblem(id, ids.length, vocab); !problem.empty()) op.Fail(problem);
  Launch(op, info, [=] {
    Require(IdProblem(id, ids.length, vocab));
    cpu::EmbeddingBackward(id, ids.length, static_cast<const float*>(d_out.data), dim, static_cast<float*>(d_table.data));
  });
}

// rmsnormBackward(x, weight, weightDtype, dOut, dx, dWeight | null, rows, dim, eps)
void RmsNormBackward(const Napi::CallbackInfo& info) {
  const Op op{info.Env(), "rmsnormBackward"};
  CheckArgCount(op, info, 9);
  const DType dtype = DTypeArg(op, info, 2, "weightDtype");
  const Array x = ArrayArg(op, info, 0, "x", napi_float32_array);
  const Array weight = FloatArrayArg(op, info, 1, "weight", dtype);
  const Array d_out = ArrayArg(op, info, 3, "dOut", napi_float32_array);
  const Array dx = ArrayArg(op, info, 4, "dx", napi_float32_array);
  const int64_t rows = SizeArg(op, info, 6, "rows"), dim = SizeArg(op, info, 7, "dim");
  const float eps = FloatArg(op, info, 8, "eps");
  const int64_t size = Product(op, {rows, dim});
  ExpectLength(op, x, "x", size, "rows·dim");
  ExpectLength(op, d_out, "dOut", size, "rows·dim");
  ExpectLength(op, dx, "dx", size, "rows·dim");
  ExpectLength(op, weight, "weight", dim, "dim");
  ExpectDisjointFrom(op, dx, "dx", {{&x, "x"}, {&weight, "weight"}, {&d_out, "dOut"}});
  float* d_weight = nullptr;
  if (!info[5].IsNull()) {
    const Array d_weight_array = ArrayArg(op, info, 5, "dWeight (or null)", napi_float32_array);
    ExpectLength(op, d_weight_array, "dWeight", dim, "dim");
    ExpectDisjointFrom(op, d_weight_array, "dWeight", {{&x, "x"}, {&weight, "weight"}, {&d_out, "dOut"}, {&dx, "dx"}});
    d_weight = static_cast<float*>(d_weight_array.data);
  }
  Launch(op, info, [=] {
    cpu::RmsNormBackward(static_cast<const float*>(x.data), weight.data, dtype, static_cast<const float*>(d_out.data),
                         static_cast<float*>(dx.data), d_weight, rows, dim, eps);
  });
}

// ropeBackward(dOut, positions, invFreq, dx, tokens, heads, headDim): dx may be dOut
void RopeBackward(const Napi::CallbackInfo& info) {
  const Op op{info.Env(), "ropeBackward"};
  CheckArgCount(op, info, 7);
  const Array d_out = ArrayArg(op, info, 0, "dOut", napi_float32_array);
  const Array positions = ArrayArg(op, info, 1, "positions", napi_int32_array);
  const Array inv_freq = ArrayArg(op, info, 2, "invFreq", napi_float32_array);
  const Array dx = ArrayArg(op, info, 3, "dx", napi_float32_array);
  const int64_t tokens = SizeArg(op, info, 4, "tokens"), heads = SizeArg(op, info, 5, "heads");
  const int64_t head_dim = SizeArg(op, info, 6, "headDim");
  if (head_dim % 2 != 0) op.Fail("headDim must be even, got " + std::to_string(head_dim));
  ExpectLength(op, d_out, "dOut", Product(op, {tokens, heads, head_dim}), "tokens·heads·headDim");
  ExpectLength(op, dx, "dx", Product(op, {tokens, heads, head_dim}), "tokens·heads·headDim");
  ExpectLength(op, positions, "positions", tokens, "tokens");
  ExpectLength(op, inv_freq, "invFreq", head_dim / 2, "headDim/2");
  ExpectSameOrDisjoint(op, dx, "dx", {{&d_out, "dOut"}});
  ExpectDisjointFrom(op, dx, "dx", {{&positions, "positions"}, {&inv_freq, "invFreq"}});
  Launch(op, info, [=] {
    cpu::RopeBackward(static_cast<const float*>(d_out.data), static_cast<const int32_t*>(positions.data),
                      static_cast<const float*>(inv_freq.data), static_cast<float*>(dx.data), tokens, heads, head_dim);
  });
}

// swigluBackward(gate, up, dOut, dGate, dUp, count): each output may be one of the inputs itself
void SwigluBackward(const Napi::CallbackInfo& info) {
  const Op op{info.Env(), "swigluBackward"};
  CheckArgCount(op, info, 6);
  const Array gate = ArrayArg(op, info, 0, "gate", napi_float32_array);
  const Array up = ArrayArg(op, info, 1, "up", napi_float32_array);
  const Array d_out = ArrayArg(op, info, 2, "dOut", napi_float32_array);
  const Array d_gate = ArrayArg(op, info, 3, "dGate", napi_float32_array);
  const Array d_up = ArrayArg(op, info, 4, "dUp", napi_float32_array);
  const int64_t count = SizeArg(op, info, 5, "count");
  for (const auto& [array, name] : {Named{&gate, "gate"}, {&up, "up"}, {&d_out, "dOut"}, {&d_gate, "dGate"}, {&d_up, "dUp"}}) {
    ExpectLength(op, *array, name, count, "count");
  }
  ExpectSameOrDisjoint(op, d_gate, "dGate", {{&gate, "gate"}, {&up, "up"}, {&d_out, "dOut"}});
  ExpectSameOrDisjoint(op, d_up, "dUp", {{&gate, "gate"}, {&up, "up"}, {&d_out, "dOut"}});
  ExpectDisjoint(op, d_gate, "dGate", d_up, "dUp");
  Launch(op, info, [=] {
    cpu::SwigluBackward(static_cast<const float*>(gate.data), static_cast<const float*>(up.data),
                        static_cast<const float*>(d_out.data), static_cast<float*>(d_gate.data),
                        static_cast<float*>(d_up.data), count);
  });
}

// crossEntropy(logits, targets, losses, dLogits, rows, vocab, gradScale): dLogits may be logits itself
void CrossEntropy(const Napi::CallbackInfo& info) {
  const Op op{info.Env(), "crossEntropy"};
  CheckArgCount(op, info, 7);
  const Array logits = ArrayArg(op, info, 0, "logits", napi_float32_array);
  const Array targets = ArrayArg(op, info, 1, "targets", napi_int32_array);
  const Array losses = ArrayArg(op, info, 2, "losses", napi_float32_array);
  const Array d_logits = ArrayArg(op, info, 3, "dLogits", napi_float32_array);
  const int64_t rows = SizeArg(op, info, 4, "rows"), vocab = SizeArg(op, info, 5, "vocab");
  const float grad_scale = FloatArg(op, info, 6, "gradScale");
  ExpectLength(op, logits, "logits", Product(op, {rows, vocab}), "rows·vocab");
  ExpectLength(op, d_logits, "dLogits", Product(op, {rows, vocab}), "rows·vocab");
  ExpectLength(op, targets, "targets", rows, "rows");
  ExpectLength(op, losses, "losses", rows, "rows");
  ExpectSameOrDisjoint(op, d_logits, "dLogits", {{&logits, "logits"}});
  ExpectDisjointFrom(op, d_logits, "dLogits", {{&targets, "targets"}, {&losses, "losses"}});
  ExpectDisjointFrom(op, losses, "losses", {{&logits, "logits"}, {&targets, "targets"}});
  const auto* target = static_cast<const int32_t*>(targets.data);
  if (const std::string problem = TargetProblem(target, rows, vocab, true); !problem.empty()) op.Fail(problem);
  const cpu::CrossEntropyArgs args{static_cast<const float*>(logits.data), target, static_cast<float*>(losses.data),
                                   static_cast<float*>(d_logits.data), rows, vocab, grad_scale};
  Launch(op, info, [=] {
    Require(TargetProblem(target, rows, vocab, true));
    cpu::CrossEntropy(args);
  });
}

// adamw(param, grad, m, v, count, learningRate, beta1, beta2, epsilon, weightDecay, step)
void AdamW(const Napi::CallbackInfo& info) {
  const Op op{info.Env(), "adamw"};
  CheckArgCount(op, info, 11);
  const Array param = ArrayArg(op, info, 0, "param", napi_float32_array);
  const Array grad = ArrayArg(op, info, 1, "grad", napi_float32_array);
  const Array m = ArrayArg(op, info, 2, "m", napi_float32_array);
  const Array v = ArrayArg(op, info, 3, "v", napi_float32_array);
  const int64_t count = SizeArg(op, info, 4, "count");
  const double learning_rate = DoubleArg(op, info, 5, "learningRate"), beta1 = DoubleArg(op, info, 6, "beta1");
  const double beta2 = DoubleArg(op, info, 7, "beta2"), epsilon = DoubleArg(op, info, 8, "epsilon");
  const double weight_decay = DoubleArg(op, info, 9, "weightDecay");
  const int64_t step = SizeArg(op, info, 10, "step");
  if (step < 1) op.Fail("step must be ≥ 1 (1-based), got " + std::to_string(step));
  for (const auto& [value, name] : {std::pair{beta1, "beta1"}, {beta2, "beta2"}}) {
    if (!(value >= 0 && value < 1)) op.Fail(std::string(name) + " must be in [0, 1), got " + std::to_string(value));
  }
  if (!(epsilon > 0)) op.Fail("epsilon must be > 0, got " + std::to_string(epsilon));
  for (const auto& [array, name] : {Named{&param, "param"}, {&grad, "grad"}, {&m, "m"}, {&v, "v"}}) {
    ExpectLength(op, *array, name, count, "count");
  }
  ExpectDisjointFrom(op, param, "param", {{&grad, "grad"}, {&m, "m"}, {&v, "v"}});
  ExpectDisjointFrom(op, m, "m", {{&grad, "grad"}, {&v, "v"}});
  ExpectDisjoint(op, v, "v", grad, "grad");
  const cpu::AdamWArgs args{static_cast<float*>(param.data), static_cast<const float*>(grad.data),
                            static_cast<float*>(m.data), static_cast<float*>(v.data), count,
                            learning_rate, beta1, beta2, epsilon, weight_decay, step};
  Launch(op, info, [=] { cpu::AdamW(args); });
}

// sumOfSquares(x, count) → Σ x² (f64)
Napi::Value SumOfSquares(const Napi::CallbackInfo& info) {
  const Op op{info.Env(), "sumOfSquares"};
  CheckArgCount(op, info, 2);
  const Array x = ArrayArg(op, info, 0, "x", napi_float32_array);
  const int64_t count = SizeArg(op, info, 1, "count");
  ExpectLength(op, x, "x", count, "count");
  double result = 0;
  RunKernel(op, [&] { result = cpu::SumOfSquares(static_cast<const float*>(x.data), count); });
  return Napi::Number::New(info.Env(), result);
}

// scale(x, factor, out, count): out = x · factor, out may be x itself
void Scale(const Napi::CallbackInfo& info) {
  const Op op{info.Env(), "scale"};
  CheckArgCount(op, info, 4);
  const Array x = ArrayArg(op, info, 0, "x", napi_float32_array);
  const float factor = FloatArg(op, info, 1, "factor");
  const Array out = ArrayArg(op, info, 2, "out", napi_float32_array);
  const int64_t count = SizeArg(op, info, 3, "count");
  ExpectLength(op, x, "x", count, "count");
  ExpectLength(op, out, "out", count, "count");
  ExpectSameOrDisjoint(op, out, "out", {{&x, "x"}});
  Launch(op, info, [=] { cpu::Scale(static_cast<const float*>(x.data), factor, static_cast<float*>(out.data), count); });
}

// fill(x, count, value)
void Fill(const Napi::CallbackInfo& info) {
  const Op op{info.Env(), "fill"};
  CheckArgCount(op, info, 3);
  const Array x = ArrayArg(op, info, 0, "x", napi_float32_array);
  const int64_t count = SizeArg(op, info, 1, "count");
  const float value = AnyFloatArg(op, info, 2, "value");
  ExpectLength(op, x, "x", count, "count");
  Launch(op, info, [=] { cpu::Fill(static_cast<float*>(x.data), count, value); });
}

// peakFlops(kind, iterations): this machine's ceiling for `kind` ("avx512-fma", "avx512-bf16", "amx-bf16",
// "avx2-fma"), measured by a register-only micro-loop on every pool thread at once; returns Σ over threads
// of FLOPs / that thread's CPU time — what the cores do while they run, so time taken by other processes
// on a shared machine does not lower the ceiling (the benchmarks print kernels next to it).
Napi::Value PeakFlops(const Napi::CallbackInfo& info) {
  const Op op{info.Env(), "peakFlops"};
  CheckArgCount(op, info, 2);
  if (!info[0].IsString()) op.Fail("kind must be a string");
  const std::string kind = info[0].As<Napi::String>().Utf8Value();
  const int64_t iterations = SizeArg(op, info, 1, "iterations");
  const auto& available = cpu::DetectIsa().available;
  const auto has = [&](cpu::Isa isa) {
    for (cpu::Isa a : available) {
      if (a == isa) return true;
    }
    return false;
  };
  double (*loop)(int64_t) = nullptr;
  if (kind == "avx512-fma" && has(cpu::Isa::kAvx512)) loop = [](int64_t n) { return cpu::avx512::PeakLoop(false, n); };
  if (kind == "avx512-bf16" && has(cpu::Isa::kAvx512) && cpu::avx512::HasBf16()) {
    loop = [](int64_t n) { return cpu::avx512::PeakLoop(true, n); };
  }
  if (kind == "amx-bf16" && has(cpu::Isa::kAmx)) loop = [](int64_t n) { return cpu::amx::PeakLoop(n); };
  if (kind == "avx2-fma" && has(cpu::Isa::kAvx2)) loop = [](int64_t n) { return cpu::avx2::PeakLoop(n); };
  if (loop == nullptr) op.Fail("\"" + kind + "\" is not available on this CPU");
  cpu::ThreadPool& pool = cpu::ThreadPool::Global();
  const int threads = pool.Threads();
  struct Context {
    double (*loop)(int64_t);
    int64_t iterations;
    std::atomic<double>* flops;
  };
  std::atomic<double> flops{0};
  Context context{loop, iterations, &flops};
  RunKernel(op, [&] {
    pool.Run(threads, [](void* c, int64_t begin, int64_t end) {
      auto* ctx = static_cast<Context*>(c);
      for (int64_t i = begin; i < end; i++) {
        timespec before, after;
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &before);
        const double done = ctx->loop(ctx->iterations);
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &after);
        const double seconds = static_cast<double>(after.tv_sec - before.tv_sec) + 1e-9 * static_cast<double>(after.tv_nsec - before.tv_nsec);
        const double rate = seconds > 0 ? done / seconds : 0;
        double seen = ctx->flops->load();
        while (!ctx->flops->compare_exchange_weak(seen, seen + rate)) {
        }
      }
    }, &context);
  });
  return Napi::Number::New(info.Env(), flops.load());
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
  add("packWeight", PackWeight);
  add("releasePackedWeight", ReleasePackedWeight);
  add("packStats", PackStats);
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
  add("attentionForTraining", AttentionForTraining);
  add("attentionBackward", AttentionBackward);
  add("treeAttention", TreeAttention);
  add("embeddingBackward", EmbeddingBackward);
  add("rmsnormBackward", RmsNormBackward);
  add("ropeBackward", RopeBackward);
  add("swigluBackward", SwigluBackward);
  add("crossEntropy", CrossEntropy);
  add("adamw", AdamW);
  add("sumOfSquares", SumOfSquares);
  add("scale", Scale);
  add("fill", Fill);
  add("peakFlops", PeakFlops);
  add("record", Record);
  add("flush", Flush);
  add("pendingOps", PendingOps);
  exports.Set("cpu", cpu);
}

}  // namespace labor
