/**
 * The synthetic data-generating process for careers, written so that the exact conditional probability
 * of every outcome given the observed history is available (the oracle). SYNTHETIC.md states the same
 * process as formulas; the two must be changed together.
 *
 * Conditioning set of wave i (everything a document shows before the wave's job title): demographics,
 * birth year, the year and education level of wave i, and the outcomes and years of waves 0..i−1.
 * Every random choice that is not an outcome (education steps, attrition, who is sampled) happens before
 * the outcome it precedes and never looks at unobserved outcomes, so the oracle needs no latent variables.
 */
import { EDUCATION_LEVELS, type EducationLevel, type PersonRecord, type Race, type Region, type Sex } from "./panel.js";
import type { SyntheticProfile } from "./profiles.js";
import { IN_EDUCATION_CODE, MAJOR_GROUPS, NOT_IN_LABOR_FORCE_CODE, UNEMPLOYED_CODE, type OccupationTaxonomy } from "./taxonomy.js";

/** Numbers of the process (SYNTHETIC.md, "Parameters"). Log-odds unless stated. */
export const CAREER_PROCESS_PARAMETERS = {
  /** Destination kernel: K(o→j) = w_j · exp(sameGroup·[G(j)=G(o)] + sharedWord·min(words, maxSharedWords) + fit·(−|skill(j)−e|) + sexTilt·tilt(j)·σ(sex)). */
  kernel: { sameGroup: 1.6, sharedWord: 0.9, maxSharedWords: 2, educationFit: 0.55, sexTilt: 0.8 },
  /** σ(sex): the sign and half-weight of the group's female tilt. */
  sexSign: { female: 0.5, male: -0.5 } as Record<Sex, number>,
  /** Probability that a return to work goes back to the last occupation held. */
  recall: 0.45,
  unemploymentByEducation: [0.7, 0.3, 0, -0.4, -0.7] as const,
  unemploymentByRace: { white: 0, black: 0.6, hispanic: 0.3, other: 0.2 } as Record<Race, number>,
  unemploymentByRegion: { northeast: 0, "north central": 0.1, south: -0.1, west: 0.1 } as Record<Region, number>,
  /** Education steps (not outcomes): yearly chance to finish one more level while in education / otherwise. */
  educationStepInSchool: 0.6,
  educationStepOtherwise: 0.15,
} as const;

/** Outcome channels of one person-year (SYNTHETIC.md "Channels"). */
export const CHANNEL_SAME = 0; // remain in the previous state (occupation or non-work state)
export const CHANNEL_WORK = 1; // go to an occupation other than the previous one (move / (re)enter work)
export const CHANNEL_EDUCATION = 2;
export const CHANNEL_UNEMPLOYED = 3;
export const CHANNEL_NOT_IN_LABOR_FORCE = 4;
export const CHANNEL_COUNT = 5;

/** Everything the outcome of one wave is allowed to depend on. */
export interface HistoryContext {
  /** Outcome index of the previous wave; −1 at a person's first wave. */
  previous: number;
  /** Years in the previous occupation: previous year − first year of the unbroken run + 1 (0 otherwise). */
  tenureYears: number;
  /** Outcome index of the most recent occupation before this wave; −1 if none. */
  lastOccupation: number;
  /** Years since the previous wave (1, or 2 in biennial stretches); 0 at the first wave. */
  gapYears: number;
  age: number;
  education: EducationLevel;
  sex: Sex;
  race: Race;
  region: Region;
}

/** Largest schooling level reachable by an age (caps every education draw). */
export function educationCapForAge(age: number): EducationLevel {
  if (age < 18) return 0;
  if (age < 20) return 1;
  if (age < 22) return 2;
  if (age < 24) return 3;
  return 4;
}

/** Words of a title that make two titles "related": lower case, letters only, crude plural strip, no filler. */
export function titleKeywords(title: string): Set<string> {
  const filler = new Set([
    "and", "the", "for", "other", "misc", "miscellaneous", "occupations", "occupation", "occs", "worker",
    "related", "jobs", "job", "except", "excl", "excluding", "incl", "including", "apart", "from", "outside",
  ]);
  const words = new Set<string>();
  for (const raw of title.toLowerCase().split(/[^a-z]+/)) {
    if (raw.length < 3) continue;
    const word = raw.length > 3 && raw.endsWith("s") && !raw.endsWith("ss") ? raw.slice(0, -1) : raw;
    if (!filler.has(word)) words.add(word);
  }
  return words;
}

const NON_WORK_CHANNEL_OF_CODE: Record<number, number> = {
  [IN_EDUCATION_CODE]: CHANNEL_EDUCATION,
  [UNEMPLOYED_CODE]: CHANNEL_UNEMPLOYED,
  [NOT_IN_LABOR_FORCE_CODE]: CHANNEL_NOT_IN_LABOR_FORCE,
};

/**
 * The process for one profile: precomputed destination kernels and the channel model. `distribution`
 * is the oracle; `sampleOutcome` draws from exactly that distribution.
 */
export class CareerProcess {
  /** Number of outcomes (occupations + 3 non-work states). */
  readonly outcomeCount: number;
  /** Number of occupations (outcome indices 0..occupationCount−1). */
  readonly occupationCount: number;
  /** Outcome index of In education / Unemployed / Not in labor force. */
  readonly educationIndex: number;
  readonly unemployedIndex: number;
  readonly notInLaborForceIndex: number;
  /** Move kernel M[(o, e, sex)][j], j over occupations (row-major; rows sum to 1, M[o][o] = 0). */
  private readonly movePmf: Float64Array;
  private readonly moveCdf: Float64Array;
  /** Entry kernel E[(e, sex)][j] for a first job with no occupation before. */
  private readonly entryPmf: Float64Array;
  private readonly entryCdf: Float64Array;
  private readonly channelOfOutcome: Int8Array;

  constructor(
    readonly profile: SyntheticProfile,
    readonly taxonomy: OccupationTaxonomy,
  ) {
    this.outcomeCount = taxonomy.size;
    this.occupationCount = taxonomy.occupationCount;
    this.educationIndex = taxonomy.indexOf(IN_EDUCATION_CODE) as number;
    this.unemployedIndex = taxonomy.indexOf(UNEMPLOYED_CODE) as number;
    this.notInLaborForceIndex = taxonomy.indexOf(NOT_IN_LABOR_FORCE_CODE) as number;
    this.channelOfOutcome = new Int8Array(this.outcomeCount).fill(CHANNEL_WORK);
    for (const [code, channel] of Object.entries(NON_WORK_CHANNEL_OF_CODE)) {
      this.channelOfOutcome[taxonomy.indexOf(Number(code)) as number] = channel;
    }
    const kernels = buildKernels(taxonomy);
    this.movePmf = kernels.movePmf;
    this.moveCdf = cumulativeRows(kernels.movePmf, this.occupationCount);
    this.entryPmf = kernels.entryPmf;
    this.entryCdf = cumulativeRows(kernels.entryPmf, this.occupationCount);
  }

  /** The {@link HistoryContext} of wave `waveIndex` of a person, computed from the person's earlier waves. */
  contextAt(person: PersonRecord, waveIndex: number): HistoryContext {
    const wave = person.waves[waveIndex];
    const context: HistoryContext = {
      previous: -1,
      tenureYears: 0,
      lastOccupation: -1,
      gapYears: 0,
      age: wave.year - person.birthYear,
      education: wave.education,
      sex: person.sex,
      race: person.race,
      region: person.region,
    };
    if (waveIndex === 0) return context;
    const previousWave = person.waves[waveIndex - 1];
    context.previous = this.outcomeIndex(previousWave.occupation);
    context.gapYears = wave.year - previousWave.year;
    for (let k = waveIndex - 1; k >= 0; k--) {
      const index = this.outcomeIndex(person.waves[k].occupation);
      if (index < this.occupationCount) {
        context.lastOccupation = index;
        break;
      }
    }
    if (context.previous < this.occupationCount) {
      let runStart = waveIndex - 1;
      while (runStart > 0 && person.waves[runStart - 1].occupation === previousWave.occupation) runStart--;
      context.tenureYears = previousWave.year - person.waves[runStart].year + 1;
    }
    return context;
  }

  private outcomeIndex(code: number): number {
    const index = this.taxonomy.indexOf(code);
    if (index === undefined) throw new Error(`unknown occupation code ${code}`);
    return index;
  }

  /**
   * Channel probabilities of a wave into `out` (length {@link CHANNEL_COUNT}); they sum to 1.
   * SYNTHETIC.md "Channels" gives the log-odds; a gap of Δ years compounds the yearly probabilities.
   */
  channelProbabilities(context: HistoryContext, out: Float64Array = new Float64Array(CHANNEL_COUNT)): Float64Array {
    const p = CAREER_PROCESS_PARAMETERS;
    const { age, education, sex, race, region } = context;
    const female = sex === "female" ? 1 : 0;
    const nonWork = this.profile.hasNonWorkSpells;
    const unemploymentBase = p.unemploymentByEducation[education] + p.unemploymentByRace[race] + p.unemploymentByRegion[region];
    // exp(log-odds) per channel relative to the base channel (weight 1); a disabled channel weighs 0.
    let same = 0, work: number, school = 0, unemployed = 0, inactive = 0;
    if (context.previous < 0) {
      // First observed wave: base = work.
      work = 1;
      if (nonWork) {
        school = Math.exp(2.5 - 0.6 * Math.max(0, age - 17) + 0.3 * (education >= 2 ? 1 : 0));
        unemployed = Math.exp(-2.4 + unemploymentBase);
        inactive = Math.exp(-2.2 + 0.4 * female + 0.12 * Math.max(0, age - 55));
      }
    } else if (context.previous < this.occupationCount) {
      // Previously in an occupation: base = stay in it.
      const logTenure = Math.log(Math.max(1, context.tenureYears));
      same = 1;
      work = Math.exp(-1.2 + this.profile.moveLogitShift - 0.45 * logTenure - 0.25 * ((age - 30) / 10));
      if (nonWork) {
        school = Math.exp(-2.5 - 0.35 * Math.max(0, age - 20) - 2 * (education === 4 ? 1 : 0));
        unemployed = Math.exp(-3.0 + unemploymentBase - 0.3 * logTenure);
        const femaleInactivity = female * (0.4 + 0.8 * (age >= 25 && age < 40 ? 1 : 0));
        inactive = Math.exp(-3.4 + femaleInactivity + 0.15 * Math.max(0, age - 55));
      }
    } else {
      // Previously in a non-work state: base = stay in that state.
      same = 1;
      const previousChannel = this.channelOfOutcome[context.previous];
      if (previousChannel === CHANNEL_EDUCATION) {
        work = Math.exp(-1.3 + 0.25 * Math.max(0, age - 18) + 0.3 * (education >= 3 ? 1 : 0));
        unemployed = Math.exp(-3.0 + 0.15 * Math.max(0, age - 18));
        inactive = Math.exp(-3.5);
      } else if (previousChannel === CHANNEL_UNEMPLOYED) {
        work = Math.exp(0.6 + 0.15 * (education - 1) - 0.03 * Math.max(0, age - 45));
        inactive = Math.exp(-1.5 + 0.4 * female + 0.1 * Math.max(0, age - 55));
        school = Math.exp(-2.0 - 0.3 * Math.max(0, age - 22));
      } else {
        work = Math.exp(-0.8 - 0.3 * female - 0.12 * Math.max(0, age - 55));
        unemployed = Math.exp(-2.0);
        school = Math.exp(-2.5 - 0.3 * Math.max(0, age - 22));
      }
    }
    const total = same + work + school + unemployed + inactive;
    out[CHANNEL_SAME] = same / total;
    out[CHANNEL_WORK] = work / total;
    out[CHANNEL_EDUCATION] = school / total;
    out[CHANNEL_UNEMPLOYED] = unemployed / total;
    out[CHANNEL_NOT_IN_LABOR_FORCE] = inactive / total;
    if (context.previous >= 0 && context.gapYears > 1) compoundOverGap(out, context.gapYears);
    return out;
  }

  /** Row offset of the destination kernel for a wave, and whether it is the move or the entry kernel. */
  private destinationRow(context: HistoryContext): { table: "move" | "entry"; offset: number; origin: number } {
    const sexIndex = context.sex === "female" ? 0 : 1;
    const origin = context.previous >= 0 && context.previous < this.occupationCount ? context.previous : context.lastOccupation;
    if (origin < 0) return { table: "entry", offset: (context.education * 2 + sexIndex) * this.occupationCount, origin };
    return { table: "move", offset: ((origin * EDUCATION_LEVELS.length + context.education) * 2 + sexIndex) * this.occupationCount, origin };
  }

  /** Whether the work channel recalls the last occupation (a return from a non-work spell). */
  private recalls(context: HistoryContext): boolean {
    return context.previous >= this.occupationCount && context.lastOccupation >= 0;
  }

  /**
   * The oracle: P(outcome of this wave = k | history) for every outcome index k, into `out`. Sums to 1.
   * occupation j: same·[j = previous] + work·D(j);  non-work state k: channel(k) + same·[k = previous],
   * with D the destination distribution (SYNTHETIC.md "Destinations").
   */
  distribution(context: HistoryContext, out: Float64Array = new Float64Array(this.outcomeCount)): Float64Array {
    const channels = this.channelProbabilities(context);
    const row = this.destinationRow(context);
    const pmf = row.table === "move" ? this.movePmf : this.entryPmf;
    const recall = this.recalls(context) ? CAREER_PROCESS_PARAMETERS.recall : 0;
    const work = channels[CHANNEL_WORK];
    for (let j = 0; j < this.occupationCount; j++) out[j] = work * (1 - recall) * pmf[row.offset + j];
    if (recall > 0) out[row.origin] += work * recall;
    out[this.educationIndex] = channels[CHANNEL_EDUCATION];
    out[this.unemployedIndex] = channels[CHANNEL_UNEMPLOYED];
    out[this.notInLaborForceIndex] = channels[CHANNEL_NOT_IN_LABOR_FORCE];
    if (context.previous >= 0) out[context.previous] += channels[CHANNEL_SAME];
    return out;
  }

  /** P(outcome index `outcome` | history): one entry of {@link distribution}, without building the vector. */
  probabilityOf(context: HistoryContext, outcome: number, channels: Float64Array = this.channelProbabilities(context)): number {
    let probability = outcome === context.previous ? channels[CHANNEL_SAME] : 0;
    if (outcome >= this.occupationCount) return probability + channels[this.channelOfOutcome[outcome]];
    const row = this.destinationRow(context);
    const pmf = row.table === "move" ? this.movePmf : this.entryPmf;
    const recall = this.recalls(context) ? CAREER_PROCESS_PARAMETERS.recall : 0;
    probability += channels[CHANNEL_WORK] * (1 - recall) * pmf[row.offset + outcome];
    if (recall > 0 && outcome === row.origin) probability += channels[CHANNEL_WORK] * recall;
    return probability;
  }

  /**
   * Draw the outcome index of a wave from {@link distribution} using two uniforms (channel, destination).
   * `channels` must be `channelProbabilities(context)`.
   */
  sampleOutcome(context: HistoryContext, channels: Float64Array, uniformChannel: number, uniformDestination: number): number {
    let u = uniformChannel;
    let channel = 0;
    while (channel < CHANNEL_COUNT - 1 && (u -= channels[channel]) >= 0) channel++;
    // Guard against rounding leaving u ≥ 0 after the last positive channel: take the last positive one.
    while (channels[channel] === 0 && channel > 0) channel--;
    switch (channel) {
      case CHANNEL_SAME:
        return context.previous;
      case CHANNEL_EDUCATION:
        return this.educationIndex;
      case CHANNEL_UNEMPLOYED:
        return this.unemployedIndex;
      case CHANNEL_NOT_IN_LABOR_FORCE:
        return this.notInLaborForceIndex;
    }
    const row = this.destinationRow(context);
    if (this.recalls(context)) {
      const recall = CAREER_PROCESS_PARAMETERS.recall;
      if (uniformDestination < recall) return row.origin;
      uniformDestination = (uniformDestination - recall) / (1 - recall);
    }
    return searchCdf(row.table === "move" ? this.moveCdf : this.entryCdf, row.offset, this.occupationCount, uniformDestination);
  }
}

/**
 * Δ-year transition from yearly channel probabilities (competing risks with constant yearly hazards):
 * stay for all Δ years with p_same^Δ, otherwise leave through channel k in proportion to its yearly p_k.
 */
function compoundOverGap(channels: Float64Array, gapYears: number): void {
  const stayYearly = channels[CHANNEL_SAME];
  const stayOverGap = Math.pow(stayYearly, gapYears);
  const leaveYearly = 1 - stayYearly;
  const scale = leaveYearly > 0 ? (1 - stayOverGap) / leaveYearly : 0;
  channels[CHANNEL_SAME] = stayOverGap;
  for (let k = 1; k < CHANNEL_COUNT; k++) channels[k] *= scale;
}

/** Smallest j with cdf[offset + j] > u (the last index if rounding leaves none). */
function searchCdf(cdf: Float64Array, offset: number, length: number, u: number): number {
  let low = 0;
  let high = length - 1;
  while (low < high) {
    const mid = (low + high) >>> 1;
    if (cdf[offset + mid] > u) high = mid;
    else low = mid + 1;
  }
  return low;
}

function cumulativeRows(pmf: Float64Array, rowLength: number): Float64Array {
  const cdf = new Float64Array(pmf.length);
  for (let offset = 0; offset < pmf.length; offset += rowLength) {
    let sum = 0;
    for (let j = 0; j < rowLength; j++) {
      sum += pmf[offset + j];
      cdf[offset + j] = sum;
    }
  }
  return cdf;
}

/**
 * Destination kernels (SYNTHETIC.md "Destinations"):
 *   move  M[o,e,s](j) ∝ w_j · exp(a·[G(j)=G(o)] + b·min(shared(o,j), 2) + c·fit(j,e) + d·tilt(j)·σ(s)),  j ≠ o
 *   entry E[e,s](j)   ∝ w_j · exp(c·fit(j,e) + d·tilt(j)·σ(s))
 * with fit(j,e) = −|skill(G(j)) − e| and w_j the employment weight.
 */
function buildKernels(taxonomy: OccupationTaxonomy): { movePmf: Float64Array; entryPmf: Float64Array } {
  const { kernel, sexSign } = CAREER_PROCESS_PARAMETERS;
  const occupations = taxonomy.outcomes.slice(0, taxonomy.occupationCount);
  const n = occupations.length;
  const educationCount = EDUCATION_LEVELS.length;
  const keywords = occupations.map((occupation) => titleKeywords(occupation.title));
  // base[e,s](j) = w_j · exp(c·fit + d·tilt·σ): shared by both kernels.
  const base = new Float64Array(educationCount * 2 * n);
  for (let e = 0; e < educationCount; e++) {
    for (let s = 0; s < 2; s++) {
      const sign = sexSign[s === 0 ? "female" : "male"];
      for (let j = 0; j < n; j++) {
        const group = MAJOR_GROUPS[occupations[j].group];
        const fit = -Math.abs(group.skillLevel - e);
        base[(e * 2 + s) * n + j] = occupations[j].employmentWeight * Math.exp(kernel.educationFit * fit + kernel.sexTilt * group.femaleTilt * sign);
      }
    }
  }
  const entryPmf = new Float64Array(base);
  normalizeRows(entryPmf, n);
  // affinity(o,j) = exp(a·[same group] + b·min(shared words, 2)), 0 on the diagonal (a move changes job).
  const affinity = new Float64Array(n * n);
  for (let o = 0; o < n; o++) {
    for (let j = 0; j < n; j++) {
      if (j === o) continue;
      let shared = 0;
      for (const word of keywords[o]) if (keywords[j].has(word)) shared++;
      const sameGroup = occupations[o].group === occupations[j].group ? 1 : 0;
      affinity[o * n + j] = Math.exp(kernel.sameGroup * sameGroup + kernel.sharedWord * Math.min(shared, kernel.maxSharedWords));
    }
  }
  const movePmf = new Float64Array(n * educationCount * 2 * n);
  for (let o = 0; o < n; o++) {
    for (let es = 0; es < educationCount * 2; es++) {
      const rowOffset = (o * educationCount * 2 + es) * n;
      for (let j = 0; j < n; j++) movePmf[rowOffset + j] = affinity[o * n + j] * base[es * n + j];
    }
  }
  normalizeRows(movePmf, n);
  return { movePmf, entryPmf };
}

function normalizeRows(values: Float64Array, rowLength: number): void {
  for (let offset = 0; offset < values.length; offset += rowLength) {
    let sum = 0;
    for (let j = 0; j < rowLength; j++) sum += values[offset + j];
    for (let j = 0; j < rowLength; j++) values[offset + j] /= sum;
  }
}
