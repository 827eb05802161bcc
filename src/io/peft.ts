/**
 * PEFT LoRA adapter directories (REFERENCE §4): `adapter_config.json` + `adapter_model.safetensors` with
 * PEFT's saved key names (`base_model.model.model.layers.N.self_attn.q_proj.lora_A.weight`, A [r, in],
 * B [out, r]). What we write loads in `peft.PeftModel.from_pretrained` and llama.cpp's
 * convert_lora_to_gguf.py; what we read is any PEFT LoRA for a Llama that uses the features we implement
 * (no DoRA, no per-layer rank/alpha patterns, no fan_in_fan_out, no bias training).
 */
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { LlamaConfig } from "./llama-config.js";
import {
  LORA_TARGET_MODULES, loraSites, moduleShape, peftKey, validateLoraConfig,
  type LoraConfig, type LoraMatrices, type LoraTargetModule,
} from "./lora-config.js";
import { writeFileAtomic } from "./atomic-write.js";
import { toFloat32 } from "./dtype.js";
import { openSafetensors, writeSafetensors } from "./safetensors.js";
import { parseJsonObject } from "./strict-json.js";

export const ADAPTER_CONFIG_FILE = "adapter_config.json";
export const ADAPTER_WEIGHTS_FILE = "adapter_model.safetensors";

export interface PeftAdapter {
  lora: LoraConfig;
  matrices: LoraMatrices[];
  /** base_model_name_or_path from the config (may be null). */
  baseModel: string | null;
}

/** Write a PEFT adapter directory (created if absent; both files replaced atomically, weights first). */
export function writePeftAdapter(dir: string, adapter: PeftAdapter, config: LlamaConfig): void {
  validateLoraConfig(adapter.lora);
  mkdirSync(dir, { recursive: true });
  const tensors = adapter.matrices.flatMap((m) => {
    const [out, inFeatures] = moduleShape(config, m.module);
    return [
      { name: peftKey(m.layer, m.module, "A"), dtype: "F32" as const, shape: [adapter.lora.rank, inFeatures], data: m.a },
      { name: peftKey(m.layer, m.module, "B"), dtype: "F32" as const, shape: [out, adapter.lora.rank], data: m.b },
    ];
  });
  writeSafetensors(join(dir, ADAPTER_WEIGHTS_FILE), tensors);
  const json = {
    peft_type: "LORA",
    task_type: "CAUSAL_LM",
    base_model_name_or_path: adapter.baseModel,
    r: adapter.lora.rank,
    lora_alpha: adapter.lora.alpha,
    lora_dropout: adapter.lora.dropout,
    target_modules: LORA_TARGET_MODULES.filter((m) => adapter.lora.targetModules.includes(m)),
    bias: "none",
    fan_in_fan_out: false,
    use_rslora: adapter.lora.useRslora,
    use_dora: false,
    init_lora_weights: true,
    inference_mode: true,
    modules_to_save: null,
    layers_to_transform: null,
    layers_pattern: null,
    rank_pattern: {},
    alpha_pattern: {},
    revision: null,
  };
  const bytes = Buffer.from(JSON.stringify(json, null, 2) + "\n", "utf8");
  writeFileAtomic(join(dir, ADAPTER_CONFIG_FILE), (sink) => sink.write(bytes));
}

/** Read and check a PEFT LoRA adapter for a Llama with `config`; errors name the file and field/tensor. */
export function readPeftAdapter(dir: string, config: LlamaConfig): PeftAdapter {
  const configPath = join(dir, ADAPTER_CONFIG_FILE);
  const weightsPath = join(dir, ADAPTER_WEIGHTS_FILE);
  if (!existsSync(configPath)) throw new Error(`${dir}: no ${ADAPTER_CONFIG_FILE} (not a PEFT adapter directory)`);
  if (!existsSync(weightsPath)) throw new Error(`${dir}: no ${ADAPTER_WEIGHTS_FILE}`);
  const fail = (detail: string): never => {
    throw new Error(`${configPath}: ${detail}`);
  };
  const json = parseJsonObject(readFileSync(configPath, "utf8"), fail);
  if (json.peft_type !== "LORA") fail(`peft_type is ${JSON.stringify(json.peft_type)}, only "LORA" is supported`);
  const number = (key: string, fallback: number): number => {
    const value = json[key] ?? fallback;
    if (typeof value !== "number" || !Number.isFinite(value)) fail(`${key} must be a number, got ${JSON.stringify(value)}`);
    return value as number;
  };
  const flagOff = (key: string): void => {
    if (json[key] !== undefined && json[key] !== null && json[key] !== false) fail(`${key} = ${JSON.stringify(json[key])} is not supported`);
  };
  flagOff("fan_in_fan_out");
  flagOff("use_dora");
  flagOff("layers_to_transform");
  flagOff("modules_to_save");
  if (json.bias !== undefined && json.bias !== "none") fail(`bias = ${JSON.stringify(json.bias)} is not supported (only "none")`);
  for (const key of ["rank_pattern", "alpha_pattern"]) {
    const value = json[key];
    if (value !== undefined && value !== null && !(typeof value === "object" && Object.keys(value as object).length === 0)) {
      fail(`${key} is not supported (one rank and alpha for every module)`);
    }
  }
  const targets = json.target_modules;
  if (!Array.isArray(targets) || !targets.every((t) => typeof t === "string")) fail("target_modules must be a list of module names");
  for (const t of targets as string[]) {
    if (!LORA_TARGET_MODULES.includes(t as LoraTargetModule)) fail(`target module "${t}" is not a Llama Linear (${LORA_TARGET_MODULES.join(", ")})`);
  }
  const lora: LoraConfig = {
    rank: number("r", 8),
    alpha: number("lora_alpha", 8),
    dropout: number("lora_dropout", 0),
    targetModules: LORA_TARGET_MODULES.filter((m) => (targets as string[]).includes(m)),
    useRslora: json.use_rslora === true,
  };
  try {
    validateLoraConfig(lora);
  } catch (error) {
    fail((error as Error).message);
  }

  const file = openSafetensors(weightsPath);
  const expected = new Set<string>();
  const matrices = loraSites(config, lora).map(({ layer, module }) => {
    const [out, inFeatures] = moduleShape(config, module);
    const load = (which: "A" | "B", shape: number[]): Float32Array => {
      const name = peftKey(layer, module, which);
      expected.add(name);
      if (!file.has(name)) throw new Error(`${weightsPath}: missing tensor ${JSON.stringify(name)}`);
      const tensor = file.tensor(name);
      if (tensor.shape.length !== 2 || tensor.shape[0] !== shape[0] || tensor.shape[1] !== shape[1]) {
        throw new Error(`${weightsPath}: tensor ${JSON.stringify(name)} has shape [${tensor.shape.join(", ")}], expected [${shape.join(", ")}]`);
      }
      return toFloat32(tensor.data, tensor.dtype);
    };
    return { layer, module, a: load("A", [lora.rank, inFeatures]), b: load("B", [out, lora.rank]) };
  });
  const extra = file.names().filter((n) => !expected.has(n));
  if (extra.length > 0) {
    throw new Error(`${weightsPath}: unexpected tensor ${JSON.stringify(extra[0])}${extra.length > 1 ? ` (and ${extra.length - 1} more)` : ""}`);
  }
  const base = json.base_model_name_or_path;
  return { lora, matrices, baseModel: typeof base === "string" ? base : null };
}
