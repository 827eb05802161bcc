/**
 * The scoring journal (`OUT.partial`): what a scoring run has finished so far, appended person by person
 * and fsynced after each group of documents, so that `score --resume` continues after any interruption —
 * kill -9 included — from the last complete person. Layout (integers little-endian):
 *
 *   offset 0  8 bytes  magic "LLMJRNL1"
 *   then frames: u32 payload length, u32 CRC-32 of the payload, the payload
 *     frame 0: the run's identity, JSON (settings a resumed run must share, the predictions header)
 *     frame k ≥ 1: one person: u32 person index in the run, u32 waves, waves × codes f64 log-probabilities
 *
 * A process killed in the middle of an append leaves a torn last frame: shorter than its length says, or
 * with a checksum that does not match. Reading stops at the first such frame, and the file is cut back to
 * the end of the last complete one before anything is appended. The log-probabilities are kept as f64 — what
 * the scorer returned — so the predictions file written from the journal at the end is the one an
 * uninterrupted run writes, byte for byte, in either layout.
 */
import { closeSync, fstatSync, fsyncSync, ftruncateSync, openSync, readSync, renameSync, writeSync } from "node:fs";
import { syncDirectory } from "../io/atomic-write.js";
import { writeWithFaults } from "../io/fault-injection.js";
import { dirname } from "node:path";

const MAGIC = Buffer.from("LLMJRNL1", "latin1");
const FRAME_HEAD = 8;

/** CRC-32 (IEEE 802.3, as zlib's), table-driven. */
const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

export function crc32(bytes: Uint8Array): number {
  let crc = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) crc = CRC_TABLE[(crc ^ bytes[i]) & 0xff] ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

/** One scored person as stored in the journal. */
export interface JournalPerson {
  index: number;
  logProbs: Float64Array[];
}

export function encodePerson(index: number, logProbs: readonly Float64Array[], codes: number): Buffer {
  const payload = Buffer.alloc(8 + 8 * logProbs.length * codes);
  payload.writeUInt32LE(index, 0);
  payload.writeUInt32LE(logProbs.length, 4);
  logProbs.forEach((wave, w) => {
    if (wave.length !== codes) throw new Error(`journal: person ${index} wave ${w} has ${wave.length} log-probs for ${codes} codes`);
    Buffer.from(wave.buffer, wave.byteOffset, wave.byteLength).copy(payload, 8 + 8 * w * codes);
  });
  return payload;
}

export function decodePerson(path: string, payload: Buffer, codes: number): JournalPerson {
  const waves = payload.length >= 8 ? payload.readUInt32LE(4) : -1;
  if (waves < 0 || payload.length !== 8 + 8 * waves * codes) throw new Error(`${path}: a person frame of ${payload.length} bytes does not hold whole waves of ${codes} log-probs`);
  const values = new Float64Array(Uint8Array.from(payload.subarray(8)).buffer);  // a copy: aligned
  return { index: payload.readUInt32LE(0), logProbs: Array.from({ length: waves }, (_, w) => values.subarray(w * codes, (w + 1) * codes)) };
}

function frame(payload: Buffer): Buffer {
  const head = Buffer.alloc(FRAME_HEAD);
  head.writeUInt32LE(payload.length, 0);
  head.writeUInt32LE(crc32(payload), 4);
  return Buffer.concat([head, payload]);
}

/** What an existing journal holds: its identity and complete person frames, and how many torn bytes follow them. */
export interface JournalContents {
  identity: Record<string, unknown>;
  /** Payloads of the complete person frames, in order. */
  people: Buffer[];
  /** Bytes of the complete frames (the offset to append at). */
  validBytes: number;
  /** Bytes after them that do not make a complete frame (a torn last record). */
  tornBytes: number;
}

/** Read a journal; null when it does not even hold a complete identity frame (a run killed as it started). */
export function readJournal(path: string): JournalContents | null {
  const fd = openSync(path, "r");
  try {
    const size = fstatSync(fd).size;
    const readAt = (position: number, length: number): Buffer | null => {
      if (position + length > size) return null;
      const buffer = Buffer.alloc(length);
      let done = 0;
      while (done < length) {
        const n = readSync(fd, buffer, done, length - done, position + done);
        if (n === 0) return null;
        done += n;
      }
      return buffer;
    };
    const magic = readAt(0, MAGIC.length);
    if (magic === null) return null;
    if (!magic.equals(MAGIC)) throw new Error(`${path}: not a labor-llm scoring journal (bad magic); delete it to start over`);
    let position = MAGIC.length;
    const payloads: Buffer[] = [];
    for (;;) {
      const head = readAt(position, FRAME_HEAD);
      if (head === null) break;
      const payload = readAt(position + FRAME_HEAD, head.readUInt32LE(0));
      if (payload === null || crc32(payload) !== head.readUInt32LE(4)) break;
      payloads.push(payload);
      position += FRAME_HEAD + payload.length;
    }
    if (payloads.length === 0) return null;
    let identity: Record<string, unknown>;
    try {
      identity = JSON.parse(payloads[0].toString("utf8")) as Record<string, unknown>;
    } catch (error) {
      throw new Error(`${path}: the journal's identity frame is not JSON: ${(error as Error).message}`, { cause: error });
    }
    return { identity, people: payloads.slice(1), validBytes: position, tornBytes: size - position };
  } finally {
    closeSync(fd);
  }
}

/** Appends frames to a journal; every append is fsynced before it returns. */
export class JournalWriter {
  private position: number;

  private constructor(
    readonly path: string,
    private readonly fd: number,
    position: number,
  ) {
    this.position = position;
  }

  /** A new journal holding only the identity frame (written under a temp name, then renamed into place). */
  static create(path: string, identity: Record<string, unknown>): JournalWriter {
    const temp = `${path}.${process.pid}.tmp`;
    const fd = openSync(temp, "w", 0o644);
    try {
      const writer = new JournalWriter(path, fd, 0);
      writer.writeAll(Buffer.concat([MAGIC, frame(Buffer.from(JSON.stringify(identity), "utf8"))]));
      fsyncSync(fd);
      renameSync(temp, path);
      syncDirectory(dirname(path));
      return writer;
    } catch (error) {
      closeSync(fd);
      throw error;
    }
  }

  /** Continue a journal after its complete frames (a torn tail is cut off first). */
  static append(path: string, validBytes: number): JournalWriter {
    const fd = openSync(path, "r+");
    try {
      ftruncateSync(fd, validBytes);
      fsyncSync(fd);
    } catch (error) {
      closeSync(fd);
      throw error;
    }
    return new JournalWriter(path, fd, validBytes);
  }

  /** Append these payloads as frames, then fsync. */
  appendFrames(payloads: readonly Buffer[]): void {
    if (payloads.length === 0) return;
    this.writeAll(Buffer.concat(payloads.map(frame)));
    fsyncSync(this.fd);
  }

  close(): void {
    closeSync(this.fd);
  }

  private writeAll(bytes: Buffer): void {
    let offset = 0;
    while (offset < bytes.length) {
      try {
        writeWithFaults(this.path, bytes.length - offset, (n) => {
          const written = writeSync(this.fd, bytes, offset, n, this.position);
          offset += written;
          this.position += written;
          return written;
        });
      } catch (error) {
        throw new Error(`${this.path}: write failed: ${(error as Error).message.split("\n")[0]}`, { cause: error });
      }
    }
  }
}
