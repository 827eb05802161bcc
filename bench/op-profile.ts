/**
 * A per-op profile of training steps, shared by the CPU training bench (bench/training.ts) and the CUDA
 * bench (bench/device/cuda-bench.ts): a Proxy over a Backend that times every call while `enabled()` says so.
 * The times are those of the op's host call, so they are the op's own time only where the backend runs ops
 * synchronously: the CPU backend does; the CUDA backend does with LABOR_CUDA_SYNC=1 (a synchronize after
 * every launch, which adds the launch gaps a queued stream would hide). For the CUDA backend as it really
 * runs (queued), timing marks around each call give the GPU's own time per op and its idle time (gpuTimeline).
 */
import type { Backend, MatmulOptions, Tensor } from "../src/engine/backend.js";

export interface OpStats {
  seconds: number;
  /** Process CPU time (all threads) while the op ran. */
  cpuSeconds: number;
  calls: number;
  flops: number;
}

/** The key an op is filed under: matmuls by kind, dtype and shape ([m×n×k], ×batch), everything else by name. */
function opKey(property: string, args: unknown[]): { key: string; flops: number } {
  if (property !== "matmul") return { key: property, flops: 0 };
  const [a, b, out, options] = args as [Tensor, Tensor, Tensor, MatmulOptions | undefined];
  const k = options?.transA ? a.shape[a.shape.length - 2] : a.shape[a.shape.length - 1];
  const m = out.shape[out.shape.length - 2], n = out.shape[out.shape.length - 1];
  const kind = options?.transA ? "dW (aᵀ·b)" : options?.transB ? "x·Wᵀ" : "dY·W";
  return {
    key: `matmul ${kind} ${b.dtype} [${m}×${n}×${k}]${out.shape.length > 2 ? ` ×${out.size / (m * n)}` : ""}`,
    flops: 2 * out.size * k,
  };
}

/** A backend's timing events (CudaBackend.timingMark): a mark is queued on the GPU's stream, not waited for. */
export interface TimingMarks {
  timingMark(): number;
}

/** One backend call between two timing marks (their indices). */
export interface MarkedCall {
  key: string;
  start: number;
  end: number;
}

/**
 * Times every call while `enabled()`; with `marks`, also queues a timing mark before and after each call and
 * lists them in `markedCalls`, for gpuTimeline (the marks cost the host two event records per call).
 */
export function profiledBackend(inner: Backend, stats: Map<string, OpStats>, enabled: () => boolean = () => true,
  gpu?: { marks: TimingMarks; markedCalls: MarkedCall[]; enabled: () => boolean }): Backend {
  return new Proxy(inner, {
    get(target, property, receiver) {
      const value = Reflect.get(target, property, receiver) as unknown;
      if (typeof value !== "function" || typeof property !== "string") return value;
      return (...args: unknown[]) => {
        if (gpu?.enabled()) {
          const start = gpu.marks.timingMark();
          const result = (value as (...a: unknown[]) => unknown).apply(target, args);
          gpu.markedCalls.push({ key: opKey(property, args).key, start, end: gpu.marks.timingMark() });
          return result;
        }
        if (!enabled()) return (value as (...a: unknown[]) => unknown).apply(target, args);
        const start = performance.now();
        const cpuBefore = process.cpuUsage();
        const result = (value as (...a: unknown[]) => unknown).apply(target, args);
        const cpu = process.cpuUsage(cpuBefore);
        const { key, flops } = opKey(property, args);
        const entry = stats.get(key) ?? { seconds: 0, cpuSeconds: 0, calls: 0, flops: 0 };
        entry.seconds += (performance.now() - start) / 1000;
        entry.cpuSeconds += (cpu.user + cpu.system) / 1e6;
        entry.calls++;
        entry.flops += flops;
        stats.set(key, entry);
        return result;
      };
    },
  });
}

/**
 * Where the GPU's time went, from the marks around each call (`times[i]`: mark i in ms after mark 0): per op key,
 * the time between its two marks (the stream working on that call's launches, and waiting for the host between
 * them); `idleSeconds`, the gaps between one call's end mark and the next call's start mark (the GPU waiting
 * for the host to queue more); `totalSeconds`, first mark to last.
 */
export function gpuTimeline(calls: readonly MarkedCall[], times: Float64Array): {
  stats: Map<string, OpStats>; idleSeconds: number; totalSeconds: number;
} {
  const stats = new Map<string, OpStats>();
  let idle = 0;
  calls.forEach((call, i) => {
    const entry = stats.get(call.key) ?? { seconds: 0, cpuSeconds: 0, calls: 0, flops: 0 };
    entry.seconds += (times[call.end] - times[call.start]) / 1000;
    entry.calls++;
    stats.set(call.key, entry);
    if (i > 0) idle += Math.max(0, times[call.start] - times[calls[i - 1].end]) / 1000;
  });
  const totalSeconds = calls.length ? (times[calls[calls.length - 1].end] - times[calls[0].start]) / 1000 : 0;
  return { stats, idleSeconds: idle, totalSeconds };
}

/** Which summary category an op key belongs to (lm_head matmuls are those with the vocab in their shape). */
export function opCategory(key: string, vocabSize: number, loraRank: number): string {
  if (key.startsWith("matmul")) {
    if (key.includes(String(vocabSize))) return "lm_head matmuls";
    return key.includes(`×${loraRank}×`) || key.includes(`[${loraRank}×`) || key.includes(`×${loraRank}]`) ? "LoRA matmuls" : "layer matmuls";
  }
  if (key === "crossEntropy") return "cross-entropy";
  if (key.startsWith("attention")) return "attention";
  if (key === "adamw" || key === "sumOfSquares" || key === "scale") return "AdamW + clipping";
  return "other ops";
}

const fmt = (x: number, digits = 0) => (Number.isFinite(x) ? x.toFixed(digits) : "–");

/**
 * The profile of one step that took `stepSeconds`: a headline, the share of each category and a table of the
 * `top` slowest ops. `cpuThreads` adds matmul GFLOP/s per CPU-second (meaningful for the CPU backend only).
 */
export function profileLines(stats: Map<string, OpStats>, options: {
  label: string; stepSeconds: number; tokens: number; vocabSize: number; loraRank: number; cpuThreads?: number; top?: number;
  /** The category of the step's time outside every op (default: JS and batch upload on the host). */
  outsideLabel?: string;
}): { lines: string[]; shares: [string, number][] } {
  const { label, stepSeconds: total, tokens, cpuThreads } = options;
  const entries = [...stats.entries()].sort((x, y) => y[1].seconds - x[1].seconds);
  const inOps = entries.reduce((n, [, s]) => n + s.seconds, 0);
  const byCategory = new Map<string, number>();
  for (const [key, s] of entries) {
    const category = opCategory(key, options.vocabSize, options.loraRank);
    byCategory.set(category, (byCategory.get(category) ?? 0) + s.seconds);
  }
  byCategory.set(options.outsideLabel ?? "outside backend ops (JS, batch upload)", total - inOps);
  const shares = [...byCategory.entries()].sort((x, y) => y[1] - x[1]).map(([k, sec]): [string, number] => [k, (100 * sec) / total]);
  const matmul = entries.filter(([k]) => k.startsWith("matmul")).reduce(
    (n, [, s]) => ({ seconds: n.seconds + s.seconds, cpuSeconds: n.cpuSeconds + s.cpuSeconds, flops: n.flops + s.flops }),
    { seconds: 0, cpuSeconds: 0, flops: 0 });
  const perCpu = (s: { cpuSeconds: number; flops: number }) => (cpuThreads ? ` / ${fmt(s.flops / (s.cpuSeconds / cpuThreads) / 1e9)}` : "");
  const lines = [
    `\n${label}: step ${fmt(total, 3)} s (${fmt(tokens / total)} tok/s while profiled); matmuls ${fmt(matmul.flops / 1e9, 1)} GFLOP at ` +
      `${fmt(matmul.flops / matmul.seconds / 1e9)} GFLOP/s wall${cpuThreads ? `, ${perCpu(matmul).slice(3)} per CPU-second` : ""}`,
    "  " + shares.map(([k, share]) => `${k} ${fmt(share)}%`).join(", "),
    `| op | ms/step | % step | calls | GFLOP/s wall${cpuThreads ? " / per CPU-second" : ""} |`,
    "|---|---:|---:|---:|---:|",
    ...entries.slice(0, options.top ?? 12).map(([key, s]) =>
      `| ${key} | ${fmt(s.seconds * 1000, 1)} | ${fmt((100 * s.seconds) / total, 1)}% | ${s.calls} | ${s.flops ? `${fmt(s.flops / s.seconds / 1e9)}${perCpu(s)}` : ""} |`),
  ];
  return { lines, shares };
}
