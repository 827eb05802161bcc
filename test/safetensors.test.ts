import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, truncateSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  openCheckpoint,
  openSafetensors,
  writeCheckpoint,
  writeSafetensors,
  type SafetensorsInput,
} from "../src/io/safetensors.js";
import { findDuplicateKey } from "../src/io/strict-json.js";

let root: string;
let counter = 0;

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), "labor-llm-safetensors-"));
});
afterAll(() => {
  rmSync(root, { recursive: true, force: true });
});

/** A fresh empty directory under the test root. */
function freshDir(): string {
  const dir = join(root, `case-${counter++}`);
  mkdirSync(dir);
  return dir;
}

/** Hand-craft a file: 8-byte length (the real one unless overridden), header text, then data bytes. */
function craft(header: string | object, data: Uint8Array = new Uint8Array(0), headerLength?: bigint): string {
  const text = typeof header === "string" ? header : JSON.stringify(header);
  const json = Buffer.from(text, "utf8");
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(headerLength ?? BigInt(json.byteLength));
  const path = join(freshDir(), "model.safetensors");
  writeFileSync(path, Buffer.concat([prefix, json, data]));
  return path;
}

/** The error thrown by `action`, checked to be a single line that names `path` (and `tensor` if given). */
function errorOf(action: () => unknown, path: string, tensor?: string): string {
  let message: string | undefined;
  try {
    action();
  } catch (error) {
    message = (error as Error).message;
  }
  expect(message, "expected an error").toBeDefined();
  const text = message as string;
  expect(text).not.toMatch(/[\r\n]/);
  expect(text).toContain(path);
  if (tensor !== undefined) expect(text).toContain(`tensor "${tensor}"`);
  return text;
}

function sampleTensors(): SafetensorsInput[] {
  return [
    { name: "weights.f32", dtype: "F32", shape: [2, 3], data: new Float32Array([1, -2, 3.5, 1e-30, Infinity, NaN]) },
    { name: "weights.bf16", dtype: "BF16", shape: [3], data: new Uint16Array([0x3f80, 0xc000, 0x7fc0]) },
    { name: "weights.f16", dtype: "F16", shape: [1, 1, 5], data: new Uint16Array([0x3c00, 0xbc00, 0x0001, 0x7c00, 0x7e00]) },
    { name: "scalar", dtype: "F32", shape: [], data: new Float32Array([42]) },
    { name: "empty", dtype: "F16", shape: [0, 4], data: new Uint16Array(0) },
    { name: "ids", dtype: "I64", shape: [2], data: new BigInt64Array([1n, -1n]) },
  ];
}

describe("safetensors round trip", () => {
  it("reads back F32/BF16/F16, a scalar, a zero-size tensor and an I64 tensor as views", () => {
    const path = join(freshDir(), "model.safetensors");
    writeSafetensors(path, sampleTensors());
    const fileSize = readFileSync(path).byteLength;
    const file = openSafetensors(path);
    expect(file.metadata).toEqual({ format: "pt" });
    expect(new Set(file.names())).toEqual(new Set(sampleTensors().map((t) => t.name)));
    for (const input of sampleTensors()) {
      const info = file.info(input.name);
      expect(info.dtype).toBe(input.dtype);
      expect(info.shape).toEqual(input.shape);
      expect(info.byteLength).toBe(input.data.byteLength);
      expect(Buffer.from(file.bytes(input.name))).toEqual(Buffer.from(input.data.buffer, input.data.byteOffset, input.data.byteLength));
      if (input.dtype === "I64") continue;
      const tensor = file.tensor(input.name);
      expect(tensor.dtype).toBe(input.dtype.toLowerCase());
      expect(tensor.shape).toEqual(input.shape);
      expect(tensor.data).toBeInstanceOf(input.dtype === "F32" ? Float32Array : Uint16Array);
      expect(Array.from(tensor.data)).toEqual(Array.from(input.data as Float32Array | Uint16Array));
      // A view into the mapping of the whole file, not a copy.
      expect(tensor.data.buffer.byteLength).toBe(fileSize);
    }
    expect(file.tensor("scalar").data.length).toBe(1);
    expect(file.tensor("empty").data.length).toBe(0);
    errorOf(() => file.tensor("ids"), path, "ids");
    errorOf(() => file.info("nope"), path, "nope");
  });

  it("writes the reference layout byte for byte", () => {
    const path = join(freshDir(), "layout.safetensors");
    writeSafetensors(path, [
      { name: "b", dtype: "F16", shape: [1], data: new Uint16Array([0x3c00]) },
      { name: "a", dtype: "F16", shape: [1], data: new Uint16Array([0x4000]) },
      { name: "c", dtype: "F32", shape: [1], data: new Float32Array([1]) },
    ]);
    const bytes = readFileSync(path);
    const headerLength = Number(bytes.readBigUInt64LE(0));
    expect(headerLength % 8).toBe(0);
    const headerText = bytes.subarray(8, 8 + headerLength).toString("utf8");
    const json =
      '{"__metadata__":{"format":"pt"},' +
      '"c":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},' +
      '"a":{"dtype":"F16","shape":[1],"data_offsets":[4,6]},' +
      '"b":{"dtype":"F16","shape":[1],"data_offsets":[6,8]}}';
    expect(headerText).toBe(json.padEnd(Math.ceil(json.length / 8) * 8, " "));
    expect(JSON.parse(headerText).__metadata__.format).toBe("pt");
    // Largest dtype first, then by name: c (F32), a, b; each at a multiple of its element size.
    const data = bytes.subarray(8 + headerLength);
    expect(Array.from(data)).toEqual([0x00, 0x00, 0x80, 0x3f, 0x00, 0x40, 0x00, 0x3c]);
    expect(bytes.byteLength).toBe(8 + headerLength + 8);
  });

  it("keeps metadata, always with format pt", () => {
    const path = join(freshDir(), "meta.safetensors");
    writeSafetensors(path, [{ name: "x", dtype: "F32", shape: [1], data: new Float32Array([1]) }], { step: "7" });
    expect(openSafetensors(path).metadata).toEqual({ format: "pt", step: "7" });
  });

  it("keeps a tensor called __proto__ a tensor", () => {
    const path = join(freshDir(), "proto.safetensors");
    writeSafetensors(path, [{ name: "__proto__", dtype: "F32", shape: [1], data: new Float32Array([5]) }]);
    const file = openSafetensors(path);
    expect(file.names()).toEqual(["__proto__"]);
    expect(Array.from(file.tensor("__proto__").data)).toEqual([5]);
  });

  it("round-trips a sharded checkpoint", () => {
    const dir = freshDir();
    const tensors: SafetensorsInput[] = Array.from({ length: 5 }, (_, i) => ({
      name: `layer.${i}.weight`,
      dtype: "F32",
      shape: [4, 4],
      data: Float32Array.from({ length: 16 }, (_, j) => i * 100 + j),
    }));
    const written = writeCheckpoint(dir, tensors, { maxShardBytes: 2 * 64 });
    expect(written.map((p) => p.slice(dir.length + 1))).toEqual([
      "model-00001-of-00003.safetensors",
      "model-00002-of-00003.safetensors",
      "model-00003-of-00003.safetensors",
      "model.safetensors.index.json",
    ]);
    const index = JSON.parse(readFileSync(join(dir, "model.safetensors.index.json"), "utf8"));
    expect(index.metadata.total_size).toBe(5 * 64);
    expect(index.weight_map["layer.4.weight"]).toBe("model-00003-of-00003.safetensors");
    const checkpoint = openCheckpoint(dir);
    expect(checkpoint.files).toHaveLength(3);
    expect(checkpoint.names()).toHaveLength(5);
    for (const tensor of tensors) {
      expect(Array.from(checkpoint.tensor(tensor.name).data)).toEqual(Array.from(tensor.data as Float32Array));
    }
    expect(checkpoint.fileOf("layer.0.weight")).toContain("model-00001-of-00003.safetensors");
    expect(checkpoint.fileOf("layer.4.weight")).toContain("model-00003-of-00003.safetensors");

    // Rewriting as one file replaces the sharded layout.
    writeCheckpoint(dir, tensors);
    expect(existsSync(join(dir, "model.safetensors.index.json"))).toBe(false);
    expect(openCheckpoint(dir).files).toHaveLength(1);
  });

  it("copies a tensor that is not aligned to its element size, and views an aligned one", () => {
    // Header of odd length, so the data buffer starts at an odd file offset.
    const header = '{"odd":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"half":{"dtype":"BF16","shape":[1],"data_offsets":[8,10]}}';
    const padded = header.length % 2 === 0 ? `${header} ` : header;
    const data = new Uint8Array(10);
    new DataView(data.buffer).setFloat32(0, 1.5, true);
    new DataView(data.buffer).setFloat32(4, -2, true);
    new DataView(data.buffer).setUint16(8, 0x3f80, true);
    const path = craft(padded, data);
    expect((8 + padded.length) % 2).toBe(1);
    const file = openSafetensors(path);
    const odd = file.tensor("odd");
    expect(Array.from(odd.data)).toEqual([1.5, -2]);
    expect(odd.data.buffer.byteLength).toBe(8); // a copy
    expect(Array.from(file.tensor("half").data)).toEqual([0x3f80]);
    expect(file.bytes("odd").byteOffset).toBe(8 + padded.length); // raw bytes stay a view

    const aligned = craft(`${header}${" ".repeat(8 - ((header.length + 8) % 8))}`.slice(0), data);
    const alignedFile = openSafetensors(aligned);
    const view = alignedFile.tensor("odd");
    expect(view.data.buffer.byteLength).toBe(readFileSync(aligned).byteLength);
    expect(Array.from(view.data)).toEqual([1.5, -2]);
  });
});

describe("safetensors validation", () => {
  const entry = (dtype: string, shape: unknown, offsets: unknown) => ({ dtype, shape, data_offsets: offsets });

  it("rejects a file shorter than 8 bytes", () => {
    const path = join(freshDir(), "short.safetensors");
    writeFileSync(path, Buffer.from([1, 2, 3]));
    expect(errorOf(() => openSafetensors(path), path)).toMatch(/3 bytes, too short/);
    const empty = join(freshDir(), "empty.safetensors");
    writeFileSync(empty, Buffer.alloc(0));
    expect(errorOf(() => openSafetensors(empty), empty)).toMatch(/0 bytes/);
  });

  it("rejects a missing file", () => {
    const path = join(root, "does-not-exist.safetensors");
    expect(errorOf(() => openSafetensors(path), path)).toMatch(/cannot open/);
  });

  it("rejects a header length past the end of the file or over the cap", () => {
    const past = craft({ a: entry("F32", [1], [0, 4]) }, new Uint8Array(4), 1000n);
    expect(errorOf(() => openSafetensors(past), past)).toMatch(/header length 1000 runs past the end/);
    const huge = craft({}, new Uint8Array(0), 0xffff_ffff_ffff_fff0n);
    expect(errorOf(() => openSafetensors(huge), huge)).toMatch(/exceeds the 100000000-byte limit/);
  });

  it("rejects a truncated file, naming the last tensor", () => {
    const dir = freshDir();
    const path = join(dir, "model.safetensors");
    writeSafetensors(path, [
      { name: "a", dtype: "F32", shape: [4], data: new Float32Array(4) },
      { name: "b", dtype: "F32", shape: [4], data: new Float32Array(4) },
    ]);
    truncateSync(path, readFileSync(path).byteLength - 3);
    expect(errorOf(() => openSafetensors(path), path, "b")).toMatch(/run past the end of the data buffer/);
  });

  it("rejects headers that are not UTF-8, not JSON or not an object", () => {
    const notUtf8 = join(freshDir(), "x.safetensors");
    const prefix = Buffer.alloc(8);
    prefix.writeBigUInt64LE(2n);
    writeFileSync(notUtf8, Buffer.concat([prefix, Buffer.from([0xc3, 0x28])]));
    expect(errorOf(() => openSafetensors(notUtf8), notUtf8)).toMatch(/not valid UTF-8/);
    const badJson = craft('{"a": {"dtype": "F32",\n');
    expect(errorOf(() => openSafetensors(badJson), badJson)).toMatch(/header is not valid JSON/);
    for (const text of ["[1, 2]", "null", '"text"', "12"]) {
      const path = craft(text);
      expect(errorOf(() => openSafetensors(path), path)).toMatch(/header must be a JSON object/);
    }
  });

  it("rejects duplicate keys, at the top level and inside an entry", () => {
    const top = craft('{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}', new Uint8Array(4));
    expect(errorOf(() => openSafetensors(top), top)).toMatch(/duplicate key "a"/);
    const escaped = craft('{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"\\u0061":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}', new Uint8Array(4));
    expect(errorOf(() => openSafetensors(escaped), escaped)).toMatch(/duplicate key "a"/);
    const inner = craft('{"w":{"dtype":"F32","dtype":"F16","shape":[1],"data_offsets":[0,2]}}', new Uint8Array(2));
    expect(errorOf(() => openSafetensors(inner), inner)).toMatch(/duplicate key "dtype" inside "w"/);
  });

  it("finds duplicates in nested JSON without recursion limits", () => {
    expect(findDuplicateKey('{"a":[{"x":1,"y":"}"},{"x":2}],"b":{"c":{"d":1,"d":2}}}')).toEqual({ key: "d", path: ["b", "c"] });
    expect(findDuplicateKey('{"a":"\\"a\\"","b":["a","a"]}')).toBeNull();
    const deep = "[".repeat(200_000) + "]".repeat(200_000);
    expect(findDuplicateKey(deep)).toBeNull();
  });

  it("rejects a tensor whose byte count does not match its dtype and shape", () => {
    const path = craft({ "model.norm.weight": entry("F32", [64], [0, 100]) }, new Uint8Array(100));
    const message = errorOf(() => openSafetensors(path), path, "model.norm.weight");
    expect(message).toBe(`${path}: tensor "model.norm.weight": data_offsets [0, 100] hold 100 bytes but F32 [64] needs 256`);
    const subByte = craft({ w: entry("F4", [3], [0, 2]) }, new Uint8Array(2));
    expect(errorOf(() => openSafetensors(subByte), subByte, "w")).toMatch(/12 bits, not a whole number of bytes/);
  });

  it("rejects offsets out of range", () => {
    const path = craft({ w: entry("F32", [2], [0, 8]) }, new Uint8Array(4));
    expect(errorOf(() => openSafetensors(path), path, "w")).toMatch(/data_offsets \[0, 8\] run past the end of the data buffer \(4 bytes/);
    const reversed = craft({ w: entry("F32", [0], [8, 4]) }, new Uint8Array(8));
    expect(errorOf(() => openSafetensors(reversed), reversed, "w")).toMatch(/end before they begin/);
    const notSafe = craft({ w: entry("F32", [1], [0, 2 ** 53]) }, new Uint8Array(4));
    expect(errorOf(() => openSafetensors(notSafe), notSafe, "w")).toMatch(/must be two non-negative integers/);
    const threeOffsets = craft({ w: entry("F32", [1], [0, 4, 8]) }, new Uint8Array(4));
    expect(errorOf(() => openSafetensors(threeOffsets), threeOffsets, "w")).toMatch(/must be two non-negative integers/);
  });

  it("rejects gaps and overlaps between tensors", () => {
    const gap = craft({ a: entry("F32", [1], [0, 4]), b: entry("F32", [1], [8, 12]) }, new Uint8Array(12));
    expect(errorOf(() => openSafetensors(gap), gap, "b")).toMatch(/leave a gap of 4 bytes after tensor "a" \[0, 4\]/);
    const start = craft({ a: entry("F32", [1], [4, 8]) }, new Uint8Array(8));
    expect(errorOf(() => openSafetensors(start), start, "a")).toMatch(/gap of 4 bytes at the start/);
    const overlap = craft({ a: entry("F32", [2], [0, 8]), b: entry("F32", [2], [4, 12]) }, new Uint8Array(12));
    expect(errorOf(() => openSafetensors(overlap), overlap, "b")).toMatch(/overlap tensor "a" \[0, 8\]/);
  });

  it("allows zero-size tensors anywhere in the order", () => {
    const path = craft({ a: entry("F32", [1], [0, 4]), z: entry("F32", [0], [4, 4]), b: entry("F32", [1], [4, 8]) }, new Uint8Array(8));
    expect(openSafetensors(path).names()).toEqual(["a", "z", "b"]);
  });

  it("rejects trailing bytes after the last tensor", () => {
    const path = craft({ a: entry("F32", [1], [0, 4]) }, new Uint8Array(6));
    expect(errorOf(() => openSafetensors(path), path)).toMatch(/2 trailing bytes after the last tensor/);
  });

  it("rejects unknown dtypes and bad shapes", () => {
    const dtype = craft({ w: entry("F12", [1], [0, 4]) }, new Uint8Array(4));
    expect(errorOf(() => openSafetensors(dtype), dtype, "w")).toMatch(/unknown dtype "F12"/);
    const inherited = craft({ w: entry("toString", [1], [0, 4]) }, new Uint8Array(4));
    expect(errorOf(() => openSafetensors(inherited), inherited, "w")).toMatch(/unknown dtype/);
    for (const shape of [[-1], [1.5], [2 ** 53], "4", [null]]) {
      const path = craft({ w: entry("F32", shape, [0, 4]) }, new Uint8Array(4));
      expect(errorOf(() => openSafetensors(path), path, "w")).toMatch(/must be an array of non-negative integers/);
    }
    const notObject = craft({ w: [1, 2] });
    expect(errorOf(() => openSafetensors(notObject), notObject, "w")).toMatch(/entry must be an object/);
  });

  it("rejects metadata that is not a map of strings", () => {
    const number = craft({ __metadata__: { format: 1 }, a: entry("F32", [1], [0, 4]) }, new Uint8Array(4));
    expect(errorOf(() => openSafetensors(number), number)).toMatch(/"__metadata__" value for "format" must be a string, found 1/);
    const array = craft({ __metadata__: ["pt"], a: entry("F32", [1], [0, 4]) }, new Uint8Array(4));
    expect(errorOf(() => openSafetensors(array), array)).toMatch(/"__metadata__" must be an object/);
  });
});

describe("sharded checkpoint validation", () => {
  function shardedDir(weightMap: Record<string, string>, shards: Record<string, string[]>): string {
    const dir = freshDir();
    for (const [file, names] of Object.entries(shards)) {
      writeSafetensors(join(dir, file), names.map((name) => ({ name, dtype: "F32", shape: [1], data: new Float32Array([1]) })));
    }
    writeFileSync(join(dir, "model.safetensors.index.json"), JSON.stringify({ metadata: { total_size: 8 }, weight_map: weightMap }));
    return dir;
  }
  const indexOf = (dir: string) => join(dir, "model.safetensors.index.json");

  it("rejects a missing shard", () => {
    const dir = shardedDir({ a: "s1.safetensors", b: "s2.safetensors" }, { "s1.safetensors": ["a"] });
    expect(errorOf(() => openCheckpoint(dir), indexOf(dir), "b")).toMatch(/shard "s2.safetensors" does not exist/);
  });

  it("rejects a tensor missing from its shard", () => {
    const dir = shardedDir({ a: "s1.safetensors", b: "s1.safetensors" }, { "s1.safetensors": ["a"] });
    expect(errorOf(() => openCheckpoint(dir), indexOf(dir), "b")).toMatch(/puts it in shard "s1.safetensors", which has no such tensor/);
  });

  it("rejects a tensor stored in two shards", () => {
    const dir = shardedDir({ a: "s1.safetensors", b: "s2.safetensors" }, { "s1.safetensors": ["a"], "s2.safetensors": ["a", "b"] });
    expect(errorOf(() => openCheckpoint(dir), indexOf(dir), "a")).toMatch(/stored in both shard "s1.safetensors" and "s2.safetensors"/);
  });

  it("rejects shard names that leave the directory", () => {
    for (const bad of ["../s1.safetensors", "sub/s1.safetensors", "sub\\s1.safetensors", "..", ""]) {
      const dir = shardedDir({ a: bad }, { "s1.safetensors": ["a"] });
      expect(errorOf(() => openCheckpoint(dir), indexOf(dir), "a")).toMatch(/must be a bare file name/);
    }
  });

  it("rejects a malformed index", () => {
    const dir = freshDir();
    writeFileSync(indexOf(dir), '{"weight_map": {"a": "s.safetensors", "a": "t.safetensors"}}');
    expect(errorOf(() => openCheckpoint(dir), indexOf(dir))).toMatch(/duplicate key "a" inside "weight_map"/);
    writeFileSync(indexOf(dir), '{"weight_map": []}');
    expect(errorOf(() => openCheckpoint(dir), indexOf(dir))).toMatch(/"weight_map" must be an object/);
    writeFileSync(indexOf(dir), "{");
    expect(errorOf(() => openCheckpoint(dir), indexOf(dir))).toMatch(/not valid JSON/);
  });

  it("names the shard when a shard itself is bad", () => {
    const dir = shardedDir({ a: "s1.safetensors" }, { "s1.safetensors": ["a"] });
    truncateSync(join(dir, "s1.safetensors"), 5);
    errorOf(() => openCheckpoint(dir), join(dir, "s1.safetensors"));
  });

  it("rejects a directory without weights", () => {
    const dir = freshDir();
    expect(errorOf(() => openCheckpoint(dir), dir)).toMatch(/no model.safetensors or model.safetensors.index.json/);
  });
});

describe("atomic writes", () => {
  const tensor = (value: number): SafetensorsInput => ({ name: "w", dtype: "F32", shape: [1], data: new Float32Array([value]) });

  it("leaves only the finished file behind", () => {
    const dir = freshDir();
    writeSafetensors(join(dir, "model.safetensors"), [tensor(1)]);
    writeSafetensors(join(dir, "model.safetensors"), [tensor(2)]);
    expect(readdirSync(dir)).toEqual(["model.safetensors"]);
    expect(Array.from(openSafetensors(join(dir, "model.safetensors")).tensor("w").data)).toEqual([2]);
  });

  it("leaves neither a partial file nor a temp file when writing fails midway", () => {
    const dir = freshDir();
    const path = join(dir, "model.safetensors");
    const abort = () => {
      throw new Error("disk full (simulated)");
    };
    const many = [tensor(1), { ...tensor(2), name: "v" }];
    expect(() => writeSafetensors(path, many, undefined, { onProgress: abort })).toThrow(/simulated/);
    expect(readdirSync(dir)).toEqual([]);

    // An existing file is untouched by a failed rewrite.
    writeSafetensors(path, [tensor(7)]);
    const before = readFileSync(path);
    expect(() => writeSafetensors(path, many, undefined, { onProgress: abort })).toThrow(/simulated/);
    expect(readFileSync(path)).toEqual(before);
    expect(readdirSync(dir)).toEqual(["model.safetensors"]);
  });

  it("cleans up when the final rename fails", () => {
    const dir = freshDir();
    const path = join(dir, "model.safetensors");
    mkdirSync(path); // a directory where the file should go makes rename fail
    writeFileSync(join(path, "keep"), "x");
    expect(errorOf(() => writeSafetensors(path, [tensor(1)]), path)).toMatch(/cannot rename/);
    expect(readdirSync(dir)).toEqual(["model.safetensors"]);
  });

  it("rejects bad input before creating anything, naming file and tensor", () => {
    const dir = freshDir();
    const path = join(dir, "model.safetensors");
    const short = { name: "w", dtype: "F32" as const, shape: [4], data: new Float32Array(3) };
    expect(errorOf(() => writeSafetensors(path, [short]), path, "w")).toMatch(/data holds 12 bytes but F32 \[4\] needs 16/);
    expect(errorOf(() => writeSafetensors(path, [tensor(1), tensor(2)]), path, "w")).toMatch(/given twice/);
    const badShape = { name: "w", dtype: "F32" as const, shape: [-1], data: new Float32Array(0) };
    expect(errorOf(() => writeSafetensors(path, [badShape]), path, "w")).toMatch(/non-negative integers/);
    expect(readdirSync(dir)).toEqual([]);
  });
});
