// The sparse-attention kernels' thread-pool ops (src/runtime/pool-op.ts): MagicPIG's SimHash codes
// split by key rows, and its decode step split by query heads. Run them with `pool.run(op, arena, …)`.

import type { Ptr } from '../kernels/types.js';
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
