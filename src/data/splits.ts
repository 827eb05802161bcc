/**
 * Train/valid/test splits by person: a person's whole career lands in one split, decided by a hash of
 * (seed, person id) alone, so the split of a person never changes when people are added, removed or
 * reordered, and the same seed gives the same split on every machine.
 */
import { hashString } from "../util/random.js";

export const SPLIT_NAMES = ["train", "valid", "test"] as const;
export type SplitName = (typeof SPLIT_NAMES)[number];

/** Fractions of people per split; must be non-negative and sum to 1. */
export interface SplitFractions {
  train: number;
  valid: number;
  test: number;
}

export const DEFAULT_SPLIT_FRACTIONS: SplitFractions = { train: 0.8, valid: 0.1, test: 0.1 };

/**
 * The split of one person: u = hash(seed, personId) / 2³² is uniform on [0, 1); train when
 * u < train, valid when u < train + valid, else test.
 */
export function splitOfPerson(personId: string, seed: number, fractions: SplitFractions = DEFAULT_SPLIT_FRACTIONS): SplitName {
  checkFractions(fractions);
  const u = hashString(personId, seed) / 4294967296;
  if (u < fractions.train) return "train";
  if (u < fractions.train + fractions.valid) return "valid";
  return "test";
}

/** Split of every person id, in the order given. */
export function assignSplits(personIds: readonly string[], seed: number, fractions: SplitFractions = DEFAULT_SPLIT_FRACTIONS): Map<string, SplitName> {
  checkFractions(fractions);
  return new Map(personIds.map((id) => [id, splitOfPerson(id, seed, fractions)]));
}

function checkFractions(fractions: SplitFractions): void {
  const values = [fractions.train, fractions.valid, fractions.test];
  const sum = values.reduce((a, b) => a + b, 0);
  if (values.some((v) => !(v >= 0)) || Math.abs(sum - 1) > 1e-9) {
    throw new Error(`split fractions must be non-negative and sum to 1, got train ${fractions.train}, valid ${fractions.valid}, test ${fractions.test}`);
  }
}
