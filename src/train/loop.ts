/**
 * The training loop: packed batches in a seeded order per epoch, gradient accumulation, warmup + decay,
 * clipping, AdamW; validation every N steps with the best weights kept and early stopping; atomic
 * checkpoints; resume that continues bit-identically; a stop signal (Ctrl-C in the CLI) that saves and
 * returns.
 *
 * Everything random is a function of the seed and the position in the run — the document order of epoch e
 * is SeededRandom(seed, "epoch e"), the dropout masks of micro-batch n come from (seed, n) — and the
 * checkpoint holds that position, so a resumed run replays exactly the steps the uninterrupted run takes
 * (the same kernels on the same thread count give the same bits).
 *
 * Output directory:
 *   final/            the trained weights: a PEFT adapter (LoRA) or an HF model directory (full)
 *   best -> best-step-N/  the weights with the lowest validation loss (when validating)
 *   checkpoint -> checkpoint-N/  the latest training state (see checkpoint.ts)
 *   train_log.jsonl   one line per step and per validation
 */
import { appendFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import type { Backend } from "../engine/backend.js";
import type { LlamaConfig } from "../io/llama-config.js";
import { TrainableLlama, type MatmulDtype, type TrainingMode } from "../model/llama-train.js";
import type { LlamaWeights } from "../model/weights.js";
import { hostToInput, namedHostWeights, writeModelDirectory } from "../model/adapter.js";
import { writePeftAdapter } from "../io/peft.js";
import { AdamW, type AdamWConfig } from "./optimizer.js";
import { buildPackedBatch, windowSequences, type TrainingSequence } from "./batches.js";
import { epochOrder, packInOrder } from "../util/packing.js";
import { learningRateAt, type ScheduleKind } from "./schedule.js";
import { trainingStep } from "./step.js";
import { loadCheckpoint, pointLink, saveCheckpoint, type StepRecord, type TrainerState } from "./checkpoint.js";

/** The training log in the output directory: one JSON line per step ({ step, loss, … }) and per validation. */
export const TRAIN_LOG_FILE = "train_log.jsonl";

/** The training loss of every step logged in `outDir`'s training log, in step order (validations left out). */
export function readTrainingLosses(outDir: string): { step: number; loss: number }[] {
  const path = join(outDir, TRAIN_LOG_FILE);
  // Blank lines are skipped inside the loop, not filtered out first, so an error names the file's own line number.
  return readFileSync(path, "utf8").split("\n").flatMap((line, i) => {
    if (line.trim() === "") return [];
    let record: { step?: unknown; loss?: unknown; validation?: unknown };
    try {
      record = JSON.parse(line) as typeof record;
    } catch {
      throw new Error(`${path}:${i + 1}: not a JSON line`);
    }
    return record.validation || typeof record.step !== "number" || typeof record.loss !== "number" ? [] : [{ step: record.step, loss: record.loss }];
  });
}

export interface TrainOptions {
  backend: Backend;
  config: LlamaConfig;
  /** Base weights (host; from loadLlamaWeights or randomLlamaWeights). */
  weights: LlamaWeights;
  /** Directory of the base model (tokenizer/config files are copied next to saved full models); may be null. */
  baseModelDir: string | null;
  train: readonly TrainingSequence[];
  valid?: readonly TrainingSequence[];
  outDir: string;
  mode: TrainingMode;
  learningRate: number;
  schedule: ScheduleKind;
  warmupSteps: number;
  /**
   * Warmup as a share of the run's optimizer steps (ceil(share × total), at least 1); when given it replaces
   * `warmupSteps`, so that one recipe warms up for the same part of its run at any corpus size.
   */
  warmupShare?: number;
  /** Final learning rate / peak (default 0). */
  minLearningRateRatio?: number;
  epochs: number;
  /** Stop after this many optimizer steps in total (default: all epochs). */
  maxSteps?: number;
  /** Token budget of one packed micro-batch. */
  batchTokens: number;
  /** Micro-batches per optimizer step (default 1). */
  gradientAccumulation?: number;
  adamw: AdamWConfig;
  /** Clip the global gradient norm to this (≤ 0: no clipping). */
  maxGradNorm: number;
  /** Validate every N steps (0: only at the end). Needs `valid`. */
  evalEvery: number;
  /** Stop after this many validations without improvement (0: never). */
  patience: number;
  /** Save a checkpoint every N steps (0: only at the end / on stop). */
  checkpointEvery: number;
  seed: number;
  recompute?: boolean;
  /** "bf16": weight matmuls on bf16 copies of the f32 masters, like PyTorch's bf16 autocast (default "f32"). */
  matmulDtype?: MatmulDtype;
  /** Shuffle the document order each epoch (default true). */
  shuffle?: boolean;
  /** Continue from outDir/checkpoint. */
  resume?: boolean;
  /** When aborted, the loop finishes the current step, saves a checkpoint and returns. */
  signal?: AbortSignal;
  /** After every optimizer step. */
  onStep?: (record: StepRecord, progress: { totalSteps: number; startStep: number; tokensTotal: number }) => void;
  onValidation?: (step: number, loss: number, improved: boolean) => void;
  /** Where the base model came from (written into adapter_config.json). */
  baseModelName?: string | null;
}

export type StopReason = "completed" | "max-steps" | "early-stopping" | "interrupted";

export interface TrainResult {
  reason: StopReason;
  steps: number;
  /** Mean training loss of every step of the run so far (resumed runs include the steps before). */
  losses: number[];
  validation: { step: number; loss: number }[];
  bestValidLoss: number | null;
  bestStep: number | null;
  /** Where the final weights were written (null when interrupted). */
  finalDir: string | null;
}

/** The packing plan of an epoch: groups of sequence indices, one per micro-batch. */
function epochPlan(sequences: readonly TrainingSequence[], options: TrainOptions, epoch: number): number[][] {
  const lengths = sequences.map((s) => s.ids.length);
  return packInOrder(lengths, epochOrder(sequences.length, options.seed, epoch, options.shuffle ?? true), options.batchTokens);
}

/** Settings a resumed run must share with the run that wrote the checkpoint. */
function fingerprint(options: TrainOptions, sequences: readonly TrainingSequence[]): Record<string, unknown> {
  let tokens = 0;
  for (const s of sequences) tokens += s.ids.length;
  return {
    mode: options.mode,
    learningRate: options.learningRate,
    schedule: options.schedule,
    warmupSteps: options.warmupSteps,
    // Only where given, so that a checkpoint written before the option existed still resumes.
    ...(options.warmupShare !== undefined ? { warmupShare: options.warmupShare } : {}),
    minLearningRateRatio: options.minLearningRateRatio ?? 0,
    epochs: options.epochs,
    maxSteps: options.maxSteps ?? null,
    batchTokens: options.batchTokens,
    gradientAccumulation: options.gradientAccumulation ?? 1,
    adamw: options.adamw,
    maxGradNorm: options.maxGradNorm,
    seed: options.seed,
    matmulDtype: options.matmulDtype ?? "f32",
    shuffle: options.shuffle ?? true,
    documents: sequences.length,
    tokens,
  };
}

/** The largest TrainOptions.warmupShare: past half the run the decay would have less room than the warmup. */
export const MAX_WARMUP_SHARE = 0.5;

/** The warmup steps of a run of `totalSteps`: `warmupShare` of them where given, else `warmupSteps`. */
export function resolvedWarmupSteps(options: Pick<TrainOptions, "warmupSteps" | "warmupShare">, totalSteps: number): number {
  const share = options.warmupShare;
  if (share === undefined) return options.warmupSteps;
  if (!(share >= 0 && share <= MAX_WARMUP_SHARE)) throw new Error(`warmup share must be in [0, ${MAX_WARMUP_SHARE}], got ${share}`);
  return share === 0 ? 0 : Math.max(1, Math.ceil(share * totalSteps));
}

export async function trainLlama(options: TrainOptions): Promise<TrainResult> {
  const { backend: be, config } = options;
  const accumulation = options.gradientAccumulation ?? 1;
  if (!(options.learningRate > 0)) throw new Error(`learning rate must be positive, got ${options.learningRate}`);
  if (!Number.isInteger(accumulation) || accumulation < 1) throw new Error(`gradient accumulation must be a positive integer, got ${accumulation}`);
  if (!Number.isInteger(options.epochs) || options.epochs < 1) throw new Error(`epochs must be a positive integer, got ${options.epochs}`);
  const maxLength = Math.min(config.maxPositionEmbeddings, options.batchTokens);
  const train = windowSequences(options.train, maxLength);
  const valid = options.valid ? windowSequences(options.valid, maxLength) : [];
  if (train.length === 0) throw new Error("no training sequence has two or more tokens");

  // The whole run's plan (packing differs per epoch with the shuffle): steps and tokens.
  const plans = Array.from({ length: options.epochs }, (_, e) => epochPlan(train, options, e));
  const stepsPerEpoch = plans.map((p) => Math.ceil(p.length / accumulation));
  const plannedSteps = stepsPerEpoch.reduce((a, b) => a + b, 0);
  const totalSteps = Math.min(plannedSteps, options.maxSteps ?? Infinity);
  const warmupSteps = resolvedWarmupSteps(options, totalSteps);
  const tokensTotal = plans.flat().reduce((n, group) => n + group.reduce((m, i) => m + train[i].ids.length, 0), 0);
  const print = fingerprint(options, train);

  mkdirSync(options.outDir, { recursive: true });
  const model = new TrainableLlama(be, config, options.weights, {
    mode: options.mode, maxTokens: options.batchTokens, recompute: options.recompute, seed: options.seed,
    matmulDtype: options.matmulDtype,
  });
  const optimizer = new AdamW(be, model.parameters, options.adamw);
  let state: TrainerState = {
    format: 1, step: 0, epoch: 0, batchIndex: 0, microBatches: 0, tokensSeen: 0,
    bestValidLoss: null, bestStep: null, evalsWithoutImprovement: 0, history: [], validation: [], fingerprint: print,
  };
  try {
    if (options.resume) {
      const saved = loadCheckpoint(options.outDir);
      if (!saved) throw new Error(`${options.outDir}: nothing to resume (no checkpoint)`);
      for (const [key, value] of Object.entries(print)) {
        if (JSON.stringify(saved.state.fingerprint[key]) !== JSON.stringify(value)) {
          throw new Error(`cannot resume: ${key} was ${JSON.stringify(saved.state.fingerprint[key])} in the checkpoint, now ${JSON.stringify(value)}`);
        }
      }
      model.setParameterValues(saved.parameters);
      optimizer.restore(saved.moments);
      state = saved.state;
    } else if (existsSync(join(options.outDir, "checkpoint"))) {
      throw new Error(`${options.outDir} already holds a training checkpoint (use --resume, or a new --out)`);
    }
    const startStep = state.step;
    const logPath = join(options.outDir, TRAIN_LOG_FILE);
    const log = (record: object) => appendFileSync(logPath, JSON.stringify(record) + "\n");
    // The log restarts from what the checkpoint holds (steps after it, logged by a run that crashed, go).
    rmSync(logPath, { force: true });
    for (const record of state.history) {
      log(record);
      for (const v of state.validation) if (v.step === record.step) log({ validation: true, ...v });
    }

    const checkpoint = async () => {
      saveCheckpoint(options.outDir, { state, parameters: await model.parameterValues(), moments: await optimizer.state() });
    };
    const validate = async (): Promise<boolean> => {
      const loss = await validationLoss(model, valid, options.batchTokens);
      const improved = state.bestValidLoss === null || loss < state.bestValidLoss;
      state.validation.push({ step: state.step, loss });
      log({ validation: true, step: state.step, loss });
      if (improved) {
        state.bestValidLoss = loss;
        state.bestStep = state.step;
        state.evalsWithoutImprovement = 0;
        await saveBest(options, model, state.step);
      } else {
        state.evalsWithoutImprovement++;
      }
      options.onValidation?.(state.step, loss, improved);
      return options.patience > 0 && state.evalsWithoutImprovement >= options.patience;
    };

    let reason: StopReason = "completed";
    let validatedAt = state.validation.length > 0 ? state.validation[state.validation.length - 1].step : -1;
    outer: while (state.epoch < options.epochs) {
      const plan = plans[state.epoch];
      while (state.batchIndex < plan.length) {
        if (state.step >= totalSteps) {
          reason = "max-steps";
          break outer;
        }
        const groups = plan.slice(state.batchIndex, state.batchIndex + accumulation);
        const micro = groups.map((members, i) => buildPackedBatch(train, members, state.microBatches + i));
        const step = state.step + 1;
        const learningRate = learningRateAt(step, {
          peak: options.learningRate, warmupSteps, totalSteps, kind: options.schedule, minRatio: options.minLearningRateRatio,
        });
        const result = await trainingStep(model, optimizer, micro, { step, learningRate, maxGradNorm: options.maxGradNorm });
        state.step = step;
        state.batchIndex += groups.length;
        state.microBatches += groups.length;
        state.tokensSeen += result.tokens;
        const record: StepRecord = { step, loss: result.loss, learningRate, gradNorm: result.gradNorm, tokens: result.tokens };
        state.history.push(record);
        log(record);
        options.onStep?.(record, { totalSteps, startStep, tokensTotal });

        if (options.evalEvery > 0 && valid.length > 0 && step % options.evalEvery === 0) {
          validatedAt = step;
          if (await validate()) {
            reason = "early-stopping";
            break outer;
          }
        }
        if (options.checkpointEvery > 0 && step % options.checkpointEvery === 0) await checkpoint();
        // Let signal handlers run (the loop is otherwise synchronous native work).
        await new Promise((resolve) => setImmediate(resolve));
        if (options.signal?.aborted) {
          await checkpoint();
          return { ...summary(state, "interrupted"), finalDir: null };
        }
      }
      state.epoch++;
      state.batchIndex = 0;
    }
    if (valid.length > 0 && validatedAt !== state.step && reason !== "early-stopping") await validate();
    await checkpoint();
    const finalDir = join(options.outDir, "final");
    await saveWeights(options, model, finalDir);
    return { ...summary(state, reason), finalDir };
  } finally {
    optimizer.free();
    model.free();
  }
}

function summary(state: TrainerState, reason: StopReason): Omit<TrainResult, "finalDir"> {
  return {
    reason,
    steps: state.step,
    losses: state.history.map((r) => r.loss),
    validation: state.validation,
    bestValidLoss: state.bestValidLoss,
    bestStep: state.bestStep,
  };
}

/** Mean loss over every target of the validation documents (packed in file order, no dropout). */
export async function validationLoss(model: TrainableLlama, sequences: readonly TrainingSequence[], batchTokens: number): Promise<number> {
  const plan = packInOrder(sequences.map((s) => s.ids.length), Int32Array.from(sequences.keys()), batchTokens);
  let lossSum = 0, targets = 0;
  for (const members of plan) {
    const outcome = await model.evaluate(buildPackedBatch(sequences, members, 0));
    lossSum += outcome.lossSum;
    targets += outcome.targetCount;
  }
  return targets > 0 ? lossSum / targets : NaN;
}

/** Write the current weights: a PEFT adapter (LoRA) or an HF model directory (full). */
export async function saveWeights(options: TrainOptions, model: TrainableLlama, dir: string): Promise<void> {
  rmSync(dir, { recursive: true, force: true });
  if (options.mode.kind === "lora") {
    writePeftAdapter(dir, { lora: options.mode.lora, matrices: await model.loraMatrices(), baseModel: options.baseModelName ?? options.baseModelDir }, options.config);
    return;
  }
  const values = await model.parameterValues();
  const dtype = options.config.torchDtype === "bfloat16" ? "bf16" : "f32";
  const tensors = [...namedHostWeights(options.weights, options.config)].map(([name, original]) =>
    hostToInput(name, original, values.get(name) ?? null, dtype));
  await writeModelDirectory(options.baseModelDir, dir, options.config, tensors, dtype);
}

/** Save the best weights as best-step-N and move the `best` link to them; drop the previous best. */
async function saveBest(options: TrainOptions, model: TrainableLlama, step: number): Promise<void> {
  const name = `best-step-${String(step).padStart(6, "0")}`;
  await saveWeights(options, model, join(options.outDir, name));
  pointLink(options.outDir, "best", name);
  for (const entry of readdirSync(options.outDir)) {
    if (/^best-step-\d+$/.test(entry) && entry !== name) rmSync(join(options.outDir, entry), { recursive: true, force: true });
  }
}
