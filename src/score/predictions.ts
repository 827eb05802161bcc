/**
 * The predictions file every model and baseline writes and `labor-llm eval` reads: JSON Lines.
 *
 * Line 1 — header: {"format": "labor-llm-predictions", "version": 1, "model": NAME, "codes": [outcome codes in
 *   the order of every log_probs array], "normalised": true when each row's log-probs already sum to 1
 *   (baselines), false for raw LLM log-probabilities, "meta": {…free-form…}}.
 * Then one line per person-year: {"person_id", "dataset", "year", "sex", "race", "region", "birth_year",
 *   "education" (key, e.g. "some-college"), "previous" (outcome code of the person's previous wave, or null at
 *   the first wave), "truth" (the observed outcome code), "log_probs": [natural-log probability of each code;
 *   null stands for −∞]}.
 * A path ending in ".bin" gets the same content in a compact binary layout instead (predictions-binary.ts).
 */
import { closeSync, createReadStream, openSync, readSync } from "node:fs";
import { createInterface } from "node:readline";
import { EDUCATION_LEVELS, type EducationLevel, type PersonRecord } from "../data/panel.js";
import type { OccupationTaxonomy } from "../data/taxonomy.js";
import { writeFileAtomic } from "../io/atomic-write.js";
import {
  hasBinaryPredictionsMagic, isBinaryPredictionsPath, readBinaryPredictions, readBinaryPredictionsHeader, writeBinaryPredictions,
} from "./predictions-binary.js";

export const PREDICTIONS_FORMAT = "labor-llm-predictions";

export interface PredictionHeader {
  format: typeof PREDICTIONS_FORMAT;
  version: 1;
  model: string;
  codes: number[];
  normalised: boolean;
  meta?: Record<string, unknown>;
}

export interface PredictionRecord {
  personId: string;
  dataset: string;
  year: number;
  sex: string;
  race: string;
  region: string;
  birthYear: number;
  education: EducationLevel;
  /** Outcome code of the previous wave; null at a person's first wave. */
  previous: number | null;
  truth: number;
  /** log-probabilities in the header's code order (raw or normalised). */
  logProbs: Float64Array;
}

/** One record per person-year, from people and their per-wave log-probabilities. */
export function predictionRecords(people: readonly PersonRecord[], logProbs: readonly (readonly Float64Array[])[]): PredictionRecord[] {
  const records: PredictionRecord[] = [];
  people.forEach((person, p) => {
    if (logProbs[p].length !== person.waves.length) throw new Error(`person "${person.personId}": ${logProbs[p].length} predictions for ${person.waves.length} waves`);
    person.waves.forEach((wave, w) =>
      records.push({
        personId: person.personId,
        dataset: person.dataset,
        year: wave.year,
        sex: person.sex,
        race: person.race,
        region: person.region,
        birthYear: person.birthYear,
        education: wave.education,
        previous: w > 0 ? person.waves[w - 1].occupation : null,
        truth: wave.occupation,
        logProbs: logProbs[p][w],
      }),
    );
  });
  return records;
}

/** A log-probability as JSON: 8 significant digits (f32 needs ≤ 9; the metrics never notice), null for −∞. */
function formatLogprob(value: number): string {
  if (value === -Infinity) return "null";
  if (!Number.isFinite(value)) throw new Error(`predictions: log-probability ${value} is not finite`);
  return String(Number(value.toPrecision(8)));
}

/** A record's fields as written (everything but the log-probabilities), in the JSON Lines key order. */
export function recordFields(record: PredictionRecord): Record<string, unknown> {
  return {
    person_id: record.personId,
    dataset: record.dataset,
    year: record.year,
    sex: record.sex,
    race: record.race,
    region: record.region,
    birth_year: record.birthYear,
    education: EDUCATION_LEVELS[record.education].key,
    previous: record.previous,
    truth: record.truth,
  };
}

export function recordToJson(record: PredictionRecord): string {
  const head = JSON.stringify(recordFields(record));
  const values: string[] = new Array(record.logProbs.length);
  for (let i = 0; i < values.length; i++) values[i] = formatLogprob(record.logProbs[i]);
  return `${head.slice(0, -1)},"log_probs":[${values.join(",")}]}`;
}

/** Header for predictions over a taxonomy's outcomes (codes in taxonomy order). */
export function predictionHeader(model: string, taxonomy: OccupationTaxonomy, normalised: boolean, meta?: Record<string, unknown>): PredictionHeader {
  return { format: PREDICTIONS_FORMAT, version: 1, model, codes: taxonomy.outcomes.map((o) => o.code), normalised, ...(meta ? { meta } : {}) };
}

/**
 * Write a predictions file atomically (temp file + rename): JSON Lines, or the compact binary layout of
 * predictions-binary.ts when the path ends in ".bin". Returns the number of records.
 */
export function writePredictions(path: string, header: PredictionHeader, records: Iterable<PredictionRecord>): number {
  if (isBinaryPredictionsPath(path)) return writeBinaryPredictions(path, header, records);
  let count = 0;
  writeFileAtomic(path, (sink) => {
    let buffer = JSON.stringify(header) + "\n";
    for (const record of records) {
      if (record.logProbs.length !== header.codes.length) {
        throw new Error(`predictions: person "${record.personId}" ${record.year} has ${record.logProbs.length} log-probs for ${header.codes.length} codes`);
      }
      buffer += recordToJson(record) + "\n";
      count++;
      if (buffer.length >= 1 << 20) {
        sink.write(Buffer.from(buffer, "utf8"));
        buffer = "";
      }
    }
    if (buffer.length > 0) sink.write(Buffer.from(buffer, "utf8"));
  });
  return count;
}

export function parseHeader(path: string, line: string): PredictionHeader {
  let json: unknown;
  try {
    json = JSON.parse(line);
  } catch (error) {
    throw new Error(`${path}:1: not a predictions header (invalid JSON: ${(error as Error).message.replace(/\s*\n\s*/g, " ")})`, { cause: error });
  }
  const header = json as Partial<PredictionHeader> | null;
  if (!header || header.format !== PREDICTIONS_FORMAT) throw new Error(`${path}:1: not a labor-llm predictions file (header "format" must be "${PREDICTIONS_FORMAT}")`);
  if (header.version !== 1) throw new Error(`${path}:1: unsupported predictions version ${JSON.stringify(header.version) ?? String(header.version)}`);
  if (typeof header.model !== "string" || !Array.isArray(header.codes) || header.codes.length === 0 || typeof header.normalised !== "boolean") {
    throw new Error(`${path}:1: the header needs "model" (string), "codes" (non-empty array) and "normalised" (boolean)`);
  }
  return header as PredictionHeader;
}

function parseRecord(path: string, lineNumber: number, line: string, header: PredictionHeader, codeSet: Set<number>): PredictionRecord {
  const where = `${path}:${lineNumber}`;
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(line) as Record<string, unknown>;
  } catch (error) {
    throw new Error(`${where}: invalid JSON: ${(error as Error).message.replace(/\s*\n\s*/g, " ")}`, { cause: error });
  }
  const logProbs = json.log_probs;
  if (!Array.isArray(logProbs) || logProbs.length !== header.codes.length) {
    throw new Error(`${where}: "log_probs" must be an array of ${header.codes.length} numbers (one per header code)`);
  }
  const values = new Float64Array(logProbs.length);
  for (let i = 0; i < values.length; i++) {
    const v = logProbs[i];
    if (v === null) values[i] = -Infinity;
    else if (typeof v === "number") values[i] = v;
    else throw new Error(`${where}: log_probs[${i}] = ${JSON.stringify(v)} is not a log-probability (a number ≤ 0 or null)`);
  }
  return checkedRecord(where, json, values, codeSet);
}

/**
 * A record from its fields (the JSON line's keys, log_probs aside) and log-probabilities, checked: truth and
 * previous among the header's codes, a known education, every value a log-probability (≤ 0, −∞ allowed).
 */
export function checkedRecord(where: string, fields: Record<string, unknown>, values: Float64Array, codeSet: Set<number>): PredictionRecord {
  const truth = fields.truth;
  if (typeof truth !== "number" || !codeSet.has(truth)) throw new Error(`${where}: "truth" ${JSON.stringify(truth)} is not one of the header's codes`);
  const previous = fields.previous ?? null;
  if (previous !== null && (typeof previous !== "number" || !codeSet.has(previous))) throw new Error(`${where}: "previous" ${JSON.stringify(previous)} is not one of the header's codes`);
  const education = EDUCATION_LEVELS.findIndex((level) => level.key === fields.education);
  if (education < 0) throw new Error(`${where}: unknown education ${JSON.stringify(fields.education)}`);
  for (let i = 0; i < values.length; i++) {
    if (!(values[i] <= 1e-6)) throw new Error(`${where}: log_probs[${i}] = ${values[i]} is not a log-probability (a number ≤ 0 or null)`);
  }
  return {
    personId: String(fields.person_id),
    dataset: String(fields.dataset),
    year: Number(fields.year),
    sex: String(fields.sex),
    race: String(fields.race),
    region: String(fields.region),
    birthYear: Number(fields.birth_year),
    education: education as EducationLevel,
    previous: previous as number | null,
    truth,
    logProbs: values,
  };
}

/** Stream a predictions file (either layout, told apart by its first bytes): the header, then each record (errors name file:line or file and record). */
export async function readPredictions(path: string, onRecord: (record: PredictionRecord, header: PredictionHeader) => void): Promise<PredictionHeader> {
  if (hasBinaryPredictionsMagic(path)) return readBinaryPredictions(path, onRecord);
  const lines = createInterface({ input: createReadStream(path, { encoding: "utf8" }), crlfDelay: Infinity });
  let header: PredictionHeader | undefined;
  let codeSet = new Set<number>();
  let lineNumber = 0;
  for await (const line of lines) {
    lineNumber++;
    if (line.trim().length === 0) continue;
    if (!header) {
      header = parseHeader(path, line);
      codeSet = new Set(header.codes);
      continue;
    }
    onRecord(parseRecord(path, lineNumber, line, header, codeSet), header);
  }
  if (!header) throw new Error(`${path}: empty predictions file`);
  return header;
}

/** Only the header of a predictions file (either layout), without reading the records. */
export function readPredictionsHeader(path: string): PredictionHeader {
  if (hasBinaryPredictionsMagic(path)) return readBinaryPredictionsHeader(path);
  const fd = openSync(path, "r");
  try {
    const chunks: Buffer[] = [];
    let position = 0;
    for (;;) {
      const chunk = Buffer.alloc(1 << 16);
      const n = readSync(fd, chunk, 0, chunk.length, position);
      const newline = chunk.subarray(0, n).indexOf(10);
      chunks.push(chunk.subarray(0, newline >= 0 ? newline : n));
      position += n;
      if (newline >= 0 || n === 0) break;
    }
    const line = Buffer.concat(chunks).toString("utf8");
    if (line.trim().length === 0) throw new Error(`${path}: empty predictions file`);
    return parseHeader(path, line);
  } finally {
    closeSync(fd);
  }
}
