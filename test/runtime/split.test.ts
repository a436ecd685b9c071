import { test } from 'node:test';
import assert from 'node:assert/strict';
import { splitRange } from '../../src/runtime/protocol.js';

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
