// The sparse-attention kernel contract (kernels/lsh.ts, kernels/sparse.ts) and its two bindings:
// the WebAssembly SIMD build and the plain-TypeScript twin (./reference-sparse.ts, the test oracle).
// They live beside the attention backends rather than in src/kernels/types.ts because only the
// sparse backends and the thread pool's sparse ops call them. Both bindings are cached per memory,
// on every thread: a wasm instance is created once per (thread, arena).
// Shape legend: D = head dim (multiple of 4), K = bits per table, L = tables, KL = K·L directions.

import type { KVRows, Ptr } from '../kernels/types.js';
import { kernelModule } from '../kernels/wasm.js';
import type { KernelKind } from '../runtime/kernel-factory.js';
import { createReferenceSparseKernels } from './reference-sparse.js';

export interface SparseKernels {
  /** SimHash codes of rows [r0, r1) of x (rows of rowStride bytes, f32 or f16), centered by mu (D):
   *  codes (L, codeStride) u16 at column r − i0, bit b of table l = [(x − mu)·R[lK+b] > 0];
   *  norms[r] = |x_r − mu|. R (KL, D) f32; xs (r1 − i0, D) f32 is scratch: its contents afterwards are
   *  unspecified (the SIMD kernel keeps 16-bit copies of R and of the rows there). */
  lshCodes(x: Ptr, f16: boolean, rowStride: number, mu: Ptr, R: Ptr, xs: Ptr, D: number, K: number, L: number,
           codes: Ptr, codeStride: number, norms: Ptr, i0: number, r0: number, r1: number): void;
  /** out (D) = softmax-weighted sum of v rows ids[0..count) with logits scale·q·k + bias (bias 0 =
   *  none); lse (1) = log Σ e^logit (−inf when count = 0). out needs room for D + 2 floats. */
  attendList(q: Ptr, k: Ptr, v: Ptr, f16: boolean, rows: KVRows, D: number, scale: number,
             ids: Ptr, bias: Ptr, count: number, out: Ptr, lse: Ptr): void;
  /** out (s1 − s0) = scale · q · k_s, s in [s0, s1). */
  sparseScores(q: Ptr, k: Ptr, f16: boolean, rows: KVRows, D: number, scale: number, s0: number, s1: number, out: Ptr): void;
  /** One MagicPIG decode step for query heads [h0, h1) described by the words at desc (magicpig-desc.ts).
   *  LISTS receives each head's sampled ids (the SIMD kernel in increasing order, the twin in order
   *  of retrieval), STATS their count; COUNTERS is scratch whose contents need not be zero. */
  magicpigDecode(desc: Ptr, h0: number, h1: number): void;
}

interface SparseExports {
  lshCodes(x: Ptr, f16: number, rowStride: number, mu: Ptr, R: Ptr, xs: Ptr, D: number, K: number, L: number,
           codes: Ptr, codeStride: number, norms: Ptr, i0: number, r0: number, r1: number): void;
  attendList(q: Ptr, k: Ptr, v: Ptr, f16: number, rowStride: number, pages: Ptr, pageShift: number, D: number, scale: number,
             ids: Ptr, bias: Ptr, count: number, out: Ptr, lse: Ptr): void;
  sparseScores(q: Ptr, k: Ptr, f16: number, rowStride: number, pages: Ptr, pageShift: number, D: number, scale: number,
               s0: number, s1: number, out: Ptr): void;
  magicpigDecode(desc: Ptr, h0: number, h1: number): void;
}

function createWasmSparseKernels(module: WebAssembly.Module, memory: WebAssembly.Memory): SparseKernels {
  const x = new WebAssembly.Instance(module, { env: { memory } }).exports as unknown as SparseExports;
  if (typeof x.magicpigDecode !== 'function') {
    throw new Error('sparse kernels: dist/kernels.wasm lacks magicpigDecode; rebuild it with `npm run build:kernels`');
  }
  return {
    lshCodes: (xp, f16, rs, mu, R, xs, D, K, L, codes, cs, norms, i0, r0, r1) =>
      x.lshCodes(xp, f16 ? 1 : 0, rs, mu, R, xs, D, K, L, codes, cs, norms, i0, r0, r1),
    attendList: (q, k, v, f16, rows, D, scale, ids, bias, count, out, lse) =>
      x.attendList(q, k, v, f16 ? 1 : 0, rows.rowBytes, rows.pages, rows.pageShift, D, scale, ids, bias, count, out, lse),
    sparseScores: (q, k, f16, rows, D, scale, s0, s1, out) =>
      x.sparseScores(q, k, f16 ? 1 : 0, rows.rowBytes, rows.pages, rows.pageShift, D, scale, s0, s1, out),
    magicpigDecode: (desc, h0, h1) => x.magicpigDecode(desc, h0, h1),
  };
}

const cache = { wasm: new WeakMap<WebAssembly.Memory, SparseKernels>(), reference: new WeakMap<WebAssembly.Memory, SparseKernels>() };

/** The sparse kernels of `kind` bound to `memory` (created on first use on this thread). */
export function sparseKernels(kind: KernelKind, memory: WebAssembly.Memory, module?: WebAssembly.Module): SparseKernels {
  let k = cache[kind].get(memory);
  if (!k) {
    k = kind === 'wasm' ? createWasmSparseKernels(module ?? kernelModule(), memory) : createReferenceSparseKernels(memory);
    cache[kind].set(memory, k);
  }
  return k;
}
