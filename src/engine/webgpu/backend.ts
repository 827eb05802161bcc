/**
 * The WebGPU backend: tensors are GPU buffers (views share them), ops record hand-written WGSL kernels
 * (shaders/*.wgsl) into one command encoder that is submitted when the host needs something back (download,
 * sumOfSquares, sync) or writes into a buffer that recorded work still uses. Shapes are checked here, with the
 * CPU backend's messages; ids, key ranges and targets are checked on the host when the backend knows their
 * values (i32 tensors keep a host copy from upload), and kernels bound-check regardless.
 */
import { checkAttentionTrainingShapes, checkHostData, checkReshape, resolveSliceRows, checkSameShape, checkTreeAttentionShapes, resolveRopeShape, resolveScatterRowsShape, checkConvertShape, dtypeShape, resolveAttentionShape, resolveEmbeddingShape, resolveLogitsShape, resolveMatmulShape, resolveRmsnormShape, sameDims, shapeSize } from "../shapes.js";
import type { AdamWHyper, Backend, DType, HostArray, MatmulOptions, Tensor } from "../backend.js";
import { toFloat32 } from "../../io/dtype.js";
import { ELEMENT_BYTES, f32, GpuContext, Storage, type BindingRange, type GpuContextOptions } from "./device.js";

export class WebGpuTensor implements Tensor {
  readonly size: number;

  constructor(
    readonly owner: WebGpuBackend,
    readonly dtype: DType,
    readonly shape: readonly number[],
    readonly storage: Storage,
    /** Element offset of this view in the buffer. */
    readonly offset: number,
    /** Whether this tensor owns its buffer (views don't: freeing a view frees nothing). */
    readonly root: boolean,
  ) {
    this.size = shapeSize(shape);
  }

  /** The host copy of an i32 tensor's values when known. */
  hostInts(): Int32Array | undefined {
    const host = this.storage.host;
    return host ? host.subarray(this.offset, this.offset + this.size) : undefined;
  }
}

export type WebGpuBackendOptions = GpuContextOptions;

function dims(t: Tensor): string {
  return `[${t.shape.join(",")}]`;
}

/** The same elements of the same buffer (one tensor, or views of it with the same place and size). */
function sameTensor(a: WebGpuTensor, b: WebGpuTensor): boolean {
  return a.storage === b.storage && a.offset === b.offset && a.size === b.size;
}

type FloatDType = "f32" | "bf16" | "f16";

/** Defines naming a float dtype for a kernel operand: PREFIX_F32 / PREFIX_BF16 / PREFIX_F16. */
function dtypeDefines(prefix: string, dtype: DType): Record<string, boolean> {
  return { [`${prefix}_F32`]: dtype === "f32", [`${prefix}_BF16`]: dtype === "bf16", [`${prefix}_F16`]: dtype === "f16" };
}

export class WebGpuBackend implements Backend {
  readonly name = "webgpu";

  constructor(private readonly gpu: GpuContext) {}

  static async create(options: WebGpuBackendOptions = {}): Promise<WebGpuBackend> {
    return new WebGpuBackend(await GpuContext.open(options));
  }

  describe(): string {
    const s = this.gpu.summary;
    const features = [...this.gpu.features].filter((f) => f === "shader-f16" || f === "subgroups");
    return `webgpu (${s.name}; features: ${features.length > 0 ? features.join(", ") : "none used"}; ` +
      `max binding ${formatBytes(this.gpu.bindingLimit)})`;
  }

  /** The adapter and device this backend runs on (name, features, limits). */
  get context(): GpuContext {
    return this.gpu;
  }

  /** Destroy the device and drop Dawn's instance. */
  dispose(): void {
    this.gpu.destroy();
  }

  // ---- buffers ----

  alloc(dtype: DType, shape: readonly number[]): WebGpuTensor {
    const size = shapeSize(shape);
    const storage = this.gpu.createStorage(size * ELEMENT_BYTES[dtype], `alloc ${dtype} [${shape.join(",")}]`);
    return new WebGpuTensor(this, dtype, [...shape], storage, 0, true);
  }

  upload(data: HostArray, dtype: DType, shape: readonly number[]): WebGpuTensor {
    return this.put("upload", data, dtype, shape, false);
  }

  weight(data: HostArray, dtype: DType, shape: readonly number[]): WebGpuTensor {
    return this.put("weight", data, dtype, shape, true);
  }

  private put(what: string, data: HostArray, dtype: DType, shape: readonly number[], exact: boolean): WebGpuTensor {
    const size = checkHostData(what, data, dtype, shape);
    const storage = this.gpu.createStorage(size * ELEMENT_BYTES[dtype], `${what} ${dtype} [${shape.join(",")}]`, exact);
    this.gpu.write(storage, data);
    if (dtype === "i32") storage.host = Int32Array.from(data as Int32Array);
    return new WebGpuTensor(this, dtype, [...shape], storage, 0, true);
  }

  async download(t: Tensor): Promise<Float32Array | Int32Array> {
    const tensor = this.tensor("download", "t", t);
    const bytes = ELEMENT_BYTES[tensor.dtype];
    const data = await this.gpu.read(tensor.storage, tensor.offset * bytes, tensor.size * bytes, `download ${dtypeShape(tensor)}`);
    if (tensor.dtype === "f32") return new Float32Array(data);
    if (tensor.dtype === "i32") return new Int32Array(data);
    return toFloat32(new Uint16Array(data), tensor.dtype);
  }

  free(t: Tensor): void {
    const tensor = this.tensor("free", "t", t);
    if (tensor.root) this.gpu.release(tensor.storage);
  }

  reshape(t: Tensor, shape: readonly number[]): WebGpuTensor {
    const tensor = this.tensor("reshape", "t", t);
    return new WebGpuTensor(this, tensor.dtype, checkReshape(tensor, shape), tensor.storage, tensor.offset, false);
  }

  sliceRows(t: Tensor, start: number, count: number): WebGpuTensor {
    const tensor = this.tensor("sliceRows", "t", t);
    const { shape, offset } = resolveSliceRows(tensor, start, count);
    return new WebGpuTensor(this, tensor.dtype, shape, tensor.storage, tensor.offset + offset, false);
  }

  // ---- ops ----

  matmul(a: Tensor, b: Tensor, out: Tensor, options: MatmulOptions = {}): void {
    const op = "matmul";
    const ta = this.tensor(op, "a", a, ["f32"]);
    const tb = this.tensor(op, "b", b, ["f32", "bf16", "f16"]);
    const to = this.tensor(op, "out", out, ["f32"]);
    const { batch, m, n, k, transA, transB, bBatched, alpha, describe } = resolveMatmulShape(ta, tb, to, options);
    if (batch === 0 || m === 0 || n === 0) return;
    if (batch > this.gpu.limits.maxComputeWorkgroupsPerDimension) {
      throw new Error(`${describe}: batch ${batch} above this adapter's ${this.gpu.limits.maxComputeWorkgroupsPerDimension} workgroups per dimension`);
    }
    const lda = transA ? m : k, ldb = transB ? k : n;
    const bBytes = ELEMENT_BYTES[tb.dtype];
    const budget = this.gpu.bindingLimit - this.gpu.offsetAlignment - 16;

    // A shared B too large for one binding runs in windows of whole rows of its stored layout:
    // B stored [N, K] (transB) is split along N, into column blocks of out; B stored [K, N] along K, accumulating.
    const bRowBytes = (transB ? k : n) * bBytes;
    const storedRows = transB ? n : k;
    let rowsPerWindow = storedRows;
    if (!bBatched && tb.size * bBytes > budget && bRowBytes > 0) {
      rowsPerWindow = Math.floor(budget / bRowBytes);
      if (rowsPerWindow >= 64) rowsPerWindow -= rowsPerWindow % 64;
      if (rowsPerWindow < 1) throw new Error(`${describe}: one row of b (${bRowBytes} bytes) exceeds the binding limit`);
    }
    for (let first = 0; first < Math.max(storedRows, 1); first += Math.max(rowsPerWindow, 1)) {
      const rows = Math.min(rowsPerWindow, storedRows - first);
      const splitN = transB && rowsPerWindow < storedRows;
      const splitK = !transB && rowsPerWindow < storedRows;
      const chunkN = splitN ? rows : n, chunkK = splitK ? rows : k;
      const aStart = splitK ? (transA ? first * m : first) : 0;
      const bStart = rowsPerWindow < storedRows ? first * (transB ? k : n) : 0;
      const outStart = splitN ? first : 0;
      const aBinding = this.range(ta, "a", aStart, ta.size - aStart);
      const bBinding = this.range(tb, "b", bStart, rowsPerWindow < storedRows ? rows * (transB ? k : n) : tb.size);
      const outBinding = this.output(to, "out", outStart, to.size - outStart);
      // vec4 loads need the contiguous dim, the leading stride, the batch stride and the start all multiples of 4.
      const aligned = (contiguous: number, ld: number, batchStride: number, t: WebGpuTensor, start: number) =>
        contiguous % 4 === 0 && ld % 4 === 0 && batchStride % 4 === 0 && (t.offset + start) % 4 === 0;
      const vecA = aligned(transA ? m : chunkK, lda, m * k, ta, aStart);
      const vecB = aligned(transB ? chunkK : chunkN, ldb, bBatched ? k * n : 0, tb, bStart);
      const accumulate = (options.accumulate ?? false) || (splitK && first > 0);
      this.gpu.dispatch(describe, "matmul", {
        TRANS_A: transA, TRANS_B: transB, VEC_A: vecA, VEC_B: vecB, ...dtypeDefines("B", tb.dtype),
      }, [aBinding, bBinding, outBinding], [
        m, chunkN, chunkK, lda, ldb, n, m * k, bBatched ? k * n : 0, m * n, f32(alpha), accumulate ? 1 : 0,
      ], [Math.ceil(chunkN / 64), Math.ceil(m / 64), batch]);
      if (rowsPerWindow >= storedRows) break;
    }
  }

  embedding(ids: Tensor, table: Tensor, out: Tensor): void {
    const op = "embedding";
    const ti = this.tensor(op, "ids", ids, ["i32"]);
    const tt = this.tensor(op, "table", table, ["f32", "bf16", "f16"]);
    const to = this.tensor(op, "out", out, ["f32"]);
    const { vocab, dim, describe } = resolveEmbeddingShape(op, ti, ["table", tt], ["out", to], ["ids", "table", "out"]);
    this.checkIds(op, ti, vocab);
    const tokens = ti.shape[0];
    if (tokens === 0 || dim === 0) return;
    const rowsPerWindow = this.rowsPerBinding(dim * ELEMENT_BYTES[tt.dtype], vocab);
    for (let first = 0; first < vocab || first === 0; first += rowsPerWindow) {
      const rows = Math.min(rowsPerWindow, vocab - first);
      this.gpu.dispatch(describe, "embedding", dtypeDefines("T", tt.dtype), [
        this.range(ti, "ids"), this.range(tt, "table", first * dim, rows * dim), this.output(to, "out"),
      ], [tokens, dim, vocab, first, rows, first === 0 ? 1 : 0], this.gpu.grid(Math.ceil((tokens * dim) / 256)));
      if (rows <= 0) break;
    }
  }

  rmsnorm(x: Tensor, weight: Tensor, eps: number, out: Tensor): void {
    const op = "rmsnorm";
    const tx = this.tensor(op, "x", x, ["f32"]);
    const tw = this.tensor(op, "weight", weight, ["f32", "bf16", "f16"]);
    const to = this.tensor(op, "out", out, ["f32"]);
    const { dim, rows, describe } = resolveRmsnormShape(op, tx, tw, [["out", to]]);
    if (!Number.isFinite(eps)) throw new Error(`${describe}: eps must be finite`);
    this.gpu.dispatch(describe, "rmsnorm", dtypeDefines("W", tw.dtype),
      [this.range(tx, "x"), this.range(tw, "weight"), this.output(to, "out")], [rows, dim, f32(eps)], this.gpu.grid(rows));
  }

  rope(x: Tensor, positions: Tensor, invFreq: Tensor, out: Tensor): void {
    this.rotate("rope", x, positions, invFreq, out, 1);
  }

  ropeBackward(dOut: Tensor, positions: Tensor, invFreq: Tensor, dx: Tensor): void {
    this.rotate("ropeBackward", dOut, positions, invFreq, dx, -1);
  }

  private rotate(op: string, x: Tensor, positions: Tensor, invFreq: Tensor, out: Tensor, direction: number): void {
    const [xName, outName] = direction > 0 ? ["x", "out"] : ["dOut", "dx"];
    const tx = this.tensor(op, xName, x, ["f32"]);
    const tp = this.tensor(op, "positions", positions, ["i32"]);
    const tf = this.tensor(op, "invFreq", invFreq, ["f32"]);
    const to = this.tensor(op, outName, out, ["f32"]);
    const { tokens, heads, headDim, describe } = resolveRopeShape(op, [xName, tx], tp, tf, [outName, to]);
    const pairs = tokens * heads * (headDim / 2);
    const inPlace = sameTensor(tx, to);
    this.gpu.dispatch(describe, "rope", { IN_PLACE: inPlace }, [inPlace ? this.output(tx, xName) : this.range(tx, xName),
      this.range(tp, "positions"), this.range(tf, "invFreq"), inPlace ? null : this.output(to, outName)],
    [tokens, heads, headDim / 2, f32(direction)], this.gpu.grid(Math.ceil(pairs / 256)));
  }

  attention(q: Tensor, k: Tensor, v: Tensor, keyStart: Tensor, keyEnd: Tensor, scale: number, out: Tensor): void {
    this.attend("attention", q, k, v, keyStart, keyEnd, scale, out, null);
  }

  attentionForTraining(q: Tensor, k: Tensor, v: Tensor, keyStart: Tensor, keyEnd: Tensor, scale: number, out: Tensor,
    lse: Tensor): void {
    this.attend("attentionForTraining", q, k, v, keyStart, keyEnd, scale, out, lse);
  }

  /** `ranges`: i32 [Tq] per-query tensors; `more`: further i32 tensors, checked by the caller, named in errors. */
  private attentionShapes(op: string, q: Tensor, k: Tensor, v: Tensor, out: Tensor, ranges: [string, Tensor][], more: [string, Tensor][] = []) {
    const tq = this.tensor(op, "q", q, ["f32"]);
    const tk = this.tensor(op, "k", k, ["f32"]);
    const tv = this.tensor(op, "v", v, ["f32"]);
    const tr = [...ranges, ...more].map(([name, t]) => this.tensor(op, name, t, ["i32"]));
    const to = this.tensor(op, "out", out, ["f32"]);
    const shape = resolveAttentionShape(op, { q, k, v, out }, Object.fromEntries(ranges), Object.fromEntries(more));
    if (shape.headDim > 256) throw new Error(`${shape.describe}: head dims above 256 are not supported on webgpu`);
    return { ...shape, tq, tk, tv, tr, to };
  }

  private attend(op: string, q: Tensor, k: Tensor, v: Tensor, keyStart: Tensor, keyEnd: Tensor, scale: number, out: Tensor,
    lse: Tensor | null): void {
    const s = this.attentionShapes(op, q, k, v, out, [["keyStart", keyStart], ["keyEnd", keyEnd]]);
    const [ts, te] = s.tr;
    if (!sameDims(ts.shape, [s.queries]) || !sameDims(te.shape, [s.queries])) {
      throw new Error(`${s.describe}: key ranges must be [${s.queries}]`);
    }
    const tl = lse ? this.tensor(op, "lse", lse, ["f32"]) : null;
    if (tl) checkAttentionTrainingShapes(s, { lse: tl });
    this.checkRanges(op, ts, te, s.keys, "key range");
    this.gpu.dispatch(s.describe, "attention", { LSE: tl !== null }, [
      this.range(s.tq, "q"), this.range(s.tk, "k"), this.range(s.tv, "v"), this.range(ts, "keyStart"), this.range(te, "keyEnd"),
      this.output(s.to, "out"), tl ? this.output(tl, "lse") : null, null,
    ], [s.queries, s.heads, s.kvHeads, s.headDim, s.keys, f32(scale)], this.gpu.grid(s.queries * s.heads));
  }

  treeAttention(q: Tensor, k: Tensor, v: Tensor, prefixStart: Tensor, prefixEnd: Tensor, extraOffsets: Tensor,
    extraKeys: Tensor, scale: number, out: Tensor): void {
    const op = "treeAttention";
    const s = this.attentionShapes(op, q, k, v, out, [["prefixStart", prefixStart], ["prefixEnd", prefixEnd]],
      [["extraOffsets", extraOffsets], ["extraKeys", extraKeys]]);
    const [ps, pe, eo, ek] = s.tr;
    checkTreeAttentionShapes(s, eo, ek);
    this.checkRanges(op, ps, pe, s.keys, "prefix range");
    const offsets = eo.hostInts(), extra = ek.hostInts();
    if (offsets) {
      for (let t = 0; t <= s.queries; t++) {
        const ordered = t === s.queries ? offsets[t] >= 0 : offsets[t] >= 0 && offsets[t] <= offsets[t + 1];
        if (!ordered || offsets[t] > ek.size) {
          throw new Error(`${op}: extraOffsets must be non-decreasing in [0, ${ek.size}] (the extraKeys length); ` +
            `extraOffsets[${t}] = ${offsets[t]}${t < s.queries ? `, extraOffsets[${t + 1}] = ${offsets[t + 1]}` : ""}`);
        }
      }
    }
    if (extra) {
      extra.forEach((key, e) => {
        if (key < 0 || key >= s.keys) throw new Error(`${op}: extra key ${key} at index ${e} out of range [0, ${s.keys})`);
      });
    }
    this.gpu.dispatch(s.describe, "attention", { TREE: true }, [
      this.range(s.tq, "q"), this.range(s.tk, "k"), this.range(s.tv, "v"), this.range(ps, "prefixStart"),
      this.range(pe, "prefixEnd"), this.output(s.to, "out"), this.range(eo, "extraOffsets"), this.range(ek, "extraKeys"),
    ], [s.queries, s.heads, s.kvHeads, s.headDim, s.keys, f32(scale)], this.gpu.grid(s.queries * s.heads));
  }

  attentionBackward(q: Tensor, k: Tensor, v: Tensor, out: Tensor, dOut: Tensor, lse: Tensor, keyStart: Tensor, keyEnd: Tensor,
    scale: number, dq: Tensor, dk: Tensor, dv: Tensor): void {
    const op = "attentionBackward";
    const s = this.attentionShapes(op, q, k, v, out, [["keyStart", keyStart], ["keyEnd", keyEnd]]);
    const [ts, te] = s.tr;
    const tdo = this.tensor(op, "dOut", dOut, ["f32"]);
    const tl = this.tensor(op, "lse", lse, ["f32"]);
    const tdq = this.tensor(op, "dq", dq, ["f32"]);
    const tdk = this.tensor(op, "dk", dk, ["f32"]);
    const tdv = this.tensor(op, "dv", dv, ["f32"]);
    const describe = `${s.describe}, dOut ${dims(tdo)}, lse ${dims(tl)}`;
    if (!sameDims(ts.shape, [s.queries]) || !sameDims(te.shape, [s.queries])) throw new Error(`${describe}: key ranges must be [${s.queries}]`);
    checkAttentionTrainingShapes({ ...s, describe }, { lse: tl, dOut: tdo, dq: tdq, dk: tdk, dv: tdv });
    this.checkRanges(op, ts, te, s.keys, "key range");
    const stats = this.alloc("f32", [Math.max(1, s.queries * s.heads * 2)]);
    const ranges = this.alloc("i32", [Math.max(1, s.queries * 2)]);
    try {
      const sizes = [s.queries, s.heads, s.kvHeads, s.headDim, s.keys, f32(scale)];
      this.gpu.dispatch(describe, "attention_backward", { PREP: true }, [
        this.range(s.to, "out"), this.range(tdo, "dOut"), this.range(tl, "lse"), this.range(ts, "keyStart"),
        this.range(te, "keyEnd"), this.output(stats, "stats"), this.output(ranges, "ranges"), null,
      ], sizes, this.gpu.grid(s.queries * s.heads));
      const common = [this.range(s.tq, "q"), this.range(s.tk, "k"), this.range(s.tv, "v"), this.range(tdo, "dOut"),
        this.range(stats, "stats"), this.range(ranges, "ranges")];
      this.gpu.dispatch(describe, "attention_backward", { DQ: true }, [...common, this.output(tdq, "dq"), null], sizes,
        this.gpu.grid(s.queries * s.heads));
      this.gpu.dispatch(describe, "attention_backward", { DKV: true }, [...common, this.output(tdk, "dk"), this.output(tdv, "dv")],
        sizes, this.gpu.grid(s.keys * s.kvHeads));
    } finally {
      this.free(stats);
      this.free(ranges);
    }
  }

  swiglu(gate: Tensor, up: Tensor, out: Tensor): void {
    const [g, u, o] = this.sameShape("swiglu", ["gate", "up", "out"], [gate, up, out]);
    this.elementwise("swiglu", "SWIGLU", [g, u, o], ["gate", "up", "out"], 2, 0);
  }

  add(a: Tensor, b: Tensor, out: Tensor): void {
    const [x, y, o] = this.sameShape("add", ["a", "b", "out"], [a, b, out]);
    this.elementwise("add", "ADD", [x, y, o], ["a", "b", "out"], 2, 0);
  }

  swigluBackward(gate: Tensor, up: Tensor, dOut: Tensor, dGate: Tensor, dUp: Tensor): void {
    const names = ["gate", "up", "dOut", "dGate", "dUp"];
    const tensors = this.sameShape("swigluBackward", names, [gate, up, dOut, dGate, dUp]);
    this.elementwise("swigluBackward", "SWIGLU_BACKWARD", tensors, names, 3, 0);
  }

  scale(x: Tensor, factor: number, out: Tensor): void {
    const [tx, to] = this.sameShape("scale", ["x", "out"], [x, out]);
    if (!Number.isFinite(factor)) throw new Error(`scale: factor ${factor} must be finite`);
    this.elementwise("scale", "SCALE", [tx, to], ["x", "out"], 1, factor);
  }

  /**
   * An elementwise kernel over tensors [inputs…, outputs…] (outputs from slot `firstOutput`). An output that is
   * the same tensor as an input is not bound: the kernel writes the input's binding (defines Sk_j, Tj_RW).
   */
  private elementwise(op: string, kernel: string, tensors: WebGpuTensor[], names: string[], firstOutput: number, value: number): void {
    const describe = `${op}: ${tensors.map((t, i) => `${names[i]} ${dims(t)}`).join(", ")}`;
    const count = tensors[0].size;
    const defines: Record<string, boolean> = { [kernel]: true };
    const bindings: (BindingRange | null)[] = tensors.map((t, i) => (i < firstOutput ? this.range(t, names[i]) : null));
    for (let slot = firstOutput; slot < tensors.length; slot++) {
      const input = tensors.findIndex((t, i) => i < firstOutput && sameTensor(t, tensors[slot]));
      const earlier = tensors.findIndex((t, i) => i >= firstOutput && i < slot && sameTensor(t, tensors[slot]));
      if (earlier >= 0) throw new Error(`${describe}: ${names[earlier]} and ${names[slot]} must be different tensors`);
      if (input >= 0) {
        defines[`S${slot}_${input}`] = true;
        defines[`T${input}_RW`] = true;
        bindings[input] = this.output(tensors[input], names[input]);
      } else {
        defines[`T${slot}_RW`] = true;
        bindings[slot] = this.output(tensors[slot], names[slot]);
      }
    }
    for (let i = 0; i < firstOutput; i++) defines[`T${i}`] = true;
    while (bindings.length < 5) bindings.push(null);
    this.gpu.dispatch(describe, "elementwise", defines, bindings, [count, f32(value), 0], this.gpu.grid(Math.ceil(count / 256)));
  }

  fill(t: Tensor, value: number): void {
    const tensor = this.tensor("fill", "t", t);
    const describe = `fill: t ${dtypeShape(tensor)} with ${value}`;
    const count = tensor.size;
    if (tensor.dtype === "f32" || tensor.dtype === "i32") {
      let bits: number;
      if (tensor.dtype === "f32") {
        bits = new Uint32Array(Float32Array.of(value).buffer)[0];
      } else {
        if (!Number.isInteger(value)) throw new Error(`${describe}: an i32 tensor needs an integer value`);
        bits = value | 0;
        if (tensor.storage.host) tensor.hostInts()!.fill(bits);
      }
      this.gpu.dispatch(describe, "elementwise", { FILL_WORDS: true }, [this.output(tensor, "t"), null, null, null, null],
        [count, f32(0), bits], this.gpu.grid(Math.ceil(count / 256)));
    } else {
      const bits = tensor.dtype === "bf16" ? f32ToBf16(value) : f32ToF16(value);
      this.gpu.dispatch(describe, "convert", { FILL_HALF: true, DST_F32: false }, [null, this.output(tensor, "t")],
        [count, bits], this.gpu.grid(Math.ceil(count / 256)));
    }
  }

  convert(src: Tensor, dst: Tensor): void {
    const op = "convert";
    const ts = this.tensor(op, "src", src, ["f32", "bf16", "f16"]);
    const td = this.tensor(op, "dst", dst, ["f32", "bf16", "f16"]);
    const describe = `${op}: src ${dtypeShape(ts)} → dst ${dtypeShape(td)}`;
    checkConvertShape(ts, td);
    this.gpu.dispatch(describe, "convert", { CONVERT: true, ...dtypeDefines("SRC", ts.dtype), ...dtypeDefines("DST", td.dtype) },
      [this.range(ts, "src"), this.output(td, "dst")], [ts.size, 0], this.gpu.grid(Math.ceil(ts.size / 256)));
  }

  logSoftmax(logits: Tensor, out: Tensor): void {
    const op = "logSoftmax";
    const tl = this.tensor(op, "logits", logits, ["f32"]);
    const to = this.tensor(op, "out", out, ["f32"]);
    const { rows, vocab, describe } = resolveLogitsShape(op, tl, [], [["out", to]]);
    const inPlace = sameTensor(tl, to);
    this.gpu.dispatch(describe, "softmax", { LOG_SOFTMAX: true, IN_PLACE: inPlace }, [
      inPlace ? this.output(tl, "logits") : this.range(tl, "logits"), inPlace ? null : this.output(to, "out"), null, null,
    ], [rows, vocab, f32(0)], this.gpu.grid(rows));
  }

  logSoftmaxGather(logits: Tensor, targets: Tensor, out: Tensor): void {
    const op = "logSoftmaxGather";
    const tl = this.tensor(op, "logits", logits, ["f32"]);
    const tt = this.tensor(op, "targets", targets, ["i32"]);
    const to = this.tensor(op, "out", out, ["f32"]);
    const { rows, vocab, describe } = resolveLogitsShape(op, tl, [["targets", tt], ["out", to]], []);
    tt.hostInts()?.forEach((target, r) => {
      if (target >= vocab) throw new Error(`${op}: target ${target} at row ${r} is not below vocab ${vocab}`);
    });
    this.gpu.dispatch(describe, "softmax", { GATHER: true }, [this.range(tl, "logits"), this.range(tt, "targets"),
      this.output(to, "out"), null], [rows, vocab, f32(0)], this.gpu.grid(rows));
  }

  crossEntropy(logits: Tensor, targets: Tensor, gradScale: number, losses: Tensor, dLogits: Tensor): void {
    const op = "crossEntropy";
    const tl = this.tensor(op, "logits", logits, ["f32"]);
    const tt = this.tensor(op, "targets", targets, ["i32"]);
    const tlo = this.tensor(op, "losses", losses, ["f32"]);
    const td = this.tensor(op, "dLogits", dLogits, ["f32"]);
    const { rows, vocab, describe } = resolveLogitsShape(op, tl, [["targets", tt], ["losses", tlo]], [["dLogits", td]]);
    if (!Number.isFinite(gradScale)) throw new Error(`${describe}: gradScale must be finite`);
    tt.hostInts()?.forEach((target, r) => {
      if (target < -1 || target >= vocab) throw new Error(`${op}: target ${target} at row ${r} must be -1 (ignored) or in [0, ${vocab})`);
    });
    const inPlace = sameTensor(tl, td);
    this.gpu.dispatch(describe, "softmax", { CROSS_ENTROPY: true, IN_PLACE: inPlace }, [
      inPlace ? this.output(tl, "logits") : this.range(tl, "logits"), this.range(tt, "targets"), this.output(tlo, "losses"),
      inPlace ? null : this.output(td, "dLogits"),
    ], [rows, vocab, f32(gradScale)], this.gpu.grid(rows));
  }

  scatterRows(src: Tensor, index: Tensor, dst: Tensor): void {
    const op = "scatterRows";
    const ts = this.tensor(op, "src", src);
    const ti = this.tensor(op, "index", index, ["i32"]);
    const td = this.tensor(op, "dst", dst, [ts.dtype]);
    const { rows, dstRows, width, describe } = resolveScatterRowsShape(ts, ti, td);
    const rowIndex = ti.hostInts();
    rowIndex?.forEach((row, t) => {
      if (row < 0 || row >= dstRows) throw new Error(`${op}: index ${row} at row ${t} out of range [0, ${dstRows})`);
    });
    if (td.dtype === "i32" && td.storage.host) {
      const from = ts.hostInts();
      if (from && rowIndex) {
        const to = td.hostInts()!;
        rowIndex.forEach((row, t) => to.set(from.subarray(t * width, (t + 1) * width), row * width));
      } else {
        td.storage.host = undefined; // values now known only on the GPU
      }
    }
    this.gpu.dispatch(describe, "scatter", { HALF: ELEMENT_BYTES[ts.dtype] === 2 }, [
      this.range(ts, "src"), this.range(ti, "index"), this.output(td, "dst"),
    ], [rows, dstRows, width], this.gpu.grid(rows));
  }

  // ---- training ----

  embeddingBackward(ids: Tensor, dOut: Tensor, dTable: Tensor): void {
    const op = "embeddingBackward";
    const ti = this.tensor(op, "ids", ids, ["i32"]);
    const td = this.tensor(op, "dOut", dOut, ["f32"]);
    const tt = this.tensor(op, "dTable", dTable, ["f32"]);
    const { vocab, dim, describe } = resolveEmbeddingShape(op, ti, ["dTable", tt], ["dOut", td], ["ids", "dOut", "dTable"]);
    this.checkIds(op, ti, vocab);
    const count = ti.shape[0] * dim;
    this.gpu.dispatch(describe, "embedding", { BACKWARD: true }, [this.range(ti, "ids"), this.range(td, "dOut"), this.output(tt, "dTable")],
      [ti.shape[0], dim, vocab], this.gpu.grid(Math.ceil(count / 256)));
  }

  rmsnormBackward(x: Tensor, weight: Tensor, dOut: Tensor, eps: number, dx: Tensor, dWeight: Tensor | null): void {
    const op = "rmsnormBackward";
    const tx = this.tensor(op, "x", x, ["f32"]);
    const tw = this.tensor(op, "weight", weight, ["f32", "bf16", "f16"]);
    const td = this.tensor(op, "dOut", dOut, ["f32"]);
    const tdx = this.tensor(op, "dx", dx, ["f32"]);
    const tdw = dWeight ? this.tensor(op, "dWeight", dWeight, ["f32"]) : null;
    const { dim, rows, describe } = resolveRmsnormShape(op, tx, tw, [["dOut", td], ["dx", tdx]], tdw);
    const rstd = this.alloc("f32", [Math.max(rows, 1)]);
    try {
      this.gpu.dispatch(describe, "rmsnorm", { BACKWARD_ROWS: true, ...dtypeDefines("W", tw.dtype) }, [
        this.range(tx, "x"), this.range(tw, "weight"), this.range(td, "dOut"), this.output(tdx, "dx"), this.output(rstd, "rstd"),
      ], [rows, dim, f32(eps)], this.gpu.grid(rows));
      if (tdw) {
        this.gpu.dispatch(describe, "rmsnorm", { BACKWARD_WEIGHT: true }, [
          this.range(tx, "x"), this.range(td, "dOut"), this.range(rstd, "rstd"), this.output(tdw, "dWeight"),
        ], [rows, dim], this.gpu.grid(Math.ceil(dim / 256)));
      }
    } finally {
      this.free(rstd);
    }
  }

  adamw(param: Tensor, grad: Tensor, m: Tensor, v: Tensor, hyper: AdamWHyper): void {
    const names = ["param", "grad", "m", "v"];
    const tensors = this.sameShape("adamw", names, [param, grad, m, v]);
    const { learningRate, beta1, beta2, epsilon, weightDecay, step } = hyper;
    if (!Number.isInteger(step) || step < 1) throw new Error(`adamw: step must be ≥ 1 (an integer), got ${step}`);
    for (const [name, value] of Object.entries({ learningRate, beta1, beta2, epsilon, weightDecay })) {
      if (!Number.isFinite(value)) throw new Error(`adamw: ${name} ${value} must be finite`);
    }
    const count = tensors[0].size;
    const describe = `adamw: param ${dims(tensors[0])}, step ${step}`;
    for (let i = 0; i < 4; i++) {
      for (let j = i + 1; j < 4; j++) {
        if (sameTensor(tensors[i], tensors[j])) throw new Error(`${describe}: ${names[i]} and ${names[j]} must be different tensors`);
      }
    }
    // γλ, 1 − β and the bias corrections in f64 (1 − β₂ rounded from an f32 β₂ = 0.999 is off by 1.3e-5).
    this.gpu.dispatch(describe, "optimizer", { ADAMW: true }, tensors.map((t, i) => (i === 1 ? this.range(t, names[i]) : this.output(t, names[i]))), [
      count, f32(learningRate), f32(beta1), f32(beta2), f32(epsilon), f32(learningRate * weightDecay), f32(1 - beta1 ** step),
      f32(1 - beta2 ** step), f32(1 - beta1), f32(1 - beta2),
    ], this.gpu.grid(Math.ceil(count / 256)));
  }

  /**
   * Σ x² in f64 on the host, after reading x back. (A GPU pass with compensated f32 pairs would be cheaper, but
   * shader compilers may simplify the compensation away — Mesa's does — so it could not promise 1e-12.)
   */
  async sumOfSquares(x: Tensor): Promise<number> {
    const tx = this.tensor("sumOfSquares", "x", x, ["f32"]);
    const values = (await this.download(tx)) as Float32Array;
    let sum = 0;
    for (const value of values) sum += value * value;
    return sum;
  }

  async sync(): Promise<void> {
    await this.gpu.sync();
  }

  // ---- helpers ----

  /** A tensor (or elements [start, start + count) of it) that a kernel reads. */
  private range(t: WebGpuTensor, label: string, start = 0, count = t.size - start): BindingRange {
    return { storage: t.storage, offset: t.offset, elementBytes: ELEMENT_BYTES[t.dtype], start, count, label: `${label} ${dtypeShape(t)}`, write: false };
  }

  /** A tensor (or part of it) that a kernel writes. */
  private output(t: WebGpuTensor, label: string, start = 0, count = t.size - start): BindingRange {
    return { ...this.range(t, label, start, count), write: true };
  }

  /** Rows of `rowBytes` that fit in one binding (all of them when the tensor fits). */
  private rowsPerBinding(rowBytes: number, rows: number): number {
    const budget = this.gpu.bindingLimit - this.gpu.offsetAlignment - 16;
    if (rowBytes * rows <= budget || rowBytes === 0) return Math.max(rows, 1);
    return Math.max(1, Math.floor(budget / rowBytes));
  }

  private checkIds(op: string, ids: WebGpuTensor, vocab: number): void {
    ids.hostInts()?.forEach((id, t) => {
      if (id < 0 || id >= vocab) throw new Error(`${op}: id ${id} at position ${t} out of range [0, ${vocab})`);
    });
  }

  private checkRanges(op: string, start: WebGpuTensor, end: WebGpuTensor, keys: number, what: string): void {
    const s = start.hostInts(), e = end.hostInts();
    if (!s || !e) return;
    for (let t = 0; t < s.length; t++) {
      if (s[t] < 0 || s[t] > e[t] || e[t] > keys) {
        throw new Error(`${op}: query ${t} has ${what} [${s[t]}, ${e[t]}), outside 0 ≤ start ≤ end ≤ keys = ${keys}`);
      }
    }
  }

  private tensor(op: string, name: string, t: Tensor, dtypes?: readonly DType[]): WebGpuTensor {
    if (!(t instanceof WebGpuTensor) || t.owner !== this) throw new Error(`${op}: ${name} is not a tensor of this webgpu backend`);
    if (dtypes && !dtypes.includes(t.dtype)) {
      throw new Error(`${op}: ${name} is ${dtypeShape(t)}, dtype must be ${dtypes.join(" or ")}`);
    }
    if (t.storage.freed) throw new Error(`tensor ${dtypeShape(t)} was used after free()`);
    return t;
  }

  private sameShape(op: string, names: readonly string[], tensors: readonly Tensor[]): WebGpuTensor[] {
    const checked = tensors.map((t, i) => this.tensor(op, names[i], t, ["f32"]));
    checkSameShape(op, names, checked);
    return checked;
  }
}

function f32ToBf16(value: number): number {
  const bits = new Uint32Array(Float32Array.of(value).buffer)[0];
  if ((bits & 0x7fffffff) > 0x7f800000) return ((bits >>> 16) & 0xffff) | 0x0040;
  return ((bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16) & 0xffff;
}

function f32ToF16(value: number): number {
  const f = Float32Array.of(value);
  const u = new Uint32Array(f.buffer)[0];
  const sign = (u >>> 16) & 0x8000;
  const magnitude = u & 0x7fffffff;
  if (magnitude > 0x7f800000) return sign | 0x7e00 | ((magnitude >>> 13) & 0x3ff);
  if (magnitude >= 0x477ff000) return sign | 0x7c00;
  if (magnitude < 0x38800000) {
    const units = Math.abs(f[0]) * 2 ** 24;
    let rounded = Math.floor(units);
    const rest = units - rounded;
    if (rest > 0.5 || (rest === 0.5 && rounded % 2 === 1)) rounded++;
    return sign | rounded;
  }
  const rebiased = magnitude - 0x38000000;
  return sign | (((rebiased + 0xfff + ((rebiased >>> 13) & 1)) >>> 13) & 0x7fff);
}

function formatBytes(bytes: number): string {
  if (bytes >= 2 ** 30) return `${(bytes / 2 ** 30).toFixed(1)} GiB`;
  return bytes >= 2 ** 20 ? `${Math.round(bytes / 2 ** 20)} MiB` : `${Math.round(bytes / 2 ** 10)} KiB`;
}

/** Open the best adapter and return a backend on it (throws with the reason when there is none). */
export async function createWebGpuBackend(options: WebGpuBackendOptions = {}): Promise<WebGpuBackend> {
  return WebGpuBackend.create(options);
}

export type { FloatDType };
