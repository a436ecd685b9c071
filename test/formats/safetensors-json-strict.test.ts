// The strict JSON parser behind safetensors headers and HF folder files, checked against JSON.parse as
// the reference: on every input both accept, the values are equal; both reject the same inputs, except
// that the strict parser also refuses duplicate keys (which JSON.parse silently resolves to the last).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FormatError } from '../../src/formats/errors.js';
import { parseJsonStrict } from '../../src/formats/json-strict.js';
import { uniform01 } from '../../src/data/rng.js';

const prng = uniform01;

const LEAVES = ['0', '-0', '12', '-3.5e-2', '1E+2', '1e400', 'true', 'false', 'null', '""', '"a"', '"é\\u00e9\\ud83d\\ude00"', '"\\ud800"', '"\\"\\\\\\/\\b\\f\\n\\r\\t"', '"__proto__"'];
const KEYS = ['"a"', '"b"', '"__proto__"', '"constructor"', '""', '"\\u0061"'];
const WS = ['', ' ', '\n', '\t', '\r\n  '];

function genValue(rnd: () => number, depth: number): string {
  const pick = <T>(xs: T[]): T => xs[Math.floor(rnd() * xs.length)]!;
  const r = rnd();
  if (depth > 4 || r < 0.4) return pick(LEAVES);
  const n = Math.floor(rnd() * 4);
  const items: string[] = [];
  for (let i = 0; i < n; i++) {
    items.push(r < 0.7 ? pick(WS) + genValue(rnd, depth + 1) + pick(WS) : `${pick(WS)}${pick(KEYS)}${pick(WS)}:${genValue(rnd, depth + 1)}`);
  }
  return r < 0.7 ? `[${items.join(',')}]` : `{${items.join(',')}}`;
}

const NOISE = ['{', '}', '[', ']', ',', ':', '"', '\\', '0', '01', '.', 'e', '-', '+', 'tru', 'nul', '\u0001', ' ', 'x', '\\u12', '1.'];

function outcome(f: () => unknown): { ok: true; value: unknown } | { ok: false; error: unknown } {
  try { return { ok: true, value: f() }; } catch (error) { return { ok: false, error }; }
}

test('agrees with JSON.parse on 6000 random valid and corrupted documents', () => {
  const rnd = prng(1234);
  let accepted = 0, rejected = 0, duplicates = 0;
  for (let c = 0; c < 6000; c++) {
    let text = genValue(rnd, 0);
    if (c % 2 === 1) { // corrupt: insert, delete or replace a piece
      const i = Math.floor(rnd() * (text.length + 1));
      const noise = NOISE[Math.floor(rnd() * NOISE.length)]!;
      const k = Math.floor(rnd() * 3);
      text = k === 0 ? text.slice(0, i) + noise + text.slice(i) : k === 1 ? text.slice(0, i) + text.slice(i + 1) : text.slice(0, i) + noise + text.slice(i + 1);
    }
    const ref = outcome(() => JSON.parse(text));
    const got = outcome(() => parseJsonStrict(text, 'x.json'));
    if (got.ok) {
      assert.ok(ref.ok, `accepted what JSON.parse rejects: ${text}`);
      assert.deepEqual(got.value, ref.value, text);
      accepted++;
    } else {
      assert.ok(got.error instanceof FormatError, `${String(got.error)} is not a FormatError`);
      if (/duplicate key/.test(got.error.message)) {
        // A duplicate found first says nothing about syntax errors further on, except in uncorrupted text.
        if (c % 2 === 0) assert.ok(ref.ok, `JSON.parse rejects ${text}`);
        duplicates++;
      } else {
        assert.ok(!ref.ok, `rejected what JSON.parse accepts: ${text}: ${got.error.message}`);
      }
      rejected++;
    }
  }
  assert.ok(accepted > 1000 && rejected > 1000 && duplicates > 100, `${accepted} / ${rejected} / ${duplicates}`);
});

test('duplicate keys are refused at any depth, with the key and the offset', () => {
  assert.throws(() => parseJsonStrict('{"a":1,"a":2}', 'f.json'), /^FormatError: f\.json: duplicate key "a" in a JSON object \(offset 12\)$/);
  assert.throws(() => parseJsonStrict('[{"x":{"k":[],"k":{}}}]', 'f.json', { context: 'header' }), /f\.json: header: duplicate key "k"/);
  assert.throws(() => parseJsonStrict('{"a":1,"\\u0061":2}', 'f.json'), /duplicate key "a"/); // same key, escaped
  assert.deepEqual(parseJsonStrict('[{"a":1},{"a":2}]', 'f.json'), [{ a: 1 }, { a: 2 }]); // distinct objects
});

test('"__proto__" is an ordinary key, never a prototype', () => {
  const v = parseJsonStrict('{"__proto__":{"polluted":true}}', 'f.json') as Record<string, unknown>;
  assert.equal(Object.getPrototypeOf(v), Object.prototype);
  assert.deepEqual(Object.keys(v), ['__proto__']);
  assert.equal(({} as Record<string, unknown>).polluted, undefined);
});

test('deep nesting fails with a FormatError instead of overflowing the stack', () => {
  for (const text of ['['.repeat(1_000_000), '{"a":'.repeat(200_000), `${'['.repeat(129)}${']'.repeat(129)}`]) {
    assert.throws(() => parseJsonStrict(text, 'deep.json'), /deep\.json: invalid JSON at offset \d+: nesting deeper than 128 levels/);
  }
  assert.equal(JSON.stringify(parseJsonStrict(`${'['.repeat(128)}${']'.repeat(128)}`, 'ok.json')).length, 256); // exactly 128 levels is fine
  assert.throws(() => parseJsonStrict('[[[1]]]', 'x', { maxDepth: 2 }), /nesting deeper than 2 levels/);
});

test('large flat documents parse (linear time, no recursion)', () => {
  const n = 200_000;
  const text = `{${Array.from({ length: n }, (_, i) => `"k${i}":[${i},"v"]`).join(',')}}`;
  const v = parseJsonStrict(text, 'big.json') as Record<string, [number, string]>;
  assert.equal(Object.keys(v).length, n);
  assert.deepEqual(v.k199999, [199999, 'v']);
});
