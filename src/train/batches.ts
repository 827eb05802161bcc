/**
 * Documents → packed token batches. Every document is a token sequence with a loss mask (mask[i] = 1 when
 * the loss includes −log p(ids[i] | ids[<i])). Sequences are laid end to end on one token axis up to a
 * token budget; each token attends only its own document's earlier tokens (key range [document start,
 * itself]), and positions restart at 0 per document, so a packed batch computes exactly what the documents
 * would give one at a time. Documents longer than the model's context (or the budget) are cut into windows.
 *
 * The order of documents is a seeded shuffle per epoch, so the whole data order is a function of
 * (seed, epoch) and a resumed run sees the same batches.
 */
import type { PackedBatch } from "../model/llama-train.js";

/** One training sequence: token ids (BOS first, usually) and its loss mask. */
export interface TrainingSequence {
  ids: Int32Array;
  lossMask: Uint8Array;
  /**
   * Optional unlikelihood targets: avoid[i] ≥ 0 is a token that position i must NOT hold — the loss includes
   * −log(1 − p(avoid[i] | ids[<i])) — where lossMask[i] is 0; −1 elsewhere.
   */
  avoid?: Int32Array;
}

/** Cut sequences longer than `maxLength` into consecutive windows (each window's first token is unpredicted). */
export function windowSequences(sequences: readonly TrainingSequence[], maxLength: number): TrainingSequence[] {
  const out: TrainingSequence[] = [];
  for (const s of sequences) {
    if (s.ids.length !== s.lossMask.length) throw new Error(`sequence has ${s.ids.length} tokens but ${s.lossMask.length} loss-mask entries`);
    if (s.avoid && s.avoid.length !== s.ids.length) throw new Error(`sequence has ${s.ids.length} tokens but ${s.avoid.length} avoid entries`);
    if (s.ids.length < 2) continue; // nothing to predict
    for (let start = 0; start < s.ids.length; start += maxLength) {
      const ids = s.ids.subarray(start, start + maxLength);
      if (ids.length < 2) continue;
      const window: TrainingSequence = { ids, lossMask: s.lossMask.subarray(start, start + maxLength) };
      if (s.avoid) window.avoid = s.avoid.subarray(start, start + maxLength);
      out.push(window);
    }
  }
  return out;
}


/** Lay the chosen sequences on one token axis: ids, positions, per-document key ranges and targets. */
export function buildPackedBatch(sequences: readonly TrainingSequence[], members: readonly number[], serial: number): PackedBatch {
  const total = members.reduce((n, i) => n + sequences[i].ids.length, 0);
  const batch: PackedBatch = {
    ids: new Int32Array(total),
    positions: new Int32Array(total),
    keyStart: new Int32Array(total),
    keyEnd: new Int32Array(total),
    targets: new Int32Array(total).fill(-1),
    targetCount: 0,
    serial,
  };
  if (members.some((i) => sequences[i].avoid)) batch.avoid = new Uint8Array(total);
  let row = 0;
  for (const index of members) {
    const { ids, lossMask, avoid } = sequences[index];
    const start = row;
    for (let i = 0; i < ids.length; i++, row++) {
      batch.ids[row] = ids[i];
      batch.positions[row] = i;
      batch.keyStart[row] = start;
      batch.keyEnd[row] = row + 1;
      // Token i's output predicts token i+1, when the mask includes it — or must not predict avoid[i+1].
      if (i + 1 < ids.length && lossMask[i + 1]) {
        batch.targets[row] = ids[i + 1];
        batch.targetCount++;
      } else if (avoid && i + 1 < ids.length && avoid[i + 1] >= 0) {
        batch.targets[row] = avoid[i + 1];
        batch.avoid![row] = 1;
        batch.targetCount++;
      }
    }
  }
  return batch;
}
