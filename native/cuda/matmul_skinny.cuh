// Skinny matmuls: out[b] (+)= alpha · op(a[b]) · op(b[b]) with N ≤ 32 (included by matmul.cu).
//
// LoRA's rank-r products are of this shape: u = x·Aᵀ and du = dY·B (a [M, K] row-major, M = tokens, K = the
// model width) and dB = dYᵀ·u (a stored [K, M]: M = the layer's output width, K = tokens). On the tensor-core
// kernels each is three launches and two scratch buffers — a → bf16 copy of the whole activation, a split-K
// GEMM whose 128-wide tiles are 7/8 padding, a reduction of the splits — for a product that only has to
// stream a once. These kernels read a (f32) straight from memory, round each element to bf16 as the
// tensor-core path does (so every kernel of a bf16 matmul computes the same products), multiply with f32
// FMAs and sum in a fixed order (deterministic, no atomics), in one launch and no scratch.
//
// · a [M, K] (SkinnyRowsKernel): a block of 8 warps owns kRows rows of a; the warps split K in steps of
//   256 (a lane takes 8 consecutive k: two float4 of each row, 16-byte loads of b), keep kRows × kN f32
//   sums each, reduce them across lanes with shuffles and across warps through shared memory.
// · a stored [K, M] (SkinnyColumnsKernel): a block owns 32 columns of aᵀ (a lane each, so a warp reads 128
//   contiguous bytes of a row of the stored a); its warps split K, each lane keeps kN sums, reduced across
//   warps through shared memory.
// Needs: b bf16, its rows (K for b [N, K], N for b [K, N]) a multiple of 8 and its base 16-byte aligned; for
// a [M, K], K a multiple of 8 and a 16-byte-aligned base. MatmulSkinny says whether it ran.
#pragma once
#include <cstdint>

#include "cuda/common.cuh"
#include "cuda/matmul_params.cuh"
#include "cuda/ops.h"

namespace labor::cuda {
namespace {

constexpr int kSkinnyMaxN = 32;

/** The f32 value of x rounded to bf16 (nearest even), as the tensor-core kernels see a. */
__device__ inline float RoundToBf16(float x) { return Bf16BitsToFloat(FloatToBf16Bits(x)); }

/** 8 bf16 (one 16-byte load) → f32. */
__device__ inline void Unpack8(const uint16_t* source, float (&values)[8]) {
  const uint4 bits = *reinterpret_cast<const uint4*>(source);
  const uint32_t words[4] = {bits.x, bits.y, bits.z, bits.w};
#pragma unroll
  for (int i = 0; i < 4; i++) {
    values[2 * i] = __uint_as_float(words[i] << 16);
    values[2 * i + 1] = __uint_as_float(words[i] & 0xFFFF0000u);
  }
}

struct SkinnyParams {
  const float* a;
  const uint16_t* b;
  float* out;
  int64_t m, n, k;
  int64_t a_batch_stride, b_batch_stride, out_batch_stride;
  float alpha;
  bool accumulate;
};

__device__ inline void StoreSkinny(const SkinnyParams& p, float* out, int64_t row, int64_t col, float sum) {
  float* target = out + row * p.n + col;
  *target = p.alpha * sum + (p.accumulate ? *target : 0.0f);
}

constexpr int kSkinnyRowsWarps = 8, kSkinnyStep = 32 * 8;  // k per warp step: 8 consecutive per lane

template <int kN, int kRows, bool kTransB>
__global__ void __launch_bounds__(kSkinnyRowsWarps * 32) SkinnyRowsKernel(SkinnyParams p) {
  __shared__ float partial[kSkinnyRowsWarps][kRows][kN];
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int64_t m0 = blockIdx.x * static_cast<int64_t>(kRows), bi = blockIdx.y;
  const float* a = p.a + bi * p.a_batch_stride;
  const uint16_t* b = p.b + bi * p.b_batch_stride;
  float sum[kRows][kN];
#pragma unroll
  for (int r = 0; r < kRows; r++) {
#pragma unroll
    for (int c = 0; c < kN; c++) sum[r][c] = 0.0f;
  }
  for (int64_t k0 = warp * static_cast<int64_t>(kSkinnyStep) + lane * 8; k0 < p.k; k0 += kSkinnyRowsWarps * kSkinnyStep) {
    float av[kRows][8];
#pragma unroll
    for (int r = 0; r < kRows; r++) {
      const bool inside = m0 + r < p.m;
      const float4* source = reinterpret_cast<const float4*>(a + (m0 + r) * p.k + k0);
      const float4 lo = inside ? source[0] : make_float4(0, 0, 0, 0), hi = inside ? source[1] : make_float4(0, 0, 0, 0);
      const float raw[8] = {lo.x, lo.y, lo.z, lo.w, hi.x, hi.y, hi.z, hi.w};
#pragma unroll
      for (int j = 0; j < 8; j++) av[r][j] = RoundToBf16(raw[j]);
    }
    if (kTransB) {  // b [N, K]: column c of op(b) is row c of b, 8 consecutive k per load
#pragma unroll
      for (int c = 0; c < kN; c++) {
        if (c >= p.n) break;
        float bv[8];
        Unpack8(b + c * p.k + k0, bv);
#pragma unroll
        for (int r = 0; r < kRows; r++) {
#pragma unroll
          for (int j = 0; j < 8; j++) sum[r][c] = fmaf(av[r][j], bv[j], sum[r][c]);
        }
      }
    } else {  // b [K, N]: row k0 + j of b holds every column, 8 per load
#pragma unroll
      for (int j = 0; j < 8; j++) {
#pragma unroll
        for (int g = 0; g < kN / 8; g++) {
          if (8 * g >= p.n) break;
          float bv[8];
          Unpack8(b + (k0 + j) * p.n + 8 * g, bv);
#pragma unroll
          for (int r = 0; r < kRows; r++) {
#pragma unroll
            for (int i = 0; i < 8; i++) sum[r][8 * g + i] = fmaf(av[r][j], bv[i], sum[r][8 * g + i]);
          }
        }
      }
    }
  }
#pragma unroll
  for (int r = 0; r < kRows; r++) {
#pragma unroll
    for (int c = 0; c < kN; c++) {
      float v = sum[r][c];
#pragma unroll
      for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(0xFFFFFFFFu, v, offset);
      if (lane == 0) partial[warp][r][c] = v;
    }
  }
  __syncthreads();
  float* out = p.out + bi * p.out_batch_stride;
  for (int i = threadIdx.x; i < kRows * kN; i += blockDim.x) {
    const int r = i / kN, c = i % kN;
    if (m0 + r >= p.m || c >= p.n) continue;
    float total = 0.0f;
    for (int w = 0; w < kSkinnyRowsWarps; w++) total += partial[w][r][c];
    StoreSkinny(p, out, m0 + r, c, total);
  }
}

template <int kN>
constexpr int kSkinnyColumnsWarps = kN == 32 ? 8 : 16;  // the partial sums stay ≤ 34 KiB of shared memory

template <int kN, bool kTransB>
__global__ void __launch_bounds__(kSkinnyColumnsWarps<kN> * 32) SkinnyColumnsKernel(SkinnyParams p) {
  constexpr int kWarps = kSkinnyColumnsWarps<kN>;
  __shared__ float partial[kWarps][kN][33];  // [warp][column of out][lane], padded against bank conflicts
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int64_t row = blockIdx.x * 32 + lane, bi = blockIdx.y;  // a row of out = a column of the stored a
  const float* a = p.a + bi * p.a_batch_stride;
  const uint16_t* b = p.b + bi * p.b_batch_stride;
  float sum[kN];
#pragma unroll
  for (int c = 0; c < kN; c++) sum[c] = 0.0f;
#pragma unroll 4
  for (int64_t kk = warp; kk < p.k; kk += kWarps) {
    const float av = row < p.m ? RoundToBf16(a[kk * p.m + row]) : 0.0f;
    if (kTransB) {  // b [N, K]: one element per column (the same for every lane: a broadcast)
#pragma unroll
      for (int c = 0; c < kN; c++) {
        if (c >= p.n) break;
        sum[c] = fmaf(av, Bf16BitsToFloat(b[c * p.k + kk]), sum[c]);
      }
    } else {  // b [K, N]: row kk, 8 columns per load (a broadcast)
#pragma unroll
      for (int g = 0; g < kN / 8; g++) {
        if (8 * g >= p.n) break;
        float bv[8];
        Unpack8(b + kk * p.n + 8 * g, bv);
#pragma unroll
        for (int i = 0; i < 8; i++) sum[8 * g + i] = fmaf(av, bv[i], sum[8 * g + i]);
      }
    }
  }
#pragma unroll
  for (int c = 0; c < kN; c++) partial[warp][c][lane] = sum[c];
  __syncthreads();
  float* out = p.out + bi * p.out_batch_stride;
  for (int i = threadIdx.x; i < kN * 32; i += blockDim.x) {
    const int c = i / 32, l = i % 32;
    const int64_t r = blockIdx.x * 32 + l;
    if (r >= p.m || c >= p.n) continue;
    float total = 0.0f;
    for (int w = 0; w < kWarps; w++) total += partial[w][c][l];
    StoreSkinny(p, out, r, c, total);
  }
}

template <int kN>
void LaunchSkinny(const SkinnyParams& p, const MatmulArgs& args) {
  if (args.trans_a) {
    const dim3 grid(static_cast<unsigned>((args.m + 31) / 32), static_cast<unsigned>(args.batch));
    const int threads = kSkinnyColumnsWarps<kN> * 32;
    args.trans_b ? SkinnyColumnsKernel<kN, true><<<grid, threads, 0, Stream()>>>(p)
                 : SkinnyColumnsKernel<kN, false><<<grid, threads, 0, Stream()>>>(p);
  } else {
    constexpr int kRows = kN == 32 ? 2 : 4;  // kRows · kN f32 sums per thread
    const dim3 grid(static_cast<unsigned>((args.m + kRows - 1) / kRows), static_cast<unsigned>(args.batch));
    args.trans_b ? SkinnyRowsKernel<kN, kRows, true><<<grid, kSkinnyRowsWarps * 32, 0, Stream()>>>(p)
                 : SkinnyRowsKernel<kN, kRows, false><<<grid, kSkinnyRowsWarps * 32, 0, Stream()>>>(p);
  }
  CheckLaunch("matmul (skinny kernel, N ≤ 32)");
}

/** Runs the product on the skinny kernels when it has their shape and alignment; false (nothing queued) when not. */
bool MatmulSkinny(const MatmulArgs& args) {
  const auto aligned = [](const void* pointer) { return reinterpret_cast<uintptr_t>(pointer) % 16 == 0; };
  const int64_t b_row = args.trans_b ? args.k : args.n;
  const bool fits = args.b_dtype == DType::kBf16 && args.n <= kSkinnyMaxN && args.batch <= 65535 &&
                    b_row % 8 == 0 && aligned(args.b) && (args.trans_a || (args.k % 8 == 0 && aligned(args.a)));
  if (!fits) return false;
  SkinnyParams p{};
  p.a = args.a;
  p.b = static_cast<const uint16_t*>(args.b);
  p.out = args.out;
  SetProductShape(p, args);
  if (args.n <= 8) {
    LaunchSkinny<8>(p, args);
  } else if (args.n <= 16) {
    LaunchSkinny<16>(p, args);
  } else {
    LaunchSkinny<32>(p, args);
  }
  return true;
}

}  // namespace
}  // namespace labor::cuda
