/** Loading a panel and picking one split of it (splits.csv from `data synth`, found next to the panel by default). */
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { parse as parseCsv } from "csv-parse/sync";
import { loadPanel } from "../data/load.js";
import type { PersonRecord } from "../data/panel.js";
import { SPLIT_NAMES, type SplitName } from "../data/splits.js";
import { UsageError } from "./args.js";

export const SPLIT_HELP = `  --split NAME     train | valid | test | all (default test)
  --splits FILE    person_id,split CSV (default: splits.csv next to the panel, as written by data synth)`;

/** person_id → split from a splits CSV. */
export function readSplitsCsv(path: string): Map<string, SplitName> {
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

export interface PanelSplits {
  all: PersonRecord[];
  /** People of a split ("all": everyone). */
  pick(split: SplitName | "all"): PersonRecord[];
}

/** Load a panel and its split assignment (only needed when a split other than "all" is picked). */
export async function loadPanelSplits(panelPath: string, splitsPath?: string): Promise<PanelSplits> {
  const panel = await loadPanel(panelPath);
  const defaultPath = join(dirname(panelPath), "splits.csv");
  const path = splitsPath ?? (existsSync(defaultPath) ? defaultPath : undefined);
  const splits = path ? readSplitsCsv(path) : undefined;
  return {
    all: panel.people,
    pick(split) {
      if (split === "all") return panel.people;
      if (!splits) throw new UsageError(`--split ${split} needs a splits file: pass --splits FILE (none found at ${defaultPath}) or --split all`);
      return panel.people.filter((person) => {
        const s = splits.get(person.personId);
        if (s === undefined) throw new Error(`${path}: no split for person "${person.personId}"`);
        return s === split;
      });
    },
  };
}

export function splitFlag(values: Record<string, unknown>, fallback: SplitName | "all" = "test"): SplitName | "all" {
  const value = values.split;
  if (value === undefined) return fallback;
  if (value === "all" || SPLIT_NAMES.includes(value as SplitName)) return value as SplitName | "all";
  throw new UsageError(`--split must be one of ${SPLIT_NAMES.join(", ")}, all; got "${String(value)}"`);
}
