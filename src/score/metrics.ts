/**
 * Evaluation metrics of next-occupation predictions (MISSION.md "Read the fine-tuned model as an estimator"):
 *
 * - Perplexity of the true outcome, exp(−mean log p(truth)): with p normalised over the valid outcomes and
 *   with the raw probability (an LLM's mass on exactly that text; equal for baselines); over all person-years
 *   and over transitions only (a previous wave exists and the outcome differs from it); by dataset, sex,
 *   race, education and year (normalised, all person-years).
 * - Accuracy@1 and @5 (the truth among the k most probable outcomes).
 * - Calibration: reliability bins and expected calibration error ECE = Σ_b (n_b/n)·|mean p_b − frequency_b|,
 *   for the top-1 prediction (10 equal-width confidence bins) and across all candidates (every (person-year,
 *   outcome) pair is one prediction; log-spaced bins, since most probabilities are tiny).
 * - Stay/move: P(stay) = P(outcome = previous wave's outcome) on person-years with a previous wave; label =
 *   the outcome did not change. Binary log loss, AUC (Mann–Whitney), reliability bins and ECE.
 * - Labour force: P(unemployed or not in labor force) = p(992) + p(993); label = the truth is one of them.
 *
 * Every record's log-probs are first normalised over the header's codes (a no-op for baselines).
 */
import { NOT_IN_LABOR_FORCE_CODE, UNEMPLOYED_CODE } from "../data/taxonomy.js";
import { EDUCATION_LEVELS } from "../data/panel.js";
import type { PredictionRecord } from "./predictions.js";
import { normaliseLogprobs } from "./normalise.js";

export interface ReliabilityBin {
  /** Bin edges [lower, upper) on the predicted probability (the last bin includes 1). */
  lower: number;
  upper: number;
  count: number;
  meanPredicted: number;
  /** Observed frequency of the event in the bin. */
  frequency: number;
}

export interface Calibration {
  ece: number;
  bins: ReliabilityBin[];
}

export interface BinaryTaskMetrics {
  count: number;
  /** Share of positive labels. */
  baseRate: number;
  meanPredicted: number;
  logLoss: number;
  auc: number;
  calibration: Calibration;
}

export interface GroupPerplexity {
  count: number;
  perplexity: number;
}

export interface ModelMetrics {
  model: string;
  personYears: number;
  transitions: number;
  perplexity: number;
  perplexityRaw: number;
  transitionPerplexity: number;
  transitionPerplexityRaw: number;
  /** Mean and smallest probability mass on the valid set (1 for normalised predictions). */
  validMassMean: number;
  validMassMin: number;
  accuracyAt1: number;
  accuracyAt5: number;
  calibrationTop1: Calibration;
  calibrationAll: Calibration;
  stay: BinaryTaskMetrics;
  laborForce: BinaryTaskMetrics;
  byGroup: Record<"dataset" | "sex" | "race" | "education" | "year", Record<string, GroupPerplexity>>;
}

/** Equal-width bins on [0, 1]. */
export function equalWidthEdges(count: number): number[] {
  return Array.from({ length: count + 1 }, (_, i) => i / count);
}

/** [0, 1e-5, 1e-4.5, …, 1]: log-spaced bins for probabilities spanning orders of magnitude. */
export const ALL_CANDIDATE_EDGES = [0, 1e-5, 3.16e-5, 1e-4, 3.16e-4, 1e-3, 3.16e-3, 1e-2, 3.16e-2, 0.1, 0.2, 0.4, 0.6, 0.8, 1];

/** The bin of `p` among `edges`: the largest bin whose lower edge is ≤ p (the last bin includes its upper edge). */
export function binIndex(edges: readonly number[], p: number): number {
  let low = 0;
  let high = edges.length - 2;
  while (low < high) {
    const mid = (low + high + 1) >> 1;
    if (edges[mid] <= p) low = mid;
    else high = mid - 1;
  }
  return low;
}

/** Streaming reliability bins over (probability, outcome) pairs. */
export class ReliabilityAccumulator {
  private readonly counts: Float64Array;
  private readonly sums: Float64Array;
  private readonly hits: Float64Array;

  constructor(readonly edges: readonly number[]) {
    const n = edges.length - 1;
    this.counts = new Float64Array(n);
    this.sums = new Float64Array(n);
    this.hits = new Float64Array(n);
  }

  add(p: number, event: boolean): void {
    const b = binIndex(this.edges, p);
    this.counts[b] += 1;
    this.sums[b] += p;
    if (event) this.hits[b] += 1;
  }

  /** Add a whole row of probabilities where only index `hit` is an event (across-candidate calibration). */
  addRow(probabilities: ArrayLike<number>, hit: number): void {
    for (let i = 0; i < probabilities.length; i++) this.add(probabilities[i], i === hit);
  }

  result(): Calibration {
    const total = this.counts.reduce((a, b) => a + b, 0);
    let ece = 0;
    const bins: ReliabilityBin[] = [];
    for (let b = 0; b < this.counts.length; b++) {
      const count = this.counts[b];
      const meanPredicted = count > 0 ? this.sums[b] / count : NaN;
      const frequency = count > 0 ? this.hits[b] / count : NaN;
      if (count > 0) ece += (count / total) * Math.abs(meanPredicted - frequency);
      bins.push({ lower: this.edges[b], upper: this.edges[b + 1], count, meanPredicted, frequency });
    }
    return { ece: total > 0 ? ece : NaN, bins };
  }
}

/** Area under the ROC curve by the rank-sum statistic (ties get half credit); NaN without both labels. */
export function areaUnderCurve(scores: ArrayLike<number>, labels: ArrayLike<boolean>): number {
  const order = Array.from({ length: scores.length }, (_, i) => i).sort((a, b) => scores[a] - scores[b]);
  let positives = 0;
  let rankSum = 0;
  for (let i = 0; i < order.length; ) {
    let j = i;
    while (j + 1 < order.length && scores[order[j + 1]] === scores[order[i]]) j++;
    const averageRank = (i + j) / 2 + 1;
    for (let k = i; k <= j; k++) {
      if (labels[order[k]]) {
        positives++;
        rankSum += averageRank;
      }
    }
    i = j + 1;
  }
  const negatives = order.length - positives;
  if (positives === 0 || negatives === 0) return NaN;
  return (rankSum - (positives * (positives + 1)) / 2) / (positives * negatives);
}

/** Binary log loss with probabilities clipped to [1e-12, 1 − 1e-12]. */
export function binaryLogLoss(p: number, label: boolean): number {
  const q = Math.min(1 - 1e-12, Math.max(1e-12, p));
  return -Math.log(label ? q : 1 - q);
}

class BinaryTaskAccumulator {
  private readonly scores: number[] = [];
  private readonly labels: boolean[] = [];
  private lossSum = 0;
  private readonly reliability = new ReliabilityAccumulator(equalWidthEdges(10));

  add(p: number, label: boolean): void {
    this.scores.push(p);
    this.labels.push(label);
    this.lossSum += binaryLogLoss(p, label);
    this.reliability.add(p, label);
  }

  result(): BinaryTaskMetrics {
    const count = this.scores.length;
    const positives = this.labels.filter(Boolean).length;
    return {
      count,
      baseRate: count > 0 ? positives / count : NaN,
      meanPredicted: count > 0 ? this.scores.reduce((a, b) => a + b, 0) / count : NaN,
      logLoss: count > 0 ? this.lossSum / count : NaN,
      auc: areaUnderCurve(this.scores, this.labels),
      calibration: this.reliability.result(),
    };
  }
}

class GroupAccumulator {
  private readonly groups = new Map<string, { count: number; logLikelihood: number }>();

  add(key: string, logProbability: number): void {
    const group = this.groups.get(key) ?? { count: 0, logLikelihood: 0 };
    group.count++;
    group.logLikelihood += logProbability;
    this.groups.set(key, group);
  }

  result(): Record<string, GroupPerplexity> {
    const keys = [...this.groups.keys()].sort((a, b) => (isFinite(Number(a)) && isFinite(Number(b)) ? Number(a) - Number(b) : a.localeCompare(b)));
    return Object.fromEntries(keys.map((k) => [k, { count: this.groups.get(k)!.count, perplexity: Math.exp(-this.groups.get(k)!.logLikelihood / this.groups.get(k)!.count) }]));
  }
}

/** Accumulates every metric over a stream of records of one model. */
export class MetricsAccumulator {
  private personYears = 0;
  private transitions = 0;
  private logLikelihood = 0;
  private logLikelihoodRaw = 0;
  private transitionLogLikelihood = 0;
  private transitionLogLikelihoodRaw = 0;
  private massSum = 0;
  private massMin = Infinity;
  private top1 = 0;
  private top5 = 0;
  private readonly calibrationTop1 = new ReliabilityAccumulator(equalWidthEdges(10));
  private readonly calibrationAll = new ReliabilityAccumulator(ALL_CANDIDATE_EDGES);
  private readonly stay = new BinaryTaskAccumulator();
  private readonly laborForce = new BinaryTaskAccumulator();
  private readonly groups = {
    dataset: new GroupAccumulator(),
    sex: new GroupAccumulator(),
    race: new GroupAccumulator(),
    education: new GroupAccumulator(),
    year: new GroupAccumulator(),
  };
  private readonly indexOf: Map<number, number>;
  private readonly outOfLaborForce: number[];

  constructor(
    readonly model: string,
    readonly codes: readonly number[],
  ) {
    this.indexOf = new Map(codes.map((code, i) => [code, i]));
    this.outOfLaborForce = [UNEMPLOYED_CODE, NOT_IN_LABOR_FORCE_CODE].filter((c) => this.indexOf.has(c)).map((c) => this.indexOf.get(c)!);
  }

  add(record: PredictionRecord): void {
    const truth = this.indexOf.get(record.truth);
    if (truth === undefined) throw new Error(`metrics: truth ${record.truth} is not a candidate code`);
    const { logMass, normalised } = normaliseLogprobs(record.logProbs);
    const probabilities = normalised.map(Math.exp);
    const lp = normalised[truth];
    const lpRaw = record.logProbs[truth];
    this.personYears++;
    this.logLikelihood += lp;
    this.logLikelihoodRaw += lpRaw;
    const mass = Math.exp(logMass);
    this.massSum += mass;
    this.massMin = Math.min(this.massMin, mass);

    // Rank of the truth: how many candidates are strictly more probable.
    let above = 0;
    let best = 0;
    for (let i = 0; i < probabilities.length; i++) {
      if (probabilities[i] > probabilities[truth]) above++;
      if (probabilities[i] > probabilities[best]) best = i;
    }
    if (above < 1) this.top1++;
    if (above < 5) this.top5++;
    this.calibrationTop1.add(probabilities[best], best === truth);
    this.calibrationAll.addRow(probabilities, truth);

    if (record.previous !== null) {
      const previous = this.indexOf.get(record.previous);
      if (previous === undefined) throw new Error(`metrics: previous outcome ${record.previous} is not a candidate code`);
      this.stay.add(probabilities[previous], previous === truth);
      if (previous !== truth) {
        this.transitions++;
        this.transitionLogLikelihood += lp;
        this.transitionLogLikelihoodRaw += lpRaw;
      }
    }
    let out = 0;
    for (const i of this.outOfLaborForce) out += probabilities[i];
    this.laborForce.add(out, this.outOfLaborForce.includes(truth));

    this.groups.dataset.add(record.dataset, lp);
    this.groups.sex.add(record.sex, lp);
    this.groups.race.add(record.race, lp);
    this.groups.education.add(EDUCATION_LEVELS[record.education].label, lp);
    this.groups.year.add(String(record.year), lp);
  }

  result(): ModelMetrics {
    const n = this.personYears;
    const m = this.transitions;
    return {
      model: this.model,
      personYears: n,
      transitions: m,
      perplexity: Math.exp(-this.logLikelihood / n),
      perplexityRaw: Math.exp(-this.logLikelihoodRaw / n),
      transitionPerplexity: m > 0 ? Math.exp(-this.transitionLogLikelihood / m) : NaN,
      transitionPerplexityRaw: m > 0 ? Math.exp(-this.transitionLogLikelihoodRaw / m) : NaN,
      validMassMean: this.massSum / n,
      validMassMin: this.massMin,
      accuracyAt1: this.top1 / n,
      accuracyAt5: this.top5 / n,
      calibrationTop1: this.calibrationTop1.result(),
      calibrationAll: this.calibrationAll.result(),
      stay: this.stay.result(),
      laborForce: this.laborForce.result(),
      byGroup: {
        dataset: this.groups.dataset.result(),
        sex: this.groups.sex.result(),
        race: this.groups.race.result(),
        education: this.groups.education.result(),
        year: this.groups.year.result(),
      },
    };
  }
}

/** Metrics of an in-memory list of records. */
export function computeMetrics(model: string, codes: readonly number[], records: Iterable<PredictionRecord>): ModelMetrics {
  const accumulator = new MetricsAccumulator(model, codes);
  for (const record of records) accumulator.add(record);
  return accumulator.result();
}
