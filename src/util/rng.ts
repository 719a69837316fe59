/**
 * Deterministic random numbers for everything the project seeds in JavaScript (weight init,
 * synthetic data, latents, shuffles). xoshiro128** seeded through splitmix32; state is four
 * uint32s, so it can be saved and restored exactly.
 */

function splitmix32(state: { s: number }): number {
  state.s = (state.s + 0x9e3779b9) | 0;
  let z = state.s;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
}

/** Mix a seed with any number of keys (numbers or strings) into a new 32-bit seed. */
export function deriveSeed(seed: number, ...keys: (number | string)[]): number {
  const st = { s: seed | 0 };
  let h = splitmix32(st);
  for (const key of keys) {
    if (typeof key === 'number') {
      // Fold in both 32-bit halves so step counters past 2^32 still differ.
      st.s = (h ^ (key >>> 0)) | 0;
      h = splitmix32(st);
      st.s = (h ^ Math.floor(key / 4294967296)) | 0;
      h = splitmix32(st);
    } else {
      for (let i = 0; i < key.length; i++) {
        st.s = (h ^ key.charCodeAt(i)) | 0;
        h = splitmix32(st);
      }
    }
  }
  return h >>> 0;
}

/** A fresh random seed for runs where the user gave none (always printed and saved). */
export function randomSeed(): number {
  return (Math.random() * 2 ** 31) >>> 0;
}

export class Rng {
  // The state as four uint32 fields (kept unsigned with >>> 0) rather than an array: nextU32 is
  // hot, and fields need neither bounds nor assertions.
  private s0 = 0;
  private s1 = 0;
  private s2 = 0;
  private s3 = 0;
  private spareNormal: number | null = null;

  constructor(seed: number, ...keys: (number | string)[]) {
    const st = { s: deriveSeed(seed, ...keys) | 0 };
    this.setWords(splitmix32(st), splitmix32(st), splitmix32(st), splitmix32(st));
    if ((this.s0 | this.s1 | this.s2 | this.s3) === 0) this.s0 = 1;
  }

  private setWords(s0: number, s1: number, s2: number, s3: number): void {
    this.s0 = s0 >>> 0;
    this.s1 = s1 >>> 0;
    this.s2 = s2 >>> 0;
    this.s3 = s3 >>> 0;
  }

  /** Uniform uint32. */
  nextU32(): number {
    const result = Math.imul(rotl(Math.imul(this.s1, 5), 7), 9) >>> 0;
    const t = this.s1 << 9;
    const s2 = this.s2 ^ this.s0;
    const s3 = this.s3 ^ this.s1;
    this.s1 = (this.s1 ^ s2) >>> 0;
    this.s0 = (this.s0 ^ s3) >>> 0;
    this.s2 = (s2 ^ t) >>> 0;
    this.s3 = rotl(s3, 11);
    return result;
  }

  /** Uniform in [0, 1) with 24 bits (exactly representable as float32). */
  uniform(): number {
    return (this.nextU32() >>> 8) / 16777216;
  }

  /** Uniform in [lo, hi). */
  range(lo: number, hi: number): number {
    return lo + (hi - lo) * this.uniform();
  }

  /** Uniform integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.uniform() * n);
  }

  /** Standard normal (Box-Muller). */
  normal(): number {
    if (this.spareNormal !== null) {
      const v = this.spareNormal;
      this.spareNormal = null;
      return v;
    }
    let u = 0;
    while (u === 0) u = this.uniform();
    const v = this.uniform();
    const r = Math.sqrt(-2 * Math.log(u));
    this.spareNormal = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  }

  fillUniform(out: Float32Array, lo: number, hi: number): Float32Array {
    for (let i = 0; i < out.length; i++) out[i] = this.range(lo, hi);
    return out;
  }

  fillNormal(out: Float32Array, mean = 0, std = 1): Float32Array {
    for (let i = 0; i < out.length; i++) out[i] = mean + std * this.normal();
    return out;
  }

  /** Fisher-Yates permutation of 0..n-1. */
  permutation(n: number): Uint32Array {
    const p = new Uint32Array(n);
    // `]!`: j <= i < n = p.length.
    for (let i = 0; i < n; i++) p[i] = i;
    for (let i = n - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const t = p[i]!;
      p[i] = p[j]!;
      p[j] = t;
    }
    return p;
  }

  /** Exact state, for checkpoints. */
  getState(): number[] {
    return [this.s0, this.s1, this.s2, this.s3];
  }

  setState(state: readonly number[]): void {
    const [s0, s1, s2, s3] = state;
    if (state.length !== 4 || s0 === undefined || s1 === undefined || s2 === undefined || s3 === undefined)
      throw new Error(`Rng state must have 4 words, got ${state.length}`);
    this.setWords(s0, s1, s2, s3);
    this.spareNormal = null;
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}
