/**
 * The shared op suite on the CUDA backend, when this machine has a usable NVIDIA GPU and the addon was built
 * with nvcc; otherwise one skipped test whose name says why. Plus CUDA-specific checks the suite's small
 * shapes don't reach: the tensor-core matmul's 16-byte-load path and several block tiles, attention with
 * head dims that need > 48 KiB of shared memory, views into device buffers, use after free, sync.
 * (bench/device/cuda-check.sh runs this file on a GPU machine.)
 */
import { describe, expect, it, onTestFinished } from "vitest";
import type { Backend, Tensor } from "../src/engine/backend.js";
import { createCpuBackend } from "../src/engine/cpu/backend.js";
import { CudaBackend, cudaStatus } from "../src/engine/cuda/backend.js";
import { F32_TOLERANCE, defineOpSuite, keyRanges, makeRandom, randomF32 } from "./op-suite.js";
import { fromBf16Bits, matmulRef, relativeError, roundedToBf16, toBf16Bits } from "./reference.js";

const status = cudaStatus();

if ("reason" in status) {
  it.skipIf(true)(`cuda: ${status.reason}`, () => {});
} else {
  defineOpSuite("cuda", () => CudaBackend.create());

  describe("cuda backend", () => {
    const cuda = CudaBackend.create();
    const cpu = createCpuBackend();

    it("describes the device", () => {
      expect(cuda.describe()).toMatch(/^cuda \(.+compute \d+\.\d+.+kernels built for .+\)$/);
    });

    // The tensor-core kernels: the cp.async + mma.sync one, the wmma one (also every unaligned b) and the Hopper
    // wgmma one (b's rows a multiple of 8 on compute 9.0, read K-major for b [N, K] and N-major for b [K, N], else
    // the mma kernel), each forced by LABOR_CUDA_GEMM, a transposed a converted through the tiled transpose,
    // and "auto" (any other value, like unset): the choice by GPU and shape. K = 100 and 40: a zero-padded to K8, tiles
    // cut short; N = 250: unaligned rows. Batched cases accumulate into out. The mma kernel splits K where the
    // output grid is small: [1,300,264,520] (4 splits, the last one short), [1,1,4096,4096], LoRA's
    // [1,1024,16,4096] and the batched, accumulating [2,64,16,1024]. With "auto", N ≤ 32 runs on the skinny
    // kernels (a row-major: a block per 2–4 rows; aᵀ: a block per 32 columns) for N = 8, 12, 16, 24, 32: N < the
    // kernel's width, M not a multiple of its rows, K not of its step; N = 12 with b [K, N] (rows not 16-byte
    // multiples) falls back to the tensor cores.
    // "wgmma+rows": the wgmma kernel with its blocks walking row tiles first (LABOR_CUDA_RASTER=rows).
    it.each(["auto", "mma", "wmma", "wgmma", "wgmma+rows"])("bf16 tensor-core matmul on multi-tile shapes (vector and scalar loads, both b layouts), %s kernel", async (kernel) => {
      const random = makeRandom(101);
      process.env.LABOR_CUDA_GEMM = kernel.replace("+rows", "");
      if (kernel.endsWith("+rows")) process.env.LABOR_CUDA_RASTER = "rows";
      onTestFinished(() => { delete process.env.LABOR_CUDA_GEMM; delete process.env.LABOR_CUDA_RASTER; });
      for (const [batch, m, n, k] of [[1, 300, 264, 520], [2, 130, 136, 64], [1, 257, 250, 100], [1, 70, 264, 100], [3, 200, 128, 40],
        [1, 1, 4096, 4096], [1, 1024, 16, 4096], [2, 64, 16, 1024], [1, 37, 24, 264], [2, 45, 8, 1000], [1, 33, 12, 96],
        [1, 300, 32, 520]]) {
        for (const [transA, transB] of [[false, false], [false, true], [true, false], [true, true]]) {
          const a = randomF32(random, batch * m * k);
          const bBits = toBf16Bits(randomF32(random, k * n));
          const accumulate = batch > 1, initial = randomF32(random, batch * m * n);
          const out = cuda.upload(initial, "f32", batch === 1 ? [m, n] : [batch, m, n]);
          const aShape = transA ? [k, m] : [m, k];
          cuda.matmul(cuda.upload(a, "f32", batch === 1 ? aShape : [batch, ...aShape]), cuda.weight(bBits, "bf16", transB ? [n, k] : [k, n]),
            out, { transA, transB, alpha: 0.5, accumulate });
          const got = await cuda.download(out);
          // The reference reads a row-major (a transposed here first: strided reads of a 1024-wide aᵀ take seconds).
          const aRounded = roundedToBf16(transA ? transposeBatched(a, batch, k, m) : a);
          const want = matmulRef(aRounded, fromBf16Bits(bBits),
            { batch, m, n, k, transA: false, transB, bBatched: false }).map((x, i) => 0.5 * x + (accumulate ? initial[i] : 0));
          const error = relativeError(got, want);
          expect(error, `[${batch},${m},${n},${k}] transA ${transA} transB ${transB}: ${error}`).toBeLessThanOrEqual(F32_TOLERANCE);
        }
      }
    });

    it("f32 matmul with split K (long K, small output) equals the CPU backend", async () => {
      const random = makeRandom(103);
      const [m, n, k] = [16, 4096, 2048];
      const a = randomF32(random, k * m), b = randomF32(random, k * n);
      const results: Float32Array[] = [];
      for (const backend of [cuda, cpu] as Backend[]) {
        const out = backend.upload(randomF32(makeRandom(7), m * n), "f32", [m, n]);
        backend.matmul(backend.upload(a, "f32", [k, m]), backend.upload(b, "f32", [k, n]), out, { transA: true, accumulate: true });
        results.push((await backend.download(out)) as Float32Array);
      }
      expect(relativeError(results[0], results[1])).toBeLessThanOrEqual(F32_TOLERANCE);
    });

    it("attention forward/backward at Llama head dims (64, 128, 256) equal the CPU backend", async () => {
      const random = makeRandom(107);
      for (const [queries, heads, kvHeads, headDim] of [[70, 4, 2, 64], [45, 2, 2, 128], [33, 4, 1, 256]]) {
        const q = randomF32(random, queries * heads * headDim), k = randomF32(random, queries * kvHeads * headDim);
        const v = randomF32(random, queries * kvHeads * headDim), dOut = randomF32(random, queries * heads * headDim);
        const ranges = keyRanges("packed", queries, queries, random);
        const scale = 1 / Math.sqrt(headDim);
        const results: Float32Array[][] = [];
        for (const backend of [cuda, cpu] as Backend[]) {
          const up = (x: Float32Array, h: number) => backend.upload(x, "f32", [queries, h, headDim]);
          const [tq, tk, tv, tdo] = [up(q, heads), up(k, kvHeads), up(v, kvHeads), up(dOut, heads)];
          const start = backend.upload(ranges.start, "i32", [queries]), end = backend.upload(ranges.end, "i32", [queries]);
          const out = backend.alloc("f32", [queries, heads, headDim]), lse = backend.alloc("f32", [queries, heads]);
          backend.attentionForTraining(tq, tk, tv, start, end, scale, out, lse);
          const dq = backend.alloc("f32", [queries, heads, headDim]);
          const dk = backend.alloc("f32", [queries, kvHeads, headDim]), dv = backend.alloc("f32", [queries, kvHeads, headDim]);
          backend.attentionBackward(tq, tk, tv, out, tdo, lse, start, end, scale, dq, dk, dv);
          results.push(await Promise.all([out, lse, dq, dk, dv].map((t) => backend.download(t))) as Float32Array[]);
        }
        ["out", "lse", "dq", "dk", "dv"].forEach((name, i) => {
          const error = relativeError(results[0][i], results[1][i]);
          expect(error, `${name} hd ${headDim}: ${error}`).toBeLessThanOrEqual(F32_TOLERANCE);
        });
      }
    });

    // Tensor-core training attention (matmulDtype "bf16"): head dims 32, 64, 128 with several 64-row blocks, partial
    // last blocks, GQA, and "partial" ranges (random sub-ranges, every third empty: masking inside tiles, lse −inf);
    // head dim 80 has no tensor-core kernel and must give the f32 kernel's result. Tolerance: q, k, v, dO, P and
    // dS are rounded to bf16 (2⁻⁹ relative) before f32-accumulated products.
    it("bf16 training attention (tensor cores) is within bf16 rounding of the CPU's f32 and differs from CUDA's f32", async () => {
      const random = makeRandom(211);
      const cases: [number, number, number, number, "causal" | "packed" | "partial"][] = [
        [150, 4, 2, 64, "partial"], [130, 2, 2, 128, "causal"], [70, 4, 1, 32, "packed"], [200, 2, 1, 128, "partial"],
        [40, 2, 2, 80, "causal"],
      ];
      for (const [queries, heads, kvHeads, headDim, kind] of cases) {
        const q = randomF32(random, queries * heads * headDim), k = randomF32(random, queries * kvHeads * headDim);
        const v = randomF32(random, queries * kvHeads * headDim), dOut = randomF32(random, queries * heads * headDim);
        const ranges = keyRanges(kind, queries, queries, random);
        const scale = 1 / Math.sqrt(headDim);
        const run = async (backend: Backend, matmulDtype: "f32" | "bf16") => {
          const up = (x: Float32Array, h: number) => backend.upload(x, "f32", [queries, h, headDim]);
          const [tq, tk, tv, tdo] = [up(q, heads), up(k, kvHeads), up(v, kvHeads), up(dOut, heads)];
          const start = backend.upload(ranges.start, "i32", [queries]), end = backend.upload(ranges.end, "i32", [queries]);
          const out = backend.alloc("f32", [queries, heads, headDim]), lse = backend.alloc("f32", [queries, heads]);
          backend.attentionForTraining(tq, tk, tv, start, end, scale, out, lse, { matmulDtype });
          const dq = backend.alloc("f32", [queries, heads, headDim]);
          const dk = backend.alloc("f32", [queries, kvHeads, headDim]), dv = backend.alloc("f32", [queries, kvHeads, headDim]);
          backend.attentionBackward(tq, tk, tv, out, tdo, lse, start, end, scale, dq, dk, dv, { matmulDtype });
          return await Promise.all([out, lse, dq, dk, dv].map((t) => backend.download(t))) as Float32Array[];
        };
        const [bf16, f32, reference] = [await run(cuda, "bf16"), await run(cuda, "f32"), await run(cpu, "f32")];
        const what = `${kind} q ${queries} heads ${heads}/${kvHeads} hd ${headDim}`;
        const finite = (x: Float32Array, like: Float32Array) => x.filter((_, i) => Number.isFinite(like[i]));
        expect(Array.from(bf16[1]).map(Number.isFinite), `lse −inf pattern ${what}`).toEqual(Array.from(reference[1]).map(Number.isFinite));
        const tensorCores = headDim !== 80;
        ["out", "lse", "dq", "dk", "dv"].forEach((name, i) => {
          const [got, want] = i === 1 ? [finite(bf16[i], reference[i]), finite(reference[i], reference[i])] : [bf16[i], reference[i]];
          const error = relativeError(got, want);
          expect(error, `${name} ${what}: ${error}`).toBeLessThanOrEqual(tensorCores ? 2e-2 : F32_TOLERANCE);
        });
        const fromF32 = relativeError(bf16[0], f32[0]);
        if (tensorCores) expect(fromF32, `out ${what} should carry bf16 rounding`).toBeGreaterThan(1e-5);
        else expect(fromF32, `out ${what} (f32 fallback)`).toBe(0);
      }
    });

    it("views: sliceRows/reshape of device tensors feed ops and downloads", async () => {
      const x = cuda.upload(Float32Array.from({ length: 24 }, (_, i) => i), "f32", [6, 4]);
      const rows = cuda.sliceRows(x, 2, 3);
      expect(Array.from(await cuda.download(rows))).toEqual(Array.from({ length: 12 }, (_, i) => i + 8));
      const doubled = cuda.alloc("f32", [3, 4]);
      cuda.scale(rows, 2, doubled);
      expect(Array.from(await cuda.download(cuda.reshape(doubled, [12])))).toEqual(Array.from({ length: 12 }, (_, i) => 2 * (i + 8)));
      const ids = cuda.upload(Int32Array.from([5, 6, 7, 8]), "i32", [4]);
      const tail = cuda.sliceRows(ids, 1, 3);
      cuda.fill(tail, 1);
      expect(Array.from(await cuda.download(ids))).toEqual([5, 1, 1, 1]);
    });

    it("a download is a snapshot: later ops don't change what it returns", async () => {
      const t = cuda.upload(Float32Array.of(1, 2, 3), "f32", [3]);
      const before = cuda.download(t);
      cuda.fill(t, 9);
      expect(Array.from(await before)).toEqual([1, 2, 3]);
      await cuda.sync();
      expect(Array.from(await cuda.download(t))).toEqual([9, 9, 9]);
    });

    it("use after free throws, naming the tensor; CPU tensors are refused", () => {
      const t: Tensor = cuda.alloc("f32", [2, 2]);
      cuda.free(t);
      expect(() => cuda.fill(t, 0)).toThrow(/used after free/);
      expect(() => cuda.add(cpu.alloc("f32", [2]), cpu.alloc("f32", [2]), cpu.alloc("f32", [2]))).toThrow(/^add: a is not a CUDA tensor/);
    });
  });
}

/** [batch, rows, cols] → [batch, cols, rows]. */
function transposeBatched(x: Float32Array, batch: number, rows: number, cols: number): Float32Array {
  const out = new Float32Array(x.length);
  for (let b = 0; b < batch; b++) {
    for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[(b * cols + c) * rows + r] = x[(b * rows + r) * cols + c];
  }
  return out;
}
