// The long-context model for training: LlamaTrain's parameters (Hugging Face Llama names, so the
// saved folder runs under loadModel) with a forward that computes logits only on the rows that are
// scored. At T = 2048 with the loss on a handful of answer tokens plus a sample of language-model
// rows, the (B·T, V) head of LlamaTrain.forward would be most of the step; gathering the scored
// rows first keeps the cost where the model learns: attention over the long context.
//
// Shape legend: B = sequences, T = tokens each, d = hidden, H/Hkv = heads, D = head dim, n = scored rows.

import type { LlamaConfig } from '../../models/config.js';
import { derive } from '../../models/config.js';
import type { Tape } from '../../training/autograd/tape.js';
import type { Tensor } from '../../training/autograd/tensor.js';
import { add, reshape, scale } from '../../training/autograd/ops-basic.js';
import { linear } from '../../training/autograd/ops-linear.js';
import { crossEntropy, rmsNorm, swiglu } from '../../training/autograd/ops-nn.js';
import { embedding } from '../../training/autograd/ops-shape.js';
import { attention, rope } from '../../training/autograd/ops-attention.js';
import { LlamaTrain } from '../../training/models/llama-train.js';
import type { Params } from '../../training/params.js';

/** Rows of a (B·T) batch to score: row index (b·T + t) and the target token there. */
export interface ScoredRows {
  rows: Int32Array;    // (n)
  targets: Int32Array; // (n)
}

export class LongContextModel {
  readonly llama: LlamaTrain;

  constructor(readonly config: LlamaConfig, readonly params: Params) {
    this.llama = new LlamaTrain(config, params);
  }

  /** Final-normed hidden states (B, T, d), exactly LlamaTrain.forward before its lm_head. */
  hidden(tape: Tape, ids: ArrayLike<number>, B: number, T: number): Tensor {
    const c = this.config, p = (n: string) => this.params.get(n), { headDim } = derive(c);
    const H = c.num_attention_heads, Hkv = c.num_key_value_heads, eps = c.rms_norm_eps, inv = this.llama.invFreq;
    if (ids.length !== B * T) throw new Error(`LongContextModel.hidden: ${ids.length} ids for B=${B} × T=${T}`);
    let x = embedding(tape, p('model.embed_tokens.weight'), ids, [B, T]);                // (B, T, d)
    for (let l = 0; l < c.num_hidden_layers; l++) {
      const pre = `model.layers.${l}.`;
      const xn = rmsNorm(tape, x, p(pre + 'input_layernorm.weight'), eps);               // (B, T, d)
      const q = rope(tape, reshape(tape, linear(tape, xn, p(pre + 'self_attn.q_proj.weight')), [B, T, H, headDim]), inv);
      const k = rope(tape, reshape(tape, linear(tape, xn, p(pre + 'self_attn.k_proj.weight')), [B, T, Hkv, headDim]), inv);
      const v = reshape(tape, linear(tape, xn, p(pre + 'self_attn.v_proj.weight')), [B, T, Hkv, headDim]);
      const att = reshape(tape, attention(tape, q, k, v), [B, T, H * headDim]);            // (B, T, qDim)
      x = add(tape, x, linear(tape, att, p(pre + 'self_attn.o_proj.weight')));             // (B, T, d)
      const hn = rmsNorm(tape, x, p(pre + 'post_attention_layernorm.weight'), eps);
      const f = swiglu(tape, linear(tape, hn, p(pre + 'mlp.gate_proj.weight')), linear(tape, hn, p(pre + 'mlp.up_proj.weight'))); // (B, T, F)
      x = add(tape, x, linear(tape, f, p(pre + 'mlp.down_proj.weight')));                  // (B, T, d)
    }
    return rmsNorm(tape, x, p('model.norm.weight'), eps);                                  // (B, T, d)
  }

  /** Logits (n, V) of the given rows of the (B·T) batch. */
  rowLogits(tape: Tape, hidden: Tensor, rows: ArrayLike<number>): Tensor {
    const c = this.config;
    const flat = reshape(tape, hidden, [hidden.size / c.hidden_size, c.hidden_size]);      // (B·T, d)
    const picked = embedding(tape, flat, rows);                                            // (n, d)
    const head = c.tie_word_embeddings ? this.params.get('model.embed_tokens.weight') : this.params.get('lm_head.weight');
    return linear(tape, picked, head);                                                     // (n, V)
  }

  /** Mean cross-entropy on the answer rows, plus lmWeight × mean cross-entropy on the LM rows. */
  loss(tape: Tape, ids: ArrayLike<number>, B: number, T: number, answers: ScoredRows, lm: ScoredRows | null, lmWeight: number): Tensor {
    if (answers.rows.length === 0) throw new Error('LongContextModel.loss: a batch without answer rows');
    const h = this.hidden(tape, ids, B, T);
    const ans = crossEntropy(tape, this.rowLogits(tape, h, answers.rows), answers.targets);  // (1)
    if (!lm || lm.rows.length === 0 || lmWeight === 0) return ans;
    const lmLoss = crossEntropy(tape, this.rowLogits(tape, h, lm.rows), lm.targets);         // (1)
    return add(tape, ans, scale(tape, lmLoss, lmWeight));
  }
}
