// The sparse-attention kernels' thread-pool ops (src/runtime/pool-op.ts): MagicPIG's SimHash codes
// split by key rows, its decode step split by query heads, and a key list's attention (the selective
// backends' decode when every head reads the same keys) split by query heads. Run them with
// `pool.run(op, arena, …)`.

import type { KVRows, Ptr } from '../kernels/types.js';
import { defineKernelFamily } from '../runtime/pool-op.js';
import { sparseKernels, type SparseKernels } from './sparse-kernels.js';

const family = defineKernelFamily<SparseKernels>(import.meta.url, 'sparse', sparseKernels);

/** SparseKernels.lshCodes over key rows [r0, r1), split by rows (slices [r0 + s, r0 + e)). */
export const lshCodesOp = family.op('lshCodes', {
  args: ['x', 'f16', 'rowStride', 'mu', 'R', 'xs', 'D', 'K', 'L', 'codes', 'codeStride', 'norms', 'i0'],
  prepare(a, _threads, x: Ptr, f16: boolean, rowStride: number, mu: Ptr, R: Ptr, xs: Ptr, D: number, K: number, L: number,
          codes: Ptr, codeStride: number, norms: Ptr, i0: number, r0: number, r1: number) {
    a[0] = x; a[1] = f16 ? 1 : 0; a[2] = rowStride; a[3] = mu; a[4] = R; a[5] = xs; a[6] = D; a[7] = K; a[8] = L;
    a[9] = codes; a[10] = codeStride; a[11] = norms; a[12] = i0;
    return { start: r0, total: r1 - r0, unit: 4, work: (r1 - r0) * K * L * D * 4 };
  },
  slice(k, a, r0, r1) {
    k.lshCodes(a[0]!, a[1] !== 0, a[2]!, a[3]!, a[4]!, a[5]!, a[6]!, a[7]!, a[8]!, a[9]!, a[10]!, a[11]!, a[12]!, r0, r1);
  },
});

/** One MagicPIG decode step (SparseKernels.magicpigDecode) over query heads [0, H), split by heads;
 *  `work` estimates the bytes it touches (small jobs stay on the calling thread). */
export const magicpigOp = family.op('magicpig', {
  args: ['desc'],
  prepare(a, _threads, desc: Ptr, H: number, work: number) {
    a[0] = desc;
    return { total: H, unit: 1, work };
  },
  slice(k, a, r0, r1) { k.magicpigDecode(a[0]!, r0, r1); },
});

/** SparseKernels.attendList for query heads [0, H), split by heads, over key lists chosen per KV
 *  head (ids + g·idsStride bytes, `count` ids each; idsStride 0: one list for every head; no bias):
 *  head h reads q + h·D floats and KV head g = ⌊h / (H/G)⌋ (k, v: the pools' bases; rows of `rows`),
 *  and writes its D + 2 floats at parts + h·(D + 4) floats and its lse at lse + h floats (slots of
 *  their own: no two heads write the same floats). */
export const attendListOp = family.op('attendList', {
  args: ['q', 'k', 'v', 'f16', 'rowBytes', 'pages', 'pageShift', 'D', 'scale', 'ids', 'idsStride', 'count', 'parts', 'lse', 'group', 'kvStride'],
  prepare(a, _threads, q: Ptr, k: Ptr, v: Ptr, f16: boolean, rows: KVRows, D: number, scale: number, ids: Ptr, idsStride: number,
          count: number, parts: Ptr, lse: Ptr, H: number, G: number) {
    a[0] = q; a[1] = k; a[2] = v; a[3] = f16 ? 1 : 0; a[4] = rows.rowBytes; a[5] = rows.pages; a[6] = rows.pageShift;
    a[7] = D; a[8] = scale; a[9] = ids; a[10] = idsStride; a[11] = count; a[12] = parts; a[13] = lse; a[14] = H / G; a[15] = D * (f16 ? 2 : 4);
    return { total: H, unit: 1, work: H * count * D * (f16 ? 2 : 4) * 2 };
  },
  slice(k, a, h0, h1) {
    const D = a[7]!, rows: KVRows = { rowBytes: a[4]!, pages: a[5]!, pageShift: a[6]! };
    for (let h = h0; h < h1; h++) {
      const g = Math.floor(h / a[14]!), kv = g * a[15]!;
      k.attendList(a[0]! + h * D * 4, a[1]! + kv, a[2]! + kv, a[3] !== 0, rows, D, a[8]!, a[9]! + g * a[10]!, 0, a[11]!,
        a[12]! + h * (D + 4) * 4, a[13]! + h * 4);
    }
  },
});
