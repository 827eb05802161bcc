/**
 * Atomic file replacement: write a temp file in the target's directory, fsync it, rename it over the
 * target, fsync the directory. A reader (or a crash) sees either the old file or the complete new one,
 * never a partial file, and a failed write leaves no temp file behind. Crash and full-disk tests inject
 * faults into the writes through LABOR_LLM_WRITE_FAULT (fault-injection.ts).
 */
import { closeSync, fsyncSync, openSync, renameSync, unlinkSync, writeSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { basename, dirname, join } from "node:path";
import { writeWithFaults } from "./fault-injection.js";

/** Largest single write(2): Linux caps one call at 0x7ffff000 bytes, so large tensors go in pieces. */
const MAX_WRITE_BYTES = 1 << 30;

/** Appends bytes to the file being written. */
export interface AtomicSink {
  write(bytes: Uint8Array): void;
  /** Bytes written so far. */
  readonly position: number;
}

/**
 * Write `path` atomically: `fill` streams the content through the sink; nothing is visible at `path`
 * until `fill` returns and the data is on disk. Errors from the file system are one line naming `path`;
 * errors thrown by `fill` itself are rethrown unchanged (after the temp file is removed).
 */
export function writeFileAtomic(path: string, fill: (sink: AtomicSink) => void): void {
  const tempPath = join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(6).toString("hex")}.tmp`);
  let fd: number | undefined;
  try {
    fd = fsCall(path, "cannot create temp file", () => openSync(tempPath, "wx", 0o644));
    const sink = new FileSink(fd, path);
    fill(sink);
    const openFd = fd;
    fsCall(path, "fsync failed", () => fsyncSync(openFd));
    fd = undefined;
    fsCall(path, "close failed", () => closeSync(openFd));
    fsCall(path, "cannot rename temp file into place", () => renameSync(tempPath, path));
  } catch (error) {
    if (fd !== undefined) {
      try {
        closeSync(fd);
      } catch {
        // Already failing; the original error is the one worth reporting.
      }
    }
    try {
      unlinkSync(tempPath);
    } catch {
      // The temp file may not exist (open failed) or was already renamed.
    }
    throw error;
  }
  syncDirectory(dirname(path));
}

class FileSink implements AtomicSink {
  position = 0;

  constructor(
    private readonly fd: number,
    private readonly path: string,
  ) {}

  write(bytes: Uint8Array): void {
    let offset = 0;
    while (offset < bytes.byteLength) {
      const length = Math.min(bytes.byteLength - offset, MAX_WRITE_BYTES);
      // writeSync may write less than asked; loop until the piece is done.
      fsCall(this.path, "write failed", () => writeWithFaults(this.path, length, (n) => {
        const written = writeSync(this.fd, bytes, offset, n, this.position);
        offset += written;
        this.position += written;
        return written;
      }));
    }
  }
}

/** Make a rename (or a new entry) in `directory` durable. Best effort: some platforms cannot open or fsync a directory. */
export function syncDirectory(directory: string): void {
  let fd: number | undefined;
  try {
    fd = openSync(directory, "r");
    fsyncSync(fd);
  } catch {
    // Not fatal: the data is already fsynced and renamed.
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

function fsCall<T>(path: string, what: string, call: () => T): T {
  try {
    return call();
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    throw new Error(`${path}: ${what}: ${message.split("\n")[0]}`, { cause: error });
  }
}
