/**
 * Naive reference implementations of every Backend op — plain loops, float64 accumulation — shared by the
 * op suites of all backends, plus bf16/f16 encode/decode helpers. Inputs and outputs are plain f32/f64
 * arrays; bf16/f16 operands are decoded first (decoding is exact).
 */

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** bf16 bits → value (exact). */
export function bf16ToNumber(bits: number): number {
  u32[0] = (bits & 0xffff) << 16;
  return f32[0];
}

/** value → bf16 bits, round to nearest even; NaN keeps its top bits with the quiet bit set. */
export function numberToBf16(value: number): number {
  f32[0] = value;
  const u = u32[0];
  if ((u & 0x7fffffff) > 0x7f800000) return ((u >>> 16) | 0x40) & 0xffff;
  return ((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) & 0xffff;
}

/** f16 bits → value (exact). */
export function f16ToNumber(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >> 10) & 0x1f;
  const mantissa = bits & 0x3ff;
  if (exponent === 0) return sign * mantissa * 2 ** -24;
  if (exponent === 31) return mantissa ? NaN : sign * Infinity;
  return sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
}

/** value (rounded to f32 first) → f16 bits, round to nearest even; overflow gives ±inf, NaN stays a quiet NaN. */
export function numberToF16(value: number): number {
  f32[0] = value;
  const u = u32[0];
  const sign = (u >>> 16) & 0x8000;
  const magnitude = u & 0x7fffffff;
  if (magnitude > 0x7f800000) return sign | 0x7e00 | ((magnitude >>> 13) & 0x3ff);
  if (magnitude >= 0x477ff000) return sign | 0x7c00; // ≥ 65520 rounds to infinity
  if (magnitude < 0x38800000) {
    // Below 2⁻¹⁴: count units of 2⁻²⁴, rounding half to even (exact in float64).
    const units = Math.abs(f32[0]) * 2 ** 24;
    let rounded = Math.floor(units);
    const rest = units - rounded;
    if (rest > 0.5 || (rest === 0.5 && rounded % 2 === 1)) rounded++;
    return sign | rounded;
  }
  const rebiased = magnitude - 0x38000000; // exponent 127 → 15
  return sign | (((rebiased + 0xfff + ((rebiased >>> 13) & 1)) >>> 13) & 0x7fff);
}

export function decode(data: Float32Array | Uint16Array, dtype: "f32" | "bf16" | "f16"): Float64Array {
  if (dtype === "f32") return Float64Array.from(data as Float32Array);
  const decodeOne = dtype === "bf16" ? bf16ToNumber : f16ToNumber;
  return Float64Array.from(data as Uint16Array, decodeOne);
}

export interface MatmulShape {
  batch: number;
  m: number;
  n: number;
  k: number;
  transA: boolean;
  transB: boolean;
  /** false: one b [K,N] shared by every batch item. */
  bBatched: boolean;
}

/** out[bi] = op(a[bi]) · op(b[bi]) (+ initial when accumulating). */
export function matmulRef(a: ArrayLike<number>, b: ArrayLike<number>, s: MatmulShape, initial?: ArrayLike<number>): Float64Array {
  const { batch, m, n, k } = s;
  const out = new Float64Array(batch * m * n);
  for (let bi = 0; bi < batch; bi++) {
    const ao = bi * m * k, bo = s.bBatched ? bi * k * n : 0;
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let sum = initial ? initial[(bi * m + i) * n + j] : 0;
        for (let kk = 0; kk < k; kk++) {
          const av = s.transA ? a[ao + kk * m + i] : a[ao + i * k + kk];
          const bv = s.transB ? b[bo + j * k + kk] : b[bo + kk * n + j];
          sum += av * bv;
        }
        out[(bi * m + i) * n + j] = sum;
      }
    }
  }
  return out;
}

export function embeddingRef(ids: ArrayLike<number>, table: ArrayLike<number>, dim: number): Float64Array {
  const out = new Float64Array(ids.length * dim);
  for (let t = 0; t < ids.length; t++) for (let d = 0; d < dim; d++) out[t * dim + d] = table[ids[t] * dim + d];
  return out;
}

/** HF RMSNorm: x · 1/sqrt(mean(x²) + eps) · weight. */
export function rmsnormRef(x: ArrayLike<number>, weight: ArrayLike<number>, eps: number, dim: number): Float64Array {
  const rows = dim === 0 ? 0 : x.length / dim;
  const out = new Float64Array(x.length);
  for (let r = 0; r < rows; r++) {
    let ss = 0;
    for (let d = 0; d < dim; d++) ss += x[r * dim + d] ** 2;
    const inv = 1 / Math.sqrt(ss / dim + eps);
    for (let d = 0; d < dim; d++) out[r * dim + d] = x[r * dim + d] * inv * weight[d];
  }
  return out;
}

/**
 * HF half-split RoPE. The angle is the f32 product position · invFreq, as HF computes it in float32 —
 * with positions in the thousands, the f32 rounding of the angle is ~1e-4 rad, far above f32 op noise.
 */
export function ropeRef(x: ArrayLike<number>, positions: ArrayLike<number>, invFreq: ArrayLike<number>, heads: number, headDim: number): Float64Array {
  const tokens = positions.length, half = headDim / 2;
  const out = new Float64Array(x.length);
  for (let t = 0; t < tokens; t++) {
    for (let i = 0; i < half; i++) {
      const angle = Math.fround(Math.fround(positions[t]) * invFreq[i]);
      const c = Math.cos(angle), s = Math.sin(angle);
      for (let h = 0; h < heads; h++) {
        const base = (t * heads + h) * headDim;
        const x1 = x[base + i], x2 = x[base + i + half];
        out[base + i] = x1 * c - x2 * s;
        out[base + i + half] = x2 * c + x1 * s;
      }
    }
  }
  return out;
}

/** Softmax attention over keys [keyStart[t], keyEnd[t]), GQA head mapping h → h / (H/KV); empty range → 0. */
export function attentionRef(q: ArrayLike<number>, k: ArrayLike<number>, v: ArrayLike<number>,
  keyStart: ArrayLike<number>, keyEnd: ArrayLike<number>, heads: number, kvHeads: number, headDim: number, scale: number): Float64Array {
  const queries = keyStart.length, group = heads / kvHeads;
  const out = new Float64Array(queries * heads * headDim);
  for (let t = 0; t < queries; t++) {
    for (let h = 0; h < heads; h++) {
      const kvh = Math.floor(h / group);
      const scores: number[] = [];
      for (let j = keyStart[t]; j < keyEnd[t]; j++) {
        let s = 0;
        for (let d = 0; d < headDim; d++) s += q[(t * heads + h) * headDim + d] * k[(j * kvHeads + kvh) * headDim + d];
        scores.push(s * scale);
      }
      if (scores.length === 0) continue;
      const mx = Math.max(...scores);
      const w = scores.map((s) => Math.exp(s - mx));
      const total = w.reduce((a, b) => a + b, 0);
      for (let d = 0; d < headDim; d++) {
        let acc = 0;
        for (let j = 0; j < w.length; j++) acc += w[j] * v[((keyStart[t] + j) * kvHeads + kvh) * headDim + d];
        out[(t * heads + h) * headDim + d] = acc / total;
      }
    }
  }
  return out;
}

export function swigluRef(gate: ArrayLike<number>, up: ArrayLike<number>): Float64Array {
  return Float64Array.from({ length: gate.length }, (_, i) => (gate[i] / (1 + Math.exp(-gate[i]))) * up[i]);
}

export function addRef(a: ArrayLike<number>, b: ArrayLike<number>): Float64Array {
  return Float64Array.from({ length: a.length }, (_, i) => a[i] + b[i]);
}

function logSumExp(z: ArrayLike<number>, offset: number, vocab: number): number {
  let mx = -Infinity;
  for (let j = 0; j < vocab; j++) mx = Math.max(mx, z[offset + j]);
  let sum = 0;
  for (let j = 0; j < vocab; j++) sum += Math.exp(z[offset + j] - mx);
  return mx + Math.log(sum);
}

export function logSoftmaxRef(logits: ArrayLike<number>, vocab: number): Float64Array {
  const out = new Float64Array(logits.length);
  for (let r = 0; r * vocab < logits.length; r++) {
    const lse = logSumExp(logits, r * vocab, vocab);
    for (let j = 0; j < vocab; j++) out[r * vocab + j] = logits[r * vocab + j] - lse;
  }
  return out;
}

/** log softmax(row r)[targets[r]]; NaN for a negative target. */
export function logSoftmaxGatherRef(logits: ArrayLike<number>, targets: ArrayLike<number>, vocab: number): Float64Array {
  return Float64Array.from({ length: targets.length }, (_, r) =>
    targets[r] < 0 ? NaN : logits[r * vocab + targets[r]] - logSumExp(logits, r * vocab, vocab));
}

/** dst with rows index[t] replaced by src row t (later rows win). */
export function scatterRowsRef(src: ArrayLike<number>, index: ArrayLike<number>, dst: ArrayLike<number>, width: number): Float64Array {
  const out = Float64Array.from(dst);
  for (let t = 0; t < index.length; t++) for (let c = 0; c < width; c++) out[index[t] * width + c] = src[t * width + c];
  return out;
}

/** ‖got − want‖ / ‖want‖ (absolute norm when want is all zero); NaN anywhere in got gives Infinity. */
export function relativeError(got: ArrayLike<number>, want: ArrayLike<number>): number {
  if (got.length !== want.length) return Infinity;
  let error = 0, norm = 0;
  for (let i = 0; i < got.length; i++) {
    if (Number.isNaN(got[i]) !== Number.isNaN(want[i])) return Infinity;
    if (Number.isNaN(want[i])) continue;
    error += (got[i] - want[i]) ** 2;
    norm += want[i] ** 2;
  }
  return norm > 0 ? Math.sqrt(error / norm) : Math.sqrt(error);
}
