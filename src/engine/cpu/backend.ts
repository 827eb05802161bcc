/**
 * The CPU backend: tensors are host typed arrays, ops are the native kernels of native/cpu (scalar, AVX2,
 * AVX-512 and AMX paths chosen at run time). Shapes are checked here so errors name the op and the shapes;
 * the addon checks every size again before touching memory.
 *
 * Off the JS thread (the default): like a GPU stream, an op call checks its arguments and records its
 * kernel; download()/sync()/sumOfSquares() flush what is recorded to a libuv worker thread and await it, so
 * a forward pass never holds the event loop (issue 19; bench/event-loop.ts measures it). The kernels, their
 * order, ISA and threads are the same as when they run at once (`offThread: false`), so results are
 * bit-identical. The contract this needs, and which every caller of the Backend interface already keeps
 * for the GPU backends: a tensor's memory is read only through download().
 */
import { checkAttentionTrainingShapes, checkHostData, checkReshape, resolveSliceRows, checkSameShape, checkTreeAttentionShapes, resolveRopeShape, resolveScatterRowsShape, checkConvertShape, dtypeShape, resolveAttentionShape, resolveEmbeddingShape, resolveLogitsShape, resolveMatmulShape, resolveRmsnormShape, shapeSize } from "../shapes.js";
import type { AdamWHyper, Backend, DType, HostArray, MatmulOptions, Tensor } from "../backend.js";
import {
  loadNative, type CpuIsa, type CpuIsaInfo, type CpuPackStats, type NativeCpuOps, type NativeFloatDType, type NativePackedWeight,
} from "../native.js";

/** A CPU tensor: a typed array (Float32Array for f32, Uint16Array of raw bits for bf16/f16, Int32Array for i32). */
export class CpuTensor implements Tensor {
  readonly size: number;
  private storage: HostArray | undefined;

  constructor(
    readonly dtype: DType,
    readonly shape: readonly number[],
    data: HostArray,
  ) {
    this.size = shapeSize(shape);
    this.storage = data;
  }

  /** The element storage; throws once the tensor is freed. */
  get data(): HostArray {
    if (!this.storage) throw new Error(`tensor ${dtypeShape(this)} was used after free()`);
    return this.storage;
  }

  release(): void {
    this.storage = undefined;
  }
}

export interface CpuBackendOptions {
  /** Force an instruction-set path (throws if this CPU can't run it); default: the best available. */
  isa?: CpuIsa;
  /** Kernel threads, process-wide (default: all cores). */
  threads?: number;
  /**
   * Run kernels on a worker thread, awaited by download()/sync() (default true); false runs each op at once
   * on the calling (JS) thread, as before issue 19 — same kernels, same results, the event loop held.
   */
  offThread?: boolean;
}

/** Recorded ops that start a flush without waiting for a download (bounds what a recording holds). */
const AUTO_FLUSH_OPS = 256;

/**
 * The CPU stream of this JS thread: what every off-thread CPU backend records (the addon keeps one
 * recording per thread), flushed in order, one batch at a time. A batch's failure is kept and thrown by the
 * next flush() awaited.
 */
class CpuStream {
  private tail: Promise<void> = Promise.resolve();
  private failure: { error: unknown } | undefined;
  /** Batches handed to start() and not finished. */
  private running = 0;

  constructor(private readonly native: NativeCpuOps) {}

  /** Runs `call` (op calls of the backend) with its kernels recorded for `isa`. */
  record(isa: CpuIsa, call: () => void): void {
    this.native.record(isa);
    try {
      call();
    } finally {
      this.native.record(null);
    }
    if (this.native.pendingOps() >= AUTO_FLUSH_OPS) this.start();
  }

  /** Resolves once everything recorded so far has run; rejects with a failure of any batch since the last flush(). */
  async flush(): Promise<void> {
    this.start();
    await this.tail;
    const failure = this.failure;
    this.failure = undefined;
    if (failure) throw failure.error;
  }

  /** Calls `then` once everything recorded so far has run (or failed): at once when nothing is pending. */
  afterRecorded(then: () => void): void {
    if (this.running === 0 && this.native.pendingOps() === 0) {
      then();
      return;
    }
    this.start();
    this.tail = this.tail.then(then);
  }

  /** Hands what is recorded to the worker once the batch before it is done. */
  private start(): void {
    this.running++;
    this.tail = this.tail
      .then(() => this.native.flush())
      .catch((error: unknown) => {
        this.failure ??= { error };
      })
      .finally(() => {
        this.running--;
      });
  }
}

let cpuStream: CpuStream | undefined;

function newArray(dtype: DType, size: number): HostArray {
  if (dtype === "f32") return new Float32Array(size);
  if (dtype === "i32") return new Int32Array(size);
  return new Uint16Array(size);
}

/**
 * Freed activation buffers, kept for the next alloc() of the same dtype and size: a forward pass allocates
 * the same temporaries every call, and fresh typed arrays cost a page fault per 4 KiB on first touch (and
 * garbage for the collector). Bounded, so an idle backend holds at most POOL_BYTES.
 */
const POOL_BYTES = 1 << 30;

class ArrayPool {
  private readonly free = new Map<string, HostArray[]>();
  private bytes = 0;

  take(dtype: DType, size: number): HostArray | undefined {
    const list = this.free.get(`${dtype}:${size}`);
    const array = list?.pop();
    if (array) this.bytes -= array.byteLength;
    return array;
  }

  give(dtype: DType, array: HostArray): void {
    if (array.byteLength === 0 || this.bytes + array.byteLength > POOL_BYTES) return;
    const key = `${dtype}:${array.length}`;
    const list = this.free.get(key) ?? [];
    list.push(array);
    this.free.set(key, list);
    this.bytes += array.byteLength;
  }
}

/**
 * A bf16 weight's packed copies, one per way matmul reads it (b transposed or not), made at its first such
 * matmul: undefined until then, null when the ISA reads b in place.
 */
interface PackedCopies {
  transB?: NativePackedWeight | null;
  plain?: NativePackedWeight | null;
}

export class CpuBackend implements Backend {
  readonly name = "cpu";
  private readonly native: NativeCpuOps;
  private readonly isa: CpuIsa;
  private readonly forced: boolean;
  /** Tensors made by alloc() and not freed yet: only their storage may be recycled. */
  private readonly owned = new WeakSet<CpuTensor>();
  private readonly pool = new ArrayPool();
  /**
   * bf16 weights (from weight(), so read-only) that the AMX matmul reads from a copy packed once into its
   * tile layout rather than packing them on every call. Keyed by the tensor, never by its memory, and
   * emptied by free(): a packed copy can only belong to the one read-only array it was made from.
   */
  private readonly packed = new WeakMap<CpuTensor, PackedCopies>();
  /** Where ops are recorded when they run off the JS thread; undefined: they run at once. */
  private readonly stream: CpuStream | undefined;

  constructor(options: CpuBackendOptions = {}) {
    this.native = loadNative().cpu;
    const info = this.native.isaInfo();
    if (options.isa !== undefined) {
      if (!info.available.includes(options.isa)) {
        const why = options.isa === "amx" && info.amxUnavailableReason ? ` (${info.amxUnavailableReason})` : "";
        throw new Error(`cpu backend: ISA ${options.isa} is not available on this CPU${why}; available: ${info.available.join(", ")}`);
      }
      this.isa = options.isa;
    } else {
      this.isa = info.available[0];
    }
    this.forced = options.isa !== undefined;
    if (options.threads !== undefined) this.native.setThreads(options.threads);
    this.stream = options.offThread === false ? undefined : (cpuStream ??= new CpuStream(this.native));
  }

  isaInfo(): CpuIsaInfo {
    return this.native.isaInfo();
  }

  describe(): string {
    const info = this.native.isaInfo();
    const threads = this.native.getThreads();
    return `cpu (${this.isa} ${this.forced ? "forced" : "auto"}; available: ${info.available.join(", ")}; ${threads} thread${threads === 1 ? "" : "s"})`;
  }

  // ---- buffers ----

  alloc(dtype: DType, shape: readonly number[]): CpuTensor {
    const size = shapeSize(shape);
    const tensor = new CpuTensor(dtype, [...shape], this.pool.take(dtype, size) ?? newArray(dtype, size));
    this.owned.add(tensor);
    return tensor;
  }

  upload(data: HostArray, dtype: DType, shape: readonly number[]): CpuTensor {
    checkHostData("upload", data, dtype, shape);
    return new CpuTensor(dtype, [...shape], data.slice());
  }

  weight(data: HostArray, dtype: DType, shape: readonly number[]): CpuTensor {
    checkHostData("weight", data, dtype, shape);
    const tensor = new CpuTensor(dtype, [...shape], data);
    // Only the AMX path has a packed layout: on other ISAs nothing is recorded and nothing is copied.
    if (this.isa === "amx" && dtype === "bf16" && shape.length === 2) this.packed.set(tensor, {});
    return tensor;
  }

  async download(t: Tensor): Promise<Float32Array | Int32Array> {
    const tensor = this.tensor("download", "t", t);
    const data = tensor.data;
    if (tensor.dtype === "f32" || tensor.dtype === "i32") {
      await this.sync();
      return data.slice() as Float32Array | Int32Array;
    }
    const out = new Float32Array(tensor.size);
    this.run(() => this.native.convert(data as Uint16Array, tensor.dtype as NativeFloatDType, out, "f32", tensor.size));
    await this.sync();
    return out;
  }

  free(t: Tensor): void {
    const tensor = this.tensor("free", "t", t);
    // Storage this backend allocated goes back to the pool (never a weight's or a view's).
    if (this.owned.delete(tensor)) this.pool.give(tensor.dtype, tensor.data);
    const copies = this.packed.get(tensor);
    if (copies) {
      // Recorded matmuls may still read the packed copies: release them once those have run.
      const release = () => {
        for (const copy of [copies.transB, copies.plain]) if (copy) this.native.releasePackedWeight(copy);
      };
      if (this.stream) this.stream.afterRecorded(release);
      else release();
      this.packed.delete(tensor);
    }
    tensor.release();
  }

  reshape(t: Tensor, shape: readonly number[]): CpuTensor {
    const tensor = this.tensor("reshape", "t", t);
    return new CpuTensor(tensor.dtype, checkReshape(tensor, shape), tensor.data);
  }

  sliceRows(t: Tensor, start: number, count: number): CpuTensor {
    const tensor = this.tensor("sliceRows", "t", t);
    const { shape, offset, rowSize } = resolveSliceRows(tensor, start, count);
    return new CpuTensor(tensor.dtype, shape, tensor.data.subarray(offset, offset + count * rowSize));
  }

  // ---- ops ----

  matmul(a: Tensor, b: Tensor, out: Tensor, options: MatmulOptions = {}): void {
    const op = "matmul";
    const ta = this.tensor(op, "a", a, ["f32"]);
    const tb = this.tensor(op, "b", b, ["f32", "bf16", "f16"]);
    const to = this.tensor(op, "out", out, ["f32"]);
    const { batch, m, n, k, transA, transB, bBatched, accumulate, alpha } = resolveMatmulShape(ta, tb, to, options);
    this.run(() =>
      this.native.matmul(ta.data as Float32Array, tb.data as Float32Array | Uint16Array, tb.dtype as NativeFloatDType,
        to.data as Float32Array, batch, m, n, k, transA, transB, bBatched, accumulate, alpha,
        this.packedWeight(tb, transB, n, k)));
  }

  /**
   * Weight packing so far (process-wide, all CPU backends): the one-time packing of bf16 weights for AMX,
   * and any packing inside matmul calls, both apart from the matmul times. All zero off AMX.
   */
  packStats(): CpuPackStats {
    return this.native.packStats();
  }

  embedding(ids: Tensor, table: Tensor, out: Tensor): void {
    const op = "embedding";
    const ti = this.tensor(op, "ids", ids, ["i32"]);
    const tt = this.tensor(op, "table", table, ["f32", "bf16", "f16"]);
    const to = this.tensor(op, "out", out, ["f32"]);
    const { vocab, dim } = resolveEmbeddingShape(op, ti, ["table", tt], ["out", to], ["ids", "table", "out"]);
    this.run(() => this.native.embedding(ti.data as Int32Array, tt.data as Float32Array | Uint16Array,
      tt.dtype as NativeFloatDType, to.data as Float32Array, vocab, dim));
  }

  rmsnorm(x: Tensor, weight: Tensor, eps: number, out: Tensor): void {
    const op = "rmsnorm";
    const tx = this.tensor(op, "x", x, ["f32"]);
    const tw = this.tensor(op, "weight", weight, ["f32", "bf16", "f16"]);
    const to = this.tensor(op, "out", out, ["f32"]);
    const { dim, rows } = resolveRmsnormShape(op, tx, tw, [["out", to]]);
    this.run(() => this.native.rmsnorm(tx.data as Float32Array, tw.data as Float32Array | Uint16Array,
      tw.dtype as NativeFloatDType, to.data as Float32Array, rows, dim, eps));
  }

  rope(x: Tensor, positions: Tensor, invFreq: Tensor, out: Tensor): void {
    const op = "rope";
    const tx = this.tensor(op, "x", x, ["f32"]);
    const tp = this.tensor(op, "positions", positions, ["i32"]);
    const tf = this.tensor(op, "invFreq", invFreq, ["f32"]);
    const to = this.tensor(op, "out", out, ["f32"]);
    const { tokens, heads, headDim } = resolveRopeShape(op, ["x", tx], tp, tf, ["out", to]);
    this.run(() => this.native.rope(tx.data as Float32Array, tp.data as Int32Array, tf.data as Float32Array,
      to.data as Float32Array, tokens, heads, headDim));
  }

  attention(q: Tensor, k: Tensor, v: Tensor, keyStart: Tensor, keyEnd: Tensor, scale: number, out: Tensor): void {
    const a = this.attentionShapes("attention", { q, k, v, out }, { keyStart, keyEnd });
    this.run(() => this.native.attention(a.q, a.k, a.v, a.ranges[0], a.ranges[1], a.out, a.queries, a.keys, a.heads,
      a.kvHeads, a.headDim, scale));
  }

  swiglu(gate: Tensor, up: Tensor, out: Tensor): void {
    const [g, u, o] = this.sameShape("swiglu", ["gate", "up", "out"], [gate, up, out]);
    this.run(() => this.native.swiglu(g.data as Float32Array, u.data as Float32Array, o.data as Float32Array, g.size));
  }

  add(a: Tensor, b: Tensor, out: Tensor): void {
    const [x, y, o] = this.sameShape("add", ["a", "b", "out"], [a, b, out]);
    this.run(() => this.native.add(x.data as Float32Array, y.data as Float32Array, o.data as Float32Array, x.size));
  }

  logSoftmax(logits: Tensor, out: Tensor): void {
    const op = "logSoftmax";
    const tl = this.tensor(op, "logits", logits, ["f32"]);
    const to = this.tensor(op, "out", out, ["f32"]);
    const { rows, vocab } = resolveLogitsShape(op, tl, [], [["out", to]]);
    this.run(() => this.native.logSoftmax(tl.data as Float32Array, to.data as Float32Array, rows, vocab));
  }

  logSoftmaxGather(logits: Tensor, targets: Tensor, out: Tensor): void {
    const op = "logSoftmaxGather";
    const tl = this.tensor(op, "logits", logits, ["f32"]);
    const tt = this.tensor(op, "targets", targets, ["i32"]);
    const to = this.tensor(op, "out", out, ["f32"]);
    const { rows, vocab } = resolveLogitsShape(op, tl, [["targets", tt], ["out", to]], []);
    this.run(() => this.native.logSoftmaxGather(tl.data as Float32Array, tt.data as Int32Array, to.data as Float32Array, rows, vocab));
  }

  // ---- scoring ----

  treeAttention(q: Tensor, k: Tensor, v: Tensor, prefixStart: Tensor, prefixEnd: Tensor, extraOffsets: Tensor,
    extraKeys: Tensor, scale: number, out: Tensor): void {
    const op = "treeAttention";
    const a = this.attentionShapes(op, { q, k, v, out }, { prefixStart, prefixEnd }, { extraOffsets, extraKeys });
    const offsets = this.tensor(op, "extraOffsets", extraOffsets, ["i32"]);
    const extra = this.tensor(op, "extraKeys", extraKeys, ["i32"]);
    checkTreeAttentionShapes(a, offsets, extra);
    this.run(() => this.native.treeAttention(a.q, a.k, a.v, a.ranges[0], a.ranges[1], offsets.data as Int32Array,
      extra.data as Int32Array, a.out, a.queries, a.keys, a.heads, a.kvHeads, a.headDim, scale));
  }

  // ---- training ----

  attentionForTraining(q: Tensor, k: Tensor, v: Tensor, keyStart: Tensor, keyEnd: Tensor, scale: number,
    out: Tensor, lse: Tensor): void {
    const op = "attentionForTraining";
    const tl = this.tensor(op, "lse", lse, ["f32"]);
    const a = this.attentionShapes(op, { q, k, v, out }, { keyStart, keyEnd }, { lse: tl });
    checkAttentionTrainingShapes(a, { lse: tl });
    this.run(() => this.native.attentionForTraining(a.q, a.k, a.v, a.ranges[0], a.ranges[1], a.out, a.queries, a.keys,
      a.heads, a.kvHeads, a.headDim, scale, tl.data as Float32Array));
  }

  attentionBackward(q: Tensor, k: Tensor, v: Tensor, out: Tensor, dOut: Tensor, lse: Tensor, keyStart: Tensor,
    keyEnd: Tensor, scale: number, dq: Tensor, dk: Tensor, dv: Tensor): void {
    const op = "attentionBackward";
    const a = this.attentionShapes(op, { q, k, v, out }, { keyStart, keyEnd }, { dOut, lse, dq, dk, dv });
    const t = (name: string, x: Tensor) => this.tensor(op, name, x, ["f32"]);
    const [tdo, tl, tdq, tdk, tdv] = [t("dOut", dOut), t("lse", lse), t("dq", dq), t("dk", dk), t("dv", dv)];
    checkAttentionTrainingShapes(a, { lse: tl, dOut: tdo, dq: tdq, dk: tdk, dv: tdv });
    this.run(() => this.native.attentionBackward(a.q, a.k, a.v, a.out, tdo.data as Float32Array, tl.data as Float32Array,
      a.ranges[0], a.ranges[1], tdq.data as Float32Array, tdk.data as Float32Array, tdv.data as Float32Array,
      a.queries, a.keys, a.heads, a.kvHeads, a.headDim, scale));
  }

  embeddingBackward(ids: Tensor, dOut: Tensor, dTable: Tensor): void {
    const op = "embeddingBackward";
    const ti = this.tensor(op, "ids", ids, ["i32"]);
    const td = this.tensor(op, "dOut", dOut, ["f32"]);
    const tt = this.tensor(op, "dTable", dTable, ["f32"]);
    const { vocab, dim } = resolveEmbeddingShape(op, ti, ["dTable", tt], ["dOut", td], ["ids", "dOut", "dTable"]);
    this.run(() => this.native.embeddingBackward(ti.data as Int32Array, td.data as Float32Array, tt.data as Float32Array,
      vocab, dim));
  }

  rmsnormBackward(x: Tensor, weight: Tensor, dOut: Tensor, eps: number, dx: Tensor, dWeight: Tensor | null): void {
    const op = "rmsnormBackward";
    const tx = this.tensor(op, "x", x, ["f32"]);
    const tw = this.tensor(op, "weight", weight, ["f32", "bf16", "f16"]);
    const td = this.tensor(op, "dOut", dOut, ["f32"]);
    const tdx = this.tensor(op, "dx", dx, ["f32"]);
    const tdw = dWeight === null ? null : this.tensor(op, "dWeight", dWeight, ["f32"]);
    const { dim, rows } = resolveRmsnormShape(op, tx, tw, [["dOut", td], ["dx", tdx]], tdw);
    this.run(() => this.native.rmsnormBackward(tx.data as Float32Array, tw.data as Float32Array | Uint16Array,
      tw.dtype as NativeFloatDType, td.data as Float32Array, tdx.data as Float32Array,
      tdw ? (tdw.data as Float32Array) : null, rows, dim, eps));
  }

  ropeBackward(dOut: Tensor, positions: Tensor, invFreq: Tensor, dx: Tensor): void {
    const op = "ropeBackward";
    const td = this.tensor(op, "dOut", dOut, ["f32"]);
    const tp = this.tensor(op, "positions", positions, ["i32"]);
    const tf = this.tensor(op, "invFreq", invFreq, ["f32"]);
    const tdx = this.tensor(op, "dx", dx, ["f32"]);
    const { tokens, heads, headDim } = resolveRopeShape(op, ["dOut", td], tp, tf, ["dx", tdx]);
    this.run(() => this.native.ropeBackward(td.data as Float32Array, tp.data as Int32Array, tf.data as Float32Array,
      tdx.data as Float32Array, tokens, heads, headDim));
  }

  swigluBackward(gate: Tensor, up: Tensor, dOut: Tensor, dGate: Tensor, dUp: Tensor): void {
    const [g, u, d, dg, du] = this.sameShape("swigluBackward", ["gate", "up", "dOut", "dGate", "dUp"], [gate, up, dOut, dGate, dUp]);
    this.run(() => this.native.swigluBackward(g.data as Float32Array, u.data as Float32Array, d.data as Float32Array,
      dg.data as Float32Array, du.data as Float32Array, g.size));
  }

  crossEntropy(logits: Tensor, targets: Tensor, gradScale: number, losses: Tensor, dLogits: Tensor): void {
    const op = "crossEntropy";
    const tl = this.tensor(op, "logits", logits, ["f32"]);
    const tt = this.tensor(op, "targets", targets, ["i32"]);
    const tlo = this.tensor(op, "losses", losses, ["f32"]);
    const td = this.tensor(op, "dLogits", dLogits, ["f32"]);
    const { rows, vocab } = resolveLogitsShape(op, tl, [["targets", tt], ["losses", tlo]], [["dLogits", td]]);
    this.run(() => this.native.crossEntropy(tl.data as Float32Array, tt.data as Int32Array, tlo.data as Float32Array,
      td.data as Float32Array, rows, vocab, gradScale));
  }

  adamw(param: Tensor, grad: Tensor, m: Tensor, v: Tensor, hyper: AdamWHyper): void {
    const [p, g, tm, tv] = this.sameShape("adamw", ["param", "grad", "m", "v"], [param, grad, m, v]);
    this.run(() => this.native.adamw(p.data as Float32Array, g.data as Float32Array, tm.data as Float32Array,
      tv.data as Float32Array, p.size, hyper.learningRate, hyper.beta1, hyper.beta2, hyper.epsilon, hyper.weightDecay,
      hyper.step));
  }

  async sumOfSquares(x: Tensor): Promise<number> {
    const tx = this.tensor("sumOfSquares", "x", x, ["f32"]);
    const data = tx.data as Float32Array;
    await this.sync();
    // A value, not a buffer: it runs on the JS thread once the recorded ops have (one pass over x).
    this.selectIsa();
    return this.native.sumOfSquares(data, tx.size);
  }

  scale(x: Tensor, factor: number, out: Tensor): void {
    const [tx, to] = this.sameShape("scale", ["x", "out"], [x, out]);
    this.run(() => this.native.scale(tx.data as Float32Array, factor, to.data as Float32Array, tx.size));
  }

  fill(t: Tensor, value: number): void {
    const tt = this.tensor("fill", "t", t, ["f32", "bf16", "f16", "i32"]);
    if (tt.dtype === "f32") {
      this.run(() => this.native.fill(tt.data as Float32Array, tt.size, value));
    } else {
      let row: Int32Array | Uint16Array;
      if (tt.dtype === "i32") {
        if (!Number.isInteger(value) || value < -(2 ** 31) || value >= 2 ** 31) {
          throw new Error(`fill: ${value} is not an i32 value (t is ${dtypeShape(tt)})`);
        }
        row = new Int32Array(tt.size).fill(value);
      } else {
        // One element converted natively (round to nearest even), then repeated.
        const bits = new Uint16Array(1);
        this.native.convert(Float32Array.of(value), "f32", bits, tt.dtype as NativeFloatDType, 1);
        row = new Uint16Array(tt.size).fill(bits[0]);
      }
      // Written by a kernel (a one-row scatter), in order with the ops recorded before and after it.
      this.run(() => this.native.scatterRows(row, Int32Array.of(0), tt.data, 1, 1, tt.size));
    }
  }

  convert(src: Tensor, dst: Tensor): void {
    const op = "convert";
    const ts = this.tensor(op, "src", src, ["f32", "bf16", "f16"]);
    const td = this.tensor(op, "dst", dst, ["f32", "bf16", "f16"]);
    checkConvertShape(ts, td);
    this.run(() => this.native.convert(ts.data as Float32Array | Uint16Array, ts.dtype as NativeFloatDType,
      td.data as Float32Array | Uint16Array, td.dtype as NativeFloatDType, ts.size));
  }

  scatterRows(src: Tensor, index: Tensor, dst: Tensor): void {
    const op = "scatterRows";
    const ts = this.tensor(op, "src", src);
    const ti = this.tensor(op, "index", index, ["i32"]);
    const td = this.tensor(op, "dst", dst, [ts.dtype]);
    const { rows, dstRows, width } = resolveScatterRowsShape(ts, ti, td);
    this.run(() => this.native.scatterRows(ts.data, ti.data as Int32Array, td.data, rows, dstRows, width));
  }

  /** Waits until every op called so far has run (off the JS thread: flushes the recording). */
  async sync(): Promise<void> {
    await this.stream?.flush();
  }

  // ---- helpers ----

  /** b's packed copy for a matmul reading it this way, packed now if this is the first such matmul. */
  private packedWeight(b: CpuTensor, transB: boolean, n: number, k: number): NativePackedWeight | null {
    const copies = this.packed.get(b);  // a 2-D weight, so b is shared by every batch item
    if (!copies) return null;
    const way = transB ? "transB" : "plain";
    let copy = copies[way];
    if (copy === undefined) {
      copy = this.native.packWeight(b.data as Uint16Array, n, k, transB, this.isa);
      copies[way] = copy;
    }
    return copy;
  }

  /**
   * Runs op calls: recorded for this backend's ISA off the JS thread, else at once with the ISA (process-
   * global in the addon) selected only when another backend changed it. A bf16 weight's first AMX packing
   * (packedWeight) happens inside `call`, at once, on the JS thread, for this backend's ISA.
   */
  private run(call: () => void): void {
    if (this.stream) {
      this.stream.record(this.isa, call);
    } else {
      this.selectIsa();
      call();
    }
  }

  private selectIsa(): void {
    if (this.native.isaInfo().selected !== this.isa) this.native.setIsa(this.isa);
  }

  private tensor(op: string, name: string, t: Tensor, dtypes?: readonly DType[]): CpuTensor {
    if (!(t instanceof CpuTensor)) throw new Error(`${op}: ${name} is not a CPU tensor`);
    if (dtypes && !dtypes.includes(t.dtype)) {
      throw new Error(`${op}: ${name} is ${dtypeShape(t)}, dtype must be ${dtypes.join(" or ")}`);
    }
    void t.data;  // throws if freed
    return t;
  }

  /** The attention ops' dtype checks (f32 q/k/v/out, i32 ranges), then their shapes (resolveAttentionShape). */
  private attentionShapes(op: string, main: { q: Tensor; k: Tensor; v: Tensor; out: Tensor },
    rangeTensors: Record<string, Tensor>, more: Record<string, Tensor> = {}) {
    const [tq, tk, tv, to] = (["q", "k", "v", "out"] as const).map((name) => this.tensor(op, name, main[name], ["f32"]));
    const ranges = Object.entries(rangeTensors).map(([name, t]) => this.tensor(op, name, t, ["i32"]));
    const shape = resolveAttentionShape(op, main, rangeTensors, more);
    return {
      ...shape,
      q: tq.data as Float32Array, k: tk.data as Float32Array, v: tv.data as Float32Array, out: to.data as Float32Array,
      ranges: ranges.map((t) => t.data as Int32Array),
    };
  }

  private sameShape(op: string, names: readonly string[], tensors: readonly Tensor[]): CpuTensor[] {
    const checked = tensors.map((t, i) => this.tensor(op, names[i], t, ["f32"]));
    checkSameShape(op, names, checked);
    return checked;
  }
}

export function createCpuBackend(options: CpuBackendOptions = {}): CpuBackend {
  return new CpuBackend(options);
}
