// Whole-model gradient checks of the Llama training model on the engine's f32 kernels, against an
// independent float64 plain-TypeScript forward of the same math (embedding, RMSNorm, q/k/v with
// grouped-query heads, RoPE, causal attention, o_proj, SwiGLU MLP, final norm, tied head,
// cross-entropy with ignored targets):
// - one small block: central finite differences for EVERY parameter element;
// - two blocks at the associative-recall toy's training shape (T = 64, d = 64, 4 heads of 16, vocabulary
//   64, loss on answer positions only): the derivative along a random direction of every parameter
//   tensor, so layer composition and the kernels' long-row paths are covered at the size that trains.
// The per-op checks (test/training/) test each backward alone; these test that they compose: wiring,
// shapes, accumulation into shared tensors (the tied embedding is used twice).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TrainMemory } from '../../src/training/memory.js';
import { Tape } from '../../src/training/autograd/tape.js';
import { Params } from '../../src/training/params.js';
import { Rng } from '../../src/training/rng.js';
import { LlamaTrain, llamaTrainConfig } from '../../src/training/models/llama-train.js';

interface Dims { V: number; d: number; H: number; Hkv: number; F: number; L: number; B: number; T: number }
const EPS = 1e-5, THETA = 10000;
const configOf = (m: Dims) => llamaTrainConfig({ vocab_size: m.V, hidden_size: m.d, intermediate_size: m.F, num_hidden_layers: m.L,
  num_attention_heads: m.H, num_key_value_heads: m.Hkv, rms_norm_eps: EPS, rope_theta: THETA });

type P = Map<string, Float64Array>;

/** y = x Wᵀ for rows of x (n, inF) and W (outF, inF). */
function lin(x: Float64Array, W: Float64Array, n: number, inF: number, outF: number): Float64Array {
  const y = new Float64Array(n * outF);
  for (let r = 0; r < n; r++) for (let o = 0; o < outF; o++) {
    let s = 0;
    for (let i = 0; i < inF; i++) s += x[r * inF + i] * W[o * inF + i];
    y[r * outF + o] = s;
  }
  return y;
}

function rms(x: Float64Array, w: Float64Array, n: number, d: number): Float64Array {
  const y = new Float64Array(x.length);
  for (let r = 0; r < n; r++) {
    let ss = 0;
    for (let i = 0; i < d; i++) ss += x[r * d + i] ** 2;
    const inv = 1 / Math.sqrt(ss / d + EPS);
    for (let i = 0; i < d; i++) y[r * d + i] = x[r * d + i] * inv * w[i];
  }
  return y;
}

/** Hugging Face rotate_half RoPE on (n = B·T rows, heads, D), position = row % T. */
function rope(x: Float64Array, heads: number, D: number, B: number, T: number): void {
  const half = D / 2;
  for (let r = 0; r < B * T; r++) for (let h = 0; h < heads; h++) for (let i = 0; i < half; i++) {
    const a = Math.fround((r % T) * Math.fround(1 / Math.pow(THETA, (2 * i) / D)));
    const o = (r * heads + h) * D, x1 = x[o + i], x2 = x[o + i + half];
    x[o + i] = x1 * Math.cos(a) - x2 * Math.sin(a);
    x[o + i + half] = x2 * Math.cos(a) + x1 * Math.sin(a);
  }
}

/** Mean cross-entropy of the whole model in float64. */
function refLoss(m: Dims, p: P, ids: number[], targets: number[]): number {
  const { V, d, H, Hkv, F, B, T } = m, D = d / H, n = B * T, E = p.get('model.embed_tokens.weight')!;
  const x = new Float64Array(n * d);
  for (let r = 0; r < n; r++) for (let i = 0; i < d; i++) x[r * d + i] = E[ids[r] * d + i];
  for (let l = 0; l < m.L; l++) {
    const pre = `model.layers.${l}.`;
    const xn = rms(x, p.get(pre + 'input_layernorm.weight')!, n, d);
    const q = lin(xn, p.get(pre + 'self_attn.q_proj.weight')!, n, d, H * D);
    const k = lin(xn, p.get(pre + 'self_attn.k_proj.weight')!, n, d, Hkv * D);
    const v = lin(xn, p.get(pre + 'self_attn.v_proj.weight')!, n, d, Hkv * D);
    rope(q, H, D, B, T); rope(k, Hkv, D, B, T);
    const att = new Float64Array(n * H * D);
    for (let b = 0; b < B; b++) for (let h = 0; h < H; h++) {
      const g = Math.floor(h / (H / Hkv));
      for (let t = 0; t < T; t++) {
        const s = new Float64Array(t + 1);
        let max = -Infinity;
        for (let u = 0; u <= t; u++) {
          let dot = 0;
          for (let i = 0; i < D; i++) dot += q[((b * T + t) * H + h) * D + i] * k[((b * T + u) * Hkv + g) * D + i];
          s[u] = dot / Math.sqrt(D); max = Math.max(max, s[u]);
        }
        let z = 0;
        for (let u = 0; u <= t; u++) { s[u] = Math.exp(s[u] - max); z += s[u]; }
        for (let u = 0; u <= t; u++) for (let i = 0; i < D; i++) att[((b * T + t) * H + h) * D + i] += (s[u] / z) * v[((b * T + u) * Hkv + g) * D + i];
      }
    }
    const o = lin(att, p.get(pre + 'self_attn.o_proj.weight')!, n, H * D, d);
    for (let i = 0; i < x.length; i++) x[i] += o[i];
    const hn = rms(x, p.get(pre + 'post_attention_layernorm.weight')!, n, d);
    const gate = lin(hn, p.get(pre + 'mlp.gate_proj.weight')!, n, d, F), up = lin(hn, p.get(pre + 'mlp.up_proj.weight')!, n, d, F);
    const f = gate.map((gv, i) => (gv / (1 + Math.exp(-gv))) * up[i]);
    const down = lin(f, p.get(pre + 'mlp.down_proj.weight')!, n, F, d);
    for (let i = 0; i < x.length; i++) x[i] += down[i];
  }
  const logits = lin(rms(x, p.get('model.norm.weight')!, n, d), E, n, d, V);
  let total = 0, count = 0;
  for (let r = 0; r < n; r++) {
    if (targets[r] === -100) continue;
    let max = -Infinity;
    for (let j = 0; j < V; j++) max = Math.max(max, logits[r * V + j]);
    let z = 0;
    for (let j = 0; j < V; j++) z += Math.exp(logits[r * V + j] - max);
    total += Math.log(z) + max - logits[r * V + targets[r]]; count++;
  }
  return total / count;
}

/** A model of shape m with larger-than-init random values everywhere (norm gains around 1, matrices
 *  of std `std`), so every path carries gradient; returns the engine's loss with gradients filled. */
function engineModel(m: Dims, std: number, rng: Rng, ids: number[], targets: number[]) {
  const mem = new TrainMemory({ bytes: 64 << 20, kernels: 'wasm', label: 'block-gradcheck' });
  const params = new Params(mem, 3);
  const model = new LlamaTrain(configOf(m), params);
  for (const t of params.list()) {
    const isNorm = t.ndim === 1;
    for (let i = 0; i < t.size; i++) t.data[i] = Math.fround(isNorm ? 1 + 0.3 * rng.normal() : std * rng.normal());
  }
  const tape = new Tape(mem);
  params.zeroGrad();
  const loss = model.loss(tape, ids, targets, m.B, m.T);
  const engineLoss = loss.data[0];
  tape.backward(loss);
  tape.reset();
  const p64: P = new Map(params.list().map((t) => [t.name, Float64Array.from(t.data)]));
  return { params, engineLoss, p64 };
}

test('a whole Llama block (every parameter) matches finite differences of a float64 reference', () => {
  const m: Dims = { V: 11, d: 8, H: 2, Hkv: 1, F: 12, L: 1, B: 2, T: 5 };
  const rng = new Rng(11);
  const ids = Array.from({ length: m.B * m.T }, () => rng.int(m.V));
  const targets = Array.from({ length: m.B * m.T }, (_, i) => (i === 3 ? -100 : rng.int(m.V)));   // one ignored target
  const { params, engineLoss, p64 } = engineModel(m, 0.5, rng, ids, targets);
  const ref = refLoss(m, p64, ids, targets);
  assert.ok(Math.abs(engineLoss - ref) < 1e-5 * (1 + Math.abs(ref)), `forward: engine ${engineLoss} vs f64 reference ${ref}`);

  const h = 1e-6;
  let checked = 0;
  for (const t of params.list()) {
    const w = p64.get(t.name)!, g = t.grad!;
    assert.ok(g, `${t.name} has no gradient`);
    const fd = new Float64Array(t.size);
    for (let i = 0; i < t.size; i++) {
      const keep = w[i];
      w[i] = keep + h; const lp = refLoss(m, p64, ids, targets);
      w[i] = keep - h; const lm = refLoss(m, p64, ids, targets);
      w[i] = keep;
      fd[i] = (lp - lm) / (2 * h);
    }
    let maxFd = 0, maxErr = 0, worst = -1;
    for (let i = 0; i < t.size; i++) {
      maxFd = Math.max(maxFd, Math.abs(fd[i]));
      const e = Math.abs(g[i] - fd[i]);
      if (e > maxErr) { maxErr = e; worst = i; }
    }
    assert.ok(maxFd > 1e-4, `${t.name}: finite-difference gradient is ~0 (max ${maxFd}); the check would be vacuous`);
    assert.ok(maxErr <= 2e-3 * (1 + maxFd), `${t.name}[${worst}]: engine ${g[worst]} vs finite difference ${fd[worst]} (max |fd| ${maxFd})`);
    checked += t.size;
  }
  assert.equal(checked, params.count());
});

test('two Llama blocks at the recall toy training shape: the directional derivative of every parameter tensor matches a float64 reference', () => {
  // T = 64, d = 64, 4 heads of 16, vocabulary 64, SwiGLU width of configs/recall-llama-l2.json; loss on
  // the last 8 odd positions only (where the toy's answers are).
  const m: Dims = { V: 64, d: 64, H: 4, Hkv: 4, F: 176, L: 2, B: 2, T: 64 };
  const rng = new Rng(12);
  const ids = Array.from({ length: m.B * m.T }, () => 1 + rng.int(m.V - 1));
  const targets = Array.from({ length: m.B * m.T }, (_, i) => (i % m.T >= 48 && i % 2 === 1 ? 1 + rng.int(m.V - 1) : -100));
  const { params, engineLoss, p64 } = engineModel(m, 0.3, rng, ids, targets);
  const ref = refLoss(m, p64, ids, targets);
  assert.ok(Math.abs(engineLoss - ref) < 1e-5 * (1 + Math.abs(ref)), `forward: engine ${engineLoss} vs f64 reference ${ref}`);
  const h = 1e-5;
  for (const t of params.list()) {
    const w = p64.get(t.name)!, g = t.grad!, keep = Float64Array.from(w);
    assert.ok(g, `${t.name} has no gradient`);
    const u = Array.from({ length: t.size }, () => rng.normal());
    let gu = 0;
    for (let i = 0; i < t.size; i++) gu += g[i] * u[i];
    for (let i = 0; i < t.size; i++) w[i] = keep[i] + h * u[i];
    const lp = refLoss(m, p64, ids, targets);
    for (let i = 0; i < t.size; i++) w[i] = keep[i] - h * u[i];
    const lm = refLoss(m, p64, ids, targets);
    w.set(keep);
    const fd = (lp - lm) / (2 * h);
    assert.ok(Math.abs(fd) > 1e-3, `${t.name}: the directional derivative is ~0 (${fd}); the check would be vacuous`);
    assert.ok(Math.abs(gu - fd) <= 1e-3 * Math.abs(fd), `${t.name}: engine ${gu} vs finite difference ${fd} along the same direction`);
  }
});
