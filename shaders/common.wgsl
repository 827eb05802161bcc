// Helpers prepended to every kernel (src/engine/webgpu/shaders.ts).
//
// Conventions shared by all kernels:
// - binding 0 is the uniform `p: Params`; its first fields are the element offsets of the tensor bindings, in
//   binding order (a tensor is bound as a window of its buffer; the offset is where element 0 of the view lies
//   in that window, wrapping mod 2³² where the window starts past it).
// - 16-bit floats (bf16, f16) are stored two to a u32: element e is half (e & 1) of word e >> 1, low half
//   first (little-endian, as on the host). Decoding is exact integer work, so it needs no `shader-f16`.
// - 1-D work is spread over a 2-D grid of workgroups (at most 65535 per dimension): `linear_group`.

fn bf16_to_f32(h: u32) -> f32 {
  return bitcast<f32>(h << 16u);
}

// f16 bits → f32, exactly (subnormals included, whatever the GPU's f16 support).
fn f16_to_f32(h: u32) -> f32 {
  let sign = (h & 0x8000u) << 16u;
  let exponent = (h >> 10u) & 0x1fu;
  let mantissa = h & 0x3ffu;
  if (exponent == 0u) {
    // zero or subnormal: mantissa · 2⁻²⁴, exact in f32
    return bitcast<f32>(sign | bitcast<u32>(f32(mantissa) * 5.9604644775390625e-8));
  }
  if (exponent == 31u) {
    return bitcast<f32>(sign | 0x7f800000u | (mantissa << 13u));
  }
  return bitcast<f32>(sign | ((exponent + 112u) << 23u) | (mantissa << 13u));
}

// f32 → bf16 bits, round to nearest even; NaN stays a quiet NaN (as test/reference.ts numberToBf16).
fn f32_to_bf16(x: f32) -> u32 {
  let u = bitcast<u32>(x);
  if ((u & 0x7fffffffu) > 0x7f800000u) {
    return ((u >> 16u) | 0x40u) & 0xffffu;
  }
  return ((u + 0x7fffu + ((u >> 16u) & 1u)) >> 16u) & 0xffffu;
}

// f32 → f16 bits, round to nearest even; overflow → ±inf; subnormals rounded exactly (as numberToF16).
fn f32_to_f16(x: f32) -> u32 {
  let u = bitcast<u32>(x);
  let sign = (u >> 16u) & 0x8000u;
  let magnitude = u & 0x7fffffffu;
  if (magnitude > 0x7f800000u) {
    return sign | 0x7e00u | ((magnitude >> 13u) & 0x3ffu);
  }
  if (magnitude >= 0x477ff000u) {
    return sign | 0x7c00u;
  }
  if (magnitude < 0x38800000u) {
    // below 2⁻¹⁴: value = (1.m) · 2^(e−127); units of 2⁻²⁴ = full mantissa >> (126 − e − 23 + 24 ...)
    let e = magnitude >> 23u;
    if (e < 102u) {
      return sign; // below half of the smallest subnormal (2⁻²⁵): rounds to zero
    }
    let full = (magnitude & 0x7fffffu) | 0x800000u; // 24-bit significand, value = full · 2^(e − 150)
    let shift = 126u - e; // units of 2⁻²⁴ = full >> (126 − e)
    let kept = full >> shift;
    let rest = full & ((1u << shift) - 1u);
    let half = 1u << (shift - 1u);
    var rounded = kept;
    if (rest > half || (rest == half && (kept & 1u) == 1u)) {
      rounded = kept + 1u;
    }
    return sign | rounded;
  }
  let rebiased = magnitude - 0x38000000u;
  return sign | (((rebiased + 0xfffu + ((rebiased >> 13u) & 1u)) >> 13u) & 0x7fffu);
}

fn half_of(word: u32, e: u32) -> u32 {
  return (word >> ((e & 1u) * 16u)) & 0xffffu;
}

fn linear_group(wg: vec3<u32>, groups: vec3<u32>) -> u32 {
  return wg.y * groups.x + wg.x;
}

// sin and cos of an f32 angle to ~1e-7 absolute for |angle| up to ~2¹⁷ (RoPE angles are position · frequency):
// Cody–Waite reduction by π/2 in five parts (the first four have ≤ 7 significant bits, so k·Cᵢ is exact for
// k < 2¹⁷), then Taylor polynomials on |r| ≤ π/4. WGSL's sin/cos promise only 2⁻¹¹ absolute on [−π, π].
fn sincos(angle: f32) -> vec2<f32> {
  let k = round(angle * 0.6366197723675814);
  var r = angle - k * 1.5625;
  r = r - k * 0.0081787109375;
  r = r - k * 0.00011730194091796875;
  r = r - k * 3.129243850708008e-7;
  r = r - k * 9.92093629470503e-10;
  let r2 = r * r;
  let s = r + r * r2 * (-0.16666666666666666 + r2 * (0.008333333333333333 + r2 * (-0.0001984126984126984 + r2 * 2.755731922398589e-6)));
  let c = 1.0 + r2 * (-0.5 + r2 * (0.041666666666666664 + r2 * (-0.001388888888888889 + r2 * (2.48015873015873e-5 - r2 * 2.755731922398589e-7))));
  let quadrant = i32(k) & 3;
  if (quadrant == 0) {
    return vec2<f32>(s, c);
  }
  if (quadrant == 1) {
    return vec2<f32>(c, -s);
  }
  if (quadrant == 2) {
    return vec2<f32>(-s, -c);
  }
  return vec2<f32>(-c, s);
}

// The f32 with these bits, computed at run time (a NaN or infinity may not be a WGSL constant).
fn runtime_f32(bits: u32) -> f32 {
  var word = bits;
  return bitcast<f32>(word);
}

// The lowest finite f32: a −∞ stand-in for running maxima (exp(x − max) of it underflows to 0).
const LOWEST: f32 = -3.4028234663852886e38;
