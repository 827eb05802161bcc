// Tree attention for prefix-shared scoring, shared by the per-ISA training TUs (internal linkage as in
// numeric.h). Query row (t, h) attends the contiguous keys [prefixStart[t], prefixEnd[t]) and then the
// listed keys extraKeys[extraOffsets[t] .. extraOffsets[t+1]) (its trie ancestors and itself), with one
// online softmax across both (REFERENCE §6): keys go kTreeBlock at a time; the block's scores
// raise the running max mx (rescaling the running sum l and acc = Σ exp(s − mx)·v by exp(old − new)),
// then each key adds exp(s − mx) to l and exp(s − mx)·v to acc. out = acc / l; no keys gives zeros.
// With every extra list empty this is exactly `attention` over [prefixStart, prefixEnd).
//
// prefix_lse: when given, the prefix part is already done — out holds each row's attention over its prefix
// range (normalised) and prefix_lse its log Σ exp(s) — and the rows resume from it: mx = lse, l = 1,
// acc = out (Σ exp(s − lse)·v), which is the state the inline prefix loop would have reached.
//
// Vec provides Dot, Axpy (y += w·x), Scale, Zero, Max and ExpInPlace over n floats.
#pragma once
#include <math.h>

#include <cstdint>

#include "cpu/buffer.h"
#include "cpu/thread_pool.h"
#include "cpu/training_ops.h"

namespace labor::cpu {
namespace {

constexpr int64_t kTreeBlock = 64;

template <class Vec>
void TreeAttentionRows(const TreeAttentionArgs& p, const float* prefix_lse = nullptr) {
  const int64_t hd = p.head_dim, group = p.heads / p.kv_heads, kv_stride = p.kv_heads * hd;
  ParallelFor(p.queries * p.heads, [&](int64_t begin, int64_t end) {
    float* acc = static_cast<float*>(ThreadScratch(0, sizeof(float) * (hd > 0 ? hd : 1)));
    float weight[kTreeBlock];
    int64_t key_index[kTreeBlock];
    for (int64_t r = begin; r < end; r++) {
      const int64_t t = r / p.heads, kvh = (r % p.heads) / group;
      const float* q = p.q + r * hd;
      const float* keys = p.k + kvh * hd;
      const float* values = p.v + kvh * hd;
      float mx = -INFINITY, l = 0;
      Vec::Zero(acc, hd);
      // Adds the `count` keys key_index[0 .. count) to the running softmax.
      auto add_block = [&](int64_t count) {
        for (int64_t i = 0; i < count; i++) weight[i] = p.scale * Vec::Dot(q, keys + key_index[i] * kv_stride, hd);
        const float block_max = Vec::Max(weight, count);
        if (block_max > mx) {
          const float correction = expf(mx - block_max);  // 0 on the first block (mx = −inf)
          l *= correction;
          Vec::Scale(acc, correction, hd);
          mx = block_max;
        }
        for (int64_t i = 0; i < count; i++) weight[i] -= mx;
        Vec::ExpInPlace(weight, count);
        for (int64_t i = 0; i < count; i++) {
          l += weight[i];
          Vec::Axpy(weight[i], values + key_index[i] * kv_stride, acc, hd);
        }
      };
      float* out = p.out + r * hd;
      if (prefix_lse != nullptr) {
        if (prefix_lse[r] > -INFINITY) {
          mx = prefix_lse[r];
          l = 1;
          for (int64_t d = 0; d < hd; d++) acc[d] = out[d];
        }
      } else {
        for (int64_t j0 = p.prefix_start[t]; j0 < p.prefix_end[t]; j0 += kTreeBlock) {
          const int64_t count = p.prefix_end[t] - j0 < kTreeBlock ? p.prefix_end[t] - j0 : kTreeBlock;
          for (int64_t i = 0; i < count; i++) key_index[i] = j0 + i;
          add_block(count);
        }
      }
      for (int64_t e0 = p.extra_offsets[t]; e0 < p.extra_offsets[t + 1]; e0 += kTreeBlock) {
        const int64_t count = p.extra_offsets[t + 1] - e0 < kTreeBlock ? p.extra_offsets[t + 1] - e0 : kTreeBlock;
        for (int64_t i = 0; i < count; i++) key_index[i] = p.extra_keys[e0 + i];
        add_block(count);
      }
      const float inv = l > 0 ? 1.0f / l : 0.0f;
      for (int64_t d = 0; d < hd; d++) out[d] = acc[d] * inv;
    }
  });
}

}  // namespace
}  // namespace labor::cpu
