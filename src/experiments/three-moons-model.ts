// The three-moons model (PAPERS.md §3, "Toy: three moons"): ONE contextual-memory layer on the raw
// 6-D input — no embedding, no LayerNorm, no leaky average, no key/value normalisation:
//   k_t = W_k x_t,  v_t = W_v x_{t+1},  r_t = Σ_{s≤t−1} softmax_s(50 · k_t·k_s) v_s  (per head, r_0 = 0),
//   ŷ_t = W_o r_t  predicts x_{t+1};  loss = mean(clip(ŷ − y, ±0.5)²).
// Every 6×6 map is made of 3×3 "complex" 2×2 blocks [[a, −b], [b, a]] (a rotation-scaling from moon
// plane j to plane i), as the reference ComplexLinear does. H = 3 heads of size 2 (head h = rows 2h, 2h+1
// of W_k and W_v) or H = 1 head of size 6.
//
// The read-out is a custom tape op rather than mosaic/readout.ts's causalReadout: with head size 2 the
// SIMD kernels run mostly empty lanes (measured ~4 s per step at B = 64, T = 800), while this op keeps
// the forward's softmax rows (float32, B·H·T(T−1)/2) so the backward needs no exp, and skips the terms
// that the sharp scale-50 softmax leaves below float32 resolution (exp(−30) ≈ 1e-13 of the row max).
// Shape legend: B batch, T steps, d = 6, H heads, hs = d/H.

import type { Tape } from '../training/autograd/tape.js';
import { type Tensor, shapeStr } from '../training/autograd/tensor.js';
import { clamp, mean, mul, sub } from '../training/autograd/ops-basic.js';
import { linear } from '../training/autograd/ops-linear.js';
import { Params } from '../training/params.js';
import { Rng } from '../training/rng.js';
import type { TrainMemory } from '../training/memory.js';
import { DIM } from './three-moons-data.js';

export const SOFTMAX_SCALE = 50;
export const ERROR_CLIP = 0.5;
/** Softmax terms with logit < max − SKIP are set to 0 (weight < 1e-13; float32 cannot hold them next to 1). */
const SKIP = 30;
/** Blocks per side of a 6×6 complex map. */
export const BLOCKS = DIM / 2;

/** (3, 3, 2) block parameters (a, b) → the (6, 6) matrix of blocks [[a, −b], [b, a]]. */
export function complexMatrix(tape: Tape, p: Tensor): Tensor {
  if (p.size !== BLOCKS * BLOCKS * 2) throw new Error(`complexMatrix: expected (3, 3, 2) block parameters, got ${shapeStr(p.shape)}`);
  const w = tape.output([DIM, DIM], tape.needsGrad(p));                   // (6, 6)
  blocksToMatrix(p.data, w.data);
  tape.record(w, () => {
    const g = w.grad!, gp = p.ensureGrad();
    for (let i = 0; i < BLOCKS; i++) {
      for (let j = 0; j < BLOCKS; j++) {
        const r0 = 2 * i * DIM + 2 * j, r1 = r0 + DIM, q = (i * BLOCKS + j) * 2;
        gp[q] += g[r0] + g[r1 + 1];                                         // a at (0,0), (1,1)
        gp[q + 1] += g[r1] - g[r0 + 1];                                     // b at (1,0), −b at (0,1)
      }
    }
  });
  return w;
}

/** Plain expansion of (3, 3, 2) block parameters into a row-major 6×6 matrix. */
export function blocksToMatrix(p: ArrayLike<number>, out: Float32Array | Float64Array): void {
  for (let i = 0; i < BLOCKS; i++) {
    for (let j = 0; j < BLOCKS; j++) {
      const a = p[(i * BLOCKS + j) * 2], b = p[(i * BLOCKS + j) * 2 + 1];
      const r0 = 2 * i * DIM + 2 * j, r1 = r0 + DIM;
      out[r0] = a; out[r0 + 1] = -b; out[r1] = b; out[r1 + 1] = a;
    }
  }
}

/** Holds the forward's softmax rows for the backward; one live forward per scratch. */
export class ReadoutScratch { p = new Float32Array(0); }

/** Strictly causal read-out r_t = Σ_{s<t} softmax_s(scale · k_t·k_s) v_s per head, r_0 = 0; k, v (B, T, d).
 *  Backward: z_s = p_s (g_t·v_s − g_t·r_t); dk_t += scale Σ_s z_s k_s; dk_s += scale z_s k_t; dv_s += p_s g_t. */
export function sharpReadout(tape: Tape, k: Tensor, v: Tensor, H: number, scale: number, scratch: ReadoutScratch): Tensor {
  if (k.ndim !== 3 || v.ndim !== 3 || k.shape.some((n, i) => n !== v.shape[i])) {
    throw new Error(`sharpReadout: keys ${shapeStr(k.shape)} and values ${shapeStr(v.shape)} must both be (B, T, d)`);
  }
  const [B, T, d] = k.shape;
  if (d % H !== 0) throw new Error(`sharpReadout: width ${d} is not divisible by H = ${H}`);
  const hs = d / H, rowPairs = (T * (T - 1)) / 2;
  const y = tape.output(k.shape, tape.needsGrad(k, v), true);             // (B, T, d)
  const keep = y.requiresGrad;
  if (keep && scratch.p.length < B * H * rowPairs) scratch.p = new Float32Array(B * H * rowPairs);
  const P = scratch.p;
  const K = new Float64Array(T * hs), V = new Float64Array(T * hs), row = new Float64Array(T), acc = new Float64Array(hs);
  const Y = y.data;
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      gatherHead(k.data, K, b, h, T, d, hs);
      gatherHead(v.data, V, b, h, T, d, hs);
      const pBase = (b * H + h) * rowPairs;
      if (hs === 2) forwardHead2(K, V, T, scale, keep ? P : null, pBase, row, Y, b * T * d + h * hs, d);
      else forwardHead(K, V, T, hs, scale, keep ? P : null, pBase, row, acc, Y, b * T * d + h * hs, d);
    }
  }
  tape.record(y, () => {
    const G = new Float64Array(T * hs), GK = new Float64Array(T * hs), GV = new Float64Array(T * hs);
    const gk = k.requiresGrad ? k.ensureGrad() : null, gv = v.requiresGrad ? v.ensureGrad() : null;
    const g = y.grad!;
    for (let b = 0; b < B; b++) {
      for (let h = 0; h < H; h++) {
        gatherHead(k.data, K, b, h, T, d, hs);
        gatherHead(v.data, V, b, h, T, d, hs);
        gatherHead(g, G, b, h, T, d, hs);
        GK.fill(0); GV.fill(0);
        const pBase = (b * H + h) * rowPairs, o = b * T * d + h * hs;
        if (hs === 2) backwardHead2(K, V, G, GK, GV, T, scale, P, pBase, Y, o, d);
        else backwardHead(K, V, G, GK, GV, T, hs, scale, P, pBase, acc, Y, o, d);
        if (gk) scatterHeadAdd(GK, gk, b, h, T, d, hs);
        if (gv) scatterHeadAdd(GV, gv, b, h, T, d, hs);
      }
    }
  });
  return y;
}

/** One head's forward (generic head size); Y rows at o + t·d. Softmax rows go to P (when kept). */
function forwardHead(K: Float64Array, V: Float64Array, T: number, hs: number, scale: number, P: Float32Array | null, pBase: number,
  row: Float64Array, acc: Float64Array, Y: Float32Array, o: number, d: number): void {
  for (let t = 1; t < T; t++) {
    let m = -Infinity;
    for (let s = 0; s < t; s++) {
      let x = 0;
      for (let j = 0; j < hs; j++) x += K[t * hs + j] * K[s * hs + j];
      x *= scale;
      row[s] = x;
      if (x > m) m = x;
    }
    const lim = m - SKIP;
    let z = 0;
    acc.fill(0);
    for (let s = 0; s < t; s++) {
      const x = row[s];
      if (x <= lim) { row[s] = 0; continue; }
      const e = Math.exp(x - m);
      row[s] = e; z += e;
      for (let j = 0; j < hs; j++) acc[j] += e * V[s * hs + j];
    }
    for (let j = 0; j < hs; j++) Y[o + t * d + j] = acc[j] / z;
    if (P) { const pr = pBase + (t * (t - 1)) / 2, iz = 1 / z; for (let s = 0; s < t; s++) P[pr + s] = row[s] * iz; }
  }
}

/** forwardHead for head size 2 (the 3-head model), unrolled. */
function forwardHead2(K: Float64Array, V: Float64Array, T: number, scale: number, P: Float32Array | null, pBase: number,
  row: Float64Array, Y: Float32Array, o: number, d: number): void {
  for (let t = 1; t < T; t++) {
    const q0 = K[2 * t] * scale, q1 = K[2 * t + 1] * scale;
    let m = -Infinity;
    for (let s = 0; s < t; s++) {
      const x = q0 * K[2 * s] + q1 * K[2 * s + 1];
      row[s] = x;
      if (x > m) m = x;
    }
    const lim = m - SKIP;
    let z = 0, a0 = 0, a1 = 0;
    for (let s = 0; s < t; s++) {
      const x = row[s];
      if (x <= lim) { row[s] = 0; continue; }
      const e = Math.exp(x - m);
      row[s] = e; z += e; a0 += e * V[2 * s]; a1 += e * V[2 * s + 1];
    }
    Y[o + t * d] = a0 / z; Y[o + t * d + 1] = a1 / z;
    if (P) { const pr = pBase + (t * (t - 1)) / 2, iz = 1 / z; for (let s = 0; s < t; s++) P[pr + s] = row[s] * iz; }
  }
}

/** One head's backward from the kept softmax rows; G, GK, GV (T, hs) planar, Y the forward output. */
function backwardHead(K: Float64Array, V: Float64Array, G: Float64Array, GK: Float64Array, GV: Float64Array, T: number, hs: number,
  scale: number, P: Float32Array, pBase: number, acc: Float64Array, Y: Float32Array, o: number, d: number): void {
  for (let t = 1; t < T; t++) {
    let D = 0;
    for (let j = 0; j < hs; j++) D += G[t * hs + j] * Y[o + t * d + j];
    acc.fill(0);
    const pr = pBase + (t * (t - 1)) / 2;
    for (let s = 0; s < t; s++) {
      const p = P[pr + s];
      if (p === 0) continue;
      let dp = 0;
      for (let j = 0; j < hs; j++) { dp += G[t * hs + j] * V[s * hs + j]; GV[s * hs + j] += p * G[t * hs + j]; }
      const zs = p * (dp - D) * scale;
      for (let j = 0; j < hs; j++) { acc[j] += zs * K[s * hs + j]; GK[s * hs + j] += zs * K[t * hs + j]; }
    }
    for (let j = 0; j < hs; j++) GK[t * hs + j] += acc[j];
  }
}

/** backwardHead for head size 2, unrolled. */
function backwardHead2(K: Float64Array, V: Float64Array, G: Float64Array, GK: Float64Array, GV: Float64Array, T: number,
  scale: number, P: Float32Array, pBase: number, Y: Float32Array, o: number, d: number): void {
  for (let t = 1; t < T; t++) {
    const g0 = G[2 * t], g1 = G[2 * t + 1];
    const D = g0 * Y[o + t * d] + g1 * Y[o + t * d + 1];
    const k0 = K[2 * t] * scale, k1 = K[2 * t + 1] * scale;
    let a0 = 0, a1 = 0;
    const pr = pBase + (t * (t - 1)) / 2;
    for (let s = 0; s < t; s++) {
      const p = P[pr + s];
      if (p === 0) continue;
      GV[2 * s] += p * g0; GV[2 * s + 1] += p * g1;
      const zs = p * (g0 * V[2 * s] + g1 * V[2 * s + 1] - D);
      a0 += zs * K[2 * s]; a1 += zs * K[2 * s + 1];
      GK[2 * s] += zs * k0; GK[2 * s + 1] += zs * k1;
    }
    GK[2 * t] += a0 * scale; GK[2 * t + 1] += a1 * scale;
  }
}

/** out (T, hs) = head h of sequence b of a (B, T, d) array. */
function gatherHead(src: ArrayLike<number>, out: Float64Array, b: number, h: number, T: number, d: number, hs: number): void {
  for (let t = 0; t < T; t++) for (let j = 0; j < hs; j++) out[t * hs + j] = src[(b * T + t) * d + h * hs + j];
}

function scatterHeadAdd(src: Float64Array, dst: Float32Array, b: number, h: number, T: number, d: number, hs: number): void {
  for (let t = 0; t < T; t++) for (let j = 0; j < hs; j++) dst[(b * T + t) * d + h * hs + j] += src[t * hs + j];
}

/** Effective 6×6 maps, row-major float64. */
export interface MoonWeights { k: Float64Array; v: Float64Array; o: Float64Array; heads: number }

export class MoonModel {
  readonly params: Params;
  readonly scratch = new ReadoutScratch();

  /** Block parameters initialised as the reference's complexified nn.Linear: a, b = mean of two
   *  U(−1/√6, 1/√6) draws (the projection of a full uniform 2×2 block onto [[a, −b], [b, a]]). */
  constructor(mem: TrainMemory, readonly heads: number, seed: number) {
    if (DIM % heads !== 0) throw new Error(`MoonModel: ${heads} heads do not divide the width ${DIM}`);
    this.params = new Params(mem, seed);
    const bound = 1 / Math.sqrt(DIM);
    for (const name of ['w_k', 'w_v', 'w_o']) {
      const p = this.params.create(name, [BLOCKS, BLOCKS, 2], { kind: 'zeros' });
      const rng = Rng.derive(seed, name);
      for (let i = 0; i < p.size; i++) p.data[i] = ((rng.next() * 2 - 1) * bound + (rng.next() * 2 - 1) * bound) / 2;
    }
  }

  /** ŷ (B, T, 6) for inputs x and next inputs y (B, T, 6) (y_t = x_{t+1} feeds the values). */
  forward(tape: Tape, x: Tensor, y: Tensor): Tensor {
    const wk = complexMatrix(tape, this.params.get('w_k'));               // (6, 6)
    const wv = complexMatrix(tape, this.params.get('w_v'));
    const wo = complexMatrix(tape, this.params.get('w_o'));
    const k = linear(tape, x, wk);                                          // (B, T, 6)
    const v = linear(tape, y, wv);                                          // (B, T, 6)
    const r = sharpReadout(tape, k, v, this.heads, SOFTMAX_SCALE, this.scratch);
    return linear(tape, r, wo);                                             // (B, T, 6)
  }

  /** mean(clip(ŷ − y, ±0.5)²) → [1]. */
  loss(tape: Tape, x: Tensor, y: Tensor): Tensor {
    const diff = clamp(tape, sub(tape, this.forward(tape, x, y), y), -ERROR_CLIP, ERROR_CLIP);
    return mean(tape, mul(tape, diff, diff));
  }

  weights(): MoonWeights {
    const m = (name: string): Float64Array => { const w = new Float64Array(DIM * DIM); blocksToMatrix(this.params.get(name).data, w); return w; };
    return { k: m('w_k'), v: m('w_v'), o: m('w_o'), heads: this.heads };
  }
}
