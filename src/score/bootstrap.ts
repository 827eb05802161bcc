/**
 * Uncertainty of the evaluation metrics: 95% bootstrap intervals by person, and paired differences between
 * models that scored the same person-years.
 *
 * People, not person-years, are the independent units (a person's waves share one history), so every
 * resample draws P people with replacement and keeps all their person-years. Each metric is a ratio of sums
 * over person-years (mean log loss = Σ loss / Σ count), so a person is summarised once by its sums
 * ({@link PersonSums}) and a resample is a weighted sum of people — the multiplicity of each person is its
 * weight. The interval is the percentile interval [q₀.₀₂₅, q₀.₉₇₅] of the statistic over the resamples.
 *
 * A paired difference (model A − model B) is computed on the same resample for both models: the person
 * weights are shared, so the person-to-person variation both models see cancels — far tighter than two
 * separate intervals.
 */
import { binaryLogLoss, binIndex, equalWidthEdges } from "./metrics.js";
import { normaliseLogprobs } from "./normalise.js";
import type { PredictionRecord } from "./predictions.js";
import { NOT_IN_LABOR_FORCE_CODE, UNEMPLOYED_CODE } from "../data/taxonomy.js";
import { SeededRandom } from "../util/random.js";

/** The sums of one person's person-years that every bootstrapped metric is made of. */
export interface PersonSums {
  personYears: number;
  /** Σ −log p(truth), p normalised over the valid outcomes. */
  logLoss: number;
  transitions: number;
  transitionLogLoss: number;
  top1: number;
  stayCount: number;
  /** Σ binary log loss of P(stay) (metrics.ts's binaryLogLoss: probabilities clipped to [1e-12, 1 − 1e-12]). */
  stayLogLoss: number;
  laborForceLogLoss: number;
  /** Top-1 reliability, 10 equal-width bins: count, Σ confidence, Σ hit per bin. */
  top1Bins: Float64Array;
}

const TOP1_BINS = 10;

function emptySums(): PersonSums {
  return {
    personYears: 0, logLoss: 0, transitions: 0, transitionLogLoss: 0, top1: 0, stayCount: 0, stayLogLoss: 0, laborForceLogLoss: 0,
    top1Bins: new Float64Array(3 * TOP1_BINS),
  };
}

/** The sums of each person (in first-seen order of person ids) of one model's records. */
export function personSums(codes: readonly number[], records: Iterable<PredictionRecord>): Map<string, PersonSums> {
  const indexOf = new Map(codes.map((code, i) => [code, i]));
  const outOfLaborForce = [UNEMPLOYED_CODE, NOT_IN_LABOR_FORCE_CODE].filter((c) => indexOf.has(c)).map((c) => indexOf.get(c)!);
  const edges = equalWidthEdges(TOP1_BINS);
  const people = new Map<string, PersonSums>();
  for (const record of records) {
    const truth = indexOf.get(record.truth);
    if (truth === undefined) throw new Error(`bootstrap: truth ${record.truth} of person "${record.personId}" is not a candidate code`);
    const sums = people.get(record.personId) ?? emptySums();
    people.set(record.personId, sums);
    const { normalised } = normaliseLogprobs(record.logProbs);
    const loss = -normalised[truth];
    sums.personYears++;
    sums.logLoss += loss;
    let best = 0;
    for (let i = 1; i < normalised.length; i++) if (normalised[i] > normalised[best]) best = i;
    // A tie with the truth counts as a hit, as in metrics.ts (no candidate strictly more probable).
    if (normalised[truth] >= normalised[best]) sums.top1++;
    const confidence = Math.exp(normalised[best]);
    const bin = binIndex(edges, confidence);
    sums.top1Bins[3 * bin] += 1;
    sums.top1Bins[3 * bin + 1] += confidence;
    sums.top1Bins[3 * bin + 2] += best === truth ? 1 : 0;
    if (record.previous !== null) {
      const previous = indexOf.get(record.previous);
      if (previous === undefined) throw new Error(`bootstrap: previous outcome ${record.previous} of person "${record.personId}" is not a candidate code`);
      sums.stayCount++;
      sums.stayLogLoss += binaryLogLoss(Math.exp(normalised[previous]), previous === truth);
      if (previous !== truth) {
        sums.transitions++;
        sums.transitionLogLoss += loss;
      }
    }
    let out = 0;
    for (const i of outOfLaborForce) out += Math.exp(normalised[i]);
    sums.laborForceLogLoss += binaryLogLoss(out, outOfLaborForce.includes(truth));
  }
  return people;
}

/** A statistic of a weighted set of people (weights: how often each person is in the resample). */
export type PeopleStatistic = (people: readonly PersonSums[], weights: ArrayLike<number>) => number;

function weightedSum(people: readonly PersonSums[], weights: ArrayLike<number>, field: (p: PersonSums) => number): number {
  let total = 0;
  for (let i = 0; i < people.length; i++) if (weights[i] !== 0) total += weights[i] * field(people[i]);
  return total;
}

function ratio(field: (p: PersonSums) => number, count: (p: PersonSums) => number): PeopleStatistic {
  return (people, weights) => weightedSum(people, weights, field) / weightedSum(people, weights, count);
}

/** The statistics the experiment report gives intervals for. Log losses are in nats per person-year. */
export const BOOTSTRAP_STATISTICS: Record<string, PeopleStatistic> = {
  perplexity: (people, weights) => Math.exp(ratio((p) => p.logLoss, (p) => p.personYears)(people, weights)),
  logLoss: ratio((p) => p.logLoss, (p) => p.personYears),
  transitionPerplexity: (people, weights) => Math.exp(ratio((p) => p.transitionLogLoss, (p) => p.transitions)(people, weights)),
  transitionLogLoss: ratio((p) => p.transitionLogLoss, (p) => p.transitions),
  accuracyAt1: ratio((p) => p.top1, (p) => p.personYears),
  eceTop1: (people, weights) => {
    let total = 0;
    let ece = 0;
    const bins = new Float64Array(3 * TOP1_BINS);
    for (let i = 0; i < people.length; i++) {
      if (weights[i] === 0) continue;
      for (let j = 0; j < bins.length; j++) bins[j] += weights[i] * people[i].top1Bins[j];
    }
    for (let b = 0; b < TOP1_BINS; b++) total += bins[3 * b];
    for (let b = 0; b < TOP1_BINS; b++) {
      const count = bins[3 * b];
      if (count > 0) ece += (count / total) * Math.abs(bins[3 * b + 1] / count - bins[3 * b + 2] / count);
    }
    return ece;
  },
  stayLogLoss: ratio((p) => p.stayLogLoss, (p) => p.stayCount),
  laborForceLogLoss: ratio((p) => p.laborForceLogLoss, (p) => p.personYears),
};

export interface Interval {
  estimate: number;
  lower: number;
  upper: number;
}

/** The random stream of the bootstrap by person (of the first run, when runs are stratified). */
const BOOTSTRAP_STREAM = "bootstrap by person";

/** Person multiplicities of `resamples` bootstrap draws of `people` people, seeded. */
export function bootstrapWeights(people: number, resamples: number, seed: number, stream = BOOTSTRAP_STREAM): Uint32Array[] {
  const random = new SeededRandom(seed, stream);
  return Array.from({ length: resamples }, () => {
    const weights = new Uint32Array(people);
    for (let i = 0; i < people; i++) weights[random.integer(0, people - 1)]++;
    return weights;
  });
}

/**
 * A stratified bootstrap over independent runs (e.g. the experiment at several seeds: other surveys, other
 * trainings): each resample draws every run's people with replacement from that run alone, so each run keeps
 * its size and a pooled ratio statistic weighs the runs by their person-years in every resample. The people
 * are laid out run after run; a single run gets exactly bootstrapWeights(size, resamples, seed).
 */
export function stratifiedBootstrapWeights(runSizes: readonly number[], resamples: number, seed: number): Uint32Array[] {
  const perRun = runSizes.map((size, k) => bootstrapWeights(size, resamples, seed, k === 0 ? BOOTSTRAP_STREAM : `${BOOTSTRAP_STREAM}, run ${k}`));
  const total = runSizes.reduce((n, size) => n + size, 0);
  return Array.from({ length: resamples }, (_, r) => {
    const weights = new Uint32Array(total);
    let offset = 0;
    perRun.forEach((draws, k) => {
      weights.set(draws[r], offset);
      offset += runSizes[k];
    });
    return weights;
  });
}

/** The q-quantile of sorted values, linearly interpolated between order statistics (type 7, R's default). */
export function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return NaN;
  const position = (sorted.length - 1) * q;
  const low = Math.floor(position);
  const high = Math.min(sorted.length - 1, low + 1);
  return sorted[low] + (position - low) * (sorted[high] - sorted[low]);
}

/** Point estimate on every person once, and the 95% percentile interval over the resamples. */
export function percentileInterval(estimate: number, draws: readonly number[]): Interval {
  const finite = draws.filter(Number.isFinite).sort((a, b) => a - b);
  return { estimate, lower: quantile(finite, 0.025), upper: quantile(finite, 0.975) };
}

/** The statistic with its 95% bootstrap interval by person. */
export function bootstrapInterval(people: readonly PersonSums[], statistic: PeopleStatistic, weights: readonly ArrayLike<number>[]): Interval {
  const ones = new Float64Array(people.length).fill(1);
  return percentileInterval(statistic(people, ones), weights.map((w) => statistic(people, w)));
}

/**
 * The paired difference statistic(A) − statistic(B) with its 95% interval: `a[i]` and `b[i]` are the same
 * person under the two models, and each resample weights both alike.
 */
export function pairedDifference(
  a: readonly PersonSums[],
  b: readonly PersonSums[],
  statistic: PeopleStatistic,
  weights: readonly ArrayLike<number>[],
): Interval {
  if (a.length !== b.length) throw new Error(`paired difference: ${a.length} people against ${b.length}`);
  const ones = new Float64Array(a.length).fill(1);
  const difference = (w: ArrayLike<number>) => statistic(a, w) - statistic(b, w);
  return percentileInterval(difference(ones), weights.map(difference));
}

/**
 * Each model's people in one shared order (the first model's), checking that every model scored exactly the
 * same people with the same number of person-years — the precondition of a paired comparison.
 */
export function alignPeople(models: readonly { name: string; people: Map<string, PersonSums> }[]): PersonSums[][] {
  if (models.length === 0) return [];
  const order = [...models[0].people.keys()];
  return models.map(({ name, people }) => {
    if (people.size !== order.length) throw new Error(`${name}: ${people.size} people scored, ${models[0].name}: ${order.length}`);
    return order.map((id) => {
      const sums = people.get(id);
      if (!sums) throw new Error(`${name}: person "${id}" (scored by ${models[0].name}) is missing`);
      if (sums.personYears !== models[0].people.get(id)!.personYears) {
        throw new Error(`${name}: person "${id}" has ${sums.personYears} person-years, ${models[0].name} ${models[0].people.get(id)!.personYears}`);
      }
      return sums;
    });
  });
}
