/**
 * The occupation taxonomy shipped with labor-llm: the 341 occ1990dd occupations (Autor & Dorn's consistent
 * 1990-based codes) with English titles and an employment weight, plus three non-work states. Every
 * person-year in a panel has exactly one of these 344 outcomes.
 */
import { OCC1990DD_RAW_ROWS } from "./occ1990dd-table.js";

/** Codes of the non-work states. They sit above every occ1990dd code (the largest is 889). */
export const IN_EDUCATION_CODE = 991;
export const UNEMPLOYED_CODE = 992;
export const NOT_IN_LABOR_FORCE_CODE = 993;

/** The non-work states: code, title (as written in documents) and the keyword accepted in panel files. */
export const NON_WORK_STATES = [
  { code: IN_EDUCATION_CODE, title: "In education", keyword: "in-education" },
  { code: UNEMPLOYED_CODE, title: "Unemployed", keyword: "unemployed" },
  { code: NOT_IN_LABOR_FORCE_CODE, title: "Not in labor force", keyword: "not-in-labor-force" },
] as const;

/**
 * Title corrections applied to the verbatim source table (`occ1990dd-table.ts`): misspellings, words run
 * together, a stray code prefix, and three capitalised common nouns (every other title uses sentence case).
 * Abbreviations of the source ("advert.", "n.e.c.", "excl.") are kept: they are how Dorn-style titles read.
 * `original` must match the source text exactly (checked when the taxonomy is built).
 */
export const TITLE_CORRECTIONS: readonly { code: number; original: string; corrected: string; why: string }[] = [
  { code: 9, original: "Purchasing Managers", corrected: "Purchasing managers", why: "capitalisation" },
  { code: 69, original: "Physicists and astronomists", corrected: "Physicists and astronomers", why: "misspelling" },
  { code: 183, original: "Writersandauthors", corrected: "Writers and authors", why: "missing spaces" },
  {
    code: 218,
    original: "Surveryors, cartographers, mapping scientists/techs",
    corrected: "Surveyors, cartographers, mapping scientists/techs",
    why: "misspelling",
  },
  { code: 329, original: "Libraryassistants", corrected: "Library assistants", why: "missing space" },
  {
    code: 354,
    original: "Postal clerks, exluding mail carriers",
    corrected: "Postal clerks, excluding mail carriers",
    why: "misspelling",
  },
  {
    code: 444,
    original: "Miscellanious food preparation and service workers",
    corrected: "Miscellaneous food preparation and service workers",
    why: "misspelling",
  },
  { code: 445, original: "Dental Assistants", corrected: "Dental assistants", why: "capitalisation" },
  { code: 468, original: "Childcareworkers", corrected: "Child care workers", why: "missing spaces" },
  { code: 469, original: "Personal service occupations, n.e.c", corrected: "Personal service occupations, n.e.c.", why: "abbreviation missing its final period" },
  {
    code: 470,
    original: "Supervisors of personal service jobs, n.e.c",
    corrected: "Supervisors of personal service jobs, n.e.c.",
    why: "abbreviation missing its final period",
  },
  {
    code: 516,
    original: "Heavy equipement and farm equipment mechanics",
    corrected: "Heavy equipment and farm equipment mechanics",
    why: "misspelling",
  },
  {
    code: 647,
    original: "647=Jewelers and precious stone and metal workers",
    corrected: "Jewelers and precious stone and metal workers",
    why: 'stray "647=" code prefix',
  },
  { code: 657, original: "Cabinetmakers and bench carpeters", corrected: "Cabinetmakers and bench carpenters", why: "misspelling" },
  {
    code: 678,
    original: "Dental laboratory and medical applicance technicians",
    corrected: "Dental laboratory and medical appliance technicians",
    why: "misspelling",
  },
  {
    code: 749,
    original: "Miscellanious textile machine operators",
    corrected: "Miscellaneous textile machine operators",
    why: "misspelling",
  },
  { code: 753, original: "Cementing and gluing machne operators", corrected: "Cementing and gluing machine operators", why: "misspelling" },
  {
    code: 766,
    original: "Furnance, kiln, and oven operators, apart from food",
    corrected: "Furnace, kiln, and oven operators, apart from food",
    why: "misspelling",
  },
  {
    code: 804,
    original: "Driver/sales workers and truck Drivers",
    corrected: "Driver/sales workers and truck drivers",
    why: "capitalisation",
  },
  {
    code: 834,
    original: "Miscellanious transportation occupations",
    corrected: "Miscellaneous transportation occupations",
    why: "misspelling",
  },
  { code: 865, original: "Helpers, constructions", corrected: "Helpers, construction", why: "wrong plural" },
];

/**
 * Major groups: the 13 occupation subgroups of the 1990 Census classification, which occ1990dd inherits,
 * as code ranges (inclusive). `skillLevel` (0 = least schooling … 4 = graduate) and `femaleTilt`
 * (log-odds shift towards women, positive = more female) are parameters of the synthetic generator
 * (see SYNTHETIC.md), not facts about the data.
 */
export const MAJOR_GROUPS = [
  { id: 0, name: "Executive, administrative, and managerial", first: 3, last: 37, skillLevel: 3.2, femaleTilt: 0 },
  { id: 1, name: "Professional specialty", first: 43, last: 199, skillLevel: 3.8, femaleTilt: 0.1 },
  { id: 2, name: "Technicians and related support", first: 203, last: 235, skillLevel: 2.5, femaleTilt: 0 },
  { id: 3, name: "Sales", first: 243, last: 285, skillLevel: 1.8, femaleTilt: 0.2 },
  { id: 4, name: "Administrative support, including clerical", first: 303, last: 389, skillLevel: 1.6, femaleTilt: 0.9 },
  { id: 5, name: "Private household", first: 405, last: 408, skillLevel: 0.5, femaleTilt: 1.2 },
  { id: 6, name: "Protective service", first: 413, last: 427, skillLevel: 1.5, femaleTilt: -0.8 },
  { id: 7, name: "Service, except protective and household", first: 433, last: 472, skillLevel: 0.8, femaleTilt: 0.5 },
  { id: 8, name: "Farming, forestry, and fishing", first: 473, last: 498, skillLevel: 0.7, femaleTilt: -0.8 },
  { id: 9, name: "Precision production, craft, and repair", first: 503, last: 699, skillLevel: 1.2, femaleTilt: -1.2 },
  { id: 10, name: "Machine operators, assemblers, and inspectors", first: 703, last: 799, skillLevel: 0.8, femaleTilt: -0.5 },
  { id: 11, name: "Transportation and material moving", first: 803, last: 859, skillLevel: 1.0, femaleTilt: -1.2 },
  { id: 12, name: "Handlers, equipment cleaners, helpers, and laborers", first: 865, last: 889, skillLevel: 0.6, femaleTilt: -1.0 },
] as const;

/** Group id used for the three non-work states (not a census group). */
export const NON_WORK_GROUP = 13;

/** One possible outcome of a person-year: an occupation or a non-work state. */
export interface Outcome {
  /** occ1990dd code, or 991–993 for the non-work states. */
  readonly code: number;
  /** English title as written in documents (corrected where the source had typos). */
  readonly title: string;
  /** Major group id (index into {@link MAJOR_GROUPS}), or {@link NON_WORK_GROUP}. */
  readonly group: number;
  /** lswt2010 employment weight (people); 0 for non-work states. */
  readonly employmentWeight: number;
  /** True for the three non-work states. */
  readonly isNonWork: boolean;
}

/** Major group of an occ1990dd code from its range, or undefined when no census range contains it. */
export function majorGroupOfCode(code: number): number | undefined {
  if (code === IN_EDUCATION_CODE || code === UNEMPLOYED_CODE || code === NOT_IN_LABOR_FORCE_CODE) return NON_WORK_GROUP;
  return MAJOR_GROUPS.find((group) => code >= group.first && code <= group.last)?.id;
}

/**
 * The outcome space: 341 occupations in ascending code order, then the three non-work states. Indices into
 * {@link outcomes} are what probability vectors (oracle, models) are laid out by.
 */
export class OccupationTaxonomy {
  /** Every outcome; occupations first (ascending code), then In education, Unemployed, Not in labor force. */
  readonly outcomes: readonly Outcome[];
  /** Number of occupations (the first entries of {@link outcomes}). */
  readonly occupationCount: number;
  private readonly indexByCode = new Map<number, number>();
  private readonly codeByKeyword = new Map<string, number>();

  constructor() {
    const corrections = new Map(TITLE_CORRECTIONS.map((fix) => [fix.code, fix]));
    const outcomes: Outcome[] = OCC1990DD_RAW_ROWS.map(([code, rawTitle, employmentWeight]) => {
      const fix = corrections.get(code);
      if (fix && fix.original !== rawTitle) {
        throw new Error(`taxonomy: correction for code ${code} expects "${fix.original}", source has "${rawTitle}"`);
      }
      const group = majorGroupOfCode(code);
      if (group === undefined) throw new Error(`taxonomy: occ1990dd code ${code} is in no major-group range`);
      return { code, title: fix ? fix.corrected : rawTitle, group, employmentWeight, isNonWork: false };
    });
    this.occupationCount = outcomes.length;
    for (const state of NON_WORK_STATES) {
      outcomes.push({ code: state.code, title: state.title, group: NON_WORK_GROUP, employmentWeight: 0, isNonWork: true });
      this.codeByKeyword.set(state.keyword, state.code);
      this.codeByKeyword.set(state.title.toLowerCase(), state.code);
    }
    this.outcomes = outcomes;
    outcomes.forEach((outcome, index) => this.indexByCode.set(outcome.code, index));
  }

  /** Number of outcomes (occupations + non-work states). */
  get size(): number {
    return this.outcomes.length;
  }

  /** Index of a code in {@link outcomes}, or undefined for an unknown code. */
  indexOf(code: number): number | undefined {
    return this.indexByCode.get(code);
  }

  /** True when `code` is an occupation or non-work state of this taxonomy. */
  has(code: number): boolean {
    return this.indexByCode.has(code);
  }

  /** The outcome with this code; throws for an unknown code. */
  byCode(code: number): Outcome {
    const index = this.indexByCode.get(code);
    if (index === undefined) throw new Error(`unknown occupation code ${code}`);
    return this.outcomes[index];
  }

  /**
   * Parse an occupation cell of a panel file: an integer code, or a non-work keyword
   * (`in-education`, `unemployed`, `not-in-labor-force`, or the state's title, any case).
   * Returns undefined when the text names nothing in the taxonomy.
   */
  parseOccupation(text: string): number | undefined {
    const trimmed = text.trim();
    if (/^\d+$/.test(trimmed)) {
      const code = Number(trimmed);
      return this.indexByCode.has(code) ? code : undefined;
    }
    return this.codeByKeyword.get(trimmed.toLowerCase());
  }
}

let sharedTaxonomy: OccupationTaxonomy | undefined;

/** The shipped taxonomy (built once). */
export function occupationTaxonomy(): OccupationTaxonomy {
  sharedTaxonomy ??= new OccupationTaxonomy();
  return sharedTaxonomy;
}
