/**
 * Orders and greedy packing of sequences into batches: pure functions shared by the training loop
 * (train/) and by CAREER's batching for training and scoring (model/career.ts).
 */
import { SeededRandom } from "./random.js";

/** A permutation of 0 … count−1 for an epoch (Fisher–Yates from SeededRandom(seed, "epoch N")). */
export function epochOrder(count: number, seed: number, epoch: number, shuffle = true): Int32Array {
  const order = Int32Array.from({ length: count }, (_, i) => i);
  if (!shuffle) return order;
  return new SeededRandom(seed, `epoch ${epoch}`).shuffle(order);
}

/** Greedy packing in the given order: a batch takes sequences while their total stays ≤ budget. */
export function packInOrder(lengths: ArrayLike<number>, order: ArrayLike<number>, budget: number): number[][] {
  const batches: number[][] = [];
  let current: number[] = [];
  let used = 0;
  for (let i = 0; i < order.length; i++) {
    const index = order[i];
    const length = lengths[index];
    if (length > budget) throw new Error(`sequence ${index} has ${length} tokens, more than the batch budget ${budget}`);
    if (used + length > budget && current.length > 0) {
      batches.push(current);
      current = [];
      used = 0;
    }
    current.push(index);
    used += length;
  }
  if (current.length > 0) batches.push(current);
  return batches;
}
