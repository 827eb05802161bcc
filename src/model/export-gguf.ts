/** `model export-gguf`: an HF Llama directory → one GGUF v3 file for llama.cpp. */
import { existsSync, readFileSync } from "node:fs";
import { basename, join, resolve } from "node:path";
import { openCheckpoint } from "../io/safetensors.js";
import { readLlamaConfig } from "../io/hf-config.js";
import { writeGguf } from "../io/gguf.js";
import { expectedTensorShapes } from "../io/llama-config.js";
import { loadLlamaWeights } from "./weights.js";

function readJson(path: string): object {
  try {
    return JSON.parse(readFileSync(path, "utf8")) as object;
  } catch (error) {
    throw new Error(`${path}: cannot read JSON: ${(error as Error).message}`, { cause: error });
  }
}

export function exportGguf(modelDir: string, outPath: string, outDtype: "f32" | "bf16"): void {
  const config = readLlamaConfig(modelDir);
  const checkpoint = openCheckpoint(modelDir);
  // Validates every tensor's presence and shape before anything is written.
  loadLlamaWeights(checkpoint, config);
  const tokenizerPath = join(modelDir, "tokenizer.json");
  if (!existsSync(tokenizerPath)) throw new Error(`${modelDir}: no tokenizer.json (GGUF files carry the tokenizer)`);
  const tokenizerConfigPath = join(modelDir, "tokenizer_config.json");
  const tensors = [...expectedTensorShapes(config).keys()].map((hfName) => {
    const t = checkpoint.tensor(hfName);
    return { hfName, dtype: t.dtype, shape: [...t.shape], data: t.data };
  });
  writeGguf(outPath, {
    config,
    name: basename(resolve(modelDir)),
    tensors,
    outDtype,
    tokenizer: {
      json: readJson(tokenizerPath),
      config: existsSync(tokenizerConfigPath) ? readJson(tokenizerConfigPath) : undefined,
    },
  });
}
