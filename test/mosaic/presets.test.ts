// Initialisation / logit-scale presets and attention-score dropout: the config fields round-trip
// through config.json (old files keep the Library meaning), each preset changes the computation as
// documented, the float64 reference, the training graph and the inference engine agree for both
// presets, and score dropout acts in training only (off at inference, 0 = no dropout at all).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TrainMemory } from '../../src/training/memory.js';
import { Tape } from '../../src/training/autograd/tape.js';
import { Rng } from '../../src/training/rng.js';
import { FormatError } from '../../src/formats/errors.js';
import {
  MOSAIC_INIT_PRESETS, MOSAIC_INIT_PRESET_NAMES, mosaicConfig, mosaicConfigFromJson, mosaicConfigToJson, type MosaicConfig,
} from '../../src/mosaic/config.js';
import { initMosaicParams } from '../../src/mosaic/params.js';
import { MosaicTrainModel } from '../../src/mosaic/model-train.js';
import { referenceLogits } from '../../src/mosaic/reference.js';
import { MosaicInference } from '../../src/mosaic/inference.js';
import { readMosaicCheckpoint, saveMosaicCheckpoint } from '../../src/mosaic/checkpoint.js';
import { causalReadout } from '../../src/mosaic/readout.js';
import { parseTrainConfig } from '../../src/training/train-config.js';
import { buildModel } from '../../src/training/train-model.js';
import { gradCheck, leaf, makeTape } from './gradcheck.js';

const base = { vocab_size: 13, n_embd: 12, n_layer: 2, n_head: 3, block_size: 32, pmem_size: 9 };
const tokens = [4, 7, 7, 1, 12, 0, 3, 4, 7, 9, 2, 2, 11, 5];

function maxRel(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let scale = 0, worst = 0;
  for (let i = 0; i < b.length; i++) scale = Math.max(scale, Math.abs(b[i]));
  for (let i = 0; i < b.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]) / scale);
  return worst;
}

/** A trainable model of `cfg` with its scalars moved off their initial values. */
function model(cfg: MosaicConfig, seed = 3) {
  const mem = new TrainMemory({ bytes: 32 << 20, kernels: 'wasm' });
  const tape = new Tape(mem);
  const m = new MosaicTrainModel(mem, cfg, seed);
  const rng = new Rng(9);
  for (const t of m.params.list()) if (t.ndim === 1) for (let i = 0; i < t.size; i++) t.data[i] *= 1 + 0.3 * rng.normal();
  return { tape, m };
}

test('config.json round trip of the new fields; a file without them means the Library preset', () => {
  const cfg = mosaicConfig({ ...base, ...MOSAIC_INIT_PRESETS['short-budget'], attn_dropout: 0.05 });
  const back = mosaicConfigFromJson(JSON.parse(JSON.stringify(mosaicConfigToJson(cfg))), 'round trip');
  assert.deepEqual(back, cfg);
  assert.equal(back.embedding_std, 0.02);
  assert.equal(back.logits_inv_sqrt_d, false);
  assert.equal(back.attn_dropout, 0.05);
  const old = mosaicConfigFromJson({ model_type: 'memory_mosaic', ...base }, 'old config.json');
  assert.equal(old.embedding_std, 1);
  assert.equal(old.logits_inv_sqrt_d, true);
  assert.equal(old.attn_dropout, 0);
  const dir = mkdtempSync(join(tmpdir(), 'mosaic-preset-'));
  try {
    saveMosaicCheckpoint(dir, cfg, initMosaicParams(cfg, 2));
    assert.deepEqual(readMosaicCheckpoint(dir).config, cfg);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const bad = (extra: Record<string, unknown>, re: RegExp) =>
    assert.throws(() => mosaicConfigFromJson({ model_type: 'memory_mosaic', ...base, ...extra }, 'x.json'), (e: Error) => e instanceof FormatError && re.test(e.message));
  bad({ logits_inv_sqrt_d: 'yes' }, /logits_inv_sqrt_d = "yes" must be true .* or false/);
  bad({ embedding_std: 0 }, /embedding_std = 0 must be in \(0, 100\]/);
  bad({ attn_dropout: 1 }, /attn_dropout = 1 must be in \[0, 1\)/);
});

test('presets change the computation as documented: embedding std, and logits × 1/√d only for Library', () => {
  const std = (a: Float32Array) => Math.sqrt(a.reduce((s, x) => s + x * x, 0) / a.length);
  const wide = { vocab_size: 200, n_embd: 32, n_layer: 1, n_head: 4 };
  const lib = initMosaicParams(mosaicConfig({ ...wide, ...MOSAIC_INIT_PRESETS.library }), 1);
  const short = initMosaicParams(mosaicConfig({ ...wide, ...MOSAIC_INIT_PRESETS['short-budget'] }), 1);
  assert.ok(Math.abs(std(lib.get('wte.weight')!) - 1) < 0.05, 'Library: embedding N(0, 1)');
  assert.ok(Math.abs(std(short.get('wte.weight')!) - 0.02) < 0.001, 'short-budget: embedding N(0, 0.02²)');
  assert.deepEqual(short.get('h.0.attn.k_proj.weight'), lib.get('h.0.attn.k_proj.weight'), 'only the embedding init differs');
  // Same parameters, both logit conventions: the Library logits are the others / √d.
  const cfgLib = mosaicConfig({ ...base, ...MOSAIC_INIT_PRESETS.library });
  const cfgShort = mosaicConfig({ ...base, ...MOSAIC_INIT_PRESETS['short-budget'] });
  const p = initMosaicParams(cfgLib, 4);
  const a = referenceLogits(cfgLib, p, tokens), b = referenceLogits(cfgShort, p, tokens);
  const r = Math.sqrt(base.n_embd);
  for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i] * r - b[i]) < 1e-9 * (1 + Math.abs(b[i])), `logit ${i}`);
});

for (const preset of MOSAIC_INIT_PRESET_NAMES) {
  test(`${preset} preset: float64 reference == training graph == inference engine (incremental)`, () => {
    const cfg = mosaicConfig({ ...base, ...MOSAIC_INIT_PRESETS[preset] });
    const { tape, m } = model(cfg);
    const params = m.snapshot();
    const ref = referenceLogits(cfg, params, tokens);
    const train = tape.noGrad(() => m.forward(tape, tokens, 1, tokens.length)).toArray();
    const inf = new MosaicInference(cfg, params, { contextLength: 20 });
    const cache = inf.createCache();
    const V = cfg.vocab_size, inc = new Float32Array(tokens.length * V);
    inc.set(inf.forward(tokens.slice(0, 5), cache, { logits: 'all' }), 0);
    for (let t = 5; t < tokens.length; t++) inc.set(inf.forward([tokens[t]], cache), t * V);
    assert.ok(maxRel(train, ref) < 1e-4, `training graph vs reference: ${maxRel(train, ref)}`);
    assert.ok(maxRel(inc, ref) < 1e-4, `engine vs reference: ${maxRel(inc, ref)}`);
    inf.dispose();
  });
}

test('score dropout: 0 = no dropout in training; > 0 is off at inference and changes the training forward', () => {
  const cfg0 = mosaicConfig({ ...base, ...MOSAIC_INIT_PRESETS['short-budget'] });
  const cfgD = { ...cfg0, attn_dropout: 0.3 };
  const { tape, m } = model(cfg0);
  const ref = referenceLogits(cfg0, m.snapshot(), tokens);
  const T = tokens.length;
  // attn_dropout 0, training mode, with a random stream: exactly the dropout-free forward.
  const t0 = tape.noGrad(() => m.forward(tape, tokens, 1, T, { rng: new Rng(1) })).toArray();
  assert.ok(maxRel(t0, ref) < 1e-4);
  // attn_dropout 0.3 on the same parameters.
  const mD = new MosaicTrainModel(tape.mem, cfgD, 3);
  mD.params.load(m.snapshot());
  tape.reset();
  tape.training = false;
  const off = tape.noGrad(() => mD.forward(tape, tokens, 1, T)).toArray();
  assert.ok(maxRel(off, ref) < 1e-4, 'inference (tape.training = false) reads every score');
  tape.reset();
  tape.training = true;
  assert.throws(() => mD.forward(tape, tokens, 1, T), /attn_dropout > 0 in training mode needs opts.rng/);
  tape.reset();
  const on = tape.noGrad(() => mD.forward(tape, tokens, 1, T, { rng: new Rng(1) })).toArray();
  assert.ok(maxRel(on, ref) > 1e-2, `training with score dropout must differ from the full read-out (${maxRel(on, ref)})`);
  // The engine ignores attn_dropout (it never trains).
  const inf = new MosaicInference(cfgD, m.snapshot(), { contextLength: 20 });
  assert.ok(maxRel(inf.forward(tokens, inf.createCache(), { logits: 'all' }), ref) < 1e-4);
  inf.dispose();
});

test('read-out with score dropout: unbiased on average, y_0 = 0, gradients match finite differences for a fixed mask', () => {
  const B = 2, T = 7, H = 2, hs = 3, d = H * hs;
  const tape = makeTape();
  const rng = new Rng(4);
  const k = leaf(tape, [B, T, d], rng, 0.8), v = leaf(tape, [B, T, d], rng);
  const full = causalReadout(tape, k, v, H).toArray();
  const mean = new Float64Array(full.length);
  const draws = 400, stream = new Rng(11);
  for (let i = 0; i < draws; i++) {
    tape.reset();
    const y = tape.noGrad(() => causalReadout(tape, k, v, H, { p: 0.25, rng: stream }));
    for (let j = 0; j < d; j++) assert.equal(y.data[j], 0);
    for (let j = 0; j < mean.length; j++) mean[j] += y.data[j] / draws;
  }
  assert.ok(maxRel(mean, full) < 0.08, `mean over ${draws} masks vs full read-out: ${maxRel(mean, full)}`);
  gradCheck(tape, (tp) => causalReadout(tp, k, v, H, { p: 0.25, rng: new Rng(5) }), [k, v], { samples: 40 });
});

test('training config: model.init / model.attnDropout reach the mosaic config; bad values are named', () => {
  const raw = { family: 'mosaic', model: { d: 16, layers: 1, heads: 2, init: 'short-budget', attnDropout: 0.05 }, data: { task: 'recall', vocabSize: 16 }, steps: 2, out: '/tmp/x' };
  const cfg = parseTrainConfig(raw, 'c.json');
  const mem = new TrainMemory({ bytes: 16 << 20, kernels: 'wasm' });
  const built = buildModel('mosaic', cfg.model, mem, { vocabSize: 16, context: 8, seed: 1 });
  assert.equal(built.configJson.embedding_std, 0.02);
  assert.equal(built.configJson.logits_inv_sqrt_d, false);
  assert.equal(built.configJson.attn_dropout, 0.05);
  const plain = buildModel('mosaic', parseTrainConfig({ ...raw, model: { d: 16, layers: 1, heads: 2 } }, 'c.json').model, mem, { vocabSize: 16, context: 8, seed: 1 });
  assert.equal(plain.configJson.embedding_std, 1, 'default: the Library preset (what configs without model.init always meant)');
  assert.throws(() => parseTrainConfig({ ...raw, model: { ...raw.model, init: 'fast' } }, 'c.json'), /model.init = "fast" must be one of "library", "short-budget"/);
  assert.throws(() => parseTrainConfig({ ...raw, family: 'llama' }, 'c.json'), /model.init is a Memory Mosaic setting/);
  assert.throws(() => parseTrainConfig({ ...raw, model: { ...raw.model, attnDropout: -1 } }, 'c.json'), /attnDropout = -1 must be in \[0, 1\)/);
});
