import { describe, expect, it } from "vitest";
import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { OCC1990DD_RAW_ROWS } from "../src/data/occ1990dd-table.js";
import {
  IN_EDUCATION_CODE,
  MAJOR_GROUPS,
  NON_WORK_GROUP,
  NOT_IN_LABOR_FORCE_CODE,
  TITLE_CORRECTIONS,
  UNEMPLOYED_CODE,
  majorGroupOfCode,
  occupationTaxonomy,
} from "../src/data/taxonomy.js";

const SOURCE_CSV = fileURLToPath(new URL("../../shared/data/exposure_by_occ1990dd_lswt2010.csv", import.meta.url));

describe("occupation taxonomy", () => {
  const taxonomy = occupationTaxonomy();

  it("has the 341 occ1990dd occupations then the three non-work states", () => {
    expect(taxonomy.occupationCount).toBe(341);
    expect(taxonomy.size).toBe(344);
    expect(taxonomy.outcomes.slice(341).map((o) => [o.code, o.title])).toEqual([
      [IN_EDUCATION_CODE, "In education"],
      [UNEMPLOYED_CODE, "Unemployed"],
      [NOT_IN_LABOR_FORCE_CODE, "Not in labor force"],
    ]);
    const codes = taxonomy.outcomes.map((o) => o.code);
    expect(new Set(codes).size).toBe(codes.length);
    expect(codes.slice(0, 341)).toEqual([...codes.slice(0, 341)].sort((a, b) => a - b));
  });

  // The source lives outside the repository (../shared); where it is absent this test reports as skipped.
  it.runIf(existsSync(SOURCE_CSV))("matches the source CSV's first three columns verbatim", () => {
    const csv = readFileSync(SOURCE_CSV, "utf8");
    const lines = csv.trim().split(/\r?\n/).slice(1);
    expect(lines.length).toBe(OCC1990DD_RAW_ROWS.length);
    lines.forEach((line, i) => {
      const match = /^(\d+),("(?:[^"]|"")*"|[^,]*),([^,]*),/.exec(line);
      expect(match, line).not.toBeNull();
      const [, code, rawTitle, weight] = match as RegExpExecArray;
      const title = rawTitle.startsWith('"') ? rawTitle.slice(1, -1).replace(/""/g, '"') : rawTitle;
      expect([Number(code), title, Number(weight)]).toEqual(OCC1990DD_RAW_ROWS[i]);
    });
  });

  it("applies every listed title correction and leaves no known typo behind", () => {
    for (const fix of TITLE_CORRECTIONS) {
      const raw = OCC1990DD_RAW_ROWS.find(([code]) => code === fix.code);
      expect(raw?.[1]).toBe(fix.original);
      expect(taxonomy.byCode(fix.code).title).toBe(fix.corrected);
    }
    const titles = taxonomy.outcomes.map((o) => o.title).join("\n");
    for (const typo of ["Miscellanious", "equipement", "machne", "Furnance", "applicance", "exluding", "Surveryors", "647=", "carpeters"]) {
      expect(titles).not.toContain(typo);
    }
    expect(taxonomy.byCode(183).title).toBe("Writers and authors");
    expect(taxonomy.byCode(276).title).toBe("Cashiers");
  });

  it("titles are printable ASCII without line breaks (they become document lines)", () => {
    for (const outcome of taxonomy.outcomes) expect(outcome.title).toMatch(/^[\x20-\x7e]+$/);
  });

  it("derives major groups from code ranges", () => {
    expect(majorGroupOfCode(4)).toBe(0);
    expect(majorGroupOfCode(84)).toBe(1);
    expect(majorGroupOfCode(276)).toBe(3);
    expect(majorGroupOfCode(313)).toBe(4);
    expect(majorGroupOfCode(889)).toBe(12);
    expect(majorGroupOfCode(UNEMPLOYED_CODE)).toBe(NON_WORK_GROUP);
    expect(majorGroupOfCode(40)).toBeUndefined();
    for (let g = 0; g < MAJOR_GROUPS.length; g++) {
      expect(taxonomy.outcomes.some((o) => o.group === g), MAJOR_GROUPS[g].name).toBe(true);
    }
  });

  it("parses occupation cells: codes and non-work keywords; unknown codes are undefined", () => {
    expect(taxonomy.parseOccupation("276")).toBe(276);
    expect(taxonomy.parseOccupation(" 992 ")).toBe(UNEMPLOYED_CODE);
    expect(taxonomy.parseOccupation("not-in-labor-force")).toBe(NOT_IN_LABOR_FORCE_CODE);
    expect(taxonomy.parseOccupation("In education")).toBe(IN_EDUCATION_CODE);
    expect(taxonomy.parseOccupation("123")).toBeUndefined();
    expect(taxonomy.parseOccupation("cashier")).toBeUndefined();
    expect(() => taxonomy.byCode(123)).toThrow("unknown occupation code 123");
  });

  it("employment weights are positive for occupations and zero for non-work states", () => {
    for (const outcome of taxonomy.outcomes) {
      if (outcome.isNonWork) expect(outcome.employmentWeight).toBe(0);
      else expect(outcome.employmentWeight).toBeGreaterThan(0);
    }
  });
});
