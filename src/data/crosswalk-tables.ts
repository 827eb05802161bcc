/**
 * Census occupation codes → occ1990dd: the crosswalk tables shipped in `data/crosswalks/` (provenance in its
 * README.md), read and validated once. A real survey extract records each job in the Census classification
 * of its year (1970, 1980, 2000, 2010, …); these tables put every vintage into the 341 occ1990dd codes of
 * the taxonomy.
 *
 * Three targets of the 2010 and 2016 tables are not occupations: 905 (military), 991 (unemployed with no
 * work in the last five years) and 999 (no occupation). They come back as `special` results, never as
 * taxonomy codes: the taxonomy's own 991 means "In education", a different thing.
 */
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { occupationTaxonomy, type OccupationTaxonomy } from "./taxonomy.js";

/** Code vintages a row can be read in. */
export const CODE_VINTAGES = [
  "census1970",
  "census1980",
  "census1990",
  "census2000",
  "census2002",
  "census2005",
  "census2010",
  "census2016",
  "census2018",
] as const;
/** A Census occupation-code vintage (which classification a raw code is in). */
export type CodeVintage = (typeof CODE_VINTAGES)[number];

/** What each vintage is and which table reads it (for --help and the README). */
export const VINTAGE_DESCRIPTIONS: Record<CodeVintage, string> = {
  census1970: "1970 Census codes",
  census1980: "1980 Census codes",
  census1990: "1990 Census codes",
  census2000: "2000 Census codes (3-digit)",
  census2002: "NLSY97's four-digit 2002 codes: divided by 10, then the 2000 table",
  census2005: "the 2005 ACS revision of the 2000 list",
  census2010: "2010 Census codes (ACS 2010–2012)",
  census2016: "the 2012 revision used by the ACS from 2013",
  census2018: "2018 codes: the weighted 2018 → 2010 table, then the 2010 table",
};

/** Targets of the tables that are not occupations, with what they mean. */
export const SPECIAL_TARGETS = {
  905: "military",
  991: "unemployed, no work in the last 5 years",
  999: "unclassified (source code 0, no occupation)",
} as const;
export type SpecialTarget = keyof typeof SPECIAL_TARGETS;

/** The table files and the vintages they read directly (census2002 and census2018 go through others). */
const DIRECT_TABLES = {
  census1970: { file: "census1970_to_occ1990dd.csv", header: "census1970,occ1990dd" },
  census1980: { file: "census1980_to_occ1990dd.csv", header: "census1980,occ1990dd" },
  census1990: { file: "census1990_to_occ1990dd.csv", header: "census1990,occ1990dd" },
  census2000: { file: "census2000_to_occ1990dd.csv", header: "census2000,occ1990dd" },
  census2005: { file: "census2005_to_occ1990dd.csv", header: "census2005,occ1990dd" },
  census2010: { file: "census2010_to_occ1990dd.csv", header: "census2010,occ1990dd" },
  census2016: { file: "census2016_to_occ1990dd.csv", header: "census2016,occ1990dd" },
} as const;
type DirectVintage = keyof typeof DIRECT_TABLES;
export const CENSUS2018_FILE = "census2018_to_census2010_weighted.csv";

/** Every file of data/crosswalks/ that the tool reads. */
export const CROSSWALK_FILES: readonly string[] = [...Object.values(DIRECT_TABLES).map((table) => table.file), CENSUS2018_FILE];

/** A source code's target: an occupation of the taxonomy, or one of the special targets. */
export type CrosswalkTarget = { kind: "occupation"; code: number } | { kind: "special"; code: SpecialTarget };

/** The result of looking a code up: a target, or why there is none (`reason` completes "is not in the crosswalk"). */
export type CrosswalkLookup = CrosswalkTarget | { kind: "unmapped"; reason?: string };

/** One row of the weighted 2018 → 2010 table. */
export interface Census2018Link {
  census2010: string;
  weight: number;
}

/**
 * How a 2018 code resolves: each of its 2010 codes goes through the 2010 table, the weights are summed per
 * target, and the target with the largest total wins (ties: the smallest code; occupations before special
 * targets). When any of its 2010 codes is missing from the 2010 table (a merged code such as 1830_1860, or an
 * unmatched one) the 2018 code has no target: its share cannot be placed, so the winner is not known.
 */
function resolveCensus2018(links: readonly Census2018Link[], table2010: ReadonlyMap<number, CrosswalkTarget>): CrosswalkLookup {
  const totals = new Map<string, { target: CrosswalkTarget; weight: number }>();
  for (const link of links) {
    const target = /^\d+$/.test(link.census2010) ? table2010.get(Number(link.census2010)) : undefined;
    if (!target) {
      const merged = link.census2010.includes("_") ? "a merged code" : "a code";
      return { kind: "unmapped", reason: `its 2010 code ${link.census2010} (weight ${roundWeight(link.weight)}) is ${merged} not in the 2010 table` };
    }
    const key = `${target.kind}:${target.code}`;
    const total = totals.get(key) ?? { target, weight: 0 };
    total.weight += link.weight;
    totals.set(key, total);
  }
  const ranked = [...totals.values()].sort(
    (a, b) => b.weight - a.weight || (a.target.kind === b.target.kind ? a.target.code - b.target.code : a.target.kind === "occupation" ? -1 : 1),
  );
  return ranked[0].target;
}

function roundWeight(weight: number): string {
  return String(Math.round(weight * 1000) / 1000);
}

/** The crosswalk tables, validated. Build with {@link crosswalkTables} (once per process). */
export class CrosswalkTables {
  /** Rows (excluding the header) of each file, by file name. */
  readonly rowCounts = new Map<string, number>();
  private readonly direct = new Map<DirectVintage, Map<number, CrosswalkTarget>>();
  /** 2018 code (as written in the table, four digits or merged) → its 2010 links. */
  private readonly census2018Links = new Map<string, Census2018Link[]>();
  private readonly census2018Resolved = new Map<string, CrosswalkLookup>();

  /**
   * Reads every table from `directory` and checks it: the exact header, integer codes, no source code twice,
   * every target an occupation of the taxonomy or a special target (905, 991, 999), 2018 weights in (0, 1]
   * summing to 1 per code. Errors are one line naming the file and line.
   */
  constructor(
    readonly directory: string,
    taxonomy: OccupationTaxonomy = occupationTaxonomy(),
  ) {
    for (const [vintage, { file, header }] of Object.entries(DIRECT_TABLES) as [DirectVintage, { file: string; header: string }][]) {
      const table = new Map<number, CrosswalkTarget>();
      const rows = readRows(directory, file, header, 2);
      for (const { line, fields } of rows) {
        const where = `${join(directory, file)}:${line}`;
        const [source, target] = fields.map((field) => parseCode(field, where));
        if (table.has(source)) throw new Error(`${where}: source code ${source} appears twice`);
        table.set(source, targetOf(target, taxonomy, where));
      }
      this.direct.set(vintage, table);
      this.rowCounts.set(file, rows.length);
    }
    const rows = readRows(directory, CENSUS2018_FILE, "census2018,census2010,weight", 3);
    const seen = new Set<string>();
    for (const { line, fields } of rows) {
      const where = `${join(directory, CENSUS2018_FILE)}:${line}`;
      const [census2018, census2010, weightText] = fields;
      for (const code of [census2018, census2010]) {
        if (!/^\d{4}(_\d{4})*$/.test(code)) throw new Error(`${where}: "${code}" is not a four-digit code (or merged codes joined by _)`);
      }
      const weight = Number(weightText);
      if (!(weight > 0 && weight <= 1)) throw new Error(`${where}: weight "${weightText}" is not in (0, 1]`);
      if (seen.has(`${census2018},${census2010}`)) throw new Error(`${where}: the pair ${census2018} → ${census2010} appears twice`);
      seen.add(`${census2018},${census2010}`);
      const links = this.census2018Links.get(census2018) ?? [];
      links.push({ census2010, weight });
      this.census2018Links.set(census2018, links);
    }
    const table2010 = this.direct.get("census2010") as Map<number, CrosswalkTarget>;
    for (const [code, links] of this.census2018Links) {
      const sum = links.reduce((total, link) => total + link.weight, 0);
      if (Math.abs(sum - 1) > 1e-6) throw new Error(`${join(directory, CENSUS2018_FILE)}: weights of 2018 code ${code} sum to ${sum}, not 1`);
      this.census2018Resolved.set(code, resolveCensus2018(links, table2010));
    }
    this.rowCounts.set(CENSUS2018_FILE, rows.length);
  }

  /**
   * The target of a source code (as written in the extract, leading zeros allowed) in a vintage.
   * census2002 codes are divided by 10 and read in the 2000 table (a code that is no multiple of 10 has no
   * target); census2018 codes resolve through the weighted 2018 → 2010 table (see {@link resolveCensus2018}).
   */
  lookup(vintage: CodeVintage, codeText: string): CrosswalkLookup {
    const text = codeText.trim();
    if (vintage === "census2018") {
      const key = /^\d+$/.test(text) ? String(Number(text)).padStart(4, "0") : text;
      return this.census2018Resolved.get(key) ?? { kind: "unmapped" };
    }
    if (!/^\d+$/.test(text)) return { kind: "unmapped", reason: "(not an integer code)" };
    const code = Number(text);
    if (vintage === "census2002") {
      if (code % 10 !== 0) return { kind: "unmapped", reason: "(four-digit 2002 codes are 2000 codes × 10: no multiple of 10)" };
      return this.lookup("census2000", String(code / 10));
    }
    return this.direct.get(vintage)?.get(code) ?? { kind: "unmapped" };
  }

  /** Every source code of a vintage with its target (census2002: the 2000 codes × 10; census2018: resolved codes). */
  entries(vintage: CodeVintage): [string, CrosswalkLookup][] {
    if (vintage === "census2018") return [...this.census2018Resolved.entries()];
    if (vintage === "census2002") return this.entries("census2000").map(([code, target]) => [String(Number(code) * 10), target]);
    return [...(this.direct.get(vintage) ?? new Map<number, CrosswalkTarget>()).entries()].map(([code, target]) => [String(code), target]);
  }

  /** The 2010 codes and weights of a 2018 code (empty when the table has no such code). */
  census2018LinksOf(code: string): readonly Census2018Link[] {
    return this.census2018Links.get(code) ?? [];
  }
}

/** One data row of a table file: its 1-based line number and its fields. */
interface TableRow {
  line: number;
  fields: string[];
}

/** Rows of a plain CSV table (no quoting in these files) with the exact header and `width` fields per row. */
function readRows(directory: string, file: string, header: string, width: number): TableRow[] {
  const path = join(directory, file);
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    throw new Error(`${path}: cannot read crosswalk table: ${(error as Error).message}`, { cause: error });
  }
  const lines = text.replace(/\r\n/g, "\n").split("\n");
  if (lines[lines.length - 1] === "") lines.pop();
  if (lines[0] !== header) throw new Error(`${path}:1: expected the header "${header}", found "${lines[0] ?? ""}"`);
  return lines.slice(1).map((raw, index) => {
    const fields = raw.split(",");
    if (fields.length !== width) throw new Error(`${path}:${index + 2}: expected ${width} fields, found ${fields.length}`);
    return { line: index + 2, fields };
  });
}

function parseCode(text: string, where: string): number {
  if (!/^\d+$/.test(text)) throw new Error(`${where}: "${text}" is not an integer code`);
  return Number(text);
}

function targetOf(code: number, taxonomy: OccupationTaxonomy, where: string): CrosswalkTarget {
  if (code in SPECIAL_TARGETS) return { kind: "special", code: code as SpecialTarget };
  const outcome = taxonomy.has(code) ? taxonomy.byCode(code) : undefined;
  if (!outcome || outcome.isNonWork) throw new Error(`${where}: target ${code} is not an occ1990dd code of the taxonomy (nor 905, 991 or 999)`);
  return { kind: "occupation", code };
}

/** data/crosswalks/ of this package, found from this file (src/data when run from TS, dist/src/data when built). */
export function crosswalkDirectory(): string {
  const start = dirname(fileURLToPath(import.meta.url));
  let dir = start;
  for (let depth = 0; depth < 6; depth++) {
    const candidate = join(dir, "data", "crosswalks");
    if (existsSync(join(candidate, CENSUS2018_FILE))) return candidate;
    dir = dirname(dir);
  }
  throw new Error(`crosswalk tables: data/crosswalks/${CENSUS2018_FILE} not found above ${start} (is the package's data/ folder missing?)`);
}

let sharedTables: CrosswalkTables | undefined;

/** The shipped crosswalk tables, read and validated on first use. */
export function crosswalkTables(): CrosswalkTables {
  sharedTables ??= new CrosswalkTables(crosswalkDirectory());
  return sharedTables;
}
