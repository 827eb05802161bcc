/**
 * The crosswalk tables (row counts, known mappings, validation, equal to the project's reference copies),
 * the code-vintage schedules, and `labor-llm data crosswalk` in-process: round trips from synthetic panels
 * through raw codes, every special target and policy, and every error message (file, line, code, vintage,
 * year).
 */
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, describe, expect, it, vi } from "vitest";
import { UsageError } from "../src/cli/args.js";
import { runData } from "../src/cli/commands/data.js";
import { crosswalkExtract, parseEmploymentStatus } from "../src/data/crosswalk-import.js";
import { builtInSchedule, parseSchedule, readScheduleFile, vintageForYear, type VintageSchedule } from "../src/data/crosswalk-schedule.js";
import { CODE_VINTAGES, CROSSWALK_FILES, crosswalkDirectory, crosswalkTables, CrosswalkTables, type CodeVintage } from "../src/data/crosswalk-tables.js";
import { loadPanel } from "../src/data/load.js";
import { panelToCsv, type Panel } from "../src/data/panel.js";
import { splitOfPerson } from "../src/data/splits.js";
import { generateSyntheticPanel } from "../src/data/synthetic.js";
import { IN_EDUCATION_CODE, NOT_IN_LABOR_FORCE_CODE, UNEMPLOYED_CODE } from "../src/data/taxonomy.js";
import { inverseCrosswalk, rawExtractOf, reachablePeople } from "./crosswalk-fixtures.js";

const workDir = mkdtempSync(join(tmpdir(), "labor-llm-crosswalk-"));
afterAll(() => rmSync(workDir, { recursive: true, force: true }));
afterEach(() => vi.restoreAllMocks());
const tables = crosswalkTables();
const sharedDir = join(__dirname, "..", "..", "shared", "data", "crosswalks");

async function run(args: string[]): Promise<{ status: number; stdout: string; stderr: string }> {
  const out: string[] = [];
  const err: string[] = [];
  vi.spyOn(console, "log").mockImplementation((...parts: unknown[]) => void out.push(parts.join(" ")));
  vi.spyOn(console, "error").mockImplementation((...parts: unknown[]) => void err.push(parts.join(" ")));
  try {
    const status = await runData(args);
    return { status, stdout: out.join("\n"), stderr: err.join("\n") };
  } finally {
    vi.restoreAllMocks();
  }
}

let fileCounter = 0;
/** Write an extract (header + rows) to a new file; returns its path. */
function extract(lines: string[], header = "person_id,year,occupation,status,education,birth_year,sex,race,region,dataset"): string {
  const path = join(workDir, `extract-${++fileCounter}.csv`);
  writeFileSync(path, [header, ...lines].join("\n") + "\n");
  return path;
}
const outDir = () => join(workDir, `out-${++fileCounter}`);
const row = (id: string, year: number, code: string, status = "employed") => `${id},${year},${code},${status},high-school,1960,male,white,south,NLSY79`;

describe("crosswalk tables", () => {
  it("have the documented row counts", () => {
    expect(Object.fromEntries(tables.rowCounts)).toEqual({
      "census1970_to_occ1990dd.csv": 428,
      "census1980_to_occ1990dd.csv": 504,
      "census1990_to_occ1990dd.csv": 501,
      "census2000_to_occ1990dd.csv": 471,
      "census2005_to_occ1990dd.csv": 465,
      "census2010_to_occ1990dd.csv": 538,
      "census2016_to_occ1990dd.csv": 495,
      "census2018_to_census2010_weighted.csv": 614,
    });
    for (const file of CROSSWALK_FILES) {
      const lines = readFileSync(join(crosswalkDirectory(), file), "utf8").trim().split("\n");
      expect(lines.length - 1).toBe(tables.rowCounts.get(file));
    }
  });

  it("give known mappings, with 905/991/999 as special targets only in the 2010 and 2016 tables", () => {
    const occupation = (code: number) => ({ kind: "occupation", code });
    const special = (code: number) => ({ kind: "special", code });
    expect(tables.lookup("census1970", "1")).toEqual(occupation(23));
    expect(tables.lookup("census1970", "983")).toEqual(occupation(747));
    expect(tables.lookup("census1980", "003")).toEqual(occupation(4)); // leading zeros as extracts write them
    expect(tables.lookup("census1980", "889")).toEqual(occupation(889));
    expect(tables.lookup("census2000", "975")).toEqual(occupation(859));
    expect(tables.lookup("census2010", "4140")).toEqual(occupation(444));
    expect(tables.lookup("census2010", "9830")).toEqual(special(905));
    expect(tables.lookup("census2010", "9920")).toEqual(special(991));
    expect(tables.lookup("census2016", "0")).toEqual(special(999));
    expect(tables.lookup("census2002", "0010")).toEqual(tables.lookup("census2000", "1"));
    expect(tables.lookup("census2002", "4721")).toEqual({ kind: "unmapped", reason: expect.stringContaining("no multiple of 10") });
    expect(tables.lookup("census2018", "0010")).toEqual(occupation(4));
    expect(tables.lookup("census2018", "10")).toEqual(occupation(4));
    // 5040 → 2010 codes 5030 (0.65) and the merged 2900_2960 (0.35): no guess.
    expect(tables.lookup("census2018", "5040")).toEqual({ kind: "unmapped", reason: expect.stringContaining("2010 code 2900_2960 (weight 0.354) is a merged code") });
    expect(tables.lookup("census2018", "1660")).toEqual({ kind: "unmapped", reason: "its 2010 code 1660 (weight 1) is a code not in the 2010 table" });
    expect(tables.lookup("census1980", "999")).toEqual({ kind: "unmapped" });
    for (const vintage of CODE_VINTAGES) {
      const specials = tables.entries(vintage).filter(([, target]) => target.kind === "special");
      expect(specials.length > 0, vintage).toBe(["census2010", "census2016"].includes(vintage));
      for (const [, target] of tables.entries(vintage)) {
        if (target.kind === "occupation") expect(target.code).toBeLessThan(IN_EDUCATION_CODE);
      }
    }
  });

  it("resolve 2018 codes by the largest total weight per target; 13 of 559 have a 2010 code outside the 2010 table", () => {
    const entries = tables.entries("census2018");
    expect(entries).toHaveLength(559);
    expect(entries.filter(([, target]) => target.kind === "unmapped")).toHaveLength(13);
    // 8465 → 8430_8460 (0.82, merged) and 8440 (0.18): an error even though 8440 is known.
    expect(tables.lookup("census2018", "8465").kind).toBe("unmapped");
    for (const [code, target] of entries) {
      if (target.kind === "unmapped") continue;
      const totals = new Map<number, number>();
      for (const link of tables.census2018LinksOf(code)) {
        const via = tables.lookup("census2010", link.census2010);
        if (via.kind === "unmapped") throw new Error("resolved code with an unmatched link");
        totals.set(via.code, (totals.get(via.code) ?? 0) + link.weight);
      }
      const best = Math.max(...totals.values());
      expect(totals.get(target.code), code).toBe(best);
    }
  });

  it.skipIf(!existsSync(sharedDir))(`equal the reference copies in ../shared/data/crosswalks/ (skipped when that folder is absent)`, () => {
    for (const file of CROSSWALK_FILES) expect(readFileSync(join(crosswalkDirectory(), file)).equals(readFileSync(join(sharedDir, file))), file).toBe(true);
  });

  it("refuse a broken table with one line naming file and line", () => {
    const broken = (file: string, edit: (text: string) => string): string => {
      const dir = join(workDir, `tables-${++fileCounter}`);
      mkdirSync(dir);
      for (const name of CROSSWALK_FILES) copyFileSync(join(crosswalkDirectory(), name), join(dir, name));
      writeFileSync(join(dir, file), edit(readFileSync(join(dir, file), "utf8")));
      return dir;
    };
    let dir = broken("census1980_to_occ1990dd.csv", (text) => text.replace("\n889,889\n", "\n889,992\n"));
    expect(() => new CrosswalkTables(dir)).toThrow(`${join(dir, "census1980_to_occ1990dd.csv")}:505: target 992 is not an occ1990dd code of the taxonomy (nor 905, 991 or 999)`);
    dir = broken("census1970_to_occ1990dd.csv", (text) => text + "983,747\n");
    expect(() => new CrosswalkTables(dir)).toThrow(`${join(dir, "census1970_to_occ1990dd.csv")}:430: source code 983 appears twice`);
    dir = broken("census2000_to_occ1990dd.csv", (text) => text.replace("census2000,", "census2001,"));
    expect(() => new CrosswalkTables(dir)).toThrow(`${join(dir, "census2000_to_occ1990dd.csv")}:1: expected the header "census2000,occ1990dd"`);
    dir = broken("census2018_to_census2010_weighted.csv", (text) => text.replace("0010,0010,1", "0010,0010,0.5"));
    expect(() => new CrosswalkTables(dir)).toThrow(`${join(dir, "census2018_to_census2010_weighted.csv")}: weights of 2018 code 0010 sum to 0.5, not 1`);
  });
});

describe("code-vintage schedules", () => {
  it("built-ins follow the crosswalks README", () => {
    const nlsy79 = builtInSchedule("nlsy79");
    expect([1979, 1981, 1982, 2000, 2001, 2002, 2018].map((year) => vintageForYear(nlsy79, year))).toEqual([
      "census1970", "census1970", "census1980", "census1980", undefined, "census2000", "census2000",
    ]);
    expect(vintageForYear(builtInSchedule("nlsy97"), 2011)).toBe("census2002");
    const psid = builtInSchedule("psid");
    expect([1968, 2001, 2002, 2003, 2015, 2016, 2017, 2021].map((year) => vintageForYear(psid, year))).toEqual([
      "census1970", "census1970", undefined, "census2000", "census2000", undefined, "census2010", "census2010",
    ]);
  });

  it("user schedules: errors name the file and key", () => {
    expect(vintageForYear(parseSchedule("s", { "1990": "census1980", "1991-": "census1990" }, "s.json"), 1990)).toBe("census1980");
    expect(() => parseSchedule("s", { "1979-81": "census1970" }, "s.json")).toThrow('s.json: key "1979-81" is not a year, a range "1979-1981" or an open range "2002-"');
    expect(() => parseSchedule("s", { "1979-1985": "census1970", "1985-": "census1980" }, "s.json")).toThrow('s.json: ranges "1979-1985" and "1985-" overlap');
    expect(() => parseSchedule("s", { "1979": "census1975" }, "s.json")).toThrow('s.json: "1979": unknown vintage "census1975" (expected one of census1970,');
    expect(() => parseSchedule("s", { "1985-1979": "census1970" }, "s.json")).toThrow('s.json: range "1985-1979" ends before it starts');
    expect(() => parseSchedule("s", {}, "s.json")).toThrow("s.json: the schedule has no year ranges");
    expect(() => parseSchedule("s", ["census1970"], "s.json")).toThrow("s.json: a schedule is a JSON object");
    const bad = join(workDir, "bad-schedule.json");
    writeFileSync(bad, "{ not json");
    expect(() => readScheduleFile(bad)).toThrow(`${bad}: cannot read schedule:`);
  });

  it("status spellings", () => {
    expect(["Working", "EMPLOYED", "in_school", "In-Education", "Looking for work", "out of the labour force", "NILF", "not-in-labor-force"].map(parseEmploymentStatus)).toEqual([
      "employed", "employed", "in-education", "in-education", "unemployed", "not-in-labor-force", "not-in-labor-force", "not-in-labor-force",
    ]);
    expect(parseEmploymentStatus("retired")).toBeUndefined();
  });
});

/** Crosswalk `panel` written as a raw extract under `scheduleArgs`; the output must be exactly the panel. */
async function expectRoundTrip(panel: Panel, schedule: VintageSchedule, scheduleArgs: string[]): Promise<string> {
  const raw = rawExtractOf(panel, schedule, tables);
  if (!raw) throw new Error("some occupation has no source code in its year's vintage");
  const input = extract(raw.csv.trimEnd().split("\n").slice(1), raw.csv.split("\n")[0]);
  const out = outDir();
  const result = await run(["crosswalk", input, ...scheduleArgs, "--out", out, "--seed", "3"]);
  expect(result.stderr).toBe("");
  expect(result.status).toBe(0);
  expect(readFileSync(join(out, "panel.csv"), "utf8")).toBe(panelToCsv(panel));
  expect(await loadPanel(join(out, "panel.csv"))).toEqual(panel);
  expect(readFileSync(join(out, "splits.csv"), "utf8")).toBe(["person_id,split", ...panel.people.map((p) => `${p.personId},${splitOfPerson(p.personId, 3)}`)].join("\n") + "\n");
  expect(readFileSync(join(out, "crosswalk.md"), "utf8")).toBe(result.stdout.split("\nwrote ")[0] + "\n");
  const check = await run(["check", join(out, "panel.csv")]);
  expect(check.status).toBe(0);
  expect(check.stdout).toContain(": ok — ");
  return result.stdout;
}

describe("labor-llm data crosswalk: round trips", () => {
  for (const profile of ["nlsy79", "nlsy97", "psid"] as const) {
    it(`${profile}: a synthetic panel → raw codes by the built-in schedule → exactly the panel`, async () => {
      const schedule = builtInSchedule(profile);
      const { panel } = generateSyntheticPanel({ profile, people: 30, seed: 11 });
      const kept = reachablePeople(panel, schedule, tables); // people with a 1970-unreachable job in a 1970 year are left out
      expect(kept.people.length).toBeGreaterThanOrEqual(20);
      const summary = await expectRoundTrip(kept, schedule, ["--schedule", profile]);
      const waves = kept.people.flatMap((person) => person.waves);
      const firstYear = Math.min(...waves.map((wave) => wave.year));
      const inYear = waves.filter((wave) => wave.year === firstYear);
      const count = (f: (code: number) => boolean) => inYear.filter((wave) => f(wave.occupation)).length;
      const expectedRow = `| ${firstYear} | ${vintageForYear(schedule, firstYear)} | ${inYear.length} | ${count((c) => c < IN_EDUCATION_CODE)} | 0 | ${count((c) => c === IN_EDUCATION_CODE)} | ${count((c) => c === UNEMPLOYED_CODE)} | ${count((c) => c === NOT_IN_LABOR_FORCE_CODE)} | 0 | 0 |`;
      expect(summary).toContain(expectedRow);
      expect(summary).toContain(`| all | | ${waves.length} |`);
    });
  }

  it("a user's JSON schedule over every vintage (1970 only in years whose jobs it reaches)", async () => {
    const { panel } = generateSyntheticPanel({ profile: "psid", people: 25, seed: 5 });
    const inverses = new Map(CODE_VINTAGES.map((vintage) => [vintage, inverseCrosswalk(tables, vintage)]));
    const codesByYear = new Map<number, Set<number>>();
    for (const wave of panel.people.flatMap((person) => person.waves)) {
      if (wave.occupation < IN_EDUCATION_CODE) codesByYear.set(wave.year, (codesByYear.get(wave.year) ?? new Set()).add(wave.occupation));
      else codesByYear.set(wave.year, codesByYear.get(wave.year) ?? new Set());
    }
    const object: Record<string, CodeVintage> = {};
    const used = new Set<CodeVintage>();
    [...codesByYear.keys()].sort().forEach((year, index) => {
      for (let step = 0; step < CODE_VINTAGES.length; step++) {
        const vintage = CODE_VINTAGES[(index + step) % CODE_VINTAGES.length];
        if ([...(codesByYear.get(year) as Set<number>)].every((code) => inverses.get(vintage)?.has(code))) {
          object[String(year)] = vintage;
          used.add(vintage);
          return;
        }
      }
      throw new Error(`no vintage reaches every code of ${year}`);
    });
    expect([...used].sort()).toEqual([...CODE_VINTAGES].sort());
    const path = join(workDir, "every-vintage.json");
    writeFileSync(path, JSON.stringify(object));
    await expectRoundTrip(panel, parseSchedule(path, object, path), ["--schedule", path]);
  });

  it("--vintage reads every year in one vintage; --dataset fills a missing dataset column", async () => {
    const { panel } = generateSyntheticPanel({ profile: "nlsy97", people: 6, seed: 2 });
    const raw = rawExtractOf(panel, builtInSchedule("nlsy97"), tables, false) as { csv: string };
    const input = extract(raw.csv.trimEnd().split("\n").slice(1), raw.csv.split("\n")[0]);
    const out = outDir();
    expect((await run(["crosswalk", input, "--vintage", "census2002", "--dataset", "NLSY97", "--out", out])).status).toBe(0);
    expect(readFileSync(join(out, "panel.csv"), "utf8")).toBe(panelToCsv(panel));
    const missing = await run(["crosswalk", input, "--vintage", "census2002", "--out", outDir()]);
    expect(missing.status).toBe(1);
    expect(missing.stderr).toContain(`${input}:1: missing column dataset (an extract needs person_id, year, occupation, status, education, birth_year, sex, race, region, dataset)`);
  });
});

describe("labor-llm data crosswalk: special targets and policies", () => {
  // 2010 codes: 9800 military (905), 9920 no work in five years (991), 0 no occupation (999).
  const lines = [row("A", 2011, "4140"), row("A", 2012, "9800"), row("A", 2013, "9920"), row("A", 2014, "0"), row("A", 2015, "", "unemployed")];
  const input = () => extract(lines);

  it("default: each is a problem naming file, line, code, vintage, year and the flag; nothing is written", async () => {
    const path = input();
    const out = outDir();
    const result = await run(["crosswalk", path, "--vintage", "census2010", "--out", out]);
    expect(result.status).toBe(1);
    expect(result.stderr.split("\n")).toEqual([
      `${path}: 3 problems in panel`,
      `${path}:3: code 9800 (census2010, year 2012) maps to 905, military: choose what it becomes with --military drop|unemployed|not-in-labor-force`,
      `${path}:4: code 9920 (census2010, year 2013) maps to 991, unemployed, no work in the last 5 years: choose what it becomes with --no-work-5-years drop|unemployed|not-in-labor-force`,
      `${path}:5: code 0 (census2010, year 2014) maps to 999, unclassified (source code 0, no occupation): choose what it becomes with --unclassified drop|unemployed|not-in-labor-force`,
    ]);
    expect(existsSync(out)).toBe(false);
  });

  it("drop / unemployed / not-in-labor-force; a crosswalked 991 never becomes In education", async () => {
    const cases: [string[], string[], string][] = [
      [["--military", "drop", "--no-work-5-years", "unemployed", "--unclassified", "not-in-labor-force"], ["2011,444", "2013,992", "2014,993", "2015,992"], "| 905 | military | --military | drop | 1 |"],
      [["--military", "not-in-labor-force", "--no-work-5-years", "not-in-labor-force", "--unclassified", "drop"], ["2011,444", "2012,993", "2013,993", "2015,992"], "| 999 | unclassified (source code 0, no occupation) | --unclassified | drop | 1 |"],
      [["--military", "unemployed", "--no-work-5-years", "drop", "--unclassified", "unemployed"], ["2011,444", "2012,992", "2014,992", "2015,992"], "| 991 | unemployed, no work in the last 5 years | --no-work-5-years | drop | 1 |"],
    ];
    for (const [flags, expected, policyRow] of cases) {
      const out = outDir();
      const result = await run(["crosswalk", input(), "--vintage", "census2016", "--out", out, ...flags]);
      expect(result.status, result.stderr).toBe(0);
      const written = readFileSync(join(out, "panel.csv"), "utf8").trim().split("\n").slice(1).map((line) => line.split(",").slice(1, 3).join(","));
      expect(written).toEqual(expected);
      expect(written.some((line) => line.endsWith(",991"))).toBe(false);
      expect(result.stdout).toContain(policyRow);
      expect(result.stdout).toContain("| all | | 5 | 1 | 0 | 0 |");
    }
  });

  it("--recodes places codes by hand before the tables; a numeric 991 target is refused", async () => {
    const recodes = join(workDir, "recodes.csv");
    writeFileSync(recodes, "vintage,code,occ1990dd\ncensus2010,9920,unemployed\ncensus2010,0,22\ncensus1980,905,not-in-labor-force\n");
    const path = extract([row("B", 1985, "905"), row("B", 1986, "003"), row("B", 2012, "9920"), row("B", 2013, "0")]);
    const schedule = join(workDir, "recode-schedule.json");
    writeFileSync(schedule, JSON.stringify({ "1982-2000": "census1980", "2010-": "census2010" }));
    const out = outDir();
    const result = await run(["crosswalk", path, "--schedule", schedule, "--recodes", recodes, "--out", out]);
    expect(result.status, result.stderr).toBe(0);
    expect(readFileSync(join(out, "panel.csv"), "utf8").trim().split("\n").slice(1).map((line) => line.split(",")[2])).toEqual(["993", "4", "992", "22"]);
    expect(result.stdout).toContain("| 2013 | census2010 | 1 | 1 | 1 | 0 | 0 | 0 | 0 | 0 |");
    writeFileSync(recodes, "vintage,code,occ1990dd\ncensus2010,9920,991\n");
    await expect(run(["crosswalk", path, "--schedule", schedule, "--recodes", recodes, "--out", outDir()])).rejects.toThrow(
      `${recodes}:2: "991" is neither an occ1990dd occupation code of the taxonomy nor one of in-education, unemployed, not-in-labor-force`,
    );
  });
});

describe("labor-llm data crosswalk: errors", () => {
  it("every unmapped code and bad row is listed as file:line with code, vintage and year", async () => {
    const path = extract([
      row("C", 1985, "999"), // 2: not in the 1980 table
      row("C", 1986, "4"), // 3: fine
      row("C", 1987, "abc"), // 4
      row("C", 1988, "", "employed"), // 5
      row("C", 1989, "4", "retired"), // 6
      row("C", 1990, "4", ""), // 7
      row("C", 2001, "4"), // 8: no vintage for 2001 under nlsy79
      row("C", 2001, "", "in school"), // 9: non-work rows need no vintage, but a duplicate person-year
      `C,1991,4,employed,phd,1960,male,white,south,NLSY79`, // 10: another field's problem, at the extract's line
      row("C", 1984, "4"), // 11: years go backwards
    ]);
    const result = await run(["crosswalk", path, "--schedule", "nlsy79", "--out", outDir()]);
    expect(result.status).toBe(1);
    expect(result.stderr.split("\n")).toEqual([
      `${path}: 9 problems in panel`,
      `${path}:2: code 999 (census1980, year 1985) is not in the crosswalk`,
      `${path}:4: code abc (census1980, year 1987) is not in the crosswalk (not an integer code)`,
      `${path}:5: status "employed" (employed) but no occupation code`,
      `${path}:6: unknown status "retired" (expected one of employed, in-education, unemployed, not-in-labor-force; other accepted spellings in labor-llm data --help)`,
      `${path}:7: missing status (expected one of employed, in-education, unemployed, not-in-labor-force)`,
      `${path}:8: year 2001 is in no range of schedule nlsy79 (1979-1981 census1970, 1982-2000 census1980, 2002- census2000): cannot read code 4`,
      `${path}:9: duplicate person-year: person "C" year 2001 already at line 8`,
      `${path}:10: unknown education "phd" (expected one of less-than-high-school, high-school, some-college, college, graduate)`,
      `${path}:11: years of person "C" go backwards: 1984 after 2001 (line 8)`,
    ]);
  });

  it("NLSY97 and 2018 codes: no multiple of 10, a merged 2010 code, an unknown 2018 code", async () => {
    const path = extract([row("D", 2005, "4721"), row("D", 2006, "0010")]);
    const result = await run(["crosswalk", path, "--vintage", "census2002", "--out", outDir()]);
    expect(result.stderr.split("\n").slice(1)).toEqual([
      `${path}:2: code 4721 (census2002, year 2005) is not in the crosswalk (four-digit 2002 codes are 2000 codes × 10: no multiple of 10)`,
    ]);
    const path2018 = extract([row("E", 2019, "1830_1860"), row("E", 2020, "6305"), row("E", 2021, "0011"), row("E", 2022, "0010")]);
    const result2018 = await run(["crosswalk", path2018, "--vintage", "census2018", "--out", outDir()]);
    expect(result2018.stderr.split("\n").slice(1)).toEqual([
      `${path2018}:2: code 1830_1860 (census2018, year 2019) is not in the crosswalk: its 2010 code 1830_1860 (weight 1) is a merged code not in the 2010 table`,
      `${path2018}:3: code 6305 (census2018, year 2020) is not in the crosswalk: its 2010 code 6310_6320 (weight 0.966) is a merged code not in the 2010 table`,
      `${path2018}:4: code 0011 (census2018, year 2021) is not in the crosswalk`,
    ]);
  });

  it("usage errors name the flag", async () => {
    const path = extract([row("F", 1990, "4")]);
    await expect(run(["crosswalk", path, "--out", outDir()])).rejects.toThrow(new UsageError("pass exactly one of --schedule and --vintage"));
    await expect(run(["crosswalk", path, "--schedule", "nlsy79", "--vintage", "census1980", "--out", outDir()])).rejects.toThrow("pass exactly one of --schedule and --vintage");
    await expect(run(["crosswalk", path, "--schedule", "nlsy", "--out", outDir()])).rejects.toThrow('--schedule must be one of nlsy79, nlsy97, psid or a .json file, got "nlsy"');
    await expect(run(["crosswalk", path, "--vintage", "census1975", "--out", outDir()])).rejects.toThrow("--vintage must be one of census1970,");
    await expect(run(["crosswalk", path, "--vintage", "census1980", "--military", "keep", "--out", outDir()])).rejects.toThrow(
      '--military must be one of error, drop, unemployed, not-in-labor-force, got "keep"',
    );
    await expect(run(["crosswalk", path, "--vintage", "census1980"])).rejects.toThrow("missing required flag --out");
    await expect(run(["crosswalk", path, "--vintage", "census1980", "--out", workDir])).rejects.toThrow("is not empty");
    await expect(run(["crosswalk", join(workDir, "absent.csv"), "--vintage", "census1980", "--out", outDir()])).rejects.toThrow(`${join(workDir, "absent.csv")}: cannot read: no such file`);
  });

  it("the library call gives the panel and the summary", async () => {
    const path = extract([row("G", 1990, "4"), row("G", 1991, "", "NILF")]);
    const { panel, summary } = await crosswalkExtract(path, { schedule: builtInSchedule("nlsy79") });
    expect(panel.people[0].waves.map((wave) => wave.occupation)).toEqual([4, NOT_IN_LABOR_FORCE_CODE]);
    expect(summary.years.map((year) => [year.year, year.vintage, year.occupations, year.notInLaborForce])).toEqual([[1990, "census1980", 1, 0], [1991, "census1980", 0, 1]]);
    expect(summary.special.map((entry) => entry.policy)).toEqual(["error", "error", "error"]);
  });
});
