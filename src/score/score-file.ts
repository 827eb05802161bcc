/**
 * Scoring people into a predictions file, resumably and optionally as one shard of several.
 *
 * While it runs, finished people go to the journal OUT.partial (journal.ts), a group of documents at a time,
 * fsynced. With `resume`, a run continues that journal from its last complete person — after Ctrl-C, a
 * crash or kill -9 — cutting off a torn last record. Work restarts at the start of the group holding the
 * first missing person (groups are the scorer's batches, so every person is scored in the batch an
 * uninterrupted run scores it in) and only people not yet in the journal are appended. At the end the
 * predictions file is written atomically from the journal and the journal is removed: the file equals an
 * uninterrupted run's, byte for byte, in either layout.
 *
 * The header must be deterministic for that (no timings). A resumed run must match the journal's settings —
 * model, template, split, people, shard, batching — or it stops with an error naming the setting; only the
 * backend may differ (a requeued job on another node), which is reported, and the header keeps the first.
 */
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, unlinkSync } from "node:fs";
import { dirname } from "node:path";
import type { PersonRecord } from "../data/panel.js";
import { syncDirectory } from "../io/atomic-write.js";
import { decodePerson, encodePerson, JournalWriter, readJournal } from "./journal.js";
import type { LlmScorer } from "./llm-scorer.js";
import { predictionRecords, readPredictionsHeader, writePredictions, type PredictionHeader, type PredictionRecord } from "./predictions.js";
import { shardHeader, shardRange, type Shard } from "./shards.js";

export const JOURNAL_SUFFIX = ".partial";
const JOURNAL_FORMAT = "labor-llm-score-journal";

export interface ScoreFileOptions {
  scorer: LlmScorer;
  /** Every person of the run (the split, after any limit); a shard scores its share of them. */
  people: readonly PersonRecord[];
  /** The predictions file (.bin: the binary layout); the journal is this path + ".partial". */
  outPath: string;
  /** The run's header: deterministic (no timings), without shard information. */
  header: PredictionHeader;
  shard?: Shard;
  /** Continue OUT.partial if there is one (else start); without it an existing journal is an error. */
  resume?: boolean;
  /** One forward per (person-year, candidate) instead (verification; resumable by group too). */
  naive?: boolean;
  /** Person-years done so far (those found in the journal included) of `personYears`. */
  onProgress?: (personYearsDone: number) => void;
  /** Called once the journal has been read: what a resumed run finds already done. */
  onResume?: (resumed: ResumeInfo) => void;
  /**
   * Stops the run between passes through the model (the call rejects with the signal's reason); every person
   * finished so far stays in the journal, and `resume: true` continues from there.
   */
  signal?: AbortSignal;
}

export interface ResumeInfo {
  journal: string;
  people: number;
  personYears: number;
  /** Bytes of a torn last record that were discarded. */
  tornBytes: number;
  /** Set when the journal was written on another backend. */
  backendChanged?: { journal: unknown; now: unknown };
}

export interface ScoreFileResult {
  /** People and person-years in the file (this shard's). */
  people: number;
  personYears: number;
  /** The range [first, end) of options.people this file holds. */
  first: number;
  end: number;
  /** What was found in the journal (0 when the run started fresh). */
  resumedPeople: number;
  resumedPersonYears: number;
  /** True when --resume found OUT complete and there was nothing to do. */
  alreadyComplete: boolean;
  header: PredictionHeader;
}

function peopleDigest(people: readonly PersonRecord[]): string {
  const hash = createHash("sha256");
  for (const person of people) hash.update(JSON.stringify(person)).update("\n");
  return hash.digest("hex");
}

/** Score `people` (or this shard's share) into `outPath` through the journal; see the file comment. */
export async function scoreToFile(options: ScoreFileOptions): Promise<ScoreFileResult> {
  const { scorer, outPath } = options;
  const groupSize = scorer.peoplePerGroup;
  const { first, end } = options.shard ? shardRange(options.people, groupSize, options.shard) : { first: 0, end: options.people.length };
  const people = options.people.slice(first, end);
  let header = options.shard
    ? shardHeader(options.header, { ...options.shard, first, end, people: options.people.length, groupSize })
    : options.header;
  const codes = header.codes.length;
  const yearsOf = (list: readonly PersonRecord[]) => list.reduce((n, p) => n + p.waves.length, 0);
  const identity = {
    format: JOURNAL_FORMAT,
    version: 1,
    header,
    first,
    end,
    people: people.length,
    personYears: yearsOf(people),
    peopleSha256: peopleDigest(people),
    groupSize,
    rowsPerPass: scorer.rowsPerPass,
    naive: options.naive === true,
  };
  const journalPath = outPath + JOURNAL_SUFFIX;
  mkdirSync(dirname(outPath), { recursive: true });
  const base = { people: people.length, personYears: identity.personYears, first, end };

  let writer: JournalWriter;
  let done = 0;
  let resumedPersonYears = 0;
  const found = existsSync(journalPath) ? readJournal(journalPath) : null;
  if (found && !options.resume) {
    throw new Error(`${journalPath} holds ${found.people.length} scored people of an interrupted run: pass --resume to continue it, or delete it to start over`);
  }
  if (found) {
    checkIdentity(journalPath, found.identity, identity);
    header = found.identity.header as PredictionHeader;
    const backend = (options.header.meta ?? {}).backend;
    const journalBackend = (header.meta ?? {}).backend;
    found.people.forEach((payload, k) => {
      const person = decodePerson(journalPath, payload, codes);
      if (person.index !== k || person.logProbs.length !== people[k]?.waves.length) {
        throw new Error(`${journalPath}: record ${k + 1} is person ${person.index} with ${person.logProbs.length} waves; expected person ${k} with ${people[k]?.waves.length} waves`);
      }
      resumedPersonYears += person.logProbs.length;
    });
    done = found.people.length;
    writer = JournalWriter.append(journalPath, found.validBytes);
    options.onResume?.({
      journal: journalPath, people: done, personYears: resumedPersonYears, tornBytes: found.tornBytes,
      ...(JSON.stringify(backend) !== JSON.stringify(journalBackend) ? { backendChanged: { journal: journalBackend, now: backend } } : {}),
    });
  } else {
    if (options.resume && existsSync(outPath) && sameRun(readPredictionsHeader(outPath), header)) {
      return { ...base, resumedPeople: people.length, resumedPersonYears: identity.personYears, alreadyComplete: true, header };
    }
    writer = JournalWriter.create(journalPath, identity);
  }

  try {
    // Restart at the group holding the first missing person; append only people not yet in the journal.
    const restart = Math.floor(done / groupSize) * groupSize;
    const beforeRestart = yearsOf(people.slice(0, restart));
    const report = (sinceRestart: number) => options.onProgress?.(Math.max(resumedPersonYears, beforeRestart + sinceRestart));
    const onGroup = (offset: number, scores: Float64Array[][]) => {
      const payloads: Buffer[] = [];
      scores.forEach((logProbs, i) => {
        if (restart + offset + i >= done) payloads.push(encodePerson(restart + offset + i, logProbs, codes));
      });
      writer.appendFrames(payloads);
      done = Math.max(done, restart + offset + scores.length);
    };
    report(0);
    const remaining = done < people.length ? people.slice(restart) : [];
    if (options.naive) {
      let sinceRestart = 0;
      for (let offset = 0; offset < remaining.length; offset += groupSize) {
        const group = remaining.slice(offset, offset + groupSize);
        onGroup(offset, await scorer.scorePeopleNaive(group, (n) => report(sinceRestart + n), { signal: options.signal }));
        sinceRestart += yearsOf(group);
        report(sinceRestart);
      }
    } else if (remaining.length > 0) {
      await scorer.scorePeopleInGroups(remaining, onGroup, report, { signal: options.signal });
    }
  } finally {
    writer.close();
  }

  writePredictions(outPath, header, journalRecords(journalPath, people, codes));
  unlinkSync(journalPath);
  syncDirectory(dirname(journalPath));
  return { ...base, resumedPeople: found?.people.length ?? 0, resumedPersonYears, alreadyComplete: false, header };
}

/** The records of a complete journal, person by person (read when the file is written). */
function* journalRecords(journalPath: string, people: readonly PersonRecord[], codes: number): Generator<PredictionRecord> {
  const contents = readJournal(journalPath);
  if (!contents || contents.people.length !== people.length) {
    throw new Error(`${journalPath}: holds ${contents?.people.length ?? 0} of ${people.length} people at the end of the run`);
  }
  for (let k = 0; k < people.length; k++) {
    const person = decodePerson(journalPath, contents.people[k], codes);
    yield* predictionRecords([people[k]], [person.logProbs]);
  }
}

/** A resumed run's settings must equal the journal's (the backend aside). */
function checkIdentity(path: string, journal: Record<string, unknown>, now: Record<string, unknown>): void {
  if (journal.format !== JOURNAL_FORMAT || journal.version !== 1) throw new Error(`${path}: not a labor-llm scoring journal (version 1)`);
  const describe = (key: string) => `cannot resume ${path}: ${key} was ${short(lookup(journal, key))} in the interrupted run, now ${short(lookup(now, key))} (same flags as the first run, or delete the journal)`;
  for (const key of ["first", "end", "people", "personYears", "peopleSha256", "groupSize", "rowsPerPass", "naive"]) {
    if (JSON.stringify(journal[key]) !== JSON.stringify(now[key])) throw new Error(describe(key));
  }
  const [a, b] = [journal.header as PredictionHeader, now.header as PredictionHeader];
  for (const key of ["format", "version", "model", "codes", "normalised"] as const) {
    if (JSON.stringify(a[key]) !== JSON.stringify(b[key])) throw new Error(describe(`header.${key}`));
  }
  for (const key of new Set([...Object.keys(a.meta ?? {}), ...Object.keys(b.meta ?? {})])) {
    if (key !== "backend" && JSON.stringify(a.meta?.[key]) !== JSON.stringify(b.meta?.[key])) throw new Error(describe(`header.meta.${key}`));
  }
}

function lookup(object: Record<string, unknown>, key: string): unknown {
  return key.split(".").reduce<unknown>((value, part) => (value as Record<string, unknown> | undefined)?.[part], object);
}

function short(value: unknown): string {
  const text = JSON.stringify(value) ?? "undefined";
  return text.length > 80 ? text.slice(0, 77) + "..." : text;
}

/** An existing predictions file is this run's output when its header matches (the backend aside). */
function sameRun(existing: PredictionHeader, header: PredictionHeader): boolean {
  const strip = (h: PredictionHeader) => JSON.stringify({ ...h, meta: { ...h.meta, backend: null } });
  return strip(existing) === strip(header);
}
