// Inverse RoPE frequencies per rotated pair, with the checkpoint's scaling folded in, so the rope
// kernel only computes angle = position · invFreq[i].
//   base:   invFreq[i] = θ^(−2i/D)                                   (RoFormer, eq. 15)
//   linear: invFreq[i] /= factor                                      (HF "linear", GGUF rope.scaling.type=linear)
//   llama3: per-wavelength blend, as transformers' _compute_llama3_parameters
//   GGUF llama3 files carry the result as a `rope_freqs.weight` tensor of divisors (llama.cpp).

import type { LlamaConfig } from './config.js';

export function ropeInverseFrequencies(config: LlamaConfig, headDim: number, ggufFreqDivisors?: Float32Array | null): Float32Array {
  const half = headDim / 2;
  const inv = new Float32Array(half);                       // (D/2)
  for (let i = 0; i < half; i++) inv[i] = 1 / Math.pow(config.rope_theta, (2 * i) / headDim);

  if (ggufFreqDivisors) {
    if (ggufFreqDivisors.length !== half) {
      throw new Error(`rope_freqs.weight has ${ggufFreqDivisors.length} values, expected head_dim/2 = ${half}`);
    }
    for (let i = 0; i < half; i++) inv[i] /= ggufFreqDivisors[i];
    return inv;
  }

  const s = config.rope_scaling;
  if (!s) return inv;
  if (s.rope_type === 'linear') {
    for (let i = 0; i < half; i++) inv[i] /= s.factor;
    return inv;
  }
  // llama3: wavelengths longer than original/low_freq_factor are scaled by 1/factor, shorter than
  // original/high_freq_factor are kept, and the band in between is interpolated.
  const low = s.low_freq_factor ?? 1;
  const high = s.high_freq_factor ?? 4;
  const orig = s.original_max_position_embeddings ?? 8192;
  const lowWavelen = orig / low;
  const highWavelen = orig / high;
  for (let i = 0; i < half; i++) {
    const wavelen = (2 * Math.PI) / inv[i];
    if (wavelen < highWavelen) continue;
    if (wavelen > lowWavelen) { inv[i] /= s.factor; continue; }
    const smooth = (orig / wavelen - low) / (high - low);
    inv[i] = (1 - smooth) * (inv[i] / s.factor) + smooth * inv[i];
  }
  return inv;
}
