// Elementwise and reduction ops (plain TypeScript loops over the Float32Array views).
// Broadcasting is deliberately narrow: in binary ops `b` may have the shape of a trailing suffix of
// `a`'s shape (a bias or a per-channel scale) or be a single element; the output has a's shape.
// Every op: forward writes a new step tensor; backward (recorded only when needed) ADDS into the
// gradients of the inputs that require one.

import type { Tape } from './tape.js';
import { Tensor, numel, shapeStr } from './tensor.js';

function broadcastInner(fn: string, a: Tensor, b: Tensor): number {
  if (b.size === 1) return 1;
  const k = b.ndim;
  const ok = k <= a.ndim && b.shape.every((d, i) => d === a.shape[a.ndim - k + i]);
  if (!ok) throw new Error(`${fn}: shape ${shapeStr(b.shape)} does not broadcast onto ${shapeStr(a.shape)} (it must equal a trailing part of it, or have one element)`);
  return b.size;
}

/** a + b  (b broadcast over a's leading dimensions). */
export function add(tape: Tape, a: Tensor, b: Tensor): Tensor {
  const m = broadcastInner('add', a, b);
  const y = tape.output(a.shape, tape.needsGrad(a, b));
  const A = a.data, B = b.data, Y = y.data, n = a.size;
  if (m === n) for (let i = 0; i < n; i++) Y[i] = A[i] + B[i];
  else for (let i = 0; i < n; i += m) for (let j = 0; j < m; j++) Y[i + j] = A[i + j] + B[j];
  tape.record(y, () => {
    const g = y.grad!;
    if (a.requiresGrad) { const ga = a.ensureGrad(); for (let i = 0; i < n; i++) ga[i] += g[i]; }
    if (b.requiresGrad) { const gb = b.ensureGrad(); for (let i = 0; i < n; i += m) for (let j = 0; j < m; j++) gb[j] += g[i + j]; }
  });
  return y;
}

/** a − b  (b broadcast over a's leading dimensions). */
export function sub(tape: Tape, a: Tensor, b: Tensor): Tensor {
  const m = broadcastInner('sub', a, b);
  const y = tape.output(a.shape, tape.needsGrad(a, b));
  const A = a.data, B = b.data, Y = y.data, n = a.size;
  for (let i = 0; i < n; i += m) for (let j = 0; j < m; j++) Y[i + j] = A[i + j] - B[j];
  tape.record(y, () => {
    const g = y.grad!;
    if (a.requiresGrad) { const ga = a.ensureGrad(); for (let i = 0; i < n; i++) ga[i] += g[i]; }
    if (b.requiresGrad) { const gb = b.ensureGrad(); for (let i = 0; i < n; i += m) for (let j = 0; j < m; j++) gb[j] -= g[i + j]; }
  });
  return y;
}

/** a ⊙ b  (b broadcast over a's leading dimensions). */
export function mul(tape: Tape, a: Tensor, b: Tensor): Tensor {
  const m = broadcastInner('mul', a, b);
  const y = tape.output(a.shape, tape.needsGrad(a, b));
  const A = a.data, B = b.data, Y = y.data, n = a.size;
  for (let i = 0; i < n; i += m) for (let j = 0; j < m; j++) Y[i + j] = A[i + j] * B[j];
  tape.record(y, () => {
    const g = y.grad!;
    if (a.requiresGrad) { const ga = a.ensureGrad(); for (let i = 0; i < n; i += m) for (let j = 0; j < m; j++) ga[i + j] += g[i + j] * B[j]; }
    if (b.requiresGrad) { const gb = b.ensureGrad(); for (let i = 0; i < n; i += m) for (let j = 0; j < m; j++) gb[j] += g[i + j] * A[i + j]; }
  });
  return y;
}

/** s · x for a constant s. */
export function scale(tape: Tape, x: Tensor, s: number): Tensor {
  const y = tape.output(x.shape, tape.needsGrad(x));
  const X = x.data, Y = y.data;
  for (let i = 0; i < x.size; i++) Y[i] = s * X[i];
  tape.record(y, () => {
    const g = y.grad!, gx = x.ensureGrad();
    for (let i = 0; i < x.size; i++) gx[i] += s * g[i];
  });
  return y;
}

/** x + c for a constant c. */
export function addScalar(tape: Tape, x: Tensor, c: number): Tensor {
  return unary(tape, x, (v) => v + c, () => 1);
}

/** Elementwise y = f(x) with dy/dx = df(x, y). */
export function unary(tape: Tape, x: Tensor, f: (v: number) => number, df: (v: number, y: number) => number): Tensor {
  const y = tape.output(x.shape, tape.needsGrad(x));
  const X = x.data, Y = y.data;
  for (let i = 0; i < x.size; i++) Y[i] = f(X[i]);
  tape.record(y, () => {
    const g = y.grad!, gx = x.ensureGrad();
    for (let i = 0; i < x.size; i++) gx[i] += g[i] * df(X[i], Y[i]);
  });
  return y;
}

export function exp(tape: Tape, x: Tensor): Tensor { return unary(tape, x, Math.exp, (_v, y) => y); }
/** |x|, with subgradient 0 at 0. */
export function abs(tape: Tape, x: Tensor): Tensor { return unary(tape, x, Math.abs, (v) => (v > 0 ? 1 : v < 0 ? -1 : 0)); }
/** min(max(x, lo), hi); the gradient passes only where lo < x < hi. */
export function clamp(tape: Tape, x: Tensor, lo: number, hi: number): Tensor {
  return unary(tape, x, (v) => Math.min(Math.max(v, lo), hi), (v) => (v > lo && v < hi ? 1 : 0));
}
/** min(x, c) for a constant c; the gradient passes where x < c. */
export function minimum(tape: Tape, x: Tensor, c: number): Tensor { return clamp(tape, x, -Infinity, c); }

/** Sum of all elements → shape [1]. */
export function sum(tape: Tape, x: Tensor): Tensor {
  const y = tape.output([1], tape.needsGrad(x));
  let s = 0;
  const X = x.data;
  for (let i = 0; i < x.size; i++) s += X[i];
  y.data[0] = s;
  tape.record(y, () => {
    const g = y.grad![0], gx = x.ensureGrad();
    for (let i = 0; i < x.size; i++) gx[i] += g;
  });
  return y;
}

/** Mean of all elements → shape [1]. */
export function mean(tape: Tape, x: Tensor): Tensor { return scale(tape, sum(tape, x), 1 / x.size); }

/** Sum over the last dimension: (…, n) → (…). */
export function sumLast(tape: Tape, x: Tensor): Tensor {
  const n = x.lastDim, rows = x.size / n;
  const y = tape.output(x.shape.length > 1 ? x.shape.slice(0, -1) : [1], tape.needsGrad(x));
  const X = x.data, Y = y.data;
  for (let r = 0; r < rows; r++) { let s = 0; for (let j = 0; j < n; j++) s += X[r * n + j]; Y[r] = s; }
  tape.record(y, () => {
    const g = y.grad!, gx = x.ensureGrad();
    for (let r = 0; r < rows; r++) for (let j = 0; j < n; j++) gx[r * n + j] += g[r];
  });
  return y;
}

/** The same data under another shape (a copy: step tensors are cheap and views would complicate
 *  gradient ownership). One dimension may be -1. */
export function reshape(tape: Tape, x: Tensor, shape: readonly number[]): Tensor {
  const s = [...shape];
  const free = s.indexOf(-1);
  if (free >= 0) s[free] = x.size / numel(s.filter((_, i) => i !== free));
  if (numel(s) !== x.size) throw new Error(`reshape: cannot view ${shapeStr(x.shape)} as ${shapeStr(shape)}`);
  const y = tape.output(s, tape.needsGrad(x));
  y.data.set(x.data);
  tape.record(y, () => {
    const g = y.grad!, gx = x.ensureGrad();
    for (let i = 0; i < x.size; i++) gx[i] += g[i];
  });
  return y;
}
