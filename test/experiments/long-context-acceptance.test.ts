// The acceptance experiment (src/experiments/long-context/acceptance.ts) with every draft kind at a
// tiny size on the shipped models: self-speculation, prompt lookup and the draft model each give
// greedy output token-identical to plain greedy, with the keys each reads attributed to the right
// cache (the target's, none, the draft model's own), and a draft spec that sets γ is refused.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { acceptanceTable, measureAcceptance, pooled, type AcceptanceOptions } from '../../src/experiments/long-context/acceptance.js';
import { SpeculativeMeter } from '../../src/generation/speculative.js';

const base: AcceptanceOptions = {
  model: 'models/long-context', contexts: [256], drafts: [], tasks: ['needle-single', 'most-frequent-name'],
  n: 1, tokens: 12, gamma: 3, temperature: 0, seed: 5, threads: 1,
};
const SELF = 'streaming:sinks=4,window=28', LOOKUP = 'prompt-lookup', MODEL = 'model:models/long-context-draft,attention=streaming:sinks=4,window=28';

test('acceptance: self-speculation, prompt lookup and a draft model, each token-identical to plain greedy', async () => {
  const rows = await measureAcceptance({ ...base, drafts: [SELF, LOOKUP, MODEL] });
  assert.deepEqual(rows.map((r) => [r.draft, r.keysOf]), [[SELF, 'target'], [LOOKUP, 'none'], [MODEL, 'draft model']]);
  for (const r of rows) {
    assert.equal(r.prompts, 2);
    assert.equal(r.identical, 2, `${r.draft}: every greedy speculative run equals plain greedy`);
    assert.ok(r.steps > 0 && r.drafted > 0, `${r.draft} drafted`);
    assert.ok(r.accepted <= r.drafted && r.perPosition.length <= base.gamma);
    assert.ok(r.meanAcceptedLength >= 1 && r.meanAcceptedLength <= base.gamma + 1);
  }
  const [self, lookup, model] = rows as [typeof rows[0], typeof rows[0], typeof rows[0]];
  assert.ok(Number.isNaN(lookup.keysFraction), 'prompt lookup reads no keys');
  // 4 sinks + a 28-token window of a cache near 256 positions (the draft model's one layer; the
  // target's two layers for self-speculation)
  for (const r of [self, model]) assert.ok(r.keysFraction > 0.08 && r.keysFraction < 0.16, `${r.draft}: ${r.keysFraction}`);
  // the draft step's attention is timed for the drafts that read keys: a positive time, none for prompt lookup
  assert.ok(Number.isNaN(lookup.attendMicros));
  for (const r of [self, model]) assert.ok(r.attendMicros > 0 && r.attendMicros < 1e6, `${r.draft}: ${r.attendMicros} µs`);
  const table = acceptanceTable(rows, base.contexts);
  assert.match(table, /`prompt-lookup` \| [\d.]+ \/ [\d.]+ \(–\)/);
  assert.match(table, /window=28` \| [\d.]+ \/ [\d.]+ \([\d.]+% of its own cache, \d+ µs\)/);
  assert.match(table, /`streaming:sinks=4,window=28` \| [\d.]+ \/ [\d.]+ \([\d.]+%, \d+ µs\)/);
});

test('acceptance: γ is the run\'s, not a draft\'s; an unknown draft is refused', async () => {
  await assert.rejects(measureAcceptance({ ...base, drafts: ['prompt-lookup,gamma=2'] }), /sets gamma/);
  await assert.rejects(measureAcceptance({ ...base, drafts: ['lookahead'] }), /unknown draft/);
});

test('acceptance: the per-position rate counts a request that never had position j accepted as 0 there', () => {
  const meter = (records: [number, number][]) => { const m = new SpeculativeMeter(); for (const [d, a] of records) m.record(d, a); return m.stats; };
  // one request accepts 2 of 4 in one of its two drafts, one accepts none, one never drafted
  const p = pooled([meter([[4, 2], [4, 0]]), meter([[4, 0]]), meter([])], 4);
  assert.deepEqual(p.perPosition, [0.25, 0.25, 0, 0]);
  assert.equal(p.acceptanceRate, 2 / 12);
  assert.ok(Math.abs(p.meanAcceptedLength - (1 + 2 / 3)) < 1e-12);
});
