/**
 * Relabelled careers: a training-data augmentation for fine-tuning a language model on careers.
 *
 * Why: a small model fine-tuned on a survey learns P(stay in the previous occupation) per title, from how
 * often the training split shows that title staying, instead of learning to copy the line above; on titles
 * the split shows rarely it then moves where the person stayed (experiments/recipe/README.md, "Runs L–N").
 * A relabelled copy of a training person is the same career with one of the person's occupations renamed,
 * in every wave, to an occupation drawn uniformly from the taxonomy (so mostly a rare one): its stays can only
 * be predicted by copying. The transitions into and out of the renamed occupation become noise, which is
 * what the share of relabelled copies trades against.
 */
import type { PersonRecord } from "./panel.js";
import type { OccupationTaxonomy } from "./taxonomy.js";
import { SeededRandom } from "../util/random.js";

/** `person` with every wave of occupation `from` renamed to `to` (a new record; the input is not modified). */
export function renameOccupation(person: PersonRecord, from: number, to: number, personId: string): PersonRecord {
  return {
    ...person,
    personId,
    waves: person.waves.map((wave) => (wave.occupation === from ? { ...wave, occupation: to } : wave)),
  };
}

/** A relabelled copy of a career and the occupation it renamed (`from`, now `to` in every wave). */
export interface RelabelledCareer {
  person: PersonRecord;
  from: number;
  to: number;
}

/**
 * `count` relabelled copies of people drawn with replacement from `people` (seeded): in each, one of the
 * person's occupations (uniform over the distinct occupations they hold; non-work states are never renamed)
 * becomes an occupation drawn uniformly from those of the taxonomy the person does not hold. People who hold
 * no occupation are skipped in the draw. Deterministic in (people, count, seed).
 */
export function relabelledCopies(
  people: readonly PersonRecord[],
  count: number,
  seed: number,
  taxonomy: OccupationTaxonomy,
): RelabelledCareer[] {
  // Each person who holds an occupation, with the distinct occupations they hold (in first-held order).
  const workers = people
    .map((person) => ({
      person,
      held: [...new Set(person.waves.map((wave) => wave.occupation).filter((code) => !taxonomy.byCode(code).isNonWork))],
    }))
    .filter((worker) => worker.held.length > 0);
  if (count > 0 && workers.length === 0) throw new Error("relabelled copies: no training person holds an occupation");
  const allOccupations = taxonomy.outcomes.filter((outcome) => !outcome.isNonWork).map((outcome) => outcome.code);
  const random = new SeededRandom(seed, "relabelled careers");
  return Array.from({ length: count }, (_, k) => {
    const { person, held } = workers[random.integer(0, workers.length - 1)];
    const from = held[random.integer(0, held.length - 1)];
    const heldSet = new Set(held);
    const candidates = allOccupations.filter((code) => !heldSet.has(code));
    const to = candidates[random.integer(0, candidates.length - 1)];
    return { person: renameOccupation(person, from, to, `${person.personId}~relabelled${k}`), from, to };
  });
}
