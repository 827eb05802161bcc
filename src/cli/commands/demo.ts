/** `labor-llm demo`: the main job — the whole method on synthetic data with a known truth (src/demo/pipeline.ts). */
import { rmSync } from "node:fs";
import { CAREER_PRESET_NAMES } from "../../model/career.js";
import { presetNames } from "../../model/presets.js";
import { LOSS_MASK_MODES } from "../../text/documents.js";
import { DEMO_DEFAULTS, runDemoPipeline } from "../../demo/pipeline.js";
import { RELABELLED_LOSSES } from "../../experiment/stages.js";
import { MAX_WARMUP_SHARE } from "../../train/loop.js";
import { UsageError, checkedNumber, frozenPartsFlag, oneOf, optionalInteger, optionalNumber, parseFlags } from "../args.js";
import { BACKEND_FLAGS, BACKEND_HELP, backendFromFlags } from "../backend-flags.js";
import { formatSeconds } from "../progress.js";

export const DEMO_HELP = `labor-llm demo [--out DIR] [--people N] [--resumes N] [--model-preset NAME] [--seed N] [--fresh]

The LABOR-LLM method end to end on built-in synthetic data whose true transition probabilities are known:
  1. generates an NLSY79-like survey panel (split by person) and a resumes corpus (another population)
  2. creates a foundation Llama and pretrains it on the resume documents and the occupation-title list
  3. fine-tunes it on the survey's training documents (the FT-LLM; full fine-tuning by default, the weights
     with the lowest validation loss kept)
  4. scores the test split with every model: oracle (the truth), Markov, logit, CAREER, off-the-shelf LLM, FT-LLM
  5. prints one comparison table and writes DIR/report/ (metrics.md/json/csv, groups.csv, report.html) and
     DIR/report/paired/ (95% bootstrap intervals by person and paired differences, as labor-llm experiment)
Finished steps are cached by a hash of their inputs and reused by a rerun. The defaults are the recipe found
by experiments/recipe/ (its README lists every run).
  --out DIR            working directory (default ./labor-llm-demo)
  --people N           survey people (default ${DEMO_DEFAULTS.people})
  --resumes N          resumes-corpus people (default ${DEMO_DEFAULTS.resumes})
  --model-preset NAME  foundation Llama: ${presetNames().join(", ")} (default ${DEMO_DEFAULTS.modelPreset})
  --career-preset NAME CAREER size: ${CAREER_PRESET_NAMES.join(", ")} (default ${DEMO_DEFAULTS.careerPreset})
  --pretrain-epochs N  foundation pretraining epochs over the resumes (default ${DEMO_DEFAULTS.pretrainEpochs})
  --pretrain-lr X      peak learning rate of the pretraining (cosine to a tenth) (default ${DEMO_DEFAULTS.pretrainLearningRate})
  --pretrain-warmup X  linear warmup over this share of the pretraining's steps, X in [0, ${MAX_WARMUP_SHARE}] (default: 10 steps)
  --title-list-copies N  copies of the occupation-title list in the pretraining corpus, each in its own
                       shuffled order: a real foundation model has read every title (default ${DEMO_DEFAULTS.titleListCopies})
  --title-list-repeat-groups K  write each pretraining title list in groups of K titles, each group twice, so
                       the model learns to copy any title it was shown (0: each title once) (default ${DEMO_DEFAULTS.titleListRepeatGroups})
  --finetune-mode M    full (every weight) | lora (r=16, alpha 32, all projections) (default ${DEMO_DEFAULTS.finetuneMode})
  --finetune-freeze LIST  full fine-tuning with these parts held at the foundation's values: any of
                       embeddings (tied to lm_head), attention, mlp (default: none)
  --finetune-epochs N  fine-tuning epochs over the survey's training split (default ${DEMO_DEFAULTS.finetuneEpochs})
  --finetune-lr X      peak learning rate of the fine-tuning (cosine to a tenth) (default ${DEMO_DEFAULTS.finetuneLearningRate})
  --finetune-warmup X  linear warmup over this share of the fine-tuning's steps, X in [0, ${MAX_WARMUP_SHARE}] (default: 5 steps)
  --finetune-eval-every N  validate every N steps and score the weights with the lowest validation loss
                       (0: the last weights) (default ${DEMO_DEFAULTS.finetuneEvalEvery})
  --finetune-title-list-copies N  copies of the title list mixed into the fine-tuning documents: without them
                       full fine-tuning pushes down every title the training split never shows (default ${DEMO_DEFAULTS.finetuneTitleListCopies})
  --finetune-title-list-repeat-groups K  as --title-list-repeat-groups, for the replayed lists (default ${DEMO_DEFAULTS.finetuneTitleListRepeatGroups})
  --relabel-share X    add relabelled copies of the resumes to the pretraining corpus, X per resume: one of the
                       person's occupations renamed to a title drawn uniformly, so staying in it can only be
                       predicted by copying the line above (default ${DEMO_DEFAULTS.relabelledShare})
  --finetune-relabel-share X  the same for the survey's training documents (default ${DEMO_DEFAULTS.finetuneRelabelledShare})
  --finetune-resumes-share X  replay this share of the resumes corpus (what the foundation and CAREER were
                       pretrained on) among the fine-tuning documents, X in [0, 1] (default ${DEMO_DEFAULTS.finetuneResumesShare})
  --relabel-loss L     targets (the loss on every target line of a relabelled copy) | after-renamed (only on the
                       lines after one holding the renamed title: stay in it or leave, not moves into it) |
                       copy-decision (as after-renamed, but of a line leaving it only the first token) | stays (only
                       the lines that stay in it) | stays-leave (the stays, and of a line leaving it only that its
                       first token is not the renamed title's: an unlikelihood loss) (default ${DEMO_DEFAULTS.relabelledLoss})
  --test-people N      test-split people every model scores (default ${DEMO_DEFAULTS.testPeople}; LLM scoring is the slow step)
  --pretrain-loss L    all (every token: the plain next-token objective) | targets (only each year's outcome
                       text, what scoring reads: ~2× faster steps that learn titles sooner) (default ${DEMO_DEFAULTS.pretrainLoss})
  --finetune-loss L    all | targets, as --pretrain-loss, for the fine-tuning (default ${DEMO_DEFAULTS.finetuneLoss})
  --seed N             seed of data, initialisation and training (default 0)
  --model-seed N       seed of the models alone (initialisation, batch order, sampled copies of the foundation,
                       fine-tuning and CAREER); the data stay those of --seed. Runs that differ only in it are
                       members of an ensemble: combine their predictions with labor-llm ensemble (default: --seed)
  --fresh              delete DIR first instead of reusing finished steps
${BACKEND_HELP}`;

/** A warmup-share flag's value; undefined when it is not given (the recipe's fixed warmup steps). */
function warmupShareFlag(values: Record<string, unknown>, flag: string): number | undefined {
  if (values[flag] === undefined) return undefined;
  return checkedNumber(values, flag, 0, (x) => x >= 0 && x <= MAX_WARMUP_SHARE, `in [0, ${MAX_WARMUP_SHARE}]`);
}

export async function runDemo(argv: string[]): Promise<number> {
  const { values } = parseFlags(argv, {
    out: { type: "string" },
    people: { type: "string" },
    resumes: { type: "string" },
    "model-preset": { type: "string" },
    "career-preset": { type: "string" },
    "pretrain-epochs": { type: "string" },
    "finetune-epochs": { type: "string" },
    "test-people": { type: "string" },
    "pretrain-loss": { type: "string" },
    "finetune-loss": { type: "string" },
    "finetune-mode": { type: "string" },
    "finetune-lr": { type: "string" },
    "finetune-eval-every": { type: "string" },
    "pretrain-lr": { type: "string" },
    "pretrain-warmup": { type: "string" },
    "finetune-warmup": { type: "string" },
    "title-list-copies": { type: "string" },
    "finetune-title-list-copies": { type: "string" },
    "title-list-repeat-groups": { type: "string" },
    "finetune-title-list-repeat-groups": { type: "string" },
    "relabel-share": { type: "string" },
    "finetune-relabel-share": { type: "string" },
    "relabel-loss": { type: "string" },
    seed: { type: "string" },
    "model-seed": { type: "string" },
    fresh: { type: "boolean" },
    "finetune-freeze": { type: "string" },
    "finetune-resumes-share": { type: "string" },
    ...BACKEND_FLAGS,
  });
  if (values.help) {
    console.log(DEMO_HELP);
    return 0;
  }
  const outDir = typeof values.out === "string" ? values.out : "labor-llm-demo";
  const options = {
    people: optionalInteger(values, "people", DEMO_DEFAULTS.people, 20),
    resumes: optionalInteger(values, "resumes", DEMO_DEFAULTS.resumes, 0),
    modelPreset: oneOf(values, "model-preset", presetNames(), DEMO_DEFAULTS.modelPreset),
    careerPreset: oneOf(values, "career-preset", CAREER_PRESET_NAMES, DEMO_DEFAULTS.careerPreset as (typeof CAREER_PRESET_NAMES)[number]),
    pretrainEpochs: optionalInteger(values, "pretrain-epochs", DEMO_DEFAULTS.pretrainEpochs, 1),
    finetuneEpochs: optionalInteger(values, "finetune-epochs", DEMO_DEFAULTS.finetuneEpochs, 1),
    testPeople: optionalInteger(values, "test-people", DEMO_DEFAULTS.testPeople, 1),
    pretrainLoss: oneOf(values, "pretrain-loss", LOSS_MASK_MODES, DEMO_DEFAULTS.pretrainLoss),
    finetuneLoss: oneOf(values, "finetune-loss", LOSS_MASK_MODES, DEMO_DEFAULTS.finetuneLoss),
    finetuneMode: oneOf(values, "finetune-mode", ["full", "lora"] as const, DEMO_DEFAULTS.finetuneMode),
    finetuneFrozen: frozenPartsFlag(values, "finetune-freeze"),
    finetuneLearningRate: optionalNumber(values, "finetune-lr", DEMO_DEFAULTS.finetuneLearningRate),
    finetuneEvalEvery: optionalInteger(values, "finetune-eval-every", DEMO_DEFAULTS.finetuneEvalEvery, 0),
    pretrainLearningRate: optionalNumber(values, "pretrain-lr", DEMO_DEFAULTS.pretrainLearningRate),
    titleListCopies: optionalInteger(values, "title-list-copies", DEMO_DEFAULTS.titleListCopies, 0),
    finetuneTitleListCopies: optionalInteger(values, "finetune-title-list-copies", DEMO_DEFAULTS.finetuneTitleListCopies, 0),
    titleListRepeatGroups: optionalInteger(values, "title-list-repeat-groups", DEMO_DEFAULTS.titleListRepeatGroups, 0),
    finetuneTitleListRepeatGroups: optionalInteger(values, "finetune-title-list-repeat-groups", DEMO_DEFAULTS.finetuneTitleListRepeatGroups, 0),
    relabelledShare: optionalNumber(values, "relabel-share", DEMO_DEFAULTS.relabelledShare, true),
    finetuneRelabelledShare: optionalNumber(values, "finetune-relabel-share", DEMO_DEFAULTS.finetuneRelabelledShare, true),
    relabelledLoss: oneOf(values, "relabel-loss", RELABELLED_LOSSES, DEMO_DEFAULTS.relabelledLoss),
    finetuneResumesShare: checkedNumber(values, "finetune-resumes-share", DEMO_DEFAULTS.finetuneResumesShare, (x) => x >= 0 && x <= 1, "in [0, 1]"),
    seed: optionalInteger(values, "seed", 0),
    modelSeed: values["model-seed"] === undefined ? undefined : optionalInteger(values, "model-seed", 0),
    pretrainWarmupShare: warmupShareFlag(values, "pretrain-warmup"),
    finetuneWarmupShare: warmupShareFlag(values, "finetune-warmup"),
  };
  if (options.finetuneFrozen.length > 0 && options.finetuneMode === "lora") {
    throw new UsageError("--finetune-freeze is for --finetune-mode full (LoRA trains only its adapters)");
  }
  const backend = await backendFromFlags(values);
  if (values.fresh) rmSync(outDir, { recursive: true, force: true });
  console.log(`labor-llm demo on ${backend.describe()}; outputs in ${outDir}`);
  const result = await runDemoPipeline({ ...options, outDir, backend });
  console.log("\n" + result.table);
  console.log(`report: ${result.reportDir}/report.html`);
  console.log(`done in ${formatSeconds(result.seconds)}`);
  return 0;
}
