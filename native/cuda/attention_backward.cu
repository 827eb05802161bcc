// Attention backward (flash-style, P recomputed from the saved lse, no atomics). With s = scale·q·k,
// P_tj = e^{s_tj − lse_t} on visible keys, D_t = dO_t · O_t, dP_tj = dO_t · v_j, dS_tj = P_tj (dP_tj − D_t):
//   dq_t = scale · Σ_j dS_tj k_j          (pass 1: blocks of 16 queries × one head, key tiles of 32)
//   dk_j = scale · Σ_{t,h∈group} dS_tj q_t   dv_j = Σ_{t,h∈group} P_tj dO_t
//                                          (pass 2: blocks of 16 keys × one kv head, query tiles of 32)
// Pass 1 also stores D for pass 2. Every output element is written exactly once (keys nobody sees get 0).
#include <climits>
#include <string>

#include "cuda/attention_common.cuh"

namespace labor::cuda {
namespace {

// ---------------------------------------------------------------- pass 1: dq (and D)

template <int kPer>
__global__ void __launch_bounds__(kAttnThreads) AttentionDqKernel(AttentionBackwardArgs a, float* __restrict__ d_sum) {
  extern __shared__ float smem[];
  const int hd = static_cast<int>(a.head_dim);
  float* qs = smem;                           // [16][hd]
  float* dos = qs + kTileRows * hd;           // [16][hd]
  float* ks = dos + kTileRows * hd;           // [32][hd + 1]
  float* vs = ks + kTile * (hd + 1);          // [32][hd + 1]
  int* range = reinterpret_cast<int*>(vs + kTile * (hd + 1));

  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int64_t head = blockIdx.y, kv_head = head / (a.heads / a.kv_heads);
  const int64_t t0 = static_cast<int64_t>(blockIdx.x) * kTileRows;

  LoadHeadRows(qs, hd, a.q, t0, kTileRows, a.queries, a.heads, head, hd);
  LoadHeadRows(dos, hd, a.d_out, t0, kTileRows, a.queries, a.heads, head, hd);
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
      if (range[r] < range[kTileRows + r]) {
        lo = min(lo, range[r]);
        hi = max(hi, range[kTileRows + r]);
      }
    }
    range[2 * kTileRows] = lo;
    range[2 * kTileRows + 1] = hi;
  }
  __syncthreads();
  const int key_lo = range[2 * kTileRows];
  const int key_hi = static_cast<int>(min(static_cast<int64_t>(range[2 * kTileRows + 1]), a.keys));

  const float* q_rows = qs + warp * kRowsPerWarp * hd;
  const float* do_rows = dos + warp * kRowsPerWarp * hd;
  float lse[kRowsPerWarp], dsum[kRowsPerWarp], dq[kRowsPerWarp][kPer];
  int starts[kRowsPerWarp], ends[kRowsPerWarp];
#pragma unroll
  for (int r = 0; r < kRowsPerWarp; r++) {
    const int64_t t = t0 + warp * kRowsPerWarp + r;
    const bool valid = t < a.queries;
    starts[r] = range[warp * kRowsPerWarp + r];
    ends[r] = range[kTileRows + warp * kRowsPerWarp + r];
    lse[r] = valid ? a.lse[t * a.heads + head] : 0.0f;
    // D_t = dO_t · O_t
    float partial = 0.0f;
    if (valid) {
      const float* o_row = a.out + (t * a.heads + head) * hd;
      for (int d = lane; d < hd; d += 32) partial = fmaf(do_rows[r * hd + d], o_row[d], partial);
    }
    dsum[r] = WarpSum(partial);
    if (valid && lane == 0) d_sum[t * a.heads + head] = dsum[r];
#pragma unroll
    for (int i = 0; i < kPer; i++) dq[r][i] = 0.0f;
  }

  for (int j0 = key_lo; j0 < key_hi; j0 += kTile) {
    __syncthreads();
    LoadHeadRows(ks, hd + 1, a.k, j0, kTile, a.keys, a.kv_heads, kv_head, hd);
    LoadHeadRows(vs, hd + 1, a.v, j0, kTile, a.keys, a.kv_heads, kv_head, hd);
    __syncthreads();

    const int j = j0 + lane;
    float s[kRowsPerWarp] = {}, dp[kRowsPerWarp] = {};
    const float* k_row = ks + lane * (hd + 1);
    const float* v_row = vs + lane * (hd + 1);
    for (int d = 0; d < hd; d++) {
      const float kd = k_row[d], vd = v_row[d];
#pragma unroll
      for (int r = 0; r < kRowsPerWarp; r++) {
        s[r] = fmaf(q_rows[r * hd + d], kd, s[r]);
        dp[r] = fmaf(do_rows[r * hd + d], vd, dp[r]);
      }
    }
    float ds[kRowsPerWarp];
#pragma unroll
    for (int r = 0; r < kRowsPerWarp; r++) {
      const bool visible = j >= starts[r] && j < ends[r] && j < a.keys;
      const float p = visible ? expf(s[r] * a.scale - lse[r]) : 0.0f;
      ds[r] = p * (dp[r] - dsum[r]);
    }
    const int tile_keys = min(kTile, key_hi - j0);
    for (int jj = 0; jj < tile_keys; jj++) {
      float dsj[kRowsPerWarp];
#pragma unroll
      for (int r = 0; r < kRowsPerWarp; r++) dsj[r] = __shfl_sync(kFullMask, ds[r], jj);
#pragma unroll
      for (int i = 0; i < kPer; i++) {
        const int d = lane + 32 * i;
        if (d < hd) {
          const float kd = ks[jj * (hd + 1) + d];
#pragma unroll
          for (int r = 0; r < kRowsPerWarp; r++) dq[r][i] = fmaf(dsj[r], kd, dq[r][i]);
        }
      }
    }
  }

#pragma unroll
  for (int r = 0; r < kRowsPerWarp; r++) {
    const int64_t t = t0 + warp * kRowsPerWarp + r;
    if (t >= a.queries) continue;
    float* dq_row = a.dq + (t * a.heads + head) * hd;
#pragma unroll
    for (int i = 0; i < kPer; i++) {
      const int d = lane + 32 * i;
      if (d < hd) dq_row[d] = a.scale * dq[r][i];
    }
  }
}

// ---------------------------------------------------------------- pass 2: dk, dv

template <int kPer>
__global__ void __launch_bounds__(kAttnThreads) AttentionDkDvKernel(AttentionBackwardArgs a,
                                                                   const float* __restrict__ d_sum) {
  extern __shared__ float smem[];
  const int hd = static_cast<int>(a.head_dim);
  float* qs = smem;                           // [32][hd + 1]
  float* dos = qs + kTile * (hd + 1);         // [32][hd + 1]
  float* kts = dos + kTile * (hd + 1);        // [16][hd]
  float* vts = kts + kTileRows * hd;          // [16][hd]
  float* lse_tile = vts + kTileRows * hd;     // [32]
  float* dsum_tile = lse_tile + kTile;        // [32]
  int* start_tile = reinterpret_cast<int*>(dsum_tile + kTile);  // [32]
  int* end_tile = start_tile + kTile;                           // [32]

  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int64_t kv_head = blockIdx.y, group = a.heads / a.kv_heads;
  const int64_t k0 = static_cast<int64_t>(blockIdx.x) * kTileRows;
  const int64_t k1 = k0 + kTileRows < a.keys ? k0 + kTileRows : a.keys;

  LoadHeadRows(kts, hd, a.k, k0, kTileRows, a.keys, a.kv_heads, kv_head, hd);
  LoadHeadRows(vts, hd, a.v, k0, kTileRows, a.keys, a.kv_heads, kv_head, hd);

  float dk[kRowsPerWarp][kPer], dv[kRowsPerWarp][kPer];
#pragma unroll
  for (int r = 0; r < kRowsPerWarp; r++)
#pragma unroll
    for (int i = 0; i < kPer; i++) dk[r][i] = dv[r][i] = 0.0f;
  const float* k_rows = kts + warp * kRowsPerWarp * hd;
  const float* v_rows = vts + warp * kRowsPerWarp * hd;

  for (int64_t tq0 = 0; tq0 < a.queries; tq0 += kTile) {
    __syncthreads();  // previous tiles no longer read (and kts/vts loaded on the first pass)
    bool touches = false;
    if (threadIdx.x < kTile) {
      const int64_t t = tq0 + threadIdx.x;
      const bool valid = t < a.queries;
      const int s = valid ? a.key_start[t] : 0, e = valid ? a.key_end[t] : 0;
      start_tile[threadIdx.x] = s;
      end_tile[threadIdx.x] = e;
      touches = s < e && s < k1 && e > k0;
    }
    if (!__syncthreads_or(touches)) continue;  // no query of this tile sees these keys

    for (int64_t h = kv_head * group; h < (kv_head + 1) * group; h++) {
      LoadHeadRows(qs, hd + 1, a.q, tq0, kTile, a.queries, a.heads, h, hd);
      LoadHeadRows(dos, hd + 1, a.d_out, tq0, kTile, a.queries, a.heads, h, hd);
      if (threadIdx.x < kTile) {
        const int64_t t = tq0 + threadIdx.x;
        const bool valid = t < a.queries;
        lse_tile[threadIdx.x] = valid ? a.lse[t * a.heads + h] : 0.0f;
        dsum_tile[threadIdx.x] = valid ? d_sum[t * a.heads + h] : 0.0f;
      }
      __syncthreads();

      // Lane = query t of the tile, against this warp's 4 keys.
      const int64_t t = tq0 + lane;
      float s[kRowsPerWarp] = {}, dp[kRowsPerWarp] = {};
      const float* q_row = qs + lane * (hd + 1);
      const float* do_row = dos + lane * (hd + 1);
      for (int d = 0; d < hd; d++) {
        const float qd = q_row[d], dod = do_row[d];
#pragma unroll
        for (int r = 0; r < kRowsPerWarp; r++) {
          s[r] = fmaf(qd, k_rows[r * hd + d], s[r]);
          dp[r] = fmaf(dod, v_rows[r * hd + d], dp[r]);
        }
      }
      float p[kRowsPerWarp], ds[kRowsPerWarp];
#pragma unroll
      for (int r = 0; r < kRowsPerWarp; r++) {
        const int64_t j = k0 + warp * kRowsPerWarp + r;
        const bool visible = t < a.queries && j < a.keys && j >= start_tile[lane] && j < end_tile[lane];
        p[r] = visible ? expf(s[r] * a.scale - lse_tile[lane]) : 0.0f;
        ds[r] = p[r] * (dp[r] - dsum_tile[lane]);
      }
      const int tile_queries = static_cast<int>(min(static_cast<int64_t>(kTile), a.queries - tq0));
      for (int tt = 0; tt < tile_queries; tt++) {
        float pt[kRowsPerWarp], dst[kRowsPerWarp];
#pragma unroll
        for (int r = 0; r < kRowsPerWarp; r++) {
          pt[r] = __shfl_sync(kFullMask, p[r], tt);
          dst[r] = __shfl_sync(kFullMask, ds[r], tt);
        }
#pragma unroll
        for (int i = 0; i < kPer; i++) {
          const int d = lane + 32 * i;
          if (d < hd) {
            const float qd = qs[tt * (hd + 1) + d], dod = dos[tt * (hd + 1) + d];
#pragma unroll
            for (int r = 0; r < kRowsPerWarp; r++) {
              dv[r][i] = fmaf(pt[r], dod, dv[r][i]);
              dk[r][i] = fmaf(dst[r], qd, dk[r][i]);
            }
          }
        }
      }
      __syncthreads();  // qs/dos are reloaded for the next head
    }
  }

#pragma unroll
  for (int r = 0; r < kRowsPerWarp; r++) {
    const int64_t j = k0 + warp * kRowsPerWarp + r;
    if (j >= a.keys) continue;
    float* dk_row = a.dk + (j * a.kv_heads + kv_head) * hd;
    float* dv_row = a.dv + (j * a.kv_heads + kv_head) * hd;
#pragma unroll
    for (int i = 0; i < kPer; i++) {
      const int d = lane + 32 * i;
      if (d < hd) {
        dk_row[d] = a.scale * dk[r][i];
        dv_row[d] = dv[r][i];
      }
    }
  }
}

template <int kPer>
void LaunchBackward(const AttentionBackwardArgs& a, float* d_sum) {
  const int hd = static_cast<int>(a.head_dim);
  const size_t dq_bytes = (2 * static_cast<size_t>(kTileRows) * hd + 2 * kTile * (hd + 1)) * sizeof(float) +
                          (2 * kTileRows + 2) * sizeof(int);
  static size_t dq_allowed = 0, dkdv_allowed = 0;
  AllowSharedMemory(AttentionDqKernel<kPer>, dq_bytes, dq_allowed, "attentionBackward (dq)");
  const dim3 dq_grid(static_cast<unsigned>((a.queries + kTileRows - 1) / kTileRows), static_cast<unsigned>(a.heads));
  AttentionDqKernel<kPer><<<dq_grid, kAttnThreads, dq_bytes, Stream()>>>(a, d_sum);
  CheckLaunch("attentionBackward (dq)");

  const size_t dkdv_bytes = (2 * static_cast<size_t>(kTile) * (hd + 1) + 2 * kTileRows * hd + 2 * kTile) * sizeof(float) +
                            2 * kTile * sizeof(int);
  AllowSharedMemory(AttentionDkDvKernel<kPer>, dkdv_bytes, dkdv_allowed, "attentionBackward (dk, dv)");
  const dim3 kv_grid(static_cast<unsigned>((a.keys + kTileRows - 1) / kTileRows), static_cast<unsigned>(a.kv_heads));
  AttentionDkDvKernel<kPer><<<kv_grid, kAttnThreads, dkdv_bytes, Stream()>>>(a, d_sum);
  CheckLaunch("attentionBackward (dk, dv)");
}

}  // namespace

void AttentionBackward(const AttentionBackwardArgs& a) {
  if (a.heads == 0 || a.head_dim == 0) return;
  if (a.head_dim > kMaxHeadDim) {
    throw CudaError("attentionBackward: head dim " + std::to_string(a.head_dim) + " exceeds " +
                    std::to_string(kMaxHeadDim));
  }
  if (a.heads > 65535) throw CudaError("attentionBackward: more than 65535 heads");
  if (a.queries == 0) {  // nothing attends: dk = dv = 0
    Zero(a.dk, static_cast<size_t>(a.keys * a.kv_heads * a.head_dim) * sizeof(float));
    Zero(a.dv, static_cast<size_t>(a.keys * a.kv_heads * a.head_dim) * sizeof(float));
    return;
  }
  if (a.keys == 0) {  // nothing to attend: dq = 0
    Zero(a.dq, static_cast<size_t>(a.queries * a.heads * a.head_dim) * sizeof(float));
    return;
  }
  const DeviceScratch d_sum(static_cast<size_t>(a.queries * a.heads) * sizeof(float));
  if (a.bf16 && TensorCoreAttentionApplies(a.head_dim, {a.dq, a.dk, a.dv})) {
    AttentionBackwardMma(a, d_sum.as<float>());
  } else if (a.head_dim <= 64) {
    LaunchBackward<2>(a, d_sum.as<float>());
  } else if (a.head_dim <= 128) {
    LaunchBackward<4>(a, d_sum.as<float>());
  } else {
    LaunchBackward<8>(a, d_sum.as<float>());
  }
}

}  // namespace labor::cuda
