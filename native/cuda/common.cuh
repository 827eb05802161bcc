// Device helpers shared by the kernels: dtype decoding, warp/block reductions, launch sizing.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "cuda/ops.h"

namespace labor::cuda {

constexpr unsigned kFullMask = 0xffffffffu;

// bf16 ↔ f32 by bit patterns (REFERENCE §1): decode is a shift; encode rounds to nearest even and keeps a
// NaN quiet. Same bits as the CPU backend and the TS reference, which CUDA's own intrinsics don't promise
// for NaN payloads.
__host__ __device__ inline float Bf16BitsToFloat(uint16_t bits) {
#ifdef __CUDA_ARCH__
  return __uint_as_float(static_cast<uint32_t>(bits) << 16);
#else
  union { uint32_t u; float f; } v{static_cast<uint32_t>(bits) << 16};
  return v.f;
#endif
}

__host__ __device__ inline uint16_t FloatToBf16Bits(float value) {
#ifdef __CUDA_ARCH__
  const uint32_t u = __float_as_uint(value);
#else
  union { float f; uint32_t u; } v{value};
  const uint32_t u = v.u;
#endif
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x0040u);
  return static_cast<uint16_t>((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

__device__ inline float HalfBitsToFloat(uint16_t bits) { return __half2float(__ushort_as_half(bits)); }
__device__ inline uint16_t FloatToHalfBits(float value) { return __half_as_ushort(__float2half_rn(value)); }

/** Element i of a float tensor stored as f32 / bf16 / f16, as f32. */
__device__ inline float LoadFloat(const void* base, DType dtype, int64_t i) {
  switch (dtype) {
    case DType::kBf16: return Bf16BitsToFloat(static_cast<const uint16_t*>(base)[i]);
    case DType::kF16: return HalfBitsToFloat(static_cast<const uint16_t*>(base)[i]);
    default: return static_cast<const float*>(base)[i];
  }
}

__device__ inline float WarpSum(float x) {
  for (int offset = 16; offset > 0; offset >>= 1) x += __shfl_xor_sync(kFullMask, x, offset);
  return x;
}
__device__ inline double WarpSum(double x) {
  for (int offset = 16; offset > 0; offset >>= 1) x += __shfl_xor_sync(kFullMask, x, offset);
  return x;
}
__device__ inline float WarpMax(float x) {
  for (int offset = 16; offset > 0; offset >>= 1) x = fmaxf(x, __shfl_xor_sync(kFullMask, x, offset));
  return x;
}

/** Sum over the block (blockDim.x a multiple of 32, ≤ 1024); every thread gets the total. `shared` has 32 slots. */
template <class T>
__device__ inline T BlockSum(T x, T* shared) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  x = WarpSum(x);
  __syncthreads();  // shared may still be read by a previous call
  if (lane == 0) shared[warp] = x;
  __syncthreads();
  T total = lane < warps ? shared[lane] : T(0);
  return WarpSum(total);
}

__device__ inline float BlockMax(float x, float* shared) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  x = WarpMax(x);
  __syncthreads();
  if (lane == 0) shared[warp] = x;
  __syncthreads();
  float total = lane < warps ? shared[lane] : -INFINITY;
  return WarpMax(total);
}

/** Blocks for one-block-per-row kernels that loop over rows (capped; the loop covers the rest). */
inline unsigned RowBlocks(int64_t rows) {
  return static_cast<unsigned>(rows < 65535 * 4 ? (rows < 1 ? 1 : rows) : 65535 * 4);
}

/** Blocks for a grid-stride loop over `count` items (capped; the loop covers the rest). */
inline unsigned GridFor(int64_t count, int threads) {
  const int64_t blocks = (count + threads - 1) / threads;
  return static_cast<unsigned>(blocks < 1 ? 1 : (blocks > 65535 * 8 ? 65535 * 8 : blocks));
}

}  // namespace labor::cuda
