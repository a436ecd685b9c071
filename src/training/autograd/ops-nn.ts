// Neural-network ops over the last dimension (norms, activations, softmax, cross-entropy, dropout,
// unit-norm), plain TypeScript loops over the Float32Array views; sums in f64 where rows are reduced.
// Shape legend: (…, d) = any leading dims, rows = size / d.

import type { Tape } from './tape.js';
import { Tensor, shapeStr } from './tensor.js';
import type { Rng } from '../rng.js';

function rowsOf(fn: string, x: Tensor, w: Tensor | null): [number, number] {
  const d = x.lastDim;
  if (w && w.size !== d) throw new Error(`${fn}: weight ${shapeStr(w.shape)} must have ${d} elements for input ${shapeStr(x.shape)}`);
  return [x.size / d, d];
}

/** y = x / sqrt(mean(x²) + eps) ⊙ w over the last dim (Llama's RMSNorm). */
export function rmsNorm(tape: Tape, x: Tensor, w: Tensor, eps: number): Tensor {
  const [rows, d] = rowsOf('rmsNorm', x, w);
  const y = tape.output(x.shape, tape.needsGrad(x, w));
  const X = x.data, W = w.data, Y = y.data;
  const inv = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    const o = r * d;
    let ss = 0;
    for (let j = 0; j < d; j++) ss += X[o + j] * X[o + j];
    const s = 1 / Math.sqrt(ss / d + eps);
    inv[r] = s;
    for (let j = 0; j < d; j++) Y[o + j] = X[o + j] * s * W[j];
  }
  tape.record(y, () => {
    const g = y.grad!;
    const gx = x.requiresGrad ? x.ensureGrad() : null, gw = w.requiresGrad ? w.ensureGrad() : null;
    for (let r = 0; r < rows; r++) {
      const o = r * d, s = inv[r];
      // dx = s·(g⊙w − x̂·mean(g⊙w⊙x̂)),  x̂ = x·s
      let dot = 0;
      for (let j = 0; j < d; j++) dot += g[o + j] * W[j] * X[o + j] * s;
      dot /= d;
      for (let j = 0; j < d; j++) {
        const xh = X[o + j] * s;
        if (gx) gx[o + j] += s * (g[o + j] * W[j] - xh * dot);
        if (gw) gw[j] += g[o + j] * xh;
      }
    }
  });
  return y;
}

/** y = (x − mean) / sqrt(var + eps) ⊙ w (+ b) over the last dim; b = null for no bias. */
export function layerNorm(tape: Tape, x: Tensor, w: Tensor, b: Tensor | null, eps: number): Tensor {
  const [rows, d] = rowsOf('layerNorm', x, w);
  if (b && b.size !== d) throw new Error(`layerNorm: bias ${shapeStr(b.shape)} must have ${d} elements`);
  const y = tape.output(x.shape, tape.needsGrad(x, w, b));
  const X = x.data, W = w.data, Y = y.data;
  const inv = new Float64Array(rows), mu = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    const o = r * d;
    let m = 0;
    for (let j = 0; j < d; j++) m += X[o + j];
    m /= d;
    let v = 0;
    for (let j = 0; j < d; j++) v += (X[o + j] - m) ** 2;
    const s = 1 / Math.sqrt(v / d + eps);
    inv[r] = s; mu[r] = m;
    for (let j = 0; j < d; j++) Y[o + j] = (X[o + j] - m) * s * W[j] + (b ? b.data[j] : 0);
  }
  tape.record(y, () => {
    const g = y.grad!;
    const gx = x.requiresGrad ? x.ensureGrad() : null, gw = w.requiresGrad ? w.ensureGrad() : null;
    const gb = b && b.requiresGrad ? b.ensureGrad() : null;
    for (let r = 0; r < rows; r++) {
      const o = r * d, s = inv[r], m = mu[r];
      // dx = s·(gw − mean(gw) − x̂·mean(gw⊙x̂)),  gw = g⊙w
      let mg = 0, mgx = 0;
      for (let j = 0; j < d; j++) { const gwj = g[o + j] * W[j]; mg += gwj; mgx += gwj * (X[o + j] - m) * s; }
      mg /= d; mgx /= d;
      for (let j = 0; j < d; j++) {
        const xh = (X[o + j] - m) * s;
        if (gx) gx[o + j] += s * (g[o + j] * W[j] - mg - xh * mgx);
        if (gw) gw[j] += g[o + j] * xh;
        if (gb) gb[j] += g[o + j];
      }
    }
  });
  return y;
}

const sigmoid = (v: number) => 1 / (1 + Math.exp(-v));

/** silu(x) = x·σ(x). */
export function silu(tape: Tape, x: Tensor): Tensor {
  const y = tape.output(x.shape, tape.needsGrad(x));
  const X = x.data, Y = y.data;
  for (let i = 0; i < x.size; i++) Y[i] = X[i] * sigmoid(X[i]);
  tape.record(y, () => {
    const g = y.grad!, gx = x.ensureGrad();
    for (let i = 0; i < x.size; i++) { const s = sigmoid(X[i]); gx[i] += g[i] * s * (1 + X[i] * (1 - s)); }
  });
  return y;
}

/** silu(gate) ⊙ up (SwiGLU, fused). */
export function swiglu(tape: Tape, gate: Tensor, up: Tensor): Tensor {
  if (gate.size !== up.size) throw new Error(`swiglu: gate ${shapeStr(gate.shape)} and up ${shapeStr(up.shape)} differ`);
  const y = tape.output(gate.shape, tape.needsGrad(gate, up));
  const G = gate.data, U = up.data, Y = y.data;
  for (let i = 0; i < y.size; i++) Y[i] = G[i] * sigmoid(G[i]) * U[i];
  tape.record(y, () => {
    const g = y.grad!;
    const gg = gate.requiresGrad ? gate.ensureGrad() : null, gu = up.requiresGrad ? up.ensureGrad() : null;
    for (let i = 0; i < y.size; i++) {
      const s = sigmoid(G[i]);
      if (gg) gg[i] += g[i] * U[i] * s * (1 + G[i] * (1 - s));
      if (gu) gu[i] += g[i] * G[i] * s;
    }
  });
  return y;
}

const GELU_K = Math.sqrt(2 / Math.PI);

/** erf by Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7, below f32 resolution of the result). */
export function erf(v: number): number {
  const s = v < 0 ? -1 : 1, a = Math.abs(v), t = 1 / (1 + 0.3275911 * a);
  const p = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
  return s * (1 - p * Math.exp(-a * a));
}

/** gelu: 'tanh' = 0.5x(1 + tanh(√(2/π)(x + 0.044715x³))) (gelu_pytorch_tanh); 'erf' = x·Φ(x). */
export function gelu(tape: Tape, x: Tensor, approx: 'tanh' | 'erf' = 'tanh'): Tensor {
  const y = tape.output(x.shape, tape.needsGrad(x));
  const X = x.data, Y = y.data;
  for (let i = 0; i < x.size; i++) {
    const v = X[i];
    Y[i] = approx === 'tanh' ? 0.5 * v * (1 + Math.tanh(GELU_K * (v + 0.044715 * v * v * v))) : 0.5 * v * (1 + erf(v / Math.SQRT2));
  }
  tape.record(y, () => {
    const g = y.grad!, gx = x.ensureGrad();
    for (let i = 0; i < x.size; i++) {
      const v = X[i];
      let dv: number;
      if (approx === 'tanh') {
        const t = Math.tanh(GELU_K * (v + 0.044715 * v * v * v));
        dv = 0.5 * (1 + t) + 0.5 * v * (1 - t * t) * GELU_K * (1 + 3 * 0.044715 * v * v);
      } else {
        dv = 0.5 * (1 + erf(v / Math.SQRT2)) + v * Math.exp(-0.5 * v * v) / Math.sqrt(2 * Math.PI);
      }
      gx[i] += g[i] * dv;
    }
  });
  return y;
}

/** softmax over the last dim. */
export function softmax(tape: Tape, x: Tensor): Tensor {
  const [rows, d] = rowsOf('softmax', x, null);
  const y = tape.output(x.shape, tape.needsGrad(x));
  const X = x.data, Y = y.data;
  for (let r = 0; r < rows; r++) {
    const o = r * d;
    let m = -Infinity;
    for (let j = 0; j < d; j++) m = Math.max(m, X[o + j]);
    let s = 0;
    for (let j = 0; j < d; j++) { const e = Math.exp(X[o + j] - m); Y[o + j] = e; s += e; }
    for (let j = 0; j < d; j++) Y[o + j] /= s;
  }
  tape.record(y, () => {
    const g = y.grad!, gx = x.ensureGrad();
    for (let r = 0; r < rows; r++) {
      const o = r * d;
      let dot = 0;
      for (let j = 0; j < d; j++) dot += g[o + j] * Y[o + j];
      for (let j = 0; j < d; j++) gx[o + j] += Y[o + j] * (g[o + j] - dot);
    }
  });
  return y;
}

/** Log-sum-exp of each row (f64), the stable way. */
function rowLse(X: Float32Array, o: number, d: number): number {
  let m = -Infinity;
  for (let j = 0; j < d; j++) m = Math.max(m, X[o + j]);
  let s = 0;
  for (let j = 0; j < d; j++) s += Math.exp(X[o + j] - m);
  return m + Math.log(s);
}

/** log-softmax over the last dim. */
export function logSoftmax(tape: Tape, x: Tensor): Tensor {
  const [rows, d] = rowsOf('logSoftmax', x, null);
  const y = tape.output(x.shape, tape.needsGrad(x));
  const X = x.data, Y = y.data;
  for (let r = 0; r < rows; r++) { const o = r * d, l = rowLse(X, o, d); for (let j = 0; j < d; j++) Y[o + j] = X[o + j] - l; }
  tape.record(y, () => {
    const g = y.grad!, gx = x.ensureGrad();
    for (let r = 0; r < rows; r++) {
      const o = r * d;
      let s = 0;
      for (let j = 0; j < d; j++) s += g[o + j];
      for (let j = 0; j < d; j++) gx[o + j] += g[o + j] - Math.exp(Y[o + j]) * s;
    }
  });
  return y;
}

export interface CrossEntropyOptions {
  /** Targets equal to this are skipped (PyTorch's default −100). */
  ignoreIndex?: number;
  /** Optional per-row losses (rows) written here, NaN for ignored rows (for per-position curves). */
  perRow?: Float32Array;
}

/** Mean over non-ignored rows of −log softmax(logits)[target]; logits (…, V), targets (rows) int.
 *  Fused: the backward is (softmax − onehot)/count without materialising log-probabilities. */
export function crossEntropy(tape: Tape, logits: Tensor, targets: ArrayLike<number>, opts: CrossEntropyOptions = {}): Tensor {
  const [rows, V] = rowsOf('crossEntropy', logits, null);
  if (targets.length !== rows) throw new Error(`crossEntropy: ${targets.length} targets for ${rows} rows of logits ${shapeStr(logits.shape)}`);
  const ignore = opts.ignoreIndex ?? -100;
  const X = logits.data;
  const lse = new Float64Array(rows);
  let total = 0, count = 0;
  for (let r = 0; r < rows; r++) {
    const t = targets[r];
    if (t === ignore) { if (opts.perRow) opts.perRow[r] = NaN; continue; }
    if (!Number.isInteger(t) || t < 0 || t >= V) throw new Error(`crossEntropy: target ${t} at row ${r} is outside [0, ${V})`);
    lse[r] = rowLse(X, r * V, V);
    const l = lse[r] - X[r * V + t];
    if (opts.perRow) opts.perRow[r] = l;
    total += l; count++;
  }
  const y = tape.output([1], tape.needsGrad(logits));
  y.data[0] = count > 0 ? total / count : 0;
  tape.record(y, () => {
    if (count === 0) return;
    const g = y.grad![0] / count, gx = logits.ensureGrad();
    for (let r = 0; r < rows; r++) {
      const t = targets[r];
      if (t === ignore) continue;
      const o = r * V, l = lse[r];
      for (let j = 0; j < V; j++) gx[o + j] += g * Math.exp(X[o + j] - l);
      gx[o + t] -= g;
    }
  });
  return y;
}

/** Inverted dropout: zeroes each element with probability p (mask drawn from `rng`, so seeded runs
 *  repeat) and scales the rest by 1/(1−p). Identity when p = 0 or the tape is not training. */
export function dropout(tape: Tape, x: Tensor, p: number, rng: Rng): Tensor {
  if (!(p >= 0 && p < 1)) throw new Error(`dropout: p must be in [0, 1), got ${p}`);
  if (p === 0 || !tape.training) return x;
  const y = tape.output(x.shape, tape.needsGrad(x));
  const mask = new Float32Array(x.size);
  const keep = 1 / (1 - p);
  for (let i = 0; i < x.size; i++) mask[i] = rng.next() < p ? 0 : keep;
  const X = x.data, Y = y.data;
  for (let i = 0; i < x.size; i++) Y[i] = X[i] * mask[i];
  tape.record(y, () => {
    const g = y.grad!, gx = x.ensureGrad();
    for (let i = 0; i < x.size; i++) gx[i] += g[i] * mask[i];
  });
  return y;
}

/** x / max(‖x‖, eps) over the last dim (torch.nn.functional.normalize). */
export function normalize(tape: Tape, x: Tensor, eps = 1e-12): Tensor {
  const [rows, d] = rowsOf('normalize', x, null);
  const y = tape.output(x.shape, tape.needsGrad(x));
  const X = x.data, Y = y.data;
  const nrm = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    const o = r * d;
    let ss = 0;
    for (let j = 0; j < d; j++) ss += X[o + j] * X[o + j];
    const n = Math.max(Math.sqrt(ss), eps);
    nrm[r] = n;
    for (let j = 0; j < d; j++) Y[o + j] = X[o + j] / n;
  }
  tape.record(y, () => {
    const g = y.grad!, gx = x.ensureGrad();
    for (let r = 0; r < rows; r++) {
      const o = r * d, n = nrm[r];
      if (n <= eps) { for (let j = 0; j < d; j++) gx[o + j] += g[o + j] / eps; continue; }
      let dot = 0;
      for (let j = 0; j < d; j++) dot += g[o + j] * Y[o + j];
      for (let j = 0; j < d; j++) gx[o + j] += (g[o + j] - Y[o + j] * dot) / n;
    }
  });
  return y;
}
