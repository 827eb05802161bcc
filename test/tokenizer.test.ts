/**
 * Tokenizer: our rebuilt Llama-2 tokenizer.json, run through @huggingface/tokenizers, must give exactly the
 * ids of llama-tokenizer-js (an independent Llama-2 BPE implementation over the same vocabulary) on a
 * multi-kilobyte mixed text; decode inverts encode; a Llama-3-style byte-level tokenizer.json loads too.
 */
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import llamaTokenizerJs from "llama-tokenizer-js";
import { buildLlama2TokenizerConfig, buildLlama2TokenizerJson } from "../src/text/llama2-tokenizer.js";
import { Tokenizer, detectTokenizerKind, type TokenizerJson } from "../src/text/tokenizer.js";
import { MIXED_TEXT, buildLlama3StyleTokenizerJson } from "./fixtures/tokenizer-fixtures.js";

const workDir = mkdtempSync(join(tmpdir(), "labor-llm-tokenizer-"));
afterAll(() => rmSync(workDir, { recursive: true, force: true }));

const llama2Json = buildLlama2TokenizerJson() as TokenizerJson & { model: { merges: string[]; vocab: Record<string, number> } };
const llama2 = new Tokenizer(llama2Json, buildLlama2TokenizerConfig());

describe("Llama-2 tokenizer.json rebuilt from llama-tokenizer-js", () => {
  it("has the structure HF ships", () => {
    expect(Object.keys(llama2Json.model.vocab)).toHaveLength(32000);
    expect(llama2Json.model.merges).toHaveLength(61249);
    expect(llama2Json.model.merges.slice(0, 3)).toEqual(["▁ t", "e r", "i n"]);
    expect(llama2Json.model).toMatchObject({ type: "BPE", byte_fallback: true, fuse_unk: true, unk_token: "<unk>" });
    expect(llama2Json.pre_tokenizer).toBeNull();
    expect(llama2Json.added_tokens?.map((t) => [t.id, t.content, t.special])).toEqual([
      [0, "<unk>", true],
      [1, "<s>", true],
      [2, "</s>", true],
    ]);
    expect(detectTokenizerKind(llama2Json)).toBe("llama2-spm-bpe");
  });

  it("exposes vocabulary, special ids and kind", () => {
    expect(llama2.kind).toBe("llama2-spm-bpe");
    expect(llama2.vocabSize).toBe(32000);
    expect([llama2.bosId, llama2.eosId]).toEqual([1, 2]);
    expect(llama2.tokenToId("▁the")).toBe(278);
    expect(llama2.idToToken(13)).toBe("<0x0A>");
    expect(llama2.tokenToId("no such piece")).toBeUndefined();
  });

  it(`encodes ${Buffer.byteLength(MIXED_TEXT)} bytes of mixed text exactly like llama-tokenizer-js`, () => {
    expect(Buffer.byteLength(MIXED_TEXT)).toBeGreaterThanOrEqual(4096);
    // llama-tokenizer-js: encode(text, add_bos_token = true, add_preceding_space = true).
    const withBos = llama2.encode(MIXED_TEXT, { addBos: true });
    expect(withBos[0]).toBe(1);
    expect(withBos).toEqual(llamaTokenizerJs.encode(MIXED_TEXT, true));
    expect(llama2.encode(MIXED_TEXT, { addBos: false })).toEqual(llamaTokenizerJs.encode(MIXED_TEXT, false));
    // Default follows tokenizer_config add_bos_token (true for Llama-2).
    expect(llama2.encode(MIXED_TEXT)).toEqual(withBos);
    // The text really exercises byte fallback (tab, newline, emoji bytes).
    expect(withBos).toContain(13);
    expect(withBos).toContain(12);
  });

  it("matches llama-tokenizer-js line by line (short inputs, leading/trailing spaces)", () => {
    const lines = [...MIXED_TEXT.split("\n"), " leading", "trailing ", "  ", "a", "\t"];
    for (const line of lines.filter((l) => l.length > 0)) {
      expect(llama2.encode(line, { addBos: false }), JSON.stringify(line)).toEqual(llamaTokenizerJs.encode(line, false));
    }
  });

  it("decodes back to the original text", () => {
    expect(llama2.decode(llama2.encode(MIXED_TEXT, { addBos: true }))).toBe(MIXED_TEXT);
    expect(llama2.decode(llama2.encode(" two  spaces ", { addBos: false }))).toBe(" two  spaces ");
    expect(llama2.decode([])).toBe("");
    expect(llama2.decode([1, 15043, 2], true)).toBe("<s> Hello</s>");
  });
});

describe("Tokenizer.fromDirectory", () => {
  it("loads tokenizer.json + tokenizer_config.json from a model directory", () => {
    const dir = join(workDir, "llama2");
    mkdirSync(dir);
    writeFileSync(join(dir, "tokenizer.json"), JSON.stringify(llama2Json));
    writeFileSync(join(dir, "tokenizer_config.json"), JSON.stringify(buildLlama2TokenizerConfig()));
    const tok = Tokenizer.fromDirectory(dir);
    expect(tok.encode("1981 (some college): Secretaries")).toEqual(llamaTokenizerJs.encode("1981 (some college): Secretaries"));
  });

  it("names the file when tokenizer.json is missing or malformed", () => {
    const missing = join(workDir, "empty");
    mkdirSync(missing);
    expect(() => Tokenizer.fromDirectory(missing)).toThrow(join(missing, "tokenizer.json"));
    const bad = join(workDir, "bad");
    mkdirSync(bad);
    writeFileSync(join(bad, "tokenizer.json"), "{ not json");
    expect(() => Tokenizer.fromDirectory(bad)).toThrow(/bad\/tokenizer\.json is not valid JSON/);
    writeFileSync(join(bad, "tokenizer.json"), JSON.stringify({ version: "1.0" }));
    expect(() => Tokenizer.fromDirectory(bad)).toThrow(/bad\/tokenizer\.json: missing "model.vocab"/);
    writeFileSync(join(bad, "tokenizer.json"), JSON.stringify(llama2Json));
    writeFileSync(join(bad, "tokenizer_config.json"), "[");
    expect(() => Tokenizer.fromDirectory(bad)).toThrow(/bad\/tokenizer_config\.json is not valid JSON/);
  });
});

describe("Llama-3-style byte-level BPE tokenizer.json", () => {
  const { json, vocabSize } = buildLlama3StyleTokenizerJson(MIXED_TEXT);
  const dir = join(workDir, "llama3");
  mkdirSync(dir);
  writeFileSync(join(dir, "tokenizer.json"), JSON.stringify(json));
  const tok = Tokenizer.fromDirectory(dir);

  it("is detected and loads with its special tokens", () => {
    expect(tok.kind).toBe("llama3-bytelevel-bpe");
    expect(tok.vocabSize).toBe(vocabSize);
    expect(tok.bosId).toBe(vocabSize - 2);
    expect(tok.eosId).toBe(vocabSize - 1);
    expect(tok.idToToken(tok.bosId!)).toBe("<|begin_of_text|>");
  });

  it("round-trips the mixed text, BOS from the template by default", () => {
    const ids = tok.encode(MIXED_TEXT);
    expect(ids[0]).toBe(tok.bosId);
    // Learned merges really apply: far fewer tokens than bytes.
    expect(ids.length).toBeLessThan(Buffer.byteLength(MIXED_TEXT) * 0.7);
    expect(tok.decode(ids)).toBe(MIXED_TEXT);
    expect(tok.encode("Secretaries", { addBos: false })[0]).not.toBe(tok.bosId);
  });
});
