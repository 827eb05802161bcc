/** `labor-llm eval`: the metrics of one or more predictions files, as one table (markdown, JSON, CSV, HTML). */
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { writeFileAtomic } from "../../io/atomic-write.js";
import { MetricsAccumulator, type ModelMetrics } from "../../score/metrics.js";
import { readPredictions } from "../../score/predictions.js";
import { metricsHtml } from "../../report/html.js";
import { groupsCsv, metricsCsv, metricsMarkdown } from "../../report/tables.js";
import { parseFlags, requireString, UsageError } from "../args.js";

export const EVAL_HELP = `labor-llm eval --predictions A.jsonl [B.jsonl …] --out DIR [--title TEXT]

Reads predictions files (from \`labor-llm score\` or \`labor-llm baseline\`) and writes, for all of them in one
table: DIR/metrics.md, DIR/metrics.json (every metric, reliability bins included), DIR/metrics.csv (one row
per model), DIR/groups.csv (perplexity by dataset, sex, race, education, year) and DIR/report.html
(self-contained: tables, perplexity chart, reliability diagrams). Prints the markdown table.
Metrics: perplexity of the true outcome (normalised over valid outcomes, and raw), on all person-years and on
transitions; accuracy@1/@5; calibration (ECE, top-1 and all candidates); stay/move (P(outcome = previous
outcome)) and labour-force (P(unemployed or not in labor force)) log loss, AUC and ECE.`;

export async function evaluateFiles(paths: readonly string[]): Promise<ModelMetrics[]> {
  const metrics: ModelMetrics[] = [];
  for (const path of paths) {
    let accumulator: MetricsAccumulator | undefined;
    await readPredictions(path, (record, header) => {
      accumulator ??= new MetricsAccumulator(header.model, header.codes);
      accumulator.add(record);
    });
    if (!accumulator) throw new Error(`${path}: no person-years`);
    metrics.push(accumulator.result());
  }
  return metrics;
}

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
  mkdirSync(outDir, { recursive: true });
  const write = (file: string, text: string) => writeFileAtomic(join(outDir, file), (sink) => sink.write(Buffer.from(text, "utf8")));
  const markdown = metricsMarkdown(metrics);
  write("metrics.md", markdown);
  write("metrics.json", JSON.stringify({ files: paths, models: metrics }, (_, v: unknown) => (typeof v === "number" && !Number.isFinite(v) ? null : v), 2) + "\n");
  write("metrics.csv", metricsCsv(metrics));
  write("groups.csv", groupsCsv(metrics));
  const title = typeof values.title === "string" ? values.title : "labor-llm evaluation";
  write("report.html", metricsHtml(metrics, title, note));
  console.log(markdown);
  console.log(`wrote ${outDir}/{metrics.md,metrics.json,metrics.csv,groups.csv,report.html}`);
  return 0;
}
