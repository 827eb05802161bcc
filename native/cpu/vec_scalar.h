// Plain-loop versions of the vector helpers (vec_avx2.h, vec_avx512.h) for the scalar training kernels:
// the same interface, libm's expf, sums in index order (ExpSum's in f64: it may run over a whole vocabulary).
#pragma once
#include <math.h>

#include <cstdint>

namespace labor::cpu::scalar {
namespace {

struct Vec {
  static float Dot(const float* a, const float* b, int64_t n) {
    float sum = 0;
    for (int64_t i = 0; i < n; i++) sum += a[i] * b[i];
    return sum;
  }
  static void Axpy(float w, const float* x, float* y, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] += w * x[i];
  }
  static void Scale(float* y, float s, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] *= s;
  }
  static void Zero(float* y, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = 0;
  }
  static float Max(const float* x, int64_t n) {
    float mx = -INFINITY;
    for (int64_t i = 0; i < n; i++) mx = x[i] > mx ? x[i] : mx;
    return mx;
  }
  static void ExpInPlace(float* x, int64_t n) {
    for (int64_t i = 0; i < n; i++) x[i] = expf(x[i]);
  }
  static float ExpSum(const float* x, float shift, int64_t n) {
    double sum = 0;
    for (int64_t i = 0; i < n; i++) sum += expf(x[i] - shift);
    return static_cast<float>(sum);
  }
  static void ExpScale(const float* x, float shift, float factor, float* y, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = factor * expf(x[i] - shift);
  }
};

}  // namespace
}  // namespace labor::cpu::scalar
