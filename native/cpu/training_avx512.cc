// The AVX-512 path of the training kernels: the shared templates over 16-wide vectors (vec_avx512.h).
// No std containers here (see buffer.h): this TU may be compiled with ISA flags.
// GCC 12 warns inside its own AVX-512 intrinsics (_mm512_undefined_* operands, GCC bug 105593).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include "cpu/vec_avx512.h"
#include "cpu/attention_backward_avx512.h"
#include "cpu/buffer.h"
#include "cpu/cross_entropy.h"
#include "cpu/ops.h"
#include "cpu/training_ops.h"
#include "cpu/tree_attention.h"

namespace labor::cpu::avx512 {

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
