// Batchers: rows are windows of the token array, an epoch never repeats a window, a restored cursor
// continues with the very same batches (across epoch ends), the token cache returns what it stored.
// Corpora: deterministic split at document boundaries, cleaning of line endings.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sequentialBatches, TaskBatcher, TokenBatcher, tokenizeCached, tokenizeDocuments, type Batch } from '../../src/data/batches.js';
import { associativeRecall } from '../../src/data/synthetic.js';
import { cleanText, loadCorpus, splitDocuments } from '../../src/data/corpora.js';

const arange = (n: number) => Int32Array.from({ length: n }, (_, i) => i);

test('TokenBatcher: rows are shifted windows, no window twice in an epoch, epochs differ', () => {
  const tokens = arange(1000);
  const B = 4, T = 16;
  const b = new TokenBatcher(tokens, { batchSize: B, seqLen: T, seed: 1 });
  const perEpoch = b.batchesPerEpoch;
  const starts: number[][] = [[]];
  for (let s = 0; s < 3 * perEpoch + 2; s++) {
    const batch = b.next();
    if (b.cursor().step === 1 && s > 0) starts.push([]);
    for (let r = 0; r < B; r++) {
      const row = batch.input.subarray(r * T, r * T + T);
      for (let t = 0; t < T; t++) {
        assert.equal(row[t], row[0] + t); // a contiguous window …
        assert.equal(batch.target[r * T + t], row[t] + 1); // … and its next tokens
      }
      starts.at(-1)!.push(row[0]);
    }
  }
  for (const epoch of starts) assert.equal(new Set(epoch).size, epoch.length);
  assert.equal(starts[0].length, perEpoch * B);
  assert.notDeepEqual(starts[0], starts[1]);
  assert.ok(new Set(starts[0].map((s) => s % T)).size === 1 && new Set(starts[1].map((s) => s % T)).size === 1);
});

test('TokenBatcher: a restored cursor gives the same batches; same seed same order; a foreign cursor is refused', () => {
  const tokens = arange(700);
  const opts = { batchSize: 3, seqLen: 10, seed: 42 };
  const a = new TokenBatcher(tokens, opts);
  const before: Batch[] = [];
  for (let i = 0; i < 17; i++) before.push(a.next());
  const saved = JSON.parse(JSON.stringify(a.cursor()));
  const rest = Array.from({ length: 40 }, () => a.next()); // crosses epoch ends (22 batches an epoch at most)
  const b = new TokenBatcher(tokens, opts);
  b.restore(saved);
  for (const r of rest) assert.deepEqual(b.next(), r);
  const c = new TokenBatcher(tokens, opts);
  for (const r of before) assert.deepEqual(c.next(), r);
  const d = new TokenBatcher(tokens, { ...opts, seed: 43 });
  assert.notDeepEqual(d.next(), before[0]);
  assert.throws(() => new TokenBatcher(arange(600), opts).restore(saved), /other data or options/);
  assert.throws(() => new TokenBatcher(arange(20), opts), /fewer than batchSize/);
});

test('sequentialBatches covers every window once, in order', () => {
  const tokens = arange(105);
  const rows: number[] = [];
  for (const b of sequentialBatches(tokens, 4, 10)) {
    for (let r = 0; r < b.batchSize; r++) { rows.push(b.input[r * 10]); assert.equal(b.target[r * 10 + 9], b.input[r * 10] + 10); }
  }
  assert.deepEqual(rows, [0, 10, 20, 30, 40, 50, 60, 70, 80, 90]);
});

test('TaskBatcher: answers under the mask, padding masked out, cursor resume', () => {
  const make = (seed: number) => associativeRecall({ seed, vocabSize: 64, firstId: 1, length: 20, numQueries: 2 });
  const opts = { batchSize: 2, seqLen: 24, seed: 7, padId: 0 };
  const a = new TaskBatcher(make, opts);
  const first = a.next();
  for (let r = 0; r < 2; r++) {
    const task = a.example(r);
    const masked = [...first.mask.subarray(r * 24, r * 24 + 24).keys()].filter((t) => first.mask[r * 24 + t] === 1);
    assert.deepEqual(masked, Array.from(task.answerPositions, (p) => p - 1));
    assert.deepEqual(masked.map((t) => first.target[r * 24 + t]), Array.from(task.target));
    assert.equal(first.input[r * 24 + 22], 0); // padding
  }
  a.next();
  const saved = JSON.parse(JSON.stringify(a.cursor()));
  const third = a.next();
  const b = new TaskBatcher(make, opts);
  b.restore(saved);
  assert.deepEqual(b.next(), third);
  assert.throws(() => new TaskBatcher(make, { ...opts, seqLen: 10 }).next(), /more than seqLen/);
});

test('tokenizeCached: computes once, reads back the same ids, recomputes a damaged file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-data-test-'));
  try {
    let calls = 0;
    const encode = (s: string) => { calls++; return Array.from(s, (c) => c.charCodeAt(0)); };
    const docs = [{ text: 'hello' }, { text: 'wörld' }];
    const opts = { corpusName: 'toy', tokenizerJson: { model: 'x' }, documents: docs, encode, eotId: 999, cacheDir: dir };
    const ids = tokenizeCached(opts);
    assert.deepEqual(Array.from(ids), [...'hello'].map((c) => c.charCodeAt(0)).concat(999, ...[...'wörld'].map((c) => c.charCodeAt(0)), 999));
    assert.deepEqual(ids, tokenizeDocuments(docs, encode, 999));
    calls = 0;
    assert.deepEqual(tokenizeCached(opts), ids);
    assert.equal(calls, 0);
    tokenizeCached({ ...opts, tokenizerJson: { model: 'y' } }); // another tokenizer, another file
    assert.equal(calls, 2);
    const files = readdirSync(dir);
    assert.equal(files.length, 2);
    for (const f of files) writeFileSync(join(dir, f), 'garbage');
    calls = 0;
    assert.deepEqual(tokenizeCached(opts), ids);
    assert.equal(calls, 2);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('corpora: validation is the shortest suffix of documents with ≥ 5% of the characters', () => {
  for (const name of ['moby-dick', 'sotu'] as const) {
    const c = loadCorpus(name);
    const chars = (ds: { text: string }[]) => ds.reduce((n, d) => n + d.text.length, 0);
    const total = chars(c.documents);
    assert.deepEqual([...c.train, ...c.validation], c.documents);
    assert.ok(chars(c.validation) >= 0.05 * total);
    assert.ok(chars(c.validation.slice(1)) < 0.05 * total);
    assert.equal(new Set(c.documents.map((d) => d.id)).size, c.documents.length);
    assert.ok(c.documents.every((d) => !d.text.includes('\r') && d.text === d.text.trimEnd()));
  }
  const moby = loadCorpus('moby-dick');
  assert.ok(moby.documents[3].text.startsWith('CHAPTER 1. Loomings.\n\nCall me Ishmael.'));
  assert.equal(moby.documents.length, 139);
  assert.equal(cleanText('\uFEFFa\r\nb\rc\n\n  '), 'a\nb\nc');
  const docs = [{ id: 'a', text: 'x'.repeat(90) }, { id: 'b', text: 'x'.repeat(6) }, { id: 'c', text: 'x'.repeat(4) }];
  assert.deepEqual(splitDocuments(docs, 0.04).validation.map((d) => d.id), ['c']);
  assert.deepEqual(splitDocuments(docs, 0.05).validation.map((d) => d.id), ['b', 'c']);
  assert.throws(() => splitDocuments(docs, 1.5), /validFraction/);
});
