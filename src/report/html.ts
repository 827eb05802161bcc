/**
 * A self-contained HTML report (no scripts, no external files: viewable offline): the summary table, a
 * perplexity bar chart, reliability diagrams (top-1, all candidates on log axes, stay/move, labour force) as
 * inline SVG, and perplexity by group.
 */
import type { Calibration, ModelMetrics } from "../score/metrics.js";
import { GROUP_DIMENSIONS, groupRows, SUMMARY_COLUMNS, summaryRows } from "./tables.js";

export const PALETTE = ["#1b6ca8", "#d1495b", "#2e933c", "#edae49", "#6a4c93", "#00798c", "#8d6a9f", "#30343f", "#e07a5f", "#3d405b"];

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]!);
}

export function table(headers: string[], rows: string[][]): string {
  const head = headers.map((h) => `<th>${escapeHtml(h)}</th>`).join("");
  const body = rows.map((row) => `<tr>${row.map((cell, i) => (i === 0 ? `<th>${escapeHtml(cell)}</th>` : `<td>${escapeHtml(cell)}</td>`)).join("")}</tr>`).join("\n");
  return `<table><thead><tr>${head}</tr></thead><tbody>\n${body}\n</tbody></table>`;
}

function formatNumber(v: number): string {
  if (!Number.isFinite(v)) return "–";
  if (Math.abs(v) >= 1e6) return v.toExponential(2);
  return v >= 100 ? v.toFixed(0) : v.toFixed(2);
}

function niceMax(value: number): number {
  if (!(value > 0)) return 1;
  const power = Math.pow(10, Math.floor(Math.log10(value)));
  for (const step of [1, 2, 2.5, 5, 10]) if (step * power >= value) return step * power;
  return 10 * power;
}

/** Grouped horizontal bars: perplexity (all person-years) and on transitions, one colour per model. */
export function perplexityChart(metrics: readonly ModelMetrics[]): string {
  const panels: { title: string; value: (m: ModelMetrics) => number }[] = [
    { title: "Perplexity (all person-years)", value: (m) => m.perplexity },
    { title: "Perplexity (transitions only)", value: (m) => m.transitionPerplexity },
  ];
  const barHeight = 18;
  // Wide enough for the longest model name (~7 px per character at 12 px sans-serif).
  const labelWidth = Math.max(150, 10 + 7 * Math.max(...metrics.map((m) => m.model.length)));
  const plotWidth = 300;
  const panelWidth = labelWidth + plotWidth + 70;
  const height = 40 + metrics.length * (barHeight + 6) + 30;
  const svgs = panels.map(({ title, value }) => {
    const finite = metrics.map(value).filter((v) => Number.isFinite(v) && v > 0);
    // Perplexities ≥ 1; a log axis from 1 when they span more than a factor of 20 (e.g. an untrained LLM).
    const log = finite.length > 0 && Math.max(...finite) / Math.min(...finite) > 20;
    const max = log ? Math.pow(10, Math.ceil(Math.log10(Math.max(10, ...finite)))) : niceMax(Math.max(0, ...finite));
    const position = (v: number) => (log ? Math.log10(Math.max(1, v)) / Math.log10(max) : v / max) * plotWidth;
    const parts: string[] = [`<text x="${panelWidth / 2}" y="18" text-anchor="middle" font-weight="bold">${escapeHtml(title)}${log ? " (log scale)" : ""}</text>`];
    metrics.forEach((m, i) => {
      const y = 34 + i * (barHeight + 6);
      const v = value(m);
      const w = Number.isFinite(v) ? position(v) : 0;
      parts.push(`<text x="${labelWidth - 6}" y="${y + barHeight * 0.7}" text-anchor="end">${escapeHtml(m.model)}</text>`);
      parts.push(`<rect x="${labelWidth}" y="${y}" width="${w.toFixed(1)}" height="${barHeight}" fill="${PALETTE[i % PALETTE.length]}"/>`);
      parts.push(`<text x="${labelWidth + w + 4}" y="${y + barHeight * 0.7}">${formatNumber(v)}</text>`);
    });
    const axisY = 34 + metrics.length * (barHeight + 6) + 2;
    parts.push(`<line x1="${labelWidth}" y1="${axisY}" x2="${labelWidth + plotWidth}" y2="${axisY}" stroke="#555"/>`);
    const ticks = log ? Array.from({ length: Math.round(Math.log10(max)) + 1 }, (_, k) => Math.pow(10, k)) : [0, 0.25, 0.5, 0.75, 1].map((f) => f * max);
    const shown = log && ticks.length > 7 ? ticks.filter((_, k) => k % Math.ceil(ticks.length / 6) === 0) : ticks;
    for (const t of shown) {
      const x = labelWidth + position(t);
      parts.push(`<line x1="${x}" y1="${axisY}" x2="${x}" y2="${axisY + 4}" stroke="#555"/><text x="${x}" y="${axisY + 16}" text-anchor="middle" font-size="10">${log ? `1e${Math.round(Math.log10(t))}` : formatNumber(t)}</text>`);
    }
    return `<svg xmlns="http://www.w3.org/2000/svg" width="${panelWidth}" height="${height}" font-family="sans-serif" font-size="12">${parts.join("")}</svg>`;
  });
  return `<div class="charts">${svgs.join("\n")}</div>`;
}

/**
 * Reliability diagram: mean predicted probability (x) against observed frequency (y) per bin, one line per
 * model, the diagonal for perfect calibration; marker area grows with the bin's count. `log`: log-log axes.
 */
export function reliabilityDiagram(title: string, metrics: readonly ModelMetrics[], pick: (m: ModelMetrics) => Calibration, log = false): string {
  const size = 260;
  const margin = { left: 46, right: 12, top: 26, bottom: 36 };
  const width = margin.left + size + margin.right;
  const height = margin.top + size + margin.bottom;
  const logMin = -5;
  const scale = (p: number): number => {
    if (!log) return p;
    const clamped = Math.max(Math.pow(10, logMin), p);
    return (Math.log10(clamped) - logMin) / -logMin;
  };
  const px = (p: number) => margin.left + scale(p) * size;
  const py = (p: number) => margin.top + size - scale(p) * size;
  const parts: string[] = [
    `<text x="${width / 2}" y="16" text-anchor="middle" font-weight="bold">${escapeHtml(title)}</text>`,
    `<rect x="${margin.left}" y="${margin.top}" width="${size}" height="${size}" fill="none" stroke="#999"/>`,
    `<line x1="${px(log ? 1e-5 : 0)}" y1="${py(log ? 1e-5 : 0)}" x2="${px(1)}" y2="${py(1)}" stroke="#aaa" stroke-dasharray="4 3"/>`,
  ];
  const ticks = log ? [1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1] : [0, 0.25, 0.5, 0.75, 1];
  for (const t of ticks) {
    const label = log ? `1e${Math.round(Math.log10(t))}` : String(t);
    parts.push(`<text x="${px(t)}" y="${margin.top + size + 14}" text-anchor="middle" font-size="10">${label}</text>`);
    parts.push(`<text x="${margin.left - 4}" y="${py(t) + 3}" text-anchor="end" font-size="10">${label}</text>`);
  }
  parts.push(`<text x="${margin.left + size / 2}" y="${height - 4}" text-anchor="middle" font-size="11">predicted probability</text>`);
  parts.push(`<text transform="translate(11 ${margin.top + size / 2}) rotate(-90)" text-anchor="middle" font-size="11">observed frequency</text>`);
  metrics.forEach((m, i) => {
    const colour = PALETTE[i % PALETTE.length];
    const bins = pick(m).bins.filter((b) => b.count > 0);
    const total = bins.reduce((a, b) => a + b.count, 0);
    const points = bins.map((b) => `${px(b.meanPredicted).toFixed(1)},${py(log ? Math.max(b.frequency, 1e-5) : b.frequency).toFixed(1)}`);
    if (points.length > 1) parts.push(`<polyline points="${points.join(" ")}" fill="none" stroke="${colour}" stroke-width="1.6"/>`);
    bins.forEach((b, k) => {
      const [x, y] = points[k].split(",");
      const r = 2 + 5 * Math.sqrt(b.count / Math.max(1, total));
      parts.push(`<circle cx="${x}" cy="${y}" r="${r.toFixed(1)}" fill="${colour}" fill-opacity="0.8"><title>${escapeHtml(m.model)}: ${b.count} in [${b.lower}, ${b.upper}), mean p ${b.meanPredicted.toPrecision(3)}, frequency ${b.frequency.toPrecision(3)}</title></circle>`);
    });
  });
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="12">${parts.join("")}</svg>`;
}

export function legend(metrics: readonly ModelMetrics[]): string {
  return `<p class="legend">${metrics.map((m, i) => `<span><i style="background:${PALETTE[i % PALETTE.length]}"></i>${escapeHtml(m.model)}</span>`).join(" ")}</p>`;
}

/** The stylesheet of every report page. */
export const REPORT_STYLE = `<style>
body { font-family: sans-serif; margin: 24px; color: #222; max-width: 1200px; }
table { border-collapse: collapse; margin: 8px 0 16px; font-size: 13px; }
th, td { border: 1px solid #ccc; padding: 3px 8px; text-align: right; }
thead th { background: #f0f0f0; }
tbody th { text-align: left; font-weight: normal; }
.charts { display: flex; flex-wrap: wrap; gap: 12px; }
.legend span { margin-right: 14px; } .legend i { display: inline-block; width: 12px; height: 12px; margin-right: 4px; vertical-align: -1px; }
.note { color: #555; font-size: 13px; max-width: 900px; }
</style>`;

/** The four reliability diagrams of a set of models, with their legend. */
export function calibrationCharts(metrics: readonly ModelMetrics[]): string {
  return `${legend(metrics)}
<div class="charts">
${reliabilityDiagram("Top-1 prediction", metrics, (m) => m.calibrationTop1)}
${reliabilityDiagram("All candidates (log axes)", metrics, (m) => m.calibrationAll, true)}
${reliabilityDiagram("Stay vs move", metrics, (m) => m.stay.calibration)}
${reliabilityDiagram("Unemployed or NILF", metrics, (m) => m.laborForce.calibration)}
</div>`;
}

export function metricsHtml(metrics: readonly ModelMetrics[], title = "labor-llm evaluation", note = ""): string {
  const groups = GROUP_DIMENSIONS.map((dimension) => {
    const { headers, rows } = groupRows(metrics, dimension);
    return `<h3>Perplexity by ${dimension}</h3>\n${table(headers, rows)}`;
  }).join("\n");
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)}</title>
${REPORT_STYLE}</head>
<body>
<h1>${escapeHtml(title)}</h1>
${note ? `<p class="note">${escapeHtml(note)}</p>` : ""}
<h2>Summary</h2>
${table(
  SUMMARY_COLUMNS.map((c) => c.header),
  summaryRows(metrics),
)}
<p class="note">PPL: perplexity of the true outcome, probabilities normalised over the valid outcomes (raw: the model's own mass on the exact title text). Lower is better; on synthetic data the oracle is the floor. Stay: P(outcome = previous outcome). LF: P(unemployed or not in labor force).</p>
<h2>Perplexity</h2>
${perplexityChart(metrics)}
<h2>Calibration</h2>
${calibrationCharts(metrics)}
<h2>By group</h2>
${groups}
</body></html>
`;
}
