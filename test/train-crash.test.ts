/**
 * Crash-safe training through the built command in child processes: `train` killed with SIGKILL at random
 * points — inside checkpoint writes (LABOR_LLM_WRITE_FAULT=kill@N:checkpoint-), inside any write, and from
 * outside at a random moment — and continued with --resume each time ends with the uninterrupted run's
 * final weights and log, bit for bit; a full disk (an injected ENOSPC) during a checkpoint write fails with
 * one clear line and leaves the previous checkpoint in place, from which --resume finishes the same run.
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseWriteFault, WRITE_FAULT_ENV } from "../src/io/fault-injection.js";
import { makeRandom } from "./op-suite.js";
import { killSeed, runChild } from "./child-process.js";

const bin = join(__dirname, "..", "bin", "labor-llm.js");
const workDir = mkdtempSync(join(tmpdir(), "labor-llm-train-crash-"));
const modelDir = join(workDir, "tiny");
const documents = join(workDir, "docs.jsonl");
afterAll(() => rmSync(workDir, { recursive: true, force: true }));

const seed = killSeed;

/** 8 LoRA steps, a checkpoint every 2, validation (and a best/ copy) every 4. */
const trainArgs = (out: string, resume: boolean) => [bin, "train", "--model", modelDir, "--out", out, "--documents", documents,
  "--valid", documents, "--eval-every", "4", "--checkpoint-every", "2", "--epochs", "30", "--max-steps", "8", "--loss", "targets",
  "--lora-rank", "4", "--lora-alpha", "8", "--targets", "q_proj,v_proj,down_proj", "--lr", "1e-3", "--batch-tokens", "600",
  "--threads", "1", "--backend", "cpu", ...(resume ? ["--resume"] : [])];


/** Every file of a directory tree (links followed), by relative path. */
function files(dir: string, prefix = ""): Map<string, Buffer> {
  const found = new Map<string, Buffer>();
  for (const entry of readdirSync(dir).sort()) {
    const path = join(dir, entry);
    if (statSync(path).isDirectory()) for (const [name, bytes] of files(path, `${prefix}${entry}/`)) found.set(name, bytes);
    else found.set(prefix + entry, readFileSync(path));
  }
  return found;
}

/** What a finished run leaves that must not depend on interruptions: final weights, best weights, the log. */
function outcome(out: string): Map<string, Buffer> {
  const result = new Map<string, Buffer>();
  for (const [name, bytes] of files(join(out, "final"))) result.set(`final/${name}`, bytes);
  for (const [name, bytes] of files(join(out, "best"))) result.set(`best/${name}`, bytes);
  result.set("train_log.jsonl", readFileSync(join(out, "train_log.jsonl")));
  return result;
}

function expectSameOutcome(out: string, reference: string, where: string): void {
  const [got, want] = [outcome(out), outcome(reference)];
  expect([...got.keys()], where).toEqual([...want.keys()]);
  for (const [name, bytes] of want) expect(got.get(name)!.equals(bytes), `${where}: ${name} differs`).toBe(true);
}

const reference = join(workDir, "reference");
let checkpointBytes = 0;
/** Wall time of the uninterrupted run (start-up included), for kills from outside. */
let referenceMs = 0;

beforeAll(async () => {
  const run = (args: string[]) => spawnSync(process.execPath, [bin, ...args], { encoding: "utf8", env: { ...process.env, CI: "1" } });
  expect(run(["model", "init", "--config", "tiny", "--seed", "1", "--out", modelDir]).status).toBe(0);
  const data = join(workDir, "panel");
  expect(run(["data", "synth", "--profile", "nlsy79", "--people", "12", "--seed", "3", "--out", data]).status).toBe(0);
  const textify = run(["data", "textify", "--panel", join(data, "panel.csv"), "--out", documents, "--tokenizer", modelDir]);
  expect(textify.status, textify.stderr).toBe(0);
  const started = Date.now();
  const clean = await runChild(trainArgs(reference, false));
  referenceMs = Date.now() - started;
  expect(clean.status, clean.stderr).toBe(0);
  expect(clean.stdout).toMatch(/done: 8 steps/);
  for (const bytes of files(join(reference, "checkpoint")).values()) checkpointBytes += bytes.length;
}, 120_000);

describe("train after kill -9", () => {
  it("SIGKILL at random points (inside checkpoint writes too), --resume each time: the uninterrupted run's final weights, bit for bit", async () => {
    const out = join(workDir, "killed");
    const random = makeRandom(seed);
    const points: string[] = [];
    let kills = 0;
    let killedInCheckpoint = 0;
    let completed = 0;
    // Cycle: kill@N in the checkpoint files' writes, kill@N in any write, SIGKILL from outside. A run that
    // gets to the end is checked against the reference and the next starts afresh, until 4 kills are seen.
    for (let attempt = 0; attempt < 16 && kills < 4; attempt++) {
      const kind = (["checkpoint", "any", "outside"] as const)[attempt % 3];
      const point = kind === "checkpoint" ? `kill@${Math.floor(random() * 1.5 * checkpointBytes)}:checkpoint-`
        : kind === "any" ? `kill@${Math.floor(random() * 2 * checkpointBytes)}`
          : `after ${Math.floor((0.3 + 0.7 * random()) * referenceMs)} ms`;
      points.push(point);
      const env: Record<string, string> = kind === "outside" ? {} : { [WRITE_FAULT_ENV]: point };
      const resume = existsSync(join(out, "checkpoint"));
      const result = await runChild(trainArgs(out, resume), env, kind === "outside" ? Number(point.split(" ")[1]) : undefined);
      const where = `seed ${seed}, points ${points.join(", ")}`;
      if (result.signal === "SIGKILL") {
        kills++;
        // A kill inside a checkpoint write leaves a checkpoint directory the link does not point at.
        const linked = existsSync(join(out, "checkpoint")) ? readlinkSync(join(out, "checkpoint")) : null;
        if (kind === "checkpoint" && readdirSync(out).some((e) => e.startsWith("checkpoint-") && e !== linked)) killedInCheckpoint++;
        continue;
      }
      expect(result.status, `${where}: ${result.stderr}`).toBe(0);
      expect(result.stdout, where).toMatch(/done: 8 steps/);
      expectSameOutcome(out, reference, where);
      completed++;
      rmSync(out, { recursive: true, force: true });
    }
    const where = `seed ${seed}, points ${points.join(", ")}`;
    if (existsSync(out)) {
      const last = await runChild(trainArgs(out, existsSync(join(out, "checkpoint"))));
      expect(last.status, `${where}: ${last.stderr}`).toBe(0);
      expectSameOutcome(out, reference, where);
      completed++;
    }
    expect(kills, `${where}: kills`).toBeGreaterThanOrEqual(4);
    expect(killedInCheckpoint, `${where}: kills inside a checkpoint write`).toBeGreaterThanOrEqual(1);
    if (process.env.LABOR_TEST_VERBOSE) console.log(`${where}: ${kills} kills, ${killedInCheckpoint} inside a checkpoint write, ${completed} runs completed`);
  }, 240_000);

  it("SIGKILL while the step the link points at is saved again (the end of a run whose last step was a periodic checkpoint)", async () => {
    const out = join(workDir, "resave");
    // Steps 2, 4, 6, 8 are saved, then step 8 again at the end: kill inside that second save.
    const killed = await runChild(trainArgs(out, false), { [WRITE_FAULT_ENV]: `kill@${checkpointBytes + 1000}:checkpoint-000008` });
    expect(killed.signal).toBe("SIGKILL");
    const resumed = await runChild(trainArgs(out, true));
    expect(resumed.status, resumed.stderr).toBe(0);
    expectSameOutcome(out, reference, "after a kill in the re-save");
  }, 120_000);

  it("a full disk during a checkpoint write: one clear line, the previous checkpoint intact, --resume finishes the same run", async () => {
    const out = join(workDir, "full-disk");
    const failed = await runChild(trainArgs(out, false), { [WRITE_FAULT_ENV]: "enospc@1000:checkpoint-000004" });
    expect(failed.status).toBe(1);
    const message = failed.stderr.trim().split("\n").filter((line) => line.startsWith("labor-llm train:"));
    expect(message).toHaveLength(1);
    expect(message[0]).toMatch(
      /^labor-llm train: checkpoint of step 4 not saved \(.*checkpoint-000004\/parameters\.safetensors: write failed: ENOSPC: no space left on device.*\); .*full-disk\/checkpoint still holds checkpoint-000002$/,
    );
    expect(readlinkSync(join(out, "checkpoint"))).toBe("checkpoint-000002");
    expect(readdirSync(out).filter((e) => e.startsWith("checkpoint-") || e.endsWith(".tmp"))).toEqual(["checkpoint-000002"]);
    expect(readdirSync(join(out, "checkpoint-000002")).sort()).toEqual(["optimizer.safetensors", "parameters.safetensors", "trainer_state.json"]);
    const resumed = await runChild(trainArgs(out, true));
    expect(resumed.status, resumed.stderr).toBe(0);
    expectSameOutcome(out, reference, "after the full disk");
  }, 120_000);

  it("LABOR_LLM_WRITE_FAULT is parsed strictly", () => {
    expect(parseWriteFault("kill@10")).toEqual({ kind: "kill", afterBytes: 10, pathPart: "" });
    expect(parseWriteFault("enospc@0:checkpoint-000004")).toEqual({ kind: "enospc", afterBytes: 0, pathPart: "checkpoint-000004" });
    expect(() => parseWriteFault("crash@1")).toThrow(/LABOR_LLM_WRITE_FAULT="crash@1": expected kill@BYTES or enospc@BYTES/);
  });
});
