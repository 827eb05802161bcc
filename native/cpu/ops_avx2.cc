// AVX2 + FMA path: f32 GEMM with a 6×16 register tile (12 ymm accumulators), bf16/f16 B decoded to f32
// while packing (F16C for f16); attention with 8-wide dot/axpy and masked tails.
#include <immintrin.h>

#include <cstring>

#include "cpu/attention_online.h"
#include "cpu/gemm_f32.h"
#include "cpu/numeric.h"
#include "cpu/ops.h"

namespace labor::cpu::avx2 {
namespace {

struct Kernel {
  static constexpr int64_t kMr = 6, kNr = 16;

  static void Micro(const float* ap, const float* bp, int64_t kc, float* c) {
    __m256 acc[kMr][2];
    for (int r = 0; r < kMr; r++) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
    for (int64_t k = 0; k < kc; k++, ap += kMr, bp += kNr) {
      const __m256 b0 = _mm256_loadu_ps(bp), b1 = _mm256_loadu_ps(bp + 8);
      for (int r = 0; r < kMr; r++) {
        const __m256 a = _mm256_broadcast_ss(ap + r);
        acc[r][0] = _mm256_fmadd_ps(a, b0, acc[r][0]);
        acc[r][1] = _mm256_fmadd_ps(a, b1, acc[r][1]);
      }
    }
    for (int r = 0; r < kMr; r++) {
      _mm256_storeu_ps(c + r * kNr, acc[r][0]);
      _mm256_storeu_ps(c + r * kNr + 8, acc[r][1]);
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
      for (; i + 8 <= count; i += 8) {
        const __m128i raw = _mm_loadu_si128(reinterpret_cast<const __m128i*>(h + i));
        _mm256_storeu_ps(dst + i, _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(raw), 16)));
      }
      for (; i < count; i++) dst[i] = Bf16ToFloat(h[i]);
    } else {
      for (; i + 8 <= count; i += 8) {
        _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(h + i))));
      }
      for (; i < count; i++) dst[i] = F16ToFloat(h[i]);
    }
  }
};

// Lane mask with the first n (0 … 8) lanes on, for maskload/maskstore.
inline __m256i TailMask(int64_t n) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(n)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

inline float HorizontalSum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

struct Vec {
  static float Dot(const float* a, const float* b, int64_t n) {
    __m256 sum = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) sum = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), sum);
    if (i < n) {
      const __m256i m = TailMask(n - i);
      sum = _mm256_fmadd_ps(_mm256_maskload_ps(a + i, m), _mm256_maskload_ps(b + i, m), sum);
    }
    return HorizontalSum(sum);
  }
  static void Axpy(float w, const float* x, float* y, int64_t n) {
    const __m256 wv = _mm256_set1_ps(w);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_fmadd_ps(wv, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
    if (i < n) {
      const __m256i m = TailMask(n - i);
      _mm256_maskstore_ps(y + i, m, _mm256_fmadd_ps(wv, _mm256_maskload_ps(x + i, m), _mm256_maskload_ps(y + i, m)));
    }
  }
  static void Scale(float* y, float s, int64_t n) {
    const __m256 sv = _mm256_set1_ps(s);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_mul_ps(sv, _mm256_loadu_ps(y + i)));
    if (i < n) {
      const __m256i m = TailMask(n - i);
      _mm256_maskstore_ps(y + i, m, _mm256_mul_ps(sv, _mm256_maskload_ps(y + i, m)));
    }
  }
};

}  // namespace

void Matmul(const MatmulArgs& args) { GemmF32<Kernel>(args); }
void Attention(const AttentionArgs& args) { AttentionOnline<Vec>(args); }

}  // namespace labor::cpu::avx2
