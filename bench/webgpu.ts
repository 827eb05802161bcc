/**
 * WebGPU throughput on the adapter present, named in the output, next to the CPU backend in the same run:
 * matmul GFLOP/s (x[M,K]·W[N,K]ᵀ, f32 and bf16 W) and Llama forward tokens/s (log-probs of every token).
 * Medians of BENCH_RUNS (default 3) runs after one warm-up (pipelines compiled, buffers pooled).
 *
 *   npx tsc -p tsconfig.json && node dist/bench/webgpu.js [M=N=K] [preset]     (defaults: 512, small)
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Backend } from "../src/engine/backend.js";
import { createCpuBackend } from "../src/engine/cpu/backend.js";
import { WebGpuBackend } from "../src/engine/webgpu/backend.js";
import { float32ToBfloat16 } from "../src/io/dtype.js";
import { initModel } from "../src/model/init.js";
import { loadLlama } from "../src/model/load.js";
import { MODEL_PRESETS } from "../src/model/presets.js";
import { median } from "./median.js";

const RUNS = Math.max(1, Number(process.env.BENCH_RUNS ?? 3));
const size = Number(process.argv[2] ?? 512);
const preset = process.argv[3] ?? "small";

async function timed(run: () => Promise<void>): Promise<number> {
  await run(); // warm-up
  const seconds: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const start = performance.now();
    await run();
    seconds.push((performance.now() - start) / 1000);
  }
  return median(seconds);
}

async function matmulGflops(backend: Backend, dtype: "f32" | "bf16"): Promise<number> {
  const values = Float32Array.from({ length: size * size }, (_, i) => Math.sin(i) * 0.1);
  const x = backend.upload(values, "f32", [size, size]);
  const w = dtype === "f32" ? backend.weight(values, "f32", [size, size]) : backend.weight(float32ToBfloat16(values), "bf16", [size, size]);
  const out = backend.alloc("f32", [size, size]);
  const seconds = await timed(async () => {
    backend.matmul(x, w, out, { transB: true });
    await backend.sync();
  });
  for (const t of [x, w, out]) backend.free(t);
  return (2 * size ** 3) / seconds / 1e9;
}

async function forwardTokensPerSecond(backend: Backend, modelDir: string, tokens: number[]): Promise<number> {
  const { model } = loadLlama(modelDir, backend);
  const seconds = await timed(async () => {
    await model.tokenLogprobs([tokens]);
  });
  return tokens.length / seconds;
}

const gpu = await WebGpuBackend.create();
const cpu = createCpuBackend();
const dir = mkdtempSync(join(tmpdir(), "labor-llm-webgpu-bench-"));
try {
  initModel({ config: MODEL_PRESETS[preset], seed: 7, dtype: "f32", outDir: dir });
  const tokens = Array.from({ length: 256 }, (_, i) => (i === 0 ? 1 : 3 + ((i * 7919) % 31000)));
  const rows: string[][] = [];
  for (const dtype of ["f32", "bf16"] as const) {
    rows.push([`matmul ${size}³ (W ${dtype}) GFLOP/s`, (await matmulGflops(gpu, dtype)).toFixed(2), (await matmulGflops(cpu, dtype)).toFixed(2)]);
  }
  rows.push([`forward ${preset} f32, 256 tokens: tokens/s`, (await forwardTokensPerSecond(gpu, dir, tokens)).toFixed(1),
    (await forwardTokensPerSecond(cpu, dir, tokens)).toFixed(1)]);
  console.log(`webgpu: ${gpu.describe()}\ncpu:    ${cpu.describe()}\nmedian of ${RUNS} runs\n`);
  console.log("| measure | webgpu | cpu |\n|---|---|---|");
  for (const row of rows) console.log(`| ${row.join(" | ")} |`);
} finally {
  gpu.dispose();
  rmSync(dir, { recursive: true, force: true });
}
