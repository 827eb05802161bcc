/**
 * The typed surface of the native addon (build/Release/labor_llm.node) and its loader.
 * Every function here validates its arguments natively and throws an Error naming the op and the sizes.
 */
import { createRequire } from "node:module";
import { existsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/** Dtype names as the addon spells them. */
export type NativeFloatDType = "f32" | "bf16" | "f16";
export type FloatArray = Float32Array | Uint16Array;

/** Instruction-set paths of the CPU kernels, best first. */
export type CpuIsa = "amx" | "avx512" | "avx2" | "scalar";

export interface CpuIsaInfo {
  /** Paths this CPU and OS can run, best first (always ends with "scalar"). */
  available: CpuIsa[];
  /** The path ops use now. */
  selected: CpuIsa;
  /** Raw CPU feature flags that decided `available`. */
  features: Record<string, boolean>;
  /** Why AMX is unavailable, when it is ("" otherwise). */
  amxUnavailableReason: string;
}

/** A bf16 matmul b packed once for the selected ISA (native/cpu/ops.h PackedWeight); opaque to JS. */
export interface NativePackedWeight {
  readonly __nativePackedWeight: never;
}

/** Weight packing so far, process-wide (native/cpu/ops.h PackStats): kept apart from matmul time. */
export interface CpuPackStats {
  /** Packed weights alive now, and their bytes. */
  liveWeights: number;
  liveBytes: number;
  /** Weights packed once by packWeight (cumulative) and the seconds that took. */
  cachedPacks: number;
  cachedSeconds: number;
  /** bf16 b operands the AMX matmul packed inside a call because none was packed (each call counts). */
  perCallPacks: number;
  perCallSeconds: number;
}

export interface NativeCpuOps {
  isaInfo(): CpuIsaInfo;
  /** Force an ISA path (tests, benchmarks); throws if this CPU cannot run it. */
  setIsa(isa: CpuIsa): void;
  setThreads(count: number): void;
  getThreads(): number;
  /**
   * out[bi] (+)= op(a[bi]) · op(b[bi]) for bi < batch; a f32, b f32/bf16/f16; `bBatched` false means one b
   * shared by every batch. a is [M,K] ([K,M] when transA), b is [K,N] ([N,K] when transB), out [M,N].
   */
  matmul(a: Float32Array, b: FloatArray, bDtype: NativeFloatDType, out: Float32Array,
    batch: number, m: number, n: number, k: number,
    transA: boolean, transB: boolean, bBatched: boolean, accumulate: boolean, alpha?: number,
    packedB?: NativePackedWeight | null): void;
  /**
   * b (bf16, [N,K] when transB, else [K,N]) packed for `isa`'s matmul, to pass as matmul's `packedB` with
   * this same b, n, k and transB; null when that ISA reads b in place (all but AMX). `isa` is the one the
   * matmuls will run with, not the process-wide selection (which another backend may have changed); this
   * CPU must run it. b must never change afterwards. When b lies in a mapped file, its pages are dropped
   * from RSS once packed.
   */
  packWeight(b: Uint16Array, n: number, k: number, transB: boolean, isa: CpuIsa): NativePackedWeight | null;
  /** Free a packed weight now, not at garbage collection (a matmul given it afterwards throws). */
  releasePackedWeight(packed: NativePackedWeight): void;
  packStats(): CpuPackStats;
  embedding(ids: Int32Array, table: FloatArray, tableDtype: NativeFloatDType, out: Float32Array,
    vocab: number, dim: number): void;
  rmsnorm(x: Float32Array, weight: FloatArray, weightDtype: NativeFloatDType, out: Float32Array,
    rows: number, dim: number, eps: number): void;
  rope(x: Float32Array, positions: Int32Array, invFreq: Float32Array, out: Float32Array,
    tokens: number, heads: number, headDim: number): void;
  attention(q: Float32Array, k: Float32Array, v: Float32Array, keyStart: Int32Array, keyEnd: Int32Array,
    out: Float32Array, queries: number, keys: number, heads: number, kvHeads: number, headDim: number,
    scale: number): void;
  swiglu(gate: Float32Array, up: Float32Array, out: Float32Array, count: number): void;
  add(a: Float32Array, b: Float32Array, out: Float32Array, count: number): void;
  logSoftmax(logits: Float32Array, out: Float32Array, rows: number, vocab: number): void;
  logSoftmaxGather(logits: Float32Array, targets: Int32Array, out: Float32Array, rows: number, vocab: number): void;
  /** Rows of `width` elements; src/dst are the same typed-array kind. */
  scatterRows(src: Float32Array | Uint16Array | Int32Array, index: Int32Array, dst: Float32Array | Uint16Array | Int32Array,
    rows: number, dstRows: number, width: number): void;
  /** Convert `count` elements between float dtypes (f32 → bf16/f16 rounds to nearest even). */
  convert(src: FloatArray, srcDtype: NativeFloatDType, dst: FloatArray, dstDtype: NativeFloatDType, count: number): void;

  // ---- training and scoring (native/cpu/training_ops.h) ----
  /** attention() that also writes lse [queries·heads] (−inf for an empty key range). */
  attentionForTraining(q: Float32Array, k: Float32Array, v: Float32Array, keyStart: Int32Array, keyEnd: Int32Array,
    out: Float32Array, queries: number, keys: number, heads: number, kvHeads: number, headDim: number,
    scale: number, lse: Float32Array): void;
  /** dq, dk, dv written (each disjoint from every input and from each other). */
  attentionBackward(q: Float32Array, k: Float32Array, v: Float32Array, out: Float32Array, dOut: Float32Array,
    lse: Float32Array, keyStart: Int32Array, keyEnd: Int32Array, dq: Float32Array, dk: Float32Array, dv: Float32Array,
    queries: number, keys: number, heads: number, kvHeads: number, headDim: number, scale: number): void;
  /** extraOffsets has queries + 1 entries, non-decreasing, within [0, extraKeys.length]. */
  treeAttention(q: Float32Array, k: Float32Array, v: Float32Array, prefixStart: Int32Array, prefixEnd: Int32Array,
    extraOffsets: Int32Array, extraKeys: Int32Array, out: Float32Array, queries: number, keys: number, heads: number,
    kvHeads: number, headDim: number, scale: number): void;
  embeddingBackward(ids: Int32Array, dOut: Float32Array, dTable: Float32Array, vocab: number, dim: number): void;
  rmsnormBackward(x: Float32Array, weight: FloatArray, weightDtype: NativeFloatDType, dOut: Float32Array,
    dx: Float32Array, dWeight: Float32Array | null, rows: number, dim: number, eps: number): void;
  /** dx may be dOut itself. */
  ropeBackward(dOut: Float32Array, positions: Int32Array, invFreq: Float32Array, dx: Float32Array,
    tokens: number, heads: number, headDim: number): void;
  /** Each output may be one of the inputs itself. */
  swigluBackward(gate: Float32Array, up: Float32Array, dOut: Float32Array, dGate: Float32Array, dUp: Float32Array,
    count: number): void;
  /** Targets are −1 (ignored) or in [0, vocab); dLogits may be logits itself. */
  crossEntropy(logits: Float32Array, targets: Int32Array, losses: Float32Array, dLogits: Float32Array,
    rows: number, vocab: number, gradScale: number): void;
  adamw(param: Float32Array, grad: Float32Array, m: Float32Array, v: Float32Array, count: number,
    learningRate: number, beta1: number, beta2: number, epsilon: number, weightDecay: number, step: number): void;
  sumOfSquares(x: Float32Array, count: number): number;
  /** out may be x itself. */
  scale(x: Float32Array, factor: number, out: Float32Array, count: number): void;
  fill(x: Float32Array, count: number, value: number): void;

  // ---- benchmarks ----
  /**
   * This machine's ceiling in FLOP/s for "avx512-fma" | "avx512-bf16" | "amx-bf16" | "avx2-fma": a
   * register-only micro-loop of `iterations` rounds on every pool thread at once (throws if unavailable).
   */
  peakFlops(kind: string, iterations: number): number;

  // ---- the CPU stream (off the JS thread) ----
  /**
   * record(isa): until record(null), the ops above (all but sumOfSquares, packWeight and peakFlops) check
   * their arguments at once but record their kernel, to run with `isa`, instead of running it.
   */
  record(isa: CpuIsa | null): void;
  /**
   * Runs everything recorded so far, in order, on a libuv worker thread (the kernels' thread pool as
   * usual); rejects with the first kernel's error ("<op>: …"). Throws if a previous flush is still running.
   */
  flush(): Promise<void>;
  /** Ops recorded and not yet handed to flush(). */
  pendingOps(): number;
}

/** What the addon knows about CUDA on this machine (native/addon/cuda_ops.cc). */
export interface CudaProbe {
  /** Whether the addon was compiled with the CUDA kernels (nvcc found at build time). */
  built: boolean;
  available: boolean;
  /** Why CUDA can't be used (empty when available). */
  reason: string;
  /** Built only: CMAKE_CUDA_ARCHITECTURES of the build, e.g. "80-real,90". */
  archs?: string;
  device?: string;
  computeCapability?: string;
  multiprocessors?: number;
  memoryBytes?: number;
  /** CUDA versions ×1000 (12040 = 12.4); driverVersion 0 = no driver. */
  driverVersion?: number;
  runtimeVersion?: number;
}

/** An opaque device allocation (a type-tagged External; freed by free() or when garbage-collected). */
export interface CudaBufferHandle {
  readonly __cudaBuffer: unique symbol;
}

/**
 * A tensor as the CUDA bindings read it: `size` elements of `dtype` at `byteOffset` in `handle`'s allocation.
 * i32 tensors carry `host`, a mirror of their values that index checks (ids, targets, ranges) read.
 */
export interface CudaTensorView {
  readonly handle: CudaBufferHandle;
  readonly byteOffset: number;
  readonly size: number;
  readonly dtype: "f32" | "bf16" | "f16" | "i32";
  readonly host?: Int32Array;
}

/** exports.cuda when the addon was built with CUDA (every function validates sizes and throws "<op>: …"). */
export interface NativeCudaOps {
  probe(): CudaProbe;
  alloc(bytes: number, zero: boolean): CudaBufferHandle;
  free(handle: CudaBufferHandle): void;
  /** data: a typed array with exactly t's bytes. */
  upload(t: CudaTensorView, data: Float32Array | Uint16Array | Int32Array): void;
  /** Snapshot now (later ops can't change it), read back off the JS thread; 16-bit floats come back as f32. */
  download(t: CudaTensorView): Promise<Float32Array | Int32Array>;
  sumOfSquares(x: CudaTensorView, count: number): Promise<number>;
  /** Resolves when everything queued so far has finished. */
  synchronize(): Promise<void>;
  /** Queues a timing event; returns its index (profiling without synchronising). */
  timingMark(): number;
  /** Waits for the last mark; each mark's GPU time in ms after mark 0; forgets them. */
  takeTimingMarks(): Float64Array;
  matmul(a: CudaTensorView, b: CudaTensorView, out: CudaTensorView, batch: number, m: number, n: number, k: number,
    transA: boolean, transB: boolean, bBatched: boolean, accumulate: boolean, alpha: number): void;
  embedding(ids: CudaTensorView, table: CudaTensorView, out: CudaTensorView, vocab: number, dim: number): void;
  embeddingBackward(ids: CudaTensorView, dOut: CudaTensorView, dTable: CudaTensorView, vocab: number, dim: number): void;
  rmsnorm(x: CudaTensorView, weight: CudaTensorView, out: CudaTensorView, rows: number, dim: number, eps: number): void;
  rmsnormBackward(x: CudaTensorView, weight: CudaTensorView, dOut: CudaTensorView, dx: CudaTensorView,
    dWeight: CudaTensorView | null, rows: number, dim: number, eps: number): void;
  rope(x: CudaTensorView, positions: CudaTensorView, invFreq: CudaTensorView, out: CudaTensorView, tokens: number,
    heads: number, headDim: number): void;
  ropeBackward(dOut: CudaTensorView, positions: CudaTensorView, invFreq: CudaTensorView, dx: CudaTensorView,
    tokens: number, heads: number, headDim: number): void;
  attention(q: CudaTensorView, k: CudaTensorView, v: CudaTensorView, keyStart: CudaTensorView, keyEnd: CudaTensorView,
    out: CudaTensorView, queries: number, keys: number, heads: number, kvHeads: number, headDim: number, scale: number): void;
  attentionForTraining(q: CudaTensorView, k: CudaTensorView, v: CudaTensorView, keyStart: CudaTensorView,
    keyEnd: CudaTensorView, out: CudaTensorView, queries: number, keys: number, heads: number, kvHeads: number,
    headDim: number, scale: number, lse: CudaTensorView, bf16: boolean): void;
  attentionBackward(q: CudaTensorView, k: CudaTensorView, v: CudaTensorView, out: CudaTensorView, dOut: CudaTensorView,
    lse: CudaTensorView, keyStart: CudaTensorView, keyEnd: CudaTensorView, dq: CudaTensorView, dk: CudaTensorView,
    dv: CudaTensorView, queries: number, keys: number, heads: number, kvHeads: number, headDim: number, scale: number,
    bf16: boolean): void;
  treeAttention(q: CudaTensorView, k: CudaTensorView, v: CudaTensorView, prefixStart: CudaTensorView,
    prefixEnd: CudaTensorView, extraOffsets: CudaTensorView, extraKeys: CudaTensorView, out: CudaTensorView,
    queries: number, keys: number, heads: number, kvHeads: number, headDim: number, scale: number): void;
  swiglu(gate: CudaTensorView, up: CudaTensorView, out: CudaTensorView, count: number): void;
  swigluBackward(gate: CudaTensorView, up: CudaTensorView, dOut: CudaTensorView, dGate: CudaTensorView,
    dUp: CudaTensorView, count: number): void;
  add(a: CudaTensorView, b: CudaTensorView, out: CudaTensorView, count: number): void;
  scale(x: CudaTensorView, factor: number, out: CudaTensorView, count: number): void;
  fill(t: CudaTensorView, value: number): void;
  convert(src: CudaTensorView, dst: CudaTensorView): void;
  logSoftmax(logits: CudaTensorView, out: CudaTensorView, rows: number, vocab: number): void;
  logSoftmaxGather(logits: CudaTensorView, targets: CudaTensorView, out: CudaTensorView, rows: number, vocab: number): void;
  crossEntropy(logits: CudaTensorView, targets: CudaTensorView, losses: CudaTensorView, dLogits: CudaTensorView,
    rows: number, vocab: number, gradScale: number): void;
  scatterRows(src: CudaTensorView, index: CudaTensorView, dst: CudaTensorView, rows: number, dstRows: number,
    width: number): void;
  adamw(param: CudaTensorView, grad: CudaTensorView, m: CudaTensorView, v: CudaTensorView, count: number,
    learningRate: number, beta1: number, beta2: number, epsilon: number, weightDecay: number, step: number): void;
}

export interface NativeAddon {
  /** A private, copy-on-write memory mapping of the whole file (the file itself is never written). */
  mapFile(path: string): ArrayBuffer;
  cpu: NativeCpuOps;
  /** Always present; only `probe` unless the addon was built with CUDA (then check probe().built). */
  cuda: Pick<NativeCudaOps, "probe"> & Partial<NativeCudaOps>;
}

const projectRoot = resolve(dirname(fileURLToPath(import.meta.url)), findUp(dirname(fileURLToPath(import.meta.url))));

/** Directory of package.json, relative to this file (src/engine when run from source, dist/src/engine when built). */
function findUp(start: string): string {
  let relative = "..";
  for (let depth = 0; depth < 5; depth++) {
    if (existsSync(join(start, relative, "package.json")) && existsSync(join(start, relative, "CMakeLists.txt"))) {
      return relative;
    }
    relative = join(relative, "..");
  }
  return join("..", "..");
}

let cached: NativeAddon | undefined;

/** Load the addon once; a clear error says how to build it when it is missing. */
export function loadNative(): NativeAddon {
  if (cached) return cached;
  const candidates = [
    process.env.LABOR_LLM_ADDON,
    join(projectRoot, "build", "Release", "labor_llm.node"),
    join(projectRoot, "build-debug", "Debug", "labor_llm.node"),
  ].filter((p): p is string => typeof p === "string" && p.length > 0);
  const found = candidates.find((p) => existsSync(p));
  if (!found) {
    throw new Error(
      `native addon not built (looked for ${candidates.join(", ")}): run \`npm run build:native\` (needs cmake and g++)`,
    );
  }
  const require = createRequire(import.meta.url);
  cached = require(found) as NativeAddon;
  return cached;
}
