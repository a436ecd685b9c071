// MagicPIG (PAPERS.md §1): LSH *sampling* attention for decoding. Per layer the K/V rows stay dense
// in memory; the "middle" tokens (all but 4 sinks and the last 64 prompt tokens) are SimHashed into
// L tables of K bits (./lsh-tables.ts) lazily at the first decode step. Each decode step, every query
// head hashes its (uncentered) query, samples the keys sharing its bucket in ≥ 2 tables, and weights
// them by 1/u_i (logit s_i − log(u_i + floor)); the sinks, the window and the not-yet-hashed generated
// tokens are attended exactly, and the two partial softmaxes merge by log-sum-exp — all in one SIMD
// kernel (kernels/sparse.ts) run over query heads on every thread.
// Prefill (n > 1) and the dense layers are exact dense attention.
// Generated tokens stay dense until `threshold` of them are past the window; then they are hashed in
// (the reference never does this), so the dense part stays ≤ sinks + window + threshold tokens.

import type { Ptr } from '../kernels/types.js';
import type { Arena } from '../runtime/arena.js';
import { planArena } from '../runtime/arena.js';
import { allocLayout, layoutBytes } from '../runtime/layout.js';
import type { ThreadPool } from '../runtime/pool.js';
import { magicpigOp } from './sparse-pool-ops.js';
import type { AttentionBackend, LayerAttentionDims } from './create.js';
import { DenseAttention } from './dense.js';
import { checkParams, denseLayers, numParam, type KVStore } from './kv-store.js';
import { DESC, DESC_WORDS, MAGICPIG_CHUNK, counterStride } from './magicpig-desc.js';
import { LOGU_STEPS, logUTable } from './lsh-math.js';
import { LshTables, lshBytesPerToken, lshTableSizes, type LshDims } from './lsh-tables.js';
import type { AttentionPhase, LayerAttention } from './types.js';

export interface MagicPigParams {
  /** Bits per table (bucket count 2^K). Paper default 10. */
  K: number;
  /** Tables. Paper default 150 (≈2% of keys sampled). */
  L: number;
  /** Attention-sink tokens kept dense. */
  sinks: number;
  /** Most recent tokens kept dense (the last 64 prompt tokens in the paper). */
  window: number;
  /** Layers that stay fully dense (paper: {0, 16} of 32 — the first and the middle layer). */
  dense: Set<number>;
  /** Generated tokens past the window that stay dense before being hashed into the tables. */
  threshold: number;
  /** Tokens the delta tables hold before they are merged into the main ones. */
  deltaCap: number;
  /** Floor added to u_i before its log (caps an importance weight at 1/floor). */
  floor: number;
  /** Seed of the hash directions. */
  seed: number;
}

const KNOWN = ['K', 'L', 'sinks', 'window', 'dense', 'threshold', 'delta', 'floor', 'seed'] as const;

export function magicpigParams(p: Readonly<Record<string, number | string>>, layers: number): MagicPigParams {
  checkParams('magicpig', p, KNOWN);
  const n = (key: string, fallback: number, min: number, max: number, integer = true) => numParam('magicpig', p, key, fallback, min, max, integer);
  const threshold = n('threshold', 256, 1, 1 << 20);
  return {
    K: n('K', 10, 0, 16), L: n('L', 150, 2, 1024), sinks: n('sinks', 4, 0, 1 << 20), window: n('window', 64, 0, 1 << 20),
    dense: denseLayers(p.dense, layers, [0, Math.floor(layers / 2)]), threshold,
    deltaCap: n('delta', 4096, threshold, 1 << 24), floor: n('floor', 1e-4, 0, 1, false), seed: n('seed', 1, 0, 2 ** 31),
  };
}

function lshDims(d: LayerAttentionDims, m: MagicPigParams): LshDims {
  return { layer: d.layer, kvHeads: d.kvHeads, headDim: d.headDim, capacity: d.capacity, K: m.K, L: m.L, deltaCap: Math.min(m.deltaCap, d.capacity), seed: m.seed };
}

function denseIdsCap(m: MagicPigParams): number { return m.sinks + m.window + m.threshold + 2; }

/** The decode-step buffers of one sequence's MagicPIG state in a layer (besides its tables): one
 *  declaration that plans the arena and hands out the pointers. */
function decodeLayout(d: LayerAttentionDims, m: MagicPigParams) {
  const H = d.heads, cap = d.capacity, D = d.headDim;
  return {
    counters: H * counterStride(cap),          // hit bits per query head
    lists: H * cap * 4,                        // sampled ids per query head
    logU: (LOGU_STEPS + 1) * 4,                // log(u + floor) over cos(q, k − μ)
    denseIds: denseIdsCap(m) * 4,              // sinks, window, generated tokens
    stats: H * 4,                              // keys sampled per query head
    qb: H * m.L * 4,                           // the query's bucket in every table
    parts: H * 2 * (D + 4) * 4,                // two partial softmaxes per head
    scratch: H * MAGICPIG_CHUNK * 4,           // a chunk's logits per head
    desc: DESC_WORDS * 4,                      // the kernel's descriptor
  };
}

/** Arena bytes of one sequence's MagicPIG state in a layer. */
function slotBytes(d: LayerAttentionDims, m: MagicPigParams): number {
  return planArena(lshTableSizes(lshDims(d, m))) + 64 + layoutBytes(decodeLayout(d, m));
}

export class MagicPigAttention implements LayerAttention {
  readonly bytesPerToken: number;
  readonly kv: KVStore;
  readonly tables: LshTables;
  private readonly desc: Ptr;
  private readonly denseIds: Ptr;
  private readonly stats: Ptr;
  private built = false;
  private sawDecode = false;
  /** Positions before the first decode step (valid once sawDecode). */
  private promptLength = 0;
  /** Keys sampled per query head at the last decode step, and the context it saw. */
  lastSampled = 0;
  lastLength = 0;

  constructor(private readonly arena: Arena, private readonly pool: ThreadPool, private readonly d: LayerAttentionDims, kv: KVStore,
              readonly p: MagicPigParams) {
    if (d.headDim % 4 !== 0) throw new RangeError(`magicpig: head_dim must be a multiple of 4, got ${d.headDim}`);
    this.kv = kv;
    this.tables = new LshTables(arena, pool, this.kv, lshDims(d, p));
    const H = d.heads, cap = d.capacity;
    const { counters, lists, logU, denseIds, stats, qb, parts, scratch, desc } = allocLayout(arena, decodeLayout(d, p));
    this.denseIds = denseIds; this.stats = stats; this.desc = desc;
    arena.f32(logU, LOGU_STEPS + 1).set(logUTable(p.K, p.L, p.floor));
    const t = this.tables, dcap = t.d.deltaCap;
    const w = arena.i32(this.desc, DESC_WORDS);
    const set: [number, number][] = [
      [DESC.K, this.kv.k], [DESC.V, this.kv.v], [DESC.F16, this.kv.f16 ? 1 : 0], [DESC.ROW, this.kv.rowBytes],
      [DESC.H, H], [DESC.HKV, d.kvHeads], [DESC.D, d.headDim], [DESC.KBITS, p.K], [DESC.L, p.L], [DESC.R, t.R], [DESC.MU, t.mu],
      [DESC.KNORM, t.knorm], [DESC.CAP, cap], [DESC.MAIN_OFF, t.mainOff], [DESC.MAIN_IDS, t.mainIds], [DESC.MAIN_STRIDE, cap],
      [DESC.DELTA_OFF, t.deltaOff], [DESC.DELTA_IDS, t.deltaIds], [DESC.DELTA_STRIDE, dcap], [DESC.COUNTERS, counters],
      [DESC.LISTS, lists], [DESC.LOGU, logU], [DESC.LOGU_N, LOGU_STEPS], [DESC.DENSE_IDS, this.denseIds], [DESC.STATS, this.stats],
      [DESC.QB, qb], [DESC.PARTS, parts], [DESC.SCRATCH, scratch], [DESC.PAGES, kv.pages], [DESC.PAGE_SHIFT, kv.pageShift],
    ];
    for (const [i, v] of set) w[i] = v | 0;
    arena.f32(this.desc, DESC_WORDS)[DESC.SCALE] = 1 / Math.sqrt(d.headDim);
    this.bytesPerToken = 2 * this.kv.rowBytes + lshBytesPerToken({ kvHeads: d.kvHeads, L: p.L }) + H * 5;
  }

  store(k: Ptr, v: Ptr, p0: number, n: number): void { this.kv.store(k, v, p0, n); }

  attend(q: Ptr, qPos: Ptr, out: Ptr, n: number, length: number, phase?: AttentionPhase): void {
    // prompt tokens (and multi-token verification) are exact; sparsity is for one decoded token
    if (n > 1 || phase === 'prefill') {                                                                   // prefill is dense
      if (phase !== 'decode') this.observe();
      this.kv.attendDense(this.pool, q, qPos, out, n, length);
      return;
    }
    this.kv.bind();
    this.ensureTables(length);
    const p = this.p, t = this.tables;
    // Dense part: sinks, then everything from the end of the hashed range (window + generated).
    const ids = this.arena.i32(this.denseIds, denseIdsCap(p));
    const tail = this.built ? t.hashedEnd : Math.min(p.sinks, length);
    let c = 0;
    for (let s = 0; s < Math.min(p.sinks, length); s++) ids[c++] = s;
    for (let s = Math.max(tail, Math.min(p.sinks, length)); s < length; s++) ids[c++] = s;
    const w = this.arena.i32(this.desc, DESC_WORDS);
    w[DESC.Q] = q; w[DESC.OUT] = out; w[DESC.DENSE_N] = c;
    w[DESC.MAIN_N] = this.built ? t.mainCount : 0; w[DESC.DELTA_N] = this.built ? t.deltaCount : 0;
    w[DESC.ID_LO] = this.built ? t.start : 0; w[DESC.ID_HI] = this.built ? t.hashedEnd : 0;
    const H = this.d.heads, hashed = this.built ? t.hashedEnd - t.start : 0;
    // bytes touched: table walk (ids + hit bits) + expected sampled rows + dense rows + hashing q
    const work = H * (hashed * p.L / (1 << p.K) * 10 + (hashed * 0.03 + c) * this.kv.rowBytes * 2 / this.d.kvHeads + p.K * p.L * this.d.headDim * 4);
    this.pool.run(magicpigOp, this.arena, this.desc, H, work);
    const st = this.arena.i32(this.stats, H);
    let sum = 0;
    for (let h = 0; h < H; h++) sum += st[h]!;
    this.lastSampled = sum / H;
    this.lastLength = length;
  }

  // Tables appear at the first decode step (over [sinks, prompt end − window)); later, generated
  // tokens older than the window are hashed in `threshold` at a time.
  private ensureTables(length: number): void {
    const p = this.p, target = length - 1 - p.window;
    if (!this.sawDecode) this.promptLength = length - 1;        // the first decode step feeds one token after the prompt
    if (!this.built) {
      if (target - p.sinks >= 1 && (!this.sawDecode || target - p.sinks >= p.threshold)) {
        this.tables.build(p.sinks, target);
        this.built = true;
      }
      this.sawDecode = true;
    } else if (target - this.tables.hashedEnd >= p.threshold) {
      this.tables.append(target);
    }
  }

  // Prompt rows after a decode step start a new prompt (a prefix kept for the next request, a chat's
  // next turn): the tables are rebuilt at its first decode step over all of it, with its own key
  // mean, exactly as for a fresh prompt — so an answer never depends on what the model was asked
  // before. As a draft attention it is told of the target's prompt rows here.
  observe(): void { if (this.sawDecode) this.forget(); }

  // A truncation into the prompt forgets the tables too. One that keeps the prompt and every hashed
  // token (a speculative rollback of generated tokens) keeps them: they hold only positions below the cut.
  truncate(n: number): void {
    if (this.sawDecode && n >= this.promptLength && (!this.built || n >= this.tables.hashedEnd)) return;
    this.forget();
  }

  reset(_n: number): void { this.forget(); }

  private forget(): void {
    if (this.built) this.tables.clear();
    this.built = false;
    this.sawDecode = false;
  }
}

export function magicpigBackend(params: Readonly<Record<string, number | string>>): AttentionBackend {
  magicpigParams(params, 1); // reject bad parameters before any arena is sized
  return {
    slotBytes: (d) => {
      const m = magicpigParams(params, d.layers);
      return m.dense.has(d.layer) ? 0 : slotBytes(d, m);
    },
    create: (arena, pool, d, kv) => {
      const m = magicpigParams(params, d.layers);
      return m.dense.has(d.layer) ? new DenseAttention(kv, pool) : new MagicPigAttention(arena, pool, d, kv, m);
    },
  };
}
