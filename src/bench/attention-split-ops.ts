// The baseline pool ops of src/bench/attention-split.ts: Kernels.attention split by query heads only,
// as attentionOp split every call before long, few-query calls went to (key chunk, KV head) units;
// and those units split by their count, as attentionOp split them before it weighed them by keys.
// A module of its own because the pool's workers import the module that defines a kernel family.

import { createKernels } from '../runtime/kernel-factory.js';
import { defineKernelFamily } from '../runtime/pool-op.js';
import { attentionSplitsKeys, attentionUnits, type CacheDType, type Kernels, type Ptr } from '../kernels/types.js';

const CACHE_DTYPES: readonly CacheDType[] = ['f32', 'f16'];

const family = defineKernelFamily<Kernels>(import.meta.url, 'attention-split-bench', createKernels);

/** Kernels.attention over heads [0, H) split by query heads: whole GQA groups when the groups divide
 *  evenly over the threads, else single heads (attentionOp's rule for calls it does not split by keys). */
export const attentionByHeadsOp = family.op('attentionByHeads', {
  args: ['q', 'qPos', 'k', 'v', 'out', 'cacheDType', 'n', 'S', 'H', 'Hkv', 'D', 'scale', 'state'],
  prepare(a, threads, q: Ptr, qPos: Ptr, k: Ptr, v: Ptr, out: Ptr, cacheDType: CacheDType,
          n: number, S: number, H: number, Hkv: number, D: number, scale: number, state: Ptr) {
    a[0] = q; a[1] = qPos; a[2] = k; a[3] = v; a[4] = out; a[5] = CACHE_DTYPES.indexOf(cacheDType);
    a[6] = n; a[7] = S; a[8] = H; a[9] = Hkv; a[10] = D; a[11] = scale; a[12] = state;
    const unit = Hkv % threads === 0 && H % Hkv === 0 ? H / Hkv : 1;
    return { total: H, unit, work: n * H * S * D * (cacheDType === 'f32' ? 8 : 4) };
  },
  slice(k, a, r0, r1) {
    k.attention(a[0]!, a[1]!, a[2]!, a[3]!, a[4]!, CACHE_DTYPES[a[5]!]!, a[6]!, a[7]!, a[8]!, a[9]!, a[10]!, a[11]!, 0, 0, a[12]!, r0, r1);
  },
});

/** attentionOp's (key chunk, KV head) units, split by their count (each thread the same number of
 *  units, whatever keys the last chunk holds). Only for calls attentionSplitsKeys accepts. */
export const attentionChunksByCountOp = family.op('attentionChunksByCount', {
  args: ['q', 'qPos', 'k', 'v', 'out', 'cacheDType', 'n', 'S', 'H', 'Hkv', 'D', 'scale', 'state'],
  prepare(a, _threads, q: Ptr, qPos: Ptr, k: Ptr, v: Ptr, out: Ptr, cacheDType: CacheDType,
          n: number, S: number, H: number, Hkv: number, D: number, scale: number, state: Ptr) {
    if (!attentionSplitsKeys(n, S)) throw new Error(`attentionChunksByCount: ${n} queries over ${S} keys are not split by key chunks`);
    a[0] = q; a[1] = qPos; a[2] = k; a[3] = v; a[4] = out; a[5] = CACHE_DTYPES.indexOf(cacheDType);
    a[6] = n; a[7] = S; a[8] = H; a[9] = Hkv; a[10] = D; a[11] = scale; a[12] = state;
    return { total: attentionUnits(n, S, H, Hkv), unit: 1, work: n * H * S * D * (cacheDType === 'f32' ? 8 : 4) };
  },
  slice(k, a, r0, r1) {
    k.attentionChunks(a[0]!, a[1]!, a[2]!, a[3]!, a[4]!, CACHE_DTYPES[a[5]!]!, a[6]!, a[7]!, a[8]!, a[9]!, a[10]!, a[11]!, 0, 0, a[12]!, r0, r1);
  },
  finish(k, a) {
    k.attentionMerge(a[1]!, a[4]!, a[6]!, a[7]!, a[8]!, a[9]!, a[10]!, a[12]!);
  },
});
