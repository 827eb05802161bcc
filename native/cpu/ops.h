// The CPU kernels. Arguments are trusted: native/addon/cpu_ops.cc has validated every size, index and
// length before calling here. Sizes are int64_t; matrices are row-major; accumulation is in f32 (or wider).
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>

#include "cpu/buffer.h"
#include "cpu/isa.h"

namespace labor::cpu {

enum class DType { kF32, kBf16, kF16 };

// A bf16 matmul b that never changes (a frozen weight), re-laid out once for one ISA's kernel so that
// matmuls passing it (MatmulArgs::packed_b) skip packing b on every call. Only the AMX path has a packed
// layout (VNNI-2 tiles, ops_amx.cc); the other paths read b in place and ignore it. Made by PackWeight
// below; the live count and bytes are in PackStats.
class PackedWeight {
 public:
  PackedWeight(const uint16_t* source, int64_t n, int64_t k, bool trans_b, size_t bytes);
  ~PackedWeight();
  PackedWeight(const PackedWeight&) = delete;
  PackedWeight& operator=(const PackedWeight&) = delete;

  const uint16_t* source;  // the b it was packed from: a matmul may pass it only with this b, n, k, trans_b
  int64_t n, k;
  bool trans_b;
  size_t bytes;
  AlignedBuffer data;
};

// out[bi] (+)= op(a[bi]) · op(b[bi]) for bi < batch. a is f32 [M,K] ([K,M] when trans_a); b is [K,N]
// ([N,K] when trans_b) in b_dtype (bf16/f16 as raw 16-bit patterns), one per batch item when b_batched,
// else shared; out f32 [M,N]. Without `accumulate`, out is overwritten (also when K = 0). The product is
// scaled by alpha where it is written back: out (+)= alpha · op(a)·op(b).
struct MatmulArgs {
  const float* a;
  const void* b;
  DType b_dtype;
  float* out;
  int64_t batch, m, n, k;
  bool trans_a, trans_b, b_batched, accumulate;
  float alpha = 1.0f;
  // Optional: b already packed (PackWeight with this b, n, k, trans_b; b_dtype bf16, not b_batched). The
  // AMX path then reads it instead of packing b; the other paths ignore it.
  const PackedWeight* packed_b = nullptr;
};

// Softmax attention with per-query key ranges [key_start[t], key_end[t]); q, out [queries, heads,
// head_dim]; k, v [keys, kv_heads, head_dim]; query head h reads kv head h / (heads / kv_heads).
// Unless null, lse [queries, heads] receives each row's log Σ exp(scaled scores) (−inf for an empty
// range), which attention backward needs.
struct AttentionArgs {
  const float* q;
  const float* k;
  const float* v;
  const int32_t* key_start;
  const int32_t* key_end;
  float* out;
  int64_t queries, keys, heads, kv_heads, head_dim;
  float scale;
  float* lse = nullptr;
};

// Per-ISA kernels (ops_scalar.cc, ops_avx2.cc, ops_avx512.cc, ops_amx.cc).
namespace scalar {
void Matmul(const MatmulArgs& args);
void Attention(const AttentionArgs& args);
// Plain-loop references of the vectorised elementwise ops (ops_scalar.cc).
void RmsNorm(const float* x, const void* weight, DType weight_dtype, float* out, int64_t rows, int64_t dim,
             float eps);
void Swiglu(const float* gate, const float* up, float* out, int64_t count);
void LogSoftmax(const float* logits, float* out, int64_t rows, int64_t vocab);
void LogSoftmaxGather(const float* logits, const int32_t* targets, float* out, int64_t rows, int64_t vocab);
}  // namespace scalar
namespace avx2 {
void Matmul(const MatmulArgs& args);
// Machine-ceiling micro-loop (benchmarks): `iterations` × 10 independent ymm FMAs; returns the FLOPs done.
double PeakLoop(int64_t iterations);
void Attention(const AttentionArgs& args);
// Vectorised forward elementwise ops (same contracts as the entry points below).
void RmsNorm(const float* x, const void* weight, DType weight_dtype, float* out, int64_t rows, int64_t dim,
             float eps);
void Swiglu(const float* gate, const float* up, float* out, int64_t count);
void LogSoftmax(const float* logits, float* out, int64_t rows, int64_t vocab);
void LogSoftmaxGather(const float* logits, const int32_t* targets, float* out, int64_t rows, int64_t vocab);
}  // namespace avx2
namespace avx512 {
void Matmul(const MatmulArgs& args);
// Machine-ceiling micro-loops (benchmarks): `iterations` × 20 independent zmm FMAs (f32) or vdpbf16ps
// (bf16; needs AVX512_BF16, see HasBf16); return the FLOPs done.
double PeakLoop(bool bf16, int64_t iterations);
bool HasBf16();
// Vectorised forward elementwise ops (same contracts as the entry points below, which route here when
// the selected ISA is AVX-512 or AMX).
void RmsNorm(const float* x, const void* weight, DType weight_dtype, float* out, int64_t rows, int64_t dim,
             float eps);
void Swiglu(const float* gate, const float* up, float* out, int64_t count);
void LogSoftmax(const float* logits, float* out, int64_t rows, int64_t vocab);
void LogSoftmaxGather(const float* logits, const int32_t* targets, float* out, int64_t rows, int64_t vocab);
void Attention(const AttentionArgs& args);
}  // namespace avx512
namespace amx {
// bf16 b on AMX tiles; other b dtypes go to avx512::Matmul.
void Matmul(const MatmulArgs& args);
// The packed (VNNI-2 tile) layout of one bf16 b of a matmul with these n, k, trans_b: its size in bf16
// elements, and the packing into dst (64-byte aligned, that many elements). Matmul packs b this way on
// every call unless args.packed_b holds it already.
int64_t PackedBElements(int64_t n, int64_t k);
void PackB(const uint16_t* b, int64_t n, int64_t k, bool trans_b, uint16_t* dst);
// Machine-ceiling micro-loop (benchmarks): `iterations` × 4 independent 16×16×32 TDPBF16PS on tmm0–3
// (configures the calling thread's tiles); returns the FLOPs done.
double PeakLoop(int64_t iterations);
}  // namespace amx

// Entry points: route to the selected ISA's kernel (dispatch.cc). RmsNorm, Swiglu, LogSoftmax and
// LogSoftmaxGather below route too (AVX-512, AVX2 or the scalar reference); the other ops have one
// implementation for every ISA (ops_scalar.cc; memory-bound or light enough for baseline vectorisation).
void Matmul(const MatmulArgs& args);
void Attention(const AttentionArgs& args);

// b (bf16, [K,N] or [N,K] when trans_b) packed for `isa`'s matmul, or null when that ISA reads b in place
// (every ISA but AMX): so nothing is copied on CPUs without AMX. The ISA is the caller's (the backend that
// will run the matmuls), not the process-wide selection, which another backend in the process may have
// changed; the caller has checked that this CPU runs it. The packing time and bytes go to PackStats.
std::unique_ptr<PackedWeight> PackWeight(const uint16_t* b, int64_t n, int64_t k, bool trans_b, Isa isa);

// Weight packing so far, process-wide, reported apart from matmul time. "Cached" packs are PackWeight's
// (once per weight); "per-call" packs are the AMX path packing a bf16 b inside a matmul that had no
// packed_b (each call).
struct PackStats {
  int64_t live_weights;  // PackedWeights alive now
  int64_t live_bytes;    // their packed bytes
  int64_t cached_packs;  // PackWeight calls that packed (cumulative)
  double cached_seconds;
  int64_t per_call_packs;
  double per_call_seconds;
};
PackStats GetPackStats();
// Monotonic clock in seconds and the tallies behind PackStats (packed_weight.cc).
double PackClock();
void RecordCachedPack(double seconds);
void RecordPerCallPack(double seconds);

void Embedding(const int32_t* ids, int64_t count, const void* table, DType table_dtype, int64_t dim,
               float* out);
void RmsNorm(const float* x, const void* weight, DType weight_dtype, float* out, int64_t rows, int64_t dim,
             float eps);
// out may equal x.
void Rope(const float* x, const int32_t* positions, const float* inv_freq, float* out, int64_t tokens,
          int64_t heads, int64_t head_dim);
void Swiglu(const float* gate, const float* up, float* out, int64_t count);
void Add(const float* a, const float* b, float* out, int64_t count);
void LogSoftmax(const float* logits, float* out, int64_t rows, int64_t vocab);
// Negative targets give NaN; others are < vocab.
void LogSoftmaxGather(const float* logits, const int32_t* targets, float* out, int64_t rows, int64_t vocab);
// dst row index[t] = src row t (row_bytes each); later rows win on duplicate indices.
void ScatterRows(const void* src, const int32_t* index, void* dst, int64_t rows, int64_t row_bytes);
void Convert(const void* src, DType src_dtype, void* dst, DType dst_dtype, int64_t count);

}  // namespace labor::cpu
