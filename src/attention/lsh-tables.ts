// MagicPIG's hash tables for one layer (PAPERS.md §1, "Tables"): per (KV head, table) a CSR layout —
// token ids sorted by bucket plus 2^K + 1 offsets — over the "middle" tokens, which are always a
// contiguous range [start, hashedEnd) of positions:
//   main  CSR of [start, mainEnd): built once after prefill, grown only by merges;
//   delta CSR of [mainEnd, hashedEnd): tokens hashed during generation (≤ deltaCap of them), its
//         codes kept so it can be re-sorted cheaply each time tokens are appended; when full it is
//         merged into main in place (one backward pass per table, O(main) moves).
// The decode kernel walks both. Keys are centered by μ, the mean of the keys tabled at build time
// (later tokens are hashed with the same μ so every code is against one center).
//
// Shape legend: Hkv KV heads, D head dim, K bits per table, L tables, NB = 2^K buckets,
// cap = KV capacity (tokens), dcap = delta capacity (tokens).

import type { Ptr } from '../kernels/types.js';
import type { Arena } from '../runtime/arena.js';
import type { ThreadPool } from '../runtime/pool.js';
import { lshCodesOp } from './sparse-pool-ops.js';
import type { KVStore } from './kv-store.js';
import { hashDirections } from './lsh-math.js';
import { f16ToF32 } from '../kernels/reference.js';

/** f16 bits → f32 value for all 65536 patterns (the mean reads f16 keys straight from the cache). */
const F16 = (() => { const t = new Float32Array(65536); for (let i = 0; i < 65536; i++) t[i] = f16ToF32(i); return t; })();

const u32 = (a: Arena, p: Ptr, n: number) => new Uint32Array(a.memory.buffer, p, n);

export interface LshDims { layer: number; kvHeads: number; headDim: number; capacity: number; K: number; L: number; deltaCap: number; seed: number }

/** Tokens hashed per pool job. The xs scratch ((HASH_CHUNK, D) f32) also holds the SIMD kernel's i16
 *  copies of R and of the keys, which need ≥ ~1600 tokens per thread (kernels/lsh.ts): 8192 keeps
 *  that true up to 5 threads. */
export const HASH_CHUNK = 8192;

/** Sizes of the buffers LshTables allocates, in order (for planArena). */
export function lshTableSizes(d: LshDims): number[] {
  const { kvHeads: G, headDim: D, capacity: cap, K, L, deltaCap: dcap } = d, KL = K * L, NB = 1 << K;
  return [G * KL * D * 4, Math.min(cap, HASH_CHUNK) * D * 4, G * D * 4, G * cap * 4, G * L * (NB + 1) * 4, G * L * cap * 4,
    G * L * (NB + 1) * 4, G * L * dcap * 4, G * L * dcap * 2];
}

/** Table bytes per stored token (ids in main + the key norm), per layer. */
export function lshBytesPerToken(d: Pick<LshDims, 'kvHeads' | 'L'>): number {
  return d.kvHeads * (4 * d.L + 4);
}

export class LshTables {
  readonly R: Ptr;          // (Hkv, KL, D) f32 Gaussian directions
  readonly xs: Ptr;         // (HASH_CHUNK, D) f32 scratch: centered rows being hashed
  readonly mu: Ptr;         // (Hkv, D) f32 key mean
  readonly knorm: Ptr;      // (Hkv, cap) f32 |k − μ| per token
  readonly mainOff: Ptr;    // (Hkv, L, NB + 1) u32
  readonly mainIds: Ptr;    // (Hkv, L, cap) u32
  readonly deltaOff: Ptr;   // (Hkv, L, NB + 1) u32
  readonly deltaIds: Ptr;   // (Hkv, L, dcap) u32
  readonly deltaCodes: Ptr; // (Hkv, L, dcap) u16
  start = 0;
  mainEnd = 0;
  hashedEnd = 0;
  /** Wall time of the last build/append in ms (for the benchmark). */
  lastBuildMs = 0;
  private readonly NB: number;

  constructor(private readonly arena: Arena, private readonly pool: ThreadPool, private readonly kv: KVStore, readonly d: LshDims) {
    const s = lshTableSizes(d);
    [this.R, this.xs, this.mu, this.knorm, this.mainOff, this.mainIds, this.deltaOff, this.deltaIds, this.deltaCodes] = s.map((b) => arena.alloc(b));
    this.NB = 1 << d.K;
    const KL = d.K * d.L;
    for (let g = 0; g < d.kvHeads; g++) arena.f32(this.R + g * KL * d.headDim * 4, KL * d.headDim).set(hashDirections(d.seed, d.layer, g, KL, d.headDim));
  }

  get mainCount(): number { return this.mainEnd - this.start; }
  get deltaCount(): number { return this.hashedEnd - this.mainEnd; }

  /** Forgets every table (e.g. after truncating below the hashed range). */
  clear(): void { this.start = this.mainEnd = this.hashedEnd = 0; }

  /** Builds main over tokens [start, end): μ, codes, CSR. */
  build(start: number, end: number): void {
    const t0 = performance.now();
    const { kvHeads: G, capacity: cap, L } = this.d, N = end - start;
    const c = new Uint16Array(N);                                        // (N) one table's codes
    this.mean(start, end);
    for (let g = 0; g < G; g++) {
      // Codes (L, N) u16 go to the top of this head's id block: table l's ids end at byte
      // 4l·cap + 4N ≤ 4L·cap − 2LN + 2(l+1)N, where table l+1's codes start (as cap ≥ N), so sorting
      // the tables in order never overwrites codes still to be read (table l's own are copied first).
      const idsBase = this.mainIds + g * L * cap * 4;
      const codes = idsBase + 4 * L * cap - 2 * L * N;
      this.hash(g, codes, N, start, start, end);
      for (let l = 0; l < L; l++) {
        c.set(this.arena.u16(codes + 2 * l * N, N));
        this.countingSort(c, start, u32(this.arena, this.mainOff + (g * L + l) * (this.NB + 1) * 4, this.NB + 1),
          u32(this.arena, idsBase + l * cap * 4, N));
      }
    }
    this.start = start; this.mainEnd = end; this.hashedEnd = end;
    this.lastBuildMs = performance.now() - t0;
  }

  // μ (Hkv, D) = mean of the keys [start, end), every head in one pass over the rows (f64 sums:
  // 10^5 f16 keys would lose digits in f32).
  private mean(start: number, end: number): void {
    const { kvHeads: G, headDim: D } = this.d, W = G * D, N = end - start, sum = new Float64Array(W);
    this.kv.forRuns(start, end, (off, s0, s1) => {                                 // rows in one page at a time
      const n = s1 - s0;
      if (this.kv.f16) {
        const h = this.arena.u16(this.kv.k + off, n * W);                               // (n, Hkv·D) f16 bits
        for (let s = 0, o = 0; s < n; s++) for (let i = 0; i < W; i++) sum[i] += F16[h[o++]!]!;
      } else {
        const x = this.arena.f32(this.kv.k + off, n * W);                               // (n, Hkv·D)
        for (let s = 0, o = 0; s < n; s++) for (let i = 0; i < W; i++) sum[i] += x[o++]!;
      }
    });
    const mu = this.arena.f32(this.mu, W);
    for (let i = 0; i < W; i++) mu[i] = sum[i]! / N;
  }

  /** Hashes tokens [hashedEnd, end) into the tables (delta, merged into main whenever it fills). */
  append(end: number): void {
    const t0 = performance.now();
    const { kvHeads: G, L, deltaCap: dcap } = this.d;
    while (this.hashedEnd < end) {
      if (this.deltaCount === dcap) this.mergeDelta();
      const col = this.deltaCount, take = Math.min(end - this.hashedEnd, dcap - col);
      for (let g = 0; g < G; g++) {
        const codes = this.deltaCodes + g * L * dcap * 2;
        this.hash(g, codes + col * 2, dcap, this.hashedEnd, this.hashedEnd, this.hashedEnd + take);
      }
      this.hashedEnd += take;
      this.sortDelta();
    }
    this.lastBuildMs = performance.now() - t0;
  }

  private hash(g: number, codes: Ptr, codeStride: number, i0: number, r0: number, r1: number): void {
    const { headDim: D, capacity: cap, K, L } = this.d, KL = K * L, es = this.kv.f16 ? 2 : 4;
    const rowBytes = this.kv.rowBytes;
    // one job per run of rows inside one page: the kernel reads rows x + r·rowStride, so x is the
    // page's address rebased to row 0 (the wrap-around of the subtraction undoes itself)
    this.kv.forRuns(r0, r1, (off, s0, s1) => {
      for (let c = s0; c < s1; c += HASH_CHUNK) {
        this.pool.run(lshCodesOp, this.arena, this.kv.k + g * D * es + off - s0 * rowBytes, this.kv.f16, rowBytes, this.mu + g * D * 4,
          this.R + g * KL * D * 4, this.xs, D, K, L, codes + (c - i0) * 2, codeStride, this.knorm + g * cap * 4, c, c, Math.min(s1, c + HASH_CHUNK));
      }
    });
  }

  // ids[off[b] …] = first + i for every i with codes[i] = b, in increasing i (stable counting sort).
  private countingSort(codes: Uint16Array, first: number, off: Uint32Array, ids: Uint32Array): void {
    off.fill(0);
    for (let i = 0; i < codes.length; i++) off[codes[i]! + 1]++;
    for (let b = 0; b < this.NB; b++) off[b + 1] += off[b]!;
    const next = off.slice(0, this.NB);
    for (let i = 0; i < codes.length; i++) ids[next[codes[i]!]!++] = first + i;
  }

  private sortDelta(): void {
    const { kvHeads: G, L, deltaCap: dcap } = this.d, n = this.deltaCount;
    for (let g = 0; g < G; g++) {
      for (let l = 0; l < L; l++) {
        const t = g * L + l;
        this.countingSort(this.arena.u16(this.deltaCodes + (t * dcap) * 2, n), this.mainEnd,
          u32(this.arena, this.deltaOff + t * (this.NB + 1) * 4, this.NB + 1), u32(this.arena, this.deltaIds + t * dcap * 4, n));
      }
    }
  }

  // main ∪ delta → main, bucket by bucket from the last one backwards: bucket b's main entries move
  // right by the number of delta entries in buckets < b, so nothing not yet moved is overwritten.
  private mergeDelta(): void {
    const { kvHeads: G, capacity: cap, L, deltaCap: dcap } = this.d, NB = this.NB;
    for (let g = 0; g < G; g++) {
      for (let l = 0; l < L; l++) {
        const t = g * L + l;
        const mo = u32(this.arena, this.mainOff + t * (NB + 1) * 4, NB + 1), mi = u32(this.arena, this.mainIds + t * cap * 4, cap);
        const dOff = u32(this.arena, this.deltaOff + t * (NB + 1) * 4, NB + 1), di = u32(this.arena, this.deltaIds + t * dcap * 4, dcap);
        for (let b = NB - 1; b >= 0; b--) {
          const dst = mo[b]! + dOff[b]!, mCount = mo[b + 1]! - mo[b]!;
          mi.copyWithin(dst, mo[b]!, mo[b + 1]!);
          mi.set(di.subarray(dOff[b]!, dOff[b + 1]!), dst + mCount);
        }
        for (let b = 0; b <= NB; b++) mo[b] += dOff[b]!;
      }
    }
    this.mainEnd = this.hashedEnd;
  }
}
