// Hugging Face Llama / Mistral / Qwen2 checkpoint → GGUF, doing what llama.cpp's
// convert_hf_to_gguf.py does for these architectures (LlamaModel, Qwen2Model):
//   - names: model.layers.N.self_attn.q_proj.weight → blk.N.attn_q.weight, … (gguf-llama.ts)
//   - arch "llama" (llama, mistral): Q and K rows permuted per head so RoPE pairs are adjacent:
//       permute(w, n_head) = w.reshape(n_head, 2, D/2, …).swapaxes(1, 2).reshape(w.shape)
//     i.e. new row h·D + 2i + s = old row h·D + s·D/2 + i; K uses n_head_kv; biases likewise.
//   - arch "qwen2": no permutation (llama.cpp runs qwen2 with NEOX RoPE).
//   - 1-D tensors (norms, biases, rope_freqs) are always f32; 2-D weights take the output type,
//     falling back to f16 when a row is not a whole number of 32-value blocks (as the converter does).
//     For q4_0 output the output projection (output.weight, or token_embd when tied) is q8_0, as
//     llama-quantize keeps it at a higher precision.
//   - Llama-3 RoPE scaling becomes the tensor rope_freqs.weight (generate_extra_tensors), linear
//     scaling the keys {arch}.rope.scaling.type / .factor.
// Shape legend: H = heads, Hkv = KV heads, D = head dim, E = hidden size, F = FFN size, V = vocab.

import type { LlamaConfig } from '../models/config.js';
import { derive } from '../models/config.js';
import { ggufTensorName } from './gguf-llama.js';
import { writeGguf, type GgufMetadataEntry, type GgufTensorToWrite, type GgufWriteType } from './gguf-writer.js';
import { f16Bytes, f32Bytes, quantizeToQ4_0, quantizeToQ8_0, toFloat32 } from './gguf-quantize.js';

export interface HfTensor {
  name: string;
  dtype: 'f32' | 'f16' | 'bf16';
  /** Outermost first, as in the safetensors file. */
  shape: number[];
  data: Uint8Array;
}

export interface GgufTokenizerSpec {
  /** 'gpt2' = byte-level BPE (Llama 3, Qwen2, SmolLM2); 'llama' = SentencePiece (Llama 2, Mistral). */
  model: 'gpt2' | 'llama';
  /** Pre-tokenizer name llama.cpp knows (llama-bpe, qwen2, smollm, …); required for gpt2. */
  pre?: string;
  tokens: string[];
  /** 1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte (gguf-py TokenType). */
  tokenTypes: number[];
  /** "a b" strings, required for gpt2. */
  merges?: string[];
  scores?: number[];
  bosId?: number;
  eosId?: number;
  addBos?: boolean;
  chatTemplate?: string;
}

export type GgufOutType = 'f32' | 'f16' | 'q8_0' | 'q4_0';

export interface ConvertHfToGgufOptions {
  config: LlamaConfig;
  tensors: Iterable<HfTensor>;
  tokenizer: GgufTokenizerSpec;
  outFile: string;
  outType: GgufOutType;
  /** general.name (default: the model_type). */
  name?: string;
}

/** gguf-py LlamaFileType. */
const FILE_TYPE: Record<GgufOutType, number> = { f32: 0, f16: 1, q4_0: 2, q8_0: 7 };

function archOf(config: LlamaConfig): 'llama' | 'qwen2' {
  if (config.model_type === 'llama' || config.model_type === 'mistral') return 'llama';
  if (config.model_type === 'qwen2') return 'qwen2';
  throw new Error(`convertHfToGguf: model_type "${config.model_type}" is not supported (llama, mistral, qwen2)`);
}

/** Llama-3 per-pair frequency divisors, as convert_hf_to_gguf.py computes them (torch f32 arithmetic,
 *  emulated with Math.fround). original_max_position_embeddings defaults to 8192 as there. */
export function llama3RopeFreqFactors(config: LlamaConfig): Float32Array {
  const rs = config.rope_scaling;
  if (!rs || rs.rope_type !== 'llama3') throw new Error('llama3RopeFreqFactors: config has no llama3 rope_scaling');
  const fr = Math.fround;
  const dim = derive(config).headDim;
  const base = fr(config.rope_theta);
  const factor = rs.factor ?? 8;
  const lowFreqFactor = rs.low_freq_factor ?? 1;
  const highFreqFactor = rs.high_freq_factor ?? 4;
  const oldContextLen = rs.original_max_position_embeddings ?? 8192;
  const lowFreqWavelen = fr(oldContextLen / lowFreqFactor);
  const highFreqWavelen = fr(oldContextLen / highFreqFactor);
  if (lowFreqWavelen === highFreqWavelen) throw new Error('llama3RopeFreqFactors: low_freq_factor equals high_freq_factor');
  const out = new Float32Array(dim / 2); // (D/2)
  for (let i = 0; i < dim / 2; i++) {
    const freq = fr(1 / fr(Math.pow(base, fr((2 * i) / dim))));
    const wavelen = fr(fr(2 * Math.PI) / freq);
    if (wavelen < highFreqWavelen) out[i] = 1;
    else if (wavelen > lowFreqWavelen) out[i] = factor;
    else {
      const smooth = fr(fr(fr(oldContextLen / wavelen) - lowFreqFactor) / fr(highFreqFactor - lowFreqFactor));
      out[i] = fr(1 / fr(fr(fr(1 - smooth) / factor) + smooth));
    }
  }
  return out;
}

/** Reorders rows per head: new row h·D + 2i + s = old row h·D + s·D/2 + i (rows = nHead·D). */
export function permuteQkRows(data: Uint8Array, rows: number, nHead: number): Uint8Array {
  if (rows % (2 * nHead) !== 0) throw new Error(`permuteQkRows: ${rows} rows do not split into ${nHead} heads of even size`);
  const rowBytes = data.byteLength / rows;
  const D = rows / nHead;
  const out = new Uint8Array(data.byteLength); // same shape as data
  for (let h = 0; h < nHead; h++) {
    for (let s = 0; s < 2; s++) {
      for (let i = 0; i < D / 2; i++) {
        const from = h * D + s * (D / 2) + i;
        const to = h * D + 2 * i + s;
        out.set(data.subarray(from * rowBytes, (from + 1) * rowBytes), to * rowBytes);
      }
    }
  }
  return out;
}

/** Expected HF shapes of every tensor, by HF name. */
function expectedShapes(c: LlamaConfig): Map<string, number[]> {
  const { qDim, kvDim } = derive(c);
  const E = c.hidden_size;
  const F = c.intermediate_size;
  const m = new Map<string, number[]>();
  m.set('model.embed_tokens.weight', [c.vocab_size, E]); // (V, E)
  m.set('model.norm.weight', [E]);
  if (!c.tie_word_embeddings) m.set('lm_head.weight', [c.vocab_size, E]); // (V, E)
  for (let l = 0; l < c.num_hidden_layers; l++) {
    const p = `model.layers.${l}.`;
    m.set(`${p}input_layernorm.weight`, [E]);
    m.set(`${p}post_attention_layernorm.weight`, [E]);
    m.set(`${p}self_attn.q_proj.weight`, [qDim, E]); // (H·D, E)
    m.set(`${p}self_attn.k_proj.weight`, [kvDim, E]); // (Hkv·D, E)
    m.set(`${p}self_attn.v_proj.weight`, [kvDim, E]); // (Hkv·D, E)
    m.set(`${p}self_attn.o_proj.weight`, [E, qDim]); // (E, H·D)
    m.set(`${p}mlp.gate_proj.weight`, [F, E]); // (F, E)
    m.set(`${p}mlp.up_proj.weight`, [F, E]); // (F, E)
    m.set(`${p}mlp.down_proj.weight`, [E, F]); // (E, F)
    if (c.attention_bias) {
      m.set(`${p}self_attn.q_proj.bias`, [qDim]);
      m.set(`${p}self_attn.k_proj.bias`, [kvDim]);
      m.set(`${p}self_attn.v_proj.bias`, [kvDim]);
    }
  }
  return m;
}

function metadataFor(opts: ConvertHfToGgufOptions, arch: 'llama' | 'qwen2'): GgufMetadataEntry[] {
  const c = opts.config;
  const { headDim } = derive(c);
  const k = (s: string): string => `${arch}.${s}`;
  const md: GgufMetadataEntry[] = [
    ['general.architecture', arch, 'string'],
    ['general.type', 'model', 'string'],
    ['general.name', opts.name ?? c.model_type, 'string'],
    [k('block_count'), c.num_hidden_layers, 'u32'],
    [k('context_length'), c.max_position_embeddings, 'u32'],
    [k('embedding_length'), c.hidden_size, 'u32'],
    [k('feed_forward_length'), c.intermediate_size, 'u32'],
    [k('attention.head_count'), c.num_attention_heads, 'u32'],
    [k('attention.head_count_kv'), c.num_key_value_heads, 'u32'],
    [k('rope.freq_base'), c.rope_theta, 'f32'],
    [k('attention.layer_norm_rms_epsilon'), c.rms_norm_eps, 'f32'],
  ];
  if (c.head_dim !== undefined) {
    md.push([k('attention.key_length'), c.head_dim, 'u32'], [k('attention.value_length'), c.head_dim, 'u32']);
  }
  md.push(['general.file_type', FILE_TYPE[opts.outType], 'u32']);
  md.push([k('vocab_size'), c.vocab_size, 'u32']);
  md.push([k('rope.dimension_count'), headDim, 'u32']);
  if (c.rope_scaling?.rope_type === 'linear') {
    md.push([k('rope.scaling.type'), 'linear', 'string'], [k('rope.scaling.factor'), c.rope_scaling.factor, 'f32']);
  }
  md.push(['general.quantization_version', 2, 'u32']);

  const t = opts.tokenizer;
  const n = t.tokens.length;
  if (n !== c.vocab_size) throw new Error(`convertHfToGguf: tokenizer has ${n} tokens but vocab_size is ${c.vocab_size} (pad the token list as the converter does)`);
  if (t.tokenTypes.length !== n) throw new Error(`convertHfToGguf: ${t.tokenTypes.length} token types for ${n} tokens`);
  md.push(['tokenizer.ggml.model', t.model, 'string']);
  if (t.model === 'gpt2') {
    if (t.pre === undefined) throw new Error('convertHfToGguf: a gpt2 tokenizer needs `pre` (llama.cpp picks its pre-tokenizer regex by it)');
    if (t.merges === undefined) throw new Error('convertHfToGguf: a gpt2 tokenizer needs merges');
  }
  if (t.pre !== undefined) md.push(['tokenizer.ggml.pre', t.pre, 'string']);
  md.push(['tokenizer.ggml.tokens', t.tokens, 'string[]']);
  if (t.scores !== undefined) {
    if (t.scores.length !== n) throw new Error(`convertHfToGguf: ${t.scores.length} scores for ${n} tokens`);
    md.push(['tokenizer.ggml.scores', t.scores, 'f32[]']);
  }
  md.push(['tokenizer.ggml.token_type', t.tokenTypes, 'i32[]']);
  if (t.merges !== undefined) md.push(['tokenizer.ggml.merges', t.merges, 'string[]']);
  for (const [key, id] of [['tokenizer.ggml.bos_token_id', t.bosId], ['tokenizer.ggml.eos_token_id', t.eosId]] as const) {
    if (id === undefined) continue;
    if (!Number.isInteger(id) || id < 0 || id >= n) throw new Error(`convertHfToGguf: ${key} = ${id} is not a token id (vocabulary of ${n})`);
    md.push([key, id, 'u32']);
  }
  if (t.addBos !== undefined) md.push(['tokenizer.ggml.add_bos_token', t.addBos, 'bool']);
  if (t.chatTemplate !== undefined) md.push(['tokenizer.chat_template', t.chatTemplate, 'string']);
  return md;
}

function encode(t: HfTensor, data: Uint8Array, type: GgufWriteType): Uint8Array {
  try {
    return encodeAs(t, data, type);
  } catch (e) {
    if (e instanceof RangeError) throw new RangeError(`convertHfToGguf: tensor "${t.name}": ${e.message}`);
    throw e;
  }
}

function encodeAs(t: HfTensor, data: Uint8Array, type: GgufWriteType): Uint8Array {
  switch (type) {
    case 'F32': return t.dtype === 'f32' ? data : f32Bytes(toFloat32(t.dtype, data));
    case 'F16': return t.dtype === 'f16' ? data : f16Bytes(toFloat32(t.dtype, data));
    case 'Q8_0': return quantizeToQ8_0(toFloat32(t.dtype, data));
    case 'Q4_0': return quantizeToQ4_0(toFloat32(t.dtype, data));
    default: throw new Error(`convertHfToGguf: ${type} output is not offered (K-quants: convert to f16, then tessera quantize)`);
  }
}

/** Converts a Llama-family HF checkpoint (config + tensors + tokenizer) into one GGUF v3 file. */
export function convertHfToGguf(opts: ConvertHfToGgufOptions): void {
  const c = opts.config;
  const arch = archOf(c);
  const { headDim } = derive(c);
  if (!Number.isInteger(headDim) || headDim % 2 !== 0) throw new Error(`convertHfToGguf: head dim ${headDim} must be an even integer`);
  if (c.num_attention_heads % c.num_key_value_heads !== 0) throw new Error('convertHfToGguf: num_attention_heads must be a multiple of num_key_value_heads');
  if (c.rope_scaling?.rope_type === 'llama3' && arch !== 'llama') throw new Error('convertHfToGguf: llama3 rope scaling is only supported for llama models');
  if (c.hidden_act !== 'silu') throw new Error(`convertHfToGguf: hidden_act ${c.hidden_act} is not supported by llama.cpp's ${arch} graph`);
  const metadata = metadataFor(opts, arch);
  const expected = expectedShapes(c);
  const outputProjection = c.tie_word_embeddings ? 'model.embed_tokens.weight' : 'lm_head.weight';

  function* converted(): Generator<GgufTensorToWrite> {
    if (c.rope_scaling?.rope_type === 'llama3') {
      const f = llama3RopeFreqFactors(c);
      yield { name: 'rope_freqs.weight', ggmlType: 'F32', shape: [f.length], data: f32Bytes(f) };
    }
    const seen = new Set<string>();
    for (const t of opts.tensors) {
      if (/\.rotary_emb\.inv_freq$/.test(t.name)) continue; // recomputed at load, as the converter skips it
      if (c.tie_word_embeddings && t.name === 'lm_head.weight') continue; // tied: the embedding serves as output
      const want = expected.get(t.name);
      if (want === undefined) throw new Error(`convertHfToGguf: unexpected tensor "${t.name}" for ${c.model_type} (attention_bias=${c.attention_bias}, tie_word_embeddings=${c.tie_word_embeddings})`);
      if (seen.has(t.name)) throw new Error(`convertHfToGguf: tensor "${t.name}" given twice`);
      seen.add(t.name);
      if (t.shape.length !== want.length || t.shape.some((d, i) => d !== want[i])) {
        throw new Error(`convertHfToGguf: tensor "${t.name}" has shape [${t.shape.join(', ')}], the config implies [${want.join(', ')}]`);
      }
      const width = t.dtype === 'f32' ? 4 : 2;
      const count = t.shape.reduce((a, b) => a * b, 1);
      if (t.data.byteLength !== count * width) throw new Error(`convertHfToGguf: tensor "${t.name}" has ${t.data.byteLength} bytes, expected ${count * width}`);

      let data = t.data;
      if (arch === 'llama') {
        if (/\.self_attn\.q_proj\.(weight|bias)$/.test(t.name)) data = permuteQkRows(data, t.shape[0]!, c.num_attention_heads);
        else if (/\.self_attn\.k_proj\.(weight|bias)$/.test(t.name)) data = permuteQkRows(data, t.shape[0]!, c.num_key_value_heads);
      }
      let type: GgufWriteType;
      if (t.shape.length === 1) type = 'F32';
      else if (opts.outType === 'f32') type = 'F32';
      else if (opts.outType === 'f16') type = 'F16';
      else if (t.shape[t.shape.length - 1]! % 32 !== 0) type = 'F16';
      else if (opts.outType === 'q4_0' && t.name !== outputProjection) type = 'Q4_0';
      else type = 'Q8_0';
      yield { name: ggufTensorName(t.name), ggmlType: type, shape: t.shape, data: encode(t, data, type) };
    }
    const missing = [...expected.keys()].filter((n) => !seen.has(n));
    if (missing.length > 0) throw new Error(`convertHfToGguf: missing tensors ${missing.slice(0, 5).join(', ')}${missing.length > 5 ? ` and ${missing.length - 5} more` : ''}`);
  }

  writeGguf(opts.outFile, metadata, converted());
}
