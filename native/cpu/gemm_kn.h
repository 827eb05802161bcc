// GEMM driver for B stored [K, N] (not transB) — the backward products dX = dY·W and dW += dYᵀ·X — with the
// output tile held the natural way round in registers: kMr output rows m × kNr output columns n, B loaded
// as vectors along n, A broadcast one scalar per (m, k). Out is read and written in place, row-major, with
// no transposes. (gemm_blocked.h keeps Cᵀ in registers, which suits x·Wᵀ with W read in place; for [K, N]
// storage it has to decode B one element at a time.)
//
//   out[m][n] (+)= alpha · Σ_k A(m, k)·B(k, n)
//
// Per task (batch item, K range, block of kMb rows, block of kNb columns), K goes in chunks of
// kStepsPerChunk steps (step = k, or a k pair for bf16): the chunk of A is packed into Ap[strip][step][kMs]
// (kMs rows side by side, zero past M — gemm_blocked.h's layout) and the chunk of B into
// Bp[group][step][kNr] (zero past N and K), both per-thread and small enough to stay in L2; then every
// kMr × kNr tile is multiplied over the chunk and added to its place. While a chunk computes, the rows of A
// and B (and of out, where it is read) that the thread's next chunk needs are prefetched into L2, a few
// lines between tiles: these products stream tens of MB per call, and packing them straight from memory
// stalled on it (f32 dY·W spent a third of its time packing).
//
// Long K with a small output (dY·W for a 128-row chunk of logits: M·N = 128·256, K = 32,000) makes one or
// two tasks, too few for the threads, so K is split into up to kMaxSplits ranges of whole chunks, each
// summed into its own partial [M, N]; the partials are then added in split order. Splits depend on the
// shape only, and every output element is summed in a fixed order, so results do not depend on the thread
// count.
//
// Kernel provides:
//   Unit, kStepK                  as gemm_blocked.h (float / k, or uint32_t / bf16 pair of k)
//   kMs, kMr, kNr                 strip rows (a multiple of kMr), tile rows, tile columns
//   kStripsPerBlock, kNb, kStepsPerChunk   task block sizes (kNb a multiple of kNr)
//   PackStripSteps(p, a, m0, s0, steps, dst)   Ap of the strip of rows from m0, steps [s0, s0 + steps)
//   PackGroup(p, b, b_offset, n, cols, s0, steps, dst)   Bp of columns n … n + kNr (cols valid, rest zero)
//   Tile(ap, bp, steps, c, ldc, rows, cols, alpha, load)
//        c[i][j] = (load ? c[i][j] : 0) + alpha · Σ_s Ap[s][i]·Bp[s][j] for i < rows, j < cols (c at row
//        stride ldc; Ap at step stride kMs, Bp at step stride kNr)
//   SumPartials(src, stride, splits, n, alpha, accumulate, dst)
//        dst[j] (+)= alpha · Σ_split src[split · stride + j] for j < n, in split order
#pragma once
#include <cstdint>

#include "cpu/buffer.h"
#include "cpu/gemm_blocked.h"  // CeilDiv, Min64, scratch slots
#include "cpu/ops.h"
#include "cpu/thread_pool.h"

namespace labor::cpu {
namespace {

// K splits: only when the output is small (so the partials are cheap to add) and K long enough that each
// split keeps several chunks.
constexpr int64_t kMaxSplits = 8;
constexpr int64_t kSplitMaxOutput = 512 * 512;  // batch·M·N elements
constexpr int64_t kSplitMinChunks = 2;          // chunks per split

// Rows of memory to bring into L2 ahead of use, a few cache lines at a time between tiles, so that
// streaming A and B from memory overlaps the arithmetic instead of stalling the packing.
struct PrefetchRegion {
  const char* base;
  int64_t stride, rows, bytes;  // rows of `bytes` bytes, `stride` apart
};

class Prefetcher {
 public:
  Prefetcher() = default;
  // Spreads the lines of regions[0 … count) over `steps` calls of Step.
  Prefetcher(const PrefetchRegion* regions, int count, int64_t steps) {
    int64_t lines = 0;
    for (int i = 0; i < count; i++) {
      regions_[i] = regions[i];
      lines += regions[i].rows * (CeilDiv(regions[i].bytes, kLine) + 1);  // + 1: a row may straddle one more line
    }
    count_ = count;
    per_step_ = CeilDiv(lines, steps < 1 ? 1 : steps);
  }
  void Step() {
    for (int64_t done = 0; done < per_step_ && region_ < count_; done++) {
      const PrefetchRegion& r = regions_[region_];
      if (row_ >= r.rows) {
        row_ = offset_ = 0;
        region_++;
        continue;
      }
      // Lines from the one holding the row's first byte to the one holding its last.
      const uintptr_t start = reinterpret_cast<uintptr_t>(r.base + row_ * r.stride);
      const uintptr_t first_line = start & ~static_cast<uintptr_t>(kLine - 1);
      __builtin_prefetch(reinterpret_cast<const char*>(first_line + offset_), 0, 2);
      offset_ += kLine;
      if (first_line + offset_ >= start + r.bytes) {
        offset_ = 0;
        row_++;
      }
    }
  }

 private:
  static constexpr int64_t kLine = 64;
  PrefetchRegion regions_[3] = {};
  int count_ = 0, region_ = 0;
  int64_t per_step_ = 0, row_ = 0, offset_ = 0;
};

inline int64_t KSplits(const MatmulArgs& p, int64_t chunks) {
  if (p.batch * p.m * p.n > kSplitMaxOutput) return 1;
  const int64_t splits = Min64(kMaxSplits, chunks / kSplitMinChunks);
  return splits < 1 ? 1 : splits;
}

template <class Kernel>
void GemmKN(const MatmulArgs& p) {
  using Unit = typename Kernel::Unit;
  constexpr int64_t kMs = Kernel::kMs, kMr = Kernel::kMr, kNr = Kernel::kNr;
  constexpr int64_t kMb = Kernel::kStripsPerBlock * kMs, kNb = Kernel::kNb, kChunk = Kernel::kStepsPerChunk;
  static_assert(kMs % kMr == 0, "a strip holds whole tiles");
  static_assert(kNb % kNr == 0, "a column block holds whole groups");

  if (p.k == 0) return ZeroProductUnlessAccumulating(p);
  const int64_t steps = CeilDiv(p.k, Kernel::kStepK);
  const int64_t chunks = CeilDiv(steps, kChunk);
  const int64_t chunks_per_split = CeilDiv(chunks, KSplits(p, chunks));
  const int64_t splits = CeilDiv(chunks, chunks_per_split);
  const int64_t out_size = p.m * p.n;
  // partial[bi][split] [M, N] when K is split.
  float* partial = splits > 1
                       ? static_cast<float*>(ThreadScratch(kScratchPackedA, sizeof(float) * p.batch * splits * out_size))
                       : nullptr;

  const int64_t m_blocks = CeilDiv(p.m, kMb), n_blocks = CeilDiv(p.n, kNb);
  const int64_t b_size = p.b_dtype == DType::kF32 ? 4 : 2;  // bytes per element of b

  // One unit of work: a task's chunk of K. Its inputs (rows of A and B, and out when it is read before the
  // first chunk adds to it) are the regions prefetched while the unit before it computes.
  struct WorkUnit {
    int64_t bi, split, m0, n0, rows_m, cols_n, chunk, first, last;
  };
  auto unit_of = [&](int64_t task, int64_t chunk_or_first) {
    WorkUnit u;
    u.n0 = (task % n_blocks) * kNb;
    u.m0 = (task / n_blocks % m_blocks) * kMb;
    u.split = task / (n_blocks * m_blocks) % splits;
    u.bi = task / (n_blocks * m_blocks * splits);
    u.rows_m = Min64(kMb, p.m - u.m0);
    u.cols_n = Min64(kNb, p.n - u.n0);
    u.first = u.split * chunks_per_split;
    u.last = Min64(chunks, u.first + chunks_per_split);
    u.chunk = chunk_or_first < 0 ? u.first : chunk_or_first;
    return u;
  };
  auto regions_of = [&](const WorkUnit& u, PrefetchRegion* r) {
    const int64_t k0 = u.chunk * kChunk * Kernel::kStepK, k_count = Min64(kChunk * Kernel::kStepK, p.k - k0);
    const char* a = reinterpret_cast<const char*>(p.a + u.bi * p.m * p.k);
    r[0] = p.trans_a ? PrefetchRegion{a + 4 * (k0 * p.m + u.m0), 4 * p.m, k_count, 4 * u.rows_m}
                     : PrefetchRegion{a + 4 * (u.m0 * p.k + k0), 4 * p.k, u.rows_m, 4 * k_count};
    const char* b = static_cast<const char*>(p.b) + b_size * ((p.b_batched ? u.bi * p.k * p.n : 0) + k0 * p.n + u.n0);
    r[1] = PrefetchRegion{b, b_size * p.n, k_count, b_size * u.cols_n};
    const bool reads_out = splits == 1 && p.accumulate && u.chunk == u.first;
    r[2] = PrefetchRegion{reinterpret_cast<const char*>(p.out + u.bi * out_size + u.m0 * p.n + u.n0), 4 * p.n,
                          reads_out ? u.rows_m : 0, 4 * u.cols_n};
  };

  ParallelFor(p.batch * splits * m_blocks * n_blocks, [&](int64_t begin, int64_t end) {
    Unit* ap = static_cast<Unit*>(ThreadScratch(kScratchCt, sizeof(Unit) * kMb * kChunk));
    Unit* bp = static_cast<Unit*>(ThreadScratch(kScratchPanel, sizeof(Unit) * kNb * kChunk));
    for (int64_t task = begin; task < end; task++) {
      for (WorkUnit u = unit_of(task, -1); u.chunk < u.last; u.chunk++) {
        const int64_t s0 = u.chunk * kChunk, count = Min64(kChunk, steps - s0);
        const int64_t strips = CeilDiv(u.rows_m, kMs), tiles = CeilDiv(u.rows_m, kMr), groups = CeilDiv(u.cols_n, kNr);
        const float* a = p.a + u.bi * p.m * p.k;
        for (int64_t s = 0; s < strips; s++) Kernel::PackStripSteps(p, a, u.m0 + s * kMs, s0, count, ap + s * count * kMs);
        const int64_t b_offset = p.b_batched ? u.bi * p.k * p.n : 0;  // in elements of b
        for (int64_t g = 0; g < groups; g++) {
          const int64_t n = u.n0 + g * kNr;
          Kernel::PackGroup(p, p.b, b_offset, n, Min64(kNr, p.n - n), s0, count, bp + g * count * kNr);
        }

        // The next unit of this thread: the next chunk, else the next task's first one.
        PrefetchRegion now[3], next[3];
        Prefetcher prefetch;
        if (u.chunk + 1 < u.last || task + 1 < end) {
          WorkUnit v = u.chunk + 1 < u.last ? u : unit_of(task + 1, -1);
          if (u.chunk + 1 < u.last) v.chunk++;
          regions_of(u, now);
          regions_of(v, next);
          if (next[1].base == now[1].base) next[1].rows = 0;  // the same rows of B: already in cache
          prefetch = Prefetcher(next, 3, groups * tiles);
        }

        float* c;
        float alpha;
        bool load;
        if (splits > 1) {
          c = partial + (u.bi * splits + u.split) * out_size + u.m0 * p.n + u.n0;
          alpha = 1.0f;
          load = u.chunk > u.first;
        } else {
          c = p.out + u.bi * out_size + u.m0 * p.n + u.n0;
          alpha = p.alpha;
          load = p.accumulate || u.chunk > u.first;
        }
        // Group outer: one kNr-column panel of B stays in L1 while the tiles of A go by.
        for (int64_t g = 0; g < groups; g++) {
          const int64_t cols = Min64(kNr, u.cols_n - g * kNr);
          for (int64_t t = 0; t < tiles; t++) {
            prefetch.Step();
            const int64_t i0 = t * kMr;
            const Unit* a_tile = ap + (i0 / kMs) * count * kMs + i0 % kMs;
            Kernel::Tile(a_tile, bp + g * count * kNr, count, c + i0 * p.n + g * kNr, p.n, Min64(kMr, u.rows_m - i0),
                         cols, alpha, load);
          }
        }
      }
    }
  });
  if (splits == 1) return;

  // out (+)= alpha · Σ_split partial[split], in split order.
  ParallelFor(p.batch * p.m, [&](int64_t begin, int64_t end) {
    for (int64_t row = begin; row < end; row++) {
      const int64_t bi = row / p.m, i = row % p.m;
      float* dst = p.out + row * p.n;
      const float* src = partial + bi * splits * out_size + i * p.n;
      Kernel::SumPartials(src, out_size, splits, p.n, p.alpha, p.accumulate, dst);
    }
  });
}

}  // namespace
}  // namespace labor::cpu
