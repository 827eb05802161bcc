/**
 * Synthetic panel generator: samples people from a profile and their careers from the {@link CareerProcess},
 * recording next to every person-year the exact probability of its outcome given its history (the oracle).
 * Deterministic by seed: person i draws from its own random stream (seed, i).
 */
import type { EducationLevel, Panel, PersonRecord, Race, Region, Wave } from "./panel.js";
import { CAREER_PROCESS_PARAMETERS, CHANNEL_COUNT, CareerProcess, educationCapForAge, type HistoryContext } from "./career-process.js";
import { syntheticProfile, type ProfileName, type SyntheticProfile } from "./profiles.js";
import { Sfc32 } from "../util/random.js";
import { occupationTaxonomy, type OccupationTaxonomy } from "./taxonomy.js";

/** A generated panel with its oracle column. */
export interface SyntheticPanel {
  profile: SyntheticProfile;
  seed: number;
  panel: Panel;
  /**
   * P(observed outcome | history) of every person-year, in panel order (person by person, wave by wave):
   * the entry of the oracle distribution at the outcome that was drawn.
   */
  outcomeProbabilities: Float64Array;
}

export interface GenerateOptions {
  profile: ProfileName | SyntheticProfile;
  people: number;
  seed: number;
  taxonomy?: OccupationTaxonomy;
  /** Called every `progressEvery` people (default 10,000) and at the end with the number done. */
  onProgress?: (peopleDone: number) => void;
  progressEvery?: number;
}

const processCache = new Map<SyntheticProfile, CareerProcess>();

/** The career process of a profile (kernels are built once per profile and reused). */
export function careerProcessFor(profile: ProfileName | SyntheticProfile, taxonomy: OccupationTaxonomy = occupationTaxonomy()): CareerProcess {
  const resolved = typeof profile === "string" ? syntheticProfile(profile) : profile;
  let process = processCache.get(resolved);
  if (!process || process.taxonomy !== taxonomy) {
    process = new CareerProcess(resolved, taxonomy);
    processCache.set(resolved, process);
  }
  return process;
}

/** Generate `people` careers from a profile. See SYNTHETIC.md for the process. */
export function generateSyntheticPanel(options: GenerateOptions): SyntheticPanel {
  const profile = typeof options.profile === "string" ? syntheticProfile(options.profile) : options.profile;
  if (!Number.isInteger(options.people) || options.people < 0) throw new Error(`people must be a non-negative integer, got ${options.people}`);
  if (!Number.isInteger(options.seed)) throw new Error(`seed must be an integer, got ${options.seed}`);
  const taxonomy = options.taxonomy ?? occupationTaxonomy();
  const process = careerProcessFor(profile, taxonomy);
  const progressEvery = options.progressEvery ?? 10_000;
  const people: PersonRecord[] = new Array(options.people);
  let probabilities = new Float64Array(Math.max(16, options.people * 16));
  let rowCount = 0;
  const channels = new Float64Array(CHANNEL_COUNT);
  const outcomeCodes = taxonomy.outcomes.map((outcome) => outcome.code);

  for (let personIndex = 0; personIndex < options.people; personIndex++) {
    const rng = new Sfc32(options.seed, personIndex);
    const { person, firstWave } = samplePerson(profile, rng, String(personIndex + 1));
    const attainment = rng.pick(profile.attainmentShares) as EducationLevel;
    let waveIndex = firstWave;
    const context: HistoryContext = {
      previous: -1,
      tenureYears: 0,
      lastOccupation: -1,
      gapYears: 0,
      age: 0,
      education: 0,
      sex: person.sex,
      race: person.race,
      region: person.region,
    };
    let education: EducationLevel = 0;
    let runStartYear = 0;
    let previousYear = 0;
    for (;;) {
      const year = profile.waveYears[waveIndex];
      const age = year - person.birthYear;
      const cap = Math.min(attainment, educationCapForAge(age)) as EducationLevel;
      if (context.previous < 0) {
        education = cap;
      } else if (education < cap) {
        // One more level with probability 1 − (1 − step)^Δ; the step is larger right after a year in school.
        const step = context.previous === process.educationIndex ? CAREER_PROCESS_PARAMETERS.educationStepInSchool : CAREER_PROCESS_PARAMETERS.educationStepOtherwise;
        if (rng.next() < 1 - Math.pow(1 - step, year - previousYear)) education = (education + 1) as EducationLevel;
      }
      context.age = age;
      context.education = education;
      context.gapYears = context.previous < 0 ? 0 : year - previousYear;
      context.tenureYears = context.previous >= 0 && context.previous < process.occupationCount ? previousYear - runStartYear + 1 : 0;

      process.channelProbabilities(context, channels);
      const outcome = process.sampleOutcome(context, channels, rng.next(), rng.next());
      const probability = process.probabilityOf(context, outcome, channels);
      if (rowCount === probabilities.length) {
        const grown = new Float64Array(probabilities.length * 2);
        grown.set(probabilities);
        probabilities = grown;
      }
      probabilities[rowCount++] = probability;
      const wave: Wave = { year, occupation: outcomeCodes[outcome], education };
      person.waves.push(wave);

      // History for the next wave.
      if (outcome !== context.previous) runStartYear = year;
      if (outcome < process.occupationCount) context.lastOccupation = outcome;
      context.previous = outcome;
      previousYear = year;

      waveIndex += 1;
      if (waveIndex >= profile.waveYears.length || profile.waveYears[waveIndex] - person.birthYear > profile.maximumAge) break;
      if (person.waves.length >= profile.minimumWaves && rng.next() < profile.attritionPerWave) break;
    }
    people[personIndex] = person;
    if (options.onProgress && ((personIndex + 1) % progressEvery === 0 || personIndex + 1 === options.people)) options.onProgress(personIndex + 1);
  }
  return { profile, seed: options.seed, panel: { people }, outcomeProbabilities: probabilities.slice(0, rowCount) };
}

function samplePerson(profile: SyntheticProfile, rng: Sfc32, personId: string): { person: PersonRecord; firstWave: number } {
  const sex = rng.next() < profile.femaleShare ? "female" : "male";
  const races = Object.keys(profile.raceShares) as Race[];
  const race = races[rng.pick(races.map((r) => profile.raceShares[r]))];
  const regions = Object.keys(profile.regionShares) as Region[];
  const region = regions[rng.pick(regions.map((r) => profile.regionShares[r]))];
  const { birthYear, firstWave } = placeInSchedule(profile, rng);
  return { person: { personId, dataset: profile.dataset, birthYear, sex, race, region, waves: [] }, firstWave };
}

/**
 * Birth year and first wave (index into the profile's wave years) of a person, by the profile's
 * `FirstWaveRule` (profiles.ts).
 */
function placeInSchedule(profile: SyntheticProfile, rng: Sfc32): { birthYear: number; firstWave: number } {
  const rule = profile.firstWave;
  const years = profile.waveYears;
  if (rule.kind === "career-start") {
    const startYear = rng.integer(rule.from, rule.to);
    const startAge = rng.integer(rule.minimumAge, rule.maximumAge);
    const firstWave = years.indexOf(startYear);
    if (firstWave < 0) throw new Error(`profile ${profile.name}: career start year ${startYear} is not a wave year`);
    return { birthYear: startYear - startAge, firstWave };
  }
  const birthYear = rng.integer(profile.birthYears[0], profile.birthYears[1]);
  if (rule.kind === "survey-start") return { birthYear, firstWave: 0 };
  const earliest = birthYear + rule.minimumAge + rng.integer(0, rule.spread);
  const firstWave = years.findIndex((year) => year >= earliest);
  if (firstWave < 0) throw new Error(`profile ${profile.name}: birth year ${birthYear} leaves no wave after age ${rule.minimumAge}`);
  return { birthYear, firstWave };
}
