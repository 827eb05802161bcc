// The CPU kernels. Arguments are trusted: native/addon/cpu_ops.cc has validated every size, index and
// length before calling here. Sizes are int64_t; matrices are row-major; accumulation is in f32 (or wider).
#pragma once
#include <cstdint>

namespace labor::cpu {

enum class DType { kF32, kBf16, kF16 };

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
// Plain-loop references of the vectorised elementwise ops (ops_scalar.cc); the AVX2 path uses them too.
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
// Machine-ceiling micro-loop (benchmarks): `iterations` × 4 independent 16×16×32 TDPBF16PS on tmm0–3
// (configures the calling thread's tiles); returns the FLOPs done.
double PeakLoop(int64_t iterations);
}  // namespace amx

// Entry points: route to the selected ISA's kernel (dispatch.cc). RmsNorm, Swiglu, LogSoftmax and
// LogSoftmaxGather below route too (AVX-512 or the scalar reference); the other ops have one
// implementation for every ISA (ops_scalar.cc; memory-bound or light enough for baseline vectorisation).
void Matmul(const MatmulArgs& args);
void Attention(const AttentionArgs& args);

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
