// Blocked f32 GEMM driver shared by the AVX2 and AVX-512 paths (each TU instantiates it with its own
// register microkernel; internal linkage as in numeric.h).
//
// out[M,N] (+)= op(A)·op(B) is cut into tasks of kMc rows × kNc columns (per batch item) spread over the
// thread pool. Inside a task, K goes in steps of kKc: a kKc × kNc panel of B is decoded to f32 (bf16/f16
// → f32 is exact) and packed as column strips of Kernel::kNr, the kMc × kKc block of A as row strips of
// Kernel::kMr, both zero-padded, so the microkernel reads both operands contiguously and never needs a
// tail case. Panels are sized for L2 (kKc·kNc·4 = 256 KiB of B).
//
// Kernel provides:
//   kMr, kNr                                   register tile (rows of A × columns of B)
//   Micro(ap, bp, kc, c)                       c[kMr][kNr] = Σ_k ap[k][0..kMr) ⊗ bp[k][0..kNr)
//   DecodeRow(src, dtype, offset, count, dst)  dst[i] = f32(src[offset + i])
#pragma once
#include <cstdint>

#include "cpu/buffer.h"
#include "cpu/ops.h"
#include "cpu/thread_pool.h"

namespace labor::cpu {
namespace {

constexpr int64_t kMc = 96;   // multiple of both kernels' kMr (6, 8) … 96 = 16·6 = 12·8
constexpr int64_t kNc = 256;  // multiple of kNr (16, 32)
constexpr int64_t kKc = 256;

inline int64_t RoundUp(int64_t value, int64_t multiple) { return (value + multiple - 1) / multiple * multiple; }
inline int64_t MinI64(int64_t a, int64_t b) { return a < b ? a : b; }

// Bp[q][k][c] = B(k0 + k, n0 + q·kNr + c) as f32, zero for columns ≥ nc.
template <class Kernel>
void PackB(const MatmulArgs& p, int64_t b_offset, int64_t k0, int64_t kc, int64_t n0, int64_t nc,
           float* bp, float* row) {
  constexpr int64_t nr = Kernel::kNr;
  const int64_t nc_pad = RoundUp(nc, nr);
  if (p.trans_b) {
    // b is [N, K]: column j of B is row n0 + j of b, contiguous in k.
    for (int64_t j = 0; j < nc_pad; j++) {
      float* strip = bp + (j / nr) * nr * kc + j % nr;
      if (j < nc) {
        Kernel::DecodeRow(p.b, p.b_dtype, b_offset + (n0 + j) * p.k + k0, kc, row);
        for (int64_t k = 0; k < kc; k++) strip[k * nr] = row[k];
      } else {
        for (int64_t k = 0; k < kc; k++) strip[k * nr] = 0;
      }
    }
  } else {
    // b is [K, N]: row k0 + k of B is contiguous in n.
    for (int64_t k = 0; k < kc; k++) {
      Kernel::DecodeRow(p.b, p.b_dtype, b_offset + (k0 + k) * p.n + n0, nc, row);
      for (int64_t j = nc; j < nc_pad; j++) row[j] = 0;
      for (int64_t q = 0; q < nc_pad / nr; q++) {
        float* dst = bp + q * nr * kc + k * nr;
        for (int64_t c = 0; c < nr; c++) dst[c] = row[q * nr + c];
      }
    }
  }
}

// Ap[s][k][r] = A(m0 + s·kMr + r, k0 + k), zero for rows ≥ mc.
template <class Kernel>
void PackA(const MatmulArgs& p, const float* a, int64_t m0, int64_t mc, int64_t k0, int64_t kc, float* ap) {
  constexpr int64_t mr = Kernel::kMr;
  const int64_t mc_pad = RoundUp(mc, mr);
  if (p.trans_a) {
    // a is [K, M]: contiguous in m.
    for (int64_t k = 0; k < kc; k++) {
      const float* src = a + (k0 + k) * p.m + m0;
      for (int64_t i = 0; i < mc_pad; i++) ap[(i / mr) * mr * kc + k * mr + i % mr] = i < mc ? src[i] : 0.0f;
    }
  } else {
    for (int64_t i = 0; i < mc_pad; i++) {
      float* strip = ap + (i / mr) * mr * kc + i % mr;
      if (i < mc) {
        const float* src = a + (m0 + i) * p.k + k0;
        for (int64_t k = 0; k < kc; k++) strip[k * mr] = src[k];
      } else {
        for (int64_t k = 0; k < kc; k++) strip[k * mr] = 0;
      }
    }
  }
}

template <class Kernel>
void GemmF32(const MatmulArgs& p) {
  constexpr int64_t mr = Kernel::kMr, nr = Kernel::kNr;
  static_assert(kMc % mr == 0 && kNc % nr == 0, "blocks must hold whole register tiles");
  const int64_t m_blocks = (p.m + kMc - 1) / kMc, n_blocks = (p.n + kNc - 1) / kNc;
  ParallelFor(p.batch * m_blocks * n_blocks, [&](int64_t begin, int64_t end) {
    float* ap = static_cast<float*>(ThreadScratch(0, sizeof(float) * kMc * kKc));
    float* bp = static_cast<float*>(ThreadScratch(1, sizeof(float) * kNc * kKc));
    float* row = static_cast<float*>(ThreadScratch(2, sizeof(float) * (kNc > kKc ? kNc : kKc)));
    alignas(64) float c[mr * nr];
    for (int64_t task = begin; task < end; task++) {
      const int64_t bi = task / (m_blocks * n_blocks);
      const int64_t m0 = (task / n_blocks % m_blocks) * kMc, n0 = (task % n_blocks) * kNc;
      const int64_t mc = MinI64(kMc, p.m - m0), nc = MinI64(kNc, p.n - n0);
      const float* a = p.a + bi * p.m * p.k;
      const int64_t b_offset = p.b_batched ? bi * p.k * p.n : 0;
      float* out = p.out + bi * p.m * p.n;
      if (p.k == 0 && !p.accumulate) {
        for (int64_t i = m0; i < m0 + mc; i++)
          for (int64_t j = n0; j < n0 + nc; j++) out[i * p.n + j] = 0;
      }
      for (int64_t k0 = 0; k0 < p.k; k0 += kKc) {
        const int64_t kc = MinI64(kKc, p.k - k0);
        PackB<Kernel>(p, b_offset, k0, kc, n0, nc, bp, row);
        PackA<Kernel>(p, a, m0, mc, k0, kc, ap);
        const bool overwrite = k0 == 0 && !p.accumulate;
        for (int64_t i0 = 0; i0 < mc; i0 += mr) {
          for (int64_t j0 = 0; j0 < nc; j0 += nr) {
            Kernel::Micro(ap + i0 * kc, bp + j0 * kc, kc, c);
            // Write back only the valid part of the padded register tile.
            const int64_t rows = MinI64(mr, mc - i0), cols = MinI64(nr, nc - j0);
            for (int64_t r = 0; r < rows; r++) {
              float* dst = out + (m0 + i0 + r) * p.n + n0 + j0;
              const float* src = c + r * nr;
              if (overwrite) {
                for (int64_t col = 0; col < cols; col++) dst[col] = p.alpha * src[col];
              } else {
                for (int64_t col = 0; col < cols; col++) dst[col] += p.alpha * src[col];
              }
            }
          }
        }
      }
    }
  });
}

}  // namespace
}  // namespace labor::cpu
