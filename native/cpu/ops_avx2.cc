// AVX2 + FMA (+ F16C) path: the blocked GEMM of gemm_blocked.h with a 4 × 24 register tile of Cᵀ for
// transB products (f32 weights read in place; bf16/f16 weights widened in registers while packing a panel:
// bf16 by a 16-bit shift, f16 by F16C), gemm_kn.h's 6 × 16 tile of out (12 × 8 for narrow N) for B stored
// [K, N] (the backward products), gemm_skinny_avx2.h for N ≤ 16 (LoRA's rank-r products), gemm_rows_avx2.h
// for M ≤ 16 transB products (scoring a few rows against a weight, read in place); attention on
// blocks of 8 queries held in the vector lanes; vectorised RMSNorm, SwiGLU and log-softmax. Every B dtype is
// multiplied in f32 (bf16/f16 decode exactly).
#include <immintrin.h>
#include <math.h>

#include <cstring>

#include "cpu/gemm_blocked.h"
#include "cpu/gemm_kn.h"
#include "cpu/gemm_rows_avx2.h"
#include "cpu/gemm_skinny_avx2.h"
#include "cpu/numeric.h"
#include "cpu/ops.h"
#include "cpu/vec_avx2.h"

namespace labor::cpu::avx2 {
namespace {

// 8×8 transpose of f32: r[i] lane j ↔ r[j] lane i.
inline void Transpose8(__m256 r[8]) {
  __m256 t[8], u[8];
  for (int i = 0; i < 4; i++) {
    t[2 * i] = _mm256_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm256_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
  // u[4g + c]: within each 128-bit half, element c of rows 4g … 4g + 3.
  for (int g = 0; g < 2; g++) {
    u[4 * g + 0] = _mm256_shuffle_ps(t[4 * g], t[4 * g + 2], 0x44);
    u[4 * g + 1] = _mm256_shuffle_ps(t[4 * g], t[4 * g + 2], 0xee);
    u[4 * g + 2] = _mm256_shuffle_ps(t[4 * g + 1], t[4 * g + 3], 0x44);
    u[4 * g + 3] = _mm256_shuffle_ps(t[4 * g + 1], t[4 * g + 3], 0xee);
  }
  for (int c = 0; c < 4; c++) {
    r[c] = _mm256_permute2f128_ps(u[c], u[4 + c], 0x20);
    r[4 + c] = _mm256_permute2f128_ps(u[c], u[4 + c], 0x31);
  }
}

// 8 bf16 → f32: the bf16 is the top half of the f32, so zero-extend to 32 bits and shift left by 16.
inline __m256 WidenBf16(__m128i h) { return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16)); }

// Elements [index, index + valid) of b (valid ≤ 8) as f32, zero past valid: bf16 widened by the shift above,
// f16 by F16C (both exact). 16-bit tails have no masked load: they go through a zeroed copy.
inline __m256 LoadWidened(const void* b, DType dtype, int64_t index, int64_t valid) {
  if (dtype == DType::kF32) {
    const float* src = static_cast<const float*>(b) + index;
    return valid >= 8 ? _mm256_loadu_ps(src) : _mm256_maskload_ps(src, VecTailMask(valid));
  }
  const uint16_t* src = static_cast<const uint16_t*>(b) + index;
  __m128i h;
  if (valid >= 8) {
    h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src));
  } else {
    alignas(16) uint16_t copy[8] = {};
    std::memcpy(copy, src, sizeof(uint16_t) * static_cast<size_t>(valid > 0 ? valid : 0));
    h = _mm_load_si128(reinterpret_cast<const __m128i*>(copy));
  }
  return dtype == DType::kF16 ? _mm256_cvtph_ps(h) : WidenBf16(h);
}

inline float LoadElement(const void* b, DType dtype, int64_t index) {
  switch (dtype) {
    case DType::kBf16: return Bf16ToFloat(static_cast<const uint16_t*>(b)[index]);
    case DType::kF16: return F16ToFloat(static_cast<const uint16_t*>(b)[index]);
    case DType::kF32: break;
  }
  return static_cast<const float*>(b)[index];
}

// Ap of 24 rows of A from m0 over steps [s0, s0 + steps): dst[s][i] = A(m0 + i, s0 + s), zero past M. Row-major
// A goes through 8×8 transposes (8 rows × 8 k at a time); A stored [K, M] is copied row by row.
constexpr int64_t kStripRows = 24;

void PackStripSteps(const MatmulArgs& p, const float* a, int64_t m0, int64_t s0, int64_t steps, float* dst) {
  if (p.trans_a) {
    for (int64_t s = 0; s < steps; s++) {
      const float* src = a + (s0 + s) * p.m + m0;
      for (int j = 0; j < 3; j++) {
        const int64_t valid = p.m - m0 - 8 * j;
        const __m256 v = valid >= 8 ? _mm256_loadu_ps(src + 8 * j)
                                    : valid > 0 ? _mm256_maskload_ps(src + 8 * j, VecTailMask(valid)) : _mm256_setzero_ps();
        _mm256_store_ps(dst + s * kStripRows + 8 * j, v);
      }
    }
    return;
  }
  for (int64_t u0 = 0; u0 < steps; u0 += 8) {
    const int64_t valid_k = Min64(8, steps - u0);
    const __m256i k_mask = VecTailMask(valid_k);
    for (int j = 0; j < 3; j++) {
      __m256 rows[8];
      for (int i = 0; i < 8; i++) {
        const int64_t m = m0 + 8 * j + i;
        const float* src = a + m * p.k + s0 + u0;
        rows[i] = m >= p.m ? _mm256_setzero_ps() : valid_k == 8 ? _mm256_loadu_ps(src) : _mm256_maskload_ps(src, k_mask);
      }
      Transpose8(rows);
      for (int64_t u = 0; u < valid_k; u++) _mm256_store_ps(dst + (u0 + u) * kStripRows + 8 * j, rows[u]);
    }
  }
}

// The blocked GEMM of gemm_blocked.h with a 4 × 24 register tile of Cᵀ (12 ymm accumulators, 3 for the
// A row vectors, 1 broadcast).
struct KernelF32 {
  using Unit = float;
  static constexpr int64_t kNr = 4, kMs = kStripRows, kStepK = 1, kStripsPerBlock = 8, kStripsPerBlockSmallB = 2, kNb = 64, kStepsPerChunk = 256;

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

  static void PackStrip(const MatmulArgs& p, const float* a, int64_t strip, float* dst) {
    PackStripSteps(p, a, strip * kMs, 0, p.k, dst);
  }

  // dst[s][r] = B(s0 + s, n + r) as f32, zero for r ≥ rows. A full group of transB rows (a bf16 or f16
  // weight: f32 ones are read in place) is widened 8 k at a time per row and transposed 4 × 8 in registers;
  // the rest (a partial last group, the K tail) element by element.
  static void PackPanel(const MatmulArgs& p, const void* b, int64_t b_offset, int64_t n, int64_t rows, int64_t s0,
                        int64_t steps, float* dst) {
    int64_t s = 0;
    if (p.trans_b && rows == kNr) {
      for (; s + 8 <= steps; s += 8) {
        __m256 r[kNr];
        for (int i = 0; i < kNr; i++) r[i] = LoadWidened(b, p.b_dtype, b_offset + (n + i) * p.k + s0 + s, 8);
        // t0 = (r0₀ r1₀ r0₁ r1₁ | r0₄ r1₄ r0₅ r1₅) …, then u0 = (r0₀ r1₀ r2₀ r3₀ | r0₄ … r3₄): steps s and s + 4.
        const __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
        const __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
        const __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xee);
        const __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xee);
        float* out = dst + s * kNr;
        _mm256_storeu_ps(out, _mm256_permute2f128_ps(u0, u1, 0x20));
        _mm256_storeu_ps(out + 8, _mm256_permute2f128_ps(u2, u3, 0x20));
        _mm256_storeu_ps(out + 16, _mm256_permute2f128_ps(u0, u1, 0x31));
        _mm256_storeu_ps(out + 24, _mm256_permute2f128_ps(u2, u3, 0x31));
      }
    }
    for (; s < steps; s++) {
      const int64_t k = s0 + s;
      for (int64_t r = 0; r < kNr; r++) {
        dst[s * kNr + r] =
            r < rows ? LoadElement(b, p.b_dtype, b_offset + (p.trans_b ? (n + r) * p.k + k : k * p.n + n + r)) : 0.0f;
      }
    }
  }

  // out[i][j] (+)= alpha · ct[j][i], 8 × 8 blocks transposed in registers (ct_stride is a multiple of 8).
  static void WriteBack(const MatmulArgs& p, const float* ct, int64_t ct_stride, float* out, int64_t rows,
                        int64_t cols) {
    const __m256 alpha = _mm256_set1_ps(p.alpha);
    for (int64_t j0 = 0; j0 < cols; j0 += 8) {
      const int64_t valid = cols - j0;
      const __m256i mask = VecTailMask(valid < 8 ? valid : 8);
      for (int64_t i0 = 0; i0 < rows; i0 += 8) {
        __m256 block[8];
        // Rows of ct past `cols` hold padding (or stale values): read row 0 instead, never stored.
        for (int64_t j = 0; j < 8; j++) block[j] = _mm256_loadu_ps(ct + (j0 + j < cols ? j0 + j : 0) * ct_stride + i0);
        Transpose8(block);
        for (int64_t i = 0; i < 8 && i0 + i < rows; i++) {
          float* dst = out + (i0 + i) * p.n + j0;
          __m256 product = _mm256_mul_ps(alpha, block[i]);
          if (valid >= 8) {
            if (p.accumulate) product = _mm256_add_ps(_mm256_loadu_ps(dst), product);
            _mm256_storeu_ps(dst, product);
          } else {
            if (p.accumulate) product = _mm256_add_ps(_mm256_maskload_ps(dst, mask), product);
            _mm256_maskstore_ps(dst, mask, product);
          }
        }
      }
    }
  }
};

// The [K, N] kernel of gemm_kn.h (B not transposed): tiles of kNv vectors of 8 columns × 12 / kNv rows of
// out (12 accumulators, kNv B vectors and a broadcast: ≤ 15 of the 16 ymm registers), B loaded along n, A
// broadcast from the 24-row strips packed as above. kNv = 2 (6 × 16, the classic AVX2 shape) unless N ≤ 8.
// B in any dtype is widened to f32 while packing its group.
template <int64_t kNvectors>
struct KernelKN {
  using Unit = float;
  static constexpr int64_t kStepK = 1, kMs = kStripRows, kNv = kNvectors, kMr = 12 / kNv, kNr = 8 * kNv;
  static constexpr int64_t kStripsPerBlock = 8, kNb = 128, kStepsPerChunk = 128;

  static void PackStripSteps(const MatmulArgs& p, const float* a, int64_t m0, int64_t s0, int64_t steps, float* dst) {
    avx2::PackStripSteps(p, a, m0, s0, steps, dst);
  }

  // dst[s][j] = B(s0 + s, n + j) as f32, zero for j ≥ cols.
  static void PackGroup(const MatmulArgs& p, const void* b, int64_t b_offset, int64_t n, int64_t cols, int64_t s0,
                        int64_t steps, float* dst) {
    for (int64_t s = 0; s < steps; s++) {
      const int64_t row = b_offset + (s0 + s) * p.n + n;
      for (int j = 0; j < kNv; j++) {
        const int64_t valid = cols - 8 * j;
        _mm256_store_ps(dst + s * kNr + 8 * j, valid > 0 ? LoadWidened(b, p.b_dtype, row + 8 * j, valid) : _mm256_setzero_ps());
      }
    }
  }

  // c[i][j] = (load ? c[i][j] : 0) + alpha · Σ_s Ap[s][i]·Bp[s][j] for i < rows, j < cols.
  static void Tile(const float* ap, const float* bp, int64_t steps, float* c, int64_t ldc, int64_t rows, int64_t cols,
                   float alpha, bool load) {
    __m256 acc[kMr][kNv];
    for (int i = 0; i < kMr; i++) {
      for (int j = 0; j < kNv; j++) acc[i][j] = _mm256_setzero_ps();
    }
    for (int64_t s = 0; s < steps; s++, ap += kMs, bp += kNr) {
      __m256 bv[kNv];
      for (int j = 0; j < kNv; j++) bv[j] = _mm256_load_ps(bp + 8 * j);
#pragma GCC unroll 12
      for (int i = 0; i < kMr; i++) {
        const __m256 x = _mm256_broadcast_ss(ap + i);
        for (int j = 0; j < kNv; j++) acc[i][j] = _mm256_fmadd_ps(x, bv[j], acc[i][j]);
      }
    }
    const __m256 scale = _mm256_set1_ps(alpha);
    for (int i = 0; i < kMr; i++) {
      if (i >= rows) break;
      for (int j = 0; j < kNv; j++) StoreScaled(c + i * ldc + 8 * j, cols - 8 * j, scale, acc[i][j], load);
    }
  }

  // dst[j] (= or +=) alpha · Σ_split src[split · stride + j] for j < n, summed in split order.
  static void SumPartials(const float* src, int64_t stride, int64_t splits, int64_t n, float alpha, bool accumulate,
                          float* dst) {
    const __m256 scale = _mm256_set1_ps(alpha);
    for (int64_t j = 0; j < n; j += 8) {
      const int64_t valid = n - j;
      __m256 sum = LoadWidened(src, DType::kF32, j, valid);
      for (int64_t split = 1; split < splits; split++) sum = _mm256_add_ps(sum, LoadWidened(src, DType::kF32, split * stride + j, valid));
      StoreScaled(dst + j, valid, scale, sum, accumulate);
    }
  }

  // dst[0:valid] = scale·v (+ dst when load), valid clipped to 8; nothing when valid ≤ 0.
  static void StoreScaled(float* dst, int64_t valid, __m256 scale, __m256 v, bool load) {
    if (valid >= 8) {
      _mm256_storeu_ps(dst, load ? _mm256_fmadd_ps(scale, v, _mm256_loadu_ps(dst)) : _mm256_mul_ps(scale, v));
    } else if (valid > 0) {
      const __m256i mask = VecTailMask(valid);
      _mm256_maskstore_ps(dst, mask, load ? _mm256_fmadd_ps(scale, v, _mm256_maskload_ps(dst, mask)) : _mm256_mul_ps(scale, v));
    }
  }
};

}  // namespace

void Matmul(const MatmulArgs& args) {
  // N ≤ 16 with f32 B (LoRA's rank-r products) to gemm_skinny_avx2.h; transB B to gemm_blocked.h, which reads
  // f32 weight rows in place; B stored [K, N] (the backward products) to gemm_kn.h, which reads it along n.
  // At most 16 rows of A against a transB weight of any dtype: dot products on gemm_rows_avx2.h.
  if (UseSkinnyF32(args)) return MatmulSkinnyF32(args);
  if (UseRowDots(args)) return MatmulRowDots(args);
  if (args.trans_b) return GemmBlocked<KernelF32>(args);
  if (args.n <= 8) return GemmKN<KernelKN<1>>(args);
  GemmKN<KernelKN<2>>(args);
}

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

namespace {

// Attention for a block of 8 consecutive queries of one head, with queries in the vector lanes (the AVX-512
// kernel's method at 8 lanes: flash-attention style, online softmax, no Tq × Tk matrix):
//   Qt[d][q]  = q of query t0 + q (transposed once per block; zero for missing queries)
//   S[j][q]   = scale · Σ_d K[j][d] · Qt[d][q]     K[j][d] broadcast straight from the cache rows
//   m[q], l[q]: running max and sum; P[j][q] = exp(S[j][q] − m[q]), 0 outside [start_q, end_q)
//   Ot[d][q] += Σ_j V[j][d] · P[j][q]               V[j][d] broadcast too, 8 values of d at a time
// Keys are visited 8 at a time over the union of the block's ranges; a lane's own range masks the rest.
// Everything is vertical across lanes: no horizontal reductions, no transposes of K or V.
constexpr int64_t kQueryBlock = 8, kKeyStep = 8, kDChunk = 8;

void AttentionBlock(const AttentionArgs& p, int64_t t0, int64_t h, float* qt, float* ot, float* pt) {
  const int64_t hd = p.head_dim, group = p.heads / p.kv_heads, kv_stride = p.kv_heads * hd;
  const int64_t nq = Min64(kQueryBlock, p.queries - t0);
  const float* keys = p.k + (h / group) * hd;
  const float* values = p.v + (h / group) * hd;
  alignas(32) int32_t starts[kQueryBlock], ends[kQueryBlock];
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
  for (int64_t d = 0; d < hd_pad; d++) _mm256_store_ps(ot + d * kQueryBlock, _mm256_setzero_ps());
  const __m256i start_v = _mm256_load_si256(reinterpret_cast<const __m256i*>(starts));
  const __m256i end_v = _mm256_load_si256(reinterpret_cast<const __m256i*>(ends));
  const __m256 scale = _mm256_set1_ps(p.scale), minus_inf = _mm256_set1_ps(-INFINITY);
  __m256 m = minus_inf, l = _mm256_setzero_ps();
  for (int64_t j0 = lo; j0 < hi; j0 += kKeyStep) {
    const int64_t count = Min64(kKeyStep, hi - j0);
    const float* key_row[kKeyStep];
    const float* value_row[kKeyStep];
    for (int64_t j = 0; j < kKeyStep; j++) {
      const int64_t key = j0 + (j < count ? j : count - 1);  // past the end: a valid row, masked below
      key_row[j] = keys + key * kv_stride;
      value_row[j] = values + key * kv_stride;
    }
    __m256 scores[kKeyStep];
    for (int64_t j = 0; j < kKeyStep; j++) scores[j] = _mm256_setzero_ps();
    for (int64_t d = 0; d < hd; d++) {
      const __m256 qd = _mm256_load_ps(qt + d * kQueryBlock);
#pragma GCC unroll 8
      for (int64_t j = 0; j < kKeyStep; j++) scores[j] = _mm256_fmadd_ps(_mm256_broadcast_ss(key_row[j] + d), qd, scores[j]);
    }
    __m256 block_max = minus_inf;
    __m256 in_range[kKeyStep];
    for (int64_t j = 0; j < kKeyStep; j++) {
      // start ≤ key < end  ⟺  ¬(start > key) ∧ end > key
      const __m256i key = _mm256_set1_epi32(static_cast<int>(j0 + j));
      in_range[j] = j < count ? _mm256_castsi256_ps(_mm256_andnot_si256(_mm256_cmpgt_epi32(start_v, key), _mm256_cmpgt_epi32(end_v, key)))
                              : _mm256_setzero_ps();
      scores[j] = _mm256_blendv_ps(minus_inf, _mm256_mul_ps(scores[j], scale), in_range[j]);
      block_max = _mm256_max_ps(block_max, scores[j]);
    }
    const __m256 m_new = _mm256_max_ps(m, block_max);
    const __m256 live = _mm256_cmp_ps(m_new, minus_inf, _CMP_NEQ_OQ);
    const __m256 correction = _mm256_and_ps(live, ExpPs(_mm256_sub_ps(m, m_new)));  // 0 while m = −inf
    l = _mm256_mul_ps(l, correction);
    for (int64_t j = 0; j < kKeyStep; j++) {
      const __m256 weight = _mm256_and_ps(in_range[j], ExpPs(_mm256_sub_ps(scores[j], m_new)));
      l = _mm256_add_ps(l, weight);
      _mm256_store_ps(pt + j * kQueryBlock, weight);
    }
    m = m_new;
    for (int64_t d0 = 0; d0 < hd_pad; d0 += kDChunk) {
      __m256 acc[kDChunk];
      int64_t offset[kDChunk];
      for (int64_t c = 0; c < kDChunk; c++) {
        acc[c] = _mm256_mul_ps(_mm256_load_ps(ot + (d0 + c) * kQueryBlock), correction);
        offset[c] = d0 + c < hd ? d0 + c : 0;  // padding lanes of Ot read a valid element, never written out
      }
      for (int64_t j = 0; j < kKeyStep; j++) {
        const __m256 weight = _mm256_load_ps(pt + j * kQueryBlock);
#pragma GCC unroll 8
        for (int64_t c = 0; c < kDChunk; c++) acc[c] = _mm256_fmadd_ps(_mm256_broadcast_ss(value_row[j] + offset[c]), weight, acc[c]);
      }
      for (int64_t c = 0; c < kDChunk; c++) _mm256_store_ps(ot + (d0 + c) * kQueryBlock, acc[c]);
    }
  }
  alignas(32) float inv[kQueryBlock], m_out[kQueryBlock], l_out[kQueryBlock];
  const __m256 positive = _mm256_cmp_ps(l, _mm256_setzero_ps(), _CMP_GT_OQ);
  _mm256_store_ps(inv, _mm256_and_ps(positive, _mm256_div_ps(_mm256_set1_ps(1.0f), l)));  // empty range → zeros
  _mm256_store_ps(m_out, m);
  _mm256_store_ps(l_out, l);
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

// Weights [offset, offset + valid) as f32 (bf16/f16 decode exactly), zero past valid.
inline __m256 LoadWeights(const void* weight, DType dtype, int64_t offset, int64_t valid) {
  return LoadWidened(weight, dtype, offset, valid);
}

// x[0:valid] with zeros past valid (valid clipped to 8).
inline __m256 LoadTail(const float* x, int64_t valid) {
  return valid >= 8 ? _mm256_loadu_ps(x) : _mm256_maskload_ps(x, VecTailMask(valid));
}

inline void StoreTail(float* x, int64_t valid, __m256 v) {
  if (valid >= 8) {
    _mm256_storeu_ps(x, v);
  } else {
    _mm256_maskstore_ps(x, VecTailMask(valid), v);
  }
}

// Σ of the 8 lanes of v widened to f64, added into (sum0, sum1).
inline void AddWidened(__m256 v, __m256d* sum0, __m256d* sum1) {
  *sum0 = _mm256_add_pd(*sum0, _mm256_cvtps_pd(_mm256_castps256_ps128(v)));
  *sum1 = _mm256_add_pd(*sum1, _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)));
}

inline double HorizontalSumPd(__m256d v) {
  __m128d s = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
  return _mm_cvtsd_f64(_mm_add_sd(s, _mm_unpackhi_pd(s, s)));
}

// log Σ_j exp(z_j) = mx + log Σ_j exp(z_j − mx); the sum in f64 lanes. An all −inf row gives −inf.
float LogSumExpRow(const float* z, int64_t vocab) {
  const float row_max = Vec::Max(z, vocab);
  if (row_max == -INFINITY) return -INFINITY;
  const __m256 shift = _mm256_set1_ps(row_max);
  __m256d sum0 = _mm256_setzero_pd(), sum1 = _mm256_setzero_pd();
  for (int64_t j = 0; j < vocab; j += 8) {
    const int64_t valid = vocab - j;
    __m256 e = ExpPs(_mm256_sub_ps(LoadTail(z + j, valid), shift));
    if (valid < 8) e = _mm256_and_ps(e, _mm256_castsi256_ps(VecTailMask(valid)));
    AddWidened(e, &sum0, &sum1);
  }
  return static_cast<float>(row_max + log(HorizontalSumPd(_mm256_add_pd(sum0, sum1))));
}

}  // namespace

void RmsNorm(const float* x, const void* weight, DType weight_dtype, float* out, int64_t rows, int64_t dim,
             float eps) {
  ParallelFor(rows, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; r++) {
      const float* xr = x + r * dim;
      // Σ x² in f64 lanes, as the scalar reference sums in double.
      __m256d sum0 = _mm256_setzero_pd(), sum1 = _mm256_setzero_pd();
      for (int64_t d = 0; d < dim; d += 8) {
        const __m256 v = LoadTail(xr + d, dim - d);
        const __m256d lo = _mm256_cvtps_pd(_mm256_castps256_ps128(v)), hi = _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1));
        sum0 = _mm256_fmadd_pd(lo, lo, sum0);
        sum1 = _mm256_fmadd_pd(hi, hi, sum1);
      }
      const double sum_squares = HorizontalSumPd(_mm256_add_pd(sum0, sum1));
      const float mean = dim > 0 ? static_cast<float>(sum_squares / static_cast<double>(dim)) : 0.0f;
      const __m256 inv_rms = _mm256_set1_ps(1.0f / sqrtf(mean + eps));
      for (int64_t d = 0; d < dim; d += 8) {
        const __m256 v = _mm256_mul_ps(LoadTail(xr + d, dim - d), inv_rms);
        StoreTail(out + r * dim + d, dim - d, _mm256_mul_ps(v, LoadWeights(weight, weight_dtype, d, dim - d)));
      }
    }
  });
}

// silu(g)·u with silu(g) = g / (1 + exp(−g)).
void Swiglu(const float* gate, const float* up, float* out, int64_t count) {
  ParallelForElements(count, [&](int64_t begin, int64_t end) {
    const __m256 one = _mm256_set1_ps(1.0f);
    for (int64_t i = begin; i < end; i += 8) {
      const int64_t valid = end - i;
      const __m256 g = LoadTail(gate + i, valid);
      const __m256 silu = _mm256_div_ps(g, _mm256_add_ps(one, ExpPs(_mm256_sub_ps(_mm256_setzero_ps(), g))));
      StoreTail(out + i, valid, _mm256_mul_ps(silu, LoadTail(up + i, valid)));
    }
  });
}

void LogSoftmax(const float* logits, float* out, int64_t rows, int64_t vocab) {
  ParallelFor(rows, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; r++) {
      const __m256 lse = _mm256_set1_ps(LogSumExpRow(logits + r * vocab, vocab));
      for (int64_t j = 0; j < vocab; j += 8) {
        StoreTail(out + r * vocab + j, vocab - j, _mm256_sub_ps(LoadTail(logits + r * vocab + j, vocab - j), lse));
      }
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

}  // namespace labor::cpu::avx2
