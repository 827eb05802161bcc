/** `labor-llm ensemble`: the equal-weight ensemble of several models' predictions (src/score/ensemble.ts). */
import { resolve } from "node:path";
import { writeEnsemble } from "../../score/ensemble.js";
import { parseFlags, requireString, UsageError } from "../args.js";

export const ENSEMBLE_HELP = `labor-llm ensemble --predictions A.jsonl B.jsonl [C.jsonl …] --out ENSEMBLE.jsonl [--name NAME]

Writes the equal-weight ensemble of two or more models' predictions of the same person-years (JSON Lines or
.bin, as \`labor-llm score\` / \`baseline\` write them, in the same order, over the same outcome codes): each
person-year's probability of each outcome is the mean of the members' probabilities, each member normalised
over the outcomes first. Its members are typically models trained alike from different seeds on the same
data (\`labor-llm demo --model-seed\`); compare ensembles of the same size (\`labor-llm eval\`).
  --predictions FILE  a member's predictions (repeat the flag, or list the files after it)
  --out FILE          the ensemble's predictions (written atomically)
  --name NAME         model name in its header (default "ensemble of N")`;

export async function runEnsemble(argv: string[]): Promise<number> {
  const { values, positionals } = parseFlags(argv, { predictions: { type: "string", multiple: true }, out: { type: "string" }, name: { type: "string" } }, true);
  if (values.help) {
    console.log(ENSEMBLE_HELP);
    return 0;
  }
  const paths = [...((values.predictions as unknown as string[] | undefined) ?? []), ...positionals];
  if (paths.length < 2) throw new UsageError(`an ensemble needs at least 2 predictions files, got ${paths.length}`);
  const out = requireString(values, "out");
  if (paths.some((path) => resolve(path) === resolve(out))) throw new UsageError(`--out ${out} is one of the members (the members are never modified)`);
  const name = typeof values.name === "string" ? values.name : `ensemble of ${paths.length}`;
  const result = await writeEnsemble(paths, out, name);
  console.log(`wrote ${out}: ${name}, ${result.records} person-years, the mean of ${paths.join(", ")}`);
  return 0;
}
