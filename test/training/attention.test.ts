// Causal GQA attention and RoPE: forward vs a float64 textbook formula, backward vs finite
// differences; the SIMD kernels vs their plain-TypeScript twins on odd sizes.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { gradcheck, testMemory } from './gradcheck.js';
import { attention, rope } from '../../src/training/autograd/ops-attention.js';
import { referenceTrainKernels } from '../../src/training/kernels-reference.js';
import { wasmTrainKernels } from '../../src/training/train-kernels.js';
import { Rng } from '../../src/training/rng.js';

function refAttention(q: Float64Array, k: Float64Array, v: Float64Array, B: number, T: number, H: number, Hkv: number, D: number): Float64Array {
  const out = new Float64Array(B * T * H * D), scale = 1 / Math.sqrt(D), g = H / Hkv;
  for (let b = 0; b < B; b++) for (let h = 0; h < H; h++) for (let i = 0; i < T; i++) {
    const s: number[] = [];
    for (let j = 0; j <= i; j++) { let d = 0; for (let c = 0; c < D; c++) d += q[((b * T + i) * H + h) * D + c] * k[((b * T + j) * Hkv + Math.floor(h / g)) * D + c]; s.push(d * scale); }
    const m = Math.max(...s), e = s.map((x) => Math.exp(x - m)), z = e.reduce((a, x) => a + x, 0);
    for (let c = 0; c < D; c++) { let acc = 0; for (let j = 0; j <= i; j++) acc += e[j] / z * v[((b * T + j) * Hkv + Math.floor(h / g)) * D + c]; out[((b * T + i) * H + h) * D + c] = acc; }
  }
  return out;
}

for (const kernels of ['wasm', 'reference'] as const) {
  test(`attention (${kernels}): causal GQA forward and backward`, () => {
    const [B, T, H, Hkv, D] = [2, 5, 4, 2, 6];
    gradcheck({ name: `attention-${kernels}`, kernels, fwdTol: 1e-5,
      inputs: [{ shape: [B, T, H, D] }, { shape: [B, T, Hkv, D] }, { shape: [B, T, Hkv, D] }],
      build: (t, [q, k, v]) => attention(t, q, k, v), ref: ([q, k, v]) => refAttention(q, k, v, B, T, H, Hkv, D) });
    gradcheck({ name: `attention-mha-${kernels}`, kernels,
      inputs: [{ shape: [1, 7, 3, 5] }, { shape: [1, 7, 3, 5] }, { shape: [1, 7, 3, 5], grad: false }],
      build: (t, [q, k, v]) => attention(t, q, k, v), ref: ([q, k, v]) => refAttention(q, k, v, 1, 7, 3, 3, 5) });
  });
}

test('rope: neox and normal pairings, explicit positions', () => {
  const D = 6, H = 2, T = 3;
  const invFreq = Float32Array.from([1, 0.1, 0.01]);
  const ref = (x: Float64Array, style: 'neox' | 'normal', pos: number[]) => {
    const y = Float64Array.from(x);
    for (let t = 0; t < T; t++) for (let h = 0; h < H; h++) for (let i = 0; i < D / 2; i++) {
      const a = Math.fround(pos[t] * invFreq[i]), o = (t * H + h) * D;
      const [i1, i2] = style === 'neox' ? [o + i, o + i + D / 2] : [o + 2 * i, o + 2 * i + 1];
      y[i1] = x[i1] * Math.cos(a) - x[i2] * Math.sin(a); y[i2] = x[i1] * Math.sin(a) + x[i2] * Math.cos(a);
    }
    return y;
  };
  gradcheck({ name: 'rope-neox', inputs: [{ shape: [1, T, H, D] }], build: (t, [x]) => rope(t, x, invFreq), ref: ([x]) => ref(x, 'neox', [0, 1, 2]) });
  gradcheck({ name: 'rope-normal', inputs: [{ shape: [1, T, H * D] }], build: (t, [x]) => rope(t, x, invFreq, { heads: H, style: 'normal', positions: [5, 9, 2] }), ref: ([x]) => ref(x, 'normal', [5, 9, 2]) });
});

test('training kernels: SIMD build equals the TypeScript twin (odd sizes)', () => {
  const mem = testMemory('wasm');
  const w = wasmTrainKernels(mem.arena.memory), r = referenceTrainKernels(mem.arena.memory);
  const rng = new Rng(3);
  const [T, H, Hkv, D] = [13, 6, 2, 7];
  const nq = T * H * D, nk = T * Hkv * D;
  const buf = (n: number, fill = true) => { const p = mem.allocStep(n * 4); if (fill) { const a = mem.f32(p, n); for (let i = 0; i < n; i++) a[i] = rng.normal(); } else mem.f32(p, n).fill(0); return p; };
  try {
    const q = buf(nq), k = buf(nk), v = buf(nk), dout = buf(nq);
    const outs = [buf(nq, false), buf(nq, false)], lses = [buf(T * H, false), buf(T * H, false)];
    const grads = [[buf(nq, false), buf(nk, false), buf(nk, false)], [buf(nq, false), buf(nk, false), buf(nk, false)]];
    [w, r].forEach((kk, i) => {
      kk.attnForward(q, k, v, outs[i], lses[i], T, H, Hkv, D, 0.4, 0, H);
      kk.attnBackward(q, k, v, outs[i], dout, lses[i], grads[i][0], grads[i][1], grads[i][2], T, H, Hkv, D, 0.4, 0, Hkv);
    });
    const close = (a: number, b: number, n: number, what: string) => {
      const A = mem.f32(a, n), Bv = mem.f32(b, n);
      let e = 0, m = 0;
      for (let i = 0; i < n; i++) { e = Math.max(e, Math.abs(A[i] - Bv[i])); m = Math.max(m, Math.abs(Bv[i])); }
      assert.ok(e <= 1e-5 * (1 + m), `${what}: SIMD vs twin differ by ${e}`);
    };
    close(outs[0], outs[1], nq, 'out'); close(lses[0], lses[1], T * H, 'lse');
    close(grads[0][0], grads[1][0], nq, 'dq'); close(grads[0][1], grads[1][1], nk, 'dk'); close(grads[0][2], grads[1][2], nk, 'dv');
    const src = buf(37 * 19), d0 = buf(37 * 19, false), d1 = buf(37 * 19, false);
    w.transpose(src, d0, 37, 19); r.transpose(src, d1, 37, 19);
    assert.deepEqual(mem.f32(d0, 37 * 19), mem.f32(d1, 37 * 19));
  } finally {
    mem.resetStep();
  }
});
