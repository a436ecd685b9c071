// Hugging Face config.json → LlamaConfig. config.json is hostile input like the weights: every field
// the model sizes memory from is checked to be a positive integer within a sane bound, so a config
// asking for 1e12 layers or -1 heads fails here with the field's name instead of deep inside a loader.
// Defaults follow transformers' LlamaConfig / MistralConfig / Qwen2Config.

import { FormatError, showValue } from './errors.js';
import { isJsonObject } from './json-strict.js';
import type { LlamaConfig, RopeScaling } from '../models/config.js';

const ARCHITECTURES: Record<string, string> = {
  LlamaForCausalLM: 'llama',
  MistralForCausalLM: 'mistral',
  Qwen2ForCausalLM: 'qwen2',
};
const MODEL_TYPES = new Set(['llama', 'mistral', 'qwen2']);
const HIDDEN_ACTS = new Set(['silu', 'gelu_pytorch_tanh', 'gelu']);
const SUPPORTED_ROPE = "'default', 'llama3', 'linear'";

// Upper bounds well above any released model, low enough that sizes derived from them stay far from
// 2^53 and allocation failures are reported as config errors.
const LIMITS = {
  vocab_size: 1 << 22,
  hidden_size: 1 << 16,
  intermediate_size: 1 << 20,
  num_hidden_layers: 1024,
  num_attention_heads: 1024,
  num_key_value_heads: 1024,
  head_dim: 1024,
  max_position_embeddings: 1 << 24,
  sliding_window: 1 << 24,
} as const;

type IntField = keyof typeof LIMITS;

/** Validates a parsed config.json and returns the normalised LlamaConfig. `source` names the file in errors. */
export function llamaConfigFromHf(raw: unknown, source: string): LlamaConfig {
  if (!isJsonObject(raw)) throw new FormatError(source, 'config.json must be a JSON object');
  const fail = (msg: string): never => { throw new FormatError(source, msg); };

  const modelType = resolveModelType(raw, fail);
  if (raw.quantization_config !== undefined && raw.quantization_config !== null) {
    fail('quantization_config: quantised Hugging Face checkpoints (GPTQ/AWQ/bitsandbytes…) are not supported; use the f32/f16/bf16 weights or a GGUF file');
  }
  if (raw.mlp_bias === true) fail('mlp_bias: true is not supported (Llama-family MLPs without biases only)');
  if (modelType === 'qwen2' && raw.use_sliding_window === true) {
    fail('use_sliding_window: true is not supported (Tessera runs full attention)');
  }

  const int = (field: IntField): number => {
    const v = raw[field];
    if (v === undefined || v === null) fail(`${field} is missing (a positive integer is required)`);
    return checkInt(field, v, fail);
  };
  const hidden = int('hidden_size');
  const heads = int('num_attention_heads');
  const kvHeads = raw.num_key_value_heads === undefined || raw.num_key_value_heads === null ? heads : checkInt('num_key_value_heads', raw.num_key_value_heads, fail);
  if (heads % kvHeads !== 0) fail(`num_attention_heads ${heads} is not a multiple of num_key_value_heads ${kvHeads}`);

  let headDim: number | undefined;
  if (raw.head_dim !== undefined && raw.head_dim !== null) {
    headDim = checkInt('head_dim', raw.head_dim, fail);
  } else if (hidden % heads !== 0) {
    fail(`hidden_size ${hidden} is not divisible by num_attention_heads ${heads} (and no head_dim is given)`);
  }
  const d = headDim ?? hidden / heads;
  if (d % 2 !== 0) fail(`head dimension ${d} must be even for rotary embeddings`);

  const rope = ropeParameters(raw, fail);
  const cfg: LlamaConfig = {
    model_type: modelType,
    vocab_size: int('vocab_size'),
    hidden_size: hidden,
    intermediate_size: int('intermediate_size'),
    num_hidden_layers: int('num_hidden_layers'),
    num_attention_heads: heads,
    num_key_value_heads: kvHeads,
    rms_norm_eps: positiveFloat('rms_norm_eps', raw.rms_norm_eps, 1e-6, fail),
    rope_theta: positiveFloat('rope_theta', rope.theta, 10000, fail),
    rope_scaling: ropeScaling(rope.scaling, fail),
    max_position_embeddings: int('max_position_embeddings'),
    tie_word_embeddings: bool('tie_word_embeddings', raw.tie_word_embeddings, false, fail),
    // Qwen2 always has q/k/v biases (Qwen2Config has no attention_bias field).
    attention_bias: bool('attention_bias', raw.attention_bias, modelType === 'qwen2', fail),
    hidden_act: hiddenAct(raw.hidden_act, fail),
    bos_token_id: tokenId('bos_token_id', raw.bos_token_id, fail),
    eos_token_id: eosTokenId(raw.eos_token_id, fail),
    rope_style: 'neox',
  };
  if (headDim !== undefined) cfg.head_dim = headDim;
  // Mistral v0.1 attends to the last 4096 tokens only (later Mistral configs set null)
  if (modelType === 'mistral' && raw.sliding_window !== undefined && raw.sliding_window !== null) {
    cfg.sliding_window = checkInt('sliding_window', raw.sliding_window, fail);
  }
  for (const f of ['bos_token_id', 'eos_token_id'] as const) if (cfg[f] === undefined) delete cfg[f];
  return cfg;
}

function resolveModelType(raw: Record<string, unknown>, fail: (m: string) => never): string {
  const mt = raw.model_type;
  if (mt !== undefined) {
    if (typeof mt !== 'string' || !MODEL_TYPES.has(mt)) {
      fail(`model_type ${showValue(mt)} is not supported (supported: ${[...MODEL_TYPES].join(', ')})`);
    }
    return mt as string;
  }
  const archs = raw.architectures;
  if (archs === undefined) fail('neither model_type nor architectures is given; cannot tell the model family');
  if (!Array.isArray(archs) || archs.length === 0 || !archs.every((a) => typeof a === 'string')) {
    fail('architectures must be a non-empty array of strings');
  }
  for (const a of archs as string[]) if (Object.hasOwn(ARCHITECTURES, a)) return ARCHITECTURES[a]!;
  return fail(`architectures ${showValue(archs)} not supported (supported: ${Object.keys(ARCHITECTURES).join(', ')})`);
}


function checkInt(field: IntField, v: unknown, fail: (m: string) => never): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) fail(`${field} = ${showValue(v)} must be a positive integer`);
  const max = LIMITS[field];
  if ((v as number) > max) fail(`${field} = ${v} is larger than the supported maximum ${max}`);
  return v as number;
}

function positiveFloat(field: string, v: unknown, dflt: number, fail: (m: string) => never): number {
  if (v === undefined || v === null) return dflt;
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) fail(`${field} = ${showValue(v)} must be a positive finite number`);
  return v as number;
}

function bool(field: string, v: unknown, dflt: boolean, fail: (m: string) => never): boolean {
  if (v === undefined || v === null) return dflt;
  if (typeof v !== 'boolean') fail(`${field} = ${showValue(v)} must be true or false`);
  return v as boolean;
}

function hiddenAct(v: unknown, fail: (m: string) => never): LlamaConfig['hidden_act'] {
  if (v === undefined || v === null) return 'silu';
  if (typeof v !== 'string' || !HIDDEN_ACTS.has(v)) fail(`hidden_act ${showValue(v)} is not supported (supported: ${[...HIDDEN_ACTS].join(', ')})`);
  return v as LlamaConfig['hidden_act'];
}

function isTokenId(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0 && v < LIMITS.vocab_size;
}

function tokenId(field: string, v: unknown, fail: (m: string) => never): number | null | undefined {
  if (v === undefined || v === null) return v;
  if (!isTokenId(v)) fail(`${field} = ${showValue(v)} must be a non-negative integer token id`);
  return v as number;
}

function eosTokenId(v: unknown, fail: (m: string) => never): number | number[] | null | undefined {
  if (Array.isArray(v)) {
    if (v.length > 1024 || !v.every(isTokenId)) fail(`eos_token_id ${showValue(v)} must be a token id or a list of at most 1024 token ids`);
    return [...v] as number[];
  }
  return tokenId('eos_token_id', v, fail);
}

/** rope_theta and rope_scaling, read from the top level or from transformers v5's rope_parameters. */
function ropeParameters(raw: Record<string, unknown>, fail: (m: string) => never): { theta: unknown; scaling: unknown } {
  const rp = raw.rope_parameters;
  if (rp === undefined || rp === null) return { theta: raw.rope_theta, scaling: raw.rope_scaling };
  if (!isJsonObject(rp)) fail('rope_parameters must be an object');
  const p = rp as Record<string, unknown>;
  const typed = p.rope_type !== undefined || p.type !== undefined;
  return { theta: p.rope_theta ?? raw.rope_theta, scaling: raw.rope_scaling ?? (typed ? p : null) };
}

function ropeScaling(v: unknown, fail: (m: string) => never): RopeScaling | null {
  if (v === undefined || v === null) return null;
  if (!isJsonObject(v)) fail(`rope_scaling must be an object or null, found ${showValue(v)}`);
  const s = v as Record<string, unknown>;
  const type = s.rope_type ?? s.type;
  if (type === 'default' || type === undefined) {
    if (type === undefined) fail(`rope_scaling has no rope_type (supported: ${SUPPORTED_ROPE})`);
    return null;
  }
  const num = (f: string): number => {
    const x = s[f];
    if (typeof x !== 'number' || !Number.isFinite(x) || x <= 0) fail(`rope_scaling.${f} = ${showValue(x)} must be a positive finite number`);
    return x as number;
  };
  if (type === 'linear') return { rope_type: 'linear', factor: num('factor') };
  if (type === 'llama3') {
    const low = num('low_freq_factor');
    const high = num('high_freq_factor');
    if (high <= low) fail(`rope_scaling.high_freq_factor ${high} must be greater than low_freq_factor ${low}`);
    const orig = s.original_max_position_embeddings;
    if (typeof orig !== 'number' || !Number.isInteger(orig) || orig <= 0 || orig > LIMITS.max_position_embeddings) {
      fail(`rope_scaling.original_max_position_embeddings = ${showValue(orig)} must be a positive integer`);
    }
    return { rope_type: 'llama3', factor: num('factor'), low_freq_factor: low, high_freq_factor: high, original_max_position_embeddings: orig as number };
  }
  return fail(`rope_scaling type ${showValue(type)} is not supported (supported: ${SUPPORTED_ROPE})`);
}
