/** `labor-llm data synth|check|textify|stats`: synthetic panels, validation, documents, descriptive tables. */
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync } from "node:fs";
import { parse as parseCsv } from "csv-parse/sync";
import { join } from "node:path";
import { writeFileAtomic, type AtomicSink } from "../../io/atomic-write.js";
import { loadPanel, PanelValidationError } from "../../data/load.js";
import { countPersonYears, csvField, panelRowFields, PANEL_COLUMNS, type Panel } from "../../data/panel.js";
import { PROFILE_NAMES, type ProfileName } from "../../data/profiles.js";
import { DEFAULT_SPLIT_FRACTIONS, SPLIT_NAMES, splitOfPerson, type SplitFractions, type SplitName } from "../../data/splits.js";
import { formatPanelStatistics, panelStatistics } from "../../data/stats.js";
import { generateSyntheticPanel, type SyntheticPanel } from "../../data/synthetic.js";
import {
  documentTemplate,
  LOSS_MASK_MODES,
  lossMask,
  renderDocument,
  TEMPLATE_NAMES,
  TokenOffsets,
  tokenizeDocument,
  type LossMaskMode,
} from "../../text/documents.js";
import { Tokenizer } from "../../text/tokenizer.js";
import { oneOf, optionalInteger, parseFlags, requireString, UsageError } from "../args.js";
import { ProgressBar } from "../progress.js";

export const DATA_HELP = `labor-llm data <synth|check|textify|stats> [flags]

  synth --profile P --people N --seed S --out DIR [--split 0.8,0.1,0.1]
      Generate a synthetic panel (profiles: ${PROFILE_NAMES.join(", ")}; process in src/data/SYNTHETIC.md).
      Writes DIR/panel.csv, DIR/oracle.csv (person_id, year, occupation, probability: the exact probability
      of each person-year's outcome given its history), DIR/splits.csv (person_id, split) and DIR/meta.json.
      DIR must be new or empty. Splits are by person, from the seed and the person id.
  check FILE
      Validate a panel (.csv or .jsonl; columns ${PANEL_COLUMNS.join(", ")}).
      Prints every problem as file:line: message; exit status 1 when there is any.
  textify --panel FILE --template T --out FILE.jsonl [--tokenizer DIR] [--loss-mask all|targets] [--splits FILE]
      One JSON line per person: {"person_id", "dataset", "text", "targets": [{"year", "outcome",
      "char_start", "char_end"}]}. Templates: ${TEMPLATE_NAMES.join(", ")} (default: default).
      --tokenizer DIR (tokenizer.json) adds "token_ids" (BOS first) and token_start/token_end per target;
      --loss-mask then adds "loss_mask" (1 = the token is predicted in the loss; default all).
      --splits FILE (a splits.csv from synth) adds "split".
  stats FILE [--top N] [--json]
      Occupation shares, stay rate, moves by major group, non-work shares: markdown tables (or JSON).`;

/** Entry point of `labor-llm data`. */
export async function runData(argv: string[]): Promise<number> {
  const [subcommand, ...rest] = argv;
  switch (subcommand) {
    case "synth":
      return runSynth(rest);
    case "check":
      return runCheck(rest);
    case "textify":
      return runTextify(rest);
    case "stats":
      return runStats(rest);
    case undefined:
    case "--help":
    case "-h":
      console.log(DATA_HELP);
      return subcommand === undefined ? 2 : 0;
    default:
      throw new UsageError(`unknown data subcommand "${subcommand}" (expected synth, check, textify or stats)`);
  }
}

/** Write text produced piece by piece atomically, in ~1 MB chunks (panels can exceed string limits). */
function writeTextAtomic(path: string, produce: (emit: (text: string) => void) => void): void {
  writeFileAtomic(path, (sink: AtomicSink) => {
    let buffer = "";
    produce((text) => {
      buffer += text;
      if (buffer.length >= 1 << 20) {
        sink.write(Buffer.from(buffer, "utf8"));
        buffer = "";
      }
    });
    if (buffer.length > 0) sink.write(Buffer.from(buffer, "utf8"));
  });
}

function parseSplitFractions(value: string | boolean | undefined): SplitFractions {
  if (value === undefined) return DEFAULT_SPLIT_FRACTIONS;
  const parts = String(value).split(",").map(Number);
  const sum = parts.reduce((a, b) => a + b, 0);
  if (parts.length !== 3 || parts.some((p) => !(p >= 0)) || Math.abs(sum - 1) > 1e-9) {
    throw new UsageError(`--split must be three non-negative fractions train,valid,test summing to 1, got "${String(value)}"`);
  }
  return { train: parts[0], valid: parts[1], test: parts[2] };
}

function runSynth(argv: string[]): number {
  const { values } = parseFlags(argv, {
    profile: { type: "string" },
    people: { type: "string" },
    seed: { type: "string" },
    out: { type: "string" },
    split: { type: "string" },
  });
  if (values.help) {
    console.log(DATA_HELP);
    return 0;
  }
  if (values.profile === undefined) throw new UsageError("missing required flag --profile");
  const profile = oneOf(values, "profile", PROFILE_NAMES, "nlsy79" as ProfileName);
  const people = optionalInteger(values, "people", -1, 1);
  if (people < 0) throw new UsageError("missing required flag --people");
  const seed = optionalInteger(values, "seed", 0, 0);
  const outDir = requireString(values, "out");
  const fractions = parseSplitFractions(values.split);
  if (existsSync(outDir)) {
    if (!statSync(outDir).isDirectory()) throw new UsageError(`--out ${outDir} is a file, not a directory`);
    if (readdirSync(outDir).length > 0) throw new UsageError(`--out ${outDir} is not empty (pick a new directory)`);
  } else {
    mkdirSync(outDir, { recursive: true });
  }

  const bar = new ProgressBar(`synth ${profile}`, people, " people");
  const started = performance.now();
  const synthetic = generateSyntheticPanel({ profile, people, seed, onProgress: (done) => bar.update(done) });
  const generatedSeconds = (performance.now() - started) / 1000;
  bar.finish();
  const personYears = synthetic.outcomeProbabilities.length;
  writeSyntheticFiles(outDir, synthetic, fractions);
  const totalSeconds = (performance.now() - started) / 1000;
  let logLikelihood = 0;
  for (const p of synthetic.outcomeProbabilities) logLikelihood += Math.log(p);
  const meanNegativeLogLikelihood = -logLikelihood / personYears;
  writeTextAtomic(join(outDir, "meta.json"), (emit) =>
    emit(
      JSON.stringify(
        {
          generator: "labor-llm synthetic careers (src/data/SYNTHETIC.md)",
          profile,
          dataset: synthetic.profile.dataset,
          seed,
          people,
          personYears,
          splitFractions: fractions,
          oracleMeanNegativeLogLikelihood: meanNegativeLogLikelihood,
          oraclePerplexity: Math.exp(meanNegativeLogLikelihood),
          files: { panel: "panel.csv", oracle: "oracle.csv", splits: "splits.csv" },
        },
        null,
        2,
      ) + "\n",
    ),
  );
  const rate = personYears / generatedSeconds;
  console.log(
    `wrote ${outDir}: ${people} people, ${personYears} person-years (${profile}, seed ${seed}); ` +
      `generated in ${generatedSeconds.toFixed(2)} s (${Math.round(rate)} person-years/s), ${totalSeconds.toFixed(2)} s with files; ` +
      `oracle perplexity ${Math.exp(meanNegativeLogLikelihood).toFixed(3)}`,
  );
  return 0;
}

/** panel.csv, oracle.csv and splits.csv of a synthetic panel. */
function writeSyntheticFiles(outDir: string, synthetic: SyntheticPanel, fractions: SplitFractions): void {
  const { panel, outcomeProbabilities, seed } = synthetic;
  writeTextAtomic(join(outDir, "panel.csv"), (emit) => {
    emit(PANEL_COLUMNS.join(",") + "\n");
    for (const person of panel.people) {
      for (const wave of person.waves) emit(panelRowFields(person, wave).map(csvField).join(",") + "\n");
    }
  });
  writeTextAtomic(join(outDir, "oracle.csv"), (emit) => {
    emit("person_id,year,occupation,probability\n");
    let row = 0;
    for (const person of panel.people) {
      const id = csvField(person.personId);
      // Full double precision (shortest round-trip text), so log-likelihoods recomputed from the file are exact.
      for (const wave of person.waves) emit(`${id},${wave.year},${wave.occupation},${outcomeProbabilities[row++]}\n`);
    }
  });
  writeTextAtomic(join(outDir, "splits.csv"), (emit) => {
    emit("person_id,split\n");
    for (const person of panel.people) emit(`${csvField(person.personId)},${splitOfPerson(person.personId, seed, fractions)}\n`);
  });
}

function singleFile(argv: string[], extra: Parameters<typeof parseFlags>[1] = {}) {
  const { values, positionals } = parseFlags(argv, extra, true);
  if (values.help) return { values, file: undefined };
  if (positionals.length !== 1) throw new UsageError(`expected one panel file, got ${positionals.length}`);
  return { values, file: positionals[0] };
}

async function runCheck(argv: string[]): Promise<number> {
  const { file } = singleFile(argv);
  if (file === undefined) {
    console.log(DATA_HELP);
    return 0;
  }
  let panel: Panel;
  try {
    panel = await loadPanel(file);
  } catch (error) {
    if (!(error instanceof PanelValidationError)) throw error;
    console.error(error.message);
    return 1;
  }
  let firstYear = Infinity;
  let lastYear = -Infinity;
  for (const person of panel.people) {
    firstYear = Math.min(firstYear, person.waves[0].year);
    lastYear = Math.max(lastYear, person.waves[person.waves.length - 1].year);
  }
  console.log(`${file}: ok — ${panel.people.length} people, ${countPersonYears(panel)} person-years, years ${firstYear}–${lastYear}`);
  return 0;
}

async function runStats(argv: string[]): Promise<number> {
  const { values, file } = singleFile(argv, { top: { type: "string" }, json: { type: "boolean" } });
  if (file === undefined) {
    console.log(DATA_HELP);
    return 0;
  }
  const top = optionalInteger(values, "top", 10, 1);
  const stats = panelStatistics(await loadPanel(file), undefined, top);
  console.log(values.json ? JSON.stringify(stats, null, 2) : formatPanelStatistics(stats, file));
  return 0;
}

/** person_id → split from a splits.csv written by `data synth`. */
function readSplits(path: string): Map<string, SplitName> {
  let records: string[][];
  try {
    records = parseCsv(readFileSync(path, "utf8"), { skip_empty_lines: true, bom: true }) as string[][];
  } catch (error) {
    throw new Error(`${path}: cannot read splits: ${(error as Error).message}`, { cause: error });
  }
  const [header, ...rows] = records;
  if (!header || header[0] !== "person_id" || header[1] !== "split") throw new Error(`${path}:1: expected the header "person_id,split"`);
  const splits = new Map<string, SplitName>();
  rows.forEach((row, index) => {
    if (!SPLIT_NAMES.includes(row[1] as SplitName)) throw new Error(`${path}:${index + 2}: unknown split "${row[1]}" (expected ${SPLIT_NAMES.join(", ")})`);
    splits.set(row[0], row[1] as SplitName);
  });
  return splits;
}

async function runTextify(argv: string[]): Promise<number> {
  const { values } = parseFlags(argv, {
    panel: { type: "string" },
    template: { type: "string" },
    out: { type: "string" },
    tokenizer: { type: "string" },
    "loss-mask": { type: "string" },
    splits: { type: "string" },
  });
  if (values.help) {
    console.log(DATA_HELP);
    return 0;
  }
  const panelPath = requireString(values, "panel");
  const outPath = requireString(values, "out");
  const template = documentTemplate(oneOf(values, "template", TEMPLATE_NAMES, "default"));
  const maskMode: LossMaskMode = oneOf(values, "loss-mask", LOSS_MASK_MODES, "all");
  if (values["loss-mask"] !== undefined && values.tokenizer === undefined) throw new UsageError("--loss-mask needs --tokenizer (masks are per token)");
  const tokenizer = typeof values.tokenizer === "string" ? Tokenizer.fromDirectory(values.tokenizer) : undefined;
  const offsets = tokenizer ? new TokenOffsets(tokenizer) : undefined;
  const splits = typeof values.splits === "string" ? readSplits(values.splits) : undefined;
  const panel = await loadPanel(panelPath);

  const bar = new ProgressBar("textify", panel.people.length, " people");
  let tokens = 0;
  writeTextAtomic(outPath, (emit) => {
    panel.people.forEach((person, index) => {
      const document = renderDocument(person, template);
      const record: Record<string, unknown> = { person_id: person.personId, dataset: person.dataset };
      if (splits) {
        const split = splits.get(person.personId);
        if (split === undefined) throw new Error(`${values.splits}: no split for person "${person.personId}"`);
        record.split = split;
      }
      record.text = document.text;
      if (tokenizer && offsets) {
        const tokenized = tokenizeDocument(document, tokenizer, { offsets });
        tokens += tokenized.ids.length;
        record.targets = tokenized.targets.map((t) => ({
          year: t.year,
          outcome: t.outcome,
          char_start: t.charStart,
          char_end: t.charEnd,
          token_start: t.tokenStart,
          token_end: t.tokenEnd,
        }));
        record.token_ids = tokenized.ids;
        record.loss_mask = Array.from(lossMask(tokenized, maskMode));
      } else {
        record.targets = document.targets.map((t) => ({ year: t.year, outcome: t.outcome, char_start: t.charStart, char_end: t.charEnd }));
      }
      emit(JSON.stringify(record) + "\n");
      if ((index + 1) % 1000 === 0) bar.update(index + 1);
    });
  });
  bar.finish();
  console.log(`wrote ${outPath} (${panel.people.length} documents, template ${values.template ?? "default"}${tokenizer ? `, ${tokens} tokens` : ""})`);
  return 0;
}
