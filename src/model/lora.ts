/**
 * LoRA with PEFT semantics (REFERENCE §4): a frozen Linear y = x·Wᵀ gains a rank-r update
 *   y = x·Wᵀ + s · (dropout(x)·Aᵀ)·Bᵀ,   A [r, in], B [out, r],   s = alpha / r (or alpha / √r with rsLoRA).
 * A starts kaiming-uniform (PEFT's kaiming_uniform_(a=√5) on [r, in] is U(−1/√in, 1/√in)), B starts at zero,
 * so a fresh adapter is an exact no-op. Merging gives W' = W + s · B·A.
 *
 * This file holds the scaling, initial values and the merge; the configuration, module shapes and names live
 * in io/lora-config.ts, the training math in llama-train.ts and the PEFT files in io/peft.ts.
 */
import type { Backend, Tensor } from "../engine/backend.js";
import type { LlamaConfig } from "../io/llama-config.js";
import { loraSites, moduleShape, type LoraConfig, type LoraMatrices } from "../io/lora-config.js";
import { SeededRandom } from "../util/random.js";

/** PEFT's scaling factor s. */
export function loraScaling(config: Pick<LoraConfig, "rank" | "alpha" | "useRslora">): number {
  return config.useRslora ? config.alpha / Math.sqrt(config.rank) : config.alpha / config.rank;
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
