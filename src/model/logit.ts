/**
 * Multinomial logit over the outcome set on CAREER's hand-made features (the regression baseline):
 *   P(j | x) = softmax_j(Σ_f x_f · W[f, j] + γ_stay[tenure bucket]·[j = previous] + γ_return·[j = outcome two back ≠ previous]),
 * i.e. a multinomial logit plus two alternative-specific terms shared by all outcomes (staying put, going
 * back), without which the one-hot previous-outcome block has to learn persistence one outcome at a time.
 * The previous-outcome block starts at the smoothed first-order transition log-odds (a Markov chain with
 * back-off), so fitting starts from the Markov baseline and only has to improve on it. Fitted by full-batch
 * L-BFGS on the mean negative log-likelihood plus (λ/2)·‖W − W₀‖², W₀ that Markov start (zero outside the
 * previous-outcome block; the bias row and γ are not penalised): covariate effects shrink towards none and
 * transition effects towards the smoothed Markov chain.
 *
 * Features of a person-year (all from the history before the outcome):
 *   bias; previous outcome (one-hot, "none" at a first wave); outcome two waves back (one-hot, "none");
 *   tenure in the previous state (buckets 0, 1, 2, 3–4, 5–9, 10+ years); total years since the first wave
 *   (same buckets); education level; sex; race; region; dataset; age and calendar year (standardised, with
 *   squares); years since the previous wave.
 */
import type { PersonRecord } from "../data/panel.js";
import { EDUCATION_LEVELS, RACES, REGIONS, SEXES } from "../data/panel.js";
import type { OccupationTaxonomy } from "../data/taxonomy.js";

const BUCKETS = [0, 1, 2, 3, 5, 10];

function bucketOf(years: number): number {
  let b = 0;
  while (b + 1 < BUCKETS.length && years >= BUCKETS[b + 1]) b++;
  return b;
}

/** Sparse features of person-years: row r has indices/values [offsets[r], offsets[r+1]). */
export interface SparseFeatures {
  offsets: Int32Array;
  indices: Int32Array;
  values: Float64Array;
  labels: Int32Array;
  /** Per row: outcome index of the previous wave (−1 none), of the wave two back when it differs (−1 otherwise), tenure bucket. */
  previous: Int32Array;
  returnTo: Int32Array;
  tenureBucket: Int32Array;
}

/** Number of shared alternative-specific parameters γ: one stay effect per tenure bucket, one return effect. */
const GAMMA_COUNT = BUCKETS.length + 1;

/** The feature layout, with the standardisation constants taken from the training panel. */
export class CareerFeatureSpace {
  readonly K: number;
  readonly datasets: string[];
  private readonly ageMean: number;
  private readonly ageScale: number;
  private readonly yearMean: number;
  private readonly yearScale: number;
  readonly offsets: Record<string, number>;
  readonly size: number;

  constructor(
    readonly taxonomy: OccupationTaxonomy,
    train: readonly PersonRecord[],
  ) {
    this.K = taxonomy.size;
    this.datasets = [...new Set(train.map((p) => p.dataset))].sort();
    let n = 0;
    let ageSum = 0;
    let ageSquares = 0;
    let yearSum = 0;
    let yearSquares = 0;
    for (const person of train) {
      for (const wave of person.waves) {
        const age = wave.year - person.birthYear;
        n++;
        ageSum += age;
        ageSquares += age * age;
        yearSum += wave.year;
        yearSquares += wave.year * wave.year;
      }
    }
    this.ageMean = n > 0 ? ageSum / n : 30;
    this.ageScale = n > 1 ? Math.sqrt(Math.max(1e-9, ageSquares / n - this.ageMean ** 2)) || 1 : 10;
    this.yearMean = n > 0 ? yearSum / n : 2000;
    this.yearScale = n > 1 ? Math.sqrt(Math.max(1e-9, yearSquares / n - this.yearMean ** 2)) || 1 : 10;
    const blocks: [string, number][] = [
      ["bias", 1],
      ["previous", this.K + 1],
      ["previous2", this.K + 1],
      ["tenure", BUCKETS.length],
      ["totalYears", BUCKETS.length],
      ["education", EDUCATION_LEVELS.length],
      ["sex", SEXES.length],
      ["race", RACES.length],
      ["region", REGIONS.length],
      ["dataset", this.datasets.length + 1],
      ["numeric", 5],
    ];
    this.offsets = {};
    let offset = 0;
    for (const [name, width] of blocks) {
      this.offsets[name] = offset;
      offset += width;
    }
    this.size = offset;
  }

  private index(code: number): number {
    const index = this.taxonomy.indexOf(code);
    if (index === undefined) throw new Error(`logit: unknown outcome code ${code}`);
    return index;
  }

  /**
   * Append the features of wave w of a person to `indices`/`values`; returns the alternative-specific context
   * (previous outcome, outcome to return to, tenure bucket).
   */
  featuresOf(person: PersonRecord, w: number, indices: number[], values: number[]): { previous: number; returnTo: number; tenureBucket: number } {
    const o = this.offsets;
    const wave = person.waves[w];
    const push = (index: number, value = 1) => {
      indices.push(index);
      values.push(value);
    };
    push(o.bias);
    push(o.previous + (w > 0 ? this.index(person.waves[w - 1].occupation) : this.K));
    push(o.previous2 + (w > 1 ? this.index(person.waves[w - 2].occupation) : this.K));
    let tenure = 0;
    if (w > 0) {
      const previous = person.waves[w - 1];
      let runStart = w - 1;
      while (runStart > 0 && person.waves[runStart - 1].occupation === previous.occupation) runStart--;
      tenure = previous.year - person.waves[runStart].year + 1;
    }
    push(o.tenure + bucketOf(tenure));
    push(o.totalYears + bucketOf(wave.year - person.waves[0].year));
    push(o.education + wave.education);
    push(o.sex + SEXES.indexOf(person.sex));
    push(o.race + RACES.indexOf(person.race));
    push(o.region + REGIONS.indexOf(person.region));
    const dataset = this.datasets.indexOf(person.dataset);
    push(o.dataset + (dataset >= 0 ? dataset : this.datasets.length));
    const age = (wave.year - person.birthYear - this.ageMean) / this.ageScale;
    const year = (wave.year - this.yearMean) / this.yearScale;
    push(o.numeric, age);
    push(o.numeric + 1, age * age);
    push(o.numeric + 2, year);
    push(o.numeric + 3, year * year);
    push(o.numeric + 4, w > 0 ? wave.year - person.waves[w - 1].year : 0);
    const previous = w > 0 ? this.index(person.waves[w - 1].occupation) : -1;
    const twoBack = w > 1 ? this.index(person.waves[w - 2].occupation) : -1;
    return { previous, returnTo: twoBack !== previous ? twoBack : -1, tenureBucket: bucketOf(tenure) };
  }

  /** Features and labels of every person-year of the people. */
  encode(people: readonly PersonRecord[]): SparseFeatures {
    const offsets: number[] = [0];
    const indices: number[] = [];
    const values: number[] = [];
    const labels: number[] = [];
    const previous: number[] = [];
    const returnTo: number[] = [];
    const tenureBucket: number[] = [];
    for (const person of people) {
      person.waves.forEach((wave, w) => {
        const context = this.featuresOf(person, w, indices, values);
        offsets.push(indices.length);
        labels.push(this.index(wave.occupation));
        previous.push(context.previous);
        returnTo.push(context.returnTo);
        tenureBucket.push(context.tenureBucket);
      });
    }
    return {
      offsets: Int32Array.from(offsets),
      indices: Int32Array.from(indices),
      values: Float64Array.from(values),
      labels: Int32Array.from(labels),
      previous: Int32Array.from(previous),
      returnTo: Int32Array.from(returnTo),
      tenureBucket: Int32Array.from(tenureBucket),
    };
  }
}

/** Log-softmax of row r's logits into `out` (length K); θ = [W (features × K), γ]. */
function rowLogits(theta: Float64Array, K: number, data: SparseFeatures, r: number, out: Float64Array): void {
  out.fill(0);
  for (let e = data.offsets[r]; e < data.offsets[r + 1]; e++) {
    const base = data.indices[e] * K;
    const v = data.values[e];
    for (let j = 0; j < K; j++) out[j] += v * theta[base + j];
  }
  const gamma = theta.length - GAMMA_COUNT;
  if (data.previous[r] >= 0) out[data.previous[r]] += theta[gamma + data.tenureBucket[r]];
  if (data.returnTo[r] >= 0) out[data.returnTo[r]] += theta[gamma + BUCKETS.length];
  let max = -Infinity;
  for (let j = 0; j < K; j++) if (out[j] > max) max = out[j];
  let sum = 0;
  for (let j = 0; j < K; j++) sum += Math.exp(out[j] - max);
  const lse = max + Math.log(sum);
  for (let j = 0; j < K; j++) out[j] -= lse;
}

export interface LogitFitOptions {
  /** λ of the L2 penalty on the mean negative log-likelihood (default 1e-3). */
  l2?: number;
  /** L-BFGS iterations (default 50). */
  maxIterations?: number;
  /** Stop when the objective improves by less than this, relative (default 1e-7). */
  tolerance?: number;
  onIteration?: (iteration: number, objective: number) => void;
}

/** Objective (mean NLL + λ/2·‖W − centre‖², bias row and γ excluded) and its gradient; θ = [W, γ]. */
function objective(W: Float64Array, K: number, data: SparseFeatures, l2: number, center: Float64Array, grad: Float64Array): number {
  const gamma = W.length - GAMMA_COUNT;
  grad.fill(0);
  const rows = data.labels.length;
  const logp = new Float64Array(K);
  let nll = 0;
  for (let r = 0; r < rows; r++) {
    rowLogits(W, K, data, r, logp);
    const y = data.labels[r];
    nll -= logp[y];
    // ∂/∂logits = p − onehot(y), scattered into every active feature's row.
    for (let j = 0; j < K; j++) logp[j] = Math.exp(logp[j]);
    logp[y] -= 1;
    for (let e = data.offsets[r]; e < data.offsets[r + 1]; e++) {
      const base = data.indices[e] * K;
      const v = data.values[e] / rows;
      for (let j = 0; j < K; j++) grad[base + j] += v * logp[j];
    }
    if (data.previous[r] >= 0) grad[gamma + data.tenureBucket[r]] += logp[data.previous[r]] / rows;
    if (data.returnTo[r] >= 0) grad[gamma + BUCKETS.length] += logp[data.returnTo[r]] / rows;
  }
  let penalty = 0;
  for (let i = K; i < gamma; i++) {
    const deviation = W[i] - center[i];
    penalty += deviation * deviation;
    grad[i] += l2 * deviation;
  }
  return nll / rows + 0.5 * l2 * penalty;
}

function dot(a: Float64Array, b: Float64Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

/**
 * Minimise f by L-BFGS (memory 10) with a backtracking Armijo line search. `evaluate` writes the gradient
 * and returns the objective. Returns the final objective; x is updated in place.
 */
export function lbfgsMinimise(
  x: Float64Array,
  evaluate: (x: Float64Array, grad: Float64Array) => number,
  options: { maxIterations: number; tolerance: number; memory?: number; onIteration?: (iteration: number, value: number) => void },
): number {
  const m = options.memory ?? 10;
  const n = x.length;
  const grad = new Float64Array(n);
  let value = evaluate(x, grad);
  const s: Float64Array[] = [];
  const y: Float64Array[] = [];
  const rho: number[] = [];
  const direction = new Float64Array(n);
  const candidate = new Float64Array(n);
  const candidateGrad = new Float64Array(n);
  const alpha = new Float64Array(m);
  for (let iteration = 1; iteration <= options.maxIterations; iteration++) {
    // Two-loop recursion: direction = −H·grad.
    for (let i = 0; i < n; i++) direction[i] = -grad[i];
    for (let k = s.length - 1; k >= 0; k--) {
      alpha[k] = rho[k] * dot(s[k], direction);
      for (let i = 0; i < n; i++) direction[i] -= alpha[k] * y[k][i];
    }
    const gamma = s.length > 0 ? dot(s[s.length - 1], y[y.length - 1]) / dot(y[y.length - 1], y[y.length - 1]) : 1 / Math.max(1, Math.sqrt(dot(grad, grad)));
    for (let i = 0; i < n; i++) direction[i] *= gamma;
    for (let k = 0; k < s.length; k++) {
      const beta = rho[k] * dot(y[k], direction);
      for (let i = 0; i < n; i++) direction[i] += s[k][i] * (alpha[k] - beta);
    }
    let slope = dot(grad, direction);
    if (slope >= 0) {
      // Not a descent direction: restart from steepest descent.
      s.length = 0;
      y.length = 0;
      rho.length = 0;
      for (let i = 0; i < n; i++) direction[i] = -grad[i] / Math.max(1, Math.sqrt(dot(grad, grad)));
      slope = dot(grad, direction);
    }
    let step = 1;
    let next = Infinity;
    for (let tries = 0; tries < 30; tries++) {
      for (let i = 0; i < n; i++) candidate[i] = x[i] + step * direction[i];
      next = evaluate(candidate, candidateGrad);
      if (next <= value + 1e-4 * step * slope) break;
      step *= 0.5;
    }
    if (!(next < value)) break;
    const sk = new Float64Array(n);
    const yk = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      sk[i] = candidate[i] - x[i];
      yk[i] = candidateGrad[i] - grad[i];
    }
    const sy = dot(sk, yk);
    if (sy > 1e-12) {
      s.push(sk);
      y.push(yk);
      rho.push(1 / sy);
      if (s.length > m) {
        s.shift();
        y.shift();
        rho.shift();
      }
    }
    x.set(candidate);
    grad.set(candidateGrad);
    const improvement = (value - next) / Math.max(1, Math.abs(value));
    value = next;
    options.onIteration?.(iteration, value);
    if (improvement < options.tolerance) break;
  }
  return value;
}

/** A fitted multinomial logit. */
export class MultinomialLogit {
  constructor(
    readonly space: CareerFeatureSpace,
    readonly weights: Float64Array,
  ) {}

  static fit(space: CareerFeatureSpace, train: readonly PersonRecord[], options: LogitFitOptions = {}): MultinomialLogit {
    const data = space.encode(train);
    if (data.labels.length === 0) throw new Error("logit: no training person-years");
    const K = space.K;
    const W = new Float64Array(space.size * K + GAMMA_COUNT);
    // Start from a Markov chain: bias = log marginal (add-one smoothed); previous-outcome row i = log of the
    // smoothed transition row minus the log marginal (back-off pseudo-count 10).
    const counts = new Float64Array(K).fill(1);
    for (const label of data.labels) counts[label]++;
    const total = counts.reduce((a, b) => a + b, 0);
    for (let j = 0; j < K; j++) W[j] = Math.log(counts[j] / total);
    const transitions = new Float64Array((K + 1) * K);
    for (let r = 0; r < data.labels.length; r++) transitions[(data.previous[r] >= 0 ? data.previous[r] : K) * K + data.labels[r]]++;
    const backOff = 10;
    for (let i = 0; i <= K; i++) {
      let rowTotal = 0;
      for (let j = 0; j < K; j++) rowTotal += transitions[i * K + j];
      const base = (space.offsets.previous + i) * K;
      for (let j = 0; j < K; j++) {
        const marginal = counts[j] / total;
        W[base + j] = Math.log((transitions[i * K + j] + backOff * marginal) / (rowTotal + backOff)) - Math.log(marginal);
      }
    }
    const l2 = options.l2 ?? 1e-3;
    const center = W.slice();
    lbfgsMinimise(W, (x, grad) => objective(x, K, data, l2, center, grad), {
      maxIterations: options.maxIterations ?? 50,
      tolerance: options.tolerance ?? 1e-7,
      onIteration: options.onIteration,
    });
    return new MultinomialLogit(space, W);
  }

  /** Log-probabilities over the outcomes of wave w of a person. */
  predict(person: PersonRecord, w: number): Float64Array {
    const indices: number[] = [];
    const values: number[] = [];
    const context = this.space.featuresOf(person, w, indices, values);
    const data: SparseFeatures = {
      offsets: Int32Array.of(0, indices.length),
      indices: Int32Array.from(indices),
      values: Float64Array.from(values),
      labels: new Int32Array(1),
      previous: Int32Array.of(context.previous),
      returnTo: Int32Array.of(context.returnTo),
      tenureBucket: Int32Array.of(context.tenureBucket),
    };
    const out = new Float64Array(this.space.K);
    rowLogits(this.weights, this.space.K, data, 0, out);
    return out;
  }
}
