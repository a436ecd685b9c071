import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadHfTokenizer } from '../../src/tokenizer/hf-tokenizer.js';
import { FormatError } from '../../src/formats/errors.js';
import {
  buildTinyTokenizerJson, bytesToUnicode, TINY_CHAT_TEMPLATE, TINY_SPECIAL_TOKENS, tinyTokenizerConfig,
} from '../../src/testing/tiny-tokenizer.js';

const json = buildTinyTokenizerJson();
const tk = loadHfTokenizer({ tokenizerJson: json, tokenizerConfig: tinyTokenizerConfig() });
const model = json.model as { vocab: Record<string, number>; merges: string[] };
const added = json.added_tokens as { id: number; content: string }[];

/** A plain-TypeScript byte-level BPE (the textbook algorithm) as the oracle: split out special
 *  tokens, split words with Llama 3's regex, map bytes to chars, emit whole-word tokens directly
 *  (ignore_merges), otherwise apply the lowest-ranked merge until none applies. */
function referenceEncode(text: string): number[] {
  const byteChars = bytesToUnicode();
  const rank = new Map(model.merges.map((m, i) => [m, i]));
  const special = new RegExp(added.map((t) => t.content.replace(/[|<>]/g, (c) => `\\${c}`)).join('|'), 'g');
  const word = /(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+/gu;
  const ids: number[] = [];
  const encodeText = (s: string) => {
    for (const w of s.match(word) ?? []) {
      const mapped = Array.from(new TextEncoder().encode(w), (b) => byteChars[b]).join('');
      if (mapped in model.vocab) { ids.push(model.vocab[mapped]); continue; }
      let parts = Array.from(mapped);
      for (;;) {
        let best = -1;
        let bestRank = Infinity;
        for (let i = 0; i + 1 < parts.length; i++) {
          const r = rank.get(`${parts[i]} ${parts[i + 1]}`);
          if (r !== undefined && r < bestRank) { bestRank = r; best = i; }
        }
        if (best < 0) break;
        parts = [...parts.slice(0, best), parts[best] + parts[best + 1], ...parts.slice(best + 2)];
      }
      for (const p of parts) ids.push(model.vocab[p]);
    }
  };
  let last = 0;
  for (const m of text.matchAll(special)) {
    encodeText(text.slice(last, m.index));
    ids.push(added.find((t) => t.content === m[0])!.id);
    last = m.index! + m[0].length;
  }
  encodeText(text.slice(last));
  return ids;
}

const samples = [
  'Hello world',
  'The quick brown fox jumps over the lazy dog.',
  "She said: \"It's 1987, isn't it?\" — and they'll laugh.",
  'héllo wörld, ça va? 日本語のテキスト',
  'emoji 🦙🔥👩‍👩‍👧 mixed',
  'runs:    four spaces\n\n\n\ttabs\t\there   \r\n  trailing   ',
  ' leading space',
  '12345678901234567890',
  '<|start_header_id|>user<|end_header_id|>\n\nHi!<|eot_id|>',
  '',
];

test('tiny tokenizer: ids equal a textbook BPE oracle', () => {
  for (const s of samples) assert.deepEqual(tk.encode(s, { addSpecialTokens: false }), referenceEncode(s), JSON.stringify(s));
});

test('round trip: decode(encode(s)) === s on ASCII, Unicode, emoji and whitespace runs', () => {
  for (const s of samples) {
    assert.equal(tk.decode(tk.encode(s, { addSpecialTokens: false })), s, JSON.stringify(s));
    assert.equal(tk.decode(tk.encode(s), { skipSpecialTokens: true }), s.replace(/<\|[a-z_]+\|>/g, ''), JSON.stringify(s));
  }
  // No clean-up of spaces before punctuation (transformers' clean_up_tokenization_spaces).
  assert.equal(tk.decode(tk.encode("a . b , c ! d 's", { addSpecialTokens: false })), "a . b , c ! d 's");
});

test('special tokens: bos from the post-processor, eos from config, end-of-turn ids', () => {
  const bos = added.find((t) => t.content === '<|begin_of_text|>')!.id;
  const eot = added.find((t) => t.content === '<|eot_id|>')!.id;
  const eot2 = added.find((t) => t.content === '<|end_of_text|>')!.id;
  assert.equal(tk.bosTokenId, bos);
  assert.equal(tk.addBosToken, true);
  assert.deepEqual([...tk.eosTokenIds].sort(), [eot, eot2].sort());
  assert.equal(tk.eosTokenIds[0], eot); // the config's eos_token first
  assert.deepEqual(tk.encode('Hello'), [bos, ...tk.encode('Hello', { addSpecialTokens: false })]);
  assert.equal(tk.vocabSize, 512);
  assert.equal(tk.idToToken(bos), '<|begin_of_text|>');
  assert.equal(tk.idToToken(-1), undefined);
  assert.equal(tk.idToToken(100000), undefined);
  assert.equal(tk.chatTemplate, TINY_CHAT_TEMPLATE);
  assert.equal(tk.decode([]), '');
  assert.equal(tk.decode([bos, eot], { skipSpecialTokens: true }), '');
  assert.throws(() => tk.decode([512]), /token id 512 is outside the vocabulary \[0, 512\)/);
  assert.throws(() => tk.decode([1.5]), RangeError);
});

test('tokenizer_config variants: {content} tokens, add_bos_token false, chat_template list, generation_config eos list', () => {
  const t = loadHfTokenizer({
    tokenizerJson: json,
    tokenizerConfig: {
      bos_token: { content: '<|begin_of_text|>', lstrip: false },
      eos_token: { content: '<|end_of_text|>' },
      add_bos_token: false,
      add_eos_token: true,
      chat_template: [{ name: 'tool_use', template: 'T' }, { name: 'default', template: 'D' }],
    },
    generationConfig: { eos_token_id: [510, 511] },
  });
  const eos = added.find((x) => x.content === '<|end_of_text|>')!.id;
  assert.equal(t.addBosToken, false);
  assert.equal(t.chatTemplate, 'D');
  assert.ok(t.eosTokenIds.includes(510) && t.eosTokenIds.includes(511) && t.eosTokenIds[0] === eos);
  assert.deepEqual(t.encode('Hi'), [...t.encode('Hi', { addSpecialTokens: false }), eos]);
  // A template file overrides the config's.
  assert.equal(loadHfTokenizer({ tokenizerJson: json, tokenizerConfig: tinyTokenizerConfig(), chatTemplate: 'X' }).chatTemplate, 'X');
});

test('malformed tokenizer.json / configs: FormatError naming the file and field', () => {
  const bad = (j: unknown, re: RegExp, extra: object = {}) =>
    assert.throws(() => loadHfTokenizer({ tokenizerJson: j as object, source: 'models/x/tokenizer.json', ...extra }),
      (e: unknown) => e instanceof FormatError && e.message.startsWith('models/x/tokenizer.json') && re.test(e.message), String(re));
  bad([], /must be a JSON object/);
  bad({}, /no "model" object/);
  bad({ model: { type: 'BPE', vocab: 'x', merges: [] } }, /model\.vocab/);
  bad({ model: { type: 'BPE', vocab: { a: -1 }, merges: [] } }, /model\.vocab\["a"\] = -1/);
  bad({ model: { type: 'BPE', vocab: { a: 0.5 }, merges: [] } }, /model\.vocab\["a"\]/);
  bad({ model: { type: 'BPE', vocab: { a: 0 }, merges: 'a b' } }, /model\.merges must be an array/);
  bad({ model: { type: 'BPE', vocab: { a: 0 }, merges: ['ab'] } }, /model\.merges\[0\]/);
  bad({ model: { type: 'Magic', vocab: { a: 0 } } }, /model\.type "Magic" is not supported/);
  bad({ model: { type: 'BPE', vocab: { a: 0 }, merges: [] }, added_tokens: [{ id: 'x', content: 'b' }] }, /added_tokens\[0\]\.id/);
  bad({ model: { type: 'BPE', vocab: { a: 0 }, merges: [] }, added_tokens: [{ id: 1 }] }, /added_tokens\[0\]/);
  bad({ model: { type: 'BPE', vocab: { a: 0 }, merges: [] }, pre_tokenizer: { type: 'Split', pattern: { Regex: '[&&a]' }, behavior: 'Isolated' } },
    /cannot build the tokenizer/);
  // Found by the fuzzer: a Unigram unk_id the library would emit as a token id, and sections the
  // library reads only when it first encodes (its TypeErrors become errors about the file).
  const unigram = (unkId: unknown) => ({ model: { type: 'Unigram', unk_id: unkId, vocab: [['<unk>', 0], ['a', -1]] } });
  for (const unkId of [-1, 2, 1e9, 0.5, {}, [0, 0]]) bad(unigram(unkId), /model\.unk_id = .* is not a token id/);
  const withPost = (single: unknown) => ({ ...json, post_processor: { type: 'TemplateProcessing', single, pair: [], special_tokens: {} } });
  const deep = JSON.parse(`${'['.repeat(100_000)}${']'.repeat(100_000)}`); // String() of it overflows the stack
  bad({ model: { type: 'BPE', vocab: { a: deep }, merges: [] } }, /model\.vocab\["a"\] = a deeply nested array is not a token id/);
  bad({ model: { type: deep, vocab: { a: 0 }, merges: [] } }, /model\.type a deeply nested array is not supported/);
  for (const single of [1000000, ['', { Sequence: { id: 'A', type_id: 0 } }]]) bad(withPost(single), /the tokenizer fails to encode "a" \(a malformed section/);
  // An absurd vocabulary is refused before anything is built (the cap is configurable).
  const big: Record<string, number> = {};
  for (let i = 0; i < 5000; i++) big[`t${i}`] = i;
  bad({ model: { type: 'BPE', vocab: big, merges: [] } }, /more than 4096 entries \(raise maxVocab/, { maxVocab: 4096 });
  bad({ model: { type: 'BPE', vocab: { a: 5000 }, merges: [] } }, /= 5000 is not a token id/, { maxVocab: 4096 });
  assert.throws(() => loadHfTokenizer({ tokenizerJson: json, tokenizerConfig: { bos_token: 5 } }), /tokenizer_config\.json: bos_token must be a string/);
  assert.throws(() => loadHfTokenizer({ tokenizerJson: json, tokenizerConfig: { add_bos_token: 'yes' } }), /tokenizer_config\.json: add_bos_token must be true or false/);
  assert.throws(() => loadHfTokenizer({ tokenizerJson: json, generationConfig: { eos_token_id: [1, 9999] } }), /generation_config\.json: eos_token_id\[1\] = 9999/);
  assert.throws(() => loadHfTokenizer({ tokenizerJson: json, tokenizerConfig: { chat_template: [{ name: 1 }] } }), /chat_template\[0\]/);
});

test('tokenizer.json read from disk: bad JSON, missing file and size cap name the path', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-tok-'));
  try {
    const good = join(dir, 'tokenizer.json');
    writeFileSync(good, JSON.stringify(json));
    assert.deepEqual(loadHfTokenizer({ tokenizerJson: good }).encode('Hello', { addSpecialTokens: false }), tk.encode('Hello', { addSpecialTokens: false }));
    const broken = join(dir, 'broken.json');
    writeFileSync(broken, '{"model": {');
    assert.throws(() => loadHfTokenizer({ tokenizerJson: broken }), (e: unknown) => e instanceof FormatError && e.message.startsWith(broken) && /not valid JSON/.test(e.message));
    assert.throws(() => loadHfTokenizer({ tokenizerJson: join(dir, 'missing.json') }), /missing\.json: cannot open tokenizer\.json \(ENOENT\)/);
    assert.throws(() => loadHfTokenizer({ tokenizerJson: good, maxFileBytes: 1000 }), /bytes, more than the limit of 1000/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('pathological input: 64K of one repeated character encodes and round-trips', () => {
  // Every pre-tokenizer branch (letters, spaces, newlines, punctuation, digits, emoji); the 1 MB
  // case is in long-word-bpe.test.ts.
  for (const ch of ['a', ' ', '\n', '.', '7', '🦙']) {
    const s = ch.repeat(1 << 16);
    const ids = tk.encode(s, { addSpecialTokens: false });
    assert.ok(ids.length > 0 && ids.length <= s.length * 4);
    assert.equal(tk.decode(ids), s);
  }
  assert.ok(TINY_SPECIAL_TOKENS.length >= 5);
});
