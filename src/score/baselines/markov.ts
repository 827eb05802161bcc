/**
 * Empirical first-order Markov baseline: P(j | previous outcome i) from transition counts in the training
 * panel, smoothed towards the marginal (additive smoothing with back-off):
 *   P(j | i) = (n(i→j) + α·m(j)) / (n(i) + α),   m(j) = (n(j) + 1) / (N + K)
 * where n(j) counts outcome j over all training person-years (add-one smoothed, so nothing gets zero) and a
 * person's first wave uses the pseudo-state "start" (its own counts n(start→j)).
 */
import type { PersonRecord } from "../../data/panel.js";
import { occupationTaxonomy, type OccupationTaxonomy } from "../../data/taxonomy.js";
import type { PredictionProgress, Predictor } from "../predictor.js";

export interface MarkovOptions {
  /** α: pseudo-count of the back-off to the marginal (default 1). */
  smoothing?: number;
  taxonomy?: OccupationTaxonomy;
}

export class MarkovPredictor implements Predictor {
  readonly name: string;
  readonly normalised = true;
  readonly taxonomy: OccupationTaxonomy;
  readonly smoothing: number;
  /** Log-probability rows: K rows for the previous outcomes, then the "start" row. */
  private readonly logTable: Float64Array;

  constructor(train: readonly PersonRecord[], options: MarkovOptions = {}) {
    this.taxonomy = options.taxonomy ?? occupationTaxonomy();
    this.smoothing = options.smoothing ?? 1;
    if (!(this.smoothing > 0)) throw new Error(`markov: smoothing must be positive, got ${this.smoothing}`);
    this.name = "markov";
    const K = this.taxonomy.size;
    const transitions = new Float64Array((K + 1) * K);
    const marginal = new Float64Array(K);
    let total = 0;
    for (const person of train) {
      let previous = K; // start
      for (const wave of person.waves) {
        const j = this.index(wave.occupation);
        transitions[previous * K + j] += 1;
        marginal[j] += 1;
        total += 1;
        previous = j;
      }
    }
    for (let j = 0; j < K; j++) marginal[j] = (marginal[j] + 1) / (total + K);
    this.logTable = new Float64Array((K + 1) * K);
    for (let i = 0; i <= K; i++) {
      let rowTotal = 0;
      for (let j = 0; j < K; j++) rowTotal += transitions[i * K + j];
      for (let j = 0; j < K; j++) {
        this.logTable[i * K + j] = Math.log((transitions[i * K + j] + this.smoothing * marginal[j]) / (rowTotal + this.smoothing));
      }
    }
  }

  private index(code: number): number {
    const index = this.taxonomy.indexOf(code);
    if (index === undefined) throw new Error(`markov: unknown outcome code ${code}`);
    return index;
  }

  /** Log-probabilities of the next outcome after `previousCode` (null: a first wave). */
  row(previousCode: number | null): Float64Array {
    const K = this.taxonomy.size;
    const i = previousCode === null ? K : this.index(previousCode);
    return this.logTable.slice(i * K, (i + 1) * K);
  }

  async predict(people: readonly PersonRecord[], onProgress?: PredictionProgress): Promise<Float64Array[][]> {
    let done = 0;
    const result = people.map((person) => person.waves.map((_, w) => this.row(w > 0 ? person.waves[w - 1].occupation : null)));
    for (const person of people) done += person.waves.length;
    onProgress?.(done);
    return result;
  }

  /** Mean log-likelihood of the observed outcomes (for choosing the smoothing on a validation split). */
  meanLogLikelihood(people: readonly PersonRecord[]): number {
    const K = this.taxonomy.size;
    let sum = 0;
    let count = 0;
    for (const person of people) {
      let previous = K;
      for (const wave of person.waves) {
        const j = this.index(wave.occupation);
        sum += this.logTable[previous * K + j];
        count++;
        previous = j;
      }
    }
    return count > 0 ? sum / count : NaN;
  }
}

/** Fit with the smoothing (from a grid) that maximises the validation log-likelihood. */
export function fitMarkovTuned(
  train: readonly PersonRecord[],
  valid: readonly PersonRecord[],
  grid: readonly number[] = [0.1, 0.3, 1, 3, 10, 30, 100],
  taxonomy?: OccupationTaxonomy,
): MarkovPredictor {
  let best: MarkovPredictor | undefined;
  let bestScore = -Infinity;
  for (const smoothing of grid) {
    const model = new MarkovPredictor(train, { smoothing, taxonomy });
    const score = model.meanLogLikelihood(valid);
    if (!best || score > bestScore) {
      best = model;
      bestScore = score;
    }
  }
  return best!;
}
