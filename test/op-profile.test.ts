// The benchmarks' profile arithmetic (bench/op-profile.ts): the GPU timeline from timing marks around calls.
import { describe, expect, it } from "vitest";
import { gpuTimeline, type MarkedCall } from "../bench/op-profile.js";

describe("gpuTimeline", () => {
  it("attributes the time between each call's marks to its key and the gaps between calls to idle", () => {
    // Marks in ms: matmul [0, 2], add [3, 3.5] (1 ms idle before it), matmul again [3.5, 6.5] and fill [6.5, 7],
    // each straight after the previous call (no idle).
    const calls: MarkedCall[] = [
      { key: "matmul", start: 0, end: 1 }, { key: "add", start: 2, end: 3 }, { key: "matmul", start: 4, end: 5 },
      { key: "fill", start: 6, end: 7 },
    ];
    const times = Float64Array.from([0, 2, 3, 3.5, 3.5, 6.5, 6.5, 7]);
    const { stats, idleSeconds, totalSeconds } = gpuTimeline(calls, times);
    expect(stats.get("matmul")).toMatchObject({ calls: 2 });
    expect(stats.get("matmul")!.seconds).toBeCloseTo(0.005, 12);
    expect(stats.get("add")!.seconds).toBeCloseTo(0.0005, 12);
    expect(stats.get("fill")!.seconds).toBeCloseTo(0.0005, 12);
    expect(idleSeconds).toBeCloseTo(0.001, 12);
    expect(totalSeconds).toBeCloseTo(0.007, 12);
  });

  it("is empty without calls", () => {
    expect(gpuTimeline([], new Float64Array(0))).toEqual({ stats: new Map(), idleSeconds: 0, totalSeconds: 0 });
  });
});
