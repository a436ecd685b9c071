// BPE trainer: merges equal a from-scratch twin (recount every step), the tokenizer.json loads in
// @huggingface/tokenizers and encodes held-out text exactly as the reference encoder, round-trips,
// and compresses.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { trainBpe, toTokenizerJson, type BpeModel } from '../../src/data/bpe-trainer.js';
import { BpeEncoder, bpeFromTokenizerJson } from '../../src/data/bpe-encoder.js';
import { preTokenize, BYTE_TO_CHAR } from '../../src/data/byte-level.js';
import { loadMobyDick } from '../../src/data/corpora.js';
import { loadHfTokenizer } from '../../src/tokenizer/hf-tokenizer.js';

/** Textbook BPE training: recount all pairs of all words after every merge. */
function naiveMerges(text: string, vocabSize: number, minFrequency = 2): [number, number, number][] {
  const enc = new TextEncoder();
  const freq = new Map<string, number>();
  for (const w of preTokenize(text)) freq.set(w, (freq.get(w) ?? 0) + 1);
  const words = [...freq].map(([w, f]) => ({ s: Array.from(enc.encode(w)), f }));
  const strings: string[] = Array.from({ length: 256 }, (_, b) => BYTE_TO_CHAR[b]);
  const merges: [number, number, number][] = [];
  while (strings.length < vocabSize - 1) {
    const counts = new Map<string, number>();
    for (const { s, f } of words) for (let i = 0; i + 1 < s.length; i++) counts.set(`${s[i]},${s[i + 1]}`, (counts.get(`${s[i]},${s[i + 1]}`) ?? 0) + f);
    let best: [number, number] | null = null, bestCount = 0;
    for (const [k, c] of counts) {
      const [a, b] = k.split(',').map(Number);
      if (c > bestCount || (c === bestCount && best !== null && (a < best[0] || (a === best[0] && b < best[1])))) { best = [a, b]; bestCount = c; }
    }
    if (best === null || bestCount < minFrequency) break;
    const str = strings[best[0]] + strings[best[1]];
    let id = strings.indexOf(str);
    if (id < 0) { id = strings.length; strings.push(str); }
    merges.push([best[0], best[1], id]);
    for (const w of words) {
      const out: number[] = [];
      for (let i = 0; i < w.s.length;) {
        if (i + 1 < w.s.length && w.s[i] === best[0] && w.s[i + 1] === best[1]) { out.push(id); i += 2; } else out.push(w.s[i++]);
      }
      w.s = out;
    }
  }
  return merges;
}

const chapters = loadMobyDick();
const trainDocs = chapters.slice(0, 130).map((d) => d.text);
const heldOut = chapters.slice(130).map((d) => d.text).join('\n\n');
let trained: BpeModel | undefined;
const model = () => (trained ??= trainBpe(trainDocs, { vocabSize: 4096 + 256 + 1 }));

test('hand-computed merges on a tiny corpus', () => {
  // words "ab", " ab", " ab", " cd": (a,b) ×3 first, then (' ', ab) ×2; every other pair occurs once.
  const m = trainBpe('ab ab ab cd', { vocabSize: 300, minFrequency: 2 });
  assert.deepEqual(m.merges, [[97, 98, 256], [32, 256, 257]]);
  assert.equal(new TextDecoder().decode(m.tokens[257]), ' ab');
});

test('incremental training equals recount-from-scratch training, ties included', () => {
  const text = chapters.slice(3, 6).map((d) => d.text).join('\n') + ' aaaa aaaa aaa bbbb';
  const m = trainBpe(text, { vocabSize: 700, specialTokens: ['<|endoftext|>'] });
  assert.ok(m.merges.length > 300, `only ${m.merges.length} merges`);
  assert.deepEqual(m.merges, naiveMerges(text, 700));
});

test('training is deterministic', () => {
  const text = chapters.slice(10, 14).map((d) => d.text);
  assert.deepEqual(toTokenizerJson(trainBpe(text, { vocabSize: 800 })), toTokenizerJson(trainBpe(text, { vocabSize: 800 })));
});

test('4k merges on Moby Dick: tokenizer.json loads in @huggingface/tokenizers and matches the reference encoder', (t) => {
  const m = model();
  assert.equal(m.merges.length, 4096);
  const json = toTokenizerJson(m);
  const hf = loadHfTokenizer({ tokenizerJson: JSON.parse(JSON.stringify(json)) });
  const ref = new BpeEncoder(m);
  assert.equal(hf.vocabSize, ref.vocabSize);
  const ids = ref.encode(heldOut);
  assert.deepEqual(hf.encode(heldOut, { addSpecialTokens: false }), ids);
  assert.equal(hf.decode(ids), heldOut);
  assert.equal(ref.decode(ids), heldOut);
  const bytesPerToken = Buffer.byteLength(heldOut) / ids.length;
  t.diagnostic(`held-out bytes/token ${bytesPerToken.toFixed(3)} (${ids.length} tokens)`);
  assert.ok(bytesPerToken > 3.3, `bytes/token ${bytesPerToken}`);
  // The file reads back to the same model.
  const back = bpeFromTokenizerJson(JSON.parse(JSON.stringify(json)));
  assert.deepEqual(back.merges, m.merges);
  assert.deepEqual(back.specialTokens, m.specialTokens);
});

test('round trip and agreement on ASCII, Unicode, whitespace, digits and special tokens', () => {
  const m = model();
  const hf = loadHfTokenizer({ tokenizerJson: toTokenizerJson(m) });
  const ref = new BpeEncoder(m);
  const samples = [
    'Call me Ishmael.', "  leading spaces\tand\ttabs\r\nCRLF\n\n\nblank lines   ", "I'M HE'S we've you'LL",
    'numbers 1234567 3.14159 -42 1,000,000', 'Ünïcödé — “quotes” 日本語のテキスト 😀🐳 ẞ ﬁ', 'end<|endoftext|>start <|endoftext|><|endoftext|>',
    '\u0000\u0001 control \uFEFF bom', '\uFEFFleading bom', '<|endoftext|>\uFEFFbom after a special token', '',
  ];
  for (const s of samples) {
    const ids = ref.encode(s);
    assert.deepEqual(hf.encode(s, { addSpecialTokens: false }), ids, JSON.stringify(s));
    assert.equal(ref.decode(ids), s);
    assert.equal(hf.decode(ids), s);
  }
  const eot = ref.specialId('<|endoftext|>')!;
  assert.equal(eot, ref.vocabSize - 1);
  assert.deepEqual(ref.encode('<|endoftext|>'), [eot]);
  assert.ok(hf.eosTokenIds.includes(eot));
});

test('bad options are refused with a message', () => {
  assert.throws(() => trainBpe('abc', { vocabSize: 100 }), /vocabSize 100/);
  assert.throws(() => trainBpe('abc', { vocabSize: 300, specialTokens: ['x', 'x'] }), /distinct/);
  assert.throws(() => new BpeEncoder(model()).decode([1e9]), /outside the vocabulary/);
});
