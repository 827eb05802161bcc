/**
 * The training and scoring half of the shared op suite (called from defineOpSuite, so every backend runs
 * it): forward-style checks against the float64 references, and for every backward op two checks of the
 * backend's gradients of a random scalar loss L = Σ w ⊙ out (w random): against central differences of the
 * float64 reference forward, and against the analytic float64 reference gradients in test/reference.ts
 * (which are themselves checked against the central differences, tightly).
 *
 * Tolerances (relative norm error ‖got − want‖ / ‖want‖):
 * - FD_REFERENCE_TOLERANCE = 1e-7 for analytic float64 gradients vs central differences: the differences
 *   are taken in float64 with h = 1e-5 on inputs of size ≤ 4, so truncation (h²·f''' ~ 1e-10) and
 *   cancellation (ε·|L|/h ~ 1e-10) leave ~1e-9; a wrong term in a formula gives errors of order 1e-1 … 1.
 * - GRADIENT_TOLERANCE = 1e-5 for a backend's f32 gradients vs float64 (analytic or FD), the same budget as
 *   F32_TOLERANCE: a handful of f32 roundings (6e-8 each) per dot product of ≤ 140 terms, exp/log, and —
 *   in attention — the cancellation in dp_j − D. Measured on the CPU paths: ≤ 4e-7 everywhere (attention
 *   backward included), so 1e-5 is 25× headroom for other backends' summation orders. An indexing slip, a
 *   missing scale, a dropped GQA head or a wrong one-hot gives ≥ 3e-4 (tried: 0.83, 1.24, 3.3e-4).
 * - sumOfSquares: 1e-12, it is f32 squares (exact in f64) summed in f64; scale, fill, convert: exact.
 */
import { beforeAll, expect, it } from "vitest";
import type { Backend, Tensor } from "../src/engine/backend.js";
import { F32_TOLERANCE, encodeFloat, keyRanges, makeRandom, randomF32 } from "./op-suite.js";
import {
  adamwRef, attentionBackwardRef, attentionLseRef, attentionRef, centralDifferences, crossEntropyRef, embeddingBackwardRef,
  embeddingRef, matmulAlphaRef, relativeError, rmsnormBackwardRef, rmsnormRef, ropeBackwardRef,
  ropeRef, swigluBackwardRef, swigluRef, treeAttentionRef, weightedSum, type AdamWState, type MatmulShape,
} from "./reference.js";

export const GRADIENT_TOLERANCE = 1e-5;
export const FD_REFERENCE_TOLERANCE = 1e-7;

export function defineTrainingOpTests(getBackend: () => Backend): void {
  let backend: Backend;
  beforeAll(() => {
    backend = getBackend();
  });

  function check(what: string, got: ArrayLike<number>, want: ArrayLike<number>, tolerance = F32_TOLERANCE): void {
    const error = relativeError(got, want);
    expect(error, `${what}: relative error ${error}`).toBeLessThanOrEqual(tolerance);
  }

  /** The three gradient checks: reference vs FD (tight), backend vs FD and backend vs reference (f32). */
  function checkGradient(what: string, got: ArrayLike<number>, analytic: ArrayLike<number>, finiteDifferences: ArrayLike<number>): void {
    check(`${what}: reference vs finite differences`, analytic, finiteDifferences, FD_REFERENCE_TOLERANCE);
    check(`${what}: backend vs finite differences`, got, finiteDifferences, GRADIENT_TOLERANCE);
    check(`${what}: backend vs reference`, got, analytic, GRADIENT_TOLERANCE);
  }

  function poisoned(shape: readonly number[]): Tensor {
    return backend.upload(new Float32Array(shape.reduce((p, d) => p * d, 1)).fill(NaN), "f32", shape);
  }

  const f32 = (values: Float32Array, shape: readonly number[]) => backend.upload(values, "f32", shape);
  const i32 = (values: Int32Array) => backend.upload(values, "i32", [values.length]);
  const download = async (t: Tensor) => Float64Array.from(await backend.download(t));

  // ---- elementwise and reductions ----

  it("fill every dtype; scale in and out of place (exact)", async () => {
    const random = makeRandom(101);
    for (const count of [0, 1, 17, 5000]) {
      const t = poisoned([count]);
      backend.fill(t, -2.5);
      expect(Array.from(await download(t))).toEqual(new Array(count).fill(-2.5));
      const x = randomF32(random, count, 3);
      const want = Array.from(x, (v) => Math.fround(v * Math.fround(0.37))); // f32 · f32, rounded once
      const out = poisoned([count]);
      const xT = f32(x, [count]);
      backend.scale(xT, 0.37, out);
      expect(Array.from(await download(out))).toEqual(want);
      backend.scale(xT, 0.37, xT);
      expect(Array.from(await download(xT))).toEqual(want);
    }
    for (const dtype of ["bf16", "f16"] as const) {
      const t = backend.alloc(dtype, [3, 2]);
      backend.fill(t, 1 / 3);
      expect(Array.from(await download(t)), dtype).toEqual(new Array(6).fill(encodeFloat(Float32Array.of(1 / 3), dtype).exact[0]));
    }
    const ints = backend.alloc("i32", [4]);
    backend.fill(ints, -7);
    expect(Array.from(await backend.download(ints))).toEqual([-7, -7, -7, -7]);
  });

  it("sumOfSquares in float64 (1e-12), empty tensors give 0", async () => {
    const random = makeRandom(103);
    for (const count of [0, 1, 4097, 100_003]) {
      const x = randomF32(random, count, 10);
      let want = 0;
      for (const v of x) want += v * v;
      const got = await backend.sumOfSquares(f32(x, [count]));
      if (count === 0) expect(got).toBe(0);
      else expect(Math.abs(got - want) / want, `count ${count}`).toBeLessThanOrEqual(1e-12);
    }
  });

  it("convert between f32, bf16 and f16 (round to nearest even, exact)", async () => {
    const random = makeRandom(107);
    const values = Float32Array.from([...randomF32(random, 300, 50), 0, -0, 65504, 1e-6, 1 + 2 ** -8, 1 + 3 * 2 ** -8]);
    for (const from of ["f32", "bf16", "f16"] as const) {
      for (const to of ["f32", "bf16", "f16"] as const) {
        const src = encodeFloat(values, from);
        const dst = backend.alloc(to, [values.length]);
        backend.convert(backend.upload(src.data, from, [values.length]), dst);
        const want = encodeFloat(Float32Array.from(src.exact), to).exact;
        expect(Array.from(await download(dst)), `${from} → ${to}`).toEqual(Array.from(want));
      }
    }
  });

  it("adamw matches the float64 reference over 3 steps (decay first, bias corrections)", async () => {
    const random = makeRandom(109);
    const count = 1001;
    // lr 0.1 keeps the update θ' − θ well above the f32 rounding of θ itself (half an ulp of |θ| ≤ 1 is
    // 3e-8, which against an update of 1e-2 alone would already be a 3e-6 relative error).
    const hyper = { learningRate: 0.1, beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 0.1 };
    const param0 = randomF32(random, count);
    const [paramT, mT, vT] = [f32(param0, [count]), f32(new Float32Array(count), [count]), f32(new Float32Array(count), [count])];
    for (let step = 1; step <= 3; step++) {
      const grad = randomF32(random, count, step === 2 ? 1e-3 : 1);
      // The reference starts from the backend's own state before the step, so each step is checked on its own.
      const before: AdamWState = { param: await download(paramT), m: await download(mT), v: await download(vT) };
      backend.adamw(paramT, f32(grad, [count]), mT, vT, { ...hyper, step });
      const want = adamwRef(before, grad, { ...hyper, step });
      // The update θ' − θ is small next to θ: compare it, not θ itself.
      const got = await download(paramT);
      check(`adamw step ${step} update`, got.map((p, i) => p - before.param[i]), want.param.map((p, i) => p - before.param[i]));
      check(`adamw step ${step} m`, await download(mT), want.m);
      check(`adamw step ${step} v`, await download(vT), want.v);
    }
  });

  // ---- matmul: alpha, and its own backward ----

  it("matmul alpha: out (+)= alpha · op(a)·op(b), every transpose and accumulate", async () => {
    const random = makeRandom(113);
    for (const dtype of ["f32", "bf16"] as const) {
      for (const [m, n, k] of [[7, 33, 17], [40, 9, 65], [1, 300, 129], [5, 19, 2601]]) {
        for (let flags = 0; flags < 8; flags++) {
          const s: MatmulShape = { batch: 1, m, n, k, transA: (flags & 1) !== 0, transB: (flags & 2) !== 0, bBatched: false };
          const accumulate = (flags & 4) !== 0, alpha = -0.37;
          // b rounded to bf16 in both cases and a small enough that AMX's bf16 rounding of a stays in budget:
          // a holds bf16 values, so every path computes exact products.
          const a = encodeFloat(randomF32(random, m * k), "bf16").exact;
          const b = encodeFloat(randomF32(random, k * n), dtype);
          const initial = randomF32(random, m * n);
          const out = accumulate ? f32(initial, [m, n]) : poisoned([m, n]);
          backend.matmul(f32(Float32Array.from(a), s.transA ? [k, m] : [m, k]), backend.weight(b.data, dtype, s.transB ? [n, k] : [k, n]),
            out, { transA: s.transA, transB: s.transB, accumulate, alpha });
          check(`matmul alpha ${dtype} ${JSON.stringify({ m, n, k, flags })}`, await download(out),
            matmulAlphaRef(a, b.exact, s, alpha, accumulate ? initial : undefined));
        }
      }
    }
  });

  it("matmul backward through matmul: dX = α·dY·W, dW += α·dYᵀ·X (Linear) and dA = α·dY·Bᵀ, dB += α·Aᵀ·dY, vs FD", async () => {
    const random = makeRandom(127);
    const [m, n, k, alpha] = [3, 4, 5, 0.75];
    const shape = (transA: boolean, transB: boolean): MatmulShape => ({ batch: 1, m, n, k, transA, transB, bBatched: false });
    for (const linear of [true, false]) {
      // Linear: Y = α·X·Wᵀ with W [N, K]; plain: Y = α·A·B with B [K, N].
      const x = randomF32(random, m * k), w = randomF32(random, n * k), dY = randomF32(random, m * n);
      const forward = shape(false, linear);
      const loss = (xv: ArrayLike<number>, wv: ArrayLike<number>) => weightedSum(dY, matmulAlphaRef(xv, wv, forward, alpha));
      const fdX = centralDifferences((xv) => loss(xv, w), x);
      const fdW = centralDifferences((wv) => loss(x, wv), w);
      const initialW = randomF32(random, n * k);
      const dX = poisoned([m, k]);
      const dW = f32(initialW, linear ? [n, k] : [k, n]);
      if (linear) {
        backend.matmul(f32(dY, [m, n]), f32(w, [n, k]), dX, { alpha }); // dX = α·dY·W
        backend.matmul(f32(dY, [m, n]), f32(x, [m, k]), dW, { transA: true, accumulate: true, alpha }); // dW += α·dYᵀ·X
      } else {
        backend.matmul(f32(dY, [m, n]), f32(w, [k, n]), dX, { transB: true, alpha }); // dA = α·dY·Bᵀ
        backend.matmul(f32(x, [m, k]), f32(dY, [m, n]), dW, { transA: true, accumulate: true, alpha }); // dB += α·Aᵀ·dY
      }
      const analyticX = matmulAlphaRef(dY, w, { ...shape(false, !linear), m, n: k, k: n }, alpha);
      const analyticW = linear
        ? matmulAlphaRef(dY, x, { ...shape(true, false), m: n, n: k, k: m }, alpha)
        : matmulAlphaRef(x, dY, { ...shape(true, false), m: k, n, k: m }, alpha);
      checkGradient(`matmul ${linear ? "linear" : "plain"} dX`, await download(dX), analyticX, fdX);
      const gotW = (await download(dW)).map((g, i) => g - initialW[i]);
      checkGradient(`matmul ${linear ? "linear" : "plain"} dW`, gotW, analyticW, fdW);
    }
  });

  // ---- backward of the light forward ops ----

  it("embeddingBackward: repeated ids accumulate into dTable, vs FD and reference", async () => {
    const random = makeRandom(131);
    const vocab = 11, dim = 37;
    const ids = Int32Array.from([3, 0, 3, 10, 3, 7, 0]);
    const table = randomF32(random, vocab * dim), dOut = randomF32(random, ids.length * dim);
    const initial = randomF32(random, vocab * dim);
    const dTable = f32(initial, [vocab, dim]);
    backend.embeddingBackward(i32(ids), f32(dOut, [ids.length, dim]), dTable);
    const got = (await download(dTable)).map((g, i) => g - initial[i]);
    const fd = centralDifferences((tv) => weightedSum(dOut, embeddingRef(ids, tv, dim)), table);
    checkGradient("embeddingBackward", got, embeddingBackwardRef(ids, dOut, new Float64Array(vocab * dim), dim), fd);
  });

  it("rmsnormBackward: dx written, dWeight accumulated (and null), f32/bf16 weight, vs FD and reference", async () => {
    const random = makeRandom(137);
    for (const dtype of ["f32", "bf16"] as const) {
      // With dim 1, out = x·w/√(x² + eps) is nearly flat (its slope is ~eps): a larger eps keeps that case
      // measurable by finite differences.
      for (const [rows, dim, eps] of [[1, 1, 0.5], [5, 7, 1e-5], [3, 33, 1e-5]]) {
        const x = randomF32(random, rows * dim, 2), dOut = randomF32(random, rows * dim);
        const weight = encodeFloat(randomF32(random, dim), dtype);
        const initial = randomF32(random, dim);
        const dx = poisoned([rows, dim]), dWeight = f32(initial, [dim]);
        const xT = f32(x, [rows, dim]), wT = backend.weight(weight.data, dtype, [dim]), dOutT = f32(dOut, [rows, dim]);
        backend.rmsnormBackward(xT, wT, dOutT, eps, dx, dWeight);
        const analytic = rmsnormBackwardRef(x, weight.exact, dOut, eps, dim);
        const fdX = centralDifferences((xv) => weightedSum(dOut, rmsnormRef(xv, weight.exact, eps, dim)), x);
        const fdW = centralDifferences((wv) => weightedSum(dOut, rmsnormRef(x, wv, eps, dim)), weight.exact);
        const what = `rmsnormBackward ${dtype} [${rows},${dim}]`;
        checkGradient(`${what} dx`, await download(dx), analytic.dx, fdX);
        checkGradient(`${what} dWeight`, (await download(dWeight)).map((g, i) => g - initial[i]), analytic.dWeight, fdW);
        const dxOnly = poisoned([rows, dim]);
        backend.rmsnormBackward(xT, wT, dOutT, eps, dxOnly, null);
        check(`${what} dx (dWeight null)`, await download(dxOnly), analytic.dx, GRADIENT_TOLERANCE);
      }
    }
  });

  it("ropeBackward: rotation by −angle, in place too, vs FD and reference", async () => {
    const random = makeRandom(139);
    for (const [tokens, heads, headDim] of [[1, 1, 2], [5, 3, 8], [3, 2, 34]]) {
      const x = randomF32(random, tokens * heads * headDim), dOut = randomF32(random, tokens * heads * headDim);
      const positions = Int32Array.from({ length: tokens }, (_, t) => (t * 997 + 3) % 5000);
      const invFreq = Float32Array.from({ length: headDim / 2 }, (_, i) => 10000 ** (-(2 * i) / headDim));
      const shape = [tokens, heads, headDim];
      const dx = poisoned(shape);
      backend.ropeBackward(f32(dOut, shape), i32(positions), f32(invFreq, [headDim / 2]), dx);
      const fd = centralDifferences((xv) => weightedSum(dOut, ropeRef(xv, positions, invFreq, heads, headDim)), x);
      const analytic = ropeBackwardRef(dOut, positions, invFreq, heads, headDim);
      checkGradient(`ropeBackward [${shape.join(",")}]`, await download(dx), analytic, fd);
      const inPlace = f32(dOut, shape);
      backend.ropeBackward(inPlace, i32(positions), f32(invFreq, [headDim / 2]), inPlace);
      check(`ropeBackward in place [${shape.join(",")}]`, await download(inPlace), analytic, GRADIENT_TOLERANCE);
    }
  });

  it("swigluBackward: dGate, dUp (outputs may be the inputs), vs FD and reference", async () => {
    const random = makeRandom(149);
    for (const count of [1, 17, 300]) {
      const gate = randomF32(random, count, 6), up = randomF32(random, count), dOut = randomF32(random, count);
      const dGate = poisoned([count]), dUp = poisoned([count]);
      backend.swigluBackward(f32(gate, [count]), f32(up, [count]), f32(dOut, [count]), dGate, dUp);
      const analytic = swigluBackwardRef(gate, up, dOut);
      checkGradient(`swigluBackward dGate [${count}]`, await download(dGate), analytic.dGate,
        centralDifferences((g) => weightedSum(dOut, swigluRef(g, up)), gate));
      checkGradient(`swigluBackward dUp [${count}]`, await download(dUp), analytic.dUp,
        centralDifferences((u) => weightedSum(dOut, swigluRef(gate, u)), up));
      const [gateT, upT] = [f32(gate, [count]), f32(up, [count])];
      backend.swigluBackward(gateT, upT, f32(dOut, [count]), gateT, upT);
      check(`swigluBackward in place dGate [${count}]`, await download(gateT), analytic.dGate, GRADIENT_TOLERANCE);
      check(`swigluBackward in place dUp [${count}]`, await download(upT), analytic.dUp, GRADIENT_TOLERANCE);
    }
  });

  // ---- cross-entropy ----

  it("crossEntropy: losses and dLogits (−1 targets, gradScale, in place, large logits), vs FD and reference", async () => {
    const random = makeRandom(151);
    for (const [rows, vocab, spread, offset] of [[1, 1, 1, 0], [4, 5, 3, 0], [6, 37, 8, 1000], [3, 1000, 20, -500]]) {
      const logits = Float32Array.from(randomF32(random, rows * vocab, spread), (z) => z + offset);
      const targets = Int32Array.from({ length: rows }, (_, r) => (r % 3 === 1 ? -1 : (r * 7 + 2) % vocab));
      const gradScale = 1 / 3;
      const want = crossEntropyRef(logits, targets, vocab, gradScale);
      const losses = poisoned([rows]), dLogits = poisoned([rows, vocab]);
      const logitsT = f32(logits, [rows, vocab]), targetsT = i32(targets);
      backend.crossEntropy(logitsT, targetsT, gradScale, losses, dLogits);
      const what = `crossEntropy [${rows},${vocab}] offset ${offset}`;
      check(`${what} losses`, await download(losses), want.losses);
      const got = await download(dLogits);
      if (vocab <= 37) {
        // L = gradScale · Σ_r loss_r, whose gradient is exactly what dLogits holds.
        const fd = centralDifferences((z) => gradScale * crossEntropyRef(z, targets, vocab, 1).losses.reduce((a, b) => a + b, 0), logits);
        checkGradient(`${what} dLogits`, got, want.dLogits, fd);
      } else {
        check(`${what} dLogits`, got, want.dLogits, GRADIENT_TOLERANCE);
      }
      for (let r = 0; r < rows; r++) {
        if (targets[r] === -1) expect(Array.from(got.subarray(r * vocab, (r + 1) * vocab)), `${what} ignored row ${r}`).toEqual(new Array(vocab).fill(0));
      }
      const inPlaceLosses = poisoned([rows]);
      backend.crossEntropy(logitsT, targetsT, gradScale, inPlaceLosses, logitsT);
      check(`${what} in place losses`, await download(inPlaceLosses), want.losses);
      check(`${what} in place dLogits`, await download(logitsT), want.dLogits, GRADIENT_TOLERANCE);
    }
  });

  // ---- attention for training, its backward, tree attention ----

  const BACKWARD_CASES = [
    { queries: 6, keys: 6, heads: 4, kvHeads: 2, headDim: 5, kind: "causal", fd: true },
    { queries: 11, keys: 11, heads: 2, kvHeads: 2, headDim: 8, kind: "packed", fd: true },
    { queries: 7, keys: 9, heads: 4, kvHeads: 1, headDim: 3, kind: "partial", fd: true },
    { queries: 3, keys: 8, heads: 2, kvHeads: 1, headDim: 7, kind: "cache", fd: true },
    { queries: 70, keys: 70, heads: 4, kvHeads: 2, headDim: 33, kind: "causal", fd: false },
    { queries: 5, keys: 140, heads: 2, kvHeads: 1, headDim: 16, kind: "cache", fd: false },
    // head dim > 64 with a tail: the AVX-512 tiles' dk/dv run in chunks of 64 columns
    { queries: 37, keys: 37, heads: 2, kvHeads: 1, headDim: 80, kind: "packed", fd: false },
  ] as const;

  it("attentionForTraining: out as attention, lse vs reference (−inf for empty ranges)", async () => {
    const random = makeRandom(157);
    for (const c of [...BACKWARD_CASES, { queries: 4, keys: 0, heads: 2, kvHeads: 1, headDim: 8, kind: "causal" } as const]) {
      const q = randomF32(random, c.queries * c.heads * c.headDim, 2);
      const k = randomF32(random, c.keys * c.kvHeads * c.headDim, 2);
      const v = randomF32(random, c.keys * c.kvHeads * c.headDim);
      const ranges = keyRanges(c.kind, c.queries, c.keys, random);
      const scale = 1 / Math.sqrt(c.headDim);
      const out = poisoned([c.queries, c.heads, c.headDim]), lse = poisoned([c.queries, c.heads]);
      backend.attentionForTraining(f32(q, [c.queries, c.heads, c.headDim]), f32(k, [c.keys, c.kvHeads, c.headDim]),
        f32(v, [c.keys, c.kvHeads, c.headDim]), i32(ranges.start), i32(ranges.end), scale, out, lse);
      const what = `attentionForTraining ${JSON.stringify(c)}`;
      check(`${what} out`, await download(out), attentionRef(q, k, v, ranges.start, ranges.end, c.heads, c.kvHeads, c.headDim, scale));
      const want = attentionLseRef(q, k, ranges.start, ranges.end, c.heads, c.kvHeads, c.headDim, scale);
      const got = await download(lse);
      expect(Array.from(got, (x) => x === -Infinity), `${what}: −inf exactly where the range is empty`)
        .toEqual(Array.from(want, (x) => x === -Infinity));
      check(`${what} lse`, got.map((x) => (x === -Infinity ? 0 : x)), want.map((x) => (x === -Infinity ? 0 : x)));
    }
  });

  it("attentionBackward: dq, dk, dv (causal, packed, partial with empty ranges, KV cache, GQA, odd head dims), vs FD and reference", async () => {
    const random = makeRandom(163);
    for (const c of BACKWARD_CASES) {
      const qShape = [c.queries, c.heads, c.headDim], kvShape = [c.keys, c.kvHeads, c.headDim];
      const q = randomF32(random, c.queries * c.heads * c.headDim, 2);
      const k = randomF32(random, c.keys * c.kvHeads * c.headDim, 2);
      const v = randomF32(random, c.keys * c.kvHeads * c.headDim);
      const dOut = randomF32(random, c.queries * c.heads * c.headDim);
      const ranges = keyRanges(c.kind, c.queries, c.keys, random);
      const scale = 1 / Math.sqrt(c.headDim);
      const [qT, kT, vT, dOutT] = [f32(q, qShape), f32(k, kvShape), f32(v, kvShape), f32(dOut, qShape)];
      const [startT, endT] = [i32(ranges.start), i32(ranges.end)];
      const out = poisoned(qShape), lse = poisoned([c.queries, c.heads]);
      backend.attentionForTraining(qT, kT, vT, startT, endT, scale, out, lse);
      const dq = poisoned(qShape), dk = poisoned(kvShape), dv = poisoned(kvShape);
      backend.attentionBackward(qT, kT, vT, out, dOutT, lse, startT, endT, scale, dq, dk, dv);
      const analytic = attentionBackwardRef(q, k, v, dOut, ranges.start, ranges.end, c.heads, c.kvHeads, c.headDim, scale);
      const got = { dq: await download(dq), dk: await download(dk), dv: await download(dv) };
      const what = `attentionBackward ${JSON.stringify(c)}`;
      if (c.fd) {
        const loss = (qv: ArrayLike<number>, kv: ArrayLike<number>, vv: ArrayLike<number>) =>
          weightedSum(dOut, attentionRef(qv, kv, vv, ranges.start, ranges.end, c.heads, c.kvHeads, c.headDim, scale));
        checkGradient(`${what} dq`, got.dq, analytic.dq, centralDifferences((x) => loss(x, k, v), q));
        checkGradient(`${what} dk`, got.dk, analytic.dk, centralDifferences((x) => loss(q, x, v), k));
        checkGradient(`${what} dv`, got.dv, analytic.dv, centralDifferences((x) => loss(q, k, x), v));
      } else {
        check(`${what} dq`, got.dq, analytic.dq, GRADIENT_TOLERANCE);
        check(`${what} dk`, got.dk, analytic.dk, GRADIENT_TOLERANCE);
        check(`${what} dv`, got.dv, analytic.dv, GRADIENT_TOLERANCE);
      }
    }
  });

  it("treeAttention: prefix range + extra keys vs reference; empty extra lists equal attention", async () => {
    const random = makeRandom(167);
    const cases = [
      { queries: 6, keys: 10, heads: 4, kvHeads: 2, headDim: 5 },
      { queries: 9, keys: 200, heads: 2, kvHeads: 1, headDim: 33 },
      { queries: 3, keys: 150, heads: 6, kvHeads: 6, headDim: 64 },
    ];
    for (const c of cases) {
      const qShape = [c.queries, c.heads, c.headDim], kvShape = [c.keys, c.kvHeads, c.headDim];
      const q = randomF32(random, c.queries * c.heads * c.headDim, 2);
      const k = randomF32(random, c.keys * c.kvHeads * c.headDim, 2);
      const v = randomF32(random, c.keys * c.kvHeads * c.headDim);
      const scale = 1 / Math.sqrt(c.headDim);
      // A shared prefix [0, P) for most queries, then each query's own ancestors (sorted keys ≥ P) and itself;
      // query 0 has no keys at all, query 1 only extras, and long lists cross the 64-key blocks.
      const prefix = Math.floor(c.keys / 2);
      const start = new Int32Array(c.queries), end = new Int32Array(c.queries);
      const offsets = new Int32Array(c.queries + 1);
      const extra: number[] = [];
      for (let t = 0; t < c.queries; t++) {
        start[t] = t === 2 ? 1 : 0;
        end[t] = t <= 1 ? start[t] : prefix;
        if (t !== 0) {
          const own = new Set<number>();
          const count = 1 + Math.floor(random() * (c.keys - prefix));
          for (let i = 0; i < count; i++) own.add(prefix + Math.floor(random() * (c.keys - prefix)));
          extra.push(...[...own].sort((a, b) => a - b));
        }
        offsets[t + 1] = extra.length;
      }
      const [qT, kT, vT] = [f32(q, qShape), f32(k, kvShape), f32(v, kvShape)];
      const out = poisoned(qShape);
      backend.treeAttention(qT, kT, vT, i32(start), i32(end), i32(offsets), i32(Int32Array.from(extra)), scale, out);
      check(`treeAttention ${JSON.stringify(c)}`, await download(out),
        treeAttentionRef(q, k, v, start, end, offsets, extra, c.heads, c.kvHeads, c.headDim, scale));
      // Empty extra lists: exactly attention over the prefix ranges.
      const plain = poisoned(qShape), tree = poisoned(qShape);
      backend.attention(qT, kT, vT, i32(start), i32(end), scale, plain);
      backend.treeAttention(qT, kT, vT, i32(start), i32(end), i32(new Int32Array(c.queries + 1)), i32(new Int32Array(0)), scale, tree);
      check(`treeAttention without extras = attention ${JSON.stringify(c)}`, await download(tree), await download(plain));
    }
  });

  // ---- errors ----

  it("bad shapes, targets and ranges in the training ops throw errors naming the op", () => {
    const f = (shape: number[]) => backend.alloc("f32", shape);
    const ints = (values: number[]) => backend.upload(Int32Array.from(values), "i32", [values.length]);
    expect(() => backend.crossEntropy(f([2, 4]), ints([0, 4]), 1, f([2]), f([2, 4]))).toThrow(/^crossEntropy: .*target 4 at row 1/);
    expect(() => backend.crossEntropy(f([2, 4]), ints([0, -100]), 1, f([2]), f([2, 4]))).toThrow(/^crossEntropy: .*target -100 at row 1/);
    expect(() => backend.crossEntropy(f([2, 4]), ints([0, 1]), 1, f([3]), f([2, 4]))).toThrow(/^crossEntropy: .*losses must be \[2\]/);
    expect(() => backend.embeddingBackward(ints([0, 5]), f([2, 3]), f([5, 3]))).toThrow(/^embeddingBackward: id 5 at position 1 out of range \[0, 5\)/);
    expect(() => backend.embeddingBackward(ints([0]), f([1, 4]), f([5, 3]))).toThrow(/^embeddingBackward: .*dOut must be \[1,3\]/);
    expect(() => backend.rmsnormBackward(f([3, 4]), f([4]), f([3, 4]), 1e-5, f([3, 4]), f([5]))).toThrow(/^rmsnormBackward: .*dWeight must be \[4\]/);
    const pos = ints([0, 1]);
    expect(() => backend.ropeBackward(f([2, 1, 4]), pos, f([2]), f([2, 1, 6]))).toThrow(/^ropeBackward: .*dx must have dOut's shape/);
    expect(() => backend.swigluBackward(f([3]), f([3]), f([3]), f([4]), f([3]))).toThrow(/^swigluBackward: shapes differ/);
    const hyper = { learningRate: 1e-3, beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 0, step: 0 };
    expect(() => backend.adamw(f([3]), f([3]), f([3]), f([3]), hyper)).toThrow(/^adamw: step must be ≥ 1/);
    expect(() => backend.adamw(f([3]), f([3]), f([2]), f([3]), { ...hyper, step: 1 })).toThrow(/^adamw: shapes differ/);
    expect(() => backend.scale(f([3]), 2, f([2]))).toThrow(/^scale: shapes differ/);
    expect(() => backend.convert(f([3]), backend.alloc("bf16", [4]))).toThrow(/^convert: .*same shape/);
    const range = ints([0]);
    expect(() => backend.attentionForTraining(f([1, 2, 8]), f([2, 1, 8]), f([2, 1, 8]), range, range, 1, f([1, 2, 8]), f([2, 1])))
      .toThrow(/^attentionForTraining: .*lse must be \[1,2\]/);
    expect(() => backend.attentionBackward(f([1, 2, 8]), f([2, 1, 8]), f([2, 1, 8]), f([1, 2, 8]), f([1, 2, 8]), f([1, 2]),
      range, ints([3]), 1, f([1, 2, 8]), f([2, 1, 8]), f([2, 1, 8]))).toThrow(/^attentionBackward: .*key range \[0, 3\)/);
    expect(() => backend.attentionBackward(f([1, 2, 8]), f([2, 1, 8]), f([2, 1, 8]), f([1, 2, 8]), f([1, 2, 8]), f([1, 2]),
      range, range, 1, f([1, 2, 8]), f([2, 2, 8]), f([2, 1, 8]))).toThrow(/^attentionBackward: .*dk and dv must have k's shape/);
    expect(() => backend.treeAttention(f([1, 2, 8]), f([2, 1, 8]), f([2, 1, 8]), range, range, ints([0, 1]), ints([2]), 1, f([1, 2, 8])))
      .toThrow(/^treeAttention: extra key 2 at index 0 out of range \[0, 2\)/);
    expect(() => backend.treeAttention(f([1, 2, 8]), f([2, 1, 8]), f([2, 1, 8]), range, range, ints([1, 0]), ints([1]), 1, f([1, 2, 8])))
      .toThrow(/^treeAttention: extraOffsets must be non-decreasing/);
    expect(() => backend.treeAttention(f([1, 2, 8]), f([2, 1, 8]), f([2, 1, 8]), range, range, ints([0]), ints([]), 1, f([1, 2, 8])))
      .toThrow(/^treeAttention: .*extraOffsets must be \[2\]/);
  });
}
