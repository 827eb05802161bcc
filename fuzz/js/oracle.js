// What every fuzz harness accepts from a reader given arbitrary bytes: a result, or the tool's one-line
// error — an Error (or one of the tool's own Error classes) whose message is one line. Anything else is a
// finding: a TypeError/RangeError from a missing check, a multi-line message, a non-Error throw.
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** Error class names the tool throws on purpose. */
const TOOL_ERRORS = new Set(["Error", "SafetensorsError", "PanelValidationError", "UsageError"]);

export function checkToolError(error) {
  if (!(error instanceof Error)) throw new Error(`threw a non-Error: ${String(error)}`);
  if (!TOOL_ERRORS.has(error.name) || (error.constructor !== Error && !TOOL_ERRORS.has(error.constructor.name))) {
    throw error;  // another exception type: the fuzzer reports it with its stack
  }
  if (error.message.includes("\n")) throw new Error(`multi-line error message: ${JSON.stringify(error.message)}`);
  return signature(error.message);
}

/** The shape of a message (numbers and quoted text blanked): new shapes are what the fuzzer keeps. */
export function signature(message) {
  return message.replace(/"(?:[^"\\]|\\.)*"/g, '""').replace(/-?\d+(\.\d+)?(e[+-]?\d+)?n?/gi, "0").slice(0, 200);
}

/** A scratch file for readers that take a path (one per process; rewritten each run). */
export function scratchFile(name) {
  const dir = join(existsShm() ? "/dev/shm" : tmpdir(), `labor-llm-fuzz-${process.pid}`);
  mkdirSync(dir, { recursive: true });
  process.on("exit", () => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, name);
  return (bytes) => {
    writeFileSync(path, bytes);
    return path;
  };
}

function existsShm() {
  try {
    mkdirSync("/dev/shm", { recursive: true });
    return true;
  } catch {
    return false;
  }
}
