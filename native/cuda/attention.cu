// Attention forward (flash-style): softmax(scale · q·kᵀ over each query's key range) · v, with the optional
// log-sum-exp for the backward, and tree attention for prefix-shared scoring.
//
// A block owns 16 queries of one head and streams the union of their key ranges through shared memory in
// tiles of 32 keys. Per tile, a warp's lanes each score one key against the warp's 4 queries, then every
// query's running state is updated with the online softmax (REFERENCE §6):
//   m' = max(m, max_j s_j);  l' = l·e^{m−m'} + Σ_j e^{s_j−m'};  o' = o·e^{m−m'} + Σ_j e^{s_j−m'} v_j
// and at the end out = o / l (0 for an empty range) and lse = m + log l (−inf for an empty range).
// Tree attention adds, after the contiguous range, each query's own list of extra keys (its trie ancestors
// and itself), read straight from global memory 32 at a time.
#include <climits>
#include <string>

#include "cuda/attention_common.cuh"

namespace labor::cuda {
namespace {

struct RowState {
  float m, l;
};

/** Online-softmax update of one row with this lane's score s (−inf when masked); returns p = e^{s − m'} and
 * the factor the row's accumulator must be multiplied by. */
__device__ inline float OnlineUpdate(RowState& row, float s, float& correction) {
  const float tile_max = WarpMax(s);
  const float m_new = fmaxf(row.m, tile_max);
  if (m_new == -INFINITY) {  // nothing visible yet
    correction = 1.0f;
    return 0.0f;
  }
  correction = expf(row.m - m_new);  // e^{−inf} = 0 on the first visible keys
  const float p = s == -INFINITY ? 0.0f : expf(s - m_new);
  row.l = row.l * correction + WarpSum(p);
  row.m = m_new;
  return p;
}

template <int kPer>
__global__ void __launch_bounds__(kAttnThreads) AttentionKernel(AttentionArgs a) {
  extern __shared__ float smem[];
  const int hd = static_cast<int>(a.head_dim);
  float* qs = smem;                          // [16][hd]
  float* ks = qs + kTileRows * hd;           // [32][hd + 1]
  float* vs = ks + kTile * (hd + 1);         // [32][hd]
  int* range = reinterpret_cast<int*>(vs + kTile * hd);  // start[16], end[16], block min, block max

  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int64_t head = blockIdx.y, kv_head = head / (a.heads / a.kv_heads);
  const int64_t t0 = static_cast<int64_t>(blockIdx.x) * kTileRows;

  LoadHeadRows(qs, hd, a.q, t0, kTileRows, a.queries, a.heads, head, hd);
  if (threadIdx.x < kTileRows) {
    const int64_t t = t0 + threadIdx.x;
    const bool valid = t < a.queries;
    range[threadIdx.x] = valid ? a.key_start[t] : 0;
    range[kTileRows + threadIdx.x] = valid ? a.key_end[t] : 0;
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    int lo = INT_MAX, hi = 0;
    for (int r = 0; r < kTileRows; r++) {
      const int s = range[r], e = range[kTileRows + r];
      if (s < e) {
        lo = min(lo, s);
        hi = max(hi, e);
      }
    }
    range[2 * kTileRows] = lo;
    range[2 * kTileRows + 1] = hi;
  }
  __syncthreads();
  const int key_lo = range[2 * kTileRows];
  const int key_hi = min(static_cast<int64_t>(range[2 * kTileRows + 1]), a.keys);

  RowState rows[kRowsPerWarp];
  float acc[kRowsPerWarp][kPer];
  int starts[kRowsPerWarp], ends[kRowsPerWarp];
#pragma unroll
  for (int r = 0; r < kRowsPerWarp; r++) {
    rows[r] = {-INFINITY, 0.0f};
    starts[r] = range[warp * kRowsPerWarp + r];
    ends[r] = range[kTileRows + warp * kRowsPerWarp + r];
#pragma unroll
    for (int i = 0; i < kPer; i++) acc[r][i] = 0.0f;
  }
  const float* q_rows = qs + warp * kRowsPerWarp * hd;

  for (int j0 = key_lo; j0 < key_hi; j0 += kTile) {
    __syncthreads();  // the previous tile is no longer read
    LoadHeadRows(ks, hd + 1, a.k, j0, kTile, a.keys, a.kv_heads, kv_head, hd);
    LoadHeadRows(vs, hd, a.v, j0, kTile, a.keys, a.kv_heads, kv_head, hd);
    __syncthreads();

    // s[r] = scale · q_r · k_j for this lane's key j.
    const int j = j0 + lane;
    float s[kRowsPerWarp] = {};
    const float* k_row = ks + lane * (hd + 1);
    for (int d = 0; d < hd; d++) {
      const float kd = k_row[d];
#pragma unroll
      for (int r = 0; r < kRowsPerWarp; r++) s[r] = fmaf(q_rows[r * hd + d], kd, s[r]);
    }
    float p[kRowsPerWarp];
#pragma unroll
    for (int r = 0; r < kRowsPerWarp; r++) {
      const bool visible = j >= starts[r] && j < ends[r] && j < a.keys;
      float correction;
      p[r] = OnlineUpdate(rows[r], visible ? s[r] * a.scale : -INFINITY, correction);
#pragma unroll
      for (int i = 0; i < kPer; i++) acc[r][i] *= correction;
    }
    // acc[r][d] += Σ_jj p[r](jj) · v[jj][d]
    const int tile_keys = min(kTile, key_hi - j0);
    for (int jj = 0; jj < tile_keys; jj++) {
      float pj[kRowsPerWarp];
#pragma unroll
      for (int r = 0; r < kRowsPerWarp; r++) pj[r] = __shfl_sync(kFullMask, p[r], jj);
#pragma unroll
      for (int i = 0; i < kPer; i++) {
        const int d = lane + 32 * i;
        if (d < hd) {
          const float vd = vs[jj * hd + d];
#pragma unroll
          for (int r = 0; r < kRowsPerWarp; r++) acc[r][i] = fmaf(pj[r], vd, acc[r][i]);
        }
      }
    }
  }

  // Tree attention: each query's extra keys, 32 at a time, from global memory.
  if (a.extra_offsets != nullptr) {
#pragma unroll
    for (int r = 0; r < kRowsPerWarp; r++) {
      const int64_t t = t0 + warp * kRowsPerWarp + r;
      if (t >= a.queries) continue;  // warp-uniform
      const int64_t e_begin = a.extra_offsets[t], e_end = a.extra_offsets[t + 1];
      for (int64_t e0 = e_begin; e0 < e_end; e0 += 32) {
        const int64_t e = e0 + lane;
        const int key = e < e_end ? a.extra_keys[e] : -1;
        const bool visible = key >= 0 && key < a.keys;
        float s = 0.0f;
        if (visible) {
          const float* k_row = a.k + (static_cast<int64_t>(key) * a.kv_heads + kv_head) * hd;
          for (int d = 0; d < hd; d++) s = fmaf(q_rows[r * hd + d], k_row[d], s);
        }
        float correction;
        const float p = OnlineUpdate(rows[r], visible ? s * a.scale : -INFINITY, correction);
#pragma unroll
        for (int i = 0; i < kPer; i++) acc[r][i] *= correction;
        const int count = static_cast<int>(min(static_cast<int64_t>(32), e_end - e0));
        for (int jj = 0; jj < count; jj++) {
          const float pj = __shfl_sync(kFullMask, p, jj);
          const int kj = __shfl_sync(kFullMask, key, jj);
          if (pj == 0.0f) continue;  // warp-uniform (masked key, or an underflowed weight)
          const float* v_row = a.v + (static_cast<int64_t>(kj) * a.kv_heads + kv_head) * hd;
#pragma unroll
          for (int i = 0; i < kPer; i++) {
            const int d = lane + 32 * i;
            if (d < hd) acc[r][i] = fmaf(pj, v_row[d], acc[r][i]);
          }
        }
      }
    }
  }

#pragma unroll
  for (int r = 0; r < kRowsPerWarp; r++) {
    const int64_t t = t0 + warp * kRowsPerWarp + r;
    if (t >= a.queries) continue;
    const float inv = rows[r].l > 0.0f ? 1.0f / rows[r].l : 0.0f;
    float* out_row = a.out + (t * a.heads + head) * hd;
#pragma unroll
    for (int i = 0; i < kPer; i++) {
      const int d = lane + 32 * i;
      if (d < hd) out_row[d] = acc[r][i] * inv;
    }
    if (a.lse != nullptr && lane == 0) {
      a.lse[t * a.heads + head] = rows[r].l > 0.0f ? rows[r].m + logf(rows[r].l) : -INFINITY;
    }
  }
}

template <int kPer>
void LaunchForward(const AttentionArgs& a, const char* name) {
  const int hd = static_cast<int>(a.head_dim);
  const size_t bytes = (static_cast<size_t>(kTileRows) * hd + kTile * (hd + 1) + kTile * hd) * sizeof(float) +
                       (2 * kTileRows + 2) * sizeof(int);
  static size_t allowed = 0;
  AllowSharedMemory(AttentionKernel<kPer>, bytes, allowed, name);
  const dim3 grid(static_cast<unsigned>((a.queries + kTileRows - 1) / kTileRows), static_cast<unsigned>(a.heads));
  AttentionKernel<kPer><<<grid, kAttnThreads, bytes, Stream()>>>(a);
  CheckLaunch(name);
}

}  // namespace

void Attention(const AttentionArgs& a) {
  const char* name = a.extra_offsets != nullptr ? "treeAttention" : a.lse != nullptr ? "attentionForTraining" : "attention";
  if (a.queries == 0 || a.heads == 0 || a.head_dim == 0) {
    if (a.queries > 0 && a.heads > 0 && a.lse != nullptr) Fill(a.lse, DType::kF32, a.queries * a.heads, -INFINITY);
    return;
  }
  if (a.head_dim > kMaxHeadDim) {
    throw CudaError(std::string(name) + ": head dim " + std::to_string(a.head_dim) + " exceeds " +
                    std::to_string(kMaxHeadDim));
  }
  if (a.heads > 65535) throw CudaError(std::string(name) + ": more than 65535 heads");
  if (a.bf16 && a.lse != nullptr && a.extra_offsets == nullptr &&
      TensorCoreAttentionApplies(a.head_dim, {a.out})) {
    AttentionForTrainingMma(a);
  } else if (a.head_dim <= 64) {
    LaunchForward<2>(a, name);
  } else if (a.head_dim <= 128) {
    LaunchForward<4>(a, name);
  } else {
    LaunchForward<8>(a, name);
  }
}

}  // namespace labor::cuda
