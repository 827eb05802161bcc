/**
 * Training CAREER (model/career.ts): AdamW on the mean two-stage negative log-likelihood, one phase at a time
 * (pretraining on resumes and fine-tuning on the survey both call trainCareer), with the best validation
 * epoch kept.
 */
import { careerBatches, careerGroups, type CareerModel, type CareerSequence } from "../model/career.js";
import { epochOrder } from "../util/packing.js";
import { AdamW, ADAMW_DEFAULTS, clipGradientNorm } from "./optimizer.js";
import { learningRateAt } from "./schedule.js";

export interface CareerProgress {
  phase: string;
  epoch: number;
  epochs: number;
  /** Optimizer steps done in this phase, of totalSteps. */
  step: number;
  totalSteps: number;
  /** Mean training NLL over the epoch so far. */
  trainLoss: number;
  /** Mean validation NLL, reported once per epoch when a validation set is given. */
  validLoss?: number;
}

export interface CareerTrainingOptions {
  epochs: number;
  /** Peak learning rate (linear warmup, then cosine decay to 10%). */
  learningRate: number;
  /** Most waves per optimizer step (≤ the model's maxTokens). */
  batchTokens: number;
  seed: number;
  /** Warmup steps (default 5% of all steps). */
  warmupSteps?: number;
  weightDecay?: number;
  /** Clip gradients to this global norm (default 1). */
  clipNorm?: number;
  /** With validation people: evaluate after every epoch and keep the parameters of the best epoch. */
  valid?: readonly CareerSequence[];
  /** Label of this phase in progress reports (e.g. "pretrain", "finetune"). */
  phase?: string;
  onProgress?: (progress: CareerProgress) => void;
}

export interface CareerTrainingResult {
  steps: number;
  trainLoss: number[];
  validLoss: number[];
  /** 1-based epoch whose parameters the model holds at the end (the last one without validation). */
  bestEpoch: number;
}

/** Train with AdamW on the mean two-stage NLL (one phase; pretraining and fine-tuning both call this). */
export async function trainCareer(model: CareerModel, sequences: readonly CareerSequence[], options: CareerTrainingOptions): Promise<CareerTrainingResult> {
  if (options.batchTokens > model.options.maxTokens) throw new Error(`career: batchTokens ${options.batchTokens} exceeds the model's maxTokens ${model.options.maxTokens}`);
  const phase = options.phase ?? "train";
  const stepsPerEpoch = careerGroups(sequences, epochOrder(sequences.length, options.seed, 0, false), options.batchTokens).length;
  const totalSteps = stepsPerEpoch * options.epochs;
  const schedule = {
    peak: options.learningRate, kind: "cosine" as const, minRatio: 0.1, totalSteps,
    warmupSteps: options.warmupSteps ?? Math.ceil(0.05 * totalSteps),
  };
  const optimizer = new AdamW(model.backend, model.parameters, { ...ADAMW_DEFAULTS, weightDecay: options.weightDecay ?? ADAMW_DEFAULTS.weightDecay });
  const result: CareerTrainingResult = { steps: 0, trainLoss: [], validLoss: [], bestEpoch: options.epochs };
  let best: Map<string, Float32Array> | null = null;
  let bestLoss = Infinity;
  try {
    for (let epoch = 1; epoch <= options.epochs; epoch++) {
      const batches = careerBatches(sequences, epochOrder(sequences.length, options.seed, epoch), options.batchTokens, epoch * 1_000_000);
      let lossSum = 0, count = 0;
      for (const batch of batches) {
        model.zeroGradients();
        const outcome = await model.forwardBackward(batch, 1 / batch.targetCount);
        await clipGradientNorm(model.backend, model.parameters, options.clipNorm ?? 1);
        result.steps++;
        optimizer.step(result.steps, learningRateAt(result.steps, schedule));
        lossSum += outcome.lossSum;
        count += outcome.count;
        options.onProgress?.({ phase, epoch, epochs: options.epochs, step: result.steps, totalSteps, trainLoss: lossSum / count });
      }
      result.trainLoss.push(lossSum / count);
      if (options.valid && options.valid.length > 0) {
        const validLoss = await meanCareerLoss(model, options.valid, options.batchTokens);
        result.validLoss.push(validLoss);
        options.onProgress?.({ phase, epoch, epochs: options.epochs, step: result.steps, totalSteps, trainLoss: lossSum / count, validLoss });
        if (validLoss < bestLoss) {
          bestLoss = validLoss;
          result.bestEpoch = epoch;
          if (epoch < options.epochs) best = await model.parameterValues();
          else best = null; // the model already holds the best epoch
        }
      }
    }
    if (best && result.bestEpoch < options.epochs) model.setParameterValues(best);
    return result;
  } finally {
    optimizer.free();
  }
}

/** Mean two-stage NLL over every wave of the people. */
export async function meanCareerLoss(model: CareerModel, sequences: readonly CareerSequence[], batchTokens: number): Promise<number> {
  let lossSum = 0, count = 0;
  for (const batch of careerBatches(sequences, epochOrder(sequences.length, 0, 0, false), batchTokens)) {
    const outcome = await model.evaluate(batch);
    lossSum += outcome.lossSum;
    count += outcome.count;
  }
  return lossSum / count;
}
