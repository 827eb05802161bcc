/**
 * GGUF export: the q/k permutation against its definition, header round trip (types, ne order, aligned
 * offsets), tied embeddings, bf16 conversion, llama3 extras, errors that name the tensor — and llama.cpp
 * itself loading our file and tokenizing a multi-kilobyte text exactly as our tokenizer does (which proves
 * the tokenizer metadata and SentencePiece scores).
 */
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { llamaCppUnavailableReason } from "../bench/peers/llama-cpp.js";
import { expectedTensorShapes, type LlamaConfig } from "../src/io/llama-config.js";
import {
  GgmlType,
  GgufValueType,
  llama3RopeFactors,
  permuteQkRows,
  readGgufHeader,
  writeGguf,
  type GgufExportInput,
  type GgufHeader,
  type GgufTensorInput,
} from "../src/io/gguf.js";
import { bf16BitsToF32, f16BitsToF32, f32ToBf16Bits } from "../src/io/dtype.js";
import { buildLlama2TokenizerConfig, buildLlama2TokenizerJson } from "../src/text/llama2-tokenizer.js";
import { Tokenizer } from "../src/text/tokenizer.js";
import { MIXED_TEXT, buildLlama3StyleTokenizerJson } from "./fixtures/tokenizer-fixtures.js";

const workDir = mkdtempSync(join(tmpdir(), "labor-llm-gguf-"));
afterAll(() => rmSync(workDir, { recursive: true, force: true }));

/** Deterministic PRNG (mulberry32) so failures reproduce. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function tinyConfig(overrides: Partial<LlamaConfig> = {}): LlamaConfig {
  return {
    hiddenSize: 64,
    intermediateSize: 128,
    numLayers: 2,
    numHeads: 4,
    numKvHeads: 2,
    headDim: 16,
    vocabSize: 32000,
    maxPositionEmbeddings: 4096,
    rmsNormEps: 1e-5,
    ropeTheta: 10000,
    ropeScaling: null,
    tieWordEmbeddings: false,
    bosTokenId: 1,
    eosTokenIds: [2],
    torchDtype: "float32",
    ...overrides,
  };
}

/** Random f32 weights for every tensor of `config` (norms near 1, matrices small). */
function randomTensors(config: LlamaConfig, seed = 1): GgufTensorInput[] {
  const rand = prng(seed);
  return [...expectedTensorShapes(config)].map(([hfName, shape]) => {
    const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
    const isNorm = shape.length === 1;
    for (let i = 0; i < data.length; i++) data[i] = isNorm ? 1 + 0.1 * (rand() - 0.5) : 0.04 * (rand() - 0.5);
    return { hfName, dtype: "f32", shape, data };
  });
}

const llama2TokenizerJson = buildLlama2TokenizerJson();
const llama2TokenizerConfig = buildLlama2TokenizerConfig();

function exportInput(config: LlamaConfig, overrides: Partial<GgufExportInput> = {}): GgufExportInput {
  return {
    config,
    name: "tiny-test",
    tensors: randomTensors(config),
    outDtype: "f32",
    tokenizer: { json: llama2TokenizerJson, config: llama2TokenizerConfig },
    ...overrides,
  };
}

function tensorBytes(path: string, header: GgufHeader, name: string): Buffer {
  const info = header.tensors.find((t) => t.name === name);
  if (!info) throw new Error(`no tensor ${name}`);
  const size = info.ne.reduce((a, b) => a * b, 1) * (info.type === GgmlType.F32 ? 4 : 2);
  return readFileSync(path).subarray(header.dataOffset + info.offset, header.dataOffset + info.offset + size);
}

function asF32(bytes: Buffer): Float32Array {
  return new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length));
}

describe("permuteQkRows", () => {
  it("per head, output row 2i+j takes input row j·hd/2 + i", () => {
    const rand = prng(3);
    for (const [heads, hd, cols] of [
      [4, 16, 8],
      [2, 8, 3],
      [1, 2, 5],
    ]) {
      const rows = heads * hd;
      const data = Float32Array.from({ length: rows * cols }, () => rand());
      const out = permuteQkRows(data, rows, cols, heads);
      for (let h = 0; h < heads; h++)
        for (let i = 0; i < hd / 2; i++)
          for (let j = 0; j < 2; j++)
            for (let c = 0; c < cols; c++) {
              expect(out[(h * hd + 2 * i + j) * cols + c]).toBe(data[(h * hd + j * (hd / 2) + i) * cols + c]);
            }
      expect(out).not.toBe(data);
    }
  });

  it("keeps the element type and rejects odd head sizes", () => {
    const u16 = Uint16Array.from({ length: 8 * 2 }, (_, i) => i);
    expect(permuteQkRows(u16, 8, 2, 2)).toBeInstanceOf(Uint16Array);
    expect(() => permuteQkRows(new Float32Array(6 * 2), 6, 2, 2)).toThrow(/heads of even size/);
  });
});

describe("dtype conversion", () => {
  it("f32 → bf16 rounds to nearest even and keeps NaN/Inf", () => {
    expect(f32ToBf16Bits(1)).toBe(0x3f80);
    expect(f32ToBf16Bits(1 + 2 ** -8)).toBe(0x3f80); // exactly halfway, tie to even (down)
    expect(f32ToBf16Bits(1 + 3 * 2 ** -8)).toBe(0x3f82); // halfway, tie to even (up)
    expect(f32ToBf16Bits(1 + 2 ** -8 + 2 ** -20)).toBe(0x3f81); // above halfway rounds up
    expect(f32ToBf16Bits(-2)).toBe(0xc000);
    expect(f32ToBf16Bits(Infinity)).toBe(0x7f80);
    expect(Number.isNaN(bf16BitsToF32(f32ToBf16Bits(NaN)))).toBe(true);
    expect(bf16BitsToF32(0x3f82)).toBe(1.015625);
    expect(f16BitsToF32(0x3c00)).toBe(1);
    expect(f16BitsToF32(0xc000)).toBe(-2);
    expect(f16BitsToF32(0x0001)).toBe(2 ** -24);
  });
});

describe("writeGguf / readGgufHeader", () => {
  const config = tinyConfig();
  const input = exportInput(config);
  const path = join(workDir, "tiny-f32.gguf");
  writeGguf(path, input);
  const header = readGgufHeader(path);

  it("writes llama keys with the types llama.cpp requires", () => {
    const md = header.metadata;
    const typeOf = (key: string) => md.get(key)?.type;
    expect(header.version).toBe(3);
    expect(md.get("general.architecture")?.value).toBe("llama");
    expect(md.get("general.name")?.value).toBe("tiny-test");
    expect(md.get("general.file_type")).toEqual({ type: GgufValueType.U32, value: 0 });
    for (const key of [
      "llama.context_length",
      "llama.embedding_length",
      "llama.block_count",
      "llama.feed_forward_length",
      "llama.attention.head_count",
      "llama.attention.head_count_kv",
      "llama.rope.dimension_count",
      "llama.vocab_size",
    ]) {
      expect(typeOf(key), key).toBe(GgufValueType.U32);
    }
    expect(md.get("llama.embedding_length")?.value).toBe(64);
    expect(md.get("llama.attention.head_count_kv")?.value).toBe(2);
    expect(md.get("llama.rope.dimension_count")?.value).toBe(16);
    expect(md.get("llama.attention.layer_norm_rms_epsilon")?.type).toBe(GgufValueType.F32);
    expect(md.get("llama.attention.layer_norm_rms_epsilon")?.value).toBeCloseTo(1e-5, 10);
    expect(md.get("llama.rope.freq_base")).toEqual({ type: GgufValueType.F32, value: 10000 });
    expect(md.has("llama.attention.key_length")).toBe(false);
  });

  it("writes Llama-2 tokenizer metadata: tokens, scores from merge ranks, token types", () => {
    const md = header.metadata;
    expect(md.get("tokenizer.ggml.model")?.value).toBe("llama");
    expect(md.get("tokenizer.ggml.pre")?.value).toBe("default");
    const tokens = md.get("tokenizer.ggml.tokens")!;
    expect(tokens.itemType).toBe(GgufValueType.STRING);
    expect((tokens.value as string[]).slice(0, 4)).toEqual(["<unk>", "<s>", "</s>", "<0x00>"]);
    const scores = md.get("tokenizer.ggml.scores")!;
    expect(scores.itemType).toBe(GgufValueType.F32);
    const s = scores.value as number[];
    // "▁t" is produced by merge 0, "er" by merge 1; "▁▁" only by the last merge (HF lists "▁ ▁" last);
    // single characters and bytes score 0.
    expect([s[260], s[261], s[259]]).toEqual([0, -1, -61248]);
    expect(s[29871]).toBe(0); // "▁"
    const types = md.get("tokenizer.ggml.token_type")!;
    expect(types.itemType).toBe(GgufValueType.I32);
    expect((types.value as number[]).slice(0, 5)).toEqual([2, 3, 3, 6, 6]);
    expect((types.value as number[])[300]).toBe(1);
    expect(md.get("tokenizer.ggml.bos_token_id")).toEqual({ type: GgufValueType.U32, value: 1 });
    expect(md.get("tokenizer.ggml.eos_token_id")).toEqual({ type: GgufValueType.U32, value: 2 });
    expect(md.get("tokenizer.ggml.unknown_token_id")).toEqual({ type: GgufValueType.U32, value: 0 });
    expect(md.get("tokenizer.ggml.add_bos_token")).toEqual({ type: GgufValueType.BOOL, value: true });
    expect(md.get("tokenizer.ggml.add_eos_token")).toEqual({ type: GgufValueType.BOOL, value: false });
  });

  it("maps names, reverses shapes into ne, and aligns offsets to the running padded sum", () => {
    const names = header.tensors.map((t) => t.name);
    expect(names).toContain("token_embd.weight");
    expect(names).toContain("blk.1.ffn_down.weight");
    expect(names).toContain("output.weight");
    expect(names).toHaveLength(expectedTensorShapes(config).size);
    const byName = new Map(header.tensors.map((t) => [t.name, t]));
    expect(byName.get("token_embd.weight")!.ne).toEqual([64, 32000]);
    expect(byName.get("blk.0.attn_k.weight")!.ne).toEqual([64, 32]);
    expect(byName.get("blk.0.ffn_gate.weight")!.ne).toEqual([64, 128]);
    expect(byName.get("blk.0.ffn_down.weight")!.ne).toEqual([128, 64]);
    expect(byName.get("output_norm.weight")!.ne).toEqual([64]);
    expect(header.dataOffset % 32).toBe(0);
    let running = 0;
    for (const t of header.tensors) {
      expect(t.type).toBe(GgmlType.F32);
      expect(t.offset, t.name).toBe(running);
      running += Math.ceil((t.ne.reduce((a, b) => a * b, 1) * 4) / 32) * 32;
    }
    expect(statSync(path).size).toBe(header.dataOffset + running);
  });

  it("stores data row-major, with q/k rows permuted and everything else copied", () => {
    const byHf = new Map([...input.tensors].map((t) => [t.hfName, t]));
    const v = byHf.get("model.layers.0.self_attn.v_proj.weight")!;
    expect(asF32(tensorBytes(path, header, "blk.0.attn_v.weight"))).toEqual(v.data);
    const q = byHf.get("model.layers.1.self_attn.q_proj.weight")!;
    expect(asF32(tensorBytes(path, header, "blk.1.attn_q.weight"))).toEqual(permuteQkRows(q.data as Float32Array, 64, 64, 4));
    const k = byHf.get("model.layers.1.self_attn.k_proj.weight")!;
    expect(asF32(tensorBytes(path, header, "blk.1.attn_k.weight"))).toEqual(permuteQkRows(k.data as Float32Array, 32, 64, 2));
  });

  it("omits output when embeddings are tied (even if lm_head is passed)", () => {
    const tied = tinyConfig({ tieWordEmbeddings: true });
    const tensors = randomTensors(tied);
    tensors.push({ hfName: "lm_head.weight", dtype: "f32", shape: [32000, 64], data: new Float32Array(32000 * 64) });
    const tiedPath = join(workDir, "tied.gguf");
    writeGguf(tiedPath, exportInput(tied, { tensors }));
    const names = readGgufHeader(tiedPath).tensors.map((t) => t.name);
    expect(names).not.toContain("output.weight");
    expect(names).toContain("token_embd.weight");
  });

  it("bf16 output: matrices BF16 (RNE), 1-D and norms F32, file_type 32; bf16 input copied bit-exactly", () => {
    const bfPath = join(workDir, "tiny-bf16.gguf");
    const tensors = randomTensors(config, 5);
    // Feed one tensor as bf16 bits to check the bf16 → bf16 path too.
    const up = tensors.find((t) => t.hfName === "model.layers.0.mlp.up_proj.weight")!;
    const upBits = Uint16Array.from(up.data as Float32Array, (x) => f32ToBf16Bits(x));
    tensors[tensors.indexOf(up)] = { ...up, dtype: "bf16", data: upBits };
    writeGguf(bfPath, exportInput(config, { tensors, outDtype: "bf16" }));
    const h = readGgufHeader(bfPath);
    expect(h.metadata.get("general.file_type")?.value).toBe(32);
    const typeOf = (name: string) => h.tensors.find((t) => t.name === name)!.type;
    expect(typeOf("token_embd.weight")).toBe(GgmlType.BF16);
    expect(typeOf("blk.0.attn_q.weight")).toBe(GgmlType.BF16);
    expect(typeOf("output.weight")).toBe(GgmlType.BF16);
    expect(typeOf("blk.0.attn_norm.weight")).toBe(GgmlType.F32);
    expect(typeOf("output_norm.weight")).toBe(GgmlType.F32);
    const gate = tensors.find((t) => t.hfName === "model.layers.0.mlp.gate_proj.weight")!;
    const bytes = tensorBytes(bfPath, h, "blk.0.ffn_gate.weight");
    const stored = new Uint16Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length));
    expect(stored).toEqual(Uint16Array.from(gate.data as Float32Array, (x) => f32ToBf16Bits(x)));
    const upBytes = tensorBytes(bfPath, h, "blk.0.ffn_up.weight");
    expect(new Uint16Array(upBytes.buffer.slice(upBytes.byteOffset, upBytes.byteOffset + upBytes.length))).toEqual(upBits);
    let running = 0;
    for (const t of h.tensors) {
      expect(t.offset).toBe(running);
      running += Math.ceil((t.ne.reduce((a, b) => a * b, 1) * (t.type === GgmlType.F32 ? 4 : 2)) / 32) * 32;
    }
  });

  it("llama3 scaling: rope_freqs factors; head_dim ≠ d/H: key/value_length", () => {
    const c = tinyConfig({
      headDim: 32,
      ropeTheta: 500000,
      ropeScaling: { type: "llama3", factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 8192 },
    });
    const p = join(workDir, "llama3-scaling.gguf");
    writeGguf(p, exportInput(c));
    const h = readGgufHeader(p);
    expect(h.metadata.get("llama.attention.key_length")).toEqual({ type: GgufValueType.U32, value: 32 });
    expect(h.metadata.get("llama.attention.value_length")).toEqual({ type: GgufValueType.U32, value: 32 });
    expect(h.metadata.get("llama.rope.dimension_count")?.value).toBe(32);
    const freqs = h.tensors.find((t) => t.name === "rope_freqs.weight")!;
    expect(freqs).toMatchObject({ ne: [16], type: GgmlType.F32 });
    const factors = asF32(tensorBytes(p, h, "rope_freqs.weight"));
    expect(factors).toEqual(llama3RopeFactors(c));
    expect(factors[0]).toBe(1); // highest frequency untouched
    expect(factors[15]).toBe(8); // lowest frequency divided by factor
    expect([...factors].some((f) => f > 1 && f < 8)).toBe(true); // smooth band in between
    expect(h.tensors.find((t) => t.name === "blk.0.attn_q.weight")!.ne).toEqual([64, 128]);
  });

  it("errors name the tensor; nothing is left behind", () => {
    const bad = join(workDir, "bad.gguf");
    const tensors = randomTensors(config);
    const i = tensors.findIndex((t) => t.hfName === "model.layers.1.mlp.up_proj.weight");
    tensors[i] = { ...tensors[i], shape: [64, 128] };
    expect(() => writeGguf(bad, exportInput(config, { tensors }))).toThrow(/model\.layers\.1\.mlp\.up_proj\.weight has shape \[64,128\]/);
    const missing = randomTensors(config).filter((t) => t.hfName !== "model.norm.weight");
    expect(() => writeGguf(bad, exportInput(config, { tensors: missing }))).toThrow(/missing tensor model\.norm\.weight/);
    const short = randomTensors(config).map((t) =>
      t.hfName === "model.layers.0.self_attn.q_proj.weight" ? { ...t, data: new Float32Array(10) } : t,
    );
    expect(() => writeGguf(bad, exportInput(config, { tensors: short }))).toThrow(/q_proj\.weight has 10 elements/);
    const wrongType = randomTensors(config).map((t) => (t.hfName === "model.norm.weight" ? { ...t, dtype: "bf16" as const } : t));
    expect(() => writeGguf(bad, exportInput(config, { tensors: wrongType }))).toThrow(/model\.norm\.weight is bf16 but its data is not a Uint16Array/);
    expect(() => statSync(bad)).toThrow();
  });
});

// ----------------------------------------------------------------------------------------------------
// llama.cpp: loads our GGUF and tokenizes like we do
// ----------------------------------------------------------------------------------------------------

const peerMissing = llamaCppUnavailableReason();

interface PeerModel {
  tokenize(text: string): number[];
  dispose(): Promise<void>;
}
interface PeerLlama {
  loadModel(options: { modelPath: string }): Promise<PeerModel>;
  dispose(): Promise<void>;
}

async function llamaCppTokenize(ggufPath: string, texts: string[]): Promise<number[][]> {
  const entry = join(import.meta.dirname, "..", "bench", "peers", "node_modules", "node-llama-cpp", "dist", "index.js");
  const { getLlama } = (await import(pathToFileURL(entry).href)) as { getLlama(o: object): Promise<PeerLlama> };
  const llama = await getLlama({ gpu: false, build: "never", logLevel: "error" });
  try {
    const model = await llama.loadModel({ modelPath: ggufPath });
    try {
      // node-llama-cpp's tokenize adds no BOS; llama.cpp adds the SentencePiece prefix space itself.
      return texts.map((t) => [...model.tokenize(t)]);
    } finally {
      await model.dispose();
    }
  } finally {
    await llama.dispose();
  }
}

describe("llama.cpp reads our GGUF", () => {
  const texts = [MIXED_TEXT, "1981 (some college): Secretaries", "  two  leading spaces", "tabs\tand\nnewlines\n"];

  it.skipIf(peerMissing !== null)(`Llama-2 tokenizer: llama.cpp tokenization equals ours${peerMissing ? ` (skipped: ${peerMissing})` : ""}`, async () => {
    const p = join(workDir, "llama-cpp-llama2.gguf");
    writeGguf(p, exportInput(tinyConfig()));
    const ours = new Tokenizer(llama2TokenizerJson, llama2TokenizerConfig);
    const theirs = await llamaCppTokenize(p, texts);
    texts.forEach((t, i) => expect(theirs[i], JSON.stringify(t.slice(0, 40))).toEqual(ours.encode(t, { addBos: false })));
  });

  it.skipIf(peerMissing !== null)(`Llama-3-style tokenizer: llama.cpp tokenization equals ours${peerMissing ? ` (skipped: ${peerMissing})` : ""}`, async () => {
    const { json, vocabSize } = buildLlama3StyleTokenizerJson(MIXED_TEXT);
    const config = tinyConfig({ vocabSize, bosTokenId: vocabSize - 2, eosTokenIds: [vocabSize - 1], ropeTheta: 500000 });
    const p = join(workDir, "llama-cpp-llama3.gguf");
    writeGguf(p, exportInput(config, { tokenizer: { json } }));
    const h = readGgufHeader(p);
    expect(h.metadata.get("tokenizer.ggml.model")?.value).toBe("gpt2");
    expect(h.metadata.get("tokenizer.ggml.pre")?.value).toBe("llama-bpe");
    expect((h.metadata.get("tokenizer.ggml.merges")?.value as string[]).length).toBe(vocabSize - 258);
    const ours = new Tokenizer(json);
    const theirs = await llamaCppTokenize(p, texts);
    texts.forEach((t, i) => expect(theirs[i], JSON.stringify(t.slice(0, 40))).toEqual(ours.encode(t, { addBos: false })));
  });
});
