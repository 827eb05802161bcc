/**
 * The whole Llama forward against an implementation we did not write: llama.cpp (node-llama-cpp@3.21.1) on a
 * GGUF we export, per-token log-probabilities over ≥ 500 positions. f32: max |Δ| ≤ 1e-3; bf16 weights:
 * ≤ 2e-2 (both engines round activations to bf16 before bf16 matmuls, in different places).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { llamaCppTokenLogprobs, llamaCppUnavailableReason } from "../bench/peers/llama-cpp.js";
import { initModel, type WeightDType } from "../src/model/init.js";
import { MODEL_PRESETS } from "../src/model/presets.js";
import { exportGguf } from "../src/io/export-gguf.js";
import { loadLlama } from "../src/model/load.js";
import { createCpuBackend } from "../src/engine/cpu/backend.js";
import { Tokenizer } from "../src/text/tokenizer.js";
import { EXAMPLE_DOCUMENTS } from "../src/cli/commands/demo.js";

const peerMissing = llamaCppUnavailableReason();
const workDir = mkdtempSync(join(tmpdir(), "labor-llm-parity-"));
afterAll(() => rmSync(workDir, { recursive: true, force: true }));

/** Texts of different lengths (≥ 500 positions in all): resume documents and prose. */
const TEXTS = [
  EXAMPLE_DOCUMENTS[0],
  EXAMPLE_DOCUMENTS[1] + "\n" + EXAMPLE_DOCUMENTS[0],
  "Labour economists model a worker's next occupation as a function of the whole career so far. " +
    "The outcome is a discrete choice among a few hundred occupations, and the history is a long sequence; " +
    "classical models throw most of that history away. Fine-tuned language models read it all.",
  EXAMPLE_DOCUMENTS[1],
];

interface Case {
  preset: string;
  dtype: WeightDType;
  tolerance: number;
}

const CASES: Case[] = [
  { preset: "small", dtype: "f32", tolerance: 1e-3 },
  { preset: "small-gqa", dtype: "f32", tolerance: 1e-3 },
  { preset: "tiny-llama3", dtype: "f32", tolerance: 1e-3 },
  { preset: "small-gqa", dtype: "bf16", tolerance: 2e-2 },
];

describe("Llama forward vs llama.cpp", () => {
  for (const c of CASES) {
    it.skipIf(peerMissing !== null)(`${c.preset} ${c.dtype}: per-token log-probs within ${c.tolerance}${peerMissing ? ` (skipped: ${peerMissing})` : ""}`, async () => {
      const modelDir = join(workDir, `${c.preset}-${c.dtype}`);
      initModel({ config: MODEL_PRESETS[c.preset], seed: 7, dtype: c.dtype, outDir: modelDir });
      const ggufPath = join(workDir, `${c.preset}-${c.dtype}.gguf`);
      exportGguf(modelDir, ggufPath, c.dtype);

      const tokenizer = Tokenizer.fromDirectory(modelDir);
      const sequences = TEXTS.map((text) => tokenizer.encode(text, { addBos: true }));
      const positions = sequences.reduce((a, s) => a + s.length - 1, 0);
      expect(positions).toBeGreaterThanOrEqual(500);

      const { model } = loadLlama(modelDir, createCpuBackend());
      const ours = await model.tokenLogprobs(sequences);
      const theirs = await llamaCppTokenLogprobs(ggufPath, sequences, { kvCacheType: "F32" });

      let maxDelta = 0;
      let spread = 0;
      sequences.forEach((tokens, s) => {
        for (let t = 1; t < tokens.length; t++) {
          maxDelta = Math.max(maxDelta, Math.abs(ours[s][t] - theirs[s][t]));
          spread = Math.max(spread, Math.abs(theirs[s][t] + Math.log(MODEL_PRESETS[c.preset].vocabSize)));
        }
      });
      console.log(`${c.preset} ${c.dtype}: ${positions} positions, max |Δ logprob| = ${maxDelta.toExponential(3)}`);
      // The model must be far from uniform, or the comparison would prove little.
      expect(spread).toBeGreaterThan(1);
      expect(maxDelta).toBeLessThanOrEqual(c.tolerance);
    });
  }
});
