/**
 * The README's library example, run as written (with a temp directory): load a model, score a career, read
 * the next-occupation distribution. If this test changes, change the README's example with it.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import {
  createBackend,
  generateSyntheticPanel,
  initModel,
  loadLlama,
  LlmScorer,
  MODEL_PRESETS,
  normaliseLogprobs,
  occupationTaxonomy,
  Tokenizer,
} from "../src/index.js";

const dir = mkdtempSync(join(tmpdir(), "labor-llm-api-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("the README's library example", () => {
  it("scores every next occupation of a career", async () => {
    const backend = await createBackend("cpu");
    initModel({ config: MODEL_PRESETS.tiny, seed: 0, dtype: "f32", outDir: dir });
    const { model } = loadLlama(dir, backend);
    const scorer = new LlmScorer(model, Tokenizer.fromDirectory(dir));
    const { panel } = generateSyntheticPanel({ profile: "nlsy79", people: 1, seed: 0 });
    const [person] = await scorer.scorePeople(panel.people.map((p) => ({ ...p, waves: p.waves.slice(0, 3) })));
    const { normalised, logMass } = normaliseLogprobs(person[2]);
    const taxonomy = occupationTaxonomy();
    const best = normalised.indexOf(Math.max(...normalised));
    expect(taxonomy.outcomes[best].title.length).toBeGreaterThan(0);
    expect(normalised.length).toBe(taxonomy.outcomes.length);
    expect(normalised.reduce((a, b) => a + Math.exp(b), 0)).toBeCloseTo(1, 9);
    expect(logMass).toBeLessThanOrEqual(0);
  }, 120_000);
});
