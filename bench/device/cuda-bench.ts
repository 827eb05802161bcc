/**
 * The CUDA benchmarks of bench/device/cuda-check.sh (compiled by tsc to dist/bench/device/cuda-bench.js).
 *
 *   node dist/bench/device/cuda-bench.js <rows.tsv> [peer.json]
 *
 * Appends one tab-separated row per measurement to rows.tsv (what, ours, peer, ratio, note); the shell script
 * prints the table. peer.json is what bench/device/peft_peer.py measured in the same run (PyTorch bf16 GEMM
 * peak and PyTorch+PEFT LoRA step times on the same model shapes); rows without a peer say so.
 *
 * Rows: bf16 matmul TFLOP/s vs the measured peak (the kernel chosen by default, with the wgmma, mma and wmma
 * kernels' rates in the note); the CUDA forward vs the CPU backend (max |Δ logprob| on a
 * small model: the CPU backend is the one checked against llama.cpp); training attention on one 7B layer's shape
 * (tensor cores vs the f32 kernels); LoRA training tokens/s with bf16 products on the `1b` preset and on a
 * Llama-2-7B-shaped model (random bf16 weights, every layer the same values: the timing doesn't depend on them),
 * then profiles of one 7B step (host time in calls; the GPU's time per op and idle time from timing marks; every
 * op synchronised), and the 7B step with f32 products and with the mma GEMM only; scoring person-years/s on `1b` (6 person-years,
 * prefix-shared vs naive). A piece another engineer hasn't landed yet
 * prints "not available yet" instead of failing the run.
 */
import { appendFileSync, existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Backend, MatmulDtype } from "../../src/engine/backend.js";
import { createCpuBackend } from "../../src/engine/cpu/backend.js";
import { CudaBackend, cudaStatus } from "../../src/engine/cuda/backend.js";
import type { LlamaConfig } from "../../src/io/llama-config.js";
import { expectedTensorShapes } from "../../src/io/llama-config.js";
import { MODEL_PRESETS } from "../../src/model/presets.js";
import type { LlamaWeights, HostTensor } from "../../src/model/weights.js";
import { gpuTimeline, profiledBackend, profileLines, type MarkedCall, type OpStats } from "../op-profile.js";
import { median } from "../median.js";

const [rowsPath, peerPath] = process.argv.slice(2);
if (!rowsPath) {
  console.error("usage: node dist/bench/device/cuda-bench.js <rows.tsv> [peer.json]");
  process.exit(2);
}

interface PeerResults {
  bf16PeakTflops?: number;
  lora?: Record<string, { tokensPerSecond: number; stepSeconds: number } | { error: string }>;
  error?: string;
}
const peer: PeerResults = peerPath && existsSync(peerPath) ? (JSON.parse(readFileSync(peerPath, "utf8")) as PeerResults) : {};

function row(what: string, ours: string, peerValue = "", ratio = "", note = ""): void {
  const clean = (s: string) => s.replace(/[\t\n]/g, " ");
  appendFileSync(rowsPath, [what, ours, peerValue, ratio, note].map(clean).join("\t") + "\n");
  console.log(`${what}: ${ours}${peerValue ? ` (peer ${peerValue}, ratio ${ratio})` : ""}${note ? ` — ${note}` : ""}`);
}

const fmt = (x: number, digits = 1) => (Number.isFinite(x) ? x.toFixed(digits) : String(x));

/** Small random bf16 values from a seeded xorshift (fast enough for 7B parameters). */
function randomBf16(count: number, seed: number, scale: number): Uint16Array {
  const out = new Uint16Array(count);
  const f = new Float32Array(1), u = new Uint32Array(f.buffer);
  let s = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < count; i++) {
    s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0;
    f[0] = ((s / 4294967296) * 2 - 1) * scale;
    out[i] = u[0] >>> 16;
  }
  return out;
}

/**
 * Random bf16 weights for `config`; each distinct tensor shape is generated once and shared by every layer
 * (the backend uploads each tensor separately, so device memory and timing are those of a real model).
 */
function sharedRandomWeights(config: LlamaConfig): LlamaWeights {
  const shapes = expectedTensorShapes(config);
  const cache = new Map<string, HostTensor>();
  const make = (name: string): HostTensor => {
    const shape = shapes.get(name)!;
    const norm = name.endsWith("norm.weight");
    const key = `${shape.join("x")}${norm ? "n" : ""}`;
    let tensor = cache.get(key);
    if (!tensor) {
      const count = shape.reduce((p, d) => p * d, 1);
      tensor = norm
        ? { dtype: "f32", shape: [...shape], data: new Float32Array(count).fill(1) }
        : { dtype: "bf16", shape: [...shape], data: randomBf16(count, cache.size + 1, 0.02) };
      cache.set(key, tensor);
    }
    return tensor;
  };
  const embedTokens = make("model.embed_tokens.weight");
  return {
    embedTokens,
    layers: Array.from({ length: config.numLayers }, (_, l) => {
      const p = `model.layers.${l}.`;
      return {
        inputNorm: make(`${p}input_layernorm.weight`), q: make(`${p}self_attn.q_proj.weight`),
        k: make(`${p}self_attn.k_proj.weight`), v: make(`${p}self_attn.v_proj.weight`),
        o: make(`${p}self_attn.o_proj.weight`), postNorm: make(`${p}post_attention_layernorm.weight`),
        gate: make(`${p}mlp.gate_proj.weight`), up: make(`${p}mlp.up_proj.weight`), down: make(`${p}mlp.down_proj.weight`),
      };
    }),
    norm: make("model.norm.weight"),
    lmHead: config.tieWordEmbeddings ? embedTokens : make("lm_head.weight"),
  };
}

/** The Llama-2-7B shape (HF meta-llama/Llama-2-7b-hf config). */
export const LLAMA2_7B: LlamaConfig = {
  ...MODEL_PRESETS["1b"], hiddenSize: 4096, intermediateSize: 11008, numLayers: 32, numHeads: 32, numKvHeads: 32, headDim: 128,
  maxPositionEmbeddings: 4096,
};

/** The LoRA setup both sides use: r 16, alpha 32, no dropout, every Linear of every layer. */
export const BENCH_LORA = {
  rank: 16, alpha: 32, dropout: 0, useRslora: false,
  targetModules: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
} as const;
export const BENCH_SEQ_LEN = 1024;
const TIMED_STEPS = Number(process.env.LABOR_BENCH_STEPS ?? 5);

const benchStarted = performance.now();

async function section(name: string, run: () => Promise<void>): Promise<void> {
  console.log(`[${fmt((performance.now() - benchStarted) / 1000)} s] ${name}`);
  try {
    await run();
  } catch (error) {
    const message = (error as Error).message ?? String(error);
    const missing = /Cannot find module|does not provide an export|is not a function/.test(message);
    row(name, missing ? "not available yet" : "FAILED", "", "", missing ? message.slice(0, 160) : message.split("\n")[0].slice(0, 200));
  }
}

/** Runs `body` with environment variable `name` set to `value` (unset for undefined; the addon reads it per call),
 * then restores it. */
async function withEnv<T>(name: string, value: string | undefined, body: () => Promise<T>): Promise<T> {
  const previous = process.env[name];
  if (value === undefined) delete process.env[name];
  else process.env[name] = value;
  try {
    return await body();
  } finally {
    if (previous === undefined) delete process.env[name];
    else process.env[name] = previous;
  }
}

/**
 * TFLOP/s of our bf16 tensor-core matmul on one shape with the given kernel (LABOR_CUDA_GEMM, read per call;
 * "wgmma-rows" also sets LABOR_CUDA_RASTER=rows, the wgmma kernel's row-tiles-first block order).
 */
async function matmulTflops(cuda: CudaBackend, m: number, n: number, k: number,
  kernel: "auto" | "mma" | "wmma" | "wgmma" | "wgmma-rows"): Promise<number> {
  const aBits = Uint32Array.from(randomBf16(m * k, 11, 1), (bits) => bits << 16);  // bf16 values held as f32
  const a = cuda.upload(new Float32Array(aBits.buffer), "f32", [m, k]);
  const b = cuda.weight(randomBf16(n * k, 3, 0.02), "bf16", [n, k]);
  const out = cuda.alloc("f32", [m, n]);
  try {
    return await withEnv("LABOR_CUDA_GEMM", kernel.replace("-rows", ""), () => withEnv("LABOR_CUDA_RASTER", kernel.endsWith("-rows") ? "rows" : undefined, async () => {
      const reps = 10;
      cuda.matmul(a, b, out, { transB: true });
      await cuda.sync();
      const started = performance.now();
      for (let r = 0; r < reps; r++) cuda.matmul(a, b, out, { transB: true });
      await cuda.sync();
      return (2 * m * n * k * reps) / ((performance.now() - started) / 1000) / 1e12;
    }));
  } finally {
    for (const t of [a, b, out]) cuda.free(t);
  }
}

async function matmulRows(cuda: CudaBackend): Promise<void> {
  const peak = peer.bf16PeakTflops;
  for (const [m, n, k] of [[4096, 4096, 4096], [1024, 11008, 4096], [1024, 4096, 11008], [8192, 8192, 8192]]) {
    const chosen = await matmulTflops(cuda, m, n, k, "auto");
    const mma = await matmulTflops(cuda, m, n, k, "mma");
    const wmma = await matmulTflops(cuda, m, n, k, "wmma");
    const wgmma = await matmulTflops(cuda, m, n, k, "wgmma");
    const wgmmaRows = await matmulTflops(cuda, m, n, k, "wgmma-rows");
    row(`matmul bf16 ${m}×${n}×${k} (a f32, b bf16ᵀ) TFLOP/s`, fmt(chosen), peak ? fmt(peak) : "", peak ? fmt(chosen / peak, 2) : "",
      `${peak ? "peer = torch.matmul bf16 8192³ (cuBLAS), the measured peak" : "no peak measured (python/torch missing)"}; ` +
      `ours = the kernel chosen by default; wgmma (Hopper, else mma): ${fmt(wgmma)} (row tiles first: ${fmt(wgmmaRows)}), ` +
      `cp.async+mma.sync: ${fmt(mma)}, wmma: ${fmt(wmma)}`);
  }
}

async function forwardParityRow(cuda: CudaBackend): Promise<void> {
  const { initModel } = await import("../../src/model/init.js");
  const { loadLlama } = await import("../../src/model/load.js");
  const dir = mkdtempSync(join(tmpdir(), "labor-llm-cuda-parity-"));
  try {
    for (const dtype of ["f32", "bf16"] as const) {
      const modelDir = join(dir, dtype);
      initModel({ config: MODEL_PRESETS["small-gqa"], seed: 7, dtype, outDir: modelDir });
      const sequences = Array.from({ length: 4 }, (_, s) => Array.from({ length: 128 }, (_, t) => 1 + ((t * 7919 + s * 104729) % 31999)));
      const [ours, cpu] = await Promise.all([cuda, createCpuBackend()].map((backend: Backend) => loadLlama(modelDir, backend).model.tokenLogprobs(sequences)));
      let maxDelta = 0;
      ours.forEach((row, s) => row.forEach((x, t) => { if (t > 0) maxDelta = Math.max(maxDelta, Math.abs(x - cpu[s][t])); }));
      const tolerance = dtype === "f32" ? 1e-3 : 2e-2;
      row(`forward small-gqa ${dtype}: max |Δ logprob| CUDA vs CPU backend`, maxDelta.toExponential(2), "", "",
        `${maxDelta <= tolerance ? "within" : "OVER"} ${tolerance} (the CPU backend is the one checked against llama.cpp)`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Training attention alone on one Llama-2-7B layer's shape (1,024 causal tokens, 32 heads of 128): forward and
 * backward milliseconds with f32 products (CUDA-core kernels) and bf16 products (tensor cores), and TFLOP/s by the
 * usual count (forward 4·hd·H·Σ visible keys; backward 2.5× that).
 */
async function attentionRow(cuda: CudaBackend): Promise<void> {
  const tokens = BENCH_SEQ_LEN, heads = LLAMA2_7B.numHeads, headDim = LLAMA2_7B.headDim;
  const values = (seed: number) => {
    const bits = Uint32Array.from(randomBf16(tokens * heads * headDim, seed, 1), (b) => b << 16);
    return cuda.upload(new Float32Array(bits.buffer), "f32", [tokens, heads, headDim]);
  };
  const [q, k, v, dOut] = [values(21), values(22), values(23), values(24)];
  const start = cuda.upload(new Int32Array(tokens), "i32", [tokens]);
  const end = cuda.upload(Int32Array.from({ length: tokens }, (_, t) => t + 1), "i32", [tokens]);
  const out = cuda.alloc("f32", [tokens, heads, headDim]), lse = cuda.alloc("f32", [tokens, heads]);
  const [dq, dk, dv] = [0, 1, 2].map(() => cuda.alloc("f32", [tokens, heads, headDim]));
  const scale = 1 / Math.sqrt(headDim), reps = 10;
  const forwardFlops = 4 * headDim * heads * (tokens * (tokens + 1)) / 2;
  try {
    const time = async (body: () => void) => {
      body();
      await cuda.sync();
      const started = performance.now();
      for (let r = 0; r < reps; r++) body();
      await cuda.sync();
      return (performance.now() - started) / reps;
    };
    const measure = async (matmulDtype: MatmulDtype) => ({
      forward: await time(() => cuda.attentionForTraining(q, k, v, start, end, scale, out, lse, { matmulDtype })),
      backward: await time(() => cuda.attentionBackward(q, k, v, out, dOut, lse, start, end, scale, dq, dk, dv, { matmulDtype })),
    });
    const f32 = await measure("f32"), bf16 = await measure("bf16");
    const tflops = (flops: number, ms: number) => fmt(flops / (ms / 1000) / 1e12);
    row(`attention fwd+bwd, 7B layer (1×${tokens} causal, ${heads}×${headDim}) ms`, fmt(bf16.forward + bf16.backward, 2),
      fmt(f32.forward + f32.backward, 2), fmt((f32.forward + f32.backward) / (bf16.forward + bf16.backward), 1),
      `peer = our f32 kernels; tensor cores: fwd ${fmt(bf16.forward, 2)} ms ${tflops(forwardFlops, bf16.forward)} TFLOP/s, ` +
      `bwd ${fmt(bf16.backward, 2)} ms ${tflops(2.5 * forwardFlops, bf16.backward)} TFLOP/s; f32: fwd ` +
      `${tflops(forwardFlops, f32.forward)}, bwd ${tflops(2.5 * forwardFlops, f32.backward)} TFLOP/s`);
  } finally {
    for (const t of [q, k, v, dOut, start, end, out, lse, dq, dk, dv]) cuda.free(t);
  }
}

/**
 * LoRA training steps on `config`: tokens/s, the median of the timed steps; with `profile`, three more steps:
 * the host's time inside backend calls (nothing synchronised), the GPU's time per op and between calls (timing
 * marks around each call, nothing synchronised), and every op timed with LABOR_CUDA_SYNC=1 (each launch
 * synchronised, so the op's host time is its GPU time plus launch latency); printed to the log, summarised in rows.
 */
async function loraRow(cuda: CudaBackend, label: string, config: LlamaConfig, profile = false, matmulDtype: MatmulDtype = "f32",
  variant = ""): Promise<void> {
  const { TrainableLlama } = await import("../../src/model/llama-train.js");
  const { AdamW, ADAMW_DEFAULTS } = await import("../../src/train/optimizer.js");
  const { trainingStep } = await import("../../src/train/step.js");
  const { buildPackedBatch } = await import("../../src/train/batches.js");
  const stats = new Map<string, OpStats>();
  let profiling = false, marking = false;
  const markedCalls: MarkedCall[] = [];
  const backend = profiledBackend(cuda, stats, () => profiling, { marks: cuda, markedCalls, enabled: () => marking });
  const model = new TrainableLlama(backend, config, sharedRandomWeights(config), {
    mode: { kind: "lora", lora: { ...BENCH_LORA, targetModules: [...BENCH_LORA.targetModules] } }, maxTokens: BENCH_SEQ_LEN, seed: 1,
    matmulDtype,
  });
  const optimizer = new AdamW(backend, model.parameters, ADAMW_DEFAULTS);
  try {
    const batch = (serial: number) => buildPackedBatch([{
      ids: Int32Array.from({ length: BENCH_SEQ_LEN }, (_, t) => 1 + ((t * 7919 + serial * 104729) % (config.vocabSize - 1))),
      lossMask: new Uint8Array(BENCH_SEQ_LEN).fill(1, 1),
    }], [0], serial);
    // One step, run to its end on the GPU, with `watch` recording it (host time per call, or timing marks):
    // its wall seconds.
    const runStep = async (serial: number, watch: "none" | "host" | "marks" = "none"): Promise<number> => {
      profiling = watch === "host";
      marking = watch === "marks";
      const started = performance.now();
      try {
        await trainingStep(model, optimizer, [batch(serial)], { step: serial, learningRate: 1e-4, maxGradNorm: 1 });
        await cuda.sync();
      } finally {
        profiling = marking = false;
      }
      return (performance.now() - started) / 1000;
    };
    await runStep(1);
    const stepSeconds: number[] = []; // each step timed to its end on the GPU; the median, as the peer reports
    for (let s = 0; s < TIMED_STEPS; s++) stepSeconds.push(await runStep(s + 2));
    const seconds = median(stepSeconds);
    const tokensPerSecond = BENCH_SEQ_LEN / seconds;
    const theirs = peer.lora?.[label];
    const theirsOk = theirs && "tokensPerSecond" in theirs ? theirs : undefined;
    row(`LoRA training ${label} (r16, 7 targets, 1×${BENCH_SEQ_LEN} tokens, ${matmulDtype} products${variant}) tokens/s`, fmt(tokensPerSecond, 0),
      theirsOk ? fmt(theirsOk.tokensPerSecond, 0) : "", theirsOk ? fmt(tokensPerSecond / theirsOk.tokensPerSecond, 2) : "",
      `step ${fmt(seconds, 3)} s (median of ${TIMED_STEPS}, ${fmt(Math.min(...stepSeconds), 3)}–${fmt(Math.max(...stepSeconds), 3)}); peer: ${theirsOk ? `PyTorch+PEFT step ${fmt(theirsOk.stepSeconds, 3)} s` : theirs && "error" in theirs ? `failed: ${theirs.error}` : "not measured"}`);
    if (profile) {
      // Host-bound or GPU-bound: one step with every call timed but nothing synchronised; the time the host spends
      // inside backend calls (launches, argument checks) against the step's wall time.
      const hostWall = await runStep(TIMED_STEPS + 2, "host");
      const hostInCalls = [...stats.values()].reduce((n, s) => n + s.seconds, 0);
      const hostCalls = [...stats.values()].reduce((n, s) => n + s.calls, 0);
      row(`host time in backend calls, LoRA ${label} step (not synchronised)`, `${fmt(hostInCalls, 3)} s`, "", "",
        `of a ${fmt(hostWall, 3)} s step; ${hostCalls} calls, ${fmt((1e6 * hostInCalls) / hostCalls, 1)} µs each`);
      // The GPU's view of a queued step: timing marks around every call (nothing synchronised).
      cuda.takeTimingMarks();
      await runStep(TIMED_STEPS + 3, "marks");
      const timeline = gpuTimeline(markedCalls, cuda.takeTimingMarks());
      const gpu = profileLines(timeline.stats, {
        label: `LoRA ${label} step on the GPU (timing marks around every call, nothing synchronised)`,
        stepSeconds: timeline.totalSeconds, tokens: BENCH_SEQ_LEN, vocabSize: config.vocabSize, loraRank: BENCH_LORA.rank,
        top: 16, outsideLabel: "GPU idle between calls",
      });
      for (const line of gpu.lines) console.log(line);
      row(`GPU timeline: LoRA ${label} step (timing marks, not synchronised)`, `${fmt(timeline.totalSeconds, 3)} s`, "", "",
        `GPU idle between calls ${fmt(timeline.idleSeconds * 1000, 1)} ms; ` +
        gpu.shares.slice(0, 5).map(([k, share]) => `${k} ${fmt(share, 0)}%`).join(", "));
      stats.clear();
      const syncedSeconds = await withEnv("LABOR_CUDA_SYNC", "1", () => runStep(TIMED_STEPS + 4, "host"));
      const { lines, shares } = profileLines(stats, {
        label: `LoRA ${label} step, every op synchronised`, stepSeconds: syncedSeconds,
        tokens: BENCH_SEQ_LEN, vocabSize: config.vocabSize, loraRank: BENCH_LORA.rank, top: 16,
      });
      for (const line of lines) console.log(line);
      row(`profile: LoRA ${label} step (ops synchronised)`, "", "", "", shares.slice(0, 6).map(([k, share]) => `${k} ${fmt(share, 0)}%`).join(", "));
    }
  } finally {
    optimizer.free();
    model.free();
  }
}

async function scoringRow(cuda: CudaBackend): Promise<void> {
  const { benchmarkScoringPaths } = await import("../../src/score/benchmark.js");
  const { initModel } = await import("../../src/model/init.js");
  const { loadLlama } = await import("../../src/model/load.js");
  const { Tokenizer } = await import("../../src/text/tokenizer.js");
  const { generateSyntheticPanel } = await import("../../src/data/synthetic.js");
  const dir = mkdtempSync(join(tmpdir(), "labor-llm-cuda-score-"));
  try {
    initModel({ config: MODEL_PRESETS["1b"], seed: 3, dtype: "bf16", outDir: dir });
    const { model } = loadLlama(dir, cuda);
    // The naive path runs every candidate's full prefix through the model (~60× the rows): a few
    // person-years keep it to seconds.
    const people = generateSyntheticPanel({ profile: "nlsy79", people: 2, seed: 5 }).panel.people
      .map((person) => ({ ...person, waves: person.waves.slice(0, 3) }));
    const result = await benchmarkScoringPaths(model, Tokenizer.fromDirectory(dir), people);
    row("scoring 1b bf16, prefix-shared: person-years/s", fmt(result.prefixShared.personYearsPerSecond, 2),
      fmt(result.naive.personYearsPerSecond, 2), fmt(result.speedup, 2),
      `peer = the naive path on CUDA; ${result.personYears} person-years, ${result.candidates} candidates; max |Δ| ${result.maxAbsDifference.toExponential(1)}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const status = cudaStatus();
  if ("reason" in status) {
    row("cuda benchmarks", "not run", "", "", `CUDA unavailable: ${status.reason}`);
    return;
  }
  const cuda = CudaBackend.create();
  console.log(cuda.describe());
  const only = process.env.LABOR_BENCH_ONLY?.split(",");
  const want = (name: string) => !only || only.includes(name);
  if (want("matmul")) await section("matmul", () => matmulRows(cuda));
  if (want("parity")) await section("forward vs CPU", () => forwardParityRow(cuda));
  if (want("attention")) await section("attention", () => attentionRow(cuda));
  if (want("lora1b")) await section("LoRA training 1b", () => loraRow(cuda, "1b", MODEL_PRESETS["1b"], false, "bf16"));
  // matmulDtype "bf16" (autocast-style, what PEFT's bf16 run computes): the adapters' products and attention on
  // tensor cores too; then the f32-products run (f32 LoRA products on CUDA cores, f32 attention) for comparison.
  if (want("lora7b")) await section("LoRA training llama2-7b", () => loraRow(cuda, "llama2-7b", LLAMA2_7B, true, "bf16"));
  if (want("lora7b-variants")) {
    await section("LoRA training llama2-7b, f32 products", () => loraRow(cuda, "llama2-7b", LLAMA2_7B, false, "f32"));
    await section("LoRA training llama2-7b, mma GEMM only", () => withEnv("LABOR_CUDA_GEMM", "mma",
      () => loraRow(cuda, "llama2-7b", LLAMA2_7B, false, "bf16", ", LABOR_CUDA_GEMM=mma")));
    await section("LoRA training llama2-7b, wgmma row tiles first", () => withEnv("LABOR_CUDA_RASTER", "rows",
      () => loraRow(cuda, "llama2-7b", LLAMA2_7B, false, "bf16", ", LABOR_CUDA_RASTER=rows")));
  }
  if (want("scoring")) await section("scoring 1b", () => scoringRow(cuda));
}

await main();
