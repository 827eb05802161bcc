import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { llamaConfigToHf, parseLlamaConfig, readLlamaConfig } from "../src/io/hf-config.js";
import { openCheckpoint, writeCheckpoint, type SafetensorsInput } from "../src/io/safetensors.js";
import { expectedTensorShapes, type LlamaConfig } from "../src/io/llama-config.js";
import { loadLlamaWeights } from "../src/model/weights.js";

let root: string;
let counter = 0;
beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), "labor-llm-hf-config-"));
});
afterAll(() => {
  rmSync(root, { recursive: true, force: true });
});
function freshDir(): string {
  const dir = join(root, `case-${counter++}`);
  mkdirSync(dir);
  return dir;
}

/** The published meta-llama/Llama-3.1-8B config.json. */
const LLAMA_31_8B = {
  architectures: ["LlamaForCausalLM"],
  attention_bias: false,
  attention_dropout: 0.0,
  bos_token_id: 128000,
  eos_token_id: [128001, 128008, 128009],
  hidden_act: "silu",
  hidden_size: 4096,
  initializer_range: 0.02,
  intermediate_size: 14336,
  max_position_embeddings: 131072,
  mlp_bias: false,
  model_type: "llama",
  num_attention_heads: 32,
  num_hidden_layers: 32,
  num_key_value_heads: 8,
  pretraining_tp: 1,
  rms_norm_eps: 1e-5,
  rope_scaling: { factor: 8.0, low_freq_factor: 1.0, high_freq_factor: 4.0, original_max_position_embeddings: 8192, rope_type: "llama3" },
  rope_theta: 500000.0,
  tie_word_embeddings: false,
  torch_dtype: "bfloat16",
  transformers_version: "4.43.0.dev0",
  use_cache: true,
  vocab_size: 128256,
};

/** parseLlamaConfig's error for `json`, checked to be one line naming the source. */
function configError(json: unknown): string {
  let message = "";
  try {
    parseLlamaConfig(json, "config.json");
  } catch (error) {
    message = (error as Error).message;
  }
  expect(message).toMatch(/^config\.json: /);
  expect(message).not.toMatch(/\n/);
  return message;
}

describe("parseLlamaConfig", () => {
  it("reads the Llama-3.1-8B config", () => {
    expect(parseLlamaConfig(LLAMA_31_8B, "config.json")).toEqual({
      hiddenSize: 4096,
      intermediateSize: 14336,
      numLayers: 32,
      numHeads: 32,
      numKvHeads: 8,
      headDim: 128,
      vocabSize: 128256,
      maxPositionEmbeddings: 131072,
      rmsNormEps: 1e-5,
      ropeTheta: 500000,
      ropeScaling: { type: "llama3", factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 8192 },
      tieWordEmbeddings: false,
      bosTokenId: 128000,
      eosTokenIds: [128001, 128008, 128009],
      torchDtype: "bfloat16",
    } satisfies LlamaConfig);
  });

  it("fills transformers' defaults for absent fields", () => {
    expect(parseLlamaConfig({}, "config.json")).toEqual({
      hiddenSize: 4096,
      intermediateSize: 11008,
      numLayers: 32,
      numHeads: 32,
      numKvHeads: 32,
      headDim: 128,
      vocabSize: 32000,
      maxPositionEmbeddings: 2048,
      rmsNormEps: 1e-6,
      ropeTheta: 10000,
      ropeScaling: null,
      tieWordEmbeddings: false,
      bosTokenId: 1,
      eosTokenIds: [2],
      torchDtype: null,
    } satisfies LlamaConfig);
    const nulls = parseLlamaConfig({ num_key_value_heads: null, head_dim: null, rope_scaling: null, bos_token_id: null, eos_token_id: null }, "c");
    expect(nulls.numKvHeads).toBe(32);
    expect(nulls.headDim).toBe(128);
    expect(nulls.bosTokenId).toBeNull();
    expect(nulls.eosTokenIds).toEqual([]);
  });

  it("accepts an explicit head_dim that differs from d/H, and the newer dtype key", () => {
    const config = parseLlamaConfig({ hidden_size: 96, num_attention_heads: 4, head_dim: 16, dtype: "float16" }, "c");
    expect(config.headDim).toBe(16);
    expect(config.torchDtype).toBe("float16");
  });

  it("reads the older rope_scaling `type` key and the rope_parameters layout", () => {
    const scaling = { factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8192 };
    const expected = { type: "llama3", factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 8192 };
    expect(parseLlamaConfig({ rope_scaling: { ...scaling, type: "llama3" } }, "c").ropeScaling).toEqual(expected);
    const newer = parseLlamaConfig({ rope_parameters: { ...scaling, rope_type: "llama3", rope_theta: 500000 } }, "c");
    expect(newer.ropeScaling).toEqual(expected);
    expect(newer.ropeTheta).toBe(500000);
    const plain = parseLlamaConfig({ rope_parameters: { rope_type: "default", rope_theta: 1234 } }, "c");
    expect(plain.ropeScaling).toBeNull();
    expect(plain.ropeTheta).toBe(1234);
    expect(parseLlamaConfig({ rope_scaling: { rope_type: "default" } }, "c").ropeScaling).toBeNull();
  });

  it("round-trips through llamaConfigToHf", () => {
    const config = parseLlamaConfig(LLAMA_31_8B, "config.json");
    const hf = llamaConfigToHf(config);
    expect(hf.architectures).toEqual(["LlamaForCausalLM"]);
    expect(hf.model_type).toBe("llama");
    expect(hf.torch_dtype).toBe("bfloat16");
    expect(hf.rope_scaling).toEqual(LLAMA_31_8B.rope_scaling);
    expect(parseLlamaConfig(JSON.parse(JSON.stringify(hf)), "c")).toEqual(config);
    const tied = { ...config, tieWordEmbeddings: true, ropeScaling: null, eosTokenIds: [2], torchDtype: null };
    const tiedHf = llamaConfigToHf(tied);
    expect(tiedHf.eos_token_id).toBe(2);
    expect(tiedHf.torch_dtype).toBe("float32");
    expect(parseLlamaConfig(tiedHf, "c")).toEqual({ ...tied, torchDtype: "float32" });
  });

  it("rejects architectures and activations it does not implement, naming the field", () => {
    expect(configError({ model_type: "mistral" })).toBe('config.json: field "model_type" = "mistral" is not supported (supported: llama)');
    expect(configError({ architectures: ["LlamaForSequenceClassification"] })).toMatch(/field "architectures" = array \["LlamaForSequenceClassification"\] is not supported/);
    expect(configError({ hidden_act: "gelu" })).toMatch(/field "hidden_act" = "gelu" is not supported \(supported: silu\)/);
    expect(configError({ attention_bias: true })).toMatch(/field "attention_bias" = true is not supported/);
    expect(configError({ mlp_bias: true })).toMatch(/field "mlp_bias" = true is not supported/);
    expect(configError({ attention_bias: "no" })).toMatch(/field "attention_bias" = "no" must be true or false/);
  });

  it("rejects RoPE types other than default and llama3, in both layouts", () => {
    expect(configError({ rope_scaling: { rope_type: "yarn", factor: 4 } })).toBe(
      'config.json: field "rope_scaling.rope_type" = "yarn" is not supported (supported: llama3)',
    );
    expect(configError({ rope_scaling: { type: "linear", factor: 2 } })).toMatch(/field "rope_scaling.type" = "linear" is not supported/);
    expect(configError({ rope_scaling: { type: "dynamic", factor: 2 } })).toMatch(/field "rope_scaling.type" = "dynamic" is not supported/);
    expect(configError({ rope_parameters: { rope_type: "yarn", rope_theta: 10000 } })).toMatch(
      /field "rope_parameters.rope_type" = "yarn" is not supported \(supported: default, llama3\)/,
    );
    expect(configError({ rope_scaling: "llama3" })).toMatch(/field "rope_scaling" must be an object or null/);
    expect(configError({ rope_scaling: { rope_type: "llama3", low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8192 } })).toMatch(
      /field "rope_scaling.factor" is required for llama3 RoPE scaling/,
    );
    expect(configError({ rope_scaling: { rope_type: "llama3", factor: 8, low_freq_factor: 4, high_freq_factor: 4, original_max_position_embeddings: 8192 } })).toMatch(
      /"rope_scaling.high_freq_factor" = 4 must be greater than "rope_scaling.low_freq_factor" = 4/,
    );
    expect(configError({ rope_theta: 0 })).toMatch(/field "rope_theta" = 0 must be a positive number/);
  });

  it("rejects head layouts the engine cannot run", () => {
    expect(configError({ num_attention_heads: 6, num_key_value_heads: 4 })).toMatch(
      /field "num_attention_heads" = 6 is not a multiple of field "num_key_value_heads" = 4/,
    );
    expect(configError({ hidden_size: 100, num_attention_heads: 3, num_key_value_heads: 3 })).toMatch(/"hidden_size" = 100 is not a multiple/);
    expect(configError({ hidden_size: 28, num_attention_heads: 4 })).toMatch(/field "head_dim" = 7 must be even/);
    expect(configError({ head_dim: 7 })).toMatch(/field "head_dim" = 7 must be even/);
  });

  it("rejects non-integer and non-positive sizes", () => {
    for (const field of ["hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "vocab_size", "max_position_embeddings"]) {
      for (const value of [0, -4, 64.5, "64", 2 ** 60]) {
        expect(configError({ [field]: value })).toContain(`field "${field}" = `);
      }
    }
    expect(configError({ rms_norm_eps: -1 })).toMatch(/field "rms_norm_eps" = -1 must be a positive number/);
    expect(configError({ eos_token_id: [1, "x"] })).toMatch(/field "eos_token_id"/);
    expect(configError([1])).toMatch(/must be a JSON object/);
  });
});

describe("readLlamaConfig", () => {
  it("reads config.json from a directory with strict JSON", () => {
    const dir = freshDir();
    const path = join(dir, "config.json");
    writeFileSync(path, JSON.stringify(LLAMA_31_8B));
    expect(readLlamaConfig(dir).numKvHeads).toBe(8);
    expect(readLlamaConfig(path).numKvHeads).toBe(8);
    writeFileSync(path, '{"hidden_size": 64, "hidden_size": 128}');
    expect(() => readLlamaConfig(dir)).toThrow(`${path}: has duplicate key "hidden_size"`);
    writeFileSync(path, "{");
    expect(() => readLlamaConfig(dir)).toThrow(/config\.json: is not valid JSON/);
    writeFileSync(path, JSON.stringify({ rope_scaling: { rope_type: "yarn" } }));
    expect(() => readLlamaConfig(dir)).toThrow(`${path}: field "rope_scaling.rope_type" = "yarn" is not supported (supported: llama3)`);
    expect(() => readLlamaConfig(join(dir, "missing"))).toThrow(/missing\/config\.json: cannot read/);
  });
});

describe("loadLlamaWeights", () => {
  const tiny: LlamaConfig = {
    ...parseLlamaConfig({}, "c"),
    hiddenSize: 8,
    intermediateSize: 12,
    numLayers: 2,
    numHeads: 2,
    numKvHeads: 1,
    headDim: 4,
    vocabSize: 10,
  };

  /** Every tensor the config expects (values = index), in F32 or BF16 alternately, plus `extra`. */
  function tensorsFor(config: LlamaConfig, extra: SafetensorsInput[] = []): SafetensorsInput[] {
    const tensors: SafetensorsInput[] = [...expectedTensorShapes(config)].map(([name, shape], i) => {
      const size = shape.reduce((a, b) => a * b, 1);
      return i % 2 === 0
        ? { name, dtype: "F32", shape, data: Float32Array.from({ length: size }, (_, j) => j + i) }
        : { name, dtype: "BF16", shape, data: new Uint16Array(size).fill(0x3f80) };
    });
    return [...tensors, ...extra];
  }

  function checkpointWith(tensors: SafetensorsInput[], maxShardBytes?: number) {
    const dir = freshDir();
    writeCheckpoint(dir, tensors, { maxShardBytes });
    return openCheckpoint(dir);
  }

  function weightsError(tensors: SafetensorsInput[], config: LlamaConfig, name: string): string {
    const checkpoint = checkpointWith(tensors);
    let message = "";
    try {
      loadLlamaWeights(checkpoint, config);
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).toContain(checkpoint.dir);
    expect(message).toContain(`"${name}"`);
    expect(message).not.toMatch(/\n/);
    return message;
  }

  it("collects every layer's tensors as views from a sharded checkpoint", () => {
    const rotary: SafetensorsInput = { name: "model.layers.0.self_attn.rotary_emb.inv_freq", dtype: "F32", shape: [2], data: new Float32Array(2) };
    const checkpoint = checkpointWith(tensorsFor(tiny, [rotary]), 200);
    expect(checkpoint.files.length).toBeGreaterThan(1);
    const weights = loadLlamaWeights(checkpoint, tiny);
    expect(weights.layers).toHaveLength(2);
    expect(weights.embedTokens.shape).toEqual([10, 8]);
    expect(weights.layers[1].q.shape).toEqual([8, 8]);
    expect(weights.layers[1].k.shape).toEqual([4, 8]);
    expect(weights.layers[0].down.shape).toEqual([8, 12]);
    expect(weights.lmHead.shape).toEqual([10, 8]);
    expect(weights.lmHead).not.toBe(weights.embedTokens);
    expect(Array.from(weights.embedTokens.data.subarray(0, 3))).toEqual([0, 1, 2]);
    expect(weights.layers[0].inputNorm.dtype).toBe("bf16");
  });

  it("ties lm_head to the embeddings and ignores a stored lm_head", () => {
    const tied = { ...tiny, tieWordEmbeddings: true };
    const lmHead: SafetensorsInput = { name: "lm_head.weight", dtype: "F32", shape: [10, 8], data: new Float32Array(80) };
    const weights = loadLlamaWeights(checkpointWith(tensorsFor(tied, [lmHead])), tied);
    expect(weights.lmHead).toBe(weights.embedTokens);
  });

  it("rejects a missing tensor", () => {
    const tensors = tensorsFor(tiny).filter((t) => t.name !== "model.layers.1.mlp.up_proj.weight");
    expect(weightsError(tensors, tiny, "model.layers.1.mlp.up_proj.weight")).toMatch(/missing tensor .* expected shape \[12, 8\]/);
  });

  it("rejects a wrong shape, naming expected and found shapes", () => {
    const tensors = tensorsFor(tiny).map((t) =>
      t.name === "model.layers.0.self_attn.k_proj.weight" ? { ...t, shape: [8, 8], data: new Float32Array(64), dtype: "F32" as const } : t,
    );
    expect(weightsError(tensors, tiny, "model.layers.0.self_attn.k_proj.weight")).toMatch(/has shape \[8, 8\] but the config expects \[4, 8\]/);
  });

  it("rejects unexpected tensors such as biases", () => {
    const bias: SafetensorsInput = { name: "model.layers.0.self_attn.q_proj.bias", dtype: "F32", shape: [8], data: new Float32Array(8) };
    expect(weightsError(tensorsFor(tiny, [bias]), tiny, bias.name)).toMatch(/unexpected tensor .*bias tensors are not supported/);
    const extraLayer: SafetensorsInput = { name: "model.layers.2.input_layernorm.weight", dtype: "F32", shape: [8], data: new Float32Array(8) };
    expect(weightsError(tensorsFor(tiny, [extraLayer]), tiny, extraLayer.name)).toMatch(/unexpected tensor/);
  });

  it("rejects a weight stored in a dtype the engine does not compute with", () => {
    const tensors = tensorsFor(tiny).map((t) =>
      t.name === "model.norm.weight" ? { ...t, dtype: "I32" as const, data: new Int32Array(8) } : t,
    );
    expect(weightsError(tensors, tiny, "model.norm.weight")).toMatch(/dtype I32 cannot be read as a compute tensor/);
  });
});
