// Routes the ISA-specific kernels to the path chosen in isa.cc.
#include "cpu/isa.h"
#include "cpu/ops.h"

namespace labor::cpu {

void Matmul(const MatmulArgs& args) {
  switch (SelectedIsa()) {
    case Isa::kAmx: return amx::Matmul(args);
    case Isa::kAvx512: return avx512::Matmul(args);
    case Isa::kAvx2: return avx2::Matmul(args);
    case Isa::kScalar: return scalar::Matmul(args);
  }
}

void Attention(const AttentionArgs& args) {
  switch (SelectedIsa()) {
    case Isa::kAmx:  // attention is f32 throughout: AMX brings nothing, AVX-512 does it
    case Isa::kAvx512: return avx512::Attention(args);
    case Isa::kAvx2: return avx2::Attention(args);
    case Isa::kScalar: return scalar::Attention(args);
  }
}

}  // namespace labor::cpu
