// AdamW (Loshchilov & Hutter, "Decoupled Weight Decay Regularization"), the warm-up + cosine
// learning-rate schedule, and global-norm gradient clipping.
// Weight decay is applied only to tensors with ≥ 2 dimensions (matrices, embeddings), never to norm
// gains or biases, as nanoGPT / HF Trainer configure it. The moments live in persistent memory and are
// saved with checkpoints (state()), so a resumed run continues bit-identically.
// `biasCorrection: false` drops Adam's 1/(1 − β^t) factors, as MLX's optimizers do by default (the
// Memory Mosaics reference code trains three moons that way): early steps are then lr·m/(√v + ε) with
// small m and v, i.e. larger than the corrected update when β₂ > β₁.

import type { Params } from './params.js';
import { Tensor } from './autograd/tensor.js';

export interface AdamWOptions {
  beta1?: number;         // default 0.9
  beta2?: number;         // default 0.95
  eps?: number;           // default 1e-8
  weightDecay?: number;   // default 0.1
  biasCorrection?: boolean; // default true (PyTorch); false = MLX's default
}

export class AdamW {
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  readonly weightDecay: number;
  readonly biasCorrection: boolean;
  /** Optimizer steps taken (bias correction uses it). */
  t = 0;
  readonly m: Tensor[];
  readonly v: Tensor[];

  constructor(readonly params: Params, opts: AdamWOptions = {}) {
    this.beta1 = opts.beta1 ?? 0.9;
    this.beta2 = opts.beta2 ?? 0.95;
    this.eps = opts.eps ?? 1e-8;
    this.weightDecay = opts.weightDecay ?? 0.1;
    this.biasCorrection = opts.biasCorrection ?? true;
    this.m = params.list().map((p) => Tensor.alloc(params.mem, p.shape, 'persistent', { name: `${p.name}.exp_avg` }));
    this.v = params.list().map((p) => Tensor.alloc(params.mem, p.shape, 'persistent', { name: `${p.name}.exp_avg_sq` }));
  }

  /** One update with learning rate `lr` from the accumulated gradients (params without a gradient
   *  are left alone). Does not zero the gradients. */
  step(lr: number): void {
    this.t++;
    const b1 = this.beta1, b2 = this.beta2;
    const c1 = this.biasCorrection ? 1 - b1 ** this.t : 1, c2 = this.biasCorrection ? 1 - b2 ** this.t : 1;
    this.params.list().forEach((p, i) => {
      const g = p.grad;
      if (!g) return;
      const P = p.data, M = this.m[i].data, V = this.v[i].data;
      const decay = p.ndim >= 2 ? 1 - lr * this.weightDecay : 1;
      for (let j = 0; j < P.length; j++) {
        const gj = g[j];
        const mj = (M[j] = b1 * M[j] + (1 - b1) * gj);
        const vj = (V[j] = b2 * V[j] + (1 - b2) * gj * gj);
        P[j] = P[j] * decay - lr * (mj / c1) / (Math.sqrt(vj / c2) + this.eps);
      }
    });
  }
}

export interface Schedule {
  /** Peak learning rate. */
  lr: number;
  /** Floor reached at the end of the cosine (default lr / 10). */
  minLr?: number;
  /** Linear warm-up steps (from lr/warmup to lr). */
  warmup: number;
  /** Total steps; the cosine runs from step `warmup` (or `decayFrom`) to `total`. */
  total: number;
  /** Hold the peak rate until this step, then decay (default: decay right after the warm-up). */
  decayFrom?: number;
}

/** Learning rate at (0-based) `step`: linear warm-up, then cosine decay to minLr. */
export function lrAt(step: number, s: Schedule): number {
  const minLr = s.minLr ?? s.lr / 10;
  if (step < s.warmup) return (s.lr * (step + 1)) / s.warmup;
  if (step >= s.total) return minLr;
  const start = Math.max(s.warmup, s.decayFrom ?? 0);
  if (step < start) return s.lr;
  const progress = (step - start) / Math.max(1, s.total - start);
  return minLr + 0.5 * (s.lr - minLr) * (1 + Math.cos(Math.PI * progress));
}

/** Scales all gradients so their global L2 norm is at most maxNorm; returns the norm before clipping. */
export function clipGradNorm(params: Params, maxNorm: number): number {
  let ss = 0;
  for (const p of params.list()) { const g = p.grad; if (g) for (let i = 0; i < g.length; i++) ss += g[i] * g[i]; }
  const norm = Math.sqrt(ss);
  if (maxNorm > 0 && norm > maxNorm) {
    const s = maxNorm / (norm + 1e-6);
    for (const p of params.list()) { const g = p.grad; if (g) for (let i = 0; i < g.length; i++) g[i] *= s; }
  }
  return norm;
}
