// Elementwise ops: SwiGLU (+ backward), add, scale, fill, dtype conversion, row scatter.
//
// SwiGLU: out = silu(g) · u with silu(g) = g · σ(g). Backward:
//   dGate = dOut · u · σ(g) · (1 + g · (1 − σ(g))),  dUp = dOut · silu(g)
// Each thread reads all of its inputs before writing, so outputs may alias inputs.
#include <cstring>

#include "cuda/common.cuh"

namespace labor::cuda {
namespace {

#define GRID_STRIDE(i, count)                                                               \
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < (count); \
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)

__device__ inline float Sigmoid(float g) { return 1.0f / (1.0f + expf(-g)); }

__global__ void SwigluKernel(const float* gate, const float* up, float* out, int64_t count) {
  GRID_STRIDE(i, count) {
    const float g = gate[i], u = up[i];
    out[i] = g * Sigmoid(g) * u;
  }
}

__global__ void SwigluBackwardKernel(const float* gate, const float* up, const float* d_out, float* d_gate,
                                     float* d_up, int64_t count) {
  GRID_STRIDE(i, count) {
    const float g = gate[i], u = up[i], dy = d_out[i];
    const float sig = Sigmoid(g);
    d_gate[i] = dy * u * sig * (1.0f + g * (1.0f - sig));
    d_up[i] = dy * g * sig;
  }
}

__global__ void AddKernel(const float* a, const float* b, float* out, int64_t count) {
  GRID_STRIDE(i, count) out[i] = a[i] + b[i];
}

__global__ void ScaleKernel(const float* x, float factor, float* out, int64_t count) {
  GRID_STRIDE(i, count) out[i] = x[i] * factor;
}

__global__ void Fill32Kernel(uint32_t* x, uint32_t bits, int64_t count) {
  GRID_STRIDE(i, count) x[i] = bits;
}

__global__ void Fill16Kernel(uint16_t* x, uint16_t bits, int64_t count) {
  GRID_STRIDE(i, count) x[i] = bits;
}

__device__ inline void StoreFloat(void* base, DType dtype, int64_t i, float value) {
  switch (dtype) {
    case DType::kBf16: static_cast<uint16_t*>(base)[i] = FloatToBf16Bits(value); break;
    case DType::kF16: static_cast<uint16_t*>(base)[i] = FloatToHalfBits(value); break;
    default: static_cast<float*>(base)[i] = value; break;
  }
}

__global__ void ConvertKernel(const void* src, DType src_dtype, void* dst, DType dst_dtype, int64_t count) {
  GRID_STRIDE(i, count) StoreFloat(dst, dst_dtype, i, LoadFloat(src, src_dtype, i));
}

// One block per source row; bytes copied as 32-bit words when the row size allows, else bytes.
__global__ void ScatterRowsKernel(const unsigned char* src, const int32_t* __restrict__ index, unsigned char* dst,
                                  int64_t rows, int64_t dst_rows, int64_t row_bytes, bool words) {
  for (int64_t t = blockIdx.x; t < rows; t += gridDim.x) {
    const int32_t row = index[t];
    if (row < 0 || row >= dst_rows) continue;  // −1: superseded by a later duplicate
    const unsigned char* from = src + t * row_bytes;
    unsigned char* to = dst + static_cast<int64_t>(row) * row_bytes;
    if (words) {
      for (int64_t w = threadIdx.x; w < row_bytes / 4; w += blockDim.x) {
        reinterpret_cast<uint32_t*>(to)[w] = reinterpret_cast<const uint32_t*>(from)[w];
      }
    } else {
      for (int64_t b = threadIdx.x; b < row_bytes; b += blockDim.x) to[b] = from[b];
    }
  }
}

template <class Kernel, class... Args>
void LaunchElementwise(const char* name, int64_t count, Kernel kernel, Args... args) {
  if (count == 0) return;
  kernel<<<GridFor(count, 256), 256, 0, Stream()>>>(args..., count);
  CheckLaunch(name);
}

}  // namespace

void Swiglu(const float* gate, const float* up, float* out, int64_t count) {
  LaunchElementwise("swiglu", count, SwigluKernel, gate, up, out);
}

void SwigluBackward(const float* gate, const float* up, const float* d_out, float* d_gate, float* d_up, int64_t count) {
  LaunchElementwise("swigluBackward", count, SwigluBackwardKernel, gate, up, d_out, d_gate, d_up);
}

void Add(const float* a, const float* b, float* out, int64_t count) {
  LaunchElementwise("add", count, AddKernel, a, b, out);
}

void Scale(const float* x, float factor, float* out, int64_t count) {
  LaunchElementwise("scale", count, ScaleKernel, x, factor, out);
}

void Fill(void* x, DType dtype, int64_t count, double value) {
  const float f = static_cast<float>(value);
  switch (dtype) {
    case DType::kF32: {
      uint32_t bits;
      memcpy(&bits, &f, 4);
      LaunchElementwise("fill", count, Fill32Kernel, static_cast<uint32_t*>(x), bits);
      break;
    }
    case DType::kI32: {
      const int32_t integer = static_cast<int32_t>(value);
      uint32_t bits;
      memcpy(&bits, &integer, 4);
      LaunchElementwise("fill", count, Fill32Kernel, static_cast<uint32_t*>(x), bits);
      break;
    }
    case DType::kBf16:
      LaunchElementwise("fill", count, Fill16Kernel, static_cast<uint16_t*>(x), FloatToBf16Bits(f));
      break;
    case DType::kF16: {
      const __half half = __float2half_rn(f);
      uint16_t bits;
      memcpy(&bits, &half, 2);
      LaunchElementwise("fill", count, Fill16Kernel, static_cast<uint16_t*>(x), bits);
      break;
    }
  }
}

void Convert(const void* src, DType src_dtype, void* dst, DType dst_dtype, int64_t count) {
  if (src_dtype == dst_dtype || src_dtype == DType::kI32 || dst_dtype == DType::kI32) {
    CopyDeviceToDevice(dst, src, static_cast<size_t>(count) * DTypeBytes(src_dtype));
    return;
  }
  LaunchElementwise("convert", count, ConvertKernel, src, src_dtype, dst, dst_dtype);
}

void ScatterRows(const void* src, const int32_t* index, void* dst, int64_t rows, int64_t dst_rows, int64_t row_bytes) {
  if (rows == 0 || row_bytes == 0) return;
  const unsigned blocks = static_cast<unsigned>(rows < 65535 * 4 ? rows : 65535 * 4);
  const bool words = row_bytes % 4 == 0 && reinterpret_cast<uintptr_t>(src) % 4 == 0 &&
                     reinterpret_cast<uintptr_t>(dst) % 4 == 0;
  ScatterRowsKernel<<<blocks, 128, 0, Stream()>>>(static_cast<const unsigned char*>(src), index,
                                                   static_cast<unsigned char*>(dst), rows, dst_rows, row_bytes, words);
  CheckLaunch("scatterRows");
}

}  // namespace labor::cuda

#undef GRID_STRIDE
