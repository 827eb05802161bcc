/**
 * Synthetic population profiles: who is sampled (cohorts, demographics, schooling), when they are observed
 * (survey wave years), and how long they stay in the panel. The career process itself (career-process.ts)
 * is shared by all profiles except for the two switches at the end of {@link SyntheticProfile}.
 * Numbers are plausible round values inspired by the surveys' designs, not estimates.
 */
import type { Race, Region } from "./panel.js";

export const PROFILE_NAMES = ["nlsy79", "nlsy97", "psid", "resumes"] as const;
export type ProfileName = (typeof PROFILE_NAMES)[number];

/** How a person's first observed wave is chosen. */
export type FirstWaveRule =
  /** Everyone enters at the first wave of the schedule (a cohort survey). */
  | { kind: "survey-start" }
  /** Enter at the first wave year ≥ max(schedule start, birth year + minimum age + U{0..spread}). */
  | { kind: "adult-entry"; minimumAge: number; spread: number }
  /** Career start: first wave year U{from..to}, age at start U{minimumAge..maximumAge}; birth year follows. */
  | { kind: "career-start"; from: number; to: number; minimumAge: number; maximumAge: number };

export interface SyntheticProfile {
  name: ProfileName;
  /** Dataset name written into panels and documents. */
  dataset: string;
  /** Survey years, strictly increasing (biennial stretches have gaps of 2). */
  waveYears: readonly number[];
  /** Birth years U{first..last} (ignored by the career-start rule, which derives the birth year). */
  birthYears: readonly [number, number];
  firstWave: FirstWaveRule;
  /** Probability of leaving the panel after each observed wave (independent of everything: ignorable). */
  attritionPerWave: number;
  /** Waves every person keeps before attrition starts. */
  minimumWaves: number;
  /** No wave is observed at an age above this. */
  maximumAge: number;
  femaleShare: number;
  raceShares: Readonly<Record<Race, number>>;
  regionShares: Readonly<Record<Region, number>>;
  /** Distribution of final schooling (latent), by education level 0..4. */
  attainmentShares: readonly [number, number, number, number, number];
  /** Added to the yearly move log-odds (resume data list more job changes). */
  moveLogitShift: number;
  /** False: the population has no spells of education, unemployment or non-participation. */
  hasNonWorkSpells: boolean;
}

function yearRange(first: number, last: number, step = 1): number[] {
  const years: number[] = [];
  for (let year = first; year <= last; year += step) years.push(year);
  return years;
}

export const SYNTHETIC_PROFILES: Readonly<Record<ProfileName, SyntheticProfile>> = {
  // NLSY79: born 1957–64, interviewed yearly 1979–1994, every two years 1996–2018.
  nlsy79: {
    name: "nlsy79",
    dataset: "NLSY79",
    waveYears: [...yearRange(1979, 1994), ...yearRange(1996, 2018, 2)],
    birthYears: [1957, 1964],
    firstWave: { kind: "survey-start" },
    attritionPerWave: 0.015,
    minimumWaves: 1,
    maximumAge: 80,
    femaleShare: 0.5,
    raceShares: { white: 0.55, black: 0.25, hispanic: 0.16, other: 0.04 },
    regionShares: { northeast: 0.18, "north central": 0.24, south: 0.38, west: 0.2 },
    attainmentShares: [0.15, 0.4, 0.22, 0.16, 0.07],
    moveLogitShift: 0,
    hasNonWorkSpells: true,
  },
  // NLSY97: born 1980–84, interviewed yearly 1997–2011, every two years 2013–2021.
  nlsy97: {
    name: "nlsy97",
    dataset: "NLSY97",
    waveYears: [...yearRange(1997, 2011), ...yearRange(2013, 2021, 2)],
    birthYears: [1980, 1984],
    firstWave: { kind: "survey-start" },
    attritionPerWave: 0.015,
    minimumWaves: 1,
    maximumAge: 80,
    femaleShare: 0.49,
    raceShares: { white: 0.52, black: 0.26, hispanic: 0.21, other: 0.01 },
    regionShares: { northeast: 0.17, "north central": 0.23, south: 0.39, west: 0.21 },
    attainmentShares: [0.1, 0.33, 0.25, 0.22, 0.1],
    moveLogitShift: 0,
    hasNonWorkSpells: true,
  },
  // PSID: households followed since 1968, yearly to 1997, every two years from 1999; adults of all ages.
  psid: {
    name: "psid",
    dataset: "PSID",
    waveYears: [...yearRange(1968, 1997), ...yearRange(1999, 2021, 2)],
    birthYears: [1920, 1985],
    firstWave: { kind: "adult-entry", minimumAge: 18, spread: 6 },
    attritionPerWave: 0.04,
    minimumWaves: 1,
    maximumAge: 75,
    femaleShare: 0.5,
    raceShares: { white: 0.6, black: 0.32, hispanic: 0.05, other: 0.03 },
    regionShares: { northeast: 0.17, "north central": 0.26, south: 0.4, west: 0.17 },
    attainmentShares: [0.14, 0.36, 0.22, 0.18, 0.1],
    moveLogitShift: -0.2,
    hasNonWorkSpells: true,
  },
  // Online resumes: a different, more educated population; yearly job lists, no non-work spells.
  resumes: {
    name: "resumes",
    dataset: "RESUMES",
    waveYears: yearRange(1980, 2022),
    birthYears: [1954, 2004],
    firstWave: { kind: "career-start", from: 1980, to: 2019, minimumAge: 18, maximumAge: 26 },
    attritionPerWave: 0.1,
    minimumWaves: 2,
    maximumAge: 70,
    femaleShare: 0.45,
    raceShares: { white: 0.7, black: 0.08, hispanic: 0.08, other: 0.14 },
    regionShares: { northeast: 0.22, "north central": 0.2, south: 0.3, west: 0.28 },
    attainmentShares: [0.01, 0.1, 0.2, 0.44, 0.25],
    moveLogitShift: 0.3,
    hasNonWorkSpells: false,
  },
};

/** The profile of a name; throws naming the choices for an unknown one. */
export function syntheticProfile(name: string): SyntheticProfile {
  const profile = (SYNTHETIC_PROFILES as Record<string, SyntheticProfile>)[name];
  if (!profile) throw new Error(`unknown synthetic profile "${name}" (expected one of ${PROFILE_NAMES.join(", ")})`);
  return profile;
}
