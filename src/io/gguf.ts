/**
 * GGUF v3 export of a Llama model for llama.cpp, and a header reader for tests and tools.
 *
 * Format and llama.cpp's extra strictness: REFERENCE.md §3. In short: little-endian header
 * (magic, version, counts), typed key/value metadata, tensor infos (name, ne = reversed shape, ggml type,
 * offset), then tensor data, every tensor aligned to 32 bytes and written in info order.
 *
 * What this writer does beyond copying bytes, mirroring llama.cpp's `convert_hf_to_gguf.py`:
 * - renames HF tensors to GGUF names and reverses the shape into `ne`;
 * - permutes q/k rows from HF's half-split RoPE layout to llama.cpp's interleaved pairs;
 * - converts dtypes (f32/bf16/f16 in, f32 or bf16 out; bf16 output keeps 1-D tensors and norms in f32);
 * - adds `rope_freqs` for llama3 RoPE scaling;
 * - writes tokenizer metadata, with SentencePiece-style scores derived from BPE merge ranks so llama.cpp
 *   tokenizes exactly like HF's tokenizer.json.
 */
import { randomBytes } from "node:crypto";
import { closeSync, fstatSync, fsyncSync, openSync, readSync, renameSync, unlinkSync, writeSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { expectedTensorShapes, ropeScalingDivisors, type LlamaConfig } from "./llama-config.js";
import { bf16BitsToF32, f16BitsToF32, f32ToBf16Bits } from "./dtype.js";
import { detectTokenizerKind, type TokenizerJson } from "../text/tokenizer.js";

// ---------------------------------------------------------------------------------------------------
// Format constants
// ---------------------------------------------------------------------------------------------------

const GGUF_MAGIC = 0x46554747; // "GGUF" read as a little-endian u32
const GGUF_VERSION = 3;
/** Alignment of the data section and of every tensor; 32 is GGUF's default, so no key is written for it. */
export const GGUF_ALIGNMENT = 32;

/** GGUF metadata value type ids. */
export const GgufValueType = {
  U8: 0,
  I8: 1,
  U16: 2,
  I16: 3,
  U32: 4,
  I32: 5,
  F32: 6,
  BOOL: 7,
  STRING: 8,
  ARRAY: 9,
  U64: 10,
  I64: 11,
  F64: 12,
} as const;
export type GgufValueType = (typeof GgufValueType)[keyof typeof GgufValueType];

/** ggml tensor type ids we write (and F16, which we can read). */
export const GgmlType = { F32: 0, F16: 1, BF16: 30 } as const;

/** `general.file_type` values (llama_ftype). */
const FILE_TYPE_ALL_F32 = 0;
const FILE_TYPE_MOSTLY_BF16 = 32;

/** llama.cpp token types (`tokenizer.ggml.token_type`). */
export const GgufTokenType = { NORMAL: 1, UNKNOWN: 2, CONTROL: 3, USER_DEFINED: 4, UNUSED: 5, BYTE: 6 } as const;

/** Llama-3's pre-tokenizer split regex, as it appears in its tokenizer.json; llama.cpp calls it "llama-bpe". */
export const LLAMA3_SPLIT_REGEX =
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

// ---------------------------------------------------------------------------------------------------
// Public types
// ---------------------------------------------------------------------------------------------------

/** One HF tensor handed to the writer. `bf16`/`f16` data are raw 16-bit patterns in a Uint16Array. */
export interface GgufTensorInput {
  hfName: string;
  dtype: "f32" | "bf16" | "f16";
  /** Row-major HF shape, e.g. `[out, in]` for a Linear weight. */
  shape: number[];
  data: Float32Array | Uint16Array;
}

/** What {@link writeGguf} needs. */
export interface GgufExportInput {
  config: LlamaConfig;
  /** `general.name`. */
  name: string;
  /**
   * The model's tensors in any order. They are all gathered before writing (the header must list every
   * tensor first), so pass views over memory-mapped files rather than copies for large models.
   */
  tensors: Iterable<GgufTensorInput>;
  /** Output dtype of matrices; 1-D tensors and norms stay f32 either way. */
  outDtype: "f32" | "bf16";
  tokenizer: { json: object; config?: object | null };
}

/** A metadata value as read back: `itemType` is set for arrays. u64/i64 values are bigints. */
export interface GgufMetadataEntry {
  type: GgufValueType;
  itemType?: GgufValueType;
  value: unknown;
}

/** One tensor info as read back from a GGUF header. */
export interface GgufTensorInfo {
  name: string;
  /** Dimensions, fastest-varying first (reverse of the row-major shape). */
  ne: number[];
  /** ggml type id. */
  type: number;
  /** Byte offset relative to the start of the data section. */
  offset: number;
}

/** A parsed GGUF header. */
export interface GgufHeader {
  version: number;
  metadata: Map<string, GgufMetadataEntry>;
  tensors: GgufTensorInfo[];
  alignment: number;
  /** Absolute file offset of the data section. */
  dataOffset: number;
}

// ---------------------------------------------------------------------------------------------------
// Pure helpers: q/k permutation, dtype conversion, rope factors, names
// ---------------------------------------------------------------------------------------------------

/**
 * Source row of output row `row` under the q/k permutation with `rowsPerHead` rows per head:
 * per head, output row `2i + j` takes input row `j·hd/2 + i` (HF half-split → GGUF interleaved pairs).
 */
function qkSourceRow(row: number, rowsPerHead: number): number {
  const head = Math.floor(row / rowsPerHead);
  const within = row - head * rowsPerHead;
  const i = within >> 1;
  const j = within & 1;
  return head * rowsPerHead + j * (rowsPerHead >> 1) + i;
}

/**
 * Permute the rows of a q or k projection (`rows × cols`, row-major) from HF's RoPE layout to llama.cpp's:
 * per head of `rows / heads` rows, output row `2i + j` takes input row `j·hd/2 + i`.
 * Use `heads = H` for q and `heads = KV` for k. Returns a new array of the same type.
 */
export function permuteQkRows<T extends Float32Array | Uint16Array>(data: T, rows: number, cols: number, heads: number): T {
  if (data.length !== rows * cols) throw new Error(`permuteQkRows: data has ${data.length} elements, expected ${rows}×${cols}`);
  if (heads <= 0 || rows % heads !== 0 || (rows / heads) % 2 !== 0) {
    throw new Error(`permuteQkRows: ${rows} rows do not split into ${heads} heads of even size`);
  }
  const rowsPerHead = rows / heads;
  const out = new (data.constructor as new (n: number) => T)(data.length);
  for (let r = 0; r < rows; r++) {
    const src = qkSourceRow(r, rowsPerHead);
    out.set(data.subarray(src * cols, (src + 1) * cols), r * cols);
  }
  return out;
}

/**
 * llama3 RoPE scaling as per-pair divisors `f_i` (REFERENCE §2): the `rope_freqs` tensor llama.cpp divides
 * each pair's base frequency by.
 */
export function llama3RopeFactors(config: LlamaConfig): Float32Array {
  if (!config.ropeScaling) throw new Error("llama3RopeFactors: config has no llama3 rope scaling");
  return Float32Array.from(ropeScalingDivisors(config));
}

const LAYER_TENSOR_MAP: Record<string, string> = {
  "input_layernorm.weight": "attn_norm.weight",
  "self_attn.q_proj.weight": "attn_q.weight",
  "self_attn.k_proj.weight": "attn_k.weight",
  "self_attn.v_proj.weight": "attn_v.weight",
  "self_attn.o_proj.weight": "attn_output.weight",
  "post_attention_layernorm.weight": "ffn_norm.weight",
  "mlp.gate_proj.weight": "ffn_gate.weight",
  "mlp.up_proj.weight": "ffn_up.weight",
  "mlp.down_proj.weight": "ffn_down.weight",
};

/** GGUF name of an HF Llama tensor, or null when the name is not a Llama weight. */
export function ggufTensorName(hfName: string): string | null {
  if (hfName === "model.embed_tokens.weight") return "token_embd.weight";
  if (hfName === "model.norm.weight") return "output_norm.weight";
  if (hfName === "lm_head.weight") return "output.weight";
  const m = /^model\.layers\.(\d+)\.(.+)$/.exec(hfName);
  if (!m) return null;
  const suffix = LAYER_TENSOR_MAP[m[2]];
  return suffix ? `blk.${m[1]}.${suffix}` : null;
}

// ---------------------------------------------------------------------------------------------------
// Header serialisation
// ---------------------------------------------------------------------------------------------------

/** Little-endian byte sink that grows as needed. */
class ByteWriter {
  private buf = Buffer.alloc(1 << 16);
  length = 0;

  private reserve(n: number): void {
    if (this.length + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.length + n) size *= 2;
    const next = Buffer.alloc(size);
    this.buf.copy(next, 0, 0, this.length);
    this.buf = next;
  }
  u8(v: number): void {
    this.reserve(1);
    this.buf.writeUInt8(v, this.length);
    this.length += 1;
  }
  u32(v: number): void {
    this.reserve(4);
    this.buf.writeUInt32LE(v, this.length);
    this.length += 4;
  }
  i32(v: number): void {
    this.reserve(4);
    this.buf.writeInt32LE(v, this.length);
    this.length += 4;
  }
  u64(v: number | bigint): void {
    this.reserve(8);
    this.buf.writeBigUInt64LE(BigInt(v), this.length);
    this.length += 8;
  }
  f32(v: number): void {
    this.reserve(4);
    this.buf.writeFloatLE(v, this.length);
    this.length += 4;
  }
  string(s: string): void {
    const bytes = Buffer.from(s, "utf8");
    this.u64(bytes.length);
    this.reserve(bytes.length);
    bytes.copy(this.buf, this.length);
    this.length += bytes.length;
  }
  zeros(n: number): void {
    this.reserve(n);
    this.buf.fill(0, this.length, this.length + n);
    this.length += n;
  }
  bytes(): Buffer {
    return this.buf.subarray(0, this.length);
  }
}

/** A metadata entry to write; arrays hold one element type. */
type MetadataValue =
  | { type: "u32"; value: number }
  | { type: "f32"; value: number }
  | { type: "bool"; value: boolean }
  | { type: "string"; value: string }
  | { type: "string[]"; value: string[] }
  | { type: "f32[]"; value: ArrayLike<number> }
  | { type: "i32[]"; value: ArrayLike<number> };

function writeMetadataEntry(w: ByteWriter, key: string, v: MetadataValue): void {
  w.string(key);
  switch (v.type) {
    case "u32":
      w.u32(GgufValueType.U32);
      w.u32(v.value);
      return;
    case "f32":
      w.u32(GgufValueType.F32);
      w.f32(v.value);
      return;
    case "bool":
      w.u32(GgufValueType.BOOL);
      w.u8(v.value ? 1 : 0);
      return;
    case "string":
      w.u32(GgufValueType.STRING);
      w.string(v.value);
      return;
    case "string[]":
      w.u32(GgufValueType.ARRAY);
      w.u32(GgufValueType.STRING);
      w.u64(v.value.length);
      for (const s of v.value) w.string(s);
      return;
    case "f32[]":
      w.u32(GgufValueType.ARRAY);
      w.u32(GgufValueType.F32);
      w.u64(v.value.length);
      for (let i = 0; i < v.value.length; i++) w.f32(v.value[i]);
      return;
    case "i32[]":
      w.u32(GgufValueType.ARRAY);
      w.u32(GgufValueType.I32);
      w.u64(v.value.length);
      for (let i = 0; i < v.value.length; i++) w.i32(v.value[i]);
      return;
  }
}

function alignUp(n: number, alignment: number): number {
  return Math.ceil(n / alignment) * alignment;
}

// ---------------------------------------------------------------------------------------------------
// Tokenizer metadata
// ---------------------------------------------------------------------------------------------------

type Json = Record<string, unknown>;

function specialContent(value: unknown): string | null {
  if (typeof value === "string") return value;
  if (value && typeof value === "object" && typeof (value as Json).content === "string") return (value as Json).content as string;
  return null;
}

/** Whether the tokenizer.json's TemplateProcessing puts a special token before the sequence. */
function templateAddsLeadingSpecial(postProcessor: unknown): boolean {
  const stack: unknown[] = [postProcessor];
  while (stack.length) {
    const p = stack.pop() as Json | null;
    if (!p || typeof p !== "object") continue;
    if (p.type === "Sequence" && Array.isArray(p.processors)) stack.push(...p.processors);
    if (p.type === "TemplateProcessing" && Array.isArray(p.single)) {
      const first = (p.single as Json[])[0];
      if (first && first.SpecialToken) return true;
    }
  }
  return false;
}

/** Pre-tokenizer split regexes of a tokenizer.json (Split components, possibly inside a Sequence). */
function splitRegexes(preTokenizer: unknown): string[] {
  const out: string[] = [];
  const stack: unknown[] = [preTokenizer];
  while (stack.length) {
    const p = stack.pop() as Json | null;
    if (!p || typeof p !== "object") continue;
    if (p.type === "Sequence" && Array.isArray(p.pretokenizers)) stack.push(...p.pretokenizers);
    if (p.type === "Split") {
      const pattern = p.pattern as Json | undefined;
      if (pattern && typeof pattern.Regex === "string") out.push(pattern.Regex);
    }
  }
  return out;
}

/**
 * The `tokenizer.ggml.*` metadata for a tokenizer.json (+ tokenizer_config.json), padded with UNUSED
 * `[PAD{i}]` tokens up to the model's vocabulary size as the converter does.
 */
function tokenizerMetadata(
  tokenizerJson: object,
  tokenizerConfig: object | null | undefined,
  config: LlamaConfig,
): [string, MetadataValue][] {
  const json = tokenizerJson as TokenizerJson;
  const cfg = (tokenizerConfig ?? {}) as Json;
  const kind = detectTokenizerKind(json);
  if (kind === "other") {
    throw new Error("GGUF export: tokenizer.json is neither a Llama-2 (SentencePiece BPE) nor a Llama-3 (byte-level BPE) tokenizer");
  }
  const vocab = json.model?.vocab;
  if (!vocab || typeof vocab !== "object") throw new Error("GGUF export: tokenizer.json has no model.vocab object");
  const rawMerges = json.model?.merges ?? [];
  const merges = rawMerges.map((m, rank) => {
    if (typeof m === "string") return m;
    if (Array.isArray(m) && m.length === 2) return `${m[0]} ${m[1]}`;
    throw new Error(`GGUF export: tokenizer.json merge #${rank} is malformed`);
  });

  // Tokens by id: the model vocabulary plus added tokens (which may extend it).
  const tokens: (string | undefined)[] = [];
  for (const [piece, id] of Object.entries(vocab as Record<string, number>)) tokens[id] = piece;
  const specialIds = new Set<number>();
  const userIds = new Set<number>();
  for (const added of json.added_tokens ?? []) {
    tokens[added.id] = added.content;
    (added.special ? specialIds : userIds).add(added.id);
  }
  if (tokens.length > config.vocabSize) {
    throw new Error(`GGUF export: tokenizer has ${tokens.length} tokens but the model's vocab_size is ${config.vocabSize}`);
  }
  const n = config.vocabSize;
  const idOf = new Map<string, number>();
  tokens.forEach((t, id) => {
    if (t !== undefined) idOf.set(t, id);
  });

  const tokenTypes = new Int32Array(n);
  const tokenStrings: string[] = new Array(n);
  for (let id = 0; id < n; id++) {
    const t = tokens[id];
    if (t === undefined) {
      tokenStrings[id] = `[PAD${id}]`;
      tokenTypes[id] = GgufTokenType.UNUSED;
      continue;
    }
    tokenStrings[id] = t;
    if (specialIds.has(id)) tokenTypes[id] = GgufTokenType.CONTROL;
    else if (userIds.has(id)) tokenTypes[id] = GgufTokenType.USER_DEFINED;
    else if (kind === "llama2-spm-bpe" && /^<0x[0-9A-F]{2}>$/.test(t)) tokenTypes[id] = GgufTokenType.BYTE;
    else tokenTypes[id] = GgufTokenType.NORMAL;
  }

  const lookup = (content: string | null): number | null => (content === null ? null : (idOf.get(content) ?? null));
  const bosId = lookup(specialContent(cfg.bos_token)) ?? config.bosTokenId ?? (kind === "llama2-spm-bpe" ? 1 : null);
  const eosId = lookup(specialContent(cfg.eos_token)) ?? config.eosTokenIds[0] ?? (kind === "llama2-spm-bpe" ? 2 : null);
  const addBos = typeof cfg.add_bos_token === "boolean" ? cfg.add_bos_token : templateAddsLeadingSpecial(json.post_processor);
  const addEos = cfg.add_eos_token === true;

  const out: [string, MetadataValue][] = [];
  if (kind === "llama2-spm-bpe") {
    const unkName = typeof (json.model as Json).unk_token === "string" ? ((json.model as Json).unk_token as string) : "<unk>";
    const unkId = idOf.get(unkName) ?? 0;
    // The unknown token is typed UNKNOWN even though it is also a special added token.
    tokenTypes[unkId] = GgufTokenType.UNKNOWN;
    // llama.cpp's SPM tokenizer merges the adjacent pair whose concatenation has the highest score. Giving
    // each token the negated rank of the first merge that produces it replays HF's BPE merge order; single
    // characters, bytes and specials are never merge results, so 0 is harmless for them.
    const scores = new Float32Array(n);
    const scored = new Uint8Array(n);
    merges.forEach((merge, rank) => {
      const space = merge.indexOf(" ");
      const id = idOf.get(merge.slice(0, space) + merge.slice(space + 1));
      if (id !== undefined && !scored[id]) {
        scored[id] = 1;
        scores[id] = 0 - rank; // not -rank: rank 0 would give -0
      }
    });
    out.push(["tokenizer.ggml.model", { type: "string", value: "llama" }]);
    out.push(["tokenizer.ggml.pre", { type: "string", value: "default" }]);
    out.push(["tokenizer.ggml.tokens", { type: "string[]", value: tokenStrings }]);
    out.push(["tokenizer.ggml.scores", { type: "f32[]", value: scores }]);
    out.push(["tokenizer.ggml.token_type", { type: "i32[]", value: tokenTypes }]);
    out.push(["tokenizer.ggml.unknown_token_id", { type: "u32", value: unkId }]);
  } else {
    // llama.cpp hard-codes the split regex per `pre` name, so only export what it will reproduce.
    const regexes = splitRegexes(json.pre_tokenizer);
    if (regexes.length !== 1 || regexes[0] !== LLAMA3_SPLIT_REGEX) {
      throw new Error("GGUF export: byte-level tokenizer.json does not use the Llama-3 split regex; llama.cpp would tokenize it differently");
    }
    out.push(["tokenizer.ggml.model", { type: "string", value: "gpt2" }]);
    out.push(["tokenizer.ggml.pre", { type: "string", value: "llama-bpe" }]);
    out.push(["tokenizer.ggml.tokens", { type: "string[]", value: tokenStrings }]);
    out.push(["tokenizer.ggml.token_type", { type: "i32[]", value: tokenTypes }]);
    out.push(["tokenizer.ggml.merges", { type: "string[]", value: merges }]);
  }
  if (bosId !== null) out.push(["tokenizer.ggml.bos_token_id", { type: "u32", value: bosId }]);
  if (eosId !== null) out.push(["tokenizer.ggml.eos_token_id", { type: "u32", value: eosId }]);
  out.push(["tokenizer.ggml.add_bos_token", { type: "bool", value: addBos }]);
  out.push(["tokenizer.ggml.add_eos_token", { type: "bool", value: addEos }]);
  return out;
}

// ---------------------------------------------------------------------------------------------------
// Tensor planning and streaming
// ---------------------------------------------------------------------------------------------------

interface PlannedTensor {
  ggufName: string;
  /** Name used in error messages. */
  label: string;
  shape: number[];
  outType: number;
  data: Float32Array | Uint16Array;
  inDtype: "f32" | "bf16" | "f16";
  /** q/k: number of heads for the row permutation; 0 = none. */
  permuteHeads: number;
  offset: number;
  nBytes: number;
}

function checkTensor(t: GgufTensorInput, expected: number[] | undefined): void {
  const name = t.hfName;
  if (!expected) throw new Error(`GGUF export: unexpected tensor ${name} (not a weight of this Llama config)`);
  if (t.shape.length !== expected.length || t.shape.some((d, i) => d !== expected[i])) {
    throw new Error(`GGUF export: tensor ${name} has shape [${t.shape}] but the config expects [${expected}]`);
  }
  const wantArray = t.dtype === "f32" ? Float32Array : Uint16Array;
  if (t.dtype !== "f32" && t.dtype !== "bf16" && t.dtype !== "f16") {
    throw new Error(`GGUF export: tensor ${name} has unsupported dtype ${String(t.dtype)}`);
  }
  if (!(t.data instanceof wantArray)) {
    throw new Error(`GGUF export: tensor ${name} is ${t.dtype} but its data is not a ${wantArray.name}`);
  }
  const count = t.shape.reduce((a, b) => a * b, 1);
  if (t.data.length !== count) {
    throw new Error(`GGUF export: tensor ${name} has ${t.data.length} elements, shape [${t.shape}] needs ${count}`);
  }
}

function planTensors(input: GgufExportInput): PlannedTensor[] {
  const { config } = input;
  const expected = expectedTensorShapes(config);
  const given = new Map<string, GgufTensorInput>();
  for (const t of input.tensors) {
    // Old checkpoints carry RoPE caches; the converter skips them too.
    if (t.hfName.endsWith("rotary_emb.inv_freq")) continue;
    // Tied checkpoints may still store lm_head (a copy of embed_tokens); llama.cpp reuses token_embd.
    if (t.hfName === "lm_head.weight" && config.tieWordEmbeddings) continue;
    if (given.has(t.hfName)) throw new Error(`GGUF export: tensor ${t.hfName} given twice`);
    checkTensor(t, expected.get(t.hfName));
    given.set(t.hfName, t);
  }
  const planned: PlannedTensor[] = [];
  const keepsF32 = (ggufName: string, shape: number[]) => shape.length <= 1 || ggufName.endsWith("_norm.weight");
  if (config.ropeScaling) {
    planned.push({
      ggufName: "rope_freqs.weight",
      label: "rope_freqs.weight",
      shape: [config.headDim / 2],
      outType: GgmlType.F32,
      data: llama3RopeFactors(config),
      inDtype: "f32",
      permuteHeads: 0,
      offset: 0,
      nBytes: 0,
    });
  }
  // Canonical order (embeddings, layers, norm, head) so the file does not depend on the input order.
  for (const hfName of expected.keys()) {
    const t = given.get(hfName);
    if (!t) throw new Error(`GGUF export: missing tensor ${hfName}`);
    const ggufName = ggufTensorName(hfName);
    if (!ggufName) throw new Error(`GGUF export: no GGUF name for tensor ${hfName}`);
    const outType = input.outDtype === "bf16" && !keepsF32(ggufName, t.shape) ? GgmlType.BF16 : GgmlType.F32;
    let permuteHeads = 0;
    if (hfName.endsWith("self_attn.q_proj.weight")) permuteHeads = config.numHeads;
    else if (hfName.endsWith("self_attn.k_proj.weight")) permuteHeads = config.numKvHeads;
    planned.push({ ggufName, label: hfName, shape: t.shape, outType, data: t.data, inDtype: t.dtype, permuteHeads, offset: 0, nBytes: 0 });
  }
  let offset = 0;
  for (const p of planned) {
    const count = p.shape.reduce((a, b) => a * b, 1);
    p.nBytes = count * (p.outType === GgmlType.F32 ? 4 : 2);
    p.offset = offset;
    offset += alignUp(p.nBytes, GGUF_ALIGNMENT);
    if (Buffer.byteLength(p.ggufName) >= 64) throw new Error(`GGUF export: tensor name ${p.ggufName} is 64 bytes or longer`);
  }
  return planned;
}

/** Convert elements `[start, start + n)` of a tensor into `out` (f32 or bf16 bits). */
function convertRange(p: PlannedTensor, start: number, n: number, out: Float32Array | Uint16Array, outStart: number): void {
  const src = p.data;
  if (p.outType === GgmlType.F32) {
    const o = out as Float32Array;
    if (p.inDtype === "f32") o.set((src as Float32Array).subarray(start, start + n), outStart);
    else if (p.inDtype === "bf16") for (let i = 0; i < n; i++) o[outStart + i] = bf16BitsToF32(src[start + i]);
    else for (let i = 0; i < n; i++) o[outStart + i] = f16BitsToF32(src[start + i]);
  } else {
    const o = out as Uint16Array;
    if (p.inDtype === "bf16") o.set((src as Uint16Array).subarray(start, start + n), outStart);
    else if (p.inDtype === "f32") for (let i = 0; i < n; i++) o[outStart + i] = f32ToBf16Bits(src[start + i]);
    else for (let i = 0; i < n; i++) o[outStart + i] = f32ToBf16Bits(f16BitsToF32(src[start + i]));
  }
}

/** Elements per write: 1 Mi elements keeps memory flat while amortising syscalls. */
const CHUNK_ELEMENTS = 1 << 20;

/** Stream one tensor's converted (and, for q/k, row-permuted) bytes in row chunks. */
function writeTensorData(fd: number, p: PlannedTensor, position: number): number {
  const rows = p.shape.length >= 2 ? p.shape[0] : 1;
  const cols = p.shape.length >= 2 ? p.shape.slice(1).reduce((a, b) => a * b, 1) : p.shape[0] ?? 1;
  if (p.permuteHeads && (rows % p.permuteHeads !== 0 || (rows / p.permuteHeads) % 2 !== 0)) {
    throw new Error(`GGUF export: tensor ${p.label} has ${rows} rows, not ${p.permuteHeads} heads of even size`);
  }
  const rowsPerHead = p.permuteHeads ? rows / p.permuteHeads : 0;
  const rowsPerChunk = Math.max(1, Math.floor(CHUNK_ELEMENTS / Math.max(cols, 1)));
  const chunk = p.outType === GgmlType.F32 ? new Float32Array(rowsPerChunk * cols) : new Uint16Array(rowsPerChunk * cols);
  for (let r0 = 0; r0 < rows; r0 += rowsPerChunk) {
    const nRows = Math.min(rowsPerChunk, rows - r0);
    for (let r = 0; r < nRows; r++) {
      const srcRow = rowsPerHead ? qkSourceRow(r0 + r, rowsPerHead) : r0 + r;
      convertRange(p, srcRow * cols, cols, chunk, r * cols);
    }
    const bytes = Buffer.from(chunk.buffer, chunk.byteOffset, nRows * cols * chunk.BYTES_PER_ELEMENT);
    writeFully(fd, bytes, position);
    position += bytes.length;
  }
  return position;
}

function writeFully(fd: number, bytes: Buffer, position: number): void {
  let done = 0;
  while (done < bytes.length) done += writeSync(fd, bytes, done, bytes.length - done, position + done);
}

// ---------------------------------------------------------------------------------------------------
// writeGguf
// ---------------------------------------------------------------------------------------------------

function modelMetadata(input: GgufExportInput, planned: PlannedTensor[]): [string, MetadataValue][] {
  const c = input.config;
  const fileType = planned.some((p) => p.outType === GgmlType.BF16) ? FILE_TYPE_MOSTLY_BF16 : FILE_TYPE_ALL_F32;
  const out: [string, MetadataValue][] = [
    ["general.architecture", { type: "string", value: "llama" }],
    ["general.name", { type: "string", value: input.name }],
    ["general.file_type", { type: "u32", value: fileType }],
    ["llama.vocab_size", { type: "u32", value: c.vocabSize }],
    ["llama.context_length", { type: "u32", value: c.maxPositionEmbeddings }],
    ["llama.embedding_length", { type: "u32", value: c.hiddenSize }],
    ["llama.block_count", { type: "u32", value: c.numLayers }],
    ["llama.feed_forward_length", { type: "u32", value: c.intermediateSize }],
    ["llama.rope.dimension_count", { type: "u32", value: c.headDim }],
    ["llama.attention.head_count", { type: "u32", value: c.numHeads }],
    ["llama.attention.head_count_kv", { type: "u32", value: c.numKvHeads }],
    ["llama.rope.freq_base", { type: "f32", value: c.ropeTheta }],
    ["llama.attention.layer_norm_rms_epsilon", { type: "f32", value: c.rmsNormEps }],
  ];
  // llama.cpp assumes head_dim = d / H unless told otherwise.
  if (c.headDim * c.numHeads !== c.hiddenSize) {
    out.push(["llama.attention.key_length", { type: "u32", value: c.headDim }]);
    out.push(["llama.attention.value_length", { type: "u32", value: c.headDim }]);
  }
  return out;
}

/**
 * Export a Llama model to a GGUF v3 file llama.cpp can load. The file is written to a temporary name
 * next to `path` and renamed into place only when complete, so a crash never leaves a truncated model.
 * Errors name the offending tensor.
 */
export function writeGguf(path: string, input: GgufExportInput): void {
  if (input.outDtype !== "f32" && input.outDtype !== "bf16") throw new Error(`GGUF export: unsupported output dtype ${String(input.outDtype)}`);
  const planned = planTensors(input);
  const metadata = [...modelMetadata(input, planned), ...tokenizerMetadata(input.tokenizer.json, input.tokenizer.config, input.config)];

  const w = new ByteWriter();
  w.u32(GGUF_MAGIC);
  w.u32(GGUF_VERSION);
  w.u64(planned.length);
  w.u64(metadata.length);
  for (const [key, value] of metadata) writeMetadataEntry(w, key, value);
  for (const p of planned) {
    w.string(p.ggufName);
    w.u32(p.shape.length);
    for (let i = p.shape.length - 1; i >= 0; i--) w.u64(p.shape[i]); // ne = reversed shape
    w.u32(p.outType);
    w.u64(p.offset);
  }
  w.zeros(alignUp(w.length, GGUF_ALIGNMENT) - w.length);

  // Temp file in the target's directory so the final rename stays on one file system (atomic).
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`);
  let fd: number | null = openSync(tmp, "wx", 0o644);
  try {
    const header = w.bytes();
    writeFully(fd, header, 0);
    const dataStart = header.length;
    const padding = Buffer.alloc(GGUF_ALIGNMENT);
    for (const p of planned) {
      const end = writeTensorData(fd, p, dataStart + p.offset);
      const pad = alignUp(end - dataStart, GGUF_ALIGNMENT) - (end - dataStart);
      if (pad) writeFully(fd, padding.subarray(0, pad), end);
    }
    fsyncSync(fd);
    closeSync(fd);
    fd = null;
    renameSync(tmp, path);
  } catch (err) {
    if (fd !== null) closeSync(fd);
    try {
      unlinkSync(tmp);
    } catch {
      // already gone
    }
    throw err;
  }
}

// ---------------------------------------------------------------------------------------------------
// readGgufHeader
// ---------------------------------------------------------------------------------------------------

/** Sequential little-endian reader over a file, pulling more bytes as the header needs them. */
class FileReader {
  private buf = Buffer.alloc(0);
  private bufStart = 0;
  pos = 0;
  constructor(
    private readonly fd: number,
    private readonly path: string,
    /** The file's size: no read (or allocation) may reach past it. */
    readonly size: number,
  ) {}

  /** Bytes left after the read position. */
  get remaining(): number {
    return Math.max(0, this.size - this.pos);
  }

  private ensure(n: number): void {
    if (this.pos >= this.bufStart && this.pos + n <= this.bufStart + this.buf.length) return;
    // A length read from the file is checked against the file before anything that size is allocated.
    if (n > this.remaining) throw new Error(`GGUF ${this.path}: truncated header at byte ${this.pos} (needs ${n} bytes, the file has ${this.remaining} more)`);
    const want = Math.min(Math.max(n, 1 << 20), this.remaining);
    const next = Buffer.alloc(want);
    let bytesRead = 0;
    while (bytesRead < want) {
      const got = readSync(this.fd, next, bytesRead, want - bytesRead, this.pos + bytesRead);
      if (got === 0) break;
      bytesRead += got;
    }
    if (bytesRead < n) throw new Error(`GGUF ${this.path}: truncated header at byte ${this.pos}`);
    this.buf = next.subarray(0, bytesRead);
    this.bufStart = this.pos;
  }
  private take(n: number): Buffer {
    this.ensure(n);
    const at = this.pos - this.bufStart;
    this.pos += n;
    return this.buf.subarray(at, at + n);
  }
  u8(): number {
    return this.take(1).readUInt8(0);
  }
  u32(): number {
    return this.take(4).readUInt32LE(0);
  }
  u64(): bigint {
    return this.take(8).readBigUInt64LE(0);
  }
  u64Number(what: string): number {
    const v = this.u64();
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new Error(`GGUF ${this.path}: ${what} ${v} is too large`);
    return Number(v);
  }
  string(): string {
    const n = this.u64Number("string length");
    return this.take(n).toString("utf8");
  }
  value(type: number): unknown {
    switch (type) {
      case GgufValueType.U8:
        return this.take(1).readUInt8(0);
      case GgufValueType.I8:
        return this.take(1).readInt8(0);
      case GgufValueType.U16:
        return this.take(2).readUInt16LE(0);
      case GgufValueType.I16:
        return this.take(2).readInt16LE(0);
      case GgufValueType.U32:
        return this.take(4).readUInt32LE(0);
      case GgufValueType.I32:
        return this.take(4).readInt32LE(0);
      case GgufValueType.F32:
        return this.take(4).readFloatLE(0);
      case GgufValueType.BOOL:
        return this.take(1).readUInt8(0) !== 0;
      case GgufValueType.STRING:
        return this.string();
      case GgufValueType.U64:
        return this.take(8).readBigUInt64LE(0);
      case GgufValueType.I64:
        return this.take(8).readBigInt64LE(0);
      case GgufValueType.F64:
        return this.take(8).readDoubleLE(0);
      default:
        throw new Error(`GGUF ${this.path}: unknown value type ${type} at byte ${this.pos - 4}`);
    }
  }
}

/** Read a GGUF file's metadata and tensor infos (not the tensor data). */
export function readGgufHeader(path: string): GgufHeader {
  const fd = openSync(path, "r");
  try {
    const r = new FileReader(fd, path, fstatSync(fd).size);
    const magic = r.u32();
    if (magic !== GGUF_MAGIC) throw new Error(`GGUF ${path}: bad magic 0x${magic.toString(16)}`);
    const version = r.u32();
    if (version !== GGUF_VERSION) throw new Error(`GGUF ${path}: unsupported version ${version}`);
    const tensorCount = r.u64Number("tensor count");
    const kvCount = r.u64Number("metadata count");
    const metadata = new Map<string, GgufMetadataEntry>();
    for (let k = 0; k < kvCount; k++) {
      const key = r.string();
      const type = r.u32() as GgufValueType;
      if (type === GgufValueType.ARRAY) {
        const itemType = r.u32() as GgufValueType;
        const n = r.u64Number(`array length of ${key}`);
        // Every item takes at least one byte: a longer array than the rest of the file is a bad length.
        if (n > r.remaining) throw new Error(`GGUF ${path}: array ${key} claims ${n} items but only ${r.remaining} bytes follow`);
        const items: unknown[] = new Array(n);
        for (let i = 0; i < n; i++) items[i] = r.value(itemType);
        metadata.set(key, { type, itemType, value: items });
      } else {
        metadata.set(key, { type, value: r.value(type) });
      }
    }
    const tensors: GgufTensorInfo[] = [];
    for (let t = 0; t < tensorCount; t++) {
      const name = r.string();
      const nDims = r.u32();
      if (nDims > 4) throw new Error(`GGUF ${path}: tensor ${name} has ${nDims} dimensions`);
      const ne: number[] = [];
      for (let i = 0; i < nDims; i++) ne.push(r.u64Number(`dimension of ${name}`));
      const type = r.u32();
      const offset = r.u64Number(`offset of ${name}`);
      tensors.push({ name, ne, type, offset });
    }
    const alignmentEntry = metadata.get("general.alignment");
    const alignment = alignmentEntry ? Number(alignmentEntry.value) : GGUF_ALIGNMENT;
    if (!Number.isSafeInteger(alignment) || alignment < 1 || alignment > 1 << 30) {
      throw new Error(`GGUF ${path}: general.alignment must be a positive integer, got ${String(alignmentEntry?.value)}`);
    }
    return { version, metadata, tensors, alignment, dataOffset: alignUp(r.pos, alignment) };
  } finally {
    closeSync(fd);
  }
}
