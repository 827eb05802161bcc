/**
 * safetensors reading (memory-mapped, validated) and writing (reference layout, atomic, streamed).
 *
 * File layout (REFERENCE §1): 8-byte little-endian header length N, N bytes of UTF-8 JSON, then the data
 * buffer that every `data_offsets` is relative to. Reading maps the whole file once through the native
 * addon and hands out typed-array views into the mapping, so a multi-GB checkpoint is never copied into
 * the JS heap. Every header is validated the way the reference reader does before any view is made, and
 * every failure is a one-line `SafetensorsError` naming the file and, where there is one, the tensor.
 */
import { existsSync, readFileSync, statSync, unlinkSync } from "node:fs";
import { endianness } from "node:os";
import { join } from "node:path";
import { loadNative } from "../engine/native.js";
import type { DType } from "../engine/backend.js";
import { describeJson, isPlainObject, parseJsonObject } from "./strict-json.js";
import { writeFileAtomic, type AtomicSink } from "./atomic-write.js";

/** Element width in bits of every dtype the format defines. */
export const SAFETENSORS_DTYPE_BITS = {
  BOOL: 8,
  U8: 8,
  I8: 8,
  F8_E5M2: 8,
  F8_E4M3: 8,
  F8_E8M0: 8,
  I16: 16,
  U16: 16,
  F16: 16,
  BF16: 16,
  I32: 32,
  U32: 32,
  F32: 32,
  I64: 64,
  U64: 64,
  F64: 64,
  C64: 64,
  F4: 4,
  F6_E2M3: 6,
  F6_E3M2: 6,
} as const;

/** A dtype string as it appears in a safetensors header. */
export type SafetensorsDType = keyof typeof SAFETENSORS_DTYPE_BITS;

/** The float dtypes the engine computes with. */
export type FloatDType = Exclude<DType, "i32">;

/** safetensors dtype → engine dtype, for the dtypes that can be read as compute tensors. */
const FLOAT_DTYPES: Partial<Record<SafetensorsDType, FloatDType>> = { F32: "f32", BF16: "bf16", F16: "f16" };

/** The reference reader's cap on the header length. */
const MAX_HEADER_BYTES = 100_000_000;

export const SINGLE_FILE_NAME = "model.safetensors";
export const INDEX_FILE_NAME = "model.safetensors.index.json";

/** Where one tensor lives in its file. */
export interface TensorInfo {
  dtype: SafetensorsDType;
  shape: number[];
  /** Offset of the first byte from the start of the file (not of the data buffer). */
  byteOffset: number;
  byteLength: number;
}

/** A float tensor ready for the engine: bf16/f16 are carried as raw 16-bit patterns. */
export interface FloatTensor {
  dtype: FloatDType;
  shape: number[];
  data: Float32Array | Uint16Array;
}

/** Lookup by tensor name, the same for one file and for a sharded checkpoint. */
export interface TensorSource {
  /** Tensor names, in file order (shard by shard for a sharded checkpoint). */
  names(): string[];
  has(name: string): boolean;
  info(name: string): TensorInfo;
  /**
   * An F32/BF16/F16 tensor as a view into the mapping (a copy only when the file places it at an offset
   * that is not a multiple of its element size). Other dtypes throw. The view is writable but writes go
   * to a private copy-on-write page, never to the file.
   */
  tensor(name: string): FloatTensor;
  /** The tensor's raw little-endian bytes, always a view into the mapping. */
  bytes(name: string): Uint8Array;
  /** Path of the file that holds the tensor (for error messages). */
  fileOf(name: string): string;
}

/** One opened .safetensors file. */
export interface SafetensorsFile extends TensorSource {
  path: string;
  /** The header's `__metadata__` (empty when absent). */
  metadata: Record<string, string>;
}

/** A model directory: one `model.safetensors` or shards listed by `model.safetensors.index.json`. */
export interface Checkpoint extends TensorSource {
  dir: string;
  /** Unsharded: the file's `__metadata__`; sharded: the index's `metadata` object. */
  metadata: Record<string, unknown>;
  /** The files opened (one, or every shard). */
  files: SafetensorsFile[];
}

/** One-line error naming the file and, where relevant, the tensor. */
export class SafetensorsError extends Error {
  constructor(
    readonly file: string,
    readonly tensorName: string | undefined,
    detail: string,
  ) {
    super(oneLine(`${file}: ${tensorName === undefined ? "" : `tensor ${JSON.stringify(tensorName)}: `}${detail}`));
    this.name = "SafetensorsError";
  }
}

// ---------------------------------------------------------------------------------------------------------
// Reading

/**
 * Map `path` and validate its header (REFERENCE §1 rules 1–7). Throws a `SafetensorsError` for anything
 * the reference reader would reject.
 */
export function openSafetensors(path: string): SafetensorsFile {
  if (endianness() !== "LE") {
    throw new SafetensorsError(path, undefined, "safetensors data is little-endian; this host is big-endian");
  }
  let buffer: ArrayBuffer;
  try {
    buffer = loadNative().mapFile(path);
  } catch (error) {
    // The addon's message already starts with the path.
    throw new Error(oneLine(errorMessage(error)), { cause: error });
  }
  const { metadata, entries } = parseHeader(path, buffer);
  const lookup = (name: string): TensorInfo => {
    const info = entries.get(name);
    if (!info) throw new SafetensorsError(path, name, "no such tensor in this file");
    return info;
  };
  return {
    path,
    metadata,
    names: () => [...entries.keys()],
    has: (name) => entries.has(name),
    info: (name) => cloneInfo(lookup(name)),
    tensor: (name) => floatTensor(path, name, buffer, lookup(name)),
    bytes: (name) => {
      const info = lookup(name);
      return new Uint8Array(buffer, info.byteOffset, info.byteLength);
    },
    fileOf: (name) => {
      lookup(name);
      return path;
    },
  };
}

/**
 * Open a model directory: `model.safetensors` when present (as transformers prefers it), else the shards
 * named by `model.safetensors.index.json`. `dir` may also be the path of a single .safetensors file.
 */
export function openCheckpoint(dir: string): Checkpoint {
  if (existsSync(dir) && statSync(dir).isFile()) return singleFileCheckpoint(dir, openSafetensors(dir));
  const singlePath = join(dir, SINGLE_FILE_NAME);
  if (existsSync(singlePath)) return singleFileCheckpoint(dir, openSafetensors(singlePath));
  const indexPath = join(dir, INDEX_FILE_NAME);
  if (existsSync(indexPath)) return openShardedCheckpoint(dir, indexPath);
  throw new SafetensorsError(dir, undefined, `no ${SINGLE_FILE_NAME} or ${INDEX_FILE_NAME} in this directory`);
}

function singleFileCheckpoint(dir: string, file: SafetensorsFile): Checkpoint {
  return { ...file, dir, metadata: { ...file.metadata }, files: [file] };
}

function openShardedCheckpoint(dir: string, indexPath: string): Checkpoint {
  const weightMap = readIndex(indexPath);
  const fail = (tensorName: string | undefined, detail: string): never => {
    throw new SafetensorsError(indexPath, tensorName, detail);
  };

  // Open each distinct shard once, in the order the index first names it.
  const shards = new Map<string, SafetensorsFile>();
  for (const [name, shardName] of weightMap.entries) {
    if (shards.has(shardName)) continue;
    const shardPath = join(dir, shardName);
    if (!existsSync(shardPath)) fail(name, `shard ${JSON.stringify(shardName)} does not exist`);
    shards.set(shardName, openSafetensors(shardPath));
  }

  // No tensor may be stored twice: which copy we read would otherwise depend on the order we looked.
  const storedIn = new Map<string, string>();
  for (const [shardName, shard] of shards) {
    for (const name of shard.names()) {
      const other = storedIn.get(name);
      if (other !== undefined) fail(name, `stored in both shard ${JSON.stringify(other)} and ${JSON.stringify(shardName)}`);
      storedIn.set(name, shardName);
    }
  }

  const owner = new Map<string, SafetensorsFile>();
  for (const [name, shardName] of weightMap.entries) {
    const shard = shards.get(shardName) as SafetensorsFile;
    if (!shard.has(name)) fail(name, `weight_map puts it in shard ${JSON.stringify(shardName)}, which has no such tensor`);
    owner.set(name, shard);
  }
  // Tensors a shard holds but the weight_map does not list are ignored, as transformers ignores them.

  const lookup = (name: string): SafetensorsFile => {
    const shard = owner.get(name);
    if (!shard) throw new SafetensorsError(indexPath, name, "no such tensor in this checkpoint");
    return shard;
  };
  return {
    dir,
    metadata: weightMap.metadata,
    files: [...shards.values()],
    names: () => [...owner.keys()],
    has: (name) => owner.has(name),
    info: (name) => lookup(name).info(name),
    tensor: (name) => lookup(name).tensor(name),
    bytes: (name) => lookup(name).bytes(name),
    fileOf: (name) => lookup(name).path,
  };
}

interface ParsedIndex {
  metadata: Record<string, unknown>;
  /** [tensor name, shard file name], in index order. */
  entries: Array<[string, string]>;
}

function readIndex(indexPath: string): ParsedIndex {
  const fail = (tensorName: string | undefined, detail: string): never => {
    throw new SafetensorsError(indexPath, tensorName, detail);
  };
  let text = "";
  try {
    text = readFileSync(indexPath, "utf8");
  } catch (error) {
    fail(undefined, `cannot read: ${errorMessage(error)}`);
  }
  const parsed = parseJsonObject(text, (detail) => fail(undefined, detail));
  const weightMap = parsed.weight_map;
  if (!isPlainObject(weightMap)) fail(undefined, `"weight_map" must be an object, found ${describeJson(weightMap)}`);
  const map = weightMap as Record<string, unknown>;
  if (parsed.metadata !== undefined && parsed.metadata !== null && !isPlainObject(parsed.metadata)) {
    fail(undefined, `"metadata" must be an object, found ${describeJson(parsed.metadata)}`);
  }
  const entries: Array<[string, string]> = [];
  for (const [name, shardName] of Object.entries(map)) {
    if (typeof shardName !== "string") fail(name, `weight_map value must be a file name, found ${describeJson(shardName)}`);
    const file = shardName as string;
    // Shards must sit next to the index: a crafted index must not make us open files elsewhere.
    if (file === "" || file.includes("/") || file.includes("\\") || file.includes("..") || file.includes("\0")) {
      fail(name, `weight_map file ${JSON.stringify(file)} must be a bare file name in the same directory`);
    }
    entries.push([name, file]);
  }
  if (entries.length === 0) fail(undefined, `"weight_map" lists no tensors`);
  return { metadata: (parsed.metadata as Record<string, unknown> | undefined | null) ?? {}, entries };
}

/** Validate the header of a mapped file and compute each tensor's absolute location. */
function parseHeader(
  path: string,
  buffer: ArrayBuffer,
): { metadata: Record<string, string>; entries: Map<string, TensorInfo> } {
  const fail = (tensorName: string | undefined, detail: string): never => {
    throw new SafetensorsError(path, tensorName, detail);
  };
  const fileSize = buffer.byteLength;
  // Rule 1: the length prefix, checked in BigInt so a huge u64 cannot wrap or lose precision.
  if (fileSize < 8) fail(undefined, `file is ${fileSize} bytes, too short for the 8-byte header length`);
  const headerLength = new DataView(buffer).getBigUint64(0, true);
  if (headerLength > BigInt(MAX_HEADER_BYTES)) {
    fail(undefined, `header length ${headerLength} exceeds the ${MAX_HEADER_BYTES}-byte limit`);
  }
  if (8n + headerLength > BigInt(fileSize)) {
    fail(undefined, `header length ${headerLength} runs past the end of the file (${fileSize} bytes; truncated?)`);
  }
  const headerBytes = Number(headerLength);

  // Rule 2: UTF-8 JSON object without duplicate keys.
  let text = "";
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(new Uint8Array(buffer, 8, headerBytes));
  } catch {
    fail(undefined, "header is not valid UTF-8");
  }
  const header = parseJsonObject(text, (detail) => fail(undefined, `header ${detail}`));

  // Rule 3: metadata maps strings to strings.
  const metadata: Record<string, string> = {};
  const rawMetadata = header.__metadata__;
  if (rawMetadata !== undefined && rawMetadata !== null) {
    if (!isPlainObject(rawMetadata)) fail(undefined, `"__metadata__" must be an object, found ${describeJson(rawMetadata)}`);
    for (const [key, value] of Object.entries(rawMetadata as Record<string, unknown>)) {
      if (typeof value !== "string") {
        fail(undefined, `"__metadata__" value for ${JSON.stringify(key)} must be a string, found ${describeJson(value)}`);
      }
      Object.defineProperty(metadata, key, { value, enumerable: true, writable: true, configurable: true });
    }
  }

  // Rules 4 and 6: each entry on its own.
  const dataStart = 8 + headerBytes;
  const dataLength = fileSize - dataStart;
  const located: Array<{ name: string; begin: number; end: number; info: TensorInfo }> = [];
  for (const [name, entry] of Object.entries(header)) {
    if (name === "__metadata__") continue;
    const tensorFail = (detail: string): never => fail(name, detail);
    if (!isPlainObject(entry)) tensorFail(`entry must be an object, found ${describeJson(entry)}`);
    const { dtype, shape, data_offsets: offsets } = entry as Record<string, unknown>;
    if (typeof dtype !== "string" || !Object.hasOwn(SAFETENSORS_DTYPE_BITS, dtype)) {
      tensorFail(`unknown dtype ${describeJson(dtype)}`);
    }
    const knownDtype = dtype as SafetensorsDType;
    if (!Array.isArray(shape) || !shape.every(isNonNegativeSafeInteger)) {
      tensorFail(`shape ${describeJson(shape)} must be an array of non-negative integers`);
    }
    const dims = shape as number[];
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isNonNegativeSafeInteger)) {
      tensorFail(`data_offsets ${describeJson(offsets)} must be two non-negative integers`);
    }
    const [begin, end] = offsets as [number, number];
    if (end < begin) tensorFail(`data_offsets [${begin}, ${end}] end before they begin`);
    const needed = byteSize(knownDtype, dims, tensorFail);
    if (BigInt(end - begin) !== needed) {
      tensorFail(`data_offsets [${begin}, ${end}] hold ${end - begin} bytes but ${knownDtype} ${shapeText(dims)} needs ${needed}`);
    }
    located.push({
      name,
      begin,
      end,
      info: { dtype: knownDtype, shape: [...dims], byteOffset: dataStart + begin, byteLength: end - begin },
    });
  }

  // Rules 5 and 7: sorted by begin, the tensors tile the data buffer exactly.
  located.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let previous: (typeof located)[number] | undefined;
  let covered = 0;
  for (const tensor of located) {
    const span = `data_offsets [${tensor.begin}, ${tensor.end}]`;
    if (tensor.begin < covered) {
      fail(tensor.name, `${span} overlap tensor ${JSON.stringify(previous?.name)} [${previous?.begin}, ${previous?.end}]`);
    }
    if (tensor.begin > covered) {
      const where = previous
        ? `after tensor ${JSON.stringify(previous.name)} [${previous.begin}, ${previous.end}]`
        : "at the start of the data buffer";
      fail(tensor.name, `${span} leave a gap of ${tensor.begin - covered} bytes ${where}`);
    }
    if (tensor.end > dataLength) {
      fail(tensor.name, `${span} run past the end of the data buffer (${dataLength} bytes; file truncated?)`);
    }
    covered = tensor.end;
    previous = tensor;
  }
  if (covered !== dataLength) {
    fail(undefined, `${dataLength - covered} trailing bytes after the last tensor (data ends at byte ${dataStart + covered}, file is ${fileSize} bytes)`);
  }

  const entries = new Map<string, TensorInfo>();
  for (const tensor of located) entries.set(tensor.name, tensor.info);
  return { metadata, entries };
}

/** numel × bits / 8 in BigInt (no overflow), failing when the bits do not make whole bytes. */
function byteSize(dtype: SafetensorsDType, shape: readonly number[], fail: (detail: string) => never): bigint {
  let bits = BigInt(SAFETENSORS_DTYPE_BITS[dtype]);
  for (const dim of shape) bits *= BigInt(dim);
  if (bits % 8n !== 0n) fail(`${dtype} ${shapeText(shape)} is ${bits} bits, not a whole number of bytes`);
  return bits / 8n;
}

function floatTensor(path: string, name: string, buffer: ArrayBuffer, info: TensorInfo): FloatTensor {
  const dtype = FLOAT_DTYPES[info.dtype];
  if (dtype === undefined) {
    throw new SafetensorsError(path, name, `dtype ${info.dtype} cannot be read as a compute tensor (supported: F32, BF16, F16)`);
  }
  const elementBytes = dtype === "f32" ? 4 : 2;
  const count = info.byteLength / elementBytes;
  let source = buffer;
  let offset = info.byteOffset;
  if (offset % elementBytes !== 0) {
    // Typed arrays must be aligned to their element size; files from some writers are not, so copy.
    source = new Uint8Array(buffer, offset, info.byteLength).slice().buffer;
    offset = 0;
  }
  const data = dtype === "f32" ? new Float32Array(source, offset, count) : new Uint16Array(source, offset, count);
  return { dtype, shape: [...info.shape], data };
}

function cloneInfo(info: TensorInfo): TensorInfo {
  return { ...info, shape: [...info.shape] };
}

// ---------------------------------------------------------------------------------------------------------
// Writing

/** One tensor to write; `data` holds exactly numel × bits / 8 little-endian bytes. */
export interface SafetensorsInput {
  name: string;
  dtype: SafetensorsDType;
  shape: readonly number[];
  data: ArrayBufferView;
}

export interface WriteProgressOptions {
  /** Called after each tensor's bytes are written; throwing aborts the write (nothing is left behind). */
  onProgress?: (bytesWritten: number, totalBytes: number) => void;
}

/**
 * Write a .safetensors file in the reference writer's layout: tensors sorted by dtype size (largest first)
 * then by name, packed back to back; header padded with spaces to a multiple of 8 (so every tensor is
 * aligned to its element size). `format: "pt"` is always present in the metadata. The file appears
 * atomically (temp file + fsync + rename) and each tensor is streamed from its own buffer.
 */
export function writeSafetensors(
  path: string,
  tensors: readonly SafetensorsInput[],
  metadata: Record<string, string> = { format: "pt" },
  options: WriteProgressOptions = {},
): void {
  const fail = (tensorName: string | undefined, detail: string): never => {
    throw new SafetensorsError(path, tensorName, detail);
  };
  for (const [key, value] of Object.entries(metadata)) {
    if (typeof value !== "string") fail(undefined, `metadata value for ${JSON.stringify(key)} must be a string`);
  }
  const checked = tensors.map((tensor) => checkInput(tensor, fail));
  const names = new Set<string>();
  for (const { name } of checked) {
    if (names.has(name)) fail(name, "given twice");
    names.add(name);
  }

  const ordered = [...checked].sort(
    (a, b) => SAFETENSORS_DTYPE_BITS[b.dtype] - SAFETENSORS_DTYPE_BITS[a.dtype] || compareUtf8(a.name, b.name),
  );
  const header = encodeHeader(ordered, { format: "pt", ...metadata });
  const totalBytes = header.byteLength + ordered.reduce((sum, t) => sum + t.bytes.byteLength, 0);

  writeFileAtomic(path, (sink: AtomicSink) => {
    sink.write(header);
    for (const tensor of ordered) {
      sink.write(tensor.bytes);
      options.onProgress?.(sink.position, totalBytes);
    }
  });
}

interface CheckedInput {
  name: string;
  dtype: SafetensorsDType;
  shape: number[];
  bytes: Uint8Array;
}

function checkInput(tensor: SafetensorsInput, fail: (tensorName: string | undefined, detail: string) => never): CheckedInput {
  const { name, dtype, shape, data } = tensor;
  if (typeof name !== "string" || name === "" || name === "__metadata__") {
    fail(undefined, `tensor name ${describeJson(name)} is not allowed`);
  }
  if (typeof dtype !== "string" || !Object.hasOwn(SAFETENSORS_DTYPE_BITS, dtype)) fail(name, `unknown dtype ${describeJson(dtype)}`);
  if (!Array.isArray(shape) || !shape.every(isNonNegativeSafeInteger)) {
    fail(name, `shape ${describeJson(shape)} must be an array of non-negative integers`);
  }
  if (!ArrayBuffer.isView(data)) fail(name, "data must be a typed array or DataView");
  const needed = byteSize(dtype, shape, (detail) => fail(name, detail));
  if (BigInt(data.byteLength) !== needed) {
    fail(name, `data holds ${data.byteLength} bytes but ${dtype} ${shapeText(shape)} needs ${needed}`);
  }
  return { name, dtype, shape: [...shape], bytes: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };
}

/** Length prefix + JSON header padded with spaces to a multiple of 8. */
function encodeHeader(ordered: readonly CheckedInput[], metadata: Record<string, string>): Uint8Array {
  // Built by hand rather than from an object literal so that a tensor called "__proto__" stays a tensor.
  const parts = [`"__metadata__":{${Object.entries(metadata).map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v)}`).join(",")}}`];
  let offset = 0;
  for (const tensor of ordered) {
    const end = offset + tensor.bytes.byteLength;
    parts.push(`${JSON.stringify(tensor.name)}:${JSON.stringify({ dtype: tensor.dtype, shape: tensor.shape, data_offsets: [offset, end] })}`);
    offset = end;
  }
  const json = Buffer.from(`{${parts.join(",")}}`, "utf8");
  const padded = Math.ceil(json.byteLength / 8) * 8;
  const out = new Uint8Array(8 + padded).fill(0x20, 8);
  new DataView(out.buffer).setBigUint64(0, BigInt(padded), true);
  out.set(json, 8);
  return out;
}

/** Rust compares names as UTF-8 bytes; JS `<` compares UTF-16 units, which differs above U+FFFF. */
function compareUtf8(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, "utf8"), Buffer.from(b, "utf8"));
}

export interface CheckpointWriteOptions extends WriteProgressOptions {
  /**
   * Largest shard in bytes of tensor data. When everything fits in one shard (or this is absent) the
   * checkpoint is a single `model.safetensors`; otherwise `model-0000i-of-0000n.safetensors` shards plus
   * `model.safetensors.index.json`. A tensor larger than this gets a shard to itself.
   */
  maxShardBytes?: number;
  metadata?: Record<string, string>;
}

/**
 * Write a model directory's weights the way transformers `save_pretrained` does (single file, or shards
 * filled in the given tensor order plus an index). Each file is written atomically, the index last; a
 * stale single file / index of the other layout is removed afterwards so `openCheckpoint` sees the new
 * one. Returns the paths written.
 */
export function writeCheckpoint(
  dir: string,
  tensors: readonly SafetensorsInput[],
  options: CheckpointWriteOptions = {},
): string[] {
  const { maxShardBytes = Infinity, metadata = { format: "pt" } } = options;
  if (!(maxShardBytes > 0)) throw new SafetensorsError(dir, undefined, `maxShardBytes ${maxShardBytes} must be positive`);
  const seen = new Set<string>();
  for (const { name } of tensors) {
    if (seen.has(name)) throw new SafetensorsError(dir, name, "given twice");
    seen.add(name);
  }

  const shards: SafetensorsInput[][] = [];
  let current: SafetensorsInput[] = [];
  let currentBytes = 0;
  for (const tensor of tensors) {
    const size = tensor.data?.byteLength ?? 0;
    if (current.length > 0 && currentBytes + size > maxShardBytes) {
      shards.push(current);
      current = [];
      currentBytes = 0;
    }
    current.push(tensor);
    currentBytes += size;
  }
  shards.push(current);

  const singlePath = join(dir, SINGLE_FILE_NAME);
  const indexPath = join(dir, INDEX_FILE_NAME);
  if (shards.length === 1) {
    writeSafetensors(singlePath, tensors, metadata, options);
    removeIfPresent(indexPath);
    return [singlePath];
  }

  const written: string[] = [];
  const weightMap: Array<[string, string]> = [];
  let totalSize = 0;
  shards.forEach((shard, index) => {
    const file = `model-${pad5(index + 1)}-of-${pad5(shards.length)}.safetensors`;
    const path = join(dir, file);
    writeSafetensors(path, shard, metadata, options);
    written.push(path);
    for (const tensor of shard) {
      weightMap.push([tensor.name, file]);
      totalSize += tensor.data.byteLength;
    }
  });
  weightMap.sort((a, b) => compareUtf8(a[0], b[0]));
  const index = { metadata: { total_size: totalSize }, weight_map: Object.fromEntries(weightMap) };
  const indexBytes = Buffer.from(JSON.stringify(index, null, 2) + "\n", "utf8");
  writeFileAtomic(indexPath, (sink) => sink.write(indexBytes));
  removeIfPresent(singlePath);
  return [...written, indexPath];
}

function pad5(n: number): string {
  return String(n).padStart(5, "0");
}

function removeIfPresent(path: string): void {
  try {
    unlinkSync(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") {
      throw new Error(oneLine(`${path}: cannot remove stale file: ${errorMessage(error)}`), { cause: error });
    }
  }
}

// ---------------------------------------------------------------------------------------------------------
// Helpers shared by reading and writing

function isNonNegativeSafeInteger(value: unknown): boolean {
  return Number.isSafeInteger(value) && (value as number) >= 0;
}

function shapeText(shape: readonly number[]): string {
  return `[${shape.join(", ")}]`;
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Messages stay on one line even when they quote user data (a JSON.parse excerpt may hold newlines). */
function oneLine(text: string): string {
  const flat = text.replace(/\s*[\r\n]+\s*/g, " ");
  return flat.length > 500 ? `${flat.slice(0, 497)}...` : flat;
}

