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

std::unique_ptr<PackedWeight> PackWeight(const uint16_t* b, int64_t n, int64_t k, bool trans_b, Isa isa) {
  if (isa != Isa::kAmx) return nullptr;
  const double start = PackClock();
  const int64_t elements = amx::PackedBElements(n, k);
  auto packed = std::make_unique<PackedWeight>(b, n, k, trans_b, sizeof(uint16_t) * static_cast<size_t>(elements));
  amx::PackB(b, n, k, trans_b, static_cast<uint16_t*>(packed->data.data()));
  RecordCachedPack(PackClock() - start);
  return packed;
}

void Attention(const AttentionArgs& args) {
  switch (SelectedIsa()) {
    case Isa::kAmx:  // attention is f32 throughout: AMX brings nothing, AVX-512 does it
    case Isa::kAvx512: return avx512::Attention(args);
    case Isa::kAvx2: return avx2::Attention(args);
    case Isa::kScalar: return scalar::Attention(args);
  }
}

bool UseAvx512() { return SelectedIsa() >= Isa::kAvx512; }
bool UseAvx2() { return SelectedIsa() == Isa::kAvx2; }

void RmsNorm(const float* x, const void* weight, DType weight_dtype, float* out, int64_t rows, int64_t dim,
             float eps) {
  if (UseAvx512()) return avx512::RmsNorm(x, weight, weight_dtype, out, rows, dim, eps);
  if (UseAvx2()) return avx2::RmsNorm(x, weight, weight_dtype, out, rows, dim, eps);
  scalar::RmsNorm(x, weight, weight_dtype, out, rows, dim, eps);
}

void Swiglu(const float* gate, const float* up, float* out, int64_t count) {
  if (UseAvx512()) return avx512::Swiglu(gate, up, out, count);
  if (UseAvx2()) return avx2::Swiglu(gate, up, out, count);
  scalar::Swiglu(gate, up, out, count);
}

void LogSoftmax(const float* logits, float* out, int64_t rows, int64_t vocab) {
  if (UseAvx512()) return avx512::LogSoftmax(logits, out, rows, vocab);
  if (UseAvx2()) return avx2::LogSoftmax(logits, out, rows, vocab);
  scalar::LogSoftmax(logits, out, rows, vocab);
}

void LogSoftmaxGather(const float* logits, const int32_t* targets, float* out, int64_t rows, int64_t vocab) {
  if (UseAvx512()) return avx512::LogSoftmaxGather(logits, targets, out, rows, vocab);
  if (UseAvx2()) return avx2::LogSoftmaxGather(logits, targets, out, rows, vocab);
  scalar::LogSoftmaxGather(logits, targets, out, rows, vocab);
}

}  // namespace labor::cpu
