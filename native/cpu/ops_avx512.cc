// AVX-512 path: the blocked GEMM of gemm_blocked.h with an 8 × 48 register tile of Cᵀ (24 zmm
// accumulators) — f32 FMA for f32/f16 B (f16 decoded exactly), vdpbf16ps on bf16 pairs for bf16 B when the
// CPU has AVX512_BF16 (A rounded to bf16 once per call), weights read in place — for transB products, and
// gemm_kn.h's 6 × 64 tile of out (narrower for narrow N) for B stored [K, N] (the backward products),
// gemm_rows_avx512.h for M ≤ 16 transB products (scoring a few rows against a weight, read in place); attention
// on blocks of 16 queries held in the vector lanes; vectorised RMSNorm, SwiGLU and log-softmax.
// GCC 12 warns inside its own AVX-512 intrinsics (_mm512_undefined_* operands, GCC bug 105593).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>

#include <cstring>
#include <type_traits>

#include "cpu/gemm_blocked.h"
#include "cpu/gemm_kn.h"
#include "cpu/gemm_rows_avx512.h"
#include "cpu/gemm_skinny_avx512.h"
#include "cpu/numeric.h"
#include "cpu/ops.h"
#include "cpu/vec_avx512.h"

namespace labor::cpu::avx512 {
namespace {

// 16×16 transpose of 32-bit elements: r[i] lane j ↔ r[j] lane i.
inline void Transpose16(__m512i r[16]) {
  __m512i t[16];
  for (int i = 0; i < 8; i++) {
    t[2 * i] = _mm512_unpacklo_epi32(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_epi32(r[2 * i], r[2 * i + 1]);
  }
  // u[g][c]: 128-bit lane L holds element 4L + c of rows 4g … 4g + 3.
  __m512i u[4][4];
  for (int g = 0; g < 4; g++) {
    u[g][0] = _mm512_unpacklo_epi64(t[4 * g], t[4 * g + 2]);
    u[g][1] = _mm512_unpackhi_epi64(t[4 * g], t[4 * g + 2]);
    u[g][2] = _mm512_unpacklo_epi64(t[4 * g + 1], t[4 * g + 3]);
    u[g][3] = _mm512_unpackhi_epi64(t[4 * g + 1], t[4 * g + 3]);
  }
  for (int c = 0; c < 4; c++) {
    const __m512i x0 = _mm512_shuffle_i32x4(u[0][c], u[1][c], 0x88), y0 = _mm512_shuffle_i32x4(u[0][c], u[1][c], 0xdd);
    const __m512i x1 = _mm512_shuffle_i32x4(u[2][c], u[3][c], 0x88), y1 = _mm512_shuffle_i32x4(u[2][c], u[3][c], 0xdd);
    r[c] = _mm512_shuffle_i32x4(x0, x1, 0x88);
    r[8 + c] = _mm512_shuffle_i32x4(x0, x1, 0xdd);
    r[4 + c] = _mm512_shuffle_i32x4(y0, y1, 0x88);
    r[12 + c] = _mm512_shuffle_i32x4(y0, y1, 0xdd);
  }
}

inline __mmask16 Mask16(int64_t n) { return n >= 16 ? 0xffff : n <= 0 ? 0 : static_cast<__mmask16>((1u << n) - 1u); }

// A possibly unaligned 32-bit load (bf16 pairs inside a Uint16Array that is only 2-byte aligned).
inline uint32_t LoadU32(const uint32_t* p) {
  uint32_t value;
  std::memcpy(&value, p, sizeof value);
  return value;
}

// 32 floats → 32 bf16 (nearest even; like vdpbf16ps, denormals become zero), as 16 pairs: lane i holds
// elements 2i (low half) and 2i + 1 (high half).
inline __m512i PairsFromFloats(__m512 lo, __m512 hi) { return reinterpret_cast<__m512i>(_mm512_cvtne2ps_pbh(hi, lo)); }

// Shared by both kernels: 48 rows per strip (3 vectors of 16), 8 columns per tile → 24 accumulators.
struct Tile {
  static constexpr int64_t kNr = 8, kMs = 48, kStripsPerBlock = 4, kStripsPerBlockSmallB = 1, kNb = 64;

  // out[i][j] (+)= alpha · ct[j][i], 16 × 16 blocks transposed in registers.
  static void WriteBack(const MatmulArgs& p, const float* ct, int64_t ct_stride, float* out, int64_t rows,
                        int64_t cols) {
    const __m512 alpha = _mm512_set1_ps(p.alpha);
    for (int64_t j0 = 0; j0 < cols; j0 += 16) {
      const __mmask16 valid = Mask16(cols - j0);
      for (int64_t i0 = 0; i0 < rows; i0 += 16) {
        __m512i block[16];
        for (int64_t j = 0; j < 16; j++) {
          // Rows of ct past `cols` hold padding (or stale values): read row 0 instead, never stored.
          block[j] = _mm512_castps_si512(_mm512_loadu_ps(ct + (j0 + j < cols ? j0 + j : 0) * ct_stride + i0));
        }
        Transpose16(block);
        for (int64_t i = 0; i < 16 && i0 + i < rows; i++) {
          float* dst = out + (i0 + i) * p.n + j0;
          __m512 product = _mm512_mul_ps(alpha, _mm512_castsi512_ps(block[i]));
          // Masked even for whole vectors (unlike the packing loops, see LoadValid): one load per output, and
          // a plain one on whole vectors measured no faster (LoRA y += u·Bᵀ, where K = 16 makes this loop count).
          if (p.accumulate) product = _mm512_add_ps(_mm512_maskz_loadu_ps(valid, dst), product);
          _mm512_mask_storeu_ps(dst, valid, product);
        }
      }
    }
  }
};

// f32 B (any dtype decoded to f32): ct[r][i] += Σ_k B(r, k)·A(i, k) with 24 FMAs per k.
struct KernelF32 : Tile {
  using Unit = float;
  static constexpr int64_t kStepK = 1, kStepsPerChunk = 256;

  static bool InPlace(const MatmulArgs& p) { return p.b_dtype == DType::kF32; }

  template <bool kInPlace>
  static void Micro(const float* ap, const float* b, int64_t row_stride, int64_t steps, float* ct, int64_t ct_stride,
                    bool load) {
    __m512 acc[kNr][3];
    for (int r = 0; r < kNr; r++) {
      for (int j = 0; j < 3; j++) acc[r][j] = load ? _mm512_loadu_ps(ct + r * ct_stride + 16 * j) : _mm512_setzero_ps();
    }
    const float* rows[kNr];
    for (int r = 0; r < kNr; r++) rows[r] = kInPlace ? b + r * row_stride : b + r;
    for (int64_t s = 0; s < steps; s++, ap += kMs) {
      const __m512 a0 = _mm512_load_ps(ap), a1 = _mm512_load_ps(ap + 16), a2 = _mm512_load_ps(ap + 32);
#pragma GCC unroll 8
      for (int r = 0; r < kNr; r++) {
        const __m512 w = _mm512_set1_ps(kInPlace ? rows[r][s] : rows[r][s * kNr]);
        acc[r][0] = _mm512_fmadd_ps(w, a0, acc[r][0]);
        acc[r][1] = _mm512_fmadd_ps(w, a1, acc[r][1]);
        acc[r][2] = _mm512_fmadd_ps(w, a2, acc[r][2]);
      }
    }
    for (int r = 0; r < kNr; r++) {
      for (int j = 0; j < 3; j++) _mm512_storeu_ps(ct + r * ct_stride + 16 * j, acc[r][j]);
    }
  }

  // dst[k][i] = A(m0 + i, k), zero past M.
  static void PackStrip(const MatmulArgs& p, const float* a, int64_t strip, float* dst) {
    PackStripSteps(p, a, strip * kMs, 0, p.k, dst);
  }

  // dst[s][i] = A(m0 + i, s0 + s) for s < steps, zero past M.
  static void PackStripSteps(const MatmulArgs& p, const float* a, int64_t m0, int64_t s0, int64_t steps, float* dst) {
    if (p.trans_a) {
      for (int64_t s = 0; s < steps; s++) {
        const float* src = a + (s0 + s) * p.m + m0;
        for (int j = 0; j < 3; j++) {
          _mm512_store_ps(dst + s * kMs + 16 * j, LoadValid(src + 16 * j, Mask16(p.m - m0 - 16 * j)));
        }
      }
      return;
    }
    for (int64_t u0 = 0; u0 < steps; u0 += 16) {
      const __mmask16 k_mask = Mask16(steps - u0);
      const int64_t valid_k = Min64(16, steps - u0);
      for (int j = 0; j < 3; j++) {
        __m512i rows[16];
        for (int i = 0; i < 16; i++) {
          const int64_t m = m0 + 16 * j + i;
          rows[i] = m < p.m ? _mm512_castps_si512(LoadValid(a + m * p.k + s0 + u0, k_mask)) : _mm512_setzero_si512();
        }
        Transpose16(rows);
        for (int64_t u = 0; u < valid_k; u++) _mm512_store_si512(dst + (u0 + u) * kMs + 16 * j, rows[u]);
      }
    }
  }

  // dst[s][r] = B(s0 + s, n + r) as f32, zero for r ≥ rows.
  static void PackPanel(const MatmulArgs& p, const void* b, int64_t b_offset, int64_t n, int64_t rows, int64_t s0,
                        int64_t steps, float* dst) {
    for (int64_t r = 0; r < kNr; r++) {
      if (r >= rows) {
        for (int64_t s = 0; s < steps; s++) dst[s * kNr + r] = 0;
        continue;
      }
      for (int64_t s = 0; s < steps; s++) {
        const int64_t k = s0 + s;
        dst[s * kNr + r] = LoadElement(b, p.b_dtype, b_offset + (p.trans_b ? (n + r) * p.k + k : k * p.n + n + r));
      }
    }
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

// bf16 B with AVX512_BF16: vdpbf16ps multiplies bf16 pairs (k, k + 1) and adds both products into f32
// lanes, so a step is a k pair: ct[r][i] += B(r, 2s)·A(i, 2s) + B(r, 2s+1)·A(i, 2s+1). A is rounded to
// bf16 once, while packing (llama.cpp rounds activations for bf16 weights too).
struct KernelBf16 : Tile {
  using Unit = uint32_t;
  static constexpr int64_t kStepK = 2, kStepsPerChunk = 256;

  static bool InPlace(const MatmulArgs& p) { return p.b_dtype == DType::kBf16 && p.k % 2 == 0; }

  template <bool kInPlace>
  static void Micro(const uint32_t* ap, const uint32_t* b, int64_t row_stride, int64_t steps, float* ct,
                    int64_t ct_stride, bool load) {
    __m512 acc[kNr][3];
    for (int r = 0; r < kNr; r++) {
      for (int j = 0; j < 3; j++) acc[r][j] = load ? _mm512_loadu_ps(ct + r * ct_stride + 16 * j) : _mm512_setzero_ps();
    }
    const uint32_t* rows[kNr];
    for (int r = 0; r < kNr; r++) rows[r] = kInPlace ? b + r * row_stride : b + r;
    for (int64_t s = 0; s < steps; s++, ap += kMs) {
      const __m512bh a0 = reinterpret_cast<__m512bh>(_mm512_load_si512(ap));
      const __m512bh a1 = reinterpret_cast<__m512bh>(_mm512_load_si512(ap + 16));
      const __m512bh a2 = reinterpret_cast<__m512bh>(_mm512_load_si512(ap + 32));
#pragma GCC unroll 8
      for (int r = 0; r < kNr; r++) {
        const uint32_t pair = kInPlace ? LoadU32(rows[r] + s) : rows[r][s * kNr];
        const __m512bh w = reinterpret_cast<__m512bh>(_mm512_set1_epi32(static_cast<int>(pair)));
        acc[r][0] = _mm512_dpbf16_ps(acc[r][0], w, a0);
        acc[r][1] = _mm512_dpbf16_ps(acc[r][1], w, a1);
        acc[r][2] = _mm512_dpbf16_ps(acc[r][2], w, a2);
      }
    }
    for (int r = 0; r < kNr; r++) {
      for (int j = 0; j < 3; j++) _mm512_storeu_ps(ct + r * ct_stride + 16 * j, acc[r][j]);
    }
  }

  // dst[s][i] = bf16 pair (A(m0 + i, 2s), A(m0 + i, 2s + 1)), zero past M and K.
  static void PackStrip(const MatmulArgs& p, const float* a, int64_t strip, uint32_t* dst) {
    PackStripSteps(p, a, strip * kMs, 0, (p.k + 1) / 2, dst);
  }

  // dst[s][i] = bf16 pair (A(m0 + i, 2(s0 + s)), A(m0 + i, 2(s0 + s) + 1)) for s < steps, zero past M and K.
  static void PackStripSteps(const MatmulArgs& p, const float* a, int64_t m0, int64_t s0, int64_t steps,
                             uint32_t* dst) {
    if (p.trans_a) {
      // a is [K, M]: rows 2s and 2s + 1 give the low and high halves of 16 pairs; interleave them.
      const __m512i interleave = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8, 23, 7,
                                                  22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
      for (int64_t s = 0; s < steps; s++) {
        const int64_t k = 2 * (s0 + s);
        const float* even = a + k * p.m + m0;
        const bool has_odd = k + 1 < p.k;
        for (int j = 0; j < 3; j++) {
          const __mmask16 mask = Mask16(p.m - m0 - 16 * j);
          const __m512 lo = LoadValid(even + 16 * j, mask);
          const __m512 hi = has_odd ? LoadValid(even + p.m + 16 * j, mask) : _mm512_setzero_ps();
          _mm512_store_si512(dst + s * kMs + 16 * j, _mm512_permutexvar_epi16(interleave, PairsFromFloats(lo, hi)));
        }
      }
      return;
    }
    const int64_t k_end = Min64(p.k, 2 * (s0 + steps));
    for (int64_t u0 = 0; u0 < steps; u0 += 16) {
      const int64_t k0 = 2 * (s0 + u0);
      const __mmask16 lo_mask = Mask16(k_end - k0), hi_mask = Mask16(k_end - k0 - 16);
      const int64_t valid_steps = Min64(16, steps - u0);
      for (int j = 0; j < 3; j++) {
        __m512i rows[16];
        for (int i = 0; i < 16; i++) {
          const int64_t m = m0 + 16 * j + i;
          if (m < p.m) {
            const float* src = a + m * p.k + k0;
            rows[i] = PairsFromFloats(LoadValid(src, lo_mask), LoadValid(src + 16, hi_mask));
          } else {
            rows[i] = _mm512_setzero_si512();
          }
        }
        Transpose16(rows);
        for (int64_t u = 0; u < valid_steps; u++) _mm512_store_si512(dst + (u0 + u) * kMs + 16 * j, rows[u]);
      }
    }
  }

  // dst[s][r] = raw bf16 pair (B(2(s0 + s), n + r), B(2(s0 + s) + 1, n + r)), zero past K and for r ≥ rows.
  static void PackPanel(const MatmulArgs& p, const void* b, int64_t b_offset, int64_t n, int64_t rows, int64_t s0,
                        int64_t steps, uint32_t* dst) {
    const uint16_t* h = static_cast<const uint16_t*>(b) + b_offset;
    auto at = [&](int64_t k, int64_t col) -> uint32_t {
      if (k >= p.k) return 0;
      return p.trans_b ? h[col * p.k + k] : h[k * p.n + col];
    };
    for (int64_t s = 0; s < steps; s++) {
      const int64_t k = 2 * (s0 + s);
      for (int64_t r = 0; r < kNr; r++) dst[s * kNr + r] = r < rows ? at(k, n + r) | (at(k + 1, n + r) << 16) : 0;
    }
  }
};

// The [K, N] kernels of gemm_kn.h (B not transposed): tiles of kNv vectors of 16 columns × 24 / kNv rows
// of out (24 accumulators), B kNv vectors along n per step, A broadcast from the 48-row strips packed as
// above. kNv = 4 (6 × 64) unless N is narrower (LoRA's rank-16 products): then 2 (12 × 32) or 1 (24 × 16),
// so that few lanes multiply padding.
template <class Unit, int64_t kNvectors>
struct TileKN {
  static constexpr int64_t kMs = 48, kNv = kNvectors, kMr = 24 / kNv, kNr = 16 * kNv;
  static constexpr int64_t kStripsPerBlock = 4, kNb = 256, kStepsPerChunk = 128;

  // c[i][j] = (load ? c[i][j] : 0) + alpha · Σ_s Ap[s][i]·Bp[s][j] for i < rows, j < cols: f32 FMA on
  // floats, vdpbf16ps on bf16 pairs.
  static void Tile(const Unit* ap, const Unit* bp, int64_t steps, float* c, int64_t ldc, int64_t rows, int64_t cols,
                   float alpha, bool load) {
    __m512 acc[kMr][kNv];
    for (int i = 0; i < kMr; i++) {
      for (int j = 0; j < kNv; j++) acc[i][j] = _mm512_setzero_ps();
    }
    for (int64_t s = 0; s < steps; s++, ap += kMs, bp += kNr) {
      if constexpr (std::is_same_v<Unit, float>) {
        __m512 b[kNv];
        for (int j = 0; j < kNv; j++) b[j] = _mm512_load_ps(bp + 16 * j);
#pragma GCC unroll 24
        for (int i = 0; i < kMr; i++) {
          const __m512 x = _mm512_set1_ps(ap[i]);
          for (int j = 0; j < kNv; j++) acc[i][j] = _mm512_fmadd_ps(x, b[j], acc[i][j]);
        }
      } else {
        __m512bh b[kNv];
        for (int j = 0; j < kNv; j++) b[j] = reinterpret_cast<__m512bh>(_mm512_load_si512(bp + 16 * j));
#pragma GCC unroll 24
        for (int i = 0; i < kMr; i++) {
          const __m512bh x = reinterpret_cast<__m512bh>(_mm512_set1_epi32(static_cast<int>(ap[i])));
          for (int j = 0; j < kNv; j++) acc[i][j] = _mm512_dpbf16_ps(acc[i][j], x, b[j]);
        }
      }
    }
    const __m512 scale = _mm512_set1_ps(alpha);
    for (int i = 0; i < kMr; i++) {
      if (i >= rows) break;
      float* dst = c + i * ldc;
      for (int j = 0; j < kNv; j++) {
        const __mmask16 valid = Mask16(cols - 16 * j);
        const __m512 before = load ? LoadValid(dst + 16 * j, valid) : _mm512_setzero_ps();
        _mm512_mask_storeu_ps(dst + 16 * j, valid, _mm512_fmadd_ps(scale, acc[i][j], before));
      }
    }
  }

  // dst[j] (= or +=) alpha · Σ_split src[split · stride + j] for j < n, summed in split order.
  static void SumPartials(const float* src, int64_t stride, int64_t splits, int64_t n, float alpha, bool accumulate,
                          float* dst) {
    const __m512 scale = _mm512_set1_ps(alpha);
    for (int64_t j = 0; j < n; j += 16) {
      const __mmask16 valid = Mask16(n - j);
      __m512 sum = LoadValid(src + j, valid);
      for (int64_t split = 1; split < splits; split++) sum = _mm512_add_ps(sum, LoadValid(src + split * stride + j, valid));
      const __m512 before = accumulate ? LoadValid(dst + j, valid) : _mm512_setzero_ps();
      _mm512_mask_storeu_ps(dst + j, valid, _mm512_fmadd_ps(scale, sum, before));
    }
  }
};

// f32 FMA, B [K, N] in any dtype decoded to f32 while packing; A packed as KernelF32 does.
template <int64_t kNvectors>
struct KernelKNF32 : TileKN<float, kNvectors> {
  using TileKN<float, kNvectors>::kNv;
  using TileKN<float, kNvectors>::kNr;
  using Unit = float;
  static constexpr int64_t kStepK = 1;

  static void PackStripSteps(const MatmulArgs& p, const float* a, int64_t m0, int64_t s0, int64_t steps, float* dst) {
    KernelF32::PackStripSteps(p, a, m0, s0, steps, dst);
  }

  // dst[s][j] = B(s0 + s, n + j) as f32, zero for j ≥ cols.
  static void PackGroup(const MatmulArgs& p, const void* b, int64_t b_offset, int64_t n, int64_t cols, int64_t s0,
                        int64_t steps, float* dst) {
    for (int64_t s = 0; s < steps; s++) {
      const int64_t row = b_offset + (s0 + s) * p.n + n;
      for (int j = 0; j < kNv; j++) {
        const __mmask16 valid = Mask16(cols - 16 * j);
        __m512 v;
        if (p.b_dtype == DType::kF32) {
          v = LoadValid(static_cast<const float*>(b) + row + 16 * j, valid);
        } else {
          const __m256i h = LoadValidHalves(static_cast<const uint16_t*>(b) + row + 16 * j, valid);
          v = p.b_dtype == DType::kF16 ? _mm512_cvtph_ps(h)
                                       : _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
        }
        _mm512_store_ps(dst + s * kNr + 16 * j, v);
      }
    }
  }
};

// bf16 B [K, N] with AVX512_BF16: vdpbf16ps on k pairs, A rounded to bf16 pairs as KernelBf16 does.
template <int64_t kNvectors>
struct KernelKNBf16 : TileKN<uint32_t, kNvectors> {
  using TileKN<uint32_t, kNvectors>::kNv;
  using TileKN<uint32_t, kNvectors>::kNr;
  using Unit = uint32_t;
  static constexpr int64_t kStepK = 2;

  static void PackStripSteps(const MatmulArgs& p, const float* a, int64_t m0, int64_t s0, int64_t steps,
                             uint32_t* dst) {
    KernelBf16::PackStripSteps(p, a, m0, s0, steps, dst);
  }

  // dst[s][j] = raw bf16 pair (B(2(s0 + s), n + j), B(2(s0 + s) + 1, n + j)), zero past K and for j ≥ cols.
  static void PackGroup(const MatmulArgs& p, const void* b, int64_t b_offset, int64_t n, int64_t cols, int64_t s0,
                        int64_t steps, uint32_t* dst) {
    const uint16_t* h = static_cast<const uint16_t*>(b) + b_offset;
    for (int64_t s = 0; s < steps; s++) {
      const int64_t k = 2 * (s0 + s);
      const uint16_t* even = h + k * p.n + n;
      const bool has_odd = k + 1 < p.k;
      for (int j = 0; j < kNv; j++) {
        const __mmask16 valid = Mask16(cols - 16 * j);
        const __m512i lo = _mm512_cvtepu16_epi32(LoadValidHalves(even + 16 * j, valid));
        const __m512i hi = has_odd ? _mm512_cvtepu16_epi32(LoadValidHalves(even + p.n + 16 * j, valid))
                                   : _mm512_setzero_si512();
        _mm512_store_si512(dst + s * kNr + 16 * j, _mm512_or_si512(lo, _mm512_slli_epi32(hi, 16)));
      }
    }
  }
};

// The widest tile that N fills: 64 columns, or 32 / 16 for narrow N.
template <template <int64_t> class Kernel>
void GemmKNByWidth(const MatmulArgs& p) {
  if (p.n <= 16) return GemmKN<Kernel<1>>(p);
  if (p.n <= 32) return GemmKN<Kernel<2>>(p);
  GemmKN<Kernel<4>>(p);
}

bool HasAvx512Bf16() {
  static const bool has = __builtin_cpu_supports("avx512bf16");
  return has;
}

}  // namespace

bool HasBf16() { return HasAvx512Bf16(); }

double PeakLoop(bool bf16, int64_t iterations) {
  // 20 independent accumulators cover the FMA latency × throughput product of current cores.
#define LABOR_20(OP) OP(0) OP(1) OP(2) OP(3) OP(4) OP(5) OP(6) OP(7) OP(8) OP(9) OP(10) OP(11) OP(12) OP(13) OP(14) \
  OP(15) OP(16) OP(17) OP(18) OP(19)
#define LABOR_FMA(i) "vfmadd231ps %%zmm30, %%zmm31, %%zmm" #i "\n"
#define LABOR_DP(i) "vdpbf16ps %%zmm30, %%zmm31, %%zmm" #i "\n"
  if (iterations <= 0) return 0;
  int64_t left = iterations;
  if (bf16) {
    __asm__ volatile("vpxord %%zmm30, %%zmm30, %%zmm30\n vpxord %%zmm31, %%zmm31, %%zmm31\n"
                     "1:\n" LABOR_20(LABOR_DP) "dec %0\n jnz 1b\n"
                     : "+r"(left)
                     :
                     : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11",
                       "xmm12", "xmm13", "xmm14", "xmm15", "xmm16", "xmm17", "xmm18", "xmm19", "xmm30", "xmm31", "cc");
    return static_cast<double>(iterations) * 20 * 64;
  }
  __asm__ volatile("vpxord %%zmm30, %%zmm30, %%zmm30\n vpxord %%zmm31, %%zmm31, %%zmm31\n"
                   "1:\n" LABOR_20(LABOR_FMA) "dec %0\n jnz 1b\n"
                   : "+r"(left)
                   :
                   : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11",
                     "xmm12", "xmm13", "xmm14", "xmm15", "xmm16", "xmm17", "xmm18", "xmm19", "xmm30", "xmm31", "cc");
#undef LABOR_20
#undef LABOR_FMA
#undef LABOR_DP
  return static_cast<double>(iterations) * 20 * 32;
}

void Matmul(const MatmulArgs& args) {
  // B stored [K, N] (the backward products) goes to gemm_kn.h, which reads it along n; transB B to
  // gemm_blocked.h, which reads weight rows in place. At most 16 rows of A against a transB weight of any dtype: dot products on gemm_rows_avx512.h.
  if (UseRowDots(args)) return MatmulRowDots(args, HasAvx512Bf16());
  if (args.b_dtype == DType::kBf16 && HasAvx512Bf16()) {
    return args.trans_b ? GemmBlocked<KernelBf16>(args) : GemmKNByWidth<KernelKNBf16>(args);
  }
  if (UseSkinnyF32(args)) return MatmulSkinnyF32(args);
  return args.trans_b ? GemmBlocked<KernelF32>(args) : GemmKNByWidth<KernelKNF32>(args);
}
namespace {

// Attention for a block of 16 consecutive queries of one head, with queries in the vector lanes
// (flash-attention style, online softmax, no Tq × Tk matrix):
//   Qt[d][q]  = q of query t0 + q (transposed once per block; zero for missing queries)
//   S[j][q]   = scale · Σ_d K[j][d] · Qt[d][q]     K[j][d] broadcast straight from the cache rows
//   m[q], l[q]: running max and sum; P[j][q] = exp(S[j][q] − m[q]), −inf (0) outside [start_q, end_q)
//   Ot[d][q] += Σ_j V[j][d] · P[j][q]               V[j][d] broadcast too, 8 values of d at a time
// Keys are visited 16 at a time over the union of the block's ranges; a lane's own range masks the rest.
// Everything is vertical across lanes: no horizontal reductions, no transposes of K or V.
constexpr int64_t kQueryBlock = 16, kKeyStep = 16, kDChunk = 8;

void AttentionBlock(const AttentionArgs& p, int64_t t0, int64_t h, float* qt, float* ot, float* pt) {
  const int64_t hd = p.head_dim, group = p.heads / p.kv_heads, kv_stride = p.kv_heads * hd;
  const int64_t nq = Min64(kQueryBlock, p.queries - t0);
  const float* keys = p.k + (h / group) * hd;
  const float* values = p.v + (h / group) * hd;
  alignas(64) int32_t starts[kQueryBlock], ends[kQueryBlock];
  int64_t lo = INT64_MAX, hi = 0;
  for (int64_t q = 0; q < kQueryBlock; q++) {
    starts[q] = q < nq ? p.key_start[t0 + q] : 0;
    ends[q] = q < nq ? p.key_end[t0 + q] : 0;
    if (ends[q] > starts[q]) {
      lo = Min64(lo, starts[q]);
      hi = hi > ends[q] ? hi : ends[q];
    }
  }
  for (int64_t d = 0; d < hd; d++) {
    for (int64_t q = 0; q < kQueryBlock; q++) qt[d * kQueryBlock + q] = q < nq ? p.q[((t0 + q) * p.heads + h) * hd + d] : 0.0f;
  }
  const int64_t hd_pad = CeilDiv(hd, kDChunk) * kDChunk;
  for (int64_t d = 0; d < hd_pad; d++) _mm512_store_ps(ot + d * kQueryBlock, _mm512_setzero_ps());
  const __m512i start_v = _mm512_load_si512(starts), end_v = _mm512_load_si512(ends);
  const __m512 scale = _mm512_set1_ps(p.scale), minus_inf = _mm512_set1_ps(-INFINITY);
  __m512 m = minus_inf, l = _mm512_setzero_ps();
  for (int64_t j0 = lo; j0 < hi; j0 += kKeyStep) {
    const int64_t count = Min64(kKeyStep, hi - j0);
    const float* key_row[kKeyStep];
    const float* value_row[kKeyStep];
    for (int64_t j = 0; j < kKeyStep; j++) {
      const int64_t key = j0 + (j < count ? j : count - 1);  // past the end: a valid row, masked below
      key_row[j] = keys + key * kv_stride;
      value_row[j] = values + key * kv_stride;
    }
    __m512 scores[kKeyStep];
    for (int64_t j = 0; j < kKeyStep; j++) scores[j] = _mm512_setzero_ps();
    for (int64_t d = 0; d < hd; d++) {
      const __m512 qd = _mm512_load_ps(qt + d * kQueryBlock);
#pragma GCC unroll 6
      for (int64_t j = 0; j < kKeyStep; j++) scores[j] = _mm512_fmadd_ps(_mm512_set1_ps(key_row[j][d]), qd, scores[j]);
    }
    __m512 block_max = minus_inf;
    __mmask16 in_range[kKeyStep];
    for (int64_t j = 0; j < kKeyStep; j++) {
      const __m512i key = _mm512_set1_epi32(static_cast<int>(j0 + j));
      in_range[j] = j < count ? _mm512_cmple_epi32_mask(start_v, key) & _mm512_cmplt_epi32_mask(key, end_v) : 0;
      scores[j] = _mm512_mask_mul_ps(minus_inf, in_range[j], scores[j], scale);
      block_max = _mm512_max_ps(block_max, scores[j]);
    }
    const __m512 m_new = _mm512_max_ps(m, block_max);
    const __mmask16 live = _mm512_cmp_ps_mask(m_new, minus_inf, _CMP_NEQ_OQ);
    const __m512 correction = _mm512_maskz_mov_ps(live, ExpPs(_mm512_sub_ps(m, m_new)));  // 0 while m = −inf
    l = _mm512_mul_ps(l, correction);
    for (int64_t j = 0; j < kKeyStep; j++) {
      const __m512 weight = _mm512_maskz_mov_ps(in_range[j], ExpPs(_mm512_sub_ps(scores[j], m_new)));
      l = _mm512_add_ps(l, weight);
      _mm512_store_ps(pt + j * kQueryBlock, weight);
    }
    m = m_new;
    for (int64_t d0 = 0; d0 < hd_pad; d0 += kDChunk) {
      __m512 acc[kDChunk];
      int64_t offset[kDChunk];
      for (int64_t c = 0; c < kDChunk; c++) {
        acc[c] = _mm512_mul_ps(_mm512_load_ps(ot + (d0 + c) * kQueryBlock), correction);
        offset[c] = d0 + c < hd ? d0 + c : 0;  // padding lanes of Ot read a valid element, never written out
      }
      for (int64_t j = 0; j < kKeyStep; j++) {
        const __m512 weight = _mm512_load_ps(pt + j * kQueryBlock);
#pragma GCC unroll 8
        for (int64_t c = 0; c < kDChunk; c++) acc[c] = _mm512_fmadd_ps(_mm512_set1_ps(value_row[j][offset[c]]), weight, acc[c]);
      }
      for (int64_t c = 0; c < kDChunk; c++) _mm512_store_ps(ot + (d0 + c) * kQueryBlock, acc[c]);
    }
  }
  alignas(64) float inv[kQueryBlock], m_out[kQueryBlock], l_out[kQueryBlock];
  const __mmask16 positive = _mm512_cmp_ps_mask(l, _mm512_setzero_ps(), _CMP_GT_OQ);
  _mm512_store_ps(inv, _mm512_maskz_div_ps(positive, _mm512_set1_ps(1.0f), l));  // empty range → zeros
  _mm512_store_ps(m_out, m);
  _mm512_store_ps(l_out, l);
  for (int64_t q = 0; q < nq; q++) {
    float* out = p.out + ((t0 + q) * p.heads + h) * hd;
    for (int64_t d = 0; d < hd; d++) out[d] = ot[d * kQueryBlock + q] * inv[q];
    if (p.lse != nullptr) p.lse[(t0 + q) * p.heads + h] = l_out[q] > 0 ? m_out[q] + logf(l_out[q]) : -INFINITY;
  }
}

}  // namespace

void Attention(const AttentionArgs& p) {
  const int64_t blocks = CeilDiv(p.queries, kQueryBlock);
  const int64_t hd_pad = CeilDiv(p.head_dim, kDChunk) * kDChunk;
  ParallelFor(blocks * p.heads, [&](int64_t begin, int64_t end) {
    float* scratch = static_cast<float*>(ThreadScratch(0, sizeof(float) * kQueryBlock * (2 * hd_pad + kKeyStep)));
    float* qt = scratch;
    float* ot = qt + hd_pad * kQueryBlock;
    float* pt = ot + hd_pad * kQueryBlock;
    for (int64_t task = begin; task < end; task++) AttentionBlock(p, (task / p.heads) * kQueryBlock, task % p.heads, qt, ot, pt);
  });
}

// ---- forward elementwise ops (same math as the scalar references in ops_scalar.cc) ----

namespace {

// step(j, valid) for the vectors of 16 of [0, n), in order: whole vectors with `valid` all ones, a constant
// under which LoadValid is a plain load and masked operations plain ones (see LoadValid), then the partial one.
template <class Step>
inline void ForVectors(int64_t n, const Step& step) {
  int64_t j = 0;
  for (; j + 16 <= n; j += 16) step(j, static_cast<__mmask16>(0xffff));
  if (j < n) step(j, Mask16(n - j));
}

// 16 weights as f32 (bf16/f16 decode exactly), zero past `valid`.
inline __m512 LoadWeights(const void* weight, DType dtype, int64_t offset, __mmask16 valid) {
  switch (dtype) {
    case DType::kBf16: {
      const __m256i raw = LoadValidHalves(static_cast<const uint16_t*>(weight) + offset, valid);
      return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(raw), 16));
    }
    case DType::kF16:
      return _mm512_cvtph_ps(LoadValidHalves(static_cast<const uint16_t*>(weight) + offset, valid));
    case DType::kF32: break;
  }
  return LoadValid(static_cast<const float*>(weight) + offset, valid);
}

// log Σ_j exp(z_j) = mx + log Σ_j exp(z_j − mx); the sum in f64 lanes. An all −inf row gives −inf.
float LogSumExpRow(const float* z, int64_t vocab) {
  __m512 mx = _mm512_set1_ps(-INFINITY);
  ForVectors(vocab, [&](int64_t j, __mmask16 valid) { mx = _mm512_mask_max_ps(mx, valid, mx, LoadValid(z + j, valid)); });
  const float row_max = _mm512_reduce_max_ps(mx);
  if (row_max == -INFINITY) return -INFINITY;
  const __m512 shift = _mm512_set1_ps(row_max);
  __m512d sum0 = _mm512_setzero_pd(), sum1 = _mm512_setzero_pd();
  ForVectors(vocab, [&](int64_t j, __mmask16 valid) {
    const __m512 e = _mm512_maskz_mov_ps(valid, ExpPs(_mm512_sub_ps(LoadValid(z + j, valid), shift)));
    sum0 = _mm512_add_pd(sum0, _mm512_cvtps_pd(_mm512_castps512_ps256(e)));
    sum1 = _mm512_add_pd(sum1, _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(e), 1))));
  });
  return static_cast<float>(row_max + log(_mm512_reduce_add_pd(_mm512_add_pd(sum0, sum1))));
}

}  // namespace

void RmsNorm(const float* x, const void* weight, DType weight_dtype, float* out, int64_t rows, int64_t dim,
             float eps) {
  ParallelFor(rows, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; r++) {
      const float* xr = x + r * dim;
      __m512d sum0 = _mm512_setzero_pd(), sum1 = _mm512_setzero_pd();
      ForVectors(dim, [&](int64_t d, __mmask16 valid) {
        const __m512 v = LoadValid(xr + d, valid);
        const __m512d lo = _mm512_cvtps_pd(_mm512_castps512_ps256(v));
        const __m512d hi = _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
        sum0 = _mm512_fmadd_pd(lo, lo, sum0);
        sum1 = _mm512_fmadd_pd(hi, hi, sum1);
      });
      const double sum_squares = _mm512_reduce_add_pd(_mm512_add_pd(sum0, sum1));
      const float mean = dim > 0 ? static_cast<float>(sum_squares / static_cast<double>(dim)) : 0.0f;
      const __m512 inv_rms = _mm512_set1_ps(1.0f / sqrtf(mean + eps));
      ForVectors(dim, [&](int64_t d, __mmask16 valid) {
        const __m512 v = _mm512_mul_ps(LoadValid(xr + d, valid), inv_rms);
        _mm512_mask_storeu_ps(out + r * dim + d, valid, _mm512_mul_ps(v, LoadWeights(weight, weight_dtype, d, valid)));
      });
    }
  });
}

// out = silu(g)·u with silu(g) = g / (1 + exp(−g)). Whole vectors use plain loads: with a zero-masking load
// on every vector (the mask all ones but for the tail) this loop ran at a third of the rate on the Zen 5
// (2048×1376: 460 against 1,440 calls/s), slower than the AVX2 path; only the tail is masked.
void Swiglu(const float* gate, const float* up, float* out, int64_t count) {
  const auto silu_times_up = [](__m512 g, __m512 u) {
    const __m512 one = _mm512_set1_ps(1.0f);
    return _mm512_mul_ps(_mm512_div_ps(g, _mm512_add_ps(one, ExpPs(_mm512_sub_ps(_mm512_setzero_ps(), g)))), u);
  };
  ParallelForElements(count, [&](int64_t begin, int64_t end) {
    int64_t i = begin;
    for (; i + 16 <= end; i += 16) _mm512_storeu_ps(out + i, silu_times_up(_mm512_loadu_ps(gate + i), _mm512_loadu_ps(up + i)));
    if (i < end) {
      const __mmask16 valid = Mask16(end - i);
      _mm512_mask_storeu_ps(out + i, valid, silu_times_up(_mm512_maskz_loadu_ps(valid, gate + i), _mm512_maskz_loadu_ps(valid, up + i)));
    }
  });
}

void LogSoftmax(const float* logits, float* out, int64_t rows, int64_t vocab) {
  ParallelFor(rows, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; r++) {
      const __m512 lse = _mm512_set1_ps(LogSumExpRow(logits + r * vocab, vocab));
      ForVectors(vocab, [&](int64_t j, __mmask16 valid) {
        _mm512_mask_storeu_ps(out + r * vocab + j, valid, _mm512_sub_ps(LoadValid(logits + r * vocab + j, valid), lse));
      });
    }
  });
}

// Only the target's log-probability and the normaliser: the normalised row is never written.
void LogSoftmaxGather(const float* logits, const int32_t* targets, float* out, int64_t rows, int64_t vocab) {
  ParallelFor(rows, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; r++) {
      out[r] = targets[r] < 0 ? NAN : logits[r * vocab + targets[r]] - LogSumExpRow(logits + r * vocab, vocab);
    }
  });
}

}  // namespace labor::cpu::avx512
