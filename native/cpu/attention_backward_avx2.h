// AVX2 attention backward in 8 × 8 tiles (the AVX2 training TU only): attention_backward_avx512.h's method
// at 8 lanes — same math, same two passes, one writer per gradient row.
//
// For query row r = (t, h) and key j it sees (kv head g = h / (H/KV)):
//   p = exp(scale·q·k_j − lse_r),  dp = dO_r·v_j,  ds = p·(dp − D_r) with D_r = dO_r·out_r
//   dq_r = scale·Σ_j ds·k_j,  dk_j = scale·Σ_r ds·q_r,  dv_j = Σ_r p·dO_r
// A tile is 8 consecutive queries of one head × up to 8 keys. p, dp and ds are computed with the queries in
// the vector lanes (q and dO transposed once per query block to [d][8]; each k, v element is broadcast), so
// there are no horizontal sums; the lanes a key's range excludes get p = 0. Pass A, over (kv head, block of 8
// keys): dk, dv accumulate ds·q_r and p·dO_r with the head dim in the lanes, over every query block that can
// see the keys. Pass B, over (head, block of 8 queries): dq accumulates k_j·ds over the block's keys into a
// transposed [d][8] tile. Each output row has one writer: no atomics, and results do not depend on the
// thread count.
#pragma once
#include <immintrin.h>

#include <cstdint>

#include "cpu/attention_backward.h"
#include "cpu/buffer.h"
#include "cpu/thread_pool.h"
#include "cpu/training_ops.h"
#include "cpu/vec_avx2.h"

namespace labor::cpu::avx2 {
namespace {

constexpr int64_t kBackwardTile = 8;

/** 8 queries t0 .. t0+nq−1 of head h: q and dO transposed, ranges, lse and D in lanes (padding lanes: empty ranges). */
struct QueryTile {
  int64_t t0 = 0, nq = 0, h = 0;
  alignas(32) int32_t start[kBackwardTile];
  alignas(32) int32_t end[kBackwardTile];
  alignas(32) float lse[kBackwardTile];
  alignas(32) float delta[kBackwardTile];
  int32_t lo = 0, hi = 0;     // union of the lanes' key ranges (lo ≥ hi: none)
  const float* qt = nullptr;  // [hd][8]
  const float* dot = nullptr; // [hd][8]
};

/** q and dO of queries t0 .. t0+7 of head h transposed to [hd][8] each (zeros past the last query). */
void TransposeQueryTile(const AttentionBackwardArgs& p, int64_t t0, int64_t h, float* qt, float* dot) {
  const int64_t hd = p.head_dim;
  for (int64_t q = 0; q < kBackwardTile; q++) {
    const bool real = t0 + q < p.queries;
    const int64_t r = (t0 + q) * p.heads + h;
    for (int64_t d = 0; d < hd; d++) {
      qt[d * kBackwardTile + q] = real ? p.q[r * hd + d] : 0.0f;
      dot[d * kBackwardTile + q] = real ? p.d_out[r * hd + d] : 0.0f;
    }
  }
}

/** The tile of queries t0 .. t0+7 of head h; `qt`, `dot` its transposed q and dO (TransposeQueryTile). */
void LoadQueryTile(const AttentionBackwardArgs& p, const float* delta, int64_t t0, int64_t h, const float* qt,
                   const float* dot, QueryTile* tile) {
  const int64_t nq = p.queries - t0 < kBackwardTile ? p.queries - t0 : kBackwardTile;
  tile->qt = qt;
  tile->dot = dot;
  tile->t0 = t0;
  tile->nq = nq;
  tile->h = h;
  tile->lo = INT32_MAX;
  tile->hi = INT32_MIN;
  for (int64_t q = 0; q < kBackwardTile; q++) {
    const bool real = q < nq;
    const int64_t r = (t0 + q) * p.heads + h;
    tile->start[q] = real ? p.key_start[t0 + q] : 0;
    tile->end[q] = real ? p.key_end[t0 + q] : 0;
    tile->lse[q] = real ? p.lse[r] : 0.0f;
    tile->delta[q] = real ? delta[r] : 0.0f;
    if (tile->end[q] > tile->start[q]) {
      tile->lo = tile->start[q] < tile->lo ? tile->start[q] : tile->lo;
      tile->hi = tile->end[q] > tile->hi ? tile->end[q] : tile->hi;
    }
  }
}

/** p and ds of key j (rows key, value) for the tile's 8 queries; returns whether any lane sees the key. */
inline bool KeyProbabilities(const AttentionBackwardArgs& p, const QueryTile& tile, int64_t j, const float* key,
                             const float* value, __m256* prob, __m256* ds) {
  // start ≤ j < end  ⟺  ¬(start > j) ∧ end > j
  const __m256i jv = _mm256_set1_epi32(static_cast<int32_t>(j));
  const __m256i start = _mm256_load_si256(reinterpret_cast<const __m256i*>(tile.start));
  const __m256i end = _mm256_load_si256(reinterpret_cast<const __m256i*>(tile.end));
  const __m256 sees = _mm256_castsi256_ps(_mm256_andnot_si256(_mm256_cmpgt_epi32(start, jv), _mm256_cmpgt_epi32(end, jv)));
  if (_mm256_movemask_ps(sees) == 0) return false;
  // Four chains per product so the FMAs' latency overlaps.
  __m256 s[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
  __m256 dp[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
  const int64_t hd = p.head_dim;
  int64_t d = 0;
  for (; d + 4 <= hd; d += 4) {
    for (int i = 0; i < 4; i++) {
      s[i] = _mm256_fmadd_ps(_mm256_broadcast_ss(key + d + i), _mm256_load_ps(tile.qt + (d + i) * kBackwardTile), s[i]);
      dp[i] = _mm256_fmadd_ps(_mm256_broadcast_ss(value + d + i), _mm256_load_ps(tile.dot + (d + i) * kBackwardTile), dp[i]);
    }
  }
  for (; d < hd; d++) {
    s[0] = _mm256_fmadd_ps(_mm256_broadcast_ss(key + d), _mm256_load_ps(tile.qt + d * kBackwardTile), s[0]);
    dp[0] = _mm256_fmadd_ps(_mm256_broadcast_ss(value + d), _mm256_load_ps(tile.dot + d * kBackwardTile), dp[0]);
  }
  const __m256 s_sum = _mm256_add_ps(_mm256_add_ps(s[0], s[1]), _mm256_add_ps(s[2], s[3]));
  const __m256 dp_sum = _mm256_add_ps(_mm256_add_ps(dp[0], dp[1]), _mm256_add_ps(dp[2], dp[3]));
  const __m256 score = _mm256_fmsub_ps(s_sum, _mm256_set1_ps(p.scale), _mm256_load_ps(tile.lse));
  // Lanes that don't see the key (padding, other documents, empty ranges with lse = −inf) are zeroed after
  // the exp, so whatever the exp made of them never reaches ds.
  *prob = _mm256_and_ps(sees, ExpPs(score));
  *ds = _mm256_mul_ps(*prob, _mm256_sub_ps(dp_sum, _mm256_load_ps(tile.delta)));
  return true;
}

/**
 * dk_acc[jj] += Σ_q ds[jj][q]·q_row(q), dv_acc[jj] += Σ_q p[jj][q]·dO_row(q) for the tile's keys jj < nk: the head
 * dim in the lanes, 32 columns (4 vectors) of a key's two rows held in registers across the 8 queries.
 */
inline void AccumulateKeyGradients(const AttentionBackwardArgs& p, const QueryTile& tile, const float* probs,
                                   const float* dss, int64_t nk, float* dk_acc, float* dv_acc) {
  const int64_t hd = p.head_dim;
  for (int64_t d0 = 0; d0 < hd; d0 += 32) {
    int64_t valid[4];
    __m256i masks[4];
    for (int i = 0; i < 4; i++) {
      const int64_t left = hd - d0 - 8 * i;
      valid[i] = left >= 8 ? 8 : left > 0 ? left : 0;
      masks[i] = VecTailMask(valid[i]);
    }
    for (int64_t jj = 0; jj < nk; jj++) {
      float* dk_row = dk_acc + jj * hd + d0;
      float* dv_row = dv_acc + jj * hd + d0;
      __m256 dk[4], dv[4];
      for (int i = 0; i < 4; i++) {
        dk[i] = _mm256_maskload_ps(dk_row + 8 * i, masks[i]);
        dv[i] = _mm256_maskload_ps(dv_row + 8 * i, masks[i]);
      }
      for (int64_t q = 0; q < tile.nq; q++) {
        const float pj = probs[jj * kBackwardTile + q];
        if (pj == 0.0f) continue;  // not seen (or an underflowed exp): ds is 0 too
        const __m256 pv = _mm256_set1_ps(pj), dsv = _mm256_set1_ps(dss[jj * kBackwardTile + q]);
        const int64_t r = (tile.t0 + q) * p.heads + tile.h;
        const float* q_row = p.q + r * hd + d0;
        const float* d_out_row = p.d_out + r * hd + d0;
        for (int i = 0; i < 4; i++) {
          if (valid[i] == 8) {
            dk[i] = _mm256_fmadd_ps(dsv, _mm256_loadu_ps(q_row + 8 * i), dk[i]);
            dv[i] = _mm256_fmadd_ps(pv, _mm256_loadu_ps(d_out_row + 8 * i), dv[i]);
          } else {
            dk[i] = _mm256_fmadd_ps(dsv, _mm256_maskload_ps(q_row + 8 * i, masks[i]), dk[i]);
            dv[i] = _mm256_fmadd_ps(pv, _mm256_maskload_ps(d_out_row + 8 * i, masks[i]), dv[i]);
          }
        }
      }
      for (int i = 0; i < 4; i++) {
        _mm256_maskstore_ps(dk_row + 8 * i, masks[i], dk[i]);
        _mm256_maskstore_ps(dv_row + 8 * i, masks[i], dv[i]);
      }
    }
  }
}

/**
 * dqt[d][·] += Σ_jj key_jj[d]·ds[jj][·] over nk keys (rows `keys`, `stride` apart), 8 dims of the transposed
 * [hd][8] tile in registers across the keys.
 */
inline void AccumulateQueryGradients(const float* keys, int64_t stride, int64_t hd, const float* dss, int64_t nk,
                                     float* dqt) {
  int64_t d0 = 0;
  for (; d0 + 8 <= hd; d0 += 8) {
    __m256 acc[8];
    for (int i = 0; i < 8; i++) acc[i] = _mm256_load_ps(dqt + (d0 + i) * kBackwardTile);
    for (int64_t jj = 0; jj < nk; jj++) {
      const __m256 ds = _mm256_load_ps(dss + jj * kBackwardTile);
      const float* key = keys + jj * stride + d0;
      for (int i = 0; i < 8; i++) acc[i] = _mm256_fmadd_ps(_mm256_broadcast_ss(key + i), ds, acc[i]);
    }
    for (int i = 0; i < 8; i++) _mm256_store_ps(dqt + (d0 + i) * kBackwardTile, acc[i]);
  }
  for (; d0 < hd; d0++) {
    __m256 acc = _mm256_load_ps(dqt + d0 * kBackwardTile);
    for (int64_t jj = 0; jj < nk; jj++) {
      acc = _mm256_fmadd_ps(_mm256_broadcast_ss(keys + jj * stride + d0), _mm256_load_ps(dss + jj * kBackwardTile), acc);
    }
    _mm256_store_ps(dqt + d0 * kBackwardTile, acc);
  }
}

void AttentionBackwardTiles(const AttentionBackwardArgs& p) {
  const int64_t hd = p.head_dim, group = p.heads / p.kv_heads, kv_stride = p.kv_heads * hd;
  const int64_t query_rows = p.queries * p.heads;
  AlignedBuffer delta_buffer(sizeof(float) * static_cast<size_t>(query_rows > 0 ? query_rows : 1));
  float* delta = static_cast<float*>(delta_buffer.data());
  ParallelFor(query_rows, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; r++) delta[r] = Vec::Dot(p.d_out + r * hd, p.out + r * hd, hd);
  });
  const bool monotone = RangesMonotone(p);
  const size_t tile_bytes = sizeof(float) * static_cast<size_t>(hd * kBackwardTile);
  // Every query tile's q and dO transposed once (pass A visits each tile once per key block that it sees):
  // tile (h, b) at transposed + 2·(h·query_blocks + b)·hd·8, q then dO.
  const int64_t query_blocks = (p.queries + kBackwardTile - 1) / kBackwardTile;
  AlignedBuffer transposed_buffer(2 * tile_bytes * static_cast<size_t>(p.heads * query_blocks > 0 ? p.heads * query_blocks : 1));
  float* transposed = static_cast<float*>(transposed_buffer.data());
  const auto tile_q = [&](int64_t h, int64_t t0) { return transposed + 2 * (h * query_blocks + t0 / kBackwardTile) * hd * kBackwardTile; };
  ParallelFor(p.heads * query_blocks, [&](int64_t begin, int64_t end) {
    for (int64_t item = begin; item < end; item++) {
      const int64_t h = item / query_blocks, t0 = (item % query_blocks) * kBackwardTile;
      float* qt = tile_q(h, t0);
      TransposeQueryTile(p, t0, h, qt, qt + hd * kBackwardTile);
    }
  });

  // Pass A: dk, dv for each (kv head, block of 8 keys).
  const int64_t key_blocks = (p.keys + kBackwardTile - 1) / kBackwardTile;
  ParallelFor(p.kv_heads * key_blocks, [&](int64_t begin, int64_t end) {
    AlignedBuffer scratch(2 * tile_bytes);
    float* dk_acc = static_cast<float*>(scratch.data());  // [8][hd]
    float* dv_acc = dk_acc + hd * kBackwardTile;
    QueryTile tile;
    alignas(32) float probs[kBackwardTile * kBackwardTile];  // [key][query]
    alignas(32) float dss[kBackwardTile * kBackwardTile];
    for (int64_t item = begin; item < end; item++) {
      const int64_t g = item / key_blocks, j0 = (item % key_blocks) * kBackwardTile;
      const int64_t nk = p.keys - j0 < kBackwardTile ? p.keys - j0 : kBackwardTile;
      Vec::Zero(dk_acc, nk * hd);
      Vec::Zero(dv_acc, nk * hd);
      int64_t first = 0, last = 0;
      QueriesSeeing(p, monotone, j0, j0 + nk - 1, &first, &last);
      for (int64_t h = g * group; h < (g + 1) * group; h++) {
        for (int64_t t0 = first / kBackwardTile * kBackwardTile; t0 < last; t0 += kBackwardTile) {
          const float* qt = tile_q(h, t0);
          LoadQueryTile(p, delta, t0, h, qt, qt + hd * kBackwardTile, &tile);
          if (tile.lo >= j0 + nk || tile.hi <= j0) continue;
          bool any = false;
          for (int64_t jj = 0; jj < nk; jj++) {
            const float* key = p.k + (j0 + jj) * kv_stride + g * hd;
            const float* value = p.v + (j0 + jj) * kv_stride + g * hd;
            __m256 prob = _mm256_setzero_ps(), ds = _mm256_setzero_ps();
            any |= KeyProbabilities(p, tile, j0 + jj, key, value, &prob, &ds);
            _mm256_store_ps(probs + jj * kBackwardTile, prob);
            _mm256_store_ps(dss + jj * kBackwardTile, ds);
          }
          if (!any) continue;
          AccumulateKeyGradients(p, tile, probs, dss, nk, dk_acc, dv_acc);
        }
      }
      for (int64_t jj = 0; jj < nk; jj++) {
        const int64_t row = (j0 + jj) * kv_stride + g * hd;
        Vec::Scale(dk_acc + jj * hd, p.scale, hd);
        for (int64_t d = 0; d < hd; d++) {
          p.dk[row + d] = dk_acc[jj * hd + d];
          p.dv[row + d] = dv_acc[jj * hd + d];
        }
      }
    }
  });

  // Pass B: dq for each (head, block of 8 queries).
  ParallelFor(p.heads * query_blocks, [&](int64_t begin, int64_t end) {
    AlignedBuffer scratch(tile_bytes);
    float* dqt = static_cast<float*>(scratch.data());  // [hd][8]
    QueryTile tile;
    for (int64_t item = begin; item < end; item++) {
      const int64_t h = item / query_blocks, t0 = (item % query_blocks) * kBackwardTile, g = h / group;
      const float* qt = tile_q(h, t0);
      LoadQueryTile(p, delta, t0, h, qt, qt + hd * kBackwardTile, &tile);
      Vec::Zero(dqt, hd * kBackwardTile);
      alignas(32) float dss[kBackwardTile * kBackwardTile];  // [key][query]
      for (int64_t j0 = tile.lo; j0 < tile.hi; j0 += kBackwardTile) {
        const int64_t nk = tile.hi - j0 < kBackwardTile ? tile.hi - j0 : kBackwardTile;
        bool any = false;
        for (int64_t jj = 0; jj < nk; jj++) {
          __m256 prob = _mm256_setzero_ps(), ds = _mm256_setzero_ps();
          any |= KeyProbabilities(p, tile, j0 + jj, p.k + (j0 + jj) * kv_stride + g * hd, p.v + (j0 + jj) * kv_stride + g * hd,
                                  &prob, &ds);
          _mm256_store_ps(dss + jj * kBackwardTile, ds);
        }
        if (any) AccumulateQueryGradients(p.k + j0 * kv_stride + g * hd, kv_stride, hd, dss, nk, dqt);
      }
      for (int64_t q = 0; q < tile.nq; q++) {
        float* dq = p.dq + ((t0 + q) * p.heads + h) * hd;
        for (int64_t d = 0; d < hd; d++) dq[d] = p.scale * dqt[d * kBackwardTile + q];
      }
    }
  });
}

}  // namespace
}  // namespace labor::cpu::avx2
