// 8-wide f32 vector helpers for the AVX2 + FMA training kernels (include only from TUs compiled with
// -mavx2 -mfma; internal linkage as in numeric.h). Tails use maskload/maskstore.
//
// Exp is Cephes' expf: x = n·ln2 + r with |r| ≤ ln2/2, exp(r) by a degree-6 polynomial (≈1 ulp), times 2ⁿ
// built in the exponent bits. x is clamped to [−87.3, 88.7] so 2ⁿ stays a normal float; below −87.3
// (exp < FLT_MIN, e.g. −inf) the result is 0. NaN stays NaN.
#pragma once
#include <immintrin.h>
#include <math.h>

#include <cstdint>

namespace labor::cpu::avx2 {
namespace {

// Lanes [0, n) on, n in 0 … 8.
inline __m256i VecTailMask(int64_t n) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(n)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

inline float VecHorizontalSum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

inline float VecHorizontalMax(__m256 v) {
  __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_max_ps(s, _mm_movehl_ps(s, s));
  s = _mm_max_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

inline __m256 ExpPs(__m256 input) {
  const __m256 lowest = _mm256_set1_ps(-87.33f);
  // max/min return their second operand when one is NaN: x goes second so a NaN survives the clamp.
  const __m256 x = _mm256_min_ps(_mm256_set1_ps(88.7f), _mm256_max_ps(lowest, input));
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 y = _mm256_set1_ps(1.9875691500e-4f);
  y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(1.3981999507e-3f));
  y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(8.3334519073e-3f));
  y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(4.1665795894e-2f));
  y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(1.6666665459e-1f));
  y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(5.0000001201e-1f));
  y = _mm256_fmadd_ps(y, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
  // 2ⁿ for n in [−126, 128): (n + 127) << 23. n = 128 only at the clamp 88.7, where exp overflows anyway.
  const __m256i biased = _mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127));
  const __m256 result = _mm256_mul_ps(y, _mm256_castsi256_ps(_mm256_slli_epi32(biased, 23)));
  return _mm256_andnot_ps(_mm256_cmp_ps(input, lowest, _CMP_LT_OQ), result);  // exp(x < −87.33) → 0
}

struct Vec {
  static float Dot(const float* a, const float* b, int64_t n) {
    __m256 sum0 = _mm256_setzero_ps(), sum1 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
      sum0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), sum0);
      sum1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), sum1);
    }
    for (; i + 8 <= n; i += 8) sum0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), sum0);
    if (i < n) {
      const __m256i m = VecTailMask(n - i);
      sum1 = _mm256_fmadd_ps(_mm256_maskload_ps(a + i, m), _mm256_maskload_ps(b + i, m), sum1);
    }
    return VecHorizontalSum(_mm256_add_ps(sum0, sum1));
  }

  // y += w·x
  static void Axpy(float w, const float* x, float* y, int64_t n) {
    const __m256 wv = _mm256_set1_ps(w);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_fmadd_ps(wv, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
    if (i < n) {
      const __m256i m = VecTailMask(n - i);
      _mm256_maskstore_ps(y + i, m, _mm256_fmadd_ps(wv, _mm256_maskload_ps(x + i, m), _mm256_maskload_ps(y + i, m)));
    }
  }

  // y *= s
  static void Scale(float* y, float s, int64_t n) {
    const __m256 sv = _mm256_set1_ps(s);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_mul_ps(sv, _mm256_loadu_ps(y + i)));
    if (i < n) {
      const __m256i m = VecTailMask(n - i);
      _mm256_maskstore_ps(y + i, m, _mm256_mul_ps(sv, _mm256_maskload_ps(y + i, m)));
    }
  }

  static void Zero(float* y, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_setzero_ps());
    if (i < n) _mm256_maskstore_ps(y + i, VecTailMask(n - i), _mm256_setzero_ps());
  }

  // max_i x_i (−inf for n = 0); masked-off tail lanes load −inf
  static float Max(const float* x, int64_t n) {
    const __m256 minus_inf = _mm256_set1_ps(-INFINITY);
    __m256 mx = minus_inf;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) mx = _mm256_max_ps(mx, _mm256_loadu_ps(x + i));
    if (i < n) {
      const __m256i m = VecTailMask(n - i);
      mx = _mm256_max_ps(mx, _mm256_blendv_ps(minus_inf, _mm256_maskload_ps(x + i, m), _mm256_castsi256_ps(m)));
    }
    return VecHorizontalMax(mx);
  }

  // x_i = exp(x_i)
  static void ExpInPlace(float* x, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, ExpPs(_mm256_loadu_ps(x + i)));
    if (i < n) {
      const __m256i m = VecTailMask(n - i);
      _mm256_maskstore_ps(x + i, m, ExpPs(_mm256_maskload_ps(x + i, m)));
    }
  }

  // Σ exp(x_i − shift), 16 f32 lanes of partial sums
  static float ExpSum(const float* x, float shift, int64_t n) {
    const __m256 sv = _mm256_set1_ps(shift);
    __m256 sum0 = _mm256_setzero_ps(), sum1 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
      sum0 = _mm256_add_ps(sum0, ExpPs(_mm256_sub_ps(_mm256_loadu_ps(x + i), sv)));
      sum1 = _mm256_add_ps(sum1, ExpPs(_mm256_sub_ps(_mm256_loadu_ps(x + i + 8), sv)));
    }
    for (; i + 8 <= n; i += 8) sum0 = _mm256_add_ps(sum0, ExpPs(_mm256_sub_ps(_mm256_loadu_ps(x + i), sv)));
    if (i < n) {
      const __m256i m = VecTailMask(n - i);
      const __m256 e = ExpPs(_mm256_sub_ps(_mm256_maskload_ps(x + i, m), sv));
      sum1 = _mm256_add_ps(sum1, _mm256_and_ps(e, _mm256_castsi256_ps(m)));
    }
    return VecHorizontalSum(_mm256_add_ps(sum0, sum1));
  }

  // y_i = factor·exp(x_i − shift) (y may be x)
  static void ExpScale(const float* x, float shift, float factor, float* y, int64_t n) {
    const __m256 sv = _mm256_set1_ps(shift), fv = _mm256_set1_ps(factor);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_mul_ps(fv, ExpPs(_mm256_sub_ps(_mm256_loadu_ps(x + i), sv))));
    if (i < n) {
      const __m256i m = VecTailMask(n - i);
      _mm256_maskstore_ps(y + i, m, _mm256_mul_ps(fv, ExpPs(_mm256_sub_ps(_mm256_maskload_ps(x + i, m), sv))));
    }
  }
};

}  // namespace
}  // namespace labor::cpu::avx2
