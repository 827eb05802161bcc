// Routes the per-ISA training kernels to the path chosen in isa.cc. They are f32 throughout, so the AMX
// path runs the AVX-512 kernels.
#include "cpu/isa.h"
#include "cpu/training_ops.h"

namespace labor::cpu {

void SwigluBackward(const float* gate, const float* up, const float* d_out, float* d_gate, float* d_up,
                    int64_t count) {
  switch (SelectedIsa()) {
    case Isa::kAmx:
    case Isa::kAvx512: return avx512::SwigluBackward(gate, up, d_out, d_gate, d_up, count);
    case Isa::kAvx2: return avx2::SwigluBackward(gate, up, d_out, d_gate, d_up, count);
    case Isa::kScalar: return scalar::SwigluBackward(gate, up, d_out, d_gate, d_up, count);
  }
}

void CrossEntropy(const CrossEntropyArgs& args) {
  switch (SelectedIsa()) {
    case Isa::kAmx:
    case Isa::kAvx512: return avx512::CrossEntropy(args);
    case Isa::kAvx2: return avx2::CrossEntropy(args);
    case Isa::kScalar: return scalar::CrossEntropy(args);
  }
}

void AttentionBackward(const AttentionBackwardArgs& args) {
  switch (SelectedIsa()) {
    case Isa::kAmx:
    case Isa::kAvx512: return avx512::AttentionBackward(args);
    case Isa::kAvx2: return avx2::AttentionBackward(args);
    case Isa::kScalar: return scalar::AttentionBackward(args);
  }
}

void TreeAttention(const TreeAttentionArgs& args) {
  switch (SelectedIsa()) {
    case Isa::kAmx:
    case Isa::kAvx512: return avx512::TreeAttention(args);
    case Isa::kAvx2: return avx2::TreeAttention(args);
    case Isa::kScalar: return scalar::TreeAttention(args);
  }
}

}  // namespace labor::cpu
