// Paged KV memory. Every layer arena holds one pool of K rows and one of V rows, cut into pages of
// KV_PAGE_TOKENS rows; a page id means the same rows in every layer, so one allocator (KVPagePool)
// serves the whole model and a sequence's page list (SequencePages) is the same for all layers.
// Pages are reference-counted: a sequence started from another's prefix shares its full pages and
// copies a page only when it writes into a shared one (copy-on-write). The budget is fixed at load,
// so running out is an error the caller sees (OutOfKVMemoryError), never a silent truncation.
//
// Kernels reach a sequence's rows through a page table of u32 byte offsets (KVRows in
// src/kernels/types.ts); each layer arena holds one table per sequence slot (LayerKV.tableOf),
// rewritten only when that sequence's page list changes (KVStore.bind), so the tables of every
// sequence of a step are in place at once and one job can attend for all of them (attentionBatch).

import { ATTENTION_ITEM_WORDS, attentionStateBytes, type CacheDType, type Ptr } from '../kernels/types.js';
import type { Arena } from '../runtime/arena.js';

/** Rows per page: a power of two (kernels split row ids with a shift), and a multiple of the
 *  attention kernel's 8-key blocks. */
export const KV_PAGE_SHIFT = 6;
export const KV_PAGE_TOKENS = 1 << KV_PAGE_SHIFT;

export interface LayerKVDims {
  heads: number; kvHeads: number; headDim: number; dtype: CacheDType;
  /** Pages of the pool, and most pages one sequence holds (its page table's length). */
  pages: number; maxPagesPerSequence: number;
  /** Sequence slots: one page table each, and one item each in the batched attention table. */
  sequences: number;
  /** Most queries one attention call takes (the multi-query state holds that many rows). */
  maxQueries: number;
}

/** The model's KV budget is used up. */
export class OutOfKVMemoryError extends RangeError {
  constructor(readonly pages: number, readonly pageTokens: number) {
    super(`out of KV memory: all ${pages} pages (${pages * pageTokens} tokens) of the KV budget are in use; ` +
      'finish or release other sequences, or load the model with a larger kvBudget (--kv-budget)');
    this.name = 'OutOfKVMemoryError';
  }
}

/** The page allocator shared by every layer (page ids only; the rows live in the layer arenas). */
export class KVPagePool {
  private readonly refs: Int32Array;
  private readonly free: number[];
  private peakUsed = 0;

  constructor(readonly pages: number) {
    if (!Number.isInteger(pages) || pages < 1) throw new RangeError(`KVPagePool: pages must be a positive integer, got ${pages}`);
    this.refs = new Int32Array(pages);
    // popped from the end: page 0 first, so a lone sequence gets contiguous ascending pages
    this.free = Array.from({ length: pages }, (_, i) => pages - 1 - i);
  }

  get used(): number { return this.pages - this.free.length; }
  /** Most pages in use at once so far. Freed pages are reused last-freed first, so the pages ever
   *  written (resident in the WebAssembly memory) are ids 0 … peak − 1. */
  get peak(): number { return this.peakUsed; }
  get available(): number { return this.free.length; }
  refCount(id: number): number { return this.refs[id]!; }

  alloc(): number {
    const id = this.free.pop();
    if (id === undefined) throw new OutOfKVMemoryError(this.pages, KV_PAGE_TOKENS);
    this.refs[id] = 1;
    this.peakUsed = Math.max(this.peakUsed, this.used);
    return id;
  }

  retain(id: number): void {
    if (this.refs[id]! < 1) throw new Error(`KVPagePool.retain: page ${id} is not allocated`);
    this.refs[id]!++;
  }

  release(id: number): void {
    const r = this.refs[id]!;
    if (r < 1) throw new Error(`KVPagePool.release: page ${id} is not allocated`);
    this.refs[id] = r - 1;
    if (r === 1) this.free.push(id);
  }
}

/** One sequence's pages, in position order (page i holds positions [i·P, (i+1)·P)). `version`
 *  changes whenever the list does, so a layer knows when its copy of the table is stale. */
export class SequencePages {
  ids: number[] = [];
  version = 0;
  changed(): void { this.version++; }
}

/** One layer's K and V pools, the page tables of its sequence slots, the item table of a batched
 *  attention job (ATTENTION_ITEM_WORDS per sequence) and the attention kernel's scratch (`state`:
 *  the online softmax's running max and sum of each query and head between key tiles, and the tile
 *  score buffers) — stateBytes, room for one call of maxQueries queries or for a batched job of one
 *  query per sequence slot plus one call of maxQueries (attendDenseBatch packs its items' scratch
 *  one after the other), in the layer's arena. */
export class LayerKV {
  readonly k: Ptr;
  readonly v: Ptr;
  readonly tables: Ptr;
  readonly batch: Ptr;
  readonly state: Ptr;
  readonly stateBytes: number;
  readonly rowBytes: number;
  readonly pageBytes: number;
  readonly f16: boolean;

  constructor(readonly arena: Arena, readonly d: LayerKVDims) {
    this.f16 = d.dtype === 'f16';
    this.rowBytes = d.kvHeads * d.headDim * (this.f16 ? 2 : 4);
    this.pageBytes = KV_PAGE_TOKENS * this.rowBytes;
    const sizes = LayerKV.sizes(d);
    const [k, v, tables, batch, state] = sizes.map((b) => arena.alloc(b));
    this.k = k!; this.v = v!; this.tables = tables!; this.batch = batch!; this.state = state!; this.stateBytes = sizes[4]!;
  }

  get maxPagesPerSequence(): number { return this.d.maxPagesPerSequence; }

  /** The page table of sequence slot `slot`. */
  tableOf(slot: number): Ptr {
    if (!Number.isInteger(slot) || slot < 0 || slot >= this.d.sequences) {
      throw new RangeError(`LayerKV: sequence slot ${slot} is outside [0, ${this.d.sequences}) (the slots this layer was planned for)`);
    }
    return this.tables + slot * this.d.maxPagesPerSequence * 4;
  }

  /** Sizes of the buffers the constructor allocates, in order (for arena planning). */
  static sizes(d: LayerKVDims): number[] {
    const pool = d.pages * KV_PAGE_TOKENS * d.kvHeads * d.headDim * (d.dtype === 'f16' ? 2 : 4);
    const keys = d.maxPagesPerSequence * KV_PAGE_TOKENS; // the most keys one sequence's call reads
    return [pool, pool, d.sequences * d.maxPagesPerSequence * 4, d.sequences * ATTENTION_ITEM_WORDS * 4,
      attentionStateBytes(d.maxQueries, d.heads, d.kvHeads, d.headDim, keys) + d.sequences * attentionStateBytes(1, d.heads, d.kvHeads, d.headDim, keys)];
  }

  /** Copies page `src`'s K and V rows into page `dst` (copy-on-write). */
  copyPage(src: number, dst: number): void {
    const u8 = this.arena.u8(0, this.arena.memory.buffer.byteLength);
    for (const base of [this.k, this.v]) u8.copyWithin(base + dst * this.pageBytes, base + src * this.pageBytes, base + (src + 1) * this.pageBytes);
  }

}
