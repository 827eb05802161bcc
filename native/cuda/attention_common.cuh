// Shared pieces of the attention kernels (attention.cu, attention_backward.cu).
//
// Layout: q, out, dOut [Tq, H, hd]; k, v [Tk, KV, hd]; query head h reads kv head h / (H/KV). Query t sees
// keys start[t] ≤ j < end[t]. Work is split into warps that own 4 rows each and lanes that own either one key
// / one query of a 32-wide tile (for dot products, reading a padded shared row so the 32 lanes hit 32
// banks) or the elements d = lane + 32·i of a head vector (for the weighted sums; kPer = ⌈hd/32⌉ registers).
#pragma once
#include <initializer_list>

#include "cuda/common.cuh"

namespace labor::cuda {

constexpr int kAttnWarps = 4;
constexpr int kAttnThreads = kAttnWarps * 32;
constexpr int kRowsPerWarp = 4;
constexpr int kTileRows = kAttnWarps * kRowsPerWarp;  // 16 queries (forward, dq) or keys (dk/dv) per block
constexpr int kTile = 32;                             // keys (forward, dq) or queries (dk/dv) per inner tile

/** Copies `rows` rows of head `head` (of `heads_per_row` heads) starting at row `row0` into shared memory with
 * row stride `stride`; rows past `total_rows` become zeros. Whole block participates. */
__device__ inline void LoadHeadRows(float* shared, int stride, const float* __restrict__ src, int64_t row0, int rows,
                                    int64_t total_rows, int64_t heads_per_row, int64_t head, int head_dim) {
  for (int e = threadIdx.x; e < rows * head_dim; e += blockDim.x) {
    const int r = e / head_dim, d = e % head_dim;
    const int64_t row = row0 + r;
    shared[r * stride + d] = row < total_rows ? src[(row * heads_per_row + head) * head_dim + d] : 0.0f;
  }
}

/** Raises the dynamic shared-memory limit of `kernel` when it needs more than the default 48 KiB (`allowed`
 * remembers the largest limit set so far for that kernel; ops run on one thread). */
template <class Kernel>
inline void AllowSharedMemory(Kernel kernel, size_t bytes, size_t& allowed, const char* name) {
  if (bytes > 48 * 1024 && bytes > allowed) {
    Check(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(bytes)), name);
    allowed = bytes;
  }
}

// Tensor-core training attention (attention_mma.cu): whether it handles this head dim with these outputs (8-byte
// aligned for its float2 stores), and its launches (the backward's d_sum as in attention_backward.cu).
bool TensorCoreAttentionApplies(int64_t head_dim, std::initializer_list<const void*> outputs);
void AttentionForTrainingMma(const AttentionArgs& a);
void AttentionBackwardMma(const AttentionBackwardArgs& a, float* d_sum);

}  // namespace labor::cuda
