// The AVX2 + FMA path of the training kernels: the shared templates over 8-wide vectors (vec_avx2.h), the
// 8 × 8 attention backward tiles (attention_backward_avx2.h) and a vectorised SwiGLU backward.
// No std containers here (see buffer.h): this TU may be compiled with ISA flags.
#include "cpu/vec_avx2.h"
#include "cpu/attention_backward_avx2.h"
#include "cpu/buffer.h"
#include "cpu/cross_entropy.h"
#include "cpu/ops.h"
#include "cpu/thread_pool.h"
#include "cpu/training_ops.h"
#include "cpu/tree_attention.h"

namespace labor::cpu::avx2 {

// silu(g) = g·σ(g), silu'(g) = σ(g)·(1 + g·(1 − σ(g))), 8 elements at a time; σ(g) = 1 / (1 + exp(−g)) from
// the same ExpPs as the AVX2 Swiglu forward (ops_avx2.cc).
void SwigluBackward(const float* gate, const float* up, const float* d_out, float* d_gate, float* d_up,
                    int64_t count) {
  ParallelForElements(count, [&](int64_t begin, int64_t end) {
    const __m256 one = _mm256_set1_ps(1.0f);
    for (int64_t i = begin; i < end; i += 8) {
      const int64_t valid = end - i;
      const __m256i mask = VecTailMask(valid < 8 ? valid : 8);
      // Read all before writing: the outputs may be the inputs.
      const __m256 g = _mm256_maskload_ps(gate + i, mask), u = _mm256_maskload_ps(up + i, mask);
      const __m256 dy = _mm256_maskload_ps(d_out + i, mask);
      const __m256 sigmoid = _mm256_div_ps(one, _mm256_add_ps(one, ExpPs(_mm256_sub_ps(_mm256_setzero_ps(), g))));
      const __m256 slope = _mm256_mul_ps(sigmoid, _mm256_fmadd_ps(g, _mm256_sub_ps(one, sigmoid), one));
      _mm256_maskstore_ps(d_gate + i, mask, _mm256_mul_ps(_mm256_mul_ps(dy, u), slope));
      _mm256_maskstore_ps(d_up + i, mask, _mm256_mul_ps(_mm256_mul_ps(dy, g), sigmoid));
    }
  });
}

void CrossEntropy(const CrossEntropyArgs& args) { CrossEntropyRows<Vec>(args); }
void AttentionBackward(const AttentionBackwardArgs& args) { AttentionBackwardTiles(args); }

// The prefix ranges go through the query-blocked Attention kernel (8 queries in the vector lanes; a trie
// block's rows all share one range, so each key is loaded once per 8 rows), which also returns each row's
// log-sum-exp; then every row adds its few extra keys (trie ancestors and itself) to that state.
void TreeAttention(const TreeAttentionArgs& p) {
  const int64_t rows = p.queries * p.heads;
  AlignedBuffer lse(sizeof(float) * static_cast<size_t>(rows > 0 ? rows : 1));
  AttentionArgs prefix{p.q, p.k, p.v, p.prefix_start, p.prefix_end, p.out, p.queries, p.keys, p.heads, p.kv_heads, p.head_dim, p.scale};
  prefix.lse = static_cast<float*>(lse.data());
  avx2::Attention(prefix);
  TreeAttentionRows<Vec>(p, prefix.lse);
}

}  // namespace labor::cpu::avx2
