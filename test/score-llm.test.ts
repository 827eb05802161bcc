/**
 * LLM scoring: the naive path equals log-probabilities read off Llama.forward (an implementation we did not
 * write here); the prefix-shared path (trie + tree attention) equals the naive path to 1e-5 for every
 * candidate; raw mass ≤ 1 and normalised distributions sum to 1.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createCpuBackend } from "../src/engine/cpu/backend.js";
import { generateSyntheticPanel } from "../src/data/synthetic.js";
import type { PersonRecord } from "../src/data/panel.js";
import { initModel } from "../src/model/init.js";
import { loadLlama } from "../src/model/load.js";
import type { Llama } from "../src/model/llama.js";
import { MODEL_PRESETS } from "../src/model/presets.js";
import { Tokenizer } from "../src/text/tokenizer.js";
import { LlmScorer, normaliseLogprobs } from "../src/score/llm-scorer.js";

const workDir = mkdtempSync(join(tmpdir(), "labor-llm-score-"));
let model: Llama;
let tokenizer: Tokenizer;
let scorer: LlmScorer;
let people: PersonRecord[];

beforeAll(() => {
  const dir = join(workDir, "tiny");
  initModel({ config: MODEL_PRESETS.tiny, seed: 5, dtype: "f32", outDir: dir });
  model = loadLlama(dir, createCpuBackend()).model;
  tokenizer = Tokenizer.fromDirectory(dir);
  scorer = new LlmScorer(model, tokenizer, { maxRows: 6000, documentsPerGroup: 2 });
  // Two short careers (the naive path costs one forward per candidate per person-year).
  const panel = generateSyntheticPanel({ profile: "nlsy79", people: 40, seed: 11 }).panel;
  people = panel.people.filter((p) => p.waves.length >= 2).slice(0, 2).map((p) => ({ ...p, waves: p.waves.slice(0, 2) }));
});
afterAll(() => rmSync(workDir, { recursive: true, force: true }));

describe("LLM scoring", () => {
  it("the naive path equals Llama.forward's log-probabilities of prefix + candidate", async () => {
    const person = people[0];
    const document = scorer.tokenize(person);
    const target = document.targets[1];
    const [naive] = await scorer.scorePeopleNaive([{ ...person, waves: person.waves.slice(0, 2) }]);
    const candidates = scorer.trie.candidates;
    for (const c of [0, 17, 200, candidates.length - 1]) {
      const sequence = [...document.ids.slice(0, target.tokenStart), ...candidates[c].ids];
      const [logprobs] = await model.tokenLogprobs([sequence]);
      let expected = 0;
      for (let t = target.tokenStart; t < sequence.length; t++) expected += logprobs[t];
      expect(Math.abs(naive[1][c] - expected)).toBeLessThan(1e-4);
    }
    // Disjoint texts: the raw mass on the valid set is at most 1; normalised it sums to 1.
    for (const raw of naive) {
      const { logMass, normalised } = normaliseLogprobs(raw);
      expect(logMass).toBeLessThanOrEqual(1e-6);
      expect(normalised.reduce((sum, lp) => sum + Math.exp(lp), 0)).toBeCloseTo(1, 12);
    }
  });

  it("the prefix-shared path equals the naive path to 1e-5 for every candidate of every person-year", async () => {
    // Small blocks so targets of both documents share passes and the prefix pass is split.
    const blocked = new LlmScorer(model, tokenizer, { maxRows: 2 * scorer.trie.nodeCount, documentsPerGroup: 2 });
    const shared = await blocked.scorePeople(people);
    const naive = await scorer.scorePeopleNaive(people);
    let worst = 0;
    let compared = 0;
    people.forEach((person, p) => {
      expect(shared[p]).toHaveLength(person.waves.length);
      person.waves.forEach((_, w) => {
        for (let c = 0; c < naive[p][w].length; c++) {
          // Relative to the size of the sum (a candidate's log-prob adds up to ~20 token terms).
          worst = Math.max(worst, Math.abs(shared[p][w][c] - naive[p][w][c]) / Math.max(1, Math.abs(naive[p][w][c])));
          compared++;
        }
      });
    });
    expect(compared).toBe(people.length * 2 * scorer.trie.candidates.length);
    console.log(`prefix-shared vs naive: worst difference ${worst.toExponential(2)} over ${compared} log-probs`);
    expect(worst).toBeLessThan(1e-5);
  });
});
