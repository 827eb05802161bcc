// Flash-style attention backward shared by the per-ISA training TUs (internal linkage as in numeric.h).
//
// For query row r = (t, h) over its keys j ∈ [keyStart[t], keyEnd[t]) (kv head g = h / (H/KV)):
//   p_j  = exp(scale·q·k_j − lse_r)          (recomputed: the forward saved only lse, no Tq × Tk matrix)
//   dp_j = dO·v_j,   D_r = Σ_j p_j·dp_j = dO·out_r,   ds_j = p_j·(dp_j − D_r)
//   dq_r = scale · Σ_j ds_j·k_j,   dk_j = scale · Σ_r ds_j·q_r,   dv_j = Σ_r p_j·dO_r
// Pass 1 runs over query rows and writes dq (and D); pass 2 runs over (key, kv head) rows and writes dk,
// dv by visiting every query row of the kv head's group whose range holds the key. Each gradient row
// has exactly one writer, so there are no races, no per-thread copies, and the result is independent of
// the thread count. Keys (pass 1) and query rows (pass 2) go kBackwardBlock at a time so their exps are
// vectorised.
//
// Vec provides Dot, Axpy (y += w·x), Scale, Zero and ExpInPlace over n floats.
#pragma once
#include <cstdint>

#include "cpu/buffer.h"
#include "cpu/thread_pool.h"
#include "cpu/training_ops.h"

namespace labor::cpu {
namespace {

constexpr int64_t kBackwardBlock = 64;

/** Whether both range ends are non-decreasing in t (packed causal batches: ranges [document start, t + 1)). */
inline bool RangesMonotone(const AttentionBackwardArgs& p) {
  for (int64_t t = 1; t < p.queries; t++) {
    if (p.key_start[t] < p.key_start[t - 1] || p.key_end[t] < p.key_end[t - 1]) return false;
  }
  return true;
}

/** The queries [first, last) that can see a key in [j_first, j_last]: with monotone ranges one contiguous run,
 * found by binary search; otherwise every query (the caller's range test decides). */
inline void QueriesSeeing(const AttentionBackwardArgs& p, bool monotone, int64_t j_first, int64_t j_last,
                          int64_t* first, int64_t* last) {
  if (!monotone) {
    *first = 0;
    *last = p.queries;
    return;
  }
  int64_t lo = 0, hi = p.queries;  // first t with key_end[t] > j_first
  while (lo < hi) {
    const int64_t mid = (lo + hi) / 2;
    if (p.key_end[mid] > j_first) hi = mid; else lo = mid + 1;
  }
  *first = lo;
  hi = p.queries;  // first t ≥ *first with key_start[t] > j_last
  while (lo < hi) {
    const int64_t mid = (lo + hi) / 2;
    if (p.key_start[mid] > j_last) hi = mid; else lo = mid + 1;
  }
  *last = lo;
}

template <class Vec>
void AttentionBackwardRows(const AttentionBackwardArgs& p) {
  const int64_t hd = p.head_dim, group = p.heads / p.kv_heads, kv_stride = p.kv_heads * hd;
  const int64_t query_rows = p.queries * p.heads;
  AlignedBuffer delta_buffer(sizeof(float) * static_cast<size_t>(query_rows > 0 ? query_rows : 1));
  float* delta = static_cast<float*>(delta_buffer.data());

  // Pass 1: D_r and dq_r = scale · Σ_j p_j (dO·v_j − D_r) k_j.
  ParallelFor(query_rows, [&](int64_t begin, int64_t end) {
    float prob[kBackwardBlock];
    for (int64_t r = begin; r < end; r++) {
      const int64_t t = r / p.heads, kvh = (r % p.heads) / group;
      const float* q = p.q + r * hd;
      const float* d_out = p.d_out + r * hd;
      const float* keys = p.k + kvh * hd;
      const float* values = p.v + kvh * hd;
      const float d = Vec::Dot(d_out, p.out + r * hd, hd);
      const float lse = p.lse[r];
      delta[r] = d;
      float* dq = p.dq + r * hd;
      Vec::Zero(dq, hd);
      for (int64_t j0 = p.key_start[t]; j0 < p.key_end[t]; j0 += kBackwardBlock) {
        const int64_t count = p.key_end[t] - j0 < kBackwardBlock ? p.key_end[t] - j0 : kBackwardBlock;
        for (int64_t i = 0; i < count; i++) prob[i] = p.scale * Vec::Dot(q, keys + (j0 + i) * kv_stride, hd) - lse;
        Vec::ExpInPlace(prob, count);
        for (int64_t i = 0; i < count; i++) {
          const float ds = prob[i] * (Vec::Dot(d_out, values + (j0 + i) * kv_stride, hd) - d);
          Vec::Axpy(ds, keys + (j0 + i) * kv_stride, dq, hd);
        }
      }
      Vec::Scale(dq, p.scale, hd);
    }
  });

  const bool monotone = RangesMonotone(p);
  // Pass 2: dk_j = scale · Σ_r ds_j q_r and dv_j = Σ_r p_j dO_r over the query rows r that see key j.
  ParallelFor(p.keys * p.kv_heads, [&](int64_t begin, int64_t end) {
    float prob[kBackwardBlock];
    int64_t rows[kBackwardBlock];
    for (int64_t index = begin; index < end; index++) {
      const int64_t j = index / p.kv_heads, g = index % p.kv_heads;
      const float* key = p.k + index * hd;
      const float* value = p.v + index * hd;
      float* dk = p.dk + index * hd;
      float* dv = p.dv + index * hd;
      Vec::Zero(dk, hd);
      Vec::Zero(dv, hd);
      int64_t count = 0;
      auto flush = [&] {
        for (int64_t i = 0; i < count; i++) prob[i] = p.scale * Vec::Dot(p.q + rows[i] * hd, key, hd) - p.lse[rows[i]];
        Vec::ExpInPlace(prob, count);
        for (int64_t i = 0; i < count; i++) {
          const float* d_out = p.d_out + rows[i] * hd;
          const float ds = prob[i] * (Vec::Dot(d_out, value, hd) - delta[rows[i]]);
          Vec::Axpy(prob[i], d_out, dv, hd);
          Vec::Axpy(ds, p.q + rows[i] * hd, dk, hd);
        }
        count = 0;
      };
      int64_t first_query = 0, last_query = 0;
      QueriesSeeing(p, monotone, j, j, &first_query, &last_query);
      for (int64_t t = first_query; t < last_query; t++) {
        if (j < p.key_start[t] || j >= p.key_end[t]) continue;
        for (int64_t h = g * group; h < (g + 1) * group; h++) {
          rows[count++] = t * p.heads + h;
          if (count == kBackwardBlock) flush();
        }
      }
      flush();
      Vec::Scale(dk, p.scale, hd);
    }
  });
}

}  // namespace
}  // namespace labor::cpu
