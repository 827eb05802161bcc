/**
 * `npm run bench:micro`: every CPU kernel's ops/s with benny's margin of error, on every ISA path this CPU
 * runs (each forced in turn with cpu.setIsa, as `--isa` and the op suite do), kernels called on the addon
 * directly (no backend, no JS between calls). One benny suite per kernel, one case per ISA path, so each
 * chart and each `percentSlower` compares the paths of one kernel.
 *
 * Writes, under bench/results/micro/ (or --out DIR):
 *   benny/<kernel>.json, .csv, .chart.html   benny's own files, one set per kernel;
 *   micro.json, micro.csv                    every case in one table, with GFLOP/s (matmuls, attention)
 *                                            and the share of this machine's ceiling (bench/ceilings.ts);
 *   README.md                                that table, the machine, the commit, the load average.
 *
 * GFLOP/s come two ways: from benny's ops/s (wall clock), and per CPU-second (process CPU time over the
 * case's calls, spread over the threads, as `npm run bench` reports kernels): the ceilings are per
 * CPU-second, so the ratio is taken on that rate, which other processes on a shared machine lower less.
 *
 * Usage: node dist/bench/micro.js [--isa avx2,scalar] [--out DIR] [--note TEXT] [name filter …] (--note: a line
 * on the run's conditions for README.md and micro.json, e.g. what else ran); BENCH_THREADS (default 2),
 * BENCH_MICRO_MAX_TIME (seconds per case, default 1). Shapes are those of the `small` model (d = 512, 8 heads
 * of 64, ffn 1376, vocab 32,000) and of the training bench, sized so the whole suite takes a few minutes.
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { add, configure, cycle, save, suite } from "benny";
import type { CaseResult } from "benny/lib/internal/common-types.js";
import { loadNative, type CpuIsa, type NativeCpuOps } from "../src/engine/native.js";
import { ceilingKindFor, measureCeilings, type CeilingKind } from "./ceilings.js";

const THREADS = Number(process.env.BENCH_THREADS ?? 2);
const MAX_SECONDS_PER_CASE = Number(process.env.BENCH_MICRO_MAX_TIME ?? 1);
const here = dirname(fileURLToPath(import.meta.url));
const REPO = resolve(here, "..", "..");

const cpu: NativeCpuOps = loadNative().cpu;

// ---- inputs ----

/** Deterministic values in [-scale, scale) (an LCG: Math.random would make runs differ). */
function values(length: number, seed: number, scale = 1): Float32Array {
  const out = new Float32Array(length);
  let state = seed >>> 0;
  for (let i = 0; i < length; i++) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    out[i] = (state / 2 ** 32 * 2 - 1) * scale;
  }
  return out;
}

/** `values` rounded to a 16-bit float dtype by the addon's own conversion. */
function values16(length: number, seed: number, dtype: "bf16" | "f16", scale = 1): Uint16Array {
  const out = new Uint16Array(length);
  cpu.convert(values(length, seed, scale), "f32", out, dtype, length);
  return out;
}

const ints = (length: number, value: (i: number) => number) => Int32Array.from({ length }, (_, i) => value(i));

// ---- kernels ----

interface MicroKernel {
  /** The suite's name: op, role, shape, dtype. */
  name: string;
  /** Floating-point operations of one call (matmuls: 2·M·N·K; attention: its products), for GFLOP/s. */
  flops?: number;
  /** The dtype of the product's b operand, which picks the ceiling (ceilingKindFor). */
  ceilingDtype?: "f32" | "bf16";
  /** Allocates the inputs (once per kernel, freed after its suite); returns one call for a given ISA path. */
  setUp(): (isa: CpuIsa) => () => void;
}

interface MatmulShape {
  name: string;
  m: number;
  n: number;
  k: number;
  bDtype: "f32" | "bf16";
  /** Default x[M,K]·W[N,K]ᵀ (transB); the backward products store b as [K, N] or read a as [K, M]. */
  transA?: boolean;
  transB?: boolean;
  accumulate?: boolean;
}

function matmulKernel(shape: MatmulShape): MicroKernel {
  const { m, n, k, bDtype, transA = false, transB = true, accumulate = false } = shape;
  return {
    name: `matmul ${shape.name} ${m}×${n}×${k} ${bDtype === "bf16" ? "bf16 b" : "f32"}`,
    flops: 2 * m * n * k,
    ceilingDtype: bDtype,
    setUp() {
      const a = values(m * k, 1);
      const b = bDtype === "f32" ? values(n * k, 2, 0.05) : values16(n * k, 2, "bf16", 0.05);
      const out = new Float32Array(m * n);
      return (isa) => {
        // A bf16 b is packed once for the AMX path, as the model packs its weights; null on every other path.
        cpu.setIsa(isa);
        const packed = bDtype === "bf16" ? cpu.packWeight(b as Uint16Array, n, k, transB, isa) : null;
        return () => cpu.matmul(a, b, bDtype, out, 1, m, n, k, transA, transB, false, accumulate, 1, packed);
      };
    },
  };
}

// The `small` model (src/model/presets.ts) and the training bench's model (bench/training.ts: d = 256).
const D = 512, HEADS = 8, HEAD_DIM = 64, FFN = 1376, VOCAB = 32000;
const TOKENS = 2048, SEQUENCE = 256;  // a training batch: 8 sequences of 256 tokens, packed
const LOGIT_ROWS = 128;               // logits are computed in 128-row chunks (src/model/llama-train.ts)
const LORA_RANK = 16;
const SCORING_ROWS = 4;               // a few trie nodes scored against a weight: the few-row kernels (M ≤ 16)
const ELEMENTS = 1 << 22;             // AdamW and conversions: a 4M-element parameter group

const MATMULS: MatmulShape[] = [
  // Big square-ish forward products: where the ceiling is within reach.
  { name: "forward x·Wᵀ", m: 1024, n: 1024, k: 1024, bDtype: "f32" },
  { name: "forward x·Wᵀ", m: 1024, n: 1024, k: 1024, bDtype: "bf16" },
  // Backward products with W stored [K, N] (dX = dY·W), and the weight gradient dW += dYᵀ·X (a read as [K, M]).
  { name: "backward dX = dY·W [K,N]", m: 1024, n: 1024, k: 1024, bDtype: "f32", transB: false },
  { name: "backward dX = dY·W [K,N]", m: 1024, n: 1024, k: 1024, bDtype: "bf16", transB: false },
  { name: "backward dW += dYᵀ·X", m: 1024, n: 1024, k: 1024, bDtype: "f32", transA: true, transB: false, accumulate: true },
  // The training bench's lm_head backward: long K over a small output (K split across threads).
  { name: "lm_head dX = dZ·W [K,N]", m: LOGIT_ROWS, n: 256, k: VOCAB, bDtype: "f32", transB: false },
  { name: "lm_head dX = dZ·W [K,N]", m: LOGIT_ROWS, n: 256, k: VOCAB, bDtype: "bf16", transB: false },
  // LoRA rank 16 on a d = 512 projection over a batch: u = x·Aᵀ, y += u·Bᵀ, dA += duᵀ·x, du = dy·B.
  { name: "LoRA u = x·Aᵀ", m: TOKENS, n: LORA_RANK, k: D, bDtype: "f32" },
  { name: "LoRA y += u·Bᵀ", m: TOKENS, n: D, k: LORA_RANK, bDtype: "f32", accumulate: true },
  { name: "LoRA dA += duᵀ·x", m: LORA_RANK, n: D, k: TOKENS, bDtype: "f32", transA: true, transB: false, accumulate: true },
  { name: "LoRA du = dy·B [K,N]", m: TOKENS, n: LORA_RANK, k: D, bDtype: "f32", transB: false },
  // Logits of a chunk of rows against the lm_head: the demo models' (d = 128, f32: 16 MB, a "small B" of
  // gemm_blocked.h, one 48-row block per task) and the `small` model's (64 MB: four strips per block).
  { name: "logits x·Wᵀ lm_head d=128", m: 256, n: VOCAB, k: 128, bDtype: "f32" },
  { name: "logits x·Wᵀ lm_head", m: LOGIT_ROWS, n: VOCAB, k: D, bDtype: "f32" },
  // Scoring: a few query rows against the lm_head (32 MB in bf16: memory-bound) and a layer weight (in cache).
  { name: "few rows x·Wᵀ lm_head", m: SCORING_ROWS, n: VOCAB, k: D, bDtype: "bf16" },
  { name: "few rows x·Wᵀ lm_head", m: SCORING_ROWS, n: VOCAB, k: D, bDtype: "f32" },
  { name: "few rows x·Wᵀ gate/up", m: SCORING_ROWS, n: FFN, k: D, bDtype: "bf16" },
];

/** Causal attention over the packed batch: each token sees its own sequence up to itself. */
function attentionInputs() {
  const width = TOKENS * HEADS * HEAD_DIM;
  const keyStart = ints(TOKENS, (i) => i - (i % SEQUENCE));
  const keyEnd = ints(TOKENS, (i) => i + 1);
  return {
    q: values(width, 11), k: values(width, 12), v: values(width, 13), out: new Float32Array(width),
    lse: new Float32Array(TOKENS * HEADS), keyStart, keyEnd, scale: 1 / Math.sqrt(HEAD_DIM),
  };
}
/** (query, key) pairs the causal mask leaves: Σ over sequences of 1 + 2 + … + SEQUENCE. */
const ATTENTION_PAIRS = SEQUENCE * (SEQUENCE + 1) / 2 * (TOKENS / SEQUENCE);
const ATTENTION_SHAPE = `${TOKENS / SEQUENCE}×${SEQUENCE} tokens causal, ${HEADS}×${HEAD_DIM}`;

/** Inverse RoPE frequencies θ^(-2j/headDim), Llama-2 base. */
const invFreq = () => Float32Array.from({ length: HEAD_DIM / 2 }, (_, j) => 10000 ** (-2 * j / HEAD_DIM));

const KERNELS: MicroKernel[] = [
  ...MATMULS.map(matmulKernel),
  {
    // QKᵀ and P·V: 2 products of headDim-long dot products per (query, key) pair and head.
    name: `attention forward (training, with lse) ${ATTENTION_SHAPE}`,
    flops: 4 * HEAD_DIM * ATTENTION_PAIRS * HEADS,
    ceilingDtype: "f32",
    setUp() {
      const x = attentionInputs();
      return () => () => cpu.attentionForTraining(x.q, x.k, x.v, x.keyStart, x.keyEnd, x.out, TOKENS, TOKENS, HEADS, HEADS,
        HEAD_DIM, x.scale, x.lse);
    },
  },
  {
    // S = QKᵀ recomputed, dV = Pᵀ·dO, dP = dO·Vᵀ, dQ = dS·K, dK = dSᵀ·Q: 5 products per pair and head.
    name: `attention backward ${ATTENTION_SHAPE}`,
    flops: 10 * HEAD_DIM * ATTENTION_PAIRS * HEADS,
    ceilingDtype: "f32",
    setUp() {
      const x = attentionInputs();
      cpu.attentionForTraining(x.q, x.k, x.v, x.keyStart, x.keyEnd, x.out, TOKENS, TOKENS, HEADS, HEADS, HEAD_DIM, x.scale, x.lse);
      const dOut = values(x.out.length, 14);
      const dq = new Float32Array(x.q.length), dk = new Float32Array(x.k.length), dv = new Float32Array(x.v.length);
      return () => () => cpu.attentionBackward(x.q, x.k, x.v, x.out, dOut, x.lse, x.keyStart, x.keyEnd, dq, dk, dv,
        TOKENS, TOKENS, HEADS, HEADS, HEAD_DIM, x.scale);
    },
  },
  {
    name: `RMSNorm forward ${TOKENS}×${D}`,
    setUp() {
      const x = values(TOKENS * D, 21), weight = values(D, 22), out = new Float32Array(TOKENS * D);
      return () => () => cpu.rmsnorm(x, weight, "f32", out, TOKENS, D, 1e-5);
    },
  },
  {
    name: `RMSNorm backward ${TOKENS}×${D}`,
    setUp() {
      const x = values(TOKENS * D, 21), weight = values(D, 22), dOut = values(TOKENS * D, 23);
      const dx = new Float32Array(TOKENS * D), dWeight = new Float32Array(D);
      return () => () => cpu.rmsnormBackward(x, weight, "f32", dOut, dx, dWeight, TOKENS, D, 1e-5);
    },
  },
  {
    name: `SwiGLU forward ${TOKENS}×${FFN}`,
    setUp() {
      const gate = values(TOKENS * FFN, 31, 4), up = values(TOKENS * FFN, 32), out = new Float32Array(TOKENS * FFN);
      return () => () => cpu.swiglu(gate, up, out, TOKENS * FFN);
    },
  },
  {
    name: `SwiGLU backward ${TOKENS}×${FFN}`,
    setUp() {
      const gate = values(TOKENS * FFN, 31, 4), up = values(TOKENS * FFN, 32), dOut = values(TOKENS * FFN, 33);
      const dGate = new Float32Array(TOKENS * FFN), dUp = new Float32Array(TOKENS * FFN);
      return () => () => cpu.swigluBackward(gate, up, dOut, dGate, dUp, TOKENS * FFN);
    },
  },
  {
    name: `RoPE forward ${TOKENS}×${HEADS}×${HEAD_DIM}`,
    setUp() {
      const x = values(TOKENS * HEADS * HEAD_DIM, 41), out = new Float32Array(x.length);
      const positions = ints(TOKENS, (i) => i % SEQUENCE), frequencies = invFreq();
      return () => () => cpu.rope(x, positions, frequencies, out, TOKENS, HEADS, HEAD_DIM);
    },
  },
  {
    name: `RoPE backward ${TOKENS}×${HEADS}×${HEAD_DIM}`,
    setUp() {
      const dOut = values(TOKENS * HEADS * HEAD_DIM, 42), dx = new Float32Array(dOut.length);
      const positions = ints(TOKENS, (i) => i % SEQUENCE), frequencies = invFreq();
      return () => () => cpu.ropeBackward(dOut, positions, frequencies, dx, TOKENS, HEADS, HEAD_DIM);
    },
  },
  {
    // Scoring's full-vocabulary normaliser.
    name: `log-softmax ${LOGIT_ROWS}×${VOCAB}`,
    setUp() {
      const logits = values(LOGIT_ROWS * VOCAB, 51, 8), out = new Float32Array(logits.length);
      return () => () => cpu.logSoftmax(logits, out, LOGIT_ROWS, VOCAB);
    },
  },
  {
    // Training's loss with its gradient (into a separate buffer, so every call reads the same logits).
    name: `cross-entropy with dLogits ${LOGIT_ROWS}×${VOCAB}`,
    setUp() {
      const logits = values(LOGIT_ROWS * VOCAB, 51, 8), dLogits = new Float32Array(logits.length);
      const targets = ints(LOGIT_ROWS, (i) => (i * 7919) % VOCAB), losses = new Float32Array(LOGIT_ROWS);
      return () => () => cpu.crossEntropy(logits, targets, losses, dLogits, LOGIT_ROWS, VOCAB, 1 / LOGIT_ROWS);
    },
  },
  {
    name: `AdamW step ${ELEMENTS} parameters`,
    setUp() {
      const param = values(ELEMENTS, 61, 0.05), grad = values(ELEMENTS, 62, 1e-3);
      const m = new Float32Array(ELEMENTS), v = new Float32Array(ELEMENTS);
      return () => () => cpu.adamw(param, grad, m, v, ELEMENTS, 1e-4, 0.9, 0.999, 1e-8, 0.01, 10);
    },
  },
  ...(["bf16", "f16"] as const).map((dtype): MicroKernel => ({
    name: `widen ${dtype} → f32 ${ELEMENTS} elements`,
    setUp() {
      const source = values16(ELEMENTS, 71, dtype), out = new Float32Array(ELEMENTS);
      return () => () => cpu.convert(source, dtype, out, "f32", ELEMENTS);
    },
  })),
];

// ---- running ----

interface CaseRow {
  kernel: string;
  isa: CpuIsa;
  opsPerSecond: number;
  /** benny's margin: the relative margin of error of the mean, in % (95% confidence). */
  marginPercent: number;
  samples: number;
  /** From ops/s (wall clock). */
  gflopsWall?: number;
  /** FLOPs per CPU-second of each thread, over all the case's calls (benchmark.js calibration included). */
  gflopsPerCpuSecond?: number;
  ceiling?: CeilingKind;
  /** gflopsPerCpuSecond as a share of the ceiling's GFLOP/s. */
  ceilingShare?: number;
}

function parseArguments(argv: string[]): { isas?: CpuIsa[]; out: string; note?: string; filters: string[] } {
  let isas: CpuIsa[] | undefined;
  let note: string | undefined;
  let out = join(REPO, "bench", "results", "micro");
  const filters: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === "--isa") isas = argv[++i].split(",") as CpuIsa[];
    else if (argv[i] === "--out") out = resolve(argv[++i]);
    else if (argv[i] === "--note") note = argv[++i];
    else filters.push(argv[i].toLowerCase());
  }
  return { isas, out, note, filters };
}

const fileName = (kernel: string) => kernel.toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-|-$/g, "");
const fmt = (x: number | undefined, digits = 1) => (x !== undefined && Number.isFinite(x) ? x.toFixed(digits) : "–");

/** Runs one kernel's suite (one case per ISA); returns its rows. */
async function runKernel(kernel: MicroKernel, isas: CpuIsa[], out: string, ceilings: Partial<Record<CeilingKind, number>>): Promise<CaseRow[]> {
  const callFor = kernel.setUp();
  const calls = new Map<string, number>();
  const cases = isas.map((isa) => {
    const call = callFor(isa);
    calls.set(isa, 0);
    // The ISA is selected inside each call (a flag store in the addon): benny gives no hook at a case's start.
    return add(isa, () => {
      cpu.setIsa(isa);
      call();
      calls.set(isa, (calls.get(isa) as number) + 1);
    });
  });
  // CPU time is attributed to a case from one snapshot to the next: the first is taken once the suite is
  // built (after benny's one trial call of every case), each cycle event ends a case and starts the next.
  let snapshot = process.cpuUsage();
  const startCounting = async () => <S>(suiteObject: S): S => {
    for (const isa of calls.keys()) calls.set(isa, 0);
    snapshot = process.cpuUsage();
    return suiteObject;
  };
  const rows: CaseRow[] = [];
  const folder = join(out, "benny");
  await suite(kernel.name,
    configure({ cases: { minSamples: 5, maxTime: MAX_SECONDS_PER_CASE }, minDisplayPrecision: 2 }),
    ...cases,
    startCounting,
    cycle((result: CaseResult) => {
      const used = process.cpuUsage(snapshot);
      snapshot = process.cpuUsage();
      const isa = result.name as CpuIsa;
      const cpuSecondsPerCall = (used.user + used.system) / 1e6 / Math.max(1, calls.get(isa) as number);
      const row: CaseRow = { kernel: kernel.name, isa, opsPerSecond: result.ops, marginPercent: result.margin, samples: result.samples };
      if (kernel.flops !== undefined) {
        row.gflopsWall = kernel.flops * result.ops / 1e9;
        row.gflopsPerCpuSecond = kernel.flops / (cpuSecondsPerCall / THREADS) / 1e9;
        row.ceiling = ceilingKindFor(isa, kernel.ceilingDtype ?? "f32", ceilings);
        const peak = row.ceiling && ceilings[row.ceiling];
        if (peak) row.ceilingShare = row.gflopsPerCpuSecond / peak;
      }
      rows.push(row);
      console.log(`  ${isa.padEnd(7)} ${fmt(row.opsPerSecond, 2).padStart(10)} ops/s ±${fmt(row.marginPercent, 2)}% (${row.samples} samples)` +
        (row.gflopsWall !== undefined ? `  ${fmt(row.gflopsWall)} GFLOP/s wall, ${fmt(row.gflopsPerCpuSecond)} per CPU-second` +
          (row.ceilingShare !== undefined ? `, ${fmt(100 * row.ceilingShare, 0)}% of ${row.ceiling}` : "") : ""));
      return undefined;  // benny would otherwise redraw its own progress block
    }),
    save({ file: fileName(kernel.name), folder, format: "json", details: true }),
    save({ file: fileName(kernel.name), folder, format: "csv", details: true }),
    save({ file: fileName(kernel.name), folder, format: "chart.html" }),
  );
  return rows;
}

function machine(): { cpu: string; isas: string; threads: number; commit: string } {
  let commit = "unknown";
  try {
    commit = execFileSync("git", ["rev-parse", "--short", "HEAD"], { cwd: REPO, encoding: "utf8" }).trim();
  } catch {
    // not a git checkout
  }
  const info = cpu.isaInfo();
  const features = Object.entries(info.features).filter(([, on]) => on).map(([name]) => name).join(" ");
  return { cpu: cpus()[0]?.model ?? "unknown CPU", isas: `${info.available.join(", ")} (features: ${features})`, threads: THREADS, commit };
}

function writeResults(out: string, rows: CaseRow[], ceilings: Partial<Record<CeilingKind, number>>, started: Date,
  load: { before: number[]; after: number[] }, note: string | undefined): void {
  const host = machine();
  const header = ["kernel", "isa", "opsPerSecond", "marginPercent", "samples", "gflopsWall", "gflopsPerCpuSecond", "ceiling", "ceilingShare"] as const;
  const csvField = (value: unknown) => {
    const text = value === undefined ? "" : String(value);
    return /[",\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
  };
  writeFileSync(join(out, "micro.csv"), [header.join(","), ...rows.map((row) => header.map((key) => csvField(row[key])).join(","))].join("\n") + "\n");
  writeFileSync(join(out, "micro.json"), JSON.stringify({ date: started.toISOString(), machine: host, note, loadAverage: load,
    ceilingsGflops: ceilings, maxSecondsPerCase: MAX_SECONDS_PER_CASE, results: rows }, null, 2) + "\n");
  const loadText = (l: number[]) => l.map((x) => x.toFixed(2)).join(" / ");
  const lines = [
    "# CPU kernel micro-benchmarks",
    "",
    `\`npm run bench:micro\` (bench/micro.ts, benny 3.7.1), ${started.toISOString().slice(0, 10)} at ${host.commit}, ${host.threads} threads.`,
    `Machine: ${host.cpu}, ${cpus().length} vCPUs; kernel paths ${host.isas}.`,
    `Load average (1/5/15 min) before ${loadText(load.before)}, after ${loadText(load.after)}: the machine may have been ` +
      "shared with other work, so read each rate with its margin of error (benny's, 95% confidence over its samples).",
    ...(note ? [`Conditions: ${note}`] : []),
    `Ceilings (register-only micro-loops, GFLOP/s per CPU-second, best of 3 before and after): ${
      Object.entries(ceilings).map(([kind, gflops]) => `${kind} ${fmt(gflops)}`).join(", ")}.`,
    "GFLOP/s wall comes from ops/s; per CPU-second from the process CPU time over the case's calls spread over the threads " +
      "(comparable to the ceilings); the share of the ceiling is taken on the latter.",
    "benny's own JSON, CSV and chart of each kernel are in benny/; every case in one table: micro.json, micro.csv.",
    "",
    "| kernel | ISA | ops/s | ± | GFLOP/s wall | GFLOP/s per CPU-s | % of ceiling |",
    "|---|---|---:|---:|---:|---:|---:|",
    ...rows.map((row) => `| ${row.kernel} | ${row.isa} | ${fmt(row.opsPerSecond, 2)} | ${fmt(row.marginPercent, 1)}% | ${fmt(row.gflopsWall)} | ` +
      `${fmt(row.gflopsPerCpuSecond)} | ${row.ceilingShare !== undefined ? `${fmt(100 * row.ceilingShare, 0)}% ${row.ceiling}` : "–"} |`),
    "",
  ];
  writeFileSync(join(out, "README.md"), lines.join("\n"));
}

async function main(): Promise<void> {
  const { isas: wanted, out, note, filters } = parseArguments(process.argv.slice(2));
  const available = cpu.isaInfo().available;
  const unknown = (wanted ?? []).filter((isa) => !available.includes(isa));
  if (unknown.length) throw new Error(`bench:micro: ISA ${unknown.join(", ")} not available on this CPU; available: ${available.join(", ")}`);
  const isas = wanted ?? available;
  const kernels = KERNELS.filter((kernel) => filters.length === 0 || filters.some((f) => kernel.name.toLowerCase().includes(f)));
  cpu.setThreads(THREADS);
  const started = new Date();
  const load = { before: loadavg(), after: [] as number[] };
  console.log(`# labor-llm kernel micro-benchmarks (${started.toISOString()}; ${THREADS} threads; paths ${isas.join(", ")}; ` +
    `${kernels.length} kernels; up to ${MAX_SECONDS_PER_CASE} s per case)`);
  const before = measureCeilings(3);
  console.log(`ceilings, GFLOP/s per CPU-second: ${Object.entries(before).map(([kind, gflops]) => `${kind} ${fmt(gflops)}`).join(", ")}`);
  mkdirSync(out, { recursive: true });
  const rows: CaseRow[] = [];
  const original = cpu.isaInfo().selected;
  try {
    for (const kernel of kernels) {
      console.log(`\n${kernel.name}`);
      rows.push(...(await runKernel(kernel, isas, out, before)));
    }
  } finally {
    cpu.setIsa(original);
  }
  // The ceiling of the run: the best of the measurements before and after (a neighbour's load only lowers them).
  const after = measureCeilings(3);
  const ceilings: Partial<Record<CeilingKind, number>> = {};
  for (const [kind, gflops] of Object.entries(before)) ceilings[kind as CeilingKind] = Math.max(gflops, after[kind as CeilingKind] ?? 0);
  for (const row of rows) {
    const peak = row.ceiling && ceilings[row.ceiling];
    if (peak && row.gflopsPerCpuSecond !== undefined) row.ceilingShare = row.gflopsPerCpuSecond / peak;
  }
  load.after = loadavg();
  writeResults(out, rows, ceilings, started, load, note);
  console.log(`\nwrote ${relative(process.cwd(), out) || "."}/{README.md, micro.json, micro.csv, benny/}`);
}

await main();
