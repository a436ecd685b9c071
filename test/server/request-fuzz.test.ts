// A few hundred cases of the request fuzz (src/testing/request-fuzz.ts; the 10,000-case run and its
// results are in docs/results/request-fuzz.json): every hostile request gets an answer (2xx, a 4xx
// with OpenAI's error shape, or 503 with Retry-After), none a 5xx, a hang or a dropped connection;
// afterwards a valid request is answered as before, KV pages are back to zero and the heap to its
// baseline; the warm-up's end wrote every page of the KV pool. RSS is judged by the long run only: letting it settle takes minutes (settled-memory.ts).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { load } from '../../src/api/index.js';
import { runRequestFuzz } from '../../src/testing/request-fuzz.js';
import { fuzzCase } from '../../src/testing/request-fuzz-cases.js';
import { MODEL } from './harness.js';

test('cases are reproducible from (seed, index) and cover every strategy', () => {
  assert.deepEqual(fuzzCase(3, 17).raw, fuzzCase(3, 17).raw);
  assert.notDeepEqual(fuzzCase(3, 17).raw, fuzzCase(4, 17).raw);
  const kinds = new Set(Array.from({ length: 400 }, (_, i) => fuzzCase(1, i).kind.split(' ')[0]));
  for (const k of ['field', 'nested', 'several', 'truncated', 'deep', 'content-length', 'route', 'key', '/tokenize']) assert.ok(kinds.has(k), `${k} in ${[...kinds].join(', ')}`);
});

test('330 hostile requests in a warm-up and two passes: no 5xx, hang or reset; the same answer to a valid request after; KV pages and heap back to baseline', async () => {
  const t = await load(MODEL, { contextLength: 256, threads: 1, promptCache: 0 });
  try {
    const r = await runRequestFuzz(t, { n: 150, warmup: 30, passes: 2, seed: 5, jobs: 6, settleMs: 0, fillKV: true, compact: true });
    assert.deepEqual(r.failures, []);
    assert.equal(r.outcomes['server-error'] + r.outcomes.hang + r.outcomes.reset, 0);
    assert.ok(r.outcomes.ok > 10 && r.outcomes.refused > 200, JSON.stringify(r.outcomes));
    assert.ok(r.sameAnswer);
    assert.equal(r.kvPages.before, 0);
    assert.equal(r.kvPages.after, 0);
    assert.equal(r.cases, 330);
    assert.deepEqual(r.points, ['cold', 'baseline', 'pass 1', 'pass 2']);
    assert.deepEqual(r.casesAt, [0, 30, 180, 330]);
    assert.equal(r.rssBackToBaseline, false);             // not judged without settling
    assert.ok(r.kvFilled && r.compactingCollection);
    assert.ok(r.kvPeakPages[0]! < r.kvPoolPages, `before any case ${r.kvPeakPages[0]} of ${r.kvPoolPages} pages`);
    assert.deepEqual(r.kvPeakPages.slice(1), [r.kvPoolPages, r.kvPoolPages, r.kvPoolPages], 'the warm-up filled the KV pool');
    assert.equal(r.cpuSeconds.length, 3);
    assert.ok(r.heapMiB.at(-1)! - r.heapMiB[0]! < 8, `heap ${r.heapMiB.join(' → ')} MiB`);
  } finally { t.dispose(); }
});
