// The training kernels: a transpose for the matmul backward and the fused causal attention
// forward/backward, bound to one TrainMemory. Two implementations of one contract, as for the
// inference kernels: the SIMD build of kernels/train-*.ts (exported from dist/kernels.wasm, used
// when the memory's arena runs 'wasm' kernels) and the plain-TypeScript twin in
// kernels-reference.ts (the test oracle, used with 'reference'). Pool workers bind their own copy
// with trainKernelsOf (train-pool-ops.ts runs the attention kernels on every thread).
// Attention layout (one sequence): q (T, H, D), k/v (T, Hkv, D), out (T, H, D), lse (T, H);
// query head h reads KV head floor(h / (H/Hkv)); token i attends to keys j <= i (causal).

import type { Ptr } from '../kernels/types.js';
import { kernelModule } from '../kernels/wasm.js';
import type { KernelKind } from '../runtime/kernel-factory.js';
import type { TrainMemory } from './memory.js';
import { referenceTrainKernels } from './kernels-reference.js';

export interface TrainKernels {
  /** dst (cols, rows) = srcᵀ, src (rows, cols). */
  transpose(src: Ptr, dst: Ptr, rows: number, cols: number): void;
  /** out = softmax(scale·q·kᵀ + causal mask)·v for query heads [h0, h1); lse[i, h] = log Σ_j e^{s_ij}
   *  (saved for the backward). */
  attnForward(q: Ptr, k: Ptr, v: Ptr, out: Ptr, lse: Ptr, T: number, H: number, Hkv: number, D: number,
              scale: number, h0: number, h1: number): void;
  /** ADDS dq, dk, dv for KV heads [g0, g1) (and their query heads), recomputing p_ij = e^{s_ij − lse_i}:
   *  dv_j += p_ij·do_i;  ds_ij = p_ij·(do_i·v_j − do_i·o_i);  dq_i += scale·ds_ij·k_j;  dk_j += scale·ds_ij·q_i. */
  attnBackward(q: Ptr, k: Ptr, v: Ptr, out: Ptr, dout: Ptr, lse: Ptr, dq: Ptr, dk: Ptr, dv: Ptr,
               T: number, H: number, Hkv: number, D: number, scale: number, g0: number, g1: number): void;
}

interface TrainExports {
  trainTranspose(src: Ptr, dst: Ptr, rows: number, cols: number): void;
  trainAttnForward(q: Ptr, k: Ptr, v: Ptr, out: Ptr, lse: Ptr, T: number, H: number, Hkv: number, D: number,
                   scale: number, h0: number, h1: number): void;
  trainAttnBackward(q: Ptr, k: Ptr, v: Ptr, out: Ptr, dout: Ptr, lse: Ptr, dq: Ptr, dk: Ptr, dv: Ptr,
                    T: number, H: number, Hkv: number, D: number, scale: number, g0: number, g1: number): void;
}

/** The SIMD training kernels bound to `memory` (throws if dist/kernels.wasm predates them). `module`
 *  lets a pool worker reuse the module compiled by the main thread. */
export function wasmTrainKernels(memory: WebAssembly.Memory, module?: WebAssembly.Module): TrainKernels {
  const instance = new WebAssembly.Instance(module ?? kernelModule(), { env: { memory } });
  const k = instance.exports as unknown as TrainExports;
  if (typeof k.trainAttnForward !== 'function') {
    throw new Error('wasmTrainKernels: dist/kernels.wasm has no training kernels; run `npm run build:kernels`');
  }
  return {
    transpose: (src, dst, rows, cols) => k.trainTranspose(src, dst, rows, cols),
    attnForward: (q, kk, v, out, lse, T, H, Hkv, D, scale, h0, h1) => k.trainAttnForward(q, kk, v, out, lse, T, H, Hkv, D, scale, h0, h1),
    attnBackward: (q, kk, v, out, dout, lse, dq, dk, dv, T, H, Hkv, D, scale, g0, g1) =>
      k.trainAttnBackward(q, kk, v, out, dout, lse, dq, dk, dv, T, H, Hkv, D, scale, g0, g1),
  };
}

/** attnForward over B sequences laid out back to back (q/out (B, T, H, D), k/v (B, T, Hkv, D), lse
 *  (B, T, H)) for the units [u0, u1) numbered b·H + h: one kernel call per sequence touched, on its
 *  heads in the range. Each unit writes only its own out/lse rows, so any split of [0, B·H) gives
 *  the same bits (the pool's slices and the single-thread path both run this). */
export function attnForwardUnits(k: TrainKernels, q: Ptr, kp: Ptr, v: Ptr, out: Ptr, lse: Ptr,
                                 T: number, H: number, Hkv: number, D: number, scale: number, u0: number, u1: number): void {
  const qs = T * H * D * 4, ks = T * Hkv * D * 4, ls = T * H * 4;
  for (let b = Math.floor(u0 / H); b * H < u1; b++) {
    const h0 = Math.max(u0 - b * H, 0), h1 = Math.min(u1 - b * H, H);
    k.attnForward(q + b * qs, kp + b * ks, v + b * ks, out + b * qs, lse + b * ls, T, H, Hkv, D, scale, h0, h1);
  }
}

/** attnBackward over B sequences for the units [u0, u1) numbered b·Hkv + g: a KV group writes only
 *  its own dk/dv rows and its query heads' dq rows, so any split gives the same bits. */
export function attnBackwardUnits(k: TrainKernels, q: Ptr, kp: Ptr, v: Ptr, out: Ptr, dout: Ptr, lse: Ptr, dq: Ptr, dk: Ptr, dv: Ptr,
                                  T: number, H: number, Hkv: number, D: number, scale: number, u0: number, u1: number): void {
  const qs = T * H * D * 4, ks = T * Hkv * D * 4, ls = T * H * 4;
  for (let b = Math.floor(u0 / Hkv); b * Hkv < u1; b++) {
    const g0 = Math.max(u0 - b * Hkv, 0), g1 = Math.min(u1 - b * Hkv, Hkv);
    k.attnBackward(q + b * qs, kp + b * ks, v + b * ks, out + b * qs, dout + b * qs, lse + b * ls,
      dq + b * qs, dk + b * ks, dv + b * ks, T, H, Hkv, D, scale, g0, g1);
  }
}

const cache = { wasm: new WeakMap<WebAssembly.Memory, TrainKernels>(), reference: new WeakMap<WebAssembly.Memory, TrainKernels>() };

/** The training kernels of `kind` bound to `memory`, created once per memory and kind (the main
 *  thread and every pool worker each hold their own, over the same shared memory). */
export function trainKernelsOf(kind: KernelKind, memory: WebAssembly.Memory, module?: WebAssembly.Module): TrainKernels {
  let k = cache[kind].get(memory);
  if (!k) {
    k = kind === 'wasm' ? wasmTrainKernels(memory, module) : referenceTrainKernels(memory);
    cache[kind].set(memory, k);
  }
  return k;
}

/** The training kernels of the memory's kind ('wasm' or 'reference'). */
export function trainKernels(mem: TrainMemory): TrainKernels {
  return trainKernelsOf(mem.arena.kernelKind, mem.arena.memory);
}
