// 16-wide f32 vector helpers for the AVX-512 training kernels (include only from TUs compiled with
// -mavx512f; internal linkage as in numeric.h). Tails use masked loads/stores, never a scalar loop.
//
// Exp is Cephes' expf: x = n·ln2 + r with |r| ≤ ln2/2, exp(r) by a degree-6 polynomial (≈1 ulp), then
// scalef by 2ⁿ, which also gives exact subnormals and 0 for very negative x (−inf → 0, NaN stays NaN).
#pragma once
#include <immintrin.h>
#include <math.h>

#include <cstdint>

namespace labor::cpu::avx512 {
namespace {

inline __mmask16 VecTailMask(int64_t n) { return static_cast<__mmask16>((1u << n) - 1u); }

// The lanes of p that `valid` selects, zero elsewhere (lanes outside it are never read). On the Zen 5 a
// zero-masking load in a streaming loop runs at about a third of the rate of a plain one even when every lane
// is valid (SwiGLU forward: 460 against 1,440 calls/s), while masked stores cost nothing; so a whole vector is
// read with a plain load and only a partial one masked. Where `valid` is a constant the branch folds away;
// elsewhere it is marked likely: without the hint GCC moved the plain load out of line in the GEMM packing
// loops (a jump there and one back for every whole vector).
inline __m512 LoadValid(const float* p, __mmask16 valid) {
  return __builtin_expect(valid == 0xffff, 1) ? _mm512_loadu_ps(p) : _mm512_maskz_loadu_ps(valid, p);
}

// As LoadValid, for 16 16-bit elements (bf16, f16).
inline __m256i LoadValidHalves(const uint16_t* p, __mmask16 valid) {
  return __builtin_expect(valid == 0xffff, 1) ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))
                                               : _mm256_maskz_loadu_epi16(valid, p);
}

inline __m512 ExpPs(__m512 x) {
  // max/min return their second operand when one is NaN: x goes second so a NaN survives the clamp.
  x = _mm512_min_ps(_mm512_set1_ps(88.7f), _mm512_max_ps(_mm512_set1_ps(-104.0f), x));
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
  __m512 y = _mm512_set1_ps(1.9875691500e-4f);
  y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(1.3981999507e-3f));
  y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(8.3334519073e-3f));
  y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(4.1665795894e-2f));
  y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(1.6666665459e-1f));
  y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(5.0000001201e-1f));
  y = _mm512_fmadd_ps(y, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
  return _mm512_scalef_ps(y, n);
}

struct Vec {
  static float Dot(const float* a, const float* b, int64_t n) {
    __m512 sum0 = _mm512_setzero_ps(), sum1 = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
      sum0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), sum0);
      sum1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16), sum1);
    }
    for (; i + 16 <= n; i += 16) sum0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), sum0);
    if (i < n) {
      const __mmask16 m = VecTailMask(n - i);
      sum1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i), sum1);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(sum0, sum1));
  }

  // y += w·x
  static void Axpy(float w, const float* x, float* y, int64_t n) {
    const __m512 wv = _mm512_set1_ps(w);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, _mm512_fmadd_ps(wv, _mm512_loadu_ps(x + i), _mm512_loadu_ps(y + i)));
    if (i < n) {
      const __mmask16 m = VecTailMask(n - i);
      _mm512_mask_storeu_ps(y + i, m, _mm512_fmadd_ps(wv, _mm512_maskz_loadu_ps(m, x + i), _mm512_maskz_loadu_ps(m, y + i)));
    }
  }

  // y *= s
  static void Scale(float* y, float s, int64_t n) {
    const __m512 sv = _mm512_set1_ps(s);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, _mm512_mul_ps(sv, _mm512_loadu_ps(y + i)));
    if (i < n) {
      const __mmask16 m = VecTailMask(n - i);
      _mm512_mask_storeu_ps(y + i, m, _mm512_mul_ps(sv, _mm512_maskz_loadu_ps(m, y + i)));
    }
  }

  static void Zero(float* y, int64_t n) {
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, _mm512_setzero_ps());
    if (i < n) _mm512_mask_storeu_ps(y + i, VecTailMask(n - i), _mm512_setzero_ps());
  }

  // max_i x_i (−inf for n = 0)
  static float Max(const float* x, int64_t n) {
    __m512 mx = _mm512_set1_ps(-INFINITY);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) mx = _mm512_max_ps(mx, _mm512_loadu_ps(x + i));
    if (i < n) mx = _mm512_mask_max_ps(mx, VecTailMask(n - i), mx, _mm512_maskz_loadu_ps(VecTailMask(n - i), x + i));
    return _mm512_reduce_max_ps(mx);
  }

  // x_i = exp(x_i)
  static void ExpInPlace(float* x, int64_t n) {
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(x + i, ExpPs(_mm512_loadu_ps(x + i)));
    if (i < n) {
      const __mmask16 m = VecTailMask(n - i);
      _mm512_mask_storeu_ps(x + i, m, ExpPs(_mm512_maskz_loadu_ps(m, x + i)));
    }
  }

  // Σ exp(x_i − shift), 32 f32 lanes of partial sums
  static float ExpSum(const float* x, float shift, int64_t n) {
    const __m512 sv = _mm512_set1_ps(shift);
    __m512 sum0 = _mm512_setzero_ps(), sum1 = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
      sum0 = _mm512_add_ps(sum0, ExpPs(_mm512_sub_ps(_mm512_loadu_ps(x + i), sv)));
      sum1 = _mm512_add_ps(sum1, ExpPs(_mm512_sub_ps(_mm512_loadu_ps(x + i + 16), sv)));
    }
    for (; i + 16 <= n; i += 16) sum0 = _mm512_add_ps(sum0, ExpPs(_mm512_sub_ps(_mm512_loadu_ps(x + i), sv)));
    if (i < n) {
      const __mmask16 m = VecTailMask(n - i);
      sum1 = _mm512_add_ps(sum1, _mm512_maskz_mov_ps(m, ExpPs(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + i), sv))));
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(sum0, sum1));
  }

  // y_i = factor·exp(x_i − shift) (y may be x)
  static void ExpScale(const float* x, float shift, float factor, float* y, int64_t n) {
    const __m512 sv = _mm512_set1_ps(shift), fv = _mm512_set1_ps(factor);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, _mm512_mul_ps(fv, ExpPs(_mm512_sub_ps(_mm512_loadu_ps(x + i), sv))));
    if (i < n) {
      const __mmask16 m = VecTailMask(n - i);
      _mm512_mask_storeu_ps(y + i, m, _mm512_mul_ps(fv, ExpPs(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + i), sv))));
    }
  }
};

}  // namespace
}  // namespace labor::cpu::avx512
