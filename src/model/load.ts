/**
 * Load an HF Llama directory (config.json, model.safetensors or a sharded index, tokenizer.json) onto a backend.
 * Weights stay memory-mapped where the backend allows (the CPU backend reads them in place).
 */
import type { Backend } from "../engine/backend.js";
import { openCheckpoint } from "../io/safetensors.js";
import { readLlamaConfig } from "../io/hf-config.js";
import { loadLlamaWeights, type HostTensor } from "./weights.js";
import { Llama, type LlamaTensors } from "./llama.js";
import type { LlamaConfig } from "../io/llama-config.js";
import { checkMemory, checkpointWeightDtype, llamaWeightBytes } from "./memory.js";

export interface LoadedLlama {
  config: LlamaConfig;
  model: Llama;
}

export function loadLlama(dir: string, backend: Backend): LoadedLlama {
  const config = readLlamaConfig(dir);
  const checkpoint = openCheckpoint(dir);
  // Weights as loaded: the CPU backend reads them in place from the mapped file, whole, every pass (GPU
  // backends copy them to device memory, which this host-memory check does not cover).
  if (backend.name === "cpu") {
    const embedding = "model.embed_tokens.weight";
    const dtype = checkpointWeightDtype(checkpoint.has(embedding) ? checkpoint.info(embedding).dtype : undefined);
    checkMemory(`${dir}: loading the model`, { parts: { [`weights (${dtype})`]: llamaWeightBytes(config, dtype) } });
  }
  const host = loadLlamaWeights(checkpoint, config);
  const onBackend = (t: HostTensor) => backend.weight(t.data, t.dtype, t.shape);
  const embedTokens = onBackend(host.embedTokens);
  const tensors: LlamaTensors = {
    embedTokens,
    layers: host.layers.map((layer) => ({
      inputNorm: onBackend(layer.inputNorm),
      q: onBackend(layer.q),
      k: onBackend(layer.k),
      v: onBackend(layer.v),
      o: onBackend(layer.o),
      postNorm: onBackend(layer.postNorm),
      gate: onBackend(layer.gate),
      up: onBackend(layer.up),
      down: onBackend(layer.down),
    })),
    norm: onBackend(host.norm),
    lmHead: config.tieWordEmbeddings ? embedTokens : onBackend(host.lmHead),
  };
  return { config, model: new Llama(backend, config, tensors) };
}
