/**
 * The demo: the LABOR-LLM method end to end on synthetic data with a known truth.
 *
 *   survey panel (nlsy79-like) + resumes corpus (another population)
 *   → foundation Llama: random init, pretrained on resume documents (full training)
 *   → FT-LLM: LoRA fine-tuned on the survey's training split
 *   → every model scores the survey's test split: oracle, Markov, logit, CAREER, off-the-shelf LLM, FT-LLM
 *   → one table (perplexity, calibration, stay/move, labour force) + report.html
 *
 * Every step is cached by a hash of its inputs (src/demo/steps.ts): a rerun reuses finished steps.
 */
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Backend } from "../engine/backend.js";
import { countPersonYears, panelToCsv, type PersonRecord } from "../data/panel.js";
import { generateSyntheticPanel } from "../data/synthetic.js";
import { assignSplits, type SplitName } from "../data/splits.js";
import { occupationTaxonomy } from "../data/taxonomy.js";
import { initModel } from "../model/init.js";
import { MODEL_PRESETS } from "../model/presets.js";
import { loadLlama } from "../model/load.js";
import { loadLlamaWithAdapter } from "../model/adapter.js";
import { loadLlamaWeights } from "../model/weights.js";
import type { TrainingMode } from "../model/llama-train.js";
import { LORA_TARGET_MODULES } from "../model/lora.js";
import { openCheckpoint } from "../io/safetensors.js";
import { readLlamaConfig } from "../io/hf-config.js";
import { Tokenizer } from "../text/tokenizer.js";
import { documentTemplate, lossMask, renderDocument, tokenizeDocument, TokenOffsets, type LossMaskMode } from "../text/documents.js";
import type { TrainingSequence } from "../train/batches.js";
import { trainLlama } from "../train/loop.js";
import { ADAMW_DEFAULTS } from "../train/optimizer.js";
import { LlmScorer } from "../score/llm-scorer.js";
import { LlmPredictor, type Predictor } from "../score/predictor.js";
import { OraclePredictor } from "../score/baselines/oracle.js";
import { fitMarkovTuned } from "../score/baselines/markov.js";
import { LogitPredictor } from "../score/baselines/logit.js";
import { trainCareerBaseline } from "../score/baselines/career.js";
import { predictionHeader, predictionRecords, writePredictions } from "../score/predictions.js";
import { evaluateFiles, writeEvaluationReport } from "../report/write.js";
import type { ModelMetrics } from "../score/metrics.js";
import { ProgressBar, formatSeconds } from "../cli/progress.js";
import type { CareerPresetName } from "../model/career.js";
import { runStep } from "./steps.js";

export interface DemoSizes {
  /** Survey people (nlsy79 profile); split 80/10/10 by person. */
  people: number;
  /** People in the resumes corpus (pretraining for the foundation model and CAREER). */
  resumes: number;
  /** Llama preset of the foundation model. */
  modelPreset: string;
  /** CAREER preset. */
  careerPreset: CareerPresetName;
  pretrainEpochs: number;
  finetuneEpochs: number;
  /** Test-split people every model scores (LLM scoring is the slowest step: ~2,200 trie rows per person-year). */
  testPeople: number;
  /** Pretraining loss: every token of the resume documents (the plain next-token objective) or only the targets. */
  pretrainLoss: LossMaskMode;
  /** Fine-tuning loss, the same choice for the survey documents. */
  finetuneLoss: LossMaskMode;
}

export const DEMO_DEFAULTS: DemoSizes = {
  people: 1000,
  resumes: 2000,
  modelPreset: "demo",
  careerPreset: "small",
  // Three passes over the resumes: the 2-layer model learns to copy the previous title (its title loss drops
  // from ~1.4 to ~0.4 nats/token between steps ~110 and ~260), which one pass never reaches.
  pretrainEpochs: 3,
  finetuneEpochs: 2,
  testPeople: 30,
  pretrainLoss: "targets",
  finetuneLoss: "targets",
};

export interface DemoOptions extends DemoSizes {
  outDir: string;
  seed: number;
  backend: Backend;
  log?: (line: string) => void;
}

export interface DemoResult {
  metrics: ModelMetrics[];
  table: string;
  reportDir: string;
  seconds: number;
}

const TEMPLATE = documentTemplate("default");

interface Survey {
  train: PersonRecord[];
  valid: PersonRecord[];
  test: PersonRecord[];
  resumes: PersonRecord[];
}

/** The synthetic survey (split by person) and resumes corpus; deterministic in the seed. */
export function demoData(people: number, resumes: number, seed: number): Survey {
  const survey = generateSyntheticPanel({ profile: "nlsy79", people, seed }).panel.people;
  const splits = assignSplits(
    survey.map((p) => p.personId),
    seed,
  );
  const pick = (name: SplitName) => survey.filter((p) => splits.get(p.personId) === name);
  const corpus = generateSyntheticPanel({ profile: "resumes", people: resumes, seed: seed + 1 }).panel.people;
  return { train: pick("train"), valid: pick("valid"), test: pick("test"), resumes: corpus };
}

function documentsOf(people: readonly PersonRecord[], tokenizer: Tokenizer, label: string, loss: LossMaskMode = "all"): TrainingSequence[] {
  const offsets = new TokenOffsets(tokenizer);
  const bar = new ProgressBar(`tokenize ${label}`, people.length, " documents");
  const sequences = people.map((person, i) => {
    const document = tokenizeDocument(renderDocument(person, TEMPLATE), tokenizer, { offsets });
    if (i % 200 === 0) bar.update(i);
    return { ids: Int32Array.from(document.ids), lossMask: lossMask(document, loss) };
  });
  bar.finish();
  return sequences;
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

async function writeModelPredictions(dir: string, predictor: Predictor, people: readonly PersonRecord[], meta: Record<string, unknown>) {
  const started = performance.now();
  const personYears = countPersonYears({ people: [...people] });
  const bar = new ProgressBar(`score ${predictor.name}`, personYears, " person-years");
  const logProbs = await predictor.predict(people, (done) => bar.update(done));
  bar.finish();
  const seconds = (performance.now() - started) / 1000;
  const path = join(dir, "predictions.jsonl");
  writePredictions(path, predictionHeader(predictor.name, predictor.taxonomy, predictor.normalised, { ...meta, seconds }), predictionRecords(people, logProbs));
  return { path, seconds, personYears };
}

export async function runDemoPipeline(options: DemoOptions): Promise<DemoResult> {
  const started = performance.now();
  const log = options.log ?? ((line: string) => console.log(line));
  const { backend, seed } = options;
  const stepsDir = join(options.outDir, "steps");
  const taxonomy = occupationTaxonomy();
  const config = MODEL_PRESETS[options.modelPreset];
  if (!config) throw new Error(`--model-preset: unknown preset "${options.modelPreset}"`);

  log(`[1/5] data: synthetic nlsy79 survey of ${options.people} people and a resumes corpus of ${options.resumes}`);
  const data = demoData(options.people, options.resumes, seed);
  data.test = data.test.slice(0, options.testPeople);
  mkdirSync(options.outDir, { recursive: true });
  const panelPath = join(options.outDir, "survey-panel.csv");
  if (!existsSync(panelPath)) writeFileSync(panelPath, panelToCsv({ people: [...data.train, ...data.valid, ...data.test] }));
  log(
    `      survey: ${data.train.length}/${data.valid.length}/${data.test.length} people train/valid/test ` +
      `(scoring the first ${data.test.length} test people: ${countPersonYears({ people: data.test })} person-years); resumes: ${countPersonYears({ people: data.resumes })} person-years`,
  );
  const dataKey = { people: options.people, resumes: options.resumes, seed, testPeople: options.testPeople };

  const foundation = await runStep(stepsDir, "foundation", { dataKey, preset: options.modelPreset, config, epochs: options.pretrainEpochs, init: "small", loss: options.pretrainLoss }, async (dir) => {
    log(`[2/5] foundation model: random ${options.modelPreset} Llama, pretrained on resume documents`);
    const initDir = join(dir, "init");
    initModel({ config, seed, dtype: "f32", outDir: initDir, scheme: "small" });
    const tokenizer = Tokenizer.fromDirectory(initDir);
    const bar = trainingBar("pretrain");
    const result = await trainLlama({
      backend,
      config,
      weights: loadLlamaWeights(openCheckpoint(initDir), config),
      baseModelDir: initDir,
      train: documentsOf(data.resumes, tokenizer, "resumes", options.pretrainLoss),
      outDir: join(dir, "train"),
      mode: { kind: "full" },
      learningRate: 3e-3,
      schedule: "cosine",
      warmupSteps: 10,
      minLearningRateRatio: 0.1,
      epochs: options.pretrainEpochs,
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
    return { modelDir: result.finalDir!, steps: result.steps, lastLoss: result.losses.at(-1) ?? null };
  });
  if (foundation.reused) log(`[2/5] foundation model: reusing ${foundation.value.modelDir}`);
  const foundationDir = foundation.value.modelDir;

  const finetune = await runStep(stepsDir, "finetune", { foundation: foundation.key, dataKey, epochs: options.finetuneEpochs, loss: options.finetuneLoss }, async (dir) => {
    log(`[3/5] FT-LLM: LoRA (r=16, all projections) on the survey's ${data.train.length} training documents`);
    const tokenizer = Tokenizer.fromDirectory(foundationDir);
    const baseConfig = readLlamaConfig(foundationDir);
    const mode: TrainingMode = {
      kind: "lora",
      lora: { rank: 16, alpha: 32, dropout: 0.05, targetModules: [...LORA_TARGET_MODULES], useRslora: false },
    };
    const bar = trainingBar("fine-tune");
    const result = await trainLlama({
      backend,
      config: baseConfig,
      weights: loadLlamaWeights(openCheckpoint(foundationDir), baseConfig),
      baseModelDir: foundationDir,
      train: documentsOf(data.train, tokenizer, "survey train", options.finetuneLoss),
      valid: documentsOf(data.valid, tokenizer, "survey valid", options.finetuneLoss),
      outDir: join(dir, "train"),
      mode,
      learningRate: 3e-3,
      schedule: "cosine",
      warmupSteps: 5,
      minLearningRateRatio: 0.1,
      epochs: options.finetuneEpochs,
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
    return { adapterDir: result.finalDir!, steps: result.steps, validLoss: result.bestValidLoss };
  });
  if (finetune.reused) log(`[3/5] FT-LLM: reusing ${finetune.value.adapterDir}`);

  log(`[4/5] scoring the test split (${countPersonYears({ people: data.test })} person-years) with every model`);
  const meta = { split: "test", seed };
  const predictionFiles: string[] = [];
  const scoreWith = async (name: string, inputs: unknown, makePredictor: () => Promise<Predictor>) => {
    const step = await runStep(stepsDir, `predictions-${name}`, { dataKey, inputs }, async (dir) => {
      const predictor = await makePredictor();
      return writeModelPredictions(dir, predictor, data.test, meta);
    });
    if (step.reused) log(`      ${name}: reusing predictions`);
    predictionFiles.push(step.value.path);
  };
  await scoreWith("oracle", {}, async () => new OraclePredictor("nlsy79", taxonomy));
  await scoreWith("markov", {}, async () => fitMarkovTuned(data.train, data.valid, undefined, taxonomy));
  await scoreWith("logit", { l2: 1e-3, iterations: 50 }, async () => {
    const bar = new ProgressBar("logit L-BFGS", 50, " iterations");
    const logit = LogitPredictor.fit(data.train, { l2: 1e-3, maxIterations: 50, taxonomy, onIteration: (i) => bar.update(i) });
    bar.finish();
    return logit;
  });
  await scoreWith("career", { preset: options.careerPreset }, async () => {
    let bar: ProgressBar | undefined;
    const career = await trainCareerBaseline({
      survey: { train: data.train, valid: data.valid },
      resumes: data.resumes,
      preset: options.careerPreset,
      seed,
      backend,
      taxonomy,
      onProgress: (p) => {
        bar ??= new ProgressBar(`CAREER ${p.phase}`, p.totalSteps, " steps");
        bar.update(p.step);
      },
    });
    bar?.finish();
    return career.predictor;
  });
  const llmPredictor = (name: string, load: () => ReturnType<typeof loadLlama>) => async () => {
    const { model } = load();
    return new LlmPredictor(name, new LlmScorer(model, Tokenizer.fromDirectory(foundationDir), { template: TEMPLATE, taxonomy }));
  };
  await scoreWith("off-the-shelf-llm", { foundation: foundation.key }, llmPredictor("off-the-shelf LLM", () => loadLlama(foundationDir, backend)));
  await scoreWith(
    "ft-llm",
    { finetune: finetune.key },
    llmPredictor("FT-LLM", () => loadLlamaWithAdapter(foundationDir, finetune.value.adapterDir, backend)),
  );

  log("[5/5] evaluation");
  const metrics = await evaluateFiles(predictionFiles);
  const reportDir = join(options.outDir, "report");
  const seconds = (performance.now() - started) / 1000;
  const table = writeEvaluationReport(reportDir, metrics, {
    title: "labor-llm demo: next-occupation prediction on a synthetic NLSY79-like survey",
    note:
      `Synthetic data with a known truth: ${options.people} survey people (test split ${data.test.length}), ` +
      `${options.resumes} resumes; foundation ${options.modelPreset} Llama; seed ${seed}; ${backend.describe()}; ` +
      `pipeline time ${formatSeconds(seconds)}.`,
    sources: predictionFiles,
  });
  return { metrics, table, reportDir, seconds };
}
