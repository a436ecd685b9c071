// A textbook Llama forward pass in float64 over Hugging Face tensors: the third party between
// llama.cpp (which runs the converted GGUF) and Tessera (which runs both formats). It follows
// transformers' modeling_llama.py / modeling_qwen2.py line by line, favouring obviousness over
// speed: no cache, whole sequence at once, O(n²) attention. Used only on the tiny presets.
// With `q8: true` it follows llama.cpp's q8_0 arithmetic instead of float: every 2-D weight is
// replaced by its q8_0 round trip (q8RoundTrip below, done by the caller) and every matmul input
// row is quantised to q8_0 blocks first, as ggml does before its integer dot products (the sum of
// d_w·d_x·q_w·q_x is then exact in float64).
// Shape legend: n = tokens, E = hidden, H/Hkv = heads, D = head dim, F = FFN, V = vocab.

import type { LlamaConfig } from '../../src/models/config.js';
import { derive } from '../../src/models/config.js';
import { dequantizeQ8_0, quantizeToQ8_0 } from '../../src/formats/gguf-quantize.js';

export type Weights = ReadonlyMap<string, Float32Array>;

function get(w: Weights, name: string): Float32Array {
  const t = w.get(name);
  if (!t) throw new Error(`textbook-llama: missing tensor ${name}`);
  return t;
}

/** x → q8_0 blocks → values again (length % 32 == 0): what a q8_0 tensor or activation holds. */
export function q8RoundTrip(x: ArrayLike<number>): Float32Array {
  return dequantizeQ8_0(quantizeToQ8_0(Float32Array.from(x)));
}

/** y (n, out) = x (n, in) · Wᵀ (+ b); W (out, in) row-major. q8: x is quantised to q8_0 first. */
function linear(x: Float64Array, n: number, W: Float32Array, out: number, inp: number, b?: Float32Array, q8 = false): Float64Array {
  if (q8) x = Float64Array.from(q8RoundTrip(x)); // (n, in): rows are whole numbers of 32-blocks
  const y = new Float64Array(n * out); // (n, out)
  for (let t = 0; t < n; t++) {
    for (let o = 0; o < out; o++) {
      let s = b ? b[o]! : 0;
      for (let i = 0; i < inp; i++) s += x[t * inp + i]! * W[o * inp + i]!;
      y[t * out + o] = s;
    }
  }
  return y;
}

/** LlamaRMSNorm: x / sqrt(mean(x²) + eps) · w, per row. */
function rmsNorm(x: Float64Array, n: number, E: number, w: Float32Array, eps: number): Float64Array {
  const y = new Float64Array(n * E); // (n, E)
  for (let t = 0; t < n; t++) {
    let ss = 0;
    for (let i = 0; i < E; i++) ss += x[t * E + i]! ** 2;
    const r = 1 / Math.sqrt(ss / E + eps);
    for (let i = 0; i < E; i++) y[t * E + i] = x[t * E + i]! * r * w[i]!;
  }
  return y;
}

/** Inverse frequencies (D/2), with transformers' _compute_llama3_parameters when configured. */
export function inverseFrequencies(c: LlamaConfig): Float64Array {
  const D = derive(c).headDim;
  const inv = new Float64Array(D / 2); // (D/2)
  for (let i = 0; i < D / 2; i++) inv[i] = 1 / Math.pow(c.rope_theta, (2 * i) / D);
  const rs = c.rope_scaling;
  if (rs?.rope_type === 'llama3') {
    const low = rs.low_freq_factor ?? 1, high = rs.high_freq_factor ?? 4, old = rs.original_max_position_embeddings ?? 8192;
    const lowWavelen = old / low, highWavelen = old / high;
    for (let i = 0; i < D / 2; i++) {
      const wavelen = (2 * Math.PI) / inv[i]!;
      if (wavelen < highWavelen) continue;
      if (wavelen > lowWavelen) inv[i] = inv[i]! / rs.factor;
      else {
        const smooth = (old / wavelen - low) / (high - low);
        inv[i] = (1 - smooth) * (inv[i]! / rs.factor) + smooth * inv[i]!;
      }
    }
  } else if (rs?.rope_type === 'linear') {
    for (let i = 0; i < D / 2; i++) inv[i] = inv[i]! / rs.factor;
  }
  return inv;
}

/** rotate_half RoPE in place on x (n, heads, D): pairs (i, i + D/2), position t for row t. */
function rope(x: Float64Array, n: number, heads: number, D: number, inv: Float64Array): void {
  for (let t = 0; t < n; t++) {
    for (let h = 0; h < heads; h++) {
      const base = (t * heads + h) * D;
      for (let i = 0; i < D / 2; i++) {
        const a = t * inv[i]!, cos = Math.cos(a), sin = Math.sin(a);
        const x0 = x[base + i]!, x1 = x[base + i + D / 2]!;
        x[base + i] = x0 * cos - x1 * sin;
        x[base + i + D / 2] = x1 * cos + x0 * sin;
      }
    }
  }
}

/** Logits (n, V) of every position of `tokens`, computed from scratch. */
export function textbookLogits(c: LlamaConfig, w: Weights, tokens: readonly number[], opts: { q8?: boolean } = {}): Float64Array {
  const q8 = opts.q8 ?? false;
  const { headDim: D, qDim, kvDim, groupSize } = derive(c);
  const n = tokens.length, E = c.hidden_size, F = c.intermediate_size, H = c.num_attention_heads, V = c.vocab_size;
  const inv = inverseFrequencies(c);
  const emb = get(w, 'model.embed_tokens.weight');
  let x: Float64Array = new Float64Array(n * E); // (n, E)
  tokens.forEach((id, t) => { for (let i = 0; i < E; i++) x[t * E + i] = emb[id * E + i]!; });

  for (let l = 0; l < c.num_hidden_layers; l++) {
    const p = `model.layers.${l}.`;
    const h = rmsNorm(x, n, E, get(w, `${p}input_layernorm.weight`), c.rms_norm_eps);
    const bias = (k: string): Float32Array | undefined => (c.attention_bias ? get(w, `${p}self_attn.${k}_proj.bias`) : undefined);
    const q = linear(h, n, get(w, `${p}self_attn.q_proj.weight`), qDim, E, bias('q'), q8); // (n, H·D)
    const k = linear(h, n, get(w, `${p}self_attn.k_proj.weight`), kvDim, E, bias('k'), q8); // (n, Hkv·D)
    const v = linear(h, n, get(w, `${p}self_attn.v_proj.weight`), kvDim, E, bias('v'), q8); // (n, Hkv·D)
    rope(q, n, H, D, inv);
    rope(k, n, c.num_key_value_heads, D, inv);
    const att = new Float64Array(n * qDim); // (n, H·D)
    const scores = new Float64Array(n);
    for (let hh = 0; hh < H; hh++) {
      const kh = Math.floor(hh / groupSize);
      for (let t = 0; t < n; t++) {
        let max = -Infinity;
        for (let s = 0; s <= t; s++) {
          let dot = 0;
          for (let i = 0; i < D; i++) dot += q[t * qDim + hh * D + i]! * k[s * kvDim + kh * D + i]!;
          scores[s] = dot / Math.sqrt(D);
          max = Math.max(max, scores[s]!);
        }
        let sum = 0;
        for (let s = 0; s <= t; s++) sum += (scores[s] = Math.exp(scores[s]! - max));
        for (let s = 0; s <= t; s++) {
          const a = scores[s]! / sum;
          for (let i = 0; i < D; i++) att[t * qDim + hh * D + i] += a * v[s * kvDim + kh * D + i]!;
        }
      }
    }
    const o = linear(att, n, get(w, `${p}self_attn.o_proj.weight`), E, qDim, undefined, q8); // (n, E)
    for (let i = 0; i < n * E; i++) x[i] += o[i]!;
    const h2 = rmsNorm(x, n, E, get(w, `${p}post_attention_layernorm.weight`), c.rms_norm_eps);
    const g = linear(h2, n, get(w, `${p}mlp.gate_proj.weight`), F, E, undefined, q8); // (n, F)
    const u = linear(h2, n, get(w, `${p}mlp.up_proj.weight`), F, E, undefined, q8); // (n, F)
    for (let i = 0; i < n * F; i++) g[i] = (g[i]! / (1 + Math.exp(-g[i]!))) * u[i]!;
    const d = linear(g, n, get(w, `${p}mlp.down_proj.weight`), E, F, undefined, q8); // (n, E)
    for (let i = 0; i < n * E; i++) x[i] += d[i]!;
  }
  x = rmsNorm(x, n, E, get(w, 'model.norm.weight'), c.rms_norm_eps);
  const head = c.tie_word_embeddings ? emb : get(w, 'lm_head.weight');
  return linear(x, n, head, V, E, undefined, q8); // (n, V)
}

/** log-softmax of one row. */
export function logSoftmax(row: ArrayLike<number>): Float64Array {
  let max = -Infinity;
  for (let i = 0; i < row.length; i++) max = Math.max(max, row[i]!);
  let sum = 0;
  for (let i = 0; i < row.length; i++) sum += Math.exp(row[i]! - max);
  const lse = max + Math.log(sum);
  const out = new Float64Array(row.length); // (V)
  for (let i = 0; i < row.length; i++) out[i] = row[i]! - lse;
  return out;
}

/** The weights map the textbook forward reads; q8: 2-D weights as a q8_0 GGUF stores them. */
export function textbookWeights(tensors: readonly { name: string; shape: number[]; data: Float32Array }[], q8 = false): Map<string, Float32Array> {
  return new Map(tensors.map((t) => [t.name, q8 && t.shape.length === 2 ? q8RoundTrip(t.data) : t.data]));
}
