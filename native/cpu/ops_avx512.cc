// AVX-512 path: f32 GEMM with an 8×32 register tile (16 zmm accumulators), bf16/f16 B decoded to f32
// while packing (exact, so results match the f32 reference to rounding); attention with 16-wide
// dot/axpy and masked tails.
// GCC 12 warns inside its own AVX-512 intrinsics (_mm512_undefined_* operands, GCC bug 105593).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <cstring>

#include "cpu/attention_online.h"
#include "cpu/gemm_f32.h"
#include "cpu/numeric.h"
#include "cpu/ops.h"

namespace labor::cpu::avx512 {
namespace {

struct Kernel {
  static constexpr int64_t kMr = 8, kNr = 32;

  static void Micro(const float* ap, const float* bp, int64_t kc, float* c) {
    __m512 acc[kMr][2];
    for (int r = 0; r < kMr; r++) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
    for (int64_t k = 0; k < kc; k++, ap += kMr, bp += kNr) {
      const __m512 b0 = _mm512_loadu_ps(bp), b1 = _mm512_loadu_ps(bp + 16);
      for (int r = 0; r < kMr; r++) {
        const __m512 a = _mm512_set1_ps(ap[r]);
        acc[r][0] = _mm512_fmadd_ps(a, b0, acc[r][0]);
        acc[r][1] = _mm512_fmadd_ps(a, b1, acc[r][1]);
      }
    }
    for (int r = 0; r < kMr; r++) {
      _mm512_storeu_ps(c + r * kNr, acc[r][0]);
      _mm512_storeu_ps(c + r * kNr + 16, acc[r][1]);
    }
  }

  static void DecodeRow(const void* src, DType dtype, int64_t offset, int64_t count, float* dst) {
    if (dtype == DType::kF32) {
      std::memcpy(dst, static_cast<const float*>(src) + offset, sizeof(float) * count);
      return;
    }
    const uint16_t* h = static_cast<const uint16_t*>(src) + offset;
    int64_t i = 0;
    if (dtype == DType::kBf16) {
      // bf16 → f32: widen to 32 bits and shift into the top half.
      for (; i + 16 <= count; i += 16) {
        const __m256i raw = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(h + i));
        _mm512_storeu_ps(dst + i, _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(raw), 16)));
      }
      for (; i < count; i++) dst[i] = Bf16ToFloat(h[i]);
    } else {
      for (; i + 16 <= count; i += 16) {
        _mm512_storeu_ps(dst + i, _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(h + i))));
      }
      for (; i < count; i++) dst[i] = F16ToFloat(h[i]);
    }
  }
};

inline __mmask16 TailMask(int64_t n) { return static_cast<__mmask16>((1u << n) - 1u); }

struct Vec {
  static float Dot(const float* a, const float* b, int64_t n) {
    __m512 sum = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) sum = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), sum);
    if (i < n) {
      const __mmask16 m = TailMask(n - i);
      sum = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i), sum);
    }
    return _mm512_reduce_add_ps(sum);
  }
  static void Axpy(float w, const float* x, float* y, int64_t n) {
    const __m512 wv = _mm512_set1_ps(w);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, _mm512_fmadd_ps(wv, _mm512_loadu_ps(x + i), _mm512_loadu_ps(y + i)));
    if (i < n) {
      const __mmask16 m = TailMask(n - i);
      _mm512_mask_storeu_ps(y + i, m, _mm512_fmadd_ps(wv, _mm512_maskz_loadu_ps(m, x + i), _mm512_maskz_loadu_ps(m, y + i)));
    }
  }
  static void Scale(float* y, float s, int64_t n) {
    const __m512 sv = _mm512_set1_ps(s);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, _mm512_mul_ps(sv, _mm512_loadu_ps(y + i)));
    if (i < n) {
      const __mmask16 m = TailMask(n - i);
      _mm512_mask_storeu_ps(y + i, m, _mm512_mul_ps(sv, _mm512_maskz_loadu_ps(m, y + i)));
    }
  }
};

}  // namespace

void Matmul(const MatmulArgs& args) { GemmF32<Kernel>(args); }
void Attention(const AttentionArgs& args) { AttentionOnline<Vec>(args); }

}  // namespace labor::cpu::avx512
