// The contextual-memory read-out (PAPERS.md §3): y_t = Σ_{s<t} softmax_s(k_t·k_s) v_s with y_0 = 0.
// The key is also the query (no Q projection) and only STRICTLY earlier positions are read: v_s peeks
// at x_{s+1}, so reading s = t would leak the token the model must predict.
//
// Forward: Tessera's causal attention kernel (SIMD, online softmax) with query positions shifted by one
// (qPos = t − 1 ⇒ rows s ≤ t − 1; qPos = −1 for t = 0 reads nothing and writes zeros) and scale 1
// (the learned key scale e^b is already in k).
// Backward (SIMD kernel kernels/train-mosaic.ts; TypeScript twin below; recomputes the softmax row per position, no T×T buffer kept between passes):
//   p_s = softmax_s(k_t·k_s), dp_s = g_t·v_s, D_t = Σ_s p_s dp_s = g_t·y_t, z_s = p_s (dp_s − D_t)
//   dk_t += Σ_s z_s k_s (query role),  dk_s += z_s k_t (key role),  dv_s += p_s g_t
// Attention-score dropout (training only, PAPERS.md §3): each weight p_s is zeroed with probability
// p_drop and the survivors scaled by 1/(1 − p_drop), as torch's dropout on attention weights does.
// That path (readoutWithScoreDropout) is plain TypeScript with the weights and mask kept for the backward.
// Shape legend: B batch, T tokens, d = H·hs, k, v, y (B, T, d).

import type { Tape } from '../training/autograd/tape.js';
import { type Tensor, shapeStr } from '../training/autograd/tensor.js';
import type { TrainMemory } from '../training/memory.js';
import { attentionStateBytes, type Ptr } from '../kernels/types.js';
import { kernelModule } from '../kernels/wasm.js';
import type { Rng } from '../training/rng.js';
import { batchTime } from './ops.js';

/** Dropout on the read-out's attention weights; ignored unless the tape is training and p > 0. */
export interface ScoreDropout { p: number; rng: Rng }

type ReadoutBackwardKernel = (k: Ptr, v: Ptr, y: Ptr, g: Ptr, gk: Ptr, gv: Ptr, scratch: Ptr,
  T: number, H: number, hs: number, h0: number, h1: number, wantK: number, wantV: number) => void;

const simd = new WeakMap<TrainMemory, ReadoutBackwardKernel | null>();

/** kernels/train-mosaic.ts bound to the memory's arena, when it runs the wasm kernels and the
 *  build has the kernel (a dist/kernels.wasm older than kernels/train-mosaic.ts falls back to TS). */
export function simdBackward(mem: TrainMemory): ReadoutBackwardKernel | null {
  if (mem.arena.kernelKind !== 'wasm') return null;
  if (!simd.has(mem)) {
    const inst = new WebAssembly.Instance(kernelModule(), { env: { memory: mem.arena.memory } });
    simd.set(mem, (inst.exports.mosaicReadoutBackward as ReadoutBackwardKernel | undefined) ?? null);
  }
  return simd.get(mem)!;
}

/** Strictly causal kernel-regression read-out of H heads; k and v (B, T, d). */
export function causalReadout(tape: Tape, k: Tensor, v: Tensor, H: number, drop?: ScoreDropout): Tensor {
  const { B, T, d } = batchTime('causalReadout', k);
  if (v.shape.length !== k.shape.length || v.shape.some((x, i) => x !== k.shape[i])) {
    throw new Error(`causalReadout: values ${shapeStr(v.shape)} must have the keys' shape ${shapeStr(k.shape)}`);
  }
  if (d % H !== 0) throw new Error(`causalReadout: width ${d} is not divisible by H = ${H}`);
  if (drop && !(drop.p >= 0 && drop.p < 1)) throw new Error(`causalReadout: score dropout must be in [0, 1), got ${drop.p}`);
  const hs = d / H;
  if (drop && drop.p > 0 && tape.training) return readoutWithScoreDropout(tape, k, v, B, T, H, hs, drop);
  const y = tape.output(k.shape, tape.needsGrad(k, v));                   // (B, T, d)
  const mem = tape.mem;
  const qPos = mem.allocStep(T * 4);
  const pos = new Int32Array(mem.arena.memory.buffer, qPos, T);
  for (let t = 0; t < T; t++) pos[t] = t - 1;                              // read s ≤ t − 1
  const state = mem.allocStep(attentionStateBytes(T, H, H, hs, T));
  for (let b = 0; b < B; b++) {
    const o = b * T * d * 4;
    tape.kernels.attention(k.ptr + o, qPos, k.ptr + o, v.ptr + o, y.ptr + o, 'f32', T, T, H, H, hs, 1, 0, 0, state, 0, H);
  }
  tape.record(y, () => {
    const kern = simdBackward(mem);
    if (!kern) { readoutBackward(k, v, y, B, T, H, hs); return; }
    const gk = k.requiresGrad ? k.gradPtr : 0, gv = v.requiresGrad ? v.gradPtr : 0, gy = y.gradPtr;
    const scratch = mem.allocStep((T + hs) * 4);
    for (let b = 0; b < B; b++) {
      const o = b * T * d * 4;
      kern(k.ptr + o, v.ptr + o, y.ptr + o, gy + o, gk && gk + o, gv && gv + o, scratch, T, H, hs, 0, H, gk ? 1 : 0, gv ? 1 : 0);
    }
  });
  return y;
}

/** The TypeScript twin of kernels/train-mosaic.ts (and the path for 'reference' kernels). */
export function readoutBackward(k: Tensor, v: Tensor, y: Tensor, B: number, T: number, H: number, hs: number): void {
  const d = H * hs;
  const K = k.data, V = v.data, Y = y.data, G = y.grad!;
  const gk = k.requiresGrad ? k.ensureGrad() : null;
  const gv = v.requiresGrad ? v.ensureGrad() : null;
  const p = new Float64Array(T);
  const acc = new Float64Array(hs);
  for (let b = 0; b < B; b++) {
    const base = b * T * d;
    for (let h = 0; h < H; h++) {
      const c0 = base + h * hs;
      for (let t = 1; t < T; t++) {
        const qt = c0 + t * d;
        let m = -Infinity;
        for (let s = 0; s < t; s++) {
          const ks = c0 + s * d;
          let dot = 0;
          for (let j = 0; j < hs; j++) dot += K[qt + j] * K[ks + j];
          p[s] = dot;
          if (dot > m) m = dot;
        }
        let z = 0;
        for (let s = 0; s < t; s++) { p[s] = Math.exp(p[s] - m); z += p[s]; }
        let D = 0;
        for (let j = 0; j < hs; j++) D += G[qt + j] * Y[qt + j];
        acc.fill(0);
        for (let s = 0; s < t; s++) {
          const ks = c0 + s * d;
          const ps = p[s] / z;
          let dp = 0;
          for (let j = 0; j < hs; j++) dp += G[qt + j] * V[ks + j];
          if (gv) for (let j = 0; j < hs; j++) gv[ks + j] += ps * G[qt + j];
          if (!gk) continue;
          const zs = ps * (dp - D);
          for (let j = 0; j < hs; j++) { acc[j] += zs * K[ks + j]; gk[ks + j] += zs * K[qt + j]; }
        }
        if (gk) for (let j = 0; j < hs; j++) gk[qt + j] += acc[j];
      }
    }
  }
}

/** The read-out with dropout on the attention weights: y_t = Σ_{s<t} m_s p_s v_s, m_s ∈ {0, 1/(1 − p)}.
 *  Backward: dv_s += m_s p_s g_t; dp_s = m_s (g_t·v_s); z_s = p_s (dp_s − Σ_r p_r dp_r); dk as without dropout. */
function readoutWithScoreDropout(tape: Tape, k: Tensor, v: Tensor, B: number, T: number, H: number, hs: number, drop: ScoreDropout): Tensor {
  const d = H * hs;
  const y = tape.output(k.shape, tape.needsGrad(k, v));                   // (B, T, d)
  const K = k.data, V = v.data, Y = y.data;
  const keep = 1 / (1 - drop.p);
  const P = new Float32Array(B * H * T * T);                               // softmax weights p[b, h, t, s], s < t
  const M = new Uint8Array(B * H * T * T);                                 // 1 = kept
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      const c0 = b * T * d + h * hs;
      for (let t = 0; t < T; t++) {
        const qt = c0 + t * d, row = ((b * H + h) * T + t) * T;
        for (let j = 0; j < hs; j++) Y[qt + j] = 0;
        if (t === 0) continue;
        let m = -Infinity;
        for (let s = 0; s < t; s++) {
          let dot = 0;
          for (let j = 0; j < hs; j++) dot += K[qt + j] * K[c0 + s * d + j];
          P[row + s] = dot;
          if (dot > m) m = dot;
        }
        let z = 0;
        for (let s = 0; s < t; s++) { P[row + s] = Math.exp(P[row + s] - m); z += P[row + s]; }
        for (let s = 0; s < t; s++) {
          P[row + s] /= z;
          if (drop.rng.next() < drop.p) continue;
          M[row + s] = 1;
          const w = P[row + s] * keep;
          for (let j = 0; j < hs; j++) Y[qt + j] += w * V[c0 + s * d + j];
        }
      }
    }
  }
  tape.record(y, () => {
    const G = y.grad!;
    const gk = k.requiresGrad ? k.ensureGrad() : null;
    const gv = v.requiresGrad ? v.ensureGrad() : null;
    const dp = new Float64Array(T);
    for (let b = 0; b < B; b++) {
      for (let h = 0; h < H; h++) {
        const c0 = b * T * d + h * hs;
        for (let t = 1; t < T; t++) {
          const qt = c0 + t * d, row = ((b * H + h) * T + t) * T;
          let D = 0;
          for (let s = 0; s < t; s++) {
            if (!M[row + s]) { dp[s] = 0; continue; }
            const ks = c0 + s * d;
            let gv_ = 0;
            for (let j = 0; j < hs; j++) gv_ += G[qt + j] * V[ks + j];
            dp[s] = keep * gv_;
            D += P[row + s] * dp[s];
            if (gv) { const w = keep * P[row + s]; for (let j = 0; j < hs; j++) gv[ks + j] += w * G[qt + j]; }
          }
          if (!gk) continue;
          for (let s = 0; s < t; s++) {
            const zs = P[row + s] * (dp[s] - D), ks = c0 + s * d;
            for (let j = 0; j < hs; j++) { gk[qt + j] += zs * K[ks + j]; gk[ks + j] += zs * K[qt + j]; }
          }
        }
      }
    }
  });
  return y;
}
