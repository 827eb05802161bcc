// HF Llama RMSNorm: out = x · rsqrt(mean(x²) + eps) · weight over the last dim, and its backward.
//
// Forward per row r (d = dim, s = rsqrt(mean(x²) + eps)): out = (x · s) · w, the sum of squares in f64 like
// the CPU backend. Backward, with g = dOut ⊙ w:
//   dx = s · g − x · s³ · (Σ_j g_j x_j) / d         (written)
//   dWeight += Σ_rows dOut ⊙ x · s                  (accumulated; a second, column-parallel kernel)
#include "cuda/common.cuh"

namespace labor::cuda {
namespace {

constexpr int kRmsThreads = 256;

__device__ inline float RowScale(const float* xr, int64_t dim, float eps, double* shared) {
  double sum = 0;
  for (int64_t d = threadIdx.x; d < dim; d += blockDim.x) sum += static_cast<double>(xr[d]) * xr[d];
  sum = BlockSum(sum, shared);
  const float mean = dim > 0 ? static_cast<float>(sum / static_cast<double>(dim)) : 0.0f;
  return 1.0f / sqrtf(mean + eps);
}

__global__ void RmsNormKernel(const float* __restrict__ x, const void* __restrict__ weight, DType dtype,
                              float* __restrict__ out, int64_t rows, int64_t dim, float eps) {
  __shared__ double shared[32];
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const float* xr = x + r * dim;
    const float s = RowScale(xr, dim, eps, shared);
    for (int64_t d = threadIdx.x; d < dim; d += blockDim.x) out[r * dim + d] = (xr[d] * s) * LoadFloat(weight, dtype, d);
  }
}

__global__ void RmsNormBackwardKernel(const float* __restrict__ x, const void* __restrict__ weight, DType dtype,
                                      const float* __restrict__ d_out, float* __restrict__ dx,
                                      float* __restrict__ row_scale, int64_t rows, int64_t dim, float eps) {
  __shared__ double shared[32];
  __shared__ float shared_f[32];
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const float* xr = x + r * dim;
    const float* gr = d_out + r * dim;
    const float s = RowScale(xr, dim, eps, shared);
    float dot = 0.0f;
    for (int64_t d = threadIdx.x; d < dim; d += blockDim.x) dot += gr[d] * LoadFloat(weight, dtype, d) * xr[d];
    dot = BlockSum(dot, shared_f);
    const float coefficient = dim > 0 ? s * s * s * dot / static_cast<float>(dim) : 0.0f;
    // dx may not alias x or dOut (the addon checks), so reading them after writing dx is safe.
    for (int64_t d = threadIdx.x; d < dim; d += blockDim.x) {
      dx[r * dim + d] = s * gr[d] * LoadFloat(weight, dtype, d) - xr[d] * coefficient;
    }
    if (threadIdx.x == 0 && row_scale != nullptr) row_scale[r] = s;
  }
}

// dWeight[d] += Σ_{r in chunk} dOut[r][d] · x[r][d] · s_r; blockIdx.y picks a chunk of rows.
__global__ void RmsNormWeightGradKernel(const float* __restrict__ x, const float* __restrict__ d_out,
                                        const float* __restrict__ row_scale, float* __restrict__ d_weight,
                                        int64_t rows, int64_t dim, int64_t rows_per_chunk) {
  const int64_t d = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (d >= dim) return;
  const int64_t r0 = blockIdx.y * rows_per_chunk;
  const int64_t r1 = r0 + rows_per_chunk < rows ? r0 + rows_per_chunk : rows;
  float sum = 0.0f;
  for (int64_t r = r0; r < r1; r++) sum += d_out[r * dim + d] * x[r * dim + d] * row_scale[r];
  atomicAdd(d_weight + d, sum);
}

}  // namespace

void RmsNorm(const float* x, const void* weight, DType weight_dtype, float* out, int64_t rows, int64_t dim, float eps) {
  if (rows == 0 || dim == 0) return;
  RmsNormKernel<<<RowBlocks(rows), kRmsThreads, 0, Stream()>>>(x, weight, weight_dtype, out, rows, dim, eps);
  CheckLaunch("rmsnorm");
}

void RmsNormBackward(const float* x, const void* weight, DType weight_dtype, const float* d_out, float* dx,
                     float* d_weight, int64_t rows, int64_t dim, float eps) {
  if (rows == 0 || dim == 0) return;
  // Per-row scales for the weight gradient (none without one: 0 bytes is a null buffer).
  const DeviceScratch row_scale(d_weight != nullptr ? static_cast<size_t>(rows) * sizeof(float) : 0);
  RmsNormBackwardKernel<<<RowBlocks(rows), kRmsThreads, 0, Stream()>>>(x, weight, weight_dtype, d_out, dx,
                                                                     row_scale.as<float>(), rows, dim, eps);
  CheckLaunch("rmsnormBackward");
  if (d_weight != nullptr) {
    const int64_t rows_per_chunk = 64;
    const int64_t chunks = (rows + rows_per_chunk - 1) / rows_per_chunk;
    if (chunks > 65535) throw CudaError("rmsnormBackward: too many rows for the weight-gradient grid");
    const dim3 grid(static_cast<unsigned>((dim + kRmsThreads - 1) / kRmsThreads), static_cast<unsigned>(chunks));
    RmsNormWeightGradKernel<<<grid, kRmsThreads, 0, Stream()>>>(x, d_out, row_scale.as<float>(), d_weight, rows, dim,
                                                                rows_per_chunk);
    CheckLaunch("rmsnormBackward (dWeight)");
  }
}

}  // namespace labor::cuda
