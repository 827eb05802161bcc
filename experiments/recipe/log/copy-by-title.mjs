// Does a model copy the previous title whatever the title? For every person-year whose previous outcome is an
// occupation: the model's P(previous outcome again) (normalised over the valid outcomes), the share that did
// stay, and the log loss on the stays, by how many person-years of the survey's TRAINING split hold that title.
// A model that copies in context does not care how rare the title is; one that has memorised which title
// follows a token cannot repeat titles it rarely saw.
//
//   node experiments/recipe/log/copy-by-title.mjs PROFILE PEOPLE SEED PREDICTIONS.jsonl [MORE.jsonl …]
// (run after `npx tsc -p tsconfig.json`; PROFILE/PEOPLE/SEED as the run that wrote the predictions: the
// demo and the experiment's main survey use nlsy79 1000 0)
import { readFileSync } from "node:fs";
import { syntheticSurvey } from "../../../dist/src/experiment/stages.js";
import { normaliseLogprobs } from "../../../dist/src/score/normalise.js";
import { occupationTaxonomy } from "../../../dist/src/data/taxonomy.js";

const [profile, people, seed, ...files] = process.argv.slice(2);
if (files.length === 0) throw new Error("usage: copy-by-title.mjs PROFILE PEOPLE SEED PREDICTIONS.jsonl [MORE.jsonl …]");
const taxonomy = occupationTaxonomy();
const trainCount = new Map();
for (const person of syntheticSurvey(profile, Number(people), Number(seed)).train) {
  for (const wave of person.waves) trainCount.set(wave.occupation, (trainCount.get(wave.occupation) ?? 0) + 1);
}
const BUCKETS = [[0, 0], [1, 5], [6, 20], [21, 100], [101, Infinity]];
const label = ([low, high]) => (high === Infinity ? `${low}+` : low === high ? `${low}` : `${low}–${high}`);
console.log(`| predictions | ${BUCKETS.map((b) => `title seen ${label(b)}×: n, mean P(stay), stayed, stay log loss`).join(" | ")} |`);
console.log(`|---|${BUCKETS.map(() => "---").join("|")}|`);
for (const file of files) {
  const lines = readFileSync(file, "utf8").trim().split("\n");
  const header = JSON.parse(lines[0]);
  const index = new Map(header.codes.map((code, i) => [code, i]));
  const sums = BUCKETS.map(() => ({ n: 0, p: 0, stayed: 0, stayLoss: 0 }));
  for (const line of lines.slice(1)) {
    const record = JSON.parse(line);
    if (record.previous === null || taxonomy.byCode(record.previous).isNonWork) continue;
    const { normalised } = normaliseLogprobs(record.log_probs);
    const lp = normalised[index.get(record.previous)];
    const seen = trainCount.get(record.previous) ?? 0;
    const s = sums[BUCKETS.findIndex(([low, high]) => seen >= low && seen <= high)];
    s.n++;
    s.p += Math.exp(lp);
    if (record.truth === record.previous) {
      s.stayed++;
      s.stayLoss -= lp;
    }
  }
  const cell = (s) => (s.n === 0 ? "–" : `${s.n}, ${(s.p / s.n).toFixed(2)}, ${(s.stayed / s.n).toFixed(2)}, ${s.stayed ? (s.stayLoss / s.stayed).toFixed(3) : "–"}`);
  console.log(`| ${header.model} (${file.split("/").slice(-3, -1).join("/")}) | ${sums.map(cell).join(" | ")} |`);
}
