/**
 * The demo end to end at a reduced size, through the same code path as `labor-llm demo`: the table has every
 * model, the report files exist, no model beats the oracle, and a rerun reuses every finished step.
 */
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { DEMO_DEFAULTS, runDemoPipeline, type DemoOptions } from "../src/demo/pipeline.js";
import { createCpuBackend } from "../src/engine/cpu/backend.js";
import { REPORT_FILES } from "../src/report/write.js";
import { EXPERIMENT_REPORT_FILES } from "../src/experiment/report.js";

const workDir = mkdtempSync(join(tmpdir(), "labor-llm-demo-"));
afterAll(() => rmSync(workDir, { recursive: true, force: true }));

const options: DemoOptions = {
  ...DEMO_DEFAULTS,
  outDir: workDir,
  seed: 3,
  backend: createCpuBackend(),
  people: 60,
  resumes: 60,
  modelPreset: "tiny",
  careerPreset: "tiny",
  pretrainEpochs: 1,
  finetuneEpochs: 1,
  testPeople: 2,
  pretrainLoss: "targets",
  finetuneLoss: "all",
  titleListCopies: 1,
  finetuneTitleListCopies: 1,
  finetuneEvalEvery: 2,
  log: () => {},
};

describe("labor-llm demo (reduced size)", () => {
  it("scores every model on the same person-years, writes the report, and the oracle is best", async () => {
    const result = await runDemoPipeline(options);
    const names = result.metrics.map((m) => m.model);
    expect(names).toEqual(["oracle", "markov", "logit", "career", "off-the-shelf LLM", "FT-LLM"]);
    const personYears = new Set(result.metrics.map((m) => m.personYears));
    expect(personYears.size).toBe(1);
    expect([...personYears][0]).toBeGreaterThan(10);
    const oracle = result.metrics[0].perplexity;
    for (const m of result.metrics.slice(1)) expect(m.perplexity).toBeGreaterThanOrEqual(oracle);
    expect(result.table).toMatch(/\| model \|/);
    for (const name of names) expect(result.table).toContain(`| ${name} |`);
    for (const file of REPORT_FILES) expect(existsSync(join(result.reportDir, file))).toBe(true);
    for (const file of EXPERIMENT_REPORT_FILES) expect(existsSync(join(result.reportDir, "paired", file))).toBe(true);
    expect(result.table).toMatch(/FT-LLM − markov: Δ -?\d/);
  }, 300_000);

  it("a rerun reuses every finished step", async () => {
    const lines: string[] = [];
    const started = performance.now();
    await runDemoPipeline({ ...options, log: (line) => lines.push(line) });
    expect(lines.filter((l) => /reusing/.test(l)).length).toBe(8);
    expect(performance.now() - started).toBeLessThan(60_000);
  }, 120_000);

  it("--model-seed trains new models on the same data: only the data's steps are reused", async () => {
    const lines: string[] = [];
    const result = await runDemoPipeline({ ...options, modelSeed: 4, log: (line) => lines.push(line) });
    expect(lines.filter((l) => /reusing/.test(l)).map((l) => l.trim().split(":")[0])).toEqual(["oracle", "markov", "logit"]);
    const first = await runDemoPipeline({ ...options, log: () => {} });
    const byModel = (metrics: typeof result.metrics) => new Map(metrics.map((m) => [m.model, m]));
    const [a, b] = [byModel(first.metrics), byModel(result.metrics)];
    for (const model of ["oracle", "markov", "logit"]) expect(b.get(model)?.perplexity).toBe(a.get(model)?.perplexity);
    for (const model of ["career", "off-the-shelf LLM", "FT-LLM"]) {
      expect(b.get(model)?.personYears).toBe(a.get(model)?.personYears);
      expect(b.get(model)?.perplexity).not.toBe(a.get(model)?.perplexity);
    }
  }, 300_000);
});
