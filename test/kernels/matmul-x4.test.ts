// The repacked q8_0x4 / q4_0x4 layouts (src/kernels/repack.ts) and their matmul kernels: the layout
// round-trips to the GGUF blocks, the reference twin on the repacked matrix gives exactly what it
// gives on the GGUF blocks, and the SIMD kernels (both builds) give exactly what the twin gives —
// per row the same integer block sums and the same f32 operations in the same order.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { quantizeToQ4_0, quantizeToQ8_0, writeQ8BlockSums } from '../../src/kernels/reference.js';
import { repackForMatmul, repackX4, unpackX4, type RepackedDType } from '../../src/kernels/repack.js';
import { createWasmKernels, kernelBuild, kernelModule } from '../../src/kernels/wasm.js';
import { activationBytes, weightBytes } from '../../src/kernels/types.js';
import { assertBytesEqual, makeBench, randomF32, rng, type Bench } from './harness.js';

const BASES = ['q8_0', 'q4_0'] as const;

function gguf(base: 'q8_0' | 'q4_0', values: Float32Array): Uint8Array {
  return base === 'q8_0' ? quantizeToQ8_0(values) : quantizeToQ4_0(values);
}

test('repackX4 moves the GGUF bytes only: unpackX4 gives them back, and the x4 size is the GGUF size', () => {
  for (const base of BASES) {
    for (const [rows, cols] of [[4, 32], [8, 96], [12, 4032]] as const) {
      const blocks = gguf(base, randomF32(rng(rows + cols), rows * cols));
      const x4 = blocks.slice();
      repackX4(base, x4, rows, cols);
      const dtype: RepackedDType = base === 'q8_0' ? 'q8_0x4' : 'q4_0x4';
      assert.equal(x4.length, weightBytes(dtype, rows * cols));
      assert.notDeepEqual(x4, blocks, `${base} ${rows}×${cols}: the layout changed`);
      assertBytesEqual(unpackX4(dtype, x4, rows, cols), blocks, `${base} ${rows}×${cols}: round trip`);
    }
  }
});

test('repackForMatmul repacks q8_0 / q4_0 with rows % 4 == 0 and leaves everything else as it is', () => {
  for (const base of BASES) {
    const blocks = gguf(base, randomF32(rng(3), 8 * 64)), bytes = blocks.slice();
    assert.equal(repackForMatmul(base, bytes, 8, 64), base === 'q8_0' ? 'q8_0x4' : 'q4_0x4');
    assertBytesEqual(unpackX4(base === 'q8_0' ? 'q8_0x4' : 'q4_0x4', bytes, 8, 64), blocks, `${base}: repacked in place`);
  }
  const six = quantizeToQ8_0(randomF32(rng(5), 6 * 32)), sixCopy = six.slice();
  assert.equal(repackForMatmul('q8_0', six, 6, 32), 'q8_0');
  assert.deepEqual(six, sixCopy);
  const f32 = new Uint8Array(8 * 32 * 4);
  assert.equal(repackForMatmul('f32', f32, 8, 32), 'f32');
  assert.throws(() => repackX4('q8_0', new Uint8Array(34 * 6), 6, 32), /6×32 q8_0 needs rows % 4 == 0/);
  assert.throws(() => repackX4('q4_0', new Uint8Array(18 * 3), 4, 32), /needs .* 72 bytes, got 54/);
});

test('a q8_0 matrix holding the quant −128 (which llama.cpp never writes, other tools may) is repacked and multiplied exactly', () => {
  const b = makeBench(16);
  const rows = 8, cols = 64, n = 3;
  const blocks = quantizeToQ8_0(randomF32(rng(6), rows * cols));
  for (const at of [34 * 5 + 2 + 7, 34 * 2 + 2, 34 * 15 + 33]) blocks[at] = 0x80;
  const w = b.alloc(blocks.length), w4 = b.alloc(blocks.length);
  b.u8(w, blocks.length).set(blocks);
  b.u8(w4, blocks.length).set(blocks);
  assert.equal(repackForMatmul('q8_0', b.u8(w4, blocks.length), rows, cols), 'q8_0x4');
  const xf = b.alloc(n * cols * 4), xq = b.alloc(activationBytes('q8_0', n * cols));
  b.f32(xf, n * cols).set(randomF32(rng(7), n * cols, 3));
  b.ref.quantizeQ8(xf, xq, n * cols);
  const want = b.alloc(n * rows * 4), got = b.alloc(n * rows * 4);
  b.ref.matmul('q8_0', w, xq, want, n, rows, cols, 0, rows);
  for (const k of [b.ref, b.wasm]) {
    k.matmul('q8_0x4', w4, xq, got, n, rows, cols, 0, rows);
    assertBytesEqual(b.u8(got, n * rows * 4), b.u8(want, n * rows * 4), 'q8_0x4 with −128 vs the GGUF-layout twin');
  }
});

/** Writes a random matrix in GGUF blocks and its x4 repack, and a quantised input of n rows. */
function setup(b: Bench, base: 'q8_0' | 'q4_0', rows: number, cols: number, n: number, seed: number) {
  b.reset();
  const rand = rng(seed);
  const blocks = gguf(base, randomF32(rand, rows * cols));
  const w = b.alloc(blocks.length), w4 = b.alloc(blocks.length);
  b.u8(w, blocks.length).set(blocks);
  b.u8(w4, blocks.length).set(blocks);
  repackX4(base, b.u8(w4, blocks.length), rows, cols);
  const xf = b.alloc(n * cols * 4), xq = b.alloc(activationBytes('q8_0', n * cols));
  b.f32(xf, n * cols).set(randomF32(rand, n * cols, 3));
  b.ref.quantizeQ8(xf, xq, n * cols);
  return { w, w4, xq, dtype: (base === 'q8_0' ? 'q8_0x4' : 'q4_0x4') as RepackedDType };
}

test('x4 matmuls equal the GGUF-layout reference and the SIMD kernel equals the twin bit for bit, on odd sizes and row ranges', () => {
  const b = makeBench(64);
  let seed = 400;
  for (const base of BASES) {
    for (const rows of [4, 12, 20]) {
      for (const cols of [32, 96, 4032]) {
        for (const n of [1, 2, 5, 17]) {
          for (const [r0, r1] of [[0, rows], [1, rows - 2], [rows - 3, rows - 1], [4, rows]] as const) {
            const { w, w4, xq, dtype } = setup(b, base, rows, cols, n, seed++);
            const yGguf = b.alloc(n * rows * 4), yRef = b.alloc(n * rows * 4), yWasm = b.alloc(n * rows * 4);
            for (const y of [yGguf, yRef, yWasm]) b.f32(y, n * rows).fill(12345);
            b.ref.matmul(base, w, xq, yGguf, n, rows, cols, r0, r1);
            b.ref.matmul(dtype, w4, xq, yRef, n, rows, cols, r0, r1);
            b.wasm.matmul(dtype, w4, xq, yWasm, n, rows, cols, r0, r1);
            const what = `${dtype} rows=${rows} cols=${cols} n=${n} [${r0},${r1})`;
            assertBytesEqual(b.u8(yRef, n * rows * 4), b.u8(yGguf, n * rows * 4), `${what}: twin x4 vs twin GGUF`);
            assertBytesEqual(b.u8(yWasm, n * rows * 4), b.u8(yRef, n * rows * 4), `${what}: SIMD vs twin`);
            const Y = b.f32(yWasm, n * rows);
            for (let t = 0; t < n; t++) {
              for (let r = 0; r < rows; r++) {
                if (r < r0 || r >= r1) assert.equal(Y[t * rows + r], 12345, `${what}: row ${r} written`);
                else assert.notEqual(Y[t * rows + r], 12345, `${what}: row ${r} not written`);
              }
            }
          }
        }
      }
    }
  }
});

test('x4 matmuls over many groups and token tiles equal the twin in both builds (every tile remainder, odd row ranges)', () => {
  // 652 rows (163 groups), n = 1…16 tokens: 4-token tiles with every remainder, relaxed q8_0's tiles
  // of two groups × two tokens from 8 tokens (an odd last token, an odd last group), ranges cutting groups.
  const b = makeBench(64);
  const builds = kernelBuild() === 'relaxed' ? [kernelModule('simd'), kernelModule('relaxed')] : [kernelModule('simd')];
  const kernels = builds.map((m) => createWasmKernels(m, b.memory));
  let seed = 900;
  for (const base of BASES) {
    const rows = 652, cols = 96;
    for (const n of [1, 3, 4, 6, 8, 9, 11, 16]) {
      const { w4, xq, dtype } = setup(b, base, rows, cols, n, seed++);
      const yRef = b.alloc(n * rows * 4), y = b.alloc(n * rows * 4);
      for (const [r0, r1] of [[0, rows], [5, 641], [318, 652]] as const) {
        b.f32(yRef, n * rows).fill(12345);
        b.ref.matmul(dtype, w4, xq, yRef, n, rows, cols, r0, r1);
        for (const [i, k] of kernels.entries()) {
          b.f32(y, n * rows).fill(12345);
          k.matmul(dtype, w4, xq, y, n, rows, cols, r0, r1);
          assertBytesEqual(b.u8(y, n * rows * 4), b.u8(yRef, n * rows * 4), `${dtype} build ${i} n=${n} [${r0},${r1}): SIMD vs twin`);
        }
      }
    }
  }
});

test('the plain and relaxed SIMD builds give the same x4 matmuls, and weights and activations at the ends of their range are exact', (t) => {
  if (kernelBuild() !== 'relaxed') { t.skip('this engine does not run relaxed SIMD'); return; }
  const b = makeBench(64);
  const plain = createWasmKernels(kernelModule('simd'), b.memory);
  const relaxed = createWasmKernels(kernelModule('relaxed'), b.memory);
  let seed = 700;
  for (const base of BASES) {
    for (const [rows, cols, n] of [[8, 512, 1], [20, 768, 5], [4, 2560, 16]] as const) {
      const { w4, xq, dtype } = setup(b, base, rows, cols, n, seed++);
      if (rows === 4) {
        // extremes: q4_0 nibbles 0 and 15, q8_0 quants ±127 and −128, against activations ±127 (the
        // largest products the 7-bit path sees: a pair of 127·128 must not saturate i16)
        const bytes = b.u8(w4, weightBytes(dtype, rows * cols)), nb = cols / 32, QB = base === 'q8_0' ? 32 : 16;
        const edges = base === 'q4_0' ? [0x00, 0xff, 0x0f] : [0x7f, 0x81, 0x80];
        for (let blk = 0; blk < nb; blk++) {                  // the quants of each block, after its four scales
          const at = blk * (8 + 4 * QB);
          for (let i = at + 8; i < at + 8 + 4 * QB; i++) bytes[i] = edges[i % 3]!;
        }
        const xb = b.u8(xq, n * nb * 34);
        // blocks of alternating 127, −127; then all 127 and all −127 (q4_0's 8·Σx at its largest, taken
        // off the block's integer sum; the nibble pair sums of 15·127 at their largest in i16)
        for (let blk = 0; blk < n * nb; blk++) {
          for (let j = 0; j < 32; j++) xb[blk * 34 + 2 + j] = blk % 3 === 0 ? (j % 2 ? 127 : 0x81) : blk % 3 === 1 ? 127 : 0x81;
        }
        writeQ8BlockSums(b.memory.buffer, xq, n * cols);
      }
      const y1 = b.alloc(n * rows * 4), y2 = b.alloc(n * rows * 4), y3 = b.alloc(n * rows * 4);
      plain.matmul(dtype, w4, xq, y1, n, rows, cols, 0, rows);
      relaxed.matmul(dtype, w4, xq, y2, n, rows, cols, 0, rows);
      b.ref.matmul(dtype, w4, xq, y3, n, rows, cols, 0, rows);
      const what = `${dtype} rows=${rows} cols=${cols} n=${n}`;
      assertBytesEqual(b.u8(y2, n * rows * 4), b.u8(y1, n * rows * 4), `${what}: relaxed vs plain`);
      assertBytesEqual(b.u8(y2, n * rows * 4), b.u8(y3, n * rows * 4), `${what}: relaxed vs twin`);
    }
  }
});

test('rowToF32 reads a row of an x4 matrix as toF32 reads the same row of the GGUF blocks, bit for bit', () => {
  const b = makeBench(16);
  for (const base of BASES) {
    const rows = 12, cols = 96;
    const { w, w4, dtype } = setup(b, base, rows, cols, 1, 31);
    const want = b.alloc(cols * 4), got = b.alloc(cols * 4), gguf = b.alloc(cols * 4);
    for (const k of [b.ref, b.wasm]) {
      for (const r of [0, 1, 2, 3, 4, 7, 11]) {
        k.toF32(base, w + weightBytes(base, r * cols), want, cols);
        k.rowToF32(base, w, r, cols, gguf);
        k.rowToF32(dtype, w4, r, cols, got);
        assertBytesEqual(b.u8(gguf, cols * 4), b.u8(want, cols * 4), `${base} row ${r}: rowToF32 on GGUF blocks`);
        assertBytesEqual(b.u8(got, cols * 4), b.u8(want, cols * 4), `${dtype} row ${r}`);
      }
    }
  }
});

test('toF32 refuses the x4 layouts with a message that says what to do', () => {
  const b = makeBench(4);
  for (const k of [b.ref, b.wasm]) {
    assert.throws(() => k.toF32('q8_0x4', 65536, 65536 + 4096, 32), /q8_0x4 has its rows interleaved; read rows with rowToF32/);
  }
});
