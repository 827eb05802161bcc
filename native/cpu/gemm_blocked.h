// Blocked GEMM driver shared by the AVX2 and AVX-512 paths (each TU instantiates it with its own register
// kernel; internal linkage as in numeric.h).
//
// out[M,N] (+)= alpha · op(A)·op(B), computed *transposed* in registers: a register tile holds Cᵀ — kNr
// output columns n × kMs output rows m — so the operand that is broadcast, one scalar per (n, k), is B seen
// as [N, K]. For the model's products x·Wᵀ that is the Linear weight W[n][k] in its own row-major storage:
// f32 W is broadcast one element at a time, bf16 W one *pair* W[n][2k′], W[n][2k′+1] at a time (the VNNI-2
// operand of vdpbf16ps), so f32 and bf16 weights are read in place — no copy, no per-call repacking, still
// memory-mapped. Only the activations are packed, once per call (and rounded to bf16 once, for bf16 B):
//
//   Ap[batch][strip][step][kMs]   step = k (f32) or k pair k′ (bf16 pairs as uint32), kMs consecutive rows
//                                 m side by side, zero-padded past M and K.
//
// Tasks are (batch item, block of kStripsPerBlock strips of rows — kStripsPerBlockSmallB when B is small,
// see kSmallBBytes —, block of kNb columns), spread over the pool; each output element belongs to one task
// and is summed in a fixed order, so results depend neither on the thread count nor on the block height.
// Inside a task K goes in chunks of kStepsPerChunk steps: the task's Cᵀ block lives in a per-thread buffer
// `ct` [kNb][block rows] between chunks, and is added/written to `out` (scaled by alpha) at the end. B that
// can't be read in place (f16; [K,N] storage; odd K for pairs; the last, partial group of kNr columns) is
// decoded per chunk into a per-thread panel Bp[group][step][kNr].
//
// Kernel provides:
//   Unit                          float or uint32_t (a bf16 pair): one step of one row of A or B
//   kNr, kMs, kStepK              tile columns (B rows), tile rows (A rows per strip), k per step (1 or 2)
//   kStripsPerBlock, kNb, kStepsPerChunk   task block sizes (kNb a multiple of kNr)
//   kStripsPerBlockSmallB         strips per task block when B is small (≤ kSmallBBytes, below)
//   Micro<kInPlace>(ap, b, row_stride, steps, ct, ct_stride, load)
//        ct[r][i] (= or +=) Σ_s B(r, s)·Ap[s][i] for r < kNr, i < kMs; B(r, s) is b[r·row_stride + s]
//        (kInPlace: rows of B in place) or b[s·kNr + r] (a packed panel)
//   PackStrip(p, a, strip, dst)   Ap of one strip for batch item a (dst: steps·kMs units)
//   PackPanel(p, b, b_offset, n0, rows, s0, steps, dst)   Bp of one group (rows ≤ kNr valid, rest zero)
//   InPlace(p)                    whether transB B rows can be read in place (dtype and K allow it)
//   WriteBack(p, ct, ct_stride, out, rows, cols)   out[i][j] (+)= alpha · ct[j][i] for i < rows, j < cols
//                                 (out rows at stride p.n; ct_stride = the block's rows)
#pragma once
#include <cstdint>

#include "cpu/buffer.h"
#include "cpu/ops.h"
#include "cpu/thread_pool.h"

namespace labor::cpu {
namespace {

// Per-thread scratch slots (buffer.h): per-call packed A on the calling thread, per-task Cᵀ block and
// B panel on every thread. Distinct from slot 0, which the attention kernels use.
constexpr int kScratchPackedA = 3;
constexpr int kScratchCt = 4;
constexpr int kScratchPanel = 5;

// Up to this size of B, blocks of fewer strips were faster: a task's A strips and Cᵀ block stay closer to
// L1, and streaming B once per shorter block costs little while B is cache-sized (our reading of the
// measurements, not a counter profile). For the LM head of the demo models (N = 32000, K = 128, f32: 16 MB)
// one 48-row block instead of four doubled the throughput (2-vCPU Sapphire Rapids, AVX-512: 50 → 90–100
// GF/s; the AVX2 kernel forced there: 40–49 → 64–70) and left the training shapes (B ≤ 1 MB) as fast or
// faster; with a 64 MB B (N = K = 4096, or N = 32000 and K = 512) the taller block, which streams B fewer
// times, stayed ~30 % faster. bench/micro.ts's two `logits` cases measure both regimes.
constexpr int64_t kSmallBBytes = int64_t{16} << 20;

inline int64_t CeilDiv(int64_t value, int64_t divisor) { return (value + divisor - 1) / divisor; }
inline int64_t Min64(int64_t a, int64_t b) { return a < b ? a : b; }

/** K = 0: nothing to multiply, the product is zero (out unchanged when accumulating). */
inline void ZeroProductUnlessAccumulating(const MatmulArgs& p) {
  if (p.accumulate) return;
  ParallelFor(p.batch * p.m, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin * p.n; i < end * p.n; i++) p.out[i] = 0;
  });
}

template <class Kernel>
void GemmBlocked(const MatmulArgs& p) {
  using Unit = typename Kernel::Unit;
  constexpr int64_t kNr = Kernel::kNr, kMs = Kernel::kMs;
  constexpr int64_t kMbMax = Kernel::kStripsPerBlock * kMs, kNb = Kernel::kNb, kChunk = Kernel::kStepsPerChunk;
  static_assert(kNb % kNr == 0, "a column block holds whole groups");
  static_assert(Kernel::kStripsPerBlockSmallB <= Kernel::kStripsPerBlock, "the small-B block fits the Cᵀ buffer");

  if (p.k == 0) return ZeroProductUnlessAccumulating(p);
  const int64_t steps = CeilDiv(p.k, Kernel::kStepK);
  const int64_t strips = CeilDiv(p.m, kMs);
  const int64_t strip_units = steps * kMs;
  const int64_t batch_units = strips * strip_units;

  // A, packed once for every batch item.
  Unit* ap = static_cast<Unit*>(ThreadScratch(kScratchPackedA, sizeof(Unit) * p.batch * batch_units));
  ParallelFor(p.batch * strips, [&](int64_t begin, int64_t end) {
    for (int64_t index = begin; index < end; index++) {
      const int64_t bi = index / strips, strip = index % strips;
      Kernel::PackStrip(p, p.a + bi * p.m * p.k, strip, ap + bi * batch_units + strip * strip_units);
    }
  });

  const bool in_place = p.trans_b && Kernel::InPlace(p);
  const int64_t b_bytes = p.n * p.k * (p.b_dtype == DType::kF32 ? 4 : 2);
  const int64_t block_rows = (b_bytes <= kSmallBBytes ? Kernel::kStripsPerBlockSmallB : Kernel::kStripsPerBlock) * kMs;
  const int64_t m_blocks = CeilDiv(p.m, block_rows), n_blocks = CeilDiv(p.n, kNb);
  ParallelFor(p.batch * m_blocks * n_blocks, [&](int64_t begin, int64_t end) {
    float* ct = static_cast<float*>(ThreadScratch(kScratchCt, sizeof(float) * kNb * kMbMax));
    Unit* panel = static_cast<Unit*>(ThreadScratch(kScratchPanel, sizeof(Unit) * kNb * kChunk));
    for (int64_t task = begin; task < end; task++) {
      const int64_t bi = task / (m_blocks * n_blocks);
      // n fastest: consecutive tasks of a thread reuse the same packed A rows (measured a little faster
      // than m fastest, which would keep the B block instead).
      const int64_t m0 = (task / n_blocks % m_blocks) * block_rows, n0 = (task % n_blocks) * kNb;
      const int64_t rows_m = Min64(block_rows, p.m - m0), cols_n = Min64(kNb, p.n - n0);
      const int64_t block_strips = CeilDiv(rows_m, kMs), groups = CeilDiv(cols_n, kNr);
      const Unit* a_block = ap + bi * batch_units + (m0 / kMs) * strip_units;
      const int64_t b_offset = p.b_batched ? bi * p.k * p.n : 0;  // in elements of b
      for (int64_t s0 = 0; s0 < steps; s0 += kChunk) {
        const int64_t chunk = Min64(kChunk, steps - s0);
        const bool load = s0 > 0;
        for (int64_t g = 0; g < groups; g++) {
          const int64_t n = n0 + g * kNr, rows = Min64(kNr, p.n - n);
          float* ct_group = ct + g * kNr * block_rows;
          if (in_place && rows == kNr) {
            const Unit* b = static_cast<const Unit*>(p.b) + (b_offset + n * p.k) / Kernel::kStepK + s0;
            const int64_t row_stride = p.k / Kernel::kStepK;
            for (int64_t s = 0; s < block_strips; s++) {
              Kernel::template Micro<true>(a_block + s * strip_units + s0 * kMs, b, row_stride, chunk,
                                           ct_group + s * kMs, block_rows, load);
            }
          } else {
            Unit* bp = panel + g * kNr * kChunk;
            Kernel::PackPanel(p, p.b, b_offset, n, rows, s0, chunk, bp);
            for (int64_t s = 0; s < block_strips; s++) {
              Kernel::template Micro<false>(a_block + s * strip_units + s0 * kMs, bp, 0, chunk,
                                            ct_group + s * kMs, block_rows, load);
            }
          }
        }
      }
      // out[m][n] (+)= alpha · ct[n][m] over the valid part of the block.
      Kernel::WriteBack(p, ct, block_rows, p.out + bi * p.m * p.n + m0 * p.n + n0, rows_m, cols_n);
    }
  });
}

}  // namespace
}  // namespace labor::cpu
