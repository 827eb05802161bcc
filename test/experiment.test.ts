/**
 * `labor-llm experiment` at the tiny scale: the machinery, not the findings. Every survey gets every model on
 * the same people, the report files hold intervals that contain their estimates, the planned paired
 * comparisons are all there, and a rerun resumes from the cache (no stage runs again). Pooled over two seeds,
 * each paired comparison is the person-year-weighted mean of the seeds' own estimates.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { EXPERIMENT_SCALES, runExperiment, runPooledExperiment } from "../src/experiment/pipeline.js";
import { EXPERIMENT_REPORT_FILES, type ExperimentReport } from "../src/experiment/report.js";
import { createCpuBackend } from "../src/engine/cpu/backend.js";

const workDir = mkdtempSync(join(tmpdir(), "labor-llm-experiment-"));
afterAll(() => rmSync(workDir, { recursive: true, force: true }));

describe("labor-llm experiment (tiny scale)", () => {
  // seed-1/: the layout of a pooled run, so that the pooling test below reuses this run.
  const options = { scale: EXPERIMENT_SCALES.tiny, scaleName: "tiny", outDir: join(workDir, "seed-1"), seed: 1, backend: createCpuBackend(), log: () => {} };

  it("scores every model on every survey and writes the report with intervals and paired comparisons", async () => {
    const lines: string[] = [];
    const report = await runExperiment({ ...options, log: (line: string) => lines.push(line) });
    const surveys = EXPERIMENT_SCALES.tiny.surveys;
    // The main survey's ablations come after every survey's main table (an interrupted run has the headline first).
    const stages = lines.filter((l) => /^\[[23]\/4\]/.test(l)).map((l) => l.slice(0, 5));
    expect(stages).toEqual([...surveys.map(() => "[2/4]"), "[3/4]"]);
    for (const file of EXPERIMENT_REPORT_FILES) expect(existsSync(join(report.dir, file)), file).toBe(true);
    expect([...new Set(report.rows.map((r) => r.survey))]).toEqual(surveys);
    const main = report.rows.filter((r) => r.survey === surveys[0]).map((r) => r.model);
    expect(main).toEqual([
      "oracle", "markov", "logit", "CAREER (tiny)", "off-the-shelf LLM", "FT-LLM",
      "FT-LLM, codes", "FT-LLM, no birth year", "FT-LLM, no education",
      "FT-LLM tiny, survey only", "FT-LLM tiny, survey + careers",
    ]);
    expect(report.rows.filter((r) => r.survey === surveys[1]).map((r) => r.model)).toEqual(main.slice(0, 6));
    for (const row of report.rows) {
      for (const interval of Object.values(row.intervals)) {
        if (!Number.isFinite(interval.estimate)) continue;
        expect(interval.lower).toBeLessThanOrEqual(interval.estimate + 1e-9);
        expect(interval.upper).toBeGreaterThanOrEqual(interval.estimate - 1e-9);
      }
      if (row.model === "oracle") expect(row.excessLogLoss.estimate).toBe(0);
    }
    const questions = new Set(report.comparisons.map((c) => `${c.survey}: ${c.question}`));
    for (const q of ["FT-LLM vs CAREER (tiny)", "FT-LLM vs logit", "FT-LLM vs markov", "value of fine-tuning", "titles vs codes", "birth-year line (with vs without)", "education (with vs without)"]) {
      expect(questions.has(`${surveys[0]}: ${q}`), q).toBe(true);
    }
    expect([...questions].some((q) => q.includes("data vs size"))).toBe(true);
    expect(report.findings.length).toBe(report.comparisons.length + 1);
    expect(report.learningCurves.length).toBe(surveys.length + 5);
    for (const curve of report.learningCurves) expect(curve.validation.length).toBeGreaterThan(0);
    // Both foundations' pretraining curves, read back from their training logs (one step per point at this size).
    expect(report.pretrainingCurves.length).toBe(2);
    for (const curve of report.pretrainingCurves) {
      expect(curve.points.length).toBeGreaterThan(0);
      expect(curve.points.every((p, i) => i === 0 || p.step > curve.points[i - 1].step)).toBe(true);
    }
    const curvesCsv = readFileSync(join(report.dir, "pretraining-curves.csv"), "utf8").trim().split("\n");
    expect(curvesCsv.length).toBe(1 + report.pretrainingCurves.reduce((n, c) => n + c.points.length, 0));
    const html = readFileSync(join(report.dir, "report.html"), "utf8");
    expect(html).toContain("Paired comparisons");
    expect(html).toContain("Validation loss");
    expect(html).toContain("of each foundation during pretraining");
  }, 600_000);

  it("resumes from the cache: a rerun trains and scores nothing again", async () => {
    const lines: string[] = [];
    const started = performance.now();
    await runExperiment({ ...options, log: (line: string) => lines.push(line) });
    const reused = lines.filter((l) => l.includes("reusing")).length;
    expect(reused).toBeGreaterThan(20);
    expect(lines.some((l) => /fine-tuning on \d+ training documents|pretrained on \d+ career documents/.test(l))).toBe(false);
    expect(performance.now() - started).toBeLessThan(60_000);
  }, 120_000);

  it("scoring more test people reuses every foundation and fine-tuning, and scores the added people", async () => {
    const lines: string[] = [];
    const scale = { ...EXPERIMENT_SCALES.tiny, testPeople: EXPERIMENT_SCALES.tiny.testPeople + 1 };
    const report = await runExperiment({ ...options, scale, log: (line: string) => lines.push(line) });
    expect(lines.some((l) => /fine-tuning on \d+ training documents|pretrained on \d+ career documents/.test(l))).toBe(false);
    expect(Math.min(...report.rows.map((r) => r.people))).toBe(scale.testPeople);
  }, 300_000);

  it("replaying the foundation's resumes in the fine-tuning redoes the fine-tunings with those documents added, not the foundations", async () => {
    const lines: string[] = [];
    const scale = { ...EXPERIMENT_SCALES.tiny, finetune: { ...EXPERIMENT_SCALES.tiny.finetune, resumesReplayShare: 0.5 } };
    await runExperiment({ ...options, scale, log: (line: string) => lines.push(line) });
    const replayed = `+ ${EXPERIMENT_SCALES.tiny.resumes / 2} of the foundation's resumes replayed`;
    expect(lines.filter((l) => /fine-tuning on \d+ training documents/.test(l)).every((l) => l.endsWith(replayed))).toBe(true);
    expect(lines.filter((l) => l.endsWith(replayed)).length).toBe(EXPERIMENT_SCALES.tiny.surveys.length + 5);
    expect(lines.some((l) => /pretrained on \d+ career documents/.test(l))).toBe(false);
    await expect(runExperiment({ ...options, scale: { ...scale, finetune: { ...scale.finetune, resumesReplayShare: 1.5 } } }))
      .rejects.toThrow(/resumesReplayShare must be in \(0, 1\], got 1.5/);
  }, 300_000);

  it("--members 2: each survey's FT-LLM and CAREER again from model seed + 1000, their ensembles, compared size for size", async () => {
    const lines: string[] = [];
    const report = await runExperiment({ ...options, members: 2, log: (line: string) => lines.push(line) });
    expect(lines).toContain("      ensemble member 2/2: model seed 1001");
    // Member 1 is the run above, reused; only member 2's foundation is pretrained.
    expect(lines.filter((l) => /pretrained on \d+ career documents/.test(l)).length).toBe(1);
    const surveys = EXPERIMENT_SCALES.tiny.surveys;
    expect(report.rows.filter((r) => r.survey === surveys[1]).map((r) => r.model)).toEqual([
      "oracle", "markov", "logit", "CAREER (tiny)", "off-the-shelf LLM", "FT-LLM",
      "CAREER (tiny), member 2", "FT-LLM, member 2", "CAREER (tiny) ×2", "FT-LLM ×2",
    ]);
    for (const survey of surveys) {
      const logLoss = (model: string) => Math.log(report.rows.find((r) => r.survey === survey && r.model === model)!.intervals.perplexity.estimate);
      // A mixture's log loss is at most its members' mean (log is concave), person-year by person-year.
      for (const model of ["FT-LLM", "CAREER (tiny)"]) {
        expect(logLoss(`${model} ×2`)).toBeLessThanOrEqual((logLoss(model) + logLoss(`${model}, member 2`)) / 2 + 1e-9);
      }
      const questions = report.comparisons.filter((c) => c.survey === survey).map((c) => c.question);
      for (const q of ["FT-LLM ×2 vs CAREER (tiny) ×2", "ensemble gain: FT-LLM ×2 vs one", "ensemble gain: CAREER (tiny) ×2 vs one", "FT-LLM vs CAREER (tiny)"]) {
        expect(questions, q).toContain(q);
      }
      expect(questions.some((q) => q.includes("member 2"))).toBe(false);
    }
    expect(report.learningCurves.length).toBe(2 * surveys.length + 5);
    expect(report.pretrainingCurves.map((c) => c.foundation)).toEqual(["tiny", "tiny", "tiny, member 2"]);
    expect(report.markdown).toContain("ensembles of 2 members");
  }, 600_000);

  it("pools two seeds: each comparison is the person-year-weighted mean of the seeds' own estimates, resampled within each seed", async () => {
    const lines: string[] = [];
    const pooled = await runPooledExperiment({ ...options, outDir: workDir, seeds: [1, 2], log: (line: string) => lines.push(line) });
    expect(lines.some((l) => l.includes("reusing"))).toBe(true);
    for (const file of EXPERIMENT_REPORT_FILES) expect(existsSync(join(workDir, "report", file)), file).toBe(true);
    const single = (seed: number): ExperimentReport => JSON.parse(readFileSync(join(workDir, `seed-${seed}`, "report", "report.json"), "utf8"));
    const [one, two] = [single(1), single(2)];
    const personYears = (report: ExperimentReport, survey: string) => report.rows.find((r) => r.survey === survey && r.model === "oracle")!.personYears;
    expect(pooled.comparisons.length).toBe(one.comparisons.length);
    for (const c of pooled.comparisons.filter((c) => c.statistic.startsWith("mean log loss (nats"))) {
      const find = (report: ExperimentReport) => report.comparisons.find((x) => x.survey === c.survey && x.question === c.question && x.statistic === c.statistic)!;
      const [e1, e2] = [find(one).difference.estimate, find(two).difference.estimate];
      expect(c.perRun!.map((r) => r.run)).toEqual(["seed 1", "seed 2"]);
      expect(c.perRun![0].estimate).toBeCloseTo(e1, 12);
      expect(c.perRun![1].estimate).toBeCloseTo(e2, 12);
      const [w1, w2] = [personYears(one, c.survey), personYears(two, c.survey)];
      expect(c.difference.estimate).toBeCloseTo((w1 * e1 + w2 * e2) / (w1 + w2), 12);
      expect(c.difference.lower).toBeLessThanOrEqual(c.difference.estimate + 1e-12);
      expect(c.difference.upper).toBeGreaterThanOrEqual(c.difference.estimate - 1e-12);
    }
    for (const row of pooled.rows) {
      const peopleOf = (report: ExperimentReport) => report.rows.find((r) => r.survey === row.survey && r.model === row.model)!.people;
      expect(row.people).toBe(peopleOf(one) + peopleOf(two));
    }
    expect(pooled.markdown).toContain("Pooled over 2 runs (seed 1, seed 2)");
    expect(pooled.learningCurves.map((c) => c.model)).toContain("FT-LLM (seed 2)");
    expect(pooled.pretrainingCurves.map((c) => c.foundation)).toEqual(["tiny (seed 1)", "tiny (seed 1)", "tiny (seed 2)", "tiny (seed 2)"]);
    await expect(runPooledExperiment({ ...options, outDir: workDir, seeds: [1, 1] })).rejects.toThrow(/at least two different seeds/);
  }, 600_000);
});
