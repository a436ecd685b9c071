// Deterministic random weights for Llama-family test checkpoints.
//
// The same (config, seed) must give the same bytes on every machine and Node version, because the
// llama.cpp reference fixtures (test/fixtures/reference/) pin the sha256 of the files built from
// them. So the generator uses integer arithmetic only (mulberry32) and uniform distributions: no
// Math.log / Math.cos (Box–Muller), whose last-ulp results are not specified by ECMAScript.
//
// Each tensor has its own stream seeded from (seed, tensor name), so tensors can be produced one at a
// time in any order (bounded memory for the large bench shapes) and adding a tensor changes no other.
//
// Scales (uniform with the stated standard deviation):
//   embeddings          std 1 untied      (rows of the residual stream start at rms ≈ 1);
//                       std LOGIT_GAIN/√hidden when tied, since they are then also the output head
//   norm weights        1 ± 0.1           (near identity, but not exactly 1, so a wrong norm shows)
//   linear weights      std 1/√fan_in     (activations keep rms ≈ 1 through 2–4 layers), except:
//   q_proj, k_proj      × QK_GAIN         attention scores of std ≈ QK_GAIN², so heads attend to a
//                                         few positions instead of averaging them all (which makes
//                                         greedy output repeat one token)
//   o_proj, down_proj   × RESIDUAL_GAIN   blocks outweigh the token's own embedding in the residual
//                                         stream; otherwise a tied head (logits = E · x) mostly
//                                         predicts the current token again, forever
//   q/k/v biases        std 0.2
//   lm_head             std LOGIT_GAIN/√hidden: logits of std ≈ LOGIT_GAIN, so the top-1/top-2 gap
//                       is large next to float and q8_0 noise and greedy comparisons are meaningful.

import type { LlamaConfig } from '../models/config.js';
import { derive } from '../models/config.js';
import { mulberry32 } from '../data/rng.js';

export interface RandomTensor {
  /** Hugging Face tensor name (model.layers.0.self_attn.q_proj.weight …). */
  name: string;
  dtype: 'f32';
  /** Outermost first (PyTorch order): a Linear weight is [out_features, in_features]. */
  shape: number[];
  data: Float32Array;
}

/** Standard deviation of the logits of a random model (see header). */
export const LOGIT_GAIN = 8;
export const QK_GAIN = 2;
export const RESIDUAL_GAIN = 4;

export { mulberry32 };

/** FNV-1a hash of a string mixed with a seed: the per-tensor stream seed. */
export function streamSeed(seed: number, name: string): number {
  let h = (0x811c9dc5 ^ (seed >>> 0)) >>> 0;
  for (let i = 0; i < name.length; i++) {
    h ^= name.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

/** `count` integers uniform in [0, n) from a seeded stream (e.g. prompt token ids). */
export function randomIds(seed: number, count: number, n: number): number[] {
  const next = mulberry32(seed);
  const ids: number[] = [];
  for (let i = 0; i < count; i++) ids.push(next() % n);
  return ids;
}

/** Fills `out` with mean + uniform noise of standard deviation `std` (half-width std·√3). */
export function fillUniform(out: Float32Array, seed: number, mean: number, std: number): Float32Array {
  const next = mulberry32(seed);
  const halfWidth = std * Math.sqrt(3);
  for (let i = 0; i < out.length; i++) {
    const u = next() / 4294967296; // [0, 1), exact in a double
    out[i] = mean + (2 * u - 1) * halfWidth;
  }
  return out;
}

interface TensorPlan { name: string; shape: number[]; mean: number; std: number }

/** Names, shapes and init scales of every tensor of a Llama-family checkpoint, in HF order. */
export function llamaTensorPlan(c: LlamaConfig): TensorPlan[] {
  const { qDim, kvDim } = derive(c);
  const h = c.hidden_size, f = c.intermediate_size;
  const lin = (out: number, inp: number, name: string, gain = 1): TensorPlan => ({ name, shape: [out, inp], mean: 0, std: gain / Math.sqrt(inp) });
  const norm = (name: string): TensorPlan => ({ name, shape: [h], mean: 1, std: 0.1 / Math.sqrt(3) });
  const bias = (n: number, name: string): TensorPlan => ({ name, shape: [n], mean: 0, std: 0.2 });
  const headStd = LOGIT_GAIN / Math.sqrt(h); // logits (V) = head (V, E) · normed x (E, rms ≈ 1)
  const embedStd = c.tie_word_embeddings ? headStd : 1;
  const plan: TensorPlan[] = [{ name: 'model.embed_tokens.weight', shape: [c.vocab_size, h], mean: 0, std: embedStd }];
  for (let l = 0; l < c.num_hidden_layers; l++) {
    const p = `model.layers.${l}.`;
    plan.push(norm(`${p}input_layernorm.weight`));
    plan.push(lin(qDim, h, `${p}self_attn.q_proj.weight`, QK_GAIN));
    if (c.attention_bias) plan.push(bias(qDim, `${p}self_attn.q_proj.bias`));
    plan.push(lin(kvDim, h, `${p}self_attn.k_proj.weight`, QK_GAIN));
    if (c.attention_bias) plan.push(bias(kvDim, `${p}self_attn.k_proj.bias`));
    plan.push(lin(kvDim, h, `${p}self_attn.v_proj.weight`));
    if (c.attention_bias) plan.push(bias(kvDim, `${p}self_attn.v_proj.bias`));
    plan.push(lin(h, qDim, `${p}self_attn.o_proj.weight`, RESIDUAL_GAIN));
    plan.push(norm(`${p}post_attention_layernorm.weight`));
    plan.push(lin(f, h, `${p}mlp.gate_proj.weight`));
    plan.push(lin(f, h, `${p}mlp.up_proj.weight`));
    plan.push(lin(h, f, `${p}mlp.down_proj.weight`, RESIDUAL_GAIN));
  }
  plan.push(norm('model.norm.weight'));
  if (!c.tie_word_embeddings) {
    plan.push({ name: 'lm_head.weight', shape: [c.vocab_size, h], mean: 0, std: headStd });
  }
  return plan;
}

/** Generates tensors one at a time (memory bounded by the largest tensor). */
export function* randomLlamaTensors(config: LlamaConfig, seed: number): Generator<RandomTensor> {
  for (const t of llamaTensorPlan(config)) {
    const count = t.shape.reduce((a, b) => a * b, 1);
    const data = fillUniform(new Float32Array(count), streamSeed(seed, t.name), t.mean, t.std);
    yield { name: t.name, dtype: 'f32', shape: t.shape, data };
  }
}

/** All tensors of a random Llama-family model with HF names (lm_head omitted when tied). */
export function randomLlamaWeights(config: LlamaConfig, seed: number): RandomTensor[] {
  return Array.from(randomLlamaTensors(config, seed));
}
