// f32 matmuls with N ≤ 16 (included by ops_avx512.cc): LoRA's rank-r products u = x·Aᵀ, du = dY·B and
// dB += dYᵀ·u with f32 adapters.
//
// The blocked kernels pack the whole activation per call and fill 8 × 48 register tiles of which at most r
// columns are real (60–90 GFLOP/s on these shapes). Here B is copied once as K rows of one vector (zero past N),
// each block of rows of out keeps one accumulator per row, and A is broadcast straight from memory a scalar at
// a time (row-major A: 8 rows, eight sequential streams; A stored [K, M]: 16 rows, one cache line of each
// stored row). Every output is summed over k in order with FMAs from 0, then out = alpha · sum (or out +
// alpha · sum): deterministic and independent of the thread count. (K ≤ 16 and M ≤ 16 were tried the same
// way and measured no faster: at these sizes they are bound by reading and writing the big operand.)
#pragma once
#include <immintrin.h>

#include <cstdint>

#include "cpu/buffer.h"
#include "cpu/gemm_blocked.h"  // CeilDiv, Min64, the scratch slots
#include "cpu/ops.h"
#include "cpu/thread_pool.h"

namespace labor::cpu {
namespace {

constexpr int64_t kSkinny = 16;
// B's copy lives in the calling thread's packed-A slot: this path packs no A, and the workers only read it.
constexpr int kScratchSkinnyB = kScratchPackedA;

bool UseSkinnyF32(const MatmulArgs& p) { return p.b_dtype == DType::kF32 && p.k > 0 && p.n <= kSkinny; }

inline __mmask16 SkinnyMask(int64_t count) {
  if (count <= 0) return 0;
  return count >= 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << count) - 1);
}

/** ParallelFor over `count` tasks, or on the calling thread when the whole product is too small to be worth
 * waking the pool for (~25 µs a hand-off on a 2-vCPU VM; 64K multiply-adds take ~2 µs). */
template <class Function>
void SkinnyParallelFor(const MatmulArgs& p, int64_t count, const Function& function) {
  if (p.m * p.n * p.k < (int64_t{1} << 16)) {
    function(int64_t{0}, count);
  } else {
    ParallelFor(count, function);
  }
}

/** out[0:count] = alpha · sum (+ out) for the masked lanes. */
inline void SkinnyStore(const MatmulArgs& p, float* out, __mmask16 mask, __m512 sum) {
  __m512 value = _mm512_mul_ps(_mm512_set1_ps(p.alpha), sum);
  if (p.accumulate) value = _mm512_add_ps(_mm512_maskz_loadu_ps(mask, out), value);
  _mm512_mask_storeu_ps(out, mask, value);
}

// Rows [m0, m0 + rows) of out, rows ≤ kRows: out[i][0:N] = Σ_k A(i, k)·bk[k] (bk: B's row k in 16 lanes). Rows
// past `rows` repeat the last real one (computed, not stored). A stored [K, M] takes 16 rows a block (a whole
// cache line of each row k of the stored a), row-major A 8 (eight sequential streams).
template <bool kTransA, int kRows>
void SkinnyNBlock(const MatmulArgs& p, const float* __restrict__ a, const float* __restrict__ bk,
                  float* __restrict__ out, int64_t m0, int64_t rows) {
  const int64_t k_count = p.k, step = kTransA ? p.m : 1;
  const float* row_a[kRows];
  for (int r = 0; r < kRows; r++) {
    const int64_t i = m0 + (r < rows ? r : rows - 1);
    row_a[r] = kTransA ? a + i : a + i * p.k;
  }
  __m512 acc[kRows];
  for (int r = 0; r < kRows; r++) acc[r] = _mm512_setzero_ps();
  for (int64_t k = 0; k < k_count; k++) {
    const __m512 bv = _mm512_load_ps(bk + k * 16);
    const int64_t at = k * step;
#pragma GCC unroll 16
    for (int r = 0; r < kRows; r++) acc[r] = _mm512_fmadd_ps(_mm512_set1_ps(row_a[r][at]), bv, acc[r]);
  }
  const __mmask16 mask = SkinnyMask(p.n);
#pragma GCC unroll 16
  for (int r = 0; r < kRows; r++) {
    if (r < rows) SkinnyStore(p, out + (m0 + r) * p.n, mask, acc[r]);
  }
}

template <bool kTransA>
void SkinnyNRows(const MatmulArgs& p, const float* a, const float* bk, float* out) {
  constexpr int kRows = kTransA ? 16 : 8;
  SkinnyParallelFor(p, CeilDiv(p.m, kRows), [&](int64_t begin, int64_t end) {
    for (int64_t block = begin; block < end; block++) {
      const int64_t m0 = block * kRows;
      SkinnyNBlock<kTransA, kRows>(p, a, bk, out, m0, Min64(kRows, p.m - m0));
    }
  });
}

/** N ≤ 16: B copied as K rows of 16 lanes (zero past N), then blocks of rows of out. */
void SkinnyN(const MatmulArgs& p, const float* a, const float* b, float* out) {
  float* bk = static_cast<float*>(ThreadScratch(kScratchSkinnyB, static_cast<size_t>(p.k * 16) * sizeof(float)));
  for (int64_t k = 0; k < p.k; k++) {
    for (int64_t j = 0; j < 16; j++) bk[k * 16 + j] = j < p.n ? (p.trans_b ? b[j * p.k + k] : b[k * p.n + j]) : 0.0f;
  }
  p.trans_a ? SkinnyNRows<true>(p, a, bk, out) : SkinnyNRows<false>(p, a, bk, out);
}

/** The product on the skinny kernels (UseSkinnyF32 said it fits), one batch item at a time. */
void MatmulSkinnyF32(const MatmulArgs& p) {
  for (int64_t bi = 0; bi < p.batch; bi++) {
    SkinnyN(p, p.a + bi * p.m * p.k, static_cast<const float*>(p.b) + (p.b_batched ? bi * p.k * p.n : 0),
            p.out + bi * p.m * p.n);
  }
}

}  // namespace
}  // namespace labor::cpu
