/**
 * Section 4 of `npm run bench`: next-occupation scoring, prefix-shared vs the naive path (one full forward
 * of prefix + candidate per person-year and candidate), same model, same person-years, same run — person-
 * years per second with the full distribution over all 344 outcomes, and the largest disagreement.
 *
 * The people are whole synthetic NLSY79 careers (the first BENCH_SCORING_PEOPLE, default 1, with at least
 * 20 waves), so the mix of prefix lengths is a real document's. The naive path costs ~10 s per person-year
 * with `small` on 2 threads; that is what bounds the default.
 *
 * Next to the measured ratio it prints the work ratios, naive / prefix-shared: query rows through the layers
 * (the shared path runs each prefix once plus the trie's inner nodes per person-year; the naive one runs
 * prefix + candidate for every candidate), and matmul FLOPs, which add the lm_head + full-vocabulary
 * normaliser at every row whose next token is scored (the trie's 2,223 inner nodes per person-year against
 * the naive path's 2,789 candidate tokens). At equal kernel efficiency the speed-up is the FLOP ratio.
 *
 * The model has bf16 weights (as in section 2): every matmul rounds its activations to bf16, and the two
 * paths batch rows differently, so their log-probabilities differ by bf16 rounding (~1e-2); in f32 they agree
 * to 1e-5 (test/score-llm.test.ts).
 */
import { generateSyntheticPanel } from "../src/data/synthetic.js";
import { createCpuBackend } from "../src/engine/cpu/backend.js";
import { loadLlama } from "../src/model/load.js";
import { benchmarkScoringPaths } from "../src/score/benchmark.js";
import { LlmScorer } from "../src/score/llm-scorer.js";
import { Tokenizer } from "../src/text/tokenizer.js";

const PEOPLE = Math.max(1, Number(process.env.BENCH_SCORING_PEOPLE ?? 1));
const MIN_WAVES = 20;

const fmt = (x: number, digits = 1) => (Number.isFinite(x) ? x.toFixed(digits) : "–");

/** Prints the section's table; returns its ratio lines. */
export async function benchScoring(preset: string, modelDir: string, threads: number): Promise<string[]> {
  const { model } = loadLlama(modelDir, createCpuBackend({ threads }));
  const tokenizer = Tokenizer.fromDirectory(modelDir);
  const scorer = new LlmScorer(model, tokenizer);
  const panel = generateSyntheticPanel({ profile: "nlsy79", people: 200, seed: 11 }).panel;
  const people = panel.people.filter((p) => p.waves.length >= MIN_WAVES).slice(0, PEOPLE);

  // Query rows each path sends through the layers (from the tokenized documents: nothing is timed here).
  const innerNodes = scorer.trie.hasChildren.reduce((n, has) => n + has, 0);
  let naiveRows = 0;
  let sharedRows = 0;
  let prefixTokens = 0;
  let targets = 0;
  const scoredTokensNaive = scorer.trie.unsharedTokenCount;
  for (const person of people) {
    const document = scorer.tokenize(person);
    const last = document.targets[document.targets.length - 1];
    sharedRows += last.tokenStart - 1 + document.targets.length * innerNodes;
    for (const target of document.targets) {
      for (const candidate of scorer.trie.candidates) naiveRows += target.tokenStart + candidate.ids.length;
      prefixTokens += target.tokenStart;
      targets++;
    }
  }

  // Matmul FLOPs per query row through the layers, and per row whose next-token distribution is needed.
  const c = model.config;
  const qWidth = c.numHeads * c.headDim, kvWidth = c.numKvHeads * c.headDim;
  const layerFlops = 2 * c.numLayers * (c.hiddenSize * (2 * qWidth + 2 * kvWidth) + 3 * c.hiddenSize * c.intermediateSize);
  const headFlops = 2 * c.hiddenSize * c.vocabSize;
  const naiveFlops = naiveRows * layerFlops + targets * scoredTokensNaive * headFlops;
  const sharedFlops = sharedRows * layerFlops + targets * innerNodes * headFlops;

  const result = await benchmarkScoringPaths(model, tokenizer, people, { scorer });
  console.log(`${preset} bf16, ${people.length} synthetic NLSY79 career(s): ${result.personYears} person-years, mean prefix ` +
    `${fmt(prefixTokens / targets, 0)} tokens, ${result.candidates} candidates (${result.candidateTokens} tokens; trie ${result.trieNodes} nodes, ` +
    `${innerNodes} with children)`);
  const gflops = (flops: number, seconds: number) => fmt(flops / seconds / 1e9, 0);
  console.log("| path | seconds | person-years/s | query rows through the layers | matmul TFLOP | GFLOP/s |");
  console.log("|---|---:|---:|---:|---:|---:|");
  console.log(`| prefix-shared | ${fmt(result.prefixShared.seconds, 2)} | ${fmt(result.prefixShared.personYearsPerSecond, 2)} | ` +
    `${sharedRows.toLocaleString("en-US")} | ${fmt(sharedFlops / 1e12, 2)} | ${gflops(sharedFlops, result.prefixShared.seconds)} |`);
  console.log(`| naive | ${fmt(result.naive.seconds, 2)} | ${fmt(result.naive.personYearsPerSecond, 3)} | ` +
    `${naiveRows.toLocaleString("en-US")} | ${fmt(naiveFlops / 1e12, 2)} | ${gflops(naiveFlops, result.naive.seconds)} |`);
  console.log(`max |prefix-shared − naive| over all candidates: ${result.maxAbsDifference.toExponential(2)} (bf16 rounding; see the header)`);
  return [
    `scoring ${preset}: prefix-shared ${fmt(result.speedup, 1)}× the naive path (${fmt(result.prefixShared.personYearsPerSecond, 2)} vs ` +
      `${fmt(result.naive.personYearsPerSecond, 3)} person-years/s; work ratio ${fmt(naiveRows / sharedRows, 1)}× in rows, ` +
      `${fmt(naiveFlops / sharedFlops, 1)}× in matmul FLOPs; target ≥ 50×)`,
  ];
}
