// The trainable Memory Mosaic language model (PAPERS.md §3) on the training engine's tape.
// Parameters are created from mosaicParamSpecs (names = safetensors names, paper initialisation);
// forward() builds the graph for a batch of B sequences of T tokens:
//
//   x = wte[tokens]                                         (B, T, d), no positional embedding
//   per block:  x += dropout(CM(LN1(x)) · c_projᵀ);  x += dropout(PM(LN2(x)) · c_projᵀ)
//   logits = LN_f(x) · wteᵀ [/ sqrt(d)]                     (B, T, V), tied embedding; / sqrt(d) if logits_inv_sqrt_d
// Training only: dropout (config.dropout) on each residual branch and (config.attn_dropout) on the
// softmax weights of both memories, drawn from opts.rng.
//
// CM: k = e^b·norm(leaky_β(W_k a)); v = e^γ·norm((1−c) W_v a_{t+1} + c W_v a_t); y_t = Σ_{s<t} softmax(k_t·k_s) v_s
// PM: k = e^{2b}·norm(leaky_β(W_k m)); y = e^γ softmax(k·P_kᵀ) P_v (per head, batched over heads)
// Scalars through the ×10 re-parameterisation: β = |10θ|, b = min(10θ, 5), γ = 10θ; c used as is.

import type { Tape } from '../training/autograd/tape.js';
import type { Tensor } from '../training/autograd/tensor.js';
import { Params } from '../training/params.js';
import type { TrainMemory } from '../training/memory.js';
import { Rng } from '../training/rng.js';
import { abs, add, minimum, scale } from '../training/autograd/ops-basic.js';
import { linear, matmul } from '../training/autograd/ops-linear.js';
import { crossEntropy, dropout, layerNorm, softmax } from '../training/autograd/ops-nn.js';
import { embedding } from '../training/autograd/ops-shape.js';
import type { MosaicConfig } from './config.js';
import { mosaicDims, mosaicLogitScale } from './config.js';
import { fillMosaicInit, mosaicParamSpecs, SCALAR_REPARAM } from './params.js';
import { headScale, leakyAverage, mergeHeads, splitHeads, unitNormScale, valueLookAhead } from './ops.js';
import { causalReadout, type ScoreDropout } from './readout.js';

export interface MosaicForwardOptions {
  /** Random stream for dropout masks (required when the tape is training and dropout or attn_dropout > 0). */
  rng?: Rng;
}

export class MosaicTrainModel {
  readonly config: MosaicConfig;
  readonly params: Params;

  constructor(mem: TrainMemory, config: MosaicConfig, seed = 1) {
    this.config = config;
    this.params = new Params(mem, seed);
    for (const s of mosaicParamSpecs(config)) {
      const t = this.params.create(s.name, s.shape, s.init.kind === 'linspace' ? { kind: 'zeros' } : s.init);
      if (s.init.kind === 'linspace') fillMosaicInit(t.data, s.init, seed, s.name);
    }
  }

  /** Names of parameters that AdamW decays (rank >= 2: projections, embedding, P_k, P_v). */
  decayedNames(): string[] {
    return mosaicParamSpecs(this.config).filter((s) => s.decay).map((s) => s.name);
  }

  private p(name: string): Tensor { return this.params.get(name); }

  /** Attention-score dropout for this forward: none at inference (tape not training) or when 0. */
  private scoreDropout(tape: Tape, rng: Rng | undefined): ScoreDropout | undefined {
    const p = this.config.attn_dropout;
    if (p === 0 || !tape.training) return undefined;
    if (!rng) throw new Error('MosaicTrainModel: attn_dropout > 0 in training mode needs opts.rng');
    return { p, rng };
  }

  /** Keys of a CM (pow 1) or PM (pow 2) memory: e^{pow·b} · norm(leaky_β(W_k x)). */
  private keys(tape: Tape, x: Tensor, pre: string, pow: number): Tensor {
    const c = this.config;
    const beta = abs(tape, scale(tape, this.p(`${pre}.leaky_beta`), SCALAR_REPARAM));          // (H) β = |10θ|
    let b = minimum(tape, scale(tape, this.p(`${pre}.key_scale`), SCALAR_REPARAM), c.key_scale_max); // (H) b
    if (pow !== 1) b = scale(tape, b, pow);
    const k = leakyAverage(tape, linear(tape, x, this.p(`${pre}.k_proj.weight`)), beta);        // (B, T, d)
    return unitNormScale(tape, k, b);                                                           // (B, T, d)
  }

  /** Contextual memory on the normalised input a (B, T, d), before c_proj. */
  contextMemory(tape: Tape, a: Tensor, layer: number, rng?: Rng): Tensor {
    const pre = `h.${layer}.attn`;
    const k = this.keys(tape, a, pre, 1);                                                       // (B, T, d)
    const w = linear(tape, a, this.p(`${pre}.v_proj.weight`));                                 // (B, T, d)
    const g = scale(tape, this.p(`${pre}.value_scale`), SCALAR_REPARAM);                        // (H) γ
    const v = unitNormScale(tape, valueLookAhead(tape, w, this.p(`${pre}.value_mix`)), g);       // (B, T, d)
    return causalReadout(tape, k, v, this.config.n_head, this.scoreDropout(tape, rng));        // (B, T, d)
  }

  /** Persistent memory on the normalised input m (B, T, d), before c_proj. */
  persistentMemory(tape: Tape, m: Tensor, layer: number, rng?: Rng): Tensor {
    const pre = `h.${layer}.pmem`;
    const { H } = mosaicDims(this.config);
    const k = splitHeads(tape, this.keys(tape, m, pre, 2), H);                                  // (H, N, hs)
    let att = softmax(tape, matmul(tape, k, this.p(`${pre}.P_k`), { transB: true }));           // (H, N, Np)
    const drop = this.scoreDropout(tape, rng);
    if (drop) att = dropout(tape, att, drop.p, drop.rng);
    const y = mergeHeads(tape, matmul(tape, att, this.p(`${pre}.P_v`)), m.shape);               // (B, T, d)
    return headScale(tape, y, scale(tape, this.p(`${pre}.out_scale`), SCALAR_REPARAM));         // (B, T, d)
  }

  /** Final hidden states LN_f(x) (B, T, d) for B sequences of T tokens (row-major tokens). */
  hidden(tape: Tape, tokens: ArrayLike<number>, B: number, T: number, opts: MosaicForwardOptions = {}): Tensor {
    const c = this.config;
    const drop = (x: Tensor): Tensor => {
      if (c.dropout === 0 || !tape.training) return x;
      if (!opts.rng) throw new Error('MosaicTrainModel: dropout > 0 in training mode needs opts.rng');
      return dropout(tape, x, c.dropout, opts.rng);
    };
    let x = embedding(tape, this.p('wte.weight'), tokens, [B, T]);                               // (B, T, d)
    for (let i = 0; i < c.n_layer; i++) {
      const a = layerNorm(tape, x, this.p(`h.${i}.ln_1.weight`), null, c.layer_norm_eps);
      x = add(tape, x, drop(linear(tape, this.contextMemory(tape, a, i, opts.rng), this.p(`h.${i}.attn.c_proj.weight`))));
      const m = layerNorm(tape, x, this.p(`h.${i}.ln_2.weight`), null, c.layer_norm_eps);
      x = add(tape, x, drop(linear(tape, this.persistentMemory(tape, m, i, opts.rng), this.p(`h.${i}.pmem.c_proj.weight`))));
    }
    return layerNorm(tape, x, this.p('ln_f.weight'), null, c.layer_norm_eps);                  // (B, T, d)
  }

  /** Logits (B, T, V) = LN_f(x) · wteᵀ, / sqrt(d) when config.logits_inv_sqrt_d. */
  forward(tape: Tape, tokens: ArrayLike<number>, B: number, T: number, opts: MosaicForwardOptions = {}): Tensor {
    const logits = linear(tape, this.hidden(tape, tokens, B, T, opts), this.p('wte.weight'));
    const g = mosaicLogitScale(this.config);
    return g === 1 ? logits : scale(tape, logits, g);
  }

  /** Mean next-token cross-entropy; targets (B·T), −100 = ignored. perRow receives per-position losses. */
  loss(tape: Tape, tokens: ArrayLike<number>, targets: ArrayLike<number>, B: number, T: number,
       opts: MosaicForwardOptions & { perRow?: Float32Array } = {}): Tensor {
    return crossEntropy(tape, this.forward(tape, tokens, B, T, opts), targets, { perRow: opts.perRow });
  }

  /** Current parameters as plain arrays keyed by name (for checkpoints and the inference model). */
  snapshot(): Map<string, Float32Array> {
    const out = new Map<string, Float32Array>();
    for (const t of this.params.list()) out.set(t.name, t.toArray());
    return out;
  }
}
