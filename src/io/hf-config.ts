/**
 * Hugging Face Llama `config.json` ↔ `LlamaConfig` (REFERENCE §2).
 *
 * Reading fills absent fields with transformers' LlamaConfig defaults and refuses, by field name, anything
 * the engine does not implement (other architectures, biases, non-SiLU MLPs, RoPE types other than
 * default/llama3) — a checkpoint we would run wrongly must not load quietly.
 */
import { existsSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import type { LlamaConfig, RopeScalingLlama3 } from "./llama-config.js";
import { describeJson, isPlainObject, parseJsonObject } from "./strict-json.js";

/** transformers' LlamaConfig defaults for fields a config.json may omit. */
const DEFAULTS = {
  hidden_size: 4096,
  intermediate_size: 11008,
  num_hidden_layers: 32,
  num_attention_heads: 32,
  vocab_size: 32000,
  max_position_embeddings: 2048,
  rms_norm_eps: 1e-6,
  rope_theta: 10000,
  bos_token_id: 1,
  eos_token_id: 2,
} as const;

type Fail = (detail: string) => never;

/**
 * Normalise a parsed config.json into a `LlamaConfig`. `source` names the file in error messages, e.g.
 * `config.json: field "rope_scaling.rope_type" = "yarn" is not supported (supported: llama3)`.
 */
export function parseLlamaConfig(json: unknown, source: string): LlamaConfig {
  const fail: Fail = (detail) => {
    throw new Error(`${source}: ${detail}`);
  };
  if (!isPlainObject(json)) fail(`must be a JSON object, found ${describeJson(json)}`);
  const fields = new FieldReader(json as Record<string, unknown>, "", fail);

  // What this engine runs: LlamaForCausalLM with a SiLU-gated MLP and bias-free projections.
  const modelType = fields.optionalString("model_type");
  if (modelType !== null && modelType !== "llama") fields.unsupported("model_type", "supported: llama");
  fields.checkArchitectures();
  const hiddenAct = fields.optionalString("hidden_act") ?? "silu";
  if (hiddenAct !== "silu") fields.unsupported("hidden_act", "supported: silu");
  for (const biasField of ["attention_bias", "mlp_bias"]) {
    if (fields.boolean(biasField, false)) fields.unsupported(biasField, "bias tensors are not implemented");
  }

  const hiddenSize = fields.positiveInteger("hidden_size", DEFAULTS.hidden_size);
  const numHeads = fields.positiveInteger("num_attention_heads", DEFAULTS.num_attention_heads);
  const numKvHeads = fields.positiveInteger("num_key_value_heads", numHeads);
  if (numHeads % numKvHeads !== 0) {
    fail(`field "num_attention_heads" = ${numHeads} is not a multiple of field "num_key_value_heads" = ${numKvHeads}`);
  }
  if (fields.isAbsent("head_dim") && hiddenSize % numHeads !== 0) {
    fail(`field "hidden_size" = ${hiddenSize} is not a multiple of field "num_attention_heads" = ${numHeads} and "head_dim" is not given`);
  }
  const headDim = fields.positiveInteger("head_dim", hiddenSize / numHeads);
  // RoPE rotates element i with element i + hd/2, so the head dimension must split in two halves.
  if (headDim % 2 !== 0) fail(`field "head_dim" = ${headDim} must be even (RoPE rotates pairs of elements)`);

  const { ropeTheta, ropeScaling } = readRope(json as Record<string, unknown>, fields, fail);

  return {
    hiddenSize,
    intermediateSize: fields.positiveInteger("intermediate_size", DEFAULTS.intermediate_size),
    numLayers: fields.positiveInteger("num_hidden_layers", DEFAULTS.num_hidden_layers),
    numHeads,
    numKvHeads,
    headDim,
    vocabSize: fields.positiveInteger("vocab_size", DEFAULTS.vocab_size),
    maxPositionEmbeddings: fields.positiveInteger("max_position_embeddings", DEFAULTS.max_position_embeddings),
    rmsNormEps: fields.positiveNumber("rms_norm_eps", DEFAULTS.rms_norm_eps),
    ropeTheta,
    ropeScaling,
    tieWordEmbeddings: fields.boolean("tie_word_embeddings", false),
    bosTokenId: fields.tokenId("bos_token_id", DEFAULTS.bos_token_id),
    eosTokenIds: fields.tokenIdList("eos_token_id", [DEFAULTS.eos_token_id]),
    // Newer transformers write "dtype" instead of "torch_dtype".
    torchDtype: fields.optionalString("torch_dtype") ?? fields.optionalString("dtype"),
  };
}

/**
 * Read `<dir>/config.json` (or `dir` itself when it is a .json file) with strict JSON (duplicate keys
 * rejected) and normalise it with `parseLlamaConfig`.
 */
export function readLlamaConfig(dir: string): LlamaConfig {
  const path = existsSync(dir) && statSync(dir).isFile() ? dir : join(dir, "config.json");
  const fail: Fail = (detail) => {
    throw new Error(`${path}: ${detail}`);
  };
  let text = "";
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    fail(`cannot read: ${error instanceof Error ? error.message : String(error)}`);
  }
  return parseLlamaConfig(parseJsonObject(text, fail), path);
}

/**
 * The config.json transformers would write for this model (`LlamaForCausalLM`, `model_type: "llama"`),
 * so `AutoModelForCausalLM.from_pretrained` loads what we save. A null `torchDtype` is written as float32.
 */
export function llamaConfigToHf(config: LlamaConfig): Record<string, unknown> {
  const scaling = config.ropeScaling;
  const eos = config.eosTokenIds;
  return {
    architectures: ["LlamaForCausalLM"],
    model_type: "llama",
    hidden_size: config.hiddenSize,
    intermediate_size: config.intermediateSize,
    num_hidden_layers: config.numLayers,
    num_attention_heads: config.numHeads,
    num_key_value_heads: config.numKvHeads,
    head_dim: config.headDim,
    hidden_act: "silu",
    attention_bias: false,
    attention_dropout: 0.0,
    mlp_bias: false,
    initializer_range: 0.02,
    pretraining_tp: 1,
    max_position_embeddings: config.maxPositionEmbeddings,
    rms_norm_eps: config.rmsNormEps,
    rope_theta: config.ropeTheta,
    rope_scaling: scaling === null
      ? null
      : {
          rope_type: "llama3",
          factor: scaling.factor,
          low_freq_factor: scaling.lowFreqFactor,
          high_freq_factor: scaling.highFreqFactor,
          original_max_position_embeddings: scaling.originalMaxPositionEmbeddings,
        },
    tie_word_embeddings: config.tieWordEmbeddings,
    vocab_size: config.vocabSize,
    bos_token_id: config.bosTokenId,
    eos_token_id: eos.length === 0 ? null : eos.length === 1 ? eos[0] : [...eos],
    torch_dtype: config.torchDtype ?? "float32",
    use_cache: true,
  };
}

/**
 * RoPE base and scaling from either layout: the classic top-level `rope_theta` + `rope_scaling`, or the
 * newer `rope_parameters` object holding `rope_theta`, `rope_type` and the scaling keys.
 */
function readRope(
  json: Record<string, unknown>,
  fields: FieldReader,
  fail: Fail,
): { ropeTheta: number; ropeScaling: RopeScalingLlama3 | null } {
  const parameters = json.rope_parameters;
  if (parameters !== undefined && parameters !== null) {
    if (!isPlainObject(parameters)) fail(`field "rope_parameters" must be an object, found ${describeJson(parameters)}`);
    const nested = new FieldReader(parameters as Record<string, unknown>, "rope_parameters.", fail);
    const ropeTheta = nested.positiveNumber("rope_theta", fields.positiveNumber("rope_theta", DEFAULTS.rope_theta));
    return { ropeTheta, ropeScaling: readRopeScaling(nested, "default, llama3") };
  }
  const ropeTheta = fields.positiveNumber("rope_theta", DEFAULTS.rope_theta);
  const scaling = json.rope_scaling;
  if (scaling === undefined || scaling === null) return { ropeTheta, ropeScaling: null };
  if (!isPlainObject(scaling)) fail(`field "rope_scaling" must be an object or null, found ${describeJson(scaling)}`);
  return { ropeTheta, ropeScaling: readRopeScaling(new FieldReader(scaling as Record<string, unknown>, "rope_scaling.", fail), "llama3") };
}

/** `rope_type` (older files: `type`) "default" → null; "llama3" → its four parameters; anything else is refused. */
function readRopeScaling(fields: FieldReader, supported: string): RopeScalingLlama3 | null {
  const typeKey = fields.isAbsent("rope_type") && !fields.isAbsent("type") ? "type" : "rope_type";
  const ropeType = fields.optionalString(typeKey) ?? "default";
  if (ropeType === "default") return null;
  if (ropeType !== "llama3") fields.unsupported(typeKey, `supported: ${supported}`);
  const scaling: RopeScalingLlama3 = {
    type: "llama3",
    factor: fields.requiredPositiveNumber("factor", "llama3"),
    lowFreqFactor: fields.requiredPositiveNumber("low_freq_factor", "llama3"),
    highFreqFactor: fields.requiredPositiveNumber("high_freq_factor", "llama3"),
    originalMaxPositionEmbeddings: fields.requiredPositiveInteger("original_max_position_embeddings", "llama3"),
  };
  // The smooth interpolation divides by (high − low).
  if (scaling.highFreqFactor <= scaling.lowFreqFactor) {
    fields.fail(`field "${fields.prefix}high_freq_factor" = ${scaling.highFreqFactor} must be greater than "${fields.prefix}low_freq_factor" = ${scaling.lowFreqFactor}`);
  }
  return scaling;
}

/** Typed access to one JSON object's fields; every message names the field with its dotted path. */
class FieldReader {
  constructor(
    private readonly object: Record<string, unknown>,
    readonly prefix: string,
    readonly fail: Fail,
  ) {}

  /** Absent and null both mean "use the default" (transformers writes null for unset optional fields). */
  isAbsent(key: string): boolean {
    return !Object.hasOwn(this.object, key) || this.object[key] === null;
  }

  private value(key: string): unknown {
    return Object.hasOwn(this.object, key) ? this.object[key] : undefined;
  }

  private invalid(key: string, expected: string): never {
    return this.fail(`field "${this.prefix}${key}" = ${describeJson(this.value(key))} must be ${expected}`);
  }

  unsupported(key: string, why: string): never {
    return this.fail(`field "${this.prefix}${key}" = ${describeJson(this.value(key))} is not supported (${why})`);
  }

  optionalString(key: string): string | null {
    if (this.isAbsent(key)) return null;
    const value = this.value(key);
    if (typeof value !== "string") this.invalid(key, "a string");
    return value as string;
  }

  boolean(key: string, fallback: boolean): boolean {
    if (this.isAbsent(key)) return fallback;
    const value = this.value(key);
    if (typeof value !== "boolean") this.invalid(key, "true or false");
    return value as boolean;
  }

  positiveInteger(key: string, fallback: number): number {
    if (this.isAbsent(key)) return fallback;
    const value = this.value(key);
    if (!Number.isSafeInteger(value) || (value as number) <= 0) this.invalid(key, "a positive integer");
    return value as number;
  }

  positiveNumber(key: string, fallback: number): number {
    if (this.isAbsent(key)) return fallback;
    const value = this.value(key);
    if (typeof value !== "number" || !Number.isFinite(value) || value <= 0) this.invalid(key, "a positive number");
    return value as number;
  }

  requiredPositiveNumber(key: string, forWhat: string): number {
    if (this.isAbsent(key)) this.fail(`field "${this.prefix}${key}" is required for ${forWhat} RoPE scaling`);
    return this.positiveNumber(key, 0);
  }

  requiredPositiveInteger(key: string, forWhat: string): number {
    if (this.isAbsent(key)) this.fail(`field "${this.prefix}${key}" is required for ${forWhat} RoPE scaling`);
    return this.positiveInteger(key, 0);
  }

  tokenId(key: string, fallback: number): number | null {
    if (!Object.hasOwn(this.object, key)) return fallback;
    const value = this.value(key);
    if (value === null) return null;
    if (!Number.isSafeInteger(value) || (value as number) < 0) this.invalid(key, "a non-negative integer or null");
    return value as number;
  }

  /** One id, a list of ids (Llama-3.1 ends on any of several), or null for none. */
  tokenIdList(key: string, fallback: number[]): number[] {
    if (!Object.hasOwn(this.object, key)) return [...fallback];
    const value = this.value(key);
    if (value === null) return [];
    const list = Array.isArray(value) ? value : [value];
    if (!list.every((id) => Number.isSafeInteger(id) && (id as number) >= 0)) {
      this.invalid(key, "a non-negative integer, a list of them, or null");
    }
    return list as number[];
  }

  checkArchitectures(): void {
    if (this.isAbsent("architectures")) return;
    const value = this.value("architectures");
    if (!Array.isArray(value) || !value.every((name) => typeof name === "string")) {
      this.invalid("architectures", "a list of class names");
    }
    if ((value as string[]).some((name) => name !== "LlamaForCausalLM")) {
      this.unsupported("architectures", "supported: LlamaForCausalLM");
    }
  }
}
