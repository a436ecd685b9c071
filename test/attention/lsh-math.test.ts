// The sampling probability u_i against its empirical retrieval frequency over many independent hash
// draws (SimHash + the ">= 2 of L tables" rule, simulated here), and the published reference points.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { collisionProbability, gaussian, rng, samplingProbability } from '../../src/attention/lsh-math.js';

test('u matches the empirical retrieval frequency over 2000 hash draws (binomial 4.5 sigma)', () => {
  const D = 16, K = 3, L = 8, draws = 2000, g = gaussian(rng(42));
  const q = Float64Array.from({ length: D }, () => g());
  // keys at chosen cosines to q: k = c·q̂ + sqrt(1−c²)·(unit vector ⟂ q)
  const qn = Math.hypot(...q), qh = q.map((x) => x / qn);
  const cosines = [-0.5, 0, 0.3, 0.5, 0.7, 0.9, 0.97];
  const keys = cosines.map((c) => {
    const r = Float64Array.from({ length: D }, () => g());
    const proj = r.reduce((a, x, i) => a + x * qh[i]!, 0);
    const perp = r.map((x, i) => x - proj * qh[i]!), pn = Math.hypot(...perp);
    return perp.map((x, i) => (2.5 * (c * qh[i]! + Math.sqrt(1 - c * c) * x / pn)));
  });
  const hits = new Array(keys.length).fill(0);
  const R = new Float64Array(K * L * D);
  const dot = (a: ArrayLike<number>, j: number) => { let s = 0; for (let d = 0; d < D; d++) s += a[d]! * R[j * D + d]!; return s; };
  for (let t = 0; t < draws; t++) {
    for (let i = 0; i < R.length; i++) R[i] = g();
    const bucket = (x: ArrayLike<number>, l: number) => { let c = 0; for (let b = 0; b < K; b++) if (dot(x, l * K + b) > 0) c |= 1 << b; return c; };
    const qb = Array.from({ length: L }, (_, l) => bucket(q, l));
    keys.forEach((k, i) => { let m = 0; for (let l = 0; l < L; l++) if (bucket(k, l) === qb[l]) m++; if (m >= 2) hits[i]++; });
  }
  cosines.forEach((c, i) => {
    const u = samplingProbability(c, K, L), f = hits[i] / draws, sigma = Math.sqrt(Math.max(u * (1 - u), 1e-4) / draws);
    assert.ok(Math.abs(f - u) < 4.5 * sigma + 1e-3, `cos ${c}: u=${u.toFixed(4)} empirical ${f.toFixed(4)}`);
  });
});

test('published reference points: orthogonal key ~0.97% and cos 0.5 ~0.74 at K=10, L=150', () => {
  assert.ok(Math.abs(samplingProbability(0, 10, 150) - 0.0097) < 0.0005, `${samplingProbability(0, 10, 150)}`);
  // p(0.5) = 2/3, P = (2/3)^10
  const P = (2 / 3) ** 10, u = 1 - (1 - P) ** 150 - 150 * P * (1 - P) ** 149;
  assert.ok(Math.abs(samplingProbability(0.5, 10, 150) - u) < 1e-12);
  assert.equal(collisionProbability(1), 1);
  assert.equal(collisionProbability(-1), 0);
  assert.equal(samplingProbability(0.3, 0, 5), 1);                   // K=0: one bucket, every key retrieved
});
