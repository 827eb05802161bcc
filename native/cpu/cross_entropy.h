// Fused cross-entropy over rows of logits, shared by the per-ISA training TUs (internal linkage as in
// numeric.h). REFERENCE §6: per row z with target y,
//   mx = max z,  S = Σ exp(z_j − mx),  loss = (mx − z_y) + log S,  dz_j = gradScale·(exp(z_j − mx)/S − [j = y]).
// Three streaming passes over the row (max, Σ exp, gradient); z_y is read before the row is overwritten,
// so d_logits may be logits itself. A target of −1 gives loss 0 and a zero gradient row.
//
// Vec provides Max(x, n), ExpSum(x, shift, n) = Σ exp(x_i − shift), ExpScale(x, shift, f, y, n):
// y_i = f·exp(x_i − shift) (y may be x) and Zero(y, n).
#pragma once
#include <math.h>

#include <cstdint>

#include "cpu/thread_pool.h"
#include "cpu/training_ops.h"

namespace labor::cpu {
namespace {

template <class Vec>
void CrossEntropyRows(const CrossEntropyArgs& p) {
  const int64_t vocab = p.vocab;
  ParallelFor(p.rows, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; r++) {
      const float* z = p.logits + r * vocab;
      float* dz = p.d_logits + r * vocab;
      const int32_t y = p.targets[r];
      if (y < 0) {
        p.losses[r] = 0;
        Vec::Zero(dz, vocab);
        continue;
      }
      const float z_y = z[y];
      const float mx = Vec::Max(z, vocab);
      const float sum = Vec::ExpSum(z, mx, vocab);
      // lse = mx + log S is never rounded to f32: near a large mx its rounding (half an ulp of mx) would
      // shift every probability, while z_j − mx is exact for nearby values.
      p.losses[r] = (mx - z_y) + logf(sum);
      Vec::ExpScale(z, mx, p.grad_scale / sum, dz, vocab);
      dz[y] -= p.grad_scale;
    }
  });
}

}  // namespace
}  // namespace labor::cpu
