/**
 * Cached pipeline steps for the demo: each step's output directory is keyed by a hash of everything that
 * determines it (its own settings and the keys of the steps it reads), so a rerun reuses finished steps and
 * redoes exactly those whose inputs changed. A step is finished only when its `done.json` exists, written
 * last, so an interrupted step is redone.
 */
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";

export interface StepResult<T> {
  dir: string;
  key: string;
  value: T;
  reused: boolean;
}

export function stepKey(inputs: unknown): string {
  return createHash("sha256").update(JSON.stringify(inputs)).digest("hex").slice(0, 12);
}

/**
 * Run `produce` in `root/name-<key>` unless a finished run with the same key is there. `produce` returns a
 * JSON-serialisable summary, which is what a reused step returns.
 */
export async function runStep<T>(
  root: string,
  name: string,
  inputs: unknown,
  produce: (dir: string) => Promise<T>,
): Promise<StepResult<T>> {
  const key = stepKey({ name, inputs });
  // Absolute: the paths a step returns are kept in its done.json, and a relative one would break the cache for a
  // rerun from another working directory.
  const dir = resolve(root, `${name}-${key}`);
  const marker = join(dir, "done.json");
  if (existsSync(marker)) {
    return { dir, key, value: JSON.parse(readFileSync(marker, "utf8")) as T, reused: true };
  }
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const value = await produce(dir);
  writeFileSync(marker, JSON.stringify(value, null, 2) + "\n");
  return { dir, key, value, reused: false };
}
