// The normalised configuration of a Llama-family model. Field names follow Hugging Face `config.json`
// (LlamaConfig / Qwen2Config / MistralConfig), so a config.json maps onto it field by field; GGUF
// metadata is translated into the same names by the GGUF loader. Derived values live in `derive()`.

import type { RopeStyle } from '../kernels/types.js';

export interface RopeScaling {
  /** 'llama3' (Llama 3.1/3.2 frequency-dependent scaling), 'linear' (positions divided by factor). */
  rope_type: 'llama3' | 'linear';
  factor: number;
  low_freq_factor?: number;           // llama3 only
  high_freq_factor?: number;          // llama3 only
  original_max_position_embeddings?: number; // llama3 only
}

export interface LlamaConfig {
  /** 'llama' | 'mistral' | 'qwen2' (SmolLM2 is 'llama' with tied embeddings). */
  model_type: string;
  vocab_size: number;
  hidden_size: number;
  intermediate_size: number;
  num_hidden_layers: number;
  num_attention_heads: number;
  num_key_value_heads: number;
  /** Defaults to hidden_size / num_attention_heads. */
  head_dim?: number;
  rms_norm_eps: number;
  rope_theta: number;
  rope_scaling?: RopeScaling | null;
  max_position_embeddings: number;
  tie_word_embeddings: boolean;
  /** Qwen2: biases on q/k/v projections. */
  attention_bias: boolean;
  hidden_act: 'silu' | 'gelu_pytorch_tanh' | 'gelu';
  bos_token_id?: number | null;
  eos_token_id?: number | number[] | null;
  /** Mistral: attention sees only the last `sliding_window` tokens. Tessera runs full attention, which
   *  is the same computation while the context is no longer than the window, so loading caps the
   *  context there (src/models/load.ts). */
  sliding_window?: number;
  /** Not in HF configs: how Q/K are laid out for RoPE. HF checkpoints are 'neox'; GGUF llama files
   *  (whose Q/K rows llama.cpp's converter permuted) are 'normal'. */
  rope_style?: RopeStyle;
}

export interface DerivedDims {
  headDim: number;
  qDim: number;      // H · D
  kvDim: number;     // Hkv · D
  groupSize: number; // H / Hkv
}

export function derive(c: LlamaConfig): DerivedDims {
  const headDim = c.head_dim ?? c.hidden_size / c.num_attention_heads;
  return {
    headDim,
    qDim: c.num_attention_heads * headDim,
    kvDim: c.num_key_value_heads * headDim,
    groupSize: c.num_attention_heads / c.num_key_value_heads,
  };
}
