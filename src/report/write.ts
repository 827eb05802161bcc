/** The metrics of each predictions file (from `score` or `baseline`), in the order given. */
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

/** Write one evaluation (all models in one table) as markdown, JSON, CSV and a self-contained report.html. */
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { writeFileAtomic } from "../io/atomic-write.js";
import { MetricsAccumulator, type ModelMetrics } from "../score/metrics.js";
import { readPredictions } from "../score/predictions.js";
import { metricsHtml } from "./html.js";
import { groupsCsv, metricsCsv, metricsMarkdown } from "./tables.js";

export const REPORT_FILES = ["metrics.md", "metrics.json", "metrics.csv", "groups.csv", "report.html"] as const;

/** Returns the markdown table. Non-finite numbers become null in JSON. */
export function writeEvaluationReport(
  outDir: string,
  metrics: readonly ModelMetrics[],
  options: { title: string; note?: string; sources?: readonly string[] },
): string {
  mkdirSync(outDir, { recursive: true });
  const write = (file: string, text: string) => writeFileAtomic(join(outDir, file), (sink) => sink.write(Buffer.from(text, "utf8")));
  const markdown = metricsMarkdown(metrics);
  write("metrics.md", markdown);
  const json = { files: options.sources ?? [], models: metrics };
  write("metrics.json", JSON.stringify(json, (_, v: unknown) => (typeof v === "number" && !Number.isFinite(v) ? null : v), 2) + "\n");
  write("metrics.csv", metricsCsv(metrics));
  write("groups.csv", groupsCsv(metrics));
  write("report.html", metricsHtml(metrics, options.title, options.note ?? ""));
  return markdown;
}
