/** Regression baseline: the multinomial logit on CAREER's features (src/model/logit.ts) as a Predictor. */
import type { PersonRecord } from "../../data/panel.js";
import { occupationTaxonomy, type OccupationTaxonomy } from "../../data/taxonomy.js";
import { CareerFeatureSpace, MultinomialLogit, type LogitFitOptions } from "../../model/logit.js";
import type { PredictionProgress, Predictor } from "../predictor.js";

export class LogitPredictor implements Predictor {
  readonly name = "logit";
  readonly normalised = true;

  constructor(
    readonly model: MultinomialLogit,
    readonly taxonomy: OccupationTaxonomy,
  ) {}

  static fit(train: readonly PersonRecord[], options: LogitFitOptions & { taxonomy?: OccupationTaxonomy } = {}): LogitPredictor {
    const taxonomy = options.taxonomy ?? occupationTaxonomy();
    const space = new CareerFeatureSpace(taxonomy, train);
    return new LogitPredictor(MultinomialLogit.fit(space, train, options), taxonomy);
  }

  async predict(people: readonly PersonRecord[], onProgress?: PredictionProgress): Promise<Float64Array[][]> {
    let done = 0;
    return people.map((person) =>
      person.waves.map((_, w) => {
        if (++done % 1000 === 0) onProgress?.(done);
        return this.model.predict(person, w);
      }),
    );
  }
}
