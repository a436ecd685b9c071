// Continued training from an exported long-context model (config `initFrom`): the run starts from
// the folder's parameters exactly, and a folder of another architecture or tokenizer is refused
// (including one whose tensor shapes happen to match), as is exporting over the folder it starts from.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TrainMemory } from '../../src/training/memory.js';
import { Params } from '../../src/training/params.js';
import { readSafetensorsF32 } from '../../src/training/checkpoint.js';
import { LongContextModel } from '../../src/experiments/long-context/model.js';
import { LongContextTasks, trainLongContextTokenizer } from '../../src/experiments/long-context/tasks.js';
import { validateConfig, type LongContextConfig } from '../../src/experiments/long-context/config.js';
import { modelConfig, trainLongContext } from '../../src/experiments/long-context/train.js';
import { initFromFolder } from '../../src/experiments/long-context/init-from.js';

const tasks = new LongContextTasks(trainLongContextTokenizer(2100, 7));

function tiny(out: string, extra: Record<string, unknown> = {}, model: Record<string, unknown> = {}): LongContextConfig {
  return validateConfig({
    model: { d: 16, layers: 1, heads: 2, kvHeads: 1, ffn: 32, ...model }, tokenizer: { vocabSize: 2100, seed: 7 },
    mix: { 'needle-single': 1 }, stages: [{ steps: 1, context: 128, batch: 2 }],
    lmRows: 8, lmWeight: 0.2, lr: 3e-3, warmup: 1, seed: 3, evalEvery: 0, evalExamples: 1, evalContext: 128,
    out, modelDir: join(out, 'model'), ...extra,
  });
}

test('initFrom: a continued run starts from the folder\'s parameters (lr 0 exports them unchanged); other architectures and tokenizers are refused', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'lc-init-'));
  try {
    const base = tiny(join(dir, 'base'));
    await trainLongContext(base, { progress: false, log: () => {} });
    const before = readSafetensorsF32(join(base.modelDir, 'model.safetensors'));

    // a longer context, another data seed, learning rate 0: the export must hold the base weights
    const cont = tiny(join(dir, 'cont'), { initFrom: base.modelDir, lr: 0, minLr: 0, seed: 9, stages: [{ steps: 1, context: 256, batch: 1 }] });
    await trainLongContext(cont, { progress: false, log: () => {} });
    const after = readSafetensorsF32(join(cont.modelDir, 'model.safetensors'));
    assert.deepEqual([...after.keys()].sort(), [...before.keys()].sort());
    for (const [name, a] of before) assert.deepEqual(after.get(name), a, name);
    // … while a fresh run with the same seed does not
    const fresh = tiny(join(dir, 'fresh'), { lr: 0, minLr: 0, seed: 9, stages: [{ steps: 1, context: 256, batch: 1 }] });
    await trainLongContext(fresh, { progress: false, log: () => {} });
    assert.notDeepEqual(readSafetensorsF32(join(fresh.modelDir, 'model.safetensors')).get('model.embed_tokens.weight'), before.get('model.embed_tokens.weight'));

    const params = (cfg: LongContextConfig) => {
      const p = new Params(new TrainMemory({ bytes: 16 << 20, kernels: 'wasm' }), 0);
      const config = modelConfig(cfg, tasks.vocabSize, tasks.eot);
      new LongContextModel(config, p);
      return { p, config };
    };
    // 4 heads of 4 instead of 2 of 8: every tensor has the same shape, the model is another
    const heads = tiny(join(dir, 'h'), {}, { heads: 4, kvHeads: 2 });
    const h = params(heads);
    assert.throws(() => initFromFolder(h.p, base.modelDir, h.config, tasks.tokenizerJson), /num_attention_heads = 2 but this config's model has 4/);
    const theta = tiny(join(dir, 't'), {}, { ropeTheta: 500000 });
    const t = params(theta);
    assert.throws(() => initFromFolder(t.p, base.modelDir, t.config, tasks.tokenizerJson), /rope_theta/);
    // another tokenizer seed: same vocabulary size, other merges
    const other = new LongContextTasks(trainLongContextTokenizer(2100, 8));
    const s = params(base);
    assert.throws(() => initFromFolder(s.p, base.modelDir, s.config, other.tokenizerJson), /tokenizer/);
    assert.throws(() => initFromFolder(s.p, join(dir, 'nowhere'), s.config, tasks.tokenizerJson), /does not exist/);
    // the run refuses before training
    await assert.rejects(trainLongContext(tiny(join(dir, 'h2'), { initFrom: base.modelDir }, { heads: 4, kvHeads: 2 }), { progress: false, log: () => {} }), /num_attention_heads/);
    assert.throws(() => tiny(join(dir, 'x'), { initFrom: join(dir, 'x', 'model/') }), /modelDir must differ from initFrom/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
