// The evaluation harness end to end on a tiny random-weight checkpoint (it answers nonsense; the
// point is that every backend runs, is metered and the report files appear), the greedy answerer
// against the generation loop, and the keys meter.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeTestCheckpoint } from '../../src/testing/checkpoints.js';
import { loadModel } from '../../src/models/load.js';
import { generateText } from '../../src/generation/generate.js';
import { parseAttentionSpec } from '../../src/attention/spec.js';
import { runAccuracyEval } from '../../src/eval/harness.js';
import { writeAccuracyReport } from '../../src/eval/report.js';
import { greedyAnswer } from '../../src/eval/greedy.js';
import { KeysMeter } from '../../src/eval/keys-meter.js';
import { mergeAccuracyResults } from '../../src/eval/merge-results.js';
import type { LayerAttention } from '../../src/attention/types.js';
import type { LayerAttentionDims } from '../../src/attention/create.js';
import { parseTaskSpec } from '../../src/eval/tasks.js';

let dir: string, model: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'tessera-eval-harness-'));
  model = writeTestCheckpoint(dir, 'llama3-tiny', { formats: ['hf'] }).hfDir!;
});
after(() => rmSync(dir, { recursive: true, force: true }));

test('harness: tasks × backends run, are scored in [0, 100], metered, and written', async () => {
  const r = await runAccuracyEval({
    model, tasks: ['niah_single', 'most_frequent'].map(parseTaskSpec), lengths: [300], samples: 2,
    attention: ['dense', 'magicpig:K=4,L=20,window=16', 'streaming:window=32'], threads: 1, decodeLast: 2,
  });
  assert.equal(r.cells.length, 6);
  assert.equal(r.details.length, 12);
  for (const c of r.cells) assert.ok(c.accuracy >= 0 && c.accuracy <= 100);
  const cell = (b: string) => r.cells.find((c) => c.backend === b)!;
  assert.ok(Number.isNaN(cell('dense').keysFraction), 'dense has no sparse layers');
  assert.equal(cell('dense').denseLayers, 3);
  const mp = cell('magicpig:K=4,L=20,window=16'), st = cell('streaming:window=32');
  assert.ok(mp.keysFraction > 0 && mp.keysFraction < 1, `magicpig touched ${mp.keysFraction}`);
  assert.equal(mp.denseLayers, 2, 'magicpig keeps layers 0 and 1 (= 3/2) dense');
  assert.ok(st.keysFraction > 0 && st.keysFraction < (4 + 32 + 2) / 290);
  // over all layers, a dense layer counts every key: dense reads 100%, magicpig (2 of 3 layers dense)
  // (2 + its sparse fraction) / 3, streaming (no dense layer) its sparse fraction
  assert.equal(cell('dense').keysFractionAllLayers, 1);
  assert.ok(Math.abs(mp.keysFractionAllLayers - (2 + mp.keysFraction) / 3) < 1e-12, `${mp.keysFractionAllLayers}`);
  assert.ok(Math.abs(st.keysFractionAllLayers - st.keysFraction) < 1e-12);
  // The same prompt is given to every backend.
  const prompts = new Set(r.details.filter((d) => d.index === 0 && d.task === 'niah_single').map((d) => d.promptTokens));
  assert.equal(prompts.size, 1);
  const out = join(dir, 'out');
  const files = writeAccuracyReport(r, out);
  for (const f of ['results.json', 'results.md', 'accuracy-300.svg']) assert.ok(existsSync(join(out, f)), f);
  assert.equal(files.length, 3);
  assert.deepEqual(JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')).backends, r.backends);
  assert.match(readFileSync(join(out, 'results.md'), 'utf8'), /\| 300 \| niah_single \|/);
  assert.match(readFileSync(join(out, 'accuracy-300.svg'), 'utf8'), /^<svg/);
  // runs of the same prompts with different backends join into one report
  const part = (bs: string[]) => ({ ...r, backends: bs, cells: r.cells.filter((c) => bs.includes(c.backend)), details: r.details.filter((d) => bs.includes(d.backend)) });
  const merged = mergeAccuracyResults([part(r.backends.slice(0, 1)), part(r.backends.slice(1))]);
  assert.deepEqual(merged.backends, r.backends);
  assert.deepEqual(merged.cells, r.cells);
  assert.throws(() => mergeAccuracyResults([part(r.backends.slice(0, 1)), { ...part(r.backends.slice(1)), seed: 2 }]), /seed/);
  assert.throws(() => mergeAccuracyResults([r, part(r.backends.slice(1))]), /in two runs/);
  // a budget sweep (one kind at two settings) adds accuracy vs keys touched, one plot per task
  const sweep = { ...r, backends: [...r.backends, 'streaming:window=64'],
    cells: [...r.cells, ...r.cells.filter((c) => c.backend === 'streaming:window=32').map((c) => ({ ...c, backend: 'streaming:window=64', keysFraction: 2 * c.keysFraction }))] };
  const sweepFiles = writeAccuracyReport(sweep, join(dir, 'sweep'));
  assert.deepEqual(sweepFiles.filter((f) => f.includes('vs-keys')).map((f) => f.split('/').pop()), ['accuracy-vs-keys-300-1.svg', 'accuracy-vs-keys-300-2.svg']);
  const svg = readFileSync(join(dir, 'sweep', 'accuracy-vs-keys-300-1.svg'), 'utf8');
  for (const name of ['streaming', 'magicpig', 'dense (all keys)']) assert.ok(svg.includes(name), `legend has ${name}`);
});

test('greedyAnswer with a dense prefill equals greedy generateText', async () => {
  const { model: m, tokenizer } = await loadModel(model, { threads: 1, contextLength: 256 });
  try {
    const prompt = tokenizer.encode('The quick brown fox jumps over the lazy dog. Once upon a time, in a small town near the sea, there lived');
    for (const decodeLast of [0, 3]) {
      const a = greedyAnswer(m, tokenizer, prompt, { maxTokens: 12, decodeLast });
      const b = await generateText(m, tokenizer, prompt, { temperature: 0, maxTokens: 12, ignoreEos: false });
      assert.deepEqual(a.tokens, b.tokens.slice(0, a.tokens.length));
      assert.equal(a.decodeSteps, decodeLast + a.tokens.length - (a.tokens.length === 12 ? 1 : 0));
    }
  } finally { m.dispose(); }
});

test('keys meter: passes the phase through and counts one-token decode steps with the keys the layer reports', () => {
  const phases: (string | undefined)[] = [];
  const fake: LayerAttention & { lastTouched: number } = {
    bytesPerToken: 0, lastTouched: 5, store() {}, truncate() {}, reset() {},
    attend(_q, _p, _o, _n, _l, phase) { phases.push(phase); },
  };
  const dims: LayerAttentionDims = { layer: 0, layers: 1, heads: 1, kvHeads: 1, headDim: 4, capacity: 100, dtype: 'f32' };
  const meter = new KeysMeter(parseAttentionSpec('quest'));
  const layer = meter.wrap({ slotBytes: () => 0, create: () => fake }).create(null as never, null as never, dims, null as never);
  layer.attend(0, 0, 0, 1, 100, 'prefill');   // a prompt token: answered exactly, not counted
  layer.attend(0, 0, 0, 1, 100, 'decode');
  layer.attend(0, 0, 0, 1, 50);                // no phase: one token is a decode step
  layer.attend(0, 0, 0, 8, 100);               // several tokens: prefill
  assert.deepEqual(phases, ['prefill', 'decode', undefined, undefined]);
  const st = meter.stats();
  assert.equal(st.steps, 2);
  assert.equal(st.fraction, (5 / 100 + 5 / 50) / 2);
  assert.equal(st.allLayersFraction, st.fraction);
});
