/**
 * test/parity-llama-cpp.test.ts on the CUDA backend: the whole Llama forward against llama.cpp (CPU, through
 * node-llama-cpp) on a GGUF we export, per-token log-probabilities over ≥ 500 positions; f32 ≤ 1e-3, bf16
 * weights ≤ 2e-2. Skipped, with the reason, when there is no usable GPU or no llama.cpp peer
 * (`npm run peers`). bench/device/cuda-check.sh runs it on a GPU machine.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { llamaCppTokenLogprobs, llamaCppUnavailableReason } from "../bench/peers/llama-cpp.js";
import { CudaBackend, cudaStatus } from "../src/engine/cuda/backend.js";
import { exportGguf } from "../src/model/export-gguf.js";
import { initModel, type WeightDType } from "../src/model/init.js";
import { loadLlama } from "../src/model/load.js";
import { MODEL_PRESETS } from "../src/model/presets.js";
import { Tokenizer } from "../src/text/tokenizer.js";

const cuda = cudaStatus();
const skipReason = "reason" in cuda ? `no CUDA: ${cuda.reason}` : llamaCppUnavailableReason();
const workDir = mkdtempSync(join(tmpdir(), "labor-llm-parity-cuda-"));
afterAll(() => rmSync(workDir, { recursive: true, force: true }));

const PARAGRAPH =
  "Labour economists model a worker's next occupation as a function of the whole career so far. The outcome is a " +
  "discrete choice among a few hundred occupations, and the history is a long sequence; classical models throw most " +
  "of that history away. Fine-tuned language models read it all: a resume written as text, year by year, with the " +
  "occupation, the industry, the education and the region, followed by the question of what comes next. ";
const TEXTS = [PARAGRAPH, PARAGRAPH.repeat(2), "Registered nurse, 1998 to 2004; nurse practitioner since 2005. " + PARAGRAPH, PARAGRAPH.repeat(2)];

const CASES: { preset: string; dtype: WeightDType; tolerance: number }[] = [
  { preset: "small", dtype: "f32", tolerance: 1e-3 },
  { preset: "small-gqa", dtype: "f32", tolerance: 1e-3 },
  { preset: "tiny-llama3", dtype: "f32", tolerance: 1e-3 },
  { preset: "small-gqa", dtype: "bf16", tolerance: 2e-2 },
];

describe("Llama forward on CUDA vs llama.cpp", () => {
  for (const c of CASES) {
    it.skipIf(skipReason !== null)(`cuda ${c.preset} ${c.dtype}: per-token log-probs within ${c.tolerance}${skipReason ? ` (skipped: ${skipReason})` : ""}`, async () => {
      const modelDir = join(workDir, `${c.preset}-${c.dtype}`);
      initModel({ config: MODEL_PRESETS[c.preset], seed: 7, dtype: c.dtype, outDir: modelDir });
      const ggufPath = join(workDir, `${c.preset}-${c.dtype}.gguf`);
      exportGguf(modelDir, ggufPath, c.dtype);

      const tokenizer = Tokenizer.fromDirectory(modelDir);
      const sequences = TEXTS.map((text) => tokenizer.encode(text, { addBos: true }));
      const positions = sequences.reduce((a, s) => a + s.length - 1, 0);
      expect(positions).toBeGreaterThanOrEqual(500);

      const { model } = loadLlama(modelDir, CudaBackend.create());
      const ours = await model.tokenLogprobs(sequences);
      const theirs = await llamaCppTokenLogprobs(ggufPath, sequences, { kvCacheType: "F32" });

      let maxDelta = 0;
      sequences.forEach((tokens, s) => {
        for (let t = 1; t < tokens.length; t++) maxDelta = Math.max(maxDelta, Math.abs(ours[s][t] - theirs[s][t]));
      });
      console.log(`cuda ${c.preset} ${c.dtype}: ${positions} positions, max |Δ logprob| = ${maxDelta.toExponential(3)}`);
      expect(maxDelta).toBeLessThanOrEqual(c.tolerance);
    });
  }
});
