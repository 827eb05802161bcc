/**
 * Every input in the fuzz corpus (fuzz/corpus/<harness>/: the seeds and each crash the fuzzers found, kept
 * after its fix) through the reader it was found in: a result, or the tool's one-line error — never a
 * TypeError/RangeError, a multi-line message or a crash. The fuzzers themselves run only under `npm run fuzz`.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { readGgufHeader } from "../src/io/gguf.js";
import { openSafetensors } from "../src/io/safetensors.js";
import { readBinaryPredictions } from "../src/score/predictions-binary.js";
import { loadNative } from "../src/engine/native.js";
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";

const corpusRoot = join(import.meta.dirname, "..", "fuzz", "corpus");
const scratch = mkdtempSync(join(tmpdir(), "labor-fuzz-regressions-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** The tool's errors: Error itself or its own subclasses, with a one-line message. */
function expectToolError(error: unknown): void {
  expect(error).toBeInstanceOf(Error);
  const e = error as Error;
  expect(["Error", "SafetensorsError"]).toContain(e.name);
  expect(e.message).not.toContain("\n");
}

async function outcome(read: () => unknown): Promise<"ok" | "error"> {
  try {
    await read();
    return "ok";
  } catch (error) {
    expectToolError(error);
    return "error";
  }
}

const readers: Record<string, (path: string) => unknown> = {
  safetensors: (path) => {
    const file = openSafetensors(path);
    for (const name of file.names()) {
      file.bytes(name);
      try {
        file.tensor(name);
      } catch (error) {
        expectToolError(error);
      }
    }
  },
  gguf: (path) => readGgufHeader(path),
  "predictions-bin": (path) => readBinaryPredictions(path, () => {}),
};

describe("fuzz corpus regressions", () => {
  for (const [harness, read] of Object.entries(readers)) {
    const files = readdirSync(join(corpusRoot, harness)).sort();
    it(`${harness}: ${files.length} inputs give a result or a one-line error`, async () => {
      for (const name of files) {
        const path = join(scratch, `${harness}-${name}`);
        writeFileSync(path, readFileSync(join(corpusRoot, harness, name)));
        const result = await outcome(() => read(path));
        if (name.startsWith("seed-")) expect(result, `${harness}/${name}`).toBe("ok");
      }
    });
  }

  it("gguf: a string length past the end of the file is refused before allocating", async () => {
    const bytes = Buffer.alloc(32);
    bytes.writeUInt32LE(0x46554747, 0);
    bytes.writeUInt32LE(3, 4);
    bytes.writeBigUInt64LE(0n, 8);  // tensors
    bytes.writeBigUInt64LE(1n, 16);  // metadata entries
    bytes.writeBigUInt64LE(2n ** 50n, 24);  // key length: a petabyte
    const path = join(scratch, "huge-string.gguf");
    writeFileSync(path, bytes);
    expect(() => readGgufHeader(path)).toThrow(/truncated header at byte 32 \(needs 1125899906842624 bytes, the file has 0 more\)/);
  });

  // The native harness's crashes (fuzz/corpus/tensor_data_fuzz/crash-*): empty arrays reached memmove/memcpy
  // with null pointers (UB only a sanitizer sees); here the same calls through the addon, and the inputs
  // through the sanitizer build when npm run fuzz has built it.
  it("native: convert and embedding of empty arrays", () => {
    const cpu = loadNative().cpu;
    for (const dtype of ["f32", "bf16", "f16"] as const) {
      const empty = dtype === "f32" ? new Float32Array(0) : new Uint16Array(0);
      cpu.convert(empty, dtype, dtype === "f32" ? new Float32Array(0) : new Uint16Array(0), dtype, 0);
      cpu.embedding(new Int32Array(0), empty, dtype, new Float32Array(0), 0, 0);
      cpu.embedding(Int32Array.of(0, 0), empty, dtype, new Float32Array(0), 1, 0);
    }
  });

  const harness = join(import.meta.dirname, "..", "fuzz", "native", "build", "tensor_data_fuzz");
  it.skipIf(!existsSync(harness))("native: the corpus through the ASan/UBSan harness (built by fuzz/native/build.sh)", () => {
    const inputs = readdirSync(join(corpusRoot, "tensor_data_fuzz")).map((name) => join(corpusRoot, "tensor_data_fuzz", name));
    execFileSync(harness, inputs, { stdio: "pipe" });  // throws (exit ≠ 0) on any sanitizer report
  });
});
