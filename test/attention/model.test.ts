// Every backend through the whole model (tiny random-weight checkpoint): finite logits for all, and
// the same logits as dense for dense-equivalent settings, over a prefill and 24 decode steps.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeTestCheckpoint } from '../../src/testing/checkpoints.js';
import { loadModel } from '../../src/models/load.js';

let dir: string, path: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'tessera-attn-'));
  path = writeTestCheckpoint(join(dir, 'ck'), 'llama3-tiny', { formats: ['hf'] }).hfDir!;
});
after(() => rmSync(dir, { recursive: true, force: true }));

const prompt = Array.from({ length: 180 }, (_, i) => 3 + ((i * 37) % 200));
const follow = Array.from({ length: 24 }, (_, i) => 5 + ((i * 11) % 150));

async function run(attention: string, cacheDType: 'f32' | 'f16' = 'f32'): Promise<Float32Array[]> {
  const { model } = await loadModel(path, { threads: 2, attention, contextLength: 256, cacheDType });
  try {
    const cache = model.createCache();
    const out = [model.forward(prompt, cache).slice()];
    for (const t of follow) out.push(model.forward([t], cache).slice());
    return out;
  } finally { model.dispose(); }
}

const maxDiff = (a: Float32Array[], b: Float32Array[]) => Math.max(...a.map((x, i) => x.reduce((m, v, j) => Math.max(m, Math.abs(v - b[i]![j]!)), 0)));

for (const cacheDType of ['f32', 'f16'] as const) {
  test(`dense-equivalent settings give dense logits (${cacheDType} cache)`, async () => {
    const dense = await run('dense', cacheDType);
    for (const spec of ['magicpig:K=0,L=2,floor=0,dense=0', 'magicpig:K=0,L=2,floor=0,dense=none,threshold=4,window=8,delta=8',
      'topk:k=100000,dense=none', 'streaming:window=100000', 'quest:budget=1,dense=none']) {
      const got = await run(spec, cacheDType);
      assert.ok(maxDiff(got, dense) < (cacheDType === 'f16' ? 5e-3 : 2e-4), `${spec}: max logit difference ${maxDiff(got, dense)}`);
    }
  });
}

test('every backend at a real budget gives finite logits and differs from dense (it is sparse)', async () => {
  const dense = await run('dense');
  for (const spec of ['magicpig', 'magicpig:K=8,L=64', 'magicpig:K=4,L=16,threshold=8,window=8,dense=none', 'topk', 'quest',
    'streaming:window=32', 'oracle-sampling:budget=0.1']) {
    const got = await run(spec);
    assert.ok(got.every((l) => l.every(Number.isFinite)), `${spec}: non-finite logits`);
    assert.ok(maxDiff(got.slice(1), dense.slice(1)) > 1e-4, `${spec}: decode logits equal dense, nothing was skipped`);
    assert.ok(maxDiff(got.slice(0, 1), dense.slice(0, 1)) < 2e-4, `${spec}: prefill must be dense`);
  }
});

// A model loaded once answers many prompts (generate, eval): a new cache must not see anything of the
// previous one — MagicPIG's tables in particular are built from the prompt, and stale tables would
// sample against another prompt's keys.
test('a fresh cache, or a kept prefix, on a reused model gives the logits of a freshly loaded model, for every backend', async () => {
  const other = Array.from({ length: 200 }, (_, i) => 7 + ((i * 53) % 190));
  for (const spec of ['dense', 'magicpig:K=8,L=64,dense=none', 'magicpig:K=4,L=16,threshold=8,window=8,dense=none', 'topk:dense=none',
    'quest:dense=none', 'streaming:window=32', 'oracle-sampling:budget=0.1,dense=none']) {
    const fresh = await run(spec);
    // before: a long prompt decoded past MagicPIG's table build, or a short one that never built them
    for (const [before, steps] of [[other, 24], [other.slice(0, 10), 2]] as const) {
      const { model } = await loadModel(path, { threads: 2, attention: spec, contextLength: 256, cacheDType: 'f32' }); // as run()
      try {
        let cache = model.createCache();
        model.forward(before, cache);
        for (const t of follow.slice(0, steps)) model.forward([t], cache);
        cache = model.createCache();
        const reused = [model.forward(prompt, cache).slice()];
        for (const t of follow) reused.push(model.forward([t], cache).slice());
        assert.equal(maxDiff(reused, fresh), 0, `${spec} after ${before.length}+${steps} tokens: logits differ from a fresh load by ${maxDiff(reused, fresh)}`);
      } finally { model.dispose(); }
    }
    // a kept prefix (the API reuses the prompt's common prefix): truncate into the middle of a
    // 16-token page, then the rest of the prompt — the same logits as a fresh load again
    // (keep 150 with nothing after it: MagicPIG's tables, built at the first decode over [4, 85), lie below the cut)
    for (const [keep, extra] of [[12, 100], [100, 100], [150, 0]] as const) {
      const { model } = await loadModel(path, { threads: 2, attention: spec, contextLength: 256, cacheDType: 'f32' }); // as run()
      try {
        const cache = model.createCache();
        model.forward([...prompt.slice(0, keep), ...other.slice(0, extra)], cache);
        for (const t of follow) model.forward([t], cache);
        cache.truncate(keep);
        const reused = [model.forward(prompt.slice(keep), cache).slice()];
        for (const t of follow) reused.push(model.forward([t], cache).slice());
        // the prompt now arrives in other prefill chunks, which moves dense logits by ~3e-5; leaked
        // state moved them by 28–34
        assert.ok(maxDiff(reused, fresh) < 1e-3, `${spec} with a kept prefix of ${keep}: logits differ from a fresh load by ${maxDiff(reused, fresh)}`);
      } finally { model.dispose(); }
    }
  }
});
