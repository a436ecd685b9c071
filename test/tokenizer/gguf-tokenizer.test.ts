import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tokenizerFromGgufMetadata, mergesFromScores, TokenType } from '../../src/tokenizer/gguf-tokenizer.js';
import { loadHfTokenizer } from '../../src/tokenizer/hf-tokenizer.js';
import { FormatError } from '../../src/formats/errors.js';
import {
  buildTinyTokenizerJson, TINY_CHAT_TEMPLATE, tinyTokenizerConfig, tinyTokenizerGgufMetadata, tinyTokenizerGgufVocab,
} from '../../src/testing/tiny-tokenizer.js';

const json = buildTinyTokenizerJson();
const fromJson = loadHfTokenizer({ tokenizerJson: json, tokenizerConfig: tinyTokenizerConfig() });
const fromGguf = tokenizerFromGgufMetadata(tinyTokenizerGgufMetadata(json), 'tiny.gguf');

const samples = [
  'Hello world', 'The fisherman said: "It was this big!" 12345', "they'll, we've, I'M",
  '  indented\n\n\tcode()  \r\n', 'héllo 🦙 日本語', '<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>', '',
];

test('tiny vocabulary: tokenizer.json and its GGUF form give identical ids and special tokens', () => {
  for (const s of samples) {
    assert.deepEqual(fromGguf.encode(s), fromJson.encode(s), JSON.stringify(s));
    assert.equal(fromGguf.decode(fromGguf.encode(s, { addSpecialTokens: false })), s);
  }
  const v = tinyTokenizerGgufVocab(json);
  assert.equal(v.tokens.length, 512);
  assert.equal(v.tokenTypes.filter((t) => t === TokenType.CONTROL).length, 6);
  assert.equal(fromGguf.vocabSize, fromJson.vocabSize);
  assert.equal(fromGguf.bosTokenId, v.bosId);
  assert.equal(fromGguf.eosTokenIds[0], v.eosId);
  assert.deepEqual([...fromGguf.eosTokenIds].sort(), [...fromJson.eosTokenIds].sort());
  assert.equal(fromGguf.addBosToken, true);
  assert.equal(fromGguf.chatTemplate, TINY_CHAT_TEMPLATE);
  for (let id = 0; id < 512; id++) assert.equal(fromGguf.idToToken(id), fromJson.idToToken(id));
});

// A hand-made SentencePiece vocabulary: <unk> <s> </s>, 256 byte tokens, then pieces with scores.
function spmMeta(extra: [string, unknown][] = []): Map<string, unknown> {
  const tokens = ['<unk>', '<s>', '</s>'];
  const types: number[] = [TokenType.UNKNOWN, TokenType.CONTROL, TokenType.CONTROL];
  const scores = [0, 0, 0];
  for (let b = 0; b < 256; b++) {
    tokens.push(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`);
    types.push(TokenType.BYTE);
    scores.push(0);
  }
  const pieces: [string, number][] = [
    ['▁', -100], ['h', -101], ['e', -102], ['l', -103], ['o', -104], ['w', -105], ['r', -106], ['d', -107],
    ['ll', -1], ['he', -2], ['▁he', -3], ['▁hell', -4], ['▁hello', -5], ['▁w', -6], ['or', -7], ['▁wor', -8],
    ['ld', -9], ['▁world', -10], ['__proto__', -50],
  ];
  for (const [p, s] of pieces) { tokens.push(p); types.push(TokenType.NORMAL); scores.push(s); }
  return new Map<string, unknown>([
    ['tokenizer.ggml.model', 'llama'],
    ['tokenizer.ggml.tokens', tokens],
    ['tokenizer.ggml.token_type', types],
    ['tokenizer.ggml.scores', scores],
    ['tokenizer.ggml.bos_token_id', 1],
    ['tokenizer.ggml.eos_token_id', 2],
    ['tokenizer.ggml.unknown_token_id', 0],
    ...extra,
  ]);
}

test('SentencePiece: merges derived from scores, in score order (hand-computed)', () => {
  const meta = spmMeta();
  const merges = mergesFromScores(meta.get('tokenizer.ggml.tokens') as string[], meta.get('tokenizer.ggml.token_type') as number[], meta.get('tokenizer.ggml.scores') as number[]);
  assert.deepEqual(merges, ['l l', 'h e', '▁ he', '▁he ll', '▁hell o', '▁ w', 'o r', '▁w or', 'l d', '▁wor ld']);
});

test("SentencePiece 'llama' vocabulary: space prefix, byte fallback, BOS, decode", () => {
  const tk = tokenizerFromGgufMetadata(spmMeta(), 'spm.gguf');
  const id = (t: string) => (spmMeta().get('tokenizer.ggml.tokens') as string[]).indexOf(t);
  // "hello world" → "▁hello▁world" → [▁hello, ▁world]; é is not a piece → its UTF-8 bytes.
  assert.deepEqual(tk.encode('hello world'), [1, id('▁hello'), id('▁world')]);
  assert.deepEqual(tk.encode('hello é', { addSpecialTokens: false }), [id('▁hello'), id('▁'), id('<0xC3>'), id('<0xA9>')]);
  // As transformers' legacy Llama tokenizer: only the text's leading space is stripped, so a BOS
  // kept in the output is followed by the space of '▁hello'.
  assert.equal(tk.decode(tk.encode('hello é')), '<s> hello é');
  assert.equal(tk.decode(tk.encode('hello é'), { skipSpecialTokens: true }), 'hello é');
  assert.equal(tk.decode(tk.encode('hello  world\nhello', { addSpecialTokens: false })), 'hello  world\nhello');
  assert.equal(tk.addBosToken, true);
  assert.equal(tk.bosTokenId, 1);
  assert.deepEqual(tk.eosTokenIds, [2]);
  assert.equal(tk.idToToken(id('__proto__')), '__proto__');
  assert.equal(tk.decode([id('__proto__')]), '__proto__');
  // Without the space prefix (tokenizer.ggml.add_space_prefix = false) nothing is prepended.
  const noPrefix = tokenizerFromGgufMetadata(spmMeta([['tokenizer.ggml.add_space_prefix', false]]), 'spm.gguf');
  assert.deepEqual(noPrefix.encode(' hello', { addSpecialTokens: false }), [id('▁hello')]);
});

test('duplicate token strings: every id still decodes to its text', () => {
  const meta = tinyTokenizerGgufMetadata(json);
  const tokens = (meta.get('tokenizer.ggml.tokens') as string[]).slice();
  const types = (meta.get('tokenizer.ggml.token_type') as number[]).slice();
  tokens.push('<|eot_id|>'); // a second copy, as some converted checkpoints have
  types.push(TokenType.CONTROL);
  meta.set('tokenizer.ggml.tokens', tokens);
  meta.set('tokenizer.ggml.token_type', types);
  const tk = tokenizerFromGgufMetadata(meta, 'dup.gguf');
  assert.equal(tk.vocabSize, 513);
  assert.equal(tk.decode([tinyTokenizerGgufVocab(json).eosId]), '<|eot_id|>');
  assert.equal(tk.decode([512]), '<|eot_id|>');
});

test('malformed GGUF tokenizer metadata: FormatError naming the file and key', () => {
  const bad = (edit: (m: Map<string, unknown>) => void, re: RegExp, limits = {}) => {
    const m = tinyTokenizerGgufMetadata(json);
    edit(m);
    assert.throws(() => tokenizerFromGgufMetadata(m, 'bad.gguf', limits),
      (e: unknown) => e instanceof FormatError && e.message.startsWith('bad.gguf: ') && re.test(e.message), String(re));
  };
  bad((m) => m.delete('tokenizer.ggml.model'), /tokenizer\.ggml\.model is missing/);
  bad((m) => m.set('tokenizer.ggml.model', 'bert'), /tokenizer\.ggml\.model 'bert' is not supported/);
  bad((m) => m.delete('tokenizer.ggml.tokens'), /tokenizer\.ggml\.tokens is missing/);
  bad((m) => m.set('tokenizer.ggml.tokens', 'abc'), /tokenizer\.ggml\.tokens must be an array of strings/);
  bad((m) => m.set('tokenizer.ggml.tokens', [1, 2, 3]), /tokenizer\.ggml\.tokens\[0\] must be a string/);
  bad((m) => m.set('tokenizer.ggml.tokens', []), /tokenizer\.ggml\.tokens is empty/);
  bad((m) => m.set('tokenizer.ggml.token_type', [1, 1]), /token_type has 2 entries but tokenizer\.ggml\.tokens has 512/);
  bad((m) => m.set('tokenizer.ggml.token_type', new Array(512).fill(9)), /token_type\[0\] = 9 is not a token type/);
  bad((m) => m.set('tokenizer.ggml.scores', [0.5]), /tokenizer\.ggml\.scores has 1 entries/);
  bad((m) => m.delete('tokenizer.ggml.merges'), /tokenizer\.ggml\.merges is missing/);
  bad((m) => m.set('tokenizer.ggml.merges', ['nospace']), /tokenizer\.ggml\.merges\[0\]/);
  bad((m) => m.set('tokenizer.ggml.merges', ['Ġ zzz']), /tokenizer\.ggml\.merges\[0\] = "Ġ zzz" is not "left right" over tokens/);
  bad((m) => m.set('tokenizer.ggml.bos_token_id', 512), /tokenizer\.ggml\.bos_token_id = 512 is outside the vocabulary of 512 tokens/);
  bad((m) => m.set('tokenizer.ggml.eos_token_id', 1.5), /tokenizer\.ggml\.eos_token_id must be an integer/);
  bad((m) => m.set('tokenizer.ggml.eot_token_id', -7), /tokenizer\.ggml\.eot_token_id = -7/);
  bad((m) => m.set('tokenizer.ggml.add_bos_token', 1), /tokenizer\.ggml\.add_bos_token must be a boolean/);
  bad((m) => m.set('tokenizer.ggml.pre', 'mystery'), /tokenizer\.ggml\.pre 'mystery' is not supported/);
  bad((m) => m.set('tokenizer.chat_template', 42), /tokenizer\.chat_template must be a string/);
  bad(() => undefined, /tokenizer\.ggml\.tokens has 512 entries, more than the limit of 300/, { maxVocab: 300 });
  bad(() => undefined, /tokenizer\.ggml\.merges has 250 entries, more than the limit of 100/, { maxMerges: 100 });
  const spm = spmMeta();
  spm.delete('tokenizer.ggml.scores');
  assert.throws(() => tokenizerFromGgufMetadata(spm, 'spm.gguf'), /spm\.gguf: tokenizer\.ggml\.scores is required/);
});

test('pre-tokenizers: qwen2 and smollm split digits singly; every supported pre round-trips', () => {
  // Digit merges added to the tiny vocabulary, so the grouping of digits shows in the ids.
  const withPre = (pre: string) => {
    const m = tinyTokenizerGgufMetadata(json);
    m.set('tokenizer.ggml.pre', pre);
    m.set('tokenizer.ggml.tokens', [...(m.get('tokenizer.ggml.tokens') as string[]), '56', '567', '89', '898']);
    m.set('tokenizer.ggml.token_type', [...(m.get('tokenizer.ggml.token_type') as number[]), 1, 1, 1, 1]);
    m.set('tokenizer.ggml.merges', [...(m.get('tokenizer.ggml.merges') as string[]), '5 6', '56 7', '8 9', '89 8']);
    return tokenizerFromGgufMetadata(m, `${pre}.gguf`);
  };
  const digits = (pre: string) => {
    const tk = withPre(pre);
    return tk.encode('5678989', { addSpecialTokens: false }).map((i) => tk.idToToken(i));
  };
  // llama-bpe: words 567 | 898 | 9 (\p{N}{1,3}), whole words in the vocabulary taken as they are.
  assert.deepEqual(digits('llama-bpe'), ['567', '898', '9']);
  assert.deepEqual(digits('qwen2'), ['5', '6', '7', '8', '9', '8', '9']); // \p{N}
  assert.deepEqual(digits('smollm'), ['5', '6', '7', '8', '9', '8', '9']); // \p{N} first
  // gpt-2: one word (' ?\p{N}+'), then merges by rank: 5 6 → 56 7 → 567, 8 9 twice.
  assert.deepEqual(digits('gpt-2'), ['567', '89', '89']);
  assert.deepEqual(withPre('qwen2').encode('Hello world', { addSpecialTokens: false }), fromJson.encode('Hello world', { addSpecialTokens: false }));
  const noAddBos = (pre: string) => {
    const m = tinyTokenizerGgufMetadata(json);
    m.set('tokenizer.ggml.pre', pre);
    m.delete('tokenizer.ggml.add_bos_token');
    return tokenizerFromGgufMetadata(m, `${pre}.gguf`).addBosToken;
  };
  // llama.cpp's defaults when the file does not say: BOS for llama-bpe, not for qwen2.
  assert.equal(noAddBos('qwen2'), false);
  assert.equal(noAddBos('llama-bpe'), true);
  for (const pre of ['default', 'gpt-2', 'llama3', 'deepseek-r1-qwen']) {
    const tk = withPre(pre);
    for (const s of samples) assert.equal(tk.decode(tk.encode(s, { addSpecialTokens: false })), s, `${pre}: ${JSON.stringify(s)}`);
  }
});
