// libFuzzer harness (clang, ASan + UBSan): the CPU kernels that bytes read from a checkpoint reach —
// Convert (bf16/f16/f32 tensors to compute dtype), Embedding (a table gathered by token ids), RmsNorm (a
// norm weight), PackWeight + Matmul (a frozen bf16/f16/f32 weight) — on every ISA this CPU has, with
// arbitrary bit patterns as data and shapes taken from the input. The harness passes exactly what
// native/addon/cpu_ops.cc lets through after its checks (lengths = product of the sizes, ids in
// [0, vocab), disjoint outputs), each array in its own heap block of exactly that length, so ASan
// reports any read or write a kernel makes outside what it was validated for, and UBSan any UB on
// NaN/Inf/subnormal inputs or odd shapes (tails of the vector loops).
//
// The safetensors header and offsets, the GGUF header and the binary predictions layout are parsed in
// TypeScript (src/io/safetensors.ts, src/io/gguf.ts, src/score/predictions-binary.ts; fuzzed by
// fuzz/js/); the only native code on the safetensors path before these kernels is mapFile (open, fstat,
// mmap of the whole file: no parsing).
#include <cstdint>
#include <cstring>
#include <vector>

#include "cpu/isa.h"
#include "cpu/ops.h"
#include "cpu/thread_pool.h"

namespace {

using labor::cpu::DType;

// Reads the fuzz input front to back; past its end every read gives zeros.
struct Input {
  const uint8_t* data;
  size_t size, pos = 0;
  uint8_t Byte() { return pos < size ? data[pos++] : 0; }
  int64_t Size(int64_t max) { return Byte() % (max + 1); }
  // Fills `bytes` bytes from the input, repeating it (so data is arbitrary bit patterns).
  void Fill(void* out, size_t bytes) {
    auto* o = static_cast<uint8_t*>(out);
    for (size_t i = 0; i < bytes; i++) o[i] = size ? data[(pos + i) % size] : 0;
  }
};

DType DTypeOf(uint8_t byte) { return byte % 3 == 0 ? DType::kF32 : byte % 3 == 1 ? DType::kBf16 : DType::kF16; }
size_t Width(DType dtype) { return dtype == DType::kF32 ? 4 : 2; }

// One exactly sized heap block per array (new[] of 0 elements is a valid, empty block).
std::vector<uint8_t> Array(Input& in, int64_t elements, size_t width) {
  std::vector<uint8_t> block(static_cast<size_t>(elements) * width);
  in.Fill(block.data(), block.size());
  block.shrink_to_fit();
  return block;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const bool init = [] { labor::cpu::ThreadPool::Global().SetThreads(1); return true; }();
  (void)init;
  Input in{data, size};
  const auto& isas = labor::cpu::DetectIsa().available;
  labor::cpu::SelectIsa(isas[in.Byte() % isas.size()]);
  switch (in.Byte() % 4) {
    case 0: {  // convert(src, srcDtype, dst, dstDtype, count)
      const DType from = DTypeOf(in.Byte()), to = DTypeOf(in.Byte());
      const int64_t count = in.Size(200);
      auto src = Array(in, count, Width(from));
      std::vector<uint8_t> dst(static_cast<size_t>(count) * Width(to));
      labor::cpu::Convert(src.data(), from, dst.data(), to, count);
      break;
    }
    case 1: {  // embedding(ids, table, tableDtype, out, vocab, dim): ids checked in [0, vocab)
      const DType dtype = DTypeOf(in.Byte());
      const int64_t vocab = 1 + in.Size(40), dim = in.Size(70), count = in.Size(20);
      std::vector<int32_t> ids(static_cast<size_t>(count));
      for (auto& id : ids) id = in.Byte() % vocab;
      auto table = Array(in, vocab * dim, Width(dtype));
      std::vector<float> out(static_cast<size_t>(count * dim));
      labor::cpu::Embedding(ids.data(), count, table.data(), dtype, dim, out.data());
      break;
    }
    case 2: {  // rmsnorm(x, weight, weightDtype, out, rows, dim, eps)
      const DType dtype = DTypeOf(in.Byte());
      const int64_t rows = in.Size(6), dim = in.Size(100);
      auto x = Array(in, rows * dim, 4);
      auto weight = Array(in, dim, Width(dtype));
      std::vector<float> out(static_cast<size_t>(rows * dim));
      labor::cpu::RmsNorm(reinterpret_cast<const float*>(x.data()), weight.data(), dtype, out.data(), rows, dim,
                          1e-5f);
      break;
    }
    case 3: {  // packWeight(b, n, k, transB) then matmul(a, b, ..., packed)
      const uint8_t flags = in.Byte();
      const DType dtype = DTypeOf(in.Byte());
      const int64_t m = in.Size(20), n = in.Size(40), k = in.Size(70);
      const bool trans_a = flags & 1, trans_b = flags & 2, accumulate = flags & 4;
      auto a = Array(in, m * k, 4);
      auto b = Array(in, k * n, Width(dtype));
      std::vector<float> out(static_cast<size_t>(m * n));
      std::unique_ptr<labor::cpu::PackedWeight> packed;
      if (dtype == DType::kBf16 && (flags & 8)) {
        packed = labor::cpu::PackWeight(reinterpret_cast<const uint16_t*>(b.data()), n, k, trans_b);
      }
      labor::cpu::MatmulArgs args{reinterpret_cast<const float*>(a.data()), b.data(), dtype, out.data(), 1, m, n, k,
                                  trans_a, trans_b, false, accumulate};
      args.packed_b = packed.get();
      labor::cpu::Matmul(args);
      break;
    }
  }
  return 0;
}
