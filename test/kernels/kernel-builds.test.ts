// The two builds of the kernel module (src/kernels/wasm.ts): plain SIMD and relaxed SIMD (int8 dot
// products in the K-quant matmuls). Where the engine runs relaxed SIMD, both builds must give
// bit-identical results — the same integer sums and the same f32 operations — and the choice must
// fall back to the plain build when asked to.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createWasmKernels, kernelBuild, kernelModule } from '../../src/kernels/wasm.js';
import { createReferenceKernels, quantizeToQ4_0, quantizeToQ8_0 } from '../../src/kernels/reference.js';
import { quantizeToK } from '../../src/kernels/k-quants.js';
import { activationBytes, activationFormat, weightBytes, type WeightDType } from '../../src/kernels/types.js';
import { assertBytesEqual, assertClose, randomF32, rng } from './harness.js';

const WASM = new URL('../../src/kernels/wasm.js', import.meta.url).href;

test('the build is chosen by feature detection, and TESSERA_KERNELS=simd forces the plain build', () => {
  const child = (env: Record<string, string>) => spawnSync(process.execPath, ['--input-type=module', '-e',
    `const w = await import(${JSON.stringify(WASM)}); w.kernelModule(); console.log(w.kernelBuild());`],
    { encoding: 'utf8', env: { ...process.env, ...env } });
  const forced = child({ TESSERA_KERNELS: 'simd' });
  assert.equal(forced.status, 0, forced.stderr);
  assert.equal(forced.stdout.trim(), 'simd');
  const auto = child({ TESSERA_KERNELS: '' });
  assert.equal(auto.status, 0, auto.stderr);
  // Node 20 validates relaxed SIMD once the flag is set; Node ≥ 22 by default
  assert.equal(auto.stdout.trim(), 'relaxed');
});

test('relaxed and plain SIMD builds give bit-identical matmuls for every weight dtype, and match the reference', (t) => {
  if (kernelBuild() !== 'relaxed') { t.skip('this engine does not run relaxed SIMD'); return; }
  const memory = new WebAssembly.Memory({ initial: 256, maximum: 256, shared: true });
  const plain = createWasmKernels(kernelModule('simd'), memory);
  const relaxed = createWasmKernels(kernelModule('relaxed'), memory);
  const ref = createReferenceKernels(memory);
  const u8 = (p: number, n: number) => new Uint8Array(memory.buffer, p, n);
  const f32 = (p: number, n: number) => new Float32Array(memory.buffer, p, n);
  let seed = 900;
  for (const dtype of ['q8_0', 'q4_0', 'q4_k', 'q5_k', 'q6_k', 'f16'] as WeightDType[]) {
    for (const [rows, cols, n] of [[3, 512, 1], [17, 768, 5], [5, 2560, 9]] as const) {
      const rand = rng(seed++);
      const values = randomF32(rand, rows * cols);
      const w = dtype === 'q8_0' ? quantizeToQ8_0(values) : dtype === 'q4_0' ? quantizeToQ4_0(values)
        : dtype === 'f16' ? new Uint8Array(Uint16Array.from(values, () => 0x3c00).buffer) : quantizeToK(dtype as 'q4_k', values);
      assert.equal(w.length, weightBytes(dtype, rows * cols));
      const after = (p: number, bytes: number) => Math.ceil((p + bytes) / 16) * 16 + 4; // 4 past a 16-byte boundary: unaligned v128 loads
      const fmt = activationFormat(dtype);
      const W = 65536 + 4, X = after(W, w.length), XQ = after(X, n * cols * 4);
      const Y1 = after(XQ, fmt === 'f32' ? 0 : activationBytes(fmt, n * cols)), Y2 = after(Y1, n * rows * 4), Y3 = after(Y2, n * rows * 4);
      u8(W, w.length).set(w);
      f32(X, n * cols).set(randomF32(rand, n * cols, 2));
      if (fmt === 'q8_0') plain.quantizeQ8(X, XQ, n * cols);
      if (fmt === 'q8_K') plain.quantizeQ8K(X, XQ, n * cols);
      if (fmt !== 'f32') {
        const q = Uint8Array.from(u8(XQ, activationBytes(fmt, n * cols)));
        if (fmt === 'q8_0') relaxed.quantizeQ8(X, XQ, n * cols); else relaxed.quantizeQ8K(X, XQ, n * cols);
        assertBytesEqual(u8(XQ, q.length), q, `${dtype}: activation quantisation`);
      }
      const x = fmt === 'f32' ? X : XQ;
      plain.matmul(dtype, W, x, Y1, n, rows, cols, 0, rows);
      relaxed.matmul(dtype, W, x, Y2, n, rows, cols, 0, rows);
      ref.matmul(dtype, W, x, Y3, n, rows, cols, 0, rows);
      const what = `${dtype} rows=${rows} cols=${cols} n=${n}`;
      assertBytesEqual(u8(Y2, n * rows * 4), u8(Y1, n * rows * 4), `${what}: relaxed vs plain`);
      assertClose(f32(Y2, n * rows), f32(Y3, n * rows), 2e-6, `${what}: relaxed vs reference`);
    }
  }
});
