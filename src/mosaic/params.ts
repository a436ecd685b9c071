// Memory Mosaic parameter table: names (as stored in model.safetensors), shapes, and the paper's
// initialisation (PAPERS.md §3, "Init" and the ×10 re-parameterisation). Training, inference and the
// float64 reference all read parameters by these names, so loading a checkpoint is a loop.
//
// Shape legend: V vocab, d width, H heads, hs = d/H head size, Np persistent slots per head.
// Scalars are stored raw (θ); the model reads them through the ×10 re-parameterisation:
//   leaky_beta θ → β = |10θ|         init θ = linspace(0.5, 5, H)/10
//   key_scale  θ → b = min(10θ, 5)   init θ = 0.1        (key multiplied by e^b; PM key by e^{2b})
//   value_scale/out_scale θ → γ = 10θ  init θ = −0.05    (value / PM output multiplied by e^γ)
//   value_mix  c (used as is)         init U(0, 1)

import type { MosaicConfig } from './config.js';
import { mosaicDims } from './config.js';
import { fillInit, type Init } from '../training/params.js';
import { Rng } from '../training/rng.js';

/** Multiplier of the re-parameterised scalars (the paper's exp_scaling). */
export const SCALAR_REPARAM = 10;

export type MosaicInit = Init | { kind: 'linspace'; from: number; to: number };

export interface ParamSpec {
  name: string;
  shape: number[];
  /** AdamW weight decay applies to tensors of rank >= 2 only (paper recipe). */
  decay: boolean;
  init: MosaicInit;
}

/** Every parameter of the model in a stable order, with the paper's initialisation: Linear
 *  N(0, 1/fan_in), c_proj additionally / sqrt(n_layer), embedding N(0, embedding_std²) (Library: 1),
 *  P_k and P_v N(0, 1/hs),
 *  LayerNorm weights 1, the ×10 scalars as in the header. */
export function mosaicParamSpecs(c: MosaicConfig): ParamSpec[] {
  const { d, H, hs, Np } = mosaicDims(c);
  const specs: ParamSpec[] = [{ name: 'wte.weight', shape: [c.vocab_size, d], decay: true, init: { kind: 'normal', std: c.embedding_std } }];
  const add = (name: string, shape: number[], init: MosaicInit) => specs.push({ name, shape, decay: shape.length >= 2, init });
  const proj = { kind: 'normal', std: 1 / Math.sqrt(d) } as const;
  const cproj = { kind: 'normal', std: 1 / Math.sqrt(d) / Math.sqrt(c.n_layer) } as const;
  const mem = { kind: 'normal', std: 1 / Math.sqrt(hs) } as const;
  const leak = { kind: 'linspace', from: c.leaky_beta_min / SCALAR_REPARAM, to: c.leaky_beta_max / SCALAR_REPARAM } as const;
  const keyScale = { kind: 'constant', value: 1 / SCALAR_REPARAM } as const;
  const valScale = { kind: 'constant', value: -0.5 / SCALAR_REPARAM } as const;
  for (let i = 0; i < c.n_layer; i++) {
    const p = `h.${i}.`;
    add(`${p}ln_1.weight`, [d], { kind: 'ones' });
    add(`${p}attn.k_proj.weight`, [d, d], proj);
    add(`${p}attn.v_proj.weight`, [d, d], proj);
    add(`${p}attn.leaky_beta`, [H], leak);
    add(`${p}attn.key_scale`, [H], keyScale);
    add(`${p}attn.value_mix`, [H], { kind: 'uniform', low: 0, high: 1 });
    add(`${p}attn.value_scale`, [H], valScale);
    add(`${p}attn.c_proj.weight`, [d, d], cproj);
    add(`${p}ln_2.weight`, [d], { kind: 'ones' });
    add(`${p}pmem.k_proj.weight`, [d, d], proj);
    add(`${p}pmem.leaky_beta`, [H], leak);
    add(`${p}pmem.key_scale`, [H], keyScale);
    add(`${p}pmem.P_k`, [H, Np, hs], mem);
    add(`${p}pmem.P_v`, [H, Np, hs], mem);
    add(`${p}pmem.out_scale`, [H], valScale);
    add(`${p}pmem.c_proj.weight`, [d, d], cproj);
  }
  add('ln_f.weight', [d], { kind: 'ones' });
  return specs;
}

export type MosaicParams = Map<string, Float32Array>;

/** Fills `out` by `init` from the engine's per-name random stream (Rng.derive(seed, name)), so a
 *  parameter map built here equals the trainable model's parameters for the same seed. */
export function fillMosaicInit(out: Float32Array, init: MosaicInit, seed: number, name: string): void {
  if (init.kind === 'linspace') {
    const n = out.length;
    for (let i = 0; i < n; i++) out[i] = n === 1 ? init.from : init.from + (init.to - init.from) * i / (n - 1);
  } else fillInit(out, init, Rng.derive(seed, name));
}

/** Freshly initialised parameters as plain arrays (for the reference and inference tests). */
export function initMosaicParams(c: MosaicConfig, seed = 1): MosaicParams {
  const out: MosaicParams = new Map();
  for (const s of mosaicParamSpecs(c)) {
    const t = new Float32Array(s.shape.reduce((a, b) => a * b, 1));
    fillMosaicInit(t, s.init, seed, s.name);
    out.set(s.name, t);
  }
  return out;
}

/** Checks that `params` holds every tensor of the config with the right element count. */
export function checkMosaicParams(c: MosaicConfig, params: ReadonlyMap<string, ArrayLike<number>>, source: string): void {
  for (const s of mosaicParamSpecs(c)) {
    const t = params.get(s.name);
    const n = s.shape.reduce((a, b) => a * b, 1);
    if (!t) throw new Error(`${source}: tensor ${s.name} [${s.shape.join(', ')}] is missing`);
    if (t.length !== n) throw new Error(`${source}: tensor ${s.name} has ${t.length} elements, expected [${s.shape.join(', ')}] = ${n}`);
  }
}

/** β = |10θ| (leak rate of the key average). */
export const leakRate = (theta: number): number => Math.abs(SCALAR_REPARAM * theta);
/** b = min(10θ, max) (log of the key scale). */
export const keyLogScale = (theta: number, max: number): number => Math.min(SCALAR_REPARAM * theta, max);
/** γ = 10θ (log of the value / PM output scale). */
export const valueLogScale = (theta: number): number => SCALAR_REPARAM * theta;
