// Where each weight lives. Every matrix is a `Mat`: a pointer into one arena plus its stored dtype
// and shape. Layer i's weights live in layer i's arena (see docs/ARCHITECTURE.md, "Memory beyond
// 4 GiB"); the embedding, final norm and output head live in the head arena.

import type { Ptr, WeightDType } from '../kernels/types.js';
import type { Arena } from '../runtime/arena.js';

/** A weight matrix (rows = out features, cols = in features), row-major, stored as `dtype`. */
export interface Mat { ptr: Ptr; dtype: WeightDType; rows: number; cols: number }

export interface LayerWeights {
  arena: Arena;
  attnNorm: Ptr;                 // (d) f32
  q: Mat; k: Mat; v: Mat; o: Mat;
  /** q, k and v stacked (qDim + 2·kvDim, d) when they share a dtype: their rows are stored
   *  contiguously, so one matmul (one thread-pool job) computes all three. */
  qkv: Mat | null;
  qBias: Ptr; kBias: Ptr; vBias: Ptr; // (qDim | kvDim) f32, 0 when absent; contiguous when present
  ffnNorm: Ptr;                  // (d) f32
  gate: Mat; up: Mat; down: Mat;
  /** gate and up stacked (2F, d) when they share a dtype. */
  gateUp: Mat | null;
}

export interface ModelWeights {
  head: Arena;
  embed: Mat;                    // (vocab, d)
  norm: Ptr;                     // (d) f32
  lmHead: Mat;                   // (vocab, d) — the same Mat as embed when tied
  layers: LayerWeights[];
}

/** The HF names of one layer's tensors. */
export function layerTensorNames(i: number) {
  const p = `model.layers.${i}.`;
  return {
    attnNorm: `${p}input_layernorm.weight`,
    q: `${p}self_attn.q_proj.weight`, k: `${p}self_attn.k_proj.weight`,
    v: `${p}self_attn.v_proj.weight`, o: `${p}self_attn.o_proj.weight`,
    qBias: `${p}self_attn.q_proj.bias`, kBias: `${p}self_attn.k_proj.bias`, vBias: `${p}self_attn.v_proj.bias`,
    ffnNorm: `${p}post_attention_layernorm.weight`,
    gate: `${p}mlp.gate_proj.weight`, up: `${p}mlp.up_proj.weight`, down: `${p}mlp.down_proj.weight`,
  };
}
