// Rotary position embedding and causal multi-head attention with grouped-query heads.
// Shape legend: B = sequences, T = tokens per sequence, H = query heads, Hkv = key/value heads,
// D = head dim. Activations are (B, T, H·D) or (B, T, H, D) — the same bytes.
// Attention runs the fused kernels of train-kernels.ts (forward saves the row log-sum-exp; backward
// recomputes the probabilities): with the tape's thread pool the forward is split over (sequence,
// query head) and the backward over (sequence, KV group) across every thread; without one, one
// sequence at a time on the main thread. Each unit writes disjoint outputs with the same kernel
// code, so both paths compute the same bits (checkpoint resume stays exact either way).

import type { RopeStyle } from '../../kernels/types.js';
import type { Tape } from './tape.js';
import { Tensor, shapeStr } from './tensor.js';
import { attnBackwardUnits, attnForwardUnits, trainKernels } from '../train-kernels.js';
import { trainAttnBackwardOp, trainAttnForwardOp } from '../train-pool-ops.js';

/** Rotates x (B, T, H, D) (or (B, T, H·D) with `heads`) by angle pos·invFreq[i] per pair;
 *  'neox' pairs (i, i + D/2) as Hugging Face's rotate_half, 'normal' pairs (2i, 2i + 1).
 *  positions (T) default 0..T−1 for every sequence. */
export function rope(tape: Tape, x: Tensor, invFreq: Float32Array, opts: { heads?: number; positions?: ArrayLike<number>; style?: RopeStyle } = {}): Tensor {
  const style = opts.style ?? 'neox';
  const D = invFreq.length * 2;
  const H = opts.heads ?? (x.ndim === 4 ? x.shape[2] : NaN);
  if (!(H > 0) || x.ndim < 3 || x.size % (H * D) !== 0 || (x.ndim === 4 ? x.shape[2] * x.shape[3] : x.shape[2]) !== H * D) {
    throw new Error(`rope: input ${shapeStr(x.shape)} is not (B, T, ${opts.heads ?? 'H'}, ${D}) (pass heads for (B, T, H·D))`);
  }
  const B = x.shape[0], T = x.shape[1], half = D / 2;
  const pos = opts.positions;
  if (pos && pos.length !== T) throw new Error(`rope: ${pos.length} positions for ${T} tokens`);
  const cos = new Float32Array(T * half), sin = new Float32Array(T * half);
  for (let t = 0; t < T; t++) {
    const p = pos ? pos[t] : t;
    for (let i = 0; i < half; i++) {
      // f32 angle, as the inference kernel computes it (kernels/rope.ts), so both rotate alike
      const a = Math.fround(p * invFreq[i]);
      cos[t * half + i] = Math.cos(a); sin[t * half + i] = Math.sin(a);
    }
  }
  const y = tape.output(x.shape, tape.needsGrad(x));
  const rotate = (src: Float32Array, dst: Float32Array, sign: number) => {
    for (let b = 0; b < B; b++) for (let t = 0; t < T; t++) for (let h = 0; h < H; h++) {
      const o = ((b * T + t) * H + h) * D;
      for (let i = 0; i < half; i++) {
        const c = cos[t * half + i], s = sign * sin[t * half + i];
        const i1 = style === 'neox' ? o + i : o + 2 * i, i2 = style === 'neox' ? o + i + half : o + 2 * i + 1;
        const x1 = src[i1], x2 = src[i2];
        dst[i1] += x1 * c - x2 * s;
        dst[i2] += x1 * s + x2 * c;
      }
    }
  };
  y.data.fill(0);
  rotate(x.data, y.data, 1);
  tape.record(y, () => rotate(y.grad!, x.ensureGrad(), -1));   // the inverse rotation is the transpose
  return y;
}

export interface AttentionOptions {
  /** Score scale, default 1/√D. */
  scale?: number;
}

/** Causal attention: q (B, T, H, D), k and v (B, T, Hkv, D) → (B, T, H, D). H must be a multiple
 *  of Hkv (grouped-query attention). */
export function attention(tape: Tape, q: Tensor, k: Tensor, v: Tensor, opts: AttentionOptions = {}): Tensor {
  if (q.ndim !== 4 || k.ndim !== 4 || v.ndim !== 4) throw new Error(`attention: need (B, T, heads, D) tensors, got ${shapeStr(q.shape)}, ${shapeStr(k.shape)}, ${shapeStr(v.shape)}`);
  const [B, T, H, D] = q.shape, Hkv = k.shape[2];
  if (k.shape[0] !== B || k.shape[1] !== T || k.shape[3] !== D || v.shape.some((d, i) => d !== k.shape[i]) || H % Hkv !== 0) {
    throw new Error(`attention: q ${shapeStr(q.shape)} does not match k ${shapeStr(k.shape)} / v ${shapeStr(v.shape)} (H must be a multiple of Hkv)`);
  }
  const scale = opts.scale ?? 1 / Math.sqrt(D);
  const tk = trainKernels(tape.mem);
  const y = tape.output(q.shape, tape.needsGrad(q, k, v));                      // (B, T, H, D)
  const lse = tape.mem.allocStep(B * T * H * 4);                                // (B, T, H)
  const pool = tape.pool, arena = tape.mem.arena;
  if (pool) pool.run(trainAttnForwardOp, arena, q.ptr, k.ptr, v.ptr, y.ptr, lse, B, T, H, Hkv, D, scale);
  else attnForwardUnits(tk, q.ptr, k.ptr, v.ptr, y.ptr, lse, T, H, Hkv, D, scale, 0, B * H);
  tape.record(y, () => {
    // The kernel adds into all three gradients, so each must exist; scratch stands in for inputs
    // that need none.
    const gq = q.requiresGrad ? q.gradPtr : tape.mem.allocStep(q.size * 4, true);
    const gk = k.requiresGrad ? k.gradPtr : tape.mem.allocStep(k.size * 4, true);
    const gv = v.requiresGrad ? v.gradPtr : tape.mem.allocStep(v.size * 4, true);
    const gy = y.gradPtr;
    if (pool) pool.run(trainAttnBackwardOp, arena, q.ptr, k.ptr, v.ptr, y.ptr, gy, lse, gq, gk, gv, B, T, H, Hkv, D, scale);
    else attnBackwardUnits(tk, q.ptr, k.ptr, v.ptr, y.ptr, gy, lse, gq, gk, gv, T, H, Hkv, D, scale, 0, B * Hkv);
  });
  return y;
}
