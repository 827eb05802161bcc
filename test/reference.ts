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

// Whole-array conversions as plain loops: TypedArray.from with a mapping function is ~100× slower in V8 (5 s for
// a 4096 × 4096 matrix).

/** values → bf16 bits (round to nearest even), element by element. */
export function toBf16Bits(values: ArrayLike<number>): Uint16Array {
  const out = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = numberToBf16(values[i]);
  return out;
}

/** bf16 bits → their exact values. */
export function fromBf16Bits(bits: ArrayLike<number>): Float64Array {
  const out = new Float64Array(bits.length);
  for (let i = 0; i < bits.length; i++) out[i] = bf16ToNumber(bits[i]);
  return out;
}

/** values rounded to bf16 (nearest even), as exact f64 values. */
export function roundedToBf16(values: ArrayLike<number>): Float64Array {
  const out = new Float64Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = bf16ToNumber(numberToBf16(values[i]));
  return out;
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
      const row = (bi * m + i) * n;
      if (s.transB) {
        for (let j = 0; j < n; j++) {
          let sum = initial ? initial[row + j] : 0;
          for (let kk = 0; kk < k; kk++) sum += (s.transA ? a[ao + kk * m + i] : a[ao + i * k + kk]) * b[bo + j * k + kk];
          out[row + j] = sum;
        }
      } else {
        // b [K, N]: the same sums in the same order (each out[i][j] adds k = 0, 1, … to its initial value), with k
        // outside j so that b is read along its rows: reading down a column of a 4096-wide b takes seconds.
        for (let j = 0; j < n; j++) out[row + j] = initial ? initial[row + j] : 0;
        for (let kk = 0; kk < k; kk++) {
          const av = s.transA ? a[ao + kk * m + i] : a[ao + i * k + kk];
          for (let j = 0; j < n; j++) out[row + j] += av * b[bo + kk * n + j];
        }
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

// ---- training and scoring ops: forward references and analytic float64 gradients ----

/** matmulRef scaled by alpha: out = alpha · op(a)·op(b) (+ initial). */
export function matmulAlphaRef(a: ArrayLike<number>, b: ArrayLike<number>, s: MatmulShape, alpha: number, initial?: ArrayLike<number>): Float64Array {
  const product = matmulRef(a, b, s);
  return product.map((p, i) => alpha * p + (initial ? initial[i] : 0));
}

/** attentionRef plus each row's log Σ exp(scaled scores), lse [Tq·H] (−inf for an empty key range). */
export function attentionLseRef(q: ArrayLike<number>, k: ArrayLike<number>, keyStart: ArrayLike<number>, keyEnd: ArrayLike<number>,
  heads: number, kvHeads: number, headDim: number, scale: number): Float64Array {
  const queries = keyStart.length, group = heads / kvHeads;
  const lse = new Float64Array(queries * heads);
  for (let t = 0; t < queries; t++) {
    for (let h = 0; h < heads; h++) {
      const kvh = Math.floor(h / group);
      const scores: number[] = [];
      for (let j = keyStart[t]; j < keyEnd[t]; j++) {
        let s = 0;
        for (let d = 0; d < headDim; d++) s += q[(t * heads + h) * headDim + d] * k[(j * kvHeads + kvh) * headDim + d];
        scores.push(s * scale);
      }
      const mx = Math.max(...scores);
      lse[t * heads + h] = scores.length === 0 ? -Infinity : mx + Math.log(scores.reduce((a, s) => a + Math.exp(s - mx), 0));
    }
  }
  return lse;
}

/**
 * Analytic gradients of L = Σ dOut ⊙ attention(q, k, v): with p_j the softmax over query row (t, h)'s keys,
 * dp_j = dOut·v_j, ds_j = p_j (dp_j − Σ_i p_i dp_i): dq = scale Σ_j ds_j k_j, dk_j += scale ds_j q, dv_j += p_j dOut.
 */
export function attentionBackwardRef(q: ArrayLike<number>, k: ArrayLike<number>, v: ArrayLike<number>, dOut: ArrayLike<number>,
  keyStart: ArrayLike<number>, keyEnd: ArrayLike<number>, heads: number, kvHeads: number, headDim: number, scale: number):
  { dq: Float64Array; dk: Float64Array; dv: Float64Array } {
  const queries = keyStart.length, group = heads / kvHeads;
  const dq = new Float64Array(q.length), dk = new Float64Array(k.length), dv = new Float64Array(v.length);
  for (let t = 0; t < queries; t++) {
    for (let h = 0; h < heads; h++) {
      const kvh = Math.floor(h / group), row = (t * heads + h) * headDim;
      const keyAt = (j: number) => (j * kvHeads + kvh) * headDim;
      const js: number[] = [], scores: number[] = [];
      for (let j = keyStart[t]; j < keyEnd[t]; j++) {
        let s = 0;
        for (let d = 0; d < headDim; d++) s += q[row + d] * k[keyAt(j) + d];
        js.push(j);
        scores.push(s * scale);
      }
      if (js.length === 0) continue;
      const mx = Math.max(...scores);
      const e = scores.map((s) => Math.exp(s - mx));
      const total = e.reduce((a, b) => a + b, 0);
      const p = e.map((x) => x / total);
      const dp = js.map((j) => {
        let s = 0;
        for (let d = 0; d < headDim; d++) s += dOut[row + d] * v[keyAt(j) + d];
        return s;
      });
      const mean = p.reduce((a, pj, i) => a + pj * dp[i], 0);
      js.forEach((j, i) => {
        const ds = p[i] * (dp[i] - mean);
        for (let d = 0; d < headDim; d++) {
          dq[row + d] += scale * ds * k[keyAt(j) + d];
          dk[keyAt(j) + d] += scale * ds * q[row + d];
          dv[keyAt(j) + d] += p[i] * dOut[row + d];
        }
      });
    }
  }
  return { dq, dk, dv };
}

/**
 * Tree attention: query t attends keys [prefixStart[t], prefixEnd[t]) followed by extraKeys[extraOffsets[t] ..
 * extraOffsets[t+1]) (a key listed twice counts twice); no keys → 0.
 */
export function treeAttentionRef(q: ArrayLike<number>, k: ArrayLike<number>, v: ArrayLike<number>, prefixStart: ArrayLike<number>,
  prefixEnd: ArrayLike<number>, extraOffsets: ArrayLike<number>, extraKeys: ArrayLike<number>, heads: number, kvHeads: number,
  headDim: number, scale: number): Float64Array {
  const queries = prefixStart.length, group = heads / kvHeads;
  const out = new Float64Array(queries * heads * headDim);
  for (let t = 0; t < queries; t++) {
    const keys: number[] = [];
    for (let j = prefixStart[t]; j < prefixEnd[t]; j++) keys.push(j);
    for (let e = extraOffsets[t]; e < extraOffsets[t + 1]; e++) keys.push(extraKeys[e]);
    if (keys.length === 0) continue;
    for (let h = 0; h < heads; h++) {
      const kvh = Math.floor(h / group), row = (t * heads + h) * headDim;
      const scores = keys.map((j) => {
        let s = 0;
        for (let d = 0; d < headDim; d++) s += q[row + d] * k[(j * kvHeads + kvh) * headDim + d];
        return s * scale;
      });
      const mx = Math.max(...scores);
      const w = scores.map((s) => Math.exp(s - mx));
      const total = w.reduce((a, b) => a + b, 0);
      keys.forEach((j, i) => {
        for (let d = 0; d < headDim; d++) out[row + d] += (w[i] / total) * v[(j * kvHeads + kvh) * headDim + d];
      });
    }
  }
  return out;
}

/** dTable = initial + Σ_t onehot(ids[t]) ⊗ dOut[t]. */
export function embeddingBackwardRef(ids: ArrayLike<number>, dOut: ArrayLike<number>, initial: ArrayLike<number>, dim: number): Float64Array {
  const dTable = Float64Array.from(initial);
  for (let t = 0; t < ids.length; t++) for (let d = 0; d < dim; d++) dTable[ids[t] * dim + d] += dOut[t * dim + d];
  return dTable;
}

/**
 * Analytic RMSNorm gradients for out = x · r · w, r = (mean(x²) + eps)^(−1/2):
 * dx = r (w ⊙ dOut) − x r³/dim Σ(w ⊙ dOut ⊙ x); dWeight = initial + Σ_rows dOut ⊙ x r.
 */
export function rmsnormBackwardRef(x: ArrayLike<number>, weight: ArrayLike<number>, dOut: ArrayLike<number>, eps: number, dim: number,
  initialDWeight?: ArrayLike<number>): { dx: Float64Array; dWeight: Float64Array } {
  const rows = dim === 0 ? 0 : x.length / dim;
  const dx = new Float64Array(x.length);
  const dWeight = initialDWeight ? Float64Array.from(initialDWeight) : new Float64Array(dim);
  for (let r = 0; r < rows; r++) {
    let ss = 0, dot = 0;
    for (let d = 0; d < dim; d++) {
      ss += x[r * dim + d] ** 2;
      dot += weight[d] * dOut[r * dim + d] * x[r * dim + d];
    }
    const inv = 1 / Math.sqrt(ss / dim + eps);
    for (let d = 0; d < dim; d++) {
      const i = r * dim + d;
      dx[i] = inv * weight[d] * dOut[i] - (x[i] * inv ** 3 * dot) / dim;
      dWeight[d] += dOut[i] * x[i] * inv;
    }
  }
  return { dx, dWeight };
}

/** RoPE's rotation is orthogonal, so its backward rotates dOut by −angle (angles exactly as ropeRef). */
export function ropeBackwardRef(dOut: ArrayLike<number>, positions: ArrayLike<number>, invFreq: ArrayLike<number>, heads: number,
  headDim: number): Float64Array {
  const tokens = positions.length, half = headDim / 2;
  const dx = new Float64Array(dOut.length);
  for (let t = 0; t < tokens; t++) {
    for (let i = 0; i < half; i++) {
      const angle = Math.fround(Math.fround(positions[t]) * invFreq[i]);
      const c = Math.cos(angle), s = Math.sin(angle);
      for (let h = 0; h < heads; h++) {
        const base = (t * heads + h) * headDim;
        const d1 = dOut[base + i], d2 = dOut[base + i + half];
        dx[base + i] = d1 * c + d2 * s;
        dx[base + i + half] = d2 * c - d1 * s;
      }
    }
  }
  return dx;
}

/** out = silu(g)·u: dUp = dOut·silu(g), dGate = dOut·u·σ(g)(1 + g(1 − σ(g))). */
export function swigluBackwardRef(gate: ArrayLike<number>, up: ArrayLike<number>, dOut: ArrayLike<number>): { dGate: Float64Array; dUp: Float64Array } {
  const dGate = new Float64Array(gate.length), dUp = new Float64Array(gate.length);
  for (let i = 0; i < gate.length; i++) {
    const sigmoid = 1 / (1 + Math.exp(-gate[i]));
    dGate[i] = dOut[i] * up[i] * sigmoid * (1 + gate[i] * (1 - sigmoid));
    dUp[i] = dOut[i] * gate[i] * sigmoid;
  }
  return { dGate, dUp };
}

/** losses[r] = lse(z_r) − z_r[y_r] and dLogits[r] = gradScale (softmax(z_r) − onehot(y_r)); target −1: 0 and 0. */
export function crossEntropyRef(logits: ArrayLike<number>, targets: ArrayLike<number>, vocab: number, gradScale: number):
  { losses: Float64Array; dLogits: Float64Array } {
  const rows = targets.length;
  const losses = new Float64Array(rows), dLogits = new Float64Array(rows * vocab);
  for (let r = 0; r < rows; r++) {
    if (targets[r] < 0) continue;
    const lse = logSumExp(logits, r * vocab, vocab);
    losses[r] = lse - logits[r * vocab + targets[r]];
    for (let j = 0; j < vocab; j++) dLogits[r * vocab + j] = gradScale * (Math.exp(logits[r * vocab + j] - lse) - (j === targets[r] ? 1 : 0));
  }
  return { losses, dLogits };
}

export interface AdamWState { param: Float64Array; m: Float64Array; v: Float64Array }

/** One AdamW step in float64 (REFERENCE §6: decay first on the pre-update weight, eps outside the sqrt). */
export function adamwRef(state: AdamWState, grad: ArrayLike<number>, hyper: { learningRate: number; beta1: number; beta2: number;
  epsilon: number; weightDecay: number; step: number }): AdamWState {
  const { learningRate: lr, beta1, beta2, epsilon, weightDecay, step } = hyper;
  const param = Float64Array.from(state.param), m = Float64Array.from(state.m), v = Float64Array.from(state.v);
  for (let i = 0; i < param.length; i++) {
    param[i] -= lr * weightDecay * param[i];
    m[i] = beta1 * m[i] + (1 - beta1) * grad[i];
    v[i] = beta2 * v[i] + (1 - beta2) * grad[i] * grad[i];
    const mHat = m[i] / (1 - beta1 ** step), vHat = v[i] / (1 - beta2 ** step);
    param[i] -= (lr * mHat) / (Math.sqrt(vHat) + epsilon);
  }
  return { param, m, v };
}

/**
 * Central differences of a scalar function at x, one coordinate at a time: (f(x + h·e_i) − f(x − h·e_i)) / 2h.
 * For smooth f in float64 the error is O(h²·|f'''|) + O(ε·|f| / h); h = 1e-5 keeps both near 1e-10 here.
 */
export function centralDifferences(f: (x: Float64Array) => number, x: ArrayLike<number>, h = 1e-5): Float64Array {
  const point = Float64Array.from(x);
  const gradient = new Float64Array(point.length);
  for (let i = 0; i < point.length; i++) {
    const saved = point[i];
    point[i] = saved + h;
    const plus = f(point);
    point[i] = saved - h;
    const minus = f(point);
    point[i] = saved;
    gradient[i] = (plus - minus) / (2 * h);
  }
  return gradient;
}

/** Σ w ⊙ out: the random scalar loss whose gradient with respect to out is w. */
export function weightedSum(w: ArrayLike<number>, out: ArrayLike<number>): number {
  let sum = 0;
  for (let i = 0; i < out.length; i++) sum += w[i] * out[i];
  return sum;
}
