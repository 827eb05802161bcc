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
import { WebGpuBackend, type WebGpuBackendOptions } from "../src/engine/webgpu/backend.js";
import { float32ToBfloat16 } from "../src/io/dtype.js";
import type { LlamaConfig } from "../src/io/llama-config.js";
import { randomLlamaWeights } from "../src/model/llama-train.js";
import { MODEL_PRESETS } from "../src/model/presets.js";
import type { TrainingSequence } from "../src/train/batches.js";
import { trainLlama } from "../src/train/loop.js";
import { ADAMW_DEFAULTS } from "../src/train/optimizer.js";
import { generateSyntheticPanel } from "../src/data/synthetic.js";
import { initModel } from "../src/model/init.js";
import { loadLlama } from "../src/model/load.js";
import { LlmScorer } from "../src/score/llm-scorer.js";
import { Tokenizer } from "../src/text/tokenizer.js";
import { defineOpSuite, makeRandom } from "./op-suite.js";
import { relativeError } from "./reference.js";

// A software adapter (lavapipe) on a shared CI machine is slow: give each test of the shared suite more time.
vi.setConfig({ testTimeout: 900_000 });

const found = await requestAdapter();
const unavailable = "reason" in found ? found.reason : null;

if (unavailable !== null) {
  it.skipIf(true)(`webgpu: ${unavailable}`, () => {});
} else {
  const backends: WebGpuBackend[] = [];
  const open = async (features?: readonly string[], limits: WebGpuBackendOptions = {}) => {
    const backend = await WebGpuBackend.create({ ...limits, features });
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

    // Real GPUs align binding offsets to 256 B (lavapipe: 16) and large weights exceed the binding limit
    // (lavapipe: 128 MiB): a backend with both limits made strict runs views at unaligned offsets and splits a
    // matmul's b along N (b stored [N, K]) or K (b stored [K, N], accumulating) and an embedding table by rows.
    it("splits tensors above the binding limit; unaligned views under 256-byte offset alignment", async () => {
      const strict = await open(undefined, { maxBindingBytes: 16384, offsetAlignment: 256 });
      const cpu = createCpuBackend({ isa: "scalar" }); // keeps a in f32 for bf16 b, as the WGSL kernel does
      const random = makeRandom(77);
      const values = (n: number) => Float32Array.from({ length: n }, () => random() * 2 - 1);
      const [m, n, k] = [5, 300, 33];
      const aRows = values((m + 4) * k);
      for (const dtype of ["f32", "bf16"] as const) {
        for (const transB of [true, false]) {
          for (const accumulate of [false, true]) {
            const bValues = values(n * k);
            const bData = dtype === "f32" ? bValues : float32ToBfloat16(bValues);
            const initial = values(m * n);
            const results: Float32Array[] = [];
            for (const be of [strict, cpu]) {
              const a = be.sliceRows(be.upload(aRows, "f32", [m + 4, k]), 3, m); // starts 99 floats in
              const b = be.weight(bData, dtype, transB ? [n, k] : [k, n]);
              const out = be.upload(initial, "f32", [m, n]);
              be.matmul(a, b, out, { transB, accumulate });
              results.push((await be.download(out)) as Float32Array);
            }
            expect(relativeError(results[0], results[1]), `${dtype} transB=${transB} accumulate=${accumulate}`).toBeLessThan(1e-5);
          }
        }
        const [vocab, dim] = [400, 20];
        const table = values(vocab * dim);
        const tableData = dtype === "f32" ? table : float32ToBfloat16(table);
        const ids = Int32Array.from([0, 399, 200, 5, 399, 163]);
        const results: Float32Array[] = [];
        for (const be of [strict, cpu]) {
          const out = be.alloc("f32", [ids.length, dim]);
          be.embedding(be.upload(ids, "i32", [ids.length]), be.weight(tableData, dtype, [vocab, dim]), out);
          results.push((await be.download(out)) as Float32Array);
        }
        expect(Array.from(results[0]), `embedding ${dtype}`).toEqual(Array.from(results[1]));
      }
      expect(() => strict.add(strict.alloc("f32", [5000]), strict.alloc("f32", [5000]), strict.alloc("f32", [5000])))
        .toThrow(/^add: .*needs a binding of 20000 bytes, above this adapter's maxStorageBufferBindingSize 16384/);
    });

    it("an upload into a pooled buffer runs after the recorded ops that used its previous tensor", async () => {
      const n = 1000;
      const first = main.upload(new Float32Array(n).fill(1), "f32", [n]);
      const out = main.alloc("f32", [n]);
      main.scale(first, 2, out); // recorded, not submitted
      main.free(first); // its buffer goes back to the pool
      const second = main.upload(new Float32Array(n).fill(7), "f32", [n]); // takes that buffer
      expect(new Set(await main.download(out))).toEqual(new Set([2]));
      expect(new Set(await main.download(second))).toEqual(new Set([7]));
    });

    // `score --backend webgpu`: the prefix-shared scorer (trie + tree attention) on one tiny model's two
    // person-years, against the same scorer on the CPU: every candidate's log-prob within 1e-5 relative.
    it("prefix-shared occupation scoring equals the CPU backend's", async () => {
      const dir = mkdtempSync(join(tmpdir(), "labor-llm-webgpu-score-"));
      try {
        initModel({ config: MODEL_PRESETS.tiny, seed: 5, dtype: "f32", outDir: dir });
        const tokenizer = Tokenizer.fromDirectory(dir);
        const panel = generateSyntheticPanel({ profile: "nlsy79", people: 40, seed: 11 }).panel;
        const people = panel.people.filter((p) => p.waves.length >= 2).slice(0, 1).map((p) => ({ ...p, waves: p.waves.slice(0, 2) }));
        const scores: Float64Array[][][] = [];
        for (const backend of [createCpuBackend(), main]) {
          const scorer = new LlmScorer(loadLlama(dir, backend).model, tokenizer, { maxRows: 6000, documentsPerGroup: 2 });
          scores.push(await scorer.scorePeople(people));
        }
        let worst = 0;
        scores[0][0].forEach((wave, w) => wave.forEach((lp, c) => {
          worst = Math.max(worst, Math.abs(scores[1][0][w][c] - lp) / Math.max(1, Math.abs(lp)));
        }));
        console.log(`scoring webgpu vs cpu: worst relative difference ${worst.toExponential(2)}`);
        expect(worst).toBeLessThan(1e-5);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
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
