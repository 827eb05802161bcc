/**
 * The Llama hyper-parameters the engine runs, normalised from an HF config.json (read in io/hf-config.ts), and
 * what they fix about the files: the HF tensor names and shapes, and the RoPE scaling divisors GGUF stores.
 * Plain data and arithmetic, no imports: it sits in io so the readers and writers need nothing from model/.
 */
export interface RopeScalingLlama3 {
  type: "llama3";
  factor: number;
  lowFreqFactor: number;
  highFreqFactor: number;
  originalMaxPositionEmbeddings: number;
}

export interface LlamaConfig {
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  vocabSize: number;
  maxPositionEmbeddings: number;
  rmsNormEps: number;
  ropeTheta: number;
  /** null = plain RoPE. */
  ropeScaling: RopeScalingLlama3 | null;
  tieWordEmbeddings: boolean;
  bosTokenId: number | null;
  /** Llama-3.1 lists several end tokens. */
  eosTokenIds: number[];
  /** Dtype the weights were saved in, when config.json says ("float32", "bfloat16", "float16"). */
  torchDtype: string | null;
}

/** HF tensor names of one decoder layer, in file order. */
export function layerTensorNames(layer: number): string[] {
  const p = `model.layers.${layer}.`;
  return [
    `${p}input_layernorm.weight`,
    `${p}self_attn.q_proj.weight`,
    `${p}self_attn.k_proj.weight`,
    `${p}self_attn.v_proj.weight`,
    `${p}self_attn.o_proj.weight`,
    `${p}post_attention_layernorm.weight`,
    `${p}mlp.gate_proj.weight`,
    `${p}mlp.up_proj.weight`,
    `${p}mlp.down_proj.weight`,
  ];
}

/** Expected [rows, cols] (or [n]) of every HF tensor of a Llama with this config. */
export function expectedTensorShapes(config: LlamaConfig): Map<string, number[]> {
  const { hiddenSize: d, intermediateSize: ff, numHeads: h, numKvHeads: kv, headDim: hd, vocabSize: v } = config;
  const shapes = new Map<string, number[]>();
  shapes.set("model.embed_tokens.weight", [v, d]);
  for (let i = 0; i < config.numLayers; i++) {
    const [inNorm, q, k, vProj, o, postNorm, gate, up, down] = layerTensorNames(i);
    shapes.set(inNorm, [d]);
    shapes.set(q, [h * hd, d]);
    shapes.set(k, [kv * hd, d]);
    shapes.set(vProj, [kv * hd, d]);
    shapes.set(o, [d, h * hd]);
    shapes.set(postNorm, [d]);
    shapes.set(gate, [ff, d]);
    shapes.set(up, [ff, d]);
    shapes.set(down, [d, ff]);
  }
  shapes.set("model.norm.weight", [d]);
  if (!config.tieWordEmbeddings) shapes.set("lm_head.weight", [v, d]);
  return shapes;
}

/**
 * The per-frequency divisors f_i of Llama-3 RoPE scaling (all 1 without scaling): model/rope.ts divides the
 * inverse frequency inv_i = theta^(-2i/hd) by f_i, and llama.cpp stores them as the `rope_freqs` tensor
 * (transformers' `_compute_llama3_parameters`):
 *   wavelength_i = 2π / inv_i;  long wavelengths (> orig/low) are divided by `factor`, short ones
 *   (< orig/high) kept, and the band between interpolated with s = (orig/wavelength − low) / (high − low).
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
