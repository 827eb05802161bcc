// The AVX-512 path of the training kernels: the shared templates over 16-wide vectors (vec_avx512.h).
// No std containers here (see buffer.h): this TU may be compiled with ISA flags.
// GCC 12 warns inside its own AVX-512 intrinsics (_mm512_undefined_* operands, GCC bug 105593).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include "cpu/vec_avx512.h"
#include "cpu/attention_backward_avx512.h"
#include "cpu/buffer.h"
#include "cpu/cross_entropy.h"
#include "cpu/ops.h"
#include "cpu/thread_pool.h"
#include "cpu/training_ops.h"
#include "cpu/tree_attention.h"

namespace labor::cpu::avx512 {

// silu(g) = g·σ(g), silu'(g) = σ(g)·(1 + g·(1 − σ(g))), 16 elements at a time; σ(g) = 1 / (1 + exp(−g)) as in
// the AVX-512 Swiglu forward (ops_avx512.cc), and, as there, plain loads for whole vectors (zero-masking loads
// on every vector cost a factor of about 3 on the Zen 5); only the tail is masked.
void SwigluBackward(const float* gate, const float* up, const float* d_out, float* d_gate, float* d_up,
                    int64_t count) {
  // Reads all three inputs before writing: the outputs may be the inputs.
  const auto step = [&](int64_t i, __m512 g, __m512 u, __m512 dy, __mmask16 valid) {
    const __m512 one = _mm512_set1_ps(1.0f);
    const __m512 sigmoid = _mm512_div_ps(one, _mm512_add_ps(one, ExpPs(_mm512_sub_ps(_mm512_setzero_ps(), g))));
    const __m512 slope = _mm512_mul_ps(sigmoid, _mm512_fmadd_ps(g, _mm512_sub_ps(one, sigmoid), one));
    _mm512_mask_storeu_ps(d_gate + i, valid, _mm512_mul_ps(_mm512_mul_ps(dy, u), slope));
    _mm512_mask_storeu_ps(d_up + i, valid, _mm512_mul_ps(_mm512_mul_ps(dy, g), sigmoid));
  };
  ParallelForElements(count, [&](int64_t begin, int64_t end) {
    int64_t i = begin;
    for (; i + 16 <= end; i += 16) {
      step(i, _mm512_loadu_ps(gate + i), _mm512_loadu_ps(up + i), _mm512_loadu_ps(d_out + i), static_cast<__mmask16>(0xFFFF));
    }
    if (i < end) {
      const __mmask16 valid = VecTailMask(end - i);
      step(i, _mm512_maskz_loadu_ps(valid, gate + i), _mm512_maskz_loadu_ps(valid, up + i),
           _mm512_maskz_loadu_ps(valid, d_out + i), valid);
    }
  });
}

void CrossEntropy(const CrossEntropyArgs& args) { CrossEntropyRows<Vec>(args); }
void AttentionBackward(const AttentionBackwardArgs& args) { AttentionBackwardTiles(args); }

// The prefix ranges go through the query-blocked Attention kernel (16 queries in the vector lanes; a trie
// block's rows all share one range, so each key is loaded once per 16 rows), which also returns each row's
// log-sum-exp; then every row adds its few extra keys (trie ancestors and itself) to that state.
void TreeAttention(const TreeAttentionArgs& p) {
  const int64_t rows = p.queries * p.heads;
  AlignedBuffer lse(sizeof(float) * static_cast<size_t>(rows > 0 ? rows : 1));
  AttentionArgs prefix{p.q, p.k, p.v, p.prefix_start, p.prefix_end, p.out, p.queries, p.keys, p.heads, p.kv_heads, p.head_dim, p.scale};
  prefix.lse = static_cast<float*>(lse.data());
  avx512::Attention(prefix);
  TreeAttentionRows<Vec>(p, prefix.lse);
}

}  // namespace labor::cpu::avx512
