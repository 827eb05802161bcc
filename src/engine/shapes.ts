/** Shape rules every backend checks the same way before it launches an op (messages name the op and shapes). */
import type { DType, HostArray, MatmulOptions, Tensor } from "./backend.js";

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

/** The sizes of an attention op, resolved from its shapes. */
export interface AttentionShape {
  queries: number;
  keys: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  /** "op: q [..], k [..], …", the prefix of every shape error. */
  describe: string;
}

/**
 * Shape checks shared by the attention ops: q, out [Tq, H, hd]; k, v [Tk, KV, hd] with H a multiple of KV;
 * the per-query range tensors [Tq]. `more` only adds tensors to the error message (dtypes are the backend's).
 */
export function resolveAttentionShape(op: string, main: { q: Tensor; k: Tensor; v: Tensor; out: Tensor },
  rangeTensors: Record<string, Tensor>, more: Record<string, Tensor> = {}): AttentionShape {
  const { q, k, v, out } = main;
  const describe = describeShapes(op, [["q", q], ["k", k], ["v", v], ...Object.entries(rangeTensors), ["out", out], ...Object.entries(more)]);
  if (q.shape.length !== 3 || k.shape.length !== 3) throw new Error(`${describe}: q must be [Tq, H, hd] and k [Tk, KV, hd]`);
  const [queries, heads, headDim] = q.shape;
  const [keys, kvHeads, kHeadDim] = k.shape;
  if (kHeadDim !== headDim) throw new Error(`${describe}: head dims ${headDim} and ${kHeadDim} differ`);
  if (kvHeads === 0 || heads % kvHeads !== 0) throw new Error(`${describe}: heads ${heads} must be a multiple of kv heads ${kvHeads}`);
  if (!sameDims(v.shape, k.shape)) throw new Error(`${describe}: v must have k's shape`);
  if (!Object.values(rangeTensors).every((t) => sameDims(t.shape, [queries]))) {
    throw new Error(`${describe}: ${Object.keys(rangeTensors).join(" and ")} must be [${queries}]`);
  }
  if (!sameDims(out.shape, q.shape)) throw new Error(`${describe}: out must have q's shape`);
  return { queries, keys, heads, kvHeads, headDim, describe };
}

/** attentionForTraining / attentionBackward: lse [Tq, H]; dOut and dq like q, dk and dv like k (when given). */
export function checkAttentionTrainingShapes(a: AttentionShape,
  t: { lse: Tensor; dOut?: Tensor; dq?: Tensor; dk?: Tensor; dv?: Tensor }): void {
  const qShape = [a.queries, a.heads, a.headDim], kvShape = [a.keys, a.kvHeads, a.headDim];
  if (t.dOut && t.dq && (!sameDims(t.dOut.shape, qShape) || !sameDims(t.dq.shape, qShape))) throw new Error(`${a.describe}: dOut and dq must have q's shape`);
  if (t.dk && t.dv && (!sameDims(t.dk.shape, kvShape) || !sameDims(t.dv.shape, kvShape))) throw new Error(`${a.describe}: dk and dv must have k's shape`);
  if (!sameDims(t.lse.shape, [a.queries, a.heads])) throw new Error(`${a.describe}: lse must be [${a.queries},${a.heads}]`);
}

/** treeAttention's extra key lists: extraOffsets [Tq + 1], extraKeys 1-D. */
export function checkTreeAttentionShapes(a: AttentionShape, extraOffsets: Tensor, extraKeys: Tensor): void {
  if (!sameDims(extraOffsets.shape, [a.queries + 1])) throw new Error(`${a.describe}: extraOffsets must be [${a.queries + 1}]`);
  if (extraKeys.shape.length !== 1) throw new Error(`${a.describe}: extraKeys must be 1-D`);
}

/** rope and ropeBackward: x (dOut) [T, heads, headDim] with headDim even, positions [T], invFreq [headDim/2], out (dx) like x. */
export function resolveRopeShape(op: string, [inName, x]: readonly [string, Tensor], positions: Tensor, invFreq: Tensor,
  [outName, out]: readonly [string, Tensor]): { tokens: number; heads: number; headDim: number; describe: string } {
  const describe = describeShapes(op, [[inName, x], ["positions", positions], ["invFreq", invFreq], [outName, out]]);
  if (x.shape.length !== 3) throw new Error(`${describe}: ${inName} must be [T, heads, headDim]`);
  const [tokens, heads, headDim] = x.shape;
  if (headDim % 2 !== 0) throw new Error(`${describe}: headDim ${headDim} must be even`);
  if (!sameDims(positions.shape, [tokens])) throw new Error(`${describe}: positions must be [${tokens}]`);
  if (!sameDims(invFreq.shape, [headDim / 2])) throw new Error(`${describe}: invFreq must be [${headDim / 2}]`);
  if (!sameDims(out.shape, x.shape)) throw new Error(`${describe}: ${outName} must have ${inName}'s shape`);
  return { tokens, heads, headDim, describe };
}

/** scatterRows: src [rows, width] and dst [dstRows, width], index [rows]. */
export function resolveScatterRowsShape(src: Tensor, index: Tensor, dst: Tensor): { rows: number; dstRows: number; width: number; describe: string } {
  const describe = describeShapes("scatterRows", [["src", src], ["index", index], ["dst", dst]]);
  if (src.shape.length !== 2 || dst.shape.length !== 2) throw new Error(`${describe}: src and dst must be 2-D`);
  const [rows, width] = src.shape;
  if (width !== dst.shape[1]) throw new Error(`${describe}: row widths ${width} and ${dst.shape[1]} differ`);
  if (!sameDims(index.shape, [rows])) throw new Error(`${describe}: index must be [${rows}]`);
  return { rows, dstRows: dst.shape[0], width, describe };
}

/** convert: src and dst of one shape (any float dtypes). */
/** reshape's check: the new shape has t's element count. Returns a copy of the shape for the view. */
export function checkReshape(t: Tensor, shape: readonly number[]): number[] {
  const size = shapeSize(shape);
  if (size !== t.size) throw new Error(`reshape: ${dtypeShape(t)} has ${t.size} elements, [${shape.join(",")}] needs ${size}`);
  return [...shape];
}

/** sliceRows's check (rows [start, start + count) of t's first axis): the view's shape and its first element. */
export function resolveSliceRows(t: Tensor, start: number, count: number): { shape: number[]; offset: number; rowSize: number } {
  const rows = t.shape[0];
  if (t.shape.length === 0 || !Number.isSafeInteger(start) || !Number.isSafeInteger(count) || start < 0 || count < 0 ||
    start + count > rows) {
    throw new Error(`sliceRows: rows [${start}, ${start} + ${count}) outside ${dtypeShape(t)}`);
  }
  const rowSize = rows === 0 ? 0 : t.size / rows;
  return { shape: [count, ...t.shape.slice(1)], offset: start * rowSize, rowSize };
}

export function checkConvertShape(src: Tensor, dst: Tensor): void {
  if (!sameDims(src.shape, dst.shape)) throw new Error(`convert: src ${dtypeShape(src)} and dst ${dtypeShape(dst)} must have the same shape`);
}

/** "op: name [dims], …" in the given order; a null tensor reads "name null". */
function describeShapes(op: string, named: readonly (readonly [string, Tensor | null])[]): string {
  return `${op}: ${named.map(([name, t]) => `${name} ${t ? `[${t.shape.join(",")}]` : "null"}`).join(", ")}`;
}

/**
 * embedding (rows = out) and embeddingBackward (rows = dOut, table = dTable): ids [T], table [V, D], rows [T, D].
 * `order` lists the three names in the order the error message shows them.
 */
export function resolveEmbeddingShape(op: string, ids: Tensor, table: readonly [string, Tensor], rows: readonly [string, Tensor],
  order: readonly string[]): { vocab: number; dim: number; describe: string } {
  const byName = new Map<string, Tensor>([["ids", ids], table, rows]);
  const describe = describeShapes(op, order.map((name) => [name, byName.get(name)!] as const));
  const [tableName, tableTensor] = table;
  const [rowsName, rowsTensor] = rows;
  if (ids.shape.length !== 1 || tableTensor.shape.length !== 2) throw new Error(`${describe}: ids must be 1-D and ${tableName} 2-D`);
  const [vocab, dim] = tableTensor.shape;
  if (!sameDims(rowsTensor.shape, [ids.shape[0], dim])) throw new Error(`${describe}: ${rowsName} must be [${ids.shape[0]},${dim}]`);
  return { vocab, dim, describe };
}

/**
 * rmsnorm (likeX = out) and rmsnormBackward (likeX = dOut, dx; dWeight given, possibly null): x [..., D],
 * weight [D], every likeX tensor x's shape, dWeight [D]. rows = x's size / D (0 when D = 0).
 */
export function resolveRmsnormShape(op: string, x: Tensor, weight: Tensor, likeX: readonly (readonly [string, Tensor])[],
  dWeight?: Tensor | null): { dim: number; rows: number; describe: string } {
  const named: (readonly [string, Tensor | null])[] = [["x", x], ["weight", weight], ...likeX];
  if (dWeight !== undefined) named.push(["dWeight", dWeight]);
  const describe = describeShapes(op, named);
  if (x.shape.length < 1) throw new Error(`${describe}: x needs at least 1 dim`);
  const dim = x.shape[x.shape.length - 1];
  if (!sameDims(weight.shape, [dim])) throw new Error(`${describe}: weight must be [${dim}]`);
  if (dWeight && !sameDims(dWeight.shape, [dim])) throw new Error(`${describe}: dWeight must be [${dim}]`);
  if (!likeX.every(([, t]) => sameDims(t.shape, x.shape))) throw new Error(`${describe}: ${likeX.map(([name]) => name).join(" and ")} must have x's shape`);
  return { dim, rows: dim === 0 ? 0 : x.size / dim, describe };
}

/** Elements of a shape; throws unless every dim is a non-negative integer and the count is exact in a double. */
export function shapeSize(shape: readonly number[]): number {
  let size = 1;
  for (const dim of shape) {
    if (!Number.isSafeInteger(dim) || dim < 0) throw new Error(`shape [${shape.join(",")}]: dims must be non-negative integers`);
    size *= dim;
  }
  if (!Number.isSafeInteger(size)) throw new Error(`shape [${shape.join(",")}]: too many elements`);
  return size;
}

/** "f32 [2,3]": a tensor in error messages. */
export function dtypeShape(t: Tensor): string {
  return `${t.dtype} [${t.shape.join(",")}]`;
}

const ARRAY_KIND: Record<DType, string> = { f32: "Float32Array", bf16: "Uint16Array", f16: "Uint16Array", i32: "Int32Array" };

function arrayMatches(data: HostArray, dtype: DType): boolean {
  if (dtype === "f32") return data instanceof Float32Array;
  if (dtype === "i32") return data instanceof Int32Array;
  return data instanceof Uint16Array;
}

/** Host data handed to upload()/weight(): the typed array of its dtype with exactly the shape's elements; returns that count. */
export function checkHostData(what: string, data: HostArray, dtype: DType, shape: readonly number[]): number {
  if (!arrayMatches(data, dtype)) throw new Error(`${what}: ${dtype} data must be a ${ARRAY_KIND[dtype]}`);
  const size = shapeSize(shape);
  if (data.length !== size) throw new Error(`${what}: ${data.length} elements for shape [${shape.join(",")}] (${size} expected)`);
  return size;
}

/**
 * The log-softmax family over logits [R, V]: perRow tensors (targets, losses, out of a gather) must be [R],
 * likeLogits tensors (out, dLogits) logits' shape. The message lists logits, then perRow, then likeLogits.
 */
export function resolveLogitsShape(op: string, logits: Tensor, perRow: readonly (readonly [string, Tensor])[],
  likeLogits: readonly (readonly [string, Tensor])[]): { rows: number; vocab: number; describe: string } {
  const describe = describeShapes(op, [["logits", logits], ...perRow, ...likeLogits]);
  if (logits.shape.length !== 2) throw new Error(`${describe}: logits must be [R, V]`);
  const [rows, vocab] = logits.shape;
  if (!perRow.every(([, t]) => sameDims(t.shape, [rows]))) throw new Error(`${describe}: ${perRow.map(([name]) => name).join(" and ")} must be [${rows}]`);
  for (const [name, t] of likeLogits) if (!sameDims(t.shape, logits.shape)) throw new Error(`${describe}: ${name} must have logits' shape`);
  return { rows, vocab, describe };
}

/** Elementwise ops: every tensor the same shape (names for the message). */
export function checkSameShape(op: string, names: readonly string[], tensors: readonly Tensor[]): void {
  if (!tensors.every((t) => sameDims(t.shape, tensors[0].shape))) {
    throw new Error(`${op}: shapes differ: ${tensors.map((t, i) => `${names[i]} [${t.shape.join(",")}]`).join(", ")}`);
  }
}
