// Memory Mosaic ops: forward against the float64 reference (explicit T×T forms), backward against
// finite differences, on odd sizes (hs not a multiple of 4) and both kernel builds.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../../src/training/rng.js';
import type { Tape } from '../../src/training/autograd/tape.js';
import { leakyAverage, valueLookAhead, unitNormScale, headScale, splitHeads, mergeHeads } from '../../src/mosaic/ops.js';
import { embedding } from '../../src/training/autograd/ops-shape.js';
import { causalReadout, readoutBackward, simdBackward } from '../../src/mosaic/readout.js';
import { referenceLeakyAverage } from '../../src/mosaic/reference.js';
import { gradCheck, leaf, makeTape } from './gradcheck.js';

function close(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: number, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < actual.length; i++) {
    const e = expected[i], a = actual[i];
    assert.ok(Math.abs(a - e) <= tol * (1 + Math.abs(e)), `${what}[${i}]: ${a} vs ${e}`);
  }
}

const B = 2, T = 9, H = 3, hs = 5, d = H * hs;

test('leakyAverage: O(T) scan equals the explicit lower-triangular e^{−β(t−s)} form, per batch row', () => {
  const tape = makeTape();
  const rng = new Rng(1);
  const u = leaf(tape, [B, T, d], rng);
  const beta = leaf(tape, [H], rng, 1, [0.05, 0.7, 3]);
  const y = leakyAverage(tape, u, beta);
  for (let b = 0; b < B; b++) {
    const ub = Float64Array.from(u.data.subarray(b * T * d, (b + 1) * T * d));
    close(y.data.subarray(b * T * d, (b + 1) * T * d), referenceLeakyAverage(ub, beta.data, T, H, hs), 1e-5, `batch ${b}`);
  }
});

test('leakyAverage: gradients to the input and to β match finite differences', () => {
  const tape = makeTape();
  const rng = new Rng(2);
  const u = leaf(tape, [B, T, d], rng);
  const beta = leaf(tape, [H], rng, 1, [0.3, 1.1, 2.5]);
  gradCheck(tape, (tp) => leakyAverage(tp, u, beta), [u, beta]);
});

test('valueLookAhead: (1−c)·w_{t+1} + c·w_t with w_T = 0; gradients to w and c', () => {
  const tape = makeTape();
  const rng = new Rng(3);
  const w = leaf(tape, [B, T, d], rng);
  const c = leaf(tape, [H], rng, 1, [0.2, 0.5, 0.9]);
  const y = valueLookAhead(tape, w, c);
  for (let b = 0; b < B; b++) for (let t = 0; t < T; t++) for (let j = 0; j < d; j++) {
    const ch = c.data[Math.floor(j / hs)], r = (b * T + t) * d + j;
    const next = t + 1 < T ? w.data[r + d] : 0;
    assert.ok(Math.abs(y.data[r] - ((1 - ch) * next + ch * w.data[r])) < 1e-6);
  }
  gradCheck(tape, (tp) => valueLookAhead(tp, w, c), [w, c]);
});

test('unitNormScale: each head slice has norm e^s; gradients to input and log-scale', () => {
  const tape = makeTape();
  const rng = new Rng(4);
  const u = leaf(tape, [B, T, d], rng);
  const s = leaf(tape, [H], rng, 1, [-0.5, 0.1, 1.2]);
  const y = unitNormScale(tape, u, s);
  for (let r = 0; r < B * T; r++) for (let h = 0; h < H; h++) {
    let n = 0;
    for (let j = 0; j < hs; j++) n += y.data[r * d + h * hs + j] ** 2;
    assert.ok(Math.abs(Math.sqrt(n) - Math.exp(s.data[h])) < 1e-5 * Math.exp(s.data[h]));
  }
  gradCheck(tape, (tp) => unitNormScale(tp, u, s), [u, s]);
});

/** Plain float64 strictly-causal read-out of one (T, d) sequence. */
function naiveReadout(k: Float32Array, v: Float32Array, Tn: number, Hn: number, hsn: number): Float64Array {
  const dn = Hn * hsn, y = new Float64Array(Tn * dn);
  for (let h = 0; h < Hn; h++) for (let t = 1; t < Tn; t++) {
    const sc: number[] = [];
    for (let s = 0; s < t; s++) { let dot = 0; for (let j = 0; j < hsn; j++) dot += k[t * dn + h * hsn + j] * k[s * dn + h * hsn + j]; sc.push(dot); }
    const m = Math.max(...sc), e = sc.map((x) => Math.exp(x - m)), z = e.reduce((a, b) => a + b, 0);
    for (let s = 0; s < t; s++) for (let j = 0; j < hsn; j++) y[t * dn + h * hsn + j] += (e[s] / z) * v[s * dn + h * hsn + j];
  }
  return y;
}

for (const kernels of ['wasm', 'reference'] as const) {
  test(`causalReadout (${kernels} kernels): strictly earlier positions, y_0 = 0, equals the float64 form`, () => {
    const tape = makeTape(kernels);
    const rng = new Rng(5);
    const k = leaf(tape, [B, T, d], rng, 1.3);
    const v = leaf(tape, [B, T, d], rng);
    const y = causalReadout(tape, k, v, H);
    for (let b = 0; b < B; b++) {
      const o = b * T * d;
      const ref = naiveReadout(k.data.subarray(o, o + T * d), v.data.subarray(o, o + T * d), T, H, hs);
      close(y.data.subarray(o, o + T * d), ref, 2e-5, `batch ${b}`);
      for (let j = 0; j < d; j++) assert.equal(y.data[o + j], 0, 'y_0 must be exactly 0 (not NaN)');
      // position 1 reads only position 0: y_1 = v_0 exactly
      close(y.data.subarray(o + d, o + 2 * d), v.data.subarray(o, o + d), 1e-6, 'y_1 = v_0');
    }
  });
}

test('causalReadout: gradients to keys (query and key roles) and values match finite differences', () => {
  const tape = makeTape();
  const rng = new Rng(6);
  const k = leaf(tape, [B, T, d], rng, 0.8);
  const v = leaf(tape, [B, T, d], rng);
  gradCheck(tape, (tp) => causalReadout(tp, k, v, H), [k, v], { samples: 40 });
});

test('causalReadout backward: the SIMD kernel equals its TypeScript twin (hs = 5, 7; T = 1, 9, 13)', () => {
  for (const [Tn, Hn, hsn] of [[9, 3, 5], [13, 2, 7], [1, 2, 4]]) {
    const tape = makeTape('wasm');
    assert.ok(simdBackward(tape.mem), 'dist/kernels.wasm lacks mosaicReadoutBackward: run npm run build:kernels');
    const rng = new Rng(10 + Tn);
    const dn = Hn * hsn;
    const k = leaf(tape, [2, Tn, dn], rng, 0.9), v = leaf(tape, [2, Tn, dn], rng);
    const y = causalReadout(tape, k, v, Hn);
    const g = y.ensureGrad();
    for (let i = 0; i < g.length; i++) g[i] = rng.normal();
    tape.backward(sumAsLoss(tape, y));
    const simdK = k.toArray(), gkS = Float32Array.from(k.grad!), gvS = Float32Array.from(v.grad!);
    k.zeroGrad(); v.zeroGrad();
    readoutBackward(k, v, y, 2, Tn, Hn, hsn);
    close(gkS, k.grad!, 2e-5, `gk T=${Tn}`);
    close(gvS, v.grad!, 2e-5, `gv T=${Tn}`);
    assert.deepEqual(k.toArray(), simdK);
  }
});

/** A loss whose backward leaves y.grad as set by the caller (seed 0). */
function sumAsLoss(tape: Tape, y: import('../../src/training/autograd/tensor.js').Tensor) {
  const l = tape.output([1], true);
  tape.record(l, () => { void y.ensureGrad(); });
  return l;
}

test('causalReadout: value v_t reaches only positions > t; key k_t only positions ≥ t', () => {
  const tape = makeTape();
  const rng = new Rng(7);
  const k = leaf(tape, [1, T, d], rng);
  const v = leaf(tape, [1, T, d], rng);
  const base = causalReadout(tape, k, v, H).toArray();
  const probe = (t: number, which: typeof k, firstAffected: number) => {
    const save = which.data.slice(t * d, t * d + d);
    for (let j = 0; j < d; j++) which.data[t * d + j] += 1;
    const y = causalReadout(tape, k, v, H).toArray();
    which.data.set(save, t * d);
    for (let i = 0; i < firstAffected * d; i++) assert.equal(y[i], base[i], `position ${Math.floor(i / d)} changed when row ${t} changed`);
    if (firstAffected < T) assert.ok(y.slice(firstAffected * d).some((x, i) => x !== base[firstAffected * d + i]), `row ${t} must matter`);
  };
  for (let t = 0; t < T; t++) { probe(t, v, t + 1); if (t > 0) probe(t, k, t); }
});

test('headScale, splitHeads/mergeHeads, embedding: gradients and round trip', () => {
  const tape = makeTape();
  const rng = new Rng(8);
  const x = leaf(tape, [B, T, d], rng);
  const s = leaf(tape, [H], rng, 0.5);
  gradCheck(tape, (tp) => headScale(tp, x, s), [x, s]);
  const rt = mergeHeads(tape, splitHeads(tape, x, H), x.shape);
  assert.deepEqual(rt.toArray(), x.toArray());
  const split = splitHeads(tape, x, H);
  assert.equal(split.data[(2 * B * T + 1) * hs + 3], x.data[1 * d + 2 * hs + 3], 'head 2, row 1, column 3');
  gradCheck(tape, (tp: Tape) => mergeHeads(tp, splitHeads(tp, x, H), x.shape), [x]);
  const wte = leaf(tape, [7, d], rng);
  const tokens = [3, 0, 6, 3, 1, 1];
  gradCheck(tape, (tp) => embedding(tp, wte, tokens, [2, 3]), [wte]);
});
