// A persistent pool of worker threads for the CPU kernels; the calling thread works too.
//
// Run(n, task) hands out the index range [0, n) in chunks through one atomic counter, so uneven work
// (causal attention rows get longer with t) still balances. Kernels give each index its own output rows,
// so threads never write the same cache line except at row boundaries of tiny rows.
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace labor::cpu {

class ThreadPool {
 public:
  using Task = void (*)(void* context, int64_t begin, int64_t end);

  // The process-wide pool, created with hardware_concurrency() threads (counting the caller).
  static ThreadPool& Global();

  ~ThreadPool();
  // Total threads including the caller; count ≥ 1.
  void SetThreads(int count);
  int Threads() const;
  // Calls task(context, begin, end) on disjoint chunks covering [0, n) and returns when all are done.
  // A nested call (from inside a task) runs serially on the calling thread. Rethrows a task's exception.
  void Run(int64_t n, Task task, void* context);

 private:
  ThreadPool();
  void StartWorkers(int count);
  void StopWorkers();
  void WorkerLoop(uint64_t seen);
  void Drain();  // take chunks until none are left

  std::vector<std::thread> workers_;
  std::mutex run_mutex_;  // one Run at a time
  std::mutex mutex_;
  std::condition_variable wake_;
  std::condition_variable done_;
  uint64_t generation_ = 0;
  bool stopping_ = false;
  size_t finished_workers_ = 0;  // workers done with the current generation

  // The current job (valid while a Run is in flight).
  Task task_ = nullptr;
  void* context_ = nullptr;
  int64_t count_ = 0;
  int64_t grain_ = 1;
  alignas(64) std::atomic<int64_t> next_{0};
  alignas(64) std::exception_ptr error_;
};

namespace {
// ParallelFor(n, [&](int64_t begin, int64_t end) { ... }) over the global pool. Internal linkage for the
// same reason as numeric.h: each ISA's translation unit gets its own copy.
template <class Function>
void ParallelFor(int64_t n, const Function& function) {
  ThreadPool::Global().Run(
      n,
      [](void* context, int64_t begin, int64_t end) { (*static_cast<const Function*>(context))(begin, end); },
      const_cast<Function*>(&function));
}

// Elementwise loops (one cheap index per element): below this many elements waking the pool costs more than
// the work (a Run's hand-off measured ~25 µs on a 2-vCPU VM, against ~2 µs for 32K f32 adds), so they run on
// the calling thread. Training's many small tensors (LoRA's A/B, their grads and moments, norm weights) gain.
constexpr int64_t kMinParallelElements = int64_t{1} << 15;

template <class Function>
void ParallelForElements(int64_t count, const Function& function) {
  if (count < kMinParallelElements) {
    if (count > 0) function(int64_t{0}, count);
    return;
  }
  ParallelFor(count, function);
}
}  // namespace

}  // namespace labor::cpu
