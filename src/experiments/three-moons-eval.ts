// Float64 twin of the three-moons model (three-moons-model.ts) and its evaluation: teacher-forced
// forward and loss (the oracle for the tape's gradients), free-running prediction (the model's own
// predictions fed back: a prediction of x_{t+1} becomes the input at t+1 AND completes the value
// v_t = W_v x_{t+1}, the pending slot), the error of 25 free-running steps as a function of how many
// true steps the model saw first, and the per-block norms of the learned maps.
// Shape legend: T steps, d = 6; sequences are (T, 6) row-major float64.

import { DIM } from './three-moons-data.js';
import { BLOCKS, ERROR_CLIP, SOFTMAX_SCALE, type MoonWeights } from './three-moons-model.js';

/** out (n, 6) = rows of x (n, 6) · Wᵀ. */
function apply(w: Float64Array, x: Float64Array, n: number, out = new Float64Array(n * DIM)): Float64Array {
  for (let r = 0; r < n; r++) {
    for (let i = 0; i < DIM; i++) {
      let s = 0;
      for (let j = 0; j < DIM; j++) s += w[i * DIM + j] * x[r * DIM + j];
      out[r * DIM + i] = s;
    }
  }
  return out;
}

/** Read-out at position t over memory rows s < t (K, V (≥ t, 6)), W_o applied, into out[0..6). */
function readAt(W: MoonWeights, K: Float64Array, V: Float64Array, t: number, out: Float64Array, row: Float64Array): void {
  const H = W.heads, hs = DIM / H;
  const r = new Float64Array(DIM);
  for (let h = 0; h < H; h++) {
    if (t === 0) break;
    let m = -Infinity;
    for (let s = 0; s < t; s++) {
      let x = 0;
      for (let j = h * hs; j < (h + 1) * hs; j++) x += K[t * DIM + j] * K[s * DIM + j];
      row[s] = x * SOFTMAX_SCALE;
      if (row[s] > m) m = row[s];
    }
    let z = 0;
    for (let s = 0; s < t; s++) { row[s] = Math.exp(row[s] - m); z += row[s]; }
    for (let s = 0; s < t; s++) {
      const p = row[s] / z;
      for (let j = h * hs; j < (h + 1) * hs; j++) r[j] += p * V[s * DIM + j];
    }
  }
  for (let i = 0; i < DIM; i++) {
    let s = 0;
    for (let j = 0; j < DIM; j++) s += W.o[i * DIM + j] * r[j];
    out[i] = s;
  }
}

/** Teacher-forced predictions ŷ (T, 6) of y = x shifted by one; x, y (T, 6). */
export function referenceForward(W: MoonWeights, x: Float64Array, y: Float64Array, T: number): Float64Array {
  const K = apply(W.k, x, T), V = apply(W.v, y, T);
  const out = new Float64Array(T * DIM), row = new Float64Array(T), o = new Float64Array(DIM);
  for (let t = 0; t < T; t++) { readAt(W, K, V, t, o, row); out.set(o, t * DIM); }
  return out;
}

/** The training loss mean(clip(ŷ − y, ±0.5)²) over B sequences (B, T, 6). */
export function referenceLoss(W: MoonWeights, x: ArrayLike<number>, y: ArrayLike<number>, B: number, T: number): number {
  let total = 0;
  for (let b = 0; b < B; b++) {
    const xs = Float64Array.from({ length: T * DIM }, (_, i) => x[b * T * DIM + i]);
    const ys = Float64Array.from({ length: T * DIM }, (_, i) => y[b * T * DIM + i]);
    const out = referenceForward(W, xs, ys, T);
    for (let i = 0; i < T * DIM; i++) {
      const e = Math.min(Math.max(out[i] - ys[i], -ERROR_CLIP), ERROR_CLIP);
      total += e * e;
    }
  }
  return total / (B * T * DIM);
}

/** Mean |prediction − truth| over `steps` free-running steps and 6 dims, for each context length c in
 *  `contexts`: the model sees true x_0 … x_{c−1}, predicts x_c, feeds it back, … up to x_{c+steps−1}.
 *  seq (≥ max(c) + steps, 6) is the true sequence. */
export function freeRunErrors(W: MoonWeights, seq: Float64Array, contexts: readonly number[], steps: number): Float64Array {
  const L = Math.max(...contexts) + steps;
  if (seq.length < L * DIM) throw new Error(`freeRunErrors: sequence of ${seq.length / DIM} steps, need ${L}`);
  if (contexts.some((c) => !(Number.isInteger(c) && c >= 1))) throw new Error('freeRunErrors: context lengths must be integers ≥ 1');
  const trueK = apply(W.k, seq, L);                                        // (L, 6) keys of true inputs
  const trueV = apply(W.v, seq.subarray(DIM), L - 1);                      // (L−1, 6) v_s = W_v x_{s+1}
  const K = new Float64Array(L * DIM), V = new Float64Array(L * DIM), row = new Float64Array(L);
  const pred = new Float64Array(DIM), one = new Float64Array(DIM);
  const errors = new Float64Array(contexts.length);
  contexts.forEach((c, ci) => {
    K.set(trueK.subarray(0, c * DIM));
    V.set(trueV.subarray(0, (c - 1) * DIM));
    let err = 0;
    for (let j = 0; j < steps; j++) {
      const t = c - 1 + j;                                                  // output at t predicts x_{t+1}
      readAt(W, K, V, t, pred, row);
      for (let i = 0; i < DIM; i++) err += Math.abs(pred[i] - seq[(t + 1) * DIM + i]);
      V.set(apply(W.v, pred, 1, one), t * DIM);                             // the pending slot v_t
      K.set(apply(W.k, pred, 1, one), (t + 1) * DIM);                       // key of the fed-back input
    }
    errors[ci] = err / (steps * DIM);
  });
  return errors;
}

/** |z| = √(a² + b²) of each 2×2 block (i, j) of a 6×6 complex map → 3×3 (rows: output planes). */
export function blockNorms(w: Float64Array): number[][] {
  const out: number[][] = [];
  for (let i = 0; i < BLOCKS; i++) {
    out.push([]);
    for (let j = 0; j < BLOCKS; j++) out[i].push(Math.hypot(w[2 * i * DIM + 2 * j], w[(2 * i + 1) * DIM + 2 * j]));
  }
  return out;
}

export interface HeadSpecialisation {
  /** Per head: the moon its key reads most, and the share of the key's squared block norms on it. */
  keyMoon: number[]; keyShare: number[];
  valueMoon: number[]; valueShare: number[];
  /** Per head: the output moon the head writes most (column h of W_o for 3 heads of size 2). */
  outMoon: number[]; outShare: number[];
  /** Every head's key, value and output pick the same moon and the heads pick different moons. */
  disentangled: boolean;
}

function topShare(xs: number[]): [number, number] {
  const sq = xs.map((x) => x * x), total = sq.reduce((a, b) => a + b, 0);
  const best = sq.indexOf(Math.max(...sq));
  return [best, total > 0 ? sq[best] / total : 0];
}

/** Which moon each of 3 size-2 heads locks onto (rows of W_k, W_v = heads; columns of W_o = heads). */
export function headSpecialisation(W: MoonWeights): HeadSpecialisation | null {
  if (W.heads !== BLOCKS) return null;
  const k = blockNorms(W.k), v = blockNorms(W.v), o = blockNorms(W.o);
  const r: HeadSpecialisation = { keyMoon: [], keyShare: [], valueMoon: [], valueShare: [], outMoon: [], outShare: [], disentangled: true };
  for (let h = 0; h < BLOCKS; h++) {
    const [km, ks] = topShare(k[h]), [vm, vs] = topShare(v[h]), [om, os] = topShare(o.map((rw) => rw[h]));
    r.keyMoon.push(km); r.keyShare.push(ks); r.valueMoon.push(vm); r.valueShare.push(vs); r.outMoon.push(om); r.outShare.push(os);
    if (km !== vm || km !== om) r.disentangled = false;
  }
  if (new Set(r.keyMoon).size !== BLOCKS) r.disentangled = false;
  return r;
}
