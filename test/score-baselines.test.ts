/**
 * Baselines on a synthetic panel: Markov's formula and normalisation, the logit fit (L-BFGS on a known
 * quadratic; the fitted logit improves on its Markov start), and no model beats the oracle (the generator's
 * exact probabilities) on perplexity — including an untrained tiny LLM scored through the prefix-shared path.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { PersonRecord } from "../src/data/panel.js";
import { splitOfPerson } from "../src/data/splits.js";
import { generateSyntheticPanel } from "../src/data/synthetic.js";
import { occupationTaxonomy } from "../src/data/taxonomy.js";
import { createCpuBackend } from "../src/engine/cpu/backend.js";
import { initModel } from "../src/model/init.js";
import { loadLlama } from "../src/model/load.js";
import { lbfgsMinimise } from "../src/model/logit.js";
import { MODEL_PRESETS } from "../src/model/presets.js";
import { LogitPredictor } from "../src/score/baselines/logit.js";
import { fitMarkovTuned, MarkovPredictor } from "../src/score/baselines/markov.js";
import { OraclePredictor } from "../src/score/baselines/oracle.js";
import { LlmScorer } from "../src/score/llm-scorer.js";
import { computeMetrics } from "../src/score/metrics.js";
import { LlmPredictor, type Predictor } from "../src/score/predictor.js";
import { predictionRecords } from "../src/score/predictions.js";
import { Tokenizer } from "../src/text/tokenizer.js";

const taxonomy = occupationTaxonomy();
const codes = taxonomy.outcomes.map((o) => o.code);
const workDir = mkdtempSync(join(tmpdir(), "labor-llm-baselines-"));
afterAll(() => rmSync(workDir, { recursive: true, force: true }));

let train: PersonRecord[];
let valid: PersonRecord[];
let test: PersonRecord[];
beforeAll(() => {
  const people = generateSyntheticPanel({ profile: "nlsy79", people: 600, seed: 21 }).panel.people;
  train = people.filter((p) => splitOfPerson(p.personId, 21) === "train");
  valid = people.filter((p) => splitOfPerson(p.personId, 21) === "valid");
  test = people.filter((p) => splitOfPerson(p.personId, 21) === "test");
});

async function perplexity(predictor: Predictor, people: readonly PersonRecord[]): Promise<number> {
  return computeMetrics(predictor.name, codes, predictionRecords(people, await predictor.predict(people))).perplexity;
}

function sumsToOne(rows: Float64Array[][]): void {
  for (const person of rows) for (const row of person) expect(row.reduce((a, lp) => a + Math.exp(lp), 0)).toBeCloseTo(1, 9);
}

describe("baselines", () => {
  it("Markov: smoothed counts with back-off to the marginal", async () => {
    const wave = (year: number, occupation: number) => ({ year, occupation, education: 1 as const });
    const people: PersonRecord[] = [
      { personId: "a", dataset: "T", birthYear: 1960, sex: "male", race: "white", region: "south", waves: [wave(1990, 4), wave(1991, 4), wave(1992, 7)] },
      { personId: "b", dataset: "T", birthYear: 1960, sex: "male", race: "white", region: "south", waves: [wave(1990, 4), wave(1991, 992)] },
    ];
    const markov = new MarkovPredictor(people, { smoothing: 2 });
    const K = taxonomy.size;
    const marginal = (count: number) => (count + 1) / (5 + K);
    const row = markov.row(4);
    // From 4: 4→4 once, 4→7 once, 4→992 once (3 transitions).
    expect(Math.exp(row[taxonomy.indexOf(4)!])).toBeCloseTo((1 + 2 * marginal(3)) / (3 + 2), 12);
    expect(Math.exp(row[taxonomy.indexOf(8)!])).toBeCloseTo((0 + 2 * marginal(0)) / (3 + 2), 12);
    expect(Math.exp(markov.row(null)[taxonomy.indexOf(4)!])).toBeCloseTo((2 + 2 * marginal(3)) / (2 + 2), 12);
    sumsToOne(await markov.predict(people));
  });

  it("L-BFGS minimises a badly scaled quadratic", () => {
    const scales = [1, 10, 100, 1000];
    const x = new Float64Array([1, 1, 1, 1]);
    const value = lbfgsMinimise(
      x,
      (p, grad) => {
        let f = 0;
        p.forEach((v, i) => {
          f += 0.5 * scales[i] * (v - i) ** 2;
          grad[i] = scales[i] * (v - i);
        });
        return f;
      },
      { maxIterations: 100, tolerance: 1e-16 },
    );
    expect(value).toBeLessThan(1e-10);
    x.forEach((v, i) => expect(v).toBeCloseTo(i, 5));
  });

  it("no model beats the oracle; the logit improves on Markov; the tuned Markov on the untuned one", async () => {
    const oracle = new OraclePredictor("nlsy79");
    const markov = fitMarkovTuned(train, valid);
    const logit = LogitPredictor.fit(train, { maxIterations: 15 });
    sumsToOne(await logit.predict(test.slice(0, 20)));
    sumsToOne(await oracle.predict(test.slice(0, 20)));
    const floor = await perplexity(oracle, test);
    const results = { markov: await perplexity(markov, test), logit: await perplexity(logit, test), markovUntuned: await perplexity(new MarkovPredictor(train, { smoothing: 1000 }), test) };
    for (const value of Object.values(results)) expect(value).toBeGreaterThan(floor);
    expect(results.logit).toBeLessThan(results.markov);
    expect(results.markov).toBeLessThan(results.markovUntuned);
  });

  it("an untrained LLM (prefix-shared scoring) is above the oracle on the same person-years", async () => {
    const dir = join(workDir, "tiny");
    initModel({ config: MODEL_PRESETS.tiny, seed: 8, dtype: "f32", outDir: dir });
    const scorer = new LlmScorer(loadLlama(dir, createCpuBackend()).model, Tokenizer.fromDirectory(dir));
    const people = test.slice(0, 2).map((p) => ({ ...p, waves: p.waves.slice(0, 2) }));
    const llm = new LlmPredictor("llm:tiny", scorer);
    const raw = await llm.predict(people);
    const llmMetrics = computeMetrics(llm.name, codes, predictionRecords(people, raw));
    expect(llmMetrics.validMassMean).toBeLessThanOrEqual(1);
    expect(llmMetrics.perplexityRaw).toBeGreaterThanOrEqual(llmMetrics.perplexity);
    expect(llmMetrics.perplexity).toBeGreaterThan(await perplexity(new OraclePredictor("nlsy79"), people));
  });
});
