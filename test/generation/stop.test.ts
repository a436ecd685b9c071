import { test } from 'node:test';
import assert from 'node:assert/strict';
import { StopMatcher, StreamDecoder } from '../../src/generation/stop.js';
import { ByteTokenizer, bytesOf } from './fake-model.js';

function runStops(stops: string[], deltas: string[]): { emitted: string[]; stopped: boolean; rest: string } {
  const m = new StopMatcher(stops);
  const emitted: string[] = [];
  for (const d of deltas) {
    const r = m.push(d);
    emitted.push(r.text);
    if (r.stopped) return { emitted, stopped: true, rest: '' };
  }
  return { emitted, stopped: false, rest: m.flush() };
}

test('a stop string split over several deltas is found and cut', () => {
  const r = runStops(['</end>'], ['Hello </', 'en', 'd> more']);
  assert.equal(r.stopped, true);
  assert.equal(r.emitted.join(''), 'Hello ');
  // the possible prefix '</' was held back, not emitted before being ruled in
  assert.deepEqual(r.emitted, ['Hello ', '', '']);
});

test('held-back text is released when the prefix is ruled out, and at the end', () => {
  const r = runStops(['STOP'], ['ab S', 'T', 'x', 'yz ST']);
  assert.equal(r.stopped, false);
  assert.deepEqual(r.emitted, ['ab ', '', 'STx', 'yz ']);
  assert.equal(r.rest, 'ST');
  assert.equal(r.emitted.join('') + r.rest, 'ab STxyz ST');
});

test('the earliest of several stop strings wins, even inside one delta', () => {
  const r = runStops(['world', 'lo w'], ['hello world']);
  assert.equal(r.emitted.join(''), 'hel');
  assert.equal(runStops(['\n\n', 'User:'], ['a\n', '\nUser: b']).emitted.join(''), 'a');
});

test('no stop strings: text passes straight through', () => {
  assert.deepEqual(runStops([], ['a', 'b']).emitted, ['a', 'b']);
  assert.throws(() => new StopMatcher(['']), /non-empty/);
});

test('property: for random texts and split points, emitted text == text up to the first stop', () => {
  let seed = 1;
  const rand = (n: number) => { seed = (seed * 1103515245 + 12345) % 2 ** 31; return seed % n; };
  const alphabet = 'ab\n<>';
  for (let trial = 0; trial < 500; trial++) {
    const text = Array.from({ length: 1 + rand(30) }, () => alphabet[rand(alphabet.length)]).join('');
    const stops = Array.from({ length: 1 + rand(3) }, () => Array.from({ length: 1 + rand(4) }, () => alphabet[rand(alphabet.length)]).join(''));
    const deltas: string[] = [];
    for (let i = 0; i < text.length;) { const n = 1 + rand(4); deltas.push(text.slice(i, i + n)); i += n; }
    let cut = text.length;
    for (const s of stops) { const i = text.indexOf(s); if (i >= 0) cut = Math.min(cut, i); }
    const r = runStops(stops, deltas);
    assert.equal(r.emitted.join('') + r.rest, text.slice(0, cut), JSON.stringify({ text, stops, deltas }));
    assert.equal(r.stopped, cut < text.length);
  }
});

test('UTF-8: a multi-byte character split over byte tokens is emitted whole, never as U+FFFD', () => {
  const tok = new ByteTokenizer();
  const text = 'a€b😀c';
  const dec = new StreamDecoder((ids) => tok.decode(ids, { skipSpecialTokens: true }));
  const out = bytesOf(text).map((id) => dec.push(id));
  assert.equal(out.join('') + dec.flush(), text);
  for (const piece of out) assert.ok(!piece.includes('\uFFFD'), JSON.stringify(out));
  // '€' is 3 bytes: nothing is emitted for its first two
  assert.deepEqual(out.slice(0, 4), ['a', '', '', '€']);
});

test('UTF-8: an incomplete character at the end is flushed as U+FFFD, a real invalid byte is not held forever', () => {
  const tok = new ByteTokenizer();
  const dec = new StreamDecoder((ids) => tok.decode(ids));
  assert.equal(dec.push(0x61), 'a');
  assert.equal(dec.push(0xe2), '');
  assert.equal(dec.flush(), '\uFFFD');
  const bad = new StreamDecoder((ids) => tok.decode(ids));
  const got = [0xff, 0xff, 0xff, 0xff, 0xff, 0x61].map((id) => bad.push(id)).join('') + bad.flush();
  assert.equal(got, '\uFFFD'.repeat(5) + 'a');
});
