// Held-out evaluation with the training graph (no gradient, eval mode): the mean loss over every
// scored target, the loss per position in the window (does a model use more of its context?), and
// the argmax accuracy on scored targets (the synthetic tasks' metric).

import type { Tape } from './autograd/tape.js';
import type { Batch } from './batches.js';
import type { TrainableModel } from './train-model.js';

export interface EvalResult {
  /** Mean cross-entropy over scored targets (nats). */
  loss: number;
  /** Mean loss at each position t of the window (NaN where nothing was scored).  (T) */
  perPosition: number[];
  /** Fraction of scored targets whose argmax prediction is right. */
  accuracy: number;
  /** Scored targets. */
  count: number;
}

/** Evaluates `model` on the batches (all of one T). The tape is reset before and after each batch. */
export function evaluateBatches(tape: Tape, model: TrainableModel, batches: readonly Batch[]): EvalResult {
  if (batches.length === 0) throw new Error('evaluateBatches: no batches');
  const T = batches[0].T;
  const sum = new Float64Array(T), cnt = new Float64Array(T);
  let right = 0, total = 0, lossSum = 0;
  const prevTraining = tape.training;
  tape.training = false;
  try {
    for (const b of batches) {
      if (b.T !== T) throw new Error(`evaluateBatches: batches of T = ${b.T} and ${T} mixed`);
      tape.reset();
      tape.noGrad(() => {
        const logits = model.logits(tape, b.ids, b.B, b.T);                  // (B·T, V)
        const V = logits.shape[1], X = logits.data;
        for (let r = 0; r < b.B * b.T; r++) {
          const t = b.targets[r];
          if (t < 0) continue;
          const o = r * V;
          let max = -Infinity, arg = 0;
          for (let j = 0; j < V; j++) if (X[o + j] > max) { max = X[o + j]; arg = j; }
          let s = 0;
          for (let j = 0; j < V; j++) s += Math.exp(X[o + j] - max);
          const l = Math.log(s) + max - X[o + t];
          sum[r % T] += l; cnt[r % T]++;
          lossSum += l; total++;
          if (arg === t) right++;
        }
      });
    }
  } finally {
    tape.reset();
    tape.training = prevTraining;
  }
  return {
    loss: total > 0 ? lossSum / total : NaN,
    perPosition: Array.from(sum, (s, i) => (cnt[i] > 0 ? s / cnt[i] : NaN)),
    accuracy: total > 0 ? right / total : NaN,
    count: total,
  };
}

/** Consecutive non-overlapping windows of T tokens from a stream, grouped B at a time (at most maxWindows). */
export function windowBatches(tokens: Int32Array, B: number, T: number, maxWindows = Infinity): Batch[] {
  const windows = Math.min(maxWindows, Math.floor((tokens.length - 1) / T));
  const out: Batch[] = [];
  for (let w = 0; w < windows; w += B) {
    const n = Math.min(B, windows - w);
    const ids = new Int32Array(n * T), targets = new Int32Array(n * T);
    for (let b = 0; b < n; b++) {
      const s = (w + b) * T;
      ids.set(tokens.subarray(s, s + T), b * T);
      targets.set(tokens.subarray(s + 1, s + T + 1), b * T);
    }
    out.push({ ids, targets, B: n, T });
  }
  return out;
}

/** Averages per-position losses into `buckets` equal spans (a readable curve for long windows). */
export function bucketed(perPosition: readonly number[], buckets: number): [number, number][] {
  const T = perPosition.length, n = Math.min(buckets, T), out: [number, number][] = [];
  for (let i = 0; i < n; i++) {
    const lo = Math.floor((i * T) / n), hi = Math.floor(((i + 1) * T) / n);
    let s = 0, c = 0;
    for (let t = lo; t < hi; t++) if (!Number.isNaN(perPosition[t])) { s += perPosition[t]; c++; }
    if (c > 0) out.push([(lo + hi - 1) / 2, s / c]);
  }
  return out;
}
