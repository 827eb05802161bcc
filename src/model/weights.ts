/**
 * Llama weights from a checkpoint, checked against the config: every expected tensor present with the
 * expected shape, nothing unexpected (a bias or an extra layer means a model we would run wrongly).
 * Tensors stay views into the memory-mapped files.
 */
import type { LlamaConfig } from "../io/llama-config.js";
import { expectedTensorShapes, layerTensorNames } from "../io/llama-config.js";
import type { FloatTensor, TensorSource } from "../io/safetensors.js";

/** One weight on the host: f32/bf16/f16 (bf16/f16 as raw 16-bit patterns), usually a view into a mapping. */
export type HostTensor = FloatTensor;

export interface LlamaLayerWeights {
  inputNorm: HostTensor;
  q: HostTensor;
  k: HostTensor;
  v: HostTensor;
  o: HostTensor;
  postNorm: HostTensor;
  gate: HostTensor;
  up: HostTensor;
  down: HostTensor;
}

export interface LlamaWeights {
  embedTokens: HostTensor;
  layers: LlamaLayerWeights[];
  norm: HostTensor;
  /** The same object as `embedTokens` when the embeddings are tied. */
  lmHead: HostTensor;
}

/** Old checkpoints carry RoPE tables as buffers; they are recomputed from the config, so skip them. */
const ROTARY_BUFFER = /(^|\.)rotary_emb\.inv_freq$/;

/** A checkpoint with a name for messages: a directory (`Checkpoint.dir`) or a file (`SafetensorsFile.path`). */
type NamedSource = TensorSource & ({ dir: string } | { path: string });

/**
 * Collect the weights of a Llama with `config` from `checkpoint`. Throws one line naming the tensor (and
 * its file) when one is missing, has the wrong shape, has a dtype that is not F32/BF16/F16, or is not
 * part of this model. When the embeddings are tied, a stored `lm_head.weight` is ignored.
 */
export function loadLlamaWeights(checkpoint: NamedSource, config: LlamaConfig): LlamaWeights {
  const where = "dir" in checkpoint ? checkpoint.dir : checkpoint.path;
  const expected = expectedTensorShapes(config);

  const unexpected = checkpoint.names().filter(
    (name) => !expected.has(name) && !ROTARY_BUFFER.test(name) && !(config.tieWordEmbeddings && name === "lm_head.weight"),
  );
  if (unexpected.length > 0) {
    const more = unexpected.length > 1 ? ` (and ${unexpected.length - 1} more)` : "";
    const hint = unexpected[0].endsWith(".bias") ? "; bias tensors are not supported" : "";
    throw new Error(`${checkpoint.fileOf(unexpected[0])}: unexpected tensor ${JSON.stringify(unexpected[0])}${more} is not part of a Llama with this config${hint}`);
  }

  const missing = [...expected.keys()].filter((name) => !checkpoint.has(name));
  if (missing.length > 0) {
    const more = missing.length > 1 ? ` (and ${missing.length - 1} more)` : "";
    throw new Error(`${where}: missing tensor ${JSON.stringify(missing[0])}${more}, expected shape ${shapeText(expected.get(missing[0]) as number[])}`);
  }

  const load = (name: string): HostTensor => {
    const info = checkpoint.info(name);
    const want = expected.get(name) as number[];
    if (!sameShape(info.shape, want)) {
      throw new Error(`${checkpoint.fileOf(name)}: tensor ${JSON.stringify(name)} has shape ${shapeText(info.shape)} but the config expects ${shapeText(want)}`);
    }
    return checkpoint.tensor(name);
  };

  const embedTokens = load("model.embed_tokens.weight");
  const layers: LlamaLayerWeights[] = [];
  for (let layer = 0; layer < config.numLayers; layer++) {
    const [inputNorm, q, k, v, o, postNorm, gate, up, down] = layerTensorNames(layer).map(load);
    layers.push({ inputNorm, q, k, v, o, postNorm, gate, up, down });
  }
  return {
    embedTokens,
    layers,
    norm: load("model.norm.weight"),
    lmHead: config.tieWordEmbeddings ? embedTokens : load("lm_head.weight"),
  };
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((dim, i) => dim === b[i]);
}

function shapeText(shape: readonly number[]): string {
  return `[${shape.join(", ")}]`;
}
