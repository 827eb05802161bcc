/** Shape rules every backend checks the same way before it launches an op (messages name the op and shapes). */
import type { MatmulOptions, Tensor } from "./backend.js";

export function sameDims(x: readonly number[], y: readonly number[]): boolean {
  return x.length === y.length && x.every((d, i) => d === y[i]);
}

/** The sizes of out[b] (+)= alpha · op(a[b]) · op(b[b]), resolved from the shapes and options. */
export interface MatmulShape {
  batch: number;
  m: number;
  n: number;
  k: number;
  transA: boolean;
  transB: boolean;
  /** b has batch dims (else one 2-D b is shared by every batch). */
  bBatched: boolean;
  accumulate: boolean;
  alpha: number;
  /** "matmul: a [..] · bᵀ [..] → out [..]", the prefix of every shape error. */
  describe: string;
}

/** Check matmul's shapes (see Backend.matmul) and return its sizes; throws naming the shapes. */
export function resolveMatmulShape(a: Tensor, b: Tensor, out: Tensor, options: MatmulOptions = {}): MatmulShape {
  const op = "matmul";
  const transA = options.transA ?? false, transB = options.transB ?? false;
  const alpha = options.alpha ?? 1;
  if (!Number.isFinite(alpha)) throw new Error(`${op}: alpha must be finite, got ${alpha}`);
  const describe = `${op}: a [${a.shape.join(",")}]${transA ? "ᵀ" : ""} · b${transB ? "ᵀ" : ""} [${b.shape.join(",")}] → out [${out.shape.join(",")}]`;
  if (a.shape.length < 2 || b.shape.length < 2) throw new Error(`${describe}: a and b need at least 2 dims`);
  const lead = a.shape.slice(0, -2);
  const [aRows, aCols] = a.shape.slice(-2);
  const [bRows, bCols] = b.shape.slice(-2);
  const m = transA ? aCols : aRows, k = transA ? aRows : aCols;
  const kb = transB ? bCols : bRows, n = transB ? bRows : bCols;
  if (k !== kb) throw new Error(`${describe}: inner dims ${k} and ${kb} differ`);
  const bLead = b.shape.slice(0, -2);
  const bBatched = bLead.length > 0;
  if (bBatched && !sameDims(bLead, lead)) {
    throw new Error(`${describe}: b's batch dims [${bLead.join(",")}] differ from a's [${lead.join(",")}] (b may also be 2-D, shared)`);
  }
  if (!sameDims(out.shape, [...lead, m, n])) throw new Error(`${describe}: out must be [${[...lead, m, n].join(",")}]`);
  const batch = lead.reduce((p, d) => p * d, 1);
  return { batch, m, n, k, transA, transB, bBatched, accumulate: options.accumulate ?? false, alpha, describe };
}
