// HF → GGUF conversion and GGUF → LlamaConfig translation: name mapping, metadata round trips
// (Llama-3 rope scaling via rope_freqs.weight, linear scaling, Qwen2 biases), the Q/K row permutation
// checked numerically against RoPE itself, the quantisers against hand-computed blocks.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { LlamaConfig } from '../../src/models/config.js';
import { FormatError } from '../../src/formats/errors.js';
import { openGguf, type GgufFile } from '../../src/formats/gguf.js';
import { writeGguf } from '../../src/formats/gguf-writer.js';
import { ggufRopeFreqFactors, ggufTensorName, hfTensorName, llamaConfigFromGguf } from '../../src/formats/gguf-llama.js';
import { convertHfToGguf, llama3RopeFreqFactors, type GgufOutType, type GgufTokenizerSpec, type HfTensor } from '../../src/formats/hf-to-gguf.js';
import { dequantizeQ4_0, dequantizeQ8_0, quantizeToQ4_0, quantizeToQ8_0, toFloat32 } from '../../src/formats/gguf-quantize.js';
import { f16ToF32, f32ToF16 } from '../../src/kernels/reference.js';
import { tempDir } from './gguf-bytes.js';
import { uniform01 } from '../../src/data/rng.js';

const rng = uniform01;

/** Random HF tensors for a config, values in (−1, 1), stored as f32 or bf16 (truncated f32). */
function hfTensors(c: LlamaConfig, seed: number, dtype: 'f32' | 'bf16' = 'f32'): HfTensor[] {
  const r = rng(seed);
  const D = c.head_dim ?? c.hidden_size / c.num_attention_heads;
  const q = c.num_attention_heads * D;
  const kv = c.num_key_value_heads * D;
  const E = c.hidden_size;
  const F = c.intermediate_size;
  const shapes: [string, number[]][] = [['model.embed_tokens.weight', [c.vocab_size, E]], ['model.norm.weight', [E]]];
  if (!c.tie_word_embeddings) shapes.push(['lm_head.weight', [c.vocab_size, E]]);
  for (let l = 0; l < c.num_hidden_layers; l++) {
    const p = `model.layers.${l}.`;
    shapes.push(
      [`${p}input_layernorm.weight`, [E]], [`${p}self_attn.q_proj.weight`, [q, E]], [`${p}self_attn.k_proj.weight`, [kv, E]],
      [`${p}self_attn.v_proj.weight`, [kv, E]], [`${p}self_attn.o_proj.weight`, [E, q]], [`${p}post_attention_layernorm.weight`, [E]],
      [`${p}mlp.gate_proj.weight`, [F, E]], [`${p}mlp.up_proj.weight`, [F, E]], [`${p}mlp.down_proj.weight`, [E, F]],
    );
    if (c.attention_bias) shapes.push([`${p}self_attn.q_proj.bias`, [q]], [`${p}self_attn.k_proj.bias`, [kv]], [`${p}self_attn.v_proj.bias`, [kv]]);
  }
  return shapes.map(([name, shape]) => {
    const n = shape.reduce((a, b) => a * b, 1);
    const f = new Float32Array(n).map(() => r() * 2 - 1);
    if (dtype === 'f32') return { name, dtype, shape, data: new Uint8Array(f.buffer) };
    const u32 = new Uint32Array(f.buffer);
    const b = new Uint16Array(n).map((_, i) => u32[i]! >>> 16);
    return { name, dtype, shape, data: new Uint8Array(b.buffer) };
  });
}

function tokenizer(n: number, model: 'gpt2' | 'llama'): GgufTokenizerSpec {
  const tokens = Array.from({ length: n }, (_, i) => (i === 0 ? '<unk>' : i === 1 ? '<s>' : i === 2 ? '</s>' : `t${i}`));
  const types = tokens.map((_, i) => (i < 3 ? 3 : 1));
  return model === 'gpt2'
    ? { model, pre: 'llama-bpe', tokens, tokenTypes: types, merges: ['t 3', 't3 4'], bosId: 1, eosId: 2, addBos: true, chatTemplate: '{{ messages }}' }
    : { model, tokens, tokenTypes: types, scores: tokens.map((_, i) => -i / 2), bosId: 1, eosId: 2, addBos: true };
}

function convert(c: LlamaConfig, outType: GgufOutType, name: string, dtype: 'f32' | 'bf16' = 'f32', model: 'gpt2' | 'llama' = 'gpt2'): { path: string; src: HfTensor[] } {
  const src = hfTensors(c, 7, dtype);
  const path = join(tempDir(), name);
  convertHfToGguf({ config: c, tensors: src, tokenizer: tokenizer(c.vocab_size, model), outFile: path, outType });
  return { path, src };
}

function readF32(f: GgufFile, name: string): Float32Array {
  const e = f.tensors.get(name)!;
  const b = new Uint8Array(e.byteLength);
  f.read(e, b);
  if (e.dtype === 'q8_0') return dequantizeQ8_0(b);
  if (e.dtype === 'q4_0') return dequantizeQ4_0(b);
  return toFloat32(e.dtype as 'f32' | 'f16' | 'bf16', b);
}

const LLAMA3: LlamaConfig = {
  model_type: 'llama', vocab_size: 40, hidden_size: 64, intermediate_size: 96, num_hidden_layers: 2,
  num_attention_heads: 4, num_key_value_heads: 2, rms_norm_eps: 1e-5, rope_theta: 500000,
  rope_scaling: { rope_type: 'llama3', factor: 32, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8192 },
  max_position_embeddings: 131072, tie_word_embeddings: true, attention_bias: false, hidden_act: 'silu',
  bos_token_id: 1, eos_token_id: 2,
};

// ---------------------------------------------------------------------------------------------

test('tensor names map both ways', () => {
  const pairs: [string, string][] = [
    ['model.embed_tokens.weight', 'token_embd.weight'], ['model.norm.weight', 'output_norm.weight'], ['lm_head.weight', 'output.weight'],
    ['model.layers.0.input_layernorm.weight', 'blk.0.attn_norm.weight'],
    ['model.layers.12.self_attn.q_proj.weight', 'blk.12.attn_q.weight'], ['model.layers.12.self_attn.q_proj.bias', 'blk.12.attn_q.bias'],
    ['model.layers.3.self_attn.k_proj.bias', 'blk.3.attn_k.bias'], ['model.layers.3.self_attn.v_proj.weight', 'blk.3.attn_v.weight'],
    ['model.layers.3.self_attn.o_proj.weight', 'blk.3.attn_output.weight'], ['model.layers.7.post_attention_layernorm.weight', 'blk.7.ffn_norm.weight'],
    ['model.layers.7.mlp.gate_proj.weight', 'blk.7.ffn_gate.weight'], ['model.layers.7.mlp.up_proj.weight', 'blk.7.ffn_up.weight'],
    ['model.layers.7.mlp.down_proj.weight', 'blk.7.ffn_down.weight'],
  ];
  for (const [hf, g] of pairs) {
    assert.equal(ggufTensorName(hf), g);
    assert.equal(hfTensorName(g), hf);
  }
  for (const bad of ['model.layers.01.mlp.up_proj.weight', 'model.layers.x.mlp.up_proj.weight', 'model.layers.0.mlp.fc1.weight', 'embed']) {
    assert.throws(() => ggufTensorName(bad), FormatError, bad);
  }
  assert.throws(() => hfTensorName('rope_freqs.weight'), FormatError);
  assert.throws(() => hfTensorName('blk.0.attn_qkv.weight'), FormatError);
});

test('Llama-3 config with rope scaling: convert → read → llamaConfigFromGguf', () => {
  const { path, src } = convert(LLAMA3, 'f32', 'llama3.gguf');
  const f = openGguf(path);
  try {
    const got = llamaConfigFromGguf(f);
    assert.deepEqual(got, {
      ...LLAMA3, rope_scaling: null, rms_norm_eps: Math.fround(1e-5), rope_style: 'normal',
    });
    // the keys and types llama.cpp checks
    const types: [string, string, unknown][] = [
      ['general.architecture', 'string', 'llama'], ['llama.context_length', 'u32', 131072], ['llama.embedding_length', 'u32', 64],
      ['llama.block_count', 'u32', 2], ['llama.feed_forward_length', 'u32', 96], ['llama.attention.head_count', 'u32', 4],
      ['llama.attention.head_count_kv', 'u32', 2], ['llama.rope.freq_base', 'f32', 500000], ['llama.rope.dimension_count', 'u32', 16],
      ['llama.attention.layer_norm_rms_epsilon', 'f32', Math.fround(1e-5)], ['general.file_type', 'u32', 0], ['llama.vocab_size', 'u32', 40],
      ['general.quantization_version', 'u32', 2], ['tokenizer.ggml.model', 'string', 'gpt2'], ['tokenizer.ggml.pre', 'string', 'llama-bpe'],
      ['tokenizer.ggml.bos_token_id', 'u32', 1], ['tokenizer.ggml.eos_token_id', 'u32', 2], ['tokenizer.ggml.add_bos_token', 'bool', true],
      ['tokenizer.chat_template', 'string', '{{ messages }}'],
    ];
    for (const [k, t, v] of types) {
      assert.equal(f.metadataTypes.get(k), t, k);
      assert.deepEqual(f.metadata.get(k), v, k);
    }
    assert.equal(f.metadataTypes.get('tokenizer.ggml.tokens'), 'string[]');
    assert.equal(f.metadataTypes.get('tokenizer.ggml.token_type'), 'i32[]');
    assert.equal(f.metadataTypes.get('tokenizer.ggml.merges'), 'string[]');
    assert.equal(f.metadata.has('llama.rope.scaling.type'), false);

    // every HF tensor is present under its GGUF name; tied: no output.weight
    const names = new Set([...f.tensors.keys()].filter((n) => n !== 'rope_freqs.weight').map((n) => hfTensorName(n)));
    assert.deepEqual(names, new Set(src.map((t) => t.name)));
    assert.equal(f.tensors.has('output.weight'), false);
    assert.deepEqual(f.tensors.get('token_embd.weight')!.ne, [64, 40]);

    // rope_freqs.weight = HF's llama3 scaling (transformers _compute_llama3_parameters, in f64)
    const factors = ggufRopeFreqFactors(f)!;
    assert.deepEqual(factors, llama3RopeFreqFactors(LLAMA3));
    const D = 16;
    const rs = LLAMA3.rope_scaling!;
    const lowW = 8192 / rs.low_freq_factor!;
    const highW = 8192 / rs.high_freq_factor!;
    let smoothSeen = 0;
    for (let i = 0; i < D / 2; i++) {
      const inv = 1 / 500000 ** ((2 * i) / D);
      const wl = (2 * Math.PI) / inv;
      let scaled = wl > lowW ? inv / rs.factor : inv;
      if (wl >= highW && wl <= lowW) {
        const s = (8192 / wl - rs.low_freq_factor!) / (rs.high_freq_factor! - rs.low_freq_factor!);
        scaled = (1 - s) * (inv / rs.factor) + s * inv;
        smoothSeen++;
      }
      const rel = Math.abs(inv / factors[i]! - scaled) / scaled;
      assert.ok(rel < 1e-5, `pair ${i}: ${inv / factors[i]!} vs ${scaled}`);
    }
    assert.ok(smoothSeen > 0 && factors[0] === 1 && factors[D / 2 - 1] === 32, 'all three regimes exercised');
  } finally {
    f.close();
  }
});

// ---- RoPE, in plain TypeScript: x (H·D) for one position -------------------------------------
function rope(x: Float32Array, heads: number, D: number, pos: number, invFreq: ArrayLike<number>, style: 'neox' | 'normal'): Float64Array {
  const y = Float64Array.from(x);
  for (let h = 0; h < heads; h++) {
    for (let i = 0; i < D / 2; i++) {
      const [a, b] = style === 'neox' ? [h * D + i, h * D + i + D / 2] : [h * D + 2 * i, h * D + 2 * i + 1];
      const t = pos * invFreq[i]!;
      const xa = x[a]!;
      const xb = x[b]!;
      y[a] = xa * Math.cos(t) - xb * Math.sin(t);
      y[b] = xa * Math.sin(t) + xb * Math.cos(t);
    }
  }
  return y;
}
function matvec(w: Float32Array, rows: number, x: Float32Array): Float32Array {
  const cols = x.length;
  const y = new Float32Array(rows);
  for (let r = 0; r < rows; r++) { let s = 0; for (let c = 0; c < cols; c++) s += w[r * cols + c]! * x[c]!; y[r] = s; }
  return y;
}

test('Q/K permutation: normal RoPE on converted rows = neox RoPE on HF rows (same attention scores)', () => {
  const { path, src } = convert(LLAMA3, 'f32', 'llama3-perm.gguf');
  const f = openGguf(path);
  const H = 4, Hkv = 2, D = 16, E = 64;
  const inv = Array.from({ length: D / 2 }, (_, i) => 1 / 10000 ** ((2 * i) / D));
  const r = rng(3);
  const x = new Float32Array(E).map(() => r() * 2 - 1);
  const x2 = new Float32Array(E).map(() => r() * 2 - 1);
  const hf = (n: string) => new Float32Array(src.find((t) => t.name === n)!.data.buffer.slice(0));
  for (const layer of [0, 1]) {
    const qHf = rope(matvec(hf(`model.layers.${layer}.self_attn.q_proj.weight`), H * D, x), H, D, 5, inv, 'neox');
    const kHf = rope(matvec(hf(`model.layers.${layer}.self_attn.k_proj.weight`), Hkv * D, x2), Hkv, D, 3, inv, 'neox');
    const qG = rope(matvec(readF32(f, `blk.${layer}.attn_q.weight`), H * D, x), H, D, 5, inv, 'normal');
    const kG = rope(matvec(readF32(f, `blk.${layer}.attn_k.weight`), Hkv * D, x2), Hkv, D, 3, inv, 'normal');
    // rotated vectors agree element by element under HF row h·D + s·D/2 + i ↔ GGUF row h·D + 2i + s
    for (let h = 0; h < H; h++) for (let i = 0; i < D / 2; i++) for (let s = 0; s < 2; s++) {
      assert.ok(Math.abs(qG[h * D + 2 * i + s]! - qHf[h * D + s * (D / 2) + i]!) < 1e-5);
    }
    // and attention scores q_h · k_{h / (H/Hkv)} are identical
    for (let h = 0; h < H; h++) {
      const g = Math.floor(h / (H / Hkv));
      let a = 0, b = 0;
      for (let d = 0; d < D; d++) { a += qHf[h * D + d]! * kHf[g * D + d]!; b += qG[h * D + d]! * kG[g * D + d]!; }
      assert.ok(Math.abs(a - b) < 1e-4, `layer ${layer} head ${h}: ${a} vs ${b}`);
    }
    // V is not permuted
    assert.deepEqual(readF32(f, `blk.${layer}.attn_v.weight`), hf(`model.layers.${layer}.self_attn.v_proj.weight`));
  }
  f.close();
});

test('Qwen2 (biases, untied) to q8_0: no permutation, 1-D tensors f32, weights q8_0 within half a step', () => {
  const c: LlamaConfig = {
    model_type: 'qwen2', vocab_size: 40, hidden_size: 64, intermediate_size: 96, num_hidden_layers: 1,
    num_attention_heads: 4, num_key_value_heads: 2, rms_norm_eps: 1e-6, rope_theta: 1000000, rope_scaling: null,
    max_position_embeddings: 32768, tie_word_embeddings: false, attention_bias: true, hidden_act: 'silu',
    bos_token_id: 1, eos_token_id: 2,
  };
  const { path, src } = convert(c, 'q8_0', 'qwen2.gguf');
  const f = openGguf(path);
  assert.deepEqual(llamaConfigFromGguf(f), { ...c, rms_norm_eps: Math.fround(1e-6), rope_style: 'neox' });
  assert.equal(f.metadata.get('general.file_type'), 7);
  assert.equal(f.metadata.has('qwen2.rope.freq_base'), true);
  const expectType: Record<string, string> = {
    'token_embd.weight': 'Q8_0', 'output.weight': 'Q8_0', 'output_norm.weight': 'F32', 'blk.0.attn_q.weight': 'Q8_0',
    'blk.0.attn_q.bias': 'F32', 'blk.0.attn_k.bias': 'F32', 'blk.0.ffn_down.weight': 'Q8_0', 'blk.0.attn_norm.weight': 'F32',
  };
  for (const [n, t] of Object.entries(expectType)) assert.equal(f.tensors.get(n)!.ggmlType, t, n);
  for (const t of src) {
    const want = new Float32Array(t.data.buffer.slice(0));
    const got = readF32(f, ggufTensorName(t.name));
    assert.equal(got.length, want.length);
    if (t.shape.length === 1) { assert.deepEqual(got, want, t.name); continue; }
    for (let b = 0; b < want.length / 32; b++) {
      let amax = 0;
      for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(want[b * 32 + j]!));
      for (let j = 0; j < 32; j++) {
        const err = Math.abs(got[b * 32 + j]! - want[b * 32 + j]!);
        assert.ok(err <= (amax / 127) * 0.5 + amax * 1e-3, `${t.name}[${b * 32 + j}] err ${err}`);
      }
    }
  }
  f.close();
});

test('Mistral (bf16 source) to q4_0 with linear rope scaling: f16 fallback for rows that are not whole blocks, q8_0 output', () => {
  const c: LlamaConfig = {
    model_type: 'mistral', vocab_size: 40, hidden_size: 48, intermediate_size: 64, num_hidden_layers: 1,
    num_attention_heads: 3, num_key_value_heads: 1, rms_norm_eps: 1e-5, rope_theta: 10000,
    rope_scaling: { rope_type: 'linear', factor: 2 }, max_position_embeddings: 4096, tie_word_embeddings: false,
    attention_bias: false, hidden_act: 'silu', bos_token_id: 1, eos_token_id: 2,
  };
  const { path, src } = convert(c, 'q4_0', 'mistral.gguf', 'bf16', 'llama');
  const f = openGguf(path);
  const got = llamaConfigFromGguf(f);
  assert.deepEqual(got, { ...c, model_type: 'llama', rms_norm_eps: Math.fround(1e-5), rope_style: 'normal' });
  assert.equal(f.metadata.get('llama.rope.scaling.type'), 'linear');
  assert.equal(f.metadataTypes.get('llama.rope.scaling.factor'), 'f32');
  assert.equal(f.metadata.get('general.file_type'), 2);
  assert.equal(f.metadataTypes.get('tokenizer.ggml.scores'), 'f32[]');
  assert.equal(f.metadata.has('tokenizer.ggml.merges'), false);
  assert.equal(ggufRopeFreqFactors(f), null);
  // rows of 48 values cannot be 32-blocks → F16; down_proj rows are 64 → Q4_0
  assert.equal(f.tensors.get('blk.0.attn_q.weight')!.ggmlType, 'F16');
  assert.equal(f.tensors.get('blk.0.ffn_down.weight')!.ggmlType, 'Q4_0');
  assert.equal(f.tensors.get('output.weight')!.ggmlType, 'F16');
  // f16 of a bf16 value: exact to half an f16 ulp
  const v = src.find((t) => t.name === 'model.layers.0.self_attn.v_proj.weight')!;
  const want = toFloat32('bf16', v.data);
  const gotV = readF32(f, 'blk.0.attn_v.weight');
  for (let i = 0; i < want.length; i++) assert.ok(Math.abs(gotV[i]! - want[i]!) <= Math.abs(want[i]!) * 2 ** -11 + 2 ** -25);
  f.close();

  // with 64-wide rows everything quantises; the output projection stays q8_0
  const c2 = { ...c, hidden_size: 64, num_attention_heads: 4, num_key_value_heads: 2 };
  const f2 = openGguf(convert(c2, 'q4_0', 'mistral64.gguf').path);
  assert.equal(f2.tensors.get('blk.0.attn_q.weight')!.ggmlType, 'Q4_0');
  assert.equal(f2.tensors.get('token_embd.weight')!.ggmlType, 'Q4_0');
  assert.equal(f2.tensors.get('output.weight')!.ggmlType, 'Q8_0');
  f2.close();
});

test('converter refuses inconsistent input and writes nothing', () => {
  const good = hfTensors(LLAMA3, 1);
  const tok = tokenizer(40, 'gpt2');
  const out = join(tempDir(), 'refused.gguf');
  const run = (tensors: HfTensor[], config: LlamaConfig = LLAMA3, t: GgufTokenizerSpec = tok) =>
    convertHfToGguf({ config, tensors, tokenizer: t, outFile: out, outType: 'f16' });
  assert.throws(() => run(good.slice(1)), /missing tensors model.embed_tokens.weight/);
  assert.throws(() => run([...good, { ...good[1]!, name: 'model.layers.0.mlp.fc1.weight' }]), /unexpected tensor "model.layers.0.mlp.fc1.weight"/);
  assert.throws(() => run(good.map((t, i) => (i === 1 ? { ...t, shape: [t.shape[0]! / 2, 2] } : t))), /has shape \[32, 2\], the config implies \[64\]/);
  assert.throws(() => run(good, { ...LLAMA3, model_type: 'gemma' }), /model_type "gemma" is not supported/);
  assert.throws(() => run(good, LLAMA3, { ...tok, tokens: tok.tokens.slice(1) }), /39 tokens but vocab_size is 40/);
  assert.throws(() => run(good, LLAMA3, { ...tok, pre: undefined }), /needs `pre`/);
  assert.equal(existsSync(out), false);
});

test('llamaConfigFromGguf refuses other architectures and missing keys', () => {
  const p1 = join(tempDir(), 'gemma.gguf');
  writeGguf(p1, [['general.architecture', 'gemma']], []);
  const f1 = openGguf(p1);
  assert.throws(() => llamaConfigFromGguf(f1), /architecture "gemma" is not supported/);
  f1.close();
  const p2 = join(tempDir(), 'nokeys.gguf');
  writeGguf(p2, [['general.architecture', 'llama'], ['llama.embedding_length', 64, 'u32'], ['llama.attention.head_count', 4, 'u32'], ['llama.vocab_size', 10, 'u32']], []);
  const f2 = openGguf(p2);
  assert.throws(() => llamaConfigFromGguf(f2), (e: unknown) => e instanceof FormatError && /missing metadata key llama\.block_count$/.test(e.message));
  f2.close();
  const p3 = join(tempDir(), 'badvocab.gguf');
  writeGguf(p3, [['general.architecture', 'llama'], ['llama.embedding_length', 64, 'u32'], ['llama.attention.head_count', 4, 'u32'],
    ['tokenizer.ggml.tokens', ['a', 'b', 'c']]], [{ name: 'token_embd.weight', ggmlType: 'F32', shape: [4, 64], data: new Uint8Array(4 * 64 * 4) }]);
  const f3 = openGguf(p3);
  assert.throws(() => llamaConfigFromGguf(f3), /token_embd.weight has shape \[4, 64\], expected \[3, 64\]/);
  f3.close();
});

// ---- quantisers and f16 against hand-computed values ------------------------------------------

test('f32 → f16 rounding matches IEEE round-to-nearest-even', () => {
  const cases: [number, number][] = [
    [1, 0x3c00], [-2, 0xc000], [0.1, 0x2e66], [65504, 0x7bff], [65519, 0x7bff], [65520, 0x7c00], [1e9, 0x7c00],
    [2 ** -24, 0x0001], [2 ** -25, 0x0000], [1.5 * 2 ** -25, 0x0001], [2 ** -14, 0x0400], [-0, 0x8000],
    [1 + 2 ** -11, 0x3c00], [1 + 3 * 2 ** -11, 0x3c02], [Infinity, 0x7c00], [-Infinity, 0xfc00],
  ];
  for (const [x, h] of cases) assert.equal(f32ToF16(x), h, `${x}`);
  assert.equal(f32ToF16(NaN) & 0x7e00, 0x7e00);
  for (let h = 0; h < 0x7c00; h += 37) assert.equal(f32ToF16(f16ToF32(h)), h);
});

test('q8_0 and q4_0 blocks match hand-computed bytes', () => {
  const x = Float32Array.from({ length: 32 }, (_, j) => j - 16); // amax 16 → d = 16/127
  const q8 = quantizeToQ8_0(x);
  assert.equal(q8.length, 34);
  assert.equal(q8[0]! | (q8[1]! << 8), 0x3008); // f16(0.1259843) = 2^-3 · (1 + 8/1024)
  const q = Int8Array.from(q8.subarray(2));
  assert.equal(q[0], -127);   // −16
  assert.equal(q[17], 8);     // 1 · 127/16 = 7.94
  assert.equal(q[18], 16);    // 15.875
  assert.equal(q[31], 119);   // 15 · 127/16 = 119.06
  assert.equal(q[16], 0);
  assert.deepEqual(quantizeToQ8_0(new Float32Array(32)), new Uint8Array(34));

  const y = new Float32Array(32);
  y[0] = -4; y[1] = 4; y[16] = 2; y[17] = -1; // max (signed) = −4 → d = 0.5, id = 2
  const q4 = quantizeToQ4_0(y);
  assert.equal(q4[0]! | (q4[1]! << 8), 0x3800); // f16(0.5)
  assert.equal(q4[2], 0x00 | (12 << 4)); // q0 = trunc(−8 + 8.5) = 0, q16 = trunc(4 + 8.5) = 12
  assert.equal(q4[3], 15 | (6 << 4));    // q1 = min(15, 16), q17 = trunc(−2 + 8.5) = 6
  for (let j = 4; j < 18; j++) assert.equal(q4[j], 0x88);
  assert.deepEqual(Array.from(dequantizeQ4_0(q4).subarray(0, 2)), [-4, 3.5]);
});
