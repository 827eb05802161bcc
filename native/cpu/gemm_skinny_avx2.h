// f32 matmuls with N ≤ 16 on AVX2 + FMA (included by ops_avx2.cc): LoRA's rank-r products u = x·Aᵀ,
// du = dY·B and dB += dYᵀ·u with f32 adapters — gemm_skinny_avx512.h's method with two 8-lane vectors a row.
//
// The blocked kernels would pack the whole activation per call and fill 4 × 24 register tiles of which at most
// r columns are real. Here B is copied once as K rows of two vectors (zero past N), each block of kRows rows
// of out keeps two accumulators per row (12 of the 16 ymm registers), and A is broadcast straight from memory
// a scalar at a time. Every output is summed over k in order with FMAs from 0, then out = alpha · sum (or
// out + alpha · sum): deterministic and independent of the thread count.
#pragma once
#include <immintrin.h>

#include <cstdint>

#include "cpu/buffer.h"
#include "cpu/gemm_blocked.h"  // CeilDiv, Min64, the scratch slots
#include "cpu/ops.h"
#include "cpu/thread_pool.h"
#include "cpu/vec_avx2.h"

namespace labor::cpu::avx2 {
namespace {

constexpr int64_t kSkinny = 16;
constexpr int kSkinnyRows = 6;
// B's copy lives in the calling thread's packed-A slot: this path packs no A, and the workers only read it.
constexpr int kScratchSkinnyB = kScratchPackedA;

bool UseSkinnyF32(const MatmulArgs& p) { return p.b_dtype == DType::kF32 && p.k > 0 && p.n <= kSkinny; }

/** out[0:n] = alpha · sum (+ out), columns [0, n) of the two vectors lo (0–7) and hi (8–15). */
inline void SkinnyStore(const MatmulArgs& p, float* out, __m256 lo, __m256 hi) {
  const __m256 alpha = _mm256_set1_ps(p.alpha);
  const __m256 sums[2] = {_mm256_mul_ps(alpha, lo), _mm256_mul_ps(alpha, hi)};
  for (int half = 0; half < 2; half++) {
    const int64_t valid = p.n - 8 * half;
    if (valid <= 0) break;
    float* dst = out + 8 * half;
    if (valid >= 8) {
      _mm256_storeu_ps(dst, p.accumulate ? _mm256_add_ps(_mm256_loadu_ps(dst), sums[half]) : sums[half]);
    } else {
      const __m256i mask = VecTailMask(valid);
      const __m256 value = p.accumulate ? _mm256_add_ps(_mm256_maskload_ps(dst, mask), sums[half]) : sums[half];
      _mm256_maskstore_ps(dst, mask, value);
    }
  }
}

// Rows [m0, m0 + rows) of out, rows ≤ kSkinnyRows: out[i][0:N] = Σ_k A(i, k)·bk[k] (bk: B's row k in 16
// lanes). Rows past `rows` repeat the last real one (computed, not stored).
template <bool kTransA>
void SkinnyNBlock(const MatmulArgs& p, const float* __restrict__ a, const float* __restrict__ bk,
                  float* __restrict__ out, int64_t m0, int64_t rows) {
  const int64_t step = kTransA ? p.m : 1;
  const float* row_a[kSkinnyRows];
  for (int r = 0; r < kSkinnyRows; r++) {
    const int64_t i = m0 + (r < rows ? r : rows - 1);
    row_a[r] = kTransA ? a + i : a + i * p.k;
  }
  __m256 lo[kSkinnyRows], hi[kSkinnyRows];
  for (int r = 0; r < kSkinnyRows; r++) lo[r] = hi[r] = _mm256_setzero_ps();
  for (int64_t k = 0; k < p.k; k++) {
    const __m256 b0 = _mm256_load_ps(bk + k * 16), b1 = _mm256_load_ps(bk + k * 16 + 8);
    const int64_t at = k * step;
#pragma GCC unroll 6
    for (int r = 0; r < kSkinnyRows; r++) {
      const __m256 x = _mm256_broadcast_ss(row_a[r] + at);
      lo[r] = _mm256_fmadd_ps(x, b0, lo[r]);
      hi[r] = _mm256_fmadd_ps(x, b1, hi[r]);
    }
  }
  for (int r = 0; r < kSkinnyRows; r++) {
    if (r < rows) SkinnyStore(p, out + (m0 + r) * p.n, lo[r], hi[r]);
  }
}

/** N ≤ 16: B copied as K rows of 16 lanes (zero past N), then blocks of rows of out (on the calling thread
 * when the product is too small to be worth waking the pool for, as gemm_skinny_avx512.h). */
void SkinnyN(const MatmulArgs& p, const float* a, const float* b, float* out) {
  float* bk = static_cast<float*>(ThreadScratch(kScratchSkinnyB, static_cast<size_t>(p.k * 16) * sizeof(float)));
  for (int64_t k = 0; k < p.k; k++) {
    for (int64_t j = 0; j < 16; j++) bk[k * 16 + j] = j < p.n ? (p.trans_b ? b[j * p.k + k] : b[k * p.n + j]) : 0.0f;
  }
  const auto blocks = [&](int64_t begin, int64_t end) {
    for (int64_t block = begin; block < end; block++) {
      const int64_t m0 = block * kSkinnyRows, rows = Min64(kSkinnyRows, p.m - m0);
      p.trans_a ? SkinnyNBlock<true>(p, a, bk, out, m0, rows) : SkinnyNBlock<false>(p, a, bk, out, m0, rows);
    }
  };
  const int64_t count = CeilDiv(p.m, kSkinnyRows);
  if (p.m * p.n * p.k < (int64_t{1} << 16)) {
    blocks(0, count);
  } else {
    ParallelFor(count, blocks);
  }
}

/** The product on the skinny kernel (UseSkinnyF32 said it fits), one batch item at a time. */
void MatmulSkinnyF32(const MatmulArgs& p) {
  for (int64_t bi = 0; bi < p.batch; bi++) {
    SkinnyN(p, p.a + bi * p.m * p.k, static_cast<const float*>(p.b) + (p.b_batched ? bi * p.k * p.n : 0),
            p.out + bi * p.m * p.n);
  }
}

}  // namespace
}  // namespace labor::cpu::avx2
