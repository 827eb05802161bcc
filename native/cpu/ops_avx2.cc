// AVX2 + FMA path: the blocked GEMM of gemm_blocked.h in f32 (bf16/f16 B decoded exactly); attention with
// 8-wide dot/axpy and masked tails.
#include <immintrin.h>

#include <cstring>

#include "cpu/attention_online.h"
#include "cpu/gemm_blocked.h"
#include "cpu/numeric.h"
#include "cpu/ops.h"

namespace labor::cpu::avx2 {
namespace {

// The blocked GEMM of gemm_blocked.h with a 4 × 24 register tile of Cᵀ (12 ymm accumulators, 3 for the
// A row vectors, 1 broadcast); every B dtype is multiplied in f32 (bf16/f16 decode exactly).
struct KernelF32 {
  using Unit = float;
  static constexpr int64_t kNr = 4, kMs = 24, kStepK = 1, kStripsPerBlock = 8, kNb = 64, kStepsPerChunk = 256;

  static bool InPlace(const MatmulArgs& p) { return p.b_dtype == DType::kF32; }

  template <bool kInPlace>
  static void Micro(const float* ap, const float* b, int64_t row_stride, int64_t steps, float* ct, int64_t ct_stride,
                    bool load) {
    __m256 acc[kNr][3];
    for (int r = 0; r < kNr; r++) {
      for (int j = 0; j < 3; j++) acc[r][j] = load ? _mm256_loadu_ps(ct + r * ct_stride + 8 * j) : _mm256_setzero_ps();
    }
    const float* rows[kNr];
    for (int r = 0; r < kNr; r++) rows[r] = kInPlace ? b + r * row_stride : b + r;
    for (int64_t s = 0; s < steps; s++, ap += kMs) {
      const __m256 a0 = _mm256_load_ps(ap), a1 = _mm256_load_ps(ap + 8), a2 = _mm256_load_ps(ap + 16);
#pragma GCC unroll 4
      for (int r = 0; r < kNr; r++) {
        const __m256 w = _mm256_broadcast_ss(kInPlace ? rows[r] + s : rows[r] + s * kNr);
        acc[r][0] = _mm256_fmadd_ps(w, a0, acc[r][0]);
        acc[r][1] = _mm256_fmadd_ps(w, a1, acc[r][1]);
        acc[r][2] = _mm256_fmadd_ps(w, a2, acc[r][2]);
      }
    }
    for (int r = 0; r < kNr; r++) {
      for (int j = 0; j < 3; j++) _mm256_storeu_ps(ct + r * ct_stride + 8 * j, acc[r][j]);
    }
  }

  // dst[k][i] = A(m0 + i, k), zero past M.
  static void PackStrip(const MatmulArgs& p, const float* a, int64_t strip, float* dst) {
    const int64_t m0 = strip * kMs, rows = Min64(kMs, p.m - m0);
    if (p.trans_a) {
      for (int64_t k = 0; k < p.k; k++) {
        const float* src = a + k * p.m + m0;
        for (int64_t i = 0; i < kMs; i++) dst[k * kMs + i] = i < rows ? src[i] : 0.0f;
      }
      return;
    }
    for (int64_t i = 0; i < kMs; i++) {
      if (i >= rows) {
        for (int64_t k = 0; k < p.k; k++) dst[k * kMs + i] = 0;
        continue;
      }
      const float* src = a + (m0 + i) * p.k;
      for (int64_t k = 0; k < p.k; k++) dst[k * kMs + i] = src[k];
    }
  }

  // dst[s][r] = B(s0 + s, n + r) as f32, zero for r ≥ rows.
  static void PackPanel(const MatmulArgs& p, const void* b, int64_t b_offset, int64_t n, int64_t rows, int64_t s0,
                        int64_t steps, float* dst) {
    for (int64_t r = 0; r < kNr; r++) {
      for (int64_t s = 0; s < steps; s++) {
        const int64_t k = s0 + s;
        dst[s * kNr + r] =
            r < rows ? LoadElement(b, p.b_dtype, b_offset + (p.trans_b ? (n + r) * p.k + k : k * p.n + n + r)) : 0.0f;
      }
    }
  }

  static void WriteBack(const MatmulArgs& p, const float* ct, int64_t ct_stride, float* out, int64_t rows,
                        int64_t cols) {
    ScalarWriteBack(p, ct, ct_stride, out, rows, cols);
  }

  static float LoadElement(const void* b, DType dtype, int64_t index) {
    switch (dtype) {
      case DType::kBf16: return Bf16ToFloat(static_cast<const uint16_t*>(b)[index]);
      case DType::kF16: return F16ToFloat(static_cast<const uint16_t*>(b)[index]);
      case DType::kF32: break;
    }
    return static_cast<const float*>(b)[index];
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

void Matmul(const MatmulArgs& args) { GemmBlocked<KernelF32>(args); }

double PeakLoop(int64_t iterations) {
  if (iterations <= 0) return 0;
  int64_t left = iterations;
  __asm__ volatile(
      "vxorps %%ymm14, %%ymm14, %%ymm14\n vxorps %%ymm15, %%ymm15, %%ymm15\n"
      "1:\n"
      "vfmadd231ps %%ymm14, %%ymm15, %%ymm0\n vfmadd231ps %%ymm14, %%ymm15, %%ymm1\n"
      "vfmadd231ps %%ymm14, %%ymm15, %%ymm2\n vfmadd231ps %%ymm14, %%ymm15, %%ymm3\n"
      "vfmadd231ps %%ymm14, %%ymm15, %%ymm4\n vfmadd231ps %%ymm14, %%ymm15, %%ymm5\n"
      "vfmadd231ps %%ymm14, %%ymm15, %%ymm6\n vfmadd231ps %%ymm14, %%ymm15, %%ymm7\n"
      "vfmadd231ps %%ymm14, %%ymm15, %%ymm8\n vfmadd231ps %%ymm14, %%ymm15, %%ymm9\n"
      "dec %0\n jnz 1b\n"
      : "+r"(left)
      :
      : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm14", "xmm15", "cc");
  return static_cast<double>(iterations) * 10 * 16;
}
void Attention(const AttentionArgs& args) { AttentionOnline<Vec>(args); }

}  // namespace labor::cpu::avx2
