/** Small helpers over node:util parseArgs: typed flag reading with one-line errors naming the flag. */
import { parseArgs, type ParseArgsConfig } from "node:util";
import { parseFrozenParts, type FrozenPart } from "../model/llama-train.js";

export class UsageError extends Error {}

export type FlagSpec = NonNullable<ParseArgsConfig["options"]>;

export interface ParsedFlags {
  values: Record<string, string | boolean | undefined>;
  positionals: string[];
}

/** Parse flags strictly (unknown flags are usage errors); every command also accepts --help / -h. */
export function parseFlags(argv: string[], options: FlagSpec, allowPositionals = false): ParsedFlags {
  try {
    const { values, positionals } = parseArgs({
      args: argv,
      options: { ...options, help: { type: "boolean", short: "h" } },
      allowPositionals,
      strict: true,
    });
    return { values: values as ParsedFlags["values"], positionals };
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}

export function requireString(values: Record<string, unknown>, flag: string): string {
  const value = values[flag];
  if (typeof value !== "string" || value.length === 0) throw new UsageError(`missing required flag --${flag}`);
  return value;
}

export function optionalInteger(values: Record<string, unknown>, flag: string, fallback: number, min = 0): number {
  const value = values[flag];
  if (value === undefined) return fallback;
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed < min) {
    throw new UsageError(`--${flag} must be an integer ≥ ${min}, got "${String(value)}"`);
  }
  return parsed;
}

export function oneOf<T extends string>(values: Record<string, unknown>, flag: string, choices: readonly T[], fallback: T): T {
  const value = values[flag];
  if (value === undefined) return fallback;
  if (typeof value !== "string" || !choices.includes(value as T)) {
    throw new UsageError(`--${flag} must be one of ${choices.join(", ")}, got "${String(value)}"`);
  }
  return value as T;
}

/** A --flag holding a comma-separated list of model parts to freeze (parseFrozenParts); absent: none. */
export function frozenPartsFlag(values: Record<string, unknown>, flag: string): FrozenPart[] {
  const value = values[flag];
  if (value === undefined) return [];
  try {
    return parseFrozenParts(String(value));
  } catch (error) {
    throw new UsageError(`--${flag}: ${(error as Error).message}`);
  }
}

/** A --flag holding a finite number that passes `check`; `what` completes "must be …" in the usage error. */
export function checkedNumber(
  values: Record<string, unknown>, flag: string, fallback: number, check: (x: number) => boolean, what: string,
): number {
  const value = values[flag];
  if (value === undefined) return fallback;
  const parsed = Number(value);
  if (typeof value !== "string" || value.trim() === "" || !Number.isFinite(parsed) || !check(parsed)) {
    throw new UsageError(`--${flag} must be ${what}, got "${String(value)}"`);
  }
  return parsed;
}

export function optionalNumber(values: Record<string, unknown>, flag: string, fallback: number, allowZero = false): number {
  return allowZero
    ? checkedNumber(values, flag, fallback, (x) => x >= 0, "a non-negative number")
    : checkedNumber(values, flag, fallback, (x) => x > 0, "a positive number");
}
