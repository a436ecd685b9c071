import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Tokenizer as HfTokenizerClass } from '@huggingface/tokenizers';
import { bpeLongWord, type BpeModelInternals } from '../../src/tokenizer/long-word-bpe.js';
import { buildTinyTokenizerJson } from '../../src/testing/tiny-tokenizer.js';
import { loadHfTokenizer } from '../../src/tokenizer/hf-tokenizer.js';

// The library's own (unpatched) BPE is the reference.
const json = buildTinyTokenizerJson();
const lib = new (HfTokenizerClass as unknown as new (j: object, c: object) => { model: BpeModelInternals })(json, {});
const ranks = lib.model.bpe_ranks;

function lcg(seed: number) {
  let s = seed;
  return () => (s = (s * 1103515245 + 12345) % 2147483648) / 2147483648;
}

test('bpeLongWord equals the library BPE on random words (ties, overlaps, unknown pairs)', () => {
  const rnd = lcg(7);
  // Byte-level characters of frequent merges ('Ġ', 't', 'h', 'e' …), a rare one, and runs.
  const alphabets = [['Ġ', 't', 'h', 'e', 'a', 'n', 'd', 'r', 's', 'Ċ', 'ĉ', 'z'], ['Ġ', 'Ġ', 'e'], ['a'], ['Ċ', 'Ġ']];
  for (let k = 0; k < 400; k++) {
    const alphabet = alphabets[k % alphabets.length];
    const len = 1 + Math.floor(rnd() * 700);
    let w = '';
    for (let i = 0; i < len; i++) w += alphabet[Math.floor(rnd() * alphabet.length)];
    assert.deepEqual(bpeLongWord(w, ranks), lib.model.bpe(w), w.slice(0, 40));
  }
  for (const ch of ['Ġ', 'e', 'Ċ']) {
    const w = ch.repeat(20_000);
    assert.deepEqual(bpeLongWord(w, ranks), lib.model.bpe(w), ch);
  }
});

test('a 1 MB run of one character encodes and round-trips (long-word path)', () => {
  const tk = loadHfTokenizer({ tokenizerJson: json });
  const s = ' '.repeat(1 << 20); // one pre-token: \s+(?!\S) takes the whole run
  const ids = tk.encode(s, { addSpecialTokens: false });
  assert.equal(tk.decode(ids), s);
});
