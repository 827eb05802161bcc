import { existsSync, readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { initModel } from "../../model/init.js";
import { MODEL_PRESETS, presetNames } from "../../model/presets.js";
import { parseLlamaConfig, readLlamaConfig } from "../../io/hf-config.js";
import { exportGguf } from "../../model/export-gguf.js";
import type { LlamaConfig } from "../../io/llama-config.js";
import { oneOf, optionalInteger, parseFlags, requireString, UsageError } from "../args.js";
import { ProgressBar } from "../progress.js";
import { BACKEND_FLAGS, BACKEND_HELP, backendFromFlags } from "../backend-flags.js";
import { mergeAdapterIntoCheckpoint } from "../../model/adapter.js";

export const MODEL_HELP = `labor-llm model <init | export-gguf | merge> [flags]

labor-llm model init --config <preset|config.json> --out DIR [--seed N] [--dtype f32|bf16] [--init scaled|small]
  Writes a random-initialised Llama in HF layout: config.json, model.safetensors, tokenizer.json
  (the real Llama-2 32k tokenizer), tokenizer_config.json, generation_config.json.
  --config   a preset (${presetNames().join(", ")}) or an HF config.json file
  --seed     random seed (default 0)
  --dtype    weight dtype (default f32)
  --init     scaled: sharp random distributions, for verification (default); small: HF-like ±0.02 weights,
             near-uniform outputs, for training from scratch
  --out      output directory (must be empty or absent)

labor-llm model export-gguf --model DIR --out FILE.gguf [--dtype f32|bf16]
  Writes a GGUF v3 file llama.cpp loads (q/k rows permuted to its RoPE layout, tokenizer included).
  --dtype    tensor dtype in the file (default: the checkpoint's; norms stay f32)

labor-llm model merge --model DIR --adapter DIR --out DIR [--dtype f32|bf16]
  Merges a PEFT LoRA adapter (adapter_config.json + adapter_model.safetensors, e.g. train's OUT/final)
  into the base weights, W' = W + (alpha/r)·B·A, and writes a plain HF model directory.
  --dtype    weight dtype written (default: the base model's)
${BACKEND_HELP}`;

export function runModel(argv: string[]): number | Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === "init") return runInit(rest);
  if (sub === "export-gguf") return runExportGguf(rest);
  if (sub === "merge") return runMerge(rest);
  if (sub === undefined || sub === "--help" || sub === "-h" || sub === "help") {
    console.log(MODEL_HELP);
    return sub === undefined ? 2 : 0;
  }
  throw new UsageError(`model: unknown subcommand "${sub}" (init, export-gguf, merge)`);
}

function resolveConfig(spec: string): LlamaConfig {
  if (MODEL_PRESETS[spec]) return MODEL_PRESETS[spec];
  if (!existsSync(spec)) {
    throw new UsageError(`--config: "${spec}" is neither a preset (${presetNames().join(", ")}) nor a file`);
  }
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(spec, "utf8"));
  } catch (error) {
    throw new Error(`${spec}: not valid JSON: ${(error as Error).message}`, { cause: error });
  }
  return parseLlamaConfig(json, spec);
}

function runInit(argv: string[]): number {
  const { values } = parseFlags(argv, {
    config: { type: "string" },
    seed: { type: "string" },
    dtype: { type: "string" },
    init: { type: "string" },
    out: { type: "string" },
  });
  if (values.help) {
    console.log(MODEL_HELP);
    return 0;
  }
  const scheme = oneOf(values, "init", ["scaled", "small"] as const, "scaled");
  const config = resolveConfig(requireString(values, "config"));
  const seed = optionalInteger(values, "seed", 0);
  const dtype = oneOf(values, "dtype", ["f32", "bf16"] as const, "f32");
  const outDir = requireString(values, "out");
  if (existsSync(outDir) && readdirSync(outDir).length > 0) {
    throw new UsageError(`--out: ${outDir} is not empty (refusing to overwrite)`);
  }
  let bar: ProgressBar | undefined;
  initModel({
    config,
    seed,
    dtype,
    scheme,
    outDir,
    onTensor: (_name, index, total) => {
      bar ??= new ProgressBar("init", total, " tensors");
      bar.update(index + 1);
    },
  });
  bar?.finish();
  const params = countParameters(config);
  console.log(`wrote ${outDir} (${(params / 1e6).toFixed(2)}M parameters, ${dtype}, seed ${seed})`);
  return 0;
}

export function countParameters(config: LlamaConfig): number {
  const { hiddenSize: d, intermediateSize: ff, numHeads: h, numKvHeads: kv, headDim: hd, vocabSize: v } = config;
  const perLayer = 2 * d + d * h * hd * 2 + 2 * d * kv * hd + 3 * d * ff;
  return v * d * (config.tieWordEmbeddings ? 1 : 2) + config.numLayers * perLayer + d;
}

function runExportGguf(argv: string[]): number {
  const { values } = parseFlags(argv, {
    model: { type: "string" },
    out: { type: "string" },
    dtype: { type: "string" },
  });
  if (values.help) {
    console.log(MODEL_HELP);
    return 0;
  }
  const modelDir = requireString(values, "model");
  const out = requireString(values, "out");
  if (!existsSync(join(modelDir, "config.json"))) throw new UsageError(`--model: ${modelDir} has no config.json`);
  const config = readLlamaConfig(modelDir);
  const fallback = config.torchDtype === "bfloat16" ? "bf16" : "f32";
  const dtype = oneOf(values, "dtype", ["f32", "bf16"] as const, fallback);
  exportGguf(modelDir, out, dtype);
  console.log(`wrote ${out} (${dtype})`);
  return 0;
}

async function runMerge(argv: string[]): Promise<number> {
  const { values } = parseFlags(argv, {
    model: { type: "string" },
    adapter: { type: "string" },
    out: { type: "string" },
    dtype: { type: "string" },
    ...BACKEND_FLAGS,
  });
  if (values.help) {
    console.log(MODEL_HELP);
    return 0;
  }
  const modelDir = requireString(values, "model");
  const adapterDir = requireString(values, "adapter");
  const outDir = requireString(values, "out");
  if (!existsSync(join(modelDir, "config.json"))) throw new UsageError(`--model: ${modelDir} has no config.json`);
  if (existsSync(outDir) && readdirSync(outDir).length > 0) throw new UsageError(`--out: ${outDir} is not empty (refusing to overwrite)`);
  const dtype = values.dtype === undefined ? undefined : oneOf(values, "dtype", ["f32", "bf16"] as const, "f32");
  await mergeAdapterIntoCheckpoint(modelDir, adapterDir, outDir, await backendFromFlags(values), dtype);
  console.log(`wrote ${outDir} (${modelDir} with ${adapterDir} merged)`);
  return 0;
}
