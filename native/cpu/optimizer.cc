// Elementwise training ops: fill, scale, Σx² and the AdamW step. Memory-bound, one implementation for every
// ISA (plain loops the compiler vectorises), chunks of elements spread over the thread pool.
#include <math.h>

#include "cpu/buffer.h"
#include "cpu/thread_pool.h"
#include "cpu/training_ops.h"

namespace labor::cpu {

void Fill(float* x, int64_t count, float value) {
  ParallelForElements(count, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; i++) x[i] = value;
  });
}

void Scale(const float* x, float factor, float* out, int64_t count) {
  ParallelForElements(count, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; i++) out[i] = x[i] * factor;
  });
}

double SumOfSquares(const float* x, int64_t count) {
  // Chunk c holds elements [c·kChunk, (c+1)·kChunk); its f64 partial sum lands in partial[c] and the
  // partials are added in order, so the thread count never changes the result.
  constexpr int64_t kChunk = 4096;
  const int64_t chunks = (count + kChunk - 1) / kChunk;
  if (chunks == 0) return 0;
  AlignedBuffer buffer(sizeof(double) * static_cast<size_t>(chunks));
  double* partial = static_cast<double*>(buffer.data());
  ParallelFor(chunks, [&](int64_t begin, int64_t end) {
    for (int64_t c = begin; c < end; c++) {
      const int64_t stop = (c + 1) * kChunk < count ? (c + 1) * kChunk : count;
      double sum = 0;
      for (int64_t i = c * kChunk; i < stop; i++) sum += static_cast<double>(x[i]) * x[i];
      partial[c] = sum;
    }
  });
  double total = 0;
  for (int64_t c = 0; c < chunks; c++) total += partial[c];
  return total;
}

// REFERENCE §6 (PyTorch AdamW): decay first on the pre-update weight, then the moments, then the bias-
// corrected step with eps outside the square root. Every per-step coefficient (1 − β, 1/(1 − βᵗ), 1 − γλ)
// is formed in f64 and rounded once; the per-element arithmetic is f32.
void AdamW(const AdamWArgs& p) {
  const double t = static_cast<double>(p.step);
  const float inv_bias1 = static_cast<float>(1.0 / (1.0 - pow(p.beta1, t)));
  const float inv_bias2 = static_cast<float>(1.0 / (1.0 - pow(p.beta2, t)));
  const float decay = static_cast<float>(1.0 - p.learning_rate * p.weight_decay);
  const float b1 = static_cast<float>(p.beta1), one_minus_b1 = static_cast<float>(1.0 - p.beta1);
  const float b2 = static_cast<float>(p.beta2), one_minus_b2 = static_cast<float>(1.0 - p.beta2);
  const float lr = static_cast<float>(p.learning_rate), eps = static_cast<float>(p.epsilon);
  ParallelForElements(p.count, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; i++) {
      const float g = p.grad[i];
      const float m = b1 * p.m[i] + one_minus_b1 * g;
      const float v = b2 * p.v[i] + one_minus_b2 * g * g;
      p.m[i] = m;
      p.v[i] = v;
      p.param[i] = p.param[i] * decay - lr * (m * inv_bias1) / (sqrtf(v * inv_bias2) + eps);
    }
  });
}

}  // namespace labor::cpu
