// Rotary embedding, HF half-split convention: in each head, element i pairs with i + hd/2 and turns by
// angle = position · invFreq[i] (the product in f32, as HF computes it; cos/sin of it in f64 like the CPU
// backend, so large positions agree to f32 rounding):
//   out[i] = x[i]·c − x[i+h]·s,  out[i+h] = x[i+h]·c + x[i]·s      (backward: the same with −angle)
#include "cuda/common.cuh"

namespace labor::cuda {
namespace {

// One thread per (token, i); it applies the rotation to every head (cos/sin computed once).
__global__ void RopeKernel(const float* x, const int32_t* __restrict__ positions, const float* __restrict__ inv_freq,
                           float* out, int64_t tokens, int64_t heads, int64_t head_dim, bool inverse) {
  const int64_t half = head_dim / 2;
  const int64_t total = tokens * half;
  for (int64_t idx = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; idx < total;
       idx += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t t = idx / half, i = idx % half;
    const float angle = __fmul_rn(static_cast<float>(positions[t]), inv_freq[i]);
    double sd, cd;
    sincos(static_cast<double>(angle), &sd, &cd);
    const float c = static_cast<float>(cd), s = inverse ? -static_cast<float>(sd) : static_cast<float>(sd);
    for (int64_t h = 0; h < heads; h++) {
      const int64_t base = (t * heads + h) * head_dim;
      const float x1 = x[base + i], x2 = x[base + i + half];  // both read before writing (out may be x)
      out[base + i] = x1 * c - x2 * s;
      out[base + i + half] = x2 * c + x1 * s;
    }
  }
}

}  // namespace

void Rope(const float* x, const int32_t* positions, const float* inv_freq, float* out, int64_t tokens, int64_t heads,
          int64_t head_dim, bool inverse) {
  const int64_t total = tokens * (head_dim / 2);
  if (total == 0 || heads == 0) return;
  RopeKernel<<<GridFor(total, 256), 256, 0, Stream()>>>(x, positions, inv_freq, out, tokens, heads, head_dim, inverse);
  CheckLaunch(inverse ? "ropeBackward" : "rope");
}

}  // namespace labor::cuda
