// One sequence's K/V rows in one layer, as every backend sees them: the rows live in the layer's
// page pool (./kv-pages.ts) and are reached through the sequence's page table, which `bind` copies
// into the slot's table in the arena before any kernel reads them. Rows are indexed by absolute
// position, so truncation frees whole pages and costs nothing else. Dense attention runs for one
// sequence (attendDense) or for every sequence of a step in one job (attendDenseBatch). Also the
// small pieces the sparse backends share: dense-layer sets, parameter checks, f16 decoding.

import { ATTENTION_ITEM, ATTENTION_ITEM_WORDS, attentionStateBytes, attentionUnitCost, attentionUnits, type KVRows, type Ptr } from '../kernels/types.js';
import { f16ToF32 } from '../kernels/reference.js';
import { planArena, type Arena } from '../runtime/arena.js';
import { attentionBatchOp, attentionOp } from '../kernels/pool-ops.js';
import type { ThreadPool } from '../runtime/pool.js';
import type { LayerAttentionDims } from './create.js';
import { KV_PAGE_SHIFT, KV_PAGE_TOKENS, LayerKV, SequencePages, type LayerKVDims } from './kv-pages.js';

export class KVStore implements KVRows {
  readonly k: Ptr;          // K pool base: rows (Hkv, D) in dtype, reached through the page table
  readonly v: Ptr;          // V pool base, same layout
  readonly rowBytes: number;
  readonly f16: boolean;
  readonly pages: Ptr;
  readonly pageShift = KV_PAGE_SHIFT;
  private readonly kvDim: number;
  /** The page-list version the table holds (−1: none yet). */
  private boundVersion = -1;

  /** `slot`: the sequence slot whose page table in the layer this store writes (one per sequence). */
  constructor(readonly layer: LayerKV, readonly seq: SequencePages, readonly d: LayerAttentionDims, slot: number) {
    this.kvDim = d.kvHeads * d.headDim;
    this.f16 = layer.f16;
    this.rowBytes = layer.rowBytes;
    this.k = layer.k; this.v = layer.v; this.pages = layer.tableOf(slot);
  }

  /** Makes the slot's table hold this sequence's pages (a no-op when it already does). */
  bind(): void {
    const L = this.layer, seq = this.seq;
    if (this.boundVersion === seq.version) return;
    const ids = seq.ids;
    if (ids.length > L.maxPagesPerSequence) throw new RangeError(`KVStore: ${ids.length} pages exceed the ${L.maxPagesPerSequence} a sequence may hold`);
    const t = L.arena.i32(this.pages, ids.length);
    for (let i = 0; i < ids.length; i++) t[i] = ids[i]! * L.pageBytes;
    this.boundVersion = seq.version;
  }

  /** Stores K and V rows (n, kvDim) f32 of positions p0 … p0+n−1; their pages must exist. */
  store(k: Ptr, v: Ptr, p0: number, n: number): void {
    if (p0 + n > this.seq.ids.length * KV_PAGE_TOKENS) {
      throw new RangeError(`attention store: positions ${p0}..${p0 + n - 1} lie past the ${this.seq.ids.length} pages reserved for this sequence`);
    }
    const kern = this.layer.arena.kernels, dtype = this.d.dtype, kvDim = this.kvDim;
    // one storeRows per run of rows inside one page
    for (let s = p0; s < p0 + n;) {
      const e = Math.min(p0 + n, (Math.floor(s / KV_PAGE_TOKENS) + 1) * KV_PAGE_TOKENS);
      const off = this.offset(s), src = (s - p0) * kvDim * 4;
      kern.storeRows(dtype, k + src, this.k + off, (e - s) * kvDim);
      kern.storeRows(dtype, v + src, this.v + off, (e - s) * kvDim);
      s = e;
    }
  }

  /** Byte offset of row s from the pool bases. */
  offset(s: number): number {
    return this.seq.ids[s >>> KV_PAGE_SHIFT]! * this.layer.pageBytes + (s & (KV_PAGE_TOKENS - 1)) * this.rowBytes;
  }

  /** Exact causal attention over every stored row (prefill, dense layers). */
  attendDense(pool: ThreadPool, q: Ptr, qPos: Ptr, out: Ptr, n: number, length: number): void {
    const d = this.d;
    this.bind();
    this.checkQueries(n);
    // several queries (a prompt chunk, a speculative verification) read each K/V tile once for all
    // of them (same results as one query at a time)
    pool.run(attentionOp, this.layer.arena, q, qPos, this.k, this.v, out, d.dtype, n, length, d.heads, d.kvHeads, d.headDim,
      1 / Math.sqrt(d.headDim), this.pages, this.pageShift, this.layer.state);
  }

  /** Checks one attention call's query count against the layer's plan. */
  checkQueries(n: number): void {
    if (n > this.layer.d.maxQueries) throw new RangeError(`attention: ${n} queries exceed the ${this.layer.d.maxQueries} this layer was planned for`);
  }

  /** Key row of token s, KV head g, as f32 (into dst). */
  readKey(s: number, g: number, dst: Float32Array): Float32Array {
    const D = this.d.headDim, p = this.k + this.offset(s) + g * D * (this.f16 ? 2 : 4), a = this.layer.arena;
    if (this.f16) { const h = a.u16(p, D); for (let i = 0; i < D; i++) dst[i] = F16[h[i]!]!; }
    else dst.set(a.f32(p, D));
    return dst;
  }

  /** Calls fn(byte offset of row s0, s0, s1) for each run [s0, s1) of [r0, r1) that lies in one page. */
  forRuns(r0: number, r1: number, fn: (offset: number, s0: number, s1: number) => void): void {
    for (let s = r0; s < r1;) {
      const e = Math.min(r1, (Math.floor(s / KV_PAGE_TOKENS) + 1) * KV_PAGE_TOKENS);
      fn(this.offset(s), s, e);
      s = e;
    }
  }
}

/** One sequence's part of a batched dense attention: as KVStore.attendDense's arguments. */
export interface DenseQuery { kv: KVStore; q: Ptr; qPos: Ptr; out: Ptr; n: number; length: number }

/** attendDense for several sequences of one layer in one pool job: work units are (sequence,
 *  query head) pairs, or (sequence, key chunk, KV head) for a long sequence (attentionUnits), spread
 *  over the threads, instead of one job per sequence whose few heads split unevenly. Each sequence's output bits are those of attendDense on its own. Meant for decode
 *  rows (one query per sequence); the layer's scratch also holds one item of up to maxQueries. */
export function attendDenseBatch(pool: ThreadPool, items: readonly DenseQuery[]): void {
  if (items.length === 0) return;
  const first = items[0]!.kv, L = first.layer, d = first.d;
  if (items.length > L.d.sequences) throw new RangeError(`attention: ${items.length} sequences exceed the ${L.d.sequences} slots this layer was planned for`);
  const W = ATTENTION_ITEM_WORDS, table = L.arena.i32(L.batch, items.length * W); // pointers ≥ 2^31 wrap to the same bits
  const seen = new Set<KVStore>();
  let keys = 0, units = 0, state = L.state;
  items.forEach(({ kv, q, qPos, out, n, length }, i) => {
    if (kv.layer !== L) throw new Error('attention: a batched job covers one layer; every sequence\'s store must belong to the same layer');
    if (seen.has(kv)) throw new Error('attention: the same sequence appears twice in one batched job');
    seen.add(kv);
    kv.bind();
    kv.checkQueries(n);
    const w = i * W;
    table[w + ATTENTION_ITEM.Q] = q; table[w + ATTENTION_ITEM.QPOS] = qPos; table[w + ATTENTION_ITEM.OUT] = out;
    table[w + ATTENTION_ITEM.N] = n; table[w + ATTENTION_ITEM.S] = length; table[w + ATTENTION_ITEM.PAGES] = kv.pages;
    table[w + ATTENTION_ITEM.STATE] = state; // each item its own scratch, packed
    table[w + ATTENTION_ITEM.FIRST] = units;
    units += attentionUnits(n, length, d.heads, d.kvHeads);
    state += attentionStateBytes(n, d.heads, d.kvHeads, d.headDim, length);
    if (state > L.state + L.stateBytes) {
      throw new RangeError(`attention: the batched job's ${items.length} sequences need more attention scratch than the layer holds ` +
        `(one query per sequence slot plus one call of ${L.d.maxQueries}); run sequences with several queries through attendDense`);
    }
    keys += n * length;
  });
  // each unit's work, so the pool splits by keys (units of a split item's last chunk, or of a short
  // sequence next to a long one, are light)
  const costs = new Float64Array(units);
  for (let i = 0, u = 0; i < items.length; i++) {
    const { n, length } = items[i]!;
    for (let j = 0, e = attentionUnits(n, length, d.heads, d.kvHeads); j < e; j++) costs[u++] = attentionUnitCost(n, length, d.heads, d.kvHeads, j);
  }
  pool.run(attentionBatchOp, L.arena, L.batch, items.length, L.k, L.v, d.dtype, d.heads, d.kvHeads, d.headDim,
    1 / Math.sqrt(d.headDim), KV_PAGE_SHIFT, keys, units, costs);
}

/** f16 bits → f32 value for all 65536 patterns. */
const F16 = (() => { const t = new Float32Array(65536); for (let i = 0; i < 65536; i++) t[i] = f16ToF32(i); return t; })();

/** Dense layers from a parameter: a number, "0+16", or "none"; `fallback` when absent. */
export function denseLayers(value: number | string | undefined, layers: number, fallback: number[]): Set<number> {
  if (value === undefined) return new Set(fallback.filter((l) => l < layers));
  if (value === 'none') return new Set();
  const list = typeof value === 'number' ? [value] : value.split('+').map(Number);
  for (const l of list) {
    if (!Number.isInteger(l) || l < 0) throw new RangeError(`attention: dense layers must be layer indices like dense=0+16 (or dense=none), got "${value}"`);
  }
  return new Set(list);
}

/** Rejects parameters a backend does not know (a typo would otherwise silently use the default). */
export function checkParams(kind: string, params: Readonly<Record<string, number | string>>, known: readonly string[]): void {
  for (const key of Object.keys(params)) {
    if (!known.includes(key)) throw new RangeError(`attention: ${kind} has no parameter "${key}"; known: ${known.join(', ')}`);
  }
}

/** A numeric parameter within [min, max] (integers only when `integer`). */
export function numParam(kind: string, params: Readonly<Record<string, number | string>>, key: string, fallback: number,
                         min: number, max: number, integer = true): number {
  const v = params[key] ?? fallback;
  if (typeof v !== 'number' || !(v >= min && v <= max) || (integer && !Number.isInteger(v))) {
    throw new RangeError(`attention: ${kind} parameter ${key} must be ${integer ? 'an integer' : 'a number'} in [${min}, ${max}], got ${v}`);
  }
  return v;
}

/** Arena bytes of singleSequenceKV(d). */
export function singleSequenceKVBytes(d: LayerAttentionDims): number {
  return planArena(LayerKV.sizes(singleDims(d))) + 64;
}

function singleDims(d: LayerAttentionDims): LayerKVDims {
  const pages = Math.ceil(d.capacity / KV_PAGE_TOKENS);
  return { heads: d.heads, kvHeads: d.kvHeads, headDim: d.headDim, dtype: d.dtype, pages, maxPagesPerSequence: pages, maxQueries: d.capacity, sequences: 1 };
}

/** K/V rows for one sequence of up to d.capacity positions, every page allocated up front and in
 *  order (so the rows are also contiguous): for harnesses, benchmarks and tests that drive one
 *  layer's attention directly, without a model. */
export function singleSequenceKV(arena: Arena, d: LayerAttentionDims): KVStore {
  const dims = singleDims(d);
  const layer = new LayerKV(arena, dims);
  const seq = new SequencePages();
  seq.ids = Array.from({ length: dims.pages }, (_, i) => i);
  return new KVStore(layer, seq, d, 0);
}
