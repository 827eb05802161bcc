/**
 * The inverse of `data crosswalk`, for tests and the walkthrough's example extract: a panel of the taxonomy
 * written back as a raw survey extract — each occupation as some source code of its year's vintage that the
 * crosswalk maps to it (rotating through all such codes), each non-work state as a status with an empty or
 * stale occupation cell.
 */
import { EDUCATION_LEVELS, csvField, type Panel } from "../src/data/panel.js";
import { vintageForYear, type VintageSchedule } from "../src/data/crosswalk-schedule.js";
import { CODE_VINTAGES, type CodeVintage, type CrosswalkTables } from "../src/data/crosswalk-tables.js";
import { IN_EDUCATION_CODE, UNEMPLOYED_CODE } from "../src/data/taxonomy.js";

/** occ1990dd code → the source codes of a vintage that map to it (as an extract would write them). */
export function inverseCrosswalk(tables: CrosswalkTables, vintage: CodeVintage): Map<number, string[]> {
  const inverse = new Map<number, string[]>();
  for (const [code, target] of tables.entries(vintage)) {
    if (target.kind !== "occupation") continue;
    const written = vintage === "census2002" || vintage === "census2018" ? code.padStart(4, "0") : code;
    const list = inverse.get(target.code) ?? [];
    list.push(written);
    inverse.set(target.code, list);
  }
  return inverse;
}

/** Spellings the extract rotates through for each non-work state (all accepted by the status parser). */
const STATUS_SPELLINGS = {
  [IN_EDUCATION_CODE]: ["in school", "In-Education", "enrolled"],
  [UNEMPLOYED_CODE]: ["unemployed", "Looking for work"],
  notInLaborForce: ["out of the labour force", "NILF", "not_in_labor_force"],
} as const;

export interface RawExtract {
  csv: string;
  /** Person-years written. */
  rows: number;
}

/**
 * The extract of `panel` under `schedule`, or undefined when some occupation has no source code in its
 * year's vintage (the 1970 table reaches 272 of the 341 codes). `withDataset: false` leaves out the dataset
 * column (then `data crosswalk --dataset` supplies it).
 */
export function rawExtractOf(panel: Panel, schedule: VintageSchedule, tables: CrosswalkTables, withDataset = true): RawExtract | undefined {
  const inverses = new Map(CODE_VINTAGES.map((vintage) => [vintage, inverseCrosswalk(tables, vintage)]));
  const header = ["person_id", "year", "occupation", "status", "education", "birth_year", "sex", "race", "region", ...(withDataset ? ["dataset"] : [])];
  const lines = [header.join(",")];
  let counter = 0;
  for (const person of panel.people) {
    let lastCode = "";
    for (const wave of person.waves) {
      counter += 1;
      let occupation: string;
      let status: string;
      if (wave.occupation >= IN_EDUCATION_CODE) {
        const spellings =
          wave.occupation === IN_EDUCATION_CODE ? STATUS_SPELLINGS[IN_EDUCATION_CODE] : wave.occupation === UNEMPLOYED_CODE ? STATUS_SPELLINGS[UNEMPLOYED_CODE] : STATUS_SPELLINGS.notInLaborForce;
        status = spellings[counter % spellings.length];
        occupation = counter % 2 === 0 ? lastCode : ""; // a stale code of the last job must be ignored
      } else {
        const vintage = vintageForYear(schedule, wave.year);
        const candidates = vintage ? inverses.get(vintage)?.get(wave.occupation) : undefined;
        if (!candidates) return undefined;
        occupation = candidates[counter % candidates.length];
        status = counter % 3 === 0 ? "Working" : "employed";
        lastCode = occupation;
      }
      const fields = [person.personId, String(wave.year), occupation, status, EDUCATION_LEVELS[wave.education].key, String(person.birthYear), person.sex, person.race, person.region];
      if (withDataset) fields.push(person.dataset);
      lines.push(fields.map(csvField).join(","));
    }
  }
  return { csv: lines.join("\n") + "\n", rows: counter };
}

/** The people of `panel` whose every occupation has a source code in its year's vintage. */
export function reachablePeople(panel: Panel, schedule: VintageSchedule, tables: CrosswalkTables): Panel {
  return { people: panel.people.filter((person) => rawExtractOf({ people: [person] }, schedule, tables) !== undefined) };
}
