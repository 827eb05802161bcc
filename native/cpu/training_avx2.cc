// The AVX2 + FMA path of the training kernels: the shared templates over 8-wide vectors (vec_avx2.h).
// No std containers here (see buffer.h): this TU may be compiled with ISA flags.
#include "cpu/vec_avx2.h"
#include "cpu/attention_backward.h"
#include "cpu/cross_entropy.h"
#include "cpu/training_ops.h"
#include "cpu/tree_attention.h"

namespace labor::cpu::avx2 {

void CrossEntropy(const CrossEntropyArgs& args) { CrossEntropyRows<Vec>(args); }
void AttentionBackward(const AttentionBackwardArgs& args) { AttentionBackwardRows<Vec>(args); }
void TreeAttention(const TreeAttentionArgs& args) { TreeAttentionRows<Vec>(args); }

}  // namespace labor::cpu::avx2
