// Online-softmax attention shared by the AVX2 and AVX-512 paths (internal linkage as in numeric.h).
//
// One (query, head) row per pool index. Keys are taken kKeyBlock at a time: the block's scores
// s_j = scale · q·k_j, then the running max mx grows to cover them (rescaling the running sum l and the
// accumulator acc = Σ exp(s_j − mx)·v_j by exp(old − new)), then each key adds exp(s_j − mx) to l and
// exp(s_j − mx)·v_j to acc. out = acc / l; an empty key range gives zeros. No Tq × Tk matrix exists.
// lse = mx + log l when asked for (attention backward recomputes the probabilities from it).
//
// Vec provides Dot(a, b, n), Axpy(w, x, y, n) (y += w·x) and Scale(y, s, n) (y *= s) over n floats.
#pragma once
#include <math.h>

#include <cstdint>

#include "cpu/buffer.h"
#include "cpu/ops.h"
#include "cpu/thread_pool.h"

namespace labor::cpu {
namespace {

constexpr int64_t kKeyBlock = 64;

template <class Vec>
void AttentionOnline(const AttentionArgs& p) {
  const int64_t hd = p.head_dim, group = p.heads / p.kv_heads, kv_stride = p.kv_heads * hd;
  ParallelFor(p.queries * p.heads, [&](int64_t begin, int64_t end) {
    float* acc = static_cast<float*>(ThreadScratch(0, sizeof(float) * (hd > 0 ? hd : 1)));
    float scores[kKeyBlock];
    for (int64_t r = begin; r < end; r++) {
      const int64_t t = r / p.heads, kvh = (r % p.heads) / group;
      const float* q = p.q + r * hd;
      const float* keys = p.k + kvh * hd;
      const float* values = p.v + kvh * hd;
      float mx = -INFINITY, l = 0;
      for (int64_t d = 0; d < hd; d++) acc[d] = 0;
      for (int64_t j0 = p.key_start[t]; j0 < p.key_end[t]; j0 += kKeyBlock) {
        const int64_t count = p.key_end[t] - j0 < kKeyBlock ? p.key_end[t] - j0 : kKeyBlock;
        float block_max = -INFINITY;
        for (int64_t j = 0; j < count; j++) {
          scores[j] = p.scale * Vec::Dot(q, keys + (j0 + j) * kv_stride, hd);
          block_max = scores[j] > block_max ? scores[j] : block_max;
        }
        if (block_max > mx) {
          const float correction = expf(mx - block_max);  // 0 on the first block (mx = −inf)
          l *= correction;
          Vec::Scale(acc, correction, hd);
          mx = block_max;
        }
        for (int64_t j = 0; j < count; j++) {
          const float weight = expf(scores[j] - mx);
          l += weight;
          Vec::Axpy(weight, values + (j0 + j) * kv_stride, acc, hd);
        }
      }
      float* out = p.out + r * hd;
      const float inv = l > 0 ? 1.0f / l : 0.0f;
      for (int64_t d = 0; d < hd; d++) out[d] = acc[d] * inv;
      if (p.lse != nullptr) p.lse[r] = l > 0 ? mx + logf(l) : -INFINITY;
    }
  });
}

}  // namespace
}  // namespace labor::cpu
