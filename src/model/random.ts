/**
 * Deterministic pseudo-random numbers for model initialisation: sfc32 (a small, fast, well-tested 32-bit
 * generator), seeded from (seed, name) so every tensor's values are independent of the order tensors are made.
 */
export class SeededRandom {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  constructor(seed: number, stream = "") {
    // Mix the seed and stream name into 4 words with a string hash (cyrb128).
    let h1 = 1779033703 ^ seed, h2 = 3144134277 ^ (seed * 31), h3 = 1013904242, h4 = 2773480762;
    const key = `${seed}:${stream}`;
    for (let i = 0; i < key.length; i++) {
      const ch = key.charCodeAt(i);
      h1 = h2 ^ Math.imul(h1 ^ ch, 597399067);
      h2 = h3 ^ Math.imul(h2 ^ ch, 2869860233);
      h3 = h4 ^ Math.imul(h3 ^ ch, 951274213);
      h4 = h1 ^ Math.imul(h4 ^ ch, 2716044179);
    }
    this.a = h1 >>> 0;
    this.b = h2 >>> 0;
    this.c = h3 >>> 0;
    this.d = h4 >>> 0;
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

  /** Fill with U(−bound, bound). */
  fillUniform(out: Float32Array, bound: number): void {
    for (let i = 0; i < out.length; i++) out[i] = (2 * this.next() - 1) * bound;
  }
}
