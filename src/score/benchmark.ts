/**
 * Prefix-shared vs naive scoring on the same model, people and run (for `npm run bench`): person-years per
 * second with full candidate distributions, the speed-up, and the largest disagreement between the two.
 */
import type { PersonRecord } from "../data/panel.js";
import type { TextTokenizer } from "../text/documents.js";
import type { Llama } from "../model/llama.js";
import { LlmScorer, type LlmScorerOptions } from "./llm-scorer.js";

export interface ScoringPathTiming {
  seconds: number;
  personYearsPerSecond: number;
}

export interface ScoringBenchmark {
  personYears: number;
  candidates: number;
  trieNodes: number;
  candidateTokens: number;
  prefixShared: ScoringPathTiming;
  naive: ScoringPathTiming;
  /** naive seconds / prefix-shared seconds. */
  speedup: number;
  /** Largest |prefix-shared − naive| over every candidate of every person-year. */
  maxAbsDifference: number;
}

/** Score `people` both ways (prefix-shared first, then naive) and time each. */
export async function benchmarkScoringPaths(
  model: Llama,
  tokenizer: TextTokenizer,
  people: readonly PersonRecord[],
  options: LlmScorerOptions & { scorer?: LlmScorer } = {},
): Promise<ScoringBenchmark> {
  const scorer = options.scorer ?? new LlmScorer(model, tokenizer, options);
  const personYears = people.reduce((sum, p) => sum + p.waves.length, 0);
  const time = async (run: () => Promise<Float64Array[][]>) => {
    const started = performance.now();
    const result = await run();
    const seconds = (performance.now() - started) / 1000;
    return { result, timing: { seconds, personYearsPerSecond: personYears / seconds } };
  };
  const shared = await time(() => scorer.scorePeople(people));
  const naive = await time(() => scorer.scorePeopleNaive(people));
  let maxAbsDifference = 0;
  shared.result.forEach((person, p) =>
    person.forEach((row, w) => row.forEach((value, c) => (maxAbsDifference = Math.max(maxAbsDifference, Math.abs(value - naive.result[p][w][c]))))),
  );
  return {
    personYears,
    candidates: scorer.trie.candidates.length,
    trieNodes: scorer.trie.nodeCount,
    candidateTokens: scorer.trie.unsharedTokenCount,
    prefixShared: shared.timing,
    naive: naive.timing,
    speedup: naive.timing.seconds / shared.timing.seconds,
    maxAbsDifference,
  };
}
