// Scalar conversions between f32 and the 16-bit float formats (bf16, f16), bit-exact with
// REFERENCE.md §1 (bf16) and IEEE 754 binary16, both rounding to nearest even.
//
// Everything here has internal linkage (anonymous namespace) on purpose: this header is included by
// translation units compiled with different ISA flags (-mavx2, -mavx512f, ...). An inline function with
// external linkage would be emitted once per TU and the linker would keep an arbitrary copy — possibly
// one using AVX-512 instructions, called from the scalar path on a CPU without them.
#pragma once
#include <cstdint>
#include <cstring>

namespace labor::cpu {
namespace {

inline uint32_t FloatBits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
}

inline float BitsFloat(uint32_t u) {
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

// bf16 is the top half of an f32, so decoding is exact.
inline float Bf16ToFloat(uint16_t h) { return BitsFloat(static_cast<uint32_t>(h) << 16); }

// Round to nearest even: adding 0x7fff plus the lowest kept bit carries into the kept half exactly when
// the dropped half is above one half-ulp, or equal to it with an odd kept half. A NaN keeps its top bits
// with the quiet bit forced on (truncation alone could turn a NaN with a low payload into an infinity).
inline uint16_t FloatToBf16(float f) {
  const uint32_t u = FloatBits(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40u);
  return static_cast<uint16_t>((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

inline float F16ToFloat(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exponent = (h >> 10) & 0x1fu;
  const uint32_t mantissa = h & 0x3ffu;
  if (exponent == 0) {
    // Zero or subnormal: mantissa · 2⁻²⁴, exact in f32.
    const float magnitude = static_cast<float>(mantissa) * 5.9604644775390625e-8f;
    return BitsFloat(sign | FloatBits(magnitude));
  }
  if (exponent == 31) return BitsFloat(sign | 0x7f800000u | (mantissa << 13));  // inf / NaN
  return BitsFloat(sign | ((exponent + 112u) << 23) | (mantissa << 13));        // rebias 15 → 127
}

inline uint16_t FloatToF16(float f) {
  const uint32_t u = FloatBits(f);
  const uint16_t sign = static_cast<uint16_t>((u >> 16) & 0x8000u);
  const uint32_t magnitude = u & 0x7fffffffu;
  if (magnitude > 0x7f800000u) return sign | 0x7e00u | static_cast<uint16_t>((magnitude >> 13) & 0x3ffu);
  if (magnitude >= 0x477ff000u) return sign | 0x7c00u;  // ≥ 65520 rounds to infinity (inf stays inf)
  if (magnitude < 0x38800000u) {
    // Below the smallest normal 2⁻¹⁴: the result counts units of 2⁻²⁴. Values under 2⁻²⁵ round to 0.
    if (magnitude < 0x33000000u) return sign;
    const uint32_t biased_exponent = magnitude >> 23;  // 102 … 112
    const uint32_t significand = (magnitude & 0x7fffffu) | 0x800000u;
    const uint32_t shift = 126u - biased_exponent;     // 14 … 24
    uint32_t units = significand >> shift;
    const uint32_t rest = significand & ((1u << shift) - 1u);
    const uint32_t half = 1u << (shift - 1u);
    if (rest > half || (rest == half && (units & 1u))) units++;  // may carry into the smallest normal: fine
    return sign | static_cast<uint16_t>(units);
  }
  // Normal: rebias the exponent (127 → 15) and round the 13 dropped mantissa bits to nearest even.
  const uint32_t rebiased = magnitude - 0x38000000u;
  return sign | static_cast<uint16_t>((rebiased + 0xfffu + ((rebiased >> 13) & 1u)) >> 13);
}

}  // namespace
}  // namespace labor::cpu
