// The Llama-architecture transformer for training, the same math as the inference model
// (src/models/llama.ts): RMSNorm, RoPE (neox pairs), grouped-query causal attention, SwiGLU MLP,
// optional tied embeddings. Parameters carry Hugging Face Llama names, so saving them with the
// config as config.json gives a folder that loadModel() (src/models/load.ts) runs.
//
//   x = embed[ids]
//   per layer:  h = x + o_proj(attn(rope(q_proj(rms1 x)), rope(k_proj(rms1 x)), v_proj(rms1 x)))
//               x = h + down_proj(silu(gate_proj(rms2 h)) ⊙ up_proj(rms2 h))
//   logits = lm_head(rms x)            (lm_head = embed_tokens when tie_word_embeddings)
// Shape legend: B = sequences, T = tokens each, d = hidden, H/Hkv = heads, D = head dim, F = MLP, V = vocab.

import type { LlamaConfig } from '../../models/config.js';
import { derive } from '../../models/config.js';
import { ropeInverseFrequencies } from '../../models/rope-frequencies.js';
import type { Tape } from '../autograd/tape.js';
import type { Tensor } from '../autograd/tensor.js';
import { add, reshape } from '../autograd/ops-basic.js';
import { linear } from '../autograd/ops-linear.js';
import { crossEntropy, dropout, rmsNorm, swiglu } from '../autograd/ops-nn.js';
import { embedding } from '../autograd/ops-shape.js';
import { attention, rope } from '../autograd/ops-attention.js';
import type { Params } from '../params.js';
import type { Rng } from '../rng.js';

/** A Hugging Face LlamaConfig for a small model trained from scratch (fields not given get Llama defaults). */
export function llamaTrainConfig(c: Pick<LlamaConfig, 'vocab_size' | 'hidden_size' | 'intermediate_size' | 'num_hidden_layers' | 'num_attention_heads'> & Partial<LlamaConfig>): LlamaConfig {
  return {
    model_type: 'llama', num_key_value_heads: c.num_attention_heads, rms_norm_eps: 1e-5, rope_theta: 10000,
    max_position_embeddings: 2048, tie_word_embeddings: true, attention_bias: false, hidden_act: 'silu',
    bos_token_id: null, eos_token_id: null, rope_scaling: null, ...c,
  };
}

/** config.json content for a trained model (Hugging Face LlamaForCausalLM). */
export function hfConfigJson(c: LlamaConfig): Record<string, unknown> {
  const { rope_style: _ignored, ...rest } = c;
  return { architectures: ['LlamaForCausalLM'], torch_dtype: 'float32', ...rest, head_dim: derive(c).headDim };
}

export interface LlamaTrainOptions {
  /** Dropout on the residual branches and embeddings (default 0). */
  dropout?: number;
  /** Init std of matrices (default 0.02; o_proj/down_proj scaled by 1/√(2L), GPT-2 style). */
  initStd?: number;
}

export class LlamaTrain {
  readonly config: LlamaConfig;
  readonly params: Params;
  readonly invFreq: Float32Array;
  private readonly p: (name: string) => Tensor;

  constructor(config: LlamaConfig, params: Params, readonly opts: LlamaTrainOptions = {}) {
    this.config = config;
    this.params = params;
    const { headDim, qDim, kvDim } = derive(config);
    if (config.hidden_act !== 'silu') throw new Error(`LlamaTrain: hidden_act ${config.hidden_act} is not supported (silu only)`);
    if (config.attention_bias) throw new Error('LlamaTrain: attention_bias is not supported');
    this.invFreq = ropeInverseFrequencies(config, headDim);
    const d = config.hidden_size, F = config.intermediate_size, V = config.vocab_size, L = config.num_hidden_layers;
    const std = opts.initStd ?? 0.02, projStd = std / Math.sqrt(2 * L);
    params.create('model.embed_tokens.weight', [V, d], { kind: 'normal', std });
    for (let l = 0; l < L; l++) {
      const pre = `model.layers.${l}.`;
      params.create(pre + 'input_layernorm.weight', [d], { kind: 'ones' });
      params.create(pre + 'self_attn.q_proj.weight', [qDim, d], { kind: 'normal', std });
      params.create(pre + 'self_attn.k_proj.weight', [kvDim, d], { kind: 'normal', std });
      params.create(pre + 'self_attn.v_proj.weight', [kvDim, d], { kind: 'normal', std });
      params.create(pre + 'self_attn.o_proj.weight', [d, qDim], { kind: 'normal', std: projStd });
      params.create(pre + 'post_attention_layernorm.weight', [d], { kind: 'ones' });
      params.create(pre + 'mlp.gate_proj.weight', [F, d], { kind: 'normal', std });
      params.create(pre + 'mlp.up_proj.weight', [F, d], { kind: 'normal', std });
      params.create(pre + 'mlp.down_proj.weight', [d, F], { kind: 'normal', std: projStd });
    }
    params.create('model.norm.weight', [d], { kind: 'ones' });
    if (!config.tie_word_embeddings) params.create('lm_head.weight', [V, d], { kind: 'normal', std });
    this.p = (name) => params.get(name);
  }

  /** logits (B·T, V) for ids (B·T) laid out sequence after sequence; `rng` drives dropout. */
  forward(tape: Tape, ids: ArrayLike<number>, B: number, T: number, rng?: Rng): Tensor {
    const c = this.config, p = this.p, { headDim } = derive(c);
    const H = c.num_attention_heads, Hkv = c.num_key_value_heads, eps = c.rms_norm_eps;
    if (ids.length !== B * T) throw new Error(`LlamaTrain.forward: ${ids.length} ids for B=${B} × T=${T}`);
    const pDrop = this.opts.dropout ?? 0;
    const drop = (x: Tensor) => (pDrop > 0 && rng ? dropout(tape, x, pDrop, rng) : x);
    let x = drop(embedding(tape, p('model.embed_tokens.weight'), ids, [B, T]));      // (B, T, d)
    for (let l = 0; l < c.num_hidden_layers; l++) {
      const pre = `model.layers.${l}.`;
      const xn = rmsNorm(tape, x, p(pre + 'input_layernorm.weight'), eps);            // (B, T, d)
      const q = rope(tape, reshape(tape, linear(tape, xn, p(pre + 'self_attn.q_proj.weight')), [B, T, H, headDim]), this.invFreq);
      const k = rope(tape, reshape(tape, linear(tape, xn, p(pre + 'self_attn.k_proj.weight')), [B, T, Hkv, headDim]), this.invFreq);
      const v = reshape(tape, linear(tape, xn, p(pre + 'self_attn.v_proj.weight')), [B, T, Hkv, headDim]);
      const att = reshape(tape, attention(tape, q, k, v), [B, T, H * headDim]);         // (B, T, qDim)
      x = add(tape, x, drop(linear(tape, att, p(pre + 'self_attn.o_proj.weight'))));    // (B, T, d)
      const hn = rmsNorm(tape, x, p(pre + 'post_attention_layernorm.weight'), eps);
      const f = swiglu(tape, linear(tape, hn, p(pre + 'mlp.gate_proj.weight')), linear(tape, hn, p(pre + 'mlp.up_proj.weight'))); // (B, T, F)
      x = add(tape, x, drop(linear(tape, f, p(pre + 'mlp.down_proj.weight'))));          // (B, T, d)
    }
    const xn = rmsNorm(tape, x, p('model.norm.weight'), eps);
    const head = c.tie_word_embeddings ? p('model.embed_tokens.weight') : p('lm_head.weight');
    return reshape(tape, linear(tape, xn, head), [B * T, c.vocab_size]);                // (B·T, V)
  }

  /** Mean next-token cross-entropy; targets (B·T), −100 = ignored. */
  loss(tape: Tape, ids: ArrayLike<number>, targets: ArrayLike<number>, B: number, T: number, rng?: Rng, perRow?: Float32Array): Tensor {
    return crossEntropy(tape, this.forward(tape, ids, B, T, rng), targets, { perRow });
  }
}
