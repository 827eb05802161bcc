/**
 * bf16 weights packed once for the AMX matmul (CpuBackend.weight → native packWeight → matmul's packedB).
 * The backend's bookkeeping is checked on every CPU by standing in for the native packing (which only AMX
 * hardware performs; the packing and the kernel themselves are checked by test/amx-emulation.test.ts);
 * on a CPU with AMX the real path is checked too.
 */
import { describe, expect, it } from "vitest";
import { createCpuBackend, type CpuBackend } from "../src/engine/cpu/backend.js";
import { loadNative, type CpuIsa, type NativeCpuOps, type NativePackedWeight } from "../src/engine/native.js";
import { encodeFloat, makeRandom, randomF32 } from "./op-suite.js";

const native = loadNative().cpu;
const info = native.isaInfo();
const baseIsa: CpuIsa = info.available.includes("avx512") ? "avx512" : "scalar";

interface FakePacked {
  id: number;
  source: Uint16Array;
  transB: boolean;
}

/**
 * A CPU backend that believes it runs on AMX, over a native whose packWeight hands out tokens and whose
 * matmul records the packed b it is given, then computes with the real (non-AMX) kernel.
 */
function amxBookkeeping() {
  // Ops at once (not recorded for a worker thread): the stand-in native answers for an ISA the real
  // recording would refuse, and the bookkeeping is seen as each call returns.
  const backend = createCpuBackend({ isa: baseIsa, offThread: false });
  const packs: FakePacked[] = [];
  const released: FakePacked[] = [];
  const given: (FakePacked | null)[] = [];
  const fake: NativeCpuOps = {
    ...native,
    isaInfo: () => ({ ...native.isaInfo(), selected: "amx" }),
    setIsa: () => {},
    packWeight: (b, _n, _k, transB, isa) => {
      expect(isa).toBe("amx");
      const packed = { id: packs.length, source: b, transB };
      packs.push(packed);
      return packed as unknown as NativePackedWeight;
    },
    releasePackedWeight: (packed) => {
      released.push(packed as unknown as FakePacked);
    },
    matmul: (a, b, bDtype, out, batch, m, n, k, transA, transB, bBatched, accumulate, alpha, packedB) => {
      const packed = (packedB ?? null) as FakePacked | null;
      if (packed) expect(packed.source === b && packed.transB === transB).toBe(true);
      given.push(packed);
      native.setIsa(baseIsa);
      native.matmul(a, b, bDtype, out, batch, m, n, k, transA, transB, bBatched, accumulate, alpha);
    },
  };
  Object.assign(backend as unknown as { native: NativeCpuOps; isa: CpuIsa }, { native: fake, isa: "amx" });
  return { backend, packs, released, given };
}

function bf16Weight(seed: number, rows: number, cols: number): Uint16Array {
  return encodeFloat(randomF32(makeRandom(seed), rows * cols), "bf16").data as Uint16Array;
}

async function product(backend: CpuBackend, x: Float32Array, w: ReturnType<CpuBackend["weight"]>, m: number,
  n: number, transB: boolean): Promise<Float32Array> {
  const a = backend.upload(x, "f32", [m, x.length / m]);
  const out = backend.alloc("f32", [m, n]);
  backend.matmul(a, w, out, { transB });
  const result = (await backend.download(out)) as Float32Array;
  backend.free(a);
  backend.free(out);
  return result;
}

describe("cpu backend: bf16 weights packed once for AMX", () => {
  const [m, n, k] = [5, 47, 95];  // N and K not multiples of the tile sizes (16, 32)
  const x = randomF32(makeRandom(1), m * k);
  const xPlain = randomF32(makeRandom(2), m * n);

  it("packs a weight at its first matmul per way of reading it, then reuses the copy", async () => {
    const { backend, packs, given } = amxBookkeeping();
    const data = bf16Weight(3, n, k);
    const w = backend.weight(data, "bf16", [n, k]);
    const first = await product(backend, x, w, m, n, true);
    const second = await product(backend, x, w, m, n, true);
    expect(packs.map((p) => p.transB)).toEqual([true]);
    expect(given).toEqual([packs[0], packs[0]]);
    expect(second).toEqual(first);
    // dX = dY · W (backward) reads W untransposed: a second copy, also made once.
    await product(backend, xPlain, w, m, k, false);
    await product(backend, xPlain, w, m, k, false);
    expect(packs.map((p) => p.transB)).toEqual([true, false]);
    expect(given.slice(2)).toEqual([packs[1], packs[1]]);
  });

  it("never packs what may change or what has no packed layout", async () => {
    const { backend, packs, given } = amxBookkeeping();
    const data = bf16Weight(4, n, k);
    const uploaded = backend.upload(data, "bf16", [n, k]);  // a copy the caller may overwrite (e.g. convert into it)
    const allocated = backend.alloc("bf16", [n, k]);
    backend.fill(allocated, 0.5);
    const f32 = backend.weight(randomF32(makeRandom(5), n * k), "f32", [n, k]);
    const view = backend.reshape(backend.weight(data, "bf16", [n, k]), [n, k]);
    for (const w of [uploaded, allocated, f32, view]) await product(backend, x, w, m, n, true);
    const batched = backend.weight(bf16Weight(6, 2 * n, k), "bf16", [2, n, k]);  // 3-D: b per batch item
    const a = backend.upload(randomF32(makeRandom(7), 2 * m * k), "f32", [2, m, k]);
    backend.matmul(a, batched, backend.alloc("f32", [2, m, n]), { transB: true });
    expect(packs).toEqual([]);
    expect(given).toEqual([null, null, null, null, null]);
  });

  it("releases the copies on free, and a new weight over the same memory is packed afresh", async () => {
    const { backend, packs, released, given } = amxBookkeeping();
    const data = bf16Weight(8, n, k);
    const w = backend.weight(data, "bf16", [n, k]);
    const before = await product(backend, x, w, m, n, true);
    await product(backend, xPlain, w, m, k, false);
    backend.free(w);
    expect(released).toEqual([packs[0], packs[1]]);
    expect(() => backend.matmul(backend.upload(x, "f32", [m, k]), w, backend.alloc("f32", [m, n]), { transB: true }))
      .toThrow(/used after free/);

    // Same array, new contents (a caller reusing its buffer): the new tensor gets its own packed copy.
    data.set(bf16Weight(9, n, k));
    const again = backend.weight(data, "bf16", [n, k]);
    const after = await product(backend, x, again, m, n, true);
    expect(packs.length).toBe(3);
    expect(given[given.length - 1]).toBe(packs[2]);
    expect(after).not.toEqual(before);
    const reference = createCpuBackend({ isa: baseIsa });
    expect(after).toEqual(await product(reference, x, reference.upload(data, "bf16", [n, k]), m, n, true));
  });

  it("makes no packed copy on an ISA without a packed layout", async () => {
    const backend = createCpuBackend({ isa: baseIsa });
    const start = backend.packStats();
    const w = backend.weight(bf16Weight(10, n, k), "bf16", [n, k]);
    await product(backend, x, w, m, n, true);
    const stats = backend.packStats();
    expect(stats.liveWeights).toBe(start.liveWeights);
    expect(stats.cachedPacks).toBe(start.cachedPacks);
    expect(stats.perCallPacks).toBe(start.perCallPacks);
    expect(native.packWeight(bf16Weight(10, n, k), n, k, true, baseIsa)).toBeNull();
  });

  it("native validation of packWeight, releasePackedWeight and matmul's packedB (on every CPU)", () => {
    const untyped = native as unknown as Record<string, (...args: unknown[]) => unknown>;
    expect(() => untyped.packWeight(new Float32Array(6), 2, 3, true, baseIsa)).toThrow(/^packWeight: b must be a Uint16Array \(bf16\)/);
    expect(() => native.packWeight(new Uint16Array(5), 2, 3, true, baseIsa)).toThrow(/^packWeight: b has 5 elements, expected N·K = 6/);
    expect(() => untyped.packWeight(new Uint16Array(6), 2, 3, true)).toThrow(/^packWeight: expected 5 arguments, got 4/);
    expect(() => untyped.packWeight(new Uint16Array(6), 2, 3, true, "sse")).toThrow(/^packWeight: unknown ISA "sse"/);
    if (!info.available.includes("amx")) {
      expect(() => native.packWeight(new Uint16Array(6), 2, 3, true, "amx")).toThrow(/^packWeight: ISA amx is not available on this CPU/);
    }
    expect(() => untyped.releasePackedWeight({})).toThrow(/^releasePackedWeight: packed must be a packed weight from packWeight/);
    const out = new Float32Array(m * n);
    expect(() => untyped.matmul(x, bf16Weight(12, n, k), "bf16", out, 1, m, n, k, false, true, false, false, 1, {}))
      .toThrow(/^matmul: packedB must be a packed weight from packWeight/);
    native.matmul(x, bf16Weight(12, n, k), "bf16", out, 1, m, n, k, false, true, false, false, 1, null);
  });

  it.skipIf(!info.available.includes("amx"))("on AMX: packed and per-call products agree bit for bit", async () => {
    // The process-wide selection is another ISA (as when a second backend in the process ran last): packWeight
    // packs for the backend's ISA, not the selection's.
    native.setIsa(baseIsa);
    const backend = createCpuBackend({ isa: "amx" });
    const data = bf16Weight(11, n, k);
    const start = backend.packStats();
    const w = backend.weight(data, "bf16", [n, k]);
    const packed = await product(backend, x, w, m, n, true);
    const perCall = await product(backend, x, backend.upload(data, "bf16", [n, k]), m, n, true);
    expect(packed).toEqual(perCall);
    const stats = backend.packStats();
    expect(stats.cachedPacks - start.cachedPacks).toBe(1);
    expect(stats.perCallPacks - start.perCallPacks).toBe(1);
    expect(stats.liveWeights - start.liveWeights).toBe(1);
    backend.free(w);
    expect(backend.packStats().liveWeights).toBe(start.liveWeights);

    // The addon refuses a packed b that does not belong to b, or was released.
    native.setIsa("amx");
    const handle = native.packWeight(data, n, k, true, "amx") as NativePackedWeight;
    const out = new Float32Array(m * n);
    expect(() => native.matmul(x, data.slice(), "bf16", out, 1, m, n, k, false, true, false, false, 1, handle))
      .toThrow(/packedB was packed from another b/);
    native.releasePackedWeight(handle);
    expect(() => native.matmul(x, data, "bf16", out, 1, m, n, k, false, true, false, false, 1, handle))
      .toThrow(/packedB was released/);
  });
});
