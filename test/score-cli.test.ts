/** `labor-llm score | baseline | eval` in-process, end to end on a small synthetic panel and a tiny random model. */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, describe, expect, it, vi } from "vitest";
import { UsageError } from "../src/cli/args.js";
import { runBaseline } from "../src/cli/commands/baseline.js";
import { runData } from "../src/cli/commands/data.js";
import { runEval } from "../src/cli/commands/eval.js";
import { runScore } from "../src/cli/commands/score.js";
import { loadPanel } from "../src/data/load.js";
import { panelToCsv } from "../src/data/panel.js";
import { generateSyntheticPanel } from "../src/data/synthetic.js";
import { initModel } from "../src/model/init.js";
import { MODEL_PRESETS } from "../src/model/presets.js";
import { readPredictions, type PredictionRecord } from "../src/score/predictions.js";

const workDir = mkdtempSync(join(tmpdir(), "labor-llm-score-cli-"));
afterAll(() => rmSync(workDir, { recursive: true, force: true }));
afterEach(() => vi.restoreAllMocks());

async function run(command: (argv: string[]) => Promise<number>, args: string[]): Promise<{ status: number; stdout: string; stderr: string }> {
  const out: string[] = [];
  const err: string[] = [];
  vi.spyOn(console, "log").mockImplementation((...parts: unknown[]) => void out.push(parts.join(" ")));
  vi.spyOn(console, "error").mockImplementation((...parts: unknown[]) => void err.push(parts.join(" ")));
  vi.spyOn(process.stderr, "write").mockImplementation(() => true);
  const status = await command(args);
  vi.restoreAllMocks();
  return { status, stdout: out.join("\n"), stderr: err.join("\n") };
}

async function records(path: string): Promise<PredictionRecord[]> {
  const all: PredictionRecord[] = [];
  await readPredictions(path, (r) => all.push(r));
  return all;
}

describe("labor-llm score / baseline / eval", () => {
  const synth = join(workDir, "synth");
  const outputs = join(workDir, "out");

  it("baselines write predictions for the test split; eval writes one table, CSV, JSON and HTML", async () => {
    mkdirSync(outputs, { recursive: true });
    expect((await run(runData, ["synth", "--profile", "nlsy79", "--people", "120", "--seed", "2", "--out", synth])).status).toBe(0);
    const panel = join(synth, "panel.csv");
    // logit's goes to the compact binary layout (.bin); eval reads both layouts.
    for (const kind of ["oracle", "markov", "logit"]) {
      const extra = kind === "logit" ? ["--iterations", "5"] : [];
      const file = `${kind}.${kind === "logit" ? "bin" : "jsonl"}`;
      const result = await run(runBaseline, [kind, "--panel", panel, "--out", join(outputs, file), ...extra]);
      expect(result.status).toBe(0);
      expect(result.stdout).toMatch(new RegExp(`wrote .*${file}: ${kind}, \\d+ person-years \\(test\\)`));
    }
    expect((await records(join(outputs, "logit.bin"))).map((r) => [r.personId, r.year, r.truth])).toEqual(
      (await records(join(outputs, "oracle.jsonl"))).map((r) => [r.personId, r.year, r.truth]),
    );
    const oracle = await records(join(outputs, "oracle.jsonl"));
    const markov = await records(join(outputs, "markov.jsonl"));
    expect(markov.map((r) => [r.personId, r.year, r.truth])).toEqual(oracle.map((r) => [r.personId, r.year, r.truth]));
    // The oracle's probability of each outcome is the one data synth wrote to oracle.csv.
    const written = new Map(
      readFileSync(join(synth, "oracle.csv"), "utf8").trim().split("\n").slice(1).map((line) => {
        const [id, year, , p] = line.split(",");
        return [`${id}/${year}`, Number(p)] as const;
      }),
    );
    const codes = (await readPredictions(join(outputs, "oracle.jsonl"), () => {})).codes;
    for (const r of oracle) expect(Math.exp(r.logProbs[codes.indexOf(r.truth)])).toBeCloseTo(written.get(`${r.personId}/${r.year}`)!, 6);

    const evalDir = join(outputs, "eval");
    const result = await run(runEval, ["--predictions", join(outputs, "oracle.jsonl"), join(outputs, "markov.jsonl"), join(outputs, "logit.bin"), "--out", evalDir]);
    expect(result.status).toBe(0);
    expect(result.stdout).toMatch(/\| model \| person-years \| PPL \|/);
    expect(result.stdout).toMatch(/\| oracle \| \d+ \|/);
    for (const file of ["metrics.md", "metrics.json", "metrics.csv", "groups.csv", "report.html"]) expect(existsSync(join(evalDir, file))).toBe(true);
    const json = JSON.parse(readFileSync(join(evalDir, "metrics.json"), "utf8")) as { models: { model: string; perplexity: number }[] };
    expect(json.models.map((m) => m.model)).toEqual(["oracle", "markov", "logit"]);
    expect(json.models[1].perplexity).toBeGreaterThan(json.models[0].perplexity);
    const html = readFileSync(join(evalDir, "report.html"), "utf8");
    expect(html).toContain("<svg");
    expect(html).not.toMatch(/<script|https?:\/\/(?!www\.w3\.org)/);
    expect(readFileSync(join(evalDir, "metrics.csv"), "utf8").split("\n")[0]).toMatch(/^model,person-years,PPL,/);
  });

  it("score writes raw log-probabilities of every outcome for every person-year (prefix-shared = naive)", async () => {
    const modelDir = join(workDir, "tiny");
    initModel({ config: MODEL_PRESETS.tiny, seed: 4, dtype: "f32", outDir: modelDir });
    const full = await loadPanel(join(synth, "panel.csv"));
    const person = { ...full.people[0], waves: full.people[0].waves.slice(0, 2) };
    const panel = join(workDir, "one.csv");
    writeFileSync(panel, panelToCsv({ people: [person] }));
    const shared = join(outputs, "llm.jsonl");
    const result = await run(runScore, ["--model", modelDir, "--panel", panel, "--split", "all", "--out", shared, "--name", "tiny", "--backend", "cpu"]);
    expect(result.status).toBe(0);
    expect(result.stdout).toMatch(/wrote .*llm.jsonl: 2 person-years of 1 people \(all\), 344 candidates/);
    const naivePath = join(outputs, "naive.jsonl");
    expect((await run(runScore, ["--model", modelDir, "--panel", panel, "--split", "all", "--out", naivePath, "--naive", "--backend", "cpu"])).status).toBe(0);
    const [a, b] = [await records(shared), await records(naivePath)];
    expect(a).toHaveLength(2);
    a.forEach((r, i) => {
      expect(r.truth).toBe(person.waves[i].occupation);
      expect(r.previous).toBe(i === 0 ? null : person.waves[0].occupation);
      r.logProbs.forEach((v, c) => expect(Math.abs(v - b[i].logProbs[c])).toBeLessThan(1e-4));
    });
  });

  it("usage errors name the problem", async () => {
    await expect(runScore(["--panel", "x.csv", "--out", "y"])).rejects.toThrow(UsageError);
    await expect(runBaseline(["nonsense", "--panel", "x", "--out", "y"])).rejects.toThrow(/expected one baseline \(markov, logit, oracle, career\)/);
    await expect(runEval(["--out", join(workDir, "e")])).rejects.toThrow("missing required flag --predictions");
    const lonely = join(workDir, "lonely");
    mkdirSync(lonely, { recursive: true });
    writeFileSync(join(lonely, "panel.csv"), panelToCsv(generateSyntheticPanel({ profile: "nlsy79", people: 5, seed: 1 }).panel));
    await expect(runBaseline(["markov", "--panel", join(lonely, "panel.csv"), "--out", join(lonely, "m.jsonl")])).rejects.toThrow(/--split test needs a splits file/);
  });
});
