// config.json → LlamaConfig: published configs of Qwen2.5-0.5B-Instruct, Llama-3.2-1B and SmolLM2-135M
// (copied from their Hugging Face repositories) map field by field; defaults follow transformers; and a
// table of hostile values is refused with a message naming the field.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FormatError } from '../../src/formats/errors.js';
import { llamaConfigFromHf } from '../../src/formats/hf-folder.js';

const QWEN25_05B = {
  architectures: ['Qwen2ForCausalLM'], attention_dropout: 0.0, bos_token_id: 151643, eos_token_id: 151645,
  hidden_act: 'silu', hidden_size: 896, initializer_range: 0.02, intermediate_size: 4864,
  max_position_embeddings: 32768, max_window_layers: 21, model_type: 'qwen2', num_attention_heads: 14,
  num_hidden_layers: 24, num_key_value_heads: 2, rms_norm_eps: 1e-6, rope_theta: 1000000.0,
  sliding_window: 32768, tie_word_embeddings: true, torch_dtype: 'bfloat16', transformers_version: '4.43.1',
  use_cache: true, use_sliding_window: false, vocab_size: 151936,
};

const LLAMA32_1B = {
  architectures: ['LlamaForCausalLM'], attention_bias: false, attention_dropout: 0.0, bos_token_id: 128000,
  eos_token_id: 128001, head_dim: 64, hidden_act: 'silu', hidden_size: 2048, initializer_range: 0.02,
  intermediate_size: 8192, max_position_embeddings: 131072, mlp_bias: false, model_type: 'llama',
  num_attention_heads: 32, num_hidden_layers: 16, num_key_value_heads: 8, pretraining_tp: 1, rms_norm_eps: 1e-5,
  rope_scaling: { factor: 32.0, high_freq_factor: 4.0, low_freq_factor: 1.0, original_max_position_embeddings: 8192, rope_type: 'llama3' },
  rope_theta: 500000.0, tie_word_embeddings: true, torch_dtype: 'bfloat16', transformers_version: '4.45.0.dev0',
  use_cache: true, vocab_size: 128256,
};

const SMOLLM2_135M = {
  architectures: ['LlamaForCausalLM'], attention_bias: false, attention_dropout: 0.0, bos_token_id: 0, eos_token_id: 0,
  hidden_act: 'silu', hidden_size: 576, initializer_range: 0.041666666666666664, intermediate_size: 1536,
  is_llama_config: true, max_position_embeddings: 8192, model_type: 'llama', num_attention_heads: 9,
  num_hidden_layers: 30, num_key_value_heads: 3, pretraining_tp: 1, rms_norm_eps: 1e-5, rope_interleaved: false,
  rope_scaling: null, rope_theta: 100000, tie_word_embeddings: true, torch_dtype: 'bfloat16',
  transformers_version: '4.42.3', use_cache: true, vocab_size: 49152,
};

test('Qwen2.5-0.5B-Instruct: biases on by default, tied embeddings as stated', () => {
  assert.deepEqual(llamaConfigFromHf(QWEN25_05B, 'config.json'), {
    model_type: 'qwen2', vocab_size: 151936, hidden_size: 896, intermediate_size: 4864, num_hidden_layers: 24,
    num_attention_heads: 14, num_key_value_heads: 2, rms_norm_eps: 1e-6, rope_theta: 1000000, rope_scaling: null,
    max_position_embeddings: 32768, tie_word_embeddings: true, attention_bias: true, hidden_act: 'silu',
    bos_token_id: 151643, eos_token_id: 151645, rope_style: 'neox',
  });
});

test('Llama-3.2-1B: llama3 rope scaling, explicit head_dim, GQA', () => {
  assert.deepEqual(llamaConfigFromHf(LLAMA32_1B, 'config.json'), {
    model_type: 'llama', vocab_size: 128256, hidden_size: 2048, intermediate_size: 8192, num_hidden_layers: 16,
    num_attention_heads: 32, num_key_value_heads: 8, head_dim: 64, rms_norm_eps: 1e-5, rope_theta: 500000,
    rope_scaling: { rope_type: 'llama3', factor: 32, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8192 },
    max_position_embeddings: 131072, tie_word_embeddings: true, attention_bias: false, hidden_act: 'silu',
    bos_token_id: 128000, eos_token_id: 128001, rope_style: 'neox',
  });
});

test('SmolLM2-135M: llama with 9 heads / 3 KV heads, head dim 64 derived', () => {
  const c = llamaConfigFromHf(SMOLLM2_135M, 'config.json');
  assert.equal(c.model_type, 'llama');
  assert.equal(c.head_dim, undefined);
  assert.equal(c.hidden_size / c.num_attention_heads, 64);
  assert.equal(c.num_key_value_heads, 3);
  assert.equal(c.rope_theta, 100000);
  assert.equal(c.bos_token_id, 0);
});

const MINIMAL = { vocab_size: 100, hidden_size: 64, intermediate_size: 128, num_hidden_layers: 2, num_attention_heads: 4, max_position_embeddings: 256 };

test('defaults follow transformers', () => {
  const llama = llamaConfigFromHf({ ...MINIMAL, model_type: 'llama' }, 'c');
  assert.deepEqual(llama, {
    ...MINIMAL, model_type: 'llama', num_key_value_heads: 4, rms_norm_eps: 1e-6, rope_theta: 10000, rope_scaling: null,
    tie_word_embeddings: false, attention_bias: false, hidden_act: 'silu', rope_style: 'neox',
  });
  assert.equal(llamaConfigFromHf({ ...MINIMAL, model_type: 'mistral' }, 'c').attention_bias, false);
  assert.equal(llamaConfigFromHf({ ...MINIMAL, architectures: ['Qwen2ForCausalLM'] }, 'c').attention_bias, true);
  assert.equal(llamaConfigFromHf({ ...MINIMAL, architectures: ['MistralForCausalLM'] }, 'c').model_type, 'mistral');
  assert.equal(llamaConfigFromHf({ ...MINIMAL, model_type: 'mistral', sliding_window: 4096 }, 'c').sliding_window, 4096);
  assert.equal(llamaConfigFromHf({ ...MINIMAL, model_type: 'mistral', sliding_window: null }, 'c').sliding_window, undefined);
  assert.throws(() => llamaConfigFromHf({ ...MINIMAL, model_type: 'mistral', sliding_window: -1 }, 'c'), /sliding_window = -1 must be a positive integer/);
  assert.equal(llamaConfigFromHf({ ...MINIMAL, model_type: 'qwen2', attention_bias: false }, 'c').attention_bias, false);
  assert.equal(llamaConfigFromHf({ ...MINIMAL, model_type: 'llama', rope_scaling: { rope_type: 'default' } }, 'c').rope_scaling, null);
  assert.deepEqual(llamaConfigFromHf({ ...MINIMAL, model_type: 'llama', rope_scaling: { type: 'linear', factor: 2 } }, 'c').rope_scaling, { rope_type: 'linear', factor: 2 });
  assert.deepEqual(llamaConfigFromHf({ ...MINIMAL, model_type: 'llama', eos_token_id: [1, 2] }, 'c').eos_token_id, [1, 2]);
  // transformers v5 moves rope_theta and the scaling into rope_parameters.
  const v5 = llamaConfigFromHf({ ...MINIMAL, model_type: 'llama', rope_parameters: { rope_type: 'linear', factor: 4, rope_theta: 5e5 } }, 'c');
  assert.equal(v5.rope_theta, 5e5);
  assert.deepEqual(v5.rope_scaling, { rope_type: 'linear', factor: 4 });
  assert.equal(llamaConfigFromHf({ ...MINIMAL, model_type: 'llama', rope_parameters: { rope_type: 'default', rope_theta: 7 } }, 'c').rope_scaling, null);
});

const L = { ...MINIMAL, model_type: 'llama' };
const L3 = { rope_type: 'llama3', factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8192 };
const rows: [string, unknown, RegExp][] = [
  ['not an object', [1, 2], /config\.json must be a JSON object/],
  ['unsupported model_type', { ...L, model_type: 'gpt2' }, /model_type "gpt2" is not supported \(supported: llama, mistral, qwen2\)/],
  ['model_type not a string', { ...L, model_type: 7 }, /model_type 7 is not supported/],
  ['unsupported architecture', { ...MINIMAL, architectures: ['GPT2LMHeadModel'] }, /architectures \["GPT2LMHeadModel"\] not supported \(supported: LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM\)/],
  ['architectures not an array', { ...MINIMAL, architectures: 'LlamaForCausalLM' }, /architectures must be a non-empty array of strings/],
  ['no family at all', MINIMAL, /neither model_type nor architectures/],
  ['missing hidden_size', { ...L, hidden_size: undefined }, /hidden_size is missing/],
  ['null vocab_size', { ...L, vocab_size: null }, /vocab_size is missing/],
  ['negative heads', { ...L, num_attention_heads: -4 }, /num_attention_heads = -4 must be a positive integer/],
  ['zero layers', { ...L, num_hidden_layers: 0 }, /num_hidden_layers = 0 must be a positive integer/],
  ['1e12 layers', { ...L, num_hidden_layers: 1e12 }, /num_hidden_layers = 1000000000000 is larger than the supported maximum 1024/],
  ['huge vocab', { ...L, vocab_size: 2 ** 40 }, /vocab_size = 1099511627776 is larger than the supported maximum/],
  ['fractional intermediate_size', { ...L, intermediate_size: 10.5 }, /intermediate_size = 10.5 must be a positive integer/],
  ['string vocab_size', { ...L, vocab_size: '32000' }, /vocab_size = "32000" must be a positive integer/],
  ['Infinity-like max_position_embeddings', { ...L, max_position_embeddings: 1e400 }, /max_position_embeddings = Infinity must be a positive integer/],
  ['heads do not divide hidden', { ...L, hidden_size: 100, num_attention_heads: 3 }, /hidden_size 100 is not divisible by num_attention_heads 3/],
  ['heads not a multiple of kv heads', { ...L, num_attention_heads: 8, num_key_value_heads: 3 }, /num_attention_heads 8 is not a multiple of num_key_value_heads 3/],
  ['negative kv heads', { ...L, num_key_value_heads: -1 }, /num_key_value_heads = -1 must be a positive integer/],
  ['odd head dim', { ...L, hidden_size: 60, num_attention_heads: 4 }, /head dimension 15 must be even/],
  ['head_dim 0', { ...L, head_dim: 0 }, /head_dim = 0 must be a positive integer/],
  ['negative rms_norm_eps', { ...L, rms_norm_eps: -1e-5 }, /rms_norm_eps = -0.00001 must be a positive finite number/],
  ['string rope_theta', { ...L, rope_theta: '10000' }, /rope_theta = "10000" must be a positive finite number/],
  ['zero rope_theta', { ...L, rope_theta: 0 }, /rope_theta = 0 must be a positive finite number/],
  ['non-boolean tie_word_embeddings', { ...L, tie_word_embeddings: 'yes' }, /tie_word_embeddings = "yes" must be true or false/],
  ['non-boolean attention_bias', { ...L, attention_bias: 1 }, /attention_bias = 1 must be true or false/],
  ['unsupported hidden_act', { ...L, hidden_act: 'relu' }, /hidden_act "relu" is not supported \(supported: silu, gelu_pytorch_tanh, gelu\)/],
  ['yarn rope scaling', { ...L, rope_scaling: { type: 'yarn', factor: 4 } }, /rope_scaling type "yarn" is not supported \(supported: 'default', 'llama3', 'linear'\)/],
  ['dynamic rope scaling', { ...L, rope_scaling: { rope_type: 'dynamic', factor: 2 } }, /rope_scaling type "dynamic" is not supported/],
  ['rope scaling without a type', { ...L, rope_scaling: { factor: 2 } }, /rope_scaling has no rope_type/],
  ['rope_scaling not an object', { ...L, rope_scaling: 5 }, /rope_scaling must be an object or null/],
  ['llama3 without factor', { ...L, rope_scaling: { ...L3, factor: undefined } }, /rope_scaling\.factor = undefined must be a positive finite number/],
  ['llama3 high ≤ low', { ...L, rope_scaling: { ...L3, high_freq_factor: 1 } }, /high_freq_factor 1 must be greater than low_freq_factor 1/],
  ['llama3 bad original context', { ...L, rope_scaling: { ...L3, original_max_position_embeddings: -8192 } }, /original_max_position_embeddings = -8192 must be a positive integer/],
  ['linear with negative factor', { ...L, rope_scaling: { type: 'linear', factor: -2 } }, /rope_scaling\.factor = -2 must be a positive finite number/],
  ['quantised checkpoint', { ...L, quantization_config: { quant_method: 'gptq' } }, /quantization_config: quantised Hugging Face checkpoints/],
  ['qwen2 sliding window', { ...L, model_type: 'qwen2', use_sliding_window: true }, /use_sliding_window: true is not supported/],
  ['mlp biases', { ...L, mlp_bias: true }, /mlp_bias: true is not supported/],
  ['negative eos id', { ...L, eos_token_id: -1 }, /eos_token_id = -1 must be a non-negative integer token id/],
  ['eos list with a string', { ...L, eos_token_id: [1, '2'] }, /eos_token_id \[1,"2"\] must be a token id or a list/],
  ['fractional bos id', { ...L, bos_token_id: 1.5 }, /bos_token_id = 1.5 must be a non-negative integer token id/],
];

for (const [what, raw, re] of rows) {
  test(`config rejects: ${what}`, () => {
    assert.throws(() => llamaConfigFromHf(raw, '/m/config.json'), (e: unknown) => {
      assert.ok(e instanceof FormatError, `expected FormatError, got ${String(e)}`);
      assert.ok(e.message.startsWith('/m/config.json: '), e.message);
      assert.match(e.message, re);
      return true;
    });
  });
}
