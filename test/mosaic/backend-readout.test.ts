// A mosaic's contextual memory read through Tessera's attention backends: dense through the backend
// equals the mosaic's own exact read-out (prompt and generated tokens, across KV pages, after a
// truncation); a sparse backend whose budget covers every key is exact too; one that drops keys
// changes the generated tokens' logits but never the prompt's (prefill is exact); the loader takes a
// spec string and rejects a bad one.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TrainMemory } from '../../src/training/memory.js';
import { Rng } from '../../src/training/rng.js';
import { mosaicConfig } from '../../src/mosaic/config.js';
import { MosaicTrainModel } from '../../src/mosaic/model-train.js';
import { MosaicInference } from '../../src/mosaic/inference.js';
import { saveMosaicCheckpoint } from '../../src/mosaic/checkpoint.js';
import { loadMosaic } from '../../src/mosaic/load.js';
import { attentionBackend } from '../../src/attention/create.js';
import { parseAttentionSpec } from '../../src/attention/spec.js';
import { ThreadPool } from '../../src/runtime/pool.js';

const cfg = mosaicConfig({ vocab_size: 17, n_embd: 32, n_layer: 2, n_head: 4, block_size: 64, pmem_size: 16 });
const T = 150;                                              // > 2 KV pages of 64 rows

function params(): Map<string, Float32Array> {
  const mem = new TrainMemory({ bytes: 16 << 20, kernels: 'wasm' });
  const model = new MosaicTrainModel(mem, cfg, 5);
  const rng = new Rng(11);
  // sharper keys than at initialisation, so the softmax is not nearly uniform and dropping keys shows
  for (const t of model.params.list()) if (t.ndim === 1) for (let i = 0; i < t.size; i++) t.data[i] *= 1 + 0.3 * rng.normal();
  return model.snapshot();
}

const tokens = (() => { const r = new Rng(3); return Array.from({ length: T }, () => r.int(cfg.vocab_size)); })();

/** Logits of every position: the first `prompt` tokens as one prefill call, then one decode step each. */
function run(m: MosaicInference, prompt: number): Float32Array {
  const V = cfg.vocab_size, out = new Float32Array(T * V), cache = m.createCache();
  out.set(m.forward(tokens.slice(0, prompt), cache, { logits: 'all', phase: 'prefill' }), 0);
  for (let t = prompt; t < T; t++) out.set(m.forward([tokens[t]], cache, { phase: 'decode' }), t * V);
  cache.release();
  return out;
}

function maxAbs(a: Float32Array, b: Float32Array, from = 0, to = a.length): number {
  let w = 0;
  for (let i = from; i < to; i++) w = Math.max(w, Math.abs(a[i] - b[i]));
  return w;
}

test('dense through the attention backend == the mosaic\'s own contextual memory (prefill and decode, across pages)', async () => {
  const p = params();
  const own = new MosaicInference(cfg, p, { contextLength: T });
  const pool = await ThreadPool.create({ threads: 1, kernels: 'wasm' });
  const viaDense = new MosaicInference(cfg, p, { contextLength: T, attention: { backend: attentionBackend(parseAttentionSpec('dense')), pool } });
  const a = run(own, 40), b = run(viaDense, 40);
  assert.ok(maxAbs(a, b) < 2e-5, `dense backend vs own read-out: ${maxAbs(a, b)}`);
  // a rollback: cut to 90 positions, feed the rest again; equal to the uninterrupted run
  const cache = viaDense.createCache(), V = cfg.vocab_size;
  viaDense.forward(tokens.slice(0, 120), cache, { phase: 'prefill' });
  cache.truncate(90);
  const again = viaDense.forward(tokens.slice(90), cache, { logits: 'all', phase: 'decode' });
  assert.ok(maxAbs(again, a.subarray(90 * V)) < 2e-5, `after truncate: ${maxAbs(again, a.subarray(90 * V))}`);
  cache.release();
  pool.dispose();
});

test('sparse backends: a budget covering every key is exact; a small one changes only the generated tokens', async () => {
  const p = params(), V = cfg.vocab_size, prompt = 40;
  const exact = run(new MosaicInference(cfg, p, { contextLength: T }), prompt);
  const pool = await ThreadPool.create({ threads: 1, kernels: 'wasm' });
  const withSpec = (spec: string) => run(new MosaicInference(cfg, p, { contextLength: T, attention: { backend: attentionBackend(parseAttentionSpec(spec)), pool } }), prompt);
  const all = withSpec(`topk:k=${T},sinks=0,window=0`);
  assert.ok(maxAbs(all, exact) < 2e-5, `topk over every key: ${maxAbs(all, exact)}`);
  for (const spec of ['streaming:sinks=1,window=8', 'magicpig:K=4,L=4,sinks=1,window=4,dense=none']) {
    const sparse = withSpec(spec);
    assert.ok(maxAbs(sparse, exact, 0, prompt * V) < 2e-5, `${spec}: prompt logits must be exact, got ${maxAbs(sparse, exact, 0, prompt * V)}`);
    assert.ok(maxAbs(sparse, exact, prompt * V) > 1e-3, `${spec}: generated tokens read fewer keys and must differ, got ${maxAbs(sparse, exact, prompt * V)}`);
  }
  pool.dispose();
});

test('loadMosaic takes an attention spec (and owns its pool); a bad spec is refused by name', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'mosaic-backend-'));
  try {
    const p = params();
    saveMosaicCheckpoint(dir, cfg, p);
    const plain = await loadMosaic(dir, { tokenizer: false, contextLength: T });
    const viaSpec = await loadMosaic(dir, { tokenizer: false, contextLength: T, attention: 'dense' });
    const a = run(plain.model, 10), b = run(viaSpec.model, 10);
    assert.ok(maxAbs(a, b) < 2e-5);
    viaSpec.model.dispose();
    await assert.rejects(loadMosaic(dir, { tokenizer: false, attention: 'magicpig:Q=3' }), /magicpig has no parameter "Q"/);
    await assert.rejects(loadMosaic(dir, { tokenizer: false, attention: 'sparse' }), /unknown backend "sparse"/);
  } finally { rmSync(dir, { recursive: true, force: true }); }
});
