/**
 * Seeded randomness (data generation, splits, model initialisation): a 32-bit hash (for per-person seeds and splits) and sfc32, a small
 * fast generator that passes PractRand. Each synthetic person gets its own stream seeded from
 * (seed, person index), so a person's career does not depend on how many people are generated or in what
 * order.
 */

/** Murmur3's 32-bit finaliser: a bijective mix with full avalanche. */
export function mix32(value: number): number {
  let h = value >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** 32-bit hash of a string under a seed (FNV-1a over UTF-16 code units, then {@link mix32}). */
export function hashString(text: string, seed: number): number {
  let h = (0x811c9dc5 ^ mix32(seed)) >>> 0;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return mix32(h);
}

/** sfc32 ("small fast chaotic") generator; `next()` is uniform in [0, 1) with 32 random bits. */
export class Sfc32 {
  private a: number;
  private b: number;
  private c: number;
  private d = 1;

  /** Stream number `stream` of generator `seed` (both any 32-bit integers). */
  constructor(seed: number, stream = 0) {
    this.a = mix32(seed ^ 0x9e3779b9);
    this.b = mix32(stream + 0x7f4a7c15);
    this.c = mix32((seed + Math.imul(stream, 0x2545f491)) ^ 0x6a09e667);
    // Discard the first outputs so nearby seeds diverge (standard practice for sfc32).
    for (let i = 0; i < 12; i++) this.nextUint32();
  }

  nextUint32(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }

  /** Uniform in [0, 1). */
  next(): number {
    return this.nextUint32() / 4294967296;
  }

  /** Uniform integer in [low, high] (inclusive). */
  integer(low: number, high: number): number {
    return low + Math.floor(this.next() * (high - low + 1));
  }

  /** Shuffle `items` in place (Fisher–Yates, from the last position down) and return it. */
  shuffle<T extends { [index: number]: unknown; length: number }>(items: T): T {
    for (let i = items.length - 1; i > 0; i--) {
      const j = this.integer(0, i);
      const t = items[i];
      items[i] = items[j];
      items[j] = t;
    }
    return items;
  }

  /** Index drawn from non-negative `weights` (need not sum to 1). */
  pick(weights: readonly number[]): number {
    let total = 0;
    for (const weight of weights) total += weight;
    let u = this.next() * total;
    for (let i = 0; i < weights.length; i++) {
      u -= weights[i];
      if (u < 0) return i;
    }
    return weights.length - 1;
  }
}

/**
 * A generator for a named stream, e.g. one per tensor when initialising a model: the values of each stream
 * depend only on (seed, name), not on the order streams are made.
 */
export class SeededRandom extends Sfc32 {
  constructor(seed: number, name = "") {
    super(seed, hashString(name, seed));
  }

  /** Fill with U(−bound, bound). */
  fillUniform(out: Float32Array, bound: number): void {
    for (let i = 0; i < out.length; i++) out[i] = (2 * this.next() - 1) * bound;
  }
}
