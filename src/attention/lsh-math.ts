// The closed forms of MagicPIG's sampling (PAPERS.md §1): the collision probability of SimHash,
// the probability u that the "≥ 2 of L tables" rule retrieves a key, the log-weight table the decode
// kernel interpolates, and seeded Gaussian hash directions.

import { uniform01 } from '../data/rng.js';

/** p = 1 − acos(cos)/π: the probability that one random hyperplane puts q and k on the same side. */
export function collisionProbability(cos: number): number {
  return 1 - Math.acos(Math.min(1, Math.max(-1, cos))) / Math.PI;
}

/** u = 1 − (1−P)^L − L·P·(1−P)^(L−1), P = p^K: probability that a key shares the query's bucket
 *  in at least 2 of L tables of K bits each (exact for independent tables). */
export function samplingProbability(cos: number, K: number, L: number): number {
  const P = collisionProbability(cos) ** K;
  if (P >= 1) return L >= 2 ? 1 : 0;
  const none = Math.exp(L * Math.log1p(-P));                 // (1−P)^L without cancellation
  const one = L * P * Math.exp((L - 1) * Math.log1p(-P));    // L·P·(1−P)^(L−1)
  return Math.max(0, 1 - none - one);
}

/** Entries of the log-weight table (over cos ∈ [−1, 1]); interpolation error is ~1e-6 in log u. */
export const LOGU_STEPS = 4096;

/** (LOGU_STEPS + 1) f32: entry j = log(u(cos_j) + floor), cos_j = −1 + 2j/LOGU_STEPS. */
export function logUTable(K: number, L: number, floor: number): Float32Array {
  const t = new Float32Array(LOGU_STEPS + 1);
  for (let j = 0; j <= LOGU_STEPS; j++) t[j] = Math.log(samplingProbability(-1 + (2 * j) / LOGU_STEPS, K, L) + floor);
  return t;
}

/** Seeded uniform [0, 1) numbers: the same seed gives the same hash directions everywhere. */
export const rng = uniform01;

/** Standard normal samples (Box–Muller) from a uniform generator. */
export function gaussian(next: () => number): () => number {
  let spare: number | undefined;
  return () => {
    if (spare !== undefined) { const s = spare; spare = undefined; return s; }
    const u = 1 - next(), v = next();
    const r = Math.sqrt(-2 * Math.log(u));
    spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  };
}

/** (KL, D) Gaussian hash directions, one matrix per KV head: seeded by (seed, layer, kvHead). */
export function hashDirections(seed: number, layer: number, kvHead: number, KL: number, D: number): Float32Array {
  const g = gaussian(rng((seed * 1000003 + layer * 7919 + kvHead * 104729) >>> 0));
  const R = new Float32Array(KL * D);
  for (let i = 0; i < R.length; i++) R[i] = g();
  return R;
}
