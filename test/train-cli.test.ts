/**
 * `labor-llm train` and `labor-llm model merge` end to end through the built command: LoRA training on
 * textified synthetic documents, Ctrl-C (SIGINT) saving a checkpoint and exiting 130, --resume finishing the
 * run, merging the adapter, and `logprobs --adapter` agreeing with the merged model.
 */
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openCheckpoint } from "../src/io/safetensors.js";

const bin = join(__dirname, "..", "bin", "labor-llm.js");
const workDir = mkdtempSync(join(tmpdir(), "labor-llm-train-cli-"));
const modelDir = join(workDir, "tiny");
const documents = join(workDir, "docs.jsonl");
afterAll(() => rmSync(workDir, { recursive: true, force: true }));

function run(args: string[]) {
  return spawnSync(process.execPath, [bin, ...args], { encoding: "utf8", env: { ...process.env, CI: "1" } });
}

/** Enough epochs that the run is still going when Ctrl-C arrives; capped at 8 steps. */
const RUN_FLAGS = () => ["--epochs", "30", "--max-steps", "8", "--loss", "targets", "--valid", documents, "--eval-every", "4", ...TRAIN_FLAGS];
const TRAIN_FLAGS = ["--documents", documents, "--lora-rank", "4", "--lora-alpha", "8", "--targets", "q_proj,v_proj,down_proj",
  "--lr", "1e-3", "--batch-tokens", "600", "--threads", "2"];

beforeAll(() => {
  expect(run(["model", "init", "--config", "tiny", "--seed", "1", "--out", modelDir]).status).toBe(0);
  const data = join(workDir, "panel");
  expect(run(["data", "synth", "--profile", "nlsy79", "--people", "12", "--seed", "3", "--out", data]).status).toBe(0);
  const textify = run(["data", "textify", "--panel", join(data, "panel.csv"), "--out", documents, "--tokenizer", modelDir]);
  expect(textify.status, textify.stderr).toBe(0);
});

describe("labor-llm train", () => {
  it("--help documents the flags", () => {
    const result = run(["train", "--help"]);
    expect(result.status).toBe(0);
    for (const flag of ["--lora-rank", "--full", "--resume", "--batch-tokens", "--loss all|targets", "--valid", "--matmul-dtype"]) expect(result.stdout).toContain(flag);
  });

  it("rejects an unknown --matmul-dtype, naming the choices", () => {
    const result = run(["train", "--model", modelDir, "--out", join(workDir, "y"), "--matmul-dtype", "f16", ...TRAIN_FLAGS.slice(0, 2)]);
    expect(result.status).toBe(2);
    expect(result.stderr).toMatch(/--matmul-dtype must be one of f32, bf16, got "f16"/);
  });

  it("rejects an empty or out-of-range number, quoting it", () => {
    const empty = run(["train", "--model", modelDir, "--out", join(workDir, "y"), "--weight-decay", "", ...TRAIN_FLAGS.slice(0, 2)]);
    expect(empty.status).toBe(2);
    expect(empty.stderr).toMatch(/--weight-decay must be ≥ 0, got ""/);
    const dropout = run(["train", "--model", modelDir, "--out", join(workDir, "y"), "--lora-dropout", "1", ...TRAIN_FLAGS.slice(0, 2)]);
    expect(dropout.status).toBe(2);
    expect(dropout.stderr).toMatch(/--lora-dropout must be in \[0, 1\), got "1"/);
  });

  it("rejects contradictory flags", () => {
    const result = run(["train", "--model", modelDir, "--out", join(workDir, "x"), "--full", "--lora-rank", "4", ...TRAIN_FLAGS.slice(0, 2)]);
    expect(result.status).toBe(2);
    expect(result.stderr).toMatch(/--full trains every weight; --lora-rank is for LoRA/);
  });

  it("--freeze needs --full and known parts; with embeddings frozen the saved model keeps the initial embedding", () => {
    const lora = run(["train", "--model", modelDir, "--out", join(workDir, "f"), "--freeze", "embeddings", ...TRAIN_FLAGS.slice(0, 2)]);
    expect(lora.status).toBe(2);
    expect(lora.stderr).toMatch(/--freeze is for --full training/);
    const unknown = run(["train", "--model", modelDir, "--out", join(workDir, "f"), "--full", "--freeze", "heads", ...TRAIN_FLAGS.slice(0, 2)]);
    expect(unknown.status).toBe(2);
    expect(unknown.stderr).toMatch(/--freeze: unknown part "heads"/);
    const out = join(workDir, "frozen");
    const full = run(["train", "--model", modelDir, "--out", out, "--full", "--freeze", "embeddings", "--max-steps", "2", "--lr", "1e-2",
      "--batch-tokens", "600", "--threads", "2", ...TRAIN_FLAGS.slice(0, 2)]);
    expect(full.status, full.stderr).toBe(0);
    const values = (dir: string, name: string) => Array.from(openCheckpoint(dir).tensor(name).data);
    expect(values(join(out, "final"), "model.embed_tokens.weight")).toEqual(values(modelDir, "model.embed_tokens.weight"));
    expect(values(join(out, "final"), "model.norm.weight")).not.toEqual(values(modelDir, "model.norm.weight"));
  });

  it("Ctrl-C saves a checkpoint and exits 130; --resume finishes; merge and logprobs --adapter agree", async () => {
    const out = join(workDir, "run");
    const args = [bin, "train", "--model", modelDir, "--out", out, ...RUN_FLAGS()];
    const child = spawn(process.execPath, args, { env: { ...process.env, CI: "1" } });
    let stderr = "";
    let interrupted = false;
    const status = await new Promise<number | null>((resolve) => {
      child.stderr.on("data", (chunk: Buffer) => {
        stderr += chunk.toString();
        // Exactly one Ctrl-C: a second one means "abort at once, without saving".
        if (!interrupted && stderr.includes("train [")) {
          interrupted = true;
          child.kill("SIGINT");
        }
      });
      child.on("close", (code) => resolve(code));
    });
    expect(status, stderr).toBe(130);
    expect(existsSync(join(out, "checkpoint", "trainer_state.json"))).toBe(true);
    const stoppedAt = JSON.parse(readFileSync(join(out, "checkpoint", "trainer_state.json"), "utf8")).step;
    expect(stoppedAt).toBeGreaterThan(0);

    const resumed = run(["train", "--model", modelDir, "--out", out, ...RUN_FLAGS(), "--resume"]);
    expect(resumed.status, resumed.stderr).toBe(0);
    expect(resumed.stdout).toMatch(/done: 8 steps/);
    const log = readFileSync(join(out, "train_log.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l));
    expect(log.filter((r) => !r.validation).map((r) => r.step)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(existsSync(join(out, "final", "adapter_model.safetensors"))).toBe(true);

    const merged = join(workDir, "merged");
    const merge = run(["model", "merge", "--model", modelDir, "--adapter", join(out, "final"), "--out", merged]);
    expect(merge.status, merge.stderr).toBe(0);
    const texts = join(workDir, "texts.txt");
    writeFileSync(texts, "1979 (high school diploma): Cashiers\n1980 (some college): Secretaries\n");
    const viaAdapter = run(["logprobs", "--model", modelDir, "--adapter", join(out, "final"), "--input", texts, "--out", join(workDir, "a.jsonl")]);
    expect(viaAdapter.status, viaAdapter.stderr).toBe(0);
    expect(run(["logprobs", "--model", merged, "--input", texts, "--out", join(workDir, "m.jsonl")]).status).toBe(0);
    expect(run(["logprobs", "--model", modelDir, "--input", texts, "--out", join(workDir, "b.jsonl")]).status).toBe(0);
    const read = (f: string) => readFileSync(join(workDir, f), "utf8").trim().split("\n").flatMap((l) => JSON.parse(l).logprobs.slice(1) as number[]);
    const [a, m, b] = [read("a.jsonl"), read("m.jsonl"), read("b.jsonl")];
    expect(Math.max(...a.map((x, i) => Math.abs(x - m[i])))).toBeLessThan(1e-5);
    expect(Math.max(...a.map((x, i) => Math.abs(x - b[i])))).toBeGreaterThan(0); // the adapter changed something
  });
});
