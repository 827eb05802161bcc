/**
 * Child process of bench/training.ts: LoRA training steps on a model directory (weights memory-mapped as
 * stored, e.g. the `1b` preset in bf16), and print {"maxRssBytes", "tokensPerSecond", "stepSeconds",
 * "loadSeconds", "losses"} — the peak resident set of this process (mapped weights paged in, LoRA
 * matrices and their AdamW moments, activations) and the throughput after one untimed warm-up step.
 * Usage: node train-rss-child.js MODEL_DIR THREADS STEPS SEQ_LEN
 */
import { createCpuBackend } from "../src/engine/cpu/backend.js";
import { openCheckpoint } from "../src/io/safetensors.js";
import { readLlamaConfig } from "../src/io/hf-config.js";
import { loadLlamaWeights } from "../src/model/weights.js";
import { benchmarkTrainingSteps } from "../src/train/step.js";
import { BENCH_LORA } from "./training.js";

const [dir, threads, steps, seqLen] = process.argv.slice(2);
const started = performance.now();
const config = readLlamaConfig(dir);
const weights = loadLlamaWeights(openCheckpoint(dir), config);
const loadSeconds = (performance.now() - started) / 1000;
const result = await benchmarkTrainingSteps(createCpuBackend({ threads: Number(threads) }), config, {
  mode: { kind: "lora", lora: { ...BENCH_LORA, targetModules: [...BENCH_LORA.targetModules] } },
  steps: Number(steps), batch: 1, seqLen: Number(seqLen), seed: 1, weights,
});
// resourceUsage().maxRSS is in KiB.
console.log(JSON.stringify({
  maxRssBytes: process.resourceUsage().maxRSS * 1024, tokensPerSecond: result.tokensPerSecond,
  stepSeconds: result.seconds / Number(steps), loadSeconds, losses: result.losses,
}));
