/**
 * Forward-pass consistency on the CPU backend: a batch of sequences of different lengths equals each
 * sequence alone; feeding a sequence in pieces through the KV cache equals feeding it whole; logits and
 * gathered log-probs agree; bad requests are refused with messages naming the problem.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { initModel } from "../src/model/init.js";
import { MODEL_PRESETS } from "../src/model/presets.js";
import { loadLlama } from "../src/model/load.js";
import { createCpuBackend } from "../src/engine/cpu/backend.js";
import type { Llama } from "../src/model/llama.js";

const workDir = mkdtempSync(join(tmpdir(), "labor-llm-llama-"));
let model: Llama;

beforeAll(() => {
  const dir = join(workDir, "tiny");
  initModel({ config: MODEL_PRESETS.tiny, seed: 3, dtype: "f32", outDir: dir });
  model = loadLlama(dir, createCpuBackend()).model;
});
afterAll(() => rmSync(workDir, { recursive: true, force: true }));

function randomTokens(count: number, seed: number): number[] {
  const out: number[] = [1];
  let state = seed;
  for (let i = 1; i < count; i++) {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0;
    out.push(3 + (state % 31000));
  }
  return out;
}

function maxAbsDifference(a: ArrayLike<number>, b: ArrayLike<number>, from = 0): number {
  let max = 0;
  for (let i = from; i < a.length; i++) max = Math.max(max, Math.abs(a[i] - b[i]));
  return max;
}

describe("Llama forward (cpu)", () => {
  it("batched sequences of different lengths equal each sequence alone", async () => {
    const sequences = [randomTokens(37, 1), randomTokens(5, 2), randomTokens(1, 3), randomTokens(64, 4)];
    const batched = await model.tokenLogprobs(sequences);
    for (const [s, tokens] of sequences.entries()) {
      const [alone] = await model.tokenLogprobs([tokens]);
      expect(Number.isNaN(batched[s][0])).toBe(true);
      expect(maxAbsDifference(batched[s], alone, 1)).toBeLessThan(1e-5);
    }
  });

  it("incremental evaluation through the KV cache equals one pass", async () => {
    const tokens = randomTokens(50, 9);
    const [whole] = await model.tokenLogprobs([tokens]);
    const cache = model.newCache([tokens.length]);
    const pieces = [tokens.slice(0, 1), tokens.slice(1, 20), tokens.slice(20, 21), tokens.slice(21)];
    const incremental: number[] = [NaN];
    let offset = 0;
    for (const piece of pieces) {
      const targets = piece.map((_, i) => (offset + i + 1 < tokens.length ? tokens[offset + i + 1] : -1));
      const { logprobs } = await model.forward(cache, { tokens: [piece], targets: [targets] });
      for (let i = 0; i < piece.length; i++) if (offset + i + 1 < tokens.length) incremental.push(logprobs![0][i]);
      offset += piece.length;
    }
    cache.free();
    expect(maxAbsDifference(incremental, whole, 1)).toBeLessThan(1e-5);
  });

  it("logits and gathered log-probs agree, and rows are normalised", async () => {
    const tokens = randomTokens(12, 5);
    const cache = model.newCache([tokens.length]);
    const targets = tokens.map((_, t) => (t + 1 < tokens.length ? tokens[t + 1] : -1));
    const { logits, logprobs } = await model.forward(cache, { tokens: [tokens], targets: [targets], wantLogits: true });
    cache.free();
    const vocab = MODEL_PRESETS.tiny.vocabSize;
    for (let t = 0; t + 1 < tokens.length; t++) {
      const row = logits![0].subarray(t * vocab, (t + 1) * vocab);
      let max = -Infinity;
      for (const z of row) max = Math.max(max, z);
      let sum = 0;
      for (const z of row) sum += Math.exp(z - max);
      const expected = row[targets[t]] - max - Math.log(sum);
      expect(Math.abs(logprobs![0][t] - expected)).toBeLessThan(1e-4);
    }
    expect(Number.isNaN(logprobs![0][tokens.length - 1])).toBe(true);
  });

  it("refuses out-of-vocabulary ids and cache overflow with clear messages", async () => {
    const cache = model.newCache([4]);
    await expect(model.forward(cache, { tokens: [[1, 32000]] })).rejects.toThrow(/token 1 has id 32000, outside the vocabulary \[0, 32000\)/);
    await expect(model.forward(cache, { tokens: [[1, 2, 3, 4, 5]] })).rejects.toThrow(/would hold 5 tokens, cache capacity is 4/);
    cache.free();
  });
});
