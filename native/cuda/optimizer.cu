// AdamW (REFERENCE §6, PyTorch semantics) and Σx².
//
// AdamW per element, with every per-step coefficient formed in f64 on the host and rounded once (as the CPU
// backend does): m = β1·m + (1−β1)·g; v = β2·v + (1−β2)·g²;
//   param = param·(1 − γλ) − γ·(m/(1−β1ᵗ)) / (sqrt(v/(1−β2ᵗ)) + ε)
#include <cmath>

#include "cuda/common.cuh"

namespace labor::cuda {
namespace {

struct AdamWCoefficients {
  float b1, one_minus_b1, b2, one_minus_b2, inv_bias1, inv_bias2, decay, lr, eps;
};

__global__ void AdamWKernel(float* __restrict__ param, const float* __restrict__ grad, float* __restrict__ m,
                            float* __restrict__ v, AdamWCoefficients c, int64_t count) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < count;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const float g = grad[i];
    const float mi = c.b1 * m[i] + c.one_minus_b1 * g;
    const float vi = c.b2 * v[i] + c.one_minus_b2 * g * g;
    m[i] = mi;
    v[i] = vi;
    param[i] = param[i] * c.decay - c.lr * (mi * c.inv_bias1) / (sqrtf(vi * c.inv_bias2) + c.eps);
  }
}

// Each block: f32 squares summed in f64, one atomicAdd of the block's partial (sm_60+ has f64 atomics).
__global__ void SumOfSquaresKernel(const float* __restrict__ x, int64_t count, double* __restrict__ result) {
  __shared__ double shared[32];
  double sum = 0;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < count;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const double value = x[i];
    sum += value * value;
  }
  sum = BlockSum(sum, shared);
  if (threadIdx.x == 0) atomicAdd(result, sum);
}

}  // namespace

void AdamW(const AdamWArgs& a) {
  if (a.count == 0) return;
  const double t = static_cast<double>(a.step);
  AdamWCoefficients c;
  c.inv_bias1 = static_cast<float>(1.0 / (1.0 - std::pow(a.beta1, t)));
  c.inv_bias2 = static_cast<float>(1.0 / (1.0 - std::pow(a.beta2, t)));
  c.decay = static_cast<float>(1.0 - a.learning_rate * a.weight_decay);
  c.b1 = static_cast<float>(a.beta1);
  c.one_minus_b1 = static_cast<float>(1.0 - a.beta1);
  c.b2 = static_cast<float>(a.beta2);
  c.one_minus_b2 = static_cast<float>(1.0 - a.beta2);
  c.lr = static_cast<float>(a.learning_rate);
  c.eps = static_cast<float>(a.epsilon);
  AdamWKernel<<<GridFor(a.count, 256), 256, 0, Stream()>>>(a.param, a.grad, a.m, a.v, c, a.count);
  CheckLaunch("adamw");
}

void SumOfSquares(const float* x, int64_t count, double* result) {
  Zero(result, sizeof(double));
  if (count == 0) return;
  const int64_t blocks = (count + 255) / 256;
  SumOfSquaresKernel<<<static_cast<unsigned>(blocks < 1024 ? blocks : 1024), 256, 0, Stream()>>>(x, count, result);
  CheckLaunch("sumOfSquares");
}

}  // namespace labor::cuda
