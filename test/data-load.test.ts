import { describe, expect, it } from "vitest";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PanelValidationError, loadPanel } from "../src/data/load.js";
import { countPersonYears, panelToCsv } from "../src/data/panel.js";

const fixture = (name: string) => `test/fixtures/data/${name}`;

async function problemsOf(path: string): Promise<string[]> {
  try {
    await loadPanel(path);
  } catch (error) {
    expect(error).toBeInstanceOf(PanelValidationError);
    return [...(error as PanelValidationError).problems];
  }
  throw new Error(`${path} loaded without problems`);
}

describe("panel loaders", () => {
  it("reads a CSV panel: keywords, quoted codes, labels, biennial gaps", async () => {
    const panel = await loadPanel(fixture("panel-good.csv"));
    expect(panel.people.map((p) => p.personId)).toEqual(["A1", "B2"]);
    expect(countPersonYears(panel)).toBe(7);
    expect(panel.people[0]).toEqual({
      personId: "A1",
      dataset: "NLSY79",
      birthYear: 1961,
      sex: "female",
      race: "black",
      region: "south",
      waves: [
        { year: 1979, occupation: 276, education: 1 },
        { year: 1980, occupation: 993, education: 1 },
        { year: 1981, occupation: 313, education: 2 },
      ],
    });
    expect(panel.people[1].waves.map((w) => [w.year, w.occupation, w.education])).toEqual([
      [1996, 22, 3],
      [1997, 22, 3],
      [1999, 992, 3],
      [2001, 7, 4],
    ]);
  });

  it("reads the same panel from JSONL", async () => {
    expect(await loadPanel(fixture("panel-good.jsonl"))).toEqual(await loadPanel(fixture("panel-good.csv")));
  });

  it("round-trips through panelToCsv", async () => {
    const panel = await loadPanel(fixture("panel-good.csv"));
    const dir = mkdtempSync(join(tmpdir(), "labor-llm-panel-"));
    try {
      const path = join(dir, "panel.csv");
      writeFileSync(path, panelToCsv(panel));
      expect(await loadPanel(path)).toEqual(panel);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("collects every problem of a bad CSV with file:line messages", async () => {
    const file = fixture("panel-bad.csv");
    expect(await problemsOf(file)).toEqual([
      `${file}:3: unknown occupation code "123" (expected an occ1990dd code of the taxonomy or one of in-education, unemployed, not-in-labor-force)`,
      `${file}:6: duplicate person-year: person "A1" year 1979 already at line 2`,
      `${file}:8: missing education, dataset`,
      `${file}:9: birth_year of person "A1" is "1962" here but "1961" at line 2`,
      `${file}:10: year "84" is not a year (an integer from 1800 to 2200)`,
      `${file}:10: unknown education "phd" (expected one of less-than-high-school, high-school, some-college, college, graduate)`,
      `${file}:10: unknown sex "woman" (expected one of female, male)`,
      `${file}:11: expected 9 fields (as in the header), found 8`,
      `${file}:12: unknown region "midwest" (expected one of northeast, north central, south, west)`,
      `${file}:14: years of person "B2" go backwards: 1991 after 1992 (line 13)`,
    ]);
  });

  it("stops with one summary error that starts with the count", async () => {
    await expect(loadPanel(fixture("panel-bad.csv"))).rejects.toThrow(/^test\/fixtures\/data\/panel-bad\.csv: 10 problems in panel\n.*panel-bad\.csv:3: unknown occupation code "123"/);
  });

  it("names missing header columns", async () => {
    const file = fixture("panel-bad-header.csv");
    expect(await problemsOf(file)).toEqual([
      `${file}:1: missing columns person_id, region (a panel needs person_id, year, occupation, education, birth_year, sex, race, region, dataset)`,
    ]);
  });

  it("reports an unclosed quote as malformed CSV with its line", async () => {
    const file = fixture("panel-bad-quote.csv");
    expect(await problemsOf(file)).toEqual([`${file}:4: malformed CSV: Quote Not Closed: the parsing is finished with an opening quote at line 4`]);
  });

  it("collects every problem of a bad JSONL file", async () => {
    const file = fixture("panel-bad.jsonl");
    const problems = await problemsOf(file);
    expect(problems).toHaveLength(4);
    expect(problems[0]).toMatch(new RegExp(`^${file.replace(/\./g, "\\.")}:2: not valid JSON: `));
    expect(problems.slice(1)).toEqual([
      `${file}:3: expected a JSON object with the panel columns as keys`,
      `${file}:4: missing dataset`,
      `${file}:4: unknown occupation code "9999" (expected an occ1990dd code of the taxonomy or one of in-education, unemployed, not-in-labor-force)`,
    ]);
  });

  it("escapes a value's newline so that its problem stays on one line (a fast-check counterexample)", async () => {
    const dir = mkdtempSync(join(tmpdir(), "labor-llm-panel-"));
    try {
      const path = join(dir, "newline.jsonl");
      const row = { person_id: "A1", year: 1979, occupation: 276, education: "#\nhigh-school", birth_year: 1961, sex: "female", race: "black", region: "south", dataset: "NLSY79" };
      writeFileSync(path, `${JSON.stringify(row)}\n`);
      expect(await problemsOf(path)).toEqual([`${path}:1: unknown education "#\\nhigh-school" (expected one of less-than-high-school, high-school, some-college, college, graduate)`]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("names a missing file, an empty panel and an unknown format", async () => {
    await expect(loadPanel(fixture("no-such-panel.csv"))).rejects.toThrow("test/fixtures/data/no-such-panel.csv: cannot read: no such file");
    const dir = mkdtempSync(join(tmpdir(), "labor-llm-panel-"));
    try {
      const empty = join(dir, "empty.csv");
      writeFileSync(empty, "person_id,year,occupation,education,birth_year,sex,race,region,dataset\n");
      await expect(loadPanel(empty)).rejects.toThrow(`${empty}: no person-year rows`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    await expect(loadPanel("panel.parquet")).rejects.toThrow("panel.parquet: unknown panel format (expected a .csv or .jsonl file)");
  });
});
