// Linear layers and matrix products on the SIMD matmul kernel (Y = X·Wᵀ, split over rows by the
// thread pool when the tape has one). The two backward products are brought into the same form by
// transposing (O(n·d) copies next to O(n·d²) products):
//   dX (n, in)  = dY (n, out) · W (out, in)  = dY · (Wᵀ)ᵀ         → matmul(W' = Wᵀ (in, out), X' = dY)
//   dW (out, in) = dYᵀ (out, n) · X (n, in)  = dYᵀ · (Xᵀ)ᵀ        → matmul(W' = Xᵀ (in, n),  X' = dYᵀ)
// Shape legend: n = rows of X (all leading dims flattened), in/out = features.

import type { Ptr } from '../../kernels/types.js';
import type { Tape } from './tape.js';
import { Tensor, shapeStr } from './tensor.js';
import { matmulOp } from '../../kernels/pool-ops.js';
import { trainKernels } from '../train-kernels.js';

/** y (n, rows) = x (n, cols) · wᵀ, on the pool when there is one. */
export function matmulInto(tape: Tape, w: Ptr, x: Ptr, y: Ptr, n: number, rows: number, cols: number): void {
  if (tape.pool) tape.pool.run(matmulOp, tape.mem.arena, 'f32', w, x, y, n, rows, cols);
  else tape.kernels.matmul('f32', w, x, y, n, rows, cols, 0, rows);
}

/** g (count) += t (count). */
function accumulate(tape: Tape, g: Ptr, t: Ptr, count: number): void { tape.kernels.add(g, t, count); }

/** Adds dX = dY·W and dW = dYᵀ·X for y = x·wᵀ (n, out) given dY at gy. */
export function linearBackward(tape: Tape, x: Tensor, w: Tensor, gy: Ptr, n: number, out: number, inF: number): void {
  const tk = trainKernels(tape.mem);
  const mem = tape.mem;
  if (x.requiresGrad) {
    const wt = mem.allocStep(out * inF * 4);                       // (in, out)
    tk.transpose(w.ptr, wt, out, inF);
    const tmp = mem.allocStep(n * inF * 4);                        // (n, in)
    matmulInto(tape, wt, gy, tmp, n, inF, out);
    accumulate(tape, x.gradPtr, tmp, n * inF);
  }
  if (w.requiresGrad) {
    const gyt = mem.allocStep(out * n * 4);                        // (out, n)
    tk.transpose(gy, gyt, n, out);
    const xt = mem.allocStep(inF * n * 4);                         // (in, n)
    tk.transpose(x.ptr, xt, n, inF);
    const tmp = mem.allocStep(out * inF * 4);                      // (out, in)
    matmulInto(tape, xt, gyt, tmp, out, inF, n);
    accumulate(tape, w.gradPtr, tmp, out * inF);
  }
}

/** y (…, out) = x (…, in) · Wᵀ + b;  W (out, in), b (out) or null. */
export function linear(tape: Tape, x: Tensor, w: Tensor, b: Tensor | null = null): Tensor {
  const inF = x.lastDim;
  if (w.ndim !== 2 || w.shape[1] !== inF) throw new Error(`linear: weight ${shapeStr(w.shape)} does not match input ${shapeStr(x.shape)} (need [out, ${inF}])`);
  const out = w.shape[0], n = x.size / inF;
  if (b && (b.size !== out)) throw new Error(`linear: bias ${shapeStr(b.shape)} must have ${out} elements`);
  const y = tape.output([...x.shape.slice(0, -1), out], tape.needsGrad(x, w, b));   // (…, out)
  matmulInto(tape, w.ptr, x.ptr, y.ptr, n, out, inF);
  if (b) tape.kernels.addBias(y.ptr, b.ptr, n, out);
  tape.record(y, () => {
    linearBackward(tape, x, w, y.gradPtr, n, out, inF);
    if (b && b.requiresGrad) {
      const g = y.grad!, gb = b.ensureGrad();
      for (let r = 0; r < n; r++) for (let j = 0; j < out; j++) gb[j] += g[r * out + j];
    }
  });
  return y;
}

/** Batched product c (…, M, N) = a (…, M, K) · b (…, K, N), or a · bᵀ with `transB` (b (…, N, K)).
 *  a and b have the same leading dims, or b is 2-D and shared by every batch. */
export function matmul(tape: Tape, a: Tensor, b: Tensor, opts: { transB?: boolean } = {}): Tensor {
  const tB = opts.transB ?? false;
  if (a.ndim < 2 || b.ndim < 2) throw new Error(`matmul: need at least 2-D inputs, got ${shapeStr(a.shape)} and ${shapeStr(b.shape)}`);
  const M = a.shape[a.ndim - 2], K = a.shape[a.ndim - 1];
  const bK = tB ? b.shape[b.ndim - 1] : b.shape[b.ndim - 2], N = tB ? b.shape[b.ndim - 2] : b.shape[b.ndim - 1];
  const batch = a.size / (M * K);
  const shared = b.ndim === 2;
  if (bK !== K || (!shared && (b.ndim !== a.ndim || b.size / (K * N) !== batch || b.shape.slice(0, -2).some((d, i) => d !== a.shape[i])))) {
    throw new Error(`matmul: cannot multiply ${shapeStr(a.shape)} by ${shapeStr(b.shape)}${tB ? 'ᵀ' : ''}`);
  }
  const tk = trainKernels(tape.mem), mem = tape.mem;
  const y = tape.output([...a.shape.slice(0, -1), N], tape.needsGrad(a, b));       // (…, M, N)
  // Bring b into "rows = N" form (N, K) once per batch (once in all when shared).
  const bt = (i: number): Ptr => {
    const src = b.ptr + (shared ? 0 : i * K * N * 4);
    if (tB) return src;
    const t = mem.allocStep(K * N * 4);                                            // (N, K)
    tk.transpose(src, t, K, N);
    return t;
  };
  const bShared = shared ? bt(0) : 0;
  for (let i = 0; i < batch; i++) {
    matmulInto(tape, shared ? bShared : bt(i), a.ptr + i * M * K * 4, y.ptr + i * M * N * 4, M, N, K);
  }
  tape.record(y, () => {
    const gy = y.gradPtr;
    for (let i = 0; i < batch; i++) {
      const ai = a.ptr + i * M * K * 4, gyi = gy + i * M * N * 4;
      const bi = b.ptr + (shared ? 0 : i * K * N * 4);
      if (a.requiresGrad) {
        // dA (M, K) = dY (M, N) · B_nk (N, K) → kernel form W' = B_nkᵀ (K, N)
        let w2: Ptr;
        if (tB) { w2 = mem.allocStep(K * N * 4); tk.transpose(bi, w2, N, K); } else w2 = bi;
        const tmp = mem.allocStep(M * K * 4);
        matmulInto(tape, w2, gyi, tmp, M, K, N);
        tape.kernels.add(a.gradPtr + i * M * K * 4, tmp, M * K);
      }
      if (b.requiresGrad) {
        // dB_nk (N, K) = dYᵀ (N, M) · A (M, K) → W' = Aᵀ (K, M), X' = dYᵀ (N, M)
        const gyt = mem.allocStep(N * M * 4); tk.transpose(gyi, gyt, M, N);
        const at = mem.allocStep(K * M * 4); tk.transpose(ai, at, M, K);
        const tmp = mem.allocStep(N * K * 4);                                      // (N, K)
        matmulInto(tape, at, gyt, tmp, N, K, M);
        const gb = b.gradPtr + (shared ? 0 : i * K * N * 4);
        if (tB) tape.kernels.add(gb, tmp, N * K);
        else { const t2 = mem.allocStep(K * N * 4); tk.transpose(tmp, t2, N, K); tape.kernels.add(gb, t2, K * N); }
      }
    }
  });
  return y;
}
