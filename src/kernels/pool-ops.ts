// The dense kernels' thread-pool ops (src/runtime/pool-op.ts): matmul split by rows, attention by
// query heads or, past one chunk of keys with few queries, by (key chunk, KV head), the q8_0
// quantisation by blocks and the feed-forward gates by rows or values. Run them with
// `pool.run(matmulOp, arena, …)`; the arguments are those of the kernel (types.ts) without its
// [r0, r1) range, which the pool chooses.

import { createKernels } from '../runtime/kernel-factory.js';
import { defineKernelFamily } from '../runtime/pool-op.js';
import { attentionSplitsKeys, attentionUnitCost, attentionUnits, weightBytes, type CacheDType, type Kernels, type Ptr, type WeightDType } from './types.js';

/** Matmul slices start at multiples of this many rows (keeps the SIMD kernels' row blocks whole). */
export const ROW_ALIGN = 8;
/** Matmuls of at least this many tokens (a prefill chunk) split into claimed chunks of rows, up to
 *  CLAIMED_CHUNKS per thread and none of less than CLAIMED_CHUNK_WORK bytes of `work` (n × the
 *  weights' bytes), so a chunk's call costs nothing next to it (JobSplit.chunks): on a machine whose
 *  cores run at unequal speeds (a core shared with another machine's work) the faster thread takes
 *  more. Many small chunks rather than a few large ones: the thread that finds none left waits for
 *  the other's last chunk, on average half a chunk (1B q4_0 prefill, 2 threads: the main thread's
 *  waits at the end of the matmuls 190–270 ms a prompt with 8 chunks per thread, 10–90 with 32). */
export const CLAIMED_MIN_TOKENS = 16;
export const CLAIMED_CHUNKS = 32;
export const CLAIMED_CHUNK_WORK = 4 << 20;
/** Fewer tokens (decode, a small batch): up to DECODE_CHUNKS chunks per thread of at least
 *  DECODE_CHUNK_WORK bytes. Each thread reads its own chunks in order, so its weights stay one
 *  sequential stream, and steals only at the end (protocol.ts runOwnPart); a matrix too small for two
 *  such chunks per thread keeps one fixed slice per thread. */
export const DECODE_CHUNKS = 16;
export const DECODE_CHUNK_WORK = 512 << 10;

/** Claimed chunks per thread for a matmul of n tokens and `work` bytes, or undefined: fixed slices. */
export function matmulChunks(n: number, work: number, threads: number): number | undefined {
  const [most, least] = n < CLAIMED_MIN_TOKENS ? [DECODE_CHUNKS, DECODE_CHUNK_WORK] : [CLAIMED_CHUNKS, CLAIMED_CHUNK_WORK];
  const perThread = Math.min(most, Math.floor(work / least / threads));
  return perThread >= 2 ? perThread : undefined;
}
/** The same for a prefill chunk's attention over query heads, in whole GQA groups whatever the
 *  thread count: fewer, larger chunks, a group's K/V rows read once per chunk. */
export const CLAIMED_ATTENTION_CHUNKS = 4;

// Dtypes travel as indices into these tables.
const WEIGHT_DTYPES: readonly WeightDType[] = ['f32', 'f16', 'bf16', 'q8_0', 'q4_0', 'q4_k', 'q5_k', 'q6_k', 'q8_0x4', 'q4_0x4', 'q4_kx4', 'q5_kx4', 'q6_kx4', 'f32p', 'f16p', 'bf16p'];
const CACHE_DTYPES: readonly CacheDType[] = ['f32', 'f16'];

const family = defineKernelFamily<Kernels>(import.meta.url, 'kernels', createKernels);

/** Kernels.matmul over rows [0, rows), split by rows across the threads. */
export const matmulOp = family.op('matmul', {
  args: ['dtype', 'w', 'x', 'y', 'n', 'rows', 'cols'],
  prepare(a, threads, dtype: WeightDType, w: Ptr, x: Ptr, y: Ptr, n: number, rows: number, cols: number) {
    const dt = WEIGHT_DTYPES.indexOf(dtype);
    if (dt < 0) throw new Error(`ThreadPool.matmul: unknown weight dtype ${JSON.stringify(dtype)}`);
    a[0] = dt; a[1] = w; a[2] = x; a[3] = y; a[4] = n; a[5] = rows; a[6] = cols;
    const work = n * weightBytes(dtype, rows * cols), chunks = matmulChunks(n, work, threads);
    return { total: rows, unit: ROW_ALIGN, work, ...(chunks !== undefined ? { chunks } : {}) };
  },
  slice(k, a, r0, r1) {
    k.matmul(WEIGHT_DTYPES[a[0]!]!, a[1]!, a[2]!, a[3]!, a[4]!, a[5]!, a[6]!, r0, r1);
  },
});

/** Kernels.attention over heads [0, H). Past one chunk of keys with few queries (decode, a
 *  speculative verification: attentionSplitsKeys) split by (key chunk, KV head) units, flash-decoding
 *  style: every thread reads whole GQA groups over its own chunks, and the calling thread merges the
 *  chunks in order (attentionMerge) once all are done. Otherwise split by query heads (whole GQA
 *  groups when there are enough). Both give the same bits, whatever the threads. `pages`,
 *  `pageShift` and `state` as in the kernel; state: attentionStateBytes(n, H, Hkv, D, S) or more. */
export const attentionOp = family.op('attention', {
  args: ['q', 'qPos', 'k', 'v', 'out', 'cacheDType', 'n', 'S', 'H', 'Hkv', 'D', 'scale', 'pages', 'pageShift', 'state', 'chunks'],
  prepare(a, threads, q: Ptr, qPos: Ptr, k: Ptr, v: Ptr, out: Ptr, cacheDType: CacheDType,
          n: number, S: number, H: number, Hkv: number, D: number, scale: number, pages: Ptr, pageShift: number, state: Ptr) {
    const ct = CACHE_DTYPES.indexOf(cacheDType);
    if (ct < 0) throw new Error(`ThreadPool.attention: unknown cache dtype ${JSON.stringify(cacheDType)}`);
    const chunked = attentionSplitsKeys(n, S);
    a[0] = q; a[1] = qPos; a[2] = k; a[3] = v; a[4] = out; a[5] = ct;
    a[6] = n; a[7] = S; a[8] = H; a[9] = Hkv; a[10] = D; a[11] = scale; a[12] = pages; a[13] = pageShift; a[14] = state;
    a[15] = chunked ? 1 : 0;
    const work = n * H * S * D * (cacheDType === 'f32' ? 8 : 4); // each head reads a K and a V row per key
    // the last chunk may hold a few keys: split by keys, not units (9 units of 4112 keys over 2
    // threads: 3 full chunks each, not 4 against 2 and the 3 near-empty ones)
    if (chunked) return { total: attentionUnits(n, S, H, Hkv), unit: 1, work, cost: (u) => attentionUnitCost(n, S, H, Hkv, u) };
    // Keeping a group's heads on one thread lets it read that KV head once per group — but only
    // when the groups divide evenly over the threads (3 KV heads on 2 threads would leave one thread
    // 2/3 of the work; split by single heads instead, re-reading one group's rows from cache).
    // A prefill chunk's takes claimed chunks of heads, as the matmuls' rows, in whole groups whatever
    // the threads: the chunks, not the threads, share the groups out.
    if (n >= CLAIMED_MIN_TOKENS) return { total: H, unit: H % Hkv === 0 ? H / Hkv : 1, work, chunks: CLAIMED_ATTENTION_CHUNKS };
    const unit = Hkv % threads === 0 && H % Hkv === 0 ? H / Hkv : 1;
    return { total: H, unit, work };
  },
  slice(k, a, r0, r1) {
    const ct = CACHE_DTYPES[a[5]!]!;
    if (a[15] === 1) k.attentionChunks(a[0]!, a[1]!, a[2]!, a[3]!, a[4]!, ct, a[6]!, a[7]!, a[8]!, a[9]!, a[10]!, a[11]!, a[12]!, a[13]!, a[14]!, r0, r1);
    else k.attention(a[0]!, a[1]!, a[2]!, a[3]!, a[4]!, ct, a[6]!, a[7]!, a[8]!, a[9]!, a[10]!, a[11]!, a[12]!, a[13]!, a[14]!, r0, r1);
  },
  finish(k, a) {
    if (a[15] === 1) k.attentionMerge(a[1]!, a[4]!, a[6]!, a[7]!, a[8]!, a[9]!, a[10]!, a[14]!);
  },
});

/** Kernels.attentionBatch: the attention of `count` sequences of one layer in one job (the items of
 *  `table`, whose FIRST words number `units` units in all: attentionUnits per item), split by those
 *  units — (sequence, key chunk, KV head) for items split by key chunks, (sequence, query head) for
 *  the others, whole GQA groups when no item is split and the groups divide evenly over the threads,
 *  as attentionOp does for one sequence; the split items are merged on the calling thread.
 *  `keys` = Σ n·S over the items (sizes the work); `costs`, when given, each unit's
 *  attentionUnitCost (units of unequal work: split items, sequences of different lengths). */
export const attentionBatchOp = family.op('attentionBatch', {
  args: ['table', 'count', 'k', 'v', 'cacheDType', 'H', 'Hkv', 'D', 'scale', 'pageShift'],
  prepare(a, threads, table: Ptr, count: number, k: Ptr, v: Ptr, cacheDType: CacheDType, H: number, Hkv: number, D: number,
          scale: number, pageShift: number, keys: number, units: number, costs?: Float64Array) {
    const ct = CACHE_DTYPES.indexOf(cacheDType);
    if (ct < 0) throw new Error(`ThreadPool.attentionBatch: unknown cache dtype ${JSON.stringify(cacheDType)}`);
    a[0] = table; a[1] = count; a[2] = k; a[3] = v; a[4] = ct; a[5] = H; a[6] = Hkv; a[7] = D; a[8] = scale; a[9] = pageShift;
    // whole groups only pay when every item runs by query heads (any split is correct)
    const byHeads = units === count * H;
    const unit = byHeads && (count * Hkv) % threads === 0 && H % Hkv === 0 ? H / Hkv : 1;
    const cost = costs === undefined ? undefined : (u: number) => costs[u]!;
    return { total: units, unit, work: keys * H * D * (cacheDType === 'f32' ? 8 : 4), cost };
  },
  slice(k, a, r0, r1) {
    k.attentionBatch(a[0]!, a[1]!, a[2]!, a[3]!, CACHE_DTYPES[a[4]!]!, a[5]!, a[6]!, a[7]!, a[8]!, a[9]!, r0, r1);
  },
  finish(k, a) {
    k.attentionBatchMerge(a[0]!, a[1]!, a[5]!, a[6]!, a[7]!); // only the items split by key chunks
  },
});

/** Kernels.quantizeQ8 of `count` values (a prefill chunk's or a batch's rows before a q8_0 / q4_0
 *  matmul), split by blocks: every block and its sums are written by one thread, the same bytes as
 *  one call. */
export const quantizeQ8Op = family.op('quantizeQ8', {
  args: ['x', 'xq', 'count'],
  prepare(a, _threads, x: Ptr, xq: Ptr, count: number) {
    if (!(Number.isInteger(count) && count >= 0 && count % 32 === 0)) throw new RangeError(`ThreadPool.quantizeQ8: count must be a multiple of 32, got ${count}`);
    a[0] = x; a[1] = xq; a[2] = count;
    return { total: count / 32, unit: 1, work: count * 4 };
  },
  slice(k, a, r0, r1) {
    k.quantizeQ8(a[0]!, a[1]!, a[2]!, r0, r1);
  },
});

/** The gated activations of the feed-forward block. */
export type Gate = 'silu' | 'gelu';
const GATES: readonly Gate[] = ['silu', 'gelu'];

/** Kernels.siluMulStacked / geluMulStacked: out (n, F) from the stacked gate|up rows gu (n, 2F),
 *  split by rows (element-wise: the same bits on any split). */
export const gatedStackedOp = family.op('gatedStacked', {
  args: ['gate', 'gu', 'out', 'n', 'F'],
  prepare(a, _threads, gate: Gate, gu: Ptr, out: Ptr, n: number, F: number) {
    a[0] = GATES.indexOf(gate); a[1] = gu; a[2] = out; a[3] = n; a[4] = F;
    if (a[0] < 0) throw new Error(`ThreadPool.gatedStacked: unknown gate ${JSON.stringify(gate)}`);
    return { total: n, unit: 1, work: n * F * 12 };
  },
  slice(k, a, r0, r1) {
    const F = a[4]!, gu = a[1]! + r0 * F * 8, out = a[2]! + r0 * F * 4;
    if (a[0] === 0) k.siluMulStacked(gu, out, r1 - r0, F);
    else k.geluMulStacked(gu, out, r1 - r0, F);
  },
});

/** Kernels.siluMul / geluMul: gate (count) = act(gate) ⊙ up, split by elements in runs of 64. */
export const gatedOp = family.op('gated', {
  args: ['gate', 'g', 'up', 'count'],
  prepare(a, _threads, gate: Gate, g: Ptr, up: Ptr, count: number) {
    a[0] = GATES.indexOf(gate); a[1] = g; a[2] = up; a[3] = count;
    if (a[0] < 0) throw new Error(`ThreadPool.gated: unknown gate ${JSON.stringify(gate)}`);
    return { total: count, unit: 64, work: count * 12 };
  },
  slice(k, a, r0, r1) {
    if (a[0] === 0) k.siluMul(a[1]! + r0 * 4, a[2]! + r0 * 4, r1 - r0);
    else k.geluMul(a[1]! + r0 * 4, a[2]! + r0 * 4, r1 - r0);
  },
});
