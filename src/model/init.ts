/**
 * Random initialisation of a Llama in exact HF layout (config.json, model.safetensors, tokenizer.json,
 * tokenizer_config.json, generation_config.json): what `labor-llm model init` writes.
 *
 * Initialisation ("scaled uniform"): every Linear weight [out, in] ~ U(−√3/√in, √3/√in) (variance 1/in, so
 * activations keep unit scale through the depth), embeddings ~ U(−√3, √3) (unit variance), norm weights
 * ~ U(0.5, 1.5) (not all ones, so tests see a wrong norm weight). Unlike HF's N(0, 0.02²) this gives logits
 * of order 1 and a sharply varying next-token distribution, which is what verification wants.
 *
 * Initialisation "small" (for pretraining from scratch, as the demo does): every weight ~ U(−0.02√3, 0.02√3)
 * (HF's initializer_range 0.02 as a uniform of equal variance), norm weights 1 — the model starts near the
 * uniform distribution instead of confidently wrong.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { LlamaConfig } from "../io/llama-config.js";
import { expectedTensorShapes } from "../io/llama-config.js";
import { SeededRandom } from "../util/random.js";
import { float32ToBfloat16 } from "../io/dtype.js";
import { writeSafetensors, type SafetensorsInput } from "../io/safetensors.js";
import { llamaConfigToHf } from "../io/hf-config.js";
import { buildLlama2TokenizerConfig, buildLlama2TokenizerJson } from "../text/llama2-tokenizer.js";

export type WeightDType = "f32" | "bf16";

export type InitScheme = "scaled" | "small";

export interface InitOptions {
  config: LlamaConfig;
  /** "scaled" (default; sharp random distributions for verification) or "small" (for training from scratch). */
  scheme?: InitScheme;
  seed: number;
  dtype: WeightDType;
  outDir: string;
  /** Called after each tensor is made (for progress bars). */
  onTensor?: (name: string, index: number, total: number) => void;
}

/** Values of one tensor, deterministic in (seed, name). */
export function initialTensorValues(name: string, shape: readonly number[], seed: number, scheme: InitScheme = "scaled"): Float32Array {
  const size = shape.reduce((a, b) => a * b, 1);
  const values = new Float32Array(size);
  const random = new SeededRandom(seed, name);
  if (scheme === "small") {
    if (name.endsWith("norm.weight")) values.fill(1);
    else random.fillUniform(values, 0.02 * Math.sqrt(3));
    return values;
  }
  if (name.endsWith("norm.weight")) {
    for (let i = 0; i < size; i++) values[i] = 0.5 + random.next();
  } else if (name === "model.embed_tokens.weight") {
    random.fillUniform(values, Math.sqrt(3));
  } else {
    random.fillUniform(values, Math.sqrt(3 / shape[shape.length - 1]));
  }
  return values;
}

/** Write a random-initialised model directory; returns the files written. */
export function initModel(options: InitOptions): string[] {
  const { config, seed, dtype, outDir } = options;
  mkdirSync(outDir, { recursive: true });
  const shapes = [...expectedTensorShapes(config)];
  const tensors: SafetensorsInput[] = [];
  shapes.forEach(([name, shape], index) => {
    const values = initialTensorValues(name, shape, seed, options.scheme);
    tensors.push(
      dtype === "bf16"
        ? { name, dtype: "BF16", shape, data: float32ToBfloat16(values) }
        : { name, dtype: "F32", shape, data: values },
    );
    options.onTensor?.(name, index, shapes.length);
  });
  const hfConfig = llamaConfigToHf({ ...config, torchDtype: dtype === "bf16" ? "bfloat16" : "float32" });
  const files = {
    "config.json": hfConfig,
    "tokenizer.json": buildLlama2TokenizerJson(),
    "tokenizer_config.json": buildLlama2TokenizerConfig(),
    "generation_config.json": {
      bos_token_id: config.bosTokenId,
      eos_token_id: config.eosTokenIds.length === 1 ? config.eosTokenIds[0] : config.eosTokenIds,
    },
  };
  for (const [file, json] of Object.entries(files)) {
    writeFileSync(join(outDir, file), JSON.stringify(json, null, 2) + "\n");
  }
  writeSafetensors(join(outDir, "model.safetensors"), tensors);
  return [...Object.keys(files), "model.safetensors"].map((f) => join(outDir, f));
}
