/**
 * One optimizer step — the unit both the training loop and benchmarks run: zero the gradients, forward +
 * backward every micro-batch (gradient accumulation; each row's gradient is scaled by 1 / the targets of
 * the whole step, so the step follows the mean loss over all its targets, HF's num_items_in_batch), clip
 * by global norm, one AdamW update.
 */
import type { Backend } from "../engine/backend.js";
import type { LlamaConfig } from "../io/llama-config.js";
import { TrainableLlama, randomLlamaWeights, type MatmulDtype, type PackedBatch, type TrainingMode } from "../model/llama-train.js";
import type { LlamaWeights } from "../model/weights.js";
import { ADAMW_DEFAULTS, AdamW, clipGradientNorm } from "./optimizer.js";
import { buildPackedBatch } from "./batches.js";
import { SeededRandom } from "../util/random.js";

export interface StepResult {
  /** Mean loss over the step's targets (NaN when it had none). */
  loss: number;
  lossSum: number;
  targets: number;
  tokens: number;
  /** Global gradient norm before clipping. */
  gradNorm: number;
}

export async function trainingStep(
  model: TrainableLlama, optimizer: AdamW, microBatches: readonly PackedBatch[],
  options: { step: number; learningRate: number; maxGradNorm: number },
): Promise<StepResult> {
  const targets = microBatches.reduce((n, b) => n + b.targetCount, 0);
  const tokens = microBatches.reduce((n, b) => n + b.ids.length, 0);
  model.zeroGradients();
  let lossSum = 0;
  for (const batch of microBatches) {
    const outcome = await model.forwardBackward(batch, targets > 0 ? 1 / targets : 0);
    lossSum += outcome.lossSum;
  }
  const gradNorm = await clipGradientNorm(model.backend, model.parameters, options.maxGradNorm);
  optimizer.step(options.step, options.learningRate);
  return { loss: targets > 0 ? lossSum / targets : NaN, lossSum, targets, tokens, gradNorm };
}

export interface StepBenchmarkOptions {
  mode: TrainingMode;
  /** Optimizer steps to time (after one untimed warm-up step). */
  steps: number;
  /** Sequences per step and tokens per sequence (one packed micro-batch of batch × seqLen tokens). */
  batch: number;
  seqLen: number;
  recompute?: boolean;
  seed?: number;
  learningRate?: number;
  /** Host weights to start from, e.g. bf16 or memory-mapped (default: randomLlamaWeights(config, seed), f32). */
  weights?: LlamaWeights;
  /** Weight matmuls in f32 (default) or on bf16 copies (TrainableLlamaOptions.matmulDtype). */
  matmulDtype?: MatmulDtype;
}

export interface StepBenchmarkResult {
  seconds: number;
  tokens: number;
  tokensPerSecond: number;
  losses: number[];
}

/**
 * Run `steps` training steps of a random-initialised model with `config` on random tokens and time them:
 * what `npm run bench` compares with PyTorch. Nothing touches the disk.
 */
export async function benchmarkTrainingSteps(backend: Backend, config: LlamaConfig, options: StepBenchmarkOptions): Promise<StepBenchmarkResult> {
  const seed = options.seed ?? 0;
  const tokens = options.batch * options.seqLen;
  const model = new TrainableLlama(backend, config, options.weights ?? randomLlamaWeights(config, seed), {
    mode: options.mode, maxTokens: tokens, recompute: options.recompute, seed, matmulDtype: options.matmulDtype,
  });
  const optimizer = new AdamW(backend, model.parameters, ADAMW_DEFAULTS);
  const random = new SeededRandom(seed, "benchmark tokens");
  const makeBatch = (serial: number): PackedBatch => {
    const sequences = Array.from({ length: options.batch }, () => ({
      ids: Int32Array.from({ length: options.seqLen }, () => Math.floor(random.next() * config.vocabSize)),
      lossMask: new Uint8Array(options.seqLen).fill(1, 1),
    }));
    return buildPackedBatch(sequences, sequences.map((_, i) => i), serial);
  };
  const batches = Array.from({ length: options.steps + 1 }, (_, s) => makeBatch(s + 1)); // made before timing
  const run = (step: number) => trainingStep(model, optimizer, [batches[step - 1]], { step, learningRate: options.learningRate ?? 1e-4, maxGradNorm: 1 });
  try {
    await run(1);
    await backend.sync();
    const losses: number[] = [];
    const started = performance.now();
    for (let s = 0; s < options.steps; s++) losses.push((await run(s + 2)).loss);
    await backend.sync();
    const seconds = (performance.now() - started) / 1000;
    return { seconds, tokens: tokens * options.steps, tokensPerSecond: (tokens * options.steps) / seconds, losses };
  } finally {
    optimizer.free();
    model.free();
  }
}
