import type { LlamaConfig } from "./config.js";

/**
 * RoPE inverse frequencies inv_i = theta^(-2i/hd), i < hd/2, with Llama-3 scaling applied when configured
 * (transformers' `_compute_llama3_parameters`):
 *   wavelength_i = 2π / inv_i;  long wavelengths (> orig/low) are divided by `factor`, short ones
 *   (< orig/high) kept, and the band between interpolated with s = (orig/wavelength − low) / (high − low).
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

/**
 * The per-frequency divisors f_i of Llama-3 scaling (all 1 without scaling): inv_i /= f_i. This is also what
 * llama.cpp stores as the `rope_freqs` tensor.
 */
export function ropeScalingDivisors(config: LlamaConfig): Float64Array {
  const half = config.headDim / 2;
  const divisors = new Float64Array(half).fill(1);
  const scaling = config.ropeScaling;
  if (!scaling) return divisors;
  const { factor, lowFreqFactor, highFreqFactor, originalMaxPositionEmbeddings: original } = scaling;
  const lowFreqWavelength = original / lowFreqFactor;
  const highFreqWavelength = original / highFreqFactor;
  for (let i = 0; i < half; i++) {
    const inv = Math.pow(config.ropeTheta, (-2 * i) / config.headDim);
    const wavelength = (2 * Math.PI) / inv;
    if (wavelength < highFreqWavelength) divisors[i] = 1;
    else if (wavelength > lowFreqWavelength) divisors[i] = factor;
    else {
      const smooth = (original / wavelength - lowFreqFactor) / (highFreqFactor - lowFreqFactor);
      divisors[i] = 1 / ((1 - smooth) / factor + smooth);
    }
  }
  return divisors;
}
