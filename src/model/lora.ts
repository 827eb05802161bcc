/**
 * LoRA with PEFT semantics (REFERENCE §4): a frozen Linear y = x·Wᵀ gains a rank-r update
 *   y = x·Wᵀ + s · (dropout(x)·Aᵀ)·Bᵀ,   A [r, in], B [out, r],   s = alpha / r (or alpha / √r with rsLoRA).
 * A starts kaiming-uniform (PEFT's kaiming_uniform_(a=√5) on [r, in] is U(−1/√in, 1/√in)), B starts at zero,
 * so a fresh adapter is an exact no-op. Merging gives W' = W + s · B·A.
 *
 * This file holds the configuration, the module shapes and names, initial values and the merge; the
 * training math lives in llama-train.ts and the PEFT files in io/peft.ts.
 */
import type { Backend, Tensor } from "../engine/backend.js";
import type { LlamaConfig } from "./config.js";
import { SeededRandom } from "../util/random.js";

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

/** PEFT's scaling factor s. */
export function loraScaling(config: Pick<LoraConfig, "rank" | "alpha" | "useRslora">): number {
  return config.useRslora ? config.alpha / Math.sqrt(config.rank) : config.alpha / config.rank;
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

/**
 * Fresh adapter values: A ~ U(−1/√in, 1/√in) (kaiming_uniform_ with a = √5: gain √(2/(1+5)) · √(3/in)),
 * B = 0. Deterministic in (seed, layer, module).
 */
export function initialLoraMatrices(config: LlamaConfig, lora: LoraConfig, seed: number): LoraMatrices[] {
  return loraSites(config, lora).map(({ layer, module }) => {
    const [out, inFeatures] = moduleShape(config, module);
    const a = new Float32Array(lora.rank * inFeatures);
    new SeededRandom(seed, `lora_A:${layer}:${module}`).fillUniform(a, 1 / Math.sqrt(inFeatures));
    return { layer, module, a, b: new Float32Array(out * lora.rank) };
  });
}

/**
 * W' = W + s · B·A on the backend, into a new f32 tensor (W may be bf16/f16: it is widened first).
 * The rank-r product is formed only here, for merging, never in training.
 */
export function mergeLoraIntoWeight(backend: Backend, weight: Tensor, a: Tensor, b: Tensor, scaling: number): Tensor {
  const merged = backend.alloc("f32", weight.shape);
  if (weight.dtype === "f32") backend.scale(weight, 1, merged);
  else backend.convert(weight, merged);
  // W' += s · B [out, r] · A [r, in]
  backend.matmul(b, a, merged, { accumulate: true, alpha: scaling });
  return merged;
}
