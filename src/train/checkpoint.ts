/**
 * Training checkpoints: everything a run needs to continue bit-identically — the trainable tensors (f32
 * masters), AdamW's moments, the step, the data position (epoch, micro-batch index, micro-batch serial:
 * the data order and dropout masks are functions of the seed and these) and the validation bookkeeping.
 *
 * Layout under the output directory:
 *   checkpoint-000120/ trainer_state.json, parameters.safetensors, optimizer.safetensors
 *   checkpoint -> checkpoint-000120      (a symlink, replaced atomically by rename once the new one is complete)
 * Each file is written atomically; older checkpoint-* directories are removed after the link moves. A crash
 * at any point — kill -9 in the middle of a file included — leaves `checkpoint` pointing at a complete
 * checkpoint (or absent before the first); test/train-crash.test.ts kills runs at random points, inside
 * checkpoint writes too, and checks that --resume ends with the uninterrupted run's weights bit for bit.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, readlinkSync, renameSync, rmSync, symlinkSync, unlinkSync } from "node:fs";
import { basename, join } from "node:path";
import { syncDirectory, writeFileAtomic } from "../io/atomic-write.js";
import { toFloat32 } from "../io/dtype.js";
import { openSafetensors, writeSafetensors } from "../io/safetensors.js";

export const CHECKPOINT_LINK = "checkpoint";
const STATE_FILE = "trainer_state.json";
const PARAMETERS_FILE = "parameters.safetensors";
const OPTIMIZER_FILE = "optimizer.safetensors";

/** One optimizer step's record. */
export interface StepRecord {
  step: number;
  loss: number;
  learningRate: number;
  gradNorm: number;
  tokens: number;
}

export interface ValidationRecord {
  step: number;
  loss: number;
}

export interface TrainerState {
  format: 1;
  /** Optimizer steps done. */
  step: number;
  /** Epoch in progress and the index of its next micro-batch. */
  epoch: number;
  batchIndex: number;
  /** Micro-batches run so far (the serial of the next one). */
  microBatches: number;
  tokensSeen: number;
  bestValidLoss: number | null;
  bestStep: number | null;
  evalsWithoutImprovement: number;
  history: StepRecord[];
  validation: ValidationRecord[];
  /** Settings that must match to resume (mode, data, optimizer, schedule, seed...). */
  fingerprint: Record<string, unknown>;
}

export interface SavedTraining {
  state: TrainerState;
  parameters: Map<string, Float32Array>;
  moments: Map<string, { m: Float32Array; v: Float32Array }>;
}

/**
 * Write checkpoint-<step> completely, then point the `checkpoint` link at it and drop older ones. Saving the
 * step the link already points at (the end of a run whose last step was also a periodic checkpoint, or a
 * resumed run saving again) writes checkpoint-<step>-2 instead, so the linked directory is never the one
 * being rewritten. A failed write (a full disk) removes the new directory and throws a one-line error
 * saying which checkpoint the link still holds.
 */
export function saveCheckpoint(outDir: string, saved: SavedTraining): string {
  const current = linkTarget(outDir, CHECKPOINT_LINK);
  const currentName = current === null ? null : basename(current);
  const first = `checkpoint-${String(saved.state.step).padStart(6, "0")}`;
  const name = first === currentName ? `${first}-2` : first;
  const dir = join(outDir, name);
  try {
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    writeSafetensors(join(dir, PARAMETERS_FILE), [...saved.parameters].map(([tensorName, data]) => ({
      name: tensorName, dtype: "F32" as const, shape: [data.length], data,
    })));
    writeSafetensors(join(dir, OPTIMIZER_FILE), [...saved.moments].flatMap(([tensorName, { m, v }]) => [
      { name: `${tensorName}.exp_avg`, dtype: "F32" as const, shape: [m.length], data: m },
      { name: `${tensorName}.exp_avg_sq`, dtype: "F32" as const, shape: [v.length], data: v },
    ]));
    const json = Buffer.from(JSON.stringify(saved.state, jsonNumbers, 1) + "\n", "utf8");
    writeFileAtomic(join(dir, STATE_FILE), (sink) => sink.write(json));
    syncDirectory(outDir);  // the new directory's entry, before a link can point at it
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    const kept = currentName === null ? "there is no earlier checkpoint" : `${join(outDir, CHECKPOINT_LINK)} still holds ${currentName}`;
    throw new Error(`checkpoint of step ${saved.state.step} not saved (${(error as Error).message}); ${kept}`, { cause: error });
  }
  pointLink(outDir, CHECKPOINT_LINK, name);
  for (const entry of readdirSync(outDir)) {
    if (CHECKPOINT_DIR.test(entry) && entry !== name) rmSync(join(outDir, entry), { recursive: true, force: true });
  }
  return dir;
}

/** checkpoint-<step> and its alternate checkpoint-<step>-2. */
const CHECKPOINT_DIR = /^checkpoint-\d+(-2)?$/;

/** Replace the symlink outDir/link → target atomically (new link under a temp name, then rename; the directory fsynced). */
export function pointLink(outDir: string, link: string, target: string): void {
  const temp = join(outDir, `.${link}.${process.pid}.tmp`);
  try {
    unlinkSync(temp);
  } catch {
    // not there
  }
  symlinkSync(target, temp);
  renameSync(temp, join(outDir, link));
  syncDirectory(outDir);
}

/** The directory a link points at (relative targets resolved against outDir), or null when absent. */
export function linkTarget(outDir: string, link: string): string | null {
  const path = join(outDir, link);
  if (!existsSync(path)) return null;
  try {
    return join(outDir, readlinkSync(path));
  } catch {
    return path; // a plain directory
  }
}

/** Read the checkpoint the `checkpoint` link points at; null when there is none. */
export function loadCheckpoint(outDir: string): SavedTraining | null {
  const dir = linkTarget(outDir, CHECKPOINT_LINK);
  if (!dir) return null;
  const statePath = join(dir, STATE_FILE);
  let state: TrainerState;
  try {
    state = JSON.parse(readFileSync(statePath, "utf8"), (_key, value) => (NON_FINITE.has(value) ? Number(value) : value)) as TrainerState;
  } catch (error) {
    throw new Error(`${statePath}: cannot read trainer state: ${(error as Error).message}`, { cause: error });
  }
  if (state.format !== 1) throw new Error(`${statePath}: unknown trainer state format ${JSON.stringify(state.format)}`);
  const parameters = new Map<string, Float32Array>();
  const paramFile = openSafetensors(join(dir, PARAMETERS_FILE));
  for (const name of paramFile.names()) {
    const t = paramFile.tensor(name);
    parameters.set(name, toFloat32(t.data, t.dtype));
  }
  const moments = new Map<string, { m: Float32Array; v: Float32Array }>();
  const optFile = openSafetensors(join(dir, OPTIMIZER_FILE));
  for (const name of parameters.keys()) {
    const read = (suffix: string): Float32Array => {
      const key = `${name}.${suffix}`;
      if (!optFile.has(key)) throw new Error(`${join(dir, OPTIMIZER_FILE)}: missing tensor ${JSON.stringify(key)}`);
      const t = optFile.tensor(key);
      return toFloat32(t.data, t.dtype);
    };
    moments.set(name, { m: read("exp_avg"), v: read("exp_avg_sq") });
  }
  return { state, parameters, moments };
}

const NON_FINITE = new Set<unknown>(["NaN", "Infinity", "-Infinity"]);

/** JSON has no NaN/Infinity: write them as strings (a NaN loss of an all-masked step survives the trip). */
function jsonNumbers(_key: string, value: unknown): unknown {
  return typeof value === "number" && !Number.isFinite(value) ? String(value) : value;
}
