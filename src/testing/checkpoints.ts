// Small random-weight checkpoints in the real formats (a Hugging Face folder and GGUF files made by
// Tessera's converter), for tests, the llama.cpp reference fixtures and benchmarks.
//
// Presets:
//   llama3-tiny   llama, GQA 4:2, head_dim 16, Llama-3 RoPE scaling (all three frequency bands are
//                 hit: wavelengths 6 < 16 ≤ 33 ≤ 64 < 170…), untied output head
//   qwen2-tiny    qwen2, q/k/v biases, tied embeddings, rope_theta 1e6 (NEOX RoPE in llama.cpp)
//   smollm2-tiny  llama, tied embeddings, GQA 3:1, hidden 96
//   kquant-tiny   llama, untied, hidden = ffn = 256 (whole K-quant super-blocks), 2 layers (so the
//                 q4_k_m / q5_k_m recipes give attn_v and ffn_down q6_K in layer 1 only)
//   smollm2-135m  the SmolLM2-135M shapes (bench), random weights
//   llama3.2-1b   the Llama-3.2-1B shapes (bench), random weights
// Tiny presets use the tiny tokenizer's vocabulary; the bench shapes pad it with unused [PADi] tokens
// up to their vocab_size, as convert_hf_to_gguf.py pads a vocabulary smaller than the embedding.
//
// K-quant GGUFs (gguf-q4_k_m, gguf-q5_k_m, gguf-q6_k) are the f32 GGUF put through `tessera quantize`.
//
// Everything written is a pure function of (preset, seed): the reference fixtures record sha256 of
// the files, so a change in any writer shows up as a hash mismatch, not as a silent drift.

import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { LlamaConfig } from '../models/config.js';
import { writeSafetensors } from '../formats/safetensors-writer.js';
import { convertHfToGguf, type GgufOutType, type GgufTokenizerSpec, type HfTensor } from '../formats/hf-to-gguf.js';
import { quantizeGguf, type QuantRecipe } from '../formats/gguf-requantize.js';
import { randomLlamaTensors, type RandomTensor } from './random-model.js';
import { buildTinyTokenizerJson, tinyTokenizerConfig, tinyTokenizerGgufVocab, TINY_CHAT_TEMPLATE } from './tiny-tokenizer.js';

export const TINY_PRESETS = ['llama3-tiny', 'qwen2-tiny', 'smollm2-tiny'] as const;
export const KQUANT_PRESETS = ['kquant-tiny'] as const;
export const BENCH_PRESETS = ['smollm2-135m', 'llama3.2-1b'] as const;
export type PresetName = (typeof TINY_PRESETS)[number] | (typeof KQUANT_PRESETS)[number] | (typeof BENCH_PRESETS)[number];

const KQUANT_FORMATS = ['gguf-q4_k_m', 'gguf-q5_k_m', 'gguf-q6_k'] as const;
export type CheckpointFormat = 'hf' | 'gguf-f32' | 'gguf-f16' | 'gguf-q8_0' | 'gguf-q4_0' | (typeof KQUANT_FORMATS)[number];

export interface WriteTestCheckpointOptions {
  /** Weight seed (default 1). */
  seed?: number;
  /** What to write (default: ['hf', 'gguf-f32']). */
  formats?: CheckpointFormat[];
}

export interface TestCheckpoint {
  config: LlamaConfig;
  /** The Hugging Face folder, when 'hf' was asked for. */
  hfDir?: string;
  /** GGUF path by output type ('f32', 'q8_0', …). */
  gguf: Record<string, string>;
}

let tinyVocabCache: { json: Record<string, unknown>; spec: GgufTokenizerSpec } | undefined;

/** The tiny tokenizer (tokenizer.json object) and its GGUF vocabulary: BOS added, Llama 3 chat format. */
function tinyTokenizer(): { json: Record<string, unknown>; spec: GgufTokenizerSpec } {
  if (!tinyVocabCache) {
    const json = buildTinyTokenizerJson();
    tinyVocabCache = { json, spec: { ...tinyTokenizerGgufVocab(json), addBos: true, chatTemplate: TINY_CHAT_TEMPLATE } };
  }
  return tinyVocabCache;
}

/** The preset's config (HF field names). Tiny presets take the tiny tokenizer's vocabulary size. */
export function presetConfig(preset: PresetName): LlamaConfig {
  const vocab = tinyTokenizer().spec.tokens.length;
  const { bosId, eosId } = tinyTokenizer().spec;
  const common = { rms_norm_eps: 1e-5, hidden_act: 'silu' as const, bos_token_id: bosId ?? null, eos_token_id: eosId ?? null, rope_scaling: null };
  switch (preset) {
    case 'llama3-tiny':
      return {
        ...common, model_type: 'llama', vocab_size: vocab, hidden_size: 64, intermediate_size: 160,
        num_hidden_layers: 3, num_attention_heads: 4, num_key_value_heads: 2, head_dim: 16,
        rope_theta: 500000, max_position_embeddings: 512, tie_word_embeddings: false, attention_bias: false,
        rope_scaling: { rope_type: 'llama3', factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 64 },
      };
    case 'qwen2-tiny':
      return {
        ...common, model_type: 'qwen2', vocab_size: vocab, hidden_size: 64, intermediate_size: 128,
        num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, rms_norm_eps: 1e-6,
        rope_theta: 1000000, max_position_embeddings: 512, tie_word_embeddings: true, attention_bias: true,
      };
    case 'smollm2-tiny':
      return {
        ...common, model_type: 'llama', vocab_size: vocab, hidden_size: 96, intermediate_size: 256,
        num_hidden_layers: 3, num_attention_heads: 6, num_key_value_heads: 2,
        rope_theta: 100000, max_position_embeddings: 512, tie_word_embeddings: true, attention_bias: false,
      };
    case 'kquant-tiny':
      return {
        ...common, model_type: 'llama', vocab_size: vocab, hidden_size: 256, intermediate_size: 256,
        num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2,
        rope_theta: 10000, max_position_embeddings: 512, tie_word_embeddings: false, attention_bias: false,
      };
    case 'smollm2-135m':
      return {
        ...common, model_type: 'llama', vocab_size: 49152, hidden_size: 576, intermediate_size: 1536,
        num_hidden_layers: 30, num_attention_heads: 9, num_key_value_heads: 3,
        rope_theta: 100000, max_position_embeddings: 8192, tie_word_embeddings: true, attention_bias: false,
      };
    case 'llama3.2-1b':
      return {
        ...common, model_type: 'llama', vocab_size: 128256, hidden_size: 2048, intermediate_size: 8192,
        num_hidden_layers: 16, num_attention_heads: 32, num_key_value_heads: 8, head_dim: 64,
        rope_theta: 500000, max_position_embeddings: 131072, tie_word_embeddings: true, attention_bias: false,
        rope_scaling: { rope_type: 'llama3', factor: 32, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8192 },
      };
    default: {
      const never: never = preset;
      throw new Error(`presetConfig: unknown preset ${JSON.stringify(never)} (known: ${[...TINY_PRESETS, ...KQUANT_PRESETS, ...BENCH_PRESETS].join(', ')})`);
    }
  }
}

/** config.json as transformers writes it for this model family. */
export function hfConfigJson(c: LlamaConfig): Record<string, unknown> {
  const architectures = { llama: 'LlamaForCausalLM', mistral: 'MistralForCausalLM', qwen2: 'Qwen2ForCausalLM' }[c.model_type];
  if (!architectures) throw new Error(`hfConfigJson: model_type ${c.model_type} has no HF architecture here`);
  const out: Record<string, unknown> = {
    architectures: [architectures],
    model_type: c.model_type,
    vocab_size: c.vocab_size,
    hidden_size: c.hidden_size,
    intermediate_size: c.intermediate_size,
    num_hidden_layers: c.num_hidden_layers,
    num_attention_heads: c.num_attention_heads,
    num_key_value_heads: c.num_key_value_heads,
    hidden_act: c.hidden_act,
    max_position_embeddings: c.max_position_embeddings,
    rms_norm_eps: c.rms_norm_eps,
    rope_theta: c.rope_theta,
    rope_scaling: c.rope_scaling ?? null,
    tie_word_embeddings: c.tie_word_embeddings,
    bos_token_id: c.bos_token_id ?? null,
    eos_token_id: c.eos_token_id ?? null,
    torch_dtype: 'float32',
    transformers_version: '4.46.0',
    use_cache: true,
  };
  if (c.head_dim !== undefined) out.head_dim = c.head_dim;
  if (c.model_type === 'qwen2') out.use_sliding_window = false;
  else out.attention_bias = c.attention_bias;
  return out;
}

/** The tiny tokenizer's GGUF vocabulary, padded with unused tokens up to `vocabSize`. */
export function ggufVocabFor(vocabSize: number): GgufTokenizerSpec {
  const spec = tinyTokenizer().spec;
  const n = spec.tokens.length;
  if (vocabSize < n) throw new Error(`ggufVocabFor: vocab_size ${vocabSize} is smaller than the tiny tokenizer (${n} tokens)`);
  if (vocabSize === n) return spec;
  const tokens = spec.tokens.slice();
  const tokenTypes = spec.tokenTypes.slice();
  for (let i = n; i < vocabSize; i++) {
    tokens.push(`[PAD${i}]`); // convert_hf_to_gguf.py get_vocab_base: ids absent from the vocab
    tokenTypes.push(5); // TokenType.UNUSED
  }
  return { ...spec, tokens, tokenTypes };
}

function asHfTensor(t: RandomTensor): HfTensor {
  return { name: t.name, dtype: 'f32', shape: t.shape, data: new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength) };
}

function* hfTensors(config: LlamaConfig, seed: number): Generator<HfTensor> {
  for (const t of randomLlamaTensors(config, seed)) yield asHfTensor(t);
}

function writeHfFolder(dir: string, config: LlamaConfig, seed: number): void {
  mkdirSync(dir, { recursive: true });
  const json = (o: unknown): string => `${JSON.stringify(o, null, 2)}\n`;
  writeFileSync(join(dir, 'config.json'), json(hfConfigJson(config)));
  // Whole arrays: the safetensors writer takes all tensors at once (540 MB for smollm2-135m in f32).
  const tensors = Array.from(hfTensors(config, seed), (t) => ({ name: t.name, dtype: 'F32' as const, shape: t.shape, data: t.data }));
  writeSafetensors(join(dir, 'model.safetensors'), tensors, { format: 'pt' });
  const tok = tinyTokenizer();
  writeFileSync(join(dir, 'tokenizer.json'), json(tok.json));
  writeFileSync(join(dir, 'tokenizer_config.json'), json({
    ...tinyTokenizerConfig(),
    tokenizer_class: 'PreTrainedTokenizerFast',
    add_bos_token: true,
    model_max_length: config.max_position_embeddings,
  }));
  writeFileSync(join(dir, 'generation_config.json'), json({
    bos_token_id: config.bos_token_id ?? null,
    eos_token_id: config.eos_token_id ?? null,
    do_sample: false,
    transformers_version: '4.46.0',
  }));
}

/** Writes the preset's checkpoint under `dir`: `dir/hf/` (HF folder) and `dir/model-<type>.gguf`.
 *  Tensors are generated one at a time for GGUF output (memory bounded by the largest tensor). */
export function writeTestCheckpoint(dir: string, preset: PresetName, opts: WriteTestCheckpointOptions = {}): TestCheckpoint {
  const seed = opts.seed ?? 1;
  const formats = opts.formats ?? ['hf', 'gguf-f32'];
  const config = presetConfig(preset);
  mkdirSync(dir, { recursive: true });
  const out: TestCheckpoint = { config, gguf: {} };
  for (const f of formats) {
    if (f === 'hf') {
      out.hfDir = join(dir, 'hf');
      writeHfFolder(out.hfDir, config, seed);
      continue;
    }
    if ((KQUANT_FORMATS as readonly string[]).includes(f)) continue; // after the f32 GGUF they start from
    const outType = f.slice('gguf-'.length) as GgufOutType;
    const outFile = join(dir, `model-${outType}.gguf`);
    convertHfToGguf({ config, tensors: hfTensors(config, seed), tokenizer: ggufVocabFor(config.vocab_size), outFile, outType, name: preset });
    out.gguf[outType] = outFile;
  }
  for (const f of formats.filter((x) => (KQUANT_FORMATS as readonly string[]).includes(x))) {
    const recipe = f.slice('gguf-'.length) as QuantRecipe;
    let f32 = out.gguf.f32;
    if (!f32) {
      f32 = join(dir, 'model-f32.gguf');
      convertHfToGguf({ config, tensors: hfTensors(config, seed), tokenizer: ggufVocabFor(config.vocab_size), outFile: f32, outType: 'f32', name: preset });
      out.gguf.f32 = f32;
    }
    const outFile = join(dir, `model-${recipe}.gguf`);
    quantizeGguf(f32, outFile, recipe);
    out.gguf[recipe] = outFile;
  }
  return out;
}

/** A random-weight GGUF of any Llama config (e.g. a small draft model of a preset's vocabulary), with
 *  the preset tokenizer GGUFs get for that vocabulary size. */
export function writeRandomGguf(file: string, config: LlamaConfig, outType: GgufOutType, seed = 1, name = 'random'): string {
  convertHfToGguf({ config, tensors: hfTensors(config, seed), tokenizer: ggufVocabFor(config.vocab_size), outFile: file, outType, name });
  return file;
}
