// Few rows of A (M ≤ 16) against B stored [N, K] (transB) on AVX-512 (included by ops_avx512.cc): scoring a
// handful of trie nodes, or decoding one token, against a weight — gemm_rows_avx2.h with 16-lane vectors.
//
// The blocked kernel packs and widens A into 48-row strips and fills 8 × 48 register tiles of which only M
// rows are real. Here each output is a dot product of an A row with a B row read in place, up to 4 rows of A ×
// 4 rows of B per pass (16 accumulators). f32 B is multiplied as is, f16 widened by vcvtph2ps (exact); bf16
// B with AVX512_BF16 goes through vdpbf16ps on pairs (k, k + 1), 32 k per instruction, with A rounded to
// bf16 once (as the blocked bf16 kernel does), and without it is widened by a 16-bit shift (exact).
// A is first copied to contiguous rows zero-padded to whole vectors (this also serves A stored [K, M]). Each
// output is summed over k in its 16 lanes from 0, then across the lanes, by one task: deterministic and
// independent of the thread count.
//
// Whole vectors of B are read with plain loads and only a row's last, partial vector with a masked one, and
// the 4 sums of a row of A are reduced together (SumLanes4). The kernel this replaced masked every load of B
// (zero-masking loads in a streaming loop ran at a third of the rate of plain ones on the Zen 5: see Swiglu in
// ops_avx512.cc) and reduced each output alone; it ran at a third of the AVX2 kernel's rate on the bf16 lm_head.
#pragma once
#include <immintrin.h>

#include <cstdint>

#include "cpu/gemm_blocked.h"  // CeilDiv, Min64, the scratch slots
#include "cpu/ops.h"
#include "cpu/thread_pool.h"

namespace labor::cpu::avx512 {
namespace {

// Measured (AVX-512 path on the Zen 5, 2 threads, time per call against the blocked kernel; N×K of 1376×512,
// 32000×512 and 5632×2048 bf16, 32000×512 and 512×512 f32, 1376×512 f16): at 16 rows the dot products take
// 0.5–0.75 of the blocked kernel's time (f16, which the blocked kernel widens per call: 0.08); at 24 they tie
// or lose.
constexpr int64_t kRowDotsMaxM = 17;
constexpr int kRowDotsA = 4;  // A rows per pass
constexpr int kRowDotsB = 4;  // B rows per pass

bool UseRowDots(const MatmulArgs& p) { return p.m < kRowDotsMaxM && p.trans_b && p.k > 0 && p.n > 0; }

// How B's rows are multiplied: f32 FMA on B as is or widened from f16 / bf16, or vdpbf16ps on bf16 pairs.
enum class RowKind { kF32, kF16, kBf16, kBf16Pairs };

// k per vector of B: 16 f32 lanes, or 16 lanes of bf16 pairs.
template <RowKind kKind>
constexpr int64_t kRowStep = kKind == RowKind::kBf16Pairs ? 32 : 16;

// The kRowStep elements of B from index as a vector (f32 lanes, or raw bf16 pairs for vdpbf16ps).
template <RowKind kKind>
inline __m512 LoadRow(const void* b, int64_t index) {
  if constexpr (kKind == RowKind::kF32) {
    return _mm512_loadu_ps(static_cast<const float*>(b) + index);
  } else if constexpr (kKind == RowKind::kBf16Pairs) {
    return _mm512_castsi512_ps(_mm512_loadu_si512(static_cast<const uint16_t*>(b) + index));
  } else {
    const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(static_cast<const uint16_t*>(b) + index));
    if constexpr (kKind == RowKind::kF16) return _mm512_cvtph_ps(h);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
  }
}

// Elements [index, index + valid) of B (valid < kRowStep), zero past valid: a masked load, which never reads
// past the row.
template <RowKind kKind>
inline __m512 LoadRowTail(const void* b, int64_t index, int64_t valid) {
  if constexpr (kKind == RowKind::kF32) {
    return _mm512_maskz_loadu_ps(static_cast<__mmask16>((1u << valid) - 1u), static_cast<const float*>(b) + index);
  } else if constexpr (kKind == RowKind::kBf16Pairs) {
    const __mmask32 mask = static_cast<__mmask32>((uint64_t{1} << valid) - 1u);
    return _mm512_castsi512_ps(_mm512_maskz_loadu_epi16(mask, static_cast<const uint16_t*>(b) + index));
  } else {
    const __m256i h = _mm256_maskz_loadu_epi16(static_cast<__mmask16>((1u << valid) - 1u),
                                               static_cast<const uint16_t*>(b) + index);
    if constexpr (kKind == RowKind::kF16) return _mm512_cvtph_ps(h);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
  }
}

// acc += x·w lane by lane; for bf16 pairs, acc += x_lo·w_lo + x_hi·w_hi.
template <RowKind kKind>
inline __m512 MultiplyAdd(__m512 acc, __m512 x, __m512 w) {
  if constexpr (kKind == RowKind::kBf16Pairs) {
    return _mm512_dpbf16_ps(acc, reinterpret_cast<__m512bh>(x), reinterpret_cast<__m512bh>(w));
  } else {
    return _mm512_fmadd_ps(x, w, acc);
  }
}

// The lane sums of 4 vectors at once (lane r of the result: Σ of v[r]'s 16 lanes), in 9 shuffles and adds
// where 4 separate reductions take 4 × 8: pairs of vectors are interleaved and added until each 128-bit
// lane holds a partial sum of every vector, then the four 128-bit lanes are added.
static_assert(kRowDotsB == 4, "SumLanes4 reduces 4 B rows");
inline __m128 SumLanes4(const __m512 v[4]) {
  const __m512 v01 = _mm512_add_ps(_mm512_unpacklo_ps(v[0], v[1]), _mm512_unpackhi_ps(v[0], v[1]));  // 0 1 0 1
  const __m512 v23 = _mm512_add_ps(_mm512_unpacklo_ps(v[2], v[3]), _mm512_unpackhi_ps(v[2], v[3]));  // 2 3 2 3
  const __m512 all = _mm512_add_ps(_mm512_shuffle_ps(v01, v23, 0x44), _mm512_shuffle_ps(v01, v23, 0xee));  // 0 1 2 3
  const __m256 half = _mm256_add_ps(_mm512_castps512_ps256(all),
                                    _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(all), 1)));
  return _mm_add_ps(_mm256_castps256_ps128(half), _mm256_extractf128_ps(half, 1));
}

// out rows [i0, i0 + kA) × columns [n0, n0 + count) of one batch item: a_row holds the kA packed rows of A
// (a_stride bytes apart), b_rows[r] the offset of B row n0 + r (rows past count repeat a real row; their sums
// are dropped).
template <RowKind kKind, int kA>
inline void RowDotsTile(const MatmulArgs& p, const char* a_row, int64_t a_stride, const int64_t b_rows[kRowDotsB],
                        int64_t count, float* out) {
  constexpr int64_t kStep = kRowStep<kKind>;
  constexpr int64_t kABytes = kKind == RowKind::kBf16Pairs ? 2 : 4;  // per packed A element
  __m512 acc[kA][kRowDotsB];
  for (int i = 0; i < kA; i++) {
    for (int r = 0; r < kRowDotsB; r++) acc[i][r] = _mm512_setzero_ps();
  }
  const auto step = [&](const __m512 w[kRowDotsB], int64_t k0) {
    for (int i = 0; i < kA; i++) {
      const __m512 x = _mm512_load_ps(reinterpret_cast<const float*>(a_row + i * a_stride + k0 * kABytes));
      for (int r = 0; r < kRowDotsB; r++) acc[i][r] = MultiplyAdd<kKind>(acc[i][r], x, w[r]);
    }
  };
  int64_t k0 = 0;
  for (; k0 + kStep <= p.k; k0 += kStep) {
    __m512 w[kRowDotsB];
    for (int r = 0; r < kRowDotsB; r++) w[r] = LoadRow<kKind>(p.b, b_rows[r] + k0);
    step(w, k0);
  }
  if (k0 < p.k) {
    __m512 w[kRowDotsB];
    for (int r = 0; r < kRowDotsB; r++) w[r] = LoadRowTail<kKind>(p.b, b_rows[r] + k0, p.k - k0);
    step(w, k0);
  }
  for (int i = 0; i < kA; i++) {
    alignas(16) float sums[kRowDotsB];
    _mm_store_ps(sums, _mm_mul_ps(_mm_set1_ps(p.alpha), SumLanes4(acc[i])));
    for (int64_t r = 0; r < count; r++) out[i * p.n + r] = p.accumulate ? out[i * p.n + r] + sums[r] : sums[r];
  }
}

template <RowKind kKind>
void RowDotsTyped(const MatmulArgs& p, const char* a_rows, int64_t a_stride) {
  const int64_t groups = CeilDiv(p.n, kRowDotsB);
  ParallelFor(p.batch * groups, [&](int64_t begin, int64_t end) {
    for (int64_t task = begin; task < end; task++) {
      const int64_t bi = task / groups, n0 = (task % groups) * kRowDotsB, count = Min64(kRowDotsB, p.n - n0);
      const int64_t b_offset = p.b_batched ? bi * p.k * p.n : 0;
      int64_t b_rows[kRowDotsB];
      for (int r = 0; r < kRowDotsB; r++) b_rows[r] = b_offset + (n0 + Min64(r, count - 1)) * p.k;
      for (int64_t i0 = 0; i0 < p.m; i0 += kRowDotsA) {
        const char* a_row = a_rows + (bi * p.m + i0) * a_stride;
        float* out = p.out + (bi * p.m + i0) * p.n + n0;
        switch (Min64(kRowDotsA, p.m - i0)) {
          case 1: RowDotsTile<kKind, 1>(p, a_row, a_stride, b_rows, count, out); break;
          case 2: RowDotsTile<kKind, 2>(p, a_row, a_stride, b_rows, count, out); break;
          case 3: RowDotsTile<kKind, 3>(p, a_row, a_stride, b_rows, count, out); break;
          default: RowDotsTile<kKind, 4>(p, a_row, a_stride, b_rows, count, out); break;
        }
      }
    }
  });
}

// out (+)= alpha · A·Bᵀ for M < kRowDotsMaxM (UseRowDots said it fits), every batch item; bf16_pairs: bf16 B
// through vdpbf16ps (the CPU has AVX512_BF16).
void MatmulRowDots(const MatmulArgs& p, bool bf16_pairs) {
  const bool pairs = bf16_pairs && p.b_dtype == DType::kBf16;
  // A rows: f32, or bf16 (nearest even) for vdpbf16ps; whole 64-byte vectors, zero past K.
  const int64_t k_pad = CeilDiv(p.k, 32) * 32;
  const int64_t a_stride = k_pad * (pairs ? 2 : 4);
  const int64_t rows = p.batch * p.m;
  char* a_rows = static_cast<char*>(ThreadScratch(kScratchPackedA, static_cast<size_t>(rows * a_stride)));
  for (int64_t row = 0; row < rows; row++) {
    const int64_t bi = row / p.m, i = row % p.m;
    const float* a = p.a + bi * p.m * p.k;
    for (int64_t k0 = 0; k0 < k_pad; k0 += 16) {
      alignas(64) float x[16];
      for (int64_t j = 0; j < 16; j++) {
        const int64_t k = k0 + j;
        x[j] = k >= p.k ? 0.0f : p.trans_a ? a[k * p.m + i] : a[i * p.k + k];
      }
      char* dst = a_rows + row * a_stride;
      if (pairs) {
        _mm256_store_si256(reinterpret_cast<__m256i*>(dst + k0 * 2),
                           reinterpret_cast<__m256i>(_mm512_cvtneps_pbh(_mm512_load_ps(x))));
      } else {
        _mm512_store_ps(reinterpret_cast<float*>(dst) + k0, _mm512_load_ps(x));
      }
    }
  }
  if (pairs) return RowDotsTyped<RowKind::kBf16Pairs>(p, a_rows, a_stride);
  switch (p.b_dtype) {
    case DType::kBf16: return RowDotsTyped<RowKind::kBf16>(p, a_rows, a_stride);
    case DType::kF16: return RowDotsTyped<RowKind::kF16>(p, a_rows, a_stride);
    case DType::kF32: return RowDotsTyped<RowKind::kF32>(p, a_rows, a_stride);
  }
}

}  // namespace
}  // namespace labor::cpu::avx512
