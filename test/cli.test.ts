/** The CLI end to end through the built `labor-llm` command: init, export, logprobs, info, errors. */
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";

const bin = join(__dirname, "..", "bin", "labor-llm.js");
const workDir = mkdtempSync(join(tmpdir(), "labor-llm-cli-"));
afterAll(() => rmSync(workDir, { recursive: true, force: true }));

function run(args: string[]) {
  return spawnSync(process.execPath, [bin, ...args], { encoding: "utf8", env: { ...process.env, CI: "1" } });
}

describe("labor-llm CLI", () => {
  const modelDir = join(workDir, "tiny");

  it("model init writes an HF model directory", () => {
    const result = run(["model", "init", "--config", "tiny", "--seed", "1", "--out", modelDir]);
    expect(result.stderr + result.stdout).toContain("wrote");
    expect(result.status).toBe(0);
    for (const file of ["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"]) {
      expect(existsSync(join(modelDir, file))).toBe(true);
    }
    const config = JSON.parse(readFileSync(join(modelDir, "config.json"), "utf8"));
    expect(config.model_type).toBe("llama");
    expect(config.num_key_value_heads).toBe(2);
  });

  it("refuses to overwrite a non-empty directory", () => {
    const result = run(["model", "init", "--config", "tiny", "--out", modelDir]);
    expect(result.status).toBe(2);
    expect(result.stderr).toMatch(/is not empty/);
  });

  it("logprobs writes one JSON line per text, first log-prob null", () => {
    const input = join(workDir, "texts.txt");
    writeFileSync(input, "1979 (high school diploma): Cashiers\n\n1980 (some college): Secretaries\n");
    const out = join(workDir, "out.jsonl");
    const result = run(["logprobs", "--model", modelDir, "--input", input, "--out", out, "--backend", "cpu"]);
    expect(result.status, result.stderr).toBe(0);
    const lines = readFileSync(out, "utf8").trim().split("\n").map((l) => JSON.parse(l));
    expect(lines.map((l) => l.line)).toEqual([1, 3]);
    for (const l of lines) {
      expect(l.tokens[0]).toBe(1);
      expect(l.logprobs[0]).toBeNull();
      expect(l.logprobs.length).toBe(l.tokens.length);
      for (const v of l.logprobs.slice(1)) expect(v).toBeLessThan(0);
    }
  });

  it("logprobs names the file and line of a bad JSONL record", () => {
    const input = join(workDir, "bad.jsonl");
    writeFileSync(input, '{"text": "ok"}\n{"txt": 3}\n');
    const result = run(["logprobs", "--model", modelDir, "--input", input, "--out", join(workDir, "x.jsonl")]);
    expect(result.status).toBe(1);
    expect(result.stderr).toContain("bad.jsonl:2");
  });

  it("export-gguf writes a GGUF file", () => {
    const out = join(workDir, "tiny.gguf");
    const result = run(["model", "export-gguf", "--model", modelDir, "--out", out]);
    expect(result.status, result.stderr).toBe(0);
    expect(readFileSync(out).subarray(0, 4).toString("latin1")).toBe("GGUF");
  });

  it("info reports the CPU kernel paths found and chosen", () => {
    const text = execFileSync(process.execPath, [bin, "info"], { encoding: "utf8" });
    expect(text).toMatch(/kernel paths available: .*scalar/);
    expect(text).toMatch(/chosen: (amx|avx512|avx2|scalar)/);
  });

  it("unknown flags and backends are usage errors", () => {
    expect(run(["logprobs", "--nope"]).status).toBe(2);
    const result = run(["logprobs", "--model", modelDir, "--input", "x", "--out", "y", "--backend", "tpu"]);
    expect(result.status).toBe(2);
  });

  it("experiment refuses a --seeds list that cannot be pooled, or one given with --seed, before any work", () => {
    const one = run(["experiment", "--out", join(workDir, "exp-x"), "--seeds", "3"]);
    expect(one.status).toBe(2);
    expect(one.stderr).toMatch(/--seeds must list at least two different non-negative integers separated by commas, got "3"/);
    const both = run(["experiment", "--out", join(workDir, "exp-x"), "--seeds", "0,1", "--seed", "2"]);
    expect(both.status).toBe(2);
    expect(both.stderr).toMatch(/--seed and --seeds: give one seed or a list, not both/);
    expect(existsSync(join(workDir, "exp-x"))).toBe(false);
  });

  it("demo refuses recipe flags that contradict each other or are out of range, before any work", () => {
    const lora = run(["demo", "--out", join(workDir, "demo-x"), "--finetune-mode", "lora", "--finetune-freeze", "attention"]);
    expect(lora.status).toBe(2);
    expect(lora.stderr).toMatch(/--finetune-freeze is for --finetune-mode full/);
    const share = run(["demo", "--out", join(workDir, "demo-x"), "--finetune-resumes-share", "1.5"]);
    expect(share.status).toBe(2);
    expect(share.stderr).toMatch(/--finetune-resumes-share must be in \[0, 1\], got "1.5"/);
    const warmup = run(["demo", "--out", join(workDir, "demo-x"), "--pretrain-warmup", "0.6"]);
    expect(warmup.status).toBe(2);
    expect(warmup.stderr).toMatch(/--pretrain-warmup must be in \[0, 0.5\], got "0.6"/);
    const modelSeed = run(["demo", "--out", join(workDir, "demo-x"), "--model-seed", "1.5"]);
    expect(modelSeed.status).toBe(2);
    expect(modelSeed.stderr).toMatch(/--model-seed must be an integer ≥ 0, got "1.5"/);
    expect(existsSync(join(workDir, "demo-x"))).toBe(false);
  });
});
