/**
 * The one seam every compute backend implements (DESIGN.md "The Backend interface").
 *
 * Activations are f32; weights may be f32, bf16 or f16 (matmul's `b`, embedding tables and norm weights);
 * ids and positions are i32. Shapes are row-major. Every op validates shapes and throws an Error whose
 * message starts with the op name and shows the offending shapes.
 */

export type DType = "f32" | "bf16" | "f16" | "i32";

/** Raw element storage for each dtype on the host: bf16/f16 are carried as their 16-bit patterns. */
export type HostArray = Float32Array | Uint16Array | Int32Array;

export interface Tensor {
  readonly dtype: DType;
  readonly shape: readonly number[];
  /** Number of elements (product of shape). */
  readonly size: number;
}

/** Precision of a training computation's products: f32 throughout, or bf16 operands with f32 accumulation. */
export const MATMUL_DTYPES = ["f32", "bf16"] as const;
export type MatmulDtype = (typeof MATMUL_DTYPES)[number];

/** Options of the training attention ops (attentionForTraining, attentionBackward). */
export interface AttentionTrainingOptions {
  /**
   * "bf16" lets a backend compute q·kᵀ, P·v and the backward's products from bf16-rounded operands with f32
   * accumulation (tensor cores), as PyTorch's bf16 autocast attention does; softmax statistics, D = dO·O and the
   * outputs stay f32. "f32" (default): f32 throughout. The CPU and WebGPU backends compute in f32 either way;
   * CUDA uses its tensor-core kernels for head dims 32, 64 and 128.
   */
  matmulDtype?: MatmulDtype;
}

export interface MatmulOptions {
  /** Use aᵀ: `a` is stored [..., K, M] instead of [..., M, K]. */
  transA?: boolean;
  /** Use bᵀ: `b` is stored [..., N, K] instead of [..., K, N] (HF Linear weights are [out, in]: transB). */
  transB?: boolean;
  /** Add into `out` instead of overwriting it. */
  accumulate?: boolean;
  /** Scale the product: out (+)= alpha · op(a)·op(b) (default 1; LoRA's alpha/r). */
  alpha?: number;
}

export interface AdamWHyper {
  learningRate: number;
  beta1: number;
  beta2: number;
  epsilon: number;
  weightDecay: number;
  /** 1-based step number t, for the bias corrections 1 − βᵗ. */
  step: number;
}

export interface Backend {
  /** Short name: "cpu", "webgpu", "cuda". */
  readonly name: string;
  /** One line about what this backend runs on (ISA, adapter, device) and how it was chosen. */
  describe(): string;

  // ---- buffers ----
  /** A tensor with unspecified contents. */
  alloc(dtype: DType, shape: readonly number[]): Tensor;
  /** Copy host data in (bf16/f16 given as raw 16-bit patterns in a Uint16Array). */
  upload(data: HostArray, dtype: DType, shape: readonly number[]): Tensor;
  /**
   * Use host data as a read-only weight. A backend may keep a view without copying (the CPU backend keeps
   * memory-mapped safetensors bytes in place); the caller must not mutate `data` afterwards.
   */
  weight(data: HostArray, dtype: DType, shape: readonly number[]): Tensor;
  /**
   * Copy out: float dtypes come back as f32, i32 as Int32Array. Asynchronous because a GPU readback is (it
   * waits for the queued work that writes `t`); the CPU backend resolves at once.
   */
  download(t: Tensor): Promise<Float32Array | Int32Array>;
  free(t: Tensor): void;
  /** A view of the same storage with another shape of equal size (no copy). */
  reshape(t: Tensor, shape: readonly number[]): Tensor;
  /** A view of rows [start, start + count) of a tensor seen as [rows, ...rest] (no copy). */
  sliceRows(t: Tensor, start: number, count: number): Tensor;

  // ---- ops (all outputs f32 unless stated) ----
  /**
   * out[b] (+)= op(a[b]) · op(b[b]) for each leading batch index. `a` is f32 [..., M, K]; `b` is f32/bf16/f16
   * [..., K, N], or 2-D and then shared by every batch; out is f32 [..., M, N].
   */
  matmul(a: Tensor, b: Tensor, out: Tensor, options?: MatmulOptions): void;
  /** out[t] = table[ids[t]]: ids i32 [T], table [V, d] (any float dtype), out f32 [T, d]. */
  embedding(ids: Tensor, table: Tensor, out: Tensor): void;
  /** HF Llama RMSNorm over the last dim: out = x · rsqrt(mean(x²) + eps) · weight; x, out [R, d], weight [d]. */
  rmsnorm(x: Tensor, weight: Tensor, eps: number, out: Tensor): void;
  /**
   * Rotary embedding, HF half-split convention: in each head, element i pairs with i + hd/2 and is rotated by
   * angle positions[t] · invFreq[i]. x, out f32 [T, heads, hd] (may be the same tensor); positions i32 [T];
   * invFreq f32 [hd/2].
   */
  rope(x: Tensor, positions: Tensor, invFreq: Tensor, out: Tensor): void;
  /**
   * Softmax attention with per-query key ranges: query t attends keys j with keyStart[t] ≤ j < keyEnd[t]
   * (causal masks, packed sequences and KV caches are all expressed this way). q, out [Tq, H, hd];
   * k, v [Tk, KV, hd] with H a multiple of KV (query head h reads kv head ⌊h / (H/KV)⌋); keyStart,
   * keyEnd i32 [Tq]. An empty range gives zeros.
   */
  attention(q: Tensor, k: Tensor, v: Tensor, keyStart: Tensor, keyEnd: Tensor, scale: number, out: Tensor): void;
  /** out = silu(gate) ⊙ up, elementwise (same shapes). */
  swiglu(gate: Tensor, up: Tensor, out: Tensor): void;
  /** out = a + b, elementwise (same shapes; out may alias a or b). */
  add(a: Tensor, b: Tensor, out: Tensor): void;
  /** Row-wise log-softmax: logits, out [R, V]. */
  logSoftmax(logits: Tensor, out: Tensor): void;
  /**
   * out[r] = log softmax(logits[r])[targets[r]] without writing the normalised row: logits [R, V],
   * targets i32 [R] (a negative target gives NaN), out f32 [R].
   */
  logSoftmaxGather(logits: Tensor, targets: Tensor, out: Tensor): void;
  /** dst[index[t], :] = src[t, :]: src [T, w], dst [R, w] (same dtype), index i32 [T] in [0, R). */
  scatterRows(src: Tensor, index: Tensor, dst: Tensor): void;

  // ---- scoring ----
  /**
   * Tree attention for prefix-shared scoring: query t attends the contiguous keys [prefixStart[t], prefixEnd[t])
   * plus the individual keys extraKeys[extraOffsets[t] .. extraOffsets[t+1]) (its trie ancestors and itself).
   * q, out [Tq, H, hd]; k, v [Tk, KV, hd]; prefixStart/prefixEnd i32 [Tq]; extraOffsets i32 [Tq+1];
   * extraKeys i32 [E]. Equals `attention` when every extra list is empty.
   */
  treeAttention(q: Tensor, k: Tensor, v: Tensor, prefixStart: Tensor, prefixEnd: Tensor, extraOffsets: Tensor,
    extraKeys: Tensor, scale: number, out: Tensor): void;

  // ---- training (backward ops: parameter gradients accumulate (+=), activation gradients are written (=)) ----
  /**
   * attention() that also writes the log-sum-exp of each query's scaled scores: lse f32 [Tq, H] (for backward;
   * −inf for an empty key range).
   */
  attentionForTraining(q: Tensor, k: Tensor, v: Tensor, keyStart: Tensor, keyEnd: Tensor, scale: number,
    out: Tensor, lse: Tensor, options?: AttentionTrainingOptions): void;
  /** dq, dk, dv (written) from dOut, given the forward's inputs, output and lse (same shapes as forward). */
  attentionBackward(q: Tensor, k: Tensor, v: Tensor, out: Tensor, dOut: Tensor, lse: Tensor, keyStart: Tensor,
    keyEnd: Tensor, scale: number, dq: Tensor, dk: Tensor, dv: Tensor, options?: AttentionTrainingOptions): void;
  /** dTable[ids[t]] += dOut[t]: ids i32 [T], dOut f32 [T, d], dTable f32 [V, d]. */
  embeddingBackward(ids: Tensor, dOut: Tensor, dTable: Tensor): void;
  /** dx (written) and, unless null, dWeight += Σ_rows (f32 [d]) for out = rmsnorm(x, weight). */
  rmsnormBackward(x: Tensor, weight: Tensor, dOut: Tensor, eps: number, dx: Tensor, dWeight: Tensor | null): void;
  /** dx = RoPE⁻¹(dOut) (rotation by −angle); dx may alias dOut. */
  ropeBackward(dOut: Tensor, positions: Tensor, invFreq: Tensor, dx: Tensor): void;
  /** dGate, dUp (written) for out = silu(gate) ⊙ up. */
  swigluBackward(gate: Tensor, up: Tensor, dOut: Tensor, dGate: Tensor, dUp: Tensor): void;
  /**
   * Fused cross-entropy: losses[r] = logsumexp(logits[r]) − logits[r, targets[r]] (0 where target is −1), and
   * dLogits[r] = gradScale · (softmax(logits[r]) − onehot(targets[r])) (all 0 where target is −1). logits,
   * dLogits f32 [R, V] (dLogits may alias logits: the logits are then overwritten); targets i32 [R], each −1 or in
   * [0, V) (any other value is an error); losses f32 [R].
   */
  crossEntropy(logits: Tensor, targets: Tensor, gradScale: number, losses: Tensor, dLogits: Tensor): void;
  /** One AdamW step on f32 param with f32 grad, m, v (REFERENCE §6: decay first, eps outside the sqrt). */
  adamw(param: Tensor, grad: Tensor, m: Tensor, v: Tensor, hyper: AdamWHyper): void;
  /** Σ x² over all elements (f32 tensor), computed in f64 (or f32 partial sums combined in f64) and read back. */
  sumOfSquares(x: Tensor): Promise<number>;
  /** out = x · factor elementwise (out may alias x). */
  scale(x: Tensor, factor: number, out: Tensor): void;
  /** Set every element to value. */
  fill(t: Tensor, value: number): void;
  /** Copy with dtype conversion between f32/bf16/f16 (same shape; f32 → 16-bit rounds to nearest even). */
  convert(src: Tensor, dst: Tensor): void;

  /** Wait until queued work is finished (a no-op for synchronous backends). */
  sync(): Promise<void>;
}
