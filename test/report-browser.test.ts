/**
 * The HTML reports (the evaluation report of `eval`/`demo` and the experiment report) opened in a real
 * browser: Debian's headless Chromium renders every table and every SVG chart of the page, and logs no
 * console error. The predictions are cheap stand-ins (oracle and Markov chains with different smoothing under
 * the experiment's model names): this checks the pages, not the models. A screenshot of each page is left in
 * the test's directory when LABOR_LLM_KEEP_SCREENSHOTS names a folder to copy them to.
 */
import { spawnSync } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { generateSyntheticPanel } from "../src/data/synthetic.js";
import { occupationTaxonomy } from "../src/data/taxonomy.js";
import { MarkovPredictor } from "../src/score/baselines/markov.js";
import { OraclePredictor } from "../src/score/baselines/oracle.js";
import { predictionHeader, predictionRecords, writePredictions } from "../src/score/predictions.js";
import type { Predictor } from "../src/score/predictor.js";
import { evaluateFiles, writeEvaluationReport } from "../src/report/write.js";
import { writeExperimentReport } from "../src/experiment/report.js";
import type { ScoredModel } from "../src/experiment/pipeline.js";
import type { FoundationValue } from "../src/experiment/stages.js";
import { TRAIN_LOG_FILE } from "../src/train/loop.js";

const CHROMIUM = ["/usr/bin/chromium", "/usr/bin/chromium-browser"].find(existsSync);
const workDir = mkdtempSync(join(tmpdir(), "labor-llm-report-browser-"));
afterAll(() => rmSync(workDir, { recursive: true, force: true }));

/** Render a page headless: its DOM after load, the browser's log, and a screenshot. */
function render(page: string, name: string): { dom: string; log: string; screenshot: string } {
  const profile = mkdtempSync(join(workDir, "profile-"));
  const flags = [
    "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", `--user-data-dir=${profile}`, "--enable-logging=stderr", "--v=0",
  ];
  const dumped = spawnSync(CHROMIUM!, [...flags, "--dump-dom", `file://${page}`], { encoding: "utf8", timeout: 120_000 });
  expect(dumped.status, dumped.stderr).toBe(0);
  const screenshot = join(workDir, `${name}.png`);
  const shot = spawnSync(CHROMIUM!, [...flags, `--screenshot=${screenshot}`, "--window-size=1280,3200", `file://${page}`], { encoding: "utf8", timeout: 120_000 });
  expect(shot.status, shot.stderr).toBe(0);
  if (process.env.LABOR_LLM_KEEP_SCREENSHOTS) copyFileSync(screenshot, join(process.env.LABOR_LLM_KEEP_SCREENSHOTS, `${name}.png`));
  return { dom: dumped.stdout, log: dumped.stderr + shot.stderr, screenshot };
}

/** Console messages at error level, uncaught exceptions and failed loads in Chromium's log. */
function consoleErrors(log: string): string[] {
  return log.split("\n").filter((line) => /CONSOLE.*(error|Uncaught)|Uncaught|Failed to load resource|ERR_FILE_NOT_FOUND/i.test(line));
}

const count = (text: string, pattern: RegExp) => (text.match(pattern) ?? []).length;

async function predictionsFile(name: string, predictor: Predictor, people: Parameters<Predictor["predict"]>[0]): Promise<string> {
  const path = join(workDir, `${name.replace(/[^a-z0-9]+/gi, "-")}.jsonl`);
  writePredictions(path, predictionHeader(name, predictor.taxonomy, predictor.normalised), predictionRecords(people, await predictor.predict(people)));
  return path;
}

describe.skipIf(!CHROMIUM)("HTML reports in headless Chromium" + (CHROMIUM ? "" : " (skipped: no chromium; apt-get install chromium)"), () => {
  const taxonomy = occupationTaxonomy();
  const people = generateSyntheticPanel({ profile: "nlsy79", people: 60, seed: 4 }).panel.people;
  const [train, test] = [people.slice(0, 50), people.slice(50)];
  const stand = (smoothing: number) => new MarkovPredictor(train, { smoothing, taxonomy });

  it("renders the evaluation report: every table and chart, no console error", async () => {
    const files = [
      await predictionsFile("oracle", new OraclePredictor("nlsy79", taxonomy), test),
      await predictionsFile("markov", stand(1), test),
    ];
    const dir = join(workDir, "eval");
    writeEvaluationReport(dir, await evaluateFiles(files), { title: "browser check" });
    const { dom, log } = render(join(dir, "report.html"), "evaluation-report");
    const source = readFileSync(join(dir, "report.html"), "utf8");
    expect(count(dom, /<table/g)).toBe(count(source, /<table/g));
    expect(count(dom, /<svg/g)).toBe(6);
    expect(consoleErrors(log)).toEqual([]);
  }, 240_000);

  /** A foundation whose training log falls from 10 nats towards 0.2, copying (the drop) at `copyStep`. */
  function foundation(name: string, copyStep: number): { name: string; value: FoundationValue } {
    const trainDir = join(workDir, `foundation-${name}`, "train");
    mkdirSync(join(trainDir, "final"), { recursive: true });
    const lines = Array.from({ length: 600 }, (_, i) => JSON.stringify({ step: i + 1, loss: 0.2 + (i < copyStep ? 2 : 0) + 8 * Math.exp(-i / 20) }));
    writeFileSync(join(trainDir, TRAIN_LOG_FILE), lines.join("\n") + "\n");
    return { name, value: { modelDir: join(trainDir, "final"), steps: 600, lastLoss: 0.2, seconds: 1 } };
  }
  const foundations = [foundation("demo", 150), foundation("demo-small", 400)];

  it("renders the experiment report: tables, perplexity charts, reliability diagrams, the learning and pretraining curves", async () => {
    const names = ["oracle", "markov", "logit", "CAREER (tiny)", "off-the-shelf LLM", "FT-LLM"];
    const scored: ScoredModel[] = [];
    for (const [i, model] of names.entries()) {
      const predictor = model === "oracle" ? new OraclePredictor("nlsy79", taxonomy) : stand(0.1 * 3 ** i);
      scored.push({
        survey: "nlsy79", model, path: await predictionsFile(model, predictor, test), seconds: 1,
        finetune: model === "FT-LLM"
          ? { weightsDir: "", mode: "full", steps: 30, tokens: 1000, validLoss: 0.5, bestStep: 20, seconds: 1, validation: [10, 20, 30].map((step) => ({ step, loss: 1 / step + 0.45 })) }
          : undefined,
      });
    }
    const dir = join(workDir, "experiment");
    await writeExperimentReport(dir, {
      scored, mainSurvey: "nlsy79", foundations, smallerPreset: "tiny", largerPreset: "demo", resamples: 50, seed: 0, note: "browser check",
    });
    const { dom, log } = render(join(dir, "report.html"), "experiment-report");
    const source = readFileSync(join(dir, "report.html"), "utf8");
    // Paired comparisons, the survey's table, the learning-curve runs.
    expect(count(dom, /<table/g)).toBe(3);
    expect(count(dom, /<table/g)).toBe(count(source, /<table/g));
    // Two perplexity panels, four reliability diagrams, one learning-curve chart, one pretraining chart.
    expect(count(dom, /<svg/g)).toBe(8);
    expect(dom).toContain("of each foundation during pretraining");
    expect(dom).toContain("FT-LLM − CAREER (tiny)");
    expect(consoleErrors(log)).toEqual([]);

    // Pooled over two runs (here the same files twice): the per-run column, a learning curve per run.
    const pooledDir = join(workDir, "experiment-pooled");
    await writeExperimentReport(pooledDir, {
      scored: [...scored.map((m) => ({ ...m, run: "seed 0" })), ...scored.map((m) => ({ ...m, run: "seed 1" }))],
      mainSurvey: "nlsy79", foundations: [], smallerPreset: "tiny", largerPreset: "demo", resamples: 50, seed: 0, note: "browser check, pooled",
      // (no foundations: the demo's report has none, and then no pretraining chart)
    });
    const pooled = render(join(pooledDir, "report.html"), "experiment-report-pooled");
    expect(count(pooled.dom, /<table/g)).toBe(3);
    expect(count(pooled.dom, /<svg/g)).toBe(7);
    expect(pooled.dom).toContain("per run");
    expect(pooled.dom).toContain("FT-LLM (seed 1)");
    expect(consoleErrors(pooled.log)).toEqual([]);
  }, 240_000);
});
