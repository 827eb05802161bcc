/**
 * A LoRA adapter's configuration and what it fixes about the files (PEFT semantics, REFERENCE §4): the target
 * modules, their HF and PEFT tensor names, the [out, in] shapes of their base weights, and which
 * (layer, module) sites an adapter covers. Plain data, no backend: io/peft.ts reads and writes adapters with
 * it, model/lora.ts and model/llama-train.ts build on it.
 */
import type { LlamaConfig } from "./llama-config.js";

/** The Llama Linear layers an adapter may target, in PEFT's module names. */
export const LORA_TARGET_MODULES = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"] as const;
export type LoraTargetModule = (typeof LORA_TARGET_MODULES)[number];

export interface LoraConfig {
  /** Rank r of the update. */
  rank: number;
  /** lora_alpha: the update is scaled by alpha / r (alpha / √r with rsLoRA). */
  alpha: number;
  /** Dropout probability on the LoRA input during training (PEFT lora_dropout). */
  dropout: number;
  /** Which Linear layers get an adapter (every decoder layer gets the same set). */
  targetModules: LoraTargetModule[];
  /** rsLoRA scaling alpha / √r instead of alpha / r. */
  useRslora: boolean;
}

/** Check a LoRA configuration; throws one line naming the bad field. */
export function validateLoraConfig(config: LoraConfig): void {
  if (!Number.isInteger(config.rank) || config.rank < 1) throw new Error(`LoRA rank must be a positive integer, got ${config.rank}`);
  if (!(Number.isFinite(config.alpha) && config.alpha > 0)) throw new Error(`LoRA alpha must be positive, got ${config.alpha}`);
  if (!(config.dropout >= 0 && config.dropout < 1)) throw new Error(`LoRA dropout must be in [0, 1), got ${config.dropout}`);
  if (config.targetModules.length === 0) throw new Error("LoRA needs at least one target module");
  for (const m of config.targetModules) {
    if (!LORA_TARGET_MODULES.includes(m)) {
      throw new Error(`unknown LoRA target module "${m}" (expected any of ${LORA_TARGET_MODULES.join(", ")})`);
    }
  }
}

/** Parse "q_proj,v_proj" (or "all") into target modules. */
export function parseTargetModules(text: string): LoraTargetModule[] {
  if (text.trim() === "all") return [...LORA_TARGET_MODULES];
  const names = text.split(",").map((s) => s.trim()).filter((s) => s.length > 0);
  for (const name of names) {
    if (!LORA_TARGET_MODULES.includes(name as LoraTargetModule)) {
      throw new Error(`unknown LoRA target module "${name}" (expected any of ${LORA_TARGET_MODULES.join(", ")}, or all)`);
    }
  }
  return [...new Set(names)] as LoraTargetModule[];
}

/** HF submodule path of a target inside a decoder layer ("self_attn.q_proj", "mlp.down_proj"). */
export function moduleSubpath(module: LoraTargetModule): string {
  return module === "gate_proj" || module === "up_proj" || module === "down_proj" ? `mlp.${module}` : `self_attn.${module}`;
}

/** [out, in] of a target module's base weight. */
export function moduleShape(config: LlamaConfig, module: LoraTargetModule): [number, number] {
  const d = config.hiddenSize, q = config.numHeads * config.headDim, kv = config.numKvHeads * config.headDim;
  const ff = config.intermediateSize;
  switch (module) {
    case "q_proj":
      return [q, d];
    case "k_proj":
    case "v_proj":
      return [kv, d];
    case "o_proj":
      return [d, q];
    case "gate_proj":
    case "up_proj":
      return [ff, d];
    case "down_proj":
      return [d, ff];
  }
}

/** Base-model tensor name of a target ("model.layers.3.self_attn.q_proj.weight"). */
export function baseWeightName(layer: number, module: LoraTargetModule): string {
  return `model.layers.${layer}.${moduleSubpath(module)}.weight`;
}

/** PEFT's saved key of an adapter matrix ("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"). */
export function peftKey(layer: number, module: LoraTargetModule, which: "A" | "B"): string {
  return `base_model.model.model.layers.${layer}.${moduleSubpath(module)}.lora_${which}.weight`;
}

/** One adapter's matrices on the host: a [r, in], b [out, r]. */
export interface LoraMatrices {
  layer: number;
  module: LoraTargetModule;
  a: Float32Array;
  b: Float32Array;
}

/** Every (layer, module) pair an adapter covers, in layer then module order. */
export function loraSites(config: LlamaConfig, lora: LoraConfig): { layer: number; module: LoraTargetModule }[] {
  const sites: { layer: number; module: LoraTargetModule }[] = [];
  for (let layer = 0; layer < config.numLayers; layer++) {
    for (const module of LORA_TARGET_MODULES) if (lora.targetModules.includes(module)) sites.push({ layer, module });
  }
  return sites;
}
