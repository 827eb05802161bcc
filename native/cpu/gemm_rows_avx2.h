// Few rows of A (M ≤ 16) against B stored [N, K] (transB) on AVX2 + FMA (included by ops_avx2.cc): scoring
// a handful of trie nodes, or decoding one token, against a weight — ops_avx512.cc's RowDots with 8-lane vectors.
//
// The blocked kernel widens a panel of B per call (a cost of N·K whatever M) and fills 4 × 24 register tiles of
// which only M rows are real. Here each output is a dot product of an A row with a B row read in place (bf16
// widened by a 16-bit shift, f16 by F16C, both exact), up to 4 rows of A × 3 rows of B per pass: 12
// accumulators and 3 weight vectors of the 16 ymm registers. A is first copied to contiguous rows zero-padded
// to whole vectors (this also serves A stored [K, M]). Each output is summed over k in its 8 lanes from 0, then
// across the lanes, by one task: deterministic and independent of the thread count.
#pragma once
#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "cpu/buffer.h"
#include "cpu/gemm_blocked.h"  // CeilDiv, Min64, the scratch slots
#include "cpu/numeric.h"
#include "cpu/ops.h"
#include "cpu/thread_pool.h"
#include "cpu/vec_avx2.h"

namespace labor::cpu::avx2 {
namespace {

// Measured (AVX2 path on the Zen 5, CPU time per call; N×K of 1376×512, 32000×512 and 5632×2048 bf16, 512×512
// f32): up to 16 rows the dot products beat the blocked kernel by 1.3–3×; at 24 they tie or lose on weights
// that fit in cache.
constexpr int64_t kRowDotsMaxM = 17;
constexpr int kRowDotsA = 4;  // A rows per pass
constexpr int kRowDotsB = 3;  // B rows per pass

bool UseRowDots(const MatmulArgs& p) { return p.m < kRowDotsMaxM && p.trans_b && p.k > 0 && p.n > 0; }

// 8 consecutive elements of B as f32.
template <DType kDType>
inline __m256 LoadRow8(const void* b, int64_t index) {
  if constexpr (kDType == DType::kF32) {
    return _mm256_loadu_ps(static_cast<const float*>(b) + index);
  } else {
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(static_cast<const uint16_t*>(b) + index));
    if constexpr (kDType == DType::kF16) return _mm256_cvtph_ps(h);
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
  }
}

// Elements [index, index + valid) of B (valid < 8) as f32, zero past valid: through a zeroed copy, so that
// nothing past the row is read.
template <DType kDType>
inline __m256 LoadRowTail(const void* b, int64_t index, int64_t valid) {
  alignas(32) float copy[8] = {};
  for (int64_t j = 0; j < valid; j++) {
    if constexpr (kDType == DType::kF32) {
      copy[j] = static_cast<const float*>(b)[index + j];
    } else if constexpr (kDType == DType::kF16) {
      copy[j] = F16ToFloat(static_cast<const uint16_t*>(b)[index + j]);
    } else {
      copy[j] = Bf16ToFloat(static_cast<const uint16_t*>(b)[index + j]);
    }
  }
  return _mm256_load_ps(copy);
}

// out rows [i0, i0 + kA) × columns [n0, n0 + count) of one batch item: a_row holds the kA rows of A (k_pad
// apart), b_rows[r] the offset of B row n0 + r (rows past count repeat a real row; their sums are dropped).
template <DType kDType, int kA>
inline void RowDotsTile(const MatmulArgs& p, const float* a_row, int64_t k_pad, const int64_t b_rows[kRowDotsB],
                        int64_t count, float* out) {
  __m256 acc[kA][kRowDotsB];
  for (int i = 0; i < kA; i++) {
    for (int r = 0; r < kRowDotsB; r++) acc[i][r] = _mm256_setzero_ps();
  }
  const auto step = [&](const __m256 w[kRowDotsB], int64_t k0) {
    for (int i = 0; i < kA; i++) {
      const __m256 x = _mm256_load_ps(a_row + i * k_pad + k0);
      for (int r = 0; r < kRowDotsB; r++) acc[i][r] = _mm256_fmadd_ps(x, w[r], acc[i][r]);
    }
  };
  int64_t k0 = 0;
  for (; k0 + 8 <= p.k; k0 += 8) {
    __m256 w[kRowDotsB];
    for (int r = 0; r < kRowDotsB; r++) w[r] = LoadRow8<kDType>(p.b, b_rows[r] + k0);
    step(w, k0);
  }
  if (k0 < p.k) {
    __m256 w[kRowDotsB];
    for (int r = 0; r < kRowDotsB; r++) w[r] = LoadRowTail<kDType>(p.b, b_rows[r] + k0, p.k - k0);
    step(w, k0);
  }
  for (int i = 0; i < kA; i++) {
    for (int64_t r = 0; r < count; r++) {
      const float product = p.alpha * VecHorizontalSum(acc[i][r]);
      out[i * p.n + r] = p.accumulate ? out[i * p.n + r] + product : product;
    }
  }
}

template <DType kDType>
void RowDotsTyped(const MatmulArgs& p, const float* a_rows, int64_t k_pad) {
  const int64_t groups = CeilDiv(p.n, kRowDotsB);
  ParallelFor(p.batch * groups, [&](int64_t begin, int64_t end) {
    for (int64_t task = begin; task < end; task++) {
      const int64_t bi = task / groups, n0 = (task % groups) * kRowDotsB, count = Min64(kRowDotsB, p.n - n0);
      const int64_t b_offset = p.b_batched ? bi * p.k * p.n : 0;
      int64_t b_rows[kRowDotsB];
      for (int r = 0; r < kRowDotsB; r++) b_rows[r] = b_offset + (n0 + Min64(r, count - 1)) * p.k;
      for (int64_t i0 = 0; i0 < p.m; i0 += kRowDotsA) {
        const float* a_row = a_rows + (bi * p.m + i0) * k_pad;
        float* out = p.out + (bi * p.m + i0) * p.n + n0;
        switch (Min64(kRowDotsA, p.m - i0)) {
          case 1: RowDotsTile<kDType, 1>(p, a_row, k_pad, b_rows, count, out); break;
          case 2: RowDotsTile<kDType, 2>(p, a_row, k_pad, b_rows, count, out); break;
          case 3: RowDotsTile<kDType, 3>(p, a_row, k_pad, b_rows, count, out); break;
          default: RowDotsTile<kDType, 4>(p, a_row, k_pad, b_rows, count, out); break;
        }
      }
    }
  });
}

// out (+)= alpha · A·Bᵀ for M < kRowDotsMaxM (UseRowDots said it fits), every batch item.
void MatmulRowDots(const MatmulArgs& p) {
  const int64_t k_pad = CeilDiv(p.k, 8) * 8;
  const int64_t rows = p.batch * p.m;
  float* a_rows = static_cast<float*>(ThreadScratch(kScratchPackedA, sizeof(float) * static_cast<size_t>(rows * k_pad)));
  for (int64_t row = 0; row < rows; row++) {
    const int64_t bi = row / p.m, i = row % p.m;
    const float* a = p.a + bi * p.m * p.k;
    float* dst = a_rows + row * k_pad;
    if (p.trans_a) {
      for (int64_t k = 0; k < p.k; k++) dst[k] = a[k * p.m + i];
    } else {
      std::memcpy(dst, a + i * p.k, sizeof(float) * static_cast<size_t>(p.k));
    }
    for (int64_t k = p.k; k < k_pad; k++) dst[k] = 0.0f;
  }
  switch (p.b_dtype) {
    case DType::kBf16: return RowDotsTyped<DType::kBf16>(p, a_rows, k_pad);
    case DType::kF16: return RowDotsTyped<DType::kF16>(p, a_rows, k_pad);
    case DType::kF32: return RowDotsTyped<DType::kF32>(p, a_rows, k_pad);
  }
}

}  // namespace
}  // namespace labor::cpu::avx2
