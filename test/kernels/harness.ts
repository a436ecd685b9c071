// Shared setup for the kernel tests: one shared memory, both kernel implementations bound to it, a
// bump allocator above the reserved first 64 KiB, a seeded RNG and tolerance checks.

import assert from 'node:assert/strict';
import { createReferenceKernels, f32ToBF16, f32ToF16 } from '../../src/kernels/reference.js';
import { createWasmKernels, kernelBuild, kernelModule } from '../../src/kernels/wasm.js';
import type { Kernels, Ptr } from '../../src/kernels/types.js';
import { uniform01 } from '../../src/data/rng.js';

export interface Bench {
  memory: WebAssembly.Memory;
  ref: Kernels;
  wasm: Kernels;
  /** Bytes at a fresh offset; offsets are 4-byte aligned but deliberately not 16-byte aligned. */
  alloc(bytes: number): Ptr;
  /** Resets the allocator (call between cases). */
  reset(): void;
  f32(p: Ptr, count: number): Float32Array;
  u8(p: Ptr, count: number): Uint8Array;
  i32(p: Ptr, count: number): Int32Array;
  u16(p: Ptr, count: number): Uint16Array;
}

export function makeBench(pages = 256): Bench {
  const memory = new WebAssembly.Memory({ initial: pages, maximum: pages, shared: true });
  let top = 65536;
  return {
    memory,
    ref: createReferenceKernels(memory),
    wasm: createWasmKernels(kernelModule(), memory),
    alloc(bytes) {
      const p = top + 4; // +4: exercise unaligned v128 loads
      top = Math.ceil((p + bytes) / 16) * 16;
      if (top > memory.buffer.byteLength) throw new Error(`test alloc: out of memory (${top} bytes)`);
      return p;
    },
    reset() { top = 65536; },
    f32: (p, n) => new Float32Array(memory.buffer, p, n),
    u8: (p, n) => new Uint8Array(memory.buffer, p, n),
    i32: (p, n) => new Int32Array(memory.buffer, p, n),
    u16: (p, n) => new Uint16Array(memory.buffer, p, n),
  };
}

/** The SIMD builds bound to the bench's memory: both where the engine runs relaxed SIMD, else the
 *  plain one. */
export function simdBuilds(b: Bench): [string, Kernels][] {
  const list: [string, Kernels][] = [['simd', createWasmKernels(kernelModule('simd'), b.memory)]];
  if (kernelBuild() === 'relaxed') list.push(['relaxed', createWasmKernels(kernelModule('relaxed'), b.memory)]);
  return list;
}

/** Seeded uniform [0, 1) numbers so failures reproduce. */
export const rng = uniform01;

/** count uniform values in [-scale, scale). */
export function randomF32(rand: () => number, count: number, scale = 1): Float32Array {
  const a = new Float32Array(count);
  for (let i = 0; i < count; i++) a[i] = (rand() * 2 - 1) * scale;
  return a;
}

export function toF16Bits(a: Float32Array): Uint16Array { return Uint16Array.from(a, f32ToF16); }
export function toBF16Bits(a: Float32Array): Uint16Array { return Uint16Array.from(a, f32ToBF16); }

/** |actual − expected| <= tol · (|expected| + rms(expected)) elementwise: relative, with the row's
 *  scale as the floor so that cancellation near zero is not held to a relative bound. */
export function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: number, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  let ss = 0;
  for (let i = 0; i < expected.length; i++) ss += expected[i]! ** 2;
  const rms = Math.sqrt(ss / Math.max(1, expected.length));
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i]!, e = expected[i]!;
    if (Number.isNaN(a) || Number.isNaN(e) || Math.abs(a - e) > tol * (Math.abs(e) + rms)) {
      assert.fail(`${what}: element ${i} is ${a}, expected ${e} (tol ${tol}, rms ${rms})`);
    }
  }
}

export function assertBytesEqual(actual: ArrayLike<number>, expected: ArrayLike<number>, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < expected.length; i++) {
    if (actual[i] !== expected[i]) assert.fail(`${what}: element ${i} is ${actual[i]}, expected ${expected[i]}`);
  }
}
