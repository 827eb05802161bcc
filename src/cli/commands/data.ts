/**
 * `labor-llm data synth|check|textify|stats|crosswalk`: synthetic panels, validation, documents, descriptive
 * tables, and raw survey extracts (Census occupation codes) turned into panels.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync } from "node:fs";
import { parse as parseCsv } from "csv-parse/sync";
import { join } from "node:path";
import { writeFileAtomic, type AtomicSink } from "../../io/atomic-write.js";
import {
  crosswalkExtract,
  EMPLOYMENT_STATUSES,
  EXTRACT_COLUMNS,
  formatCrosswalkSummary,
  POLICY_FLAGS,
  readRecodes,
  SPECIAL_POLICIES,
  type SpecialPolicy,
} from "../../data/crosswalk-import.js";
import {
  BUILT_IN_SCHEDULE_NAMES,
  BUILT_IN_SCHEDULES,
  builtInSchedule,
  readScheduleFile,
  singleVintageSchedule,
  type BuiltInScheduleName,
  type VintageSchedule,
} from "../../data/crosswalk-schedule.js";
import { CODE_VINTAGES, crosswalkTables, SPECIAL_TARGETS, VINTAGE_DESCRIPTIONS, type SpecialTarget } from "../../data/crosswalk-tables.js";
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

// Pieces of the crosswalk help, from the definitions they document.
const SCHEDULES_TEXT = BUILT_IN_SCHEDULE_NAMES.map(
  (name) => `${name.padEnd(7)} ${Object.entries(BUILT_IN_SCHEDULES[name]).map(([years, vintage]) => `${years} ${vintage}`).join(", ")}`,
).join("\n                         ");
const VINTAGES_TEXT = CODE_VINTAGES.map((vintage) => `${vintage.padEnd(11)} ${VINTAGE_DESCRIPTIONS[vintage]}`).join("\n                         ");
const STATUS_TEXT = EMPLOYMENT_STATUSES.map((entry) => `${entry.status}: ${entry.spellings.join(", ")}`).join("\n                         ");
const SPECIAL_TEXT = (Object.keys(SPECIAL_TARGETS).map(Number) as SpecialTarget[])
  .map((code) => `--${POLICY_FLAGS[code].padEnd(16)} ${code}: ${SPECIAL_TARGETS[code]}`)
  .join("\n         ");

export const DATA_HELP = `labor-llm data <synth|check|textify|stats|crosswalk> [flags]

  synth --profile P --people N --seed S --out DIR [--split 0.8,0.1,0.1]
      Generate a synthetic panel (profiles: ${PROFILE_NAMES.join(", ")}; process in src/data/SYNTHETIC.md).
      Writes DIR/panel.csv, DIR/oracle.csv (person_id, year, occupation, probability: the exact probability
      of each person-year's outcome given its history), DIR/splits.csv (person_id, split) and DIR/meta.json.
      DIR must be new or empty. Splits are by person, from the seed and the person id.
  check FILE
      Validate a panel (.csv or .jsonl; columns ${PANEL_COLUMNS.join(", ")}).
      Prints every problem as file:line: message; exit status 1 when there is any.
  textify --panel FILE --template T --out FILE.jsonl [--tokenizer DIR] [--loss-mask all|targets] [--splits FILE]
          [--split NAME]
      One JSON line per person: {"person_id", "dataset", "text", "targets": [{"year", "outcome",
      "char_start", "char_end"}]}. Templates: ${TEMPLATE_NAMES.join(", ")} (default: default).
      --tokenizer DIR (tokenizer.json) adds "token_ids" (BOS first) and token_start/token_end per target;
      --loss-mask then adds "loss_mask" (1 = the token is predicted in the loss; default all).
      --splits FILE (a splits.csv from synth or crosswalk) adds "split"; --split NAME (train, valid or test)
      then writes only that split's people.
  stats FILE [--top N] [--json]
      Occupation shares, stay rate, moves by major group, non-work shares: markdown tables (or JSON).
  crosswalk EXTRACT.csv --out DIR (--schedule S | --vintage V) [--dataset NAME] [--military P]
            [--unclassified P] [--no-work-5-years P] [--recodes FILE] [--split 0.8,0.1,0.1] [--seed S]
      A raw survey extract → a panel. The extract (CSV) has one row per person-year with the columns
      ${EXTRACT_COLUMNS.join(", ")}:
      occupation is the survey's raw Census code, status whether the person worked that year. Employed rows
      go through the crosswalk of their year's code vintage to occ1990dd (tables and provenance in
      data/crosswalks/); other rows become their non-work state (their occupation cell is ignored).
      Writes DIR/panel.csv, DIR/splits.csv (by person, as synth) and DIR/crosswalk.md (rows per year and
      vintage, each policy's use; also printed). Every problem is listed as file:line: message, e.g.
      "code 999 (census1980, year 1985) is not in the crosswalk"; with any, exit status 1 and nothing is
      written. DIR must be new or empty.
      --schedule S       the vintage of each survey year: a built-in schedule (from the surveys' documentation,
                         not verified against each round's codebook: check yours)
                         ${SCHEDULES_TEXT}
                         or a JSON file like {"1979-1981": "census1970", "1982-2000": "census1980", "2002-": "census2000"}
      --vintage V        one vintage for every row:
                         ${VINTAGES_TEXT}
      status values      any case, with -, _ or spaces, "labour" for "labor":
                         ${STATUS_TEXT}
      Codes the crosswalk maps to a target that is no occupation, and the flag that decides what they become:
         ${SPECIAL_TEXT}
         error (default; listed as problems) | drop (left out, counted) | unemployed | not-in-labor-force
      --recodes FILE     hand recodes applied before the tables: CSV vintage,code,occ1990dd (an occupation code,
                         in-education, unemployed or not-in-labor-force)
      --dataset NAME     the dataset column's value when the extract has none (e.g. NLSY79)
      --split, --seed    fractions and seed of DIR/splits.csv (default 0.8,0.1,0.1 and 0)`;

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
    case "crosswalk":
      return runCrosswalk(rest);
    case undefined:
    case "--help":
    case "-h":
      console.log(DATA_HELP);
      return subcommand === undefined ? 2 : 0;
    default:
      throw new UsageError(`unknown data subcommand "${subcommand}" (expected synth, check, textify, stats or crosswalk)`);
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
    split: { type: "string" },
  });
  if (values.help) {
    console.log(DATA_HELP);
    return 0;
  }
  const onlySplit = values.split === undefined ? undefined : oneOf(values, "split", SPLIT_NAMES, "train");
  if (onlySplit !== undefined && values.splits === undefined) throw new UsageError("--split needs --splits FILE (the split of each person)");
  const panelPath = requireString(values, "panel");
  const outPath = requireString(values, "out");
  const template = documentTemplate(oneOf(values, "template", TEMPLATE_NAMES, "default"));
  const maskMode: LossMaskMode = oneOf(values, "loss-mask", LOSS_MASK_MODES, "all");
  if (values["loss-mask"] !== undefined && values.tokenizer === undefined) throw new UsageError("--loss-mask needs --tokenizer (masks are per token)");
  const tokenizer = typeof values.tokenizer === "string" ? Tokenizer.fromDirectory(values.tokenizer) : undefined;
  const offsets = tokenizer ? new TokenOffsets(tokenizer) : undefined;
  const splits = typeof values.splits === "string" ? readSplits(values.splits) : undefined;
  const loaded = await loadPanel(panelPath);
  const inSplit = (personId: string) => {
    const split = splits?.get(personId);
    if (split === undefined) throw new Error(`${values.splits}: no split for person "${personId}"`);
    return split === onlySplit;
  };
  const panel = onlySplit === undefined ? loaded : { people: loaded.people.filter((person) => inSplit(person.personId)) };

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

/** The schedule of `data crosswalk`: --schedule (a built-in name or a JSON file) or --vintage, exactly one. */
function crosswalkSchedule(values: Record<string, string | boolean | undefined>): VintageSchedule {
  const schedule = values.schedule;
  const vintage = values.vintage;
  if ((schedule === undefined) === (vintage === undefined)) throw new UsageError("pass exactly one of --schedule and --vintage");
  if (typeof vintage === "string") return singleVintageSchedule(oneOf(values, "vintage", CODE_VINTAGES, "census1970"));
  const name = String(schedule);
  if (BUILT_IN_SCHEDULE_NAMES.includes(name as BuiltInScheduleName)) return builtInSchedule(name as BuiltInScheduleName);
  if (!/\.json$/i.test(name)) throw new UsageError(`--schedule must be one of ${BUILT_IN_SCHEDULE_NAMES.join(", ")} or a .json file, got "${name}"`);
  return readScheduleFile(name);
}

async function runCrosswalk(argv: string[]): Promise<number> {
  const { values, file } = singleFile(argv, {
    out: { type: "string" },
    schedule: { type: "string" },
    vintage: { type: "string" },
    dataset: { type: "string" },
    recodes: { type: "string" },
    military: { type: "string" },
    unclassified: { type: "string" },
    "no-work-5-years": { type: "string" },
    split: { type: "string" },
    seed: { type: "string" },
  });
  if (file === undefined) {
    console.log(DATA_HELP);
    return 0;
  }
  const outDir = requireString(values, "out");
  const schedule = crosswalkSchedule(values);
  const policies: Partial<Record<SpecialTarget, SpecialPolicy>> = {};
  for (const [code, flag] of Object.entries(POLICY_FLAGS)) policies[Number(code) as SpecialTarget] = oneOf(values, flag, SPECIAL_POLICIES, "error");
  const fractions = parseSplitFractions(values.split);
  const seed = optionalInteger(values, "seed", 0, 0);
  const dataset = typeof values.dataset === "string" ? values.dataset : undefined;
  if (dataset !== undefined && dataset.trim() === "") throw new UsageError("--dataset must not be empty");
  const recodes = typeof values.recodes === "string" ? readRecodes(values.recodes) : undefined;
  if (existsSync(outDir) && (!statSync(outDir).isDirectory() || readdirSync(outDir).length > 0)) {
    throw new UsageError(`--out ${outDir} is ${statSync(outDir).isDirectory() ? "not empty (pick a new directory)" : "a file, not a directory"}`);
  }
  crosswalkTables(); // a broken table install fails here, before the extract is read

  let result: Awaited<ReturnType<typeof crosswalkExtract>>;
  try {
    result = await crosswalkExtract(file, { schedule, policies, dataset, recodes });
  } catch (error) {
    if (!(error instanceof PanelValidationError)) throw error;
    console.error(error.message);
    return 1;
  }
  const { panel, summary } = result;
  const summaryText = formatCrosswalkSummary(summary);
  mkdirSync(outDir, { recursive: true });
  writeTextAtomic(join(outDir, "panel.csv"), (emit) => {
    emit(PANEL_COLUMNS.join(",") + "\n");
    for (const person of panel.people) {
      for (const wave of person.waves) emit(panelRowFields(person, wave).map(csvField).join(",") + "\n");
    }
  });
  writeTextAtomic(join(outDir, "splits.csv"), (emit) => {
    emit("person_id,split\n");
    for (const person of panel.people) emit(`${csvField(person.personId)},${splitOfPerson(person.personId, seed, fractions)}\n`);
  });
  writeTextAtomic(join(outDir, "crosswalk.md"), (emit) => emit(summaryText + "\n"));
  console.log(summaryText);
  console.log(`wrote ${join(outDir, "panel.csv")}: ${panel.people.length} people, ${countPersonYears(panel)} person-years; splits.csv and crosswalk.md beside it`);
  return 0;
}
