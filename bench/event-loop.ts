/**
 * Section 6 of `npm run bench`: how long the JavaScript event loop is held while a `small` model scores
 * (issue 19, "never block the host"). perf_hooks.monitorEventLoopDelay samples the loop every 1 ms while
 * LlmScorer.scorePeople runs; its p50/p99/max are the delays a server embedding the library would add to
 * every other request it handles meanwhile (Node's histogram counts the 1 ms interval itself: an idle loop
 * reads ~1.1 ms). Target: p99 < 20 ms.
 *
 * Run alone: `npx vite-node bench/event-loop.ts [modelDir]` (a `small` model is made in a temp dir when
 * none is given).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import { generateSyntheticPanel } from "../src/data/synthetic.js";
import type { PersonRecord } from "../src/data/panel.js";
import { createCpuBackend } from "../src/engine/cpu/backend.js";
import { initModel } from "../src/model/init.js";
import { loadLlama } from "../src/model/load.js";
import { MODEL_PRESETS } from "../src/model/presets.js";
import { LlmScorer } from "../src/score/llm-scorer.js";
import { Tokenizer } from "../src/text/tokenizer.js";

export interface EventLoopDelay {
  /** Delay percentiles and maximum, milliseconds. */
  p50: number;
  p99: number;
  max: number;
  /** Samples taken (one per 1 ms the loop was free to take one). */
  samples: number;
  /** Wall-clock seconds of the scoring. */
  seconds: number;
  personYears: number;
}

/** `people` short synthetic careers (at most `waves` person-years each), the same for every call. */
export function eventLoopPeople(people = 2, waves = 3): PersonRecord[] {
  const panel = generateSyntheticPanel({ profile: "nlsy79", people: 40, seed: 11 }).panel;
  return panel.people.filter((p) => p.waves.length >= waves).slice(0, people).map((p) => ({ ...p, waves: p.waves.slice(0, waves) }));
}

/** Event-loop delay while `scorer` scores `people` (the scores are returned too, to compare runs). */
export async function measureScoringEventLoop(scorer: LlmScorer, people: readonly PersonRecord[]): Promise<EventLoopDelay & { scores: Float64Array[][] }> {
  const histogram = monitorEventLoopDelay({ resolution: 1 });
  // Let the monitor take its first samples before the work starts (its first tick only sets the clock it
  // measures from: a stretch of blocking before it would go unseen).
  histogram.enable();
  // (a few idle samples: resetting the histogram would restart its clock too).
  await new Promise((resolve) => setTimeout(resolve, 5));
  const start = performance.now();
  const scores = await scorer.scorePeople(people);
  const seconds = (performance.now() - start) / 1000;
  // One more turn of the loop: a sample held back by the last stretch of work is recorded too (without it a
  // call that never yields would show no samples at all).
  await new Promise((resolve) => setTimeout(resolve, 5));
  histogram.disable();
  const ms = (ns: number) => ns / 1e6;
  return {
    p50: ms(histogram.percentile(50)),
    p99: ms(histogram.percentile(99)),
    max: ms(histogram.max),
    samples: histogram.count,
    seconds,
    personYears: scores.reduce((n, person) => n + person.length, 0),
    scores,
  };
}

const fmt = (x: number, digits = 1) => (Number.isFinite(x) ? x.toFixed(digits) : "–");

/**
 * Prints the section's table: the same people scored with the kernels on the JS thread (`offThread: false`,
 * the engine before issue 19) and off it (the default), and whether the two runs' log-probabilities are
 * bit-identical. Returns its ratio line.
 */
export async function benchEventLoop(modelDir: string, threads: number): Promise<string[]> {
  const people = eventLoopPeople(2, 3);
  const tokenizer = Tokenizer.fromDirectory(modelDir);
  const runs: [string, EventLoopDelay & { scores: Float64Array[][] }][] = [];
  for (const [name, offThread] of [["on the JS thread", false], ["off the JS thread", true]] as const) {
    const { model } = loadLlama(modelDir, createCpuBackend({ threads, offThread }));
    runs.push([name, await measureScoringEventLoop(new LlmScorer(model, tokenizer), people)]);
  }
  const identical = runs[0][1].scores.every((person, p) => person.every((wave, w) =>
    wave.every((value, c) => Object.is(value, runs[1][1].scores[p][w][c]))));
  console.log("| small, kernels | person-years | seconds | samples | p50 ms | p99 ms | max ms |");
  console.log("|---|---:|---:|---:|---:|---:|---:|");
  for (const [name, r] of runs) {
    console.log(`| ${name} | ${r.personYears} | ${fmt(r.seconds)} | ${r.samples} | ${fmt(r.p50)} | ${fmt(r.p99)} | ${fmt(r.max)} |`);
  }
  console.log(`log-probabilities of the two runs bit-identical: ${identical ? "yes" : "NO"}`);
  const [before, after] = [runs[0][1], runs[1][1]];
  return [`event-loop delay while small scores (monitorEventLoopDelay, 1 ms resolution): p99 ${fmt(before.p99)} → ${fmt(after.p99)} ms, ` +
    `max ${fmt(before.max)} → ${fmt(after.max)} ms (target p99 < 20 ms); results bit-identical: ${identical ? "yes" : "NO"}`];
}

// Run directly (node dist/bench/event-loop.js [dir], or vite-node bench/event-loop.ts [dir]), not when imported.
const entry = process.argv[1] ?? "";
if (entry === fileURLToPath(import.meta.url) || entry.endsWith("vite-node")) {
  const given = process.argv[2];
  const work = given ? undefined : mkdtempSync(join(tmpdir(), "labor-llm-event-loop-"));
  const dir = given ?? join(work!, "small");
  try {
    if (!given) initModel({ config: MODEL_PRESETS.small, seed: 1, dtype: "f32", outDir: dir });
    for (const line of await benchEventLoop(dir, Number(process.env.BENCH_THREADS ?? 2))) console.log(line);
  } finally {
    if (work) rmSync(work, { recursive: true, force: true });
  }
}
