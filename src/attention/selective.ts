// The baselines MagicPIG is measured against (PAPERS.md §1), and SnapKV, a draft cache of MagicDec
// (§2): each a rule that picks which keys one query head attends to during decoding; the chosen rows
// are then attended with the gathered SIMD
// kernel (kernels/sparse.ts attendList), optionally with per-key logit offsets:
//   topk             exact top-k keys by score (+ sinks and local window); k or fraction
//   quest            pages of 16 keys with per-dim min/max; page score Σ_d max(q_d·min_d, q_d·max_d);
//                    the top pages within a budget fraction (default 4%) among the pages before the
//                    local window, plus, always, the pages holding the last ≥ `window` (64) prompt
//                    tokens and every generated token (as the reference does)
//   streaming        sinks + recent window (StreamingLLM)
//   snapkv           per KV head, the prompt keys the last `window` (32) prompt queries attend to
//                    most, chosen once per prompt (SnapKV; MagicDec's second draft), `budget` keys
//                    with the window, plus every position after the prompt
//   oracle-sampling  `budget` keys drawn i.i.d. from the exact softmax; the estimate is the mean of
//                    their values (logits shifted to 0), unbiased for the dense output
// Prefill (n > 1) and dense layers are exact. Baselines run on the calling thread (they are for
// accuracy evaluation; MagicPIG is the fast path).
// Each decode step records `lastTouched`, the keys read per query head (mean over heads), as the
// reference counts cost: the attended keys; for quest also 2 rows per scored page (its min and max
// vectors, each the size of a key); for oracle sampling the distinct keys drawn.

import type { Ptr } from '../kernels/types.js';
import type { Arena } from '../runtime/arena.js';
import { allocLayout, layoutBytes } from '../runtime/layout.js';
import type { ThreadPool } from '../runtime/pool.js';
import type { AttentionBackend, LayerAttentionDims } from './create.js';
import { DenseAttention } from './dense.js';
import { checkParams, denseLayers, numParam, type KVStore } from './kv-store.js';
import { rng } from './lsh-math.js';
import { deriveSeed } from '../data/rng.js';
import { sparseKernels, type SparseKernels } from './sparse-kernels.js';
import { attendListOp } from './sparse-pool-ops.js';
import type { AttentionPhase, LayerAttention } from './types.js';

export type SelectiveKind = 'topk' | 'quest' | 'streaming' | 'oracle-sampling' | 'snapkv';
type Params = Readonly<Record<string, number | string>>;

export const QUEST_PAGE = 16;

interface Selection {
  /** Writes the chosen ids (and logit offsets when `biased`) for head h; returns their count. */
  select(h: number, q: Float32Array, length: number, ids: Int32Array, bias: Float32Array): number;
  /** Key-sized rows the last select read, given its `count` ids (default: count). */
  touched?(ids: Int32Array, count: number): number;
  readonly biased: boolean;
  /** Which heads get the same ids, whatever their query: 'all' (StreamingLLM) or those of one KV
   *  head ('group': SnapKV's GQA-summed choice). The decode step then selects once per list and
   *  splits the heads over the thread pool (attendListOp). */
  readonly sharedBy?: 'all' | 'group';
  /** Called on store with the new f32 key rows (quest keeps page bounds). */
  onStore?(k: Float32Array, p0: number, n: number): void;
  readonly bytesPerToken: number;
  /** Called when the cache is cut back to n tokens (a new prompt, or a kept prefix). */
  truncate?(n: number): void;
  /** Called when the sequence starts over with n positions already stored (see LayerAttention.reset). */
  reset?(n: number): void;
  /** Called with the queries (n, H, D) of prompt rows at positions pos (see LayerAttention.observe). */
  observe?(q: Float32Array, pos: Int32Array, n: number): void;
}

interface Ctx { d: LayerAttentionDims; kv: KVStore; sk: () => SparseKernels; scores: Ptr; arena: Arena; scratchQ: Ptr }

/** scores (length) = scale·q·k_s for head h's KV head, in the arena scratch; returned as a view. */
function allScores(c: Ctx, h: number, q: Float32Array, length: number): Float32Array {
  const { headDim: D, heads: H, kvHeads: G } = c.d, g = Math.floor(h / (H / G)), es = c.kv.f16 ? 2 : 4;
  c.arena.f32(c.scratchQ, D).set(q);
  c.sk().sparseScores(c.scratchQ, c.kv.k + g * D * es, c.kv.f16, c.kv, D, 1 / Math.sqrt(D), 0, length, c.scores);
  return c.arena.f32(c.scores, length);
}

/** Sinks [0, sinks) and window [length − window, length), written in order; returns the count. */
function sinksAndWindow(ids: Int32Array, length: number, sinks: number, window: number): number {
  let c = 0;
  for (let s = 0; s < Math.min(sinks, length); s++) ids[c++] = s;
  for (let s = Math.max(sinks, length - window); s < length; s++) ids[c++] = s;
  return c;
}

function streaming(p: Params): (c: Ctx) => Selection {
  const sinks = numParam('streaming', p, 'sinks', 4, 0, 1 << 24), window = numParam('streaming', p, 'window', 256, 1, 1 << 24);
  return () => ({ biased: false, bytesPerToken: 0, sharedBy: 'all', select: (_h, _q, length, ids) => sinksAndWindow(ids, length, sinks, window) });
}

function topk(p: Params): (c: Ctx) => Selection {
  const sinks = numParam('topk', p, 'sinks', 4, 0, 1 << 24), window = numParam('topk', p, 'window', 64, 0, 1 << 24);
  const k = p.k === undefined ? undefined : numParam('topk', p, 'k', 0, 0, 2 ** 31);
  const fraction = numParam('topk', p, 'fraction', 0.02, 0, 1, false);
  return (c) => {
    const order = new Int32Array(c.d.capacity);
    return {
      biased: false, bytesPerToken: 0,
      select(h, q, length, ids) {
        let n = sinksAndWindow(ids, length, sinks, window);
        const lo = Math.min(sinks, length), hi = Math.max(lo, length - window), mid = hi - lo;
        const want = Math.min(mid, k ?? Math.ceil(fraction * length));
        if (want === 0) return n;
        if (want === mid) { for (let s = lo; s < hi; s++) ids[n++] = s; return n; }
        const sc = allScores(c, h, q, length);
        for (let i = 0; i < mid; i++) order[i] = lo + i;
        const o = order.subarray(0, mid);
        o.sort((a, b) => sc[b]! - sc[a]! || a - b);
        for (let i = 0; i < want; i++) ids[n++] = o[i]!;
        return n;
      },
    };
  };
}

function quest(p: Params): (c: Ctx) => Selection {
  const budget = numParam('quest', p, 'budget', 0.04, 0, 1, false);
  const window = numParam('quest', p, 'window', 64, 0, 1 << 24);
  return (c) => {
    const { headDim: D, kvHeads: G, heads: H, capacity } = c.d, pages = Math.ceil(capacity / QUEST_PAGE), kvDim = G * D;
    const lo = new Float32Array(pages * kvDim).fill(Infinity), hi = new Float32Array(pages * kvDim).fill(-Infinity);
    const order = new Int32Array(pages), score = new Float64Array(pages);
    // Bounds over the keys as stored (f16-rounded in an f16 cache), so a page rebuilt from the
    // store after a truncation is the same as one built while storing.
    const row = new Float32Array(D);
    // Start of the always-attended tail: the page holding the (window)-th last prompt token, fixed at
    // the first decode step after a new prompt (−1: not yet). Pages below it compete for the budget.
    let tail = -1, scored = 0;
    const add = (s: number) => {
      const pg = Math.floor(s / QUEST_PAGE) * kvDim;
      if (s % QUEST_PAGE === 0) { lo.fill(Infinity, pg, pg + kvDim); hi.fill(-Infinity, pg, pg + kvDim); }
      for (let g = 0; g < G; g++) {
        c.kv.readKey(s, g, row);
        for (let d = 0; d < D; d++) { const o = pg + g * D + d, x = row[d]!; if (x < lo[o]!) lo[o] = x; if (x > hi[o]!) hi[o] = x; }
      }
    };
    return {
      biased: false, bytesPerToken: (2 * kvDim * 4) / QUEST_PAGE,
      onStore(_k, p0, n) { for (let i = 0; i < n; i++) add(p0 + i); },
      // the page holding token n keeps the bounds of its tokens below n only (none: the next store resets it)
      truncate(n) { for (let s = n - (n % QUEST_PAGE); s < n; s++) add(s); tail = -1; },
      reset(n) { for (let s = 0; s < n; s++) add(s); tail = -1; },
      select(h, q, length, ids) {
        // the decoded token is the last stored row: the prompt is [0, length − 1)
        if (tail < 0) tail = Math.max(0, Math.floor((length - 1 - window) / QUEST_PAGE) * QUEST_PAGE);
        const g = Math.floor(h / (H / G)), np = Math.min(tail, length) / QUEST_PAGE;
        const keep = Math.min(np, Math.max(1, Math.ceil((budget * length) / QUEST_PAGE)));
        scored = np;
        for (let pg = 0; pg < np; pg++) {
          let s = 0;
          for (let d = 0; d < D; d++) { const o = pg * kvDim + g * D + d, qd = q[d]!; s += Math.max(qd * lo[o]!, qd * hi[o]!); }
          score[pg] = s; order[pg] = pg;
        }
        const o = order.subarray(0, np);
        o.sort((a, b) => score[b]! - score[a]! || a - b);
        const chosen = o.subarray(0, keep).slice().sort();
        let n = 0;
        for (const pg of chosen) for (let s = pg * QUEST_PAGE; s < (pg + 1) * QUEST_PAGE; s++) ids[n++] = s;
        for (let s = Math.min(tail, length); s < length; s++) ids[n++] = s;
        return n;
      },
      touched: (_ids, count) => count + 2 * scored,
    };
  };
}

function oracleSampling(p: Params): (c: Ctx) => Selection {
  const fraction = numParam('oracle-sampling', p, 'budget', 0.02, 0, 1, false);
  const samples = p.samples === undefined ? undefined : numParam('oracle-sampling', p, 'samples', 1, 1, 2 ** 31);
  const seed = numParam('oracle-sampling', p, 'seed', 1, 0, 2 ** 31);
  return (c) => {
    const cdf = new Float64Array(c.d.capacity);
    // one stream per layer, restarted at every truncation (a new prompt, or a kept prefix): a
    // prompt's answer does not depend on what the model was asked before
    let next = rng(deriveSeed(seed, c.d.layer));
    return {
      biased: true, bytesPerToken: 0,
      truncate() { next = rng(deriveSeed(seed, c.d.layer)); },
      reset() { next = rng(deriveSeed(seed, c.d.layer)); },
      touched(ids, count) { return new Set(ids.subarray(0, count)).size; },
      select(h, q, length, ids, bias) {
        const sc = allScores(c, h, q, length);
        let m = -Infinity;
        for (let s = 0; s < length; s++) m = Math.max(m, sc[s]!);
        let acc = 0;
        for (let s = 0; s < length; s++) { acc += Math.exp(sc[s]! - m); cdf[s] = acc; }
        const n = Math.min(c.d.capacity, samples ?? Math.max(1, Math.ceil(fraction * length)));
        for (let i = 0; i < n; i++) {
          const x = next() * acc;
          let a = 0, b = length - 1;                       // first s with cdf[s] > x
          while (a < b) { const mid = (a + b) >> 1; if (cdf[mid]! > x) b = mid; else a = mid + 1; }
          ids[i] = a;
          bias[i] = -sc[a]!;                               // every drawn key gets logit 0: the mean of values
        }
        return n;
      },
    };
  };
}

// SnapKV (Li et al. 2024), as MagicDec drafts with it: once per prompt, the queries of the last
// `window` prompt positions score every earlier key (softmax per query head over the keys it sees),
// the probabilities are summed over those queries, average-pooled over `pool` neighbouring positions
// and summed over the GQA group; per KV head the `budget − window` best prompt keys before the window
// are kept. Decode reads those, the window, and every position after the prompt (generated tokens,
// whose exact K/V the verification step writes). Positions stay absolute. The queries are the
// target's own prefill queries (`observe`); without any (a forked prefix decoded at once) the
// keys kept are the `budget` most recent ones.
function snapkv(p: Params): (c: Ctx) => Selection {
  const budget = numParam('snapkv', p, 'budget', 512, 1, 1 << 24), window = numParam('snapkv', p, 'window', 32, 1, 1 << 16);
  const pool = numParam('snapkv', p, 'pool', 5, 1, 255);
  if (window > budget) throw new RangeError(`attention: snapkv window (${window}) must not exceed its budget (${budget}), which includes it`);
  if (pool % 2 === 0) throw new RangeError(`attention: snapkv pool must be odd (a window centred on each key), got ${pool}`);
  return (c) => {
    const { heads: H, kvHeads: G, headDim: D } = c.d, group = H / G, rowFloats = H * D;
    const obsQ = new Float32Array(window * rowFloats), obsPos = new Int32Array(window).fill(-1);
    let promptEnd = 0;                   // one past the last prompt position seen
    let chosenFor = -1;                  // the promptEnd the selection below was made for
    const chosen: Int32Array[] = Array.from({ length: G }, () => new Int32Array(0));
    const choose = () => {
      const prefixEnd = Math.max(0, promptEnd - window), keep = budget - window;
      const rows: number[] = [];
      for (let i = 0; i < window; i++) if (obsPos[i]! >= prefixEnd && obsPos[i]! < promptEnd) rows.push(i);
      for (let g = 0; g < G; g++) {
        if (prefixEnd <= keep) { chosen[g] = Int32Array.from({ length: prefixEnd }, (_, j) => j); continue; }
        if (rows.length === 0) { chosen[g] = Int32Array.from({ length: keep }, (_, j) => prefixEnd - keep + j); continue; }
        const acc = new Float64Array(prefixEnd);
        for (const i of rows) {
          for (let h = g * group; h < (g + 1) * group; h++) {
            const sc = allScores(c, h, obsQ.subarray(i * rowFloats + h * D, i * rowFloats + (h + 1) * D), obsPos[i]! + 1);
            let m = -Infinity, z = 0;
            for (const x of sc) m = Math.max(m, x);
            for (const x of sc) z += Math.exp(x - m);
            for (let j = 0; j < prefixEnd; j++) acc[j] += Math.exp(sc[j]! - m) / z;
          }
        }
        const pooled = new Float64Array(prefixEnd), r = (pool - 1) / 2;
        for (let j = 0; j < prefixEnd; j++) {
          let s = 0;
          for (let k = Math.max(0, j - r); k <= Math.min(prefixEnd - 1, j + r); k++) s += acc[k]!;
          pooled[j] = s / pool;
        }
        const order = Int32Array.from({ length: prefixEnd }, (_, j) => j);
        order.sort((a, b) => pooled[b]! - pooled[a]! || a - b);
        chosen[g] = order.slice(0, keep).sort();
      }
      chosenFor = promptEnd;
    };
    const forget = (n: number) => {
      for (let i = 0; i < window; i++) if (obsPos[i]! >= n) obsPos[i] = -1;
      promptEnd = n;
      chosenFor = -1;
    };
    return {
      biased: false, bytesPerToken: 0, sharedBy: 'group',
      observe(q, pos, n) {
        for (let i = 0; i < n; i++) {
          const slot = pos[i]! % window;
          obsQ.set(q.subarray(i * rowFloats, (i + 1) * rowFloats), slot * rowFloats);
          obsPos[slot] = pos[i]!;
          promptEnd = Math.max(promptEnd, pos[i]! + 1);
        }
      },
      // cutting into the prompt starts a new one; cutting generated tokens (a speculative rollback)
      // keeps the selection, which only ever covers prompt positions
      truncate(n) { if (n < promptEnd) forget(n); },
      reset(n) { forget(0); promptEnd = n; },
      select(h, _q, length, ids) {
        if (chosenFor !== promptEnd) choose();
        const g = Math.floor(h / group), sel = chosen[g]!;
        ids.set(sel);
        let n = sel.length;
        for (let s = Math.max(0, promptEnd - window); s < length; s++) ids[n++] = s;
        return n;
      },
    };
  };
}

class SelectiveAttention implements LayerAttention {
  readonly bytesPerToken: number;
  private readonly kv: KVStore;
  private readonly sel: Selection;
  private readonly ids: Ptr; private readonly bias: Ptr; private readonly part: Ptr; private readonly lse: Ptr;
  private readonly parts: Ptr; private readonly lses: Ptr;
  private readonly scratchQ: Ptr;
  private readonly sk: SparseKernels;
  /** Keys read per query head at the last decode step (mean over heads; see the header). */
  lastTouched = 0;

  constructor(private readonly arena: Arena, private readonly pool: ThreadPool, private readonly d: LayerAttentionDims, kv: KVStore,
              make: (c: Ctx) => Selection) {
    if (d.headDim % 4 !== 0) throw new RangeError(`sparse attention: head_dim must be a multiple of 4, got ${d.headDim}`);
    this.kv = kv;
    const { ids, bias, scores, part, lse, parts, lses, scratchQ } = allocLayout(arena, selectiveScratch(d));
    this.ids = ids; this.bias = bias; this.part = part; this.lse = lse; this.parts = parts; this.lses = lses; this.scratchQ = scratchQ;
    this.sk = sparseKernels(arena.kernelKind, arena.memory);
    this.sel = make({ d, kv: this.kv, sk: () => this.sk, scores, arena, scratchQ });
    this.bytesPerToken = 2 * this.kv.rowBytes + this.sel.bytesPerToken;
  }

  store(k: Ptr, v: Ptr, p0: number, n: number): void {
    this.kv.store(k, v, p0, n);
    this.sel.onStore?.(this.arena.f32(k, n * this.d.kvHeads * this.d.headDim), p0, n);
  }

  observe(q: Ptr, qPos: Ptr, n: number): void {
    this.sel.observe?.(this.arena.f32(q, n * this.d.heads * this.d.headDim), this.arena.i32(qPos, n), n);
  }

  attend(q: Ptr, qPos: Ptr, out: Ptr, n: number, length: number, phase?: AttentionPhase): void {
    // prompt tokens (and multi-token verification) are exact; sparsity is for one decoded token
    if (n > 1 || phase === 'prefill') {
      if (phase !== 'decode') this.observe(q, qPos, n);
      this.kv.attendDense(this.pool, q, qPos, out, n, length);
      return;
    }
    const { heads: H, kvHeads: G, headDim: D, capacity } = this.d, es = this.kv.f16 ? 2 : 4;
    const ids = this.arena.i32(this.ids, capacity), bias = this.arena.f32(this.bias, capacity);
    this.kv.bind();
    if (this.sel.sharedBy !== undefined && this.attendShared(q, out, length, this.sel.sharedBy === 'all' ? 1 : G)) return;
    let touched = 0;
    for (let h = 0; h < H; h++) {
      const qh = this.arena.f32(q + h * D * 4, D).slice(), g = Math.floor(h / (H / G));
      const count = this.sel.select(h, qh, length, ids, bias);
      touched += this.sel.touched?.(ids, count) ?? count;
      this.sk.attendList(q + h * D * 4, this.kv.k + g * D * es, this.kv.v + g * D * es, this.kv.f16, this.kv, D,
        1 / Math.sqrt(D), this.ids, this.sel.biased ? this.bias : 0, count, this.part, this.lse);
      this.arena.f32(out + h * D * 4, D).set(this.arena.f32(this.part, D));
    }
    this.lastTouched = touched / H;
  }

  /** The decode step of a selection shared by heads: one key list per KV head (lists = G) or for
   *  all (lists = 1), chosen once, then the heads split over the thread pool; each head's arithmetic is
   *  the one-head-at-a-time loop's, so the same bits. False (nothing done) when the lists' lengths
   *  differ: the op takes one count. */
  private attendShared(q: Ptr, out: Ptr, length: number, lists: number): boolean {
    const { heads: H, kvHeads: G, headDim: D, capacity } = this.d, bias = this.arena.f32(this.bias, capacity);
    let count = -1, touched = 0;
    for (let l = 0; l < lists; l++) {
      const ids = this.arena.i32(this.ids + l * capacity * 4, capacity);
      const c = this.sel.select(l * (H / G), NO_QUERY, length, ids, bias);   // a shared selection reads no query
      if (count >= 0 && c !== count) return false;
      count = c;
      touched += this.sel.touched?.(ids, c) ?? c;
    }
    this.pool.run(attendListOp, this.arena, q, this.kv.k, this.kv.v, this.kv.f16, this.kv, D, 1 / Math.sqrt(D),
      this.ids, lists === 1 ? 0 : capacity * 4, count, this.parts, this.lses, H, G);
    for (let h = 0; h < H; h++) this.arena.f32(out + h * D * 4, D).set(this.arena.f32(this.parts + h * (D + 4) * 4, D));
    this.lastTouched = touched / lists;
    return true;
  }

  // rows are indexed by position; the selection rule keeps its own state in step (quest's page
  // bounds, oracle sampling's stream)
  truncate(n: number): void { this.sel.truncate?.(n); }
  reset(n: number): void { this.sel.reset?.(n); }
}

/** The query passed to a selection shared by heads (it reads none). */
const NO_QUERY = new Float32Array(0);

// ids and bias hold up to capacity entries (oracle sampling draws at most that many keys).
function selectiveScratch(d: LayerAttentionDims) {
  return {
    ids: d.kvHeads * d.capacity * 4, bias: d.capacity * 4,   // chosen keys (a list per KV head) and their logit offsets
    scores: d.capacity * 4,                      // scores of every key (topk, oracle sampling)
    part: (d.headDim + 4) * 4, lse: 16,          // attendList's output and log-sum-exp
    parts: d.heads * (d.headDim + 4) * 4, lses: d.heads * 4, // the same for every head at once (attendListOp)
    scratchQ: d.headDim * 4,                     // one query head
  };
}

const KNOWN: Record<SelectiveKind, string[]> = {
  topk: ['k', 'fraction', 'sinks', 'window', 'dense'], quest: ['budget', 'window', 'dense'],
  streaming: ['sinks', 'window', 'dense'], 'oracle-sampling': ['budget', 'samples', 'seed', 'dense'],
  snapkv: ['budget', 'window', 'pool', 'dense'],
};
// Dense layers by default: TopK, Quest and oracle sampling as MagicPIG's reference runs them ({0, 1});
// none for StreamingLLM and SnapKV (MagicDec's drafts make every layer sparse).
const DEFAULT_DENSE: Record<SelectiveKind, number[]> = { topk: [0, 1], quest: [0, 1], streaming: [], 'oracle-sampling': [0, 1], snapkv: [] };
const MAKERS: Record<SelectiveKind, (p: Params) => (c: Ctx) => Selection> = { topk, quest, streaming, 'oracle-sampling': oracleSampling, snapkv };

export function selectiveBackend(kind: SelectiveKind, params: Params): AttentionBackend {
  checkParams(kind, params, KNOWN[kind]);
  denseLayers(params.dense, 1, []);
  const make = MAKERS[kind](params);
  const isDense = (d: LayerAttentionDims) => denseLayers(params.dense, d.layers, DEFAULT_DENSE[kind]).has(d.layer);
  return {
    slotBytes: (d) => (isDense(d) ? 0 : layoutBytes(selectiveScratch(d))),
    create: (arena, pool, d, kv) => (isDense(d) ? new DenseAttention(kv, pool) : new SelectiveAttention(arena, pool, d, kv, make)),
  };
}
