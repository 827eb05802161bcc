/**
 * The shared op suite: one test body run against any Backend (DESIGN.md "Testing"). Every op is compared
 * with the naive float64 references in test/reference.ts on fresh seeded random inputs of awkward shapes;
 * outputs are poisoned with NaN first, so an op that leaves any element unwritten fails.
 *
 * Tolerances, as relative norm error ‖got − ref‖ / ‖ref‖:
 * - f32 arithmetic: 1e-5. One f32 rounding is 6e-8; sums of up to ~150 terms in a different order than
 *   the reference, exp/log, and online-softmax rescaling stay well below 1e-6 on these inputs, so 1e-5
 *   catches any indexing or masking slip (those give errors of order 1) while leaving headroom.
 * - matmul with bf16 b: b's values are exact (bf16 decodes exactly), but a backend may round a to bf16
 *   before multiplying (the AMX path does; tile products are exact in f32). So the result must match
 *   one of two exact-arithmetic models to 1e-5 — a in f32, or a rounded to bf16 (nearest even) — and be
 *   within 1e-2 of the f32 one: rounding a to bf16 perturbs each product by at most 2⁻⁹ relative, which
 *   on random data gives ~1e-3; 1e-2 allows for cancellation.
 */
import { beforeAll, describe, expect, it } from "vitest";
import type { Backend, DType, Tensor } from "../src/engine/backend.js";
import {
  addRef, attentionRef, decode, embeddingRef, logSoftmaxGatherRef, logSoftmaxRef, matmulRef,
  numberToBf16, numberToF16, relativeError, rmsnormRef, roundedToBf16, ropeRef, scatterRowsRef, swigluRef, type MatmulShape,
} from "./reference.js";
import { defineTrainingOpTests } from "./op-suite-training.js";

export const F32_TOLERANCE = 1e-5;
export const BF16_A_TOLERANCE = 1e-2;

/** mulberry32: small, seeded, reproducible. */
export function makeRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function randomF32(random: () => number, count: number, scale = 1): Float32Array {
  const out = new Float32Array(count); // a loop: Float32Array.from({ length }, f) is far slower for big counts
  for (let i = 0; i < count; i++) out[i] = (random() * 2 - 1) * scale;
  return out;
}

/** Host data for a float tensor of `dtype` from f32 values, and the exact values it holds. */
export function encodeFloat(values: Float32Array, dtype: "f32" | "bf16" | "f16"): { data: Float32Array | Uint16Array; exact: Float64Array } {
  if (dtype === "f32") return { data: values, exact: Float64Array.from(values) };
  const data = Uint16Array.from(values, dtype === "bf16" ? numberToBf16 : numberToF16);
  return { data, exact: decode(data, dtype) };
}

function poisoned(backend: Backend, shape: readonly number[]): Tensor {
  const size = shape.reduce((p, d) => p * d, 1);
  return backend.upload(new Float32Array(size).fill(NaN), "f32", shape);
}

const FLOAT_DTYPES = ["f32", "bf16", "f16"] as const;

/**
 * [batch, M, N, K]; batch 1 runs with 2-D operands. Few rows with transB reach the CPU's few-row kernels
 * (RowDots: M ≤ 16 on AVX-512 and AVX2; M = 3, 6, 7 and 16 give passes of 1–4 rows, N not a whole number of
 * B-row groups, K with a tail). The last two reach the CPU's [K, N] kernel (native/cpu/gemm_kn.h) past its
 * blocks: several row and column blocks with partial tiles and K chunks, and a long K over a small output,
 * which it splits into K ranges summed at the end.
 */
const MATMUL_SIZES: readonly (readonly [number, number, number, number])[] = [
  [1, 1, 1, 1], [1, 7, 17, 33], [2, 17, 33, 65], [1, 33, 7, 129], [3, 65, 129, 17], [1, 129, 65, 7],
  [2, 16, 32, 64], [1, 1, 300, 257], [1, 40, 9, 0], [1, 197, 262, 5], [1, 3, 37, 19], [2, 6, 40, 23],
  [2, 5, 9, 2601], [2, 37, 16, 70],
];

export interface KeyRanges { start: Int32Array; end: Int32Array }

/** Key ranges of several kinds for `queries` queries over `keys` keys. */
export function keyRanges(kind: "causal" | "packed" | "partial" | "cache", queries: number, keys: number, random: () => number): KeyRanges {
  const start = new Int32Array(queries), end = new Int32Array(queries);
  for (let t = 0; t < queries; t++) {
    if (kind === "causal") {
      start[t] = 0;
      end[t] = Math.min(t + 1, keys);
    } else if (kind === "cache") {
      // The last `queries` positions of a `keys`-long sequence (decode with a KV cache).
      start[t] = 0;
      end[t] = keys - queries + t + 1;
    } else if (kind === "packed") {
      // Documents of 5 tokens packed back to back, causal inside each.
      start[t] = Math.floor(t / 5) * 5;
      end[t] = t + 1;
    } else {
      // Random sub-ranges, every third one empty.
      const a = Math.floor(random() * (keys + 1)), b = Math.floor(random() * (keys + 1));
      start[t] = Math.min(a, b);
      end[t] = t % 3 === 0 ? start[t] : Math.max(a, b);
    }
  }
  return { start, end };
}

export function defineOpSuite(label: string, makeBackend: () => Backend): void {
  describe(label, () => {
    let backend: Backend;
    beforeAll(() => {
      backend = makeBackend();
    });

    function check(op: string, got: ArrayLike<number>, want: ArrayLike<number>, tolerance = F32_TOLERANCE): void {
      const error = relativeError(got, want);
      expect(error, `${op}: relative error ${error}`).toBeLessThanOrEqual(tolerance);
    }

    for (const dtype of FLOAT_DTYPES) {
      it(`matmul with ${dtype} b: transposes, batches, shared b, accumulate`, async () => {
        const random = makeRandom(11);
        for (const [batch, m, n, k] of MATMUL_SIZES) {
          for (let flags = 0; flags < 16; flags++) {
            const s: MatmulShape = { batch, m, n, k, transA: (flags & 1) !== 0, transB: (flags & 2) !== 0, bBatched: (flags & 4) !== 0 };
            const accumulate = (flags & 8) !== 0;
            if (batch === 1 && s.bBatched) continue; // 2-D b is the shared case
            const lead = batch === 1 ? [] : [batch];
            const aValues = randomF32(random, batch * m * k);
            const b = encodeFloat(randomF32(random, (s.bBatched ? batch : 1) * k * n), dtype);
            const aT = backend.upload(aValues, "f32", [...lead, ...(s.transA ? [k, m] : [m, k])]);
            const bT = backend.weight(b.data, dtype, [...(s.bBatched ? lead : []), ...(s.transB ? [n, k] : [k, n])]);
            const initial = randomF32(random, batch * m * n);
            const out = accumulate ? backend.upload(initial, "f32", [...lead, m, n]) : poisoned(backend, [...lead, m, n]);
            backend.matmul(aT, bT, out, { transA: s.transA, transB: s.transB, accumulate });
            const got = await backend.download(out);
            const init = accumulate ? initial : undefined;
            const exact = matmulRef(aValues, b.exact, s, init);
            const what = `matmul ${dtype} ${JSON.stringify({ ...s, accumulate })}`;
            if (dtype === "bf16") {
              const errorExact = relativeError(got, exact);
              const errorRounded = relativeError(got, matmulRef(roundedToBf16(aValues), b.exact, s, init));
              // Rounding a perturbs the product, not what it is added to: measure it on the product alone
              // (with accumulate, init + product may cancel to almost nothing).
              const product = (values: ArrayLike<number>) => Float64Array.from(values, (v, i) => v - (init ? init[i] : 0));
              const errorProduct = relativeError(product(got), product(exact));
              expect(errorProduct, `${what}: product error ${errorProduct} vs f32 a`).toBeLessThanOrEqual(BF16_A_TOLERANCE);
              expect(Math.min(errorExact, errorRounded), `${what}: error ${errorExact} (f32 a), ${errorRounded} (bf16 a)`)
                .toBeLessThanOrEqual(F32_TOLERANCE);
            } else {
              check(what, got, exact);
            }
            for (const t of [aT, bT, out]) backend.free(t);
          }
        }
      });
    }

    const ATTENTION_CASES = [
      { queries: 5, keys: 5, heads: 6, kvHeads: 2, headDim: 8, kind: "causal" },
      { queries: 17, keys: 17, heads: 6, kvHeads: 6, headDim: 16, kind: "packed" },
      { queries: 9, keys: 150, heads: 6, kvHeads: 2, headDim: 64, kind: "partial" },
      { queries: 3, keys: 131, heads: 4, kvHeads: 1, headDim: 24, kind: "cache" },
      { queries: 33, keys: 33, heads: 2, kvHeads: 2, headDim: 33, kind: "causal" },
      { queries: 4, keys: 0, heads: 2, kvHeads: 1, headDim: 8, kind: "causal" },
    ] as const;
    it("attention: key ranges (empty, causal, packed, partial, KV cache), GQA, odd head dims", async () => {
      const random = makeRandom(23);
      for (const c of ATTENTION_CASES) {
        const q = randomF32(random, c.queries * c.heads * c.headDim, 2);
        const k = randomF32(random, c.keys * c.kvHeads * c.headDim, 2);
        const v = randomF32(random, c.keys * c.kvHeads * c.headDim);
        const ranges = keyRanges(c.kind, c.queries, c.keys, random);
        const scale = 1 / Math.sqrt(c.headDim);
        const out = poisoned(backend, [c.queries, c.heads, c.headDim]);
        backend.attention(
          backend.upload(q, "f32", [c.queries, c.heads, c.headDim]),
          backend.upload(k, "f32", [c.keys, c.kvHeads, c.headDim]),
          backend.upload(v, "f32", [c.keys, c.kvHeads, c.headDim]),
          backend.upload(ranges.start, "i32", [c.queries]), backend.upload(ranges.end, "i32", [c.queries]), scale, out);
        check(`attention ${JSON.stringify(c)}`, await backend.download(out),
          attentionRef(q, k, v, ranges.start, ranges.end, c.heads, c.kvHeads, c.headDim, scale));
      }
    });

    for (const dtype of FLOAT_DTYPES) {
      it(`embedding with a ${dtype} table`, async () => {
        const random = makeRandom(31);
        const vocab = 37, dim = 19;
        const table = encodeFloat(randomF32(random, vocab * dim), dtype);
        const ids = Int32Array.from([0, 36, 5, 5, 17, 1, 36]);
        const out = poisoned(backend, [ids.length, dim]);
        backend.embedding(backend.upload(ids, "i32", [ids.length]), backend.weight(table.data, dtype, [vocab, dim]), out);
        check("embedding", await backend.download(out), embeddingRef(ids, table.exact, dim), 0);
      });

      it(`rmsnorm with a ${dtype} weight`, async () => {
        const random = makeRandom(37);
        for (const [rows, dim] of [[1, 1], [7, 33], [5, 129]]) {
          const x = randomF32(random, rows * dim, 3);
          const weight = encodeFloat(randomF32(random, dim), dtype);
          const out = poisoned(backend, [rows, dim]);
          backend.rmsnorm(backend.upload(x, "f32", [rows, dim]), backend.weight(weight.data, dtype, [dim]), 1e-5, out);
          check(`rmsnorm [${rows},${dim}]`, await backend.download(out), rmsnormRef(x, weight.exact, 1e-5, dim));
        }
      });
    }

    it("rope: HF half-split, large positions, in place", async () => {
      const random = makeRandom(41);
      for (const [tokens, heads, headDim] of [[1, 1, 2], [7, 6, 8], [17, 2, 64], [5, 3, 16]]) {
        const x = randomF32(random, tokens * heads * headDim);
        const positions = Int32Array.from({ length: tokens }, (_, t) => (t * 997) % 5000);
        const invFreq = Float32Array.from({ length: headDim / 2 }, (_, i) => 10000 ** (-(2 * i) / headDim));
        const want = ropeRef(x, positions, invFreq, heads, headDim);
        const pos = backend.upload(positions, "i32", [tokens]);
        const freq = backend.upload(invFreq, "f32", [headDim / 2]);
        const out = poisoned(backend, [tokens, heads, headDim]);
        backend.rope(backend.upload(x, "f32", [tokens, heads, headDim]), pos, freq, out);
        check(`rope [${tokens},${heads},${headDim}]`, await backend.download(out), want);
        const inPlace = backend.upload(x, "f32", [tokens, heads, headDim]);
        backend.rope(inPlace, pos, freq, inPlace);
        check(`rope in place [${tokens},${heads},${headDim}]`, await backend.download(inPlace), want);
      }
    });

    it("swiglu and add (add also in place)", async () => {
      const random = makeRandom(43);
      for (const shape of [[1], [7, 17], [3, 5, 33]]) {
        const count = shape.reduce((p, d) => p * d, 1);
        const a = randomF32(random, count, 4), b = randomF32(random, count);
        const out = poisoned(backend, shape);
        backend.swiglu(backend.upload(a, "f32", shape), backend.upload(b, "f32", shape), out);
        check("swiglu", await backend.download(out), swigluRef(a, b));
        const sum = poisoned(backend, shape);
        const aT = backend.upload(a, "f32", shape), bT = backend.upload(b, "f32", shape);
        backend.add(aT, bT, sum);
        check("add", await backend.download(sum), addRef(a, b));
        backend.add(aT, bT, aT);
        check("add in place", await backend.download(aT), addRef(a, b));
      }
    });

    it("logSoftmax and logSoftmaxGather (negative target → NaN)", async () => {
      const random = makeRandom(47);
      for (const [rows, vocab] of [[1, 1], [3, 17], [5, 1000]]) {
        const logits = randomF32(random, rows * vocab, 8);
        const out = poisoned(backend, [rows, vocab]);
        const logitsT = backend.upload(logits, "f32", [rows, vocab]);
        backend.logSoftmax(logitsT, out);
        check(`logSoftmax [${rows},${vocab}]`, await backend.download(out), logSoftmaxRef(logits, vocab));
        const targets = Int32Array.from({ length: rows }, (_, r) => (r === 1 ? -100 : (r * 7) % vocab));
        const gathered = poisoned(backend, [rows]);
        backend.logSoftmaxGather(logitsT, backend.upload(targets, "i32", [rows]), gathered);
        check(`logSoftmaxGather [${rows},${vocab}]`, await backend.download(gathered), logSoftmaxGatherRef(logits, targets, vocab));
      }
    });

    for (const dtype of ["f32", "bf16", "i32"] as const satisfies readonly DType[]) {
      it(`scatterRows of ${dtype} rows (duplicates: the last wins)`, async () => {
        const random = makeRandom(53);
        const width = 5, rows = 4, dstRows = 9;
        // Small integers: exact in every dtype, so the rows must come back bit for bit.
        const srcValues = Int32Array.from({ length: rows * width }, () => Math.floor(random() * 200));
        const dstValues = Int32Array.from({ length: dstRows * width }, () => Math.floor(random() * 200));
        const host = (v: Int32Array) => (dtype === "i32" ? v : dtype === "f32" ? Float32Array.from(v) : Uint16Array.from(v, numberToBf16));
        const index = Int32Array.from([8, 0, 3, 0]);
        const dst = backend.upload(host(dstValues), dtype, [dstRows, width]);
        backend.scatterRows(backend.upload(host(srcValues), dtype, [rows, width]), backend.upload(index, "i32", [rows]), dst);
        const want = scatterRowsRef(srcValues, index, dstValues, width);
        const got = Array.from(await backend.download(dst));
        expect(got).toEqual(Array.from(want));
      });
    }

    it("upload/download round-trips every dtype", async () => {
      const values = Float32Array.from([0, -1.5, 3.25, 65504, 1e-7, -0]);
      for (const dtype of FLOAT_DTYPES) {
        const { data, exact } = encodeFloat(values, dtype);
        expect(Array.from(await backend.download(backend.upload(data, dtype, [2, 3])))).toEqual(Array.from(exact));
      }
      expect(Array.from(await backend.download(backend.upload(Int32Array.from([1, -2]), "i32", [2])))).toEqual([1, -2]);
    });

    it("bad shapes and ids throw errors naming the op", () => {
      const f = (shape: number[]) => backend.alloc("f32", shape);
      expect(() => backend.matmul(f([2, 3]), f([4, 5]), f([2, 4]), { transB: true })).toThrow(/^matmul: .*inner dims 3 and 5 differ/);
      expect(() => backend.matmul(f([2, 3]), f([3, 5]), f([2, 4]))).toThrow(/^matmul: .*out must be \[2,5\]/);
      expect(() => backend.matmul(f([2, 2, 3]), f([3, 3, 5]), f([2, 2, 5]))).toThrow(/^matmul: .*batch dims/);
      const ids = backend.upload(Int32Array.from([1, 2, 3, 40000]), "i32", [4]);
      expect(() => backend.embedding(ids, f([32000, 2]), f([4, 2])))
        .toThrow("embedding: id 40000 at position 3 out of range [0, 32000)");
      expect(() => backend.embedding(backend.upload(Int32Array.from([-1]), "i32", [1]), f([5, 2]), f([1, 2])))
        .toThrow(/^embedding: id -1 at position 0 out of range \[0, 5\)/);
      expect(() => backend.rmsnorm(f([3, 4]), f([5]), 1e-5, f([3, 4]))).toThrow(/^rmsnorm: .*weight must be \[4\]/);
      const pos = backend.upload(Int32Array.from([0, 1]), "i32", [2]);
      expect(() => backend.rope(f([2, 1, 3]), pos, f([1]), f([2, 1, 3]))).toThrow(/^rope: .*even/);
      const range = backend.upload(Int32Array.from([0]), "i32", [1]);
      expect(() => backend.attention(f([1, 6, 8]), f([2, 4, 8]), f([2, 4, 8]), range, range, 1, f([1, 6, 8])))
        .toThrow(/^attention: .*multiple of kv heads 4/);
      const badEnd = backend.upload(Int32Array.from([3]), "i32", [1]);
      expect(() => backend.attention(f([1, 2, 8]), f([2, 1, 8]), f([2, 1, 8]), range, badEnd, 1, f([1, 2, 8])))
        .toThrow(/^attention: .*key range \[0, 3\)/);
      expect(() => backend.add(f([2, 3]), f([3, 2]), f([2, 3]))).toThrow(/^add: shapes differ/);
      expect(() => backend.logSoftmaxGather(f([2, 4]), backend.upload(Int32Array.from([0, 4]), "i32", [2]), f([2])))
        .toThrow(/^logSoftmaxGather: target 4 at row 1/);
      expect(() => backend.scatterRows(f([1, 2]), backend.upload(Int32Array.from([7]), "i32", [1]), f([3, 2])))
        .toThrow(/^scatterRows: index 7 at row 0 out of range \[0, 3\)/);
    });

    // Training and scoring ops (test/op-suite-training.ts), on the same backend.
    defineTrainingOpTests(() => backend);
  });
}
