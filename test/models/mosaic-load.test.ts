// A Memory Mosaic checkpoint runs through the same entry points as a Llama one: loadModel, the API
// and the CLI (generate --json, info, --attention: its contextual memory read through a backend).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync, spawnSync } from 'node:child_process';
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
  await assert.rejects(loadModel(dir, { quantize: 'q8_0' }), /Memory Mosaic; quantize and draft attention apply to Llama-family models only/);
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

test('loadModel, the API and the CLI pass an attention spec to a mosaic; a bad one gets the same error as for a Llama', async () => {
  const ids = [5, 77, 300, 12, 9, 41, 7, 19, 250, 3];
  /** Logits of the last token after a prefill of all but it, then that token as a decode step. */
  const decodeLogits = async (attention?: string) => {
    const { model } = await loadModel(dir, attention === undefined ? {} : { attention });
    try {
      const cache = model.createCache();
      model.forward(ids.slice(0, -1), cache, { phase: 'prefill' });
      const out = Float32Array.from(model.forward(ids.slice(-1), cache, { phase: 'decode' }));
      cache.release();
      return out;
    } finally { model.dispose(); }
  };
  const maxDiff = (a: Float32Array, b: Float32Array) => a.reduce((w, x, i) => Math.max(w, Math.abs(x - b[i])), 0);
  const own = await decodeLogits();
  assert.ok(maxDiff(await decodeLogits('dense'), own) < 2e-5, 'dense through the backend == the exact read-out');
  // a window of 2 keys reads fewer rows at decode: the spec reached the contextual memory
  assert.ok(maxDiff(await decodeLogits('streaming:sinks=0,window=2'), own) > 1e-4, 'streaming:window=2 must change the decode logits');

  const plain = await load(dir);
  const viaDense = await load(dir, { attention: 'dense' });
  const prompt = 'the cat sat on the mat';
  const a = await plain.complete(prompt, { maxTokens: 8, temperature: 0 });
  const b = await viaDense.complete(prompt, { maxTokens: 8, temperature: 0 });
  plain.dispose(); viaDense.dispose();
  assert.deepEqual(b.tokens, a.tokens);

  const cli = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
  const generate = (...extra: string[]) => spawnSync(process.execPath,
    [cli, 'generate', '--model', dir, '--prompt', prompt, '--max-tokens', '8', '--temperature', '0', '--json', ...extra], { encoding: 'utf8' });
  const dense = generate('--attention', 'dense');
  assert.equal(dense.status, 0, dense.stderr);
  assert.deepEqual(JSON.parse(dense.stdout).tokens, a.tokens);

  await assert.rejects(loadModel(dir, { attention: 'magicpig:Q=3' }), /magicpig has no parameter "Q"/);
  const unknown = generate('--attention', 'sparse');
  assert.equal(unknown.status, 1);
  assert.match(unknown.stderr, /unknown backend "sparse"; choose one of dense, topk/);
  const badParam = generate('--attention', 'magicpig:Q=3');
  assert.equal(badParam.status, 1);
  assert.match(badParam.stderr, /magicpig has no parameter "Q"/);
});
