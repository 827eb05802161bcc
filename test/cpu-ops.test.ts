/**
 * The CPU backend on every ISA path this CPU can run (each forced in turn), the paths it can't run reported
 * as skipped, plus CPU-specific checks: thread-count independence and the native dtype conversions.
 */
import { describe, expect, it } from "vitest";
import { createCpuBackend } from "../src/engine/cpu/backend.js";
import { loadNative, type CpuIsa } from "../src/engine/native.js";
import { defineOpSuite, F32_TOLERANCE, makeRandom, randomF32 } from "./op-suite.js";
import { matmulRef, numberToBf16, numberToF16, relativeError } from "./reference.js";

const ALL_ISAS: readonly CpuIsa[] = ["amx", "avx512", "avx2", "scalar"];
const cpu = loadNative().cpu;
const info = cpu.isaInfo();

for (const isa of ALL_ISAS) {
  if (info.available.includes(isa)) {
    defineOpSuite(`cpu ${isa}`, () => createCpuBackend({ isa }));
  } else {
    const why = isa === "amx" ? info.amxUnavailableReason : "missing CPU features";
    it.skipIf(true)(`cpu ${isa}: not available on this CPU (${why})`, () => {});
  }
}

describe("cpu backend", () => {
  it("describes the forced ISA, the available ones and the threads", () => {
    const backend = createCpuBackend({ isa: "scalar" });
    expect(backend.describe()).toMatch(new RegExp(`^cpu \\(scalar forced; available: ${info.available.join(", ")}; \\d+ threads?\\)$`));
  });

  it("refuses an ISA this CPU can't run, naming it", () => {
    for (const isa of ALL_ISAS.filter((i) => !info.available.includes(i))) {
      expect(() => createCpuBackend({ isa })).toThrow(new RegExp(`ISA ${isa} is not available`));
    }
    expect(() => cpu.setIsa("sse" as CpuIsa)).toThrow(/^setIsa: unknown ISA "sse"/);
  });

  it("matmul gives bit-identical results on 1 thread and on all threads, on every ISA", async () => {
    const random = makeRandom(5);
    const [m, n, k] = [67, 300, 129];
    const a = randomF32(random, m * k);
    const b = Uint16Array.from(randomF32(random, n * k), numberToBf16);
    const previous = cpu.getThreads();
    try {
      for (const isa of info.available) {
        const results: Float32Array[] = [];
        for (const threads of [1, 4]) {
          const backend = createCpuBackend({ isa, threads });
          const out = backend.alloc("f32", [m, n]);
          backend.matmul(backend.upload(a, "f32", [m, k]), backend.weight(b, "bf16", [n, k]), out, { transB: true });
          results.push((await backend.download(out)) as Float32Array);
        }
        expect(Array.from(results[1]), `${isa}`).toEqual(Array.from(results[0]));
      }
    } finally {
      cpu.setThreads(previous);
    }
  });

  it("matmul with b stored [K, N] (the backward products) is bit-identical on 1 thread and on all threads", async () => {
    // dX = dY·W with a long K over a small output (split into K ranges, summed in a fixed order) and
    // dW += dYᵀ·X (transA, accumulate), with f32 and bf16 b.
    const random = makeRandom(9);
    const products = [
      { m: 21, n: 70, k: 3001, transA: false, accumulate: false },
      { m: 301, n: 27, k: 133, transA: true, accumulate: true },
    ];
    const previous = cpu.getThreads();
    try {
      for (const { m, n, k, transA, accumulate } of products) {
        const a = randomF32(random, m * k), initial = randomF32(random, m * n);
        const bF32 = randomF32(random, k * n);
        for (const dtype of ["f32", "bf16"] as const) {
          const b = dtype === "f32" ? bF32 : Uint16Array.from(bF32, numberToBf16);
          for (const isa of info.available) {
            const results: Float32Array[] = [];
            for (const threads of [1, 4]) {
              const backend = createCpuBackend({ isa, threads });
              const out = backend.upload(initial, "f32", [m, n]);
              backend.matmul(backend.upload(a, "f32", transA ? [k, m] : [m, k]), backend.weight(b, dtype, [k, n]), out, { transA, accumulate });
              results.push((await backend.download(out)) as Float32Array);
            }
            expect(Array.from(results[1]), `${isa} ${dtype} ${JSON.stringify({ m, n, k, transA })}`).toEqual(Array.from(results[0]));
          }
        }
      }
    } finally {
      cpu.setThreads(previous);
    }
  });

  it("matmul against a b over 16 MiB (taller task blocks) matches the reference, and the block height does not change a bit", async () => {
    // gemm_blocked.h gives a b of at most 16 MiB shorter task blocks than a larger one. A transB f32 b of
    // 32,800 × 130 (17 MB) takes the tall blocks; each half of it (8.5 MB) the short ones, and their products
    // must be the full product's columns bit for bit (every element is summed in the same order either way).
    const random = makeRandom(13);
    const [m, n, k] = [200, 32_800, 130];  // m over one tall block (192 rows on AVX2 and AVX-512)
    expect(n * k * 4).toBeGreaterThan(16 * 2 ** 20);
    const a = randomF32(random, m * k), b = randomF32(random, n * k);
    const half = n / 2;
    const want = matmulRef(a, b, { batch: 1, m, n, k, transA: false, transB: true, bBatched: false });
    for (const isa of info.available) {
      const backend = createCpuBackend({ isa });
      const aT = backend.upload(a, "f32", [m, k]);
      const product = async (weight: Float32Array, columns: number) => {
        const out = backend.alloc("f32", [m, columns]);
        backend.matmul(aT, backend.weight(weight, "f32", [columns, k]), out, { transB: true });
        return (await backend.download(out)) as Float32Array;
      };
      const full = await product(b, n);
      expect(relativeError(full, want), isa).toBeLessThanOrEqual(F32_TOLERANCE);
      const left = await product(b.subarray(0, half * k), half), right = await product(b.subarray(half * k), half);
      const joined = new Float32Array(m * n);
      for (let i = 0; i < m; i++) {
        joined.set(left.subarray(i * half, (i + 1) * half), i * n);
        joined.set(right.subarray(i * half, (i + 1) * half), i * n + half);
      }
      expect(joined.every((value, i) => Object.is(value, full[i])), `${isa}: halves differ from the full product`).toBe(true);
    }
  });

  it("training reductions (attention backward, embedding/rmsnorm backward, sumOfSquares) don't depend on the thread count", async () => {
    // Each gradient row has one writer and sums run in a fixed order, so 1 and 4 threads agree bit for bit.
    const random = makeRandom(7);
    const [T, H, KV, hd, vocab] = [37, 4, 2, 24, 9];
    const q = randomF32(random, T * H * hd), k = randomF32(random, T * KV * hd), v = randomF32(random, T * KV * hd);
    const dOut = randomF32(random, T * H * hd);
    const ids = Int32Array.from({ length: T }, (_, t) => (t * 5) % vocab);
    const previous = cpu.getThreads();
    try {
      for (const isa of info.available) {
        const results: number[][] = [];
        for (const threads of [1, 4]) {
          const be = createCpuBackend({ isa, threads });
          const [qT, kT, vT, dOutT] = [be.upload(q, "f32", [T, H, hd]), be.upload(k, "f32", [T, KV, hd]),
            be.upload(v, "f32", [T, KV, hd]), be.upload(dOut, "f32", [T, H, hd])];
          const start = be.upload(new Int32Array(T), "i32", [T]);
          const end = be.upload(Int32Array.from({ length: T }, (_, t) => t + 1), "i32", [T]);
          const out = be.alloc("f32", [T, H, hd]), lse = be.alloc("f32", [T, H]);
          const dq = be.alloc("f32", [T, H, hd]), dk = be.alloc("f32", [T, KV, hd]), dv = be.alloc("f32", [T, KV, hd]);
          be.attentionForTraining(qT, kT, vT, start, end, 0.2, out, lse);
          be.attentionBackward(qT, kT, vT, out, dOutT, lse, start, end, 0.2, dq, dk, dv);
          const rows = be.reshape(dOutT, [T, H * hd]);
          const dTable = be.alloc("f32", [vocab, H * hd]);
          be.fill(dTable, 0);
          be.embeddingBackward(be.upload(ids, "i32", [T]), rows, dTable);
          const dx = be.alloc("f32", [T, H * hd]), dWeight = be.alloc("f32", [H * hd]);
          be.fill(dWeight, 0);
          be.rmsnormBackward(be.reshape(qT, [T, H * hd]), be.upload(randomF32(makeRandom(3), H * hd), "f32", [H * hd]), rows, 1e-5, dx, dWeight);
          const sum = await be.sumOfSquares(be.upload(randomF32(makeRandom(4), 100_000), "f32", [100_000]));
          const all = [dq, dk, dv, dTable, dx, dWeight].map(async (t) => Array.from(await be.download(t)));
          results.push([...(await Promise.all(all)).flat(), sum]);
        }
        expect(results[1], isa).toEqual(results[0]);
      }
    } finally {
      cpu.setThreads(previous);
    }
  });

  it("converts f32 → bf16/f16 with round-to-nearest-even, like the TS reference, edge cases included", () => {
    const special = [0, -0, 1, -1, 65504, 65519, 65520, 1e6, -1e6, Infinity, -Infinity, NaN, 2 ** -24, 2 ** -25,
      3 * 2 ** -25, 2 ** -14, 2 ** -15 + 2 ** -25, 1 + 2 ** -8, 1 + 3 * 2 ** -8, 1 + 2 ** -11, 1e-40, 3.4e38];
    const values = Float32Array.from([...special, ...randomF32(makeRandom(9), 2000, 100)]);
    // A NaN with a payload only in the low 16 bits must stay NaN in bf16 (not round to infinity).
    new Uint32Array(values.buffer)[0] = 0x7f800001;
    for (const [dtype, encode] of [["bf16", numberToBf16], ["f16", numberToF16]] as const) {
      const got = new Uint16Array(values.length);
      cpu.convert(values, "f32", got, dtype, values.length);
      expect(Array.from(got), dtype).toEqual(Array.from(values, encode));
    }
    expect(numberToBf16(new Float32Array(new Uint32Array([0x7f800001]).buffer)[0])).toBe(0x7fc0);
  });

  it("native validation: wrong array kinds, lengths and counts never reach a kernel", () => {
    const f = (n: number) => new Float32Array(n);
    expect(() => cpu.matmul(f(10), f(4), "f32", f(4), 1, 2, 2, 6, false, false, false, false))
      .toThrow("matmul: a has 10 elements, expected batch·M·K = 12");
    expect(() => cpu.matmul(f(4), f(4), "bf16", f(4), 1, 2, 2, 2, false, false, false, false))
      .toThrow(/^matmul: b must be a Uint16Array for dtype bf16/);
    const untyped = cpu.matmul as (...args: unknown[]) => void;
    expect(() => untyped(f(4), f(4), "f32", f(4), 1, 2, 2, 2, false, false, false))
      .toThrow(/^matmul: expected 12 arguments \(13 with alpha, 14 with a packed b\), got 11/);
    expect(() => cpu.matmul(f(4), f(4), "f32", f(4), -1, 2, 2, 2, false, false, false, false))
      .toThrow(/^matmul: batch must be a non-negative integer/);
    expect(() => cpu.matmul(f(0), f(0), "f32", f(0), 2 ** 40, 2 ** 40, 0, 0, false, false, false, false))
      .toThrow(/^matmul: out has 0 elements|^matmul: sizes overflow/);
    expect(() => cpu.matmul(f(1), f(1), "f32", f(1), 2 ** 40, 2 ** 40, 2 ** 40, 1, false, false, false, false))
      .toThrow(/^matmul: sizes overflow/);
    const shared = f(8);
    expect(() => cpu.matmul(shared.subarray(0, 4), f(4), "f32", shared.subarray(2, 6), 1, 2, 2, 2, false, false, false, false))
      .toThrow(/^matmul: out must not share memory with a/);
    expect(() => cpu.attention(f(8), f(8), f(8), new Int32Array(1), new Int32Array(1), f(8), 1, 1, 0, 0, 8, 1))
      .toThrow(/^attention: heads 0 must be a positive multiple of kvHeads 0/);
    expect(() => cpu.rmsnorm(f(4), f(2), "f32", f(4), 2, 2, NaN)).toThrow(/^rmsnorm: eps must be finite/);
    expect(() => cpu.convert(f(4), "f32", new Uint16Array(4), "f8" as "f16", 4)).toThrow(/^convert: dstDtype must be/);
  });
});
