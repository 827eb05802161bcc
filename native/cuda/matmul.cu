// Matmul: out[b] (+)= alpha · op(a[b]) · op(b[b]), a f32, b f32 / bf16 / f16, out f32 (row-major throughout).
//
// Kernels:
// - bf16 b → tensor cores (bf16 × bf16, f32 accumulators; sm_80+). a is first rounded to bf16 (nearest even)
//   into a scratch copy [batch, M, K8] with rows padded to K8 = ⌈K/8⌉·8 by zeros and any transpose applied, so
//   the GEMM streams two bf16 operands with 16-byte loads. That pass reads a once (M·K·4 bytes); the GEMM then
//   reads each a tile N/128 times at half the bytes. Three kernels; LABOR_CUDA_GEMM=mma|wmma|wgmma forces one,
//   unset lets the GPU and the shape choose:
//   · MatmulWgmmaKernel (the choice on Hopper): block tile 128×256×64, a producer warpgroup loading tiles with
//     TMA (cp.async.bulk.tensor, 128-byte swizzle) into a 4-stage mbarrier ring, two consumer warpgroups
//     multiplying them with wgmma m64n256k16 straight from shared memory (1.6–1.9× the mma kernel on an H200).
//     b stored [N, K] (x·Wᵀ) or [K, N] (dY·W, read N-major) with rows a multiple of 8, a compute 9.0 GPU and an
//     sm_90a build; not chosen where its grid
//     would leave most multiprocessors idle on a long K (LoRA's rank-16 products), where the mma kernel splits K.
//   · MatmulMmaKernel (everywhere else b's rows are 16-byte aligned): block tile 128×128×32, 8 warps of 64×32, a
//     4-stage cp.async pipeline (global → shared without registers, three tiles in flight while one is
//     multiplied), ldmatrix fragments and mma.sync m16n8k16 (ldmatrix.trans for b stored [K, N]), the epilogue
//     straight from the accumulators. When the output grid can't fill the GPU and K is long, K is split over
//     blocks that write raw partial sums, reduced in a fixed order by a second kernel (deterministic, no atomics);
//   · MatmulBf16Kernel (wmma, register-prefetch double buffering): b rows not 16-byte aligned, or
//     LABOR_CUDA_GEMM=wmma (kept as the reference the benchmark compares against).
//   Before all of them, unless a kernel is forced: N ≤ 32 (LoRA's x·Aᵀ, dY·B, dYᵀ·u) goes to the skinny kernels
//   of matmul_skinny.cuh, which read a as f32 in one launch.
// - f32 / f16 b → a tiled f32 SIMT kernel (64×64×16, 4×4 outputs per thread), so those dtypes keep f32
//   accuracy (tf32/f16 tensor cores would round a). Small output grids with long K split K over blocks that
//   atomically add their partial products (out zeroed first unless accumulating).
#include <cudaTypedefs.h>  // CUtensorMap and the driver's function types (header only: libcuda isn't linked)
#include <mma.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <type_traits>

#include "cuda/common.cuh"
#include "cuda/hopper.cuh"
#include "cuda/matmul_params.cuh"
#include "cuda/matmul_skinny.cuh"
#include "cuda/mma.cuh"

namespace labor::cuda {
namespace {

// ---------------------------------------------------------------- a → bf16 (padded, transpose applied)

// dst[bi][m][k] = bf16(a[bi][m][k]) for k < K, 0 for K ≤ k < K8.
__global__ void ConvertAKernel(const float* __restrict__ a, uint16_t* __restrict__ dst, int64_t batch, int64_t m,
                               int64_t k, int64_t k8) {
  const int64_t total = batch * m * k8;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t col = i % k8, row = (i / k8) % m, bi = i / (k8 * m);
    dst[i] = FloatToBf16Bits(col < k ? a[(bi * m + row) * k + col] : 0.0f);
  }
}

// The transposed case, a stored [batch, K, M]: dst[bi][m][k] = bf16(a[bi][k][m]), 0 for K ≤ k < K8. Through a
// 32×32 shared tile (one column of padding against bank conflicts) so that both the reads along m and the writes
// along k are coalesced; element by element, each warp's reads would touch 32 rows 4·M bytes apart (LoRA's
// dYᵀ: 8× the bytes of the tensor). Grid: x over ⌈M/32⌉ tiles, y and z strided over ⌈K8/32⌉ tiles and batches
// (each capped at 65535 blocks); block 32 × 8.
constexpr int kTransposeTile = 32, kTransposeRows = 8;
__global__ void ConvertATransposedKernel(const float* __restrict__ a, uint16_t* __restrict__ dst, int64_t batch,
                                         int64_t m, int64_t k, int64_t k8) {
  __shared__ float tile[kTransposeTile][kTransposeTile + 1];
  const int64_t m0 = blockIdx.x * static_cast<int64_t>(kTransposeTile);
  for (int64_t bi = blockIdx.z; bi < batch; bi += gridDim.z) {
    for (int64_t k0 = blockIdx.y * static_cast<int64_t>(kTransposeTile); k0 < k8; k0 += gridDim.y * static_cast<int64_t>(kTransposeTile)) {
      const float* source = a + bi * k * m;
      for (int r = threadIdx.y; r < kTransposeTile; r += kTransposeRows) {  // tile[r][c] = a[k0 + r][m0 + c]
        const int64_t row = k0 + r, col = m0 + threadIdx.x;
        tile[r][threadIdx.x] = row < k && col < m ? source[row * m + col] : 0.0f;
      }
      __syncthreads();
      uint16_t* target = dst + bi * m * k8;
      for (int r = threadIdx.y; r < kTransposeTile; r += kTransposeRows) {  // dst[m0 + r][k0 + c] = tile[c][r]
        const int64_t row = m0 + r, col = k0 + threadIdx.x;
        if (row < m && col < k8) target[row * k8 + col] = FloatToBf16Bits(tile[threadIdx.x][r]);
      }
      __syncthreads();  // before the next tile overwrites this one
    }
  }
}

// ---------------------------------------------------------------- tensor-core GEMM (bf16 × bf16 → f32)

constexpr int kBM = 128, kBN = 128, kBK = 32, kPad = 8;
constexpr int kTcThreads = 256;
// Shared tiles: a [BM][BK+pad]; b [BK][BN+pad] (b stored [K,N]) or [BN][BK+pad] (b stored [N,K]).
constexpr int kATile = kBM * (kBK + kPad);
constexpr int kBTile = std::max(kBK * (kBN + kPad), kBN * (kBK + kPad));

struct TcParams {
  const uint16_t* a;  // [batch, M, K8] bf16 bits
  const uint16_t* b;  // bf16 bits
  float* out;
  int64_t m, n, k, k8;
  int64_t a_batch_stride, b_batch_stride, out_batch_stride;
  float alpha;
  bool accumulate;
  // Split K (mma kernel only): blockIdx.z = batch index · splits + split; split s multiplies k-tiles
  // [s·tiles_per_split, (s+1)·tiles_per_split) and writes its raw sum to partials [splits][batch][M][N], which
  // SumSplitsKernel reduces in a fixed order. splits = 1: the block writes out itself.
  int splits;
  int64_t tiles_per_split;
  float* partials;
  // wgmma kernel only: blockIdx.x walks row tiles and blockIdx.y column tiles (LABOR_CUDA_RASTER=rows), so the
  // blocks resident at once share b's column tiles instead of a's row tiles. An experiment, off by default.
  bool rows_fastest;
};

// Loads the 8 consecutive elements (row, col..col+7) of a row-major [rows, cols] matrix with leading dim ld,
// zero outside. kVector: one 16-byte load (needs cols % 8 == 0, ld % 8 == 0 and a 16-byte-aligned base).
template <bool kVector>
__device__ inline uint4 LoadChunk(const uint16_t* base, int64_t rows, int64_t cols, int64_t ld, int64_t row,
                                  int64_t col) {
  uint4 chunk = make_uint4(0, 0, 0, 0);
  if (row >= rows) return chunk;
  if (kVector) {
    if (col < cols) chunk = *reinterpret_cast<const uint4*>(base + row * ld + col);
  } else {
    uint16_t values[8];
#pragma unroll
    for (int j = 0; j < 8; j++) values[j] = col + j < cols ? base[row * ld + col + j] : uint16_t(0);
    chunk.x = values[0] | (uint32_t(values[1]) << 16);
    chunk.y = values[2] | (uint32_t(values[3]) << 16);
    chunk.z = values[4] | (uint32_t(values[5]) << 16);
    chunk.w = values[6] | (uint32_t(values[7]) << 16);
  }
  return chunk;
}

template <bool kTransB, bool kVectorB>
__global__ void __launch_bounds__(kTcThreads) MatmulBf16Kernel(TcParams p) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  using namespace nvcuda;
  __shared__ __align__(128) uint16_t shared[2 * (kATile + kBTile)];
  uint16_t* a_tiles[2] = {shared, shared + kATile};
  uint16_t* b_tiles[2] = {shared + 2 * kATile, shared + 2 * kATile + kBTile};

  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
  const int warp_m = warp >> 2, warp_n = warp & 3;  // 2 × 4 warps, each 64 (m) × 32 (n)
  const int64_t bi = blockIdx.z;
  const int64_t m0 = static_cast<int64_t>(blockIdx.y) * kBM, n0 = static_cast<int64_t>(blockIdx.x) * kBN;
  const uint16_t* a = p.a + bi * p.a_batch_stride;
  const uint16_t* b = p.b + bi * p.b_batch_stride;
  float* out = p.out + bi * p.out_batch_stride;
  const int64_t b_ld = kTransB ? p.k : p.n;

  // Each thread moves 2 chunks of 8 for a and 2 for b per K tile.
  uint4 a_regs[2], b_regs[2];
  auto load_tile = [&](int64_t k0) {
#pragma unroll
    for (int i = 0; i < 2; i++) {
      const int c = tid + i * kTcThreads;  // 512 chunks per tile
      a_regs[i] = LoadChunk<true>(a, p.m, p.k8, p.k8, m0 + c / 4, k0 + (c % 4) * 8);
      if (kTransB) {  // b [N, K]: tile [BN][BK]
        b_regs[i] = LoadChunk<kVectorB>(b, p.n, p.k, b_ld, n0 + c / 4, k0 + (c % 4) * 8);
      } else {        // b [K, N]: tile [BK][BN]
        b_regs[i] = LoadChunk<kVectorB>(b, p.k, p.n, b_ld, k0 + c / 16, n0 + (c % 16) * 8);
      }
    }
  };
  auto store_tile = [&](int stage) {
#pragma unroll
    for (int i = 0; i < 2; i++) {
      const int c = tid + i * kTcThreads;
      *reinterpret_cast<uint4*>(a_tiles[stage] + (c / 4) * (kBK + kPad) + (c % 4) * 8) = a_regs[i];
      if (kTransB) {
        *reinterpret_cast<uint4*>(b_tiles[stage] + (c / 4) * (kBK + kPad) + (c % 4) * 8) = b_regs[i];
      } else {
        *reinterpret_cast<uint4*>(b_tiles[stage] + (c / 16) * (kBN + kPad) + (c % 16) * 8) = b_regs[i];
      }
    }
  };

  using BLayout = typename std::conditional<kTransB, wmma::col_major, wmma::row_major>::type;
  wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[4][2];
#pragma unroll
  for (int i = 0; i < 4; i++)
#pragma unroll
    for (int j = 0; j < 2; j++) wmma::fill_fragment(acc[i][j], 0.0f);

  const int64_t tiles = (p.k8 + kBK - 1) / kBK;
  load_tile(0);
  store_tile(0);
  __syncthreads();
  for (int64_t t = 0; t < tiles; t++) {
    const int stage = static_cast<int>(t & 1);
    if (t + 1 < tiles) load_tile((t + 1) * kBK);
    const __nv_bfloat16* as = reinterpret_cast<const __nv_bfloat16*>(a_tiles[stage]);
    const __nv_bfloat16* bs = reinterpret_cast<const __nv_bfloat16*>(b_tiles[stage]);
#pragma unroll
    for (int kk = 0; kk < kBK; kk += 16) {
      wmma::fragment<wmma::matrix_a, 16, 16, 16, __nv_bfloat16, wmma::row_major> fa[4];
      wmma::fragment<wmma::matrix_b, 16, 16, 16, __nv_bfloat16, BLayout> fb[2];
#pragma unroll
      for (int i = 0; i < 4; i++) wmma::load_matrix_sync(fa[i], as + (warp_m * 64 + i * 16) * (kBK + kPad) + kk, kBK + kPad);
#pragma unroll
      for (int j = 0; j < 2; j++) {
        const int nn = warp_n * 32 + j * 16;
        if (kTransB) {
          wmma::load_matrix_sync(fb[j], bs + nn * (kBK + kPad) + kk, kBK + kPad);  // element (k,n) at [n][k]
        } else {
          wmma::load_matrix_sync(fb[j], bs + kk * (kBN + kPad) + nn, kBN + kPad);  // element (k,n) at [k][n]
        }
      }
#pragma unroll
      for (int i = 0; i < 4; i++)
#pragma unroll
        for (int j = 0; j < 2; j++) wmma::mma_sync(acc[i][j], fa[i], fb[j], acc[i][j]);
    }
    if (t + 1 < tiles) store_tile(stage ^ 1);
    __syncthreads();
  }

  // Epilogue through a per-warp 16×16 scratch (the tiles' memory, free after the last __syncthreads).
  float* scratch = reinterpret_cast<float*>(shared) + warp * 256;
#pragma unroll
  for (int i = 0; i < 4; i++) {
#pragma unroll
    for (int j = 0; j < 2; j++) {
      wmma::store_matrix_sync(scratch, acc[i][j], 16, wmma::mem_row_major);
      __syncwarp();
      const int64_t row0 = m0 + warp_m * 64 + i * 16, col0 = n0 + warp_n * 32 + j * 16;
#pragma unroll
      for (int e = lane; e < 256; e += 32) {
        const int64_t row = row0 + e / 16, col = col0 + e % 16;
        if (row < p.m && col < p.n) {
          const float value = p.alpha * scratch[e];
          float* target = out + row * p.n + col;
          *target = p.accumulate ? *target + value : value;
        }
      }
      __syncwarp();
    }
  }
#endif
}

// ---------------------------------------------------------------- tensor-core GEMM, cp.async + mma.sync

constexpr int kStages = 4;
constexpr int kTileStride = kBK + kPad;  // halves per row of a [rows][BK] tile: 80 bytes, ldmatrix conflict-free
constexpr int kBRowStride = kBN + kPad;  // halves per row of b's [BK][BN] tile: 272 bytes, likewise
constexpr int kStageHalves = kATile + kBTile;
constexpr size_t kMmaSharedBytes = static_cast<size_t>(kStages) * kStageHalves * sizeof(uint16_t);  // 80 KiB

// Needs b's rows 16-byte aligned (row length % 8 == 0, aligned base): every 16-byte chunk is then wholly inside
// or wholly outside the matrix, and the ones outside are zero-filled by cp.async.
template <bool kTransB>
__global__ void __launch_bounds__(kTcThreads) MatmulMmaKernel(TcParams p) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  extern __shared__ __align__(128) uint16_t stages[];
  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
  const int warp_m = warp >> 2, warp_n = warp & 3;  // 2 × 4 warps, each 64 (m) × 32 (n)
  const int64_t bi = blockIdx.z / p.splits, split = blockIdx.z % p.splits;
  const int64_t m0 = static_cast<int64_t>(blockIdx.y) * kBM, n0 = static_cast<int64_t>(blockIdx.x) * kBN;
  const uint16_t* a = p.a + bi * p.a_batch_stride;
  const uint16_t* b = p.b + bi * p.b_batch_stride;
  const int64_t all_tiles = (p.k8 + kBK - 1) / kBK, first_tile = split * p.tiles_per_split;
  const int64_t tiles = min(all_tiles - first_tile, p.tiles_per_split);  // ≥ 1: the host makes no empty split

  // Tile t (of this split) → stage t % kStages: 512 chunks of 8 halves for a (128 rows × 4) and 512 for b, 2 + 2
  // per thread.
  auto load_stage = [&](int64_t t) {
    uint16_t* a_tile = stages + (t % kStages) * kStageHalves;
    uint16_t* b_tile = a_tile + kATile;
    const int64_t k0 = (first_tile + t) * kBK;
#pragma unroll
    for (int i = 0; i < 2; i++) {
      const int c = tid + i * kTcThreads;
      {
        const int64_t row = m0 + c / 4, col = k0 + (c % 4) * 8;
        const bool valid = row < p.m && col < p.k8;
        CopyAsync16(SharedAddress(a_tile + (c / 4) * kTileStride + (c % 4) * 8), valid ? a + row * p.k8 + col : a, valid);
      }
      if (kTransB) {  // b [N, K] → tile [BN][BK]
        const int64_t row = n0 + c / 4, col = k0 + (c % 4) * 8;
        const bool valid = row < p.n && col < p.k;
        CopyAsync16(SharedAddress(b_tile + (c / 4) * kTileStride + (c % 4) * 8), valid ? b + row * p.k + col : b, valid);
      } else {        // b [K, N] → tile [BK][BN]
        const int64_t row = k0 + c / 16, col = n0 + (c % 16) * 8;
        const bool valid = row < p.k && col < p.n;
        CopyAsync16(SharedAddress(b_tile + (c / 16) * kBRowStride + (c % 16) * 8), valid ? b + row * p.n + col : b, valid);
      }
    }
  };

  float acc[4][4][4];
#pragma unroll
  for (int i = 0; i < 4; i++)
#pragma unroll
    for (int j = 0; j < 4; j++)
#pragma unroll
      for (int e = 0; e < 4; e++) acc[i][j][e] = 0.0f;

#pragma unroll
  for (int s = 0; s < kStages - 1; s++) {
    if (s < tiles) load_stage(s);
    CopyAsyncCommit();  // empty groups keep the count: group g always holds tile g
  }

  for (int64_t t = 0; t < tiles; t++) {
    CopyAsyncWait<kStages - 2>();  // this thread's copies of tile t have landed…
    __syncthreads();               // …and everyone's; every warp is also done with tile t − 1's stage
    if (t + kStages - 1 < tiles) load_stage(t + kStages - 1);  // refills that stage
    CopyAsyncCommit();

    const uint16_t* a_tile = stages + (t % kStages) * kStageHalves;
    const uint16_t* b_tile = a_tile + kATile;
#pragma unroll
    for (int kk = 0; kk < kBK; kk += 16) {
      uint32_t fa[4][4], fb[2][4];
#pragma unroll
      for (int i = 0; i < 4; i++) {
        // matrices: rows 0–7 / 8–15 × k 0–7, then the same rows × k 8–15 (the m16n8k16 a-fragment order)
        const int row = warp_m * 64 + i * 16 + (lane & 15), col = kk + (lane >> 4) * 8;
        LoadMatrixX4<false>(fa[i], SharedAddress(a_tile + row * kTileStride + col));
      }
#pragma unroll
      for (int j = 0; j < 2; j++) {
        // fb[j] = {b0, b1} of n-block 2j, then {b0, b1} of n-block 2j + 1 (b0: k 0–7, b1: k 8–15)
        const int n_base = warp_n * 32 + j * 16;
        if (kTransB) {  // tile [n][k]: row n, 8 contiguous k
          const int n = n_base + (lane & 7) + (lane >> 4) * 8, k = kk + ((lane >> 3) & 1) * 8;
          LoadMatrixX4<false>(fb[j], SharedAddress(b_tile + n * kTileStride + k));
        } else {        // tile [k][n]: row k, 8 contiguous n, transposed by ldmatrix
          const int k = kk + (lane & 7) + ((lane >> 3) & 1) * 8, n = n_base + (lane >> 4) * 8;
          LoadMatrixX4<true>(fb[j], SharedAddress(b_tile + k * kBRowStride + n));
        }
      }
#pragma unroll
      for (int i = 0; i < 4; i++)
#pragma unroll
        for (int j = 0; j < 4; j++) MmaBf16(acc[i][j], fa[i], fb[j >> 1][(j & 1) * 2], fb[j >> 1][(j & 1) * 2 + 1]);
    }
  }
  CopyAsyncWait<0>();

  // Accumulator e of n-block j in m-block i: row g (+8 for e ≥ 2), column 2·(lane % 4) + (e & 1).
  const int g = lane >> 2, c2 = (lane & 3) * 2;
#pragma unroll
  for (int i = 0; i < 4; i++) {
#pragma unroll
    for (int j = 0; j < 4; j++) {
#pragma unroll
      for (int e = 0; e < 4; e++) {
        const int64_t row = m0 + warp_m * 64 + i * 16 + g + (e >> 1) * 8;
        const int64_t col = n0 + warp_n * 32 + j * 8 + c2 + (e & 1);
        if (row < p.m && col < p.n) {
          if (p.splits > 1) {
            p.partials[((split * (gridDim.z / p.splits) + bi) * p.m + row) * p.n + col] = acc[i][j][e];
          } else {
            const float value = p.alpha * acc[i][j][e];
            float* target = p.out + bi * p.out_batch_stride + row * p.n + col;
            *target = p.accumulate ? *target + value : value;
          }
        }
      }
    }
  }
#endif
}

// out[i] = alpha · Σ_s partials[s][i] (+ out[i]), summed in split order (deterministic).
__global__ void SumSplitsKernel(const float* __restrict__ partials, float* __restrict__ out, int64_t count, int splits,
                                float alpha, bool accumulate) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < count;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    float sum = 0.0f;
    for (int s = 0; s < splits; s++) sum += partials[s * count + i];
    out[i] = accumulate ? out[i] + alpha * sum : alpha * sum;
  }
}

/** K splits for the mma kernel: enough blocks for two per multiprocessor when the output grid alone can't fill
 * the GPU (LoRA's rank-16 products: 1024×16 outputs over K = 4096 are 8 blocks), each split ≥ 4 k-tiles. */
int64_t MmaSplits(int64_t blocks, int64_t k_tiles) {
  const int64_t target = 2 * static_cast<int64_t>(std::max(1, Probe().multiprocessors));
  if (blocks >= target || k_tiles < 8) return 1;
  return std::max<int64_t>(1, std::min((target + blocks - 1) / blocks, k_tiles / 4));
}

template <bool kTransB>
void LaunchMma(const TcParams& p, dim3 grid) {
  // > 48 KiB of dynamic shared memory must be allowed per kernel once.
  static const cudaError_t allowed = cudaFuncSetAttribute(MatmulMmaKernel<kTransB>,
                                                          cudaFuncAttributeMaxDynamicSharedMemorySize,
                                                          static_cast<int>(kMmaSharedBytes));
  Check(allowed, "matmul (cudaFuncSetAttribute for the mma kernel's shared memory)");
  MatmulMmaKernel<kTransB><<<grid, kTcThreads, kMmaSharedBytes, Stream()>>>(p);
}

// ---------------------------------------------------------------- Hopper GEMM: TMA + mbarriers + wgmma (sm_90a)

// Block tile 128×256×64 (the design of pranjalssh/fast.cu's kernels 4–7): three warpgroups. Warpgroup 0 is the
// producer: one thread issues the TMA copies of a's [128 × 64] and b's [256 × 64] tiles into a 4-stage ring.
// Warpgroups 1 and 2 are consumers: each multiplies its 64 rows of a by all 256 columns with four
// wgmma m64n256k16 per stage (128 f32 accumulators per thread). Per stage, full[s] completes when the
// producer's expect_tx arrival is in and both copies have landed; empty[s] when every consumer warp has
// finished the wgmma that read the stage, after which the producer refills it. A consumer keeps one stage's
// wgmma in flight while it issues the next (wait_group 1), so the tensor cores don't drain between stages.
// Tiles past M, N or K arrive zero-filled from TMA (so the K tail adds nothing), and the epilogue stores only
// rows < M, columns < N.
// b stored [N, K] (kTransB, the forward's x·Wᵀ) is one K-major box of 256 rows × 64 k; b stored [K, N] (the
// backward's dY·W) is four N-major boxes of 64 k rows × 64 n, one per 64 columns, which wgmma reads transposed.
constexpr int kWgBM = 128, kWgBN = 256, kWgBK = 64;  // BK: 64 bf16 = one 128-byte swizzle row
constexpr int kWgStages = 4;
constexpr int kWgConsumers = 2;
constexpr int kWgThreads = 128 * (1 + kWgConsumers);
constexpr uint32_t kWgATileBytes = kWgBM * kWgBK * 2;                   // 16 KiB
constexpr uint32_t kWgBBoxBytes = 64 * kWgBK * 2;                       // an N-major box: 64 k rows × 128 bytes
constexpr uint32_t kWgStageBytes = kWgATileBytes + kWgBN * kWgBK * 2;  // + 32 KiB of b
static_assert(kWgStageBytes == kWgATileBytes + (kWgBN / 64) * kWgBBoxBytes, "an N-major b tile is whole boxes");
// The stages start on a 1024-byte boundary (the 128-byte swizzle atom is 8 rows × 128 bytes, and the wgmma
// descriptors assume atoms aligned to it); the dynamic shared memory base is only promised 16 bytes, hence the
// slack. The 2 · stages mbarriers follow the stages.
constexpr size_t kWgSharedBytes = 1024 + kWgStages * kWgStageBytes + 2 * kWgStages * sizeof(uint64_t);  // ~193 KiB

template <bool kTransB>
__global__ void __launch_bounds__(kWgThreads, 1)
    MatmulWgmmaKernel(const __grid_constant__ CUtensorMap a_map, const __grid_constant__ CUtensorMap b_map,
                      TcParams p) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  using namespace hopper;
  extern __shared__ __align__(16) uint8_t shared_raw[];
  const uint32_t ring = (SharedAddress(shared_raw) + 1023u) & ~1023u;  // stage s at ring + s · kWgStageBytes
  const uint32_t full_barriers = ring + kWgStages * kWgStageBytes;
  const uint32_t empty_barriers = full_barriers + kWgStages * sizeof(uint64_t);
  const int warpgroup = threadIdx.x / 128, tid = threadIdx.x % 128;
  const int m0 = (p.rows_fastest ? blockIdx.x : blockIdx.y) * kWgBM, n0 = (p.rows_fastest ? blockIdx.y : blockIdx.x) * kWgBN;
  const int bi = blockIdx.z;
  const int tiles = static_cast<int>((p.k8 + kWgBK - 1) / kWgBK);

  if (threadIdx.x == 0) {
    for (int s = 0; s < kWgStages; s++) {
      BarrierInit(full_barriers + 8 * s, 1);
      BarrierInit(empty_barriers + 8 * s, kWgConsumers * 4);
    }
    BarrierInitFence();
  }
  __syncthreads();

  if (warpgroup == 0) {
    ShrinkRegisters<24>();  // 128·24 + 256·240 ≤ 64 Ki registers
    if (tid == 0) {
      const int b_batch = p.b_batch_stride != 0 ? bi : 0;
      for (int t = 0; t < tiles; t++) {
        const int s = t % kWgStages, round = t / kWgStages;
        // Round r ≥ 1 reuses the stage once the consumers released round r − 1 (phase r − 1 of empty[s]).
        if (round > 0) BarrierWait(empty_barriers + 8 * s, (round - 1) & 1);
        const uint32_t stage = ring + s * kWgStageBytes, full = full_barriers + 8 * s;
        BarrierArriveExpectBytes(full, kWgStageBytes);
        TmaLoad3d(stage, &a_map, full, t * kWgBK, m0, bi);
        if (kTransB) {
          TmaLoad3d(stage + kWgATileBytes, &b_map, full, t * kWgBK, n0, b_batch);
        } else {
#pragma unroll
          for (int box = 0; box < kWgBN / 64; box++) {
            TmaLoad3d(stage + kWgATileBytes + box * kWgBBoxBytes, &b_map, full, n0 + 64 * box, t * kWgBK, b_batch);
          }
        }
      }
    }
  } else {
    GrowRegisters<240>();
    const int consumer = warpgroup - 1;
    float d[128];
#pragma unroll
    for (int i = 0; i < 128; i++) d[i] = 0.0f;
    FenceAccumulators(d);
    for (int t = 0; t < tiles; t++) {
      const int s = t % kWgStages;
      BarrierWait(full_barriers + 8 * s, (t / kWgStages) & 1);
      const uint32_t a_rows = ring + s * kWgStageBytes + consumer * (64 * 128);  // this warpgroup's 64 rows of a
      const uint32_t b_tile = ring + s * kWgStageBytes + kWgATileBytes;
      WgmmaFence();
#pragma unroll
      for (int kk = 0; kk < kWgBK / 16; kk++) {
        // K-major b: 16 more k are 32 bytes along each 128-byte row; N-major b: 16 more k rows of 128 bytes.
        const uint64_t b_descriptor = kTransB ? SwizzledTileDescriptor(b_tile + 32 * kk)
                                              : SwizzledMnMajorDescriptor(b_tile + 2048 * kk, kWgBBoxBytes);
        WgmmaM64N256K16<!kTransB>(d, SwizzledTileDescriptor(a_rows + 32 * kk), b_descriptor);
      }
      WgmmaCommit();
      // The previous stage's wgmma are done once at most this one's group is pending: release that stage.
      WgmmaWait<1>();
      FenceAccumulators(d);
      if (t > 0 && tid % 32 == 0) BarrierArrive(empty_barriers + 8 * ((t - 1) % kWgStages));
    }
    WgmmaWait<0>();
    FenceAccumulators(d);

    // d[i]: row 16·warp + lane/4 + 8·((i/2) % 2), column 8·(i/4) + 2·(lane % 4) + i % 2 of the 64 × 256 tile:
    // d[i], d[i + 1] (i even) are two adjacent columns, stored as one float2 where both exist and N is even.
    const int lane = tid % 32;
    const int64_t row_base = m0 + consumer * 64 + 16 * (tid / 32) + lane / 4;
    const int64_t col_base = n0 + 2 * (lane % 4);
    float* out = p.out + bi * p.out_batch_stride;
    const bool pairs = p.n % 2 == 0;
#pragma unroll
    for (int i = 0; i < 128; i += 2) {
      const int64_t row = row_base + 8 * ((i >> 1) & 1), col = col_base + 8 * (i >> 2);
      if (row >= p.m || col >= p.n) continue;
      float* target = out + row * p.n + col;
      if (pairs) {
        float2 value = make_float2(p.alpha * d[i], p.alpha * d[i + 1]);
        if (p.accumulate) {
          const float2 previous = *reinterpret_cast<const float2*>(target);
          value.x += previous.x;
          value.y += previous.y;
        }
        *reinterpret_cast<float2*>(target) = value;
      } else {
        for (int j = 0; j < 2 && col + j < p.n; j++) {
          const float value = p.alpha * d[i + j];
          target[j] = p.accumulate ? target[j] + value : value;
        }
      }
    }
  }
#endif
}

// Writes whether the wgmma kernel's body was compiled into the image this GPU runs: only an sm_90a image has
// it; an sm_90 GPU running the compute_90 PTX (a build without 90a) would launch an empty kernel.
__global__ void WgmmaCompiledKernel(int* compiled) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  *compiled = 1;
#else
  *compiled = 0;
#endif
}

/** The driver's cuTensorMapEncodeTiled, through the runtime (the addon doesn't link libcuda); null if absent. */
PFN_cuTensorMapEncodeTiled_v12000 TensorMapEncoder() {
  static const PFN_cuTensorMapEncodeTiled_v12000 encoder = [] {
    void* function = nullptr;
    cudaDriverEntryPointQueryResult found = cudaDriverEntryPointSymbolNotFound;
    const cudaError_t status =
        cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &function, 12000, cudaEnableDefault, &found);
    if (status != cudaSuccess || found != cudaDriverEntryPointSuccess) {
      cudaGetLastError();
      return static_cast<PFN_cuTensorMapEncodeTiled_v12000>(nullptr);
    }
    return reinterpret_cast<PFN_cuTensorMapEncodeTiled_v12000>(function);
  }();
  return encoder;
}

/** Why the wgmma kernel can't run here ("" when it can: a compute 9.0 GPU, an sm_90a image, the tensor-map
 * encoder); probed once. */
const std::string& WgmmaMissing() {
  static const std::string reason = [] {
    std::string missing;
    if (Probe().major != 9) {
      missing = "a compute capability 9.0 GPU (this is " + std::to_string(Probe().major) + "." +
                std::to_string(Probe().minor) + ")";
    } else if (TensorMapEncoder() == nullptr) {
      missing = "the driver's cuTensorMapEncodeTiled";
    } else {
      int* flag = static_cast<int*>(Malloc(sizeof(int)));
      int compiled = 0;
      WgmmaCompiledKernel<<<1, 1, 0, Stream()>>>(flag);
      cudaError_t status = cudaGetLastError();
      if (status == cudaSuccess) status = cudaMemcpyAsync(&compiled, flag, sizeof(int), cudaMemcpyDeviceToHost, Stream());
      if (status == cudaSuccess) status = cudaStreamSynchronize(Stream());
      Free(flag);
      Check(status, "matmul (probe for the wgmma kernel)");
      if (!compiled) missing = "an sm_90a build (CMAKE_CUDA_ARCHITECTURES with 90a)";
    }
    return missing;
  }();
  return reason;
}

/** Whether the wgmma kernel can run; an explicit LABOR_CUDA_GEMM=wgmma that can't is told why, once. */
bool WgmmaAvailable(bool requested_explicitly) {
  const std::string& missing = WgmmaMissing();
  static bool told = false;
  if (!missing.empty() && requested_explicitly && !told) {
    std::fprintf(stderr, "labor-llm: LABOR_CUDA_GEMM=wgmma needs %s; using the mma kernel\n", missing.c_str());
    told = true;
  }
  return missing.empty();
}

/** A 3-d map of the bf16 tensor [batches, rows, cols] (rows of `cols` elements, densely packed) in boxes of
 * 64 columns (128 bytes, the swizzle width) × box_rows rows × 1, 128-byte-swizzled, zero outside. */
CUtensorMap TileMap(const uint16_t* base, int64_t cols, int64_t rows, int64_t batches, uint32_t box_rows) {
  const cuuint64_t dims[3] = {static_cast<cuuint64_t>(cols), static_cast<cuuint64_t>(rows),
                              static_cast<cuuint64_t>(batches)};
  const cuuint64_t strides[2] = {static_cast<cuuint64_t>(cols) * 2, static_cast<cuuint64_t>(cols * rows) * 2};  // bytes
  const cuuint32_t box[3] = {kWgBK, box_rows, 1};
  const cuuint32_t element_strides[3] = {1, 1, 1};
  CUtensorMap map;
  const CUresult status =
      TensorMapEncoder()(&map, CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, 3, const_cast<uint16_t*>(base), dims, strides, box,
                         element_strides, CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B,
                         CU_TENSOR_MAP_L2_PROMOTION_L2_256B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
  if (status != CUDA_SUCCESS) {
    throw CudaError("matmul: cuTensorMapEncodeTiled failed (CUresult " + std::to_string(status) + ") for [" +
                    std::to_string(batches) + ", " + std::to_string(rows) + ", " + std::to_string(cols) + "]");
  }
  return map;
}

/** Needs b's rows (K long for b [N, K], N long for b [K, N]) a multiple of 8 elements (16-byte row strides for
 * TMA) and a 16-byte-aligned base. */
template <bool kTransB>
void LaunchWgmma(const TcParams& p, int64_t batch, dim3 grid) {
  static const cudaError_t allowed = cudaFuncSetAttribute(
      MatmulWgmmaKernel<kTransB>, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(kWgSharedBytes));
  Check(allowed, "matmul (cudaFuncSetAttribute for the wgmma kernel's shared memory)");
  const CUtensorMap a_map = TileMap(p.a, p.k8, p.m, batch, kWgBM);
  const int64_t b_batches = p.b_batch_stride != 0 ? batch : 1;
  const CUtensorMap b_map = kTransB ? TileMap(p.b, p.k, p.n, b_batches, kWgBN) : TileMap(p.b, p.n, p.k, b_batches, kWgBK);
  MatmulWgmmaKernel<kTransB><<<grid, kWgThreads, kWgSharedBytes, Stream()>>>(a_map, b_map, p);
}

enum class TcKernel { kAuto, kMma, kWmma, kWgmma };

/** LABOR_CUDA_GEMM: "mma", "wmma" or "wgmma" asks for that kernel; unset (or anything else) lets the shape and
 * the GPU choose. Read at each call: the benchmark and the tests switch it. */
TcKernel RequestedKernel() {
  const char* choice = std::getenv("LABOR_CUDA_GEMM");
  if (choice == nullptr) return TcKernel::kAuto;
  if (std::strcmp(choice, "mma") == 0) return TcKernel::kMma;
  if (std::strcmp(choice, "wmma") == 0) return TcKernel::kWmma;
  if (std::strcmp(choice, "wgmma") == 0) return TcKernel::kWgmma;
  return TcKernel::kAuto;
}

/** LABOR_CUDA_RASTER=rows: the wgmma kernel's blocks walk row tiles first (TcParams::rows_fastest). */
bool RowsFastestRequested() {
  const char* order = std::getenv("LABOR_CUDA_RASTER");
  return order != nullptr && std::strcmp(order, "rows") == 0;
}

// ---------------------------------------------------------------- f32 SIMT GEMM (f32 / f16 b)

constexpr int kSM = 64, kSN = 64, kSK = 16, kSimtThreads = 256;

struct SimtParams {
  const float* a;
  const void* b;
  float* out;
  int64_t m, n, k;
  int64_t a_batch_stride, b_batch_stride, out_batch_stride;
  int64_t k_per_split;
  int splits;
  float alpha;
  bool accumulate;  // false: plain store (splits == 1 only)
};

template <class BType>
__device__ inline float LoadB(const void* b, int64_t i) {
  if constexpr (std::is_same<BType, float>::value) {
    return static_cast<const float*>(b)[i];
  } else {
    return HalfBitsToFloat(static_cast<const uint16_t*>(b)[i]);
  }
}

template <bool kTransA, bool kTransB, class BType>
__global__ void __launch_bounds__(kSimtThreads) MatmulSimtKernel(SimtParams p) {
  __shared__ float as[kSK][kSM + 4];
  __shared__ float bs[kSK][kSN + 4];
  const int tid = threadIdx.x, tx = tid % 16, ty = tid / 16;
  const int64_t bi = blockIdx.z / p.splits, split = blockIdx.z % p.splits;
  const int64_t m0 = static_cast<int64_t>(blockIdx.y) * kSM, n0 = static_cast<int64_t>(blockIdx.x) * kSN;
  const float* a = p.a + bi * p.a_batch_stride;
  const int64_t b_offset = bi * p.b_batch_stride;
  float* out = p.out + bi * p.out_batch_stride;
  const int64_t k_begin = split * p.k_per_split;
  const int64_t k_end = k_begin + p.k_per_split < p.k ? k_begin + p.k_per_split : p.k;

  float acc[4][4] = {};
  for (int64_t k0 = k_begin; k0 < k_end; k0 += kSK) {
    // 1024 elements of each tile, 4 per thread, consecutive threads along the contiguous global dim.
#pragma unroll
    for (int i = 0; i < 4; i++) {
      const int e = tid + i * kSimtThreads;
      const int mm = kTransA ? e % kSM : e / kSK, ka = kTransA ? e / kSM : e % kSK;
      const int64_t gm = m0 + mm, gk = k0 + ka;
      float value = 0.0f;
      if (gm < p.m && gk < k_end) value = kTransA ? a[gk * p.m + gm] : a[gm * p.k + gk];
      as[ka][mm] = value;
      const int nn = kTransB ? e / kSK : e % kSN, kb = kTransB ? e % kSK : e / kSN;
      const int64_t gn = n0 + nn, gkb = k0 + kb;
      float bvalue = 0.0f;
      if (gn < p.n && gkb < k_end) bvalue = LoadB<BType>(p.b, b_offset + (kTransB ? gn * p.k + gkb : gkb * p.n + gn));
      bs[kb][nn] = bvalue;
    }
    __syncthreads();
#pragma unroll
    for (int kk = 0; kk < kSK; kk++) {
      float av[4], bv[4];
#pragma unroll
      for (int i = 0; i < 4; i++) av[i] = as[kk][ty + 16 * i];
#pragma unroll
      for (int j = 0; j < 4; j++) bv[j] = bs[kk][tx + 16 * j];
#pragma unroll
      for (int i = 0; i < 4; i++)
#pragma unroll
        for (int j = 0; j < 4; j++) acc[i][j] = fmaf(av[i], bv[j], acc[i][j]);
    }
    __syncthreads();
  }
#pragma unroll
  for (int i = 0; i < 4; i++) {
#pragma unroll
    for (int j = 0; j < 4; j++) {
      const int64_t row = m0 + ty + 16 * i, col = n0 + tx + 16 * j;
      if (row < p.m && col < p.n) {
        float* target = out + row * p.n + col;
        const float value = p.alpha * acc[i][j];
        if (p.splits > 1) {
          atomicAdd(target, value);
        } else {
          *target = p.accumulate ? *target + value : value;
        }
      }
    }
  }
}

template <bool kTransA, bool kTransB>
void LaunchSimt(const SimtParams& p, dim3 grid, DType b_dtype) {
  if (b_dtype == DType::kF16) {
    MatmulSimtKernel<kTransA, kTransB, __half><<<grid, kSimtThreads, 0, Stream()>>>(p);
  } else {
    MatmulSimtKernel<kTransA, kTransB, float><<<grid, kSimtThreads, 0, Stream()>>>(p);
  }
}

constexpr int64_t kMaxGridYZ = 65535;

void MatmulSimt(const MatmulArgs& args) {
  SimtParams p{};
  p.a = args.a;
  p.b = args.b;
  p.out = args.out;
  SetProductShape(p, args);
  const int64_t tiles_n = (args.n + kSN - 1) / kSN, tiles_m = (args.m + kSM - 1) / kSM;
  // Split K when the output grid can't fill the GPU and K is long (LoRA's rank-r products).
  const int64_t blocks = tiles_n * tiles_m * args.batch;
  const int64_t target = 2 * std::max(1, Probe().multiprocessors);
  int64_t splits = 1;
  if (blocks < target && args.k >= 512) {
    splits = std::min<int64_t>({(target + blocks - 1) / blocks, args.k / 256, 64});
    splits = std::max<int64_t>(splits, 1);
  }
  p.k_per_split = ((args.k + splits - 1) / splits + kSK - 1) / kSK * kSK;
  if (p.k_per_split == 0) p.k_per_split = kSK;
  splits = (args.k + p.k_per_split - 1) / p.k_per_split;
  if (splits < 1) splits = 1;
  p.splits = static_cast<int>(splits);
  if (splits > 1 && !args.accumulate) Zero(args.out, static_cast<size_t>(args.batch * args.m * args.n) * sizeof(float));
  if (tiles_m > kMaxGridYZ) throw CudaError("matmul: M = " + std::to_string(args.m) + " needs more than 65535 row tiles");
  // Batches in chunks so gridDim.z = chunk · splits stays ≤ 65535.
  const int64_t chunk = std::max<int64_t>(1, kMaxGridYZ / splits);
  for (int64_t b0 = 0; b0 < args.batch; b0 += chunk) {
    const int64_t count = std::min(chunk, args.batch - b0);
    SimtParams q = p;
    q.a += b0 * p.a_batch_stride;
    q.b = static_cast<const char*>(args.b) + b0 * p.b_batch_stride * static_cast<int64_t>(DTypeBytes(args.b_dtype));
    q.out += b0 * p.out_batch_stride;
    const dim3 grid(static_cast<unsigned>(tiles_n), static_cast<unsigned>(tiles_m), static_cast<unsigned>(count * splits));
    if (args.trans_a) {
      args.trans_b ? LaunchSimt<true, true>(q, grid, args.b_dtype) : LaunchSimt<true, false>(q, grid, args.b_dtype);
    } else {
      args.trans_b ? LaunchSimt<false, true>(q, grid, args.b_dtype) : LaunchSimt<false, false>(q, grid, args.b_dtype);
    }
    CheckLaunch("matmul (f32 tiled kernel)");
  }
}

void MatmulTensorCores(const MatmulArgs& args) {
  const TcKernel requested = RequestedKernel();
  if (requested == TcKernel::kAuto && MatmulSkinny(args)) return;
  const int64_t k8 = (args.k + 7) / 8 * 8, k_tiles = (k8 + kBK - 1) / kBK;
  const int64_t a_elements = args.batch * args.m * k8;
  const DeviceScratch a16(static_cast<size_t>(a_elements) * 2);
  if (args.trans_a) {
    const int64_t k_blocks = std::min<int64_t>((k8 + kTransposeTile - 1) / kTransposeTile, kMaxGridYZ);
    const dim3 grid(static_cast<unsigned>((args.m + kTransposeTile - 1) / kTransposeTile), static_cast<unsigned>(k_blocks),
                    static_cast<unsigned>(std::min<int64_t>(args.batch, kMaxGridYZ)));
    ConvertATransposedKernel<<<grid, dim3(kTransposeTile, kTransposeRows), 0, Stream()>>>(
        args.a, a16.as<uint16_t>(), args.batch, args.m, args.k, k8);
  } else {
    ConvertAKernel<<<GridFor(a_elements, 256), 256, 0, Stream()>>>(args.a, a16.as<uint16_t>(), args.batch, args.m,
                                                                   args.k, k8);
  }
  CheckLaunch("matmul (a → bf16)");
  TcParams p{};
  p.a = a16.as<uint16_t>();
  p.b = static_cast<const uint16_t*>(args.b);
  p.out = args.out;
  SetProductShape(p, args);
  p.k8 = k8;
  p.a_batch_stride = args.m * k8;  // the padded bf16 copy
  p.splits = 1;
  p.tiles_per_split = k_tiles;
  const int64_t contiguous = args.trans_b ? args.k : args.n;  // b's row length
  const bool vector = contiguous % 8 == 0 && reinterpret_cast<uintptr_t>(args.b) % 16 == 0;  // also what TMA needs
  // The choice when none is asked for: wgmma where it applies (Hopper, b's rows a multiple of 8), unless its
  // 128×256 tiles would leave most multiprocessors idle on a long K — LoRA's rank-16 products — where the mma
  // kernel splits K instead; the mma kernel for the rest.
  const int64_t wgmma_blocks = (args.n + kWgBN - 1) / kWgBN * ((args.m + kWgBM - 1) / kWgBM) * args.batch;
  const bool wgmma_fits = requested == TcKernel::kWgmma ||
                          (requested == TcKernel::kAuto && !(2 * wgmma_blocks < Probe().multiprocessors && k_tiles >= 8));
  const bool wgmma = wgmma_fits && vector && WgmmaAvailable(requested == TcKernel::kWgmma);
  const bool mma = requested != TcKernel::kWmma;
  static_assert(kWgBM == kBM, "one row-tile count for every tensor-core kernel");
  const int64_t block_n = wgmma ? kWgBN : kBN;
  const int64_t tiles_n = (args.n + block_n - 1) / block_n, tiles_m = (args.m + kBM - 1) / kBM;
  if (tiles_m > kMaxGridYZ) throw CudaError("matmul: M = " + std::to_string(args.m) + " needs more than 65535 row tiles");
  const int64_t splits = !wgmma && vector && mma ? MmaSplits(tiles_n * tiles_m * args.batch, k_tiles) : 1;
  if (splits > 1 && args.batch * splits <= kMaxGridYZ) {
    p.tiles_per_split = (k_tiles + splits - 1) / splits;
    p.splits = static_cast<int>((k_tiles + p.tiles_per_split - 1) / p.tiles_per_split);  // none empty
    const int64_t count = args.batch * args.m * args.n;
    const DeviceScratch partials(static_cast<size_t>(p.splits * count) * sizeof(float));
    p.partials = partials.as<float>();
    const dim3 grid(static_cast<unsigned>(tiles_n), static_cast<unsigned>(tiles_m),
                    static_cast<unsigned>(args.batch * p.splits));
    args.trans_b ? LaunchMma<true>(p, grid) : LaunchMma<false>(p, grid);
    CheckLaunch("matmul (bf16 tensor-core kernel, split K)");
    SumSplitsKernel<<<GridFor(count, 256), 256, 0, Stream()>>>(p.partials, args.out, count, p.splits, args.alpha,
                                                               args.accumulate);
    CheckLaunch("matmul (sum of K splits)");
    return;
  }
  for (int64_t b0 = 0; b0 < args.batch; b0 += kMaxGridYZ) {
    const int64_t count = std::min(kMaxGridYZ, args.batch - b0);
    TcParams q = p;
    q.a += b0 * p.a_batch_stride;
    q.b += b0 * p.b_batch_stride;
    q.out += b0 * p.out_batch_stride;
    const dim3 grid(static_cast<unsigned>(tiles_n), static_cast<unsigned>(tiles_m), static_cast<unsigned>(count));
    if (wgmma) {
      q.rows_fastest = RowsFastestRequested() && tiles_n <= kMaxGridYZ;
      const dim3 wgmma_grid = q.rows_fastest ? dim3(grid.y, grid.x, grid.z) : grid;
      args.trans_b ? LaunchWgmma<true>(q, count, wgmma_grid) : LaunchWgmma<false>(q, count, wgmma_grid);
    } else if (vector && mma) {
      args.trans_b ? LaunchMma<true>(q, grid) : LaunchMma<false>(q, grid);
    } else if (args.trans_b) {
      vector ? MatmulBf16Kernel<true, true><<<grid, kTcThreads, 0, Stream()>>>(q)
             : MatmulBf16Kernel<true, false><<<grid, kTcThreads, 0, Stream()>>>(q);
    } else {
      vector ? MatmulBf16Kernel<false, true><<<grid, kTcThreads, 0, Stream()>>>(q)
             : MatmulBf16Kernel<false, false><<<grid, kTcThreads, 0, Stream()>>>(q);
    }
    CheckLaunch("matmul (bf16 tensor-core kernel)");
  }
}

}  // namespace

void Matmul(const MatmulArgs& args) {
  if (args.batch == 0 || args.m == 0 || args.n == 0) return;
  if (args.k == 0) {
    // An empty sum: out = 0 (or unchanged when accumulating).
    if (!args.accumulate) Zero(args.out, static_cast<size_t>(args.batch * args.m * args.n) * sizeof(float));
    return;
  }
  if (args.b_dtype == DType::kBf16) {
    MatmulTensorCores(args);
  } else {
    MatmulSimt(args);
  }
}

}  // namespace labor::cuda
