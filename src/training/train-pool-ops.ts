// The training attention kernels' thread-pool ops (src/runtime/pool-op.ts): the fused causal
// attention forward split by (sequence, query head), the backward by (sequence, KV group). Both
// run attnForwardUnits/attnBackwardUnits, as the single-thread path does, so results are the same bits.

import type { Ptr } from '../kernels/types.js';
import { defineKernelFamily } from '../runtime/pool-op.js';
import { attnBackwardUnits, attnForwardUnits, trainKernelsOf, type TrainKernels } from './train-kernels.js';

const family = defineKernelFamily<TrainKernels>(import.meta.url, 'training', trainKernelsOf);

function checkShape(fn: string, B: number, T: number, H: number, Hkv: number, D: number): void {
  const ok = [B, T, H, Hkv, D].every((x) => Number.isInteger(x) && x > 0) && H % Hkv === 0;
  if (!ok) throw new Error(`ThreadPool.${fn}: need positive integer B, T, H, Hkv, D with H a multiple of Hkv, got B=${B} T=${T} H=${H} Hkv=${Hkv} D=${D}`);
}

/** TrainKernels.attnForward over B sequences laid out back to back (q/out (B, T, H, D), k/v
 *  (B, T, Hkv, D), lse (B, T, H)). */
export const trainAttnForwardOp = family.op('trainAttnForward', {
  args: ['q', 'k', 'v', 'out', 'lse', 'B', 'T', 'H', 'Hkv', 'D', 'scale'],
  prepare(a, threads, q: Ptr, k: Ptr, v: Ptr, out: Ptr, lse: Ptr, B: number, T: number, H: number, Hkv: number, D: number, scale: number) {
    checkShape('trainAttnForward', B, T, H, Hkv, D);
    a[0] = q; a[1] = k; a[2] = v; a[3] = out; a[4] = lse;
    a[5] = B; a[6] = T; a[7] = H; a[8] = Hkv; a[9] = D; a[10] = scale;
    // Whole GQA groups per thread when they divide evenly (a group's K/V rows stay in one cache).
    const unit = (B * Hkv) % threads === 0 ? H / Hkv : 1;
    const work = B * H * (T * (T + 1) / 2) * D * 8; // each (query, key) pair reads a K and a V row
    return { total: B * H, unit, work };
  },
  slice(k, a, r0, r1) {
    attnForwardUnits(k, a[0]!, a[1]!, a[2]!, a[3]!, a[4]!, a[6]!, a[7]!, a[8]!, a[9]!, a[10]!, r0, r1);
  },
});

/** TrainKernels.attnBackward (adds into dq/dk/dv) over B sequences; a (sequence, KV group) unit
 *  writes only its own dk/dv rows and its heads' dq rows. */
export const trainAttnBackwardOp = family.op('trainAttnBackward', {
  args: ['q', 'k', 'v', 'out', 'dout', 'lse', 'dq', 'dk', 'dv', 'B', 'T', 'H', 'Hkv', 'D', 'scale'],
  prepare(a, _threads, q: Ptr, k: Ptr, v: Ptr, out: Ptr, dout: Ptr, lse: Ptr, dq: Ptr, dk: Ptr, dv: Ptr,
          B: number, T: number, H: number, Hkv: number, D: number, scale: number) {
    checkShape('trainAttnBackward', B, T, H, Hkv, D);
    a[0] = q; a[1] = k; a[2] = v; a[3] = out; a[4] = dout; a[5] = lse; a[6] = dq; a[7] = dk; a[8] = dv;
    a[9] = B; a[10] = T; a[11] = H; a[12] = Hkv; a[13] = D; a[14] = scale;
    const work = B * H * (T * (T + 1) / 2) * D * 24; // reads q, k, v, dout rows, updates dq, dk, dv rows
    return { total: B * Hkv, unit: 1, work };
  },
  slice(k, a, r0, r1) {
    attnBackwardUnits(k, a[0]!, a[1]!, a[2]!, a[3]!, a[4]!, a[5]!, a[6]!, a[7]!, a[8]!, a[10]!, a[11]!, a[12]!, a[13]!, a[14]!, r0, r1);
  },
});
