// The baseline backends (topk, quest, streaming, oracle-sampling, snapkv) against the float64 dense
// reference: dense-equivalent settings equal dense; small budgets attend exactly the keys their rule
// picks (computed independently here); oracle sampling is unbiased; each reports the keys it read.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ThreadPool } from '../../src/runtime/pool.js';
import { decode, denseRef, makeLayer, maxAbsDiff, realisticKV, relError, storeRows, type Layer } from './harness.js';

let pool: ThreadPool, refPool: ThreadPool;
before(async () => {
  pool = await ThreadPool.create({ threads: 2, kernels: 'wasm' });
  refPool = await ThreadPool.create({ threads: 1, kernels: 'reference' });
});
after(() => { pool.dispose(); refPool.dispose(); });

function setup(p: ThreadPool, spec: string, n: number, dtype: 'f32' | 'f16' = 'f32') {
  const L = makeLayer(p, spec, { capacity: 1024, dtype });
  const kv = realisticKV(n, n + 1, L.d.kvHeads, L.d.headDim);
  storeRows(L, kv.keys, kv.values);
  return { L, q: kv.query(L.d.heads) };
}

/** float64 scores of head h over every stored key. */
function scores(L: Layer, q: Float32Array, h: number): number[] {
  const { heads: H, kvHeads: G, headDim: D } = L.d, g = Math.floor(h / (H / G));
  return L.keys.map((k) => { let a = 0; for (let d = 0; d < D; d++) a += q[h * D + d]! * k[g * D + d]!; return a; });
}

describe('baselines', () => {
  const equivalent = ['topk:k=100000', 'topk:fraction=1,window=0,sinks=0', 'streaming:window=5000', 'quest:budget=1'];
  for (const spec of equivalent) {
    for (const [p, dtype, kind] of [[() => pool, 'f32', 'wasm'], [() => pool, 'f16', 'wasm'], [() => refPool, 'f32', 'reference']] as const) {
      test(`${spec} equals dense (${kind}, ${dtype})`, () => {
        const { L, q } = setup(p(), spec, 300, dtype);
        assert.ok(maxAbsDiff(decode(L, q), denseRef(L, q)) < 2e-5);
      });
    }
  }

  test('topk:k=7 attends sinks + window + the 7 best-scoring middle keys of each head', () => {
    const { L, q } = setup(pool, 'topk:k=7,sinks=4,window=16', 400);
    const n = L.keys.length;
    const ref = denseRef(L, q, (h) => {
      const s = scores(L, q, h), mid = Array.from({ length: n - 20 }, (_, i) => i + 4).sort((a, b) => s[b]! - s[a]!);
      return [0, 1, 2, 3, ...mid.slice(0, 7), ...Array.from({ length: 16 }, (_, i) => n - 16 + i)];
    });
    assert.ok(maxAbsDiff(decode(L, q), ref) < 2e-5);
  });

  test('streaming:sinks=2,window=10 attends exactly those keys', () => {
    const { L, q } = setup(pool, 'streaming:sinks=2,window=10', 200);
    const n = L.keys.length;
    assert.ok(maxAbsDiff(decode(L, q), denseRef(L, q, () => [0, 1, ...Array.from({ length: 10 }, (_, i) => n - 10 + i)])) < 2e-5);
  });

  test('streaming splits its heads over the thread pool: the same bits as the one-head-at-a-time loop (topk:k=0, the same keys)', async () => {
    const split = await ThreadPool.create({ threads: 2, kernels: 'wasm', minSplitBytes: 0 });   // every job split
    try {
      for (const dtype of ['f32', 'f16'] as const) {
        const dims = { capacity: 1024, dtype, heads: 8, kvHeads: 2, headDim: 64 };
        const a = makeLayer(split, 'streaming:sinks=4,window=200', dims), b = makeLayer(split, 'topk:k=0,sinks=4,window=200', dims);
        const kv = realisticKV(17, 600, 2, 64);
        storeRows(a, kv.keys, kv.values);
        storeRows(b, kv.keys, kv.values);
        const q = kv.query(8);
        assert.deepEqual(decode(a, q), decode(b, q), `${dtype}: every head, every bit`);
        assert.equal((a.att as unknown as { lastTouched: number }).lastTouched, 204);
        assert.equal((b.att as unknown as { lastTouched: number }).lastTouched, 204);
        const n = a.keys.length;
        assert.ok(maxAbsDiff(decode(a, q), denseRef(a, q, () => [0, 1, 2, 3, ...Array.from({ length: 200 }, (_, i) => n - 200 + i)])) < 2e-5);
      }
    } finally { split.dispose(); }
  });

  test('snapkv splits its heads over the thread pool, each KV head\'s list chosen once: the same bits on one thread and split', async () => {
    const split = await ThreadPool.create({ threads: 2, kernels: 'wasm', minSplitBytes: 0 }), one = await ThreadPool.create({ threads: 1, kernels: 'wasm' });
    try {
      const n = 600, obs = 8, dims = { capacity: 1024, heads: 8, kvHeads: 2, headDim: 64 };
      const outs = [split, one].map((p) => {
        const L = makeLayer(p, 'snapkv:budget=72,window=8', dims), { heads: H, headDim: D } = L.d, qDim = H * D;
        const kv = realisticKV(23, n + 1, L.d.kvHeads, D);
        storeRows(L, kv.keys.slice(0, n), kv.values.slice(0, n));
        for (let i = 0; i < obs; i++) L.arena.f32(L.q + i * qDim * 4, qDim).set(kv.query(H));
        L.arena.i32(L.pos, obs).set(Array.from({ length: obs }, (_, i) => n - obs + i));
        L.att.attend(L.q, L.pos, L.out, obs, n, 'prefill');
        storeRows(L, kv.keys.slice(n, n + 1), kv.values.slice(n, n + 1));
        return decode(L, kv.query(H));
      });
      assert.deepEqual(outs[0], outs[1]);
    } finally { split.dispose(); one.dispose(); }
  });

  test('quest:budget=0.1 attends the top pages by Σ max(q·min, q·max) before the window, and the window; page bounds count as keys', () => {
    const { L, q } = setup(pool, 'quest:budget=0.1', 330);
    const n = L.keys.length, { heads: H, kvHeads: G, headDim: D } = L.d, keep = Math.ceil(0.1 * n / 16);
    // the prompt is [0, n − 1); the pages from the one holding its 64th-last token on are always attended
    const tail = Math.floor((n - 1 - 64) / 16) * 16, pages = tail / 16;
    const ref = denseRef(L, q, (h) => {
      const g = Math.floor(h / (H / G));
      const score = Array.from({ length: pages }, (_, pg) => {
        let s = 0;
        for (let d = 0; d < D; d++) {
          const col = L.keys.slice(pg * 16, pg * 16 + 16).map((k) => k[g * D + d]!);
          s += Math.max(q[h * D + d]! * Math.min(...col), q[h * D + d]! * Math.max(...col));
        }
        return s;
      });
      const top = Array.from({ length: pages }, (_, i) => i).sort((a, b) => score[b]! - score[a]! || a - b).slice(0, keep).sort((a, b) => a - b);
      return [...top.flatMap((pg) => Array.from({ length: 16 }, (_, i) => pg * 16 + i)), ...Array.from({ length: n - tail }, (_, i) => tail + i)];
    });
    assert.ok(maxAbsDiff(decode(L, q), ref) < 2e-5);
    assert.equal((L.att as unknown as { lastTouched: number }).lastTouched, keep * 16 + (n - tail) + 2 * pages);
    // generated tokens stay in the attended tail: the window does not slide past the prompt
    const kv = realisticKV(7, 3, G, D);
    storeRows(L, kv.keys, kv.values);
    decode(L, q);
    assert.equal((L.att as unknown as { lastTouched: number }).lastTouched, Math.ceil(0.1 * (n + 3) / 16) * 16 + (n + 3 - tail) + 2 * pages);
  });

  test('snapkv:budget=40,window=8 keeps per KV head the 32 prompt keys the last 8 prompt queries attend to most (pooled, GQA-summed), the window and every generated key', () => {
    const n = 300, obs = 8, keep = 32;
    const L = makeLayer(pool, `snapkv:budget=${keep + obs},window=${obs}`, { capacity: 1024 });
    const { heads: H, kvHeads: G, headDim: D } = L.d, qDim = H * D;
    const kv = realisticKV(11, n + 2, G, D);
    storeRows(L, kv.keys.slice(0, n), kv.values.slice(0, n));
    // the prompt's last 8 queries, as the prefill sends them
    const qs = Array.from({ length: obs }, () => kv.query(H));
    qs.forEach((qr, i) => L.arena.f32(L.q + i * qDim * 4, qDim).set(qr));
    L.arena.i32(L.pos, obs).set(Array.from({ length: obs }, (_, i) => n - obs + i));
    L.att.attend(L.q, L.pos, L.out, obs, n, 'prefill');
    // independent float64 selection
    const prefix = n - obs;
    const chosen = Array.from({ length: G }, (_, g) => {
      const acc = new Float64Array(prefix);
      qs.forEach((qr, i) => {
        for (let h = g * (H / G); h < (g + 1) * (H / G); h++) {
          const s = L.keys.slice(0, n - obs + i + 1).map((k) => { let a = 0; for (let d = 0; d < D; d++) a += qr[h * D + d]! * k[g * D + d]!; return a / Math.sqrt(D); });
          const m = Math.max(...s), z = s.reduce((t, x) => t + Math.exp(x - m), 0);
          for (let j = 0; j < prefix; j++) acc[j] += Math.exp(s[j]! - m) / z;
        }
      });
      const pooled = Array.from({ length: prefix }, (_, j) => { let t = 0; for (let k = Math.max(0, j - 2); k <= Math.min(prefix - 1, j + 2); k++) t += acc[k]!; return t / 5; });
      return Array.from({ length: prefix }, (_, j) => j).sort((a, b) => pooled[b]! - pooled[a]! || a - b).slice(0, keep).sort((a, b) => a - b);
    });
    const expect = (len: number) => (h: number) => [...chosen[Math.floor(h / (H / G))]!, ...Array.from({ length: len - prefix }, (_, i) => prefix + i)];
    storeRows(L, kv.keys.slice(n, n + 2), kv.values.slice(n, n + 2));               // two generated tokens
    const q = kv.query(H);
    assert.ok(maxAbsDiff(decode(L, q), denseRef(L, q, expect(n + 2))) < 2e-5);
    assert.equal((L.att as unknown as { lastTouched: number }).lastTouched, keep + obs + 2);
    assert.notDeepEqual(chosen[0], chosen[1], 'each KV head chooses its own keys');
    // a speculative rollback (cut after the prompt) keeps the selection; a cut into the prompt drops it
    L.att.truncate(n + 1); L.keys.length = n + 1; L.values.length = n + 1;
    assert.ok(maxAbsDiff(decode(L, q), denseRef(L, q, expect(n + 1))) < 2e-5);
    L.att.truncate(n - 100); L.keys.length = n - 100; L.values.length = n - 100;
    storeRows(L, kv.keys.slice(n - 100, n - 99), kv.values.slice(n - 100, n - 99));
    decode(L, q);
    assert.equal((L.att as unknown as { lastTouched: number }).lastTouched, keep + obs + 1, 'a new prompt of 200 keys, no queries seen: the budget of most recent keys, and the generated one');
  });

  test('oracle sampling is unbiased: the mean over many draws approaches dense', () => {
    const { L, q } = setup(pool, 'oracle-sampling:samples=8,seed=3', 300);
    const dense = denseRef(L, q), mean = new Float64Array(dense.length);
    let single = 0;
    const draws = 600;
    for (let i = 0; i < draws; i++) {
      const o = decode(L, q);
      single += relError(o, dense) / draws;
      for (let j = 0; j < o.length; j++) mean[j] += o[j]! / draws;
    }
    const err = relError(mean, dense);
    assert.ok(err < single / 8, `mean-of-draws error ${err} vs single-draw ${single}`); // ~1/sqrt(600) ≈ 1/24
  });

  test('oracle sampling counts the distinct keys it drew', () => {
    // q = 0: every key equally likely, so 200 draws over 300 keys hit 300·(1 − (299/300)^200) ≈ 146 distinct (sd ≈ 5)
    const { L } = setup(pool, 'oracle-sampling:samples=200,seed=5', 299);
    decode(L, new Float32Array(L.d.heads * L.d.headDim));
    const touched = (L.att as unknown as { lastTouched: number }).lastTouched;
    assert.ok(touched > 126 && touched < 166, `${touched} distinct keys`);
  });

  test('unknown parameters are rejected', () => {
    assert.throws(() => makeLayer(pool, 'topk:K=3', {}), /no parameter "K"/);
    assert.throws(() => makeLayer(pool, 'quest:budget=2', {}), /budget/);
  });
});
