// The scalar path: plain loops, the reference every vector kernel is tested against, plus the ops that
// have one implementation on every ISA. Rows are spread over the thread pool.
#include <math.h>

#include <cstring>

#include "cpu/buffer.h"
#include "cpu/numeric.h"
#include "cpu/ops.h"
#include "cpu/rope_angles.h"
#include "cpu/thread_pool.h"

namespace labor::cpu {
namespace {

template <DType D>
float Load(const void* data, int64_t index) {
  if constexpr (D == DType::kF32) return static_cast<const float*>(data)[index];
  if constexpr (D == DType::kBf16) return Bf16ToFloat(static_cast<const uint16_t*>(data)[index]);
  if constexpr (D == DType::kF16) return F16ToFloat(static_cast<const uint16_t*>(data)[index]);
}

float LoadAny(const void* data, DType dtype, int64_t index) {
  switch (dtype) {
    case DType::kBf16: return Load<DType::kBf16>(data, index);
    case DType::kF16: return Load<DType::kF16>(data, index);
    case DType::kF32: break;
  }
  return Load<DType::kF32>(data, index);
}

size_t ElementBytes(DType dtype) { return dtype == DType::kF32 ? 4 : 2; }

// One output row per index (bi, i): out[i, :] (+)= Σ_k A(i, k) · B(k, :).
template <DType D>
void MatmulRows(const MatmulArgs& p) {
  const int64_t m = p.m, n = p.n, k = p.k;
  ParallelFor(p.batch * m, [&](int64_t begin, int64_t end) {
    float* row = static_cast<float*>(ThreadScratch(0, sizeof(float) * (n > 0 ? n : 1)));
    for (int64_t r = begin; r < end; r++) {
      const int64_t bi = r / m, i = r % m;
      const float* a = p.a + bi * m * k;
      const int64_t b_offset = p.b_batched ? bi * k * n : 0;
      auto a_at = [&](int64_t kk) { return p.trans_a ? a[kk * m + i] : a[i * k + kk]; };
      if (p.trans_b) {
        // B(k, j) = b[j, k]: a dot product per output element, both operands contiguous in k.
        for (int64_t j = 0; j < n; j++) {
          float sum = 0;
          for (int64_t kk = 0; kk < k; kk++) sum += a_at(kk) * Load<D>(p.b, b_offset + j * k + kk);
          row[j] = sum;
        }
      } else {
        for (int64_t j = 0; j < n; j++) row[j] = 0;
        for (int64_t kk = 0; kk < k; kk++) {
          const float a_ik = a_at(kk);
          for (int64_t j = 0; j < n; j++) row[j] += a_ik * Load<D>(p.b, b_offset + kk * n + j);
        }
      }
      float* out = p.out + r * n;
      for (int64_t j = 0; j < n; j++) out[j] = p.accumulate ? out[j] + p.alpha * row[j] : p.alpha * row[j];
    }
  });
}

}  // namespace

namespace scalar {

void Matmul(const MatmulArgs& args) {
  switch (args.b_dtype) {
    case DType::kF32: return MatmulRows<DType::kF32>(args);
    case DType::kBf16: return MatmulRows<DType::kBf16>(args);
    case DType::kF16: return MatmulRows<DType::kF16>(args);
  }
}

// Online softmax over one query row (Milakov & Gimelshein): keep the running max `mx`, the running sum
// `l` of exp(s − mx) and the running Σ exp(s − mx)·v; when the max grows, rescale both by exp(old − new).
void Attention(const AttentionArgs& p) {
  const int64_t hd = p.head_dim, group = p.heads / p.kv_heads;
  ParallelFor(p.queries * p.heads, [&](int64_t begin, int64_t end) {
    float* acc = static_cast<float*>(ThreadScratch(0, sizeof(float) * (hd > 0 ? hd : 1)));
    for (int64_t r = begin; r < end; r++) {
      const int64_t t = r / p.heads, h = r % p.heads, kvh = h / group;
      const float* q = p.q + r * hd;
      float mx = -INFINITY, l = 0;
      for (int64_t d = 0; d < hd; d++) acc[d] = 0;
      for (int64_t j = p.key_start[t]; j < p.key_end[t]; j++) {
        const float* key = p.k + (j * p.kv_heads + kvh) * hd;
        const float* value = p.v + (j * p.kv_heads + kvh) * hd;
        float s = 0;
        for (int64_t d = 0; d < hd; d++) s += q[d] * key[d];
        s *= p.scale;
        if (s > mx) {
          const float correction = expf(mx - s);  // exp(−inf) = 0 on the first key
          l *= correction;
          for (int64_t d = 0; d < hd; d++) acc[d] *= correction;
          mx = s;
        }
        const float weight = expf(s - mx);
        l += weight;
        for (int64_t d = 0; d < hd; d++) acc[d] += weight * value[d];
      }
      float* out = p.out + r * hd;
      const float inv = l > 0 ? 1.0f / l : 0.0f;  // empty range → zeros
      for (int64_t d = 0; d < hd; d++) out[d] = acc[d] * inv;
      if (p.lse != nullptr) p.lse[r] = l > 0 ? mx + logf(l) : -INFINITY;
    }
  });
}

}  // namespace scalar

void Embedding(const int32_t* ids, int64_t count, const void* table, DType table_dtype, int64_t dim,
               float* out) {
  if (count == 0 || dim == 0) return;  // empty arrays may have null data (memcpy(null, null, 0) is UB)
  // The dtype is decided once per call, not per element: f32 rows are copied, bf16 rows widened by a shift.
  // Small gathers (the loss rows' hidden states) stay on the calling thread, like the elementwise ops.
  const auto copy_rows = [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; t++) {
      const int64_t row = static_cast<int64_t>(ids[t]) * dim;
      float* dst = out + t * dim;
      if (table_dtype == DType::kF32) {
        std::memcpy(dst, static_cast<const float*>(table) + row, sizeof(float) * static_cast<size_t>(dim));
      } else if (table_dtype == DType::kBf16) {
        const uint16_t* src = static_cast<const uint16_t*>(table) + row;
        for (int64_t d = 0; d < dim; d++) dst[d] = Bf16ToFloat(src[d]);
      } else {
        for (int64_t d = 0; d < dim; d++) dst[d] = LoadAny(table, table_dtype, row + d);
      }
    }
  };
  if (count * dim < kMinParallelElements) {
    copy_rows(0, count);
  } else {
    ParallelFor(count, copy_rows);
  }
}

// HF LlamaRMSNorm: x · rsqrt(mean(x²) + eps), then · weight (the sum of squares in double so long rows
// don't lose bits; everything else f32 like HF).
void scalar::RmsNorm(const float* x, const void* weight, DType weight_dtype, float* out, int64_t rows, int64_t dim,
             float eps) {
  ParallelFor(rows, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; r++) {
      const float* xr = x + r * dim;
      double sum_squares = 0;
      for (int64_t d = 0; d < dim; d++) sum_squares += static_cast<double>(xr[d]) * xr[d];
      const float mean = dim > 0 ? static_cast<float>(sum_squares / static_cast<double>(dim)) : 0.0f;
      const float inv_rms = 1.0f / sqrtf(mean + eps);
      for (int64_t d = 0; d < dim; d++) out[r * dim + d] = xr[d] * inv_rms * LoadAny(weight, weight_dtype, d);
    }
  });
}

// HF half-split RoPE: element i pairs with i + hd/2, both rotated by θ = pos · invFreq[i]:
// (x₁, x₂) → (x₁ cos θ − x₂ sin θ, x₂ cos θ + x₁ sin θ), cos θ and sin θ from RopeAngles (rope_angles.h).
void Rope(const float* x, const int32_t* positions, const float* inv_freq, float* out, int64_t tokens,
          int64_t heads, int64_t head_dim) {
  const int64_t half = head_dim / 2;
  const RopeAngles angles(positions, tokens, inv_freq, half);
  ParallelFor(tokens, [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; t++) {
      const float* cs = angles.Row(t);
      const float* sn = cs + half;
      for (int64_t h = 0; h < heads; h++) {
        const float* xh = x + (t * heads + h) * head_dim;
        float* oh = out + (t * heads + h) * head_dim;
        for (int64_t i = 0; i < half; i++) {
          const float x1 = xh[i], x2 = xh[i + half];  // read both before writing (out may be x)
          oh[i] = x1 * cs[i] - x2 * sn[i];
          oh[i + half] = x2 * cs[i] + x1 * sn[i];
        }
      }
    }
  });
}

void scalar::Swiglu(const float* gate, const float* up, float* out, int64_t count) {
  ParallelForElements(count, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; i++) out[i] = gate[i] / (1.0f + expf(-gate[i])) * up[i];
  });
}

void Add(const float* a, const float* b, float* out, int64_t count) {
  ParallelForElements(count, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; i++) out[i] = a[i] + b[i];
  });
}

namespace {
// log Σ exp(z_j) = mx + log Σ exp(z_j − mx), the sum in double. A row that is all −inf gives −inf.
float LogSumExp(const float* z, int64_t vocab) {
  float mx = -INFINITY;
  for (int64_t j = 0; j < vocab; j++) mx = z[j] > mx ? z[j] : mx;
  if (mx == -INFINITY) return -INFINITY;
  double sum = 0;
  for (int64_t j = 0; j < vocab; j++) sum += exp(static_cast<double>(z[j] - mx));
  return static_cast<float>(mx + log(sum));
}
}  // namespace

void scalar::LogSoftmax(const float* logits, float* out, int64_t rows, int64_t vocab) {
  ParallelFor(rows, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; r++) {
      const float lse = LogSumExp(logits + r * vocab, vocab);
      for (int64_t j = 0; j < vocab; j++) out[r * vocab + j] = logits[r * vocab + j] - lse;
    }
  });
}

void scalar::LogSoftmaxGather(const float* logits, const int32_t* targets, float* out, int64_t rows, int64_t vocab) {
  ParallelFor(rows, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; r++) {
      out[r] = targets[r] < 0 ? NAN : logits[r * vocab + targets[r]] - LogSumExp(logits + r * vocab, vocab);
    }
  });
}

// Sequential so that duplicate indices resolve deterministically (the last row wins); it is a memcpy.
void ScatterRows(const void* src, const int32_t* index, void* dst, int64_t rows, int64_t row_bytes) {
  for (int64_t t = 0; t < rows; t++) {
    std::memcpy(static_cast<char*>(dst) + index[t] * row_bytes, static_cast<const char*>(src) + t * row_bytes,
                static_cast<size_t>(row_bytes));
  }
}

void Convert(const void* src, DType src_dtype, void* dst, DType dst_dtype, int64_t count) {
  if (count == 0) return;  // empty typed arrays may have null data, and memmove(null, null, 0) is UB
  if (src_dtype == dst_dtype) {
    std::memmove(dst, src, static_cast<size_t>(count) * ElementBytes(src_dtype));
    return;
  }
  ParallelForElements(count, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; i++) {
      const float value = LoadAny(src, src_dtype, i);  // exact: every bf16/f16 value is an f32
      switch (dst_dtype) {
        case DType::kF32: static_cast<float*>(dst)[i] = value; break;
        case DType::kBf16: static_cast<uint16_t*>(dst)[i] = FloatToBf16(value); break;
        case DType::kF16: static_cast<uint16_t*>(dst)[i] = FloatToF16(value); break;
      }
    }
  });
}

}  // namespace labor::cpu
