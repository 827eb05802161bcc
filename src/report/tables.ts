/**
 * The evaluation table: one row per model, the same columns for every model (markdown, CSV), plus
 * perplexity by group (dataset, sex, race, education, year) with one column per model.
 */
import type { ModelMetrics } from "../score/metrics.js";
import { csvField } from "../data/panel.js";

interface Column {
  header: string;
  value: (m: ModelMetrics) => number | string;
  digits?: number;
}

export const SUMMARY_COLUMNS: Column[] = [
  { header: "model", value: (m) => m.model },
  { header: "person-years", value: (m) => m.personYears },
  { header: "PPL", value: (m) => m.perplexity, digits: 3 },
  { header: "PPL raw", value: (m) => m.perplexityRaw, digits: 3 },
  { header: "PPL transitions", value: (m) => m.transitionPerplexity, digits: 2 },
  { header: "acc@1", value: (m) => m.accuracyAt1, digits: 3 },
  { header: "acc@5", value: (m) => m.accuracyAt5, digits: 3 },
  { header: "ECE top-1", value: (m) => m.calibrationTop1.ece, digits: 4 },
  { header: "ECE all", value: (m) => m.calibrationAll.ece, digits: 5 },
  { header: "stay log loss", value: (m) => m.stay.logLoss, digits: 4 },
  { header: "stay AUC", value: (m) => m.stay.auc, digits: 3 },
  { header: "stay ECE", value: (m) => m.stay.calibration.ece, digits: 4 },
  { header: "LF log loss", value: (m) => m.laborForce.logLoss, digits: 4 },
  { header: "LF AUC", value: (m) => m.laborForce.auc, digits: 3 },
  { header: "valid mass", value: (m) => m.validMassMean, digits: 4 },
];

export const GROUP_DIMENSIONS = ["dataset", "sex", "race", "education", "year"] as const;

function format(value: number | string, digits?: number): string {
  if (typeof value === "string") return value;
  if (Number.isNaN(value)) return "–";
  if (!Number.isFinite(value)) return value > 0 ? "∞" : "−∞";
  if (Math.abs(value) >= 1e6) return value.toExponential(2);
  return digits === undefined ? String(value) : value.toFixed(digits);
}

/** A markdown table: left-aligned first column, the others right-aligned; `|` in cells escaped. */
export function markdownTable(headers: string[], rows: string[][]): string {
  const escape = (cell: string) => cell.replace(/\|/g, "\\|");
  const lines = [`| ${headers.map(escape).join(" | ")} |`, `|${headers.map((_, i) => (i === 0 ? " --- " : " ---: ")).join("|")}|`];
  for (const row of rows) lines.push(`| ${row.map(escape).join(" | ")} |`);
  return lines.join("\n");
}

export function summaryRows(metrics: readonly ModelMetrics[]): string[][] {
  return metrics.map((m) => SUMMARY_COLUMNS.map((c) => format(c.value(m), c.digits)));
}

/** Perplexity of each group value (rows) under each model (columns), with the group's person-years. */
export function groupRows(metrics: readonly ModelMetrics[], dimension: (typeof GROUP_DIMENSIONS)[number]): { headers: string[]; rows: string[][] } {
  const keys: string[] = [];
  for (const m of metrics) for (const key of Object.keys(m.byGroup[dimension])) if (!keys.includes(key)) keys.push(key);
  const headers = [dimension, "person-years", ...metrics.map((m) => m.model)];
  const rows = keys.map((key) => {
    const count = metrics.find((m) => m.byGroup[dimension][key])?.byGroup[dimension][key].count ?? 0;
    return [key, String(count), ...metrics.map((m) => format(m.byGroup[dimension][key]?.perplexity ?? NaN, 3))];
  });
  return { headers, rows };
}

/** The whole report as markdown: the summary table, then perplexity by group. */
export function metricsMarkdown(metrics: readonly ModelMetrics[]): string {
  const parts = [
    "## Next-occupation prediction",
    "",
    markdownTable(
      SUMMARY_COLUMNS.map((c) => c.header),
      summaryRows(metrics),
    ),
    "",
    "PPL: perplexity of the true outcome with probabilities normalised over the valid outcomes (raw: the model's own mass on the exact title text; equal for baselines). " +
      "Transitions: person-years whose outcome differs from the previous wave's. ECE: expected calibration error (top-1: 10 confidence bins; all: every (person-year, outcome) pair, log-spaced bins). " +
      "Stay: P(outcome = previous outcome); LF: P(unemployed or not in labor force).",
  ];
  for (const dimension of GROUP_DIMENSIONS) {
    const { headers, rows } = groupRows(metrics, dimension);
    parts.push("", `### Perplexity by ${dimension}`, "", markdownTable(headers, rows));
  }
  return parts.join("\n") + "\n";
}

/** One CSV row per model with the summary columns (full precision). */
export function metricsCsv(metrics: readonly ModelMetrics[]): string {
  const lines = [SUMMARY_COLUMNS.map((c) => csvField(c.header)).join(",")];
  for (const m of metrics) lines.push(SUMMARY_COLUMNS.map((c) => csvField(String(c.value(m)))).join(","));
  return lines.join("\n") + "\n";
}

/** Long-format CSV of group perplexities: model, dimension, group, person_years, perplexity. */
export function groupsCsv(metrics: readonly ModelMetrics[]): string {
  const lines = ["model,dimension,group,person_years,perplexity"];
  for (const m of metrics) {
    for (const dimension of GROUP_DIMENSIONS) {
      for (const [key, group] of Object.entries(m.byGroup[dimension])) lines.push([m.model, dimension, key, String(group.count), String(group.perplexity)].map(csvField).join(","));
    }
  }
  return lines.join("\n") + "\n";
}
