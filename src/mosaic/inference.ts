// Memory Mosaic inference as a LanguageModel (src/models/types.ts): forward(tokens, cache) → logits,
// token by token, through Tessera's kernels on one arena (mosaic checkpoints are small; the weights,
// the cache and the scratch share it).
//
// The cache (per layer) holds, for every position s < length:
//   K    (cap, d)  contextual keys k_s (already unit-norm × e^b)
//   V    (cap, d)  contextual values v_s; the NEWEST slot s = length−1 is pending: v_s needs x_{s+1}
//   Wv   (cap, d)  raw W_v x_s, kept so the pending value can be completed (and rebuilt after truncate)
//   Lc, Lp (cap, d) the CM and PM leaky-average states k̃_s (so truncate(n) can resume from s = n−1)
// Persistent memory needs no cache. When token t arrives: v_{t−1} = e^γ norm((1−c) W_v x_t + c W_v x_{t−1})
// is completed, then y_t reads rows s ≤ t−1 with the attention kernel (qPos = t−1, scale 1).
// Logits are LN_f(x)·Embᵀ, × 1/√d when config.logits_inv_sqrt_d; attn_dropout is a training setting, ignored here.
// With `attention` (an attention backend and its pool) the read-out goes through that backend instead
// (./backend-readout.ts: dense, topk, magicpig, streaming …); prompt tokens (phase 'prefill') are read
// exactly by every backend, generated ones (phase 'decode') as the backend reads them.
// Shape legend: d width, H heads, hs head size, Np persistent slots, V vocab, cap cache capacity.

import type { BatchItem, ForwardOptions, LanguageModel, ModelCache } from '../models/types.js';
import { attentionStateBytes, type Ptr } from '../kernels/types.js';
import { Arena, planArena } from '../runtime/arena.js';
import type { KernelKind } from '../runtime/kernel-factory.js';
import type { ThreadPool } from '../runtime/pool.js';
import type { MosaicConfig } from './config.js';
import { mosaicDims, mosaicLogitScale } from './config.js';
import { checkMosaicParams, keyLogScale, leakRate, mosaicParamSpecs, valueLogScale } from './params.js';
import { NORM_EPS } from './reference.js';
import { BackendReadout, type MosaicAttention } from './backend-readout.js';

export interface MosaicInferenceOptions {
  /** Cache capacity in tokens (default block_size; the model itself accepts any length). */
  contextLength?: number;
  kernels?: KernelKind;
  /** Read the contextual memory through this attention backend (default: the exact read-out). */
  attention?: MosaicAttention;
  /** dispose() also disposes attention.pool (the loader created it for this model). */
  ownPool?: boolean;
}

interface LayerPtrs {
  ln1: Ptr; wk: Ptr; wv: Ptr; cproj: Ptr; ln2: Ptr; pwk: Ptr; pk: Ptr; pvT: Ptr; pcproj: Ptr;
  /** Per-head constants: leak a = e^{−β}, key scale e^b, value mix c, value scale e^γ; PM leak, e^{2b}, e^γ. */
  a: Float64Array; kscale: Float64Array; c: Float64Array; vscale: Float64Array;
  pa: Float64Array; pkscale: Float64Array; oscale: Float64Array;
}

class MosaicCache implements ModelCache {
  length = 0;
  released = false;
  constructor(readonly capacity: number, readonly layers: { K: Ptr; V: Ptr; Wv: Ptr; Lc: Ptr; Lp: Ptr }[], readonly owner: MosaicInference) {}
  truncate(n: number): void {
    if (!Number.isInteger(n) || n < 0) throw new RangeError(`MosaicCache.truncate: n must be a non-negative integer, got ${n}`);
    if (this.released) throw new Error('MosaicCache.truncate: this cache has been released');
    this.length = Math.min(this.length, n);                 // slot n−1 becomes pending again: Wv[n−1] is kept
    this.owner.truncateReadouts(this.length);
  }
  fork(): ModelCache {
    throw new Error('MosaicCache.fork: a Memory Mosaic model holds one sequence at a time; truncate this cache instead');
  }
  release(): void {
    if (this.released) return;
    this.released = true;
    this.owner.releaseCache(this);
  }
}

export class MosaicInference implements LanguageModel {
  readonly vocabSize: number;
  readonly contextLength: number;
  readonly config: MosaicConfig;
  private readonly arena: Arena;
  private readonly wte: Ptr;
  private readonly lnf: Ptr;
  private readonly layers: LayerPtrs[] = [];
  private readonly s: Record<'x' | 'a' | 'k' | 'v' | 'y' | 'o' | 'sc' | 'logits' | 'pos' | 'attState', Ptr>;
  /** The one cache's memory (allocated at the first createCache) and whether a live cache holds it. */
  private store: MosaicCache['layers'] | undefined;
  private live: MosaicCache | undefined;
  private disposed = false;
  /** One sequence at a time (the cache is sized into the arena once). */
  readonly parallel = 1;
  /** Per layer, the attention backend reading the contextual memory (absent: the exact read-out). */
  private readonly readouts: BackendReadout[] | undefined;
  private readonly ownPool: ThreadPool | undefined;

  constructor(config: MosaicConfig, params: ReadonlyMap<string, Float32Array>, opts: MosaicInferenceOptions = {}) {
    checkMosaicParams(config, params, 'MosaicInference');
    const { d, H, Np } = mosaicDims(config);
    this.config = config;
    this.vocabSize = config.vocab_size;
    this.contextLength = opts.contextLength ?? config.block_size;
    if (!Number.isInteger(this.contextLength) || this.contextLength < 1) throw new RangeError(`MosaicInference: contextLength must be a positive integer, got ${opts.contextLength}`);
    const weights = mosaicParamSpecs(config).filter((s) => s.shape.length >= 2 || s.name.includes('ln_'));
    const sizes = [...weights.map((s) => 4 * s.shape.reduce((a, b) => a * b, 1)), ...Array(9).fill(4 * Math.max(d, Np, config.vocab_size)),
      attentionStateBytes(1, H, H, d / H, this.contextLength), ...Array(5 * config.n_layer).fill(4 * this.contextLength * d)];
    this.arena = Arena.create(planArena(sizes), { kernels: opts.kernels ?? 'wasm', label: 'memory mosaic' });
    const put = (name: string, transposeRows?: [number, number, number]): Ptr => {
      const src = params.get(name)!;
      const ptr = this.arena.alloc(src.length * 4);
      const dst = this.arena.f32(ptr, src.length);
      if (!transposeRows) dst.set(src);
      else {                                                  // (H, Np, hs) → per head (hs, Np)
        const [nh, rows, cols] = transposeRows;
        for (let h = 0; h < nh; h++) for (let r = 0; r < rows; r++) for (let j = 0; j < cols; j++) dst[h * rows * cols + j * rows + r] = src[h * rows * cols + r * cols + j];
      }
      return ptr;
    };
    const hs = d / H;
    const per = (name: string, f: (x: number) => number) => Float64Array.from(params.get(name)!, f);
    this.wte = put('wte.weight');
    for (let i = 0; i < config.n_layer; i++) {
      const p = `h.${i}.`;
      this.layers.push({
        ln1: put(`${p}ln_1.weight`), wk: put(`${p}attn.k_proj.weight`), wv: put(`${p}attn.v_proj.weight`), cproj: put(`${p}attn.c_proj.weight`),
        ln2: put(`${p}ln_2.weight`), pwk: put(`${p}pmem.k_proj.weight`), pk: put(`${p}pmem.P_k`), pvT: put(`${p}pmem.P_v`, [H, Np, hs]),
        pcproj: put(`${p}pmem.c_proj.weight`),
        a: per(`${p}attn.leaky_beta`, (t) => Math.exp(-leakRate(t))),
        kscale: per(`${p}attn.key_scale`, (t) => Math.exp(keyLogScale(t, config.key_scale_max))),
        c: per(`${p}attn.value_mix`, (t) => t),
        vscale: per(`${p}attn.value_scale`, (t) => Math.exp(valueLogScale(t))),
        pa: per(`${p}pmem.leaky_beta`, (t) => Math.exp(-leakRate(t))),
        pkscale: per(`${p}pmem.key_scale`, (t) => Math.exp(2 * keyLogScale(t, config.key_scale_max))),
        oscale: per(`${p}pmem.out_scale`, (t) => Math.exp(valueLogScale(t))),
      });
    }
    this.lnf = put('ln_f.weight');
    const scratch = () => this.arena.alloc(4 * Math.max(d, Np, config.vocab_size));
    this.s = { x: scratch(), a: scratch(), k: scratch(), v: scratch(), y: scratch(), o: scratch(), sc: scratch(), logits: scratch(), pos: scratch(),
      attState: this.arena.alloc(attentionStateBytes(1, H, H, hs, this.contextLength)) };
    const att = opts.attention;
    if (att) {
      if (att.pool.kernelKind !== this.arena.kernelKind) throw new RangeError(`MosaicInference: the attention pool runs '${att.pool.kernelKind}' kernels, the model '${this.arena.kernelKind}'; create the pool with the model's kernels`);
      this.readouts = this.layers.map((_, l) => new BackendReadout(att, l, config.n_layer, H, hs, this.contextLength));
      if (opts.ownPool) this.ownPool = att.pool;
    }
  }

  /** The stored rows of a cache cut back to n positions: rows ≥ n − 1 are stored again as they complete. */
  truncateReadouts(n: number): void { this.readouts?.forEach((r) => r.truncate(Math.max(0, n - 1))); }

  /** The model's one cache (its memory is sized into the arena once): release it before asking
   *  for another. */
  createCache(capacity?: number): ModelCache {
    if (this.disposed) throw new Error('MosaicInference: the model was disposed');
    if (this.live !== undefined && !this.live.released) throw new Error('MosaicInference.createCache: this model holds one sequence at a time; release the other cache first (cache.release())');
    if (capacity !== undefined && (!Number.isInteger(capacity) || capacity < 1 || capacity > this.contextLength)) {
      throw new RangeError(`MosaicInference.createCache: capacity must be an integer in [1, ${this.contextLength}], got ${capacity}`);
    }
    const bytes = 4 * this.contextLength * this.config.n_embd;
    this.store ??= this.layers.map(() => ({ K: this.arena.alloc(bytes), V: this.arena.alloc(bytes), Wv: this.arena.alloc(bytes), Lc: this.arena.alloc(bytes), Lp: this.arena.alloc(bytes) }));
    this.live = new MosaicCache(capacity ?? this.contextLength, this.store, this);
    this.readouts?.forEach((r) => r.reset());
    return this.live;
  }

  releaseCache(cache: MosaicCache): void { if (this.live === cache) this.live = undefined; }

  /** The items run one after another (a mosaic has one sequence at a time, so a batch holds one). */
  forwardBatch(batch: readonly BatchItem[]): Float32Array[] {
    return batch.map((b) => {
      const out = this.forward(b.tokens, b.cache, { logits: b.logits === 'none' ? 'last' : b.logits, phase: b.phase });
      return b.logits === 'none' ? new Float32Array(0) : out;
    });
  }

  forward(tokens: ArrayLike<number>, cache: ModelCache, opts: ForwardOptions = {}): Float32Array {
    if (this.disposed) throw new Error('MosaicInference: the model was disposed');
    if (!(cache instanceof MosaicCache) || cache.owner !== this) throw new Error('MosaicInference.forward: the cache was not created by this model');
    if (cache.released) throw new Error('MosaicInference.forward: this cache has been released');
    const n = tokens.length, V = this.vocabSize;
    if (n === 0) throw new RangeError('MosaicInference.forward: no tokens');
    if (cache.length + n > cache.capacity) throw new RangeError(`MosaicInference.forward: ${cache.length} + ${n} tokens exceed the cache capacity ${cache.capacity}`);
    for (let i = 0; i < n; i++) {
      const id = tokens[i];
      if (!Number.isInteger(id) || id < 0 || id >= V) throw new RangeError(`MosaicInference.forward: token ${id} at ${i} is outside [0, ${V})`);
    }
    const all = opts.logits === 'all';
    const out = new Float32Array(all ? n * V : V);
    const phase = opts.phase ?? (n > 1 ? 'prefill' : 'decode');
    for (let i = 0; i < n; i++) {
      const logits = this.step(tokens[i], cache.length, cache, phase);
      cache.length++;
      if (all) out.set(logits, i * V);
      else if (i === n - 1) out.set(logits);
    }
    return out;
  }

  /** Runs token `id` at position t through every layer; returns a view of its logits. */
  private step(id: number, t: number, cache: MosaicCache, phase: 'prefill' | 'decode'): Float32Array {
    const c = this.config, { d, H, hs, Np } = mosaicDims(c), K = this.arena.kernels, s = this.s;
    const f = (p: Ptr, len = d) => this.arena.f32(p, len);
    const x = f(s.x);
    x.set(f(this.wte + id * d * 4));
    for (let l = 0; l < this.layers.length; l++) {
      const w = this.layers[l], cl = cache.layers[l];
      // Contextual memory
      K.layerNorm(s.x, w.ln1, 0, s.a, 1, d, c.layer_norm_eps);
      K.matmul('f32', w.wk, s.a, s.k, 1, d, d, 0, d);                             // W_k a (d)
      const kt = this.leaky(s.k, cl.Lc, t, w.a);                                  // k̃_t (d), stored in Lc[t]
      const Kt = f(cl.K + t * d * 4);
      Kt.set(kt);
      unitNorm(Kt, w.kscale, H, hs);
      K.matmul('f32', w.wv, s.a, cl.Wv + t * d * 4, 1, d, d, 0, d);               // W_v a_t (d), pending
      if (t > 0) this.completeValue(cl, t - 1, f(cl.Wv + t * d * 4), w);          // v_{t−1} now that x_t is known
      const readout = this.readouts?.[l];
      if (readout) {
        if (t > 0) readout.store(t - 1, f(cl.K + (t - 1) * d * 4), f(cl.V + (t - 1) * d * 4));
        readout.read(t, Kt, f(s.y), phase);
      } else {
        this.arena.i32(s.pos, 1)[0] = t - 1;                                      // read rows s ≤ t−1 (none at t = 0)
        K.attention(cl.K + t * d * 4, s.pos, cl.K, cl.V, s.y, 'f32', 1, t, H, H, hs, 1, 0, 0, s.attState, 0, H);
      }
      K.matmul('f32', w.cproj, s.y, s.o, 1, d, d, 0, d);
      K.add(s.x, s.o, d);
      // Persistent memory
      K.layerNorm(s.x, w.ln2, 0, s.a, 1, d, c.layer_norm_eps);
      K.matmul('f32', w.pwk, s.a, s.k, 1, d, d, 0, d);
      const pk = this.leaky(s.k, cl.Lp, t, w.pa);
      f(s.k).set(pk);
      unitNorm(f(s.k), w.pkscale, H, hs);
      for (let h = 0; h < H; h++) {
        K.matmul('f32', w.pk + h * Np * hs * 4, s.k + h * hs * 4, s.sc, 1, Np, hs, 0, Np);   // k_h · P_kᵀ (Np)
        K.softmax(s.sc, 1, Np);
        K.matmul('f32', w.pvT + h * Np * hs * 4, s.sc, s.y + h * hs * 4, 1, hs, Np, 0, hs);  // p · P_v (hs)
        const yh = f(s.y + h * hs * 4, hs);
        for (let j = 0; j < hs; j++) yh[j] *= w.oscale[h];
      }
      K.matmul('f32', w.pcproj, s.y, s.o, 1, d, d, 0, d);
      K.add(s.x, s.o, d);
    }
    K.layerNorm(s.x, this.lnf, 0, s.a, 1, d, c.layer_norm_eps);
    K.matmul('f32', this.wte, s.a, s.logits, 1, c.vocab_size, d, 0, c.vocab_size);
    const logits = f(s.logits, c.vocab_size);
    const g = mosaicLogitScale(c);
    if (g !== 1) for (let i = 0; i < logits.length; i++) logits[i] *= g;
    return logits;
  }

  /** k̃_t = u + a_h k̃_{t−1} per head; stored in state row t; returns that row. */
  private leaky(u: Ptr, state: Ptr, t: number, a: Float64Array): Float32Array {
    const { d, H, hs } = mosaicDims(this.config);
    const cur = this.arena.f32(state + t * d * 4, d), src = this.arena.f32(u, d);
    const prev = t > 0 ? this.arena.f32(state + (t - 1) * d * 4, d) : null;
    for (let h = 0; h < H; h++) for (let j = h * hs; j < (h + 1) * hs; j++) cur[j] = src[j] + (prev ? a[h] * prev[j] : 0);
    return cur;
  }

  /** V[s] = e^γ norm((1 − c) W_v x_{s+1} + c W_v x_s). */
  private completeValue(cl: { V: Ptr; Wv: Ptr }, s: number, next: Float32Array, w: LayerPtrs): void {
    const { d, H, hs } = mosaicDims(this.config);
    const v = this.arena.f32(cl.V + s * d * 4, d), cur = this.arena.f32(cl.Wv + s * d * 4, d);
    for (let h = 0; h < H; h++) for (let j = h * hs; j < (h + 1) * hs; j++) v[j] = (1 - w.c[h]) * next[j] + w.c[h] * cur[j];
    unitNorm(v, w.vscale, H, hs);
  }

  dispose(): void {
    if (!this.disposed && this.ownPool) this.ownPool.dispose();
    this.disposed = true;
  }
}

/** Per-head u ← scale_h · u / (|u| + ε), in place. */
function unitNorm(u: Float32Array, scale: Float64Array, H: number, hs: number): void {
  for (let h = 0; h < H; h++) {
    let n2 = 0;
    for (let j = h * hs; j < (h + 1) * hs; j++) n2 += u[j] * u[j];
    const g = scale[h] / (Math.sqrt(n2) + NORM_EPS);
    for (let j = h * hs; j < (h + 1) * hs; j++) u[j] *= g;
  }
}
