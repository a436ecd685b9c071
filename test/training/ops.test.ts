// Every op's forward against an independent float64 formula and its backward against finite
// differences of that formula (test/training/gradcheck.ts states the tolerances).

import { test } from 'node:test';
import { gradcheck } from './gradcheck.js';
import * as B from '../../src/training/autograd/ops-basic.js';
import * as N from '../../src/training/autograd/ops-nn.js';
import * as S from '../../src/training/autograd/ops-shape.js';
import { linear, matmul } from '../../src/training/autograd/ops-linear.js';
import { Rng } from '../../src/training/rng.js';

const map = (x: Float64Array, f: (v: number) => number) => Float64Array.from(x, f);
const rowsMap = (x: Float64Array, d: number, f: (row: Float64Array) => number[]) => {
  const out: number[] = [];
  for (let o = 0; o < x.length; o += d) out.push(...f(x.subarray(o, o + d)));
  return out;
};

test('elementwise: add/sub/mul with broadcast, scale, exp, abs, clamp, minimum', () => {
  gradcheck({ name: 'add', inputs: [{ shape: [3, 5] }, { shape: [5] }], build: (t, [a, b]) => B.add(t, a, b), ref: ([a, b]) => a.map((v, i) => v + b[i % 5]) });
  gradcheck({ name: 'add-same', inputs: [{ shape: [2, 3] }, { shape: [2, 3] }], build: (t, [a, b]) => B.add(t, a, b), ref: ([a, b]) => a.map((v, i) => v + b[i]) });
  gradcheck({ name: 'sub', inputs: [{ shape: [4, 3] }, { shape: [3] }], build: (t, [a, b]) => B.sub(t, a, b), ref: ([a, b]) => a.map((v, i) => v - b[i % 3]) });
  gradcheck({ name: 'mul', inputs: [{ shape: [2, 3, 4] }, { shape: [3, 4] }], build: (t, [a, b]) => B.mul(t, a, b), ref: ([a, b]) => a.map((v, i) => v * b[i % 12]) });
  gradcheck({ name: 'mul-scalar', inputs: [{ shape: [7] }, { shape: [1] }], build: (t, [a, b]) => B.mul(t, a, b), ref: ([a, b]) => a.map((v) => v * b[0]) });
  gradcheck({ name: 'scale', inputs: [{ shape: [9] }], build: (t, [a]) => B.scale(t, a, -2.5), ref: ([a]) => map(a, (v) => -2.5 * v) });
  gradcheck({ name: 'exp', inputs: [{ shape: [11] }], build: (t, [a]) => B.exp(t, a), ref: ([a]) => map(a, Math.exp) });
  gradcheck({ name: 'abs', inputs: [{ shape: [11] }], build: (t, [a]) => B.abs(t, a), ref: ([a]) => map(a, Math.abs) });
  gradcheck({ name: 'clamp', inputs: [{ shape: [13] }], build: (t, [a]) => B.clamp(t, a, -0.5, 0.7), ref: ([a]) => map(a, (v) => Math.min(Math.max(v, -0.5), 0.7)) });
  gradcheck({ name: 'minimum', inputs: [{ shape: [13] }], build: (t, [a]) => B.minimum(t, a, 0.3), ref: ([a]) => map(a, (v) => Math.min(v, 0.3)) });
});

test('reductions and reshape: sum, mean, sumLast, reshape', () => {
  gradcheck({ name: 'sum', inputs: [{ shape: [3, 4] }], build: (t, [a]) => B.sum(t, a), ref: ([a]) => [a.reduce((s, v) => s + v, 0)] });
  gradcheck({ name: 'mean', inputs: [{ shape: [3, 4] }], build: (t, [a]) => B.mean(t, a), ref: ([a]) => [a.reduce((s, v) => s + v, 0) / 12] });
  gradcheck({ name: 'sumLast', inputs: [{ shape: [3, 5] }], build: (t, [a]) => B.sumLast(t, a), ref: ([a]) => rowsMap(a, 5, (r) => [r.reduce((s, v) => s + v, 0)]) });
  gradcheck({ name: 'reshape', inputs: [{ shape: [2, 6] }], build: (t, [a]) => B.scale(t, B.reshape(t, a, [3, -1]), 2), ref: ([a]) => map(a, (v) => 2 * v) });
});

test('linear and matmul (SIMD matmul kernel, transposed backward)', () => {
  const lin = (x: Float64Array, w: Float64Array, b: Float64Array | null, n: number, o: number, i: number) => {
    const y = new Float64Array(n * o);
    for (let r = 0; r < n; r++) for (let j = 0; j < o; j++) { let s = b ? b[j] : 0; for (let c = 0; c < i; c++) s += x[r * i + c] * w[j * i + c]; y[r * o + j] = s; }
    return y;
  };
  gradcheck({ name: 'linear', inputs: [{ shape: [2, 3, 7] }, { shape: [5, 7] }, { shape: [5] }], build: (t, [x, w, b]) => linear(t, x, w, b), ref: ([x, w, b]) => lin(x, w, b, 6, 5, 7) });
  gradcheck({ name: 'linear-nobias-wide', inputs: [{ shape: [9, 37] }, { shape: [19, 37] }], build: (t, [x, w]) => linear(t, x, w), ref: ([x, w]) => lin(x, w, null, 9, 19, 37) });
  gradcheck({ name: 'linear-reference', kernels: 'reference', inputs: [{ shape: [4, 6] }, { shape: [3, 6] }], build: (t, [x, w]) => linear(t, x, w), ref: ([x, w]) => lin(x, w, null, 4, 3, 6) });
  const mm = (a: Float64Array, b: Float64Array, Bt: number, M: number, K: number, Nn: number, tB: boolean, sharedB: boolean) => {
    const y = new Float64Array(Bt * M * Nn);
    for (let z = 0; z < Bt; z++) for (let m = 0; m < M; m++) for (let n = 0; n < Nn; n++) {
      let s = 0;
      const bo = sharedB ? 0 : z * K * Nn;
      for (let k = 0; k < K; k++) s += a[z * M * K + m * K + k] * (tB ? b[bo + n * K + k] : b[bo + k * Nn + n]);
      y[z * M * Nn + m * Nn + n] = s;
    }
    return y;
  };
  gradcheck({ name: 'matmul', inputs: [{ shape: [2, 3, 5] }, { shape: [2, 5, 4] }], build: (t, [a, b]) => matmul(t, a, b), ref: ([a, b]) => mm(a, b, 2, 3, 5, 4, false, false) });
  gradcheck({ name: 'matmul-transB', inputs: [{ shape: [2, 3, 5] }, { shape: [2, 6, 5] }], build: (t, [a, b]) => matmul(t, a, b, { transB: true }), ref: ([a, b]) => mm(a, b, 2, 3, 5, 6, true, false) });
  gradcheck({ name: 'matmul-shared', inputs: [{ shape: [3, 2, 5] }, { shape: [5, 4] }], build: (t, [a, b]) => matmul(t, a, b), ref: ([a, b]) => mm(a, b, 3, 2, 5, 4, false, true) });
});

test('norms: rmsNorm, layerNorm (with and without bias), normalize', () => {
  const d = 6;
  gradcheck({ name: 'rmsNorm', inputs: [{ shape: [4, d] }, { shape: [d] }], build: (t, [x, w]) => N.rmsNorm(t, x, w, 1e-5),
    ref: ([x, w]) => rowsMap(x, d, (r) => { const s = 1 / Math.sqrt(r.reduce((a, v) => a + v * v, 0) / d + 1e-5); return [...r].map((v, j) => v * s * w[j]); }) });
  const ln = (r: Float64Array, w: Float64Array, b: Float64Array | null) => {
    const m = r.reduce((a, v) => a + v, 0) / d, v = r.reduce((a, x) => a + (x - m) ** 2, 0) / d, s = 1 / Math.sqrt(v + 1e-5);
    return [...r].map((x, j) => (x - m) * s * w[j] + (b ? b[j] : 0));
  };
  gradcheck({ name: 'layerNorm', inputs: [{ shape: [3, d] }, { shape: [d] }, { shape: [d] }], build: (t, [x, w, b]) => N.layerNorm(t, x, w, b, 1e-5), ref: ([x, w, b]) => rowsMap(x, d, (r) => ln(r, w, b)) });
  gradcheck({ name: 'layerNorm-nobias', inputs: [{ shape: [3, d] }, { shape: [d] }], build: (t, [x, w]) => N.layerNorm(t, x, w, null, 1e-5), ref: ([x, w]) => rowsMap(x, d, (r) => ln(r, w, null)) });
  gradcheck({ name: 'normalize', inputs: [{ shape: [5, d] }], build: (t, [x]) => N.normalize(t, x),
    ref: ([x]) => rowsMap(x, d, (r) => { const n = Math.sqrt(r.reduce((a, v) => a + v * v, 0)); return [...r].map((v) => v / n); }) });
});

test('activations: silu, swiglu, gelu (tanh and erf)', () => {
  const sig = (v: number) => 1 / (1 + Math.exp(-v));
  gradcheck({ name: 'silu', inputs: [{ shape: [17], scale: 3 }], build: (t, [x]) => N.silu(t, x), ref: ([x]) => map(x, (v) => v * sig(v)) });
  gradcheck({ name: 'swiglu', inputs: [{ shape: [3, 5] }, { shape: [3, 5] }], build: (t, [g, u]) => N.swiglu(t, g, u), ref: ([g, u]) => g.map((v, i) => v * sig(v) * u[i]) });
  gradcheck({ name: 'gelu-tanh', inputs: [{ shape: [17], scale: 3 }], build: (t, [x]) => N.gelu(t, x, 'tanh'),
    ref: ([x]) => map(x, (v) => 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3)))) });
  // erf via its Taylor series (independent of the engine's rational approximation; |x| ≤ ~9 here)
  const erf = (z: number) => { let s = 0, term = z; for (let n = 0; n < 200; n++) { s += term / (2 * n + 1); term *= -z * z / (n + 1); } return (2 / Math.sqrt(Math.PI)) * s; };
  gradcheck({ name: 'gelu-erf', inputs: [{ shape: [17], scale: 1.5 }], build: (t, [x]) => N.gelu(t, x, 'erf'), ref: ([x]) => map(x, (v) => 0.5 * v * (1 + erf(v / Math.SQRT2))), fwdTol: 1e-6 * 200 });
});

test('softmax, logSoftmax, crossEntropy (ignore index, large logits)', () => {
  const V = 7;
  const sm = (r: Float64Array) => { const m = Math.max(...r); const e = [...r].map((v) => Math.exp(v - m)); const s = e.reduce((a, b) => a + b, 0); return e.map((v) => v / s); };
  gradcheck({ name: 'softmax', inputs: [{ shape: [3, V], scale: 2 }], build: (t, [x]) => N.softmax(t, x), ref: ([x]) => rowsMap(x, V, sm) });
  gradcheck({ name: 'logSoftmax', inputs: [{ shape: [3, V], scale: 2 }], build: (t, [x]) => N.logSoftmax(t, x), ref: ([x]) => rowsMap(x, V, (r) => sm(r).map(Math.log)) });
  const targets = [3, -100, 0, 6];
  const ce = (x: Float64Array) => { let s = 0, c = 0; targets.forEach((tg, r) => { if (tg === -100) return; s -= Math.log(sm(x.subarray(r * V, r * V + V))[tg]); c++; }); return [s / c]; };
  gradcheck({ name: 'crossEntropy', inputs: [{ shape: [4, V], scale: 3 }], build: (t, [x]) => N.crossEntropy(t, x, targets), ref: ([x]) => ce(x) });
  // numerically stable far from zero: logits around 1e4 (f32 spacing there is 1e-3, so compare loosely)
  const big = Array.from({ length: 4 * V }, (_, i) => 1e4 + (i % 5));
  gradcheck({ name: 'crossEntropy-large', inputs: [{ shape: [4, V], values: big }], build: (t, [x]) => N.crossEntropy(t, x, targets), ref: ([x]) => ce(x) });
});

test('dropout: seeded mask, scaled survivors, identity in eval mode', () => {
  const p = 0.3;
  const mask = (seed: number, n: number) => { const r = new Rng(seed); return Array.from({ length: n }, () => (r.next() < p ? 0 : 1 / (1 - p))); };
  const m = mask(7, 40);
  gradcheck({ name: 'dropout', inputs: [{ shape: [40] }], build: (t, [x]) => N.dropout(t, x, p, new Rng(7)), ref: ([x]) => x.map((v, i) => v * m[i]) });
  gradcheck({ name: 'dropout-eval', inputs: [{ shape: [6] }], build: (t, [x]) => { t.training = false; const y = B.scale(t, N.dropout(t, x, p, new Rng(7)), 1); t.training = true; return y; }, ref: ([x]) => x });
});

test('shape ops: embedding (repeated ids), permute/transpose, concat, split', () => {
  const ids = [2, 0, 2, 4];
  gradcheck({ name: 'embedding', inputs: [{ shape: [5, 3] }], build: (t, [w]) => S.embedding(t, w, ids, [2, 2]), ref: ([w]) => ids.flatMap((i) => [...w.subarray(i * 3, i * 3 + 3)]) });
  gradcheck({ name: 'transpose', inputs: [{ shape: [2, 3, 4] }], build: (t, [x]) => S.transpose(t, x, 0, 2),
    ref: ([x]) => { const y: number[] = []; for (let k = 0; k < 4; k++) for (let j = 0; j < 3; j++) for (let i = 0; i < 2; i++) y.push(x[i * 12 + j * 4 + k]); return y; } });
  gradcheck({ name: 'permute', inputs: [{ shape: [2, 3, 4] }], build: (t, [x]) => S.permute(t, x, [1, 0, 2]),
    ref: ([x]) => { const y: number[] = []; for (let j = 0; j < 3; j++) for (let i = 0; i < 2; i++) for (let k = 0; k < 4; k++) y.push(x[i * 12 + j * 4 + k]); return y; } });
  gradcheck({ name: 'concat', inputs: [{ shape: [2, 2] }, { shape: [2, 3] }], build: (t, [a, b]) => S.concat(t, [a, b], -1),
    ref: ([a, b]) => [a[0], a[1], b[0], b[1], b[2], a[2], a[3], b[3], b[4], b[5]] });
  gradcheck({ name: 'split', inputs: [{ shape: [2, 5] }], build: (t, [x]) => { const [a, b] = S.split(t, x, [2, 3], 1); return S.concat(t, [B.scale(t, b, 2), a], 1); },
    ref: ([x]) => [2 * x[2], 2 * x[3], 2 * x[4], x[0], x[1], 2 * x[7], 2 * x[8], 2 * x[9], x[5], x[6]] });
});
