/**
 * Panel loaders (CSV through csv-parse's streaming parser, and JSONL) with validation that collects every
 * problem as `file:line: message` and stops with one summary error, so a user fixes a whole extract in one
 * pass. Biennial surveys are fine: gaps between a person's years are data, not errors.
 */
import { createReadStream, statSync } from "node:fs";
import { createInterface } from "node:readline";
import { parse as parseCsv } from "csv-parse";
import {
  EDUCATION_LEVELS,
  PANEL_COLUMNS,
  parseEducation,
  RACES,
  REGIONS,
  SEXES,
  type Panel,
  type PanelColumn,
  type PersonRecord,
  type Race,
  type Region,
  type Sex,
} from "./panel.js";
import { NON_WORK_STATES, occupationTaxonomy, type OccupationTaxonomy } from "./taxonomy.js";

/** How many problems the summary error lists before "… and N more". */
const PROBLEMS_SHOWN = 50;
/** Problems kept in memory; beyond this only the count grows (a wrong file can have millions). */
const PROBLEMS_KEPT = 10_000;

/** Thrown when a panel file has problems; `problems` holds each `file:line: message`. */
export class PanelValidationError extends Error {
  constructor(
    readonly file: string,
    readonly problems: readonly string[],
    readonly problemCount: number,
  ) {
    const shown = problems.slice(0, PROBLEMS_SHOWN);
    const more = problemCount - shown.length;
    super(
      `${file}: ${problemCount} problem${problemCount === 1 ? "" : "s"} in panel\n` +
        shown.join("\n") +
        (more > 0 ? `\n… and ${more} more` : ""),
    );
    this.name = "PanelValidationError";
  }
}

/** Where a person's static fields and last year were first seen, for duplicate/order/consistency checks. */
interface PersonTrack {
  record: PersonRecord;
  firstLine: number;
  lastYear: number;
  lastLine: number;
  lineByYear: Map<number, number>;
}

const STATIC_FIELDS = ["birth_year", "sex", "race", "region", "dataset"] as const;

/**
 * Validates rows one at a time and groups them into people. Every check reports with the file and line
 * of the offending row; rows with a problem are left out of the panel (the panel is discarded anyway
 * when any problem is found).
 */
export class PanelBuilder {
  private readonly people = new Map<string, PersonTrack>();
  private readonly problems: string[] = [];
  private problemCount = 0;
  private rowCount = 0;

  constructor(
    readonly file: string,
    private readonly taxonomy: OccupationTaxonomy = occupationTaxonomy(),
  ) {}

  /** Record a problem at a line (line 0 = the file as a whole). */
  problem(line: number, message: string): void {
    this.problemCount += 1;
    // Each problem is one line of the summary: a line break inside a value (a quoted CSV field, a JSON
    // string) that a message shows unquoted is written as its escape.
    const oneLine = message.replace(/\r/g, "\\r").replace(/\n/g, "\\n");
    if (this.problems.length < PROBLEMS_KEPT) this.problems.push(line > 0 ? `${this.file}:${line}: ${oneLine}` : `${this.file}: ${oneLine}`);
  }

  /** Add one person-year given its fields as text (missing fields undefined). */
  addRow(fields: Partial<Record<PanelColumn, string>>, line: number): void {
    this.rowCount += 1;
    // Report every problem of the row (missing and malformed fields alike) before giving up on it.
    const missing = PANEL_COLUMNS.filter((column) => (fields[column] ?? "").trim() === "");
    let ok = true;
    const fail = (message: string) => {
      this.problem(line, message);
      ok = false;
    };
    if (missing.length > 0) fail(`missing ${missing.join(", ")}`);
    const present = (column: PanelColumn) => !missing.includes(column);
    const text = (column: PanelColumn) => (fields[column] ?? "").trim();
    const year = parseYear(text("year"));
    if (year === undefined && present("year")) fail(`year ${quoted(text("year"))} is not a year (an integer from 1800 to 2200)`);
    const birthYear = parseYear(text("birth_year"));
    if (birthYear === undefined && present("birth_year")) fail(`birth_year ${quoted(text("birth_year"))} is not a year (an integer from 1800 to 2200)`);
    const occupation = this.taxonomy.parseOccupation(text("occupation"));
    if (occupation === undefined && present("occupation")) {
      const keywords = NON_WORK_STATES.map((state) => state.keyword).join(", ");
      fail(`unknown occupation code ${quoted(text("occupation"))} (expected an occ1990dd code of the taxonomy or one of ${keywords})`);
    }
    const education = parseEducation(text("education"));
    if (education === undefined && present("education")) {
      fail(`unknown education ${quoted(text("education"))} (expected one of ${EDUCATION_LEVELS.map((level) => level.key).join(", ")})`);
    }
    const sex = oneOf(text("sex"), SEXES);
    if (sex === undefined && present("sex")) fail(`unknown sex ${quoted(text("sex"))} (expected one of ${SEXES.join(", ")})`);
    const race = oneOf(text("race"), RACES);
    if (race === undefined && present("race")) fail(`unknown race ${quoted(text("race"))} (expected one of ${RACES.join(", ")})`);
    const region = oneOf(text("region"), REGIONS);
    if (region === undefined && present("region")) fail(`unknown region ${quoted(text("region"))} (expected one of ${REGIONS.join(", ")})`);
    if (!ok) return;

    const personId = text("person_id");
    const dataset = text("dataset");
    let track = this.people.get(personId);
    if (!track) {
      const record: PersonRecord = {
        personId,
        dataset,
        birthYear: birthYear as number,
        sex: sex as Sex,
        race: race as Race,
        region: region as Region,
        waves: [],
      };
      track = { record, firstLine: line, lastYear: -Infinity, lastLine: 0, lineByYear: new Map() };
      this.people.set(personId, track);
    } else {
      const record = track.record;
      const current = { birth_year: String(birthYear), sex, race, region, dataset };
      const first = { birth_year: String(record.birthYear), sex: record.sex, race: record.race, region: record.region, dataset: record.dataset };
      for (const field of STATIC_FIELDS) {
        if (current[field] !== first[field]) {
          fail(`${field} of person ${quoted(personId)} is ${quoted(current[field])} here but ${quoted(first[field])} at line ${track.firstLine}`);
        }
      }
      if (!ok) return;
    }
    const y = year as number;
    const earlierLine = track.lineByYear.get(y);
    if (earlierLine !== undefined) {
      this.problem(line, `duplicate person-year: person ${quoted(personId)} year ${y} already at line ${earlierLine}`);
      return;
    }
    if (y < track.lastYear) {
      this.problem(line, `years of person ${quoted(personId)} go backwards: ${y} after ${track.lastYear} (line ${track.lastLine})`);
      return;
    }
    track.lineByYear.set(y, line);
    track.lastYear = y;
    track.lastLine = line;
    track.record.waves.push({ year: y, occupation: occupation as number, education: education as 0 | 1 | 2 | 3 | 4 });
  }

  /** The panel, or a {@link PanelValidationError} listing every problem found. */
  finish(): Panel {
    if (this.rowCount === 0 && this.problemCount === 0) this.problem(0, "no person-year rows");
    if (this.problemCount > 0) throw new PanelValidationError(this.file, this.problems, this.problemCount);
    return { people: Array.from(this.people.values(), (track) => track.record) };
  }
}

/** One-line error naming the path when it is missing, a directory or unreadable. */
function checkReadableFile(path: string): void {
  let isFile: boolean;
  try {
    isFile = statSync(path).isFile();
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code === "ENOENT" ? "no such file" : (error as Error).message;
    throw new Error(`${path}: cannot read: ${reason}`, { cause: error });
  }
  if (!isFile) throw new Error(`${path}: cannot read: not a file`);
}

/** A field's text as a JSON string literal: quoted, with newlines and control characters escaped so that
 * a problem stays on its one line of the summary whatever the file holds. */
export function quoted(text: string | undefined): string {
  return JSON.stringify(text ?? "");
}

function parseYear(text: string): number | undefined {
  if (!/^\d{4}$/.test(text)) return undefined;
  const year = Number(text);
  return year >= 1800 && year <= 2200 ? year : undefined;
}

function oneOf<T extends string>(text: string, choices: readonly T[]): T | undefined {
  const lower = text.toLowerCase();
  return choices.find((choice) => choice === lower);
}

/**
 * Read a CSV panel (header row with the {@link PANEL_COLUMNS}, any order, extra columns ignored), streaming.
 * Throws {@link PanelValidationError} naming every bad row.
 */
export async function loadPanelCsv(path: string, taxonomy: OccupationTaxonomy = occupationTaxonomy()): Promise<Panel> {
  const builder = new PanelBuilder(path, taxonomy);
  await readCsvRows(path, { columns: PANEL_COLUMNS, required: PANEL_COLUMNS, what: "a panel" }, (line, message) => builder.problem(line, message), (fields, line) =>
    builder.addRow(fields, line),
  );
  return builder.finish();
}

/**
 * Stream a CSV file with a header row: each data row's fields of `columns` (matched case-insensitively, any
 * order, extra columns ignored, absent optional ones left out) go to `onRow` with the row's line; a missing
 * `required` column (reading stops), a row with another field count than the header, and malformed CSV go to
 * `problem`. An unreadable file throws `PATH: cannot read: REASON`.
 */
export async function readCsvRows<C extends string>(
  path: string,
  header: { columns: readonly C[]; required: readonly C[]; what: string },
  problem: (line: number, message: string) => void,
  onRow: (fields: Partial<Record<C, string>>, line: number) => void,
): Promise<void> {
  checkReadableFile(path);
  const source = createReadStream(path);
  const parser = parseCsv({ info: true, relax_column_count: true, skip_empty_lines: true, bom: true });
  // pipe() does not forward source errors (a missing file): hand them to the parser so the loop throws.
  source.on("error", (error) => parser.destroy(error));
  source.pipe(parser);
  let columnIndex: Map<string, number> | undefined;
  let headerLength = 0;
  try {
    for await (const { record, info } of parser as AsyncIterable<{ record: string[]; info: { lines: number } }>) {
      const line = info.lines;
      if (!columnIndex) {
        const names = record.map((name) => name.trim().toLowerCase());
        columnIndex = new Map(names.map((name, index) => [name, index]));
        headerLength = names.length;
        const absent = header.required.filter((column) => !columnIndex?.has(column));
        if (absent.length > 0) {
          problem(line, `missing column${absent.length > 1 ? "s" : ""} ${absent.join(", ")} (${header.what} needs ${header.required.join(", ")})`);
          break;
        }
        continue;
      }
      if (record.length !== headerLength) {
        problem(line, `expected ${headerLength} fields (as in the header), found ${record.length}`);
        continue;
      }
      const fields: Partial<Record<C, string>> = {};
      for (const column of header.columns) {
        const index = columnIndex.get(column);
        if (index !== undefined) fields[column] = record[index];
      }
      onRow(fields, line);
    }
  } catch (error) {
    const csvError = error as { code?: string; lines?: number; message: string };
    if (typeof csvError.code === "string" && csvError.code.startsWith("CSV_")) {
      problem(csvError.lines ?? 0, `malformed CSV: ${csvError.message}`);
    } else {
      throw new Error(`${path}: cannot read: ${csvError.message}`, { cause: error });
    }
  }
}

/**
 * Read a JSONL panel: one JSON object per line with the {@link PANEL_COLUMNS} as keys (numbers or strings).
 * Blank lines are skipped. Throws {@link PanelValidationError} naming every bad line.
 */
export async function loadPanelJsonl(path: string, taxonomy: OccupationTaxonomy = occupationTaxonomy()): Promise<Panel> {
  checkReadableFile(path);
  const builder = new PanelBuilder(path, taxonomy);
  const lines = createInterface({ input: createReadStream(path), crlfDelay: Infinity });
  let line = 0;
  try {
    for await (const raw of lines) {
      line += 1;
      if (raw.trim() === "") continue;
      let parsed: unknown;
      try {
        parsed = JSON.parse(raw);
      } catch (error) {
        builder.problem(line, `not valid JSON: ${(error as Error).message}`);
        continue;
      }
      if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) {
        builder.problem(line, "expected a JSON object with the panel columns as keys");
        continue;
      }
      const object = parsed as Record<string, unknown>;
      const fields: Partial<Record<PanelColumn, string>> = {};
      for (const column of PANEL_COLUMNS) {
        const value = object[column];
        if (typeof value === "string" || typeof value === "number") fields[column] = String(value);
      }
      builder.addRow(fields, line);
    }
  } catch (error) {
    throw new Error(`${path}: cannot read: ${(error as Error).message}`, { cause: error });
  }
  return builder.finish();
}

/** Read a panel from `.csv` or `.jsonl` (by extension). */
export async function loadPanel(path: string, taxonomy: OccupationTaxonomy = occupationTaxonomy()): Promise<Panel> {
  if (/\.jsonl$/i.test(path)) return loadPanelJsonl(path, taxonomy);
  if (/\.csv$/i.test(path)) return loadPanelCsv(path, taxonomy);
  throw new Error(`${path}: unknown panel format (expected a .csv or .jsonl file)`);
}
