import { ropeScalingDivisors, type LlamaConfig } from "../io/llama-config.js";

/**
 * RoPE inverse frequencies inv_i = theta^(-2i/hd), i < hd/2, with Llama-3 scaling applied when configured:
 * inv_i /= f_i, the divisors of io/llama-config.ts (transformers' `_compute_llama3_parameters`).
 */
export function ropeInverseFrequencies(config: LlamaConfig): Float32Array {
  const half = config.headDim / 2;
  const inv = new Float32Array(half);
  const divisors = ropeScalingDivisors(config);
  for (let i = 0; i < half; i++) {
    inv[i] = Math.pow(config.ropeTheta, (-2 * i) / config.headDim) / divisors[i];
  }
  return inv;
}
