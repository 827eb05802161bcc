// Heap storage for kernels, defined out of line in buffer.cc.
//
// Kernel translation units are compiled with ISA flags; they avoid std containers because a template
// instantiated in them (std::vector<float>::resize, say) could be compiled with AVX-512 and then picked
// by the linker for the scalar path too. These functions live in a TU built for the baseline ISA.
#pragma once
#include <cstddef>

namespace labor::cpu {

// 64-byte aligned storage that is freed when the object dies (for large, per-call buffers).
class AlignedBuffer {
 public:
  explicit AlignedBuffer(size_t bytes);
  ~AlignedBuffer();
  AlignedBuffer(const AlignedBuffer&) = delete;
  AlignedBuffer& operator=(const AlignedBuffer&) = delete;
  void* data() const;

 private:
  void* data_;
};

// Per-thread 64-byte aligned scratch for small per-task buffers (packing panels, accumulators): `slot`
// in [0, kScratchSlots) picks one of several independent buffers; each grows to the largest size asked
// and lives as long as the thread. Contents are unspecified.
constexpr int kScratchSlots = 6;
void* ThreadScratch(int slot, size_t bytes);

}  // namespace labor::cpu
