// Training attention on tensor cores (bf16 operands, f32 accumulation; sm_80+): the forward with lse and both
// backward passes of attention.cu / attention_backward.cu, in the flash-attention-2 arrangement, used when the
// caller asks for bf16 products (AttentionArgs::bf16 — what PyTorch's bf16 autocast attention computes) and
// the head dim is 32, 64 or 128 with 16-byte aligned tensors; otherwise the f32 kernels run.
//
// Rounding: q, k, v and dO are rounded to bf16 (nearest even) as they are staged in shared memory, P and dS
// before the products they feed; the softmax statistics (m, l, lse), D = dO·O (read in f32 from global
// memory) and every accumulator stay f32, and outputs are written in f32.
//
// Warps own 16 rows (queries, or keys in the dk/dv pass) of a 64-row block; every product is a sequence of
// mma.sync m16n8k16 (native/cuda/mma.cuh gives the fragment layouts). A score tile computed into accumulator
// fragments has exactly the layout of an a-fragment of the next product (columns c, c+1 of n-tiles 2i, 2i+1
// are a-fragment columns c, c+1 and c+8, c+9 of k-step i), so P and dS never go through shared memory.
// b-fragments are two 32-bit shared loads: the product's k index must be contiguous, so operands used as
// b with k = key or query (V, K, Q, dO in the second product of each pair) are also staged transposed.
// Rows are padded by 8 halves so the 8 rows a fragment load touches fall in distinct banks.
//
//   forward:   S = Q·Kᵀ, online softmax (REFERENCE §6) per 64-key tile, O += P·V; out = O / l, lse = m + log l
//   pass 1:    S = Q·Kᵀ, dP = dO·Vᵀ, P = e^{scale·S − lse}, dS = P ⊙ (dP − D), dQ += dS·K; dq = scale·dQ
//              (blocks of 64 queries × one head; D_t = dO_t·O_t is written for pass 2)
//   pass 2:    Sᵀ = K·Qᵀ, dPᵀ = V·dOᵀ, Pᵀ and dSᵀ as above, dV += Pᵀ·dO, dK += dSᵀ·Q; dk = scale·dK
//              (blocks of 64 keys × one kv head, over 32-query tiles of every head of its group)
#include <climits>
#include <string>

#include "cuda/attention_common.cuh"
#include "cuda/mma.cuh"

namespace labor::cuda {
namespace {

constexpr int kMmaThreads = 128;  // 4 warps
constexpr int kBlockRows = 64;    // 16 per warp
constexpr int kKeyTile = 64;      // keys per tile (forward, pass 1)
constexpr int kQueryTile = 32;    // queries per tile (pass 2)
constexpr int kSkew = 8;          // halves of padding per shared row

__device__ inline uint32_t PackBf16(float lo, float hi) {
  return static_cast<uint32_t>(FloatToBf16Bits(lo)) | (static_cast<uint32_t>(FloatToBf16Bits(hi)) << 16);
}

__device__ inline uint32_t Shared32(const uint16_t* p) { return *reinterpret_cast<const uint32_t*>(p); }

/** a-fragment of the 16×16 block at (row0, col0) of a row-major bf16 tile with row stride `stride`. */
__device__ inline void LoadAFragment(uint32_t (&a)[4], const uint16_t* tile, int stride, int row0, int col0) {
  const int lane = threadIdx.x & 31;
  const uint16_t* p = tile + (row0 + (lane >> 2)) * stride + col0 + (lane & 3) * 2;
  a[0] = Shared32(p);
  a[1] = Shared32(p + 8 * stride);
  a[2] = Shared32(p + 8);
  a[3] = Shared32(p + 8 * stride + 8);
}

/** b-fragment (k0..k0+15 × n0..n0+7) of a tile stored [n][k] (each n's k values contiguous). */
__device__ inline void LoadBFragment(uint32_t& b0, uint32_t& b1, const uint16_t* tile, int stride, int n0, int k0) {
  const int lane = threadIdx.x & 31;
  const uint16_t* p = tile + (n0 + (lane >> 2)) * stride + k0 + (lane & 3) * 2;
  b0 = Shared32(p);
  b1 = Shared32(p + 8);
}

/** Accumulator tiles 2i and 2i + 1 (16 rows × 16 columns) as the a-fragment of k-step i, rounded to bf16. */
__device__ inline void AccumulatorsAsA(uint32_t (&a)[4], const float (&lo)[4], const float (&hi)[4]) {
  a[0] = PackBf16(lo[0], lo[1]);
  a[1] = PackBf16(lo[2], lo[3]);
  a[2] = PackBf16(hi[0], hi[1]);
  a[3] = PackBf16(hi[2], hi[3]);
}

/**
 * Rows [row0, row0 + rows) of head `head` of a [rows, heads_per_row, kHd] f32 tensor → bf16 shared memory:
 * `rows_out` [r][d] (row stride kHd + kSkew) and/or `cols_out` [d][r] (row stride `cols_stride`); rows at or
 * past `total_rows` become zeros. Whole block participates; reads are float4 (rows 16-byte aligned).
 */
template <int kHd>
__device__ inline void StageRows(uint16_t* rows_out, uint16_t* cols_out, int cols_stride, const float* __restrict__ src,
                                 int64_t row0, int rows, int64_t total_rows, int64_t heads_per_row, int64_t head) {
  constexpr int kVectors = kHd / 4;
  for (int e = threadIdx.x; e < rows * kVectors; e += blockDim.x) {
    const int r = e / kVectors, d = (e % kVectors) * 4;
    const int64_t row = row0 + r;
    float4 x = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
    if (row < total_rows) x = *reinterpret_cast<const float4*>(src + (row * heads_per_row + head) * kHd + d);
    if (rows_out != nullptr) {
      *reinterpret_cast<uint2*>(rows_out + r * (kHd + kSkew) + d) = make_uint2(PackBf16(x.x, x.y), PackBf16(x.z, x.w));
    }
    if (cols_out != nullptr) {
      cols_out[(d + 0) * cols_stride + r] = FloatToBf16Bits(x.x);
      cols_out[(d + 1) * cols_stride + r] = FloatToBf16Bits(x.y);
      cols_out[(d + 2) * cols_stride + r] = FloatToBf16Bits(x.z);
      cols_out[(d + 3) * cols_stride + r] = FloatToBf16Bits(x.w);
    }
  }
}

/**
 * Loads key_start/key_end of the block's 64 queries into `range` [start 64][end 64] and returns, through
 * `range[128..135]`, each warp's union of its 16 queries' ranges (lo, hi; lo ≥ hi when empty); the block's
 * union is the min/max over the 4 warps. Whole block participates (ends with a barrier).
 */
__device__ inline void LoadQueryRanges(int* range, const int32_t* key_start, const int32_t* key_end, int64_t t0,
                                       int64_t queries) {
  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
  if (tid < kBlockRows) {
    const int64_t t = t0 + tid;
    const bool valid = t < queries;
    range[tid] = valid ? key_start[t] : 0;
    range[kBlockRows + tid] = valid ? key_end[t] : 0;
  }
  __syncthreads();
  // Lanes 0–15 of warp w read its rows; empty ranges and the other lanes contribute nothing.
  const int s = lane < 16 ? range[warp * 16 + lane] : 0, e = lane < 16 ? range[kBlockRows + warp * 16 + lane] : 0;
  const int lo = __reduce_min_sync(kFullMask, s < e ? s : INT_MAX);
  const int hi = __reduce_max_sync(kFullMask, s < e ? e : 0);
  if (lane == 0) {
    range[2 * kBlockRows + 2 * warp] = lo;
    range[2 * kBlockRows + 2 * warp + 1] = hi;
  }
  __syncthreads();
}

struct KeySpan {
  int lo, hi;  // [lo, hi), empty when lo ≥ hi
};

__device__ inline KeySpan WarpSpan(const int* range, int warp) {
  return {range[2 * kBlockRows + 2 * warp], range[2 * kBlockRows + 2 * warp + 1]};
}

__device__ inline KeySpan BlockSpan(const int* range, int64_t keys) {
  KeySpan span{INT_MAX, 0};
  for (int w = 0; w < 4; w++) {
    const KeySpan s = WarpSpan(range, w);
    if (s.lo < s.hi) {
      span.lo = min(span.lo, s.lo);
      span.hi = max(span.hi, s.hi);
    }
  }
  span.hi = static_cast<int>(min(static_cast<int64_t>(span.hi), keys));
  return span;
}

// ---------------------------------------------------------------- forward

template <int kHd>
__global__ void __launch_bounds__(kMmaThreads) AttentionForwardMmaKernel(AttentionArgs a) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  constexpr int kRow = kHd + kSkew, kKeyRow = kKeyTile + kSkew, kNTiles = kHd / 8;
  extern __shared__ __align__(16) uint16_t forward_smem[];
  uint16_t* qs = forward_smem;             // [64 queries][kRow]
  uint16_t* ks = qs + kBlockRows * kRow;   // [64 keys][kRow]
  uint16_t* vts = ks + kKeyTile * kRow;    // [kHd][kKeyRow]: V transposed
  int* range = reinterpret_cast<int*>(vts + kHd * kKeyRow);

  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, c = (lane & 3) * 2;
  const int64_t head = blockIdx.y, kv_head = head / (a.heads / a.kv_heads);
  const int64_t t0 = static_cast<int64_t>(blockIdx.x) * kBlockRows;
  StageRows<kHd>(qs, nullptr, 0, a.q, t0, kBlockRows, a.queries, a.heads, head);
  LoadQueryRanges(range, a.key_start, a.key_end, t0, a.queries);
  const KeySpan block = BlockSpan(range, a.keys), mine = WarpSpan(range, warp);

  // This thread's rows: g and g + 8 of the warp's 16.
  int row_start[2], row_end[2];
  float row_max[2] = {-INFINITY, -INFINITY}, row_sum[2] = {0.0f, 0.0f};  // row_sum: this thread's columns only
#pragma unroll
  for (int h = 0; h < 2; h++) {
    row_start[h] = range[warp * 16 + g + 8 * h];
    row_end[h] = range[kBlockRows + warp * 16 + g + 8 * h];
  }
  float acc[kNTiles][4];
#pragma unroll
  for (int n = 0; n < kNTiles; n++)
#pragma unroll
    for (int e = 0; e < 4; e++) acc[n][e] = 0.0f;

  for (int j0 = block.lo; j0 < block.hi; j0 += kKeyTile) {
    __syncthreads();  // the previous tile is no longer read
    StageRows<kHd>(ks, nullptr, 0, a.k, j0, kKeyTile, a.keys, a.kv_heads, kv_head);
    StageRows<kHd>(nullptr, vts, kKeyRow, a.v, j0, kKeyTile, a.keys, a.kv_heads, kv_head);
    __syncthreads();
    if (j0 >= mine.hi || j0 + kKeyTile <= mine.lo) continue;  // warp-uniform: none of its queries sees the tile

    float s[8][4];
#pragma unroll
    for (int n = 0; n < 8; n++)
#pragma unroll
      for (int e = 0; e < 4; e++) s[n][e] = 0.0f;
#pragma unroll
    for (int kk = 0; kk < kHd / 16; kk++) {
      uint32_t qa[4];
      LoadAFragment(qa, qs, kRow, warp * 16, kk * 16);
#pragma unroll
      for (int n = 0; n < 8; n++) {
        uint32_t b0, b1;
        LoadBFragment(b0, b1, ks, kRow, n * 8, kk * 16);
        MmaBf16(s[n], qa, b0, b1);
      }
    }

    // Online softmax: scaled scores, −inf where masked; the tile's row maxima over the quad sharing a row.
    float tile_max[2] = {-INFINITY, -INFINITY};
#pragma unroll
    for (int n = 0; n < 8; n++)
#pragma unroll
      for (int e = 0; e < 4; e++) {
        const int h = e >> 1, key = j0 + n * 8 + c + (e & 1);
        const bool visible = key >= row_start[h] && key < row_end[h];
        s[n][e] = visible ? s[n][e] * a.scale : -INFINITY;
        tile_max[h] = fmaxf(tile_max[h], s[n][e]);
      }
#pragma unroll
    for (int h = 0; h < 2; h++) {
      tile_max[h] = fmaxf(tile_max[h], __shfl_xor_sync(kFullMask, tile_max[h], 1));
      tile_max[h] = fmaxf(tile_max[h], __shfl_xor_sync(kFullMask, tile_max[h], 2));
      const float new_max = fmaxf(row_max[h], tile_max[h]);
      const float correction = new_max == -INFINITY ? 1.0f : expf(row_max[h] - new_max);  // e^{−inf} = 0 at first
      row_max[h] = new_max;
      row_sum[h] *= correction;
#pragma unroll
      for (int n = 0; n < kNTiles; n++) {
        acc[n][2 * h] *= correction;
        acc[n][2 * h + 1] *= correction;
      }
    }
#pragma unroll
    for (int n = 0; n < 8; n++)
#pragma unroll
      for (int e = 0; e < 4; e++) {
        const int h = e >> 1;
        s[n][e] = s[n][e] == -INFINITY ? 0.0f : expf(s[n][e] - row_max[h]);
        row_sum[h] += s[n][e];
      }

    // O += P·V, P from the score accumulators, V's b-fragments from its transposed tile.
#pragma unroll
    for (int kk = 0; kk < kKeyTile / 16; kk++) {
      uint32_t pa[4];
      AccumulatorsAsA(pa, s[2 * kk], s[2 * kk + 1]);
#pragma unroll
      for (int n = 0; n < kNTiles; n++) {
        uint32_t b0, b1;
        LoadBFragment(b0, b1, vts, kKeyRow, n * 8, kk * 16);
        MmaBf16(acc[n], pa, b0, b1);
      }
    }
  }

#pragma unroll
  for (int h = 0; h < 2; h++) {
    float total = row_sum[h];
    total += __shfl_xor_sync(kFullMask, total, 1);
    total += __shfl_xor_sync(kFullMask, total, 2);
    const int64_t t = t0 + warp * 16 + g + 8 * h;
    if (t >= a.queries) continue;
    const float inv = total > 0.0f ? 1.0f / total : 0.0f;
    float* out_row = a.out + (t * a.heads + head) * kHd;
#pragma unroll
    for (int n = 0; n < kNTiles; n++) {
      *reinterpret_cast<float2*>(out_row + n * 8 + c) = make_float2(acc[n][2 * h] * inv, acc[n][2 * h + 1] * inv);
    }
    if (c == 0) a.lse[t * a.heads + head] = total > 0.0f ? row_max[h] + logf(total) : -INFINITY;
  }
#endif
}

// ---------------------------------------------------------------- backward pass 1: dq (and D)

template <int kHd>
__global__ void __launch_bounds__(kMmaThreads) AttentionDqMmaKernel(AttentionBackwardArgs a, float* __restrict__ d_sum) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  constexpr int kRow = kHd + kSkew, kKeyRow = kKeyTile + kSkew, kNTiles = kHd / 8;
  extern __shared__ __align__(16) uint16_t dq_smem[];
  uint16_t* qs = dq_smem;                  // [64 queries][kRow]
  uint16_t* dos = qs + kBlockRows * kRow;  // [64 queries][kRow]
  uint16_t* ks = dos + kBlockRows * kRow;  // [64 keys][kRow]
  uint16_t* vs = ks + kKeyTile * kRow;     // [64 keys][kRow]
  uint16_t* kts = vs + kKeyTile * kRow;    // [kHd][kKeyRow]: K transposed
  int* range = reinterpret_cast<int*>(kts + kHd * kKeyRow);

  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, c = (lane & 3) * 2;
  const int64_t head = blockIdx.y, kv_head = head / (a.heads / a.kv_heads);
  const int64_t t0 = static_cast<int64_t>(blockIdx.x) * kBlockRows;
  StageRows<kHd>(qs, nullptr, 0, a.q, t0, kBlockRows, a.queries, a.heads, head);
  StageRows<kHd>(dos, nullptr, 0, a.d_out, t0, kBlockRows, a.queries, a.heads, head);
  LoadQueryRanges(range, a.key_start, a.key_end, t0, a.queries);
  const KeySpan block = BlockSpan(range, a.keys), mine = WarpSpan(range, warp);

  // D_t = dO_t · O_t in f32 from global memory, one warp-wide dot product per row of the warp.
  float row_d[2] = {0.0f, 0.0f}, row_lse[2];
  int row_start[2], row_end[2];
  for (int r = 0; r < 16; r++) {
    const int64_t t = t0 + warp * 16 + r;
    float partial = 0.0f;
    if (t < a.queries) {
      const float* o_row = a.out + (t * a.heads + head) * kHd;
      const float* do_row = a.d_out + (t * a.heads + head) * kHd;
      for (int d = lane; d < kHd; d += 32) partial = fmaf(do_row[d], o_row[d], partial);
    }
    const float total = WarpSum(partial);
    if (t < a.queries && lane == 0) d_sum[t * a.heads + head] = total;
    if (r == g) row_d[0] = total;
    if (r == g + 8) row_d[1] = total;
  }
#pragma unroll
  for (int h = 0; h < 2; h++) {
    const int64_t t = t0 + warp * 16 + g + 8 * h;
    row_lse[h] = t < a.queries ? a.lse[t * a.heads + head] : 0.0f;
    row_start[h] = range[warp * 16 + g + 8 * h];
    row_end[h] = range[kBlockRows + warp * 16 + g + 8 * h];
  }
  float dq[kNTiles][4];
#pragma unroll
  for (int n = 0; n < kNTiles; n++)
#pragma unroll
    for (int e = 0; e < 4; e++) dq[n][e] = 0.0f;

  for (int j0 = block.lo; j0 < block.hi; j0 += kKeyTile) {
    __syncthreads();
    StageRows<kHd>(ks, kts, kKeyRow, a.k, j0, kKeyTile, a.keys, a.kv_heads, kv_head);
    StageRows<kHd>(vs, nullptr, 0, a.v, j0, kKeyTile, a.keys, a.kv_heads, kv_head);
    __syncthreads();
    if (j0 >= mine.hi || j0 + kKeyTile <= mine.lo) continue;  // warp-uniform

    float s[8][4], dp[8][4];
#pragma unroll
    for (int n = 0; n < 8; n++)
#pragma unroll
      for (int e = 0; e < 4; e++) s[n][e] = dp[n][e] = 0.0f;
#pragma unroll
    for (int kk = 0; kk < kHd / 16; kk++) {
      uint32_t qa[4], da[4];
      LoadAFragment(qa, qs, kRow, warp * 16, kk * 16);
      LoadAFragment(da, dos, kRow, warp * 16, kk * 16);
#pragma unroll
      for (int n = 0; n < 8; n++) {
        uint32_t b0, b1;
        LoadBFragment(b0, b1, ks, kRow, n * 8, kk * 16);
        MmaBf16(s[n], qa, b0, b1);
        LoadBFragment(b0, b1, vs, kRow, n * 8, kk * 16);
        MmaBf16(dp[n], da, b0, b1);
      }
    }
    // dS = P ⊙ (dP − D), P = e^{scale·s − lse} on visible keys (masked first: an empty row's lse is −inf).
#pragma unroll
    for (int n = 0; n < 8; n++)
#pragma unroll
      for (int e = 0; e < 4; e++) {
        const int h = e >> 1, key = j0 + n * 8 + c + (e & 1);
        const bool visible = key >= row_start[h] && key < row_end[h];
        const float p = visible ? expf(s[n][e] * a.scale - row_lse[h]) : 0.0f;
        s[n][e] = p * (dp[n][e] - row_d[h]);
      }
    // dQ += dS·K, K's b-fragments from its transposed tile.
#pragma unroll
    for (int kk = 0; kk < kKeyTile / 16; kk++) {
      uint32_t dsa[4];
      AccumulatorsAsA(dsa, s[2 * kk], s[2 * kk + 1]);
#pragma unroll
      for (int n = 0; n < kNTiles; n++) {
        uint32_t b0, b1;
        LoadBFragment(b0, b1, kts, kKeyRow, n * 8, kk * 16);
        MmaBf16(dq[n], dsa, b0, b1);
      }
    }
  }

#pragma unroll
  for (int h = 0; h < 2; h++) {
    const int64_t t = t0 + warp * 16 + g + 8 * h;
    if (t >= a.queries) continue;
    float* dq_row = a.dq + (t * a.heads + head) * kHd;
#pragma unroll
    for (int n = 0; n < kNTiles; n++) {
      *reinterpret_cast<float2*>(dq_row + n * 8 + c) = make_float2(a.scale * dq[n][2 * h], a.scale * dq[n][2 * h + 1]);
    }
  }
#endif
}

// ---------------------------------------------------------------- backward pass 2: dk, dv

template <int kHd>
__global__ void __launch_bounds__(kMmaThreads) AttentionDkDvMmaKernel(AttentionBackwardArgs a,
                                                                      const float* __restrict__ d_sum) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  constexpr int kRow = kHd + kSkew, kQueryRow = kQueryTile + kSkew, kNTiles = kHd / 8;
  constexpr int kQTiles = kQueryTile / 8;
  extern __shared__ __align__(16) uint16_t dkdv_smem[];
  uint16_t* ks = dkdv_smem;                // [64 keys][kRow]
  uint16_t* vs = ks + kBlockRows * kRow;   // [64 keys][kRow]
  uint16_t* qs = vs + kBlockRows * kRow;   // [32 queries][kRow]
  uint16_t* dos = qs + kQueryTile * kRow;  // [32 queries][kRow]
  uint16_t* qts = dos + kQueryTile * kRow; // [kHd][kQueryRow]: Q transposed
  uint16_t* dots = qts + kHd * kQueryRow;  // [kHd][kQueryRow]: dO transposed
  float* lse_tile = reinterpret_cast<float*>(dots + kHd * kQueryRow);  // [32]
  float* d_tile = lse_tile + kQueryTile;                               // [32]
  int* start_tile = reinterpret_cast<int*>(d_tile + kQueryTile);       // [32]
  int* end_tile = start_tile + kQueryTile;                             // [32]

  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, c = (lane & 3) * 2;
  const int64_t kv_head = blockIdx.y, group = a.heads / a.kv_heads;
  const int64_t k0 = static_cast<int64_t>(blockIdx.x) * kBlockRows;
  const int64_t k1 = min(k0 + kBlockRows, a.keys);
  StageRows<kHd>(ks, nullptr, 0, a.k, k0, kBlockRows, a.keys, a.kv_heads, kv_head);
  StageRows<kHd>(vs, nullptr, 0, a.v, k0, kBlockRows, a.keys, a.kv_heads, kv_head);
  const int64_t my_key[2] = {k0 + warp * 16 + g, k0 + warp * 16 + g + 8};

  float dk[kNTiles][4], dv[kNTiles][4];
#pragma unroll
  for (int n = 0; n < kNTiles; n++)
#pragma unroll
    for (int e = 0; e < 4; e++) dk[n][e] = dv[n][e] = 0.0f;

  for (int64_t tq0 = 0; tq0 < a.queries; tq0 += kQueryTile) {
    __syncthreads();  // previous tiles no longer read (and the key tiles staged on the first pass)
    bool touches = false;
    if (threadIdx.x < kQueryTile) {
      const int64_t t = tq0 + threadIdx.x;
      const bool valid = t < a.queries;
      const int s = valid ? a.key_start[t] : 0, e = valid ? a.key_end[t] : 0;
      start_tile[threadIdx.x] = s;
      end_tile[threadIdx.x] = e;
      touches = s < e && s < k1 && e > k0;
    }
    if (!__syncthreads_or(touches)) continue;  // no query of this tile sees these keys

    for (int64_t h = kv_head * group; h < (kv_head + 1) * group; h++) {
      StageRows<kHd>(qs, qts, kQueryRow, a.q, tq0, kQueryTile, a.queries, a.heads, h);
      StageRows<kHd>(dos, dots, kQueryRow, a.d_out, tq0, kQueryTile, a.queries, a.heads, h);
      if (threadIdx.x < kQueryTile) {
        const int64_t t = tq0 + threadIdx.x;
        const bool valid = t < a.queries;
        lse_tile[threadIdx.x] = valid ? a.lse[t * a.heads + h] : 0.0f;
        d_tile[threadIdx.x] = valid ? d_sum[t * a.heads + h] : 0.0f;
      }
      __syncthreads();

      float st[kQTiles][4], dpt[kQTiles][4];  // Sᵀ, dPᵀ: this warp's 16 keys × the tile's 32 queries
#pragma unroll
      for (int n = 0; n < kQTiles; n++)
#pragma unroll
        for (int e = 0; e < 4; e++) st[n][e] = dpt[n][e] = 0.0f;
#pragma unroll
      for (int kk = 0; kk < kHd / 16; kk++) {
        uint32_t ka[4], va[4];
        LoadAFragment(ka, ks, kRow, warp * 16, kk * 16);
        LoadAFragment(va, vs, kRow, warp * 16, kk * 16);
#pragma unroll
        for (int n = 0; n < kQTiles; n++) {
          uint32_t b0, b1;
          LoadBFragment(b0, b1, qs, kRow, n * 8, kk * 16);
          MmaBf16(st[n], ka, b0, b1);
          LoadBFragment(b0, b1, dos, kRow, n * 8, kk * 16);
          MmaBf16(dpt[n], va, b0, b1);
        }
      }
      // Pᵀ and dSᵀ in place of Sᵀ and dPᵀ.
#pragma unroll
      for (int n = 0; n < kQTiles; n++)
#pragma unroll
        for (int e = 0; e < 4; e++) {
          const int col = n * 8 + c + (e & 1);
          const int64_t key = my_key[e >> 1];
          const bool visible = tq0 + col < a.queries && key < a.keys && key >= start_tile[col] && key < end_tile[col];
          const float p = visible ? expf(st[n][e] * a.scale - lse_tile[col]) : 0.0f;
          st[n][e] = p;
          dpt[n][e] = p * (dpt[n][e] - d_tile[col]);
        }
      // dV += Pᵀ·dO and dK += dSᵀ·Q, dO's and Q's b-fragments from their transposed tiles.
#pragma unroll
      for (int kk = 0; kk < kQueryTile / 16; kk++) {
        uint32_t pa[4], dsa[4];
        AccumulatorsAsA(pa, st[2 * kk], st[2 * kk + 1]);
        AccumulatorsAsA(dsa, dpt[2 * kk], dpt[2 * kk + 1]);
#pragma unroll
        for (int n = 0; n < kNTiles; n++) {
          uint32_t b0, b1;
          LoadBFragment(b0, b1, dots, kQueryRow, n * 8, kk * 16);
          MmaBf16(dv[n], pa, b0, b1);
          LoadBFragment(b0, b1, qts, kQueryRow, n * 8, kk * 16);
          MmaBf16(dk[n], dsa, b0, b1);
        }
      }
      __syncthreads();  // the query tiles are restaged for the next head
    }
  }

#pragma unroll
  for (int h = 0; h < 2; h++) {
    const int64_t j = my_key[h];
    if (j >= a.keys) continue;
    float* dk_row = a.dk + (j * a.kv_heads + kv_head) * kHd;
    float* dv_row = a.dv + (j * a.kv_heads + kv_head) * kHd;
#pragma unroll
    for (int n = 0; n < kNTiles; n++) {
      *reinterpret_cast<float2*>(dk_row + n * 8 + c) = make_float2(a.scale * dk[n][2 * h], a.scale * dk[n][2 * h + 1]);
      *reinterpret_cast<float2*>(dv_row + n * 8 + c) = make_float2(dv[n][2 * h], dv[n][2 * h + 1]);
    }
  }
#endif
}

// ---------------------------------------------------------------- launches

constexpr size_t RangeBytes() { return (2 * kBlockRows + 8) * sizeof(int); }

template <int kHd>
void LaunchForwardMma(const AttentionArgs& a) {
  constexpr size_t kHalves = 2 * kBlockRows * (kHd + kSkew) + kHd * (kKeyTile + kSkew);
  const size_t bytes = kHalves * sizeof(uint16_t) + RangeBytes();
  static size_t allowed = 0;
  AllowSharedMemory(AttentionForwardMmaKernel<kHd>, bytes, allowed, "attentionForTraining (tensor cores)");
  const dim3 grid(static_cast<unsigned>((a.queries + kBlockRows - 1) / kBlockRows), static_cast<unsigned>(a.heads));
  AttentionForwardMmaKernel<kHd><<<grid, kMmaThreads, bytes, Stream()>>>(a);
  CheckLaunch("attentionForTraining (tensor cores)");
}

template <int kHd>
void LaunchBackwardMma(const AttentionBackwardArgs& a, float* d_sum) {
  constexpr size_t kDqHalves = 4 * kBlockRows * (kHd + kSkew) + kHd * (kKeyTile + kSkew);
  const size_t dq_bytes = kDqHalves * sizeof(uint16_t) + RangeBytes();
  static size_t dq_allowed = 0, dkdv_allowed = 0;
  AllowSharedMemory(AttentionDqMmaKernel<kHd>, dq_bytes, dq_allowed, "attentionBackward (dq, tensor cores)");
  const dim3 dq_grid(static_cast<unsigned>((a.queries + kBlockRows - 1) / kBlockRows), static_cast<unsigned>(a.heads));
  AttentionDqMmaKernel<kHd><<<dq_grid, kMmaThreads, dq_bytes, Stream()>>>(a, d_sum);
  CheckLaunch("attentionBackward (dq, tensor cores)");

  constexpr size_t kDkDvHalves = 2 * (kBlockRows + kQueryTile) * (kHd + kSkew) + 2 * kHd * (kQueryTile + kSkew);
  const size_t dkdv_bytes = kDkDvHalves * sizeof(uint16_t) + 4 * kQueryTile * sizeof(float);
  AllowSharedMemory(AttentionDkDvMmaKernel<kHd>, dkdv_bytes, dkdv_allowed, "attentionBackward (dk, dv, tensor cores)");
  const dim3 kv_grid(static_cast<unsigned>((a.keys + kBlockRows - 1) / kBlockRows), static_cast<unsigned>(a.kv_heads));
  AttentionDkDvMmaKernel<kHd><<<kv_grid, kMmaThreads, dkdv_bytes, Stream()>>>(a, d_sum);
  CheckLaunch("attentionBackward (dk, dv, tensor cores)");
}

bool Aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

}  // namespace

bool TensorCoreAttentionApplies(int64_t head_dim, std::initializer_list<const void*> tensors) {
  if (head_dim != 32 && head_dim != 64 && head_dim != 128) return false;
  for (const void* p : tensors) {
    if (!Aligned16(p)) return false;
  }
  return true;
}

void AttentionForTrainingMma(const AttentionArgs& a) {
  switch (a.head_dim) {
    case 32: LaunchForwardMma<32>(a); break;
    case 64: LaunchForwardMma<64>(a); break;
    default: LaunchForwardMma<128>(a); break;
  }
}

void AttentionBackwardMma(const AttentionBackwardArgs& a, float* d_sum) {
  switch (a.head_dim) {
    case 32: LaunchBackwardMma<32>(a, d_sum); break;
    case 64: LaunchBackwardMma<64>(a, d_sum); break;
    default: LaunchBackwardMma<128>(a, d_sum); break;
  }
}

}  // namespace labor::cuda
