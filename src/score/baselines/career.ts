/**
 * CAREER baseline (Vafa et al.; the model is src/model/career.ts) as a Predictor: pretrained on a resume
 * corpus (the `resumes` profile, another population), then fine-tuned on the survey's training split, both
 * phases by the same AdamW loop on the two-stage negative log-likelihood. Deterministic by seed on a given
 * backend.
 */
import type { Backend } from "../../engine/backend.js";
import type { PersonRecord } from "../../data/panel.js";
import { occupationTaxonomy, type OccupationTaxonomy } from "../../data/taxonomy.js";
import { CAREER_PRESETS, CareerModel, careerLogProbabilities, encodeCareer, type CareerConfig, type CareerPresetName } from "../../model/career.js";
import { trainCareer, type CareerProgress, type CareerTrainingResult } from "../../train/career.js";
import type { PredictionProgress, Predictor } from "../predictor.js";

export class CareerPredictor implements Predictor {
  readonly normalised = true;

  constructor(
    readonly model: CareerModel,
    readonly batchTokens: number,
    readonly name = "career",
  ) {}

  get taxonomy(): OccupationTaxonomy {
    return this.model.taxonomy;
  }

  predict(people: readonly PersonRecord[], onProgress?: PredictionProgress): Promise<Float64Array[][]> {
    return careerLogProbabilities(this.model, people, this.batchTokens, onProgress);
  }

  free(): void {
    this.model.free();
  }
}

/** Epochs and peak learning rate of one phase. */
export interface CareerPhaseOptions {
  epochs: number;
  learningRate: number;
}

export interface TrainCareerBaselineOptions {
  /** The survey: fine-tuning people and, optionally, validation people (best fine-tuning epoch kept). */
  survey: { train: readonly PersonRecord[]; valid?: readonly PersonRecord[] };
  /** Pretraining corpus (e.g. a `resumes` synthetic panel); empty or absent: no pretraining. */
  resumes?: readonly PersonRecord[];
  /** A preset name (checked at run time: CLI input passes through) or an explicit size. */
  preset: CareerPresetName | CareerConfig | string;
  seed: number;
  backend: Backend;
  taxonomy?: OccupationTaxonomy;
  /** Default: 3 epochs at 1e-3. */
  pretrain?: CareerPhaseOptions;
  /** Default: 6 epochs at 5e-4. */
  finetune?: CareerPhaseOptions;
  /** Waves per optimizer step (default 512). */
  batchTokens?: number;
  weightDecay?: number;
  /** Recompute activations in backward (less memory). */
  recompute?: boolean;
  onProgress?: (progress: CareerProgress) => void;
}

export interface CareerBaseline {
  predictor: CareerPredictor;
  pretraining: CareerTrainingResult | null;
  finetuning: CareerTrainingResult;
  config: CareerConfig;
}

export const CAREER_PRETRAIN_DEFAULTS: CareerPhaseOptions = { epochs: 3, learningRate: 1e-3 };
export const CAREER_FINETUNE_DEFAULTS: CareerPhaseOptions = { epochs: 6, learningRate: 5e-4 };

/** Build CAREER, pretrain it on the resumes (if any), fine-tune it on the survey; return it as a Predictor. */
export async function trainCareerBaseline(options: TrainCareerBaselineOptions): Promise<CareerBaseline> {
  const taxonomy = options.taxonomy ?? occupationTaxonomy();
  const config: CareerConfig | undefined =
    typeof options.preset === "string" ? (CAREER_PRESETS as Record<string, CareerConfig>)[options.preset] : options.preset;
  if (!config) throw new Error(`career: unknown preset "${String(options.preset)}" (expected one of ${Object.keys(CAREER_PRESETS).join(", ")})`);
  if (options.survey.train.length === 0) throw new Error("career: the survey's training split is empty");
  const batchTokens = options.batchTokens ?? 512;
  const model = new CareerModel(options.backend, config, taxonomy, { seed: options.seed, maxTokens: batchTokens, recompute: options.recompute });
  try {
    const encode = (people: readonly PersonRecord[]) => people.map((p) => encodeCareer(p, taxonomy));
    const common = { batchTokens, weightDecay: options.weightDecay, onProgress: options.onProgress };
    let pretraining: CareerTrainingResult | null = null;
    if (options.resumes && options.resumes.length > 0) {
      const phase = options.pretrain ?? CAREER_PRETRAIN_DEFAULTS;
      pretraining = await trainCareer(model, encode(options.resumes), { ...common, ...phase, seed: options.seed, phase: "pretrain" });
    }
    const phase = options.finetune ?? CAREER_FINETUNE_DEFAULTS;
    const valid = options.survey.valid && options.survey.valid.length > 0 ? encode(options.survey.valid) : undefined;
    const finetuning = await trainCareer(model, encode(options.survey.train), { ...common, ...phase, seed: options.seed + 1, valid, phase: "finetune" });
    return { predictor: new CareerPredictor(model, batchTokens), pretraining, finetuning, config };
  } catch (error) {
    model.free();
    throw error;
  }
}
