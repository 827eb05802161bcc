/**
 * `labor-llm experiment`: the paper's comparisons on synthetic surveys with a known truth, in one resumable
 * pipeline of cached stages (stages.ts), and one report with 95% bootstrap intervals by person (report.ts).
 *
 *   resumes corpus (another population) → foundation Llama (and a smaller one for "data vs size")
 *   for each survey profile (nlsy79, nlsy97, psid):
 *     oracle, Markov, logit, CAREER (small; and the paper's size), off-the-shelf LLM, FT-LLM
 *   then, on the main survey (the first profile), after every survey's main table:
 *     titles vs codes, without birth year, without education (each fine-tuned and scored with its template);
 *     data vs size: the smaller foundation fine-tuned on the survey plus career data from another population
 *     vs the larger one fine-tuned on the survey alone (and the smaller one on the survey alone)
 */
import { join } from "node:path";
import type { Backend } from "../engine/backend.js";
import { countPersonYears, type PersonRecord } from "../data/panel.js";
import type { ProfileName } from "../data/profiles.js";
import { occupationTaxonomy } from "../data/taxonomy.js";
import { MODEL_PRESETS } from "../model/presets.js";
import type { CareerPresetName } from "../model/career.js";
import { documentTemplate, type TemplateName } from "../text/documents.js";
import { OraclePredictor } from "../score/baselines/oracle.js";
import { fitMarkovTuned } from "../score/baselines/markov.js";
import { formatSeconds } from "../util/progress.js";
import {
  careerPredictor, ensemblePredictions, fineTune, llmPredictor, LOGIT_SETTINGS, logitPredictor, pretrainFoundation, resumesCorpus, scorePredictions, syntheticSurvey,
  type FinetuneRecipe, type FinetuneValue, type FoundationRecipe, type FoundationValue, type StageContext,
} from "./stages.js";
import type { StepResult } from "./steps.js";
import { writeExperimentReport, type ExperimentReport, type ExperimentReportInput } from "./report.js";

/** The sizes of one run of the experiment. */
export interface ExperimentScale {
  /** People per synthetic survey (split 80/10/10 by person). */
  surveyPeople: number;
  /** Test people every model scores, per survey (the first of the test split). */
  testPeople: number;
  /** People of the resumes corpus the foundations (and CAREER) are pretrained on. */
  resumes: number;
  /** People of the extra career data (another population, a second resumes draw) of the data-vs-size comparison. */
  extraCareers: number;
  surveys: ProfileName[];
  foundation: Omit<FoundationRecipe, "config">;
  /** The smaller foundation of the data-vs-size comparison (same recipe otherwise). */
  smallerPreset: string;
  finetune: FinetuneRecipe;
  /** CAREER sizes scored on every survey; `careerPaperOnMain`: the paper's size on the main survey only. */
  careerPresets: CareerPresetName[];
  careerPaperOnMain: boolean;
  bootstrapResamples: number;
}

/**
 * The dev scale's foundation, the recipe found by experiments/recipe/ (its README lists what was tried): the
 * demo's Llama, 8 epochs, the title list, and one relabelled copy per resume whose loss falls only on the lines
 * that stay in the renamed title, which teaches copying any title without teaching a move destination (runs Y).
 * Peak lr 1.5e-3, not 3e-3: at 3e-3 one seed in three learned to copy the line above late and its FT-LLM lost
 * ~0.18 nats; at 1.5e-3, pooled over three seeds, the FT-LLM is 0.060 [0.023, 0.098] nats better (runs Olr).
 */
const DEV_FOUNDATION: Omit<FoundationRecipe, "config"> = {
  preset: "demo", epochs: 8, learningRate: 1.5e-3, loss: "targets", titleListCopies: 20,
  relabelledShare: 1, relabelledLoss: "stays",
};
/** Full fine-tuning with the title list replayed, in groups of 4 titles each written twice (run Z2). */
const FULL_FINETUNE: FinetuneRecipe = { mode: "full", learningRate: 1e-3, epochs: 4, loss: "targets", evalEvery: 25, titleListCopies: 10, titleListRepeatGroups: 4 };

/**
 * Named scales. `dev` fits a developer's session on 2 CPU cores; `gpu` is the larger run for a GPU machine;
 * `tiny` is for the test suite (the machinery, not the findings).
 */
export const EXPERIMENT_SCALES: Record<"tiny" | "dev" | "gpu", ExperimentScale> = {
  tiny: {
    surveyPeople: 40, testPeople: 1, resumes: 40, extraCareers: 20, surveys: ["nlsy79", "psid"],
    foundation: { preset: "tiny", epochs: 1, learningRate: 3e-3, loss: "targets", titleListCopies: 1 },
    smallerPreset: "tiny", finetune: { mode: "full", learningRate: 1e-3, epochs: 1, loss: "targets", evalEvery: 2, titleListCopies: 1 },
    careerPresets: ["tiny"], careerPaperOnMain: false, bootstrapResamples: 50,
  },
  dev: {
    surveyPeople: 1000, testPeople: 50, resumes: 2000, extraCareers: 2000, surveys: ["nlsy79", "nlsy97", "psid"],
    foundation: DEV_FOUNDATION, smallerPreset: "demo-small", finetune: FULL_FINETUNE,
    careerPresets: ["small"], careerPaperOnMain: true, bootstrapResamples: 1000,
  },
  gpu: {
    surveyPeople: 5000, testPeople: 300, resumes: 20000, extraCareers: 20000, surveys: ["nlsy79", "nlsy97", "psid"],
    foundation: { preset: "small", epochs: 3, learningRate: 1e-3, loss: "targets", titleListCopies: 20 },
    smallerPreset: "demo", finetune: { ...FULL_FINETUNE, learningRate: 3e-4, evalEvery: 100 },
    careerPresets: ["small", "paper"], careerPaperOnMain: false, bootstrapResamples: 2000,
  },
};

export interface ExperimentOptions {
  scale: ExperimentScale;
  scaleName: string;
  outDir: string;
  seed: number;
  /**
   * Models per ensemble (default 1: none). With K > 1, every survey's FT-LLM and CAREER are trained K times on
   * the same data (member j ≥ 2 from model seed seed + MEMBER_SEED_STRIDE·(j − 1): its own foundation,
   * fine-tuning and CAREER), and "FT-LLM ×K" and "CAREER (…) ×K", the equal-weight mixtures of the members'
   * predictions (score/ensemble.ts), are compared as well.
   */
  members?: number;
  backend: Backend;
  log?: (line: string) => void;
}

/** One scored model of one survey: its predictions file and, for fine-tuned LLMs, the fine-tuning run. */
export interface ScoredModel {
  survey: ProfileName;
  /** Row label in the tables, e.g. "FT-LLM", "CAREER (paper)", "FT-LLM, codes". */
  model: string;
  path: string;
  seconds: number;
  finetune?: FinetuneValue;
  /** Which run (e.g. "seed 1") when a report pools several runs; absent in a single run's report. */
  run?: string;
}

const ABLATIONS: { template: TemplateName; label: string }[] = [
  { template: "code", label: "FT-LLM, codes" },
  { template: "no-birth-year", label: "FT-LLM, no birth year" },
  { template: "no-education", label: "FT-LLM, no education" },
];

/** Survey i of the experiment is drawn with seed + i·stride (far from the resumes' seed + 1 and seed + 2). */
const SURVEY_SEED_STRIDE = 1000;
/**
 * Ensemble member j ≥ 2 trains its models from seed + stride·(j − 1), as `labor-llm demo --model-seed` does in
 * experiments/recipe/runs-e.sh (member b of seed S: 1000 + S). Model seeds and data seeds feed different draws.
 */
export const MEMBER_SEED_STRIDE = 1000;

/** A row label as part of a step's directory name ("CAREER (small) ×2" → "career-small-2"). */
function stepSlug(label: string): string {
  return label.toLowerCase().replace(/[^a-z0-9]+/g, "-");
}

/** Row label of member j (1-based) of a model's ensemble, and of the ensemble of K. */
function memberLabel(model: string, member: number): string {
  return member === 1 ? model : `${model}, member ${member}`;
}
function ensembleLabel(model: string, members: number): string {
  return `${model} ×${members}`;
}

/** What one run of the pipeline scored: the input of its report (and of a report pooling several runs). */
interface ExperimentRun {
  scored: ScoredModel[];
  mainSurvey: ProfileName;
  foundations: { name: string; value: FoundationValue }[];
}

/** The report's opening note: the scale, the recipe, the seeds, the machine and this invocation's time. */
function scaleNote(options: Omit<ExperimentOptions, "seed">, seeds: string, seconds: number): string {
  const { scale } = options;
  return `Scale "${options.scaleName}": ${scale.surveyPeople} people per survey (first ${scale.testPeople} test people scored, or the whole test split where it holds fewer), ` +
    `${scale.resumes} resumes, ${scale.extraCareers} extra careers; foundation ${scale.foundation.preset}, smaller ${scale.smallerPreset}; ` +
    `fine-tuning ${scale.finetune.mode}, lr ${scale.finetune.learningRate}, ${scale.finetune.epochs} epochs, best validation kept; ` +
    `${seeds} (survey i drawn with seed + ${SURVEY_SEED_STRIDE}·i)` +
    `${(options.members ?? 1) > 1 ? `; ensembles of ${options.members} members (member j from model seed seed + ${MEMBER_SEED_STRIDE}·(j − 1))` : ""}; ${options.backend.describe()}; this invocation took ${formatSeconds(seconds)} (stages reused from the cache take no time).`;
}

function reportInput(options: Omit<ExperimentOptions, "seed">, run: ExperimentRun, seed: number, note: string): ExperimentReportInput {
  return {
    scored: run.scored, mainSurvey: run.mainSurvey, foundations: run.foundations, smallerPreset: options.scale.smallerPreset,
    largerPreset: options.scale.foundation.preset, resamples: options.scale.bootstrapResamples, seed, note,
  };
}

async function runAndReport(options: ExperimentOptions): Promise<{ run: ExperimentRun; report: ExperimentReport }> {
  const started = performance.now();
  const run = await runExperimentStages(options);
  const note = scaleNote(options, `seed ${options.seed}`, (performance.now() - started) / 1000);
  return { run, report: await writeExperimentReport(join(options.outDir, "report"), reportInput(options, run, options.seed, note)) };
}

/** One run of the experiment at one seed in options.outDir, with its report in outDir/report. */
export async function runExperiment(options: ExperimentOptions): Promise<ExperimentReport> {
  return (await runAndReport(options)).report;
}

/**
 * The experiment at several seeds — other survey draws, initialisations and batch orders, so the spread between
 * runs shows the randomness of training that one run's intervals by person leave out. Each seed runs in
 * outDir/seed-N (cached and resumable, with its own report); outDir/report pools them (report.ts).
 */
export async function runPooledExperiment(options: Omit<ExperimentOptions, "seed"> & { seeds: number[] }): Promise<ExperimentReport> {
  if (options.seeds.length < 2 || new Set(options.seeds).size !== options.seeds.length) {
    throw new Error(`experiment: pooling needs at least two different seeds, got ${options.seeds.join(", ")}`);
  }
  const started = performance.now();
  const log = options.log ?? ((line: string) => console.log(line));
  const pooled: ExperimentRun = { scored: [], mainSurvey: options.scale.surveys[0], foundations: [] };
  for (const [index, seed] of options.seeds.entries()) {
    log(`seed ${seed} (${index + 1}/${options.seeds.length}) in ${join(options.outDir, `seed-${seed}`)}`);
    const { run, report } = await runAndReport({ ...options, seed, outDir: join(options.outDir, `seed-${seed}`) });
    log(`seed ${seed}: report in ${report.dir}`);
    pooled.scored.push(...run.scored.map((s) => ({ ...s, run: `seed ${seed}` })));
    pooled.foundations.push(...run.foundations.map((f) => ({ ...f, name: `${f.name} (seed ${seed})` })));
  }
  log(`pooled report over seeds ${options.seeds.join(", ")}`);
  const seconds = (performance.now() - started) / 1000;
  const note = scaleNote(options, `seeds ${options.seeds.join(", ")}, each run in seed-N/ with its own report`, seconds);
  return writeExperimentReport(join(options.outDir, "report"), reportInput(options, pooled, options.seeds[0], note));
}

async function runExperimentStages(options: ExperimentOptions): Promise<ExperimentRun> {
  const { scale, seed, backend } = options;
  const log = options.log ?? ((line: string) => console.log(line));
  const context: StageContext = { stepsDir: join(options.outDir, "steps"), backend, seed, log };
  const taxonomy = occupationTaxonomy();
  const defaultTemplate = documentTemplate("default");
  const configOf = (preset: string) => {
    const config = MODEL_PRESETS[preset];
    if (!config) throw new Error(`experiment: unknown model preset "${preset}"`);
    return config;
  };

  log(`[1/4] foundations: ${scale.foundation.preset} and ${scale.smallerPreset} Llamas pretrained on ${scale.resumes} resumes`);
  const resumes = resumesCorpus(scale.resumes, seed + 1);
  const corpus = { key: { profile: "resumes", people: scale.resumes, seed: seed + 1 }, people: resumes, template: defaultTemplate };
  const foundation = await pretrainFoundation(context, `foundation-${scale.foundation.preset}`, { ...scale.foundation, config: configOf(scale.foundation.preset) }, corpus);
  const smaller = await pretrainFoundation(
    context, `foundation-${scale.smallerPreset}`, { ...scale.foundation, preset: scale.smallerPreset, config: configOf(scale.smallerPreset) }, corpus,
  );
  const foundations: { name: string; value: FoundationValue }[] = [
    { name: scale.foundation.preset, value: foundation.value },
    { name: scale.smallerPreset, value: smaller.value },
  ];
  const members = options.members ?? 1;
  // Ensemble members 2…K: the same recipes from their own model seed, on the same corpus and surveys.
  const memberRuns: { member: number; context: StageContext; foundation: StepResult<FoundationValue> }[] = [];
  for (let member = 2; member <= members; member++) {
    const memberContext = { ...context, seed: seed + MEMBER_SEED_STRIDE * (member - 1) };
    log(`      ensemble member ${member}/${members}: model seed ${memberContext.seed}`);
    const memberFoundation = await pretrainFoundation(memberContext, `foundation-${scale.foundation.preset}`, { ...scale.foundation, config: configOf(scale.foundation.preset) }, corpus);
    memberRuns.push({ member, context: memberContext, foundation: memberFoundation });
    foundations.push({ name: `${scale.foundation.preset}, member ${member}`, value: memberFoundation.value });
  }

  const scored: ScoredModel[] = [];
  const mainSurvey = scale.surveys[0];
  // The main survey's ablations run after every survey's main table, so an interrupted run has the headline first.
  let runAblations: (() => Promise<void>) | undefined;
  for (const [index, profile] of scale.surveys.entries()) {
    log(`[2/4] survey ${index + 1}/${scale.surveys.length}: synthetic ${profile}, ${scale.surveyPeople} people`);
    // Each survey its own seed (the main one keeps `seed`, as the demo's survey): independent samples, not the
    // same people and demographic draws under three profiles.
    const surveySeed = seed + SURVEY_SEED_STRIDE * index;
    const survey = syntheticSurvey(profile, scale.surveyPeople, surveySeed);
    const test = survey.test.slice(0, scale.testPeople);
    // The fine-tunings do not depend on how many test people are scored; the scores do.
    const dataKey = { profile, people: scale.surveyPeople, seed: surveySeed };
    const scoredKey = { ...dataKey, testPeople: test.length };
    log(`      ${survey.train.length}/${survey.valid.length}/${survey.test.length} people train/valid/test; scoring ${test.length} test people (${countPersonYears({ people: test })} person-years)`);
    const score = async (model: string, inputs: unknown, make: Parameters<typeof scorePredictions>[4], finetune?: StepResult<FinetuneValue>, stageContext = context) => {
      const step = await scorePredictions(stageContext, `${profile}-${stepSlug(model)}`, { dataKey: scoredKey, inputs }, test, make, { split: "test", survey: profile });
      scored.push({ survey: profile, model, path: step.value.path, seconds: step.value.seconds, finetune: finetune?.value });
      return step.value.path;
    };
    await score("oracle", {}, async () => new OraclePredictor(profile, taxonomy));
    await score("markov", {}, async () => fitMarkovTuned(survey.train, survey.valid, undefined, taxonomy));
    await score("logit", { ...LOGIT_SETTINGS }, logitPredictor(`${profile} logit`, survey.train));
    const careerPresets: CareerPresetName[] = [...scale.careerPresets];
    if (scale.careerPaperOnMain && profile === mainSurvey && !careerPresets.includes("paper")) careerPresets.push("paper");
    const ensembles = new Map<string, string[]>();  // model → its members' predictions files
    for (const preset of careerPresets) {
      const model = `CAREER (${preset})`;
      ensembles.set(model, [await score(model, { preset, resumes: corpus.key }, careerPredictor(context, `${profile} ${model}`, preset, survey, resumes))]);
    }
    await score("off-the-shelf LLM", { foundation: foundation.key }, llmPredictor(context, "off-the-shelf LLM", foundation, defaultTemplate));
    const surveyData = { key: dataKey, train: survey.train, valid: survey.valid, template: defaultTemplate, resumes };
    const finetuned = await fineTune(context, `${profile}-finetune`, foundation, scale.finetune, surveyData);
    ensembles.set("FT-LLM", [await score("FT-LLM", { finetune: finetuned.key }, llmPredictor(context, "FT-LLM", foundation, defaultTemplate, finetuned), finetuned)]);
    for (const { member, context: memberContext, foundation: memberFoundation } of memberRuns) {
      for (const preset of careerPresets) {
        const model = memberLabel(`CAREER (${preset})`, member);
        const make = careerPredictor(memberContext, `${profile} ${model}`, preset, survey, resumes);
        ensembles.get(`CAREER (${preset})`)!.push(await score(model, { preset, resumes: corpus.key, modelSeed: memberContext.seed }, make, undefined, memberContext));
      }
      const memberFinetuned = await fineTune(memberContext, `${profile}-finetune`, memberFoundation, scale.finetune, surveyData);
      const model = memberLabel("FT-LLM", member);
      const make = llmPredictor(memberContext, model, memberFoundation, defaultTemplate, memberFinetuned);
      ensembles.get("FT-LLM")!.push(await score(model, { finetune: memberFinetuned.key }, make, memberFinetuned, memberContext));
    }
    if (members > 1) {
      for (const [model, paths] of ensembles) {
        const label = ensembleLabel(model, members);
        const step = await ensemblePredictions(context, `${profile}-${stepSlug(label)}`, label, paths);
        scored.push({ survey: profile, model: label, path: step.value.path, seconds: 0 });
      }
    }

    if (profile === mainSurvey) {
      runAblations = async () => {
        log(`[3/4] ${profile}: titles vs codes, no birth year, no education; data vs size`);
        for (const { template: name, label } of ABLATIONS) {
          const template = documentTemplate(name);
          const ablated = await fineTune(context, `${profile}-finetune-${name}`, foundation, scale.finetune, { ...surveyData, template });
          await score(label, { finetune: ablated.key, template: name }, llmPredictor(context, label, foundation, template, ablated), ablated);
        }
        const extra = resumesCorpus(scale.extraCareers, seed + 2);
        const smallerAlone = await fineTune(context, `${profile}-finetune-${scale.smallerPreset}`, smaller, scale.finetune, surveyData);
        await score(`FT-LLM ${scale.smallerPreset}, survey only`, { finetune: smallerAlone.key }, llmPredictor(context, "smaller, survey", smaller, defaultTemplate, smallerAlone), smallerAlone);
        const withExtra = await fineTune(context, `${profile}-finetune-${scale.smallerPreset}-extra`, smaller, scale.finetune, {
          ...surveyData,
          key: { ...dataKey, extra: { profile: "resumes", people: scale.extraCareers, seed: seed + 2 } },
          train: [...survey.train, ...extra] as PersonRecord[],
        });
        await score(`FT-LLM ${scale.smallerPreset}, survey + careers`, { finetune: withExtra.key }, llmPredictor(context, "smaller, survey + careers", smaller, defaultTemplate, withExtra), withExtra);
      };
    }
  }
  await runAblations?.();

  log("[4/4] report: intervals by person, paired comparisons, learning curves");
  return { scored, mainSurvey, foundations };
}
