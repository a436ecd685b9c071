// GGUF metadata and tensor names of the Llama family (llama.cpp's "llama" and "qwen2" architectures;
// Mistral files use "llama") translated to Tessera's LlamaConfig (Hugging Face field names) and HF
// tensor names. Key names: gguf-py constants.py (Keys.LLM / Attention / Rope / Tokenizer); tensor
// names: MODEL_TENSOR → "token_embd", "blk.{bid}.attn_q", … (TENSOR_NAMES in the same file).
//
// RoPE layout: llama.cpp's converter permutes the Q/K rows of "llama" models so that rotated pairs
// are adjacent (rope_style 'normal'); "qwen2" files keep HF's half-split pairs ('neox').
// Llama-3 RoPE scaling has no metadata key: the converter stores per-pair frequency divisors as the
// tensor rope_freqs.weight (D/2 f32). llamaConfigFromGguf then leaves rope_scaling null, and the
// model must divide its inverse frequencies by ggufRopeFreqFactors(file).

import type { LlamaConfig, RopeScaling } from '../models/config.js';
import { FormatError } from './errors.js';
import type { GgufFile, GgufValue } from './gguf.js';

/** The architectures (general.architecture) this module understands. */
export const GGUF_LLAMA_ARCHS = ['llama', 'qwen2'] as const;
export type GgufLlamaArch = (typeof GGUF_LLAMA_ARCHS)[number];

function src(file: GgufFile): string {
  return file.description;
}

function getInt(file: GgufFile, key: string, fallback?: number): number {
  const v: GgufValue | undefined = file.metadata.get(key);
  if (v === undefined) {
    if (fallback !== undefined) return fallback;
    throw new FormatError(src(file), `missing metadata key ${key}`);
  }
  const t = file.metadataTypes.get(key);
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0 || t === 'f32' || t === 'f64') {
    throw new FormatError(src(file), `metadata ${key} = ${JSON.stringify(String(v))} (${t}) must be a non-negative integer`);
  }
  return v;
}

function getFloat(file: GgufFile, key: string, fallback?: number): number {
  const v = file.metadata.get(key);
  if (v === undefined) {
    if (fallback !== undefined) return fallback;
    throw new FormatError(src(file), `missing metadata key ${key}`);
  }
  if (typeof v !== 'number' || !Number.isFinite(v)) {
    throw new FormatError(src(file), `metadata ${key} = ${JSON.stringify(String(v))} (${file.metadataTypes.get(key)}) must be a finite number`);
  }
  return v;
}

/** A float that must be > 0 (a norm epsilon, a RoPE base or factor: ≤ 0 silently computes a different model). */
function getPositiveFloat(file: GgufFile, key: string, fallback?: number): number {
  const v = getFloat(file, key, fallback);
  if (!(v > 0)) throw new FormatError(src(file), `metadata ${key} = ${v} must be a positive number`);
  return v;
}

/** An integer that must be ≥ 1 (a size or a count the model is built from). */
function getPositiveInt(file: GgufFile, key: string, fallback?: number): number {
  const v = getInt(file, key, fallback);
  if (v === 0) throw new FormatError(src(file), `metadata ${key} = 0 must be a positive integer`);
  return v;
}

function getString(file: GgufFile, key: string): string | undefined {
  const v = file.metadata.get(key);
  if (v === undefined) return undefined;
  if (typeof v !== 'string') throw new FormatError(src(file), `metadata ${key} must be a string, found ${file.metadataTypes.get(key)}`);
  return v;
}

/** general.architecture, checked to be one this module supports. */
export function ggufArch(file: GgufFile): GgufLlamaArch {
  const arch = getString(file, 'general.architecture');
  if (arch === undefined) throw new FormatError(src(file), 'missing metadata key general.architecture');
  if (!(GGUF_LLAMA_ARCHS as readonly string[]).includes(arch)) {
    throw new FormatError(src(file), `architecture "${arch}" is not supported (supported: ${GGUF_LLAMA_ARCHS.join(', ')})`);
  }
  return arch as GgufLlamaArch;
}

/** Translates a llama / qwen2 GGUF's metadata into a LlamaConfig (HF field names). */
export function llamaConfigFromGguf(file: GgufFile): LlamaConfig {
  const arch = ggufArch(file);
  const k = (s: string): string => `${arch}.${s}`;
  const hidden = getInt(file, k('embedding_length'));
  const heads = getInt(file, k('attention.head_count'));
  if (heads === 0 || hidden === 0) throw new FormatError(src(file), `${k('attention.head_count')} and ${k('embedding_length')} must be positive`);
  const kvHeads = getInt(file, k('attention.head_count_kv'), heads);
  if (kvHeads === 0 || heads % kvHeads !== 0) throw new FormatError(src(file), `head_count ${heads} is not a multiple of head_count_kv ${kvHeads}`);
  const headDim = getInt(file, k('attention.key_length'), Math.floor(hidden / heads));
  const valueDim = getInt(file, k('attention.value_length'), headDim);
  if (valueDim !== headDim) throw new FormatError(src(file), `key_length ${headDim} ≠ value_length ${valueDim} is not supported`);
  const ropeDim = getInt(file, k('rope.dimension_count'), headDim);
  if (ropeDim !== headDim) throw new FormatError(src(file), `partial rotary embeddings (rope.dimension_count ${ropeDim} < head dim ${headDim}) are not supported`);

  const tokens = file.metadata.get('tokenizer.ggml.tokens');
  const embd = file.tensors.get('token_embd.weight');
  let vocab: number;
  if (Array.isArray(tokens)) vocab = tokens.length;
  else if (file.metadata.has(k('vocab_size'))) vocab = getInt(file, k('vocab_size'));
  else if (embd !== undefined) vocab = embd.shape[0]!;
  else throw new FormatError(src(file), 'cannot tell the vocabulary size: no tokenizer.ggml.tokens, vocab_size or token_embd.weight');

  // llama.cpp requires the embedding (and output) matrices to be (V, E) in this orientation
  for (const name of ['token_embd.weight', 'output.weight']) {
    const e = file.tensors.get(name);
    if (e !== undefined && (e.shape.length !== 2 || e.shape[0] !== vocab || e.shape[1] !== hidden)) {
      throw new FormatError(src(file), `${name} has shape [${e.shape.join(', ')}], expected [${vocab}, ${hidden}] (vocabulary × embedding_length)`);
    }
  }

  let ropeScaling: RopeScaling | null = null;
  const scalingType = getString(file, k('rope.scaling.type'));
  if (scalingType === 'linear') {
    ropeScaling = { rope_type: 'linear', factor: getPositiveFloat(file, k('rope.scaling.factor')) };
  } else if (scalingType !== undefined && scalingType !== 'none') {
    throw new FormatError(src(file), `rope scaling type "${scalingType}" is not supported (supported: none, linear, llama3 via rope_freqs.weight)`);
  } else if (file.metadata.has(k('rope.scale_linear'))) {
    // older converters wrote {arch}.rope.scale_linear instead of the scaling.type/factor pair
    const f = getPositiveFloat(file, k('rope.scale_linear'));
    if (f !== 1) ropeScaling = { rope_type: 'linear', factor: f };
  }

  const bos = file.metadata.get('tokenizer.ggml.bos_token_id');
  const eos = file.metadata.get('tokenizer.ggml.eos_token_id');
  const blocks = getPositiveInt(file, k('block_count'));
  const config: LlamaConfig = {
    model_type: arch,
    vocab_size: vocab,
    hidden_size: hidden,
    intermediate_size: getPositiveInt(file, k('feed_forward_length')),
    num_hidden_layers: blocks,
    num_attention_heads: heads,
    num_key_value_heads: kvHeads,
    rms_norm_eps: getPositiveFloat(file, k('attention.layer_norm_rms_epsilon')),
    rope_theta: getPositiveFloat(file, k('rope.freq_base'), 10000),
    rope_scaling: ropeScaling,
    max_position_embeddings: getPositiveInt(file, k('context_length')),
    tie_word_embeddings: !file.tensors.has('output.weight'),
    attention_bias: file.tensors.has('blk.0.attn_q.bias'),
    hidden_act: 'silu',
    bos_token_id: typeof bos === 'number' ? bos : null,
    eos_token_id: typeof eos === 'number' ? eos : null,
    rope_style: arch === 'llama' ? 'normal' : 'neox',
  };
  if (headDim !== hidden / heads) config.head_dim = headDim;
  return config;
}

/** Llama-3 frequency divisors (D/2 values: invFreq[i] is divided by factors[i]) or null when absent. */
export function ggufRopeFreqFactors(file: GgufFile): Float32Array | null {
  const e = file.tensors.get('rope_freqs.weight');
  if (e === undefined) return null;
  if (e.dtype !== 'f32' || e.shape.length !== 1) {
    throw new FormatError(src(file), `rope_freqs.weight must be a 1-D f32 tensor, found ${e.ggmlType} [${e.shape.join(', ')}]`);
  }
  const bytes = new Uint8Array(e.byteLength);
  file.read(e, bytes);
  const out = new Float32Array(e.shape[0]!); // (D/2)
  const dv = new DataView(bytes.buffer);
  for (let i = 0; i < out.length; i++) {
    out[i] = dv.getFloat32(4 * i, true);
    if (!(out[i]! > 0) || !Number.isFinite(out[i]!)) throw new FormatError(src(file), `rope_freqs.weight[${i}] = ${out[i]} must be a positive finite number`);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Tensor names

const GLOBAL_NAMES: readonly [gguf: string, hf: string][] = [
  ['token_embd.weight', 'model.embed_tokens.weight'],
  ['output_norm.weight', 'model.norm.weight'],
  ['output.weight', 'lm_head.weight'],
];
const BLOCK_NAMES: readonly [gguf: string, hf: string][] = [
  ['attn_norm.weight', 'input_layernorm.weight'],
  ['attn_q.weight', 'self_attn.q_proj.weight'],
  ['attn_q.bias', 'self_attn.q_proj.bias'],
  ['attn_k.weight', 'self_attn.k_proj.weight'],
  ['attn_k.bias', 'self_attn.k_proj.bias'],
  ['attn_v.weight', 'self_attn.v_proj.weight'],
  ['attn_v.bias', 'self_attn.v_proj.bias'],
  ['attn_output.weight', 'self_attn.o_proj.weight'],
  ['attn_output.bias', 'self_attn.o_proj.bias'],
  ['ffn_norm.weight', 'post_attention_layernorm.weight'],
  ['ffn_gate.weight', 'mlp.gate_proj.weight'],
  ['ffn_up.weight', 'mlp.up_proj.weight'],
  ['ffn_down.weight', 'mlp.down_proj.weight'],
];
const GGUF_TO_HF = new Map(GLOBAL_NAMES);
const HF_TO_GGUF = new Map(GLOBAL_NAMES.map(([g, h]) => [h, g]));
const BLOCK_G2H = new Map(BLOCK_NAMES);
const BLOCK_H2G = new Map(BLOCK_NAMES.map(([g, h]) => [h, g]));

/** HF name → GGUF name, e.g. model.layers.3.mlp.up_proj.weight → blk.3.ffn_up.weight. Throws on names outside the Llama family. */
export function ggufTensorName(hfName: string): string {
  const g = HF_TO_GGUF.get(hfName);
  if (g !== undefined) return g;
  const m = /^model\.layers\.(0|[1-9]\d{0,5})\.(.+)$/.exec(hfName);
  const rest = m ? BLOCK_H2G.get(m[2]!) : undefined;
  if (m && rest !== undefined) return `blk.${m[1]}.${rest}`;
  throw new FormatError('tensor name', `"${hfName}" is not a Llama-family Hugging Face tensor name`);
}

/** GGUF name → HF name, e.g. blk.0.attn_q.weight → model.layers.0.self_attn.q_proj.weight.
 *  `source` (the file) names where an unknown tensor came from. */
export function hfTensorName(ggufName: string, source = 'GGUF'): string {
  const h = GGUF_TO_HF.get(ggufName);
  if (h !== undefined) return h;
  const m = /^blk\.(0|[1-9]\d{0,5})\.(.+)$/.exec(ggufName);
  const rest = m ? BLOCK_G2H.get(m[2]!) : undefined;
  if (m && rest !== undefined) return `model.layers.${m[1]}.${rest}`;
  throw new FormatError(source, `tensor "${ggufName}" has no Hugging Face equivalent in the Llama family (not a llama/qwen2 tensor name)`);
}
