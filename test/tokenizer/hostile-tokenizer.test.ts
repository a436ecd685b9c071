// Regular expressions in tokenizer.json are hostile input (docs/RELIABILITY.md): a pattern that
// backtracks exponentially, such as `(a+)+$` on 40 `a`s and a `!`, would block the main thread for
// minutes (not even Ctrl-C is handled then). One row per hostile pattern: where it sits, and the
// message naming that field. The bound each holds: the tokenizer is refused at load, before any text
// is matched, in time linear in the pattern; patterns of released tokenizers still load.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadHfTokenizer } from '../../src/tokenizer/hf-tokenizer.js';
import { FormatError } from '../../src/formats/errors.js';
import { buildTinyTokenizerJson, tinyTokenizerGgufMetadata } from '../../src/testing/tiny-tokenizer.js';
import { tokenizerFromGgufMetadata } from '../../src/tokenizer/gguf-tokenizer.js';
import { MAX_TOKEN_CHARS } from '../../src/tokenizer/json-tokenizer.js';

type Json = Record<string, unknown>;
const base = buildTinyTokenizerJson();
const split = (pattern: string): Json => ({ type: 'Split', pattern: { Regex: pattern }, behavior: 'Isolated', invert: false });
const byteLevel = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false };
/** The tiny tokenizer with `pattern` as its pre-tokenizer's Split (the place real tokenizers put one). */
const withSplit = (pattern: string): Json => ({ ...base, pre_tokenizer: { type: 'Sequence', pretokenizers: [split(pattern), byteLevel] } });

const EXPONENTIAL = /can take time exponential in the text; rewrite the pattern without nested repetition/;

const ROWS: [what: string, json: Json, message: RegExp][] = [
  ['(a+)+$ in a Split pre-tokenizer', withSplit('(a+)+$'), /pre_tokenizer\.pretokenizers\[0\]\.pattern\.Regex "\(a\+\)\+\$" is refused: "\(a\+\)\+" at offset 0 repeats/],
  ['(a*)* as the only pre-tokenizer', { ...base, pre_tokenizer: split('(a*)*') }, /pre_tokenizer\.pattern\.Regex "\(a\*\)\*" is refused/],
  ['(a|a)* in a Replace normalizer', { ...base, normalizer: { type: 'Replace', pattern: { Regex: '(a|a)*b' }, content: 'x' } }, /normalizer\.pattern\.Regex "\(a\|a\)\*b" is refused/],
  ['(a?){30}a{30} in a nested normalizer sequence', { ...base, normalizer: { type: 'Sequence', normalizers: [{ type: 'NFC' }, { type: 'Replace', pattern: { Regex: '(a?){30}a{30}' }, content: '' }] } },
    /normalizer\.normalizers\[1\]\.pattern\.Regex .* is refused/],
  ['(\\s*\\w+)*$ in a Replace decoder', { ...base, decoder: { type: 'Sequence', decoders: [{ type: 'Replace', pattern: { Regex: '(\\s*\\w+)*$' }, content: '' }, base.decoder] } },
    /decoder\.decoders\[0\]\.pattern\.Regex .* is refused/],
  ['nested repetition hidden in a lookahead', withSplit('x(?=(a+)+b)'), /repeats a part that can match in more than one way/],
  ['(x+x+)+y', withSplit('(x+x+)+y'), EXPONENTIAL],
  ['a backreference', withSplit('(a)\\1'), /backreference at offset 3/],
  ['a pattern that does not parse', withSplit('(ab'), /unclosed '\(' in the pattern/],
];

test('tokenizer.json patterns that can backtrack exponentially are refused at load, naming the field', () => {
  for (const [what, json, message] of ROWS) {
    assert.throws(() => loadHfTokenizer({ tokenizerJson: json, source: 'hostile/tokenizer.json' }), (e: unknown) => {
      assert.ok(e instanceof FormatError, `${what}: ${String(e)}`);
      assert.match(e.message, /^hostile\/tokenizer\.json: /, what);
      assert.match(e.message, message, what);
      return true;
    }, what);
  }
});

test('control: a linear pattern over the same text loads and encodes 40 a\'s and a "!"', () => {
  const tk = loadHfTokenizer({ tokenizerJson: withSplit('a+$|[^a]') });
  const ids = tk.encode(`${'a'.repeat(40)}!`, { addSpecialTokens: false });
  assert.equal(tk.decode(ids), `${'a'.repeat(40)}!`);
});

test('the pre-tokenizer patterns of released tokenizers are accepted', () => {
  const released: Record<string, string> = {
    gpt2: "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+",
    llama3: "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
    qwen2: "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
    o200k: "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
    bloom: ' ?[^(\\s|[.,!?…。，、।۔،])]+',
    deepseekDigits: '\\p{N}{1,3}',
  };
  for (const [name, pattern] of Object.entries(released)) {
    const tk = loadHfTokenizer({ tokenizerJson: withSplit(pattern), source: name });
    assert.equal(tk.decode(tk.encode('Hello, world 1234!', { addSpecialTokens: false })), 'Hello, world 1234!', name);
  }
});

test('tessera generate with a (a+)+$ tokenizer and 40 a\'s + "!" exits 1 at load with the field named', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-regex-'));
  try {
    const model = fileURLToPath(new URL('../../../models/default/', import.meta.url));
    for (const f of ['config.json', 'model.safetensors', 'tokenizer_config.json', 'generation_config.json']) copyFileSync(join(model, f), join(dir, f));
    const tok = JSON.parse(readFileSync(join(model, 'tokenizer.json'), 'utf8')) as Json;
    tok.pre_tokenizer = { type: 'Sequence', pretokenizers: [split('(a+)+$'), tok.pre_tokenizer] };
    writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(tok));
    const main = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
    const r = spawnSync(process.execPath, [main, 'generate', '--model', dir, '--prompt', `${'a'.repeat(40)}!`, '--max-tokens', '1'],
      { encoding: 'utf8', timeout: 60_000, stdio: ['ignore', 'pipe', 'pipe'] });
    assert.notEqual(r.signal, 'SIGTERM', 'still running after 60 s');
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, /pre_tokenizer\.pretokenizers\[0\]\.pattern\.Regex "\(a\+\)\+\$" is refused/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

// Token texts are capped: a 10M-character added token used to cost 17–190× its size in the library's
// tables. Rows: where the long token is, and the field the message names.
const longToken = (n: number) => 'x'.repeat(n);
const added = base.added_tokens as Json[];
const vocab = (base.model as Json).vocab as Record<string, number>;
const LENGTH_ROWS: [what: string, load: () => unknown, message: RegExp][] = [
  ['a 10M-character added token', () => loadHfTokenizer({ tokenizerJson: { ...base, added_tokens: [...added, { ...added[0], id: 600, content: longToken(10_000_000) }] } }),
    new RegExp(`added_tokens\\[${added.length}\\]\\.content is 10000000 characters long, more than the ${MAX_TOKEN_CHARS} a token may have`)],
  ['a vocabulary entry one character too long', () => loadHfTokenizer({ tokenizerJson: { ...base, model: { ...(base.model as Json), vocab: { ...vocab, [longToken(MAX_TOKEN_CHARS + 1)]: 600 } } } }),
    /model\.vocab key "x{40}" is 4097 characters long/],
  ['a GGUF token one character too long', () => {
    const meta = tinyTokenizerGgufMetadata(base);
    const tokens = [...(meta.get('tokenizer.ggml.tokens') as string[])];
    tokens[300] = longToken(MAX_TOKEN_CHARS + 1);
    meta.set('tokenizer.ggml.tokens', tokens);
    return tokenizerFromGgufMetadata(meta, 'long.gguf');
  }, /^long\.gguf: tokenizer\.ggml\.tokens\[300\] is 4097 characters long/],
];

test('token texts longer than MAX_TOKEN_CHARS are refused before the library builds its tables', () => {
  for (const [what, load, message] of LENGTH_ROWS) {
    assert.throws(load, (e: unknown) => e instanceof FormatError && message.test(e.message), what);
  }
  // Control: a token of exactly MAX_TOKEN_CHARS characters is accepted.
  loadHfTokenizer({ tokenizerJson: { ...base, added_tokens: [...added, { ...added[0], id: 600, content: longToken(MAX_TOKEN_CHARS) }] } });
});

test('a library error quoting a 1 MB field is cut: the message names the file and stays under 500 characters', () => {
  // the library quotes an unknown type whole; found by the tokenizer fuzz (a 49 KB type string)
  const type = 'BertPreTokenizer'.repeat(65_536);
  assert.throws(() => loadHfTokenizer({ tokenizerJson: { ...base, pre_tokenizer: { type } }, source: 'hostile/tokenizer.json' }), (e: unknown) => {
    assert.ok(e instanceof FormatError, String(e));
    assert.match(e.message, /^hostile\/tokenizer\.json: cannot build the tokenizer: Unknown PreTokenizer type: BertPreTokenizer.*… \(\d+ more characters\)$/s);
    assert.ok(e.message.length < 500, `${e.message.length} characters`);
    return true;
  });
});
