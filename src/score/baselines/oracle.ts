/**
 * Oracle baseline (synthetic panels only): the data-generating process's exact conditional distribution of
 * every person-year (src/data/SYNTHETIC.md). No model can beat its expected log-likelihood.
 */
import type { PersonRecord } from "../../data/panel.js";
import type { ProfileName, SyntheticProfile } from "../../data/profiles.js";
import { careerProcessFor } from "../../data/synthetic.js";
import { occupationTaxonomy, type OccupationTaxonomy } from "../../data/taxonomy.js";
import type { PredictionProgress, Predictor } from "../predictor.js";

export class OraclePredictor implements Predictor {
  readonly name = "oracle";
  readonly normalised = true;

  constructor(
    readonly profile: ProfileName | SyntheticProfile,
    readonly taxonomy: OccupationTaxonomy = occupationTaxonomy(),
  ) {}

  async predict(people: readonly PersonRecord[], onProgress?: PredictionProgress): Promise<Float64Array[][]> {
    const process = careerProcessFor(this.profile, this.taxonomy);
    let done = 0;
    return people.map((person) =>
      person.waves.map((_, w) => {
        const distribution = process.distribution(process.contextAt(person, w));
        if (++done % 1000 === 0) onProgress?.(done);
        return distribution.map(Math.log);
      }),
    );
  }
}
