// Row-wise log-softmax, log-softmax gather and the fused cross-entropy (REFERENCE §6). One block per row:
// a max pass, an exp-sum pass (partials in f64 like the CPU backend), then the outputs; nothing but the
// interface's outputs is written (no normalised row for gather / cross-entropy).
//   lse = mx + log Σ exp(z_j − mx);  log p_y = z_y − lse;  loss = lse − z_y
//   dLogits_j = gradScale · (exp(z_j − lse) − [j == y])
#include "cuda/common.cuh"

namespace labor::cuda {
namespace {

constexpr int kSoftmaxThreads = 256;

// Log-sum-exp of one row (every thread gets it); −inf for an all −inf row.
__device__ float RowLogSumExp(const float* z, int64_t vocab, float* shared_f, double* shared_d) {
  float mx = -INFINITY;
  for (int64_t j = threadIdx.x; j < vocab; j += blockDim.x) mx = fmaxf(mx, z[j]);
  mx = BlockMax(mx, shared_f);
  if (mx == -INFINITY) return -INFINITY;
  double sum = 0;
  for (int64_t j = threadIdx.x; j < vocab; j += blockDim.x) sum += static_cast<double>(expf(z[j] - mx));
  sum = BlockSum(sum, shared_d);
  return mx + static_cast<float>(log(sum));
}

__global__ void LogSoftmaxKernel(const float* __restrict__ logits, float* __restrict__ out, int64_t rows,
                                 int64_t vocab) {
  __shared__ float shared_f[32];
  __shared__ double shared_d[32];
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const float* z = logits + r * vocab;
    const float lse = RowLogSumExp(z, vocab, shared_f, shared_d);
    for (int64_t j = threadIdx.x; j < vocab; j += blockDim.x) out[r * vocab + j] = z[j] - lse;
  }
}

__global__ void LogSoftmaxGatherKernel(const float* __restrict__ logits, const int32_t* __restrict__ targets,
                                       float* __restrict__ out, int64_t rows, int64_t vocab) {
  __shared__ float shared_f[32];
  __shared__ double shared_d[32];
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const float* z = logits + r * vocab;
    const float lse = RowLogSumExp(z, vocab, shared_f, shared_d);
    if (threadIdx.x == 0) {
      const int32_t y = targets[r];
      out[r] = y >= 0 && y < vocab ? z[y] - lse : NAN;
    }
  }
}

__global__ void CrossEntropyKernel(const float* logits, const int32_t* __restrict__ targets, float* __restrict__ losses,
                                   float* d_logits, int64_t rows, int64_t vocab, float grad_scale) {
  __shared__ float shared_f[32];
  __shared__ double shared_d[32];
  __shared__ float target_logit;
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const float* z = logits + r * vocab;
    float* dz = d_logits + r * vocab;
    const int32_t y = targets[r];
    if (y < 0 || y >= vocab) {  // −1: ignored row (other values were refused by the addon)
      for (int64_t j = threadIdx.x; j < vocab; j += blockDim.x) dz[j] = 0.0f;
      if (threadIdx.x == 0) losses[r] = 0.0f;
      continue;
    }
    if (threadIdx.x == 0) target_logit = z[y];  // read before dLogits (which may be logits) is written
    const float lse = RowLogSumExp(z, vocab, shared_f, shared_d);  // its __syncthreads publish target_logit
    if (threadIdx.x == 0) losses[r] = lse - target_logit;
    for (int64_t j = threadIdx.x; j < vocab; j += blockDim.x) {
      const float p = expf(z[j] - lse);
      dz[j] = grad_scale * (j == y ? p - 1.0f : p);
    }
    __syncthreads();  // target_logit is rewritten by the next row
  }
}

}  // namespace

void LogSoftmax(const float* logits, float* out, int64_t rows, int64_t vocab) {
  if (rows == 0 || vocab == 0) return;
  LogSoftmaxKernel<<<RowBlocks(rows), kSoftmaxThreads, 0, Stream()>>>(logits, out, rows, vocab);
  CheckLaunch("logSoftmax");
}

void LogSoftmaxGather(const float* logits, const int32_t* targets, float* out, int64_t rows, int64_t vocab) {
  if (rows == 0) return;
  LogSoftmaxGatherKernel<<<RowBlocks(rows), kSoftmaxThreads, 0, Stream()>>>(logits, targets, out, rows, vocab);
  CheckLaunch("logSoftmaxGather");
}

void CrossEntropy(const float* logits, const int32_t* targets, float* losses, float* d_logits, int64_t rows,
                  int64_t vocab, float grad_scale) {
  if (rows == 0) return;
  CrossEntropyKernel<<<RowBlocks(rows), kSoftmaxThreads, 0, Stream()>>>(logits, targets, losses, d_logits, rows, vocab,
                                                                  grad_scale);
  CheckLaunch("crossEntropy");
}

}  // namespace labor::cuda
