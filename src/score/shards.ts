/**
 * Sharded scoring: `score --shard I/N` scores a deterministic share of the people and `score merge` joins the
 * shards' predictions files into exactly the file one run writes.
 *
 * The people of the split are cut into groups of `documentsPerGroup` (the scorer's unit of batching), and the
 * groups into N contiguous runs holding about equal person-years: shard I gets groups [cut(I−1), cut(I)),
 * where cut(i) is the group boundary whose person-years before it are closest to i/N of the total. A shard
 * is therefore a range of people that starts on a group boundary, so it runs exactly the batches one run
 * runs there, and merging is concatenation in shard order. Each shard's header carries meta.shard (its
 * index, the count, its range of people and the total), which merge checks and then removes.
 */
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import type { PersonRecord } from "../data/panel.js";
import { isBinaryPredictionsPath } from "./predictions-binary.js";
import { readPredictions, readPredictionsHeader, writePredictions, type PredictionHeader, type PredictionRecord } from "./predictions.js";

/** Shard `index` (1-based) of `count`. */
export interface Shard {
  index: number;
  count: number;
}

/** What a shard's header records in meta.shard. */
export interface ShardMeta extends Shard {
  /** The shard's people are [first, end) of the run's people. */
  first: number;
  end: number;
  /** People of the whole run. */
  people: number;
  /** The group size the cut was made with (the scorer's documentsPerGroup). */
  groupSize: number;
}

/** Parse "I/N" (1 ≤ I ≤ N). */
export function parseShard(text: string): Shard {
  const match = /^(\d+)\/(\d+)$/.exec(text.trim());
  const index = match ? Number(match[1]) : NaN;
  const count = match ? Number(match[2]) : NaN;
  if (!match || count < 1 || index < 1 || index > count) throw new Error(`--shard must be I/N with 1 ≤ I ≤ N (e.g. 2/8), got "${text}"`);
  return { index, count };
}

/** The people [first, end) of shard I/N: whole groups, balanced by person-years (see the file comment). */
export function shardRange(people: readonly PersonRecord[], groupSize: number, shard: Shard): { first: number; end: number } {
  const groups = Math.ceil(people.length / groupSize);
  // before[g]: person-years of the groups before group g.
  const before = new Float64Array(groups + 1);
  for (let g = 0; g < groups; g++) {
    let years = 0;
    for (const person of people.slice(g * groupSize, (g + 1) * groupSize)) years += person.waves.length;
    before[g + 1] = before[g] + years;
  }
  const cut = (i: number): number => {
    if (i <= 0) return 0;
    if (i >= shard.count) return groups;
    const target = (before[groups] * i) / shard.count;
    let best = 0;
    for (let g = 1; g <= groups; g++) if (Math.abs(before[g] - target) < Math.abs(before[best] - target)) best = g;
    return best;
  };
  // Cuts are monotone in i (each is the nearest boundary to an increasing target; ties go to the first).
  const firstGroup = cut(shard.index - 1);
  const endGroup = Math.max(firstGroup, cut(shard.index));
  return { first: Math.min(people.length, firstGroup * groupSize), end: Math.min(people.length, endGroup * groupSize) };
}

/** A shard's header: the run's header with meta.shard added (merge removes it again). */
export function shardHeader(header: PredictionHeader, shard: ShardMeta): PredictionHeader {
  return { ...header, meta: { ...header.meta, shard } };
}

function shardMetaOf(path: string, header: PredictionHeader): ShardMeta {
  const shard = header.meta?.shard as Partial<ShardMeta> | undefined;
  const fields = ["index", "count", "first", "end", "people", "groupSize"] as const;
  if (!shard || fields.some((key) => !Number.isSafeInteger(shard[key]))) {
    throw new Error(`${path}: not a shard's predictions (its header has no meta.shard from \`score --shard I/N\`)`);
  }
  return shard as ShardMeta;
}

function withoutShard(header: PredictionHeader): PredictionHeader {
  const { meta: allMeta, ...rest } = header;
  const meta = { ...allMeta };
  delete meta.shard;
  return Object.keys(meta).length > 0 ? { ...rest, meta } : rest;
}

export interface MergeResult {
  shards: number;
  records: number;
  /** Notes for the user (e.g. shards scored on different backends). */
  warnings: string[];
}

/**
 * Join the predictions of every shard of one run (any order of paths) into `outPath`: checks that there are
 * N shards 1..N of the same run (same header apart from meta.shard; a different meta.backend is allowed and
 * reported) whose ranges tile the people, and that they and the output share a layout (JSON Lines rounds
 * log-probabilities to 8 digits, .bin to f32: a merged file in the other layout would differ from a single
 * run's). Errors name the file.
 */
export async function mergePredictionShards(paths: readonly string[], outPath: string): Promise<MergeResult> {
  if (paths.length === 0) throw new Error("merge: no shard files given");
  const shards = paths.map((path) => {
    if (isBinaryPredictionsPath(path) !== isBinaryPredictionsPath(outPath)) {
      throw new Error(`${path}: a shard and the merged file must share a layout (.bin or JSON Lines) to equal one run's file; ${outPath} is ${isBinaryPredictionsPath(outPath) ? ".bin" : "JSON Lines"}`);
    }
    const header = readPredictionsHeader(path);
    return { path, header, shard: shardMetaOf(path, header) };
  });
  shards.sort((a, b) => a.shard.index - b.shard.index);
  const count = shards[0].shard.count;
  const reference = withoutShard(shards[0].header);
  const warnings: string[] = [];
  let expectedFirst = 0;
  shards.forEach(({ path, header, shard }, i) => {
    if (shard.count !== count) throw new Error(`${path}: shard ${shard.index}/${shard.count}, but ${shards[0].path} is of ${count} shards`);
    if (shard.index !== i + 1) {
      throw new Error(shard.index === i ? `${path}: shard ${shard.index}/${count} given twice` : `merge: shard ${i + 1}/${count} is missing`);
    }
    const plain = withoutShard(header);
    for (const key of Object.keys({ ...reference, ...plain }) as (keyof PredictionHeader)[]) {
      if (key === "meta") continue;
      if (JSON.stringify(plain[key]) !== JSON.stringify(reference[key])) throw new Error(`${path}: header "${key}" differs from ${shards[0].path}'s (not shards of one run)`);
    }
    const [meta, referenceMeta] = [plain.meta ?? {}, reference.meta ?? {}];
    for (const key of new Set([...Object.keys(meta), ...Object.keys(referenceMeta)])) {
      if (JSON.stringify(meta[key]) === JSON.stringify(referenceMeta[key])) continue;
      if (key !== "backend") throw new Error(`${path}: header meta "${key}" differs from ${shards[0].path}'s (not shards of one run)`);
      warnings.push(`${path} was scored on ${JSON.stringify(meta[key])}, ${shards[0].path} on ${JSON.stringify(referenceMeta[key])}; the merged header names the latter`);
    }
    if (shard.people !== shards[0].shard.people || shard.groupSize !== shards[0].shard.groupSize) {
      throw new Error(`${path}: shard of ${shard.people} people in groups of ${shard.groupSize}; ${shards[0].path}: ${shards[0].shard.people} in groups of ${shards[0].shard.groupSize}`);
    }
    if (shard.first !== expectedFirst) throw new Error(`${path}: shard ${shard.index}/${count} starts at person ${shard.first}, expected ${expectedFirst}`);
    expectedFirst = shard.end;
  });
  if (shards.length !== count) throw new Error(`merge: ${shards.length} of ${count} shards given (shard ${shards.length + 1}/${count} is missing)`);
  if (expectedFirst !== shards[0].shard.people) throw new Error(`merge: the shards cover people 0..${expectedFirst} of ${shards[0].shard.people}`);

  const records: PredictionRecord[] = [];
  for (const { path } of shards) await readPredictions(path, (record) => void records.push(record));
  mkdirSync(dirname(outPath), { recursive: true });
  writePredictions(outPath, reference, records);
  return { shards: count, records: records.length, warnings };
}
