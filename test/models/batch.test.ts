// Many sequences at once: a sequence's logits do not depend on what else is in the batch, for every
// attention backend; KV pages come back after finish and release; a sequence started from another's
// prefix (shared pages, copy-on-write) gives the logits of a fresh prefill; running out of KV memory
// or sequence slots is a clear error that leaves every cache as it was.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeTestCheckpoint } from '../../src/testing/checkpoints.js';
import { randomIds } from '../../src/testing/random-model.js';
import { loadModel, type LoadOptions } from '../../src/models/load.js';
import type { LlamaModel } from '../../src/models/llama.js';
import { KVPagePool } from '../../src/attention/kv-pages.js';
import type { BatchItem, LanguageModel, ModelCache } from '../../src/models/types.js';

const dir = mkdtempSync(join(tmpdir(), 'tessera-batch-'));
const path = writeTestCheckpoint(join(dir, 'llama3-tiny'), 'llama3-tiny', { formats: ['hf'] }).hfDir!;
test.after(() => rmSync(dir, { recursive: true, force: true }));

/** max |a − b| / max |b| */
function relErr(a: Float32Array, b: Float32Array): number {
  let d = 0, m = 0;
  for (let i = 0; i < a.length; i++) { d = Math.max(d, Math.abs(a[i]! - b[i]!)); m = Math.max(m, Math.abs(b[i]!)); }
  return d / m;
}
// The f32 matmul kernels accumulate a lone token's dot products (decode) in another order than a
// block of four tokens' (batched rows), so logits agree to rounding, not bit for bit (measured:
// ≤ 2e-6 with an f32 cache); an f16 cache can round a K/V value the other way (measured ≤ 3e-4).
const TOLERANCE = { f32: 1e-5, f16: 1e-3 } as const;

const argmax = (x: Float32Array) => { let b = 0; for (let i = 1; i < x.length; i++) if (x[i]! > x[b]!) b = i; return b; };

interface Plan { prompt: number[]; decode: number; join: number }

// 8 sequences: prompts from 1 to 230 tokens (longer than the 64-row step, so prefills span steps),
// joining at different steps and decoding different numbers of tokens (finishing at different steps).
const PLANS: Plan[] = [
  [5, 6, 0], [130, 3, 1], [64, 8, 0], [230, 1, 2], [1, 5, 3], [77, 7, 1], [150, 2, 0], [33, 4, 4],
].map(([n, decode, join], i) => ({ prompt: randomIds(100 + i, n!, 500), decode: decode!, join: join! }));

/** Every logits row a sequence produces: the prompt's last, then one per decoded (greedy) token. */
function alone(model: LanguageModel, p: Plan): Float32Array[] {
  const cache = model.createCache();
  try {
    const out = [model.forward(p.prompt, cache, { phase: 'prefill' }).slice()];
    for (let i = 0; i < p.decode; i++) out.push(model.forward([argmax(out.at(-1)!)], cache, { phase: 'decode' }).slice());
    return out;
  } finally { cache.release(); }
}

/** The same sequences stepped together: each step holds the prompts of those joining and one token
 *  of every sequence decoding, as a continuous-batching scheduler would. */
function together(model: LanguageModel, plans: Plan[]): Float32Array[][] {
  const out: Float32Array[][] = plans.map(() => []);
  const caches: (ModelCache | undefined)[] = plans.map(() => undefined);
  for (let step = 0; plans.some((p, i) => out[i]!.length < p.decode + 1); step++) {
    const items: BatchItem[] = [], who: number[] = [];
    plans.forEach((p, i) => {
      const got = out[i]!.length;
      if (step < p.join || got === p.decode + 1) return;
      if (got === 0) { caches[i] = model.createCache(); items.push({ cache: caches[i]!, tokens: p.prompt, phase: 'prefill' }); }
      else items.push({ cache: caches[i]!, tokens: [argmax(out[i]!.at(-1)!)], phase: 'decode' });
      who.push(i);
    });
    const logits = model.forwardBatch(items);
    who.forEach((i, j) => {
      out[i]!.push(logits[j]!.slice());
      if (out[i]!.length === plans[i]!.decode + 1) caches[i]!.release();     // finished: pages back at once
    });
  }
  return out;
}

const BACKENDS = [
  'dense',
  // small tables so that 60–240-token contexts are really sampled (window 16, every layer sparse)
  'magicpig:K=3,L=12,window=16,sinks=2,threshold=8,dense=none',
  'topk:k=8,window=8,dense=none',
  'quest:budget=0.2,dense=none',
  'streaming:window=24',
  'oracle-sampling:budget=0.1',
];

for (const spec of BACKENDS) {
  test(`batch invariance (${spec}): 8 sequences of 1–230 tokens, mixed prefill/decode, finishing at different steps == each alone`, async () => {
    for (const cacheDType of ['f32', 'f16'] as const) {
      const { model } = await loadModel(path, { threads: 2, contextLength: 256, attention: spec, cacheDType });
      try {
        const ref = PLANS.map((p) => alone(model, p));
        const got = together(model, PLANS);
        let worst = 0;
        got.forEach((rows, i) => {
          assert.equal(rows.length, ref[i]!.length);
          rows.forEach((r, j) => {
            const want = ref[i]![j]!, what = `${spec} ${cacheDType}: sequence ${i} step ${j}`;
            assert.equal(argmax(r), argmax(want), `${what}: greedy token differs in a batch`);
            const err = relErr(r, want);
            worst = Math.max(worst, err);
            assert.ok(err <= TOLERANCE[cacheDType], `${what}: logits differ by ${err.toExponential(2)} (max |Δ| / max |logit|) in a batch`);
          });
        });
        console.log(`# ${spec} ${cacheDType}: largest batch-vs-alone logit difference ${worst.toExponential(2)}`);
        assert.equal((model as LlamaModel).kvPages.used, 0, 'every page returned after the sequences finished');
      } finally { model.dispose(); }
    }
  });
}

test('pages: a released (cancelled) sequence returns its pages at once; shared pages are counted once', async () => {
  const { model } = await loadModel(path, { threads: 1, contextLength: 256 });
  const m = model as LlamaModel;
  try {
    const a = model.createCache(), b = model.createCache();
    model.forward(randomIds(1, 150, 500), a);                     // 3 pages of 64
    model.forward(randomIds(2, 10, 500), b);                      // 1 page
    assert.equal(m.kvPages.used, 4);
    b.release();                                                  // cancelled mid-generation
    assert.equal(m.kvPages.used, 3);
    const c = a.fork(128);                                        // two full pages by reference
    assert.equal(m.kvPages.used, 3);
    model.forward([7], c);                                        // writes into a new third page
    assert.equal(m.kvPages.used, 4);
    a.truncate(64);
    assert.equal(m.kvPages.used, 3);
    a.release(); c.release();
    assert.equal(m.kvPages.used, 0);
    assert.equal(m.kvPages.peak, 4, 'most pages in use at once');
  } finally { model.dispose(); }
});

test('copyCache: private copies of every page (none shared), decoding as the original does', async () => {
  const { model } = await loadModel(path, { threads: 1, contextLength: 256 });
  const m = model as LlamaModel;
  try {
    const prompt = randomIds(3, 150, 500);
    const ref = alone(model, { prompt, decode: 3, join: 0 });
    const a = model.createCache();
    const first = argmax(model.forward(prompt, a, { phase: 'prefill' }));
    assert.equal(m.kvPages.used, 3);
    const b = m.copyCache(a), c = m.copyCache(a);
    assert.equal(b.length, 150);
    assert.equal(m.kvPages.used, 9, 'three pages of its own for each copy');
    a.release();
    assert.equal(m.kvPages.used, 6, 'the copies do not hold the original\'s pages');
    for (const copy of [b, c]) {                                  // each decodes the original's rows
      const rows = [model.forward([first], copy, { phase: 'decode' }).slice()];
      for (let i = 1; i < 3; i++) rows.push(model.forward([argmax(rows.at(-1)!)], copy, { phase: 'decode' }).slice());
      rows.forEach((r, j) => assert.deepEqual(r, ref[j + 1], `copy, decoded row ${j}`));
    }
    b.release(); c.release();
    assert.equal(m.kvPages.used, 0);
    assert.throws(() => m.copyCache(b), /released/);
  } finally { model.dispose(); }
});

test('the page pool reuses freed pages first, so the pages ever written are ids 0 … peak − 1', () => {
  const pool = new KVPagePool(8);
  const first = [pool.alloc(), pool.alloc(), pool.alloc()];
  assert.deepEqual(first, [0, 1, 2]);
  pool.release(1); pool.release(0);
  assert.equal(pool.peak, 3);
  const again = [pool.alloc(), pool.alloc()];
  assert.deepEqual(again.sort(), [0, 1]);
  assert.equal(pool.peak, 3, 'reusing freed pages does not raise the peak');
  assert.equal(pool.alloc(), 3);
  assert.equal(pool.peak, 4);
});

for (const spec of ['dense', 'magicpig:K=3,L=12,window=16,sinks=2,dense=none', 'quest:budget=0.2,dense=none']) {
  test(`prefix sharing (${spec}): a sequence forked from another's prefix == a fresh prefill; the parent is unaffected (copy-on-write)`, async () => {
    const { model } = await loadModel(path, { threads: 2, contextLength: 256, attention: spec });
    try {
      const prompt = randomIds(5, 170, 500), tail = randomIds(6, 30, 500);
      const fresh = alone(model, { prompt: [...prompt.slice(0, 100), ...tail], decode: 3, join: 0 });
      const parentRef = alone(model, { prompt, decode: 3, join: 0 });
      for (const cut of [100, 64, 128]) {                          // partial last page, and page-aligned cuts
        const parent = model.createCache();
        const parentRows = [model.forward(prompt, parent, { phase: 'prefill' }).slice()];
        const child = parent.fork(cut);
        assert.equal(child.length, cut);
        const feed = cut <= 100 ? [...prompt.slice(cut, 100), ...tail] : tail;
        const rows = [model.forward(feed, child, { phase: 'prefill' }).slice()];
        for (let i = 0; i < 3; i++) rows.push(model.forward([argmax(rows.at(-1)!)], child, { phase: 'decode' }).slice());
        if (cut <= 100) rows.forEach((r, j) => assert.deepEqual(r, fresh[j], `${spec}: fork at ${cut}, row ${j}`));
        // the parent decodes after the child wrote into their shared partial page: unchanged
        for (let i = 0; i < 3; i++) parentRows.push(model.forward([argmax(parentRows.at(-1)!)], parent, { phase: 'decode' }).slice());
        parentRows.forEach((r, j) => assert.deepEqual(r, parentRef[j], `${spec}: parent after fork at ${cut}, row ${j}`));
        parent.release(); child.release();
      }
      assert.equal((model as LlamaModel).kvPages.used, 0);
    } finally { model.dispose(); }
  });
}

test('out of KV memory: a clear error, the caches as they were, and the model still works', async () => {
  const opts: LoadOptions = { threads: 1, contextLength: 256, kvBudget: 128 };    // 2 pages
  const { model } = await loadModel(path, opts);
  const m = model as LlamaModel;
  try {
    const a = model.createCache(), b = model.createCache();
    model.forward(randomIds(1, 70, 500), a);                      // 2 pages
    assert.throws(() => model.forwardBatch([{ cache: b, tokens: randomIds(2, 10, 500) }]), /out of KV memory: all 2 pages \(128 tokens\).*kvBudget/);
    assert.equal(b.length, 0);
    assert.equal(m.kvPages.used, 2);
    assert.throws(() => model.forward(randomIds(3, 60, 500), a), /out of KV memory/);
    assert.equal(a.length, 70);
    assert.equal(m.kvPages.used, 2, 'a failed step gives back the pages it took');
    a.release();
    const want = (() => { const c = model.createCache(); try { return model.forward([1, 2, 3], c).slice(); } finally { c.release(); } })();
    assert.deepEqual(model.forward([1, 2, 3], b), want);
  } finally { model.dispose(); }
  await assert.rejects(loadModel(path, { ...opts, kvBudget: '1 parsec' }), /kvBudget must be a number of tokens/);
  await assert.rejects(loadModel(path, { ...opts, parallel: 0 }), /parallel must be an integer/);
});

test('sequence slots: past `parallel` live caches createCache says what to do; a release frees a slot', async () => {
  const { model } = await loadModel(path, { threads: 1, contextLength: 64, parallel: 2 });
  try {
    const a = model.createCache();
    model.createCache();
    assert.throws(() => model.createCache(), /all 2 sequence slots are in use.*release.*--parallel/);
    a.release();
    model.forward([1], model.createCache());
  } finally { model.dispose(); }
});

test('the last layer runs past attention only for rows whose logits are wanted: a prompt\'s last logits == its row of logits \'all\'', async () => {
  // 150 tokens: three steps of at most 64 rows, the first two with no wanted row (their last layer
  // stops after storing K/V), the third with one (the prompt's last). The q8_0 x4 kernels give a row
  // the same bits whatever the number of rows; the f32 kernel orders a lone row's sums otherwise.
  for (const quantize of ['q8_0', undefined] as const) {
    const { model } = await loadModel(path, { threads: 2, contextLength: 256, quantize });
    try {
      const V = model.vocabSize, prompt = randomIds(11, 150, V), what = quantize ?? 'f32';
      const a = model.createCache(), b = model.createCache();
      const last = Float32Array.from(model.forward(prompt, a, { phase: 'prefill' }));
      const all = model.forward(prompt, b, { phase: 'prefill', logits: 'all' });
      const row = all.subarray((prompt.length - 1) * V, prompt.length * V);
      if (quantize) assert.deepEqual(last, Float32Array.from(row), `${what}: the last row's logits`);
      else assert.ok(relErr(last, row) <= TOLERANCE.f32, `${what}: logits differ by ${relErr(last, row).toExponential(2)}`);
      // the pruned rows' K/V were stored all the same: both caches decode alike
      const next = argmax(last);
      const da = model.forward([next], a), db = model.forward([next], b);
      if (quantize) assert.deepEqual(Float32Array.from(da), Float32Array.from(db), `${what}: the next step's logits`);
      else assert.ok(relErr(da, db) <= TOLERANCE.f32, `${what}: next-step logits differ by ${relErr(da, db).toExponential(2)}`);
      a.release(); b.release();
    } finally { model.dispose(); }
  }
});

test('q8_0: a 5-token verification step and 4 batched sequences give exactly the logits of one-token decoding', async () => {
  // The x4 kernels do each row's arithmetic the same way whatever the number of rows, so
  // speculative verification and batching cannot flip an int8 activation rounding and drift.
  const { model } = await loadModel(path, { threads: 2, contextLength: 256, quantize: 'q8_0' });
  try {
    const V = model.vocabSize, prompt = randomIds(3, 40, V), next = [5, 9, 2, 7, 11];
    const plainCache = model.createCache();
    model.forward(prompt, plainCache);
    const plain = next.map((t) => Float32Array.from(model.forward([t], plainCache)));
    const verify = model.createCache();
    model.forward(prompt, verify);
    const rows = model.forward(next, verify, { logits: 'all' });
    for (let i = 0; i < next.length; i++) assert.deepEqual(rows.subarray(i * V, (i + 1) * V), plain[i], `verification row ${i}`);
    const caches = [0, 1, 2, 3].map(() => { const c = model.createCache(); model.forward(prompt, c); return c; });
    const batched = model.forwardBatch(caches.map((cache) => ({ cache, tokens: [next[0]!], logits: 'last' as const })));
    for (const [i, row] of batched.entries()) assert.deepEqual(row, plain[0], `batch row ${i}`);
  } finally {
    model.dispose();
  }
});
