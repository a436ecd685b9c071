// The float64 Memory Mosaic forward, written as literally as possible from PAPERS.md §3 on plain
// arrays: the test oracle for the trainable model (model-train.ts) and the cached inference model
// (inference.ts). Slow on purpose: the leaky average is the explicit double sum, the read-out a
// full softmax per position, nothing is fused or cached.
//
//   x = Emb(idx)                                   (no positional embedding)
//   per block: x += CM(LN1(x)); x += PM(LN2(x))     (LayerNorm without bias)
//   logits = LN_f(x) · Embᵀ / sqrt(d)               (tied embedding; the / sqrt(d) as logits_inv_sqrt_d says)
// CM head h: k̃_t = Σ_{s<=t} e^{−β(t−s)} W_k x_s;  k_t = e^b k̃_t/|k̃_t|
//            ṽ_t = (1−c) W_v x_{t+1} + c W_v x_t (x_T = 0);  v_t = e^γ ṽ_t/|ṽ_t|
//            y_t = Σ_{s<t} softmax_s(k_t·k_s) v_s,  y_0 = 0
// PM head h: k_t as above with its own W_k, β, b but scaled by e^{2b};  y_t = e^γ softmax(k_t·P_kᵀ) P_v
// Shape legend: T tokens, d width, H heads, hs head size, Np persistent slots, V vocab.

import type { MosaicConfig } from './config.js';
import { mosaicDims, mosaicLogitScale } from './config.js';
import { keyLogScale, leakRate, valueLogScale } from './params.js';

type P = ReadonlyMap<string, ArrayLike<number>>;

/** Vector norm guard, as in the paper's code (k / (|k| + 1e-10)). */
export const NORM_EPS = 1e-10;

function get(p: P, name: string): ArrayLike<number> {
  const t = p.get(name);
  if (!t) throw new Error(`mosaic reference: parameter ${name} is missing`);
  return t;
}

/** y (T, rows) = x (T, cols) · Wᵀ, W (rows, cols). */
function linear(x: Float64Array, w: ArrayLike<number>, T: number, rows: number, cols: number): Float64Array {
  const y = new Float64Array(T * rows);
  for (let t = 0; t < T; t++) {
    for (let r = 0; r < rows; r++) {
      let s = 0;
      for (let j = 0; j < cols; j++) s += x[t * cols + j] * w[r * cols + j];
      y[t * rows + r] = s;
    }
  }
  return y;
}

/** LayerNorm without bias: (x − mean)/sqrt(var + eps) ⊙ w, per row of x (T, d). */
export function referenceLayerNorm(x: Float64Array, w: ArrayLike<number>, T: number, d: number, eps: number): Float64Array {
  const y = new Float64Array(T * d);
  for (let t = 0; t < T; t++) {
    let mean = 0;
    for (let j = 0; j < d; j++) mean += x[t * d + j];
    mean /= d;
    let v = 0;
    for (let j = 0; j < d; j++) v += (x[t * d + j] - mean) ** 2;
    const inv = 1 / Math.sqrt(v / d + eps);
    for (let j = 0; j < d; j++) y[t * d + j] = (x[t * d + j] - mean) * inv * w[j];
  }
  return y;
}

/** Leaky average per head, explicit T×T form: out_t = Σ_{s<=t} e^{−β_h(t−s)} u_s; u (T, d) with head
 *  h in columns [h·hs, (h+1)·hs). */
export function referenceLeakyAverage(u: Float64Array, beta: ArrayLike<number>, T: number, H: number, hs: number): Float64Array {
  const d = H * hs;
  const out = new Float64Array(T * d);
  for (let h = 0; h < H; h++) {
    for (let t = 0; t < T; t++) {
      for (let s = 0; s <= t; s++) {
        const w = Math.exp(-beta[h] * (t - s));
        for (let j = h * hs; j < (h + 1) * hs; j++) out[t * d + j] += w * u[s * d + j];
      }
    }
  }
  return out;
}

/** Scales each head slice of each row to unit norm times e^{logScale[h]} (in place). */
export function referenceUnitNorm(u: Float64Array, logScale: ArrayLike<number>, T: number, H: number, hs: number): Float64Array {
  const d = H * hs;
  for (let t = 0; t < T; t++) {
    for (let h = 0; h < H; h++) {
      let n = 0;
      for (let j = h * hs; j < (h + 1) * hs; j++) n += u[t * d + j] ** 2;
      const f = Math.exp(logScale[h]) / (Math.sqrt(n) + NORM_EPS);
      for (let j = h * hs; j < (h + 1) * hs; j++) u[t * d + j] *= f;
    }
  }
  return u;
}

/** Leaky-average keys scaled by e^{pow·b}: the shared key feature of CM (pow 1) and PM (pow 2). */
function leakyKeys(p: P, prefix: string, c: MosaicConfig, x: Float64Array, T: number, pow: number): Float64Array {
  const { d, H, hs } = mosaicDims(c);
  const theta = get(p, `${prefix}.leaky_beta`), ks = get(p, `${prefix}.key_scale`);
  const beta = Array.from({ length: H }, (_, h) => leakRate(theta[h]));
  const logScale = Array.from({ length: H }, (_, h) => pow * keyLogScale(ks[h], c.key_scale_max));
  const k = referenceLeakyAverage(linear(x, get(p, `${prefix}.k_proj.weight`), T, d, d), beta, T, H, hs);
  return referenceUnitNorm(k, logScale, T, H, hs);
}

/** Contextual memory of block `layer` on its normalised input x (T, d) → (T, d), before the residual add. */
export function referenceContextMemory(c: MosaicConfig, p: P, layer: number, x: Float64Array, T: number): Float64Array {
  const { d, H, hs } = mosaicDims(c);
  const pre = `h.${layer}.attn`;
  const k = leakyKeys(p, pre, c, x, T, 1);                                   // (T, d)
  const wv = linear(x, get(p, `${pre}.v_proj.weight`), T, d, d);             // (T, d)
  const mix = get(p, `${pre}.value_mix`), vs = get(p, `${pre}.value_scale`);
  const v = new Float64Array(T * d);                                         // (T, d)
  for (let t = 0; t < T; t++) {
    for (let h = 0; h < H; h++) {
      for (let j = h * hs; j < (h + 1) * hs; j++) {
        const next = t + 1 < T ? wv[(t + 1) * d + j] : 0;                   // x_T = 0 at the end
        v[t * d + j] = (1 - mix[h]) * next + mix[h] * wv[t * d + j];
      }
    }
  }
  referenceUnitNorm(v, Array.from({ length: H }, (_, h) => valueLogScale(vs[h])), T, H, hs);
  const y = new Float64Array(T * d);                                         // (T, d), y_0 = 0
  for (let h = 0; h < H; h++) {
    for (let t = 1; t < T; t++) {
      const sc = new Float64Array(t);                                        // scores over s < t
      let m = -Infinity;
      for (let s = 0; s < t; s++) {
        let dot = 0;
        for (let j = h * hs; j < (h + 1) * hs; j++) dot += k[t * d + j] * k[s * d + j];
        sc[s] = dot;
        m = Math.max(m, dot);
      }
      let z = 0;
      for (let s = 0; s < t; s++) { sc[s] = Math.exp(sc[s] - m); z += sc[s]; }
      for (let s = 0; s < t; s++) {
        for (let j = h * hs; j < (h + 1) * hs; j++) y[t * d + j] += (sc[s] / z) * v[s * d + j];
      }
    }
  }
  return linear(y, get(p, `${pre}.c_proj.weight`), T, d, d);
}

/** Persistent memory of block `layer` on its normalised input x (T, d) → (T, d). */
export function referencePersistentMemory(c: MosaicConfig, p: P, layer: number, x: Float64Array, T: number): Float64Array {
  const { d, H, hs, Np } = mosaicDims(c);
  const pre = `h.${layer}.pmem`;
  const k = leakyKeys(p, pre, c, x, T, 2);                                   // (T, d)
  const pk = get(p, `${pre}.P_k`), pv = get(p, `${pre}.P_v`), os = get(p, `${pre}.out_scale`);
  const y = new Float64Array(T * d);
  const sc = new Float64Array(Np);
  for (let t = 0; t < T; t++) {
    for (let h = 0; h < H; h++) {
      let m = -Infinity;
      for (let n = 0; n < Np; n++) {
        let dot = 0;
        for (let j = 0; j < hs; j++) dot += k[t * d + h * hs + j] * pk[(h * Np + n) * hs + j];
        sc[n] = dot;
        m = Math.max(m, dot);
      }
      let z = 0;
      for (let n = 0; n < Np; n++) { sc[n] = Math.exp(sc[n] - m); z += sc[n]; }
      const g = Math.exp(valueLogScale(os[h])) / z;
      for (let n = 0; n < Np; n++) {
        for (let j = 0; j < hs; j++) y[t * d + h * hs + j] += g * sc[n] * pv[(h * Np + n) * hs + j];
      }
    }
  }
  return linear(y, get(p, `${pre}.c_proj.weight`), T, d, d);
}

/** Final hidden states after ln_f, (T, d). */
export function referenceHidden(c: MosaicConfig, p: P, tokens: ArrayLike<number>): Float64Array {
  const { d } = mosaicDims(c);
  const T = tokens.length;
  const wte = get(p, 'wte.weight');
  const x = new Float64Array(T * d);                                         // (T, d)
  for (let t = 0; t < T; t++) {
    const id = tokens[t];
    if (!Number.isInteger(id) || id < 0 || id >= c.vocab_size) throw new RangeError(`mosaic reference: token ${id} at ${t} is outside the vocabulary`);
    for (let j = 0; j < d; j++) x[t * d + j] = wte[id * d + j];
  }
  for (let i = 0; i < c.n_layer; i++) {
    const a = referenceContextMemory(c, p, i, referenceLayerNorm(x, get(p, `h.${i}.ln_1.weight`), T, d, c.layer_norm_eps), T);
    for (let j = 0; j < x.length; j++) x[j] += a[j];
    const m = referencePersistentMemory(c, p, i, referenceLayerNorm(x, get(p, `h.${i}.ln_2.weight`), T, d, c.layer_norm_eps), T);
    for (let j = 0; j < x.length; j++) x[j] += m[j];
  }
  return referenceLayerNorm(x, get(p, 'ln_f.weight'), T, d, c.layer_norm_eps);
}

/** Logits (T, V) of every position: LN_f(x) · Embᵀ, / sqrt(d) when config.logits_inv_sqrt_d. */
export function referenceLogits(c: MosaicConfig, p: P, tokens: ArrayLike<number>): Float64Array {
  const { d } = mosaicDims(c);
  const hdn = referenceHidden(c, p, tokens);
  const logits = linear(hdn, get(p, 'wte.weight'), tokens.length, c.vocab_size, d);
  const s = mosaicLogitScale(c);
  for (let i = 0; i < logits.length; i++) logits[i] *= s;
  return logits;
}

/** Mean next-token cross-entropy of `tokens[1..]` given the prefix (nats). */
export function referenceLoss(c: MosaicConfig, p: P, tokens: ArrayLike<number>, targets: ArrayLike<number>): number {
  const logits = referenceLogits(c, p, tokens);
  const V = c.vocab_size;
  let total = 0;
  for (let t = 0; t < tokens.length; t++) {
    let m = -Infinity;
    for (let v = 0; v < V; v++) m = Math.max(m, logits[t * V + v]);
    let z = 0;
    for (let v = 0; v < V; v++) z += Math.exp(logits[t * V + v] - m);
    total += Math.log(z) + m - logits[t * V + targets[t]];
  }
  return total / tokens.length;
}
