/**
 * Write-fault injection for crash and full-disk tests, through one environment variable read at each write:
 *
 *   LABOR_LLM_WRITE_FAULT=kill@N[:PATH_PART]     write exactly the first N bytes, then SIGKILL this process
 *   LABOR_LLM_WRITE_FAULT=enospc@N[:PATH_PART]   the write that would pass byte N fails like a full disk (ENOSPC)
 *
 * N counts the bytes this process has written through the tool's durable writers (atomic files:
 * checkpoints, adapters, predictions; scoring journals) since the variable took its current value; with
 * PATH_PART only writes to paths containing it count (e.g. "enospc@0:checkpoint-000004" fails the first
 * write of the step-4 checkpoint). Unset, it costs one property read per write.
 */
export const WRITE_FAULT_ENV = "LABOR_LLM_WRITE_FAULT";

interface WriteFault {
  kind: "kill" | "enospc";
  afterBytes: number;
  pathPart: string;
}

let parsedFrom: string | undefined;
let fault: WriteFault | null = null;
let counted = 0;

function currentFault(): WriteFault | null {
  const value = process.env[WRITE_FAULT_ENV];
  if (value !== parsedFrom) {
    parsedFrom = value;
    counted = 0;
    fault = value ? parseWriteFault(value) : null;
  }
  return fault;
}

export function parseWriteFault(value: string): WriteFault {
  const match = /^(kill|enospc)@(\d+)(?::(.+))?$/.exec(value);
  if (!match) throw new Error(`${WRITE_FAULT_ENV}="${value}": expected kill@BYTES or enospc@BYTES, optionally followed by :PATH_PART`);
  return { kind: match[1] as WriteFault["kind"], afterBytes: Number(match[2]), pathPart: match[3] ?? "" };
}

/**
 * Run `write(length)` — a write of up to `length` bytes at the caller's current position that advances it and
 * returns the bytes written — under the configured fault, if any. Returns what `write` returned.
 */
export function writeWithFaults(path: string, length: number, write: (length: number) => number): number {
  const active = currentFault();
  if (!active || !path.includes(active.pathPart)) return write(length);
  const allowed = active.afterBytes - counted;
  if (allowed >= length) {
    const written = write(length);
    counted += written;
    return written;
  }
  if (active.kind === "enospc") {
    const error = new Error(`ENOSPC: no space left on device, write (injected by ${WRITE_FAULT_ENV})`) as NodeJS.ErrnoException;
    error.code = "ENOSPC";
    throw error;
  }
  // kill: put exactly the allowed bytes on disk first, so the file is torn where the test asked.
  let done = 0;
  while (done < allowed) done += write(allowed - done);
  counted += done;
  process.kill(process.pid, "SIGKILL");
  throw new Error(`${WRITE_FAULT_ENV}: SIGKILL did not stop the process`);
}
