// Pointers >= 2^31: JS passes them to the i32 parameters through ToInt32 (same bits) and the kernels
// read them back as unsigned usize. A 2 GiB + 256 KiB shared memory is reserved, but only the
// touched pages are backed, so this costs a few hundred KiB of RAM.

import { test } from 'node:test';
import { createReferenceKernels, quantizeToQ8_0 } from '../../src/kernels/reference.js';
import { createWasmKernels, kernelModule } from '../../src/kernels/wasm.js';
import { activationBytes, attentionStateBytes } from '../../src/kernels/types.js';
import { assertClose, randomF32, rng } from './harness.js';

test('kernels read and write above 2 GiB', (t) => {
  let memory: WebAssembly.Memory;
  try {
    memory = new WebAssembly.Memory({ initial: 32772, maximum: 32772, shared: true });
  } catch (e) {
    t.skip(`cannot reserve a 2 GiB shared memory here: ${(e as Error).message}`);
    return;
  }
  const ref = createReferenceKernels(memory), wasm = createWasmKernels(kernelModule(), memory);
  const f32 = (p: number, n: number): Float32Array => new Float32Array(memory.buffer, p, n);
  const rand = rng(42);
  const rows = 17, cols = 96;
  let top = 2 ** 31 + 4096 + 4;
  const alloc = (bytes: number): number => { const p = top; top += Math.ceil(bytes / 16) * 16 + 4; return p; };
  const w = alloc(rows * cols * 4), wq = alloc((rows * cols / 32) * 34), x = alloc(cols * 4), xq = alloc(activationBytes('q8_0', cols));
  const yr = alloc(rows * 4), yw = alloc(rows * 4);
  const values = randomF32(rand, rows * cols);
  f32(w, rows * cols).set(values);
  new Uint8Array(memory.buffer, wq, (rows * cols / 32) * 34).set(quantizeToQ8_0(values));
  f32(x, cols).set(randomF32(rand, cols));
  ref.matmul('f32', w, x, yr, 1, rows, cols, 0, rows);
  wasm.matmul('f32', w, x, yw, 1, rows, cols, 0, rows);
  assertClose(f32(yw, rows), f32(yr, rows), 1e-5, 'matmul f32 above 2 GiB');
  ref.quantizeQ8(x, xq, cols);
  wasm.matmul('q8_0', wq, xq, yw, 1, rows, cols, 0, rows);
  ref.matmul('q8_0', wq, xq, yr, 1, rows, cols, 0, rows);
  assertClose(f32(yw, rows), f32(yr, rows), 2e-6, 'matmul q8_0 above 2 GiB');
  // Attention with q, K/V and out above 2^31.
  const S = 9, H = 2, D = 8, q = alloc(H * D * 4), pos = alloc(4), k = alloc(S * D * 4), v = alloc(S * D * 4);
  const or = alloc(H * D * 4), ow = alloc(H * D * 4), state = alloc(attentionStateBytes(1, H, 1, D, S));
  f32(q, H * D).set(randomF32(rand, H * D));
  f32(k, S * D).set(randomF32(rand, S * D));
  f32(v, S * D).set(randomF32(rand, S * D));
  new Int32Array(memory.buffer, pos, 1)[0] = S - 1;
  ref.attention(q, pos, k, v, or, 'f32', 1, S, H, 1, D, 0.35, 0, 0, 0, 0, H);
  wasm.attention(q, pos, k, v, ow, 'f32', 1, S, H, 1, D, 0.35, 0, 0, state, 0, H);
  assertClose(f32(ow, H * D), f32(or, H * D), 2e-6, 'attention above 2 GiB');
});
