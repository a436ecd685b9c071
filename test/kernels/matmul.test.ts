// matmul: the SIMD build against the reference, every weight dtype, odd sizes, row ranges.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { quantizeToQ4_0, quantizeToQ8_0 } from '../../src/kernels/reference.js';
import { activationBytes, weightBytes, type WeightDType } from '../../src/kernels/types.js';
import { createWasmKernels, kernelBuild, kernelModule, type KernelBuild } from '../../src/kernels/wasm.js';
import { assertClose, makeBench, randomF32, rng, toBF16Bits, toF16Bits, type Bench } from './harness.js';

/** Writes random weights (rows, cols) of `dtype` into memory; returns the pointer. */
function writeWeights(b: Bench, dtype: WeightDType, rows: number, cols: number, rand: () => number): number {
  const values = randomF32(rand, rows * cols);
  const p = b.alloc(weightBytes(dtype, rows * cols));
  switch (dtype) {
    case 'f32': b.f32(p, rows * cols).set(values); break;
    case 'f16': b.u16(p, rows * cols).set(toF16Bits(values)); break;
    case 'bf16': b.u16(p, rows * cols).set(toBF16Bits(values)); break;
    case 'q8_0': b.u8(p, weightBytes(dtype, rows * cols)).set(quantizeToQ8_0(values)); break;
    case 'q4_0': b.u8(p, weightBytes(dtype, rows * cols)).set(quantizeToQ4_0(values)); break;
  }
  return p;
}

/** Runs one case through both implementations; rows outside [r0, r1) must stay untouched. */
function runCase(b: Bench, dtype: WeightDType, rows: number, cols: number, n: number, seed: number, r0 = 0, r1 = rows): void {
  b.reset();
  const rand = rng(seed);
  const quant = dtype === 'q8_0' || dtype === 'q4_0';
  const w = writeWeights(b, dtype, rows, cols, rand);
  const xf = b.alloc(n * cols * 4);
  b.f32(xf, n * cols).set(randomF32(rand, n * cols));
  let x = xf;
  if (quant) {
    x = b.alloc(activationBytes('q8_0', n * cols));
    b.ref.quantizeQ8(xf, x, n * cols);
  }
  const yRef = b.alloc(n * rows * 4), yWasm = b.alloc(n * rows * 4);
  b.f32(yRef, n * rows).fill(12345);
  b.f32(yWasm, n * rows).fill(12345);
  b.ref.matmul(dtype, w, x, yRef, n, rows, cols, r0, r1);
  b.wasm.matmul(dtype, w, x, yWasm, n, rows, cols, r0, r1);
  const what = `${dtype} rows=${rows} cols=${cols} n=${n} [${r0},${r1})`;
  // Quantised: identical integer block sums, only the f32 summation order differs.
  assertClose(b.f32(yWasm, n * rows), b.f32(yRef, n * rows), quant ? 2e-6 : 1e-5, what);
  const Y = b.f32(yWasm, n * rows);
  for (let t = 0; t < n; t++) {
    for (let r = 0; r < rows; r++) if (r < r0 || r >= r1) assert.equal(Y[t * rows + r], 12345, `${what}: row ${r} written`);
  }
}

test('matmul f32/f16/bf16 matches the reference on odd sizes', () => {
  const b = makeBench(64);
  let seed = 1;
  for (const dtype of ['f32', 'f16', 'bf16'] as const) {
    for (const rows of [1, 3, 17]) for (const cols of [1, 7, 33, 130]) for (const n of [1, 2, 5, 9]) runCase(b, dtype, rows, cols, n, seed++);
  }
});

test('matmul q8_0/q4_0 matches the reference on odd sizes', () => {
  const b = makeBench(64);
  let seed = 100;
  for (const dtype of ['q8_0', 'q4_0'] as const) {
    for (const rows of [1, 3, 17]) for (const cols of [32, 96, 4032]) for (const n of [1, 2, 5, 9]) runCase(b, dtype, rows, cols, n, seed++);
  }
});

test('matmul honours [r0, r1) and token chunks larger than one L2 block', () => {
  const b = makeBench(256);
  for (const dtype of ['f32', 'f16', 'bf16', 'q8_0', 'q4_0'] as const) {
    runCase(b, dtype, 17, 96, 5, 7, 3, 12);
    runCase(b, dtype, 17, 96, 1, 8, 16, 17);
  }
  // f32: 4096 cols -> 16 tokens per chunk; q8_0: 4096 cols -> 60 tokens per chunk.
  runCase(b, 'f32', 3, 4096, 21, 9);
  runCase(b, 'q8_0', 2, 4096, 66, 10);
});

test('matmul f32/f16/bf16: one token (rows read one by one) gets the bits it gets beside other tokens (rows in pairs), both builds', () => {
  const builds: KernelBuild[] = kernelBuild() === 'relaxed' ? ['simd', 'relaxed'] : ['simd'];
  for (const build of builds) {
    const b = makeBench(64);
    const wasm = createWasmKernels(kernelModule(build), b.memory);
    let seed = 300;
    for (const dtype of ['f32', 'f16', 'bf16'] as const) {
      for (const [rows, r0, r1] of [[1, 0, 1], [2, 0, 2], [3, 0, 3], [17, 0, 17], [17, 3, 12], [24, 8, 16]] as const) {
        for (const cols of [1, 7, 8, 12, 33, 130]) {
          b.reset();
          const rand = rng(seed++);
          const w = writeWeights(b, dtype, rows, cols, rand);
          const x = b.alloc(5 * cols * 4);
          b.f32(x, 5 * cols).set(randomF32(rand, 5 * cols));
          const y5 = b.alloc(5 * rows * 4), y1 = b.alloc(rows * 4);
          wasm.matmul(dtype, w, x, y5, 5, rows, cols, r0, r1); // token 4: the odd token after a block of four
          wasm.matmul(dtype, w, x + 4 * cols * 4, y1, 1, rows, cols, r0, r1);
          const all = new Uint32Array(b.memory.buffer, y5 + 4 * rows * 4, rows), one = new Uint32Array(b.memory.buffer, y1, rows);
          for (let r = r0; r < r1; r++) assert.equal(one[r], all[r], `${build} ${dtype} rows=${rows} cols=${cols} [${r0},${r1}): row ${r}`);
        }
      }
    }
  }
});
