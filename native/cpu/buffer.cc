#include "cpu/buffer.h"

#include <cstdlib>
#include <new>

namespace labor::cpu {
namespace {

constexpr size_t kAlignment = 64;

void* AllocateAligned(size_t bytes) {
  // aligned_alloc wants a size that is a multiple of the alignment; never ask for 0 bytes.
  const size_t rounded = (bytes + kAlignment - 1) / kAlignment * kAlignment;
  void* p = std::aligned_alloc(kAlignment, rounded == 0 ? kAlignment : rounded);
  if (p == nullptr) throw std::bad_alloc();
  return p;
}

struct Scratch {
  void* data[kScratchSlots] = {};
  size_t size[kScratchSlots] = {};
  ~Scratch() {
    for (void* p : data) std::free(p);
  }
};

}  // namespace

AlignedBuffer::AlignedBuffer(size_t bytes) : data_(AllocateAligned(bytes)) {}
AlignedBuffer::~AlignedBuffer() { std::free(data_); }
void* AlignedBuffer::data() const { return data_; }

void* ThreadScratch(int slot, size_t bytes) {
  thread_local Scratch scratch;
  if (bytes > scratch.size[slot]) {
    std::free(scratch.data[slot]);
    scratch.data[slot] = nullptr;
    scratch.size[slot] = 0;
    scratch.data[slot] = AllocateAligned(bytes);
    scratch.size[slot] = bytes;
  }
  return scratch.data[slot];
}

}  // namespace labor::cpu
