/** `labor-llm experiment`: the paper's comparisons with intervals, on synthetic surveys (src/experiment/). */
import { rmSync } from "node:fs";
import { EXPERIMENT_SCALES, MEMBER_SEED_STRIDE, runExperiment, runPooledExperiment } from "../../experiment/pipeline.js";
import { oneOf, optionalInteger, parseFlags, UsageError } from "../args.js";
import { BACKEND_FLAGS, BACKEND_HELP, backendFromFlags } from "../backend-flags.js";

const SCALE_NAMES = Object.keys(EXPERIMENT_SCALES) as (keyof typeof EXPERIMENT_SCALES)[];
/** Each member is a whole foundation, fine-tuning and CAREER per survey: more than a few is never a session's work. */
const MAX_MEMBERS = 8;

export const EXPERIMENT_HELP = `labor-llm experiment [--scale dev|gpu|tiny] [--out DIR] [--seed N | --seeds LIST] [--test-people N] [--members K] [--fresh]

Reproduces the LABOR-LLM comparisons on synthetic NLSY79-, NLSY97- and PSID-like surveys whose true transition
probabilities are known, and writes one report with 95% bootstrap intervals by person:
  - per survey: oracle, Markov, logit, CAREER (small; the paper's size on the main survey), off-the-shelf LLM,
    FT-LLM — perplexity (all person-years and transitions), accuracy, calibration, stay/move and labour-force
    log loss, each model's excess log loss over the oracle;
  - paired differences (same people, same resamples): FT-LLM vs each baseline, value of fine-tuning, titles vs
    codes, without birth year, without education, and data vs size (a smaller foundation fine-tuned on the
    survey plus career data from another population vs the larger one on the survey alone);
  - learning curves, reliability diagrams, and each foundation's pretraining loss (a foundation that learned to
    copy the previous line late stands out, and its FT-LLM is worse).
Writes DIR/report/ (report.md, report.json, metrics.csv, comparisons.csv, learning-curves.csv,
pretraining-curves.csv, report.html).
Every stage is cached by a hash of its inputs: rerunning the same command resumes after an interruption
(Ctrl-C, kill, power loss), redoing only the unfinished stage.
  --scale NAME   dev: fits a developer's session on 2 CPU cores (see README for its measured time);
                 gpu: larger surveys, corpus and foundation, for a GPU machine; tiny: seconds, for tests
                 (default dev)
  --out DIR      working directory (default ./labor-llm-experiment)
  --seed N       seed of data, initialisation, training and bootstrap (default 0)
  --seeds LIST   run the experiment at each of these seeds (comma-separated, e.g. 0,1), each in DIR/seed-N with
                 its own report, and pool them in DIR/report: every statistic over all runs' person-years, each
                 resample drawing every run's people from that run, and each paired comparison's per-seed
                 estimate beside the pooled one. One run's intervals leave out the randomness of training (the
                 survey drawn, the initialisation, the batch order); the spread between seeds shows it
  --test-people N  score the first N people of each survey's test split (default: the scale's, dev 50; the
                 test split holds ~10% of the survey, ~100 people at dev). More people narrow every interval
                 (about 1/√N) at the cost of scoring time; the fine-tunings are cached apart from N
  --members K    train every survey's FT-LLM and CAREER K times on the same data, member j ≥ 2 from model seed
                 seed + ${MEMBER_SEED_STRIDE}·(j − 1) (its own foundation, fine-tuning and CAREER), and compare their
                 equal-weight ensembles as well: "FT-LLM ×K" vs "CAREER (…) ×K", and each ensemble vs its first
                 member. Models trained from scratch on little data differ by chance (initialisation, batch
                 order); an ensemble averages that away. Costs about K× the FT-LLM and CAREER stages (default 1:
                 no ensembles)
  --fresh        delete DIR first instead of resuming
${BACKEND_HELP}`;

/** --seeds: at least two different non-negative integers, comma-separated; absent: undefined. */
function seedList(value: unknown): number[] | undefined {
  if (value === undefined) return undefined;
  const text = String(value);
  const seeds = text.split(",").map((part) => part.trim());
  if (seeds.length < 2 || seeds.some((part) => !/^\d+$/.test(part)) || new Set(seeds.map(Number)).size !== seeds.length) {
    throw new UsageError(`--seeds must list at least two different non-negative integers separated by commas, got "${text}"`);
  }
  return seeds.map(Number);
}

export async function runExperimentCommand(argv: string[]): Promise<number> {
  const { values } = parseFlags(argv, {
    scale: { type: "string" },
    out: { type: "string" },
    seed: { type: "string" },
    seeds: { type: "string" },
    "test-people": { type: "string" },
    members: { type: "string" },
    fresh: { type: "boolean" },
    ...BACKEND_FLAGS,
  });
  if (values.help) {
    console.log(EXPERIMENT_HELP);
    return 0;
  }
  const scaleName = oneOf(values, "scale", SCALE_NAMES, "dev");
  const outDir = typeof values.out === "string" ? values.out : "labor-llm-experiment";
  const seed = optionalInteger(values, "seed", 0);
  const seeds = seedList(values.seeds);
  if (seeds && values.seed !== undefined) throw new UsageError("--seed and --seeds: give one seed or a list, not both");
  const scale = { ...EXPERIMENT_SCALES[scaleName] };
  scale.testPeople = optionalInteger(values, "test-people", scale.testPeople, 1);
  const members = optionalInteger(values, "members", 1, 1);
  if (members > MAX_MEMBERS) throw new UsageError(`--members must be at most ${MAX_MEMBERS}, got ${members}`);
  const backend = await backendFromFlags(values);
  if (values.fresh) rmSync(outDir, { recursive: true, force: true });
  console.log(`labor-llm experiment (scale ${scaleName}) on ${backend.describe()}; outputs in ${outDir}`);
  const report = seeds
    ? await runPooledExperiment({ scale, scaleName, outDir, seeds, members, backend })
    : await runExperiment({ scale, scaleName, outDir, seed, members, backend });
  console.log("\n" + report.markdown);
  console.log(`report: ${report.dir}/report.html`);
  return 0;
}
