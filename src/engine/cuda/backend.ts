/**
 * The CUDA backend: tensors are views of device allocations owned by the addon (freed by free() or by the
 * garbage collector), ops are the hand-written kernels of native/cuda queued on one stream. Shapes are checked
 * here so errors name the op and the shapes; the addon checks every size, offset and index value again before
 * a launch. i32 tensors keep a host mirror of their values (they are small: ids, targets, positions, key ranges)
 * so index errors are reported synchronously with the op that received them, as on the CPU.
 */
import { checkAttentionTrainingShapes, checkHostData, checkReshape, resolveSliceRows, checkSameShape, checkTreeAttentionShapes, resolveRopeShape, resolveScatterRowsShape, checkConvertShape, dtypeShape, resolveAttentionShape, resolveEmbeddingShape, resolveLogitsShape, resolveMatmulShape, resolveRmsnormShape, shapeSize } from "../shapes.js";
import type { AdamWHyper, AttentionTrainingOptions, Backend, DType, HostArray, MatmulOptions, Tensor } from "../backend.js";
import { loadNative, type CudaBufferHandle, type CudaProbe, type CudaTensorView, type NativeCudaOps } from "../native.js";

const ELEMENT_BYTES: Record<DType, number> = { f32: 4, i32: 4, bf16: 2, f16: 2 };

/** One device allocation, shared by a tensor and its views. */
class DeviceStorage {
  freed = false;
  constructor(readonly handle: CudaBufferHandle, readonly bytes: number) {}
}

export class CudaTensor implements Tensor, CudaTensorView {
  readonly size: number;

  constructor(
    readonly dtype: DType,
    readonly shape: readonly number[],
    readonly storage: DeviceStorage,
    readonly byteOffset: number,
    /** i32 only: the values, kept in step with the device by every op that writes i32. */
    readonly host?: Int32Array,
  ) {
    this.size = shapeSize(shape);
  }

  /** The allocation, as the addon reads it; throws once freed. */
  get handle(): CudaBufferHandle {
    if (this.storage.freed) throw new Error(`tensor ${dtypeShape(this)} was used after free()`);
    return this.storage.handle;
  }
}

/** The addon's CUDA functions, or why there are none / no usable device. */
export function cudaStatus(): { ops: NativeCudaOps; probe: CudaProbe } | { reason: string; probe?: CudaProbe } {
  let cuda;
  try {
    cuda = loadNative().cuda;
  } catch (error) {
    return { reason: (error as Error).message };
  }
  if (cuda === undefined) return { reason: "the native addon predates the CUDA backend: rebuild it (npm run build:native)" };
  const probe = cuda.probe();
  if (!probe.built) return { reason: probe.reason, probe };
  if (!probe.available) return { reason: probe.reason, probe };
  return { ops: cuda as NativeCudaOps, probe };
}

/** One line for `labor-llm info` / the backend list: the device, or why CUDA can't be used. */
export function describeCudaProbe(probe: CudaProbe): string {
  if (!probe.available) return probe.reason;
  const gib = ((probe.memoryBytes ?? 0) / 2 ** 30).toFixed(0);
  return `${probe.device} (compute ${probe.computeCapability}, ${gib} GiB, ${probe.multiprocessors} SMs; kernels built for ${probe.archs})`;
}

export class CudaBackend implements Backend {
  readonly name = "cuda";

  private constructor(private readonly native: NativeCudaOps, private readonly probe: CudaProbe) {}

  /** Throws, with the reason, when the addon has no CUDA or this machine has no usable GPU. */
  static create(): CudaBackend {
    const status = cudaStatus();
    if ("reason" in status) throw new Error(`cuda backend: unavailable: ${status.reason}`);
    return new CudaBackend(status.ops, status.probe);
  }

  describe(): string {
    return `cuda (${describeCudaProbe(this.probe)})`;
  }

  // ---- buffers ----

  alloc(dtype: DType, shape: readonly number[]): CudaTensor {
    const size = shapeSize(shape);
    const bytes = size * ELEMENT_BYTES[dtype];
    // i32 tensors start zeroed so the host mirror (zeros) describes them.
    const storage = new DeviceStorage(this.native.alloc(bytes, dtype === "i32"), bytes);
    return new CudaTensor(dtype, [...shape], storage, 0, dtype === "i32" ? new Int32Array(size) : undefined);
  }

  upload(data: HostArray, dtype: DType, shape: readonly number[]): CudaTensor {
    const size = checkHostData("upload", data, dtype, shape);
    const bytes = size * ELEMENT_BYTES[dtype];
    const storage = new DeviceStorage(this.native.alloc(bytes, false), bytes);
    const tensor = new CudaTensor(dtype, [...shape], storage, 0, dtype === "i32" ? (data as Int32Array).slice() : undefined);
    this.native.upload(tensor, data);
    return tensor;
  }

  /** GPU memory can't alias host memory here: a weight is uploaded like any tensor. */
  weight(data: HostArray, dtype: DType, shape: readonly number[]): CudaTensor {
    checkHostData("weight", data, dtype, shape);
    return this.upload(data, dtype, shape);
  }

  download(t: Tensor): Promise<Float32Array | Int32Array> {
    return this.native.download(this.tensor("download", "t", t));
  }

  free(t: Tensor): void {
    const tensor = this.tensor("free", "t", t);
    this.native.free(tensor.storage.handle);
    tensor.storage.freed = true;
  }

  reshape(t: Tensor, shape: readonly number[]): CudaTensor {
    const tensor = this.tensor("reshape", "t", t);
    return new CudaTensor(tensor.dtype, checkReshape(tensor, shape), tensor.storage, tensor.byteOffset, tensor.host);
  }

  sliceRows(t: Tensor, start: number, count: number): CudaTensor {
    const tensor = this.tensor("sliceRows", "t", t);
    const { shape, offset, rowSize } = resolveSliceRows(tensor, start, count);
    return new CudaTensor(tensor.dtype, shape, tensor.storage, tensor.byteOffset + offset * ELEMENT_BYTES[tensor.dtype],
      tensor.host?.subarray(offset, offset + count * rowSize));
  }

  // ---- ops ----

  matmul(a: Tensor, b: Tensor, out: Tensor, options: MatmulOptions = {}): void {
    const op = "matmul";
    const ta = this.tensor(op, "a", a, ["f32"]);
    const tb = this.tensor(op, "b", b, ["f32", "bf16", "f16"]);
    const to = this.tensor(op, "out", out, ["f32"]);
    const { batch, m, n, k, transA, transB, bBatched, accumulate, alpha } = resolveMatmulShape(ta, tb, to, options);
    this.native.matmul(ta, tb, to, batch, m, n, k, transA, transB, bBatched, accumulate, alpha);
  }

  embedding(ids: Tensor, table: Tensor, out: Tensor): void {
    const op = "embedding";
    const ti = this.tensor(op, "ids", ids, ["i32"]);
    const tt = this.tensor(op, "table", table, ["f32", "bf16", "f16"]);
    const to = this.tensor(op, "out", out, ["f32"]);
    const { vocab, dim } = resolveEmbeddingShape(op, ti, ["table", tt], ["out", to], ["ids", "table", "out"]);
    this.native.embedding(ti, tt, to, vocab, dim);
  }

  rmsnorm(x: Tensor, weight: Tensor, eps: number, out: Tensor): void {
    const op = "rmsnorm";
    const tx = this.tensor(op, "x", x, ["f32"]);
    const tw = this.tensor(op, "weight", weight, ["f32", "bf16", "f16"]);
    const to = this.tensor(op, "out", out, ["f32"]);
    const { dim, rows } = resolveRmsnormShape(op, tx, tw, [["out", to]]);
    this.native.rmsnorm(tx, tw, to, rows, dim, eps);
  }

  rope(x: Tensor, positions: Tensor, invFreq: Tensor, out: Tensor): void {
    const [tx, tp, tf, to, tokens, heads, headDim] = this.ropeShapes("rope", ["x", "out"], x, positions, invFreq, out);
    this.native.rope(tx, tp, tf, to, tokens, heads, headDim);
  }

  attention(q: Tensor, k: Tensor, v: Tensor, keyStart: Tensor, keyEnd: Tensor, scale: number, out: Tensor): void {
    const a = this.attentionShapes("attention", { q, k, v, out }, { keyStart, keyEnd });
    this.native.attention(a.q, a.k, a.v, a.ranges[0], a.ranges[1], a.out, a.queries, a.keys, a.heads, a.kvHeads,
      a.headDim, scale);
  }

  swiglu(gate: Tensor, up: Tensor, out: Tensor): void {
    const [g, u, o] = this.sameShape("swiglu", ["gate", "up", "out"], [gate, up, out]);
    this.native.swiglu(g, u, o, g.size);
  }

  add(a: Tensor, b: Tensor, out: Tensor): void {
    const [x, y, o] = this.sameShape("add", ["a", "b", "out"], [a, b, out]);
    this.native.add(x, y, o, x.size);
  }

  logSoftmax(logits: Tensor, out: Tensor): void {
    const op = "logSoftmax";
    const tl = this.tensor(op, "logits", logits, ["f32"]);
    const to = this.tensor(op, "out", out, ["f32"]);
    const { rows, vocab } = resolveLogitsShape(op, tl, [], [["out", to]]);
    this.native.logSoftmax(tl, to, rows, vocab);
  }

  logSoftmaxGather(logits: Tensor, targets: Tensor, out: Tensor): void {
    const op = "logSoftmaxGather";
    const tl = this.tensor(op, "logits", logits, ["f32"]);
    const tt = this.tensor(op, "targets", targets, ["i32"]);
    const to = this.tensor(op, "out", out, ["f32"]);
    const { rows, vocab } = resolveLogitsShape(op, tl, [["targets", tt], ["out", to]], []);
    this.native.logSoftmaxGather(tl, tt, to, rows, vocab);
  }

  scatterRows(src: Tensor, index: Tensor, dst: Tensor): void {
    const op = "scatterRows";
    const ts = this.tensor(op, "src", src);
    const ti = this.tensor(op, "index", index, ["i32"]);
    const td = this.tensor(op, "dst", dst, [ts.dtype]);
    const { rows, dstRows, width } = resolveScatterRowsShape(ts, ti, td);
    this.native.scatterRows(ts, ti, td, rows, dstRows, width);
    if (td.host && ts.host) {  // keep the i32 mirror in step (in order, so the last duplicate wins here too)
      const rows = ti.host!;
      for (let t = 0; t < rows.length; t++) td.host.set(ts.host.subarray(t * width, (t + 1) * width), rows[t] * width);
    }
  }

  // ---- scoring ----

  treeAttention(q: Tensor, k: Tensor, v: Tensor, prefixStart: Tensor, prefixEnd: Tensor, extraOffsets: Tensor,
    extraKeys: Tensor, scale: number, out: Tensor): void {
    const op = "treeAttention";
    const a = this.attentionShapes(op, { q, k, v, out }, { prefixStart, prefixEnd }, { extraOffsets, extraKeys });
    const offsets = this.tensor(op, "extraOffsets", extraOffsets, ["i32"]);
    const extra = this.tensor(op, "extraKeys", extraKeys, ["i32"]);
    checkTreeAttentionShapes(a, offsets, extra);
    this.native.treeAttention(a.q, a.k, a.v, a.ranges[0], a.ranges[1], offsets, extra, a.out, a.queries, a.keys,
      a.heads, a.kvHeads, a.headDim, scale);
  }

  // ---- training ----

  attentionForTraining(q: Tensor, k: Tensor, v: Tensor, keyStart: Tensor, keyEnd: Tensor, scale: number,
    out: Tensor, lse: Tensor, options: AttentionTrainingOptions = {}): void {
    const op = "attentionForTraining";
    const tl = this.tensor(op, "lse", lse, ["f32"]);
    const a = this.attentionShapes(op, { q, k, v, out }, { keyStart, keyEnd }, { lse: tl });
    checkAttentionTrainingShapes(a, { lse: tl });
    this.native.attentionForTraining(a.q, a.k, a.v, a.ranges[0], a.ranges[1], a.out, a.queries, a.keys, a.heads,
      a.kvHeads, a.headDim, scale, tl, options.matmulDtype === "bf16");
  }

  attentionBackward(q: Tensor, k: Tensor, v: Tensor, out: Tensor, dOut: Tensor, lse: Tensor, keyStart: Tensor,
    keyEnd: Tensor, scale: number, dq: Tensor, dk: Tensor, dv: Tensor, options: AttentionTrainingOptions = {}): void {
    const op = "attentionBackward";
    const a = this.attentionShapes(op, { q, k, v, out }, { keyStart, keyEnd }, { dOut, lse, dq, dk, dv });
    const t = (name: string, x: Tensor) => this.tensor(op, name, x, ["f32"]);
    const [tdo, tl, tdq, tdk, tdv] = [t("dOut", dOut), t("lse", lse), t("dq", dq), t("dk", dk), t("dv", dv)];
    checkAttentionTrainingShapes(a, { lse: tl, dOut: tdo, dq: tdq, dk: tdk, dv: tdv });
    this.native.attentionBackward(a.q, a.k, a.v, a.out, tdo, tl, a.ranges[0], a.ranges[1], tdq, tdk, tdv, a.queries,
      a.keys, a.heads, a.kvHeads, a.headDim, scale, options.matmulDtype === "bf16");
  }

  embeddingBackward(ids: Tensor, dOut: Tensor, dTable: Tensor): void {
    const op = "embeddingBackward";
    const ti = this.tensor(op, "ids", ids, ["i32"]);
    const td = this.tensor(op, "dOut", dOut, ["f32"]);
    const tt = this.tensor(op, "dTable", dTable, ["f32"]);
    const { vocab, dim } = resolveEmbeddingShape(op, ti, ["dTable", tt], ["dOut", td], ["ids", "dOut", "dTable"]);
    this.native.embeddingBackward(ti, td, tt, vocab, dim);
  }

  rmsnormBackward(x: Tensor, weight: Tensor, dOut: Tensor, eps: number, dx: Tensor, dWeight: Tensor | null): void {
    const op = "rmsnormBackward";
    const tx = this.tensor(op, "x", x, ["f32"]);
    const tw = this.tensor(op, "weight", weight, ["f32", "bf16", "f16"]);
    const td = this.tensor(op, "dOut", dOut, ["f32"]);
    const tdx = this.tensor(op, "dx", dx, ["f32"]);
    const tdw = dWeight === null ? null : this.tensor(op, "dWeight", dWeight, ["f32"]);
    const { dim, rows } = resolveRmsnormShape(op, tx, tw, [["dOut", td], ["dx", tdx]], tdw);
    this.native.rmsnormBackward(tx, tw, td, tdx, tdw, rows, dim, eps);
  }

  ropeBackward(dOut: Tensor, positions: Tensor, invFreq: Tensor, dx: Tensor): void {
    const [td, tp, tf, tdx, tokens, heads, headDim] = this.ropeShapes("ropeBackward", ["dOut", "dx"], dOut, positions, invFreq, dx);
    this.native.ropeBackward(td, tp, tf, tdx, tokens, heads, headDim);
  }

  swigluBackward(gate: Tensor, up: Tensor, dOut: Tensor, dGate: Tensor, dUp: Tensor): void {
    const [g, u, d, dg, du] = this.sameShape("swigluBackward", ["gate", "up", "dOut", "dGate", "dUp"], [gate, up, dOut, dGate, dUp]);
    this.native.swigluBackward(g, u, d, dg, du, g.size);
  }

  crossEntropy(logits: Tensor, targets: Tensor, gradScale: number, losses: Tensor, dLogits: Tensor): void {
    const op = "crossEntropy";
    const tl = this.tensor(op, "logits", logits, ["f32"]);
    const tt = this.tensor(op, "targets", targets, ["i32"]);
    const tlo = this.tensor(op, "losses", losses, ["f32"]);
    const td = this.tensor(op, "dLogits", dLogits, ["f32"]);
    const { rows, vocab } = resolveLogitsShape(op, tl, [["targets", tt], ["losses", tlo]], [["dLogits", td]]);
    this.native.crossEntropy(tl, tt, tlo, td, rows, vocab, gradScale);
  }

  adamw(param: Tensor, grad: Tensor, m: Tensor, v: Tensor, hyper: AdamWHyper): void {
    const [p, g, tm, tv] = this.sameShape("adamw", ["param", "grad", "m", "v"], [param, grad, m, v]);
    this.native.adamw(p, g, tm, tv, p.size, hyper.learningRate, hyper.beta1, hyper.beta2, hyper.epsilon,
      hyper.weightDecay, hyper.step);
  }

  sumOfSquares(x: Tensor): Promise<number> {
    const tx = this.tensor("sumOfSquares", "x", x, ["f32"]);
    return this.native.sumOfSquares(tx, tx.size);
  }

  scale(x: Tensor, factor: number, out: Tensor): void {
    const [tx, to] = this.sameShape("scale", ["x", "out"], [x, out]);
    this.native.scale(tx, factor, to, tx.size);
  }

  fill(t: Tensor, value: number): void {
    const tt = this.tensor("fill", "t", t, ["f32", "bf16", "f16", "i32"]);
    if (tt.dtype === "i32" && (!Number.isInteger(value) || value < -(2 ** 31) || value >= 2 ** 31)) {
      throw new Error(`fill: ${value} is not an i32 value (t is ${dtypeShape(tt)})`);
    }
    this.native.fill(tt, value);
    tt.host?.fill(value);
  }

  convert(src: Tensor, dst: Tensor): void {
    const op = "convert";
    const ts = this.tensor(op, "src", src, ["f32", "bf16", "f16"]);
    const td = this.tensor(op, "dst", dst, ["f32", "bf16", "f16"]);
    checkConvertShape(ts, td);
    this.native.convert(ts, td);
  }

  sync(): Promise<void> {
    return this.native.synchronize();
  }

  // ---- profiling (not part of Backend) ----

  /** Queues a timing event on the stream and returns its index: where the GPU is when it gets there. */
  timingMark(): number {
    return this.native.timingMark();
  }

  /** Waits for the last mark and returns every mark's time in ms after mark 0 (then starts over at 0). */
  takeTimingMarks(): Float64Array {
    return this.native.takeTimingMarks();
  }

  // ---- helpers ----

  private tensor(op: string, name: string, t: Tensor, dtypes?: readonly DType[]): CudaTensor {
    if (!(t instanceof CudaTensor)) throw new Error(`${op}: ${name} is not a CUDA tensor`);
    if (dtypes && !dtypes.includes(t.dtype)) {
      throw new Error(`${op}: ${name} is ${dtypeShape(t)}, dtype must be ${dtypes.join(" or ")}`);
    }
    void t.handle;  // throws if freed
    return t;
  }

  private ropeShapes(op: string, [inName, outName]: readonly [string, string], x: Tensor, positions: Tensor,
    invFreq: Tensor, out: Tensor): [CudaTensor, CudaTensor, CudaTensor, CudaTensor, number, number, number] {
    const tx = this.tensor(op, inName, x, ["f32"]);
    const tp = this.tensor(op, "positions", positions, ["i32"]);
    const tf = this.tensor(op, "invFreq", invFreq, ["f32"]);
    const to = this.tensor(op, outName, out, ["f32"]);
    const { tokens, heads, headDim } = resolveRopeShape(op, [inName, tx], tp, tf, [outName, to]);
    return [tx, tp, tf, to, tokens, heads, headDim];
  }

  /** The attention ops' dtype checks (f32 q/k/v/out, i32 ranges), then their shapes (resolveAttentionShape). */
  private attentionShapes(op: string, main: { q: Tensor; k: Tensor; v: Tensor; out: Tensor },
    rangeTensors: Record<string, Tensor>, more: Record<string, Tensor> = {}) {
    const [tq, tk, tv, to] = (["q", "k", "v", "out"] as const).map((name) => this.tensor(op, name, main[name], ["f32"]));
    const ranges = Object.entries(rangeTensors).map(([name, t]) => this.tensor(op, name, t, ["i32"]));
    const shape = resolveAttentionShape(op, main, rangeTensors, more);
    return { ...shape, q: tq, k: tk, v: tv, out: to, ranges };
  }

  private sameShape(op: string, names: readonly string[], tensors: readonly Tensor[]): CudaTensor[] {
    const checked = tensors.map((t, i) => this.tensor(op, names[i], t, ["f32"]));
    checkSameShape(op, names, checked);
    return checked;
  }
}

export function createCudaBackend(): CudaBackend {
  return CudaBackend.create();
}
