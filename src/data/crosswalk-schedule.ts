/**
 * Which Census code vintage a survey year's occupation codes are in. Built-in schedules follow the
 * surveys' documentation as used by Deming's (2017) replication code (data/crosswalks/README.md); they are
 * **not verified against the codebooks** of every round, so a user can give their own as JSON:
 * `{"1979-1981": "census1970", "1982-2000": "census1980", "2002-": "census2000"}` — keys are a year, a range
 * `first-last`, or an open range `first-`; ranges must not overlap.
 */
import { readFileSync } from "node:fs";
import { CODE_VINTAGES, type CodeVintage } from "./crosswalk-tables.js";

/** One range of years in a schedule (last = Infinity for an open range). */
export interface ScheduleRange {
  first: number;
  last: number;
  vintage: CodeVintage;
  /** The key as written (`1979-1981`, `2002-`). */
  label: string;
}

/** A code-vintage schedule: year ranges, sorted, not overlapping. */
export interface VintageSchedule {
  name: string;
  ranges: readonly ScheduleRange[];
}

/** The built-in schedules, as JSON objects of the user format. */
export const BUILT_IN_SCHEDULES = {
  nlsy79: { "1979-1981": "census1970", "1982-2000": "census1980", "2002-": "census2000" },
  nlsy97: { "1997-": "census2002" },
  psid: { "1968-2001": "census1970", "2003-2015": "census2000", "2017-": "census2010" },
} as const satisfies Record<string, Record<string, CodeVintage>>;
export type BuiltInScheduleName = keyof typeof BUILT_IN_SCHEDULES;
export const BUILT_IN_SCHEDULE_NAMES = Object.keys(BUILT_IN_SCHEDULES) as BuiltInScheduleName[];

/** A schedule from a JSON object; `where` names its source in error messages. */
export function parseSchedule(name: string, object: unknown, where: string): VintageSchedule {
  if (object === null || typeof object !== "object" || Array.isArray(object)) {
    throw new Error(`${where}: a schedule is a JSON object of year ranges to vintages, e.g. {"1979-1981": "census1970"}`);
  }
  const ranges: ScheduleRange[] = [];
  for (const [label, vintage] of Object.entries(object as Record<string, unknown>)) {
    const match = /^\s*(\d{4})\s*(?:(-)\s*(\d{4})?)?\s*$/.exec(label);
    if (!match) throw new Error(`${where}: key "${label}" is not a year, a range "1979-1981" or an open range "2002-"`);
    const first = Number(match[1]);
    const last = match[2] === undefined ? first : match[3] === undefined ? Infinity : Number(match[3]);
    if (last < first) throw new Error(`${where}: range "${label}" ends before it starts`);
    if (typeof vintage !== "string" || !CODE_VINTAGES.includes(vintage as CodeVintage)) {
      throw new Error(`${where}: "${label}": unknown vintage ${JSON.stringify(vintage)} (expected one of ${CODE_VINTAGES.join(", ")})`);
    }
    ranges.push({ first, last, vintage: vintage as CodeVintage, label: label.trim() });
  }
  if (ranges.length === 0) throw new Error(`${where}: the schedule has no year ranges`);
  ranges.sort((a, b) => a.first - b.first);
  for (let i = 1; i < ranges.length; i++) {
    if (ranges[i].first <= ranges[i - 1].last) throw new Error(`${where}: ranges "${ranges[i - 1].label}" and "${ranges[i].label}" overlap`);
  }
  return { name, ranges };
}

/** A built-in schedule by name. */
export function builtInSchedule(name: BuiltInScheduleName): VintageSchedule {
  return parseSchedule(name, BUILT_IN_SCHEDULES[name], `schedule ${name}`);
}

/** A user's schedule from a JSON file (errors name the file). */
export function readScheduleFile(path: string): VintageSchedule {
  let object: unknown;
  try {
    object = JSON.parse(readFileSync(path, "utf8"));
  } catch (error) {
    throw new Error(`${path}: cannot read schedule: ${(error as Error).message}`, { cause: error });
  }
  return parseSchedule(path, object, path);
}

/** One vintage for every year. */
export function singleVintageSchedule(vintage: CodeVintage): VintageSchedule {
  return { name: vintage, ranges: [{ first: -Infinity, last: Infinity, vintage, label: "all years" }] };
}

/** The vintage of a year, or undefined when no range holds it. */
export function vintageForYear(schedule: VintageSchedule, year: number): CodeVintage | undefined {
  return schedule.ranges.find((range) => year >= range.first && year <= range.last)?.vintage;
}

/** The ranges as text: `1979-1981 census1970, 1982-2000 census1980, 2002- census2000`. */
export function describeSchedule(schedule: VintageSchedule): string {
  return schedule.ranges.map((range) => `${range.label} ${range.vintage}`).join(", ");
}
