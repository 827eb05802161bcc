// cos θ and sin θ of HF's half-split RoPE for the rows of one call, each computed once per distinct position
// (shared by Rope in ops_scalar.cc and RopeBackward in backward.cc).
//
// θ = f32(position · invFreq[i]) as HF computes it; cos and sin are taken in double and rounded to f32, so the
// only rounding that matters is HF's own. Packed training batches repeat positions (8 sequences of 256 tokens
// hold 256 distinct ones among 2,048 rows), so the table is indexed by position − min when the positions span
// no more values than there are rows, and by row otherwise: the same values as computing them per row, at
// most once per row.
#pragma once
#include <math.h>

#include <cstdint>
#include <vector>

#include "cpu/thread_pool.h"

namespace labor::cpu {
namespace {

class RopeAngles {
 public:
  RopeAngles(const int32_t* positions, int64_t tokens, const float* inv_freq, int64_t half)
      : positions_(positions), half_(half) {
    int64_t lo = 0, hi = -1;
    for (int64_t t = 0; t < tokens; t++) {
      if (t == 0 || positions[t] < lo) lo = positions[t];
      if (t == 0 || positions[t] > hi) hi = positions[t];
    }
    by_position_ = tokens > 0 && hi - lo + 1 <= tokens;
    lo_ = lo;
    const int64_t slots = by_position_ ? hi - lo + 1 : tokens;
    table_.resize(static_cast<size_t>(slots * 2 * half));
    ParallelFor(slots, [&](int64_t begin, int64_t end) {
      for (int64_t slot = begin; slot < end; slot++) {
        const float position = static_cast<float>(by_position_ ? lo + slot : positions[slot]);
        float* row = table_.data() + slot * 2 * half;
        for (int64_t i = 0; i < half; i++) {
          double s, c;
          sincos(static_cast<double>(position * inv_freq[i]), &s, &c);
          row[i] = static_cast<float>(c);
          row[half + i] = static_cast<float>(s);
        }
      }
    });
  }

  /** cos θ of row t's pairs (half values); its sin θ follow at + half. */
  const float* Row(int64_t t) const {
    const int64_t slot = by_position_ ? positions_[t] - lo_ : t;
    return table_.data() + slot * 2 * half_;
  }

 private:
  const int32_t* positions_;
  int64_t half_;
  bool by_position_ = false;
  int64_t lo_ = 0;
  std::vector<float> table_;
};

}  // namespace
}  // namespace labor::cpu
