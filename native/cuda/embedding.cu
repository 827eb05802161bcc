// Embedding gather (forward) and scatter-add (backward).
#include "cuda/common.cuh"

namespace labor::cuda {
namespace {

// out[t][d] = table[ids[t]][d]; one block row of threads per token, threads along d (coalesced).
__global__ void EmbeddingKernel(const int32_t* __restrict__ ids, const void* __restrict__ table, DType dtype,
                                int64_t tokens, int64_t vocab, int64_t dim, float* __restrict__ out) {
  for (int64_t t = blockIdx.x; t < tokens; t += gridDim.x) {
    const int32_t id = ids[t];
    const bool valid = id >= 0 && id < vocab;  // the addon checked; a bad id still can't read out of bounds
    for (int64_t d = threadIdx.x; d < dim; d += blockDim.x) {
      out[t * dim + d] = valid ? LoadFloat(table, dtype, static_cast<int64_t>(id) * dim + d) : NAN;
    }
  }
}

// dTable[ids[t]][d] += dOut[t][d]; atomics because ids repeat.
__global__ void EmbeddingBackwardKernel(const int32_t* __restrict__ ids, const float* __restrict__ d_out,
                                        int64_t tokens, int64_t vocab, int64_t dim, float* __restrict__ d_table) {
  for (int64_t t = blockIdx.x; t < tokens; t += gridDim.x) {
    const int32_t id = ids[t];
    if (id < 0 || id >= vocab) continue;
    for (int64_t d = threadIdx.x; d < dim; d += blockDim.x) atomicAdd(d_table + id * dim + d, d_out[t * dim + d]);
  }
}

}  // namespace

void Embedding(const int32_t* ids, int64_t tokens, const void* table, DType table_dtype, int64_t vocab, int64_t dim,
               float* out) {
  if (tokens == 0 || dim == 0) return;
  EmbeddingKernel<<<RowBlocks(tokens), 256, 0, Stream()>>>(ids, table, table_dtype, tokens, vocab, dim, out);
  CheckLaunch("embedding");
}

void EmbeddingBackward(const int32_t* ids, int64_t tokens, const float* d_out, float* d_table, int64_t vocab,
                       int64_t dim) {
  if (tokens == 0 || dim == 0) return;
  EmbeddingBackwardKernel<<<RowBlocks(tokens), 256, 0, Stream()>>>(ids, d_out, tokens, vocab, dim, d_table);
  CheckLaunch("embeddingBackward");
}

}  // namespace labor::cuda
