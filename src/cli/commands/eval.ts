/** `labor-llm eval`: the metrics of one or more predictions files, as one table (markdown, JSON, CSV, HTML). */
import { evaluateFiles, writeEvaluationReport } from "../../report/write.js";
import { parseFlags, requireString, UsageError } from "../args.js";

export const EVAL_HELP = `labor-llm eval --predictions A.jsonl [B.jsonl …] --out DIR [--title TEXT]

Reads predictions files (from \`labor-llm score\` or \`labor-llm baseline\`; JSON Lines or .bin) and writes, for all of them in one
table: DIR/metrics.md, DIR/metrics.json (every metric, reliability bins included), DIR/metrics.csv (one row
per model), DIR/groups.csv (perplexity by dataset, sex, race, education, year) and DIR/report.html
(self-contained: tables, perplexity chart, reliability diagrams). Prints the markdown table.
Metrics: perplexity of the true outcome (normalised over valid outcomes, and raw), on all person-years and on
transitions; accuracy@1/@5; calibration (ECE, top-1 and all candidates); stay/move (P(outcome = previous
outcome)) and labour-force (P(unemployed or not in labor force)) log loss, AUC and ECE.`;

export async function runEval(argv: string[]): Promise<number> {
  const { values, positionals } = parseFlags(argv, { predictions: { type: "string", multiple: true }, out: { type: "string" }, title: { type: "string" } }, true);
  if (values.help) {
    console.log(EVAL_HELP);
    return 0;
  }
  const given = (values.predictions as unknown as string[] | undefined) ?? [];
  const paths = [...given, ...positionals];
  if (paths.length === 0) throw new UsageError("missing required flag --predictions");
  const outDir = requireString(values, "out");
  const metrics = await evaluateFiles(paths);
  const names = metrics.map((m) => m.model);
  const duplicate = names.find((name, i) => names.indexOf(name) !== i);
  if (duplicate) throw new UsageError(`two predictions files are both named "${duplicate}" (use --name when scoring)`);
  const counts = new Set(metrics.map((m) => m.personYears));
  const note = counts.size > 1 ? `Warning: the files cover different numbers of person-years (${metrics.map((m) => `${m.model} ${m.personYears}`).join(", ")}).` : "";
  if (note) console.error(note);
  const title = typeof values.title === "string" ? values.title : "labor-llm evaluation";
  const markdown = writeEvaluationReport(outDir, metrics, { title, note, sources: paths });
  console.log(markdown);
  console.log(`wrote ${outDir}/{metrics.md,metrics.json,metrics.csv,groups.csv,report.html}`);
  return 0;
}
