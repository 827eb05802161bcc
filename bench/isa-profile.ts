/**
 * Per-op profile of one CPU ISA path (`node dist/bench/isa-profile.js [isa]`, default avx2; BENCH_THREADS,
 * default 2): one training step of section 5's model per mode (full f32, full with bf16 matmuls, LoRA r16
 * with an f32 and a bf16 base) and one forward with log-probs of the `small` bf16 model over 2 × 256 tokens
 * (scoring's hot path), every backend call timed with ops run at once (`offThread: false`). Forcing a path
 * the CPU has a better one for (avx2 on an AVX-512 machine) is for development: the numbers that count come
 * from a machine of that path's own class.
 */
import type { Backend } from "../src/engine/backend.js";
import { createCpuBackend } from "../src/engine/cpu/backend.js";
import type { CpuIsa } from "../src/engine/native.js";
import { loadLlama } from "../src/model/load.js";
import { randomLlamaWeights } from "../src/model/llama-train.js";
import { profiledBackend, profileLines, type OpStats } from "./op-profile.js";
import { benchTokens } from "./tokens.js";
import { BENCH_LORA, CONFIG, loraMode, profileStep, toBf16Weights } from "./training.js";

const isa = (process.argv[2] ?? "avx2") as CpuIsa;
const threads = Number(process.env.BENCH_THREADS ?? 2);
const modelDir = process.argv[3];

async function profileForward(dir: string): Promise<void> {
  const stats = new Map<string, OpStats>();
  let enabled = false;
  const backend: Backend = profiledBackend(createCpuBackend({ isa, threads, offThread: false }), stats, () => enabled);
  const { model, config } = loadLlama(dir, backend);
  const tokens = benchTokens(2, 42);
  await model.tokenLogprobs(tokens.slice(0, 1));  // warm-up: pages the weights in
  enabled = true;
  const started = performance.now();
  await model.tokenLogprobs(tokens);
  const seconds = (performance.now() - started) / 1000;
  const count = tokens.reduce((n, s) => n + s.length, 0);
  const { lines } = profileLines(stats, { label: `forward small bf16, ${tokens.length}×${tokens[0].length}`, stepSeconds: seconds,
    tokens: count, vocabSize: config.vocabSize, loraRank: BENCH_LORA.rank, cpuThreads: threads });
  for (const line of lines) console.log(line);
}

async function main(): Promise<void> {
  const backend = createCpuBackend({ isa, threads, offThread: false });
  console.log(`# per-op profile: ${backend.describe()}`);
  const f32 = randomLlamaWeights(CONFIG, 5);
  const bf16 = toBf16Weights(f32);
  await profileStep(backend, threads, "full, f32", { kind: "full" }, f32);
  await profileStep(backend, threads, "full, bf16 matmuls", { kind: "full" }, f32, "bf16");
  await profileStep(backend, threads, "LoRA, f32 base", loraMode(), f32);
  await profileStep(backend, threads, "LoRA, bf16 base", loraMode(), bf16);
  if (modelDir) await profileForward(modelDir);
}

await main();
