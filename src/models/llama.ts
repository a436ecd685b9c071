// One implementation of the Llama family: Llama 2/3/3.1/3.2, Mistral, Qwen2/2.5 (q/k/v biases),
// SmolLM2 (tied embeddings), with grouped-query attention.
//
//   x = embed[tokens]
//   per layer:  h = x + o_proj(attn(rope(q(norm1 x)), rope(k(norm1 x)), v(norm1 x)))
//               x = h + down(silu(gate(norm2 h)) ⊙ up(norm2 h))
//   logits = lm_head(norm x)
//
// Shape legend: n = tokens in the current chunk (≤ C, the chunk capacity), d = hidden size,
// qDim = H·D, kvDim = Hkv·D, F = intermediate size, V = vocab.
// All buffers are allocated once, in the constructor; forward() allocates no wasm memory.

import type { Ptr } from '../kernels/types.js';
import { weightBytes } from '../kernels/types.js';
import type { Arena } from '../runtime/arena.js';
import type { ThreadPool } from '../runtime/pool.js';
import type { AttentionBackend } from '../attention/create.js';
import type { AttentionPhase, LayerAttention } from '../attention/types.js';
import type { CacheDType } from '../kernels/types.js';
import { derive, type LlamaConfig } from './config.js';
import type { ForwardOptions, LanguageModel, ModelCache } from './types.js';
import type { Mat, ModelWeights } from './weights.js';

const ALIGN = 64;
const q8Bytes = (count: number) => Math.ceil(count / 32) * 34;

/** Scratch bytes of one layer arena for a chunk capacity C (must match LayerScratch allocation). */
export function layerScratchBytes(c: LlamaConfig, C: number): number {
  const { qDim, kvDim, headDim } = derive(c);
  const d = c.hidden_size, F = c.intermediate_size;
  const f32 = [C * d, C * d, C * qDim, C * kvDim, C * kvDim, C * qDim, C * d, C * F, C * F, C, headDim / 2,
    C * (qDim + 2 * kvDim), C * 2 * F];
  return f32.reduce((s, n) => s + n * 4 + ALIGN, 0) + q8Bytes(C * Math.max(d, qDim, F)) + ALIGN;
}

/** Scratch bytes of the head arena for a chunk capacity C. */
export function headScratchBytes(c: LlamaConfig, C: number): number {
  const d = c.hidden_size;
  return (C * d * 4 + ALIGN) * 2 + q8Bytes(C * d) + ALIGN + C * c.vocab_size * 4 + ALIGN;
}

interface LayerScratch {
  x: Ptr; xn: Ptr;               // (C, d)
  q: Ptr; k: Ptr; v: Ptr;        // (C, qDim) (C, kvDim) (C, kvDim)
  att: Ptr;                      // (C, qDim)
  o: Ptr;                        // (C, d)
  gate: Ptr; up: Ptr;            // (C, F)
  pos: Ptr;                      // (C) i32
  invFreq: Ptr;                  // (D/2)
  xq: Ptr;                       // q8_0 blocks of the current matmul input
  qkv: Ptr;                      // (C, qDim + 2·kvDim) output of the stacked q|k|v matmul
  gateUp: Ptr;                   // (C, 2F) output of the stacked gate|up matmul
}

class LlamaCache implements ModelCache {
  length = 0;
  constructor(readonly capacity: number, readonly layers: LayerAttention[], readonly owner: LlamaModel, readonly generation: number) {}
  truncate(n: number): void {
    if (!Number.isInteger(n) || n < 0) throw new RangeError(`truncate: n must be a non-negative integer, got ${n}`);
    // the layers belong to the newest cache: a stale one must not reset them
    if (!this.owner.isCurrent(this)) throw new Error('truncate: this cache is stale (a newer cache was created since)');
    if (n >= this.length) return;
    for (const l of this.layers) l.truncate(n);
    this.length = n;
  }
}

export interface LlamaModelOptions {
  /** KV-cache capacity in tokens. */
  capacity: number;
  /** Tokens processed per internal chunk (longer inputs are split). */
  chunk: number;
  cacheDType: CacheDType;
  invFreq: Float32Array;
  /** Attention backend of each layer (dense, or a sparse one behind the same interface). */
  attention: (layer: number) => AttentionBackend;
}

export class LlamaModel implements LanguageModel {
  readonly vocabSize: number;
  readonly contextLength: number;
  private readonly dims: ReturnType<typeof derive>;
  private readonly scratch: LayerScratch[];
  private readonly attention: LayerAttention[];
  private readonly headX: Ptr;       // (C, d)  residual stream
  private readonly headXn: Ptr;      // (C, d)
  private readonly headXq: Ptr;      // q8_0 of (C, d)
  private readonly headLogits: Ptr;  // (C, V)
  private readonly last: Float32Array;
  private all = new Float32Array(0);
  private cacheGeneration = 0;
  /** Which input the q8_0 scratch currently holds (0: none); see matmul. */
  private xqHolds: Ptr = 0;
  private disposed = false;

  constructor(readonly config: LlamaConfig, private readonly w: ModelWeights, private readonly pool: ThreadPool,
              private readonly opts: LlamaModelOptions) {
    this.vocabSize = config.vocab_size;
    this.contextLength = opts.capacity;
    this.dims = derive(config);
    const { qDim, kvDim, headDim } = this.dims;
    const d = config.hidden_size, F = config.intermediate_size, C = opts.chunk;
    this.scratch = w.layers.map((L) => {
      const a = L.arena;
      const s: LayerScratch = {
        x: a.alloc(C * d * 4), xn: a.alloc(C * d * 4), q: a.alloc(C * qDim * 4), k: a.alloc(C * kvDim * 4),
        v: a.alloc(C * kvDim * 4), att: a.alloc(C * qDim * 4), o: a.alloc(C * d * 4), gate: a.alloc(C * F * 4),
        up: a.alloc(C * F * 4), pos: a.alloc(C * 4), invFreq: a.alloc((headDim / 2) * 4),
        xq: a.alloc(q8Bytes(C * Math.max(d, qDim, F))),
        qkv: a.alloc(C * (qDim + 2 * kvDim) * 4), gateUp: a.alloc(C * 2 * F * 4),
      };
      a.f32(s.invFreq, headDim / 2).set(opts.invFreq);
      return s;
    });
    this.attention = w.layers.map((L, layer) => opts.attention(layer).create(L.arena, pool, {
      layer, layers: w.layers.length, heads: config.num_attention_heads, kvHeads: config.num_key_value_heads,
      headDim, capacity: opts.capacity, dtype: opts.cacheDType,
    }));
    const h = w.head;
    this.headX = h.alloc(C * d * 4);
    this.headXn = h.alloc(C * d * 4);
    this.headXq = h.alloc(q8Bytes(C * d));
    this.headLogits = h.alloc(C * config.vocab_size * 4);
    this.last = new Float32Array(config.vocab_size);
  }

  /** Whether `cache` is the newest cache of this model (the one its KV store holds). */
  isCurrent(cache: LlamaCache): boolean { return cache.generation === this.cacheGeneration; }

  /** A fresh, empty cache. The model holds one KV store: creating a cache invalidates earlier ones. */
  createCache(capacity?: number): ModelCache {
    if (capacity !== undefined && capacity > this.opts.capacity) {
      throw new RangeError(`createCache: capacity ${capacity} exceeds the ${this.opts.capacity} tokens this model was loaded with (load with a larger contextLength)`);
    }
    this.cacheGeneration++;
    // the layers' backends keep per-prompt state (MagicPIG's tables, sampling streams): a new cache starts them afresh
    for (const l of this.attention) l.truncate(0);
    return new LlamaCache(capacity ?? this.opts.capacity, this.attention, this, this.cacheGeneration);
  }

  forward(tokens: ArrayLike<number>, cache: ModelCache, opts: ForwardOptions = {}): Float32Array {
    if (this.disposed) throw new Error('forward: the model has been disposed');
    if (!(cache instanceof LlamaCache) || cache.owner !== this) throw new Error('forward: cache was not created by this model');
    if (cache.generation !== this.cacheGeneration) throw new Error('forward: this cache is stale (a newer cache was created since)');
    const n = tokens.length;
    if (n === 0) throw new RangeError('forward: no tokens');
    if (cache.length + n > cache.capacity) {
      throw new RangeError(`forward: ${cache.length} cached + ${n} new tokens exceed the context length of ${cache.capacity}`);
    }
    for (let i = 0; i < n; i++) {
      const t = tokens[i];
      if (!Number.isInteger(t) || t < 0 || t >= this.vocabSize) throw new RangeError(`forward: token ${t} at index ${i} is outside the vocabulary [0, ${this.vocabSize})`);
    }
    const all = opts.logits === 'all';
    const V = this.vocabSize;
    if (all && this.all.length < n * V) this.all = new Float32Array(n * V);
    const C = this.opts.chunk;
    for (let start = 0; start < n; start += C) {
      const m = Math.min(C, n - start);
      const p0 = cache.length;
      this.embed(tokens, start, m);
      const phase = opts.phase ?? (n > 1 ? 'prefill' : 'decode');
      for (let l = 0; l < this.w.layers.length; l++) this.layer(l, p0, m, phase);
      cache.length = p0 + m;
      if (all) {
        this.logits(0, m);
        this.all.set(this.w.head.f32(this.headLogits, m * V), start * V);
      } else if (start + m === n) {
        this.logits(m - 1, 1);
        this.last.set(this.w.head.f32(this.headLogits, V));
      }
    }
    return all ? this.all.subarray(0, n * V) : this.last;
  }

  dispose(): void {
    this.disposed = true;
    this.pool.dispose();
  }

  // x (m, d) = embed[tokens[start … start+m)]
  private embed(tokens: ArrayLike<number>, start: number, m: number): void {
    const { head, embed } = this.w;
    const d = this.config.hidden_size;
    const rowBytes = weightBytes(embed.dtype, d);
    for (let i = 0; i < m; i++) {
      head.kernels.toF32(embed.dtype, embed.ptr + tokens[start + i] * rowBytes, this.headX + i * d * 4, d);
    }
  }

  // y (n, rows) = x (n, cols) · Wᵀ; `xq` receives the q8_0 form of x when W is quantised, once per
  // input: matmuls that share an input (q/k/v, gate/up) reuse it until newInput() is called.
  private newInput(): void { this.xqHolds = 0; }

  private matmul(a: Arena, W: Mat, x: Ptr, xq: Ptr, y: Ptr, n: number): void {
    if (W.dtype === 'q8_0' || W.dtype === 'q4_0') {
      if (this.xqHolds !== x) { a.kernels.quantizeQ8(x, xq, n * W.cols); this.xqHolds = x; }
      this.pool.matmul(a, W.dtype, W.ptr, xq, y, n, W.rows, W.cols);
    } else {
      this.pool.matmul(a, W.dtype, W.ptr, x, y, n, W.rows, W.cols);
    }
  }

  private layer(l: number, p0: number, n: number, phase: AttentionPhase): void {
    const L = this.w.layers[l], s = this.scratch[l], a = L.arena, k = a.kernels;
    const c = this.config, d = c.hidden_size, { qDim, kvDim, headDim } = this.dims;
    const style = c.rope_style ?? 'neox';

    a.f32(s.x, n * d).set(this.w.head.f32(this.headX, n * d));               // residual in
    const pos = a.i32(s.pos, n);
    for (let i = 0; i < n; i++) pos[i] = p0 + i;

    // attention block
    k.rmsNorm(s.x, L.attnNorm, s.xn, n, d, c.rms_norm_eps);                   // (n, d)
    this.newInput();
        let q = s.q, kk = s.k, v = s.v;
    if (L.qkv) {
      const rows = qDim + 2 * kvDim;
      this.matmul(a, L.qkv, s.xn, s.xq, s.qkv, n);                       // (n, qDim + 2·kvDim)
      if (L.qBias) k.addBias(s.qkv, L.qBias, n, rows);                       // q|k|v biases are contiguous too
      if (n === 1) { q = s.qkv; kk = s.qkv + qDim * 4; v = kk + kvDim * 4; }
      else this.unstack(a, s.qkv, n, [[s.q, qDim], [s.k, kvDim], [s.v, kvDim]]);
    } else {
      this.matmul(a, L.q, s.xn, s.xq, s.q, n);                           // (n, qDim)
      this.matmul(a, L.k, s.xn, s.xq, s.k, n);                           // (n, kvDim)
      this.matmul(a, L.v, s.xn, s.xq, s.v, n);                           // (n, kvDim)
      if (L.qBias) { k.addBias(s.q, L.qBias, n, qDim); k.addBias(s.k, L.kBias, n, kvDim); k.addBias(s.v, L.vBias, n, kvDim); }
    }
    k.rope(q, s.pos, s.invFreq, n, c.num_attention_heads, headDim, style);
    k.rope(kk, s.pos, s.invFreq, n, c.num_key_value_heads, headDim, style);
    const att = this.attention[l];
    att.store(kk, v, p0, n);
    att.attend(q, s.pos, s.att, n, p0 + n, phase);                                    // (n, qDim)
    this.newInput();
    this.matmul(a, L.o, s.att, s.xq, s.o, n);                            // (n, d)
    k.add(s.x, s.o, n * d);

    // feed-forward block
    const F = c.intermediate_size;
    k.rmsNorm(s.x, L.ffnNorm, s.xn, n, d, c.rms_norm_eps);
    this.newInput();
    let gate = s.gate, up = s.up;
    if (L.gateUp) {
      this.matmul(a, L.gateUp, s.xn, s.xq, s.gateUp, n);                 // (n, 2F)
      if (n === 1) { gate = s.gateUp; up = s.gateUp + F * 4; }
      else this.unstack(a, s.gateUp, n, [[s.gate, F], [s.up, F]]);
    } else {
      this.matmul(a, L.gate, s.xn, s.xq, s.gate, n);                     // (n, F)
      this.matmul(a, L.up, s.xn, s.xq, s.up, n);                         // (n, F)
    }
    if (c.hidden_act === 'silu') k.siluMul(gate, up, n * F);
    else k.geluMul(gate, up, n * F);
    this.newInput();
    this.matmul(a, L.down, gate, s.xq, s.o, n);                          // (n, d)
    k.add(s.x, s.o, n * d);

    this.w.head.f32(this.headX, n * d).set(a.f32(s.x, n * d));               // residual out
  }

  // Splits the rows of a stacked output (n, Σ widths) into separate (n, width) buffers.
  private unstack(a: Arena, src: Ptr, n: number, parts: [Ptr, number][]): void {
    const total = parts.reduce((t, [, w]) => t + w, 0);
    const all = a.f32(src, n * total);
    for (let t = 0, off = 0; t < n; t++) {
      for (const [dst, w] of parts) { a.f32(dst + t * w * 4, w).set(all.subarray(off, off + w)); off += w; }
    }
  }

  // logits (m, V) of residual rows [row, row + m)
  private logits(row: number, m: number): void {
    const h = this.w.head, d = this.config.hidden_size;
    h.kernels.rmsNorm(this.headX + row * d * 4, this.w.norm, this.headXn, m, d, this.config.rms_norm_eps);
    this.newInput();
    this.matmul(h, this.w.lmHead, this.headXn, this.headXq, this.headLogits, m);
  }
}
