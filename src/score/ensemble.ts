/**
 * An equal-weight ensemble of models' predictions: each person-year's probability of each outcome is the mean
 * of the members' probabilities, each member first normalised over the outcomes (as the metrics read it),
 *   log p(c) = log Σ_m exp(log p_m(c)) − log M.
 * A mixture of M members never has a higher log loss than the members' mean (log is concave), and is lower
 * where they disagree: it averages away what each member learned by chance (its initialisation, its batch
 * order), which for models trained from scratch on little data is a large part of their error.
 */
import { writePredictions, readPredictions, type PredictionHeader, type PredictionRecord } from "./predictions.js";
import { normaliseLogprobs } from "./normalise.js";

export interface EnsembleResult {
  records: number;
  header: PredictionHeader;
}

/** Log of the mean of exp(values[m][i]) over members m, for each i; −∞ where every member says −∞. */
function logMeanExp(members: readonly Float64Array[]): Float64Array {
  const out = new Float64Array(members[0].length);
  const logCount = Math.log(members.length);
  for (let i = 0; i < out.length; i++) {
    let max = -Infinity;
    for (const m of members) if (m[i] > max) max = m[i];
    if (max === -Infinity) {
      out[i] = -Infinity;
      continue;
    }
    let sum = 0;
    for (const m of members) sum += Math.exp(m[i] - max);
    out[i] = Math.min(0, max + Math.log(sum) - logCount);
  }
  return out;
}

/** The fields two members must share for their records to be the same person-year. */
function samePersonYear(a: PredictionRecord, b: PredictionRecord): boolean {
  return a.personId === b.personId && a.dataset === b.dataset && a.year === b.year && a.truth === b.truth && a.previous === b.previous;
}

/**
 * Read the members' predictions files (the same person-years in the same order, the same outcome codes) and
 * write their ensemble to `outPath` (JSON Lines, or binary for ".bin"; atomically), named `name`.
 */
export async function writeEnsemble(paths: readonly string[], outPath: string, name: string): Promise<EnsembleResult> {
  if (paths.length < 2) throw new Error(`an ensemble needs at least 2 predictions files, got ${paths.length}`);
  const members: { header: PredictionHeader; records: PredictionRecord[] }[] = [];
  for (const path of paths) {
    const records: PredictionRecord[] = [];
    const header = await readPredictions(path, (record) => records.push(record));
    members.push({ header, records });
  }
  const [first] = members;
  members.forEach((member, m) => {
    const codes = member.header.codes;
    if (codes.length !== first.header.codes.length || codes.some((code, i) => code !== first.header.codes[i])) {
      throw new Error(`${paths[m]}: its outcome codes differ from ${paths[0]}'s (the members must score the same outcomes in the same order)`);
    }
    if (member.records.length !== first.records.length) {
      throw new Error(`${paths[m]}: ${member.records.length} person-years, but ${paths[0]} has ${first.records.length} (the members must score the same person-years)`);
    }
    member.records.forEach((record, r) => {
      if (!samePersonYear(record, first.records[r])) {
        const other = first.records[r];
        throw new Error(`${paths[m]}: record ${r + 1} is person "${record.personId}" ${record.year}, but ${paths[0]}'s is person "${other.personId}" ${other.year} (or their truth/previous differ)`);
      }
    });
  });
  const header: PredictionHeader = {
    ...first.header,
    model: name,
    normalised: true,
    meta: { ensemble: members.map((member, m) => ({ model: member.header.model, path: paths[m] })) },
  };
  function* mixed(): Generator<PredictionRecord> {
    for (let r = 0; r < first.records.length; r++) {
      const logProbs = logMeanExp(members.map((member) => normaliseLogprobs(member.records[r].logProbs).normalised));
      yield { ...first.records[r], logProbs };
    }
  }
  const records = writePredictions(outPath, header, mixed());
  return { records, header };
}
