/**
 * A raw survey extract → a panel of the taxonomy: each employed row's Census occupation code goes through
 * the crosswalk of its year's code vintage (a schedule), every other row becomes its non-work state from the
 * status column. Every problem is collected as `file:line: message` (like `data check`), nothing is dropped
 * without being counted, and a crosswalk target that is not an occupation (905 military, 991 no work in five
 * years, 999 no occupation) is handled by an explicit policy whose default is to stop with an error.
 */
import { readFileSync } from "node:fs";
import { parse as parseCsvSync } from "csv-parse/sync";
import { PanelBuilder, quoted, readCsvRows } from "./load.js";
import { PANEL_COLUMNS, type Panel, type PanelColumn } from "./panel.js";
import {
  CODE_VINTAGES,
  crosswalkTables,
  SPECIAL_TARGETS,
  type CodeVintage,
  type CrosswalkLookup,
  type CrosswalkTables,
  type SpecialTarget,
} from "./crosswalk-tables.js";
import { describeSchedule, vintageForYear, type VintageSchedule } from "./crosswalk-schedule.js";
import { NON_WORK_STATES, occupationTaxonomy } from "./taxonomy.js";

/** Employment statuses of an extract row and the spellings accepted for each (any case; -, _ and spaces alike; "labour" = "labor"). */
export const EMPLOYMENT_STATUSES = [
  { status: "employed", spellings: ["employed", "working", "at work", "with a job"] },
  { status: "in-education", spellings: ["in education", "in school", "enrolled", "student"] },
  { status: "unemployed", spellings: ["unemployed", "looking for work"] },
  {
    status: "not-in-labor-force",
    spellings: ["not in labor force", "out of labor force", "out of the labor force", "nilf"],
  },
] as const;
export type EmploymentStatus = (typeof EMPLOYMENT_STATUSES)[number]["status"];

/** Panel keyword of each non-work status. */
const STATE_OF_STATUS: Record<Exclude<EmploymentStatus, "employed">, string> = {
  "in-education": "in-education",
  unemployed: "unemployed",
  "not-in-labor-force": "not-in-labor-force",
};

/**
 * What to do with a row whose code maps to a special target. `error` (the default) reports the row and writes
 * nothing; `drop` leaves the person-year out (a gap in that person's record, counted in the summary);
 * `unemployed` and `not-in-labor-force` turn it into that non-work state. None of them can give "In education".
 */
export const SPECIAL_POLICIES = ["error", "drop", "unemployed", "not-in-labor-force"] as const;
/** One of {@link SPECIAL_POLICIES}. */
export type SpecialPolicy = (typeof SPECIAL_POLICIES)[number];

/** The flag of each special target's policy. */
export const POLICY_FLAGS: Record<SpecialTarget, string> = { 905: "military", 991: "no-work-5-years", 999: "unclassified" };

/** Columns of an extract: a panel's, with `status` added (`dataset` may come from an option instead). */
export const EXTRACT_COLUMNS = ["person_id", "year", "occupation", "status", "education", "birth_year", "sex", "race", "region", "dataset"] as const;

/** A user's hand recodes: `vintage|code` → occ1990dd code or non-work keyword, applied before the tables. */
export type Recodes = ReadonlyMap<string, string>;

/** How {@link crosswalkExtract} reads an extract. */
export interface CrosswalkOptions {
  /** Vintage of each year's codes. */
  schedule: VintageSchedule;
  /** Policy per special target (default error for each). */
  policies?: Partial<Record<SpecialTarget, SpecialPolicy>>;
  /** Value of the dataset column when the extract has none (e.g. "NLSY79"). */
  dataset?: string;
  /** Hand recodes (see {@link readRecodes}). */
  recodes?: Recodes;
  tables?: CrosswalkTables;
}

/** Rows of one survey year in the summary. */
export interface CrosswalkYearSummary {
  year: number;
  /** The schedule's vintage for the year ("" when the schedule has none: then only non-work rows can be read). */
  vintage: CodeVintage | "";
  rows: number;
  /** Employed rows mapped to an occupation. */
  occupations: number;
  /** Of those, through a hand recode. */
  recoded: number;
  inEducation: number;
  unemployed: number;
  notInLaborForce: number;
  /** Rows turned into a non-work state or dropped by a special-target policy. */
  bySpecialPolicy: number;
  dropped: number;
}

/** What a crosswalk did: rows per survey year and vintage, and each special target's policy and use. */
export interface CrosswalkSummary {
  file: string;
  schedule: string;
  rows: number;
  years: CrosswalkYearSummary[];
  /** Each special target: its policy and the rows it was applied to. */
  special: { code: SpecialTarget; meaning: string; flag: string; policy: SpecialPolicy; rows: number }[];
}

/** The panel of an extract and the summary of how it was read. */
export interface CrosswalkResult {
  panel: Panel;
  summary: CrosswalkSummary;
}

/** Canonical form of a status cell: lower case, -/_ as spaces, single spaces, "labour" as "labor". */
function normaliseStatus(text: string): string {
  return text.trim().toLowerCase().replace(/[-_]+/g, " ").replace(/\s+/g, " ").replace(/labour/g, "labor");
}

const STATUS_BY_SPELLING = new Map<string, EmploymentStatus>(
  EMPLOYMENT_STATUSES.flatMap(({ status, spellings }) => [...spellings, status].map((spelling) => [normaliseStatus(spelling), status] as const)),
);

/** The status of a cell, or undefined when it is none of the accepted spellings. */
export function parseEmploymentStatus(text: string): EmploymentStatus | undefined {
  return STATUS_BY_SPELLING.get(normaliseStatus(text));
}

function recodeKey(vintage: CodeVintage, code: string): string {
  const text = code.trim();
  if (!/^\d+$/.test(text)) return `${vintage}|${text}`;
  return `${vintage}|${vintage === "census2018" ? String(Number(text)).padStart(4, "0") : String(Number(text))}`;
}

/**
 * Hand recodes from a CSV with the header `vintage,code,occ1990dd`: the occ1990dd cell is an occupation code
 * of the taxonomy or a non-work keyword (in-education, unemployed, not-in-labor-force; numbers 991–993 are
 * refused, because the crosswalk's 991 means something else). Errors name the file and line.
 */
export function readRecodes(path: string): Recodes {
  let records: string[][];
  try {
    records = parseCsvSync(readFileSync(path, "utf8"), { skip_empty_lines: true, bom: true, relax_column_count: true }) as string[][];
  } catch (error) {
    throw new Error(`${path}: cannot read recodes: ${(error as Error).message}`, { cause: error });
  }
  const [header, ...rows] = records;
  if (!header || header.map((cell) => cell.trim()).join(",") !== "vintage,code,occ1990dd") {
    throw new Error(`${path}:1: expected the header "vintage,code,occ1990dd"`);
  }
  const taxonomy = occupationTaxonomy();
  const keywords = NON_WORK_STATES.map((state) => state.keyword);
  const recodes = new Map<string, string>();
  rows.forEach((row, index) => {
    const where = `${path}:${index + 2}`;
    if (row.length !== 3) throw new Error(`${where}: expected 3 fields, found ${row.length}`);
    const [vintage, code, target] = row.map((cell) => cell.trim());
    if (!CODE_VINTAGES.includes(vintage as CodeVintage)) throw new Error(`${where}: unknown vintage ${quoted(vintage)} (expected one of ${CODE_VINTAGES.join(", ")})`);
    if (code === "") throw new Error(`${where}: missing code`);
    const isOccupation = /^\d+$/.test(target) && taxonomy.has(Number(target)) && !taxonomy.byCode(Number(target)).isNonWork;
    if (!isOccupation && !keywords.includes(target as (typeof keywords)[number])) {
      throw new Error(`${where}: ${quoted(target)} is neither an occ1990dd occupation code of the taxonomy nor one of ${keywords.join(", ")}`);
    }
    const key = recodeKey(vintage as CodeVintage, code);
    if (recodes.has(key)) throw new Error(`${where}: ${vintage} code ${code} is recoded twice`);
    recodes.set(key, isOccupation ? String(Number(target)) : target);
  });
  return recodes;
}

/** A lookup's reason after "is not in the crosswalk": a parenthesis, or a clause after a colon. */
function reasonText(reason: string | undefined): string {
  if (reason === undefined) return "";
  return reason.startsWith("(") ? ` ${reason}` : `: ${reason}`;
}

function parseYear(text: string): number | undefined {
  if (!/^\d{4}$/.test(text)) return undefined;
  const year = Number(text);
  return year >= 1800 && year <= 2200 ? year : undefined;
}

/**
 * Converts rows of an extract, feeding a {@link PanelBuilder} (which checks every other field, duplicates and
 * year order, and names the extract's lines in its problems) and counting the summary.
 */
class ExtractConverter {
  readonly builder: PanelBuilder;
  private readonly tables: CrosswalkTables;
  private readonly policies: Record<SpecialTarget, SpecialPolicy>;
  private readonly years = new Map<string, CrosswalkYearSummary>();
  private readonly specialRows: Record<SpecialTarget, number> = { 905: 0, 991: 0, 999: 0 };
  private rows = 0;

  constructor(
    readonly file: string,
    private readonly options: CrosswalkOptions,
  ) {
    this.builder = new PanelBuilder(file);
    this.tables = options.tables ?? crosswalkTables();
    this.policies = { 905: "error", 991: "error", 999: "error", ...options.policies };
  }

  private yearSummary(year: number, vintage: CodeVintage | ""): CrosswalkYearSummary {
    const key = `${year}|${vintage}`;
    let summary = this.years.get(key);
    if (!summary) {
      summary = { year, vintage, rows: 0, occupations: 0, recoded: 0, inEducation: 0, unemployed: 0, notInLaborForce: 0, bySpecialPolicy: 0, dropped: 0 };
      this.years.set(key, summary);
    }
    return summary;
  }

  /** One extract row (fields by column name, as text). */
  addRow(fields: Partial<Record<(typeof EXTRACT_COLUMNS)[number], string>>, line: number): void {
    this.rows += 1;
    const text = (column: (typeof EXTRACT_COLUMNS)[number]) => (fields[column] ?? "").trim();
    const panelFields: Partial<Record<PanelColumn, string>> = {};
    for (const column of PANEL_COLUMNS) panelFields[column] = fields[column];
    if (this.options.dataset !== undefined && text("dataset") === "") panelFields.dataset = this.options.dataset;
    const year = parseYear(text("year"));
    const status = parseEmploymentStatus(text("status"));
    // A row with a problem still goes through the builder (with a placeholder outcome) so that the problems
    // of its other fields are reported too; the panel is discarded whenever there is any problem.
    const withPlaceholder = () => this.builder.addRow({ ...panelFields, occupation: "not-in-labor-force" }, line);
    if (status === undefined) {
      const expected = EMPLOYMENT_STATUSES.map((entry) => entry.status).join(", ");
      this.builder.problem(
        line,
        text("status") === "" ? `missing status (expected one of ${expected})` : `unknown status ${quoted(text("status"))} (expected one of ${expected}; other accepted spellings in labor-llm data --help)`,
      );
      withPlaceholder();
      return;
    }
    if (year === undefined) {
      withPlaceholder(); // the builder reports the year
      return;
    }
    const vintage = vintageForYear(this.options.schedule, year) ?? "";
    const summary = this.yearSummary(year, vintage);
    summary.rows += 1;
    if (status !== "employed") {
      if (status === "in-education") summary.inEducation += 1;
      else if (status === "unemployed") summary.unemployed += 1;
      else summary.notInLaborForce += 1;
      this.builder.addRow({ ...panelFields, occupation: STATE_OF_STATUS[status] }, line);
      return;
    }
    const code = text("occupation");
    if (code === "") {
      this.builder.problem(line, `status ${quoted(text("status"))} (employed) but no occupation code`);
      withPlaceholder();
      return;
    }
    if (vintage === "") {
      this.builder.problem(line, `year ${year} is in no range of schedule ${this.options.schedule.name} (${describeSchedule(this.options.schedule)}): cannot read code ${code}`);
      withPlaceholder();
      return;
    }
    const recoded = this.options.recodes?.get(recodeKey(vintage, code));
    if (recoded !== undefined) {
      if (/^\d+$/.test(recoded)) {
        summary.occupations += 1;
        summary.recoded += 1;
      } else if (recoded === "in-education") summary.inEducation += 1;
      else if (recoded === "unemployed") summary.unemployed += 1;
      else summary.notInLaborForce += 1;
      this.builder.addRow({ ...panelFields, occupation: recoded }, line);
      return;
    }
    const target: CrosswalkLookup = this.tables.lookup(vintage, code);
    if (target.kind === "unmapped") {
      this.builder.problem(line, `code ${code} (${vintage}, year ${year}) is not in the crosswalk${reasonText(target.reason)}`);
      withPlaceholder();
      return;
    }
    if (target.kind === "occupation") {
      summary.occupations += 1;
      this.builder.addRow({ ...panelFields, occupation: String(target.code) }, line);
      return;
    }
    // A special target: never a taxonomy code (the crosswalk's 991 is not the taxonomy's "In education").
    const policy = this.policies[target.code];
    const flag = POLICY_FLAGS[target.code];
    if (policy === "error") {
      this.builder.problem(
        line,
        `code ${code} (${vintage}, year ${year}) maps to ${target.code}, ${SPECIAL_TARGETS[target.code]}: choose what it becomes with --${flag} ${SPECIAL_POLICIES.filter((p) => p !== "error").join("|")}`,
      );
      withPlaceholder();
      return;
    }
    this.specialRows[target.code] += 1;
    summary.bySpecialPolicy += 1;
    if (policy === "drop") {
      summary.dropped += 1;
      return;
    }
    if (policy === "unemployed") summary.unemployed += 1;
    else summary.notInLaborForce += 1;
    this.builder.addRow({ ...panelFields, occupation: policy }, line);
  }

  finish(): CrosswalkResult {
    const panel = this.builder.finish();
    const years = [...this.years.values()].sort((a, b) => a.year - b.year || a.vintage.localeCompare(b.vintage));
    const special = (Object.keys(SPECIAL_TARGETS).map(Number) as SpecialTarget[]).map((code) => ({
      code,
      meaning: SPECIAL_TARGETS[code],
      flag: `--${POLICY_FLAGS[code]}`,
      policy: this.policies[code],
      rows: this.specialRows[code],
    }));
    return { panel, summary: { file: this.file, schedule: `${this.options.schedule.name} (${describeSchedule(this.options.schedule)})`, rows: this.rows, years, special } };
  }
}

/**
 * Read a CSV extract (header with the {@link EXTRACT_COLUMNS}, any order, extra columns ignored; `dataset`
 * may be left out when `options.dataset` is given) and convert it. Throws a PanelValidationError naming every
 * bad line of the extract.
 */
export async function crosswalkExtract(path: string, options: CrosswalkOptions): Promise<CrosswalkResult> {
  const converter = new ExtractConverter(path, options);
  const required = EXTRACT_COLUMNS.filter((column) => column !== "dataset" || options.dataset === undefined);
  await readCsvRows(path, { columns: EXTRACT_COLUMNS, required, what: "an extract" }, (line, message) => converter.builder.problem(line, message), (fields, line) =>
    converter.addRow(fields, line),
  );
  return converter.finish();
}

function zeroCounts() {
  return { rows: 0, occupations: 0, recoded: 0, inEducation: 0, unemployed: 0, notInLaborForce: 0, bySpecialPolicy: 0, dropped: 0 };
}

/**
 * The summary as two markdown tables: rows per year and vintage (then per vintage over its years, then all),
 * and each special target's policy and use.
 */
export function formatCrosswalkSummary(summary: CrosswalkSummary): string {
  const lines = [
    `${summary.file}: ${summary.rows} rows; schedule ${summary.schedule}`,
    "",
    "| year | vintage | rows | occupations | of which recoded | in education | unemployed | not in labor force | by special policy | dropped |",
    "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
  ];
  const total = zeroCounts();
  for (const year of summary.years) {
    lines.push(
      `| ${year.year} | ${year.vintage || "—"} | ${year.rows} | ${year.occupations} | ${year.recoded} | ${year.inEducation} | ${year.unemployed} | ${year.notInLaborForce} | ${year.bySpecialPolicy} | ${year.dropped} |`,
    );
    for (const key of Object.keys(total) as (keyof typeof total)[]) total[key] += year[key];
  }
  // One line per vintage: its years (first–last) and totals.
  const byVintage = new Map<string, { first: number; last: number; counts: typeof total }>();
  for (const year of summary.years) {
    const entry = byVintage.get(year.vintage) ?? { first: year.year, last: year.year, counts: zeroCounts() };
    entry.first = Math.min(entry.first, year.year);
    entry.last = Math.max(entry.last, year.year);
    for (const key of Object.keys(entry.counts) as (keyof typeof total)[]) entry.counts[key] += year[key];
    byVintage.set(year.vintage, entry);
  }
  for (const [vintage, { first, last, counts }] of byVintage) {
    const c = counts;
    lines.push(
      `| ${first}–${last} | ${vintage || "—"} | ${c.rows} | ${c.occupations} | ${c.recoded} | ${c.inEducation} | ${c.unemployed} | ${c.notInLaborForce} | ${c.bySpecialPolicy} | ${c.dropped} |`,
    );
  }
  lines.push(
    `| all | | ${total.rows} | ${total.occupations} | ${total.recoded} | ${total.inEducation} | ${total.unemployed} | ${total.notInLaborForce} | ${total.bySpecialPolicy} | ${total.dropped} |`,
    "",
    "| crosswalk target | meaning | flag | policy | rows |",
    "| ---: | --- | --- | --- | ---: |",
  );
  for (const entry of summary.special) lines.push(`| ${entry.code} | ${entry.meaning} | ${entry.flag} | ${entry.policy} | ${entry.rows} |`);
  return lines.join("\n");
}
