// `init` (a fine-tune): weights copied by name from a model folder; a grown vocabulary keeps the old rows.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TrainMemory } from '../../src/training/memory.js';
import { buildModel } from '../../src/training/train-model.js';
import { initFromModel } from '../../src/training/train-init.js';

const spec = { d: 16, layers: 1, heads: 2 };

test('init copies every parameter; the embedding of a grown vocabulary keeps its new rows', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-init-'));
  const mem = new TrainMemory({ bytes: 8 << 20, kernels: 'reference', label: 'init-test' });
  try {
    const base = buildModel('llama', spec, mem, { vocabSize: 10, context: 8, seed: 1 });
    base.exportWeights(dir);
    const grown = buildModel('llama', spec, mem, { vocabSize: 13, context: 8, seed: 2 });
    const fresh = grown.params.get('model.embed_tokens.weight').data.slice();
    initFromModel(grown.params, dir);
    for (const p of base.params.list()) {
      const q = grown.params.get(p.name).data;
      if (p.name === 'model.embed_tokens.weight') {
        assert.deepEqual(q.subarray(0, 10 * 16), p.data);                 // the old tokens' rows
        assert.deepEqual(q.subarray(10 * 16), fresh.subarray(10 * 16));   // the added tokens keep their initialisation
      } else {
        assert.deepEqual(q, p.data, p.name);
      }
    }
    // another shape is refused, naming the parameter
    const wider = buildModel('llama', { ...spec, d: 32 }, mem, { vocabSize: 10, context: 8, seed: 1 });
    assert.throws(() => initFromModel(wider.params, dir), /init: model\.embed_tokens\.weight is \[10, 16\] in .* but \[10, 32\] here/);
    const smaller = buildModel('llama', spec, mem, { vocabSize: 8, context: 8, seed: 1 });
    assert.throws(() => initFromModel(smaller.params, dir), /is \[10, 16\] in .* but \[8, 16\] here/);
    assert.throws(() => initFromModel(grown.params, join(dir, 'missing')), /model\.safetensors does not exist; init must be a model folder/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
