// Three moons data (PAPERS.md §3, "Toy: three moons"): three points circling at their own periods,
// observed as (sin, cos)(2πt/p + 0.3) each → a 6-D sequence. The next-step prediction task is
// target_t = x_{t+1}. A window of T = 800 steps is cut at a random start from t = arange(1e4)/44.44,
// where 44.44 = T / (max common period 6) / 3 puts three full common periods in a window.
// Period triples come from {0.5, 1, …, 3.5}; the 9 with the smallest common period are kept, [1, 2, 3]
// is held out and the other 8 train.

import { Rng } from '../training/rng.js';

export const PERIOD_VALUES = [0.5, 1, 1.5, 2, 2.5, 3, 3.5] as const;
export const HELD_OUT: readonly number[] = [1, 2, 3];
/** Points per unit of time: T / max common period / 3 = 800 / 6 / 3. */
export const STEPS_PER_UNIT = 800 / 6 / 3;
export const TOTAL_POINTS = 10_000;
export const PHASE = 0.3;
export const DIM = 6;

function gcd(a: number, b: number): number { return b === 0 ? a : gcd(b, a % b); }

/** Least common multiple of periods given to one decimal (in time units). */
export function commonPeriod(periods: readonly number[]): number {
  const tenths = periods.map((p) => Math.round(p * 10));
  return tenths.reduce((a, b) => (a / gcd(a, b)) * b) / 10;
}

/** The 9 triples with the smallest common period, in ascending order of it. Five triples share the
 *  cut-off period 6; the reference code (numpy argsort) keeps [1, 1.5, 2], [0.5, 1.5, 2] and [1, 2, 3]
 *  of them, and so do we, so that the held-out triple is [1, 2, 3]. */
export function selectedTriples(): number[][] {
  const all: number[][] = [];
  const v = PERIOD_VALUES;
  for (let i = 0; i < v.length; i++) for (let j = i + 1; j < v.length; j++) for (let k = j + 1; k < v.length; k++) all.push([v[i], v[j], v[k]]);
  const below = all.filter((p) => commonPeriod(p) < 6).sort((a, b) => commonPeriod(a) - commonPeriod(b));
  const ties = [[1, 1.5, 2], [0.5, 1.5, 2], [1, 2, 3]];
  return [...below, ...ties];
}

export function trainTriples(): number[][] {
  return selectedTriples().filter((p) => p.join() !== HELD_OUT.join());
}

/** The full 6-D trajectory of a triple: (TOTAL_POINTS, 6) row-major, columns (sin, cos) per moon. */
export function trajectory(periods: readonly number[], points = TOTAL_POINTS): Float64Array {
  if (periods.length !== 3) throw new Error(`trajectory: need 3 periods, got ${periods.length}`);
  const out = new Float64Array(points * DIM);
  for (let i = 0; i < points; i++) {
    const t = i / STEPS_PER_UNIT;
    for (let m = 0; m < 3; m++) {
      const a = (2 * Math.PI * t) / periods[m] + PHASE;
      out[i * DIM + 2 * m] = Math.sin(a);
      out[i * DIM + 2 * m + 1] = Math.cos(a);
    }
  }
  return out;
}

/** Period of one moon and of the triple, in steps (e.g. [1, 2, 3] → 44.4, 88.9, 133.3; 266.7). */
export function periodsInSteps(periods: readonly number[]): { moons: number[]; common: number } {
  return { moons: periods.map((p) => p * STEPS_PER_UNIT), common: commonPeriod(periods) * STEPS_PER_UNIT };
}

/** A random window start as in the reference: [0, TOTAL_POINTS − 2T − 1). */
export function randomStart(rng: Rng, T: number): number {
  return rng.int(TOTAL_POINTS - 2 * T - 1);
}

/** A training batch: B windows, each of a random train triple at a random start.
 *  x (B, T, 6) inputs, y (B, T, 6) = x shifted by one (y_t = x_{t+1}). Float32 for the tape. */
export function moonBatch(rng: Rng, B: number, T: number, trajectories: readonly Float64Array[]): { x: Float32Array; y: Float32Array } {
  const x = new Float32Array(B * T * DIM), y = new Float32Array(B * T * DIM);
  for (let b = 0; b < B; b++) {
    const traj = trajectories[rng.int(trajectories.length)];
    if (traj.length < TOTAL_POINTS * DIM) throw new Error(`moonBatch: trajectories must have ${TOTAL_POINTS} points (random starts reach ${TOTAL_POINTS - 2 * T - 2})`);
    const s = randomStart(rng, T);
    x.set(traj.subarray(s * DIM, (s + T) * DIM), b * T * DIM);
    y.set(traj.subarray((s + 1) * DIM, (s + 1 + T) * DIM), b * T * DIM);
  }
  return { x, y };
}
