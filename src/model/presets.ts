import type { LlamaConfig } from "../io/llama-config.js";

/** Llama-2 style defaults shared by the presets (tokenizer: the real Llama-2 32k vocabulary). */
const llama2Base: Omit<LlamaConfig, "hiddenSize" | "intermediateSize" | "numLayers" | "numHeads" | "numKvHeads" | "headDim"> = {
  vocabSize: 32000,
  maxPositionEmbeddings: 2048,
  rmsNormEps: 1e-5,
  ropeTheta: 10000,
  ropeScaling: null,
  tieWordEmbeddings: false,
  bosTokenId: 1,
  eosTokenIds: [2],
  torchDtype: null,
};

function preset(d: number, layers: number, heads: number, kvHeads: number, ff: number): LlamaConfig {
  return { ...llama2Base, hiddenSize: d, intermediateSize: ff, numLayers: layers, numHeads: heads, numKvHeads: kvHeads, headDim: d / heads };
}

/**
 * Named model shapes for `model init --config`:
 * - tiny: for tests (GQA 4 query heads over 2 kv heads).
 * - small / small-gqa: d=512, 8 layers, 8 heads, ffn 1376 (small-gqa: 2 kv heads).
 * - 1b: the TinyLlama-1.1B shape (d=2048, 22 layers, 32 heads, 4 kv heads, ffn 5632).
 * - demo: the demo's foundation model (d=128, 2 layers, tied embeddings): trainable in minutes on 2 cores.
 * - demo-deep: the demo with 4 layers and 4 kv heads (experiments/recipe/, runs M, V).
 * - demo-wide: the demo at twice the width (d=256, ffn 688, 2 layers, tied; experiments/recipe/, run W).
 * - demo-small: half the demo's width (d=64, 2 layers, tied): the smaller model of the experiment's data-vs-size comparison.
 * - tiny-llama3: tiny with Llama-3.1 RoPE scaling and θ = 500000, tied embeddings (exercises those paths).
 */
export const MODEL_PRESETS: Record<string, LlamaConfig> = {
  tiny: preset(64, 2, 4, 2, 176),
  small: preset(512, 8, 8, 8, 1376),
  "small-gqa": preset(512, 8, 8, 2, 1376),
  "1b": preset(2048, 22, 32, 4, 5632),
  demo: { ...preset(128, 2, 4, 2, 344), tieWordEmbeddings: true },
  "demo-deep": { ...preset(128, 4, 4, 4, 344), tieWordEmbeddings: true },
  "demo-wide": { ...preset(256, 2, 4, 2, 688), tieWordEmbeddings: true },
  "demo-small": { ...preset(64, 2, 2, 1, 172), tieWordEmbeddings: true },
  "tiny-llama3": {
    ...preset(64, 2, 4, 2, 176),
    ropeTheta: 500000,
    ropeScaling: { type: "llama3", factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 64 },
    maxPositionEmbeddings: 1024,
    tieWordEmbeddings: true,
  },
};

export function presetNames(): string[] {
  return Object.keys(MODEL_PRESETS);
}
