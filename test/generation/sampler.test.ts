import { test } from 'node:test';
import assert from 'node:assert/strict';
import { argmax, createSampler, processDistribution, topKIndices, validateSamplingOptions, Rng } from '../../src/generation/sampler.js';

// Independent reference: full sort, then HF's warpers one after the other, over plain arrays.
function reference(logits: number[], o: { temperature?: number; topK?: number; topP?: number; minP?: number }): Map<number, number> {
  const T = o.temperature ?? 1;
  let order = logits.map((l, i) => ({ i, l: l / T })).sort((a, b) => b.l - a.l || a.i - b.i);
  if (o.topK) order = order.slice(0, o.topK);
  const m = Math.max(...order.map((e) => e.l));
  const z = order.reduce((s, e) => s + Math.exp(e.l - m), 0);
  let p = order.map((e) => ({ i: e.i, p: Math.exp(e.l - m) / z }));
  if (o.topP !== undefined && o.topP < 1) {
    let cum = 0, keep = p.length;
    for (let j = 0; j < p.length; j++) { cum += p[j].p; if (cum >= o.topP) { keep = j + 1; break; } }
    p = p.slice(0, keep);
  }
  if (o.minP) { const cut = o.minP * p[0].p; p = p.filter((e) => e.p >= cut); }
  const s = p.reduce((a, e) => a + e.p, 0);
  return new Map(p.map((e) => [e.i, e.p / s]));
}

function dense(d: { ids: Int32Array; probs: Float64Array }): Map<number, number> {
  return new Map([...d.ids].map((id, j) => [id, d.probs[j]]));
}

function assertSameDist(a: Map<number, number>, b: Map<number, number>, tol = 1e-9): void {
  assert.deepEqual([...a.keys()].sort((x, y) => x - y), [...b.keys()].sort((x, y) => x - y));
  for (const [k, v] of a) assert.ok(Math.abs(v - b.get(k)!) < tol, `p[${k}] = ${v} vs ${b.get(k)}`);
}

test('greedy is argmax with the lowest index winning ties', () => {
  const s = createSampler({ temperature: 0 });
  assert.equal(s.sample(Float32Array.of(1, 3, 3, 2)), 1);
  assert.equal(s.sample(Float32Array.of(-5, -5, -5)), 0);
  assert.equal(argmax(Float32Array.of(NaN, 2, 7, 7)), 2);
  // topK = 1 keeps the lowest id among tied maxima too
  assert.deepEqual([...processDistribution(Float32Array.of(0, 4, 4, 1), [], { topK: 1 }).ids], [1]);
});

test('top-k, top-p and min-p keep exactly the expected sets (hand-computed)', () => {
  const logits = Float32Array.of(0, Math.log(2), Math.log(4)); // softmax = 1/7, 2/7, 4/7
  const set = (o: object) => [...processDistribution(logits, [], o).ids].sort();
  assert.deepEqual(set({ topK: 2 }), [1, 2]);
  assert.deepEqual(set({ topP: 0.5 }), [2]);          // 4/7 ≥ 0.5
  assert.deepEqual(set({ topP: 0.6 }), [1, 2]);       // 4/7 < 0.6 ≤ 6/7
  assert.deepEqual(set({ topP: 0.9 }), [0, 1, 2]);    // 6/7 < 0.9
  assert.deepEqual(set({ minP: 0.3 }), [1, 2]);       // cut 0.3·4/7 = 0.171 > 1/7
  assert.deepEqual(set({ minP: 0.6 }), [2]);          // cut 0.343 > 2/7
  const d = processDistribution(logits, [], { topP: 0.6 });
  assertSameDist(dense(d), new Map([[2, 4 / 6], [1, 2 / 6]]), 1e-6);
});

test('processed distribution matches an independent full-sort reference on random logits', () => {
  const rng = new Rng(7);
  for (let trial = 0; trial < 60; trial++) {
    const V = 1 + Math.floor(rng.next() * 3000);
    const logits = Array.from({ length: V }, () => (rng.next() - 0.5) * 12);
    const o = {
      temperature: 0.3 + rng.next() * 1.5,
      topK: trial % 3 === 0 ? 0 : 1 + Math.floor(rng.next() * 80),
      topP: trial % 2 === 0 ? 1 : 0.5 + rng.next() * 0.49,
      minP: trial % 5 < 2 ? rng.next() * 0.2 : 0,
    };
    const f32 = Float32Array.from(logits);
    assertSameDist(dense(processDistribution(f32, [], o)), reference(Array.from(f32), o), 1e-6);
  }
});

test('top-k over a 128K vocabulary picks the same ids as a full sort', () => {
  const rng = new Rng(3);
  const x = Float32Array.from({ length: 128256 }, () => rng.next() * 10);
  x[5] = x[77] = 11; // a tie at the top
  const got = [...topKIndices(x, 40)];
  const want = [...x.keys()].sort((a, b) => x[b] - x[a] || a - b).slice(0, 40);
  assert.deepEqual(got, want);
});

test('temperature → 0 approaches greedy', () => {
  const logits = Float32Array.of(0.1, 2.0, 1.99, -1);
  // two-way race between 2.0 and 1.99: p = 1 / (1 + e^(−Δ/T)) → 1 as T → 0
  const gap = logits[1] - logits[2];
  let last = 0;
  for (const T of [1, 0.1, 0.01, 1e-3, 1e-4]) {
    const p = createSampler({ temperature: T }).probabilities(logits);
    assert.ok(p[1] > last, `p[argmax] grows as T falls (T = ${T})`);
    if (T <= 1e-3) assert.ok(Math.abs(p[1] - 1 / (1 + Math.exp(-gap / T))) < 1e-9);
    last = p[1];
  }
  assert.ok(last > 1 - 1e-12);
  const s = createSampler({ temperature: 1e-3, seed: 1 });
  for (let i = 0; i < 200; i++) assert.equal(s.sample(logits), 1);
});

test('seeded samplers are deterministic; different seeds differ', () => {
  const logits = Float32Array.from({ length: 50 }, (_, i) => Math.sin(i));
  const draw = (seed: number) => { const s = createSampler({ seed, temperature: 1.3 }); return Array.from({ length: 100 }, () => s.sample(logits)); };
  assert.deepEqual(draw(42), draw(42));
  assert.notDeepEqual(draw(42), draw(43));
  assert.equal(createSampler({ seed: 42 }).seed, 42);
});

// χ² critical values at α = 0.001 by degrees of freedom.
const CHI2_001 = [NaN, 10.83, 13.82, 16.27, 18.47, 20.52, 22.46, 24.32, 26.12];

function chiSquare(counts: Map<number, number>, expected: Map<number, number>, n: number): number {
  let chi = 0;
  for (const [id, p] of expected) { const e = p * n; chi += (((counts.get(id) ?? 0) - e) ** 2) / e; }
  for (const [id, c] of counts) if (!expected.has(id)) chi += c > 0 ? Infinity : 0;
  return chi;
}

test('sampled frequencies match the processed distribution (χ², 20k draws) and a wrong one is rejected', () => {
  const logits = Float32Array.of(2.0, 1.5, 1.2, 0.3, 0.0, -0.5, -1, -3);
  const o = { temperature: 0.8, topK: 6, topP: 0.97, minP: 0.02, seed: 12345 };
  const sampler = createSampler(o);
  const N = 20000;
  const counts = new Map<number, number>();
  for (let i = 0; i < N; i++) { const t = sampler.sample(logits); counts.set(t, (counts.get(t) ?? 0) + 1); }
  const expected = reference(Array.from(logits), o);
  assert.ok(expected.size >= 4 && expected.size < 8, 'the options really truncate');
  const chi = chiSquare(counts, expected, N);
  assert.ok(chi < CHI2_001[expected.size - 1], `χ² = ${chi.toFixed(2)} vs critical ${CHI2_001[expected.size - 1]}`);
  // Negative control: the plain softmax (what a sampler ignoring the warpers would give) must fail.
  const raw = reference(Array.from(logits), {});
  const chiRaw = chiSquare(counts, raw, N);
  assert.ok(chiRaw > CHI2_001[raw.size - 1], `negative control χ² = ${chiRaw}`);
  // And the sampler's own probabilities() agree with the reference.
  const p = sampler.probabilities(logits);
  for (let i = 0; i < logits.length; i++) assert.ok(Math.abs(p[i] - (expected.get(i) ?? 0)) < 1e-6);
});

test('repetition penalty divides positive and multiplies negative logits, within the window', () => {
  const logits = Float32Array.of(2, -1, 0.5, 3);
  const softmax = (x: number[]) => { const m = Math.max(...x); const e = x.map((v) => Math.exp(v - m)); const s = e.reduce((a, b) => a + b); return e.map((v) => v / s); };
  const got = Array.from(createSampler({ repetitionPenalty: 2 }).probabilities(logits, [0, 1, 1]));
  softmax([1, -2, 0.5, 3]).forEach((p, i) => assert.ok(Math.abs(got[i] - p) < 1e-9));
  // window 1: only the last history token (1) is penalised
  const w = Array.from(createSampler({ repetitionPenalty: 2, repetitionWindow: 1 }).probabilities(logits, [0, 1]));
  softmax([2, -2, 0.5, 3]).forEach((p, i) => assert.ok(Math.abs(w[i] - p) < 1e-9));
  // greedy flips when the winner is penalised; the input logits are left untouched
  const g = Float32Array.of(2, -1, 0, 1.5);
  assert.equal(createSampler({ temperature: 0, repetitionPenalty: 2 }).sample(g, [0]), 3);
  assert.deepEqual([...g], [2, -1, 0, 1.5]);
  // frequency / presence (OpenAI): logit −= count·f + p
  const fp = Array.from(createSampler({ frequencyPenalty: 0.5, presencePenalty: 0.25 }).probabilities(Float32Array.of(1, 1, 1), [0, 0, 1]));
  softmax([1 - 1 - 0.25, 1 - 0.5 - 0.25, 1]).forEach((p, i) => assert.ok(Math.abs(fp[i] - p) < 1e-9));
});

test('invalid options throw a RangeError naming the option and its range', () => {
  const cases: [object, RegExp][] = [
    [{ temperature: -0.1 }, /temperature.*≥ 0/],
    [{ temperature: NaN }, /temperature/],
    [{ temperature: Infinity }, /temperature/],
    [{ topP: 0 }, /topP.*\(0, 1\]/],
    [{ topP: 1.5 }, /topP/],
    [{ topK: -1 }, /topK.*integer ≥ 0/],
    [{ topK: 2.5 }, /topK/],
    [{ minP: 1.1 }, /minP.*\[0, 1\]/],
    [{ repetitionPenalty: 0 }, /repetitionPenalty.*> 0/],
    [{ frequencyPenalty: 3 }, /frequencyPenalty/],
    [{ repetitionWindow: -2 }, /repetitionWindow/],
    [{ seed: 0.5 }, /seed/],
    [{ topP: '0.5' }, /topP/],
  ];
  for (const [o, re] of cases) {
    assert.throws(() => validateSamplingOptions(o as never), (e: Error) => e instanceof RangeError && re.test(e.message), JSON.stringify(o));
    assert.throws(() => createSampler(o as never), RangeError);
  }
});

test('logits with no finite value are refused', () => {
  assert.throws(() => createSampler({ seed: 1 }).sample(Float32Array.of(NaN, NaN)), /no finite maximum/);
});

test('top-p with many tied logits keeps the lower ids first, like a stable rank order', () => {
  const rng = new Rng(11);
  for (const topP of [0.1, 0.37, 0.5, 0.83]) {
    const logits = Float32Array.from({ length: 700 }, () => Math.floor(rng.next() * 5));
    for (const topK of [0, 300]) {
      assertSameDist(dense(processDistribution(logits, [], { topP, topK })), reference(Array.from(logits), { topP, topK }), 1e-9);
    }
  }
});
