/**
 * This machine's compute ceilings (register-only micro-loops in the addon, cpu.peakFlops), shared by the
 * kernel section of `npm run bench` (bench/run.ts) and the micro-benchmarks (bench/micro.ts).
 */
import { loadNative, type CpuIsa } from "../src/engine/native.js";

/** The micro-loops the addon can time, where this CPU has them. */
export type CeilingKind = "avx512-fma" | "avx512-bf16" | "amx-bf16" | "avx2-fma";
const CEILING_KINDS: readonly CeilingKind[] = ["avx512-fma", "avx512-bf16", "amx-bf16", "avx2-fma"];

/**
 * GFLOP/s of every micro-loop this CPU runs, best of `runs`: FLOPs per CPU-second of each pool thread, summed
 * over the threads (so other processes on a shared machine don't lower it). Kinds the CPU lacks are absent.
 */
export function measureCeilings(runs: number, iterations = 20_000_000): Partial<Record<CeilingKind, number>> {
  const cpu = loadNative().cpu;
  const result: Partial<Record<CeilingKind, number>> = {};
  for (const kind of CEILING_KINDS) {
    try {
      result[kind] = Math.max(...Array.from({ length: runs }, () => cpu.peakFlops(kind, iterations) / 1e9));
    } catch {
      // not available on this CPU
    }
  }
  return result;
}

/**
 * The ceiling a matmul on `isa` with b of `bDtype` is held against: the instruction its inner loop issues.
 * AVX-512 bf16 products use vdpbf16ps (where the CPU has AVX512_BF16), AMX its tiles; AVX2 widens bf16/f16
 * to f32 and runs FMAs. The scalar path has no ceiling of its own.
 */
export function ceilingKindFor(isa: CpuIsa, bDtype: "f32" | "bf16", measured: Partial<Record<CeilingKind, number>>): CeilingKind | undefined {
  if (isa === "scalar") return undefined;
  if (isa === "avx2") return "avx2-fma";
  if (bDtype === "bf16") {
    if (isa === "amx" && measured["amx-bf16"] !== undefined) return "amx-bf16";
    if (measured["avx512-bf16"] !== undefined) return "avx512-bf16";
  }
  return "avx512-fma";
}
