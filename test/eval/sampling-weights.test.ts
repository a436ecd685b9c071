// The sampling-weights diagnostic on a tiny random checkpoint: one row per query head, with the
// effective sample sizes bounded by what they count, and u spread and errors that are real numbers.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeTestCheckpoint } from '../../src/testing/checkpoints.js';
import { samplingWeights, samplingWeightsMarkdown } from '../../src/eval/sampling-weights.js';

let dir: string, model: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'tessera-weights-'));
  model = writeTestCheckpoint(dir, 'llama3-tiny', { formats: ['hf'] }).hfDir!;
});
after(() => rmSync(dir, { recursive: true, force: true }));

test('sampling weights: per-head ESS within bounds, finite errors, and a markdown table', async () => {
  const o = { model, task: 'niah_single', length: 300, prompts: 2, K: 4, L: 20, layer: 1, draws: 2 };
  const rows = await samplingWeights(o);
  assert.equal(rows.length, 4, 'llama3-tiny has 4 query heads');
  for (const r of rows) {
    assert.ok(r.denseEss >= 1 && r.denseEss <= 302, `dense ESS ${r.denseEss}`);
    assert.ok(r.sampled > 0, 'K=4, L=20 samples keys');
    assert.ok(r.sampledEss >= 1 && r.sampledEss <= r.sampled + 1e-9, `ESS ${r.sampledEss} of ${r.sampled}`);
    assert.ok(r.uSpread >= 1, `u spread ${r.uSpread}`);
    for (const e of [r.errMagicpig, r.errOracle, r.errTopk]) assert.ok(Number.isFinite(e) && e >= 0, `error ${e}`);
    assert.ok(r.topkModeShare > 0 && r.topkModeShare <= 1 && r.topkModeContextShare > 0 && r.topkModeContextShare <= 1);
  }
  const md = samplingWeightsMarkdown(o, rows);
  assert.match(md, /\| query head \|/);
  assert.equal(md.trim().split('\n').filter((l) => /^\| \d/.test(l)).length, 4);
  await assert.rejects(samplingWeights({ ...o, layer: 9 }), /no layer 9/);
  // K = 0: every middle key shares the (single) bucket, u = 1, and the estimate is the exact softmax
  // (up to the 1e-4 floor added to u, which weighs sampled keys 1/(1 + 1e-4) against the dense ones)
  for (const r of await samplingWeights({ ...o, K: 0, L: 2, prompts: 1, draws: 1 })) {
    assert.ok(r.errMagicpig < 1e-4, `K=0 is exact, error ${r.errMagicpig}`);
    assert.ok(r.errOracle > 1e-3, 'oracle sampling with the same number of draws is not');
    assert.equal(r.uSpread, 1);
    assert.ok(r.sampled > 250, `every middle key is sampled (${r.sampled})`);
  }
});
