// Binds one implementation of the kernel contract to one arena's memory. Used by Arena (main
// thread) and by every pool worker, so both sides of a split job run the same code.

import type { Kernels } from '../kernels/types.js';
import { createReferenceKernels } from '../kernels/reference.js';
import { createWasmKernels, kernelModule } from '../kernels/wasm.js';

/** 'wasm': the SIMD build (fast path). 'reference': the plain-TypeScript twin (test oracle). */
export type KernelKind = 'wasm' | 'reference';

export function checkKernelKind(fn: string, kind: unknown): asserts kind is KernelKind {
  if (kind !== 'wasm' && kind !== 'reference') {
    throw new Error(`${fn}: kernels must be 'wasm' or 'reference', got ${JSON.stringify(kind)}`);
  }
}

/** `module` lets a worker reuse the module compiled by the main thread instead of compiling again. */
export function createKernels(kind: KernelKind, memory: WebAssembly.Memory, module?: WebAssembly.Module): Kernels {
  checkKernelKind('createKernels', kind);
  switch (kind) {
    case 'wasm': return createWasmKernels(module ?? kernelModule(), memory);
    case 'reference': return createReferenceKernels(memory);
    default: { const never: never = kind; throw new Error(`createKernels: unknown kind ${String(never)}`); }
  }
}
