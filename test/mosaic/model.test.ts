// The trainable Memory Mosaic: forward equals the float64 reference, whole-block and whole-model
// gradients match finite differences, no future leak, and the paper's initialisation/parameter count.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TrainMemory } from '../../src/training/memory.js';
import { Tape } from '../../src/training/autograd/tape.js';
import { Rng } from '../../src/training/rng.js';
import { layerNorm } from '../../src/training/autograd/ops-nn.js';
import { mosaicConfig, mosaicParameterCount } from '../../src/mosaic/config.js';
import { initMosaicParams, mosaicParamSpecs } from '../../src/mosaic/params.js';
import { referenceLogits, referenceLoss } from '../../src/mosaic/reference.js';
import { MosaicTrainModel } from '../../src/mosaic/model-train.js';
import { gradCheck } from './gradcheck.js';

const tiny = mosaicConfig({ vocab_size: 11, n_embd: 12, n_layer: 2, n_head: 3, block_size: 16, pmem_size: 7 });

function setup(cfg = tiny, kernels: 'wasm' | 'reference' = 'wasm') {
  const mem = new TrainMemory({ bytes: 32 << 20, kernels });
  const tape = new Tape(mem);
  const model = new MosaicTrainModel(mem, cfg, 5);
  return { mem, tape, model };
}

/** Moves the scalars off their initial values (so clamps, |·| and mixes are exercised generically). */
function perturbScalars(model: MosaicTrainModel, rng: Rng): void {
  for (const t of model.params.list()) {
    // multiplicative, so θ keeps its sign and stays away from the kink of β = |10θ|
    if (t.ndim === 1 && !t.name.includes('ln_')) for (let i = 0; i < t.size; i++) t.data[i] *= 1 + 0.3 * rng.normal();
    if (t.name.includes('ln_')) for (let i = 0; i < t.size; i++) t.data[i] = 1 + 0.2 * rng.normal();
  }
}

test('paper init: names, scalar re-parameterisation values, parameter count 12d² + 2d per block', () => {
  const cfg = mosaicConfig({ vocab_size: 50, n_embd: 16, n_layer: 1, n_head: 4 });
  assert.equal(cfg.pmem_size, 56, 'N_p = 3.5·d');
  const p = initMosaicParams(cfg, 1);
  const beta = p.get('h.0.attn.leaky_beta')!;
  assert.deepEqual(Array.from(beta, (x) => +(10 * x).toFixed(5)), [0.5, 2, 3.5, 5], 'β = |10θ| = linspace(0.5, 5, H)');
  assert.deepEqual(Array.from(p.get('h.0.attn.key_scale')!, (x) => +(10 * x).toFixed(5)), [1, 1, 1, 1]);
  assert.deepEqual(Array.from(p.get('h.0.pmem.out_scale')!, (x) => +(10 * x).toFixed(5)), [-0.5, -0.5, -0.5, -0.5]);
  const c = p.get('h.0.attn.value_mix')!;
  assert.ok(c.every((x) => x >= 0 && x < 1) && new Set(c).size === 4, 'c ~ U(0, 1)');
  const std = (a: Float32Array) => Math.sqrt(a.reduce((s, x) => s + x * x, 0) / a.length);
  assert.ok(Math.abs(std(p.get('wte.weight')!) - 1) < 0.1, 'embedding N(0, 1)');
  assert.ok(Math.abs(std(p.get('h.0.attn.k_proj.weight')!) - 0.25) < 0.03, 'Linear std 1/sqrt(d)');
  assert.ok(Math.abs(std(p.get('h.0.pmem.P_k')!) - 0.5) < 0.03, 'P_k std 1/sqrt(hs)');
  const d = 16;
  const block = mosaicParamSpecs(cfg).filter((s) => s.name.startsWith('h.0.')).reduce((n, s) => n + s.shape.reduce((a, b) => a * b, 1), 0);
  assert.equal(block, 12 * d * d + 2 * d + 7 * 4, 'per block 12d² + 2d (+ 7 scalars per head)');
  assert.equal(mosaicParameterCount(cfg), 50 * d + block + d);
});

test('model forward equals the float64 reference forward (logits of every position)', () => {
  for (const kernels of ['wasm', 'reference'] as const) {
    const { tape, model } = setup(tiny, kernels);
    perturbScalars(model, new Rng(1));
    const tokens = [1, 4, 4, 9, 0, 3, 10, 2, 4, 4, 7];
    const T = tokens.length;
    const logits = tape.noGrad(() => model.forward(tape, tokens, 1, T));
    const ref = referenceLogits(tiny, model.snapshot(), tokens);
    let worst = 0;
    for (let i = 0; i < ref.length; i++) worst = Math.max(worst, Math.abs(logits.data[i] - ref[i]) / (1e-3 + Math.abs(ref[i])));
    assert.ok(worst < 1e-4, `${kernels}: worst relative error ${worst}`);
  }
});

test('model loss equals the reference cross-entropy; batch rows are independent', () => {
  const { tape, model } = setup();
  const a = [2, 3, 5, 7, 1, 0], b = [9, 9, 8, 1, 2, 3];
  const loss = tape.noGrad(() => model.loss(tape, [...a, ...b], [...a.slice(1), 4, ...b.slice(1), 4], 2, 6)).data[0];
  const p = model.snapshot();
  const ref = (referenceLoss(tiny, p, a, [...a.slice(1), 4]) + referenceLoss(tiny, p, b, [...b.slice(1), 4])) / 2;
  assert.ok(Math.abs(loss - ref) < 1e-5 * Math.abs(ref), `${loss} vs ${ref}`);
});

test('no future leak: changing token t+1 never changes logits at positions ≤ t (every t)', () => {
  const { tape, model } = setup();
  perturbScalars(model, new Rng(2));
  const base = [3, 1, 4, 1, 5, 9, 2, 6, 5, 3];
  const T = base.length, V = tiny.vocab_size;
  const ref = tape.noGrad(() => model.forward(tape, base, 1, T)).toArray();
  for (let t = 0; t + 1 < T; t++) {
    const changed = base.slice();
    changed[t + 1] = (changed[t + 1] + 5) % V;
    tape.reset();
    const y = tape.noGrad(() => model.forward(tape, changed, 1, T)).toArray();
    for (let i = 0; i < (t + 1) * V; i++) assert.equal(y[i], ref[i], `logit ${i % V} at position ${Math.floor(i / V)} changed when token ${t + 1} changed`);
    assert.ok(y.slice((t + 1) * V).some((x, i) => x !== ref[(t + 1) * V + i]), `position ${t + 1} must see its own token`);
  }
});

test('whole-block gradient check (CM + PM with residuals; every parameter of the block)', () => {
  const cfg = mosaicConfig({ vocab_size: 7, n_embd: 8, n_layer: 1, n_head: 2, pmem_size: 5 });
  const { tape, model } = setup(cfg);
  perturbScalars(model, new Rng(3));
  const x = model.params.create('test.x', [2, 6, 8], { kind: 'normal', std: 1 });
  const block = (tp: Tape) => {
    const a = layerNorm(tp, x, model.params.get('h.0.ln_1.weight'), null, cfg.layer_norm_eps);
    return model.contextMemory(tp, a, 0);
  };
  const names = model.params.names().filter((n) => n.startsWith('h.0.attn.') && !n.includes('c_proj'));
  gradCheck(tape, block, [x, model.params.get('h.0.ln_1.weight'), ...names.map((n) => model.params.get(n))]);
  const pm = (tp: Tape) => model.persistentMemory(tp, x, 0);
  const pnames = model.params.names().filter((n) => n.startsWith('h.0.pmem.') && !n.includes('c_proj'));
  gradCheck(tape, pm, [x, ...pnames.map((n) => model.params.get(n))]);
});

test('whole-model gradient check: cross-entropy loss w.r.t. every parameter tensor', () => {
  const cfg = mosaicConfig({ vocab_size: 7, n_embd: 8, n_layer: 2, n_head: 2, pmem_size: 5 });
  const { tape, model } = setup(cfg);
  perturbScalars(model, new Rng(5));
  const tokens = [1, 2, 3, 1, 2, 6, 0, 5, 5, 4];
  const targets = [2, 3, 1, 2, 6, 0, 5, 5, 4, 1];
  gradCheck(tape, (tp) => model.loss(tp, tokens, targets, 2, 5), model.params.list(), { samples: 8 });
});
