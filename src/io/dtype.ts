/**
 * Host-side float conversions for weights (REFERENCE §1): bf16 decode is `u32 = u16 << 16`; encode rounds to
 * nearest even (add 0x7fff plus the lowest kept bit), and a NaN keeps its top bits with the quiet bit set.
 */

export function float32ToBfloat16(values: Float32Array): Uint16Array {
  const bits = new Uint32Array(values.buffer, values.byteOffset, values.length);
  const out = new Uint16Array(values.length);
  for (let i = 0; i < bits.length; i++) {
    const u = bits[i];
    if ((u & 0x7fffffff) > 0x7f800000) out[i] = (u >>> 16) | 0x40;
    else out[i] = (u + 0x7fff + ((u >>> 16) & 1)) >>> 16;
  }
  return out;
}

export function bfloat16ToFloat32(values: Uint16Array): Float32Array {
  const out = new Float32Array(values.length);
  const bits = new Uint32Array(out.buffer);
  for (let i = 0; i < values.length; i++) bits[i] = values[i] << 16;
  return out;
}

/** IEEE half → float (subnormals, infinities and NaN included). */
export function float16ToFloat32(values: Uint16Array): Float32Array {
  const out = new Float32Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const h = values[i];
    const sign = h & 0x8000 ? -1 : 1;
    const exponent = (h >> 10) & 0x1f;
    const mantissa = h & 0x3ff;
    if (exponent === 0) out[i] = sign * mantissa * 2 ** -24;
    else if (exponent === 31) out[i] = mantissa ? NaN : sign * Infinity;
    else out[i] = sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
  }
  return out;
}

/** Decode any weight dtype to f32 (a copy, even for f32). */
export function toFloat32(data: Float32Array | Uint16Array, dtype: "f32" | "bf16" | "f16"): Float32Array {
  if (dtype === "f32") return Float32Array.from(data as Float32Array);
  return dtype === "bf16" ? bfloat16ToFloat32(data as Uint16Array) : float16ToFloat32(data as Uint16Array);
}
