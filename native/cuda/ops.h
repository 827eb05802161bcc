// The CUDA kernels' host-side surface (one .cu file per op family), called by native/addon/cuda_ops.cc.
//
// Every pointer is a device pointer into an allocation the caller has already bounds-checked; every size is
// already validated (index values included: the addon checks ids/targets/ranges against the host mirror of
// each i32 tensor). Kernels still guard every index they read, so a wrong mirror can't make them write out of
// bounds. All work is queued on one stream (Stream()); a failed CUDA call or launch throws CudaError naming
// the kernel and the CUDA error. With LABOR_CUDA_SYNC=1 every launch is followed by a synchronize, so a fault
// inside a kernel is reported by the op that caused it rather than by the next readback.
#pragma once
#include <cuda_runtime_api.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace labor::cuda {

enum class DType { kF32, kBf16, kF16, kI32 };

inline size_t DTypeBytes(DType dtype) { return dtype == DType::kBf16 || dtype == DType::kF16 ? 2 : 4; }

class CudaError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// ---- context (context.cu) ----

struct DeviceInfo {
  bool available = false;
  /** Why the backend can't run here (empty when available). */
  std::string reason;
  std::string name;
  int device = 0;
  int major = 0, minor = 0;
  int multiprocessors = 0;
  int64_t memory_bytes = 0;
  int driver_version = 0, runtime_version = 0;
};

/** Probes once (cudaGetDeviceCount, properties, that our kernels have an image for this GPU); never throws. */
const DeviceInfo& Probe();
/** The stream every op runs on; selects the device on first use. Throws when unavailable. */
cudaStream_t Stream();
/** Throws CudaError("<what>: <cuda error name>: <description>") unless status is cudaSuccess. */
void Check(cudaError_t status, const char* what);
/** After a launch: the launch error, and with LABOR_CUDA_SYNC=1 the kernel's own error. */
void CheckLaunch(const char* kernel);
/** Profiling without synchronising: RecordTimingMark queues a timing event on the stream and returns its index;
 * TakeTimingMarks waits for the last one and returns every mark's time in milliseconds after mark 0 (what the
 * GPU's clock read when the stream reached it), then forgets them. Events are created once and reused. */
int64_t RecordTimingMark();
std::vector<double> TakeTimingMarks();
/** Stream-ordered allocation (cudaMallocAsync); Free may be given nullptr. */
void* Malloc(size_t bytes);
void Free(void* pointer) noexcept;

/** A Malloc'd scratch buffer, freed (stream-ordered, so after the work queued before) when it goes out of scope,
 * an exception included. 0 bytes gives a null buffer. */
class DeviceScratch {
 public:
  explicit DeviceScratch(size_t bytes) : pointer_(Malloc(bytes)) {}
  ~DeviceScratch() { Free(pointer_); }
  DeviceScratch(const DeviceScratch&) = delete;
  DeviceScratch& operator=(const DeviceScratch&) = delete;
  template <class T>
  T* as() const {
    return static_cast<T*>(pointer_);
  }

 private:
  void* pointer_;
};
/** Queued on the stream; the source may be reused once this returns. */
void CopyToDevice(void* dst, const void* src, size_t bytes);
void CopyDeviceToDevice(void* dst, const void* src, size_t bytes);

/**
 * A readback in two halves, so the JS thread never blocks and later ops can't change what is read:
 * Start (JS thread) queues a copy of the bytes into a private device buffer and records an event; Finish
 * (any thread, e.g. an AsyncWorker) waits for that event, copies to the host on a second stream and frees
 * the private buffer. Abandon frees it without reading.
 */
struct Readback {
  void* scratch = nullptr;
  size_t bytes = 0;
  cudaEvent_t ready = nullptr;
};
Readback StartReadback(const void* src, size_t bytes);
/** Takes ownership of a Malloc'd device buffer whose contents are being computed on the stream. */
Readback StartReadbackOwned(void* scratch, size_t bytes);
void FinishReadback(Readback& readback, void* host);
void AbandonReadback(Readback& readback) noexcept;
void Zero(void* dst, size_t bytes);
void Synchronize();

// ---- matmul (matmul.cu) ----

struct MatmulArgs {
  const float* a;      // [batch, M, K] ([batch, K, M] when trans_a)
  const void* b;       // [batch?, K, N] ([.., N, K] when trans_b), f32 / bf16 / f16
  DType b_dtype;
  float* out;          // [batch, M, N]
  int64_t batch, m, n, k;
  bool trans_a, trans_b, b_batched, accumulate;
  float alpha;
};
/** out (+)= alpha · op(a)·op(b). bf16 b runs on tensor cores (a rounded to bf16, f32 accumulation); f32 and f16 b
 * run a tiled f32 kernel so their results keep f32 accuracy. */
void Matmul(const MatmulArgs& args);

// ---- embedding (embedding.cu) ----

void Embedding(const int32_t* ids, int64_t tokens, const void* table, DType table_dtype, int64_t vocab, int64_t dim,
               float* out);
/** dTable[ids[t]] += dOut[t] (atomics: duplicate ids add up). */
void EmbeddingBackward(const int32_t* ids, int64_t tokens, const float* d_out, float* d_table, int64_t vocab,
                       int64_t dim);

// ---- rmsnorm (rmsnorm.cu) ----

void RmsNorm(const float* x, const void* weight, DType weight_dtype, float* out, int64_t rows, int64_t dim, float eps);
/** dx written; d_weight (may be null) accumulated. */
void RmsNormBackward(const float* x, const void* weight, DType weight_dtype, const float* d_out, float* dx,
                     float* d_weight, int64_t rows, int64_t dim, float eps);

// ---- rope (rope.cu) ----

/** inverse = rotate by −angle (the backward). out may be x. */
void Rope(const float* x, const int32_t* positions, const float* inv_freq, float* out, int64_t tokens, int64_t heads,
          int64_t head_dim, bool inverse);

// ---- elementwise (elementwise.cu) ----

void Swiglu(const float* gate, const float* up, float* out, int64_t count);
void SwigluBackward(const float* gate, const float* up, const float* d_out, float* d_gate, float* d_up, int64_t count);
void Add(const float* a, const float* b, float* out, int64_t count);
void Scale(const float* x, float factor, float* out, int64_t count);
/** Every element = value converted to dtype (f32 → bf16/f16 round to nearest even; i32 takes the integer). */
void Fill(void* x, DType dtype, int64_t count, double value);
/** Between f32/bf16/f16 (and i32 → i32 as a copy). */
void Convert(const void* src, DType src_dtype, void* dst, DType dst_dtype, int64_t count);
/** dst[index[t]] = src[t] for rows of row_bytes; rows whose index is −1 are skipped (the addon marks every
 * duplicate but the last that way, so "the last wins" without a race). */
void ScatterRows(const void* src, const int32_t* index, void* dst, int64_t rows, int64_t dst_rows, int64_t row_bytes);

// ---- softmax and cross-entropy (softmax.cu) ----

void LogSoftmax(const float* logits, float* out, int64_t rows, int64_t vocab);
/** out[r] = log softmax(logits[r])[targets[r]]; a negative target gives NaN. */
void LogSoftmaxGather(const float* logits, const int32_t* targets, float* out, int64_t rows, int64_t vocab);
/** losses[r] = lse − z[target] (0 for target −1); dLogits = gradScale·(softmax − onehot) (0 rows for −1);
 * d_logits may be logits. */
void CrossEntropy(const float* logits, const int32_t* targets, float* losses, float* d_logits, int64_t rows,
                  int64_t vocab, float grad_scale);

// ---- attention (attention.cu, attention_backward.cu) ----

/** Largest head dim the attention kernels take (per-lane register arrays of kMaxHeadDim / 32). */
constexpr int64_t kMaxHeadDim = 256;

struct AttentionArgs {
  const float* q;             // [queries, heads, head_dim]
  const float* k;             // [keys, kv_heads, head_dim]
  const float* v;
  float* out;                 // like q
  float* lse;                 // [queries, heads] or null
  const int32_t* key_start;   // [queries]: contiguous range [start, end)
  const int32_t* key_end;
  const int32_t* extra_offsets;  // tree attention: [queries + 1], or null
  const int32_t* extra_keys;     // [extra_offsets[queries]]
  int64_t queries, keys, heads, kv_heads, head_dim;
  float scale;
  bool bf16;  // training forward only: bf16 products on tensor cores where they apply (attention_mma.cu)
};
/** Flash-style forward (online softmax over key tiles in shared memory); tree attention when extra_offsets is set. */
void Attention(const AttentionArgs& args);

struct AttentionBackwardArgs {
  const float* q;
  const float* k;
  const float* v;
  const float* out;
  const float* d_out;
  const float* lse;
  const int32_t* key_start;
  const int32_t* key_end;
  float* dq;
  float* dk;
  float* dv;
  int64_t queries, keys, heads, kv_heads, head_dim;
  float scale;
  bool bf16;  // bf16 products on tensor cores where they apply (attention_mma.cu)
};
/** dq (query-parallel pass) and dk, dv (key-parallel pass), all written, no atomics. */
void AttentionBackward(const AttentionBackwardArgs& args);

// ---- optimizer and reductions (optimizer.cu) ----

struct AdamWArgs {
  float* param;
  const float* grad;
  float* m;
  float* v;
  int64_t count;
  double learning_rate, beta1, beta2, epsilon, weight_decay;
  int64_t step;
};
void AdamW(const AdamWArgs& args);
/** Queues Σ x² (f32 squares, f64 block partials and total) into *result, a device double. */
void SumOfSquares(const float* x, int64_t count, double* result);

}  // namespace labor::cuda
