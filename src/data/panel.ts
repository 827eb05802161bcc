/**
 * Panel schema: a survey extract is one row per person-year (person id, year, occupation or non-work
 * state, education) plus static demographics repeated on every row of a person. In memory, rows are
 * grouped by person ({@link PersonRecord}), because a person is what becomes one text document.
 */

/** Education levels, ordered from least to most schooling (the index is the order). */
export const EDUCATION_LEVELS = [
  { key: "less-than-high-school", label: "less than high school" },
  { key: "high-school", label: "high school diploma" },
  { key: "some-college", label: "some college" },
  { key: "college", label: "college degree" },
  { key: "graduate", label: "graduate degree" },
] as const;

/** Index into {@link EDUCATION_LEVELS}: 0 = less than high school … 4 = graduate degree. */
export type EducationLevel = 0 | 1 | 2 | 3 | 4;

export const SEXES = ["female", "male"] as const;
export type Sex = (typeof SEXES)[number];

export const RACES = ["white", "black", "hispanic", "other"] as const;
export type Race = (typeof RACES)[number];

/** US census regions; the key is also the label written in documents. */
export const REGIONS = ["northeast", "north central", "south", "west"] as const;
export type Region = (typeof REGIONS)[number];

/** One observed survey wave of a person. */
export interface Wave {
  year: number;
  /** occ1990dd code, or a non-work state code (991–993, see taxonomy.ts). */
  occupation: number;
  education: EducationLevel;
}

/** A person: static demographics and waves in strictly increasing year order (gaps allowed). */
export interface PersonRecord {
  personId: string;
  /** Survey the person comes from, e.g. "NLSY79"; written into documents. */
  dataset: string;
  birthYear: number;
  sex: Sex;
  race: Race;
  region: Region;
  waves: Wave[];
}

/** A whole panel: people in file order. */
export interface Panel {
  people: PersonRecord[];
}

/** The flat file row (what CSV/JSONL files hold, one per person-year). */
export interface PanelRow {
  personId: string;
  year: number;
  occupation: number;
  education: EducationLevel;
  birthYear: number;
  sex: Sex;
  race: Race;
  region: Region;
  dataset: string;
}

/** Column names of panel files, in the order labor-llm writes them. */
export const PANEL_COLUMNS = [
  "person_id",
  "year",
  "occupation",
  "education",
  "birth_year",
  "sex",
  "race",
  "region",
  "dataset",
] as const;
export type PanelColumn = (typeof PANEL_COLUMNS)[number];

/** Number of person-years in a panel. */
export function countPersonYears(panel: Panel): number {
  let total = 0;
  for (const person of panel.people) total += person.waves.length;
  return total;
}

/** Parse an education cell: a key (`some-college`) or a label (`some college`), any case. */
export function parseEducation(text: string): EducationLevel | undefined {
  const normalized = text.trim().toLowerCase();
  const index = EDUCATION_LEVELS.findIndex((level) => level.key === normalized || level.label === normalized);
  return index < 0 ? undefined : (index as EducationLevel);
}

/** CSV fields of one person-year, in {@link PANEL_COLUMNS} order (education written as its key). */
export function panelRowFields(person: PersonRecord, wave: Wave): string[] {
  return [
    person.personId,
    String(wave.year),
    String(wave.occupation),
    EDUCATION_LEVELS[wave.education].key,
    String(person.birthYear),
    person.sex,
    person.race,
    person.region,
    person.dataset,
  ];
}

/** Quote a CSV field when it needs it (RFC 4180: comma, quote, CR or LF inside). */
export function csvField(value: string): string {
  return /[",\r\n]/.test(value) ? `"${value.replace(/"/g, '""')}"` : value;
}

/** A panel as CSV text with a header (the format {@link loadPanel} reads back). */
export function panelToCsv(panel: Panel): string {
  const lines: string[] = [PANEL_COLUMNS.join(",")];
  for (const person of panel.people) {
    for (const wave of person.waves) lines.push(panelRowFields(person, wave).map(csvField).join(","));
  }
  return lines.join("\n") + "\n";
}
