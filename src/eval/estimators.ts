// Plain-TypeScript attention estimators over captured Q/K/V, in float64: the reference for the
// operator-level measurement (and a second opinion next to the engine's backends).
// For one query head and one query position p (context n = p + 1 keys):
//   dense            softmax(q·k/√D) · V over every key
//   topk             exact softmax over the k highest-scoring keys (no sinks/window: the pure rule)
//   oracle-sampling  B keys drawn i.i.d. from the exact softmax; the mean of their values
//   quest            pages of 16 keys, page score Σ_d max(q_d·min_d, q_d·max_d); exact softmax over the top
//                    pages before `tail` and every key from `tail` on (the last ≥ 64 prompt tokens and the
//                    decode tokens); its keys include 2 per scored page (the min and max rows it reads)
//   streaming        exact softmax over the first 4 keys and the most recent ones
//   magicpig         PAPERS.md §1: SimHash (K bits × L tables) of the centered "middle" keys, keys
//                    sharing the query's bucket in ≥ 2 tables sampled, weights 1/u_i, merged with the
//                    dense part (sinks, window, decode tokens) in one softmax
// Each returns the output (D) and the number of keys it read.

import { Rng } from '../data/rng.js';

export interface HeadView {
  D: number;
  q: Float64Array;                              // (D)
  /** Key/value row i of this head's KV head (views into the captured arrays). */
  key(i: number): Float32Array;
  value(i: number): Float32Array;
}

export interface Estimate { out: Float64Array; keys: number }

/** Logits s_i = q·k_i/√D for i < n. */
export function scores(h: HeadView, n: number): Float64Array {
  const s = new Float64Array(n), sc = 1 / Math.sqrt(h.D);
  for (let i = 0; i < n; i++) {
    const k = h.key(i);
    let dot = 0;
    for (let d = 0; d < h.D; d++) dot += h.q[d] * k[d];
    s[i] = dot * sc;
  }
  return s;
}

/** Softmax-weighted sum of values over `ids` with logits s[i] + (bias?.[j] ?? 0). */
export function attendSubset(h: HeadView, s: Float64Array, ids: ArrayLike<number>, bias?: ArrayLike<number>): Float64Array {
  let max = -Infinity;
  for (let j = 0; j < ids.length; j++) max = Math.max(max, s[ids[j]] + (bias ? bias[j] : 0));
  const out = new Float64Array(h.D);
  let sum = 0;
  for (let j = 0; j < ids.length; j++) {
    const w = Math.exp(s[ids[j]] + (bias ? bias[j] : 0) - max), v = h.value(ids[j]);
    sum += w;
    for (let d = 0; d < h.D; d++) out[d] += w * v[d];
  }
  for (let d = 0; d < h.D; d++) out[d] /= sum;
  return out;
}

const range = (lo: number, hi: number) => Array.from({ length: Math.max(0, hi - lo) }, (_, i) => lo + i);

export function denseEstimate(h: HeadView, s: Float64Array): Estimate {
  return { out: attendSubset(h, s, range(0, s.length)), keys: s.length };
}

export function topkEstimate(h: HeadView, s: Float64Array, k: number): Estimate {
  const n = s.length, kk = Math.max(1, Math.min(n, Math.round(k)));
  const ids = range(0, n).sort((a, b) => s[b] - s[a] || a - b).slice(0, kk);
  return { out: attendSubset(h, s, ids), keys: kk };
}

export function oracleSamplingEstimate(h: HeadView, s: Float64Array, samples: number, rng: Rng): Estimate {
  const n = s.length;
  let max = -Infinity;
  for (let i = 0; i < n; i++) max = Math.max(max, s[i]);
  const cdf = new Float64Array(n);
  let acc = 0;
  for (let i = 0; i < n; i++) { acc += Math.exp(s[i] - max); cdf[i] = acc; }
  const out = new Float64Array(h.D), seen = new Set<number>(), B = Math.max(1, Math.round(samples));
  for (let b = 0; b < B; b++) {
    const u = rng.float() * acc;
    let lo = 0, hi = n - 1;
    while (lo < hi) { const mid = (lo + hi) >> 1; if (cdf[mid] > u) hi = mid; else lo = mid + 1; }
    seen.add(lo);
    const v = h.value(lo);
    for (let d = 0; d < h.D; d++) out[d] += v[d] / B;
  }
  return { out, keys: seen.size };
}

export function streamingEstimate(h: HeadView, s: Float64Array, sinks: number, window: number): Estimate {
  const n = s.length, a = Math.min(sinks, n), ids = [...range(0, a), ...range(Math.max(a, n - window), n)];
  return { out: attendSubset(h, s, ids), keys: ids.length };
}

export function questEstimate(h: HeadView, s: Float64Array, budgetKeys: number, tail: number, page = 16): Estimate {
  const n = s.length, D = h.D, pages = Math.floor(Math.min(tail, n) / page);
  const keep = Math.min(pages, Math.max(1, Math.ceil(budgetKeys / page)));
  const score = new Float64Array(pages);
  for (let pg = 0; pg < pages; pg++) {
    const mn = new Float64Array(D).fill(Infinity), mx = new Float64Array(D).fill(-Infinity);
    for (let i = pg * page; i < (pg + 1) * page; i++) {
      const k = h.key(i);
      for (let d = 0; d < D; d++) { if (k[d] < mn[d]) mn[d] = k[d]; if (k[d] > mx[d]) mx[d] = k[d]; }
    }
    let t = 0;
    for (let d = 0; d < D; d++) t += Math.max(h.q[d] * mn[d], h.q[d] * mx[d]);
    score[pg] = t;
  }
  const top = range(0, pages).sort((a, b) => score[b] - score[a] || a - b).slice(0, keep);
  const ids = [...top.flatMap((pg) => range(pg * page, (pg + 1) * page)), ...range(pages * page, n)];
  return { out: attendSubset(h, s, ids), keys: ids.length + 2 * pages };
}

/** SimHash tables of one KV head: the middle keys [start, end) centered by their mean, K·L bits each. */
export interface SimHashTables {
  K: number; L: number; D: number;
  start: number; end: number;
  R: Float64Array;            // (D, K·L) Gaussian directions
  mu: Float64Array;           // (D) mean of the middle keys
  buckets: Int32Array;        // (end − start, L) bucket id of each middle key in each table
  centered: Float64Array;     // (end − start, D) centered keys
}

function bucketsOf(x: ArrayLike<number>, R: Float64Array, D: number, K: number, L: number, out: Int32Array, at: number): void {
  const KL = K * L;
  for (let l = 0; l < L; l++) {
    let b = 0;
    for (let j = 0; j < K; j++) {
      const col = l * K + j;
      let dot = 0;
      for (let d = 0; d < D; d++) dot += x[d] * R[d * KL + col];
      b = (b << 1) | (dot > 0 ? 1 : 0);
    }
    out[at + l] = b;
  }
}

function gaussian(rng: Rng): number {
  const u = Math.max(rng.float(), 1e-300), v = rng.float();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
}

export function buildSimHash(key: (i: number) => Float32Array, D: number, start: number, end: number, K: number, L: number, seed: number): SimHashTables {
  const rng = new Rng(seed), KL = K * L, N = Math.max(0, end - start);
  const R = Float64Array.from({ length: D * KL }, () => gaussian(rng));
  const mu = new Float64Array(D);
  for (let i = start; i < end; i++) { const k = key(i); for (let d = 0; d < D; d++) mu[d] += k[d] / N; }
  const centered = new Float64Array(N * D), buckets = new Int32Array(N * L);
  for (let i = 0; i < N; i++) {
    const k = key(start + i);
    for (let d = 0; d < D; d++) centered[i * D + d] = k[d] - mu[d];
    bucketsOf(centered.subarray(i * D, (i + 1) * D), R, D, K, L, buckets, i * L);
  }
  return { K, L, D, start, end, R, mu, buckets, centered };
}

/** u_i = 1 − (1 − P)^L − L·P·(1 − P)^(L−1), P = (1 − θ/π)^K: the chance of ≥ 2 collisions. */
export function retrievalProbability(cos: number, K: number, L: number): number {
  const p = 1 - Math.acos(Math.max(-1, Math.min(1, cos))) / Math.PI, P = p ** K;
  return 1 - (1 - P) ** L - L * P * (1 - P) ** (L - 1);
}

/** MagicPIG for one query: tables `t` hold [t.start, t.end); every other key < n is dense. */
export function magicpigEstimate(h: HeadView, s: Float64Array, t: SimHashTables, floor = 1e-4): Estimate & { sampled: number; sampledIds: Int32Array; u: Float64Array } {
  const n = s.length, D = h.D, L = t.L;
  const qb = new Int32Array(L);
  bucketsOf(h.q, t.R, D, t.K, L, qb, 0);
  let qn = 0;
  for (let d = 0; d < D; d++) qn += h.q[d] * h.q[d];
  qn = Math.sqrt(qn);
  const ids: number[] = [], bias: number[] = [];
  for (let i = 0; i < Math.min(t.start, n); i++) { ids.push(i); bias.push(0); }
  let sampled = 0;
  const us: number[] = [];
  const end = Math.min(t.end, n);
  for (let i = t.start; i < end; i++) {
    const r = i - t.start;
    let hits = 0;
    for (let l = 0; l < L && hits < 2; l++) if (t.buckets[r * L + l] === qb[l]) hits++;
    if (hits < 2) continue;
    let dot = 0, kn = 0;
    for (let d = 0; d < D; d++) { const c = t.centered[r * D + d]; dot += h.q[d] * c; kn += c * c; }
    const u = retrievalProbability(qn > 0 && kn > 0 ? dot / (qn * Math.sqrt(kn)) : 0, t.K, L);
    ids.push(i); bias.push(-Math.log(u + floor)); us.push(u); sampled++;
  }
  for (let i = Math.max(end, Math.min(t.start, n)); i < n; i++) { ids.push(i); bias.push(0); }
  const first = Math.min(t.start, n);
  return {
    out: attendSubset(h, s, ids, bias), keys: ids.length, sampled,
    sampledIds: Int32Array.from(ids.slice(first, first + sampled)), u: Float64Array.from(us),
  };
}

/** ‖a − b‖ / ‖b‖ (0 when both are zero). */
export function relativeError(est: ArrayLike<number>, ref: ArrayLike<number>): number {
  let num = 0, den = 0;
  for (let d = 0; d < ref.length; d++) { num += (est[d] - ref[d]) ** 2; den += ref[d] ** 2; }
  return den > 0 ? Math.sqrt(num / den) : Math.sqrt(num);
}
