// settledMemory repeats "idle, then collect" until RSS stops moving, and reports V8's spaces.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { getHeapSpaceStatistics } from 'node:v8';
import { existsSync, readFileSync } from 'node:fs';
import { MAX_SETTLE_ROUNDS, MIN_SETTLE_ROUNDS, SETTLED_ROUNDS, SETTLED_RSS_BYTES, collectGarbage, residentBytes, rssPartsOf, rssTolerance, settledMemory } from '../../src/testing/settled-memory.js';

test('a settled measurement repeats idle-and-collect until SETTLED_ROUNDS measurements agree', async () => {
  const m = await settledMemory(20);
  assert.ok(m.rounds >= Math.max(SETTLED_ROUNDS, MIN_SETTLE_ROUNDS) && m.rounds <= MAX_SETTLE_ROUNDS, `rounds ${m.rounds}`);
  assert.ok(m.settled, `an idle test process did not settle in ${MAX_SETTLE_ROUNDS} rounds`);
  for (const space of ['new_space', 'old_space', 'code_space']) {
    const s = m.spaces[space];
    assert.ok(s !== undefined && s.committed > 0 && s.resident <= s.committed + 2 ** 20, `${space}: ${JSON.stringify(s)}`);
  }
  assert.ok(m.heapUsed > 0 && m.heapUsed <= m.heapCommitted && m.rss > m.heapUsed);
  if (m.rssParts !== undefined) {                         // Linux: the parts add up to RSS (read moments apart)
    const sum = Object.values(m.rssParts).reduce((a, b) => a + b, 0);
    assert.ok(Math.abs(sum - m.rss) < 4 * 2 ** 20 && m.rssParts.brk > 0 && m.rssParts.file > 0, JSON.stringify({ ...m.rssParts, rss: m.rss }));
  }
});

test('resident bytes are counted page by page: on Linux they equal the sum of /proc/self/smaps', { skip: !existsSync('/proc/self/smaps_rollup') }, () => {
  const sum = () => [...readFileSync('/proc/self/smaps', 'utf8').matchAll(/^Rss:\s+(\d+) kB/gm)].reduce((a, m) => a + Number(m[1]) * 1024, 0);
  const before = sum(), r = residentBytes(), after = sum();
  assert.ok(r >= Math.min(before, after) - 2 ** 20 && r <= Math.max(before, after) + 2 ** 20, `${r} against ${before}, ${after}`);
});

test('idle 0 is one collection, measured at once, and does not claim to be settled', async () => {
  const m = await settledMemory(0);
  assert.equal(m.rounds, 1);
  assert.equal(m.settled, false);
});

test("a compacting collection empties the old-space pages V8's own choice leaves two-thirds free; the next collection is plain again", () => {
  const MiB = 2 ** 20;
  const slack = () => { const s = getHeapSpaceStatistics().find((x) => x.space_name === 'old_space')!; return s.space_size - s.space_used_size; };
  const fragment = () => {                                  // ~20 MiB of small objects in old space, then two of three dropped
    const keep: ({ a: number; b: number; c: number; d: number } | null)[] = Array.from({ length: 300_000 }, (_, i) => ({ a: i, b: i, c: i, d: i }));
    collectGarbage(); collectGarbage();
    for (let i = 0; i < keep.length; i += 3) { keep[i] = null; keep[i + 1] = null; }
    return keep;
  };
  let held = fragment();
  collectGarbage();
  const plain = slack();
  assert.ok(plain > 4 * MiB, `a plain collection left ${(plain / MiB).toFixed(1)} MiB free in old-space pages`);
  collectGarbage(true);
  // What is left is the pages being allocated into (about 1 MiB, more or less with what else this
  // process holds), not the two-thirds-empty pages: well under what the plain collection left.
  const compacted = slack();
  assert.ok(compacted < Math.min(2 * MiB, plain / 4), `after a compacting one ${(compacted / MiB).toFixed(1)} MiB free, after a plain one ${(plain / MiB).toFixed(1)}`);
  held = fragment();
  collectGarbage();
  assert.ok(slack() > 4 * MiB, `the collection after a compacting one compacts too: ${(slack() / MiB).toFixed(1)} MiB free`);
  assert.equal(held.length, 300_000);
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

test('anonymous mappings are told apart by shape: compiled code, malloc arenas, Wasm memories, thread stacks, the rest', () => {
  // one mapping per line of /proc/PID/smaps's header format, each with its Rss line
  const map = (range: string, perms: string, rssKiB: number, name = '') => `${range} ${perms} 00000000 00:00 0 ${name}\nSize: 4 kB\nRss: ${rssKiB} kB\n`;
  const smaps = [
    map('00400000-00b6f000', 'r--p', 5000, '/usr/bin/node'),
    map('3398d000-33e66000', 'rw-p', 4000, '[heap]'),
    map('3279cf9c0000-3279cfa00000', 'rw-p', 256),                            // a V8 page
    map('3279cfa00000-3279cfa3c000', 'rwxp', 240),                            // a V8 code page
    map('7f6a84000000-7f6a84220000', 'rw-p', 1000),                            // a Wasm memory: 2 MiB + its 10 GiB guard
    map('7f6a84220000-7f6d04000000', '---p', 0),
    map('7f7184000000-7f71845f4000', 'rw-p', 3000),                            // an arena: 64 MiB-aligned, 64 MiB in all
    map('7f71845f4000-7f7188000000', '---p', 0),
    map('7f718c000000-7f7190000000', 'rw-p', 700),                             // an arena grown to its full 64 MiB
    map('7f7190000000-7f7190100000', 'rw-p', 50),                              // aligned but not 64 MiB in all: other
    map('7f719afff000-7f719b000000', '---p', 0),                               // a thread stack above its guard page
    map('7f719b000000-7f719b800000', 'rw-p', 20),
    map('7fff48011000-7fff48032000', 'rw-p', 30, '[stack]'),
  ].join('');
  assert.deepEqual(rssPartsOf(smaps), { brk: 4000 * 1024, arenas: 3700 * 1024, wasm: 1000 * 1024, stacks: 50 * 1024, code: 240 * 1024, otherAnonymous: 306 * 1024, file: 5000 * 1024 });
});
