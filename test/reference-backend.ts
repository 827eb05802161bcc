/**
 * A float64 Backend in plain TypeScript loops, for tests of model-level code (training forward/backward,
 * LoRA, the training loop) independently of any real backend's kernels, and for finite-difference checks
 * in float64: every float tensor is stored as a Float64Array (bf16/f16 uploads are decoded exactly, and
 * `convert` to a 16-bit dtype rounds the stored values the way the dtype would), so a whole-model loss is
 * computed to ~1e-15 relative and central differences with a step of 1e-4 are accurate to ~1e-8.
 *
 * `download` follows the interface (f32 out); `downloadF64` gives the exact stored values.
 */
import type { AdamWHyper, Backend, DType, HostArray, MatmulOptions, Tensor } from "../src/engine/backend.js";
import { bf16ToNumber, f16ToNumber, numberToBf16, numberToF16 } from "./reference.js";

class ReferenceTensor implements Tensor {
  readonly size: number;
  constructor(
    readonly dtype: DType,
    readonly shape: readonly number[],
    readonly data: Float64Array,
  ) {
    this.size = shape.reduce((p, d) => p * d, 1);
    if (data.length !== this.size) throw new Error(`reference tensor: ${data.length} values for shape [${shape.join(",")}]`);
  }
}

function roundTo(dtype: DType, x: number): number {
  if (dtype === "bf16") return bf16ToNumber(numberToBf16(x));
  if (dtype === "f16") return f16ToNumber(numberToF16(x));
  return x;
}

export class ReferenceBackend implements Backend {
  readonly name = "reference-f64";

  describe(): string {
    return "reference (float64 TypeScript loops, tests only)";
  }

  private t(x: Tensor): ReferenceTensor {
    if (!(x instanceof ReferenceTensor)) throw new Error("reference backend: foreign tensor");
    return x;
  }

  alloc(dtype: DType, shape: readonly number[]): Tensor {
    return new ReferenceTensor(dtype, [...shape], new Float64Array(shape.reduce((p, d) => p * d, 1)));
  }

  upload(data: HostArray, dtype: DType, shape: readonly number[]): Tensor {
    let values: Float64Array;
    if (dtype === "bf16") values = Float64Array.from(data as Uint16Array, bf16ToNumber);
    else if (dtype === "f16") values = Float64Array.from(data as Uint16Array, f16ToNumber);
    else values = Float64Array.from(data as Float32Array | Int32Array);
    return new ReferenceTensor(dtype, [...shape], values);
  }

  /** Upload float64 values as an f32 tensor without rounding them to f32 (for float64 experiments). */
  uploadF64(values: Float64Array, shape: readonly number[]): Tensor {
    return new ReferenceTensor("f32", [...shape], Float64Array.from(values));
  }

  weight(data: HostArray, dtype: DType, shape: readonly number[]): Tensor {
    return this.upload(data, dtype, shape);
  }

  async download(x: Tensor): Promise<Float32Array | Int32Array> {
    const t = this.t(x);
    return t.dtype === "i32" ? Int32Array.from(t.data) : Float32Array.from(t.data);
  }

  downloadF64(x: Tensor): Float64Array {
    return Float64Array.from(this.t(x).data);
  }

  /** Read / overwrite one stored element (finite-difference perturbations). */
  peek(x: Tensor, index: number): number {
    return this.t(x).data[index];
  }

  poke(x: Tensor, index: number, value: number): void {
    this.t(x).data[index] = value;
  }

  free(): void {}

  reshape(x: Tensor, shape: readonly number[]): Tensor {
    const t = this.t(x);
    return new ReferenceTensor(t.dtype, [...shape], t.data);
  }

  sliceRows(x: Tensor, start: number, count: number): Tensor {
    const t = this.t(x);
    const row = t.shape[0] === 0 ? 0 : t.size / t.shape[0];
    if (start < 0 || start + count > t.shape[0]) throw new Error(`sliceRows: [${start}, +${count}) outside [${t.shape.join(",")}]`);
    return new ReferenceTensor(t.dtype, [count, ...t.shape.slice(1)], t.data.subarray(start * row, (start + count) * row));
  }

  matmul(a: Tensor, b: Tensor, out: Tensor, options: MatmulOptions = {}): void {
    const A = this.t(a), B = this.t(b), O = this.t(out);
    const { transA = false, transB = false, accumulate = false, alpha = 1 } = options;
    const [aRows, aCols] = A.shape.slice(-2);
    const [bRows, bCols] = B.shape.slice(-2);
    const m = transA ? aCols : aRows, k = transA ? aRows : aCols;
    const n = transB ? bRows : bCols, kb = transB ? bCols : bRows;
    if (k !== kb) throw new Error(`matmul: inner dims ${k} and ${kb} differ ([${A.shape}] · [${B.shape}])`);
    const batch = A.size / (aRows * aCols);
    const bShared = B.shape.length === 2;
    if (O.size !== batch * m * n) throw new Error(`matmul: out [${O.shape}] must hold ${batch}×${m}×${n}`);
    for (let s = 0; s < batch; s++) {
      const ao = s * m * k, bo = bShared ? 0 : s * k * n, oo = s * m * n;
      for (let i = 0; i < m; i++) {
        for (let j = 0; j < n; j++) {
          let acc = 0;
          for (let p = 0; p < k; p++) {
            const av = transA ? A.data[ao + p * m + i] : A.data[ao + i * k + p];
            const bv = transB ? B.data[bo + j * k + p] : B.data[bo + p * n + j];
            acc += av * bv;
          }
          O.data[oo + i * n + j] = (accumulate ? O.data[oo + i * n + j] : 0) + alpha * acc;
        }
      }
    }
  }

  embedding(ids: Tensor, table: Tensor, out: Tensor): void {
    const I = this.t(ids), W = this.t(table), O = this.t(out);
    const d = W.shape[1];
    for (let t = 0; t < I.size; t++) O.data.set(W.data.subarray(I.data[t] * d, (I.data[t] + 1) * d), t * d);
  }

  private inverseRms(x: Float64Array, offset: number, d: number, eps: number): number {
    let ss = 0;
    for (let i = 0; i < d; i++) ss += x[offset + i] * x[offset + i];
    return 1 / Math.sqrt(ss / d + eps);
  }

  rmsnorm(x: Tensor, weight: Tensor, eps: number, out: Tensor): void {
    const X = this.t(x), W = this.t(weight), O = this.t(out);
    const d = W.size;
    for (let r = 0; r * d < X.size; r++) {
      const inv = this.inverseRms(X.data, r * d, d, eps);
      for (let i = 0; i < d; i++) O.data[r * d + i] = X.data[r * d + i] * inv * W.data[i];
    }
  }

  private rotate(x: Tensor, positions: Tensor, invFreq: Tensor, out: Tensor, sign: number): void {
    const X = this.t(x), P = this.t(positions), F = this.t(invFreq), O = this.t(out);
    const [tokens, heads, hd] = X.shape;
    const half = hd / 2;
    for (let t = 0; t < tokens; t++) {
      for (let h = 0; h < heads; h++) {
        const o = (t * heads + h) * hd;
        for (let i = 0; i < half; i++) {
          const angle = sign * P.data[t] * F.data[i];
          const c = Math.cos(angle), s = Math.sin(angle);
          const x1 = X.data[o + i], x2 = X.data[o + i + half];
          O.data[o + i] = x1 * c - x2 * s;
          O.data[o + i + half] = x2 * c + x1 * s;
        }
      }
    }
  }

  rope(x: Tensor, positions: Tensor, invFreq: Tensor, out: Tensor): void {
    this.rotate(x, positions, invFreq, out, 1);
  }

  private attend(q: Tensor, k: Tensor, v: Tensor, keyStart: Tensor, keyEnd: Tensor, scale: number, out: Tensor, lse: Tensor | null): void {
    const Q = this.t(q), K = this.t(k), V = this.t(v), S = this.t(keyStart), E = this.t(keyEnd), O = this.t(out);
    const L = lse ? this.t(lse) : null;
    const [tq, heads, hd] = Q.shape;
    const kvHeads = K.shape[1], group = heads / kvHeads;
    for (let t = 0; t < tq; t++) {
      for (let h = 0; h < heads; h++) {
        const kvh = Math.floor(h / group), qo = (t * heads + h) * hd;
        const scores: number[] = [];
        for (let j = S.data[t]; j < E.data[t]; j++) {
          let s = 0;
          for (let c = 0; c < hd; c++) s += Q.data[qo + c] * K.data[(j * kvHeads + kvh) * hd + c];
          scores.push(s * scale);
        }
        O.data.fill(0, qo, qo + hd);
        if (scores.length === 0) {
          if (L) L.data[t * heads + h] = -Infinity;
          continue;
        }
        const mx = Math.max(...scores);
        let total = 0;
        for (const s of scores) total += Math.exp(s - mx);
        const logSum = mx + Math.log(total);
        if (L) L.data[t * heads + h] = logSum;
        scores.forEach((s, idx) => {
          const p = Math.exp(s - logSum), j = S.data[t] + idx;
          for (let c = 0; c < hd; c++) O.data[qo + c] += p * V.data[(j * kvHeads + kvh) * hd + c];
        });
      }
    }
  }

  attention(q: Tensor, k: Tensor, v: Tensor, keyStart: Tensor, keyEnd: Tensor, scale: number, out: Tensor): void {
    this.attend(q, k, v, keyStart, keyEnd, scale, out, null);
  }

  swiglu(gate: Tensor, up: Tensor, out: Tensor): void {
    const G = this.t(gate), U = this.t(up), O = this.t(out);
    for (let i = 0; i < G.size; i++) O.data[i] = (G.data[i] / (1 + Math.exp(-G.data[i]))) * U.data[i];
  }

  add(a: Tensor, b: Tensor, out: Tensor): void {
    const A = this.t(a), B = this.t(b), O = this.t(out);
    for (let i = 0; i < A.size; i++) O.data[i] = A.data[i] + B.data[i];
  }

  logSoftmax(logits: Tensor, out: Tensor): void {
    const Z = this.t(logits), O = this.t(out);
    const v = Z.shape[1];
    for (let r = 0; r < Z.shape[0]; r++) {
      const lse = logSumExp(Z.data, r * v, v);
      for (let j = 0; j < v; j++) O.data[r * v + j] = Z.data[r * v + j] - lse;
    }
  }

  logSoftmaxGather(logits: Tensor, targets: Tensor, out: Tensor): void {
    const Z = this.t(logits), T = this.t(targets), O = this.t(out);
    const v = Z.shape[1];
    for (let r = 0; r < Z.shape[0]; r++) O.data[r] = T.data[r] < 0 ? NaN : Z.data[r * v + T.data[r]] - logSumExp(Z.data, r * v, v);
  }

  scatterRows(src: Tensor, index: Tensor, dst: Tensor): void {
    const S = this.t(src), I = this.t(index), D = this.t(dst);
    const w = S.shape[1];
    for (let t = 0; t < I.size; t++) D.data.set(S.data.subarray(t * w, (t + 1) * w), I.data[t] * w);
  }

  treeAttention(): void {
    throw new Error("treeAttention: not in the reference backend");
  }

  attentionForTraining(q: Tensor, k: Tensor, v: Tensor, keyStart: Tensor, keyEnd: Tensor, scale: number, out: Tensor, lse: Tensor): void {
    this.attend(q, k, v, keyStart, keyEnd, scale, out, lse);
  }

  attentionBackward(q: Tensor, k: Tensor, v: Tensor, out: Tensor, dOut: Tensor, lse: Tensor, keyStart: Tensor,
    keyEnd: Tensor, scale: number, dq: Tensor, dk: Tensor, dv: Tensor): void {
    const Q = this.t(q), K = this.t(k), V = this.t(v), O = this.t(out), dO = this.t(dOut), L = this.t(lse);
    const S = this.t(keyStart), E = this.t(keyEnd), dQ = this.t(dq), dK = this.t(dk), dV = this.t(dv);
    const [tq, heads, hd] = Q.shape;
    const kvHeads = K.shape[1], group = heads / kvHeads;
    dQ.data.fill(0);
    dK.data.fill(0);
    dV.data.fill(0);
    for (let t = 0; t < tq; t++) {
      for (let h = 0; h < heads; h++) {
        const kvh = Math.floor(h / group), qo = (t * heads + h) * hd;
        // D = dOut · out = Σ_j p_j (dOut · v_j)
        let dot = 0;
        for (let c = 0; c < hd; c++) dot += dO.data[qo + c] * O.data[qo + c];
        for (let j = S.data[t]; j < E.data[t]; j++) {
          const ko = (j * kvHeads + kvh) * hd;
          let s = 0, dp = 0;
          for (let c = 0; c < hd; c++) {
            s += Q.data[qo + c] * K.data[ko + c];
            dp += dO.data[qo + c] * V.data[ko + c];
          }
          const p = Math.exp(s * scale - L.data[t * heads + h]);
          const ds = p * (dp - dot); // dScore_j = p_j (dP_j − D)
          for (let c = 0; c < hd; c++) {
            dQ.data[qo + c] += scale * ds * K.data[ko + c];
            dK.data[ko + c] += scale * ds * Q.data[qo + c];
            dV.data[ko + c] += p * dO.data[qo + c];
          }
        }
      }
    }
  }

  embeddingBackward(ids: Tensor, dOut: Tensor, dTable: Tensor): void {
    const I = this.t(ids), G = this.t(dOut), D = this.t(dTable);
    const d = D.shape[1];
    for (let t = 0; t < I.size; t++) for (let c = 0; c < d; c++) D.data[I.data[t] * d + c] += G.data[t * d + c];
  }

  rmsnormBackward(x: Tensor, weight: Tensor, dOut: Tensor, eps: number, dx: Tensor, dWeight: Tensor | null): void {
    const X = this.t(x), W = this.t(weight), G = this.t(dOut), dX = this.t(dx);
    const dW = dWeight ? this.t(dWeight) : null;
    const d = W.size;
    for (let r = 0; r * d < X.size; r++) {
      const o = r * d;
      const inv = this.inverseRms(X.data, o, d, eps);
      // y_i = x_i·inv·w_i; dx_i = inv·w_i·g_i − inv³/d · x_i · Σ_j w_j g_j x_j
      let dot = 0;
      for (let i = 0; i < d; i++) dot += W.data[i] * G.data[o + i] * X.data[o + i];
      for (let i = 0; i < d; i++) {
        if (dW) dW.data[i] += G.data[o + i] * X.data[o + i] * inv;
        dX.data[o + i] = inv * W.data[i] * G.data[o + i] - ((inv * inv * inv) / d) * X.data[o + i] * dot;
      }
    }
  }

  ropeBackward(dOut: Tensor, positions: Tensor, invFreq: Tensor, dx: Tensor): void {
    this.rotate(dOut, positions, invFreq, dx, -1);
  }

  swigluBackward(gate: Tensor, up: Tensor, dOut: Tensor, dGate: Tensor, dUp: Tensor): void {
    const G = this.t(gate), U = this.t(up), D = this.t(dOut), dG = this.t(dGate), dU = this.t(dUp);
    for (let i = 0; i < G.size; i++) {
      const g = G.data[i], sig = 1 / (1 + Math.exp(-g)), grad = D.data[i], u = U.data[i];
      dG.data[i] = grad * u * sig * (1 + g * (1 - sig));
      dU.data[i] = grad * g * sig;
    }
  }

  crossEntropy(logits: Tensor, targets: Tensor, gradScale: number, losses: Tensor, dLogits: Tensor): void {
    const Z = this.t(logits), T = this.t(targets), Lo = this.t(losses), dZ = this.t(dLogits);
    const v = Z.shape[1];
    for (let r = 0; r < Z.shape[0]; r++) {
      const o = r * v, y = T.data[r];
      if (y < 0) {
        Lo.data[r] = 0;
        dZ.data.fill(0, o, o + v);
        continue;
      }
      const lse = logSumExp(Z.data, o, v);
      Lo.data[r] = lse - Z.data[o + y];
      for (let j = 0; j < v; j++) dZ.data[o + j] = gradScale * (Math.exp(Z.data[o + j] - lse) - (j === y ? 1 : 0));
    }
  }

  adamw(param: Tensor, grad: Tensor, m: Tensor, v: Tensor, h: AdamWHyper): void {
    const P = this.t(param), G = this.t(grad), M = this.t(m), V = this.t(v);
    const c1 = 1 - h.beta1 ** h.step, c2 = 1 - h.beta2 ** h.step;
    for (let i = 0; i < P.size; i++) {
      const g = G.data[i];
      P.data[i] -= h.learningRate * h.weightDecay * P.data[i];
      M.data[i] = h.beta1 * M.data[i] + (1 - h.beta1) * g;
      V.data[i] = h.beta2 * V.data[i] + (1 - h.beta2) * g * g;
      P.data[i] -= (h.learningRate * (M.data[i] / c1)) / (Math.sqrt(V.data[i] / c2) + h.epsilon);
    }
  }

  async sumOfSquares(x: Tensor): Promise<number> {
    let s = 0;
    for (const value of this.t(x).data) s += value * value;
    return s;
  }

  scale(x: Tensor, factor: number, out: Tensor): void {
    const X = this.t(x), O = this.t(out);
    for (let i = 0; i < X.size; i++) O.data[i] = X.data[i] * factor;
  }

  fill(x: Tensor, value: number): void {
    this.t(x).data.fill(value);
  }

  convert(src: Tensor, dst: Tensor): void {
    const S = this.t(src), D = this.t(dst);
    for (let i = 0; i < S.size; i++) D.data[i] = roundTo(D.dtype, S.data[i]);
  }

  async sync(): Promise<void> {}
}

function logSumExp(z: Float64Array, offset: number, v: number): number {
  let mx = -Infinity;
  for (let j = 0; j < v; j++) mx = Math.max(mx, z[offset + j]);
  let sum = 0;
  for (let j = 0; j < v; j++) sum += Math.exp(z[offset + j] - mx);
  return mx + Math.log(sum);
}
