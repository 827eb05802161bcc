/** The benchmark's token sequences: BOS then 511 ids from a fixed LCG (the same for us and for llama.cpp). */
export const SEQUENCE_LENGTH = 512;

export function benchTokens(sequences: number, seed: number): number[][] {
  let state = seed >>> 0;
  const next = () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state;
  };
  return Array.from({ length: sequences }, () => [1, ...Array.from({ length: SEQUENCE_LENGTH - 1 }, () => 3 + (next() % 31997))]);
}
