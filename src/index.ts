/**
 * labor-llm's public, typed API (what other tools embed). Today: the engine foundation — load an HF Llama
 * checkpoint onto a backend, tokenize, and compute per-token log-probabilities; create random models; export
 * GGUF. Training, next-occupation scoring and evaluation arrive with their issues.
 */
export type { AttentionTrainingOptions, Backend, Tensor, DType, HostArray, MatmulDtype, MatmulOptions } from "./engine/backend.js";
export { createBackend, probeBackends, type BackendName, type BackendOptions } from "./engine/select.js";
export { createCpuBackend } from "./engine/cpu/backend.js";
export type { CpuIsa, CpuIsaInfo } from "./engine/native.js";
export type { LlamaConfig } from "./io/llama-config.js";
export { Llama, KvCache, type ForwardRequest, type ForwardResult } from "./model/llama.js";
export { loadLlama, type LoadedLlama } from "./model/load.js";
export { initModel, type InitOptions } from "./model/init.js";
export { MODEL_PRESETS } from "./model/presets.js";
export { Tokenizer } from "./text/tokenizer.js";
export { openSafetensors, openCheckpoint, writeSafetensors } from "./io/safetensors.js";
export { readLlamaConfig, parseLlamaConfig } from "./io/hf-config.js";
export { exportGguf } from "./model/export-gguf.js";

// Data: occupations, panels, synthetic careers with a known truth, splits, documents.
export { occupationTaxonomy, OccupationTaxonomy, type Outcome } from "./data/taxonomy.js";
export type { Panel, PersonRecord, Wave, PanelRow, EducationLevel } from "./data/panel.js";
export { loadPanel, loadPanelCsv, loadPanelJsonl, PanelValidationError } from "./data/load.js";
export { generateSyntheticPanel, type SyntheticPanel, type GenerateOptions } from "./data/synthetic.js";
export { PROFILE_NAMES, type ProfileName } from "./data/profiles.js";
export { assignSplits, splitOfPerson, type SplitName } from "./data/splits.js";
export { panelStatistics, formatPanelStatistics } from "./data/stats.js";
export {
  crosswalkTables,
  CrosswalkTables,
  CODE_VINTAGES,
  type CodeVintage,
  type CrosswalkLookup,
} from "./data/crosswalk-tables.js";
export { builtInSchedule, parseSchedule, readScheduleFile, singleVintageSchedule, type VintageSchedule } from "./data/crosswalk-schedule.js";
export {
  crosswalkExtract,
  formatCrosswalkSummary,
  readRecodes,
  type CrosswalkOptions,
  type CrosswalkResult,
  type CrosswalkSummary,
  type SpecialPolicy,
} from "./data/crosswalk-import.js";
export {
  documentTemplate,
  renderDocument,
  tokenizeDocument,
  lossMask,
  candidateTokenizations,
  TEMPLATE_NAMES,
  type TemplateName,
  type RenderedDocument,
  type TokenizedDocument,
} from "./text/documents.js";

// Training: LoRA / full fine-tuning, PEFT adapters, merging.
export { TrainableLlama, randomLlamaWeights, type TrainingMode, type PackedBatch, type TrainableParameter } from "./model/llama-train.js";
export { parameterUnits, type ParameterGroup, type ParameterUnit } from "./model/parameter-groups.js";
export { LORA_TARGET_MODULES, parseTargetModules, type LoraConfig, type LoraTargetModule, type LoraMatrices } from "./io/lora-config.js";
export { loraScaling } from "./model/lora.js";
export { readPeftAdapter, writePeftAdapter, type PeftAdapter } from "./io/peft.js";
export { loadLlamaWithAdapter, mergeAdapterIntoCheckpoint } from "./model/adapter.js";
export { trainLlama, validationLoss, type TrainOptions, type TrainResult } from "./train/loop.js";
export { readTrainingSequences } from "./train/data.js";
export { buildPackedBatch, windowSequences, type TrainingSequence } from "./train/batches.js";
export { epochOrder, packInOrder } from "./util/packing.js";
export { AdamW, ADAMW_DEFAULTS, clipGradientNorm, type AdamWConfig } from "./train/optimizer.js";
export { learningRateAt, SCHEDULE_KINDS, type ScheduleKind } from "./train/schedule.js";
export { trainingStep, benchmarkTrainingSteps, type StepBenchmarkOptions, type StepBenchmarkResult } from "./train/step.js";

// Scoring and evaluation: next-occupation distributions (prefix-shared through a candidate trie, or naive),
// the predictions format, metrics, baselines, reports.
export { CandidateTrie } from "./score/trie.js";
export { LlmScorer, type LlmScorerOptions, type ScoringCallOptions, type ScoringProgress } from "./score/llm-scorer.js";
export { normaliseLogprobs } from "./score/normalise.js";
export { forwardRows, type RowForwardRequest } from "./model/llama-rows.js";
export { benchmarkScoringPaths, type ScoringBenchmark, type ScoringPathTiming } from "./score/benchmark.js";
export { LlmPredictor, type Predictor, type PredictionProgress } from "./score/predictor.js";
export { scoreToFile, JOURNAL_SUFFIX, type ScoreFileOptions, type ScoreFileResult, type ResumeInfo } from "./score/score-file.js";
export { mergePredictionShards, parseShard, shardRange, type Shard, type ShardMeta, type MergeResult } from "./score/shards.js";
export { OraclePredictor } from "./score/baselines/oracle.js";
export { MarkovPredictor, fitMarkovTuned, type MarkovOptions } from "./score/baselines/markov.js";
export { LogitPredictor } from "./score/baselines/logit.js";
export {
  CareerPredictor, trainCareerBaseline, CAREER_PRETRAIN_DEFAULTS, CAREER_FINETUNE_DEFAULTS,
  type TrainCareerBaselineOptions, type CareerBaseline, type CareerPhaseOptions,
} from "./score/baselines/career.js";
export {
  CareerModel, CAREER_PRESETS, CAREER_PRESET_NAMES, CAREER_COVARIATES, careerLogProbabilities,
  encodeCareer, packCareerBatch, twoStageLogProbabilities, twoStageGradient,
  type CareerConfig, type CareerPresetName, type CareerModelOptions, type CareerSequence, type CareerBatch,
} from "./model/career.js";
export { trainCareer, meanCareerLoss, type CareerTrainingOptions, type CareerTrainingResult, type CareerProgress } from "./train/career.js";
export { CareerFeatureSpace, MultinomialLogit, lbfgsMinimise, type LogitFitOptions } from "./model/logit.js";
export {
  predictionHeader,
  predictionRecords,
  readPredictions,
  readPredictionsHeader,
  writePredictions,
  PREDICTIONS_FORMAT,
  type PredictionHeader,
  type PredictionRecord,
} from "./score/predictions.js";
export { MetricsAccumulator, computeMetrics, areaUnderCurve, ReliabilityAccumulator, type ModelMetrics, type Calibration, type ReliabilityBin, type BinaryTaskMetrics } from "./score/metrics.js";
export { metricsMarkdown, metricsCsv, groupsCsv } from "./report/tables.js";
export { metricsHtml } from "./report/html.js";
