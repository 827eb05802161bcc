/**
 * The whole Llama forward against an implementation we did not write: llama.cpp (node-llama-cpp@3.21.1) on a
 * GGUF we export, per-token log-probabilities over ≥ 500 positions. f32: max |Δ| ≤ 1e-3; bf16 weights:
 * ≤ 2e-2 (both engines round activations to bf16 before bf16 matmuls, in different places). The WebGPU backend
 * runs some of the same cases (CI's adapter is the slow software lavapipe): f32 within 1e-3; bf16 within 3e-2,
 * as its bf16 matmuls keep activations in f32 (see the case).
 */
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { llamaCppTokenLogprobs, llamaCppUnavailableReason } from "../bench/peers/llama-cpp.js";
import { initModel, type WeightDType } from "../src/model/init.js";
import { MODEL_PRESETS } from "../src/model/presets.js";
import { exportGguf } from "../src/model/export-gguf.js";
import { loadLlama } from "../src/model/load.js";
import { createCpuBackend } from "../src/engine/cpu/backend.js";
import { WebGpuBackend } from "../src/engine/webgpu/backend.js";
import { requestAdapter } from "../src/engine/webgpu/device.js";
import type { Backend } from "../src/engine/backend.js";
import { Tokenizer } from "../src/text/tokenizer.js";
import { EXAMPLE_DOCUMENTS } from "../src/text/examples.js";

const peerMissing = llamaCppUnavailableReason();
const adapter = await requestAdapter();
const webgpuMissing = "reason" in adapter ? `webgpu: ${adapter.reason}` : null;
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
  backend?: "cpu" | "webgpu";
}

const CASES: Case[] = [
  { preset: "small", dtype: "f32", tolerance: 1e-3 },
  { preset: "small-gqa", dtype: "f32", tolerance: 1e-3 },
  { preset: "tiny-llama3", dtype: "f32", tolerance: 1e-3 },
  { preset: "small-gqa", dtype: "bf16", tolerance: 2e-2 },
  // The same forward on the WebGPU kernels (CI: lavapipe, a slow software adapter, so the small cases only).
  { preset: "tiny-llama3", dtype: "f32", tolerance: 1e-3, backend: "webgpu" },
  { preset: "small-gqa", dtype: "f32", tolerance: 1e-3, backend: "webgpu" },
  // bf16: llama.cpp rounds activations to bf16 before bf16 matmuls (so does the CPU backend on AVX512_BF16/AMX);
  // the WebGPU kernels keep them in f32, which moves the gap to llama.cpp to 1.99e-2 here (WebGPU vs the CPU's
  // scalar path, which also keeps f32 activations: 3.8e-6). Hence 3e-2 for this case.
  { preset: "small-gqa", dtype: "bf16", tolerance: 3e-2, backend: "webgpu" },
];

describe("Llama forward vs llama.cpp", () => {
  for (const c of CASES) {
    const onWebGpu = c.backend === "webgpu";
    const missing = peerMissing ?? (onWebGpu ? webgpuMissing : null);
    const name = `${c.preset} ${c.dtype}${onWebGpu ? " on webgpu" : ""}`;
    it.skipIf(missing !== null)(`${name}: per-token log-probs within ${c.tolerance}${missing ? ` (skipped: ${missing})` : ""}`, async () => {
      const modelDir = join(workDir, `${c.preset}-${c.dtype}`);
      const ggufPath = join(workDir, `${c.preset}-${c.dtype}.gguf`);
      if (!existsSync(ggufPath)) {
        initModel({ config: MODEL_PRESETS[c.preset], seed: 7, dtype: c.dtype, outDir: modelDir });
        exportGguf(modelDir, ggufPath, c.dtype);
      }

      const tokenizer = Tokenizer.fromDirectory(modelDir);
      const sequences = TEXTS.map((text) => tokenizer.encode(text, { addBos: true }));
      const positions = sequences.reduce((a, s) => a + s.length - 1, 0);
      expect(positions).toBeGreaterThanOrEqual(500);

      const backend: Backend = onWebGpu ? await WebGpuBackend.create() : createCpuBackend();
      const { model } = loadLlama(modelDir, backend);
      const started = performance.now();
      const ours = await model.tokenLogprobs(sequences);
      const seconds = (performance.now() - started) / 1000;
      if (backend instanceof WebGpuBackend) backend.dispose();
      const theirs = await llamaCppTokenLogprobs(ggufPath, sequences, { kvCacheType: "F32" });

      let maxDelta = 0;
      let spread = 0;
      sequences.forEach((tokens, s) => {
        for (let t = 1; t < tokens.length; t++) {
          maxDelta = Math.max(maxDelta, Math.abs(ours[s][t] - theirs[s][t]));
          spread = Math.max(spread, Math.abs(theirs[s][t] + Math.log(MODEL_PRESETS[c.preset].vocabSize)));
        }
      });
      console.log(`${name}: ${positions} positions, max |Δ logprob| = ${maxDelta.toExponential(3)} ` +
        `(forward ${(positions / seconds).toFixed(0)} tokens/s on ${backend.describe()})`);
      // The model must be far from uniform, or the comparison would prove little.
      expect(spread).toBeGreaterThan(1);
      expect(maxDelta).toBeLessThanOrEqual(c.tolerance);
    }, onWebGpu ? 900_000 : undefined);
  }
});
