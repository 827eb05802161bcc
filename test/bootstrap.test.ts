/**
 * The bootstrap by person and the paired difference against cases computed by hand: the point estimates are
 * the plain ratios of sums, a resample is a weighted sum of people, the interval is the percentile interval,
 * and a paired difference uses the same resample for both models.
 */
import { describe, expect, it } from "vitest";
import {
  alignPeople,
  BOOTSTRAP_STATISTICS,
  bootstrapInterval,
  bootstrapWeights,
  pairedDifference,
  personSums,
  quantile,
  stratifiedBootstrapWeights,
  type PersonSums,
} from "../src/score/bootstrap.js";
import type { PredictionRecord } from "../src/score/predictions.js";
import { computeMetrics } from "../src/score/metrics.js";

const CODES = [4, 7, 992, 993];

/** A record with normalised probabilities `p` over CODES. */
function record(personId: string, year: number, previous: number | null, truth: number, p: number[]): PredictionRecord {
  return {
    personId, dataset: "X", year, sex: "female", race: "white", region: "south", birthYear: 1960, education: 1, previous, truth,
    logProbs: Float64Array.from(p.map(Math.log)),
  };
}

// Model A: person "a" has two person-years, person "b" one.
const recordsA = [
  record("a", 1980, null, 4, [0.5, 0.25, 0.125, 0.125]),
  record("a", 1981, 4, 7, [0.5, 0.25, 0.125, 0.125]),
  record("b", 1980, null, 992, [0.25, 0.25, 0.25, 0.25]),
];
// Model B: the same person-years, other probabilities.
const recordsB = [
  record("a", 1980, null, 4, [0.25, 0.25, 0.25, 0.25]),
  record("a", 1981, 4, 7, [0.25, 0.25, 0.25, 0.25]),
  record("b", 1980, null, 992, [0.125, 0.25, 0.5, 0.125]),
];

describe("bootstrap by person", () => {
  const a = personSums(CODES, recordsA);
  const b = personSums(CODES, recordsB);

  it("summarises each person by sums that reproduce metrics.ts", () => {
    const sa = a.get("a")!;
    expect(sa.personYears).toBe(2);
    expect(sa.logLoss).toBeCloseTo(Math.log(2) + Math.log(4), 12);
    expect(sa.transitions).toBe(1);
    expect(sa.transitionLogLoss).toBeCloseTo(Math.log(4), 12);
    expect(sa.top1).toBe(1);
    // P(stay) = p(4) = 0.5 at 1981, and the worker moved: −log(1 − 0.5).
    expect(sa.stayCount).toBe(1);
    expect(sa.stayLogLoss).toBeCloseTo(Math.log(2), 12);
    // P(out of the labour force) = p(992) + p(993) = 0.25 both years, neither year out: 2·−log 0.75.
    expect(sa.laborForceLogLoss).toBeCloseTo(-2 * Math.log(0.75), 12);
    const people = [...a.values()];
    const ones = [1, 1];
    const metrics = computeMetrics("A", CODES, recordsA);
    expect(BOOTSTRAP_STATISTICS.perplexity(people, ones)).toBeCloseTo(metrics.perplexity, 12);
    expect(BOOTSTRAP_STATISTICS.transitionPerplexity(people, ones)).toBeCloseTo(metrics.transitionPerplexity, 12);
    expect(BOOTSTRAP_STATISTICS.transitionLogLoss(people, ones)).toBeCloseTo(Math.log(metrics.transitionPerplexity), 12);
    expect(BOOTSTRAP_STATISTICS.accuracyAt1(people, ones)).toBeCloseTo(metrics.accuracyAt1, 12);
    expect(BOOTSTRAP_STATISTICS.eceTop1(people, ones)).toBeCloseTo(metrics.calibrationTop1.ece, 12);
    expect(BOOTSTRAP_STATISTICS.stayLogLoss(people, ones)).toBeCloseTo(metrics.stay.logLoss, 12);
    expect(BOOTSTRAP_STATISTICS.laborForceLogLoss(people, ones)).toBeCloseTo(metrics.laborForce.logLoss, 12);
  });

  it("gives the percentile interval of hand-weighted resamples", () => {
    const people = [...a.values()];
    // Mean log loss per person-year: person a sums ln2 + ln4 = 3 ln2 over 2, person b ln4 = 2 ln2 over 1.
    // Resamples {a, a}: 6 ln2 / 4 = 1.5 ln2; {b, b}: 2 ln2; {a, b}: 5 ln2 / 3.
    const weights = [[2, 0], [0, 2], [1, 1], [1, 1]];
    const interval = bootstrapInterval(people, BOOTSTRAP_STATISTICS.logLoss, weights);
    const ln2 = Math.log(2);
    expect(interval.estimate).toBeCloseTo((5 / 3) * ln2, 12);
    const sorted = [1.5 * ln2, (5 / 3) * ln2, (5 / 3) * ln2, 2 * ln2];
    // Type-7 quantiles: position (n − 1)·q.
    expect(interval.lower).toBeCloseTo(sorted[0] + 0.075 * (sorted[1] - sorted[0]), 12);
    expect(interval.upper).toBeCloseTo(sorted[2] + 0.925 * (sorted[3] - sorted[2]), 12);
  });

  it("pairs the two models on the same resamples", () => {
    const [pa, pb] = alignPeople([
      { name: "A", people: a },
      { name: "B", people: b },
    ]);
    const ln2 = Math.log(2);
    // A − B per person: a: 3 ln2 − 4 ln2 = −ln2 over 2 py; b: 2 ln2 − ln2 = +ln2 over 1 py.
    // {a, a}: −2 ln2 / 4 = −0.5 ln2; {b, b}: +ln2; {a, b}: 0.
    const weights = [[2, 0], [0, 2], [1, 1]];
    const difference = pairedDifference(pa, pb, BOOTSTRAP_STATISTICS.logLoss, weights);
    expect(difference.estimate).toBeCloseTo(0, 12);
    expect(difference.lower).toBeCloseTo(-0.5 * ln2 + 0.05 * 0.5 * ln2, 12);
    expect(difference.upper).toBeCloseTo(0 + 0.95 * ln2, 12);
  });

  it("draws seeded multiplicities that sum to the number of people, and a constant statistic has a zero-width interval", () => {
    const weights = bootstrapWeights(7, 50, 1);
    expect(weights).toHaveLength(50);
    for (const w of weights) expect(w.reduce((s, x) => s + x, 0)).toBe(7);
    expect(bootstrapWeights(7, 50, 1)).toEqual(weights);
    const same: PersonSums[] = Array.from({ length: 7 }, () => a.get("a")!);
    const interval = bootstrapInterval(same, BOOTSTRAP_STATISTICS.logLoss, weights);
    expect(interval.upper - interval.lower).toBeCloseTo(0, 12);
  });

  it("stratifies by run: each run's people are resampled within the run, and one run is the plain bootstrap", () => {
    expect(stratifiedBootstrapWeights([7], 50, 1)).toEqual(bootstrapWeights(7, 50, 1));
    const weights = stratifiedBootstrapWeights([3, 4], 200, 1);
    expect(weights).toHaveLength(200);
    for (const w of weights) {
      expect(w).toHaveLength(7);
      expect(w[0] + w[1] + w[2]).toBe(3);
      expect(w[3] + w[4] + w[5] + w[6]).toBe(4);
    }
    expect(weights.map((w) => Array.from(w.slice(0, 3)))).toEqual(bootstrapWeights(3, 200, 1).map((w) => Array.from(w)));
    // The second run draws from its own stream, not the first run's sequence again.
    expect(weights.map((w) => Array.from(w.slice(3)))).not.toEqual(bootstrapWeights(4, 200, 1).map((w) => Array.from(w)));
    // Pooled by hand: run 1 is person a (3 ln2 over 2 py), run 2 person b (2 ln2 over 1 py). Each run has one
    // person, so every resample keeps both: the interval collapses on the pooled ratio 5 ln2 / 3, which is
    // the person-year-weighted mean of the runs' means (1.5 ln2 · 2 + 2 ln2 · 1) / 3.
    const people = [a.get("a")!, a.get("b")!];
    const pooled = bootstrapInterval(people, BOOTSTRAP_STATISTICS.logLoss, stratifiedBootstrapWeights([1, 1], 20, 3));
    expect(pooled.estimate).toBeCloseTo((5 / 3) * Math.log(2), 12);
    expect(pooled.upper - pooled.lower).toBeCloseTo(0, 12);
  });

  it("refuses to pair models that scored different people", () => {
    const fewer = personSums(CODES, recordsA.slice(0, 2));
    expect(() => alignPeople([{ name: "A", people: a }, { name: "B", people: fewer }])).toThrow(/B: 1 people scored, A: 2/);
  });

  it("interpolates quantiles between order statistics", () => {
    expect(quantile([1, 2, 3, 4, 5], 0.5)).toBe(3);
    expect(quantile([1, 2], 0.25)).toBe(1.25);
  });
});
