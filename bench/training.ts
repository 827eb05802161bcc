/**
 * `npm run bench` section "training" (`node dist/bench/run.js training`, issue #5): training tokens/s of
 * our CPU backend against PyTorch running the same model in the same run (bench/torch_train.py via
 * /usr/bin/python3, OMP_WAIT_POLICY=PASSIVE, same threads).
 *
 * Model: d=256, 4 layers, 4 heads, ffn 688, vocab 32000 (untied lm_head), batch 8 × 256 tokens per step;
 * one step = forward + backward + global-norm clipping + AdamW (src/train/step.ts). Modes: full training,
 * and LoRA r=16, alpha 32 on all seven projections. Ours runs with f32 weights, full training also with bf16
 * matmuls (f32 master weights, autocast-style: matmulDtype "bf16"), and LoRA also with the base in bf16;
 * PyTorch runs f32 and f32 weights under bf16 autocast. Runs alternate between ours and PyTorch's (a
 * PyTorch process stays up and is asked for each run over stdin) so both see the same load on a shared
 * machine; each configuration's rate is from the median of BENCH_RUNS runs.
 *
 * Then a short per-op profile of one of our steps per mode (where the time goes), and LoRA on the `1b`
 * preset (bf16 weights, memory-mapped) in a child process (bench/train-rss-child.ts): tokens/s and peak
 * RSS, measured there so this process's memory does not count.
 *
 * Environment:
 * - BENCH_TRAIN_STEPS (default 1): timed steps per run, per configuration (ours and PyTorch's; each also
 *   has one untimed warm-up step).
 * - BENCH_TRAIN_1B_STEPS (default 2): timed LoRA steps on `1b` after one warm-up step; 0 skips `1b`.
 * - BENCH_TRAIN_1B_SEQ (default 256): tokens per `1b` step (one sequence).
 * - BENCH_TRAIN_TORCH=0: skip PyTorch.  BENCH_TRAIN_PROFILE=0: skip the per-op profile.
 * - BENCH_TRAIN_TORCH_MALLOC (default keep): PyTorch runs with glibc malloc keeping freed memory
 *   (MALLOC_MMAP_THRESHOLD_, MALLOC_TRIM_THRESHOLD_, MALLOC_TOP_PAD_; as jemalloc/tcmalloc would): as
 *   installed, each of its steps unmaps and page-faults its logits-sized tensors again, several times slower
 *   here, and the peer is meant to be PyTorch at its best. "default": malloc as installed; "both": two
 *   PyTorch processes, the faster counts (and both are printed).
 * On 2 shared cores the section takes ~4 minutes (~5 with BENCH_TRAIN_TORCH_MALLOC=both), most of it
 * PyTorch's steps and the `1b` steps.
 */
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from "node:child_process";
import { existsSync, statSync } from "node:fs";
import { loadavg } from "node:os";
import { dirname, join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import type { Backend } from "../src/engine/backend.js";
import { createCpuBackend } from "../src/engine/cpu/backend.js";
import { float32ToBfloat16 } from "../src/io/dtype.js";
import type { LlamaConfig } from "../src/io/llama-config.js";
import { randomLlamaWeights, TrainableLlama, type MatmulDtype, type TrainingMode } from "../src/model/llama-train.js";
import { MODEL_PRESETS } from "../src/model/presets.js";
import type { HostTensor, LlamaWeights } from "../src/model/weights.js";
import { buildPackedBatch } from "../src/train/batches.js";
import { ADAMW_DEFAULTS, AdamW } from "../src/train/optimizer.js";
import { benchmarkTrainingSteps, trainingStep } from "../src/train/step.js";
import { profiledBackend, profileLines, type OpStats } from "./op-profile.js";
import { median } from "./median.js";

export interface TrainingBenchContext {
  threads: number;
  runs: number;
  /** Lines for the "Ratios" list that bench/run.ts prints last. */
  ratios: string[];
  /** Directory of a cached random model of `preset` with bf16 weights (made on first use). */
  modelDir(preset: string): string;
}

/** LoRA as the issue asks for it: r=16, alpha 32, no dropout, all seven projections. */
export const BENCH_LORA = {
  rank: 16, alpha: 32, dropout: 0, useRslora: false,
  targetModules: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
} as const;

export const CONFIG: LlamaConfig = {
  ...MODEL_PRESETS.small, hiddenSize: 256, numLayers: 4, numHeads: 4, numKvHeads: 4, headDim: 64, intermediateSize: 688,
};
const BATCH = 8;
const SEQ_LEN = 256;
const STEPS = Math.max(1, Number(process.env.BENCH_TRAIN_STEPS ?? 1));
const STEPS_1B = Math.max(0, Number(process.env.BENCH_TRAIN_1B_STEPS ?? 2));
const SEQ_1B = Math.max(2, Number(process.env.BENCH_TRAIN_1B_SEQ ?? 256));
const SEED = 5;
const here = dirname(fileURLToPath(import.meta.url));

const fmt = (x: number, digits = 0) => (Number.isFinite(x) ? x.toFixed(digits) : "–");

export const loraMode = (): TrainingMode => ({ kind: "lora", lora: { ...BENCH_LORA, targetModules: [...BENCH_LORA.targetModules] } });

export function toBf16Weights(w: LlamaWeights): LlamaWeights {
  const cast = (t: HostTensor): HostTensor => ({ dtype: "bf16", shape: t.shape, data: float32ToBfloat16(t.data as Float32Array) });
  return {
    embedTokens: cast(w.embedTokens),
    layers: w.layers.map((l) => Object.fromEntries(Object.entries(l).map(([k, t]) => [k, cast(t)])) as unknown as LlamaWeights["layers"][number]),
    norm: cast(w.norm),
    lmHead: cast(w.lmHead),
  };
}

// ---- the PyTorch peer: one process, asked for each run over stdin ----

/**
 * glibc malloc settings that keep freed memory in the heap: without them every step of PyTorch's mmaps and
 * unmaps its ~250 MB logits-sized tensors and faults every page in again, which on this VM makes its step
 * several times slower (our CPU backend reuses its buffers, ArrayPool in src/engine/cpu/backend.ts).
 */
const KEEP_FREED_MEMORY = {
  MALLOC_MMAP_THRESHOLD_: String(2 ** 34), MALLOC_TRIM_THRESHOLD_: String(2 ** 34), MALLOC_TOP_PAD_: String(2 ** 30),
};

interface TorchAnswer {
  config: string;
  seconds: number;
  tokens: number;
}

class TorchPeer {
  private constructor(
    private readonly child: ChildProcessWithoutNullStreams,
    private readonly lines: AsyncIterator<string>,
    private readonly stderrTail: () => string,
    readonly version: string,
  ) {}

  /** The peer, or why there is none; `malloc` "keep" tells glibc to keep freed memory (see the header). */
  static async start(threads: number, malloc: "keep" | "default"): Promise<TorchPeer | string> {
    const python = "/usr/bin/python3";
    const probe = spawnSync(python, ["-c", "import torch"], { encoding: "utf8" });
    if (probe.status !== 0) return `not installed (${python} -c "import torch" failed)`;
    const script = join(here, "..", "..", "bench", "torch_train.py");
    const source = existsSync(script) ? script : join(here, "torch_train.py");
    const child = spawn(python, [source, String(threads), "--serve"], {
      env: { ...process.env, OMP_WAIT_POLICY: "PASSIVE", ...(malloc === "keep" ? KEEP_FREED_MEMORY : {}) }, stdio: ["pipe", "pipe", "pipe"],
    });
    let stderr = "";
    child.stderr.on("data", (chunk: Buffer) => { stderr = (stderr + chunk.toString()).slice(-2000); });
    const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
    const header = await lines.next();
    if (header.done) return `failed to start: ${stderr.trim().split("\n").slice(-2).join(" | ")}`;
    const { version } = JSON.parse(header.value) as { version: string };
    return new TorchPeer(child, lines, () => stderr, version);
  }

  /** Seconds for `steps` timed steps of configuration `name` (e.g. "lora-bf16"). */
  async run(name: string, steps: number): Promise<number> {
    this.child.stdin.write(`${name} ${steps}\n`);
    const line = await this.lines.next();
    if (line.done) throw new Error(`PyTorch peer exited: ${this.stderrTail().trim().split("\n").slice(-3).join(" | ")}`);
    const answer = JSON.parse(line.value) as TorchAnswer;
    if (answer.config !== name) throw new Error(`PyTorch peer answered ${answer.config} for ${name}`);
    return answer.seconds;
  }

  close(): void {
    this.child.stdin.end("quit\n");
  }
}

// ---- per-op profile (bench/op-profile.ts; exact where the backend runs ops at once: `offThread: false`) ----

/** One of our steps (after a warm-up step), every backend call timed: where the time goes. */
export async function profileStep(
  backend: Backend, threads: number, label: string, mode: TrainingMode, weights: LlamaWeights, matmulDtype: MatmulDtype = "f32",
): Promise<void> {
  const stats = new Map<string, OpStats>();
  const profiled = profiledBackend(backend, stats);
  const model = new TrainableLlama(profiled, CONFIG, weights, { mode, maxTokens: BATCH * SEQ_LEN, seed: SEED, matmulDtype });
  const optimizer = new AdamW(profiled, model.parameters, ADAMW_DEFAULTS);
  let state = 12345;
  const sequences = Array.from({ length: BATCH }, () => ({
    ids: Int32Array.from({ length: SEQ_LEN }, () => (state = (Math.imul(state, 1664525) + 1013904223) >>> 0) % CONFIG.vocabSize),
    lossMask: new Uint8Array(SEQ_LEN).fill(1, 1),
  }));
  const step = (serial: number) => trainingStep(model, optimizer, [buildPackedBatch(sequences, sequences.map((_, i) => i), serial)],
    { step: serial, learningRate: 1e-4, maxGradNorm: 1 });
  let total: number;
  try {
    await step(1);
    stats.clear();
    const started = performance.now();
    await step(2);
    total = (performance.now() - started) / 1000;
  } finally {
    optimizer.free();
    model.free();
  }
  const { lines } = profileLines(stats, { label, stepSeconds: total, tokens: BATCH * SEQ_LEN, vocabSize: CONFIG.vocabSize,
    loraRank: BENCH_LORA.rank, cpuThreads: threads });
  for (const line of lines) console.log(line);
}

// ---- 1b LoRA in a child process ----

function bench1b(context: TrainingBenchContext): void {
  if (STEPS_1B === 0) {
    console.log("\n1b LoRA: skipped (BENCH_TRAIN_1B_STEPS=0)");
    return;
  }
  const dir = context.modelDir("1b");
  const weights = statSync(join(dir, "model.safetensors")).size;
  const child = join(here, "train-rss-child.js");
  const result = spawnSync(process.execPath, [child, dir, String(context.threads), String(STEPS_1B), String(SEQ_1B)], { encoding: "utf8" });
  if (result.status !== 0) {
    console.log(`\n1b LoRA child failed: ${result.stderr.trim().split("\n").slice(-3).join(" | ")}`);
    return;
  }
  const out = JSON.parse(result.stdout.trim().split("\n").pop() as string) as { maxRssBytes: number; tokensPerSecond: number; stepSeconds: number };
  console.log(`\n1b bf16 LoRA r${BENCH_LORA.rank} (7 projections), 1×${SEQ_1B} tokens per step, ${STEPS_1B} timed steps: ` +
    `${fmt(out.tokensPerSecond, 1)} tok/s (${fmt(out.stepSeconds, 2)} s/step); peak RSS ${fmt(out.maxRssBytes / 2 ** 30, 2)} GiB, weight file ${fmt(weights / 2 ** 30, 2)} GiB`);
  context.ratios.push(`training 1b LoRA bf16: ${fmt(out.tokensPerSecond, 1)} tok/s at 1×${SEQ_1B}; peak RSS ${fmt(out.maxRssBytes / weights, 2)}× the weight file`);
}

// ---- the section ----

interface Row {
  label: string;
  mode: "full" | "lora";
  weights: "f32" | "bf16";
  matmulDtype?: MatmulDtype;
}

const ROWS: Row[] = [
  { label: "full, f32 weights", mode: "full", weights: "f32" },
  { label: "full, bf16 matmuls (autocast-style)", mode: "full", weights: "f32", matmulDtype: "bf16" },
  { label: `LoRA r${BENCH_LORA.rank} ×7, f32 base`, mode: "lora", weights: "f32" },
  { label: `LoRA r${BENCH_LORA.rank} ×7, bf16 base`, mode: "lora", weights: "bf16" },
];

export async function benchTraining(context: TrainingBenchContext): Promise<void> {
  const { threads, runs } = context;
  const tokensPerStep = BATCH * SEQ_LEN;
  console.log(`\n## 5. Training (tokens/s, median of ${runs} runs × ${STEPS} steps; d=${CONFIG.hiddenSize}, ${CONFIG.numLayers} layers, ` +
    `${CONFIG.numHeads} heads, ffn ${CONFIG.intermediateSize}, vocab ${CONFIG.vocabSize}, ${BATCH}×${SEQ_LEN} tokens per step; ${threads} threads)`);
  const backend = createCpuBackend({ threads });
  const f32 = randomLlamaWeights(CONFIG, SEED);
  const weightsOf = { f32, bf16: toBf16Weights(f32) };
  const loadBefore = loadavg()[0];
  const mallocSetting = process.env.BENCH_TRAIN_TORCH_MALLOC ?? "keep";
  const allocators = process.env.BENCH_TRAIN_TORCH === "0" ? [] : mallocSetting === "both" ? ["keep", "default"] as const
    : mallocSetting === "default" ? ["default"] as const : ["keep"] as const;
  const peers: { malloc: "keep" | "default"; peer: TorchPeer }[] = [];
  let torchNote = allocators.length === 0 ? "skipped (BENCH_TRAIN_TORCH=0)" : "";
  for (const malloc of allocators) {
    const peer = await TorchPeer.start(threads, malloc);
    if (typeof peer === "string") torchNote = peer;
    else peers.push({ malloc, peer });
  }
  if (peers.length > 0) torchNote = `PyTorch ${peers[0].peer.version}`;
  const ours = new Map<string, number[]>(ROWS.map((r) => [r.label, []]));
  /** Step seconds by "allocator mode-precision". */
  const theirs = new Map<string, number[]>();
  try {
    for (const mode of ["full", "lora"] as const) {
      for (let run = 0; run < runs; run++) {
        for (const row of ROWS.filter((r) => r.mode === mode)) {
          const result = await benchmarkTrainingSteps(backend, CONFIG, {
            mode: mode === "full" ? { kind: "full" } : loraMode(), steps: STEPS, batch: BATCH, seqLen: SEQ_LEN, seed: SEED, weights: weightsOf[row.weights],
            matmulDtype: row.matmulDtype,
          });
          ours.get(row.label)!.push(result.seconds / STEPS);
        }
        for (const { malloc, peer } of peers) {
          for (const precision of ["f32", "bf16"]) {
            const key = `${malloc} ${mode}-${precision}`;
            const seconds = await peer.run(`${mode}-${precision}`, STEPS);
            theirs.set(key, [...(theirs.get(key) ?? []), seconds / STEPS]);
          }
        }
      }
    }
  } finally {
    for (const { peer } of peers) peer.close();
  }
  console.log(`load average (1 min) ${fmt(loadBefore, 1)} before, ${fmt(loadavg()[0], 1)} after the timed runs (${threads} threads on a shared machine)`);
  const rate = (stepSeconds: number[] | undefined) => (stepSeconds && stepSeconds.length ? tokensPerStep / median(stepSeconds) : NaN);
  const torchRate = (mode: string, precision: string) => {
    const rates = peers.map(({ malloc }) => rate(theirs.get(`${malloc} ${mode}-${precision}`))).filter(Number.isFinite);
    return rates.length ? Math.max(...rates) : NaN;
  };
  console.log(`peer: ${torchNote} (bench/torch_train.py, ${threads} threads, OMP_WAIT_POLICY=PASSIVE; bf16 = f32 weights under ` +
    `torch.autocast("cpu", bfloat16); glibc malloc ${peers.map((p) => p.malloc === "keep" ? "keeping freed memory" : "as installed").join(" / ") || "–"}` +
    `${peers.length > 1 ? ", the faster of the two" : ""})`);
  console.log("\n| config | ours tok/s | torch f32 | torch bf16-autocast | ratio vs torch's best |");
  console.log("|---|---:|---:|---:|---:|");
  const bestRatio: Record<string, { ratio: number; ours: number; label: string; torch: number }> = {};
  for (const row of ROWS) {
    const our = rate(ours.get(row.label));
    const tf = torchRate(row.mode, "f32");
    const tb = torchRate(row.mode, "bf16");
    const best = Math.max(tf, tb);
    const ratio = our / best;
    console.log(`| ${row.label} | ${fmt(our)} | ${fmt(tf)} | ${fmt(tb)} | ${fmt(ratio, 2)}× |`);
    if (!bestRatio[row.mode] || ratio > bestRatio[row.mode].ratio || (Number.isNaN(ratio) && our > bestRatio[row.mode].ours)) bestRatio[row.mode] = { ratio, ours: our, label: row.label, torch: best };
  }
  if (peers.length > 1) {
    for (const { malloc } of peers) {
      console.log(`PyTorch with glibc malloc ${malloc === "keep" ? "keeping freed memory" : "as installed"}: ` +
        ["full-f32", "full-bf16", "lora-f32", "lora-bf16"].map((c) => `${c} ${fmt(rate(theirs.get(`${malloc} ${c}`)))}`).join(", ") + " tok/s");
    }
  }
  for (const mode of ["full", "lora"]) {
    const b = bestRatio[mode];
    context.ratios.push(Number.isFinite(b.torch)
      ? `training ${mode} (${b.label}): ${fmt(b.ratio, 2)}× PyTorch's best (${fmt(b.ours)} vs ${fmt(b.torch)} tok/s; target ≥ 3× PyTorch's best)`
      : `training ${mode}: ${fmt(b.ours)} tok/s (PyTorch ${torchNote})`);
  }
  if (process.env.BENCH_TRAIN_PROFILE !== "0") {
    console.log("\nWhere one of our steps goes (backend calls timed through a Proxy; matmul kinds: x·Wᵀ forward / dX, dY·W dX, aᵀ·b weight gradients):");
    // Ops run at once here, so that each call's time is its kernel's (the off-thread stream only records).
    const atOnce = createCpuBackend({ threads, offThread: false });
    await profileStep(atOnce, threads, "full, f32", { kind: "full" }, weightsOf.f32);
    await profileStep(atOnce, threads, "full, bf16 matmuls", { kind: "full" }, weightsOf.f32, "bf16");
    await profileStep(atOnce, threads, "LoRA, bf16 base", loraMode(), weightsOf.bf16);
  }
  bench1b(context);
}
