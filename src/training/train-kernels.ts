// The training kernels: small memory-bound helpers and the fused causal attention forward/backward,
// bound to one TrainMemory. Two implementations of one interface, as for the inference kernels:
// the SIMD build of kernels/train-*.ts (when the memory's kernels are 'wasm') and the plain
// TypeScript twin in kernels-reference.ts (the test oracle).

import type { Ptr } from '../kernels/types.js';
import type { TrainMemory } from './memory.js';
import { referenceTrainKernels } from './kernels-reference.js';

export interface TrainKernels {
  /** dst (cols, rows) = srcᵀ, src (rows, cols). */
  transpose(src: Ptr, dst: Ptr, rows: number, cols: number): void;
}

const cache = new WeakMap<TrainMemory, TrainKernels>();

export function trainKernels(mem: TrainMemory): TrainKernels {
  let k = cache.get(mem);
  if (!k) {
    k = referenceTrainKernels(mem.arena.memory);
    cache.set(mem, k);
  }
  return k;
}
