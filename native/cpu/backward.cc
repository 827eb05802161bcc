// Backward of the light forward ops (embedding, RMSNorm, RoPE, SwiGLU): one implementation for every ISA,
// plain loops the compiler vectorises. Parameter gradients accumulate (+=), activation gradients are
// written (=). Where many rows add into one parameter row, each thread owns a slice of columns, so there
// are no races and the order of the additions never depends on the thread count.
#include <math.h>

#include "cpu/buffer.h"
#include "cpu/numeric.h"
#include "cpu/rope_angles.h"
#include "cpu/thread_pool.h"
#include "cpu/training_ops.h"

namespace labor::cpu {
namespace {

// Columns per task for the column-sliced accumulations: one cache line of f32.
constexpr int64_t kColumnBlock = 16;

float LoadWeight(const void* data, DType dtype, int64_t index) {
  switch (dtype) {
    case DType::kBf16: return Bf16ToFloat(static_cast<const uint16_t*>(data)[index]);
    case DType::kF16: return F16ToFloat(static_cast<const uint16_t*>(data)[index]);
    case DType::kF32: break;
  }
  return static_cast<const float*>(data)[index];
}

}  // namespace

// dTable[ids[t], c] += dOut[t, c], t ascending, each task owning columns [c0, c0 + kColumnBlock).
void EmbeddingBackward(const int32_t* ids, int64_t count, const float* d_out, int64_t dim, float* d_table) {
  const int64_t blocks = (dim + kColumnBlock - 1) / kColumnBlock;
  ParallelFor(blocks, [&](int64_t begin, int64_t end) {
    const int64_t c0 = begin * kColumnBlock, c1 = end * kColumnBlock < dim ? end * kColumnBlock : dim;
    for (int64_t t = 0; t < count; t++) {
      float* dst = d_table + static_cast<int64_t>(ids[t]) * dim;
      const float* src = d_out + t * dim;
      for (int64_t c = c0; c < c1; c++) dst[c] += src[c];
    }
  });
}

// y = x·r·w with r = (mean(x²) + eps)^(−1/2), so ∂r/∂x_i = −r³·x_i/dim and
//   dx_i = r·w_i·dy_i − x_i · (r³/dim) · Σ_j w_j·dy_j·x_j,        dw_i += Σ_rows dy_i·x_i·r.
// r is computed exactly as the forward does (f64 sum of squares); the row dot is f64 too.
void RmsNormBackward(const float* x, const void* weight, DType weight_dtype, const float* d_out, float* dx,
                     float* d_weight, int64_t rows, int64_t dim, float eps) {
  AlignedBuffer inv_rms_buffer(sizeof(float) * static_cast<size_t>(rows > 0 ? rows : 1));
  float* inv_rms = static_cast<float*>(inv_rms_buffer.data());
  ParallelFor(rows, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; r++) {
      const float* xr = x + r * dim;
      const float* dy = d_out + r * dim;
      double sum_squares = 0, dot = 0;
      for (int64_t d = 0; d < dim; d++) {
        sum_squares += static_cast<double>(xr[d]) * xr[d];
        dot += static_cast<double>(LoadWeight(weight, weight_dtype, d) * dy[d]) * xr[d];
      }
      const float mean = dim > 0 ? static_cast<float>(sum_squares / static_cast<double>(dim)) : 0.0f;
      const float rr = 1.0f / sqrtf(mean + eps);
      inv_rms[r] = rr;
      const float coefficient = dim > 0 ? static_cast<float>(dot * rr * rr * rr / static_cast<double>(dim)) : 0.0f;
      float* out = dx + r * dim;  // may not alias x or dy (checked by the binding)
      for (int64_t d = 0; d < dim; d++) out[d] = rr * LoadWeight(weight, weight_dtype, d) * dy[d] - xr[d] * coefficient;
    }
  });
  if (d_weight == nullptr) return;
  const int64_t blocks = (dim + kColumnBlock - 1) / kColumnBlock;
  ParallelFor(blocks, [&](int64_t begin, int64_t end) {
    for (int64_t block = begin; block < end; block++) {
      const int64_t c0 = block * kColumnBlock, width = dim - c0 < kColumnBlock ? dim - c0 : kColumnBlock;
      float sum[kColumnBlock] = {};
      for (int64_t r = 0; r < rows; r++) {
        const float* xr = x + r * dim + c0;
        const float* dy = d_out + r * dim + c0;
        for (int64_t c = 0; c < width; c++) sum[c] += dy[c] * xr[c] * inv_rms[r];
      }
      for (int64_t c = 0; c < width; c++) d_weight[c0 + c] += sum[c];
    }
  });
}

// RoPE rotates each pair (x₁, x₂) by θ: a rotation matrix R(θ); its transpose is R(−θ), so
// (d₁, d₂) → (d₁ cos θ + d₂ sin θ, d₂ cos θ − d₁ sin θ), with cos θ and sin θ exactly as the forward's
// (RopeAngles, rope_angles.h).
void RopeBackward(const float* d_out, const int32_t* positions, const float* inv_freq, float* dx,
                  int64_t tokens, int64_t heads, int64_t head_dim) {
  const int64_t half = head_dim / 2;
  const RopeAngles angles(positions, tokens, inv_freq, half);
  ParallelFor(tokens, [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; t++) {
      const float* cs = angles.Row(t);
      const float* sn = cs + half;
      for (int64_t h = 0; h < heads; h++) {
        const int64_t base = (t * heads + h) * head_dim;
        for (int64_t i = 0; i < half; i++) {
          const float d1 = d_out[base + i], d2 = d_out[base + i + half];  // both read before writing
          dx[base + i] = d1 * cs[i] + d2 * sn[i];
          dx[base + i + half] = d2 * cs[i] - d1 * sn[i];
        }
      }
    }
  });
}

// silu(g) = g·σ(g), silu'(g) = σ(g)·(1 + g·(1 − σ(g))).
void scalar::SwigluBackward(const float* gate, const float* up, const float* d_out, float* d_gate, float* d_up,
                            int64_t count) {
  ParallelForElements(count, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; i++) {
      const float g = gate[i], u = up[i], dy = d_out[i];  // read all before writing (outputs may be inputs)
      const float sigmoid = 1.0f / (1.0f + expf(-g));
      d_gate[i] = dy * u * sigmoid * (1.0f + g * (1.0f - sigmoid));
      d_up[i] = dy * g * sigmoid;
    }
  });
}

}  // namespace labor::cpu
