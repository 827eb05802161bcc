// Training and scoring kernels (the Backend ops added for training: backward ops, fused cross-entropy,
// AdamW, reductions, tree attention). Arguments are trusted, as in ops.h: native/addon/cpu_ops.cc has
// validated every size, index, range and aliasing rule first. Accumulation is in f32 unless stated.
#pragma once
#include <cstdint>

#include "cpu/ops.h"

namespace labor::cpu {

// ---- elementwise and reductions (optimizer.cc: one implementation, compiler-vectorised) ----

void Fill(float* x, int64_t count, float value);
// out may equal x.
void Scale(const float* x, float factor, float* out, int64_t count);
// Σ x² in f64: fixed-size chunks summed in chunk order, so the result doesn't depend on the thread count.
double SumOfSquares(const float* x, int64_t count);

// The hyperparameters stay f64 until the per-step coefficients are formed: 1 − β₂ from an f32 β₂ = 0.999
// would be off by 1.3e-5 relative.
struct AdamWArgs {
  float* param;
  const float* grad;
  float* m;
  float* v;
  int64_t count;
  double learning_rate, beta1, beta2, epsilon, weight_decay;
  int64_t step;  // t ≥ 1
};
// REFERENCE §6: θ −= γλθ; m = β₁m + (1−β₁)g; v = β₂v + (1−β₂)g²; θ −= γ·m̂/(√v̂ + ε).
void AdamW(const AdamWArgs& args);

// ---- backward of the simple forward ops (backward.cc) ----

// d_table[ids[t]] += d_out[t] for t < count (ids already in [0, vocab)). Threads own column slices of
// d_table, so repeated ids never race and the sum order per element is fixed (t ascending).
void EmbeddingBackward(const int32_t* ids, int64_t count, const float* d_out, int64_t dim, float* d_table);
// For out = x · r · w with r = rsqrt(mean(x²) + eps): dx = r·(w⊙dy) − x · r³/dim · Σ(w⊙dy⊙x) (written);
// d_weight += Σ_rows dy ⊙ x · r unless null (threads own column slices of d_weight).
void RmsNormBackward(const float* x, const void* weight, DType weight_dtype, const float* d_out, float* dx,
                     float* d_weight, int64_t rows, int64_t dim, float eps);
// dx = rotation by −θ of d_out (the transpose of RoPE's rotation); dx may equal d_out.
void RopeBackward(const float* d_out, const int32_t* positions, const float* inv_freq, float* dx,
                  int64_t tokens, int64_t heads, int64_t head_dim);
// out = silu(g)·u: d_up = dy·silu(g); d_gate = dy·u·σ(g)·(1 + g·(1 − σ(g))). The entry point routes to the
// selected ISA (training_dispatch.cc): the AVX-512 and AVX2 kernels (training_avx512.cc, training_avx2.cc)
// take σ from the same exp as their forward (ExpPs, vec_avx512.h / vec_avx2.h), the scalar one from libm's
// expf (backward.cc).
void SwigluBackward(const float* gate, const float* up, const float* d_out, float* d_gate, float* d_up,
                    int64_t count);

// ---- per-ISA kernels (training_scalar.cc, training_avx2.cc, training_avx512.cc) ----

// losses[r] = lse(z_r) − z_r[y_r], d_logits[r] = grad_scale·(softmax(z_r) − onehot(y_r)); target −1 gives
// loss 0 and a zero gradient row. d_logits may equal logits (then overwritten), nothing else overlaps.
struct CrossEntropyArgs {
  const float* logits;
  const int32_t* targets;
  float* losses;
  float* d_logits;
  int64_t rows, vocab;
  float grad_scale;
};

// Flash-style backward of attention with per-query key ranges (shapes as AttentionArgs). Probabilities
// are recomputed from q·k and the forward's lse; D = dOut·out per (query, head). dq is written by a pass
// over (query, head) rows, dk and dv by a second pass over (key, kv head) rows, so no two threads write
// the same gradient row and the result doesn't depend on the thread count.
struct AttentionBackwardArgs {
  const float* q;
  const float* k;
  const float* v;
  const float* out;
  const float* d_out;
  const float* lse;
  const int32_t* key_start;
  const int32_t* key_end;
  float* dq;
  float* dk;
  float* dv;
  int64_t queries, keys, heads, kv_heads, head_dim;
  float scale;
};

// Query t attends keys [prefix_start[t], prefix_end[t]) then keys extra_keys[extra_offsets[t] ..
// extra_offsets[t+1]) (online softmax over both); shapes as AttentionArgs. No keys gives zeros.
struct TreeAttentionArgs {
  const float* q;
  const float* k;
  const float* v;
  const int32_t* prefix_start;
  const int32_t* prefix_end;
  const int32_t* extra_offsets;
  const int32_t* extra_keys;
  float* out;
  int64_t queries, keys, heads, kv_heads, head_dim;
  float scale;
};

namespace scalar {
void SwigluBackward(const float* gate, const float* up, const float* d_out, float* d_gate, float* d_up,
                    int64_t count);
void CrossEntropy(const CrossEntropyArgs& args);
void AttentionBackward(const AttentionBackwardArgs& args);
void TreeAttention(const TreeAttentionArgs& args);
}  // namespace scalar
namespace avx2 {
void SwigluBackward(const float* gate, const float* up, const float* d_out, float* d_gate, float* d_up,
                    int64_t count);
void CrossEntropy(const CrossEntropyArgs& args);
void AttentionBackward(const AttentionBackwardArgs& args);
void TreeAttention(const TreeAttentionArgs& args);
}  // namespace avx2
namespace avx512 {
void SwigluBackward(const float* gate, const float* up, const float* d_out, float* d_gate, float* d_up,
                    int64_t count);
void CrossEntropy(const CrossEntropyArgs& args);
void AttentionBackward(const AttentionBackwardArgs& args);
void TreeAttention(const TreeAttentionArgs& args);
}  // namespace avx512

// Entry points: route to the selected ISA's kernel (training_dispatch.cc; AMX uses AVX-512: all f32).
void CrossEntropy(const CrossEntropyArgs& args);
void AttentionBackward(const AttentionBackwardArgs& args);
void TreeAttention(const TreeAttentionArgs& args);

}  // namespace labor::cpu
