// Device selection, the op stream, error checks, stream-ordered allocation and readbacks.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>

#include "cuda/common.cuh"

namespace labor::cuda {
namespace {

__global__ void ProbeKernel(int* flag) {
  if (flag != nullptr) *flag = 1;
}

struct Context {
  bool ready = false;
  std::string error;
  cudaStream_t stream = nullptr;
  cudaStream_t readback_stream = nullptr;
};

std::string ErrorText(cudaError_t status) {
  return std::string(cudaGetErrorName(status)) + ": " + cudaGetErrorString(status);
}

DeviceInfo RunProbe() {
  DeviceInfo info;
  int count = 0;
  cudaError_t status = cudaGetDeviceCount(&count);
  cudaDriverGetVersion(&info.driver_version);
  cudaRuntimeGetVersion(&info.runtime_version);
  if (status != cudaSuccess) {
    info.reason = info.driver_version == 0
                      ? "no NVIDIA driver found (libcuda could not be loaded; cudaGetDeviceCount: " + ErrorText(status) + ")"
                      : "no usable NVIDIA GPU (cudaGetDeviceCount: " + ErrorText(status) + ")";
    if (status == cudaErrorInsufficientDriver && info.driver_version > 0) {
      info.reason += "; driver supports CUDA " + std::to_string(info.driver_version / 1000) + "." +
                     std::to_string(info.driver_version % 1000 / 10) + ", the addon was built with CUDA " +
                     std::to_string(info.runtime_version / 1000) + "." + std::to_string(info.runtime_version % 1000 / 10);
    }
    cudaGetLastError();
    return info;
  }
  if (count == 0) {
    info.reason = "no CUDA device found";
    return info;
  }
  const char* wanted = std::getenv("LABOR_CUDA_DEVICE");
  info.device = wanted != nullptr ? std::atoi(wanted) : 0;
  if (info.device < 0 || info.device >= count) {
    info.reason = "LABOR_CUDA_DEVICE=" + std::string(wanted) + " but there are " + std::to_string(count) + " devices";
    return info;
  }
  cudaDeviceProp prop;
  status = cudaGetDeviceProperties(&prop, info.device);
  if (status != cudaSuccess) {
    info.reason = "cudaGetDeviceProperties: " + ErrorText(status);
    cudaGetLastError();
    return info;
  }
  info.name = prop.name;
  info.major = prop.major;
  info.minor = prop.minor;
  info.multiprocessors = prop.multiProcessorCount;
  info.memory_bytes = static_cast<int64_t>(prop.totalGlobalMem);
  if (prop.major < 8) {
    info.reason = std::string(prop.name) + " has compute capability " + std::to_string(prop.major) + "." +
                  std::to_string(prop.minor) + "; the CUDA kernels need 8.0 or newer (bf16 tensor cores)";
    return info;
  }
  cudaFuncAttributes attributes;
  status = cudaSetDevice(info.device);
  if (status == cudaSuccess) status = cudaFuncGetAttributes(&attributes, ProbeKernel);
  if (status != cudaSuccess) {
    info.reason = "the addon has no kernel image for " + std::string(prop.name) + " (sm_" + std::to_string(prop.major) +
                  std::to_string(prop.minor) + "): " + ErrorText(status) +
                  "; rebuild with -DCMAKE_CUDA_ARCHITECTURES=" + std::to_string(prop.major) + std::to_string(prop.minor);
    cudaGetLastError();
    return info;
  }
  info.available = true;
  return info;
}

Context& GetContext() {
  static Context context;
  static std::once_flag once;
  std::call_once(once, [] {
    const DeviceInfo& info = Probe();
    if (!info.available) {
      context.error = "CUDA unavailable: " + info.reason;
      return;
    }
    cudaError_t status = cudaSetDevice(info.device);
    if (status == cudaSuccess) status = cudaStreamCreateWithFlags(&context.stream, cudaStreamNonBlocking);
    if (status == cudaSuccess) status = cudaStreamCreateWithFlags(&context.readback_stream, cudaStreamNonBlocking);
    if (status == cudaSuccess) {
      // Keep freed memory in the pool for reuse instead of returning it at every synchronize.
      cudaMemPool_t pool;
      if (cudaDeviceGetDefaultMemPool(&pool, info.device) == cudaSuccess) {
        uint64_t threshold = UINT64_MAX;
        cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &threshold);
      }
    }
    if (status != cudaSuccess) {
      context.error = "CUDA initialisation failed: " + ErrorText(status);
      cudaGetLastError();
      return;
    }
    context.ready = true;
  });
  if (!context.ready) throw CudaError(context.error);
  return context;
}

// Read at every launch (a getenv is far cheaper than a launch), so a benchmark can turn it on for one profiled
// step in the same process.
bool SyncEveryLaunch() {
  const char* value = std::getenv("LABOR_CUDA_SYNC");
  return value != nullptr && std::strcmp(value, "0") != 0 && value[0] != '\0';
}

}  // namespace

const DeviceInfo& Probe() {
  static const DeviceInfo info = RunProbe();
  return info;
}

cudaStream_t Stream() { return GetContext().stream; }

void Check(cudaError_t status, const char* what) {
  if (status != cudaSuccess) {
    cudaGetLastError();  // clear a non-sticky error so the next op starts clean
    throw CudaError(std::string(what) + ": " + ErrorText(status));
  }
}

void CheckLaunch(const char* kernel) {
  Check(cudaGetLastError(), kernel);
  if (SyncEveryLaunch()) Check(cudaStreamSynchronize(Stream()), kernel);
}

void* Malloc(size_t bytes) {
  void* pointer = nullptr;
  if (bytes == 0) return nullptr;
  const cudaError_t status = cudaMallocAsync(&pointer, bytes, Stream());
  if (status != cudaSuccess) {
    cudaGetLastError();
    size_t free_bytes = 0, total_bytes = 0;
    cudaMemGetInfo(&free_bytes, &total_bytes);
    throw CudaError("cudaMallocAsync of " + std::to_string(bytes) + " bytes (" + std::to_string(free_bytes >> 20) +
                    " MiB of " + std::to_string(total_bytes >> 20) + " MiB free): " + ErrorText(status));
  }
  return pointer;
}

void Free(void* pointer) noexcept {
  if (pointer == nullptr) return;
  try {
    if (cudaFreeAsync(pointer, Stream()) != cudaSuccess) cudaGetLastError();
  } catch (...) {
  }
}

void CopyToDevice(void* dst, const void* src, size_t bytes) {
  if (bytes == 0) return;
  Check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, Stream()), "cudaMemcpyAsync (host to device)");
  // A pageable source is staged before cudaMemcpyAsync returns; a pinned one is not: wait to be safe.
  cudaPointerAttributes attributes;
  if (cudaPointerGetAttributes(&attributes, src) == cudaSuccess && attributes.type == cudaMemoryTypeHost) {
    Check(cudaStreamSynchronize(Stream()), "cudaStreamSynchronize (upload from pinned memory)");
  }
  cudaGetLastError();
}

void CopyDeviceToDevice(void* dst, const void* src, size_t bytes) {
  if (bytes == 0) return;
  Check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, Stream()), "cudaMemcpyAsync (device to device)");
}

void Zero(void* dst, size_t bytes) {
  if (bytes == 0) return;
  Check(cudaMemsetAsync(dst, 0, bytes, Stream()), "cudaMemsetAsync");
}

void Synchronize() { Check(cudaStreamSynchronize(Stream()), "cudaStreamSynchronize"); }

namespace {
// Timing marks (RecordTimingMark): the events, created on demand and kept for reuse, and how many are in use.
// Touched only by the JS thread, like the stream's queue.
std::vector<cudaEvent_t>& TimingEvents() {
  static std::vector<cudaEvent_t> events;
  return events;
}
size_t timing_marks_used = 0;
}  // namespace

int64_t RecordTimingMark() {
  std::vector<cudaEvent_t>& events = TimingEvents();
  if (timing_marks_used == events.size()) {
    cudaEvent_t event = nullptr;
    Check(cudaEventCreate(&event), "cudaEventCreate (timing mark)");
    events.push_back(event);
  }
  Check(cudaEventRecord(events[timing_marks_used], Stream()), "cudaEventRecord (timing mark)");
  return static_cast<int64_t>(timing_marks_used++);
}

std::vector<double> TakeTimingMarks() {
  std::vector<double> times(timing_marks_used);
  const size_t used = timing_marks_used;
  timing_marks_used = 0;
  if (used == 0) return times;
  const std::vector<cudaEvent_t>& events = TimingEvents();
  Check(cudaEventSynchronize(events[used - 1]), "cudaEventSynchronize (timing marks)");
  for (size_t i = 0; i < used; i++) {
    float milliseconds = 0.0f;
    Check(cudaEventElapsedTime(&milliseconds, events[0], events[i]), "cudaEventElapsedTime (timing marks)");
    times[i] = milliseconds;
  }
  return times;
}

Readback StartReadbackOwned(void* scratch, size_t bytes) {
  Readback readback;
  readback.scratch = scratch;
  readback.bytes = bytes;
  const cudaError_t status = cudaEventCreateWithFlags(&readback.ready, cudaEventDisableTiming);
  if (status != cudaSuccess) {
    Free(scratch);
    Check(status, "cudaEventCreate (readback)");
  }
  const cudaError_t record = cudaEventRecord(readback.ready, Stream());
  if (record != cudaSuccess) {
    AbandonReadback(readback);
    Check(record, "cudaEventRecord (readback)");
  }
  return readback;
}

Readback StartReadback(const void* src, size_t bytes) {
  void* scratch = Malloc(bytes);
  try {
    CopyDeviceToDevice(scratch, src, bytes);
  } catch (...) {
    Free(scratch);
    throw;
  }
  return StartReadbackOwned(scratch, bytes);
}

void FinishReadback(Readback& readback, void* host) {
  Context& context = GetContext();
  cudaError_t status = cudaSuccess;
  // A 0-byte readback only waits for the event (sync()).
  status = cudaStreamWaitEvent(context.readback_stream, readback.ready, 0);
  if (status == cudaSuccess && readback.bytes > 0) {
    status = cudaMemcpyAsync(host, readback.scratch, readback.bytes, cudaMemcpyDeviceToHost, context.readback_stream);
  }
  if (status == cudaSuccess) status = cudaStreamSynchronize(context.readback_stream);
  if (readback.scratch != nullptr) cudaFreeAsync(readback.scratch, context.readback_stream);
  if (readback.ready != nullptr) cudaEventDestroy(readback.ready);
  readback.scratch = nullptr;
  readback.ready = nullptr;
  Check(status, "readback (device to host)");
}

void AbandonReadback(Readback& readback) noexcept {
  Free(readback.scratch);
  if (readback.ready != nullptr) cudaEventDestroy(readback.ready);
  readback.scratch = nullptr;
  readback.ready = nullptr;
}

}  // namespace labor::cuda
