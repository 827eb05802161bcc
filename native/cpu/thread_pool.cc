#include "cpu/thread_pool.h"

#include <algorithm>

namespace labor::cpu {
namespace {
// True on pool workers and on a caller inside Run: a nested Run must not wait on the pool it is part of.
thread_local bool inside_pool = false;
}  // namespace

ThreadPool& ThreadPool::Global() {
  static ThreadPool pool;
  return pool;
}

ThreadPool::ThreadPool() {
  const unsigned hardware = std::thread::hardware_concurrency();
  StartWorkers(hardware == 0 ? 1 : static_cast<int>(hardware));
}

ThreadPool::~ThreadPool() { StopWorkers(); }

void ThreadPool::SetThreads(int count) {
  std::lock_guard<std::mutex> run_lock(run_mutex_);
  if (count < 1) count = 1;
  if (count == Threads()) return;
  StopWorkers();
  StartWorkers(count);
}

int ThreadPool::Threads() const { return static_cast<int>(workers_.size()) + 1; }

void ThreadPool::StartWorkers(int count) {
  stopping_ = false;
  // New workers start at the current generation, so they wait for the next Run.
  const uint64_t generation = generation_;
  for (int i = 1; i < count; i++) workers_.emplace_back([this, generation] { WorkerLoop(generation); });
}

void ThreadPool::StopWorkers() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  for (std::thread& worker : workers_) worker.join();
  workers_.clear();
}

void ThreadPool::WorkerLoop(uint64_t seen) {
  inside_pool = true;
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, [&] { return stopping_ || generation_ != seen; });
      if (stopping_) return;
      seen = generation_;
    }
    Drain();
    {
      std::lock_guard<std::mutex> lock(mutex_);
      finished_workers_++;
    }
    done_.notify_one();
  }
}

void ThreadPool::Drain() {
  for (;;) {
    const int64_t begin = next_.fetch_add(grain_, std::memory_order_relaxed);
    if (begin >= count_) return;
    try {
      task_(context_, begin, std::min(begin + grain_, count_));
    } catch (...) {
      std::lock_guard<std::mutex> lock(mutex_);
      if (!error_) error_ = std::current_exception();
      next_.store(count_, std::memory_order_relaxed);  // stop handing out work
    }
  }
}

void ThreadPool::Run(int64_t n, Task task, void* context) {
  if (n <= 0) return;
  if (inside_pool || workers_.empty() || n == 1) {
    task(context, 0, n);
    return;
  }
  std::lock_guard<std::mutex> run_lock(run_mutex_);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    task_ = task;
    context_ = context;
    count_ = n;
    // About 4 chunks per thread: enough to balance uneven rows, few enough to keep the counter cold.
    grain_ = std::max<int64_t>(1, n / (4 * static_cast<int64_t>(Threads())));
    next_.store(0, std::memory_order_relaxed);
    error_ = nullptr;
    finished_workers_ = 0;
    generation_++;
  }
  wake_.notify_all();
  inside_pool = true;
  Drain();
  inside_pool = false;
  std::exception_ptr error;
  {
    // Every worker takes part in every generation (even if only to find the counter exhausted), and we
    // wait for all of them: a worker that woke late must not read the job fields after the next Run has
    // started rewriting them.
    std::unique_lock<std::mutex> lock(mutex_);
    done_.wait(lock, [&] { return finished_workers_ == workers_.size(); });
    error = error_;
  }
  if (error) std::rethrow_exception(error);
}

}  // namespace labor::cpu
