// The repacked K-quant layouts q4_kx4 / q5_kx4 / q6_kx4 (src/kernels/repack.ts) and their matmul
// kernels (kernels/matmul-kquant-x4.ts): the layout only moves GGUF's bytes (q6_K: its bits); the SIMD kernels, in
// both builds, equal the twin bit for bit on odd sizes, row ranges and token counts, and give the
// same bits as the GGUF-layout kernels (a model's output does not change with the layout).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { quantizeToK, type KQuantType } from '../../src/kernels/k-quants.js';
import { repackForMatmul, repackKX4, unpackKX4, type KRepackedDType } from '../../src/kernels/repack.js';
import { activationBytes, weightBytes } from '../../src/kernels/types.js';
import { assertBytesEqual, makeBench, simdBuilds, randomF32, rng, type Bench } from './harness.js';

const TYPES: KQuantType[] = ['q4_k', 'q5_k', 'q6_k'];
const x4Of = (type: KQuantType): KRepackedDType => `${type}x4`;

/** Random weights (rows × cols, outliers for uneven scales) in GGUF super-blocks and repacked, and
 *  q8_K activations of n tokens. */
function setup(b: Bench, type: KQuantType, rows: number, cols: number, n: number, seed: number) {
  b.reset();
  const rand = rng(seed);
  const values = randomF32(rand, rows * cols);
  for (let i = 0; i < values.length; i += 97) values[i] *= 6;
  const blocks = quantizeToK(type, values);
  const w = b.alloc(blocks.length), w4 = b.alloc(blocks.length);
  b.u8(w, blocks.length).set(blocks);
  b.u8(w4, blocks.length).set(blocks);
  repackKX4(type, b.u8(w4, blocks.length), rows, cols);
  const xf = b.alloc(n * cols * 4), xq = b.alloc(activationBytes('q8_K', n * cols));
  b.f32(xf, n * cols).set(randomF32(rand, n * cols, 2));
  b.ref.quantizeQ8K(xf, xq, n * cols);
  return { blocks, w, w4, xq };
}

test('repackKX4 moves the GGUF bits only: unpackKX4 gives them back, every byte (q6_K: every bit) lands once, the size is the GGUF size', () => {
  for (const type of TYPES) {
    for (const [rows, cols] of [[4, 256], [8, 768], [12, 512]] as const) {
      const blocks = quantizeToK(type, randomF32(rng(rows + cols), rows * cols));
      const x4 = blocks.slice();
      repackKX4(type, x4, rows, cols);
      assert.equal(weightBytes(x4Of(type), rows * cols), blocks.length);
      assertBytesEqual(unpackKX4(x4Of(type), x4, rows, cols), blocks, `${type} ${rows}×${cols}: round trip`);
      if (type === 'q6_k') continue; // its bits are regrouped: the next test
      // a permutation: byte values 0..n−1 (mod 256 per page) come out each once
      const ids = Uint32Array.from({ length: blocks.length }, (_, i) => i);
      const moved = new Uint32Array(blocks.length);
      for (let page = 0; page < 4; page++) {
        const src = Uint8Array.from(ids, (i) => (i >> (8 * page)) & 255);
        repackKX4(type, src, rows, cols);
        for (let i = 0; i < src.length; i++) moved[i]! |= src[i]! << (8 * page);
      }
      assert.deepEqual([...moved].sort((a, c) => a - c), [...ids], `${type} ${rows}×${cols}: a permutation`);
    }
  }
});

test('repackKX4 of q6_K regroups bits: each bit of four GGUF rows\' super-block lands on one bit, a different one each', () => {
  const bytes = 4 * 210, seen = new Set<number>();
  for (let bit = 0; bit < 8 * bytes; bit++) {
    const w = new Uint8Array(bytes);
    w[bit >> 3] = 1 << (bit & 7);
    repackKX4('q6_k', w, 4, 256);
    const at = [...w.keys()].filter((i) => w[i] !== 0);
    assert.equal(at.length, 1, `GGUF bit ${bit}: one byte set`);
    const v = w[at[0]!]!;
    assert.equal(v & (v - 1), 0, `GGUF bit ${bit}: one bit set`);
    seen.add(8 * at[0]! + Math.log2(v));
  }
  assert.equal(seen.size, 8 * bytes);
});

test('repackForMatmul repacks q4_k / q5_k / q6_k with rows % 4 == 0 and leaves rows % 4 != 0 in GGUF\'s layout', () => {
  for (const type of TYPES) {
    const blocks = quantizeToK(type, randomF32(rng(5), 8 * 512));
    const bytes = blocks.slice();
    assert.equal(repackForMatmul(type, bytes, 8, 512), x4Of(type));
    assertBytesEqual(unpackKX4(x4Of(type), bytes, 8, 512), blocks, `${type}: repacked in place`);
    const six = quantizeToK(type, randomF32(rng(6), 6 * 256)), kept = six.slice();
    assert.equal(repackForMatmul(type, six, 6, 256), type);
    assertBytesEqual(six, kept, `${type} 6 rows: untouched`);
  }
  assert.throws(() => repackKX4('q6_k', new Uint8Array(210 * 3), 3, 256), /rows % 4 == 0/);
});

test('K-quant x4 matmuls equal the twin (x4 and GGUF layouts) and the GGUF-layout SIMD kernel bit for bit, both builds, odd sizes and row ranges', () => {
  const b = makeBench(256);
  const ks = simdBuilds(b);
  let seed = 500;
  for (const type of TYPES) {
    const dtype = x4Of(type);
    for (const [rows, cols] of [[4, 256], [12, 768], [20, 2560]] as const) {
      for (const n of [1, 2, 5]) {
        for (const [r0, r1] of [[0, rows], [1, rows - 2], [rows - 3, rows - 1], [4, rows]] as const) {
          const { w, w4, xq } = setup(b, type, rows, cols, n, seed++);
          const size = n * rows * 4;
          const yGguf = b.alloc(size), yRef = b.alloc(size), yOld = b.alloc(size), y = b.alloc(size);
          for (const p of [yGguf, yRef, yOld]) b.f32(p, n * rows).fill(12345);
          b.ref.matmul(type, w, xq, yGguf, n, rows, cols, r0, r1);
          b.ref.matmul(dtype, w4, xq, yRef, n, rows, cols, r0, r1);
          b.wasm.matmul(type, w, xq, yOld, n, rows, cols, r0, r1);
          const what = `${dtype} rows=${rows} cols=${cols} n=${n} [${r0},${r1})`;
          assertBytesEqual(b.u8(yRef, size), b.u8(yGguf, size), `${what}: twin x4 vs twin GGUF`);
          assertBytesEqual(b.u8(yOld, size), b.u8(yRef, size), `${what}: SIMD GGUF layout vs twin`);
          for (const [name, k] of ks) {
            b.f32(y, n * rows).fill(12345);
            k.matmul(dtype, w4, xq, y, n, rows, cols, r0, r1);
            assertBytesEqual(b.u8(y, size), b.u8(yRef, size), `${what}: SIMD ${name} vs twin`);
            const Y = b.f32(y, n * rows);
            for (let t = 0; t < n; t++) for (let r = 0; r < rows; r++) if (r < r0 || r >= r1) assert.equal(Y[t * rows + r], 12345, `${what}: row ${r} written`);
          }
        }
      }
    }
  }
});

test('K-quant x4 matmuls: a token gives the same bits alone (the group decode kernel) as in tiles of 1…9 tokens, both builds', () => {
  const b = makeBench(64);
  const ks = simdBuilds(b);
  for (const type of TYPES) {
    const rows = 36, cols = 512, n = 9, dtype = x4Of(type);
    const { w4, xq } = setup(b, type, rows, cols, n, 41);
    const all = b.alloc(n * rows * 4), one = b.alloc(rows * 4), xRow = activationBytes('q8_K', cols);
    for (const [name, k] of ks) {
      for (const m of [2, 3, 4, 5, 9]) {
        k.matmul(dtype, w4, xq, all, m, rows, cols, 0, rows);
        for (let t = 0; t < m; t++) {
          k.matmul(dtype, w4, xq + t * xRow, one, 1, rows, cols, 0, rows);
          assertBytesEqual(b.u8(all + t * rows * 4, rows * 4), b.u8(one, rows * 4), `${dtype} ${name}: token ${t} of ${m}`);
        }
      }
    }
  }
});

test('K-quant x4 matmuls are exact at the ends of the ranges: largest quants, scales and mins against activations ±127, both builds', () => {
  const b = makeBench(64);
  const ks = simdBuilds(b);
  for (const type of TYPES) {
    const rows = 8, cols = 512, n = 2, dtype = x4Of(type);
    const { w, w4, xq } = setup(b, type, rows, cols, n, 77);
    // GGUF blocks with every quant bit set, 6-bit scales / mins 63 (q6_K: scales ±127, −128), then repacked
    const bb = weightBytes(type, 256), bytes = b.u8(w, weightBytes(type, rows * cols));
    for (let o = 0; o < bytes.length; o += bb) {
      if (type === 'q6_k') {
        bytes.fill(0xff, o, o + 192);
        for (let s = 0; s < 16; s++) bytes[o + 192 + s] = [0x7f, 0x80, 0x81, 0x01][s % 4]!;
      } else {
        bytes.fill(0xff, o + 4, o + bb);
      }
    }
    b.u8(w4, bytes.length).set(bytes);
    repackKX4(type, b.u8(w4, bytes.length), rows, cols);
    const xb = b.u8(xq, activationBytes('q8_K', n * cols));
    for (let blk = 0; blk < (n * cols) / 256; blk++) {
      const o = blk * 292;
      for (let j = 0; j < 256; j++) xb[o + 4 + j] = blk % 2 ? 127 : 0x81;  // all 127 or all −127
      for (let g = 0; g < 16; g++) { xb[o + 260 + 2 * g] = (blk % 2 ? 16 * 127 : -16 * 127) & 255; xb[o + 261 + 2 * g] = ((blk % 2 ? 16 * 127 : -16 * 127) >> 8) & 255; }
    }
    const size = n * rows * 4, yRef = b.alloc(size), y = b.alloc(size);
    b.ref.matmul(type, w, xq, yRef, n, rows, cols, 0, rows);
    for (const [name, k] of ks) {
      for (const m of [1, n]) {
        k.matmul(dtype, w4, xq, y, m, rows, cols, 0, rows);
        assertBytesEqual(b.u8(y, m * rows * 4), b.u8(yRef, m * rows * 4), `${dtype} ${name} n=${m}: extremes`);
      }
    }
  }
});

test('rowToF32 of a K-quant x4 row equals toF32 of the same GGUF row, bit for bit (SIMD and twin)', () => {
  const b = makeBench(64);
  for (const type of TYPES) {
    const rows = 8, cols = 768, dtype = x4Of(type);
    const { w, w4 } = setup(b, type, rows, cols, 1, 13);
    const want = b.alloc(cols * 4), got = b.alloc(cols * 4);
    for (const k of [b.ref, b.wasm]) {
      for (const r of [0, 1, 2, 3, 5, 7]) {
        b.ref.toF32(type, w + weightBytes(type, r * cols), want, cols);
        k.rowToF32(dtype, w4, r, cols, got);
        assertBytesEqual(b.u8(got, cols * 4), b.u8(want, cols * 4), `${dtype} row ${r}`);
      }
      assert.throws(() => k.toF32(dtype, w4, got, 256), /rows interleaved; read rows with rowToF32/);
    }
  }
});

test('K-quant x4 matmuls with subnormal, zero and negative f16 scales (real files\' q6_K d is mostly subnormal) equal the twin bit for bit, both builds', () => {
  // Super-block columns take turns: every row's d (and dmin) normal, every one subnormal, or mixed
  // within a group of four rows — the kernels convert four rows' scales at once and branch on them.
  const NORMAL = [0x0400, 0x3c00, 0x1234, 0x7bff, 0x8400, 0x2001];
  const SUBNORMAL = [0x0001, 0x03ff, 0x0141, 0x8142, 0x813f, 0x0200];
  const MIXED = [0x0141, 0x3c00, 0x0000, 0x8142, 0x8000, 0x0400, 0x03ff, 0x1234];
  const b = makeBench(256);
  const ks = simdBuilds(b);
  let seed = 900;
  for (const type of TYPES) {
    const dtype = x4Of(type), rows = 12, cols = 768, nb = cols / 256, bb = weightBytes(type, 256);
    for (const n of [1, 2, 5]) {
      const { w, w4, xq } = setup(b, type, rows, cols, n, seed++);
      const bytes = b.u8(w, weightBytes(type, rows * cols));
      let subnormal = 0;
      for (let r = 0; r < rows; r++) {
        for (let c = 0; c < nb; c++) {
          const list = [NORMAL, SUBNORMAL, MIXED][c % 3]!, o = (r * nb + c) * bb;
          const d = list[(r + c) % list.length]!, dmin = list[(r + 2 * c + 1) % list.length]!;
          if ((d & 0x7c00) === 0 && (d & 0x3ff) !== 0) subnormal++;
          const at = type === 'q6_k' ? [[208, d]] : [[0, d], [2, dmin]];
          for (const [off, v] of at) { bytes[o + off!] = v! & 255; bytes[o + off! + 1] = v! >> 8; }
        }
      }
      assert.ok(subnormal >= rows, `${dtype}: the data has subnormal scales (${subnormal})`);
      b.u8(w4, bytes.length).set(bytes);
      repackKX4(type, b.u8(w4, bytes.length), rows, cols);
      const size = n * rows * 4, yRef = b.alloc(size), yGguf = b.alloc(size), y = b.alloc(size);
      b.ref.matmul(type, w, xq, yRef, n, rows, cols, 0, rows);
      b.wasm.matmul(type, w, xq, yGguf, n, rows, cols, 0, rows);
      assertBytesEqual(b.u8(yGguf, size), b.u8(yRef, size), `${type} n=${n}: SIMD GGUF layout vs twin`);
      for (const [name, k] of ks) {
        k.matmul(dtype, w4, xq, y, n, rows, cols, 0, rows);
        assertBytesEqual(b.u8(y, size), b.u8(yRef, size), `${dtype} ${name} n=${n}: SIMD vs twin`);
      }
    }
  }
});
