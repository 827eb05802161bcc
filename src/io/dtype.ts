/**
 * Host-side float conversions for weights (REFERENCE §1): bf16 decode is `u32 = u16 << 16`; encode rounds to
 * nearest even (add 0x7fff plus the lowest kept bit), and a NaN keeps its top bits with the quiet bit set
 * (as gguf-py and PyTorch do), so a NaN payload never rounds into infinity.
 */

const f32Scratch = new Float32Array(1);
const u32Scratch = new Uint32Array(f32Scratch.buffer);

/** f32 → bf16 bit pattern, round-to-nearest-even. */
export function f32ToBf16Bits(x: number): number {
  f32Scratch[0] = x;
  return bitsToBf16(u32Scratch[0]);
}

function bitsToBf16(bits: number): number {
  if ((bits & 0x7fffffff) > 0x7f800000) return ((bits >>> 16) & 0xffff) | 0x0040;
  return ((bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16) & 0xffff;
}

/** bf16 bit pattern → f32 value (exact). */
export function bf16BitsToF32(bits: number): number {
  u32Scratch[0] = (bits & 0xffff) << 16;
  return f32Scratch[0];
}

/** IEEE half bit pattern → f32 value (exact; subnormals, infinities and NaN included). */
export function f16BitsToF32(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >> 10) & 0x1f;
  const fraction = bits & 0x3ff;
  if (exponent === 0) return sign * fraction * 2 ** -24;
  if (exponent === 0x1f) return fraction ? NaN : sign * Infinity;
  return sign * (1 + fraction / 1024) * 2 ** (exponent - 15);
}

export function float32ToBfloat16(values: Float32Array): Uint16Array {
  const bits = new Uint32Array(values.buffer, values.byteOffset, values.length);
  const out = new Uint16Array(values.length);
  for (let i = 0; i < bits.length; i++) out[i] = bitsToBf16(bits[i]);
  return out;
}

/** Decode any weight dtype to f32 (a copy, even for f32). */
export function toFloat32(data: Float32Array | Uint16Array, dtype: "f32" | "bf16" | "f16"): Float32Array {
  if (dtype === "f32") return Float32Array.from(data as Float32Array);
  const out = new Float32Array(data.length);
  const decode = dtype === "bf16" ? bf16BitsToF32 : f16BitsToF32;
  for (let i = 0; i < data.length; i++) out[i] = decode(data[i]);
  return out;
}
