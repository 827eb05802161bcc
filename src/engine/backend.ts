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

export interface MatmulOptions {
  /** Use aᵀ: `a` is stored [..., K, M] instead of [..., M, K]. */
  transA?: boolean;
  /** Use bᵀ: `b` is stored [..., N, K] instead of [..., K, N] (HF Linear weights are [out, in]: transB). */
  transB?: boolean;
  /** Add into `out` instead of overwriting it. */
  accumulate?: boolean;
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
  /** Copy out: float dtypes come back as f32, i32 as Int32Array. */
  download(t: Tensor): Float32Array | Int32Array;
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
  /** Wait until queued work is finished (a no-op for synchronous backends). */
  sync(): Promise<void>;
}
