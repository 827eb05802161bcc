/** `labor-llm baseline markov|logit|oracle|career`: the comparison models, writing the same predictions format as `score`. */
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { loadPanel } from "../../data/load.js";
import { countPersonYears, type PersonRecord } from "../../data/panel.js";
import { PROFILE_NAMES, SYNTHETIC_PROFILES, type ProfileName } from "../../data/profiles.js";
import { occupationTaxonomy } from "../../data/taxonomy.js";
import { fitMarkovTuned, MarkovPredictor } from "../../score/baselines/markov.js";
import { LogitPredictor } from "../../score/baselines/logit.js";
import { OraclePredictor } from "../../score/baselines/oracle.js";
import { CAREER_FINETUNE_DEFAULTS, CAREER_PRETRAIN_DEFAULTS, trainCareerBaseline } from "../../score/baselines/career.js";
import { CAREER_PRESET_NAMES, CAREER_PRESETS, type CareerPresetName } from "../../model/career.js";
import type { Predictor } from "../../score/predictor.js";
import { predictionHeader, predictionRecords, writePredictions } from "../../score/predictions.js";
import { oneOf, optionalInteger, parseFlags, requireString, UsageError } from "../args.js";
import { loadPanelSplits, SPLIT_HELP, splitFlag } from "../panel-split.js";
import { ProgressBar } from "../progress.js";
import { BACKEND_FLAGS, BACKEND_HELP, backendFromFlags } from "../backend-flags.js";

const KINDS = ["markov", "logit", "oracle", "career"] as const;
type BaselineKind = (typeof KINDS)[number];

export const BASELINE_HELP = `labor-llm baseline <markov|logit|oracle|career> --panel FILE --out predictions.jsonl [flags]

Fits a baseline on the training split and writes predictions for --split in the format of \`labor-llm score\`
(JSON Lines, or the compact binary layout when --out ends in .bin).
  markov   first-order transitions with additive smoothing towards the marginal (α tuned on the valid split
           unless --smoothing is given)
  logit    multinomial logit on CAREER's features (previous two outcomes, tenure, total years, year, age,
           education, demographics), L-BFGS
  oracle   synthetic panels only: the generator's exact probabilities (profile from --profile or meta.json
           next to the panel)
  career   CAREER (Vafa et al.): a transformer over occupation tokens with covariate embeddings and a
           two-stage stay/move head; pretrained on --resumes (if given), then fine-tuned on the training
           split (best epoch on the valid split kept)
  --panel FILE       panel (.csv or .jsonl)
${SPLIT_HELP}
  --smoothing A      markov: α (default: best of 0.1…100 on the valid split; 1 without one)
  --l2 L             logit: L2 penalty (default 0.001)
  --iterations N     logit: L-BFGS iterations (default 50)
  --profile P        oracle: ${PROFILE_NAMES.join(", ")}
  --preset P         career: ${CAREER_PRESET_NAMES.map((n) => `${n} (${describePreset(n)})`).join(", ")} (default small)
  --resumes FILE     career: pretraining panel (all its people; e.g. \`data synth --profile resumes\`)
  --pretrain-epochs N, --pretrain-lr LR   career (default ${CAREER_PRETRAIN_DEFAULTS.epochs}, ${CAREER_PRETRAIN_DEFAULTS.learningRate})
  --epochs N, --lr LR                     career fine-tuning (default ${CAREER_FINETUNE_DEFAULTS.epochs}, ${CAREER_FINETUNE_DEFAULTS.learningRate})
  --batch-tokens N   career: waves per optimizer step (default 512)
  --seed N           career: initialisation and data order (default 0)
${BACKEND_HELP}
  --name NAME        model name in the predictions header (default: the baseline's)
  --limit N          predict only the first N people of the split (training always uses the whole train split)`;

function describePreset(name: CareerPresetName): string {
  const p = CAREER_PRESETS[name];
  return `${p.layers} layers, d=${p.hidden}, ${p.heads} heads, ffn ${p.ffn}`;
}

function positiveNumber(values: Record<string, unknown>, flag: string, fallback: number): number {
  if (values[flag] === undefined) return fallback;
  const value = Number(values[flag]);
  if (!(value > 0)) throw new UsageError(`--${flag} must be a positive number, got "${String(values[flag])}"`);
  return value;
}

function oracleProfile(values: Record<string, unknown>, panelPath: string, datasets: Set<string>): ProfileName {
  if (values.profile !== undefined) return oneOf(values, "profile", PROFILE_NAMES, "nlsy79");
  const meta = join(dirname(panelPath), "meta.json");
  if (existsSync(meta)) {
    const profile = (JSON.parse(readFileSync(meta, "utf8")) as { profile?: string }).profile;
    if (PROFILE_NAMES.includes(profile as ProfileName)) return profile as ProfileName;
  }
  const byDataset = PROFILE_NAMES.filter((name) => datasets.has(SYNTHETIC_PROFILES[name].dataset));
  if (datasets.size === 1 && byDataset.length === 1) return byDataset[0];
  throw new UsageError(`oracle: pass --profile (no meta.json with a profile next to ${panelPath}); the oracle exists only for synthetic panels`);
}

export async function runBaseline(argv: string[]): Promise<number> {
  const { values, positionals } = parseFlags(
    argv,
    {
      panel: { type: "string" },
      split: { type: "string" },
      splits: { type: "string" },
      out: { type: "string" },
      smoothing: { type: "string" },
      l2: { type: "string" },
      iterations: { type: "string" },
      profile: { type: "string" },
      name: { type: "string" },
      limit: { type: "string" },
      preset: { type: "string" },
      resumes: { type: "string" },
      "pretrain-epochs": { type: "string" },
      "pretrain-lr": { type: "string" },
      epochs: { type: "string" },
      lr: { type: "string" },
      "batch-tokens": { type: "string" },
      seed: { type: "string" },
      ...BACKEND_FLAGS,
    },
    true,
  );
  if (values.help || positionals.length === 0) {
    console.log(BASELINE_HELP);
    return values.help ? 0 : 2;
  }
  if (positionals.length !== 1 || !KINDS.includes(positionals[0] as BaselineKind)) {
    throw new UsageError(`expected one baseline (${KINDS.join(", ")}), got ${positionals.join(" ")}`);
  }
  const kind = positionals[0] as BaselineKind;
  const panelPath = requireString(values, "panel");
  const outPath = requireString(values, "out");
  const split = splitFlag(values);
  const splits = await loadPanelSplits(panelPath, typeof values.splits === "string" ? values.splits : undefined);
  const limit = optionalInteger(values, "limit", -1, 1);
  const people = limit > 0 ? splits.pick(split).slice(0, limit) : splits.pick(split);
  const taxonomy = occupationTaxonomy();
  const meta: Record<string, unknown> = { panel: panelPath, split };
  const started = performance.now();

  let predictor: Predictor;
  if (kind === "oracle") {
    const profile = oracleProfile(values, panelPath, new Set(people.map((p) => p.dataset)));
    predictor = new OraclePredictor(profile, taxonomy);
    meta.profile = profile;
  } else {
    const train = splits.pick("train");
    if (train.length === 0) throw new Error(`${panelPath}: the training split is empty`);
    meta.trainPersonYears = countPersonYears({ people: train });
    if (kind === "markov") {
      const valid = values.smoothing === undefined ? splits.pick("valid") : [];
      const markov =
        values.smoothing !== undefined
          ? new MarkovPredictor(train, { smoothing: Number(values.smoothing), taxonomy })
          : valid.length > 0
            ? fitMarkovTuned(train, valid, undefined, taxonomy)
            : new MarkovPredictor(train, { taxonomy });
      meta.smoothing = markov.smoothing;
      predictor = markov;
    } else if (kind === "career") {
      predictor = await fitCareer(values, train, splits.pick("valid"), meta);
    } else {
      const l2 = values.l2 === undefined ? 1e-3 : Number(values.l2);
      if (!(l2 >= 0)) throw new UsageError(`--l2 must be a non-negative number, got "${String(values.l2)}"`);
      const maxIterations = optionalInteger(values, "iterations", 50, 1);
      const bar = new ProgressBar("logit L-BFGS", maxIterations, " iterations");
      predictor = LogitPredictor.fit(train, { l2, maxIterations, taxonomy, onIteration: (i, value) => bar.update(i, `objective ${value.toFixed(5)}`) });
      bar.finish();
      meta.l2 = l2;
      meta.iterations = maxIterations;
    }
  }
  const personYears = countPersonYears({ people });
  const bar = new ProgressBar(kind, personYears, " person-years");
  const logProbs = await predictor.predict(people, (done) => bar.update(done));
  bar.finish();
  meta.seconds = (performance.now() - started) / 1000;
  const name = typeof values.name === "string" ? values.name : predictor.name;
  writePredictions(outPath, predictionHeader(name, taxonomy, predictor.normalised, meta), predictionRecords(people, logProbs));
  console.log(`wrote ${outPath}: ${name}, ${personYears} person-years (${split}), ${(meta.seconds as number).toFixed(1)} s`);
  return 0;
}

/** Pretrain (on --resumes) and fine-tune CAREER, with a progress bar per phase. */
async function fitCareer(
  values: Record<string, unknown>, train: PersonRecord[], valid: PersonRecord[], meta: Record<string, unknown>,
): Promise<Predictor> {
  const preset = oneOf<CareerPresetName>(values, "preset", CAREER_PRESET_NAMES, "small");
  const resumes = typeof values.resumes === "string" ? (await loadPanel(values.resumes)).people : [];
  if (resumes.length === 0) console.error("career: no --resumes panel: fine-tuning from random initialisation (no pretraining)");
  const pretrain = {
    epochs: optionalInteger(values, "pretrain-epochs", CAREER_PRETRAIN_DEFAULTS.epochs, 1),
    learningRate: positiveNumber(values, "pretrain-lr", CAREER_PRETRAIN_DEFAULTS.learningRate),
  };
  const finetune = {
    epochs: optionalInteger(values, "epochs", CAREER_FINETUNE_DEFAULTS.epochs, 1),
    learningRate: positiveNumber(values, "lr", CAREER_FINETUNE_DEFAULTS.learningRate),
  };
  const batchTokens = optionalInteger(values, "batch-tokens", 512, 1);
  const seed = optionalInteger(values, "seed", 0, 0);
  const backend = await backendFromFlags(values);
  let bar: ProgressBar | null = null;
  let barPhase = "";
  const baseline = await trainCareerBaseline({
    survey: { train, valid }, resumes, preset, seed, backend, pretrain, finetune, batchTokens,
    onProgress: (p) => {
      if (p.phase !== barPhase) {
        bar?.finish();
        bar = new ProgressBar(`career ${p.phase}`, p.totalSteps, " steps");
        barPhase = p.phase;
      }
      const valid = p.validLoss === undefined ? "" : ` valid ${p.validLoss.toFixed(4)}`;
      bar!.update(p.step, `epoch ${p.epoch}/${p.epochs} loss ${p.trainLoss.toFixed(4)}${valid}`);
    },
  });
  (bar as ProgressBar | null)?.finish();
  Object.assign(meta, {
    preset, config: baseline.config, backend: backend.describe(), seed, batchTokens, pretrain, finetune,
    resumes: typeof values.resumes === "string" ? values.resumes : null, resumePersonYears: countPersonYears({ people: resumes }),
    pretrainLoss: baseline.pretraining?.trainLoss ?? null, finetuneLoss: baseline.finetuning.trainLoss,
    validLoss: baseline.finetuning.validLoss, bestEpoch: baseline.finetuning.bestEpoch,
  });
  return baseline.predictor;
}
