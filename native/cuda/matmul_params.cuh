// The product's shape as every matmul kernel's parameter struct holds it (matmul.cu, matmul_skinny.cuh).
#pragma once
#include "cuda/ops.h"

namespace labor::cuda {

/** Sets m, n, k, the batch strides (a, b, out elements; b's 0 when b is shared), alpha and accumulate. */
template <class Params>
void SetProductShape(Params& p, const MatmulArgs& args) {
  p.m = args.m;
  p.n = args.n;
  p.k = args.k;
  p.a_batch_stride = args.m * args.k;
  p.b_batch_stride = args.b_batched ? args.k * args.n : 0;
  p.out_batch_stride = args.m * args.n;
  p.alpha = args.alpha;
  p.accumulate = args.accumulate;
}

}  // namespace labor::cuda
