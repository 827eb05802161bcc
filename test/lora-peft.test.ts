/**
 * PEFT adapters: the files we write have PEFT's names and shapes; reading them back gives the same matrices;
 * a base model with the adapter merged on load, and a plain HF checkpoint with the adapter merged in, give
 * the log-probabilities of the unmerged LoRA forward (≤ 1e-5 in f32).
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createCpuBackend } from "../src/engine/cpu/backend.js";
import { initModel } from "../src/model/init.js";
import { MODEL_PRESETS } from "../src/model/presets.js";
import { loadLlama } from "../src/model/load.js";
import { TrainableLlama } from "../src/model/llama-train.js";
import { LORA_TARGET_MODULES, type LoraConfig, type LoraMatrices } from "../src/io/lora-config.js";
import { initialLoraMatrices } from "../src/model/lora.js";
import { loadLlamaWithAdapter, mergeAdapterIntoCheckpoint } from "../src/model/adapter.js";
import { readPeftAdapter, writePeftAdapter } from "../src/io/peft.js";
import { openCheckpoint, openSafetensors } from "../src/io/safetensors.js";
import { loadLlamaWeights } from "../src/model/weights.js";
import { buildPackedBatch } from "../src/train/batches.js";
import { makeRandom } from "./op-suite.js";

const workDir = mkdtempSync(join(tmpdir(), "labor-llm-peft-"));
const baseDir = join(workDir, "base");
const adapterDir = join(workDir, "adapter");
const config = MODEL_PRESETS.tiny;
const lora: LoraConfig = { rank: 4, alpha: 8, dropout: 0.05, useRslora: false, targetModules: [...LORA_TARGET_MODULES] };
let matrices: LoraMatrices[];
const tokens = (() => {
  const random = makeRandom(3);
  return [1, ...Array.from({ length: 40 }, () => 3 + Math.floor(random() * 31000))];
})();
let unmerged: Float64Array;

beforeAll(async () => {
  initModel({ config, seed: 4, dtype: "f32", outDir: baseDir });
  const random = makeRandom(8);
  // A trained adapter has B ≠ 0; make it large enough that the update moves the log-probs visibly.
  matrices = initialLoraMatrices(config, lora, 1).map((m) => ({ ...m, b: Float32Array.from(m.b, () => (random() - 0.5) * 0.5) }));
  const backend = createCpuBackend();
  const weights = loadLlamaWeights(openCheckpoint(baseDir), config);
  const model = new TrainableLlama(backend, config, weights, { mode: { kind: "lora", lora }, maxTokens: 64, loraMatrices: matrices });
  const ids = Int32Array.from(tokens);
  const { rowLosses } = await model.evaluate(buildPackedBatch([{ ids, lossMask: new Uint8Array(ids.length).fill(1, 1) }], [0], 0));
  // log p(tokens[t+1] | ≤ t) = −loss of row t
  unmerged = Float64Array.from({ length: tokens.length - 1 }, (_, t) => -rowLosses[t]);
  model.free();
  writePeftAdapter(adapterDir, { lora, matrices, baseModel: baseDir }, config);
});
afterAll(() => rmSync(workDir, { recursive: true, force: true }));

function maxDifference(logprobs: Float32Array): number {
  let max = 0;
  for (let t = 1; t < logprobs.length; t++) max = Math.max(max, Math.abs(logprobs[t] - unmerged[t - 1]));
  return max;
}

describe("PEFT adapters", () => {
  it("writes PEFT's config fields and tensor names/shapes", () => {
    const json = JSON.parse(readFileSync(join(adapterDir, "adapter_config.json"), "utf8"));
    expect(json).toMatchObject({ peft_type: "LORA", task_type: "CAUSAL_LM", r: 4, lora_alpha: 8, lora_dropout: 0.05, bias: "none", use_rslora: false });
    expect(json.target_modules).toEqual([...LORA_TARGET_MODULES]);
    const file = openSafetensors(join(adapterDir, "adapter_model.safetensors"));
    expect(file.names().length).toBe(2 * 7 * config.numLayers);
    expect(file.info("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight").shape).toEqual([4, config.hiddenSize]);
    expect(file.info("base_model.model.model.layers.1.mlp.down_proj.lora_B.weight").shape).toEqual([config.hiddenSize, 4]);
    expect(file.info("base_model.model.model.layers.1.self_attn.k_proj.lora_B.weight").shape).toEqual([config.numKvHeads * config.headDim, 4]);
    expect(file.metadata.format).toBe("pt");
  });

  it("reads back the same matrices and configuration", () => {
    const adapter = readPeftAdapter(adapterDir, config);
    expect(adapter.lora).toEqual(lora);
    expect(adapter.matrices.length).toBe(matrices.length);
    adapter.matrices.forEach((m, i) => {
      expect(m.layer).toBe(matrices[i].layer);
      expect(m.module).toBe(matrices[i].module);
      expect(Array.from(m.a)).toEqual(Array.from(matrices[i].a));
      expect(Array.from(m.b)).toEqual(Array.from(matrices[i].b));
    });
  });

  it("base + adapter merged on load gives the unmerged log-probs (≤ 1e-5)", async () => {
    const { model } = loadLlamaWithAdapter(baseDir, adapterDir, createCpuBackend());
    const [logprobs] = await model.tokenLogprobs([tokens]);
    expect(maxDifference(logprobs)).toBeLessThan(1e-5);
    // …and the adapter matters: the base alone differs.
    const [base] = await loadLlama(baseDir, createCpuBackend()).model.tokenLogprobs([tokens]);
    expect(maxDifference(base)).toBeGreaterThan(1e-2);
  });

  it("a merged HF checkpoint gives the unmerged log-probs (≤ 1e-5)", async () => {
    const mergedDir = join(workDir, "merged");
    await mergeAdapterIntoCheckpoint(baseDir, adapterDir, mergedDir, createCpuBackend());
    const [logprobs] = await loadLlama(mergedDir, createCpuBackend()).model.tokenLogprobs([tokens]);
    expect(maxDifference(logprobs)).toBeLessThan(1e-5);
  });

  it("refuses adapters using features we do not implement, naming the file", () => {
    const bad = join(workDir, "bad");
    writePeftAdapter(bad, { lora, matrices, baseModel: null }, config);
    const path = join(bad, "adapter_config.json");
    const json = JSON.parse(readFileSync(path, "utf8"));
    writeFileSync(path, JSON.stringify({ ...json, use_dora: true }));
    expect(() => readPeftAdapter(bad, config)).toThrow(/adapter_config\.json: use_dora = true is not supported/);
    writeFileSync(path, JSON.stringify({ ...json, target_modules: ["q_proj", "lm_head"] }));
    expect(() => readPeftAdapter(bad, config)).toThrow(/target module "lm_head"/);
  });
});
