/**
 * Using a LoRA adapter after training: load a base model with an adapter merged in (for scoring with
 * `--adapter DIR`), and merge an adapter into the base weights to save a plain HF checkpoint.
 *
 * Merging: W' = W + s · B·A (s = alpha/r, or alpha/√r with rsLoRA), computed in f32 on the backend. Adapted
 * weights become f32 tensors (a bf16 base keeps the update exactly); the rest stay as loaded.
 */
import { copyFileSync, existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import type { Backend, Tensor } from "../engine/backend.js";
import { openCheckpoint, writeCheckpoint, type SafetensorsInput } from "../io/safetensors.js";
import { llamaConfigToHf, readLlamaConfig } from "../io/hf-config.js";
import { float32ToBfloat16, toFloat32 } from "../io/dtype.js";
import { readPeftAdapter, type PeftAdapter } from "../io/peft.js";
import { writeFileAtomic } from "../io/atomic-write.js";
import type { LlamaConfig } from "../io/llama-config.js";
import { expectedTensorShapes } from "../io/llama-config.js";
import { Llama, type LlamaLayerTensors, type LlamaTensors } from "./llama.js";
import type { LoadedLlama } from "./load.js";
import { baseWeightName } from "../io/lora-config.js";
import { loraScaling, mergeLoraIntoWeight } from "./lora.js";
import { checkMemory, dtypeBytes } from "./memory.js";
import { loadLlamaWeights, type HostTensor, type LlamaWeights } from "./weights.js";

const LAYER_KEYS = { q_proj: "q", k_proj: "k", v_proj: "v", o_proj: "o", gate_proj: "gate", up_proj: "up", down_proj: "down" } as const;

/** Base weights with the adapter merged into the adapted Linear layers, as backend tensors. */
export function mergedLlamaTensors(backend: Backend, host: LlamaWeights, config: LlamaConfig, adapter: PeftAdapter): LlamaTensors {
  const onBackend = (t: HostTensor): Tensor => backend.weight(t.data, t.dtype, t.shape);
  const embedTokens = onBackend(host.embedTokens);
  const layers: LlamaLayerTensors[] = host.layers.map((layer) => ({
    inputNorm: onBackend(layer.inputNorm),
    q: onBackend(layer.q),
    k: onBackend(layer.k),
    v: onBackend(layer.v),
    o: onBackend(layer.o),
    postNorm: onBackend(layer.postNorm),
    gate: onBackend(layer.gate),
    up: onBackend(layer.up),
    down: onBackend(layer.down),
  }));
  const scaling = loraScaling(adapter.lora);
  // Limits before allocation (memory.ts): adapted weights become f32 copies next to the base as loaded.
  if (backend.name === "cpu") {
    const loaded = new Set<HostTensor>([host.embedTokens, host.norm, host.lmHead, ...host.layers.flatMap((layer) => Object.values(layer))]);
    const merged = adapter.matrices.reduce((sum, m) => sum + 4 * host.layers[m.layer][LAYER_KEYS[m.module]].data.length, 0);
    checkMemory(`merging a LoRA adapter (${adapter.matrices.length} weights)`, {
      parts: { "base weights (as loaded)": [...loaded].reduce((sum, t) => sum + t.data.length * dtypeBytes(t.dtype), 0), "merged f32 weights": merged },
      fresh: ["merged f32 weights"],
    });
  }
  for (const m of adapter.matrices) {
    const key = LAYER_KEYS[m.module];
    const [out, inFeatures] = host.layers[m.layer][key].shape;
    const a = backend.upload(m.a, "f32", [adapter.lora.rank, inFeatures]);
    const b = backend.upload(m.b, "f32", [out, adapter.lora.rank]);
    layers[m.layer][key] = mergeLoraIntoWeight(backend, layers[m.layer][key], a, b, scaling);
    backend.free(a);
    backend.free(b);
  }
  return {
    embedTokens,
    layers,
    norm: onBackend(host.norm),
    lmHead: config.tieWordEmbeddings ? embedTokens : onBackend(host.lmHead),
  };
}

/** Load an HF Llama directory with a PEFT adapter directory merged in (what `--adapter DIR` means). */
export function loadLlamaWithAdapter(modelDir: string, adapterDir: string, backend: Backend): LoadedLlama {
  const config = readLlamaConfig(modelDir);
  const host = loadLlamaWeights(openCheckpoint(modelDir), config);
  const adapter = readPeftAdapter(adapterDir, config);
  return { config, model: new Llama(backend, config, mergedLlamaTensors(backend, host, config, adapter)) };
}

/** Tokenizer and generation files copied next to a written checkpoint when the base has them. */
export const MODEL_SIDE_FILES = ["tokenizer.json", "tokenizer_config.json", "generation_config.json", "special_tokens_map.json", "tokenizer.model"];

/**
 * Merge a PEFT adapter into a base model and write a plain HF checkpoint to `outDir` (config.json,
 * model.safetensors, tokenizer files). dtype: that of the saved weights (default: the base config's).
 */
export async function mergeAdapterIntoCheckpoint(
  modelDir: string, adapterDir: string, outDir: string, backend: Backend, dtype?: "f32" | "bf16",
): Promise<void> {
  const config = readLlamaConfig(modelDir);
  const host = loadLlamaWeights(openCheckpoint(modelDir), config);
  const adapter = readPeftAdapter(adapterDir, config);
  const tensors = mergedLlamaTensors(backend, host, config, adapter);
  const outDtype = dtype ?? (config.torchDtype === "bfloat16" ? "bf16" : "f32");
  const merged = new Map<string, Tensor>();
  for (const m of adapter.matrices) merged.set(baseWeightName(m.layer, m.module), tensors.layers[m.layer][LAYER_KEYS[m.module]]);
  const named = namedHostWeights(host, config);
  const inputs: SafetensorsInput[] = [];
  for (const [name, original] of named) {
    const mergedTensor = merged.get(name);
    const values = mergedTensor ? ((await backend.download(mergedTensor)) as Float32Array) : null;
    inputs.push(hostToInput(name, original, values, outDtype));
  }
  await writeModelDirectory(modelDir, outDir, config, inputs, outDtype);
}

/** Every tensor of a loaded checkpoint by HF name, in file order of `expectedTensorShapes`. */
export function namedHostWeights(host: LlamaWeights, config: LlamaConfig): Map<string, HostTensor> {
  const out = new Map<string, HostTensor>();
  out.set("model.embed_tokens.weight", host.embedTokens);
  host.layers.forEach((layer, l) => {
    const p = `model.layers.${l}.`;
    out.set(`${p}input_layernorm.weight`, layer.inputNorm);
    out.set(`${p}self_attn.q_proj.weight`, layer.q);
    out.set(`${p}self_attn.k_proj.weight`, layer.k);
    out.set(`${p}self_attn.v_proj.weight`, layer.v);
    out.set(`${p}self_attn.o_proj.weight`, layer.o);
    out.set(`${p}post_attention_layernorm.weight`, layer.postNorm);
    out.set(`${p}mlp.gate_proj.weight`, layer.gate);
    out.set(`${p}mlp.up_proj.weight`, layer.up);
    out.set(`${p}mlp.down_proj.weight`, layer.down);
  });
  out.set("model.norm.weight", host.norm);
  if (!config.tieWordEmbeddings) out.set("lm_head.weight", host.lmHead);
  const expected = expectedTensorShapes(config);
  for (const name of out.keys()) if (!expected.has(name)) throw new Error(`internal: ${name} is not a tensor of this config`);
  return out;
}

/** A safetensors input in `dtype` from new f32 values, or from the original tensor when values is null. */
export function hostToInput(name: string, original: HostTensor, values: Float32Array | null, dtype: "f32" | "bf16"): SafetensorsInput {
  if (values === null && original.dtype === dtype) {
    return { name, dtype: dtype === "bf16" ? "BF16" : "F32", shape: original.shape, data: original.data };
  }
  const f32 = values ?? toFloat32(original.data, original.dtype);
  return dtype === "bf16"
    ? { name, dtype: "BF16", shape: original.shape, data: float32ToBfloat16(f32) }
    : { name, dtype: "F32", shape: original.shape, data: f32 };
}

/** Write config.json (torch_dtype updated), the weights, and copy the base's tokenizer/generation files. */
export async function writeModelDirectory(
  baseDir: string | null, outDir: string, config: LlamaConfig, tensors: SafetensorsInput[], dtype: "f32" | "bf16",
): Promise<void> {
  mkdirSync(outDir, { recursive: true });
  writeCheckpoint(outDir, tensors);
  const hf = llamaConfigToHf({ ...config, torchDtype: dtype === "bf16" ? "bfloat16" : "float32" });
  const bytes = Buffer.from(JSON.stringify(hf, null, 2) + "\n", "utf8");
  writeFileAtomic(join(outDir, "config.json"), (sink) => sink.write(bytes));
  for (const file of baseDir === null ? [] : MODEL_SIDE_FILES) {
    if (existsSync(join(baseDir!, file))) copyFileSync(join(baseDir!, file), join(outDir, file));
  }
}
