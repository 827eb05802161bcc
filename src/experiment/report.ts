/**
 * The experiment's report: per survey, every model's metrics with 95% bootstrap intervals by person and its
 * excess log loss over the oracle; paired comparisons (A − B on the same resamples of the same people) with a
 * verdict only when the interval excludes 0; the findings as sentences with their numbers; learning curves
 * and reliability diagrams; each foundation's pretraining loss. Written as report.md, report.json, metrics.csv,
 * comparisons.csv, learning-curves.csv, pretraining-curves.csv and a self-contained report.html. The same report
 * pools several runs (seeds): statistics over all their person-years, a bootstrap stratified by run, and each
 * comparison's per-run estimates.
 */
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import type { ProfileName } from "../data/profiles.js";
import { writeFileAtomic } from "../io/atomic-write.js";
import {
  alignPeople, BOOTSTRAP_STATISTICS, bootstrapInterval, pairedDifference, personSums, stratifiedBootstrapWeights,
  type Interval, type PersonSums,
} from "../score/bootstrap.js";
import { computeMetrics, type ModelMetrics } from "../score/metrics.js";
import { readPredictions, type PredictionRecord } from "../score/predictions.js";
import { calibrationCharts, escapeHtml, PALETTE, perplexityChart, REPORT_STYLE, table } from "../report/html.js";
import { markdownTable } from "../report/tables.js";
import { csvField } from "../data/panel.js";
import { foundationLossCurve, type FoundationValue } from "./stages.js";
import type { ScoredModel } from "./pipeline.js";

/** The statistics of the main table, in column order. */
const TABLE_STATISTICS = [
  { key: "perplexity", header: "PPL", digits: 3 },
  { key: "transitionPerplexity", header: "PPL transitions", digits: 1 },
  { key: "accuracyAt1", header: "acc@1", digits: 3 },
  { key: "eceTop1", header: "ECE top-1", digits: 4 },
  { key: "stayLogLoss", header: "stay log loss", digits: 4 },
  { key: "laborForceLogLoss", header: "LF log loss", digits: 4 },
] as const;

/** Paired comparisons are made on these statistics (lower is better for all five). */
const PAIRED_STATISTICS = [
  { key: "logLoss", label: "mean log loss (nats per person-year)" },
  { key: "transitionLogLoss", label: "mean log loss on transitions" },
  { key: "eceTop1", label: "ECE top-1" },
  { key: "stayLogLoss", label: "stay/move log loss" },
  { key: "laborForceLogLoss", label: "labour-force log loss" },
] as const;

export interface ModelRow {
  survey: ProfileName;
  model: string;
  personYears: number;
  people: number;
  intervals: Record<(typeof TABLE_STATISTICS)[number]["key"], Interval>;
  /** Mean log loss minus the oracle's, paired: an estimate of the model's KL divergence from the truth. */
  excessLogLoss: Interval;
  validMass: number;
  seconds: number;
}

export interface Comparison {
  survey: ProfileName;
  /** What the comparison asks, e.g. "FT-LLM vs CAREER (small)", "titles vs codes". */
  question: string;
  a: string;
  b: string;
  statistic: string;
  /** statistic(a) − statistic(b) with its interval: negative means a is better. */
  difference: Interval;
  verdict: "a better" | "b better" | "no clear difference";
  /** Pooled over several runs (seeds): each run's own estimate, which shows how far trainings differ. */
  perRun?: { run: string; estimate: number }[];
}

export interface LearningCurve {
  survey: ProfileName;
  model: string;
  steps: number;
  tokens: number;
  seconds: number;
  bestStep: number | null;
  validation: { step: number; loss: number }[];
}

/** A foundation's pretraining loss as window means (stages.ts foundationLossCurve). */
export interface PretrainingCurve {
  foundation: string;
  points: { step: number; loss: number }[];
}

export interface ExperimentReport {
  dir: string;
  rows: ModelRow[];
  comparisons: Comparison[];
  findings: string[];
  learningCurves: LearningCurve[];
  pretrainingCurves: PretrainingCurve[];
  markdown: string;
}

export interface ExperimentReportInput {
  /**
   * Every scored model. With models of several runs (ScoredModel.run, e.g. "seed 1"), every statistic pools the
   * runs' person-years and every resample draws each run's people from that run (stratifiedBootstrapWeights).
   */
  scored: ScoredModel[];
  mainSurvey: ProfileName;
  foundations: { name: string; value: FoundationValue }[];
  smallerPreset: string;
  largerPreset: string;
  resamples: number;
  seed: number;
  note: string;
}

export const EXPERIMENT_REPORT_FILES = ["report.md", "report.json", "metrics.csv", "comparisons.csv", "learning-curves.csv", "pretraining-curves.csv", "report.html"] as const;

async function readRecords(path: string): Promise<{ codes: number[]; records: PredictionRecord[] }> {
  const records: PredictionRecord[] = [];
  let codes: number[] = [];
  await readPredictions(path, (record, header) => {
    codes = header.codes;
    records.push(record);
  });
  return { codes, records };
}

function verdictOf(difference: Interval): Comparison["verdict"] {
  if (difference.upper < 0) return "a better";
  if (difference.lower > 0) return "b better";
  return "no clear difference";
}

function formatValue(value: number, digits: number): string {
  if (!Number.isFinite(value)) return "–";
  if (Math.abs(value) >= 1e5) return value.toExponential(2);
  return value.toFixed(digits);
}

function formatInterval(interval: Interval, digits: number): string {
  return `${formatValue(interval.estimate, digits)} [${formatValue(interval.lower, digits)}, ${formatValue(interval.upper, digits)}]`;
}

function csv(headers: string[], rows: (string | number)[][]): string {
  const cell = (v: string | number) => (typeof v === "number" ? (Number.isFinite(v) ? String(v) : "") : csvField(v));
  return [headers.join(","), ...rows.map((row) => row.map(cell).join(","))].join("\n") + "\n";
}

/** The comparisons asked of each survey (those whose two models were scored there). */
function plannedComparisons(survey: ProfileName, models: readonly string[], input: ExperimentReportInput): { question: string; a: string; b: string }[] {
  const planned: { question: string; a: string; b: string }[] = [];
  const careers = models.filter((m) => /^CAREER \([a-z]+\)$/.test(m));
  for (const baseline of [...careers, "logit", "markov"]) {
    planned.push({ question: `FT-LLM vs ${baseline}`, a: "FT-LLM", b: baseline });
  }
  // Ensembles of K members (pipeline.ts, --members): the FT-LLM's against CAREER's of the same size, and what
  // the ensemble adds to its first member.
  const ftEnsemble = models.find((m) => /^FT-LLM ×\d+$/.test(m));
  if (ftEnsemble) {
    const size = ftEnsemble.slice("FT-LLM ".length);
    for (const career of careers) planned.push({ question: `FT-LLM ${size} vs ${career} ${size}`, a: ftEnsemble, b: `${career} ${size}` });
    for (const model of ["FT-LLM", ...careers]) planned.push({ question: `ensemble gain: ${model} ${size} vs one`, a: `${model} ${size}`, b: model });
  }
  planned.push({ question: "value of fine-tuning", a: "FT-LLM", b: "off-the-shelf LLM" });
  if (survey === input.mainSurvey) {
    planned.push({ question: "titles vs codes", a: "FT-LLM", b: "FT-LLM, codes" });
    planned.push({ question: "birth-year line (with vs without)", a: "FT-LLM", b: "FT-LLM, no birth year" });
    planned.push({ question: "education (with vs without)", a: "FT-LLM", b: "FT-LLM, no education" });
    const smallerExtra = `FT-LLM ${input.smallerPreset}, survey + careers`;
    planned.push({ question: `data vs size: smaller (${input.smallerPreset}) with more career data vs larger (${input.largerPreset}) on the survey`, a: smallerExtra, b: "FT-LLM" });
    planned.push({ question: `more career data, same smaller model (${input.smallerPreset})`, a: smallerExtra, b: `FT-LLM ${input.smallerPreset}, survey only` });
  }
  return planned.filter((c) => models.includes(c.a) && models.includes(c.b));
}

function perRunText(c: Comparison, digits: number): string {
  return (c.perRun ?? []).map((r) => `${r.run} ${r.estimate >= 0 ? "+" : ""}${formatValue(r.estimate, digits)}`).join(", ");
}

function findingOf(c: Comparison): string {
  const d = `Δ ${formatInterval(c.difference, 3)}`;
  const outcome = c.verdict === "a better" ? `${c.a} is better` : c.verdict === "b better" ? `${c.b} is better` : "no clear difference (the interval contains 0)";
  const perRun = c.perRun ? ` (${perRunText(c, 3)})` : "";
  return `${c.survey}, ${c.question} — ${c.statistic}, ${c.a} − ${c.b}: ${d}${perRun}: ${outcome}.`;
}

/** One survey's models in one run, their people aligned (the same people, in one order, for every model). */
interface RunBlock {
  records: { codes: number[]; records: PredictionRecord[] }[];
  aligned: PersonSums[][];
}

async function loadRunBlock(survey: ProfileName, run: string, models: readonly string[], scored: readonly ScoredModel[]): Promise<RunBlock> {
  const inRun = models.map((model) => {
    const found = scored.find((s) => s.survey === survey && (s.run ?? "") === run && s.model === model);
    if (!found) throw new Error(`experiment report: ${survey} "${model}" was not scored${run ? ` in ${run}` : ""}`);
    return found;
  });
  const records = await Promise.all(inRun.map((m) => readRecords(m.path)));
  const aligned = alignPeople(inRun.map((m, i) => ({ name: `${m.model}${run ? ` (${run})` : ""}`, people: personSums(records[i].codes, records[i].records) })));
  return { records, aligned };
}

interface ChartSeries {
  label: string;
  points: { x: number; y: number }[];
  /** A highlighted point (e.g. the best validation step), with its tooltip. */
  marker?: { x: number; y: number; title: string };
}

/** SVG line chart, one line per series, legend on the right (the chart grows to fit it); `logY`: log-scaled y. */
function lineChart(title: string, xLabel: string, series: readonly ChartSeries[], logY = false): string {
  // The legend's column is as wide as its longest label (~6.5 px per character at 11 px), so no label is clipped.
  const legendWidth = Math.max(200, 40 + Math.ceil(6.5 * Math.max(0, ...series.map((s) => s.label.length))));
  const margin = { left: 56, right: legendWidth, top: 24, bottom: 40 };
  const width = 420 + legendWidth;
  const height = Math.max(320, margin.top + 16 * series.length + margin.bottom);
  const plotWidth = width - margin.left - margin.right;
  const plotHeight = height - margin.top - margin.bottom;
  const scale = (v: number) => (logY ? Math.log(v) : v);
  const ys = series.flatMap((s) => s.points.map((p) => p.y)).filter((v) => Number.isFinite(scale(v)));
  const maxX = Math.max(1, ...series.flatMap((s) => s.points.map((p) => p.x)));
  const low = Math.min(...ys.map(scale));
  const high = Math.max(...ys.map(scale));
  const span = high > low ? high - low : 1;
  const x = (v: number) => margin.left + (v / maxX) * plotWidth;
  const y = (v: number) => margin.top + plotHeight - ((scale(v) - low) / span) * plotHeight;
  const parts: string[] = [
    `<text x="${margin.left + plotWidth / 2}" y="16" text-anchor="middle" font-weight="bold">${escapeHtml(title)}</text>`,
    `<rect x="${margin.left}" y="${margin.top}" width="${plotWidth}" height="${plotHeight}" fill="none" stroke="#999"/>`,
    `<text x="${margin.left + plotWidth / 2}" y="${height - 6}" text-anchor="middle" font-size="11">${escapeHtml(xLabel)}</text>`,
  ];
  for (let k = 0; k <= 4; k++) {
    const tick = low + (span * k) / 4;
    const value = logY ? Math.exp(tick) : tick;
    const step = Math.round((maxX * k) / 4);
    parts.push(`<text x="${margin.left - 4}" y="${y(value) + 3}" text-anchor="end" font-size="10">${value.toFixed(2)}</text>`);
    parts.push(`<text x="${x(step)}" y="${margin.top + plotHeight + 14}" text-anchor="middle" font-size="10">${step}</text>`);
  }
  series.forEach((line, i) => {
    const colour = PALETTE[i % PALETTE.length];
    const points = line.points.map((p) => `${x(p.x).toFixed(1)},${y(p.y).toFixed(1)}`).join(" ");
    parts.push(`<polyline points="${points}" fill="none" stroke="${colour}" stroke-width="1.6"/>`);
    if (line.marker) {
      parts.push(`<circle cx="${x(line.marker.x).toFixed(1)}" cy="${y(line.marker.y).toFixed(1)}" r="3.5" fill="${colour}"><title>${escapeHtml(line.marker.title)}</title></circle>`);
    }
    const ly = margin.top + 12 + i * 16;
    parts.push(`<line x1="${width - margin.right + 10}" y1="${ly - 4}" x2="${width - margin.right + 28}" y2="${ly - 4}" stroke="${colour}" stroke-width="2"/>`);
    parts.push(`<text x="${width - margin.right + 32}" y="${ly}" font-size="11">${escapeHtml(line.label)}</text>`);
  });
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="12">${parts.join("")}</svg>`;
}

/** Validation loss against fine-tuning steps, one line per run, the best step marked. */
function learningCurveChart(curves: readonly LearningCurve[]): string {
  const withPoints = curves.filter((c) => c.validation.length > 0);
  if (withPoints.length === 0) return "<p>No validation losses were recorded.</p>";
  return lineChart("Validation loss (nats per target token) during fine-tuning", "optimizer step", withPoints.map((curve) => {
    const best = curve.validation.find((v) => v.step === curve.bestStep);
    return {
      label: `${curve.survey}: ${curve.model}`,
      points: curve.validation.map((v) => ({ x: v.step, y: v.loss })),
      ...(best ? { marker: { x: best.step, y: best.loss, title: `${curve.survey} ${curve.model}: best ${best.loss.toFixed(4)} at step ${best.step}` } } : {}),
    };
  }));
}

/** Each foundation's pretraining loss (window means), log-scaled: a foundation that learned to copy late stands out. */
function pretrainingChart(curves: readonly PretrainingCurve[]): string {
  const withPoints = curves.filter((c) => c.points.length > 0);
  if (withPoints.length === 0) return "<p>No foundation training log was found.</p>";
  return lineChart(
    "Training loss (nats per target token) of each foundation during pretraining",
    "optimizer step (each point: the mean over a window of steps)",
    withPoints.map((c) => ({ label: c.foundation, points: c.points.map((p) => ({ x: p.step, y: p.loss })) })),
    true,
  );
}

export async function writeExperimentReport(dir: string, input: ExperimentReportInput): Promise<ExperimentReport> {
  const rows: ModelRow[] = [];
  const comparisons: Comparison[] = [];
  const metricsBySurvey = new Map<ProfileName, ModelMetrics[]>();
  const surveys = [...new Set(input.scored.map((s) => s.survey))];
  const runs = [...new Set(input.scored.map((s) => s.run ?? ""))];
  for (const survey of surveys) {
    const models = [...new Set(input.scored.filter((s) => s.survey === survey).map((s) => s.model))];
    const blocks = await Promise.all(runs.map((run) => loadRunBlock(survey, run, models, input.scored)));
    metricsBySurvey.set(survey, models.map((model, i) => {
      const codes = blocks[0].records[i].codes;
      return { ...computeMetrics(model, codes, blocks.flatMap((b) => b.records[i].records)), model };
    }));
    // Each model's people, run after run; one set of resamples per survey, shared by every model, so intervals
    // and paired differences line up.
    const byModel = new Map<string, PersonSums[]>(models.map((model, i) => [model, blocks.flatMap((b) => b.aligned[i])]));
    const weights = stratifiedBootstrapWeights(blocks.map((b) => b.aligned[0].length), input.resamples, input.seed);
    const oracle = byModel.get("oracle");
    models.forEach((model, i) => {
      const people = byModel.get(model)!;
      const intervals = Object.fromEntries(
        TABLE_STATISTICS.map(({ key }) => [key, bootstrapInterval(people, BOOTSTRAP_STATISTICS[key], weights)]),
      ) as ModelRow["intervals"];
      const nan = { estimate: NaN, lower: NaN, upper: NaN };
      const seconds = input.scored.filter((s) => s.survey === survey && s.model === model).reduce((t, s) => t + s.seconds, 0);
      rows.push({
        survey, model, personYears: people.reduce((n, p) => n + p.personYears, 0), people: people.length, intervals,
        excessLogLoss: oracle ? pairedDifference(people, oracle, BOOTSTRAP_STATISTICS.logLoss, weights) : nan,
        validMass: metricsBySurvey.get(survey)![i].validMassMean, seconds,
      });
    });
    for (const planned of plannedComparisons(survey, models, input)) {
      const statistics = /^FT-LLM( ×\d+)? vs CAREER/.test(planned.question) ? PAIRED_STATISTICS : PAIRED_STATISTICS.slice(0, 1);
      const [ia, ib] = [models.indexOf(planned.a), models.indexOf(planned.b)];
      for (const { key, label } of statistics) {
        const statistic = BOOTSTRAP_STATISTICS[key];
        const difference = pairedDifference(byModel.get(planned.a)!, byModel.get(planned.b)!, statistic, weights);
        const perRun = runs.length < 2 ? undefined : runs.map((run, k) => {
          const ones = new Float64Array(blocks[k].aligned[ia].length).fill(1);
          return { run, estimate: statistic(blocks[k].aligned[ia], ones) - statistic(blocks[k].aligned[ib], ones) };
        });
        comparisons.push({ survey, ...planned, statistic: label, difference, verdict: verdictOf(difference), ...(perRun ? { perRun } : {}) });
      }
    }
  }

  const belowOracle = rows.filter((r) => {
    const oracle = rows.find((o) => o.survey === r.survey && o.model === "oracle");
    return oracle && r.model !== "oracle" && r.intervals.perplexity.estimate < oracle.intervals.perplexity.estimate;
  });
  const findings = comparisons.map(findingOf);
  findings.push(
    belowOracle.length === 0
      ? "No model's perplexity is below the oracle's on any survey."
      : `Below the oracle (impossible in expectation; sampling noise or a bug): ${belowOracle.map((r) => `${r.survey} ${r.model}`).join(", ")}.`,
  );
  const learningCurves: LearningCurve[] = input.scored
    .filter((s) => s.finetune)
    .map((s) => ({
      survey: s.survey, model: s.run ? `${s.model} (${s.run})` : s.model, steps: s.finetune!.steps, tokens: s.finetune!.tokens, seconds: s.finetune!.seconds,
      bestStep: s.finetune!.bestStep, validation: s.finetune!.validation,
    }));

  const pretrainingCurves: PretrainingCurve[] = input.foundations.map((f) => ({ foundation: f.name, points: foundationLossCurve(f.value) }));
  /** Mean of the window means over the first quarter of the steps: high where a foundation learned to copy late. */
  const firstQuarterLoss = (curve: PretrainingCurve) => {
    const quarter = curve.points.filter((p) => p.step <= (curve.points.at(-1)?.step ?? 0) / 4);
    return quarter.length > 0 ? (quarter.reduce((sum, p) => sum + p.loss, 0) / quarter.length).toFixed(3) : "–";
  };

  const tableHeaders = ["model", "person-years", ...TABLE_STATISTICS.map((s) => s.header), "excess log loss vs oracle", "valid mass"];
  const tableRows = (survey: ProfileName) =>
    rows.filter((r) => r.survey === survey).map((r) => [
      r.model, String(r.personYears),
      ...TABLE_STATISTICS.map(({ key, digits }) => formatInterval(r.intervals[key], digits)),
      formatInterval(r.excessLogLoss, 3), r.validMass.toFixed(3),
    ]);
  const pooled = runs.length > 1;
  const comparisonHeaders = ["survey", "question", "A − B", "statistic", "difference [95% CI]", ...(pooled ? ["per run"] : []), "verdict"];
  const comparisonRows = comparisons.map((c) => [
    c.survey, c.question, `${c.a} − ${c.b}`, c.statistic, formatInterval(c.difference, 4), ...(pooled ? [perRunText(c, 4)] : []),
    c.verdict === "a better" ? `${c.a} better` : c.verdict === "b better" ? `${c.b} better` : c.verdict,
  ]);
  const poolingNote = pooled
    ? `Pooled over ${runs.length} runs (${runs.join(", ")}): every statistic is over all runs' person-years, and each resample ` +
      "draws each run's test people from that run alone (a stratified bootstrap). The interval still holds each run's trained " +
      "models fixed; the per-run column of the paired comparisons shows how far the runs' trainings differ."
    : "";
  const curveHeaders = ["survey", "model", "steps", "tokens", "seconds", "best step", "best valid loss"];
  const curveRows = learningCurves.map((c) => [
    c.survey, c.model, String(c.steps), String(c.tokens), c.seconds.toFixed(0), String(c.bestStep ?? "–"),
    c.validation.length > 0 ? Math.min(...c.validation.map((v) => v.loss)).toFixed(4) : "–",
  ]);

  const markdown = [
    "# labor-llm experiment: the LABOR-LLM comparisons on synthetic surveys with a known truth",
    "",
    input.note,
    "",
    ...(pooled ? [poolingNote, ""] : []),
    `Every interval is a 95% percentile bootstrap interval by person (${input.resamples} resamples of the scored test people); ` +
      "paired differences resample both models' people together. They cover which test people were scored, for the models as " +
      "trained, not the randomness of training them (data draw, initialisation, batch order): rerun with another --seed for that. " +
      "Log losses are in nats per person-year; lower is better everywhere.",
    "",
    "## Findings",
    "",
    ...findings.map((f) => `- ${f}`),
    "",
    ...surveys.flatMap((survey) => [`## ${survey}`, "", markdownTable(tableHeaders, tableRows(survey)), ""]),
    "## Paired comparisons",
    "",
    markdownTable(comparisonHeaders, comparisonRows),
    "",
    "## Fine-tuning runs (learning curves in learning-curves.csv and report.html)",
    "",
    markdownTable(curveHeaders, curveRows),
    "",
    "## Foundations",
    "",
    markdownTable(
      ["foundation", "steps", "mean training loss, first quarter of the steps", "last training loss", "seconds"],
      input.foundations.map((f, i) => [f.name, String(f.value.steps), firstQuarterLoss(pretrainingCurves[i]), f.value.lastLoss?.toFixed(4) ?? "–", f.value.seconds.toFixed(0)]),
    ),
    "",
    "Pretraining loss curves: pretraining-curves.csv and report.html. A foundation whose loss stays high for long has learned to " +
      "copy the line above late, and its FT-LLM is worse (experiments/recipe/README.md, \"Runs O\").",
    "",
  ].join("\n");

  mkdirSync(dir, { recursive: true });
  const write = (file: string, text: string) => writeFileAtomic(join(dir, file), (sink) => sink.write(Buffer.from(text, "utf8")));
  write("report.md", markdown);
  const finite = (_: string, v: unknown) => (typeof v === "number" && !Number.isFinite(v) ? null : v);
  write("report.json", JSON.stringify({ note: input.note, resamples: input.resamples, rows, comparisons, findings, learningCurves, foundations: input.foundations, pretrainingCurves }, finite, 2) + "\n");
  write(
    "metrics.csv",
    csv(
      ["survey", "model", "person_years", ...TABLE_STATISTICS.flatMap(({ key }) => [key, `${key}_lower`, `${key}_upper`]), "excess_log_loss", "excess_log_loss_lower", "excess_log_loss_upper", "valid_mass"],
      rows.map((r) => [
        r.survey, r.model, r.personYears,
        ...TABLE_STATISTICS.flatMap(({ key }) => [r.intervals[key].estimate, r.intervals[key].lower, r.intervals[key].upper]),
        r.excessLogLoss.estimate, r.excessLogLoss.lower, r.excessLogLoss.upper, r.validMass,
      ]),
    ),
  );
  write(
    "comparisons.csv",
    csv(
      ["survey", "question", "a", "b", "statistic", "difference", "lower", "upper", "verdict", ...(pooled ? runs.map((run) => `difference_${run.replace(/[^a-z0-9]+/gi, "_")}`) : [])],
      comparisons.map((c) => [c.survey, c.question, c.a, c.b, c.statistic, c.difference.estimate, c.difference.lower, c.difference.upper, c.verdict, ...(c.perRun ?? []).map((r) => r.estimate)]),
    ),
  );
  write("learning-curves.csv", csv(["survey", "model", "step", "valid_loss"], learningCurves.flatMap((c) => c.validation.map((v) => [c.survey, c.model, v.step, v.loss]))));
  write("pretraining-curves.csv", csv(["foundation", "step", "window_mean_loss"], pretrainingCurves.flatMap((c) => c.points.map((p) => [c.foundation, p.step, p.loss]))));
  const html = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>labor-llm experiment</title>
${REPORT_STYLE}</head>
<body>
<h1>labor-llm experiment</h1>
<p class="note">${escapeHtml(input.note)}</p>
${pooled ? `<p class="note">${escapeHtml(poolingNote)}</p>\n` : ""}<p class="note">Intervals: 95% bootstrap by person (${input.resamples} resamples); paired differences resample both models together. Log losses in nats per person-year; lower is better.</p>
<h2>Findings</h2>
<ul>${findings.map((f) => `<li>${escapeHtml(f)}</li>`).join("\n")}</ul>
<h2>Paired comparisons</h2>
${table(comparisonHeaders, comparisonRows)}
${surveys
  .map((survey) => `<h2>${escapeHtml(survey)}</h2>
${table(tableHeaders, tableRows(survey))}
${perplexityChart(metricsBySurvey.get(survey)!)}
<h3>Calibration (${escapeHtml(survey)})</h3>
${calibrationCharts(metricsBySurvey.get(survey)!)}`)
  .join("\n")}
<h2>Learning curves</h2>
${learningCurveChart(learningCurves)}
${table(curveHeaders, curveRows)}
${pretrainingCurves.length > 0 ? `<h2>Foundations</h2>\n${pretrainingChart(pretrainingCurves)}\n` : ""}</body></html>
`;
  write("report.html", html);
  return { dir, rows, comparisons, findings, learningCurves, pretrainingCurves, markdown };
}
