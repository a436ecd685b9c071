// Seeded random numbers for data generation and shuffling: sfc32 (Chris Doty-Humphrey's Small Fast
// Chaotic generator, 128-bit state, passes PractRand) seeded through splitmix32, so nearby seeds
// give unrelated streams. The same seed gives the same numbers on every platform (32-bit integer
// arithmetic only). Its state is four numbers, so a generator can be saved and restored.

/** mulberry32: a tiny generator with 32 bits of state, returning u32 values. Integer arithmetic
 *  only, so a seed gives the same stream everywhere (test checkpoints pin their bytes on it). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
}

/** Uniform floats in [0, 1) from mulberry32(seed). */
export function uniform01(seed: number): () => number {
  const next = mulberry32(seed);
  return () => next() / 4294967296;
}

/** splitmix32 finaliser: a 32-bit integer hash. */
export function mix32(x: number): number {
  x = (x + 0x9e3779b9) | 0;
  x = Math.imul(x ^ (x >>> 16), 0x85ebca6b);
  x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35);
  return (x ^ (x >>> 16)) >>> 0;
}

/** A seed derived from a seed and a path of integers (e.g. (seed, epoch), (seed, exampleIndex)). */
export function deriveSeed(seed: number, ...path: number[]): number {
  let h = mix32(seed >>> 0);
  for (const p of path) h = mix32((h ^ mix32(p >>> 0)) >>> 0);
  return h;
}

export class Rng {
  private a: number; private b: number; private c: number; private d: number;

  constructor(seed: number) {
    if (!Number.isFinite(seed)) throw new RangeError(`Rng: seed must be a finite number, got ${seed}`);
    const s = Math.floor(seed) >>> 0;
    this.a = mix32(s); this.b = mix32(s ^ 0x1b873593); this.c = mix32(s ^ 0x5bd1e995); this.d = 1;
    for (let i = 0; i < 12; i++) this.uint32(); // warm-up, as sfc32's author recommends
  }

  /** Uniform integer in [0, 2^32). */
  uint32(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }

  /** Uniform float in [0, 1). */
  float(): number {
    return this.uint32() / 4294967296;
  }

  /** Uniform integer in [0, n), unbiased (rejection sampling); n ≤ 2^32. */
  int(n: number): number {
    if (!Number.isInteger(n) || n <= 0 || n > 4294967296) throw new RangeError(`Rng.int: n = ${n} must be an integer in [1, 2^32]`);
    const limit = 4294967296 - (4294967296 % n);
    for (;;) {
      const x = this.uint32();
      if (x < limit) return x % n;
    }
  }

  /** Uniform integer in [lo, hi] (both inclusive). */
  range(lo: number, hi: number): number {
    return lo + this.int(hi - lo + 1);
  }

  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new RangeError('Rng.pick: empty list');
    return items[this.int(items.length)];
  }

  /** Fisher–Yates shuffle in place; returns the array. */
  shuffle<T, A extends { length: number; [i: number]: T }>(items: A): A {
    for (let i = items.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const t = items[i]; items[i] = items[j]; items[j] = t;
    }
    return items;
  }

  /** k distinct integers from [0, n), in random order (partial Fisher–Yates over a lazy map). */
  distinct(k: number, n: number): number[] {
    if (k > n) throw new RangeError(`Rng.distinct: cannot draw ${k} distinct values from ${n}`);
    const swapped = new Map<number, number>();
    const out: number[] = [];
    for (let i = 0; i < k; i++) {
      const j = i + this.int(n - i);
      const vj = swapped.get(j) ?? j;
      swapped.set(j, swapped.get(i) ?? i);
      out.push(vj);
    }
    return out;
  }

  /** The generator's state, to save and restore. */
  get state(): [number, number, number, number] {
    return [this.a, this.b, this.c, this.d];
  }
  set state(s: [number, number, number, number]) {
    [this.a, this.b, this.c, this.d] = s.map((x) => x | 0) as [number, number, number, number];
  }
}
