// The Llama training model end to end: exact resume (N steps == N/2 + checkpoint + fresh process
// state + N/2, bit for bit), and the saved checkpoint loads in the inference engine with the same logits.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TrainMemory } from '../../src/training/memory.js';
import { Tape } from '../../src/training/autograd/tape.js';
import { Params } from '../../src/training/params.js';
import { AdamW } from '../../src/training/optim.js';
import { Trainer, type LogRow } from '../../src/training/trainer.js';
import { WindowBatches } from '../../src/training/batches.js';
import { LlamaTrain, hfConfigJson, llamaTrainConfig } from '../../src/training/models/llama-train.js';
import { loadModel } from '../../src/models/load.js';
import { buildTinyTokenizerJson } from '../../src/testing/tiny-tokenizer.js';
import { Rng } from '../../src/training/rng.js';

const tokenizer = buildTinyTokenizerJson();
const VOCAB = (tokenizer.model as { vocab: Record<string, number> }).vocab;
const V = Math.max(...Object.values(VOCAB)) + 1 + 8;   // room for the added special tokens
const config = llamaTrainConfig({ vocab_size: V, hidden_size: 32, intermediate_size: 48, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2 });
const corpus = (() => { const r = new Rng(5); return Int32Array.from({ length: 2000 }, () => r.int(40)); })();

function setup(dir: string | undefined, steps: number) {
  const mem = new TrainMemory({ bytes: 48 << 20, kernels: 'wasm' });
  const tape = new Tape(mem);
  const params = new Params(mem, 1234);
  const model = new LlamaTrain(config, params, { dropout: 0.1 });
  const optimizer = new AdamW(params, { weightDecay: 0.1 });
  const trainer = new Trainer({
    tape, params, optimizer, data: new WindowBatches(corpus, 2, 16, 99), schedule: { lr: 3e-3, warmup: 2, total: steps },
    steps, accumulate: 2, clip: 1, seed: 7, config: hfConfigJson(config), checkpointDir: dir, progress: false,
    loss: (t, b, rng) => model.loss(t, b.ids, b.targets, b.B, b.T, rng),
  });
  return { mem, tape, params, model, trainer };
}

test('resume is exact: 6 steps == 3 steps + checkpoint + resume + 3 steps (losses and parameters bit-identical)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-train-'));
  try {
    const a = setup(undefined, 6);
    const histA: LogRow[] = a.trainer.run();
    const b = setup(join(dir, 'ck'), 6);
    b.trainer.run(3);
    b.trainer.save();
    const c = setup(join(dir, 'ck'), 6);        // fresh memory, parameters, optimizer: a new process
    assert.equal(c.trainer.resume(), true);
    const histC = c.trainer.run();
    assert.deepEqual(histC.map((r) => r.loss), histA.map((r) => r.loss));
    assert.deepEqual(histC.map((r) => r.gradNorm), histA.map((r) => r.gradNorm));
    for (const p of a.params.list()) assert.deepEqual(c.params.get(p.name).data, p.data, p.name);
    assert.ok(histA[5].loss < histA[0].loss, `loss should fall: ${histA.map((r) => r.loss.toFixed(3)).join(' ')}`);
    assert.ok(!existsSync(join(dir, 'ck.tmp')), 'no temporary folder is left behind');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a trained checkpoint loads with loadModel and its inference logits equal the training forward', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-train-hf-'));
  try {
    const s = setup(join(dir, 'ck'), 2);
    s.trainer.run();
    s.trainer.save();
    writeFileSync(join(dir, 'ck', 'tokenizer.json'), JSON.stringify(tokenizer));
    const ids = Array.from({ length: 12 }, (_, i) => (i * 7 + 3) % 40);
    s.tape.training = false;
    const logits = s.tape.noGrad(() => s.model.forward(s.tape, ids, 1, ids.length)).toArray();   // (12, V)
    s.tape.reset();
    const loaded = await loadModel(join(dir, 'ck'), { kernels: 'wasm', threads: 1, contextLength: 32 });
    try {
      const inf = loaded.model.forward(ids, loaded.model.createCache(), { logits: 'all' });
      assert.equal(inf.length, logits.length);
      let err = 0, mag = 0;
      for (let i = 0; i < inf.length; i++) { err = Math.max(err, Math.abs(inf[i] - logits[i])); mag = Math.max(mag, Math.abs(logits[i])); }
      assert.ok(err <= 1e-4 * mag, `max |inference − training| = ${err}, max |logit| = ${mag}`);
    } finally {
      loaded.model.dispose();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
