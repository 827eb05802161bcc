// PackedWeight storage and the process-wide packing tally (ops.h). Baseline ISA, like buffer.cc.
#include <time.h>

#include <atomic>

#include "cpu/ops.h"

namespace labor::cpu {
namespace {

std::atomic<int64_t> live_weights{0}, live_bytes{0}, cached_packs{0}, cached_nanos{0};
std::atomic<int64_t> per_call_packs{0}, per_call_nanos{0};

int64_t Nanos(double seconds) { return static_cast<int64_t>(seconds * 1e9 + 0.5); }

}  // namespace

PackedWeight::PackedWeight(const uint16_t* source_, int64_t n_, int64_t k_, bool trans_b_, size_t bytes_)
    : source(source_), n(n_), k(k_), trans_b(trans_b_), bytes(bytes_), data(bytes_) {
  live_weights.fetch_add(1, std::memory_order_relaxed);
  live_bytes.fetch_add(static_cast<int64_t>(bytes), std::memory_order_relaxed);
}

PackedWeight::~PackedWeight() {
  live_weights.fetch_sub(1, std::memory_order_relaxed);
  live_bytes.fetch_sub(static_cast<int64_t>(bytes), std::memory_order_relaxed);
}

double PackClock() {
  timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  return static_cast<double>(now.tv_sec) + 1e-9 * static_cast<double>(now.tv_nsec);
}

void RecordCachedPack(double seconds) {
  cached_packs.fetch_add(1, std::memory_order_relaxed);
  cached_nanos.fetch_add(Nanos(seconds), std::memory_order_relaxed);
}

void RecordPerCallPack(double seconds) {
  per_call_packs.fetch_add(1, std::memory_order_relaxed);
  per_call_nanos.fetch_add(Nanos(seconds), std::memory_order_relaxed);
}

PackStats GetPackStats() {
  return PackStats{live_weights.load(),   live_bytes.load(),
                   cached_packs.load(),   1e-9 * static_cast<double>(cached_nanos.load()),
                   per_call_packs.load(), 1e-9 * static_cast<double>(per_call_nanos.load())};
}

}  // namespace labor::cpu
