// A Memory Mosaic checkpoint runs through the same entry points as a Llama one: loadModel, the API
// and the CLI (generate --json, info).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { mosaicConfig } from '../../src/mosaic/config.js';
import { initMosaicParams } from '../../src/mosaic/params.js';
import { saveMosaicCheckpoint } from '../../src/mosaic/checkpoint.js';
import { referenceLogits } from '../../src/mosaic/reference.js';
import { buildTinyTokenizerJson, tinyTokenizerConfig } from '../../src/testing/tiny-tokenizer.js';
import { loadModel, describeModel } from '../../src/models/load.js';
import { load } from '../../src/api/index.js';

const dir = mkdtempSync(join(tmpdir(), 'tessera-mosaic-load-'));
const tokenizer = buildTinyTokenizerJson();
const vocab = Object.keys((tokenizer as { model: { vocab: object } }).model.vocab).length
  + ((tokenizer as { added_tokens?: unknown[] }).added_tokens?.length ?? 0);
const config = mosaicConfig({ vocab_size: vocab, n_embd: 32, n_layer: 2, n_head: 4, block_size: 64 });
const params = initMosaicParams(config, 3);
saveMosaicCheckpoint(dir, config, params);
writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(tokenizer));
writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify(tinyTokenizerConfig()));
test.after(() => rmSync(dir, { recursive: true, force: true }));

test('loadModel runs a mosaic folder and matches the float64 reference', async () => {
  const { model, config: c, info } = await loadModel(dir);
  try {
    assert.equal(c.model_type, 'memory_mosaic');
    assert.equal(info.parameters, [...params.values()].reduce((a, t) => a + t.length, 0));
    const ids = [5, 77, 300, 12, 9, 41];
    const got = model.forward(ids, model.createCache(), { logits: 'all' });
    const ref = referenceLogits(config, params, ids);
    let diff = 0, scale = 0;
    ref.forEach((r: number, i: number) => { diff = Math.max(diff, Math.abs(r - got[i])); scale = Math.max(scale, Math.abs(r)); });
    assert.ok(diff / scale < 1e-4, `relative difference ${diff / scale}`);
  } finally { model.dispose(); }
  assert.equal(describeModel(dir).config.model_type, 'memory_mosaic');
  await assert.rejects(loadModel(dir, { quantize: 'q8_0' }), /Memory Mosaic; quantize, sparse attention and draft attention apply to Llama-family models only/);
  await assert.rejects(loadModel(dir, { draftAttention: 'streaming' }), /Memory Mosaic; .*draft attention apply to Llama-family models only/);
});

test('the API and the CLI generate from a mosaic like from a Llama', async () => {
  const t = await load(dir);
  const r = await t.complete('the cat', { maxTokens: 6, temperature: 0 });
  t.dispose();
  assert.equal(r.tokens.length, 6);
  const cli = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
  const out = JSON.parse(execFileSync(process.execPath, [cli, 'generate', '--model', dir, '--prompt', 'the cat', '--max-tokens', '6', '--temperature', '0', '--json'], { encoding: 'utf8' }));
  assert.deepEqual(out.tokens, r.tokens);
  const info = JSON.parse(execFileSync(process.execPath, [cli, 'info', '--model', dir, '--json'], { encoding: 'utf8' }));
  assert.equal(info.architecture, 'memory_mosaic');
  assert.equal(info.layers, 2);
});
