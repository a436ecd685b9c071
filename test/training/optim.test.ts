// AdamW against a hand-written f64 update, the schedule's landmarks, clipping, and the SVG plot.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TrainMemory } from '../../src/training/memory.js';
import { Params } from '../../src/training/params.js';
import { AdamW, clipGradNorm, lrAt } from '../../src/training/optim.js';
import { linePlotSvg, niceTicks } from '../../src/training/plot-svg.js';

test('AdamW: two steps equal the textbook update; decay only on ≥2-D tensors', () => {
  const mem = new TrainMemory({ bytes: 1 << 20, kernels: 'reference' });
  const params = new Params(mem, 1);
  const w = params.create('w', [2, 2], { kind: 'constant', value: 0.5 });
  const b = params.create('b', [2], { kind: 'constant', value: 0.5 });
  const opt = new AdamW(params, { beta1: 0.9, beta2: 0.99, eps: 1e-8, weightDecay: 0.1 });
  const grads = [[0.1, -0.2, 0.3, 0], [-0.3, 0.2, 0.1, 0.5]];
  const ref = (p0: number, gs: number[], decay: boolean) => {
    let p = p0, m = 0, v = 0;
    gs.forEach((g, t) => {
      m = 0.9 * m + 0.1 * g; v = 0.99 * v + 0.01 * g * g;
      p = p * (decay ? 1 - 1e-2 * 0.1 : 1) - 1e-2 * (m / (1 - 0.9 ** (t + 1))) / (Math.sqrt(v / (1 - 0.99 ** (t + 1))) + 1e-8);
    });
    return p;
  };
  for (const g of grads) { w.ensureGrad().set(g); b.ensureGrad().set(g.slice(0, 2)); opt.step(1e-2); }
  for (let i = 0; i < 4; i++) assert.ok(Math.abs(w.data[i] - ref(0.5, grads.map((g) => g[i]), true)) < 1e-6, `w[${i}]`);
  for (let i = 0; i < 2; i++) assert.ok(Math.abs(b.data[i] - ref(0.5, grads.map((g) => g[i]), false)) < 1e-6, `b[${i}]`);
  // a zero gradient still decays a matrix (decoupled decay) but leaves a vector alone
  assert.notEqual(w.data[3], 0.5);
});

test('AdamW without bias correction (MLX default): three steps equal p ← p(1 − lr·λ) − lr·m/(√v + ε)', () => {
  const mem = new TrainMemory({ bytes: 1 << 20, kernels: 'reference' });
  const params = new Params(mem, 1);
  const w = params.create('w', [2, 2], { kind: 'constant', value: 0.5 });
  const opt = new AdamW(params, { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.05, biasCorrection: false });
  const corrected = new AdamW(new Params(mem, 1), { beta1: 0.9, beta2: 0.999 });
  assert.equal(opt.biasCorrection, false);
  assert.equal(corrected.biasCorrection, true, 'bias correction stays the default');
  const grads = [[0.1, -0.2, 0.3, 0], [-0.3, 0.2, 0.1, 0.5], [0.2, 0.2, -0.4, 0.1]];
  const lrs = [1e-2, 5e-3, 1e-3];
  const ref = (p0: number, gs: number[]) => {
    let p = p0, m = 0, v = 0;
    gs.forEach((g, t) => {
      m = 0.9 * m + 0.1 * g; v = 0.999 * v + 0.001 * g * g;
      p = p * (1 - lrs[t] * 0.05) - lrs[t] * m / (Math.sqrt(v) + 1e-8);
    });
    return p;
  };
  grads.forEach((g, t) => { w.ensureGrad().set(g); opt.step(lrs[t]); });
  for (let i = 0; i < 4; i++) assert.ok(Math.abs(w.data[i] - ref(0.5, grads.map((g) => g[i]))) < 1e-6, `w[${i}]: ${w.data[i]} vs ${ref(0.5, grads.map((g) => g[i]))}`);
  // the first uncorrected step is lr·0.1/√0.001 ≈ 3.16·lr per unit gradient sign, not lr: visibly different
  assert.ok(Math.abs(w.data[0] - 0.5) > 0.02);
});

test('schedule: linear warm-up, cosine to minLr (optionally held at the peak until decayFrom); clipping scales to the limit', () => {
  const s = { lr: 1, minLr: 0.1, warmup: 4, total: 14 };
  assert.equal(lrAt(0, s), 0.25);
  assert.equal(lrAt(3, s), 1);
  assert.equal(lrAt(4, s), 1);
  assert.ok(Math.abs(lrAt(9, s) - 0.55) < 1e-12);
  assert.ok(Math.abs(lrAt(14, s) - 0.1) < 1e-12);
  // decayFrom: the peak holds until step 8, then the cosine spans [8, 14)
  const h = { ...s, decayFrom: 8 };
  assert.equal(lrAt(2, h), lrAt(2, s), 'warm-up unchanged');
  assert.equal(lrAt(7, h), 1);
  assert.equal(lrAt(8, h), 1);
  assert.ok(Math.abs(lrAt(11, h) - 0.55) < 1e-12);
  assert.ok(Math.abs(lrAt(14, h) - 0.1) < 1e-12);
  const mem = new TrainMemory({ bytes: 1 << 20, kernels: 'reference' });
  const params = new Params(mem, 1);
  const p = params.create('p', [2], { kind: 'zeros' });
  p.ensureGrad().set([3, 4]);
  assert.equal(clipGradNorm(params, 1), 5);
  assert.ok(Math.abs(Math.hypot(p.grad![0], p.grad![1]) - 1) < 1e-5);
});

test('plot-svg: ticks are round, every series and the legend are drawn', () => {
  assert.deepEqual(niceTicks(0, 10, 5), [0, 2, 4, 6, 8, 10]);
  const svg = linePlotSvg({ title: 'T', xLabel: 'step', yLabel: 'loss', series: [
    { name: 'a<b', points: [[0, 3], [1, 2], [2, 1]] }, { name: 'eval', points: [[0, 3.5], [2, NaN], [3, 2]], dashed: true }] });
  assert.match(svg, /^<svg /);
  assert.equal((svg.match(/<path /g) ?? []).length, 2);
  assert.match(svg, /a&lt;b/);
  assert.match(svg, /M64\.0,[\d.]+L/);        // first point at the left edge of the plot area
});
