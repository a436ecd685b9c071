// settledMemory repeats "idle, then collect" until RSS stops moving, and reports V8's spaces.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MAX_SETTLE_ROUNDS, SETTLED_ROUNDS, SETTLED_RSS_BYTES, rssTolerance, settledMemory } from '../../src/testing/settled-memory.js';

test('a settled measurement repeats idle-and-collect until SETTLED_ROUNDS measurements agree', async () => {
  const m = await settledMemory(20);
  assert.ok(m.rounds >= SETTLED_ROUNDS && m.rounds <= MAX_SETTLE_ROUNDS, `rounds ${m.rounds}`);
  assert.ok(m.settled, `an idle test process did not settle in ${MAX_SETTLE_ROUNDS} rounds`);
  for (const space of ['new_space', 'old_space', 'code_space']) {
    const s = m.spaces[space];
    assert.ok(s !== undefined && s.committed > 0 && s.resident <= s.committed + 2 ** 20, `${space}: ${JSON.stringify(s)}`);
  }
  assert.ok(m.heapUsed > 0 && m.heapUsed <= m.heapCommitted && m.rss > m.heapUsed);
  if (m.rssParts !== undefined) {                         // Linux: the parts add up to RSS (read moments apart)
    const sum = m.rssParts.brk + m.rssParts.anonymous + m.rssParts.file;
    assert.ok(Math.abs(sum - m.rss) < 4 * 2 ** 20 && m.rssParts.brk > 0 && m.rssParts.file > 0, JSON.stringify({ ...m.rssParts, rss: m.rss }));
  }
});

test('idle 0 is one collection, measured at once, and does not claim to be settled', async () => {
  const m = await settledMemory(0);
  assert.equal(m.rounds, 1);
  assert.equal(m.settled, false);
});

test('the tolerance is twice the larger of the noise floor and the settling criterion', () => {
  const at = (rss: number) => ({ rss } as Parameters<typeof rssTolerance>[0]);
  const MiB = 2 ** 20;
  assert.deepEqual(rssTolerance(at(80 * MiB), [at(80.1 * MiB), at(79.9 * MiB)]).tolerance, 2 * SETTLED_RSS_BYTES);
  const noisy = rssTolerance(at(80 * MiB), [at(80.2 * MiB), at(78.5 * MiB), at(80 * MiB)]);
  assert.equal(noisy.noiseFloor, 1.5 * MiB);                // the farthest repeat, below or above
  assert.equal(noisy.tolerance, 3 * MiB);
  assert.equal(rssTolerance(at(80 * MiB), []).tolerance, 2 * SETTLED_RSS_BYTES);
});
