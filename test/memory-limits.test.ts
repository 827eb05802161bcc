/**
 * Limits before allocation (issue 19, src/model/memory.ts): a checkpoint or a request that needs more memory
 * than the machine has is refused before any buffer is made, in one line with both sizes. The configs here
 * have huge dimensions; nothing of their size is ever allocated.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { totalmem } from "node:os";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { createCpuBackend } from "../src/engine/cpu/backend.js";
import type { LlamaConfig } from "../src/io/llama-config.js";
import { expectedTensorShapes } from "../src/io/llama-config.js";
import { initModel } from "../src/model/init.js";
import { loadLlama } from "../src/model/load.js";
import { TrainableLlama } from "../src/model/llama-train.js";
import {
  checkMemory, formatBytes, kvCacheBytes, llamaParameterCount, machineMemory, parseMemoryLimit,
} from "../src/model/memory.js";
import { MODEL_PRESETS } from "../src/model/presets.js";
import type { HostTensor, LlamaWeights } from "../src/model/weights.js";

const workDir = mkdtempSync(join(tmpdir(), "labor-llm-memory-"));
const tinyDir = join(workDir, "tiny");
const savedLimit = process.env.LABOR_LLM_MEMORY_LIMIT;

beforeAll(() => {
  delete process.env.LABOR_LLM_MEMORY_LIMIT;
  initModel({ config: MODEL_PRESETS.tiny, seed: 1, dtype: "f32", outDir: tinyDir });
});
afterEach(() => {
  if (savedLimit === undefined) delete process.env.LABOR_LLM_MEMORY_LIMIT;
  else process.env.LABOR_LLM_MEMORY_LIMIT = savedLimit;
});
afterAll(() => rmSync(workDir, { recursive: true, force: true }));

/** A Llama-2-70B-like shape times two: ~140 B parameters, far beyond any test machine in f32. */
const huge: LlamaConfig = { ...MODEL_PRESETS["1b"], hiddenSize: 16384, intermediateSize: 57344, numLayers: 40, numHeads: 128, numKvHeads: 8, headDim: 128 };

/** Host weights with the config's shapes and no data (only shapes are read before the check). */
function shapeOnlyWeights(config: LlamaConfig): LlamaWeights {
  const shapes = expectedTensorShapes(config);
  const t = (name: string): HostTensor => ({ name, dtype: "f32", shape: shapes.get(name)!, data: new Float32Array(0) } as unknown as HostTensor);
  const layer = (l: number) => {
    const p = `model.layers.${l}.`;
    return {
      inputNorm: t(`${p}input_layernorm.weight`), q: t(`${p}self_attn.q_proj.weight`), k: t(`${p}self_attn.k_proj.weight`),
      v: t(`${p}self_attn.v_proj.weight`), o: t(`${p}self_attn.o_proj.weight`), postNorm: t(`${p}post_attention_layernorm.weight`),
      gate: t(`${p}mlp.gate_proj.weight`), up: t(`${p}mlp.up_proj.weight`), down: t(`${p}mlp.down_proj.weight`),
    };
  };
  const embedTokens = t("model.embed_tokens.weight");
  return {
    embedTokens, layers: Array.from({ length: config.numLayers }, (_, l) => layer(l)), norm: t("model.norm.weight"),
    lmHead: config.tieWordEmbeddings ? embedTokens : t("lm_head.weight"),
  };
}

describe("limits before allocation", () => {
  it("the rule: the whole need against the machine's memory, the fresh part against what is free", () => {
    const limits = { total: 16 * 2 ** 30, available: 4 * 2 ** 30, source: "this machine" };
    expect(() => checkMemory("a test", { parts: { weights: 10 * 2 ** 30, "KV cache": 2 * 2 ** 30 }, fresh: ["KV cache"] }, limits)).not.toThrow();
    expect(() => checkMemory("a test", { parts: { weights: 10 * 2 ** 30, "KV cache": 7 * 2 ** 30 } }, limits))
      .toThrow("a test needs 17.0 GiB (weights 10.0 GiB, KV cache 7.00 GiB) but this machine has 16.0 GiB of memory; refused before allocating");
    expect(() => checkMemory("a test", { parts: { weights: 10 * 2 ** 30, "KV cache": 5 * 2 ** 30 }, fresh: ["KV cache"] }, limits))
      .toThrow("a test would allocate 5.00 GiB now (KV cache 5.00 GiB) but only 4.00 GiB of this machine's 16.0 GiB is free; refused before allocating");
    expect(() => checkMemory("a test", { parts: { weights: 2 ** 60 } }, null)).not.toThrow();
  });

  it("LABOR_LLM_MEMORY_LIMIT replaces the machine's memory, or turns the checks off", () => {
    expect(parseMemoryLimit("1024")).toBe(1024);
    expect(parseMemoryLimit("16G")).toBe(16 * 2 ** 30);
    expect(parseMemoryLimit("1.5 GiB")).toBe(1.5 * 2 ** 30);
    expect(parseMemoryLimit("512mb")).toBe(512 * 2 ** 20);
    expect(() => parseMemoryLimit("lots")).toThrow(/^LABOR_LLM_MEMORY_LIMIT: "lots" is not a size/);
    expect(machineMemory({ LABOR_LLM_MEMORY_LIMIT: "2G" })).toEqual({ total: 2 ** 31, available: 2 ** 31, source: "LABOR_LLM_MEMORY_LIMIT=2G" });
    expect(machineMemory({ LABOR_LLM_MEMORY_LIMIT: "off" })).toBeNull();
    const here = machineMemory({})!;
    expect(here.total).toBeLessThanOrEqual(totalmem());
    expect(here.available).toBeLessThanOrEqual(here.total);
  });

  it("a checkpoint whose config needs more memory than the machine has is refused before its weights are read", () => {
    const dir = join(workDir, "huge-config");
    initModel({ config: MODEL_PRESETS.tiny, seed: 1, dtype: "f32", outDir: dir });
    const config = JSON.parse(readFileSync(join(dir, "config.json"), "utf8")) as Record<string, unknown>;
    Object.assign(config, { hidden_size: huge.hiddenSize, intermediate_size: huge.intermediateSize, num_hidden_layers: huge.numLayers,
      num_attention_heads: huge.numHeads, num_key_value_heads: huge.numKvHeads, head_dim: huge.headDim });
    writeFileSync(join(dir, "config.json"), JSON.stringify(config));
    const bytes = llamaParameterCount(huge) * 4;
    expect(() => loadLlama(dir, createCpuBackend())).toThrow(
      `${dir}: loading the model needs ${formatBytes(bytes)} (weights (f32) ${formatBytes(bytes)}) but this machine has ${formatBytes(machineMemory()!.total)} of memory; refused before allocating`);
    // Within the limit, the same file fails on what it really holds (the shapes), not on memory.
    process.env.LABOR_LLM_MEMORY_LIMIT = "off";
    expect(() => loadLlama(dir, createCpuBackend())).toThrow(/: missing tensor "model.layers.2.input_layernorm.weight"/);
  });

  it("a KV cache or a forward pass beyond the machine is refused before allocating", async () => {
    const { model } = loadLlama(tinyDir, createCpuBackend());
    const rows = 2 ** 40;
    expect(() => model.newCache([rows])).toThrow(
      new RegExp(`^a KV cache of ${rows} rows needs .* \\(weights .*, KV cache ${formatBytes(kvCacheBytes(model.config, rows)).replace(".", "\\.")}\\) but this machine has .* of memory; refused before allocating$`));
    // Under a small limit, a cache that fits the machine is refused against the limit; a forward pass too.
    const cache = model.newCache([64]);
    process.env.LABOR_LLM_MEMORY_LIMIT = `${Math.ceil(model.weightBytes() / 2 ** 20) + 1}M`;
    expect(() => model.newCache([1_000_000])).toThrow(/^a KV cache of 1000000 rows needs .* but LABOR_LLM_MEMORY_LIMIT=\d+M has .* of memory/);
    await expect(model.forward(cache, { tokens: [Array.from({ length: 60 }, () => 5)], targets: [Array.from({ length: 60 }, () => 5)] }))
      .rejects.toThrow(/^a forward pass over 60 rows needs .* \(weights .*, KV cache .*, activations .*\) but LABOR_LLM_MEMORY_LIMIT/);
    delete process.env.LABOR_LLM_MEMORY_LIMIT;
    const { logprobs } = await model.forward(cache, { tokens: [[1, 2, 3]], targets: [[2, 3, -1]] });
    expect(logprobs![0]).toHaveLength(3);
    cache.free();
  });

  it("training a model beyond the machine (full or LoRA) is refused before any buffer is made", () => {
    const backend = createCpuBackend();
    const weights = shapeOnlyWeights(huge);
    const params = llamaParameterCount(huge);
    expect(() => new TrainableLlama(backend, huge, weights, { mode: { kind: "full" }, maxTokens: 4096 })).toThrow(
      new RegExp(`^training \\(full, 4096 tokens per micro-batch\\) needs .* \\(trainable weights ${formatBytes(4 * params).replace(".", "\\.")}, ` +
        `gradients ${formatBytes(4 * params).replace(".", "\\.")}, AdamW moments ${formatBytes(8 * params).replace(".", "\\.")}, activations .*\\) ` +
        "but this machine has .* of memory; refused before allocating$"));
    // LoRA on the `1b` shape fits any test machine by parameters, but not a million tokens per micro-batch.
    const oneB = MODEL_PRESETS["1b"];
    expect(() => new TrainableLlama(backend, oneB, shapeOnlyWeights(oneB), {
      mode: { kind: "lora", lora: { rank: 8, alpha: 16, dropout: 0, useRslora: false, targetModules: ["q_proj", "v_proj"] } }, maxTokens: 1_000_000,
    })).toThrow(/^training \(LoRA r=8, 1000000 tokens per micro-batch\) needs .*activations .*TiB\) but this machine has/);
  });
});
