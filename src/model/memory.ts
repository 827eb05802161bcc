/**
 * Limits before allocation (issue 19): what a checkpoint or a request needs in host memory, summed from its
 * sizes before any buffer is made, and refused in one line naming the sizes when it cannot fit.
 *
 * The rule:
 * 1. Everything the request holds at once — weights as loaded, the KV cache, a pass's activations, and for
 *    training the gradients, AdamW's two moments and the saved activations — must fit in the machine's memory:
 *    os.totalmem(), or the cgroup limit (process.constrainedMemory()) when that is lower.
 * 2. The long-lived buffers a call is about to make (a KV cache, a trainer's parameters, gradients and
 *    optimizer state) must also fit in the memory free now: os.freemem() (on Linux MemAvailable, which
 *    counts reclaimable page cache as free). Weights are not counted here: the CPU backend maps them from the
 *    file, and the kernel pages a mapping in on demand. A pass's activations are not either: they come back
 *    to the backend's pool and the next pass reuses them.
 * LABOR_LLM_MEMORY_LIMIT (bytes, or a number with K/M/G/T[i][B]) replaces the machine's memory in both
 * (say, to allow swap, or to keep a share of a machine for other work); "off" turns the checks off.
 */
import { freemem, totalmem } from "node:os";
import type { DType, Tensor } from "../engine/backend.js";
import type { LlamaConfig } from "../io/llama-config.js";
import { expectedTensorShapes } from "../io/llama-config.js";

/** The machine's memory as the rule reads it, bytes (null: checks turned off). */
export interface MemoryLimits {
  /** All memory the process may use (rule 1). */
  total: number;
  /** Memory free now (rule 2). */
  available: number;
  /** Where the numbers came from, for messages ("this machine", "LABOR_LLM_MEMORY_LIMIT"). */
  source: string;
}

const UNITS: Record<string, number> = { "": 1, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40 };

/** Parses LABOR_LLM_MEMORY_LIMIT: "17179869184", "16G", "16GiB", "512 MB" (units are powers of 1024). */
export function parseMemoryLimit(text: string): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b)?\s*$/i.exec(text);
  if (!match) throw new Error(`LABOR_LLM_MEMORY_LIMIT: "${text}" is not a size (bytes, or a number with K/M/G/T, e.g. 16G), nor "off"`);
  return Math.floor(Number(match[1]) * UNITS[match[2].toLowerCase()]);
}

/** The limits of this process now, or null when LABOR_LLM_MEMORY_LIMIT=off. */
export function machineMemory(env: NodeJS.ProcessEnv = process.env): MemoryLimits | null {
  const override = env.LABOR_LLM_MEMORY_LIMIT?.trim();
  if (override?.toLowerCase() === "off") return null;
  if (override) {
    const limit = parseMemoryLimit(override);
    return { total: limit, available: limit, source: `LABOR_LLM_MEMORY_LIMIT=${override}` };
  }
  const constrained = typeof process.constrainedMemory === "function" ? Number(process.constrainedMemory() ?? 0) : 0;
  const total = constrained > 0 && constrained < totalmem() ? constrained : totalmem();
  return { total, available: Math.min(freemem(), total), source: constrained > 0 && constrained < totalmem() ? "this process's cgroup" : "this machine" };
}

/** Bytes as a short human size: "512 B", "3.2 MiB", "1.07 TiB". */
export function formatBytes(bytes: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${bytes} B` : `${value.toFixed(value >= 100 ? 0 : value >= 10 ? 1 : 2)} ${units[unit]}`;
}

export function dtypeBytes(dtype: DType): number {
  return dtype === "bf16" || dtype === "f16" ? 2 : 4;
}

/** A need: named parts, bytes each; `fresh` names the parts this call allocates now (rule 2). */
export interface MemoryNeed {
  parts: Record<string, number>;
  fresh?: readonly string[];
}

/**
 * Throws "<what> needs <total> (<part> <size>, …) but <source> has <memory> of memory; refused before
 * allocating" when the need breaks the rule in this file's header (rule 1, then rule 2); returns otherwise.
 */
export function checkMemory(what: string, need: MemoryNeed, limits: MemoryLimits | null = machineMemory()): void {
  if (!limits) return;
  const entries = Object.entries(need.parts).filter(([, bytes]) => bytes > 0);
  const total = entries.reduce((sum, [, bytes]) => sum + bytes, 0);
  const list = entries.map(([name, bytes]) => `${name} ${formatBytes(bytes)}`).join(", ");
  if (total > limits.total) {
    throw new Error(`${what} needs ${formatBytes(total)} (${list}) but ${limits.source} has ${formatBytes(limits.total)} of memory; refused before allocating`);
  }
  const freshParts = entries.filter(([name]) => need.fresh?.includes(name));
  const fresh = freshParts.reduce((sum, [, bytes]) => sum + bytes, 0);
  if (fresh > limits.available) {
    const freshList = freshParts.map(([name, bytes]) => `${name} ${formatBytes(bytes)}`).join(", ");
    throw new Error(`${what} would allocate ${formatBytes(fresh)} now (${freshList}) but only ${formatBytes(limits.available)} of ` +
      `${limits.source}'s ${formatBytes(limits.total)} is free; refused before allocating`);
  }
}

/** Elements of every weight of a Llama with `config` (lm_head once, or not at all when tied). */
export function llamaParameterCount(config: LlamaConfig): number {
  let count = 0;
  for (const shape of expectedTensorShapes(config).values()) count += shape.reduce((x, y) => x * y, 1);
  return count;
}

/** Bytes of a Llama's weights stored as `dtype`. */
export function llamaWeightBytes(config: LlamaConfig, dtype: DType): number {
  return llamaParameterCount(config) * dtypeBytes(dtype);
}

/** The engine dtype a checkpoint's weights load as (that of its embedding; f32 when absent or another float). */
export function checkpointWeightDtype(dtypeOfEmbedding: string | undefined): DType {
  return dtypeOfEmbedding === "BF16" ? "bf16" : dtypeOfEmbedding === "F16" ? "f16" : "f32";
}

/** Bytes of tensors on a backend (each distinct tensor once: a tied lm_head is the embedding). */
export function tensorBytes(tensors: Iterable<Tensor>): number {
  let bytes = 0;
  for (const t of new Set(tensors)) bytes += t.size * dtypeBytes(t.dtype);
  return bytes;
}

/** Bytes of an f32 KV cache of `rows` rows (keys and values of every layer). */
export function kvCacheBytes(config: LlamaConfig, rows: number): number {
  return 2 * config.numLayers * rows * config.numKvHeads * config.headDim * 4;
}

/**
 * Bytes of one inference pass over `rows` rows (llama.ts decoderLayers: x, normed, q, k, v, attended,
 * projected over every row; gate and up over `mlpRows`), plus the logits of `logitRows` rows and their
 * gathered copy.
 */
export function forwardActivationBytes(config: LlamaConfig, rows: number, mlpRows: number, logitRows: number): number {
  const d = config.hiddenSize, qWidth = config.numHeads * config.headDim, kvWidth = config.numKvHeads * config.headDim;
  const perRow = 3 * d + 2 * qWidth + 2 * kvWidth;
  return 4 * (rows * perRow + 2 * mlpRows * config.intermediateSize + 2 * logitRows * (config.vocabSize + d));
}

/**
 * Bytes of training's per-token buffers at `maxTokens` (llama-train.ts): the saved activations of every layer
 * (one shared set when recomputing) — n1, q, k, v, att, lse, h, n2, g, u, s and the LoRA products — their
 * gradients' working set (one layer's worth), the residual stream and its gradient, and the logits chunks.
 */
export function trainingActivationBytes(config: LlamaConfig, maxTokens: number, options: { recompute: boolean; loraRank: number; loraModules: number; logitRows: number }): number {
  const d = config.hiddenSize, qWidth = config.numHeads * config.headDim, kvWidth = config.numKvHeads * config.headDim;
  const ff = config.intermediateSize;
  const savedPerLayer = 4 * d + 2 * qWidth + 2 * kvWidth + config.numHeads + 3 * ff + options.loraRank * options.loraModules;
  const savedLayers = options.recompute ? 1 : config.numLayers;
  const working = savedPerLayer + 4 * d;
  return 4 * (maxTokens * (savedLayers * savedPerLayer + working) + 3 * options.logitRows * config.vocabSize);
}
