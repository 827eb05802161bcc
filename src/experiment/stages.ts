/**
 * The stages the demo and the experiment are built from, each a cached step (steps.ts): synthetic data,
 * foundation pretraining, fine-tuning, and scoring a test split with one model into a predictions file.
 *
 * A stage's cache key is everything that determines its output — its own settings and the keys of the stages
 * it reads — so a rerun (or `--resume` after an interruption) redoes exactly the stages whose inputs changed
 * or that never finished.
 */
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import type { Backend } from "../engine/backend.js";
import { countPersonYears, type PersonRecord } from "../data/panel.js";
import { generateSyntheticPanel } from "../data/synthetic.js";
import type { ProfileName } from "../data/profiles.js";
import { assignSplits, type SplitName } from "../data/splits.js";
import { occupationTaxonomy } from "../data/taxonomy.js";
import { relabelledCopies } from "../data/relabel.js";
import { initModel } from "../model/init.js";
import type { LlamaConfig } from "../io/llama-config.js";
import { loadLlama } from "../model/load.js";
import { loadLlamaWithAdapter } from "../model/adapter.js";
import { loadLlamaWeights } from "../model/weights.js";
import type { FrozenPart, TrainingMode } from "../model/llama-train.js";
import { LORA_TARGET_MODULES } from "../io/lora-config.js";
import { openCheckpoint } from "../io/safetensors.js";
import { readLlamaConfig } from "../io/hf-config.js";
import { Tokenizer } from "../text/tokenizer.js";
import {
  lossMask, occupationListDocument, renderDocument, tokenizeDocument, TokenOffsets, type DocumentTarget, type DocumentTemplate, type LossMaskMode,
} from "../text/documents.js";
import type { TrainingSequence } from "../train/batches.js";
import { readTrainingLosses, TRAIN_LOG_FILE, trainLlama } from "../train/loop.js";
import { ADAMW_DEFAULTS } from "../train/optimizer.js";
import { LlmScorer } from "../score/llm-scorer.js";
import { LlmPredictor, type Predictor } from "../score/predictor.js";
import { LogitPredictor } from "../score/baselines/logit.js";
import { trainCareerBaseline } from "../score/baselines/career.js";
import type { CareerPresetName } from "../model/career.js";
import { writeEnsemble } from "../score/ensemble.js";
import { predictionHeader, predictionRecords, writePredictions } from "../score/predictions.js";
import { ProgressBar } from "../util/progress.js";
import { SeededRandom } from "../util/random.js";
import { runStep, type StepResult } from "./steps.js";

/** What every stage needs: where steps are cached, the backend, the seed, and a log line sink. */
export interface StageContext {
  stepsDir: string;
  backend: Backend;
  seed: number;
  log: (line: string) => void;
}

export interface SurveySplits {
  train: PersonRecord[];
  valid: PersonRecord[];
  test: PersonRecord[];
}

/** A synthetic survey of `people` people from a profile, split 80/10/10 by person; deterministic in the seed. */
export function syntheticSurvey(profile: ProfileName, people: number, seed: number): SurveySplits {
  const survey = generateSyntheticPanel({ profile, people, seed }).panel.people;
  const splits = assignSplits(
    survey.map((p) => p.personId),
    seed,
  );
  const pick = (name: SplitName) => survey.filter((p) => splits.get(p.personId) === name);
  return { train: pick("train"), valid: pick("valid"), test: pick("test") };
}

/** A resumes corpus (the `resumes` profile: another population, no non-work spells). */
export function resumesCorpus(people: number, seed: number): PersonRecord[] {
  return generateSyntheticPanel({ profile: "resumes", people, seed }).panel.people;
}

/**
 * How much of one target span keeps its loss: all of it, its first token only, or none; "not-previous": none,
 * but its first position must not hold the previous target's first token — the unlikelihood loss
 * −log(1 − p(that token)) (TrainingSequence.avoid) — unless it does hold it (then no loss at all).
 */
export type TargetLoss = "all" | "first-token" | "none" | "not-previous";

/**
 * People's documents as training sequences (BOS first), with the loss on every token or only the targets;
 * `targetLoss`, when given, decides per target span (by person and target index) how much of it keeps the loss.
 */
export function documentSequences(
  people: readonly PersonRecord[],
  tokenizer: Tokenizer,
  template: DocumentTemplate,
  loss: LossMaskMode,
  label: string,
  targetLoss?: (person: number, targets: readonly DocumentTarget[], target: number) => TargetLoss,
): TrainingSequence[] {
  if (people.length === 0) return []; // nothing to tokenize: no empty "0/0" bar
  const offsets = new TokenOffsets(tokenizer);
  const bar = new ProgressBar(`tokenize ${label}`, people.length, " documents");
  const sequences = people.map((person, i) => {
    const document = tokenizeDocument(renderDocument(person, template), tokenizer, { offsets });
    if (i % 200 === 0) bar.update(i);
    const mask = targetLoss ? new Uint8Array(document.ids.length) : lossMask(document, loss);
    let avoid: Int32Array | undefined;
    if (targetLoss) {
      document.targets.forEach((target, t) => {
        const keep = targetLoss(i, document.targets, t);
        const start = Math.max(1, target.tokenStart);
        if (keep === "not-previous") {
          const previousFirst = t > 0 ? document.ids[document.targets[t - 1].tokenStart] : undefined;
          if (previousFirst === undefined || document.ids[start] === previousFirst) return;
          avoid ??= new Int32Array(document.ids.length).fill(-1);
          avoid[start] = previousFirst;
        } else if (keep !== "none") {
          mask.fill(1, start, keep === "all" ? target.tokenEnd : Math.min(start + 1, target.tokenEnd));
        }
      });
    }
    const sequence: TrainingSequence = { ids: Int32Array.from(document.ids), lossMask: mask };
    if (avoid) sequence.avoid = avoid;
    return sequence;
  });
  bar.finish();
  return sequences;
}

/**
 * Where the loss of relabelled copies falls: "targets", every target (as the loss mode says); "after-renamed",
 * only the lines after one holding the renamed title; "copy-decision", of those the stays in full and, of a
 * line that leaves the renamed title, only its first token (the decision to leave, not where to); "stays", only
 * the lines that stay in the renamed title (no destination of a move is taught by a copy at all);
 * "stays-leave", the stays and, at a line that leaves the renamed title, only that it does not start as the
 * renamed title does (the unlikelihood of that token: the decision to leave, with nothing about where to, so
 * the copies do not tilt P(stay) upwards as "stays" does).
 */
export type RelabelledLoss = "targets" | "after-renamed" | "copy-decision" | "stays" | "stays-leave";
export const RELABELLED_LOSSES: readonly RelabelledLoss[] = ["targets", "after-renamed", "copy-decision", "stays", "stays-leave"];

/**
 * round(share × people) relabelled copies of `people` as training sequences (data/relabel.ts). "after-renamed"
 * and "copy-decision" keep the loss off the moves into the random title, so the copies teach copying without
 * teaching that any title can follow any other; "copy-decision" also keeps it off where a renamed title leads,
 * "stays" off every line that leaves it.
 */
export function relabelledSequences(
  people: readonly PersonRecord[], share: number | undefined, relabelledLoss: RelabelledLoss | undefined, seed: number,
  tokenizer: Tokenizer, template: DocumentTemplate, loss: LossMaskMode,
): TrainingSequence[] {
  if (!share) return [];
  const copies = relabelledCopies(people, relabelledCount(people.length, share), seed, occupationTaxonomy());
  const mode = relabelledLoss ?? "targets";
  const targetLoss = (person: number, targets: readonly DocumentTarget[], t: number): TargetLoss => {
    const renamed = copies[person].to;
    if (t === 0 || targets[t - 1].outcome !== renamed) return "none";
    if (targets[t].outcome === renamed || mode === "after-renamed") return "all";
    return mode === "copy-decision" ? "first-token" : mode === "stays-leave" ? "not-previous" : "none";
  };
  return documentSequences(copies.map((c) => c.person), tokenizer, template, loss, "relabelled copies",
    mode === "targets" ? undefined : targetLoss);
}

/**
 * `copies` occupation-list documents, each listing every outcome title in its own seeded order (once, or in
 * groups of `repeatGroupsOf` each written twice: occupationListDocument).
 */
export function titleListSequences(
  copies: number, tokenizer: Tokenizer, template: DocumentTemplate, seed: number, loss: LossMaskMode, repeatGroupsOf = 0,
): TrainingSequence[] {
  const taxonomy = occupationTaxonomy();
  const codes = taxonomy.outcomes.map((o) => o.code);
  return Array.from({ length: copies }, (_, copy) => {
    const order = new SeededRandom(seed, `title list ${copy}`).shuffle([...codes]);
    const document = tokenizeDocument(occupationListDocument(order, template, taxonomy, "occupation-list", repeatGroupsOf), tokenizer);
    return { ids: Int32Array.from(document.ids), lossMask: lossMask(document, loss) };
  });
}

function trainingBar(label: string) {
  let bar: ProgressBar | undefined;
  return {
    onStep: (record: { step: number; loss: number }, progress: { totalSteps: number }) => {
      bar ??= new ProgressBar(label, progress.totalSteps, " steps");
      bar.update(record.step, `loss ${record.loss.toFixed(3)}`);
    },
    finish: () => bar?.finish(),
  };
}

/** The warmup of a recipe without `warmupShare`: a fixed number of steps (pretraining, fine-tuning). */
const FOUNDATION_WARMUP_STEPS = 10;
const FINETUNE_WARMUP_STEPS = 5;

/** How a foundation model is made: a random Llama of `config`, fully trained on a corpus of careers. */
export interface FoundationRecipe {
  /** Name of the preset (for logs and keys). */
  preset: string;
  config: LlamaConfig;
  epochs: number;
  learningRate: number;
  loss: LossMaskMode;
  /** Copies of the occupation-title list added to the corpus (see occupationListDocument). */
  titleListCopies: number;
  /**
   * Write each copy in groups of this many titles, each group twice (occupationListDocument). Absent or 0:
   * each title once. Optional so that the cache keys of foundations made without it stay what they were.
   */
  titleListRepeatGroups?: number;
  /**
   * Relabelled copies of corpus careers added, as a share of the corpus (data/relabel.ts: one occupation
   * renamed to a uniformly drawn title, so its stays can only be predicted by copying). Absent or 0: none.
   */
  relabelledShare?: number;
  /** Where the relabelled copies' loss falls (see relabelledSequences); absent: "targets". */
  relabelledLoss?: RelabelledLoss;
  /**
   * Linear warmup over this share of the optimizer steps (TrainOptions.warmupShare). Absent (or undefined, which
   * the step key's JSON leaves out, so earlier foundations keep their keys): 10 steps, whatever the run's length.
   */
  warmupShare?: number;
}

/** How many relabelled copies a recipe's share adds to `people` documents. */
function relabelledCount(people: number, share: number | undefined): number {
  return share ? Math.round(share * people) : 0;
}

/** The first round(share × n) of the foundation's resumes (none without a share); a share needs the resumes. */
function replayedResumes(resumes: readonly PersonRecord[] | undefined, share: number | undefined): readonly PersonRecord[] {
  if (!share) return [];
  if (!(share > 0 && share <= 1)) throw new Error(`resumesReplayShare must be in (0, 1], got ${share}`);
  if (!resumes) throw new Error("resumesReplayShare: the fine-tuning was given no resumes corpus to replay");
  return resumes.slice(0, Math.round(share * resumes.length));
}

/** The log line's account of the relabelled copies a recipe adds. */
function relabelledNote(people: number, share: number | undefined): string {
  return share ? ` + ${relabelledCount(people, share)} relabelled copies` : "";
}

/**
 * A recipe's title-list fields (FoundationRecipe, FinetuneRecipe), the grouping left out where it is the default
 * (each title once) so that the cache keys of recipes without it stay what they were.
 */
export function titleListRecipe(copies: number, repeatGroupsOf: number): Pick<FoundationRecipe, "titleListCopies" | "titleListRepeatGroups"> {
  return repeatGroupsOf > 0 ? { titleListCopies: copies, titleListRepeatGroups: repeatGroupsOf } : { titleListCopies: copies };
}

/**
 * A recipe's relabelled-copies fields (FoundationRecipe, FinetuneRecipe), left out where they are the defaults
 * (no copies; "targets") so that the cache keys of recipes without copies stay what they were.
 */
export function relabelledRecipe(share: number, loss: RelabelledLoss): Pick<FoundationRecipe, "relabelledShare" | "relabelledLoss"> {
  if (share <= 0) return {};
  return loss === "targets" ? { relabelledShare: share } : { relabelledShare: share, relabelledLoss: loss };
}

export interface FoundationValue {
  modelDir: string;
  steps: number;
  lastLoss: number | null;
  seconds: number;
}

/**
 * A foundation's pretraining loss as at most `points` window means (each plotted at its window's last step): the
 * curve shows when a foundation learned to copy the line above, the largest source of seed-to-seed spread
 * (experiments/recipe/README.md, "Runs O"). Read from the training log beside `final/` (train/loop.ts's layout),
 * so foundations cached before this existed have it too; none (empty) where the log has been deleted.
 */
export function foundationLossCurve(value: FoundationValue, points = 100): { step: number; loss: number }[] {
  const trainDir = dirname(value.modelDir);
  if (!existsSync(join(trainDir, TRAIN_LOG_FILE))) return [];
  const losses = readTrainingLosses(trainDir);
  const window = Math.max(1, Math.ceil(losses.length / points));
  const curve: { step: number; loss: number }[] = [];
  for (let start = 0; start < losses.length; start += window) {
    const slice = losses.slice(start, start + window);
    curve.push({ step: slice.at(-1)!.step, loss: slice.reduce((sum, l) => sum + l.loss, 0) / slice.length });
  }
  return curve;
}

/** Pretrain a foundation model on `corpus` (documents in `template`); the cache key includes `corpusKey`. */
export async function pretrainFoundation(
  context: StageContext,
  name: string,
  recipe: FoundationRecipe,
  corpus: { key: unknown; people: readonly PersonRecord[]; template: DocumentTemplate },
): Promise<StepResult<FoundationValue>> {
  const { backend, seed, log } = context;
  const inputs = { corpus: corpus.key, template: corpus.template, recipe, init: "small", seed };
  const step = await runStep(context.stepsDir, name, inputs, async (dir) => {
    const started = performance.now();
    log(`      ${name}: random ${recipe.preset} Llama, pretrained on ${corpus.people.length} career documents` +
      relabelledNote(corpus.people.length, recipe.relabelledShare) +
      (recipe.titleListCopies > 0 ? ` and ${recipe.titleListCopies} copies of the occupation-title list` : "") +
      (recipe.titleListCopies > 0 && recipe.titleListRepeatGroups ? ` (in groups of ${recipe.titleListRepeatGroups}, each written twice)` : ""));
    const initDir = join(dir, "init");
    initModel({ config: recipe.config, seed, dtype: "f32", outDir: initDir, scheme: "small" });
    const tokenizer = Tokenizer.fromDirectory(initDir);
    const bar = trainingBar(name);
    const result = await trainLlama({
      backend,
      config: recipe.config,
      weights: loadLlamaWeights(openCheckpoint(initDir), recipe.config),
      baseModelDir: initDir,
      train: [
        ...documentSequences(corpus.people, tokenizer, corpus.template, recipe.loss, "careers"),
        ...relabelledSequences(corpus.people, recipe.relabelledShare, recipe.relabelledLoss, seed, tokenizer, corpus.template, recipe.loss),
        ...titleListSequences(recipe.titleListCopies, tokenizer, corpus.template, seed, recipe.loss, recipe.titleListRepeatGroups ?? 0),
      ],
      outDir: join(dir, "train"),
      mode: { kind: "full" },
      learningRate: recipe.learningRate,
      schedule: "cosine",
      warmupSteps: FOUNDATION_WARMUP_STEPS,
      warmupShare: recipe.warmupShare,
      minLearningRateRatio: 0.1,
      epochs: recipe.epochs,
      batchTokens: 4096,
      adamw: ADAMW_DEFAULTS,
      maxGradNorm: 1,
      evalEvery: 0,
      patience: 0,
      checkpointEvery: 0,
      seed,
      onStep: bar.onStep,
    });
    bar.finish();
    return { modelDir: result.finalDir!, steps: result.steps, lastLoss: result.losses.at(-1) ?? null, seconds: (performance.now() - started) / 1000 };
  });
  if (step.reused) log(`      ${name}: reusing ${step.value.modelDir}`);
  return step;
}

/** How the FT-LLM is made from a foundation. */
export interface FinetuneRecipe {
  /** Every weight ("full", like the paper's released checkpoints) or a LoRA adapter (r=16, α=32, all projections). */
  mode: "full" | "lora";
  /**
   * Full fine-tuning with these parts held at the foundation's values (TrainingMode): e.g. the token embedding
   * (tied to lm_head in the demo presets), so the survey's text cannot push down the titles it never shows, or
   * the attention, where copying the line above is done. Absent or empty: every weight trains.
   */
  frozen?: FrozenPart[];
  learningRate: number;
  epochs: number;
  loss: LossMaskMode;
  /** Validate every N steps and keep the weights with the lowest validation loss (0: keep the last weights). */
  evalEvery: number;
  /**
   * Copies of the occupation-title list mixed into the fine-tuning documents (replay of the foundation's
   * corpus): full fine-tuning otherwise pushes down the tokens of every title the survey's training split
   * never shows (tied embeddings, Adam's per-coordinate steps), and those titles' probabilities collapse.
   */
  titleListCopies: number;
  /** The replayed lists in groups of this many titles, each group twice (as FoundationRecipe); absent or 0: once. */
  titleListRepeatGroups?: number;
  /** Relabelled copies of the training people added, as a share of them (as FoundationRecipe). Absent or 0: none. */
  relabelledShare?: number;
  /** As FoundationRecipe. */
  relabelledLoss?: RelabelledLoss;
  /**
   * The first share of the foundation's resumes corpus mixed into the fine-tuning documents: replay of what the
   * foundation (and CAREER) were pretrained on, no new data. Absent or 0: none.
   */
  resumesReplayShare?: number;
  /** As FoundationRecipe.warmupShare; absent: 5 steps. */
  warmupShare?: number;
}

export interface FinetuneValue {
  /** The weights to score: an HF model directory (full) or a PEFT adapter directory (LoRA). */
  weightsDir: string;
  mode: "full" | "lora";
  steps: number;
  tokens: number;
  validLoss: number | null;
  bestStep: number | null;
  /** Validation loss (nats per target token) after every evalEvery steps: the learning curve. */
  validation: { step: number; loss: number }[];
  seconds: number;
}

/** Fine-tune a foundation on training people (documents in `template`), validating on `valid`. */
export async function fineTune(
  context: StageContext,
  name: string,
  foundation: StepResult<FoundationValue>,
  recipe: FinetuneRecipe,
  data: {
    key: unknown; train: readonly PersonRecord[]; valid: readonly PersonRecord[]; template: DocumentTemplate;
    /** The foundation's pretraining people, for recipe.resumesReplayShare (covered by the foundation's key). */
    resumes?: readonly PersonRecord[];
  },
): Promise<StepResult<FinetuneValue>> {
  const { backend, seed, log } = context;
  const foundationDir = foundation.value.modelDir;
  const inputs = { foundation: foundation.key, data: data.key, template: data.template, recipe, seed };
  const step = await runStep(context.stepsDir, name, inputs, async (dir) => {
    const started = performance.now();
    const modeNote = recipe.mode === "lora" ? "LoRA (r=16, all projections)"
      : `full fine-tuning${recipe.frozen?.length ? ` (${recipe.frozen.join(", ")} frozen)` : ""}`;
    const replayed = replayedResumes(data.resumes, recipe.resumesReplayShare);
    log(`      ${name}: ${modeNote} on ${data.train.length} training documents${relabelledNote(data.train.length, recipe.relabelledShare)}` +
      (replayed.length > 0 ? ` + ${replayed.length} of the foundation's resumes replayed` : ""));
    const tokenizer = Tokenizer.fromDirectory(foundationDir);
    const config = readLlamaConfig(foundationDir);
    const mode: TrainingMode =
      recipe.mode === "full"
        ? { kind: "full", frozen: recipe.frozen ?? [] }
        : { kind: "lora", lora: { rank: 16, alpha: 32, dropout: 0.05, targetModules: [...LORA_TARGET_MODULES], useRslora: false } };
    const train = [
      ...documentSequences(data.train, tokenizer, data.template, recipe.loss, "train"),
      ...relabelledSequences(data.train, recipe.relabelledShare, recipe.relabelledLoss, seed + 2, tokenizer, data.template, recipe.loss),
      ...titleListSequences(recipe.titleListCopies, tokenizer, data.template, seed + 1, recipe.loss, recipe.titleListRepeatGroups ?? 0),
      ...documentSequences(replayed, tokenizer, data.template, recipe.loss, "replayed resumes"),
    ];
    const bar = trainingBar(name);
    let tokens = 0;
    const result = await trainLlama({
      backend,
      config,
      weights: loadLlamaWeights(openCheckpoint(foundationDir), config),
      baseModelDir: foundationDir,
      train,
      valid: documentSequences(data.valid, tokenizer, data.template, recipe.loss, "valid"),
      outDir: join(dir, "train"),
      mode,
      learningRate: recipe.learningRate,
      schedule: "cosine",
      warmupSteps: FINETUNE_WARMUP_STEPS,
      warmupShare: recipe.warmupShare,
      minLearningRateRatio: 0.1,
      epochs: recipe.epochs,
      batchTokens: 4096,
      adamw: ADAMW_DEFAULTS,
      maxGradNorm: 1,
      evalEvery: recipe.evalEvery,
      patience: 0,
      checkpointEvery: 0,
      seed,
      onStep: (record, progress) => {
        tokens = progress.tokensTotal;
        bar.onStep(record, progress);
      },
    });
    bar.finish();
    const weightsDir = recipe.evalEvery > 0 && result.bestStep !== null ? join(dir, "train", "best") : result.finalDir!;
    return {
      weightsDir, mode: recipe.mode, steps: result.steps, tokens, validLoss: result.bestValidLoss, bestStep: result.bestStep,
      validation: result.validation, seconds: (performance.now() - started) / 1000,
    };
  });
  if (step.reused) log(`      ${name}: reusing ${step.value.weightsDir}`);
  return step;
}

export interface PredictionsValue {
  path: string;
  seconds: number;
  personYears: number;
}

/** Score `people` with a predictor into `name/predictions.jsonl` (cached by `inputs`). */
export async function scorePredictions(
  context: StageContext,
  name: string,
  inputs: unknown,
  people: readonly PersonRecord[],
  makePredictor: () => Promise<Predictor>,
  meta: Record<string, unknown> = {},
): Promise<StepResult<PredictionsValue>> {
  const step = await runStep(context.stepsDir, `predictions-${name}`, inputs, async (dir) => {
    const predictor = await makePredictor();
    const started = performance.now();
    const personYears = countPersonYears({ people: [...people] });
    const bar = new ProgressBar(`score ${predictor.name}`, personYears, " person-years");
    const logProbs = await predictor.predict(people, (done) => bar.update(done));
    bar.finish();
    const seconds = (performance.now() - started) / 1000;
    const path = join(dir, "predictions.jsonl");
    writePredictions(path, predictionHeader(predictor.name, predictor.taxonomy, predictor.normalised, { ...meta, seed: context.seed, seconds }), predictionRecords(people, logProbs));
    return { path, seconds, personYears };
  });
  if (step.reused) context.log(`      ${name}: reusing predictions`);
  return step;
}

/** The equal-weight ensemble of members' predictions files (score/ensemble.ts) as `name/predictions.jsonl` (cached by the members' paths, which hold their steps' keys). */
export async function ensemblePredictions(context: StageContext, name: string, label: string, members: readonly string[]): Promise<StepResult<PredictionsValue>> {
  const step = await runStep(context.stepsDir, `predictions-${name}`, { members }, async (dir) => {
    const path = join(dir, "predictions.jsonl");
    const { records } = await writeEnsemble(members, path, label);
    return { path, seconds: 0, personYears: records };
  });
  if (step.reused) context.log(`      ${name}: reusing predictions`);
  return step;
}

/** An LLM predictor: the foundation alone, or the foundation with its fine-tuned weights. */
export function llmPredictor(
  context: StageContext,
  name: string,
  foundation: StepResult<FoundationValue>,
  template: DocumentTemplate,
  finetuned?: StepResult<FinetuneValue>,
): () => Promise<Predictor> {
  return async () => {
    const foundationDir = foundation.value.modelDir;
    const { model } = !finetuned
      ? loadLlama(foundationDir, context.backend)
      : finetuned.value.mode === "full"
        ? loadLlama(finetuned.value.weightsDir, context.backend)
        : loadLlamaWithAdapter(foundationDir, finetuned.value.weightsDir, context.backend);
    return new LlmPredictor(name, new LlmScorer(model, Tokenizer.fromDirectory(foundationDir), { template, taxonomy: occupationTaxonomy() }));
  };
}

/** The multinomial logit's settings (part of its predictions' cache key). */
export const LOGIT_SETTINGS = { l2: 1e-3, iterations: 50 } as const;

/** The multinomial logit baseline fitted on `train`, with a progress bar labelled `label`. */
export function logitPredictor(label: string, train: readonly PersonRecord[]): () => Promise<Predictor> {
  return async () => {
    const bar = new ProgressBar(`${label} L-BFGS`, LOGIT_SETTINGS.iterations, " iterations");
    const logit = LogitPredictor.fit(train, {
      l2: LOGIT_SETTINGS.l2, maxIterations: LOGIT_SETTINGS.iterations, taxonomy: occupationTaxonomy(), onIteration: (i) => bar.update(i),
    });
    bar.finish();
    return logit;
  };
}

/** CAREER of `preset`, pretrained on `resumes` and fine-tuned on the survey (best validation epoch kept). */
export function careerPredictor(
  context: StageContext,
  label: string,
  preset: CareerPresetName,
  survey: { train: readonly PersonRecord[]; valid: readonly PersonRecord[] },
  resumes: readonly PersonRecord[],
): () => Promise<Predictor> {
  return async () => {
    let bar: ProgressBar | undefined;
    const career = await trainCareerBaseline({
      survey, resumes, preset, seed: context.seed, backend: context.backend, taxonomy: occupationTaxonomy(),
      onProgress: (p) => {
        bar ??= new ProgressBar(`${label} ${p.phase}`, p.totalSteps, " steps");
        bar.update(p.step);
      },
    });
    bar?.finish();
    return career.predictor;
  };
}
