/**
 * The compact binary layout of a predictions file (chosen by a path ending in ".bin"; read back by its first
 * bytes): the same header and records as the JSON Lines layout, with the log-probabilities as raw f32 — 4
 * bytes per value instead of ~11, and no number parsing when read. All integers little-endian:
 *
 *   offset 0   8 bytes   magic "LLMPRED1"
 *   offset 8   u32       H: bytes of the header JSON
 *   offset 12  u32       M: bytes of the records JSON
 *   offset 16  H bytes   header JSON, UTF-8: the JSON Lines header plus "records": N
 *   16 + H     M bytes   records JSON, UTF-8: an array of N arrays
 *                        [person_id, dataset, year, sex, race, region, birth_year, education, previous, truth]
 *                        (the JSON Lines keys, in that order)
 *   then zero bytes up to the next multiple of 8: offset O
 *   O          N·C f32   log_probs, record-major, C = header.codes.length; −∞ is stored as −Infinity
 *
 * The file is exactly O + 4·N·C bytes; anything else is an error naming the file.
 */
import { closeSync, fstatSync, openSync, readSync } from "node:fs";
import { writeFileAtomic } from "../io/atomic-write.js";
import { checkedRecord, parseHeader, recordFields, type PredictionHeader, type PredictionRecord } from "./predictions.js";

const MAGIC = Buffer.from("LLMPRED1", "latin1");
const FIELD_KEYS = ["person_id", "dataset", "year", "sex", "race", "region", "birth_year", "education", "previous", "truth"] as const;
/** Records whose log-probabilities are read (or written) per system call. */
const RECORDS_PER_CHUNK = 1024;

export function isBinaryPredictionsPath(path: string): boolean {
  return path.toLowerCase().endsWith(".bin");
}

/** True when the file starts with the binary layout's magic (false when it is shorter or unreadable as such). */
export function hasBinaryPredictionsMagic(path: string): boolean {
  let fd: number;
  try {
    fd = openSync(path, "r");
  } catch {
    return false;  // the JSON Lines reader reports the missing file in its own words
  }
  try {
    const head = Buffer.alloc(MAGIC.length);
    return readSync(fd, head, 0, head.length, 0) === MAGIC.length && head.equals(MAGIC);
  } finally {
    closeSync(fd);
  }
}

const align8 = (n: number) => Math.ceil(n / 8) * 8;

export function writeBinaryPredictions(path: string, header: PredictionHeader, records: Iterable<PredictionRecord>): number {
  const list = [...records];
  const codes = header.codes.length;
  for (const record of list) {
    if (record.logProbs.length !== codes) {
      throw new Error(`predictions: person "${record.personId}" ${record.year} has ${record.logProbs.length} log-probs for ${codes} codes`);
    }
  }
  const headerBytes = Buffer.from(JSON.stringify({ ...header, records: list.length }), "utf8");
  const fieldBytes = Buffer.from(JSON.stringify(list.map((record) => {
    const fields = recordFields(record);
    return FIELD_KEYS.map((key) => fields[key]);
  })), "utf8");
  const prefix = Buffer.alloc(16);
  MAGIC.copy(prefix, 0);
  prefix.writeUInt32LE(headerBytes.length, 8);
  prefix.writeUInt32LE(fieldBytes.length, 12);
  const start = 16 + headerBytes.length + fieldBytes.length;
  writeFileAtomic(path, (sink) => {
    sink.write(prefix);
    sink.write(headerBytes);
    sink.write(fieldBytes);
    sink.write(new Uint8Array(align8(start) - start));
    for (let first = 0; first < list.length; first += RECORDS_PER_CHUNK) {
      const chunk = list.slice(first, first + RECORDS_PER_CHUNK);
      const values = new Float32Array(chunk.length * codes);
      chunk.forEach((record, r) => values.set(record.logProbs, r * codes));
      sink.write(new Uint8Array(values.buffer, values.byteOffset, values.byteLength));
    }
  });
  return list.length;
}

function readExactly(fd: number, path: string, length: number, position: number, what: string): Buffer {
  const buffer = Buffer.alloc(length);
  let done = 0;
  while (done < length) {
    const n = readSync(fd, buffer, done, length - done, position + done);
    if (n === 0) throw new Error(`${path}: truncated binary predictions file (${what} needs bytes ${position}..${position + length})`);
    done += n;
  }
  return buffer;
}

function parseJson(path: string, bytes: Buffer, what: string): unknown {
  try {
    return JSON.parse(bytes.toString("utf8"));
  } catch (error) {
    throw new Error(`${path}: binary predictions ${what} is not valid JSON: ${(error as Error).message.replace(/\s*\n\s*/g, " ")}`, { cause: error });
  }
}

/** Only the header of a binary predictions file (without its "records" count). */
export function readBinaryPredictionsHeader(path: string): PredictionHeader {
  const fd = openSync(path, "r");
  try {
    const prefix = readExactly(fd, path, 16, 0, "the prefix");
    const header = parseHeader(path, readExactly(fd, path, prefix.readUInt32LE(8), 16, "the header").toString("utf8")) as PredictionHeader & { records?: unknown };
    delete header.records;
    return header;
  } finally {
    closeSync(fd);
  }
}

export async function readBinaryPredictions(path: string, onRecord: (record: PredictionRecord, header: PredictionHeader) => void): Promise<PredictionHeader> {
  const fd = openSync(path, "r");
  try {
    const size = fstatSync(fd).size;
    const prefix = readExactly(fd, path, 16, 0, "the prefix");
    const headerLength = prefix.readUInt32LE(8);
    const fieldsLength = prefix.readUInt32LE(12);
    if (16 + headerLength + fieldsLength > size) {
      throw new Error(`${path}: binary predictions header (${headerLength} bytes) and records (${fieldsLength} bytes) run past the end of the ${size}-byte file`);
    }
    const headerText = readExactly(fd, path, headerLength, 16, "the header").toString("utf8");
    const { records: count, ...header } = parseHeader(path, headerText) as PredictionHeader & { records?: unknown };
    if (typeof count !== "number" || !Number.isSafeInteger(count) || count < 0) {
      throw new Error(`${path}: binary predictions header needs "records" (a count ≥ 0)`);
    }
    const fields = parseJson(path, readExactly(fd, path, fieldsLength, 16 + headerLength, "the records"), "records");
    if (!Array.isArray(fields) || fields.length !== count) {
      throw new Error(`${path}: binary predictions records must be an array of ${count} entries (the header's "records")`);
    }
    const codes = header.codes.length;
    const offset = align8(16 + headerLength + fieldsLength);
    const expected = offset + 4 * count * codes;
    if (size !== expected) {
      throw new Error(`${path}: binary predictions file is ${size} bytes; ${count} records × ${codes} codes need exactly ${expected}`);
    }
    const codeSet = new Set(header.codes);
    for (let first = 0; first < count; first += RECORDS_PER_CHUNK) {
      const n = Math.min(RECORDS_PER_CHUNK, count - first);
      const bytes = readExactly(fd, path, 4 * n * codes, offset + 4 * first * codes, "the log-probabilities");
      const values = new Float32Array(Uint8Array.from(bytes).buffer);  // a copy: aligned whatever the Buffer's offset
      for (let r = 0; r < n; r++) {
        const index = first + r;
        const entry = fields[index] as unknown;
        const where = `${path}: record ${index}`;
        if (!Array.isArray(entry) || entry.length !== FIELD_KEYS.length) throw new Error(`${where}: must be an array of ${FIELD_KEYS.length} fields (${FIELD_KEYS.join(", ")})`);
        const named = Object.fromEntries(FIELD_KEYS.map((key, i) => [key, entry[i]]));
        onRecord(checkedRecord(where, named, Float64Array.from(values.subarray(r * codes, (r + 1) * codes)), codeSet), header);
      }
    }
    return header;
  } finally {
    closeSync(fd);
  }
}
