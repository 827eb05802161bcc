/**
 * What every model compared in the evaluation table implements: a distribution over the taxonomy's outcomes
 * for every wave of every person, given the person's history before that wave (demographics, birth year, the
 * wave's year and education, and the earlier waves).
 */
import type { PersonRecord } from "../data/panel.js";
import type { OccupationTaxonomy } from "../data/taxonomy.js";
import { LlmScorer } from "./llm-scorer.js";

export type PredictionProgress = (personYearsDone: number) => void;

export interface Predictor {
  /** Name shown in tables (e.g. "markov", "logit", "oracle", "llm:tiny"). */
  readonly name: string;
  /** True when log-probabilities sum to 1 over the outcomes; false for an LLM's raw mass on each title. */
  readonly normalised: boolean;
  readonly taxonomy: OccupationTaxonomy;
  /** Natural-log probabilities [person][wave][outcome index in taxonomy order]. */
  predict(people: readonly PersonRecord[], onProgress?: PredictionProgress): Promise<Float64Array[][]>;
}

/** A language model read as an estimator (off-the-shelf, fine-tuned with a merged adapter, or fully fine-tuned). */
export class LlmPredictor implements Predictor {
  readonly normalised = false;

  constructor(
    readonly name: string,
    readonly scorer: LlmScorer,
  ) {}

  get taxonomy(): OccupationTaxonomy {
    return this.scorer.taxonomy;
  }

  predict(people: readonly PersonRecord[], onProgress?: PredictionProgress): Promise<Float64Array[][]> {
    return this.scorer.scorePeople(people, onProgress);
  }
}
