import { test } from 'node:test';
import assert from 'node:assert/strict';
import { splitRange, splitRangeByCost } from '../../src/runtime/protocol.js';

function split(total: number, parts: number, unit: number): Array<[number, number]> {
  const out = new Int32Array(2 * parts);
  splitRange(total, parts, unit, out);
  return Array.from({ length: parts }, (_, t) => [out[2 * t]!, out[2 * t + 1]!]);
}

test('splitRange: hand-checked splits', () => {
  assert.deepEqual(split(2048, 2, 8), [[0, 1024], [1024, 2048]]);
  assert.deepEqual(split(2048, 3, 8), [[0, 680], [680, 1360], [1360, 2048]]);
  assert.deepEqual(split(3, 2, 8), [[0, 0], [0, 3]]);
  assert.deepEqual(split(9, 2, 4), [[0, 4], [4, 9]]);
  assert.deepEqual(split(17, 3, 8), [[0, 8], [8, 16], [16, 17]]);
  assert.deepEqual(split(8, 4, 2), [[0, 2], [2, 4], [4, 6], [6, 8]]);
  assert.deepEqual(split(0, 2, 8), [[0, 0], [0, 0]]);
  assert.deepEqual(split(5, 1, 8), [[0, 5]]);
});

test('splitRange: contiguous cover, aligned starts, balanced to one unit', () => {
  for (const total of [1, 7, 8, 9, 100, 257, 4096, 8191])
    for (const parts of [1, 2, 3, 5, 16])
      for (const unit of [1, 4, 8]) {
        const ranges = split(total, parts, unit);
        let next = 0;
        for (const [r0, r1] of ranges) {
          assert.equal(r0, next);
          assert.ok(r1 >= r0);
          assert.ok(r0 % unit === 0 || r0 === total);
          next = r1;
        }
        assert.equal(next, total);
        const lens = ranges.map(([a, b]) => b - a);
        assert.ok(Math.max(...lens) - Math.min(...lens) <= unit, `${total}/${parts}/${unit}: ${lens}`);
      }
});

function splitByCost(costs: number[], parts: number, unit: number): Array<[number, number]> {
  const out = new Int32Array(2 * parts);
  splitRangeByCost(costs.length, parts, unit, (u) => costs[u]!, out);
  return Array.from({ length: parts }, (_, t) => [out[2 * t]!, out[2 * t + 1]!]);
}

test('splitRangeByCost: a light last key chunk does not count as a whole unit', () => {
  // 3 KV heads × 3 chunks of 4112 keys: 2048, 2048, 16 keys
  const chunks = [2048, 2048, 16].flatMap((k) => [k, k, k]);
  assert.deepEqual(splitByCost(chunks, 2, 1), [[0, 3], [3, 9]]);
  assert.deepEqual(split(9, 2, 1), [[0, 4], [4, 9]]); // by count: 8192 keys against 4144
  // equal costs: exactly splitRange
  assert.deepEqual(splitByCost([5, 5, 5, 5, 5, 5, 5, 5, 5], 2, 4), split(9, 2, 4));
  assert.deepEqual(splitByCost([1, 1, 1, 9], 2, 1), [[0, 3], [3, 4]]);
  assert.deepEqual(splitByCost([9, 1, 1, 1], 2, 1), [[0, 1], [1, 4]]);
  assert.deepEqual(splitByCost([1, 1, 4, 4, 1, 1], 2, 2), [[0, 2], [2, 6]]);
  assert.deepEqual(splitByCost([], 3, 1), [[0, 0], [0, 0], [0, 0]]);
});

test('splitRangeByCost: contiguous cover, aligned cuts, no slice over an equal share by more than the heaviest group', () => {
  let seed = 7;
  const rand = () => { seed = (seed * 1103515245 + 12345) % 2 ** 31; return seed / 2 ** 31; };
  for (let trial = 0; trial < 300; trial++) {
    const total = 1 + Math.floor(rand() * 40), parts = 1 + Math.floor(rand() * 5), unit = [1, 2, 3][trial % 3]!;
    const costs = Array.from({ length: total }, () => (rand() < 0.3 ? 0 : Math.floor(rand() * 100)));
    const ranges = splitByCost(costs, parts, unit);
    let next = 0;
    for (const [r0, r1] of ranges) {
      assert.equal(r0, next);
      assert.ok(r1 >= r0);
      assert.ok(r1 % unit === 0 || r1 === total);
      next = r1;
    }
    assert.equal(next, total);
    const sum = (a: number, b: number) => costs.slice(a, b).reduce((x, y) => x + y, 0);
    const all = sum(0, total);
    let heaviest = 0;
    for (let g = 0; g < total; g += unit) heaviest = Math.max(heaviest, sum(g, g + unit));
    for (const [r0, r1] of ranges) assert.ok(sum(r0, r1) <= all / parts + heaviest, `${costs} / ${parts} / ${unit}: ${ranges}`);
  }
});
