// Writes the seed corpus (fuzz/corpus/<harness>/seed-*) from the tool's own writers and a hand-built GGUF
// header with one metadata entry of every value type. Run after `tsc`: node fuzz/js/make-seeds.js
import { Buffer } from "node:buffer";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { writeSafetensors } from "../../dist/src/io/safetensors.js";
import { writeBinaryPredictions } from "../../dist/src/score/predictions-binary.js";

const corpus = join(dirname(fileURLToPath(import.meta.url)), "..", "corpus");
const scratch = join(corpus, ".scratch");
mkdirSync(scratch, { recursive: true });

function seed(harness, name, bytes) {
  mkdirSync(join(corpus, harness), { recursive: true });
  writeFileSync(join(corpus, harness, `seed-${name}`), bytes);
}

// safetensors: the writer's layout with f32/bf16/f16 tensors, metadata, an empty tensor, other dtypes.
function safetensorsSeed(name, tensors, metadata) {
  const path = join(scratch, `${name}.safetensors`);
  writeSafetensors(path, tensors, metadata);
  seed("safetensors", name, readFileSync(path));
}
safetensorsSeed("f32-bf16-f16", [
  { name: "w", dtype: "F32", shape: [2, 3], data: Float32Array.of(1, 2, 3, 4, 5, 6) },
  { name: "b", dtype: "BF16", shape: [3], data: Uint16Array.of(0x3f80, 0x4000, 0xc040) },
  { name: "h", dtype: "F16", shape: [1, 2], data: Uint16Array.of(0x3c00, 0x4000) },
], { format: "pt" });
safetensorsSeed("empty-and-ints", [
  { name: "empty", dtype: "F32", shape: [0, 4], data: new Float32Array(0) },
  { name: "ids", dtype: "I64", shape: [2], data: BigInt64Array.of(1n, 2n) },
  { name: "mask", dtype: "BOOL", shape: [3], data: Uint8Array.of(1, 0, 1) },
]);
// A header the reference writer would not make: unaligned f32 (the reader copies), spaces, no metadata.
{
  const header = Buffer.from(JSON.stringify({ a: { dtype: "U8", shape: [1], data_offsets: [0, 1] }, b: { dtype: "F32", shape: [1], data_offsets: [1, 5] } }) + " ");
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(BigInt(header.length));
  seed("safetensors", "unaligned", Buffer.concat([prefix, header, Buffer.from([7, 0, 0, 0x80, 0x3f])]));
}

// GGUF v3: every metadata value type, an array, general.alignment, two tensors.
{
  const parts = [];
  const u32 = (v) => { const b = Buffer.alloc(4); b.writeUInt32LE(v); parts.push(b); };
  const u64 = (v) => { const b = Buffer.alloc(8); b.writeBigUInt64LE(BigInt(v)); parts.push(b); };
  const str = (s) => { const b = Buffer.from(s, "utf8"); u64(b.length); parts.push(b); };
  const raw = (bytes) => parts.push(Buffer.from(bytes));
  u32(0x46554747); u32(3); u64(2); u64(15);
  const kv = (key, type, write) => { str(key); u32(type); write(); };
  kv("general.architecture", 8, () => str("llama"));
  kv("a.u8", 0, () => raw([200])); kv("a.i8", 1, () => raw([0xff]));
  kv("a.u16", 2, () => raw([1, 2])); kv("a.i16", 3, () => raw([0xfe, 0xff]));
  kv("a.u32", 4, () => u32(70000)); kv("a.i32", 5, () => u32(0xffffffff));
  kv("a.f32", 6, () => { const b = Buffer.alloc(4); b.writeFloatLE(1.5); parts.push(b); });
  kv("a.bool", 7, () => raw([1]));
  kv("a.u64", 10, () => u64(1n << 40n)); kv("a.i64", 11, () => u64((1n << 64n) - 2n));
  kv("a.f64", 12, () => { const b = Buffer.alloc(8); b.writeDoubleLE(-2.25); parts.push(b); });
  kv("tokenizer.ggml.tokens", 9, () => { u32(8); u64(3); str("<s>"); str("a"); str("▁b"); });
  kv("tokenizer.ggml.scores", 9, () => { u32(6); u64(2); raw([0, 0, 0, 0, 0, 0, 0x80, 0x3f]); });
  kv("general.alignment", 4, () => u32(32));
  for (const [name, dims, type, offset] of [["token_embd.weight", [4, 3], 0, 0], ["output_norm.weight", [4], 30, 64]]) {
    str(name); u32(dims.length); for (const d of dims) u64(d); u32(type); u64(offset);
  }
  seed("gguf", "all-value-types", Buffer.concat(parts));
}

// Binary predictions: two records over three codes, one with a −∞ and a null previous; and zero records.
const header = { format: "labor-llm-predictions", version: 1, model: "seed", codes: [10, 20, 30], normalised: true, meta: { seed: 1 } };
const record = (personId, year, previous, truth, logProbs) => ({
  personId, dataset: "NLSY79", year, sex: "female", race: "black", region: "south", birthYear: 1961,
  education: 2, previous, truth, logProbs: Float64Array.from(logProbs),
});
for (const [name, records] of [
  ["two-records", [record("p1", 1980, null, 10, [-0.1, -Infinity, -3]), record("p1", 1981, 10, 30, [-1, -1, -1.5])]],
  ["no-records", []],
]) {
  const path = join(scratch, `${name}.bin`);
  writeBinaryPredictions(path, header, records);
  seed("predictions-bin", name, readFileSync(path));
}
rmSync(scratch, { recursive: true, force: true });
