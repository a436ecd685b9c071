// One implementation of the Llama family: Llama 2/3/3.1/3.2, Mistral, Qwen2/2.5 (q/k/v biases),
// SmolLM2 (tied embeddings), with grouped-query attention.
//
//   x = embed[tokens]
//   per layer:  h = x + o_proj(attn(rope(q(norm1 x)), rope(k(norm1 x)), v(norm1 x)))
//               x = h + down(silu(gate(norm2 h)) ⊙ up(norm2 h))
//   logits = lm_head(norm x)
//
// Many sequences at once: forwardBatch takes, per sequence, its cache and its new tokens (one when
// decoding, a chunk when prefilling); one step runs the rows of every sequence together, so each
// weight matrix is read once per step, and attention runs per sequence over its own paged K/V rows.
//
// Shape legend: n = rows in the current step (≤ C, the step capacity `chunk`), d = hidden size,
// qDim = H·D, kvDim = Hkv·D, F = intermediate size, V = vocab.
// All buffers are allocated once, in the constructor; forward() allocates no wasm memory.

import type { Ptr } from '../kernels/types.js';
import { activationBytes, activationFormat, type ActivationFormat } from '../kernels/types.js';
import { planArena, type Arena } from '../runtime/arena.js';
import { gatedOp, gatedStackedOp, matmulOp, quantizeQ8Op } from '../kernels/pool-ops.js';
import type { ThreadPool } from '../runtime/pool.js';
import { allocLayout, layoutBytes, type Pointers } from '../runtime/layout.js';
import type { AttentionBackend, LayerAttentionDims } from '../attention/create.js';
import { KV_PAGE_TOKENS, KVPagePool, LayerKV, SequencePages, type LayerKVDims } from '../attention/kv-pages.js';
import { attendDenseBatch, KVStore, type DenseQuery } from '../attention/kv-store.js';
import type { AttentionPhase, LayerAttention } from '../attention/types.js';
import type { CacheDType } from '../kernels/types.js';
import { derive, type LlamaConfig } from './config.js';
import type { BatchItem, ForwardOptions, LanguageModel, ModelCache } from './types.js';
import type { Mat, ModelWeights } from './weights.js';

/** Bytes of the quantised-input scratch for `count` values: room for q8_0 or q8_K (see matmul). */
const q8Bytes = (count: number) => Math.max(activationBytes('q8_0', Math.ceil(count / 32) * 32), activationBytes('q8_K', Math.ceil(count / 256) * 256));

/** Scratch buffers of one layer arena for C rows per step: declared once, both planned and allocated
 *  from this layout. Shapes in rows × floats. */
export function layerScratchLayout(c: LlamaConfig, C: number) {
  const { qDim, kvDim, headDim } = derive(c);
  const d = c.hidden_size, F = c.intermediate_size;
  return {
    x: C * d * 4, xn: C * d * 4,                               // (C, d) residual in, normed
    q: C * qDim * 4, k: C * kvDim * 4, v: C * kvDim * 4,       // (C, qDim) (C, kvDim) (C, kvDim)
    att: C * qDim * 4,                                         // (C, qDim) attention output
    o: C * d * 4,                                              // (C, d)
    gate: C * F * 4, up: C * F * 4,                            // (C, F)
    pos: C * 4,                                                // (C) i32 absolute positions
    invFreq: (headDim / 2) * 4,                                // (D/2)
    xq: q8Bytes(C * Math.max(d, qDim, F)),                     // q8_0 / q8_K blocks of the current matmul input
    qkv: C * (qDim + 2 * kvDim) * 4,                           // (C, qDim + 2·kvDim) stacked q|k|v output
    gateUp: C * 2 * F * 4,                                     // (C, 2F) stacked gate|up output
  };
}

/** Scratch buffers of the head arena for C rows per step. */
export function headScratchLayout(c: LlamaConfig, C: number) {
  const d = c.hidden_size;
  return {
    x: C * d * 4,                 // (C, d) residual stream of the step's rows
    sel: C * d * 4,               // (C, d) the rows whose logits are wanted, gathered
    xn: C * d * 4,                // (C, d) their final norm
    xq: q8Bytes(C * d),           // q8_0 / q8_K of xn
    logits: C * c.vocab_size * 4, // (C, V)
  };
}

type LayerScratch = Pointers<ReturnType<typeof layerScratchLayout>>;
type HeadScratch = Pointers<ReturnType<typeof headScratchLayout>>;

/** One sequence slot: its page list and its attention state in every layer. A slot is taken by a
 *  cache and given back when the cache is released (or garbage-collected unreleased). `drafts[i]`:
 *  draft attention i of every layer (self-speculation), reading and writing the same K/V rows. */
interface Slot {
  readonly index: number;
  readonly pages: SequencePages;
  readonly layers: LayerAttention[];
  readonly drafts: LayerAttention[][];
  busy: boolean;
}

/** Every attention state of a slot: the model's, then the drafts'. */
const attentions = (slot: Slot): LayerAttention[] => (slot.drafts.length > 0 ? [...slot.layers, ...slot.drafts.flat()] : slot.layers);

class LlamaCache implements ModelCache {
  length = 0;
  released = false;
  constructor(readonly owner: LlamaModel, readonly slot: Slot, readonly capacity: number) {}

  /** Pages this sequence holds (shared ones included). */
  get pages(): number { return this.slot.pages.ids.length; }

  truncate(n: number): void {
    if (!Number.isInteger(n) || n < 0) throw new RangeError(`truncate: n must be a non-negative integer, got ${n}`);
    this.owner.checkLive(this, 'truncate');
    if (n >= this.length) return;
    this.owner.trimPages(this.slot, n);
    for (const l of attentions(this.slot)) l.truncate(n);
    this.length = n;
  }

  restart(n: number): void {
    this.owner.checkLive(this, 'restart');
    if (!Number.isInteger(n) || n < 0 || n > this.length) throw new RangeError(`restart: n must be an integer in [0, ${this.length}], got ${n}`);
    this.owner.trimPages(this.slot, n);
    for (const l of attentions(this.slot)) l.reset(n);       // as forkCache starts a child
    this.length = n;
  }

  fork(n = this.length): ModelCache {
    this.owner.checkLive(this, 'fork');
    if (!Number.isInteger(n) || n < 0 || n > this.length) throw new RangeError(`fork: n must be an integer in [0, ${this.length}], got ${n}`);
    return this.owner.forkCache(this, n);
  }

  release(): void {
    if (this.released) return;
    this.released = true;
    this.owner.releaseSlot(this.slot);
  }
}

export interface LlamaModelOptions {
  /** Most positions one sequence holds (the context length). */
  capacity: number;
  /** Rows (tokens of all sequences) processed per internal step; longer batches are split. */
  chunk: number;
  cacheDType: CacheDType;
  invFreq: Float32Array;
  /** Attention backend of each layer (dense, or a sparse one behind the same interface). */
  attention: (layer: number) => AttentionBackend;
  /** Draft attentions of each layer (self-speculation: a batch item with `draft: i` attends through
   *  the i-th, `true` the first, over the same K/V rows), each with its name; none when absent. */
  draftAttentions?: readonly { name: string; backend: (layer: number) => AttentionBackend }[];
  /** Most sequences (caches) alive at once. */
  parallel: number;
  /** KV pages of the shared pool (KV_PAGE_TOKENS tokens each). */
  kvPages: number;
}

/** Bytes one layer arena needs for its KV pool, the sequence slots' attention state and scratch. */
export function layerRuntimeBytes(c: LlamaConfig, o: Pick<LlamaModelOptions, 'capacity' | 'chunk' | 'cacheDType' | 'parallel' | 'kvPages'>,
                                  backend: AttentionBackend, layer: number, drafts: readonly AttentionBackend[] = []): number {
  const kv = LayerKV.sizes(layerKVDims(c, o));
  const dims = attentionDims(c, o, layer);
  const slot = backend.slotBytes(dims) + drafts.reduce((sum, d) => sum + d.slotBytes(dims) + 64, 0);
  return planArena(kv) + 64 + o.parallel * (slot + 64 * 24) + layoutBytes(layerScratchLayout(c, o.chunk));
}

function layerKVDims(c: LlamaConfig, o: Pick<LlamaModelOptions, 'capacity' | 'chunk' | 'cacheDType' | 'kvPages' | 'parallel'>): LayerKVDims {
  return {
    heads: c.num_attention_heads, kvHeads: c.num_key_value_heads, headDim: derive(c).headDim, dtype: o.cacheDType,
    pages: o.kvPages, maxPagesPerSequence: Math.ceil(o.capacity / KV_PAGE_TOKENS), maxQueries: o.chunk,
    sequences: o.parallel,
  };
}

function attentionDims(c: LlamaConfig, o: Pick<LlamaModelOptions, 'capacity' | 'cacheDType'>, layer: number): LayerAttentionDims {
  return {
    layer, layers: c.num_hidden_layers, heads: c.num_attention_heads, kvHeads: c.num_key_value_heads,
    headDim: derive(c).headDim, capacity: o.capacity, dtype: o.cacheDType,
  };
}

export class LlamaModel implements LanguageModel {
  readonly vocabSize: number;
  readonly contextLength: number;
  readonly kvPages: KVPagePool;
  private readonly dims: ReturnType<typeof derive>;
  private readonly scratch: LayerScratch[];
  private readonly layerKV: LayerKV[];
  private readonly slots: Slot[] = [];
  private readonly head: HeadScratch;
  private last = new Float32Array(0);
  private all = new Float32Array(0);
  /** Which input the quantised-input scratch currently holds (0: none), in which format; see matmul. */
  private xqHolds: Ptr = 0;
  private xqFormat: ActivationFormat = 'f32';
  private disposed = false;
  /** Releases the slot of a cache that was dropped without release(). */
  private readonly orphans = new FinalizationRegistry<Slot>((slot) => { if (!this.disposed && slot.busy) this.releaseSlot(slot); });

  constructor(readonly config: LlamaConfig, private readonly w: ModelWeights, private readonly pool: ThreadPool,
              private readonly opts: LlamaModelOptions) {
    this.vocabSize = config.vocab_size;
    this.contextLength = opts.capacity;
    this.dims = derive(config);
    this.kvPages = new KVPagePool(opts.kvPages);
    this.layerKV = w.layers.map((L) => new LayerKV(L.arena, layerKVDims(config, opts)));
    this.scratch = w.layers.map((L) => {
      const s = allocLayout(L.arena, layerScratchLayout(config, opts.chunk));
      L.arena.f32(s.invFreq, this.dims.headDim / 2).set(opts.invFreq);
      return s;
    });
    this.head = allocLayout(w.head, headScratchLayout(config, opts.chunk));
  }

  /** Draft attentions batch items may ask for (those the model was loaded with), by name. */
  get draftAttentions(): readonly string[] { return (this.opts.draftAttentions ?? []).map((d) => d.name); }

  /** Sequences that can be alive at once, and how many are. */
  get parallel(): number { return this.opts.parallel; }
  get activeSequences(): number { return this.slots.filter((s) => s.busy).length; }

  /** A fresh, empty cache for one sequence. Caches are independent: creating one never touches
   *  another. Release it (cache.release()) when done, so its slot and KV pages return to the pool. */
  createCache(capacity?: number): ModelCache {
    if (this.disposed) throw new Error('createCache: the model has been disposed');
    if (capacity !== undefined && (!Number.isInteger(capacity) || capacity < 1 || capacity > this.opts.capacity)) {
      throw new RangeError(`createCache: capacity must be an integer in [1, ${this.opts.capacity}] (the context length this model was loaded with), got ${capacity}`);
    }
    const slot = this.takeSlot();
    const cache = new LlamaCache(this, slot, capacity ?? this.opts.capacity);
    this.orphans.register(cache, slot, slot);
    return cache;
  }

  checkLive(cache: LlamaCache, what: string): void {
    if (cache.released) throw new Error(`${what}: this cache has been released`);
    if (this.disposed) throw new Error(`${what}: the model has been disposed`);
  }

  /** A new cache holding the first n positions of `parent` by reference (shared pages; the partial
   *  last page is copied when either sequence writes into it). */
  forkCache(parent: LlamaCache, n: number): ModelCache {
    const child = this.createCache(parent.capacity) as LlamaCache;
    const ids = parent.slot.pages.ids.slice(0, Math.ceil(n / KV_PAGE_TOKENS));
    for (const id of ids) this.kvPages.retain(id);
    child.slot.pages.ids = ids;
    child.slot.pages.changed();
    child.length = n;
    for (const l of attentions(child.slot)) l.reset(n);
    return child;
  }

  private takeSlot(): Slot {
    let slot = this.slots.find((s) => !s.busy);
    if (slot === undefined) {
      if (this.slots.length >= this.opts.parallel) {
        throw new RangeError(`createCache: all ${this.opts.parallel} sequence slots are in use; release caches you no longer need ` +
          '(cache.release()) or load the model with a larger parallel (--parallel)');
      }
      const index = this.slots.length, pages = new SequencePages();
      const dims = (l: number) => attentionDims(this.config, this.opts, l);
      const stores = this.w.layers.map((_, l) => new KVStore(this.layerKV[l]!, pages, dims(l), index));
      const layers = this.w.layers.map((L, l) => this.opts.attention(l).create(L.arena, this.pool, dims(l), stores[l]!));
      const drafts = (this.opts.draftAttentions ?? []).map((d) => this.w.layers.map((L, l) => d.backend(l).create(L.arena, this.pool, dims(l), stores[l]!)));
      slot = { index, pages, layers, drafts, busy: false };
      this.slots.push(slot);
    }
    slot.busy = true;
    for (const l of attentions(slot)) l.reset(0);
    return slot;
  }

  /** Gives a slot's pages back and frees it (called by LlamaCache.release and the finalizer). */
  releaseSlot(slot: Slot): void {
    if (!slot.busy) return;
    this.trimPages(slot, 0);
    for (const l of attentions(slot)) l.reset(0);
    slot.busy = false;
    this.orphans.unregister(slot);
  }

  /** Releases the pages a sequence holds past its first n positions. */
  trimPages(slot: Slot, n: number): void {
    const keep = Math.ceil(n / KV_PAGE_TOKENS), ids = slot.pages.ids;
    if (ids.length <= keep) return;
    for (let i = keep; i < ids.length; i++) this.kvPages.release(ids[i]!);
    ids.length = keep;
    slot.pages.changed();
  }

  /** Makes positions [p0, p0 + n) of a sequence writable: new pages past its end, a private copy of
   *  any shared page it is about to write into (copy-on-write, in every layer). */
  private reservePages(slot: Slot, p0: number, n: number): void {
    const ids = slot.pages.ids;
    const first = Math.floor(p0 / KV_PAGE_TOKENS), last = Math.floor((p0 + n - 1) / KV_PAGE_TOKENS);
    for (let i = first; i <= last; i++) {
      if (i >= ids.length) { ids.push(this.kvPages.alloc()); slot.pages.changed(); continue; }
      const id = ids[i]!;
      if (this.kvPages.refCount(id) > 1) {
        const copy = this.kvPages.alloc();
        for (const kv of this.layerKV) kv.copyPage(id, copy);
        this.kvPages.release(id);
        ids[i] = copy;
        slot.pages.changed();
      }
    }
  }

  /** Extends `cache` to n positions whose K/V rows the caller writes itself through the layers'
   *  backends (a benchmark tiling a long cache from a short real prefill); not for generation. */
  reserveRows(cache: ModelCache, n: number): void {
    if (!(cache instanceof LlamaCache) || cache.owner !== this) throw new Error('reserveRows: cache was not created by this model');
    this.checkLive(cache, 'reserveRows');
    if (!Number.isInteger(n) || n < cache.length || n > cache.capacity) throw new RangeError(`reserveRows: n must be an integer in [${cache.length}, ${cache.capacity}], got ${n}`);
    if (n > cache.length) this.reservePages(cache.slot, cache.length, n - cache.length);
    cache.length = n;
  }

  /** A new cache holding private copies of every page of `cache` (nothing shared): what prefilling
   *  the same prompt again would hold, without the prefill — for a benchmark that needs many long
   *  sequences of their own memory; generation shares prompts through fork(). */
  copyCache(cache: ModelCache): ModelCache {
    if (!(cache instanceof LlamaCache) || cache.owner !== this) throw new Error('copyCache: cache was not created by this model');
    this.checkLive(cache, 'copyCache');
    const child = this.forkCache(cache, cache.length) as LlamaCache;
    if (child.length > 0) this.reservePages(child.slot, 0, child.length);
    return child;
  }

  forward(tokens: ArrayLike<number>, cache: ModelCache, opts: ForwardOptions = {}): Float32Array {
    return this.forwardBatch([{ cache, tokens, logits: opts.logits ?? 'last', phase: opts.phase }])[0]!;
  }

  forwardBatch(batch: readonly BatchItem[]): Float32Array[] {
    if (this.disposed) throw new Error('forward: the model has been disposed');
    if (batch.length === 0) throw new RangeError('forward: empty batch');
    const seen = new Set<ModelCache>();
    let outLast = 0, outAll = 0;
    for (const [b, item] of batch.entries()) {
      const cache = item.cache, n = item.tokens.length, where = batch.length > 1 ? ` (batch item ${b})` : '';
      if (!(cache instanceof LlamaCache) || cache.owner !== this) throw new Error(`forward: cache was not created by this model${where}`);
      this.checkLive(cache, 'forward');
      if (seen.has(cache)) throw new Error(`forward: the same cache appears twice in one batch${where}`);
      seen.add(cache);
      if (n === 0) throw new RangeError(`forward: no tokens${where}`);
      const d = draftIndex(item.draft);
      if (item.draft !== undefined && item.draft !== false) {        // a number must name one (-1 too is refused)
        const count = this.opts.draftAttentions?.length ?? 0;
        if (count === 0) throw new Error(`forward: a draft row needs a model loaded with a draft attention (draftAttention)${where}`);
        if (!Number.isInteger(d) || d < 0 || d >= count) throw new RangeError(`forward: draft ${String(item.draft)} is not one of the model's ${count} draft attentions (0 to ${count - 1})${where}`);
      }
      if (d !== NO_DRAFT && item.phase === 'prefill') throw new RangeError(`forward: a draft row cannot be a prompt row (phase 'prefill')${where}`);
      if (cache.length + n > cache.capacity) {
        throw new RangeError(`forward: ${cache.length} cached + ${n} new tokens exceed the context length of ${cache.capacity}${where}`);
      }
      for (let i = 0; i < n; i++) {
        const t = item.tokens[i];
        if (!Number.isInteger(t) || t! < 0 || t! >= this.vocabSize) throw new RangeError(`forward: token ${t} at index ${i} is outside the vocabulary [0, ${this.vocabSize})${where}`);
      }
      const mode = item.logits ?? 'last';
      if (mode === 'last') outLast++;
      else if (mode === 'all') outAll += n;
      else if (mode !== 'none') throw new RangeError(`forward: logits must be 'last', 'all' or 'none', got ${String(mode)}${where}`);
    }
    const V = this.vocabSize;
    if (this.last.length < outLast * V) this.last = new Float32Array(outLast * V);
    if (this.all.length < outAll * V) this.all = new Float32Array(outAll * V);
    // each item's output view, and where its logit rows go
    const outputs: Float32Array[] = [];
    const dest: number[] = [];                 // per item: offset (floats) of its first logit row
    for (let b = 0, li = 0, ai = 0; b < batch.length; b++) {
      const item = batch[b]!, mode = item.logits ?? 'last', n = item.tokens.length;
      if (mode === 'last') { dest.push(li * V); outputs.push(this.last.subarray(li * V, (li + 1) * V)); li++; }
      else if (mode === 'all') { dest.push(ai * V); outputs.push(this.all.subarray(ai * V, (ai + n) * V)); ai += n; }
      else { dest.push(-1); outputs.push(new Float32Array(0)); }
    }
    // Steps of at most C rows: items are packed in order; an item longer than the room left
    // continues in the next step (its rows stay in order, so causality holds).
    const C = this.opts.chunk;
    const done = new Array<number>(batch.length).fill(0);
    for (let b0 = 0; b0 < batch.length;) {
      const segs: Segment[] = [];
      let rows = 0;
      for (let b = b0; b < batch.length && rows < C; b++) {
        const item = batch[b]!, cache = item.cache as LlamaCache, n = item.tokens.length;
        const m = Math.min(n - done[b]!, C - rows);
        if (m <= 0) continue;
        const draft = draftIndex(item.draft);
        segs.push({ b, cache, start: done[b]!, m, row: rows, p0: cache.length, draft,
          phase: draft !== NO_DRAFT ? 'decode' : item.phase ?? (n > 1 ? 'prefill' : 'decode') });
        rows += m;
      }
      this.step(batch, segs, rows, dest);
      for (const s of segs) done[s.b] = s.start + s.m;
      while (b0 < batch.length && done[b0] === batch[b0]!.tokens.length) b0++;
    }
    return outputs;
  }

  dispose(): void {
    this.disposed = true;
    this.pool.dispose();
  }

  /** One step over `rows` rows: the segments' tokens through every layer, then the wanted logits. */
  private step(batch: readonly BatchItem[], segs: Segment[], rows: number, dest: number[]): void {
    // pages first, for every segment: running out of KV memory leaves every cache as it was
    const before = segs.map((s) => s.cache.slot.pages.ids.length);
    try {
      for (const s of segs) this.reservePages(s.cache.slot, s.p0, s.m);
    } catch (e) {
      segs.forEach((s, i) => { if (s.cache.slot.pages.ids.length > before[i]!) this.trimPages(s.cache.slot, Math.max(s.cache.length, before[i]! * KV_PAGE_TOKENS)); });
      throw e;
    }
    // logits: rows of 'all' items, and each 'last' item's final token if it is in this step (rows
    // in ascending order)
    const V = this.vocabSize, d = this.config.hidden_size, h = this.w.head;
    const want: [row: number, out: Float32Array, at: number][] = [];
    for (const s of segs) {
      const item = batch[s.b]!, mode = item.logits ?? 'last';
      if (mode === 'all') for (let i = 0; i < s.m; i++) want.push([s.row + i, this.all, dest[s.b]! + (s.start + i) * V]);
      else if (mode === 'last' && s.start + s.m === item.tokens.length) want.push([s.row + s.m - 1, this.last, dest[s.b]!]);
    }
    this.embed(batch, segs);
    const last = this.w.layers.length - 1;
    for (let l = 0; l < last; l++) this.layer(l, segs, rows);
    this.layer(last, segs, rows, want.map(([row]) => row));
    for (const s of segs) s.cache.length = s.p0 + s.m;
    if (want.length === 0) return;
    // the last layer left the wanted rows' hidden states first, in order (layer's `keep`)
    h.f32(this.head.sel, want.length * d).set(h.f32(this.head.x, want.length * d));
    this.logits(want.length);
    const logits = h.f32(this.head.logits, want.length * V);
    want.forEach(([, out, at], i) => out.set(logits.subarray(i * V, (i + 1) * V), at));
  }

  // x (rows, d) = embed[tokens of every segment]
  private embed(batch: readonly BatchItem[], segs: Segment[]): void {
    const { head, embed } = this.w;
    const d = this.config.hidden_size;
    for (const s of segs) {
      const tokens = batch[s.b]!.tokens;
      for (let i = 0; i < s.m; i++) head.kernels.rowToF32(embed.dtype, embed.ptr, tokens[s.start + i]!, d, this.head.x + (s.row + i) * d * 4);
    }
  }
  // y (n, rows) = x (n, cols) · Wᵀ; `xq` receives the q8_0 (K-quant weights: q8_K) form of x when W
  // is quantised, once per input and format: matmuls that share an input (q/k/v, gate/up) reuse it
  // until newInput() is called.
  private newInput(): void { this.xqHolds = 0; }

  private matmul(a: Arena, W: Mat, x: Ptr, xq: Ptr, y: Ptr, n: number): void {
    const format = activationFormat(W.dtype);
    if (format !== 'f32') {
      if (this.xqHolds !== x || this.xqFormat !== format) {
        if (format === 'q8_0') this.pool.run(quantizeQ8Op, a, x, xq, n * W.cols);
        else a.kernels.quantizeQ8K(x, xq, n * W.cols);
        this.xqHolds = x;
        this.xqFormat = format;
      }
      this.pool.run(matmulOp, a, W.dtype, W.ptr, xq, y, n, W.rows, W.cols);
    } else {
      this.pool.run(matmulOp, a, W.dtype, W.ptr, x, y, n, W.rows, W.cols);
    }
  }

  /** Layer l over the step's n rows. With `keep` (ascending rows; the last layer's), everything
   *  after attention — the output projection, the feed-forward block, the residual out — runs for
   *  those rows alone, moved to the front: the rows whose logits are wanted. A prompt's other rows
   *  need nothing past their K/V rows, which attention has stored (llama.cpp skips them too, its
   *  inp_out_ids): about one layer's matmuls fewer per prompt token. The quantised x4 kernels give a
   *  row the same bits for any number of rows (the f32 kernel the same to rounding). */
  private layer(l: number, segs: Segment[], n: number, keep?: readonly number[]): void {
    const L = this.w.layers[l]!, s = this.scratch[l]!, a = L.arena, k = a.kernels;
    const c = this.config, d = c.hidden_size, { qDim, kvDim, headDim } = this.dims;
    const style = c.rope_style ?? 'neox';

    a.f32(s.x, n * d).set(this.w.head.f32(this.head.x, n * d));               // residual in (n rows of every sequence)
    const pos = a.i32(s.pos, n);
    for (const g of segs) for (let i = 0; i < g.m; i++) pos[g.row + i] = g.p0 + i;

    // attention block: projections over every row at once (each weight read once per step)
    k.rmsNorm(s.x, L.attnNorm, s.xn, n, d, c.rms_norm_eps);                   // (n, d)
    this.newInput();
    let q = s.q, kk = s.k, v = s.v;
    if (L.qkv) {
      const rows = qDim + 2 * kvDim;
      this.matmul(a, L.qkv, s.xn, s.xq, s.qkv, n);                           // (n, qDim + 2·kvDim)
      if (L.qBias) k.addBias(s.qkv, L.qBias, n, rows);                       // q|k|v biases are contiguous too
      if (n === 1) { q = s.qkv; kk = s.qkv + qDim * 4; v = kk + kvDim * 4; }
      else this.unstack(a, s.qkv, n, [[s.q, qDim], [s.k, kvDim], [s.v, kvDim]]);
    } else {
      this.matmul(a, L.q, s.xn, s.xq, s.q, n);                               // (n, qDim)
      this.matmul(a, L.k, s.xn, s.xq, s.k, n);                               // (n, kvDim)
      this.matmul(a, L.v, s.xn, s.xq, s.v, n);                               // (n, kvDim)
      if (L.qBias) { k.addBias(s.q, L.qBias, n, qDim); k.addBias(s.k, L.kBias, n, kvDim); k.addBias(s.v, L.vBias, n, kvDim); }
    }
    k.rope(q, s.pos, s.invFreq, n, c.num_attention_heads, headDim, style);
    k.rope(kk, s.pos, s.invFreq, n, c.num_key_value_heads, headDim, style);
    // attention per sequence, over its own K/V pages (draft rows through the draft attention, which
    // stores into the same rows: the verification step overwrites them with the exact ones); the
    // single queries that are plain dense attention run together in one job after the loop
    const dense: DenseQuery[] = [];
    for (const g of segs) {
      const att = (g.draft !== NO_DRAFT ? g.cache.slot.drafts[g.draft]! : g.cache.slot.layers)[l]!;
      att.store(kk + g.row * kvDim * 4, v + g.row * kvDim * 4, g.p0, g.m);
      const gq = q + g.row * qDim * 4, gPos = s.pos + g.row * 4, gOut = s.att + g.row * qDim * 4;   // (m, qDim)
      const kv = g.m === 1 ? att.denseStore?.(g.phase) : undefined;
      if (kv !== undefined) dense.push({ kv, q: gq, qPos: gPos, out: gOut, n: 1, length: g.p0 + 1 });
      else att.attend(gq, gPos, gOut, g.m, g.p0 + g.m, g.phase);
      if (g.phase === 'prefill') for (const d of g.cache.slot.drafts) d[l]!.observe?.(gq, gPos, g.m, g.p0 + g.m);
    }
    attendDenseBatch(this.pool, dense);
    if (keep !== undefined && keep.length < n) {
      // rows only move toward the front (keep[i] >= i), in order: an in-place gather
      const att = a.f32(s.att, n * qDim), x = a.f32(s.x, n * d);
      keep.forEach((row, i) => {
        if (row === i) return;
        att.copyWithin(i * qDim, row * qDim, (row + 1) * qDim);
        x.copyWithin(i * d, row * d, (row + 1) * d);
      });
      n = keep.length;
      if (n === 0) return;
    }
    this.newInput();
    this.matmul(a, L.o, s.att, s.xq, s.o, n);                                // (n, d)
    k.add(s.x, s.o, n * d);

    // feed-forward block
    const F = c.intermediate_size, gateAct = c.hidden_act === 'silu' ? 'silu' : 'gelu';
    k.rmsNorm(s.x, L.ffnNorm, s.xn, n, d, c.rms_norm_eps);
    this.newInput();
    if (L.gateUp) {
      this.matmul(a, L.gateUp, s.xn, s.xq, s.gateUp, n);                     // (n, 2F)
      // straight from the stacked rows: no copy of them into gate and up first
      this.pool.run(gatedStackedOp, a, gateAct, s.gateUp, s.gate, n, F); // (n, F)
    } else {
      this.matmul(a, L.gate, s.xn, s.xq, s.gate, n);                         // (n, F)
      this.matmul(a, L.up, s.xn, s.xq, s.up, n);                             // (n, F)
      this.pool.run(gatedOp, a, gateAct, s.gate, s.up, n * F);
    }
    this.newInput();
    this.matmul(a, L.down, s.gate, s.xq, s.o, n);                            // (n, d)
    k.add(s.x, s.o, n * d);

    this.w.head.f32(this.head.x, n * d).set(a.f32(s.x, n * d));               // residual out
  }

  // Splits the rows of a stacked output (n, Σ widths) into separate (n, width) buffers.
  private unstack(a: Arena, src: Ptr, n: number, parts: [Ptr, number][]): void {
    const total = parts.reduce((t, [, w]) => t + w, 0);
    const all = a.f32(src, n * total);
    for (let t = 0, off = 0; t < n; t++) {
      for (const [dst, w] of parts) { a.f32(dst + t * w * 4, w).set(all.subarray(off, off + w)); off += w; }
    }
  }

  // logits (m, V) of the m gathered rows in head.sel
  private logits(m: number): void {
    const h = this.w.head, d = this.config.hidden_size;
    h.kernels.rmsNorm(this.head.sel, this.w.norm, this.head.xn, m, d, this.config.rms_norm_eps);
    this.newInput();
    this.matmul(h, this.w.lmHead, this.head.xn, this.head.xq, this.head.logits, m);
  }
}

/** The rows one sequence contributes to a step: tokens [start, start + m) of batch item b, at rows
 *  [row, row + m) of the step and positions [p0, p0 + m) of its cache. */
/** `draft`: the draft attention its rows attend through, NO_DRAFT for the model's own. */
interface Segment { b: number; cache: LlamaCache; start: number; m: number; row: number; p0: number; phase: AttentionPhase; draft: number }

/** A batch item's draft attention (`true` is the first), or NO_DRAFT for the model's own attention. */
const NO_DRAFT = -1;
const draftIndex = (draft: BatchItem['draft']): number => (draft === undefined || draft === false ? NO_DRAFT : draft === true ? 0 : draft);
