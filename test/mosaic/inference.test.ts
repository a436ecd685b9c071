// Cached Memory Mosaic inference: incremental decoding equals the full-sequence training forward and
// the float64 reference; truncate() rolls back exactly; checkpoints round-trip through safetensors.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TrainMemory } from '../../src/training/memory.js';
import { Tape } from '../../src/training/autograd/tape.js';
import { Rng } from '../../src/training/rng.js';
import { mosaicConfig } from '../../src/mosaic/config.js';
import { MosaicTrainModel } from '../../src/mosaic/model-train.js';
import { referenceLogits } from '../../src/mosaic/reference.js';
import { MosaicInference } from '../../src/mosaic/inference.js';
import { saveMosaicCheckpoint, readMosaicCheckpoint } from '../../src/mosaic/checkpoint.js';
import { isMosaicFolder, loadMosaic } from '../../src/mosaic/load.js';

const cfg = mosaicConfig({ vocab_size: 13, n_embd: 12, n_layer: 2, n_head: 3, block_size: 32, pmem_size: 9 });

function trainedLikeParams(): { params: Map<string, Float32Array>; full: (tokens: number[]) => Float32Array } {
  const mem = new TrainMemory({ bytes: 16 << 20, kernels: 'wasm' });
  const tape = new Tape(mem);
  const model = new MosaicTrainModel(mem, cfg, 3);
  const rng = new Rng(9);
  for (const t of model.params.list()) if (t.ndim === 1) for (let i = 0; i < t.size; i++) t.data[i] *= 1 + 0.3 * rng.normal();
  return {
    params: model.snapshot(),
    full: (tokens) => { tape.reset(); return tape.noGrad(() => model.forward(tape, tokens, 1, tokens.length)).toArray(); },
  };
}

function maxRel(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let scale = 0, worst = 0;
  for (let i = 0; i < b.length; i++) scale = Math.max(scale, Math.abs(b[i]));
  for (let i = 0; i < b.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]) / scale);
  return worst;
}

const tokens = [4, 7, 7, 1, 12, 0, 3, 4, 7, 9, 2, 2, 11, 5];

for (const kernels of ['wasm', 'reference'] as const) {
  test(`incremental decoding == full-sequence training forward == float64 reference (${kernels} kernels)`, () => {
    const { params, full } = trainedLikeParams();
    const inf = new MosaicInference(cfg, params, { kernels, contextLength: 20 });
    const cache = inf.createCache();
    const V = cfg.vocab_size, T = tokens.length;
    const inc = new Float32Array(T * V);
    // a prefill chunk of 5, then one token at a time
    inc.set(inf.forward(tokens.slice(0, 5), cache, { logits: 'all' }), 0);
    for (let t = 5; t < T; t++) inc.set(inf.forward([tokens[t]], cache), t * V);
    assert.equal(cache.length, T);
    const train = full(tokens), ref = referenceLogits(cfg, params, tokens);
    assert.ok(maxRel(inc, train) < 1e-4, `incremental vs training forward: ${maxRel(inc, train)}`);
    assert.ok(maxRel(inc, ref) < 1e-4, `incremental vs reference: ${maxRel(inc, ref)}`);
    inf.dispose();
  });
}

test('truncate(n) makes the newest value slot pending again: decoding after rollback equals a fresh run', () => {
  const { params } = trainedLikeParams();
  const inf = new MosaicInference(cfg, params, { contextLength: 20 });
  const cache = inf.createCache();
  inf.forward(tokens.slice(0, 9), cache);
  cache.truncate(4);                                       // keep 4, the 4th value slot pending again
  const after = inf.forward([9, 10, 1], cache, { logits: 'all' }).slice();
  const fresh = referenceLogits(cfg, params, [...tokens.slice(0, 4), 9, 10, 1]);
  assert.ok(maxRel(after, fresh.slice(4 * cfg.vocab_size)) < 1e-4);
  assert.throws(() => inf.forward(new Array(20).fill(1), cache), /exceed the cache capacity/);
  assert.throws(() => inf.forward([13], cache), /outside/);
});

test('checkpoint folder round trip and loadMosaic', async () => {
  const { params } = trainedLikeParams();
  const dir = mkdtempSync(join(tmpdir(), 'mosaic-'));
  try {
    saveMosaicCheckpoint(dir, cfg, params);
    assert.ok(isMosaicFolder(dir));
    const back = readMosaicCheckpoint(dir);
    assert.deepEqual(back.config, cfg);
    for (const [name, t] of params) assert.deepEqual(back.params.get(name), t, name);
    const { model, config, tokenizer } = await loadMosaic(dir, { tokenizer: false, contextLength: 16 });
    assert.equal(config.n_layer, 2);
    assert.equal(tokenizer, null);
    const logits = model.forward(tokens.slice(0, 6), model.createCache());
    const ref = referenceLogits(cfg, params, tokens.slice(0, 6)).slice(5 * cfg.vocab_size);
    assert.ok(maxRel(logits, ref) < 1e-4);
    await assert.rejects(loadMosaic(dir), /no tokenizer\.json/);
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ model_type: 'memory_mosaic', vocab_size: 13, n_embd: 12, n_layer: 2, n_head: 5 }));
    assert.throws(() => readMosaicCheckpoint(dir), /n_embd 12 is not divisible by n_head 5/);
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...cfg, pmem_size: 10 }));
    assert.throws(() => readMosaicCheckpoint(dir), /P_k has shape \[3, 9, 4\], the config needs \[3, 10, 4\]/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
