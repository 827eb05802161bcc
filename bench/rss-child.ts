/**
 * Child process of bench/run.ts: load a model directory, score `sequences` × 512 random tokens once, and
 * print {"maxRssBytes", "seconds"} — the peak resident set of this process (weights mapped in + activations).
 * Usage: node rss-child.js MODEL_DIR THREADS SEQUENCES
 */
import { createCpuBackend } from "../src/engine/cpu/backend.js";
import { loadLlama } from "../src/model/load.js";
import { benchTokens } from "./tokens.js";

const [dir, threads, sequences] = process.argv.slice(2);
const { model } = loadLlama(dir, createCpuBackend({ threads: Number(threads) }));
const start = performance.now();
await model.tokenLogprobs(benchTokens(Number(sequences), 42));
const seconds = (performance.now() - start) / 1000;
// resourceUsage().maxRSS is in KiB.
console.log(JSON.stringify({ maxRssBytes: process.resourceUsage().maxRSS * 1024, seconds }));
