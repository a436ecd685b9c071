// MagicPIG against the float64 dense reference: exact where every key is retrieved (K=0, floor 0),
// converging as L grows, the SIMD kernel equal to its TypeScript twin, tables that hold every hashed
// token exactly once through appends and merges, and the edge cases (short contexts, the window
// boundary, an empty sample, a zero query), and the engine's retrieval frequency against u_i.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ThreadPool } from '../../src/runtime/pool.js';
import type { MagicPigAttention } from '../../src/attention/magicpig.js';
import { gaussian, rng, samplingProbability } from '../../src/attention/lsh-math.js';
import { decode, denseRef, makeLayer, maxAbsDiff, realisticKV, relError, storeRows, type Layer } from './harness.js';

let pool: ThreadPool, refPool: ThreadPool;
before(async () => {
  pool = await ThreadPool.create({ threads: 2, kernels: 'wasm', minSplitBytes: 0 });
  refPool = await ThreadPool.create({ threads: 1, kernels: 'reference' });
});
after(() => { pool.dispose(); refPool.dispose(); });

function filled(p: ThreadPool, spec: string, n: number, seed = 1, extra: object = {}): { L: Layer; query: (H: number) => Float32Array } {
  const L = makeLayer(p, spec, { capacity: 2048, ...extra });
  const kv = realisticKV(seed, n, L.d.kvHeads, L.d.headDim);
  storeRows(L, kv.keys, kv.values);
  return { L, query: kv.query };
}

/** One more token (the decode step's own K/V), then the decode output. */
function step(L: Layer, query: (H: number) => Float32Array, seed: number): { out: Float32Array; q: Float32Array } {
  const kv = realisticKV(seed + 100, 1, L.d.kvHeads, L.d.headDim);
  storeRows(L, kv.keys, kv.values);
  const q = query(L.d.heads);
  return { out: decode(L, q), q };
}

describe('magicpig', () => {
  for (const dtype of ['f32', 'f16'] as const) {
    test(`every key retrieved (K=0, floor=0) equals dense, ${dtype}, 2 threads`, () => {
      const { L, query } = filled(pool, 'magicpig:K=0,L=4,floor=0', 700, 3, { dtype });
      for (let i = 0; i < 3; i++) {
        const { out, q } = step(L, query, i);
        assert.ok(maxAbsDiff(out, denseRef(L, q)) < 2e-5, `step ${i}: ${maxAbsDiff(out, denseRef(L, q))}`);
      }
      assert.ok((L.att as MagicPigAttention).lastSampled > 600, 'the middle tokens were sampled, not attended densely');
    });
  }

  test('error decreases as L grows (K=8, realistic keys)', (t) => {
    const errs: number[] = [];
    for (const Lt of [4, 16, 64, 256]) {
      let e = 0;
      for (const seed of [1, 2, 3]) {
        const { L, query } = filled(pool, `magicpig:K=8,L=${Lt},seed=${seed}`, 1500, seed);
        for (let i = 0; i < 3; i++) { const { out, q } = step(L, query, i); e += relError(out, denseRef(L, q)); }
      }
      errs.push(e / 9);
    }
    t.diagnostic(`relative error by L=[4,16,64,256]: ${errs.map((x) => x.toFixed(4)).join(' ')}`);
    for (let i = 1; i < errs.length; i++) assert.ok(errs[i]! < errs[i - 1]!, `relative errors by L=[4,16,64,256]: ${errs.map((x) => x.toFixed(4))}`);
    assert.ok(errs[3]! < 0.1, `L=256 error ${errs[3]}`);
  });

  for (const dtype of ['f32', 'f16'] as const) {
    test(`SIMD kernel equals its TypeScript twin (${dtype}, through appends)`, () => {
      const spec = 'magicpig:K=4,L=12,threshold=8,delta=16,window=8';
      const a = filled(pool, spec, 300, 5, { dtype }), b = filled(refPool, spec, 300, 5, { dtype });
      for (let i = 0; i < 40; i++) {
        const x = step(a.L, a.query, i), y = step(b.L, b.query, i);
        assert.ok(maxAbsDiff(x.out, y.out) < 1e-4, `step ${i}: ${maxAbsDiff(x.out, y.out)}`);
      }
      assert.equal((a.L.att as MagicPigAttention).lastSampled, (b.L.att as MagicPigAttention).lastSampled);
    });
  }

  test('generated tokens are hashed in: K=0 stays exact through 120 steps of appends and merges', () => {
    const { L, query } = filled(pool, 'magicpig:K=0,L=3,floor=0,threshold=8,delta=24,window=16', 200, 7);
    const mp = L.att as MagicPigAttention;
    for (let i = 0; i < 120; i++) {
      const { out, q } = step(L, query, i);
      assert.ok(maxAbsDiff(out, denseRef(L, q)) < 2e-5, `step ${i}`);
    }
    const t = mp.tables;
    assert.ok(t.hashedEnd >= L.keys.length - 1 - 16 - 8, `hashed up to ${t.hashedEnd} of ${L.keys.length}`);
    assert.ok(t.mainEnd > 200 - 16, 'the delta tables were merged into the main ones');
    checkTables(L, mp);
  });

  test('tables hold every hashed token exactly once per table, in bucket order (K=5)', () => {
    const { L, query } = filled(pool, 'magicpig:K=5,L=6,threshold=8,delta=20,window=8', 150, 9);
    const mp = L.att as MagicPigAttention;
    for (let i = 0; i < 70; i++) step(L, query, i);
    checkTables(L, mp);
  });

  test('context shorter than sinks + window, and lengths around the window, match dense', () => {
    for (const n of [3, 20, 66, 67, 68]) {             // sinks 4 + window 64: 68 tokens leave 0..1 to hash
      const { L, query } = filled(pool, 'magicpig:K=10,L=20', n, n);
      const { out, q } = step(L, query, 0);
      const err = maxAbsDiff(out, denseRef(L, q));
      assert.ok(Number.isFinite(err), `n=${n}: NaN`);
      if (L.keys.length <= 4 + 64 + 1) assert.ok(err < 2e-5, `length ${L.keys.length}: ${err}`);
    }
  });

  test('nothing sampled: the output is the dense part alone; a zero query gives no NaN', () => {
    const { L, query } = filled(pool, 'magicpig:K=16,L=2,window=8,sinks=2', 400, 11);
    const { out, q } = step(L, (H) => query(H).map((x) => -x), 0);     // away from every cluster
    const dense = () => [0, 1, ...Array.from({ length: 9 }, (_, i) => L.keys.length - 9 + i)];
    const mp = L.att as MagicPigAttention;
    assert.equal(mp.lastSampled, 0);
    assert.ok(maxAbsDiff(out, denseRef(L, q, dense)) < 2e-5);
    const z = decode(L, new Float32Array(L.d.heads * L.d.headDim));
    assert.ok(z.every(Number.isFinite));
  });

  test('truncate below the hashed range rebuilds the tables', () => {
    const { L, query } = filled(pool, 'magicpig:K=0,L=3,floor=0,window=8', 300, 13);
    step(L, query, 0);
    L.att.truncate(150);
    L.keys.length = 150; L.values.length = 150;
    const { out, q } = step(L, query, 1);
    assert.ok(maxAbsDiff(out, denseRef(L, q)) < 2e-5);
    assert.equal((L.att as MagicPigAttention).tables.hashedEnd, 150 - 8);
  });

  test('a speculative rollback (a cut that keeps the prompt) keeps the tables; prompt rows after decoding start over', () => {
    const { L, query } = filled(pool, 'magicpig:K=5,L=8,window=8,threshold=64', 300, 17);
    const t = (L.att as MagicPigAttention).tables;
    for (let i = 0; i < 4; i++) step(L, query, i);                    // prompt 300, 4 generated: tables over [4, 292)
    assert.equal(t.hashedEnd, 300 - 8);
    L.att.truncate(301); L.keys.length = 301; L.values.length = 301;   // drop 3 generated tokens
    assert.equal(t.hashedEnd, 292, 'kept across the rollback');
    step(L, query, 9);
    assert.equal(t.hashedEnd, 292, 'and used by the next decode step, not rebuilt over the generated tokens');
    // prompt rows after decoding (a chat's next turn): the tables are rebuilt over the new prompt
    L.att.observe!(L.q, L.pos, 1, L.keys.length);
    assert.equal(t.hashedEnd, 0, 'forgotten at new prompt rows');
    L.att.truncate(250); L.keys.length = 250; L.values.length = 250;
    step(L, query, 10);
    assert.equal(t.hashedEnd, 251 - 1 - 8, 'rebuilt at the next decode step over the new prompt');
  });

  test('the engine retrieves each key with frequency u_i over 1600 independent hash draws (K=3, L=8)', () => {
    // 32 hashed keys whose centered versions sit at cosines from −0.7 to 0.9 to the query, each with a
    // one-hot value: output component i > 0 exactly when the engine sampled key i (the decode token,
    // dense, has value 0). Every (layer, KV head) has its own hash directions, so 200 layers × 8 heads
    // are 1600 independent draws of the whole engine path: tables, centering, query hashing, retrieval.
    const D = 32, G = 8, n = 32, K = 3, Lt = 8, layers = 200, g = gaussian(rng(17));
    const q = Float64Array.from({ length: D }, () => g()), qn = Math.hypot(...q), qh = q.map((x) => x / qn);
    const cosTarget = Array.from({ length: n }, (_, i) => -0.7 + (1.6 * i) / (n - 1));
    const centered = cosTarget.map((c) => {
      const r = Float64Array.from({ length: D }, () => g()), proj = r.reduce((a, x, d) => a + x * qh[d]!, 0);
      const perp = r.map((x, d) => x - proj * qh[d]!), pn = Math.hypot(...perp);
      return perp.map((x, d) => 2 * (c * qh[d]! + Math.sqrt(1 - c * c) * x / pn));
    });
    const mean = new Float64Array(D);
    for (const c of centered) for (let d = 0; d < D; d++) mean[d] += c[d]! / n;
    const offset = Float64Array.from({ length: D }, () => 3 * g());                   // centering must remove it
    const keys = centered.map((c) => Float32Array.from({ length: G * D }, (_, j) => c[j % D]! - mean[j % D]! + offset[j % D]!));
    const values = centered.map((_, i) => Float32Array.from({ length: G * D }, (_, j) => (j % D === i ? 1 : 0)));
    // u_i from the keys as stored (f32) and their f64 mean, as the formula defines it
    const mu = new Float64Array(D);
    for (const k of keys) for (let d = 0; d < D; d++) mu[d] += k[d]! / n;
    const u = keys.map((k) => {
      let dot = 0, kn = 0;
      for (let d = 0; d < D; d++) { const x = k[d]! - mu[d]!; dot += q[d]! * x; kn += x * x; }
      return samplingProbability(dot / (qn * Math.sqrt(kn)), K, Lt);
    });
    const hits = new Array<number>(n).fill(0), query = Float32Array.from({ length: G * D }, (_, j) => q[j % D]!);
    for (let layer = 0; layer < layers; layer++) {
      const L = makeLayer(pool, `magicpig:K=${K},L=${Lt},sinks=0,window=0,dense=none`, { layer, layers, heads: G, kvHeads: G, headDim: D, capacity: 64 });
      storeRows(L, [...keys, new Float32Array(G * D)], [...values, new Float32Array(G * D)]);
      const out = decode(L, query);
      for (let h = 0; h < G; h++) for (let i = 0; i < n; i++) if (out[h * D + i]! > 0) hits[i]!++;
      pool.unregister(L.arena);
    }
    const draws = layers * G;
    u.forEach((ui, i) => {
      const f = hits[i]! / draws, sigma = Math.sqrt(Math.max(ui * (1 - ui), 1e-4) / draws);
      assert.ok(Math.abs(f - ui) < 4.5 * sigma + 1e-3, `key ${i} (cos ${cosTarget[i]!.toFixed(2)}): u = ${ui.toFixed(4)}, engine frequency ${f.toFixed(4)}`);
    });
    assert.ok(u[0]! < 0.1 && u[n - 1]! > 0.9, `u spans ${u[0]} … ${u[n - 1]}`);
  });

  test('bad parameters are rejected with the name of the parameter', () => {
    assert.throws(() => makeLayer(pool, 'magicpig:K=40', {}), /parameter K/);
    assert.throws(() => makeLayer(pool, 'magicpig:Q=1', {}), /no parameter "Q"/);
    assert.throws(() => makeLayer(pool, 'magicpig:dense=a', {}), /dense layers/);
  });
});

/** Each table of each KV head: offsets monotone, ids = [start, hashedEnd) exactly once. */
function checkTables(L: Layer, mp: MagicPigAttention): void {
  const t = mp.tables, { K, L: nt, capacity: cap, deltaCap: dcap, kvHeads } = t.d, NB = 1 << K;
  const mem = L.arena.memory.buffer;
  for (let g = 0; g < kvHeads; g++) {
    for (let l = 0; l < nt; l++) {
      const seen = new Uint8Array(t.hashedEnd);
      for (const [offP, idsP, stride, n] of [[t.mainOff, t.mainIds, cap, t.mainCount], [t.deltaOff, t.deltaIds, dcap, t.deltaCount]] as const) {
        const off = new Uint32Array(mem, offP + (g * nt + l) * (NB + 1) * 4, NB + 1), ids = new Uint32Array(mem, idsP + (g * nt + l) * stride * 4, stride);
        assert.equal(off[NB], n);
        for (let b = 0; b < NB; b++) assert.ok(off[b]! <= off[b + 1]!);
        for (let i = 0; i < n; i++) seen[ids[i]!]++;
      }
      for (let s = 0; s < t.hashedEnd; s++) assert.equal(seen[s], s >= t.start ? 1 : 0, `head ${g} table ${l} token ${s}`);
    }
  }
}
