/**
 * The shared op suite on the WebGPU backend when this machine has an adapter (CI: Mesa's lavapipe, a software
 * Vulkan driver), else one skipped test that says why. Also WebGPU-specific checks: a short LoRA training run
 * gives the CPU backend's losses, errors name the op.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it, vi } from "vitest";
import type { Backend } from "../src/engine/backend.js";
import { createCpuBackend } from "../src/engine/cpu/backend.js";
import { requestAdapter } from "../src/engine/webgpu/device.js";
import { WebGpuBackend } from "../src/engine/webgpu/backend.js";
import type { LlamaConfig } from "../src/model/config.js";
import { randomLlamaWeights } from "../src/model/llama-train.js";
import { MODEL_PRESETS } from "../src/model/presets.js";
import type { TrainingSequence } from "../src/train/batches.js";
import { trainLlama } from "../src/train/loop.js";
import { ADAMW_DEFAULTS } from "../src/train/optimizer.js";
import { defineOpSuite, makeRandom } from "./op-suite.js";

// A software adapter (lavapipe) on a shared CI machine is slow: give each test of the shared suite more time.
vi.setConfig({ testTimeout: 900_000 });

const found = await requestAdapter();
const unavailable = "reason" in found ? found.reason : null;

if (unavailable !== null) {
  it.skipIf(true)(`webgpu: ${unavailable}`, () => {});
} else {
  const backends: WebGpuBackend[] = [];
  const open = async (features?: readonly string[]) => {
    const backend = await WebGpuBackend.create({ features });
    backends.push(backend);
    return backend;
  };
  afterAll(() => {
    for (const b of backends) b.dispose();
  });
  const main = await open();
  defineOpSuite(`webgpu (${main.describe()})`, () => main);

  describe("webgpu backend", () => {
    it("describes the adapter", () => {
      expect(main.describe()).toMatch(/^webgpu \(.+; features: .*; max binding .*\)$/);
    });

    it("refuses an output that overlaps an input it may not alias, naming the op", () => {
      const x = main.upload(new Float32Array(64), "f32", [8, 8]);
      expect(() => main.rmsnorm(x, main.upload(new Float32Array(8), "f32", [8]), 1e-5, x))
        .toThrow(/^rmsnorm: .*share memory/);
    });

    // LoRA (rank 4 on q, v, down, dropout 0.1), 6 optimizer steps of 2 micro-batches on a small random model.
    // Both backends see the same batches, dropout masks and initial weights; they differ only in f32 summation
    // order (~1e-6 relative per op), which after 6 AdamW steps stays below 1e-4 relative in the losses.
    it("a short LoRA training run gives the CPU backend's losses (relative 1e-4)", async () => {
      const config: LlamaConfig = {
        ...MODEL_PRESETS.tiny, hiddenSize: 32, intermediateSize: 64, numHeads: 4, numKvHeads: 2, headDim: 8, vocabSize: 97,
      };
      const random = makeRandom(3);
      const sequences: TrainingSequence[] = Array.from({ length: 16 }, () => {
        const n = 20 + Math.floor(random() * 30);
        const ids = new Int32Array(n);
        ids[0] = 1;
        for (let i = 1; i < n; i++) ids[i] = random() < 0.8 ? (ids[i - 1] * 7 + 3) % 97 : Math.floor(random() * 97);
        return { ids, lossMask: new Uint8Array(n).fill(1, 1) };
      });
      const run = async (backend: Backend) => {
        const outDir = mkdtempSync(join(tmpdir(), "labor-llm-webgpu-train-"));
        try {
          const result = await trainLlama({
            backend, config, weights: randomLlamaWeights(config, 2), baseModelDir: null, train: sequences, outDir,
            mode: { kind: "lora", lora: { rank: 4, alpha: 8, dropout: 0.1, useRslora: false, targetModules: ["q_proj", "v_proj", "down_proj"] } },
            learningRate: 1e-2, schedule: "constant", warmupSteps: 0, epochs: 3, maxSteps: 6, batchTokens: 120,
            gradientAccumulation: 2, adamw: ADAMW_DEFAULTS, maxGradNorm: 1, evalEvery: 0, patience: 0, checkpointEvery: 0, seed: 5,
          });
          return result.losses;
        } finally {
          rmSync(outDir, { recursive: true, force: true });
        }
      };
      const cpuLosses = await run(createCpuBackend());
      const gpuLosses = await run(main);
      expect(gpuLosses.length).toBe(6);
      console.log(`LoRA losses cpu ${cpuLosses.map((l) => l.toFixed(6)).join(" ")}\n            webgpu ${gpuLosses.map((l) => l.toFixed(6)).join(" ")}`);
      expect(cpuLosses[5]).toBeLessThan(cpuLosses[0]);
      gpuLosses.forEach((loss, i) => expect(Math.abs(loss - cpuLosses[i]) / cpuLosses[i], `step ${i + 1}`).toBeLessThan(1e-4));
    });
  });
}
