// Training attention on tensor cores (bf16 operands, f32 accumulation; sm_80+): the forward with lse and both
// backward passes of attention.cu / attention_backward.cu, in the flash-attention-2 arrangement, used when the
// caller asks for bf16 products (AttentionArgs::bf16 — what PyTorch's bf16 autocast attention computes) and
// the head dim is 32, 64 or 128; otherwise the f32 kernels run.
//
// Rounding: q, k, v and dO are rounded to bf16 (nearest even) once, into scratch copies the kernels stream into
// shared memory with cp.async; P and dS are rounded to bf16 before the products they feed; the softmax
// statistics (m, l, lse), D = dO·O (read in f32) and every accumulator stay f32; outputs are written in f32.
//
// Warps own 16 rows (queries, or keys in the dk/dv pass) of a 64-row block; every product is a sequence of
// mma.sync m16n8k16 on ldmatrix fragments (native/cuda/mma.cuh gives the layouts). A score tile computed into
// accumulator fragments has exactly the layout of an a-fragment of the next product (columns c, c+1 of n-tiles
// 2i, 2i+1 are a-fragment columns c, c+1 and c+8, c+9 of k-step i), so P and dS never go through shared memory.
// Every shared tile is row-major [row][d] with rows padded by 8 halves (ldmatrix conflict-free); a product
// whose k index runs along the rows (P·V, dS·K, Pᵀ·dO, dSᵀ·Q) reads it with ldmatrix.trans. The streamed
// tiles (K and V, or Q and dO in the dk/dv pass) are double-buffered: the next one is in flight while the
// current one is multiplied.
//
//   forward:   S = Q·Kᵀ, online softmax (REFERENCE §6) per 64-key tile, O += P·V; out = O / l, lse = m + log l
//   pass 1:    S = Q·Kᵀ, dP = dO·Vᵀ, P = e^{scale·S − lse}, dS = P ⊙ (dP − D), dQ += dS·K; dq = scale·dQ
//              (blocks of 64 queries × one head; D_t = dO_t·O_t is written for pass 2)
//   pass 2:    Sᵀ = K·Qᵀ, dPᵀ = V·dOᵀ, Pᵀ and dSᵀ as above, dV += Pᵀ·dO, dK += dSᵀ·Q; dk = scale·dK
//              (blocks of 64 keys × one kv head, over 32-query tiles of every head of its group, from the first
//              query that sees one of the block's keys to the last)
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

/** a-fragment of rows row0..row0+15 × columns col0..col0+15 of a row-major tile (row stride in halves). */
__device__ inline void LoadA(uint32_t (&a)[4], const uint16_t* tile, int stride, int row0, int col0) {
  const int lane = threadIdx.x & 31;
  LoadMatrixX4<false>(a, SharedAddress(tile + (row0 + (lane & 15)) * stride + col0 + (lane >> 4) * 8));
}

/** b-fragments of n-tiles n0/8 (b[0], b[1]) and n0/8 + 1 (b[2], b[3]) over k0..k0+15, from a tile stored [n][k]. */
__device__ inline void LoadBFromNK(uint32_t (&b)[4], const uint16_t* tile, int stride, int n0, int k0) {
  const int lane = threadIdx.x & 31;
  LoadMatrixX4<false>(b, SharedAddress(tile + (n0 + (lane & 7) + (lane >> 4) * 8) * stride + k0 + ((lane >> 3) & 1) * 8));
}

/** The same from a tile stored [k][n] (transposed by ldmatrix). */
__device__ inline void LoadBFromKN(uint32_t (&b)[4], const uint16_t* tile, int stride, int n0, int k0) {
  const int lane = threadIdx.x & 31;
  LoadMatrixX4<true>(b, SharedAddress(tile + (k0 + (lane & 7) + ((lane >> 3) & 1) * 8) * stride + n0 + (lane >> 4) * 8));
}

/** Accumulator tiles 2i and 2i + 1 (16 rows × 16 columns) as the a-fragment of k-step i, rounded to bf16. */
__device__ inline void AccumulatorsAsA(uint32_t (&a)[4], const float (&lo)[4], const float (&hi)[4]) {
  a[0] = PackBf16(lo[0], lo[1]);
  a[1] = PackBf16(lo[2], lo[3]);
  a[2] = PackBf16(hi[0], hi[1]);
  a[3] = PackBf16(hi[2], hi[3]);
}

template <int kNTiles>
__device__ inline void ZeroAccumulators(float (&acc)[kNTiles][4]) {
#pragma unroll
  for (int n = 0; n < kNTiles; n++)
#pragma unroll
    for (int e = 0; e < 4; e++) acc[n][e] = 0.0f;
}

/** acc[n] += a · (two n-tiles per b-fragment load) for the n-tiles of a head dim, b read from a [k][n] tile. */
template <int kNTiles>
__device__ inline void MmaRowTimesKN(float (&acc)[kNTiles][4], const uint32_t (&a)[4], const uint16_t* tile, int stride,
                                     int k0) {
#pragma unroll
  for (int np = 0; np < kNTiles / 2; np++) {
    uint32_t b[4];
    LoadBFromKN(b, tile, stride, np * 16, k0);
    MmaBf16(acc[2 * np], a, b[0], b[1]);
    MmaBf16(acc[2 * np + 1], a, b[2], b[3]);
  }
}

/** acc += scores · tile: the score accumulators (kScoreTiles n-tiles = kScoreTiles / 2 k-steps) rounded to bf16
 * as a-fragments, the tile [k][n] read along its rows. */
template <int kNTiles, int kScoreTiles>
__device__ inline void ScoresTimesKN(float (&acc)[kNTiles][4], const float (&scores)[kScoreTiles][4], const uint16_t* tile,
                                     int stride) {
#pragma unroll
  for (int kk = 0; kk < kScoreTiles / 2; kk++) {
    uint32_t a[4];
    AccumulatorsAsA(a, scores[2 * kk], scores[2 * kk + 1]);
    MmaRowTimesKN<kNTiles>(acc, a, tile, stride, kk * 16);
  }
}

/** scores[n] (kNTiles n-tiles: rows of `b_tile`) = rows row0..row0+15 of `a_tile` · rows of `b_tile`ᵀ, over kHd. */
template <int kHd, int kNTiles>
__device__ inline void RowsTimesRowsT(float (&scores)[kNTiles][4], const uint16_t* a_tile, int row0, const uint16_t* b_tile) {
  constexpr int kRow = kHd + kSkew;
  ZeroAccumulators(scores);
#pragma unroll
  for (int kk = 0; kk < kHd / 16; kk++) {
    uint32_t a[4];
    LoadA(a, a_tile, kRow, row0, kk * 16);
#pragma unroll
    for (int np = 0; np < kNTiles / 2; np++) {
      uint32_t b[4];
      LoadBFromNK(b, b_tile, kRow, np * 16, kk * 16);
      MmaBf16(scores[2 * np], a, b[0], b[1]);
      MmaBf16(scores[2 * np + 1], a, b[2], b[3]);
    }
  }
}

/**
 * cp.async of rows [row0, row0 + rows) of head `head` of a bf16 [total_rows, heads_per_row, kHd] tensor into the
 * tile [rows][kHd + kSkew]; rows at or past `total_rows` are zero-filled. Whole block participates; the caller
 * commits and waits.
 */
template <int kHd>
__device__ inline void StageAsync(uint16_t* tile, const uint16_t* __restrict__ src, int64_t row0, int rows,
                                  int64_t total_rows, int64_t heads_per_row, int64_t head) {
  constexpr int kChunks = kHd / 8;
  for (int e = threadIdx.x; e < rows * kChunks; e += kMmaThreads) {
    const int r = e / kChunks, d = (e % kChunks) * 8;
    const int64_t row = row0 + r;
    const bool valid = row < total_rows;
    CopyAsync16(SharedAddress(tile + r * (kHd + kSkew) + d), valid ? src + (row * heads_per_row + head) * kHd + d : src,
                valid);
  }
}

/**
 * Keys [j0, j0 + 64) of kv head `kv_head` (of `kv_heads`, `keys` rows), K then V, into buffer `buffer` of the
 * double buffer at `kv` (each buffer two [64][kHd + kSkew] tiles); cp.async, not committed. Whole block
 * participates.
 */
template <int kHd>
__device__ inline void StageKeyValueTile(uint16_t* kv, int buffer, const uint16_t* __restrict__ k,
                                         const uint16_t* __restrict__ v, int64_t j0, int64_t keys, int64_t kv_heads,
                                         int64_t kv_head) {
  constexpr int kTileHalves = kKeyTile * (kHd + kSkew);
  uint16_t* tile = kv + buffer * 2 * kTileHalves;
  StageAsync<kHd>(tile, k, j0, kKeyTile, keys, kv_heads, kv_head);
  StageAsync<kHd>(tile + kTileHalves, v, j0, kKeyTile, keys, kv_heads, kv_head);
}

/**
 * One step of a two-buffer cp.async pipeline over `count` items whose item 0 was staged (into buffer 0) and
 * committed before the loop: stages item i + 1 into the other buffer (stage(item, buffer)), then waits until
 * item i has landed for every thread. Returns item i's buffer: `pair_halves` · 2 elements per buffer.
 */
template <class Index, class Stage>
__device__ inline const uint16_t* NextPipelineItem(const uint16_t* buffers, int pair_halves, Index i, Index count,
                                                   const Stage& stage) {
  if (i + 1 < count) stage(i + 1, static_cast<int>((i + 1) & 1));
  CopyAsyncCommit();
  CopyAsyncWait<1>();  // all but the newest group (item i + 1) have landed for this thread…
  __syncthreads();     // …and for every thread
  return buffers + (i & 1) * 2 * pair_halves;
}

/**
 * Loads key_start/key_end of the block's 64 queries into `range` [start 64][end 64] and each warp's union of its
 * 16 queries' ranges into range[128 + 2w], range[129 + 2w] (lo ≥ hi when empty). Whole block participates
 * (ends with a barrier).
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

struct Span {
  int lo, hi;  // [lo, hi), empty when lo ≥ hi
};

/** The key ranges of this thread's two accumulator rows, g and g + 8 of its warp's 16 (from LoadQueryRanges). */
__device__ inline void ThreadRowRanges(const int* range, int (&start)[2], int (&end)[2]) {
  const int warp = threadIdx.x >> 5, g = (threadIdx.x & 31) >> 2;
#pragma unroll
  for (int h = 0; h < 2; h++) {
    start[h] = range[warp * 16 + g + 8 * h];
    end[h] = range[kBlockRows + warp * 16 + g + 8 * h];
  }
}

__device__ inline Span WarpSpan(const int* range, int warp) {
  return {range[2 * kBlockRows + 2 * warp], range[2 * kBlockRows + 2 * warp + 1]};
}

__device__ inline Span BlockSpan(const int* range, int64_t keys) {
  Span span{INT_MAX, 0};
  for (int w = 0; w < 4; w++) {
    const Span s = WarpSpan(range, w);
    if (s.lo < s.hi) {
      span.lo = min(span.lo, s.lo);
      span.hi = max(span.hi, s.hi);
    }
  }
  span.hi = static_cast<int>(min(static_cast<int64_t>(span.hi), keys));
  return span;
}

constexpr size_t kRangeBytes = (2 * kBlockRows + 8) * sizeof(int);

// ---------------------------------------------------------------- forward

template <int kHd>
__global__ void __launch_bounds__(kMmaThreads)
    AttentionForwardMmaKernel(AttentionArgs a, const uint16_t* __restrict__ q16, const uint16_t* __restrict__ k16,
                              const uint16_t* __restrict__ v16) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  constexpr int kRow = kHd + kSkew, kNTiles = kHd / 8, kTileHalves = kKeyTile * kRow;
  extern __shared__ __align__(128) uint16_t forward_smem[];
  uint16_t* qs = forward_smem;                                       // [64 queries][kRow]
  uint16_t* kv = qs + kBlockRows * kRow;                             // 2 buffers × (K, V) [64 keys][kRow]
  int* range = reinterpret_cast<int*>(kv + 4 * kTileHalves);

  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, c = (lane & 3) * 2;
  const int64_t head = blockIdx.y, kv_head = head / (a.heads / a.kv_heads);
  const int64_t t0 = static_cast<int64_t>(blockIdx.x) * kBlockRows;
  StageAsync<kHd>(qs, q16, t0, kBlockRows, a.queries, a.heads, head);
  LoadQueryRanges(range, a.key_start, a.key_end, t0, a.queries);
  const Span block = BlockSpan(range, a.keys), mine = WarpSpan(range, warp);
  auto stage_tile = [&](int tile, int buffer) {
    StageKeyValueTile<kHd>(kv, buffer, k16, v16, block.lo + tile * kKeyTile, a.keys, a.kv_heads, kv_head);
  };
  const int tiles = block.lo < block.hi ? (block.hi - block.lo + kKeyTile - 1) / kKeyTile : 0;
  if (tiles > 0) stage_tile(0, 0);
  CopyAsyncCommit();  // group 0: Q and key tile 0

  // This thread's rows: g and g + 8 of the warp's 16.
  int row_start[2], row_end[2];
  ThreadRowRanges(range, row_start, row_end);
  float row_max[2] = {-INFINITY, -INFINITY}, row_sum[2] = {0.0f, 0.0f};  // row_sum: this thread's columns only
  float acc[kNTiles][4];
  ZeroAccumulators(acc);

  for (int i = 0; i < tiles; i++) {
    const int j0 = block.lo + i * kKeyTile;
    const uint16_t* ks = NextPipelineItem(kv, kTileHalves, i, tiles, stage_tile);
    const uint16_t* vs = ks + kTileHalves;
    if (j0 < mine.hi && j0 + kKeyTile > mine.lo) {  // warp-uniform: some of its queries see the tile
      float s[8][4];
      RowsTimesRowsT<kHd, 8>(s, qs, warp * 16, ks);

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

      // O += P·V: P from the score accumulators, V read along its rows (ldmatrix.trans).
      ScoresTimesKN(acc, s, vs, kRow);
    }
    __syncthreads();  // buffer i & 1 is refilled with tile i + 2 next
  }
  CopyAsyncWait<0>();

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

struct Bf16Operands {
  const uint16_t* q;
  const uint16_t* k;
  const uint16_t* v;
  const uint16_t* d_out;
};

template <int kHd>
__global__ void __launch_bounds__(kMmaThreads)
    AttentionDqMmaKernel(AttentionBackwardArgs a, Bf16Operands x, float* __restrict__ d_sum) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  constexpr int kRow = kHd + kSkew, kNTiles = kHd / 8, kTileHalves = kKeyTile * kRow;
  extern __shared__ __align__(128) uint16_t dq_smem[];
  uint16_t* qs = dq_smem;                  // [64 queries][kRow]
  uint16_t* dos = qs + kBlockRows * kRow;  // [64 queries][kRow]
  uint16_t* kv = dos + kBlockRows * kRow;  // 2 buffers × (K, V) [64 keys][kRow]
  int* range = reinterpret_cast<int*>(kv + 4 * kTileHalves);

  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, c = (lane & 3) * 2;
  const int64_t head = blockIdx.y, kv_head = head / (a.heads / a.kv_heads);
  const int64_t t0 = static_cast<int64_t>(blockIdx.x) * kBlockRows;
  StageAsync<kHd>(qs, x.q, t0, kBlockRows, a.queries, a.heads, head);
  StageAsync<kHd>(dos, x.d_out, t0, kBlockRows, a.queries, a.heads, head);
  LoadQueryRanges(range, a.key_start, a.key_end, t0, a.queries);
  const Span block = BlockSpan(range, a.keys), mine = WarpSpan(range, warp);
  auto stage_tile = [&](int tile, int buffer) {
    StageKeyValueTile<kHd>(kv, buffer, x.k, x.v, block.lo + tile * kKeyTile, a.keys, a.kv_heads, kv_head);
  };
  const int tiles = block.lo < block.hi ? (block.hi - block.lo + kKeyTile - 1) / kKeyTile : 0;
  if (tiles > 0) stage_tile(0, 0);
  CopyAsyncCommit();  // group 0: Q, dO and key tile 0

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
  ThreadRowRanges(range, row_start, row_end);
#pragma unroll
  for (int h = 0; h < 2; h++) {
    const int64_t t = t0 + warp * 16 + g + 8 * h;
    row_lse[h] = t < a.queries ? a.lse[t * a.heads + head] : 0.0f;
  }
  float dq[kNTiles][4];
  ZeroAccumulators(dq);

  for (int i = 0; i < tiles; i++) {
    const int j0 = block.lo + i * kKeyTile;
    const uint16_t* ks = NextPipelineItem(kv, kTileHalves, i, tiles, stage_tile);
    const uint16_t* vs = ks + kTileHalves;
    if (j0 < mine.hi && j0 + kKeyTile > mine.lo) {  // warp-uniform
      float s[8][4], dp[8][4];
      RowsTimesRowsT<kHd, 8>(s, qs, warp * 16, ks);
      RowsTimesRowsT<kHd, 8>(dp, dos, warp * 16, vs);
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
      // dQ += dS·K, K read along its rows (ldmatrix.trans).
      ScoresTimesKN(dq, s, ks, kRow);
    }
    __syncthreads();  // buffer i & 1 is refilled with tile i + 2 next
  }
  CopyAsyncWait<0>();

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
__global__ void __launch_bounds__(kMmaThreads)
    AttentionDkDvMmaKernel(AttentionBackwardArgs a, Bf16Operands x, const float* __restrict__ d_sum) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  constexpr int kRow = kHd + kSkew, kNTiles = kHd / 8, kQTiles = kQueryTile / 8, kTileHalves = kQueryTile * kRow;
  extern __shared__ __align__(128) uint16_t dkdv_smem[];
  uint16_t* ks = dkdv_smem;                // [64 keys][kRow]
  uint16_t* vs = ks + kBlockRows * kRow;   // [64 keys][kRow]
  uint16_t* qdo = vs + kBlockRows * kRow;  // 2 buffers × (Q, dO) [32 queries][kRow]
  int* span = reinterpret_cast<int*>(qdo + 4 * kTileHalves);  // per-warp first/last query, then the block's

  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, c = (lane & 3) * 2;
  const int64_t kv_head = blockIdx.y, group = a.heads / a.kv_heads;
  const int64_t k0 = static_cast<int64_t>(blockIdx.x) * kBlockRows;
  const int64_t k1 = min(k0 + kBlockRows, a.keys);
  StageAsync<kHd>(ks, x.k, k0, kBlockRows, a.keys, a.kv_heads, kv_head);
  StageAsync<kHd>(vs, x.v, k0, kBlockRows, a.keys, a.kv_heads, kv_head);

  // The queries that see any of keys [k0, k1): [first, last], scanned by the whole block.
  int first = INT_MAX, last = -1;
  for (int64_t t = threadIdx.x; t < a.queries; t += kMmaThreads) {
    const int s = a.key_start[t], e = a.key_end[t];
    if (s < e && s < k1 && e > k0) {
      first = min(first, static_cast<int>(t));
      last = max(last, static_cast<int>(t));
    }
  }
  first = __reduce_min_sync(kFullMask, first);
  last = __reduce_max_sync(kFullMask, last);
  if (lane == 0) {
    span[2 * warp] = first;
    span[2 * warp + 1] = last;
  }
  __syncthreads();
  first = min(min(span[0], span[2]), min(span[4], span[6]));
  last = max(max(span[1], span[3]), max(span[5], span[7]));
  const int64_t first_tile = last >= 0 ? first / kQueryTile : 0;
  const int64_t items = last >= 0 ? (last / kQueryTile - first_tile + 1) * group : 0;  // (query tile, head) pairs
  auto stage_item = [&](int64_t item, int buffer) {
    const int64_t tq0 = (first_tile + item / group) * kQueryTile, h = kv_head * group + item % group;
    uint16_t* qs = qdo + buffer * 2 * kTileHalves;
    StageAsync<kHd>(qs, x.q, tq0, kQueryTile, a.queries, a.heads, h);
    StageAsync<kHd>(qs + kTileHalves, x.d_out, tq0, kQueryTile, a.queries, a.heads, h);
  };
  if (items > 0) stage_item(0, 0);
  CopyAsyncCommit();  // group 0: K, V and item 0

  const int64_t my_key[2] = {k0 + warp * 16 + g, k0 + warp * 16 + g + 8};
  float dk[kNTiles][4], dv[kNTiles][4];
  ZeroAccumulators(dk);
  ZeroAccumulators(dv);

  for (int64_t i = 0; i < items; i++) {
    const int64_t tq0 = (first_tile + i / group) * kQueryTile, h = kv_head * group + i % group;
    const uint16_t* qs = NextPipelineItem(qdo, kTileHalves, i, items, stage_item);
    const uint16_t* dos = qs + kTileHalves;

    float st[kQTiles][4], dpt[kQTiles][4];  // Sᵀ, dPᵀ: this warp's 16 keys × the tile's 32 queries
    RowsTimesRowsT<kHd, kQTiles>(st, ks, warp * 16, qs);
    RowsTimesRowsT<kHd, kQTiles>(dpt, vs, warp * 16, dos);
    // Pᵀ and dSᵀ in place of Sᵀ and dPᵀ; each column's query statistics straight from global memory (cached).
#pragma unroll
    for (int n = 0; n < kQTiles; n++)
#pragma unroll
      for (int cc = 0; cc < 2; cc++) {
        const int64_t t = tq0 + n * 8 + c + cc;
        const bool valid = t < a.queries;
        const int start = valid ? a.key_start[t] : 0, end = valid ? a.key_end[t] : 0;
        const float lse = valid ? a.lse[t * a.heads + h] : 0.0f, d = valid ? d_sum[t * a.heads + h] : 0.0f;
#pragma unroll
        for (int hh = 0; hh < 2; hh++) {
          const int e = 2 * hh + cc;
          const int64_t key = my_key[hh];
          const bool visible = key < a.keys && key >= start && key < end;
          const float p = visible ? expf(st[n][e] * a.scale - lse) : 0.0f;
          st[n][e] = p;
          dpt[n][e] = p * (dpt[n][e] - d);
        }
      }
    // dV += Pᵀ·dO and dK += dSᵀ·Q, dO and Q read along their rows (ldmatrix.trans).
    ScoresTimesKN(dv, st, dos, kRow);
    ScoresTimesKN(dk, dpt, qs, kRow);
    __syncthreads();  // buffer i & 1 is refilled with item i + 2 next
  }
  CopyAsyncWait<0>();

#pragma unroll
  for (int hh = 0; hh < 2; hh++) {
    const int64_t j = my_key[hh];
    if (j >= a.keys) continue;
    float* dk_row = a.dk + (j * a.kv_heads + kv_head) * kHd;
    float* dv_row = a.dv + (j * a.kv_heads + kv_head) * kHd;
#pragma unroll
    for (int n = 0; n < kNTiles; n++) {
      *reinterpret_cast<float2*>(dk_row + n * 8 + c) = make_float2(a.scale * dk[n][2 * hh], a.scale * dk[n][2 * hh + 1]);
      *reinterpret_cast<float2*>(dv_row + n * 8 + c) = make_float2(dv[n][2 * hh], dv[n][2 * hh + 1]);
    }
  }
#endif
}

// ---------------------------------------------------------------- launches

/** A bf16 copy of an f32 device tensor in scratch memory, freed with the object. */
class Bf16Copy {
 public:
  Bf16Copy(const float* src, int64_t count) : buffer_(static_cast<size_t>(count) * 2) {
    Convert(src, DType::kF32, buffer_.as<void>(), DType::kBf16, count);
  }
  const uint16_t* get() const { return buffer_.as<uint16_t>(); }

 private:
  DeviceScratch buffer_;
};

template <int kHd>
void LaunchForwardMma(const AttentionArgs& a) {
  const Bf16Copy q(a.q, a.queries * a.heads * kHd), k(a.k, a.keys * a.kv_heads * kHd), v(a.v, a.keys * a.kv_heads * kHd);
  constexpr size_t kBytes = (kBlockRows + 4 * kKeyTile) * (kHd + kSkew) * sizeof(uint16_t) + kRangeBytes;
  static size_t allowed = 0;
  AllowSharedMemory(AttentionForwardMmaKernel<kHd>, kBytes, allowed, "attentionForTraining (tensor cores)");
  const dim3 grid(static_cast<unsigned>((a.queries + kBlockRows - 1) / kBlockRows), static_cast<unsigned>(a.heads));
  AttentionForwardMmaKernel<kHd><<<grid, kMmaThreads, kBytes, Stream()>>>(a, q.get(), k.get(), v.get());
  CheckLaunch("attentionForTraining (tensor cores)");
}

template <int kHd>
void LaunchBackwardMma(const AttentionBackwardArgs& a, float* d_sum) {
  const int64_t q_count = a.queries * a.heads * kHd, kv_count = a.keys * a.kv_heads * kHd;
  const Bf16Copy q(a.q, q_count), k(a.k, kv_count), v(a.v, kv_count), d_out(a.d_out, q_count);
  const Bf16Operands x{q.get(), k.get(), v.get(), d_out.get()};

  constexpr size_t kDqBytes = (2 * kBlockRows + 4 * kKeyTile) * (kHd + kSkew) * sizeof(uint16_t) + kRangeBytes;
  static size_t dq_allowed = 0, dkdv_allowed = 0;
  AllowSharedMemory(AttentionDqMmaKernel<kHd>, kDqBytes, dq_allowed, "attentionBackward (dq, tensor cores)");
  const dim3 dq_grid(static_cast<unsigned>((a.queries + kBlockRows - 1) / kBlockRows), static_cast<unsigned>(a.heads));
  AttentionDqMmaKernel<kHd><<<dq_grid, kMmaThreads, kDqBytes, Stream()>>>(a, x, d_sum);
  CheckLaunch("attentionBackward (dq, tensor cores)");

  constexpr size_t kDkDvBytes = (2 * kBlockRows + 4 * kQueryTile) * (kHd + kSkew) * sizeof(uint16_t) + 8 * sizeof(int);
  AllowSharedMemory(AttentionDkDvMmaKernel<kHd>, kDkDvBytes, dkdv_allowed, "attentionBackward (dk, dv, tensor cores)");
  const dim3 kv_grid(static_cast<unsigned>((a.keys + kBlockRows - 1) / kBlockRows), static_cast<unsigned>(a.kv_heads));
  AttentionDkDvMmaKernel<kHd><<<kv_grid, kMmaThreads, kDkDvBytes, Stream()>>>(a, x, d_sum);
  CheckLaunch("attentionBackward (dk, dv, tensor cores)");
}

bool Aligned8(const void* p) { return reinterpret_cast<uintptr_t>(p) % 8 == 0; }

}  // namespace

bool TensorCoreAttentionApplies(int64_t head_dim, std::initializer_list<const void*> outputs) {
  if (head_dim != 32 && head_dim != 64 && head_dim != 128) return false;
  for (const void* p : outputs) {
    if (!Aligned8(p)) return false;
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
