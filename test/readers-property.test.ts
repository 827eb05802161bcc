/**
 * Property tests (fast-check) for the JS-side readers of user files: the panel CSV and JSONL loaders,
 * config.json (parseLlamaConfig) and adapter_config.json (readPeftAdapter). Whatever the bytes — random
 * text, valid files with lines dropped, duplicated, cut or spliced, arbitrary JSON values — each reader
 * returns a result or throws the tool's error: one line, or for a panel the summary whose every line names
 * the file (PanelValidationError), never a
 * TypeError/RangeError, a multi-line message or a hang (each run is bounded by the test's timeout).
 * (Documents are generated and tokenized in memory; there is no documents JSONL reader to test.)
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, describe, expect, it } from "vitest";
import { loadPanelCsv, loadPanelJsonl, PanelValidationError } from "../src/data/load.js";
import { parseLlamaConfig } from "../src/io/hf-config.js";
import { readPeftAdapter } from "../src/io/peft.js";
import { MODEL_PRESETS } from "../src/model/presets.js";

const scratch = mkdtempSync(join(tmpdir(), "labor-readers-property-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));
const fixtures = join(import.meta.dirname, "fixtures", "data");
const goodCsv = readFileSync(join(fixtures, "panel-good.csv"), "utf8");
const goodJsonl = readFileSync(join(fixtures, "panel-good.jsonl"), "utf8");

function expectToolError(error: unknown): void {
  expect(error).toBeInstanceOf(Error);
  const e = error as Error;
  expect(["Error", "PanelValidationError", "SafetensorsError"], `${e.name}: ${e.message}`).toContain(e.name);
  if (e instanceof PanelValidationError) {
    // The panel summary lists one problem per line, each naming the file and line.
    for (const line of e.message.split("\n")) expect(line.startsWith(e.file) || line.startsWith("… and "), line).toBe(true);
  } else {
    expect(e.message, "one line").not.toContain("\n");
  }
}

async function resultOrToolError(read: () => unknown): Promise<void> {
  try {
    await read();
  } catch (error) {
    expectToolError(error);
  }
}

/** A valid file's lines, some dropped, repeated, cut or replaced by random text, in any order. */
function mangledLines(text: string): fc.Arbitrary<string> {
  const lines = text.split("\n");
  const line = fc.oneof(
    fc.constantFrom(...lines),
    fc.tuple(fc.constantFrom(...lines), fc.nat(), fc.string()).map(([l, at, s]) => l.slice(0, at % (l.length + 1)) + s + l.slice(at % (l.length + 1))),
    fc.string({ unit: "binary" }),
  );
  return fc.tuple(fc.constantFrom(lines[0]), fc.array(line, { maxLength: 12 }), fc.constantFrom("\n", "\r\n")).map(([head, rest, eol]) => [head, ...rest].join(eol));
}

let fileIndex = 0;
function write(text: string, extension: string): string {
  const path = join(scratch, `input-${fileIndex++}${extension}`);
  writeFileSync(path, text);
  return path;
}

describe("readers on arbitrary input", () => {
  it("panel CSV: a panel or a one-line error", async () => {
    await fc.assert(fc.asyncProperty(fc.oneof(mangledLines(goodCsv), fc.string({ unit: "binary" })), async (text) => {
      await resultOrToolError(() => loadPanelCsv(write(text, ".csv")));
    }), { numRuns: 150 });
  }, 60_000);

  it("panel JSONL: a panel or a one-line error", async () => {
    const jsonLine = fc.jsonValue().map((v) => JSON.stringify(v));
    await fc.assert(fc.asyncProperty(fc.oneof(mangledLines(goodJsonl), fc.array(jsonLine, { maxLength: 6 }).map((l) => l.join("\n"))), async (text) => {
      await resultOrToolError(() => loadPanelJsonl(write(text, ".jsonl")));
    }), { numRuns: 150 });
  }, 60_000);

  it("config.json: a config or a one-line error", () => {
    const valid = { architectures: ["LlamaForCausalLM"], hidden_size: 64, intermediate_size: 128, num_attention_heads: 4, num_hidden_layers: 2, vocab_size: 100, rms_norm_eps: 1e-5 };
    const mutated = fc.tuple(fc.constantFrom(...Object.keys(valid)), fc.jsonValue()).map(([key, value]) => ({ ...valid, [key]: value }));
    fc.assert(fc.property(fc.oneof(fc.jsonValue(), mutated, fc.dictionary(fc.string(), fc.jsonValue())), (json) => {
      try {
        parseLlamaConfig(json, "config.json");
      } catch (error) {
        expectToolError(error);
      }
    }), { numRuns: 500 });
  });

  it("adapter_config.json: an adapter or a one-line error", () => {
    const dir = mkdtempSync(join(scratch, "adapter-"));
    writeFileSync(join(dir, "adapter_model.safetensors"), Buffer.alloc(0));
    const valid = { peft_type: "LORA", r: 8, lora_alpha: 16, target_modules: ["q_proj", "v_proj"], bias: "none" };
    const mutated = fc.tuple(fc.constantFrom(...Object.keys(valid)), fc.jsonValue()).map(([key, value]) => JSON.stringify({ ...valid, [key]: value }));
    fc.assert(fc.property(fc.oneof(mutated, fc.jsonValue().map((v) => JSON.stringify(v)), fc.string({ unit: "binary" })), (text) => {
      writeFileSync(join(dir, "adapter_config.json"), text);
      try {
        readPeftAdapter(dir, MODEL_PRESETS.tiny ?? Object.values(MODEL_PRESETS)[0]);
      } catch (error) {
        expectToolError(error);
      }
    }), { numRuns: 300 });
  });
});
