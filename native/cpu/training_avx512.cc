// The AVX-512 path of the training kernels: the shared templates over 16-wide vectors (vec_avx512.h).
// No std containers here (see buffer.h): this TU may be compiled with ISA flags.
// GCC 12 warns inside its own AVX-512 intrinsics (_mm512_undefined_* operands, GCC bug 105593).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include "cpu/vec_avx512.h"
#include "cpu/attention_backward.h"
#include "cpu/cross_entropy.h"
#include "cpu/training_ops.h"
#include "cpu/tree_attention.h"

namespace labor::cpu::avx512 {

void CrossEntropy(const CrossEntropyArgs& args) { CrossEntropyRows<Vec>(args); }
void AttentionBackward(const AttentionBackwardArgs& args) { AttentionBackwardRows<Vec>(args); }
void TreeAttention(const TreeAttentionArgs& args) { TreeAttentionRows<Vec>(args); }

}  // namespace labor::cpu::avx512
