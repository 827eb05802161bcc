/** `labor-llm data …` in-process (runData), so it runs without the native build. */
import { afterAll, afterEach, describe, expect, it, vi } from "vitest";
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { UsageError } from "../src/cli/args.js";
import { runData } from "../src/cli/commands/data.js";
import { loadPanel } from "../src/data/load.js";
import { splitOfPerson } from "../src/data/splits.js";
import { generateSyntheticPanel } from "../src/data/synthetic.js";
import { buildLlama2TokenizerConfig, buildLlama2TokenizerJson } from "../src/text/llama2-tokenizer.js";

const workDir = mkdtempSync(join(tmpdir(), "labor-llm-data-cli-"));
afterAll(() => rmSync(workDir, { recursive: true, force: true }));
afterEach(() => vi.restoreAllMocks());

async function run(args: string[]): Promise<{ status: number; stdout: string; stderr: string }> {
  const out: string[] = [];
  const err: string[] = [];
  vi.spyOn(console, "log").mockImplementation((...parts: unknown[]) => void out.push(parts.join(" ")));
  vi.spyOn(console, "error").mockImplementation((...parts: unknown[]) => void err.push(parts.join(" ")));
  vi.spyOn(process.stderr, "write").mockImplementation(() => true);
  const status = await runData(args);
  vi.restoreAllMocks();
  return { status, stdout: out.join("\n"), stderr: err.join("\n") };
}

describe("labor-llm data", () => {
  const synthDir = join(workDir, "psid");

  it("synth writes panel, oracle probabilities, splits and meta", async () => {
    const result = await run(["synth", "--profile", "psid", "--people", "300", "--seed", "4", "--out", synthDir]);
    expect(result.status).toBe(0);
    expect(result.stdout).toMatch(/^wrote .*psid: 300 people, \d+ person-years \(psid, seed 4\); generated in .* person-years\/s.*oracle perplexity/);
    expect(readdirSync(synthDir).sort()).toEqual(["meta.json", "oracle.csv", "panel.csv", "splits.csv"]);

    const expected = generateSyntheticPanel({ profile: "psid", people: 300, seed: 4 });
    const panel = await loadPanel(join(synthDir, "panel.csv"));
    expect(panel).toEqual(expected.panel);
    const oracle = readFileSync(join(synthDir, "oracle.csv"), "utf8").trim().split("\n");
    expect(oracle[0]).toBe("person_id,year,occupation,probability");
    const rows = oracle.slice(1).map((line) => line.split(","));
    expect(rows.map((r) => Number(r[3]))).toEqual(Array.from(expected.outcomeProbabilities));
    const panelRows = panel.people.flatMap((p) => p.waves.map((w) => [p.personId, String(w.year), String(w.occupation)]));
    expect(rows.map((r) => r.slice(0, 3))).toEqual(panelRows);
    const splits = readFileSync(join(synthDir, "splits.csv"), "utf8").trim().split("\n").slice(1);
    expect(splits).toEqual(panel.people.map((p) => `${p.personId},${splitOfPerson(p.personId, 4)}`));
    const meta = JSON.parse(readFileSync(join(synthDir, "meta.json"), "utf8"));
    expect(meta).toMatchObject({ profile: "psid", dataset: "PSID", seed: 4, people: 300, personYears: rows.length });
    const nll = -Array.from(expected.outcomeProbabilities, Math.log).reduce((a, b) => a + b, 0) / rows.length;
    expect(meta.oraclePerplexity).toBeCloseTo(Math.exp(nll), 10);
  });

  it("synth refuses a non-empty directory and bad flags", async () => {
    await expect(run(["synth", "--profile", "psid", "--people", "3", "--out", synthDir])).rejects.toThrow(UsageError);
    await expect(run(["synth", "--profile", "psid", "--people", "3", "--out", synthDir])).rejects.toThrow("is not empty");
    await expect(run(["synth", "--profile", "nlsy", "--people", "3", "--out", join(workDir, "x")])).rejects.toThrow(
      '--profile must be one of nlsy79, nlsy97, psid, resumes, got "nlsy"',
    );
    await expect(run(["synth", "--profile", "psid", "--out", join(workDir, "x")])).rejects.toThrow("missing required flag --people");
    await expect(run(["synth", "--profile", "psid", "--people", "3", "--split", "0.5,0.5", "--out", join(workDir, "x")])).rejects.toThrow(
      "--split must be three non-negative fractions",
    );
    await expect(run(["shuffle"])).rejects.toThrow('unknown data subcommand "shuffle"');
  });

  it("check: ok summary, or every problem with file:line and status 1", async () => {
    const ok = await run(["check", join(synthDir, "panel.csv")]);
    expect(ok.status).toBe(0);
    expect(ok.stdout).toMatch(/panel\.csv: ok — 300 people, \d+ person-years, years 19\d\d–20\d\d$/);
    const bad = await run(["check", "test/fixtures/data/panel-bad.csv"]);
    expect(bad.status).toBe(1);
    expect(bad.stderr.split("\n")[0]).toBe("test/fixtures/data/panel-bad.csv: 10 problems in panel");
    expect(bad.stderr).toContain('test/fixtures/data/panel-bad.csv:6: duplicate person-year: person "A1" year 1979 already at line 2');
    expect(bad.stderr).toContain('test/fixtures/data/panel-bad.csv:14: years of person "B2" go backwards: 1991 after 1992 (line 13)');
    await expect(run(["check"])).rejects.toThrow("expected one panel file, got 0");
  });

  it("textify writes one document per person with target spans", async () => {
    const out = join(workDir, "docs.jsonl");
    const result = await run(["textify", "--panel", "test/fixtures/data/panel-good.csv", "--template", "no-birth-year", "--out", out]);
    expect(result.status).toBe(0);
    const lines = readFileSync(out, "utf8").trim().split("\n").map((line) => JSON.parse(line));
    expect(lines).toHaveLength(2);
    expect(lines[0].text).toBe(readFileSync("test/fixtures/data/document-no-birth-year.txt", "utf8"));
    expect(lines[0].targets[0]).toEqual({ year: 1979, outcome: 276, char_start: lines[0].text.indexOf(" Cashiers"), char_end: lines[0].text.indexOf(" Cashiers") + 10 });
    expect(lines[0].token_ids).toBeUndefined();
  });

  it("textify with a tokenizer adds token ids, token spans, loss masks and splits", async () => {
    const tokenizerDir = join(workDir, "tokenizer");
    mkdirSync(tokenizerDir);
    writeFileSync(join(tokenizerDir, "tokenizer.json"), JSON.stringify(buildLlama2TokenizerJson()));
    writeFileSync(join(tokenizerDir, "tokenizer_config.json"), JSON.stringify(buildLlama2TokenizerConfig()));
    const out = join(workDir, "tokens.jsonl");
    const args = ["textify", "--panel", join(synthDir, "panel.csv"), "--out", out, "--tokenizer", tokenizerDir, "--loss-mask", "targets", "--splits", join(synthDir, "splits.csv")];
    expect((await run(args)).status).toBe(0);
    const documents = readFileSync(out, "utf8").trim().split("\n").map((line) => JSON.parse(line));
    expect(documents).toHaveLength(300);
    for (const document of documents.slice(0, 20)) {
      expect(document.split).toBe(splitOfPerson(document.person_id, 4));
      expect(document.token_ids[0]).toBe(1);
      expect(document.loss_mask).toHaveLength(document.token_ids.length);
      let masked = 0;
      for (const target of document.targets) masked += target.token_end - target.token_start;
      expect(document.loss_mask.reduce((a: number, b: number) => a + b, 0)).toBe(masked);
    }
    const testOnly = join(workDir, "test-docs.jsonl");
    expect((await run(["textify", "--panel", join(synthDir, "panel.csv"), "--out", testOnly, "--splits", join(synthDir, "splits.csv"), "--split", "test"])).status).toBe(0);
    const testDocuments = readFileSync(testOnly, "utf8").trim().split("\n").map((line) => JSON.parse(line));
    expect(testDocuments.map((document) => document.person_id)).toEqual(documents.filter((document) => document.split === "test").map((document) => document.person_id));
    await expect(run(["textify", "--panel", "p.csv", "--out", "o.jsonl", "--split", "test"])).rejects.toThrow("--split needs --splits FILE");
    await expect(run(["textify", "--panel", "p.csv", "--out", "o.jsonl", "--loss-mask", "all"])).rejects.toThrow("--loss-mask needs --tokenizer");
    await expect(run(["textify", "--panel", "p.csv", "--out", "o.jsonl", "--template", "fancy"])).rejects.toThrow("--template must be one of default, code, no-birth-year, no-education");
  });

  it("stats prints the tables, or JSON", async () => {
    const table = await run(["stats", join(synthDir, "panel.csv")]);
    expect(table.status).toBe(0);
    for (const row of ["| people | 300 |", "| stay rate (same job next wave) |", "| not in labor force |", "| major group | employment |", "| top occupation |"]) {
      expect(table.stdout).toContain(row);
    }
    const json = JSON.parse((await run(["stats", join(synthDir, "panel.csv"), "--json", "--top", "3"])).stdout);
    expect(json.people).toBe(300);
    expect(json.topOccupations).toHaveLength(3);
    expect(json.shares.employed + json.shares.inEducation + json.shares.unemployed + json.shares.notInLaborForce).toBeCloseTo(1, 12);
  });
});
