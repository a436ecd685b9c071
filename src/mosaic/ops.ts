// Memory Mosaic ops with backward, on the training engine's tape (src/training/autograd). Activations
// are (B, T, d) row-major with head h in columns [h·hs, (h+1)·hs); per-head scalars are (H) tensors.
// Every backward only ADDS into ensureGrad() of inputs that require a gradient (engine contract).
//
//   leakyAverage   k̃_t = u_t + e^{−β_h} k̃_{t−1}           O(T) scan, gradients to u and β
//   valueLookAhead ṽ_t = (1−c_h) w_{t+1} + c_h w_t, w_T = 0  gradients to w and c
//   unitNormScale  y = e^{s_h} u / (|u| + ε) per head       gradients to u and s
//   causalReadout  y_t = Σ_{s<t} softmax_s(k_t·k_s) v_s, y_0 = 0 (strictly earlier; see readout.ts)
//   headScale      y = x ⊙ e^{s_h}                           gradients to x and s
//   splitHeads / mergeHeads   (N, d) ↔ (H, N, hs)          layout changes for batched products
// Shape legend: B batch, T tokens, d width, H heads, hs = d/H, N = B·T.

import type { Tape } from '../training/autograd/tape.js';
import { type Tensor, shapeStr } from '../training/autograd/tensor.js';
import { NORM_EPS } from './reference.js';

/** (B, T) of a (B, T, d) or (T, d) activation. */
export function batchTime(fn: string, x: Tensor, d?: number): { B: number; T: number; d: number } {
  if (x.ndim !== 2 && x.ndim !== 3) throw new Error(`${fn}: expected (B, T, d) or (T, d), got ${shapeStr(x.shape)}`);
  const w = x.lastDim;
  if (d !== undefined && w !== d) throw new Error(`${fn}: last dimension ${w} ≠ ${d}`);
  const T = x.shape[x.ndim - 2];
  return { B: x.ndim === 3 ? x.shape[0] : 1, T, d: w };
}

function checkHeads(fn: string, s: Tensor, H: number, d: number): number {
  if (s.size !== H) throw new Error(`${fn}: per-head tensor ${shapeStr(s.shape)} must have H = ${H} elements`);
  if (d % H !== 0) throw new Error(`${fn}: width ${d} is not divisible by H = ${H}`);
  return d / H;
}

/** Leaky average along time per head: k̃_t = u_t + a_h k̃_{t−1}, a_h = e^{−β_h} (β (H) ≥ 0).
 *  Backward is the reverse scan g̃_t = g_t + a g̃_{t+1}: du_t = g̃_t, da = Σ_{t≥1} ⟨g̃_t, k̃_{t−1}⟩,
 *  dβ = −a·da. Equals the explicit lower-triangular form Σ_{s≤t} e^{−β(t−s)} u_s. */
export function leakyAverage(tape: Tape, u: Tensor, beta: Tensor): Tensor {
  const { B, T, d } = batchTime('leakyAverage', u);
  const H = beta.size, hs = checkHeads('leakyAverage', beta, H, d);
  const y = tape.output(u.shape, tape.needsGrad(u, beta));                  // (B, T, d)
  const U = u.data, Y = y.data;
  const a = Array.from(beta.data, (b) => Math.exp(-b));
  for (let b = 0; b < B; b++) {
    const o = b * T * d;
    for (let j = 0; j < d; j++) Y[o + j] = U[o + j];
    for (let t = 1; t < T; t++) {
      const r = o + t * d;
      for (let h = 0; h < H; h++) {
        const ah = a[h];
        for (let j = h * hs; j < (h + 1) * hs; j++) Y[r + j] = U[r + j] + ah * Y[r - d + j];
      }
    }
  }
  tape.record(y, () => {
    const g = y.grad!;
    const gt = new Float32Array(d);                                           // g̃_{t+1}
    const da = new Float64Array(H);
    const gu = u.requiresGrad ? u.ensureGrad() : null;
    for (let b = 0; b < B; b++) {
      gt.fill(0);
      for (let t = T - 1; t >= 0; t--) {
        const r = (b * T + t) * d;
        for (let h = 0; h < H; h++) {
          let acc = 0;
          for (let j = h * hs; j < (h + 1) * hs; j++) {
            const v = g[r + j] + a[h] * gt[j];
            gt[j] = v;
            if (gu) gu[r + j] += v;
            if (t > 0) acc += v * Y[r - d + j];
          }
          da[h] += acc;
        }
      }
    }
    if (beta.requiresGrad) {
      const gb = beta.ensureGrad();
      for (let h = 0; h < H; h++) gb[h] += -a[h] * da[h];
    }
  });
  return y;
}

/** Value that peeks one step ahead: ṽ_t = (1 − c_h) w_{t+1} + c_h w_t, with w_T = 0 (the last
 *  position has no successor inside the window). */
export function valueLookAhead(tape: Tape, w: Tensor, c: Tensor): Tensor {
  const { B, T, d } = batchTime('valueLookAhead', w);
  const H = c.size, hs = checkHeads('valueLookAhead', c, H, d);
  const y = tape.output(w.shape, tape.needsGrad(w, c));                     // (B, T, d)
  const W = w.data, Y = y.data, C = c.data;
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T; t++) {
      const r = (b * T + t) * d;
      const last = t === T - 1;
      for (let h = 0; h < H; h++) {
        const ch = C[h];
        for (let j = h * hs; j < (h + 1) * hs; j++) Y[r + j] = (last ? 0 : (1 - ch) * W[r + d + j]) + ch * W[r + j];
      }
    }
  }
  tape.record(y, () => {
    const g = y.grad!;
    const gw = w.requiresGrad ? w.ensureGrad() : null;
    const dc = new Float64Array(H);
    for (let b = 0; b < B; b++) {
      for (let t = 0; t < T; t++) {
        const r = (b * T + t) * d;
        const last = t === T - 1;
        for (let h = 0; h < H; h++) {
          const ch = C[h];
          let acc = 0;
          for (let j = h * hs; j < (h + 1) * hs; j++) {
            const next = last ? 0 : W[r + d + j];
            acc += g[r + j] * (W[r + j] - next);
            if (gw) {
              gw[r + j] += ch * g[r + j];
              if (!last) gw[r + d + j] += (1 - ch) * g[r + j];
            }
          }
          dc[h] += acc;
        }
      }
    }
    if (c.requiresGrad) { const gc = c.ensureGrad(); for (let h = 0; h < H; h++) gc[h] += dc[h]; }
  });
  return y;
}

/** Per-head unit norm with a learned log-scale: y = e^{s_h} · u / (|u| + ε), ε = 1e-10. */
export function unitNormScale(tape: Tape, u: Tensor, s: Tensor): Tensor {
  const d = u.lastDim, N = u.size / d;
  const H = s.size, hs = checkHeads('unitNormScale', s, H, d);
  const y = tape.output(u.shape, tape.needsGrad(u, s));
  const U = u.data, Y = y.data;
  const e = Array.from(s.data, Math.exp);
  const norms = new Float32Array(N * H);                                    // |u| per row and head
  for (let r = 0; r < N; r++) {
    for (let h = 0; h < H; h++) {
      let n2 = 0;
      for (let j = r * d + h * hs; j < r * d + (h + 1) * hs; j++) n2 += U[j] * U[j];
      const n = Math.sqrt(n2);
      norms[r * H + h] = n;
      const f = e[h] / (n + NORM_EPS);
      for (let j = r * d + h * hs; j < r * d + (h + 1) * hs; j++) Y[j] = f * U[j];
    }
  }
  tape.record(y, () => {
    const g = y.grad!;
    const gu = u.requiresGrad ? u.ensureGrad() : null;
    const ds = new Float64Array(H);
    for (let r = 0; r < N; r++) {
      for (let h = 0; h < H; h++) {
        const j0 = r * d + h * hs, j1 = j0 + hs;
        let gy = 0, gu_ = 0;                                                  // Σ g·y, Σ g·u
        for (let j = j0; j < j1; j++) { gy += g[j] * Y[j]; gu_ += g[j] * U[j]; }
        ds[h] += gy;
        if (!gu) continue;
        // y = e^s u/(n+ε): dy/du = e^s [I/(n+ε) − u uᵀ/(n (n+ε)²)]
        const n = norms[r * H + h], inv = e[h] / (n + NORM_EPS);
        const corr = n > 0 ? e[h] * gu_ / (n * (n + NORM_EPS) * (n + NORM_EPS)) : 0;
        for (let j = j0; j < j1; j++) gu[j] += inv * g[j] - corr * U[j];
      }
    }
    if (s.requiresGrad) { const gs = s.ensureGrad(); for (let h = 0; h < H; h++) gs[h] += ds[h]; }
  });
  return y;
}

/** y = x ⊙ e^{s_h} on head h's columns (x (…, d), s (H)). */
export function headScale(tape: Tape, x: Tensor, s: Tensor): Tensor {
  const d = x.lastDim, N = x.size / d;
  const H = s.size, hs = checkHeads('headScale', s, H, d);
  const y = tape.output(x.shape, tape.needsGrad(x, s));
  const X = x.data, Y = y.data;
  const e = Array.from(s.data, Math.exp);
  for (let r = 0; r < N; r++) for (let j = 0; j < d; j++) Y[r * d + j] = X[r * d + j] * e[(j / hs) | 0];
  tape.record(y, () => {
    const g = y.grad!;
    const gx = x.requiresGrad ? x.ensureGrad() : null;
    const ds = new Float64Array(H);
    for (let r = 0; r < N; r++) {
      for (let j = 0; j < d; j++) {
        const h = (j / hs) | 0;
        ds[h] += g[r * d + j] * Y[r * d + j];
        if (gx) gx[r * d + j] += g[r * d + j] * e[h];
      }
    }
    if (s.requiresGrad) { const gs = s.ensureGrad(); for (let h = 0; h < H; h++) gs[h] += ds[h]; }
  });
  return y;
}

/** (…, d) with N rows → (H, N, hs): head-major, so a batched product runs one head per batch. */
export function splitHeads(tape: Tape, x: Tensor, H: number): Tensor {
  const d = x.lastDim, N = x.size / d, hs = d / H;
  if (!Number.isInteger(hs)) throw new Error(`splitHeads: width ${d} is not divisible by H = ${H}`);
  const y = tape.output([H, N, hs], tape.needsGrad(x));
  const X = x.data, Y = y.data;
  for (let r = 0; r < N; r++) for (let h = 0; h < H; h++) for (let j = 0; j < hs; j++) Y[(h * N + r) * hs + j] = X[r * d + h * hs + j];
  tape.record(y, () => {
    const g = y.grad!, gx = x.ensureGrad();
    for (let r = 0; r < N; r++) for (let h = 0; h < H; h++) for (let j = 0; j < hs; j++) gx[r * d + h * hs + j] += g[(h * N + r) * hs + j];
  });
  return y;
}

/** (H, N, hs) → `shape` with N rows of d = H·hs (inverse of splitHeads). */
export function mergeHeads(tape: Tape, x: Tensor, shape: readonly number[]): Tensor {
  if (x.ndim !== 3) throw new Error(`mergeHeads: expected (H, N, hs), got ${shapeStr(x.shape)}`);
  const [H, N, hs] = x.shape, d = H * hs;
  const y = tape.output(shape, tape.needsGrad(x));
  if (y.size !== x.size || shape[shape.length - 1] !== d) throw new Error(`mergeHeads: ${shapeStr(x.shape)} cannot become ${shapeStr(shape)}`);
  const X = x.data, Y = y.data;
  for (let r = 0; r < N; r++) for (let h = 0; h < H; h++) for (let j = 0; j < hs; j++) Y[r * d + h * hs + j] = X[(h * N + r) * hs + j];
  tape.record(y, () => {
    const g = y.grad!, gx = x.ensureGrad();
    for (let r = 0; r < N; r++) for (let h = 0; h < H; h++) for (let j = 0; j < hs; j++) gx[(h * N + r) * hs + j] += g[r * d + h * hs + j];
  });
  return y;
}

